// Memory per GPU of a TP × CP × PP × DP layout (FSDP over DP), for the busiest rank: the first pipeline
// stage, which holds the most micro-batches in flight. Assumptions (bytes in src/scale/constants.ts):
// - Parameters are split evenly over TP·PP (the paper balances stages by giving the first and the last
//   one fewer layer); DP shards them at rest, but they are not re-sharded after forward (spec §8.2), so
//   a step holds the whole bf16 stage: 2 bytes a parameter over TP·PP.
// - Gradients accumulate in fp32 across micro-batches (spec §6.1), unsharded until the step's fp32
//   reduce-scatter: 4 bytes a parameter over TP·PP. (torchtitan's FSDP2 instead reduce-scatters each
//   micro-batch into an fp32 shard, 4/DP bytes, at the cost of DP traffic every micro-batch: the figure
//   here is the larger of the two.)
// - AdamW's fp32 master weights and two moments, 12 bytes a parameter, are sharded over DP as well.
// - Activations of one layer and micro-batch, per token, with sequence parallelism inside TP (so the
//   residual stream is split over TP too) and a flash-attention kernel (no S×S scores): the two RMSNorm
//   inputs, Q, K, V, the attention output, the FFN's gate and up projections, and the softmax
//   statistics. The norm outputs and the SwiGLU product are recomputed in backward by fused kernels
//   (cheap elementwise work) rather than stored. With full recomputation only the layer input is kept,
//   plus one layer's full activations while it is recomputed.
// - Micro-batches in flight on the first stage (Megatron's interleaved 1F1B warm-up): min(PP, M) for
//   V = 1; min(2(PP−1) + (V−1)·PP + 1, M·V) model chunks for V > 1, i.e. that over V micro-batches of
//   the rank's layers. Without pipelining, one.
// - CP all-gathers the whole sequence's K and V of a layer (and dK, dV in backward): two such buffers.
// - The last stage's logits (bf16 + fp32 for the loss) are added too, a conservative bound.
import type { LlamaConfig } from "../model/config.js";
import { paramCount } from "../model/presets.js";
import {
  type Cluster,
  kvHeadsPerRank,
  type Layout,
  microBatches,
  pipelineSlots,
  type Run,
} from "./config.js";
import { BYTES, CALIBRATION, type Calibration, GiB } from "./constants.js";

export interface MemoryBreakdown {
  /** Parameters a GPU holds during the step (all / (TP·PP)). */
  paramsPerGpu: number;
  weights: number;
  gradients: number;
  optimizer: number;
  /** Activation bytes of one layer for one micro-batch. */
  activationsPerLayer: number;
  /** Transformer layers on the first pipeline stage. */
  layersFirstStage: number;
  /** Micro-batches (of all the stage's layers) held at the peak. */
  inFlight: number;
  activations: number;
  kvGather: number;
  logits: number;
  total: number;
  /** Usable bytes: the GPU's memory less the reserve. */
  limit: number;
  fits: boolean;
}

/** Activation bytes a token of one layer stores for backward (module header), on one TP rank. */
export function activationBytesPerToken(c: LlamaConfig, tp: number, recompute: boolean): number {
  const d = c.hiddenSize;
  if (recompute) return (BYTES.activation * d) / tp;
  const q = c.numAttentionHeads * c.headDim;
  const kv = kvHeadsPerRank(c, tp) * c.headDim;
  const elements = (2 * d) / tp + q / tp + 2 * kv + q / tp + (2 * c.intermediateSize) / tp;
  return BYTES.activation * elements + (BYTES.softmaxStat * c.numAttentionHeads) / tp;
}

/** Micro-batches (in units of the rank's whole set of layers) the first stage holds at once. */
export function inFlightMicroBatches(pp: number, v: number, m: number): number {
  if (pp === 1) return 1;
  if (v === 1) return Math.min(pp, m);
  return Math.min(2 * (pp - 1) + (v - 1) * pp + 1, m * v) / v;
}

/** Transformer layers of the busiest stage and of the first one (which also holds the embedding). */
export function stageLayers(c: LlamaConfig, l: Layout): { busiest: number; first: number } {
  const L = c.numHiddenLayers;
  if (l.pp === 1) return { busiest: L, first: L };
  const perRank = Math.ceil(pipelineSlots(c) / (l.pp * l.virtualStages)) * l.virtualStages;
  return { busiest: Math.min(L, perRank), first: Math.min(L, perRank - 1) };
}

export function memoryPerGpu(
  c: LlamaConfig,
  cluster: Cluster,
  run: Run,
  l: Layout,
  cal: Calibration = CALIBRATION,
): MemoryBreakdown {
  const paramsPerGpu = paramCount(c) / (l.tp * l.pp);
  const weights = paramsPerGpu * BYTES.weight;
  const gradients = paramsPerGpu * BYTES.grad;
  const optimizer = (paramsPerGpu * BYTES.optimizer) / l.dp;
  const tokens = (l.microBatch * run.seqLen) / l.cp;
  const activationsPerLayer = tokens * activationBytesPerToken(c, l.tp, l.recompute);
  const layersFirstStage = stageLayers(c, l).first;
  const inFlight = inFlightMicroBatches(l.pp, l.virtualStages, microBatches(run, l));
  const recomputed = l.recompute ? tokens * activationBytesPerToken(c, l.tp, false) : 0;
  const activations = inFlight * layersFirstStage * activationsPerLayer + recomputed;
  const kvRow = 2 * kvHeadsPerRank(c, l.tp) * c.headDim * BYTES.activation;
  const kvGather = l.cp > 1 ? 2 * l.microBatch * run.seqLen * kvRow : 0;
  const logits = (tokens * c.vocabSize * BYTES.logits) / l.tp;
  const total = weights + gradients + optimizer + activations + kvGather + logits;
  const limit = (cluster.memory - cal.memoryReserveGiB) * GiB;
  return {
    paramsPerGpu,
    weights,
    gradients,
    optimizer,
    activationsPerLayer,
    layersFirstStage,
    inFlight,
    activations,
    kvGather,
    logits,
    total,
    limit,
    fits: total <= limit,
  };
}
