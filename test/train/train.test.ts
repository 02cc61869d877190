// Pre-training on a tiny model (the correctness list): loss falls on a real corpus; the
// document mask changes nothing with one document per sequence and blocks attention across documents
// otherwise; k accumulated micro-batches equal one batch k times the size; averaging two identical
// checkpoints returns the same weights; config errors name the field.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { Llama } from "../../src/model/llama.js";
import { initWeights } from "../../src/model/weights.js";
import { noGrad, scope, untracked, zeros } from "../../src/tensor/index.js";
import { averageCheckpoints, saveCheckpoint } from "../../src/train/checkpoint.js";
import { stageShape } from "../../src/train/config.js";
import { PackedLoader } from "../../src/train/loader.js";
import { PretrainOptimizer } from "../../src/train/optimizer.js";
import { cosineLR, linearToZero } from "../../src/train/schedule.js";
import { learningRate, modelConfig, pretrain, trainStep } from "../../src/train/trainer.js";
import { maxRelError } from "../helpers.js";
import { corpusShard, tempDir, tinyConfig } from "./fixture.js";

function tinyModel(dir: string, shard: string, seed = 1): Llama {
  const mc = modelConfig(tinyConfig(dir, shard));
  return new Llama(mc, initWeights(mc, { seed }), "test");
}

test("pretrain: loss falls on a small real corpus; metrics and final weights written", async () => {
  const dir = tempDir();
  const cfg = tinyConfig(dir, corpusShard(dir), {
    stages: [{ kind: "initial", steps: 30, seqLen: 32, batch: 4 }],
  });
  const res = await pretrain(cfg);
  const losses = res.history.map((m) => m.loss);
  assert.ok(Math.abs(losses[0]! - Math.log(256)) < 0.3, `first loss ${losses[0]} ≈ ln 256`);
  const tail = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  assert.ok(tail < losses[0]! - 1.5, `loss ${losses[0]} → ${tail}`);
  assert.equal(res.history.at(-1)!.tokens, 30 * 4 * 32);
  res.model.dispose();
});

test("document mask: no change with one document per row, no attention across documents", () => {
  const dir = tempDir();
  const m = tinyModel(dir, corpusShard(dir, 2000));
  const T = 24;
  const ids = Int32Array.from({ length: 2 * T }, (_, i) => (i * 37 + 11) % 256);
  const logits = (x: Int32Array, docIds?: Int32Array) =>
    noGrad(() => scope(() => m.forward(x, { batch: 2, ...(docIds ? { docIds } : {}) }).toArray()));
  const plain = logits(ids);
  assert.deepEqual(logits(ids, new Int32Array(2 * T)), plain);
  // Two documents per row: changing the first document leaves the second one's logits unchanged.
  const docs = Int32Array.from({ length: 2 * T }, (_, i) => (i % T < 10 ? 0 : 1));
  const changed = ids.slice();
  for (let i = 0; i < 10; i++) changed[i] = (changed[i]! + 100) % 256;
  const a = logits(ids, docs);
  const b = logits(changed, docs);
  const V = 256;
  const secondDoc = (x: Float32Array) => x.slice(10 * V, T * V);
  assert.deepEqual(secondDoc(b), secondDoc(a));
  // Without the mask the same change does reach the later tokens.
  assert.ok(maxRelError(secondDoc(logits(changed)), secondDoc(plain)) > 1e-4);
  m.dispose();
});

test("gradient accumulation over k micro-batches equals one batch k times the size", () => {
  const dir = tempDir();
  const shard = corpusShard(dir, 20000);
  const loader = new PackedLoader([shard], 32, 3);
  const big = loader.next(4);
  loader.close();
  const micro = [0, 1, 2, 3].map((r) => ({
    ids: big.ids.slice(r * 32, r * 32 + 32),
    targets: big.targets.slice(r * 32, r * 32 + 32),
    docIds: big.docIds.slice(r * 32, r * 32 + 32),
    batch: 1,
    seqLen: 32,
  }));
  const m1 = tinyModel(dir, shard);
  const m2 = tinyModel(dir, shard);
  const o1 = new PretrainOptimizer(m1.parameters());
  const o2 = new PretrainOptimizer(m2.parameters());
  for (let s = 0; s < 3; s++) {
    const a = trainStep(m1, o1, [big], 1e-2);
    const b = trainStep(m2, o2, micro, 1e-2);
    assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `loss ${a.loss} vs ${b.loss}`);
    assert.ok(Math.abs(a.gradNorm - b.gradNorm) / a.gradNorm < 1e-4, `norm ${a.gradNorm} vs ${b.gradNorm}`);
  }
  for (const [name, w] of m1.weights)
    assert.ok(maxRelError(m2.weights.get(name)!.data, w.data, 1e-3) < 1e-3, name);
  // And accumulation is not a no-op: one micro-batch alone gives other weights.
  const m3 = tinyModel(dir, shard);
  const o3 = new PretrainOptimizer(m3.parameters());
  trainStep(m3, o3, [micro[0]!], 1e-2);
  const m4 = tinyModel(dir, shard);
  const o4 = new PretrainOptimizer(m4.parameters());
  trainStep(m4, o4, [big], 1e-2);
  assert.ok(
    maxRelError(m3.weights.get("model.norm.weight")!.data, m4.weights.get("model.norm.weight")!.data) > 1e-6,
  );
  for (const x of [o1, o2, o3, o4]) x.dispose();
  for (const x of [m1, m2, m3, m4]) x.dispose();
});

test("weight decay applies to matrices only", () => {
  const dir = tempDir();
  const m = tinyModel(dir, corpusShard(dir, 2000));
  const opt = new PretrainOptimizer(m.parameters(), {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.5,
    clipNorm: 1,
  });
  // Zero gradients: AdamW moves a parameter only through its decay.
  const before = new Map([...m.weights].map(([n, t]) => [n, t.data.slice()]));
  for (const p of m.parameters()) p.grad = untracked(() => zeros(p.shape));
  opt.update(0.1);
  for (const [name, t] of m.weights) {
    const moved = maxRelError(t.data, before.get(name)!) > 0;
    assert.equal(moved, t.rank >= 2, `${name} (rank ${t.rank}) moved: ${moved}`);
  }
  opt.dispose();
  m.dispose();
});

test("averaging two identical checkpoints returns the same weights", async () => {
  const dir = tempDir();
  const m = tinyModel(dir, corpusShard(dir, 2000), 5);
  const opt = new PretrainOptimizer(m.parameters());
  const state = { step: 1, tokens: 0, loader: { epoch: 0, cursor: 0 }, rng: 1 };
  const a = await saveCheckpoint(join(dir, "a"), m, opt, state, 5);
  const b = await saveCheckpoint(join(dir, "b"), m, opt, state, 5);
  const avg = await averageCheckpoints([a, b]);
  assert.equal(avg.size, m.weights.size);
  for (const [name, w] of m.weights) assert.deepEqual(avg.get(name)!.data, w.data, name);
  opt.dispose();
  m.dispose();
});

test("schedules: warm-up, cosine to the floor, annealing linear to 0 across stages", () => {
  const s = { peak: 1, warmupSteps: 4, decaySteps: 14, floor: 0.1 };
  assert.equal(cosineLR(s, 0), 0.25);
  assert.equal(cosineLR(s, 3), 1);
  assert.ok(Math.abs(cosineLR(s, 9) - 0.55) < 1e-12);
  assert.equal(cosineLR(s, 14), 0.1);
  assert.equal(linearToZero(0.5, 4, 2), 0.25);
  const dir = tempDir();
  const cfg = tinyConfig(dir, corpusShard(dir, 2000), {
    stages: [
      { kind: "initial", steps: 6, seqLen: 16, batch: 2 },
      { kind: "long-context", steps: 4, seqLen: 64, batch: 1 },
      { kind: "annealing", steps: 5, seqLen: 64, batch: 1 },
    ],
  });
  const lrs = Array.from({ length: 15 }, (_, i) => learningRate(cfg, i));
  assert.equal(lrs[0], cfg.schedule.peakLR / 2);
  assert.ok(lrs[6]! < lrs[5]!, "the cosine continues into the long-context stage");
  assert.ok(Math.abs(lrs[9]! - cfg.schedule.floorLR) < 1e-9, "the cosine ends at the floor");
  assert.equal(lrs[10], lrs[9]);
  assert.ok(Math.abs(lrs[14]! - lrs[9]! / 5) < 1e-12, "annealing falls linearly towards 0");
});

test("config: defaults filled in, errors name the field", () => {
  const dir = tempDir();
  const shard = corpusShard(dir, 2000);
  const cfg = tinyConfig(dir, shard);
  assert.deepEqual(cfg.optimizer, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1 });
  assert.equal(cfg.stages[0]!.microBatch, 4);
  assert.throws(
    () => tinyConfig(dir, shard, { stages: [{ steps: 2, seqLen: 8, batch: 4, microBatch: 3 }] }),
    /test-config: field 'stages\[0\]\.microBatch'/,
  );
  assert.throws(() => tinyConfig(dir, shard, { optimizer: { beta2: 2 } }), /field 'optimizer\.beta2'/);
  assert.throws(() => tinyConfig(dir, shard, { shedule: {} }), /field 'shedule' is not a known field/);
  // The run name is one folder under runsDir: it cannot reach outside it.
  for (const name of ["../x", "a/b", "a\\b", "..", ".", ".hidden", "", " x"])
    assert.throws(() => tinyConfig(dir, shard, { name }), /test-config: field 'name' must be/, name);
  // Ramps: thresholds rise, micro-batches default to the stage's tokens per micro-batch, errors name the field.
  const stage = { steps: 4, seqLen: 32, batch: 8, microBatch: 2 };
  const ramp = (r: unknown) => tinyConfig(dir, shard, { stages: [{ ...stage, ramp: r }] }).stages[0]!;
  assert.deepEqual(ramp([{ afterTokens: 100, batch: 16, seqLen: 64 }]).ramp, [
    { afterTokens: 100, batch: 16, seqLen: 64, microBatch: 1 },
  ]);
  const s = ramp([
    { afterTokens: 100, batch: 12, seqLen: 16 },
    { afterTokens: 300, batch: 4, seqLen: 128, microBatch: 4 },
  ]);
  assert.equal(s.ramp[0]!.microBatch, 4, "the largest divisor of 12 holding ≤ 64 tokens of 16");
  assert.deepEqual(stageShape(s, 99), { batch: 8, seqLen: 32, microBatch: 2 });
  assert.deepEqual(stageShape(s, 100), { batch: 12, seqLen: 16, microBatch: 4 });
  assert.deepEqual(stageShape(s, 5000), { batch: 4, seqLen: 128, microBatch: 4 });
  assert.throws(
    () =>
      ramp([
        { afterTokens: 100, batch: 8, seqLen: 8 },
        { afterTokens: 100, batch: 8, seqLen: 8 },
      ]),
    /field 'stages\[0\]\.ramp\[1\]\.afterTokens' \(100\) must be above the previous threshold/,
  );
  assert.throws(
    () => ramp([{ afterTokens: 10, batch: 6, seqLen: 8, microBatch: 4 }]),
    /field 'stages\[0\]\.ramp\[0\]\.microBatch' \(4\) must divide batch \(6\)/,
  );
  assert.throws(
    () => ramp([{ afterTokens: 10, batch: 6 }]),
    /field 'stages\[0\]\.ramp\[0\]\.seqLen' is missing/,
  );
  assert.throws(() => ramp([{ after: 10 }]), /field 'stages\[0\]\.ramp\[0\]\.after' is not a known field/);
  assert.throws(() => ramp({ afterTokens: 1 }), /field 'stages\[0\]\.ramp' must be a list/);
});
