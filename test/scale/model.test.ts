// The planner's memory and time models against hand computations for a small config, every product
// written out step by step (the arithmetic here is independent of src/scale/: only the formulas stated in
// memory.ts's and time.ts's headers), and the bad-input rules of a layout, each error naming its field.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { SchemaError } from "../../src/core/schema.js";
import type { LlamaConfig } from "../../src/model/config.js";
import { preset } from "../../src/model/presets.js";
import { type Cluster, checkLayout, type Layout, type Run } from "../../src/scale/config.js";
import type { Calibration } from "../../src/scale/constants.js";
import { memoryPerGpu } from "../../src/scale/memory.js";
import { stepTime } from "../../src/scale/time.js";

/** d 64, 4 layers, 4 heads of 16, 2 KV heads, FFN 128, vocabulary 256, untied. */
const MODEL: LlamaConfig = {
  ...preset("tiny"),
  hiddenSize: 64,
  numHiddenLayers: 4,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  headDim: 16,
  intermediateSize: 128,
  vocabSize: 256,
  tieWordEmbeddings: false,
};
const CLUSTER: Cluster = {
  gpus: 16,
  gpusPerNode: 4,
  memory: 1,
  peakTflops: 1,
  intraNodeBandwidth: 100,
  interNodeBandwidth: 10,
  storageBandwidth: 1,
};
const RUN: Run = { seqLen: 32, batchTokens: 128 }; // 4 sequences
const LAYOUT: Layout = { tp: 2, cp: 2, pp: 2, dp: 2, microBatch: 1, virtualStages: 1, recompute: false };
const CAL: Calibration = {
  matmulEfficiency: 0.5,
  commEfficiency: 1,
  tpOverlap: 0,
  cpOverlap: 0,
  ppOverlap: 1,
  dpOverlap: 0.9,
  memoryReserveGiB: 0,
};

test("memory per GPU of a small layout, by hand", () => {
  // Parameters: a layer's attention 2·64·64 + 2·64·(2·16) = 8192 + 4096 = 12288, FFN 3·64·128 = 24576,
  // norms 2·64 = 128 → 36992; 4 layers 147968; embedding and head 2·256·64 = 32768; final norm 64.
  const params = 147968 + 32768 + 64; // 180800
  const perGpu = params / (2 * 2); // over TP·PP: 45200
  const weights = perGpu * 2; // bf16: 90400
  const gradients = perGpu * 4; // fp32: 180800
  const optimizer = (perGpu * 12) / 2; // fp32 master + m + v over DP 2: 271200
  // Activations a token and layer on one TP rank: norm inputs 2·64/2 = 64, Q 64/2 = 32, K and V one KV
  // head each 2·16 = 32, attention output 32, gate and up 2·128/2 = 128 → 288 bf16 = 576 bytes, plus
  // the softmax statistics 4 bytes · 4 heads / 2 = 8 → 584.
  const perToken = 576 + 8;
  const tokens = 32 / 2; // a micro-batch's sequence over CP: 16
  const perLayer = tokens * perToken; // 9344
  // Slots 4 + 2 = 6 over PP 2: 3 a rank; the first stage holds the embedding and 2 layers.
  // In flight on it (V = 1): min(PP, M) = min(2, 4 / 2 / 1 = 2) = 2 micro-batches.
  const activations = 2 * 2 * perLayer; // 37376
  const kvGather = 2 * 32 * (2 * 1 * 16 * 2); // K,V and dK,dV of the whole sequence: 4096
  const logits = (tokens * 256 * 6) / 2; // 12288
  const m = memoryPerGpu(MODEL, CLUSTER, RUN, LAYOUT, CAL);
  assert.equal(m.paramsPerGpu, 45200);
  assert.deepEqual(
    [m.weights, m.gradients, m.optimizer, m.activationsPerLayer, m.layersFirstStage, m.inFlight],
    [weights, gradients, optimizer, perLayer, 2, 2],
  );
  assert.deepEqual([m.activations, m.kvGather, m.logits], [activations, kvGather, logits]);
  assert.equal(m.total, 90400 + 180800 + 271200 + 37376 + 4096 + 12288);
  assert.equal(m.limit, 2 ** 30);
  assert.equal(m.fits, true);

  // Recomputation keeps only each layer's input (64/2 · 2 bytes = 64 a token), plus one layer in full.
  const r = memoryPerGpu(MODEL, CLUSTER, RUN, { ...LAYOUT, recompute: true }, CAL);
  assert.equal(r.activationsPerLayer, 16 * 64);
  assert.equal(r.activations, 2 * 2 * 16 * 64 + perLayer);
});

test("time per step of a small layout, by hand", () => {
  // Model FLOPs a token: 6·N + 12·L·H·h_d·T, N = 4·(12288 + 24576) + 256·64 = 163840 multiplied weights.
  const perToken = 6 * 163840 + 12 * 4 * 4 * 16 * 32; // 1081344
  const perGpu = (perToken * 128) / 16;
  const compute = (perGpu * ((3 * 2) / 4)) / (1e12 * 0.5); // busiest stage 3 layers · PP 2 / 4 layers = 1.5
  // TP (2 ranks, inside a server of 4): 8 collectives × ½ × 16 tokens × 64 × 2 bytes, 3 layers × 2 micro-batches.
  const tp = (3 * 2 * 8 * (0.5 * 16 * 64 * 2)) / 100e9;
  // CP (2 ranks 2 apart: 4 GPUs, inside): 3 collectives × ½ × 32 tokens × K,V of one head (2·16·2 bytes).
  const cp = (3 * 2 * 3 * (0.5 * 32 * 64)) / 100e9;
  // PP (2 ranks 4 apart: over the network): a send is 16 tokens × 64 × 2 bytes / TP 2; hidden but the
  // 2·(PP−1) of fill and drain.
  const send = (16 * 64 * 2) / 2 / 10e9;
  const pp = 2 * 1 * send;
  const bubble = (1 / (2 * 1)) * (compute + tp + cp); // (PP−1)/(M·V), M = 2
  // DP (2 ranks 8 apart, over the network): ½ × 45200 parameters × (2 + 4) bytes, 10% exposed.
  const dpComm = (0.5 * 45200 * 6) / 10e9;
  const dp = 0.1 * dpComm;
  const t = stepTime(MODEL, CLUSTER, RUN, LAYOUT, CAL);
  const close = (a: number, b: number, what: string) =>
    assert.ok(Math.abs(a - b) <= 1e-12 * Math.abs(b), `${what}: ${a} vs ${b}`);
  close(t.compute, compute, "compute");
  close(t.tp, tp, "tp");
  close(t.cp, cp, "cp");
  close(t.pp, pp, "pp");
  close(t.bubble, bubble, "bubble");
  close(t.dp, dp, "dp");
  close(t.comm.dp, dpComm, "dp alone");
  const step = compute + tp + cp + pp + bubble + dp;
  close(t.step, step, "step");
  close(t.tokensPerSecond, 128 / step, "tokens/s");
  close(t.tflopsPerGpu, perGpu / step / 1e12, "TFLOPs/GPU");
  close(t.mfu, perGpu / step / 1e12 / 1, "MFU");
  // Recomputation: one more forward (×4/3) and 12 TP, 4 CP collectives instead of 8 and 3.
  const r = stepTime(MODEL, CLUSTER, RUN, { ...LAYOUT, recompute: true }, CAL);
  close(r.compute, (compute * 4) / 3, "recompute");
  close(r.comm.tp, (tp * 12) / 8, "recompute TP");
  close(r.comm.cp, (cp * 4) / 3, "recompute CP");
});

function problem(l: Partial<Layout>, run: Partial<Run> = {}, model = MODEL): string {
  try {
    checkLayout(model, CLUSTER, { ...RUN, ...run }, { ...LAYOUT, ...l });
  } catch (e) {
    return (e as SchemaError).message;
  }
  return "";
}

test("bad layouts are refused, naming the field", () => {
  assert.equal(problem({}), "");
  assert.equal(
    problem({ tp: 3 }).split("\n")[0],
    "layout: field 'tp' must divide the 4 attention heads, got 3",
  );
  assert.equal(problem({ dp: 1 }), "layout: field 'dp' TP·CP·PP·DP = 8 must equal the cluster's 16 GPUs");
  const gqa6 = { ...MODEL, numAttentionHeads: 12, numKeyValueHeads: 6 };
  assert.equal(
    problem({ tp: 4, cp: 1 }, {}, gqa6),
    "layout: field 'tp' must divide the 6 KV heads or be a multiple of them, got 4",
  );
  assert.match(
    problem({ cp: 4, tp: 1 }, { seqLen: 4, batchTokens: 16 }),
    /field 'cp' must split the 4-token sequence into 2·CP/,
  );
  assert.match(problem({ pp: 8, cp: 1, tp: 1 }), /field 'pp' must be at most the 4 layers, got 8/);
  assert.match(
    problem({ microBatch: 4 }),
    /field 'microBatch' DP × micro-batch \(2 × 4\) must divide the 4 sequences/,
  );
  assert.match(problem({}, { batchTokens: 100 }), /field 'batchTokens' must be whole sequences of 32 tokens/);
  assert.match(
    problem({ virtualStages: 4 }),
    /field 'virtualStages' PP·V must be at most the 6 layer slots, got 8/,
  );
  // TP across servers: 8 does not divide a server of 4 GPUs.
  assert.match(problem({ tp: 8 }), /field 'tp' must divide the 4 GPUs of a server, got 8/);
});
