// What `herd plan` is given, declared once each as a src/core/schema.ts schema (type, default, range, doc):
// the cluster (GPUs, memory, peak bf16 FLOP/s, bandwidths), the run (global batch, sequence length) and a
// 4D layout TP × CP × PP × DP (spec §8.2: the order from innermost to outermost, DP = FSDP). The defaults
// are the paper's cluster (spec §8.1): H100 SXM, 80 GB, 989 dense bf16 TFLOP/s, 8 GPUs a server on NVLink
// (450 GB/s each way), a 400 Gbps NIC a GPU, 2 TB/s sustained storage. checkLayout holds the rules a
// layout must keep for a model, each error naming its field: TP divides the query heads (and the KV heads
// divide TP or TP them), TP sits inside a server, the sequence splits into 2·CP chunks, PP is at most the
// layers, the product is the cluster's GPUs, and the global batch divides into DP × micro-batches.
import { type Infer, type Problem, type Schema, SchemaError } from "../core/schema.js";
import type { LlamaConfig } from "../model/config.js";

const count = { type: "integer", min: 1 } as const;
const positive = { type: "number", min: 0, minExclusive: true } as const;

export const CLUSTER_SCHEMA = {
  gpus: { ...count, max: 16777216, doc: "GPUs of the job" },
  gpusPerNode: { ...count, default: 8, doc: "GPUs a server (NVLink inside, the network between)" },
  memory: { ...positive, default: 80, arg: "GIB", doc: "memory a GPU, GiB" },
  peakTflops: {
    ...positive,
    default: 989,
    arg: "TFLOPS",
    doc: "dense bf16 peak a GPU, TFLOP/s (H100 SXM: 989)",
  },
  intraNodeBandwidth: {
    ...positive,
    arg: "GB/S",
    default: 450,
    doc: "NVLink bandwidth a GPU, each way, GB/s",
  },
  interNodeBandwidth: {
    ...positive,
    arg: "GB/S",
    default: 50,
    doc: "network bandwidth a GPU (400 Gbps RoCE/InfiniBand), GB/s",
  },
  storageBandwidth: {
    ...positive,
    arg: "GB/S",
    default: 2000,
    doc: "sustained checkpoint-storage bandwidth of the cluster, GB/s",
  },
} as const satisfies Schema;

export const RUN_SCHEMA = {
  seqLen: { ...count, default: 8192, doc: "sequence length, tokens" },
  batchTokens: { ...count, default: 16777216, doc: "global batch a step, tokens (the paper's 16M)" },
} as const satisfies Schema;

export const LAYOUT_SCHEMA = {
  tp: { ...count, doc: "tensor-parallel size (inside a server)" },
  cp: { ...count, default: 1, doc: "context-parallel size" },
  pp: { ...count, default: 1, doc: "pipeline-parallel size" },
  dp: { ...count, doc: "data-parallel (FSDP) size" },
  microBatch: { ...count, default: 1, doc: "sequences a pipeline micro-batch" },
  virtualStages: { ...count, default: 1, doc: "virtual pipeline stages a rank (interleaved 1F1B's V)" },
  recompute: { type: "boolean", default: false, doc: "full activation recomputation (one more forward)" },
} as const satisfies Schema;

export type Cluster = Infer<typeof CLUSTER_SCHEMA>;
export type Run = Infer<typeof RUN_SCHEMA>;
export type Layout = Infer<typeof LAYOUT_SCHEMA>;

/** The KV heads a TP rank holds: K/tp, or one (replicated) when TP exceeds K. */
export function kvHeadsPerRank(c: LlamaConfig, tp: number): number {
  return Math.max(1, c.numKeyValueHeads / tp);
}

/** Micro-batches a pipeline runs a step: global sequences / DP / micro-batch. */
export function microBatches(run: Run, l: Layout): number {
  return run.batchTokens / run.seqLen / l.dp / l.microBatch;
}

/** Transformer-layer slots of a pipeline: the layers plus the embedding and output chunks (spec §8.2). */
export const pipelineSlots = (c: LlamaConfig) => c.numHiddenLayers + 2;

/** The problems of `l` for model `c` on `cluster` for `run` ([] when it can run). */
export function layoutProblems(c: LlamaConfig, cluster: Cluster, run: Run, l: Layout): Problem[] {
  const p: Problem[] = [];
  const H = c.numAttentionHeads;
  const K = c.numKeyValueHeads;
  if (H % l.tp !== 0) p.push({ path: "tp", why: `must divide the ${H} attention heads, got ${l.tp}` });
  else if (K % l.tp !== 0 && l.tp % K !== 0)
    p.push({ path: "tp", why: `must divide the ${K} KV heads or be a multiple of them, got ${l.tp}` });
  if (l.tp > cluster.gpusPerNode || cluster.gpusPerNode % l.tp !== 0)
    p.push({ path: "tp", why: `must divide the ${cluster.gpusPerNode} GPUs of a server, got ${l.tp}` });
  if (run.seqLen % (2 * l.cp) !== 0)
    p.push({
      path: "cp",
      why: `must split the ${run.seqLen}-token sequence into 2·CP equal chunks, got ${l.cp}`,
    });
  if (l.pp > c.numHiddenLayers)
    p.push({ path: "pp", why: `must be at most the ${c.numHiddenLayers} layers, got ${l.pp}` });
  if (l.pp * l.virtualStages > pipelineSlots(c))
    p.push({
      path: "virtualStages",
      why: `PP·V must be at most the ${pipelineSlots(c)} layer slots, got ${l.pp * l.virtualStages}`,
    });
  if (l.pp === 1 && l.virtualStages !== 1)
    p.push({ path: "virtualStages", why: `must be 1 without pipeline parallelism, got ${l.virtualStages}` });
  const product = l.tp * l.cp * l.pp * l.dp;
  if (product !== cluster.gpus)
    p.push({ path: "dp", why: `TP·CP·PP·DP = ${product} must equal the cluster's ${cluster.gpus} GPUs` });
  if (run.batchTokens % run.seqLen !== 0)
    p.push({
      path: "batchTokens",
      why: `must be whole sequences of ${run.seqLen} tokens, got ${run.batchTokens}`,
    });
  else if (!Number.isInteger(microBatches(run, l)))
    p.push({
      path: "microBatch",
      why: `DP × micro-batch (${l.dp} × ${l.microBatch}) must divide the ${run.batchTokens / run.seqLen} sequences of the batch`,
    });
  return p;
}

/** Throw a SchemaError naming `source` and each bad field of the layout. */
export function checkLayout(c: LlamaConfig, cluster: Cluster, run: Run, l: Layout, source = "layout"): void {
  const p = layoutProblems(c, cluster, run, l);
  if (p.length > 0) throw new SchemaError(source, p);
}
