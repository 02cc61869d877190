// Time per optimiser step of a TP × CP × PP × DP layout, on the busiest pipeline stage, and what follows
// from it: tokens/s, TFLOPs/GPU and MFU (model FLOPs: herd's count of src/train/mfu.ts, 6·N + 12·L·H·h_d·T
// a token, recomputation not counted). The terms, each with its overlap (src/scale/constants.ts):
// - compute: the step's model FLOPs over the GPUs, ×4/3 with full recomputation (one more forward), ×
//   the stage imbalance (the busiest stage's layers · PP / L), over peak × matmulEfficiency;
// - TP: per layer and micro-batch, sequence parallelism's all-gather and reduce-scatter around attention
//   and around the FFN, in forward and again in backward (8; 12 with recomputation), each moving
//   (TP−1)/TP of the micro-batch's tokens × dim in bf16, inside a server;
// - CP: per layer and micro-batch, the all-gather of the whole sequence's K and V in forward, again in
//   backward, and the reduce-scatter of dK, dV (3; 4 with recomputation), (CP−1)/CP of it each;
// - PP: each micro-batch sends its activations forward and its gradient back at each of the rank's V
//   chunks (bf16, split over TP); async P2P hides them (ppOverlap) except the 2·(PP−1) sends of the fill
//   and the drain; the bubble of interleaved 1F1B is (PP−1)/(M·V) of the busy time (spec §8.2);
// - DP: once a step, FSDP's bf16 all-gather of the stage's parameters and the fp32 reduce-scatter of its
//   gradients, (DP−1)/DP of them each; prefetch and async hide dpOverlap of it, and never more than the
//   compute it runs beside.
// A group of size n whose ranks are `stride` apart (rank = tp + TP·cp + TP·CP·pp + …) runs inside a server
// when stride·n ≤ GPUs a server, else over the network. Not modelled: the optimiser step itself (memory
// bound, milliseconds), stragglers, the diurnal 1–2% (spec §8.4), the pods' 1:7 oversubscription.
import type { LlamaConfig } from "../model/config.js";
import { paramCount } from "../model/presets.js";
import { trainingFlopsPerToken } from "../train/mfu.js";
import { type Cluster, kvHeadsPerRank, type Layout, microBatches, type Run } from "./config.js";
import { BYTES, CALIBRATION, type Calibration } from "./constants.js";
import { stageLayers } from "./memory.js";

export interface StepTime {
  microBatches: number;
  /** Seconds of each term as it lands on the step (exposed, after overlap). */
  compute: number;
  tp: number;
  cp: number;
  pp: number;
  bubble: number;
  dp: number;
  /** Seconds each dimension's communication would take alone (before overlap). */
  comm: { tp: number; cp: number; pp: number; dp: number };
  step: number;
  tokensPerSecond: number;
  tflopsPerGpu: number;
  mfu: number;
}

/** Bytes/s a collective of `n` ranks spaced `stride` apart gets. */
function bandwidth(cluster: Cluster, cal: Calibration, stride: number, n: number): number {
  const link = stride * n <= cluster.gpusPerNode ? cluster.intraNodeBandwidth : cluster.interNodeBandwidth;
  return link * 1e9 * cal.commEfficiency;
}

/** (n−1)/n: the share of a buffer each rank sends or receives in a ring all-gather or reduce-scatter. */
const ring = (n: number) => (n - 1) / n;

export function stepTime(
  c: LlamaConfig,
  cluster: Cluster,
  run: Run,
  l: Layout,
  cal: Calibration = CALIBRATION,
): StepTime {
  const m = microBatches(run, l);
  const layers = stageLayers(c, l).busiest;
  const modelFlopsPerGpu = (trainingFlopsPerToken(c, run.seqLen) * run.batchTokens) / cluster.gpus;
  const imbalance = l.pp > 1 ? (layers * l.pp) / c.numHiddenLayers : 1;
  const compute =
    (modelFlopsPerGpu * (l.recompute ? 4 / 3 : 1) * imbalance) /
    (cluster.peakTflops * 1e12 * cal.matmulEfficiency);

  const tokens = (l.microBatch * run.seqLen) / l.cp;
  const layerMicroBatches = layers * m;
  const tpBytes = ring(l.tp) * tokens * c.hiddenSize * BYTES.activation;
  const tpComm = (layerMicroBatches * (l.recompute ? 12 : 8) * tpBytes) / bandwidth(cluster, cal, 1, l.tp);
  const kvRow = 2 * kvHeadsPerRank(c, l.tp) * c.headDim * BYTES.activation;
  const cpBytes = ring(l.cp) * l.microBatch * run.seqLen * kvRow;
  const cpComm = (layerMicroBatches * (l.recompute ? 4 : 3) * cpBytes) / bandwidth(cluster, cal, l.tp, l.cp);
  const tpExposed = (1 - cal.tpOverlap) * tpComm;
  const cpExposed = (1 - cal.cpOverlap) * cpComm;

  const ppBw = bandwidth(cluster, cal, l.tp * l.cp, l.pp);
  const send = l.pp > 1 ? (tokens * c.hiddenSize * BYTES.activation) / l.tp / ppBw : 0;
  const ppComm = m * 2 * l.virtualStages * send;
  const ppExposed = (1 - cal.ppOverlap) * ppComm + 2 * (l.pp - 1) * send;
  const bubble = ((l.pp - 1) / (m * l.virtualStages)) * (compute + tpExposed + cpExposed);

  const dpBytes = ring(l.dp) * (paramCount(c) / (l.tp * l.pp)) * (BYTES.weight + BYTES.grad);
  const dpComm = dpBytes / bandwidth(cluster, cal, l.tp * l.cp * l.pp, l.dp);
  const dpExposed = Math.max((1 - cal.dpOverlap) * dpComm, dpComm - compute);

  const step = compute + tpExposed + cpExposed + bubble + ppExposed + dpExposed;
  const tflopsPerGpu = modelFlopsPerGpu / step / 1e12;
  return {
    microBatches: m,
    compute,
    tp: tpExposed,
    cp: cpExposed,
    pp: ppExposed,
    bubble,
    dp: dpExposed,
    comm: { tp: tpComm, cp: cpComm, pp: ppComm, dp: dpComm },
    step,
    tokensPerSecond: run.batchTokens / step,
    tflopsPerGpu,
    mfu: tflopsPerGpu / cluster.peakTflops,
  };
}
