// Every constant of the planner in one place: the bytes of each training state (the precision the paper
// and torchtitan train 405B with, spec §6.1 and §8.2) and the calibration constants (how much of the peak
// matmuls reach, how much of a link a collective gets, what hides behind what). The calibration constants
// were chosen once so that the paper's three Table 4 layouts come out within 10% of their TFLOPs/GPU
// (src/scale/calibrate.ts prints the comparison; docs/scale.md records it). Only matmulEfficiency was
// fitted: 0.51 makes the largest of the three errors smallest among steps of 0.005 (−3.4%, −2.1%, +5.0%).
// The rest are the paper's descriptions (what overlaps) or typical NCCL bus-bandwidth fractions.

/** Bytes per parameter or element of each state (mixed precision as the paper trains). */
export const BYTES = {
  /** bf16 weights, the copy forward and backward use. */
  weight: 2,
  /** fp32 gradient accumulation across micro-batches (spec §6.1) and the fp32 reduce-scatter. */
  grad: 4,
  /** AdamW's fp32 master weights + first and second moments (4 + 4 + 4), sharded over DP by FSDP. */
  optimizer: 12,
  /** bf16 activations and the all-gathered tensors. */
  activation: 2,
  /** fp32 flash-attention softmax statistics (one a query head and token). */
  softmaxStat: 4,
  /** Logits of the last stage: bf16 out of the head and fp32 for the loss. */
  logits: 6,
} as const;

export interface Calibration {
  /** Fraction of the dense bf16 peak the step's model FLOPs (herd's count) run at. */
  matmulEfficiency: number;
  /** Fraction of a link's bandwidth a NCCL collective or send reaches (bus bandwidth / link rate). */
  commEfficiency: number;
  /** Fraction of TP's per-layer all-gathers / reduce-scatters hidden behind compute (the paper: none). */
  tpOverlap: number;
  /** Fraction of CP's K/V all-gathers hidden (the paper gathers, then attends: none). */
  cpOverlap: number;
  /** Fraction of PP's sends hidden by async P2P and the other micro-batches (the fill and drain never are). */
  ppOverlap: number;
  /** Fraction of DP's once-a-step all-gather and reduce-scatter hidden by prefetch / async (spec §8.2). */
  dpOverlap: number;
  /** GiB of each GPU that the model cannot use: CUDA context, NCCL buffers, allocator fragmentation. */
  memoryReserveGiB: number;
}

export const CALIBRATION: Readonly<Calibration> = {
  matmulEfficiency: 0.51,
  commEfficiency: 0.8,
  tpOverlap: 0,
  cpOverlap: 0,
  ppOverlap: 1,
  dpOverlap: 0.9,
  memoryReserveGiB: 4,
};

export const GiB = 2 ** 30;
