// Activation recomputation (tape.ts `checkpoint`, Llama's `recompute`): gradients with recomputation
// equal those without (the same kernels run in the same order, so bit for bit) on the tiny model and on a
// nested composition of ops; nothing leaks; and the high-water mark of backend memory during a training
// step is lower (`peakBytes`); a run with `model.recompute` follows the same losses.
import assert from "node:assert/strict";
import { test } from "node:test";
import { getBackend } from "../../src/backends/index.js";
import { Llama } from "../../src/model/llama.js";
import { preset } from "../../src/model/presets.js";
import { initWeights } from "../../src/model/weights.js";
import {
  backward,
  checkpoint,
  linear,
  mean,
  noGrad,
  parameter,
  peakBytes,
  rmsNorm,
  scope,
  swiglu,
  type Tensor,
  tapeLength,
} from "../../src/tensor/index.js";
import { pretrain } from "../../src/train/trainer.js";
import { randArray } from "../helpers.js";
import { corpusShard, TINY, tempDir, tinyConfig } from "../train/fixture.js";

function tinyModel(): Llama {
  const c = { ...preset("tiny"), ...TINY };
  return new Llama(c, initWeights(c, { seed: 3 }), "tiny").trainable();
}

function batch(T: number, B: number) {
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 37 + 11) % 256);
  const targets = Int32Array.from({ length: B * T }, (_, i) =>
    i % 13 === 5 ? -100 : ids[(i + 1) % ids.length]!,
  );
  const docIds = Int32Array.from({ length: B * T }, (_, i) => Math.floor((i % T) / 20));
  return { ids, targets, docIds };
}

/** Loss, gradients (copied) and the peak backend bytes of one forward+backward. */
function step(model: Llama, recompute: boolean, T = 64, B = 2) {
  const { ids, targets, docIds } = batch(T, B);
  for (const p of model.parameters()) p.grad?.dispose();
  for (const p of model.parameters()) p.grad = null;
  const {
    result: loss,
    peak,
    start,
  } = peakBytes(() =>
    scope(() => {
      const l = model.loss(ids, targets, { batch: B, docIds, recompute });
      const v = l.item();
      backward(l);
      return v;
    }),
  );
  const grads = new Map(model.parameters().map((p) => [p.name, p.grad!.toArray()]));
  return { loss, grads, peak: peak - start };
}

test("recompute: Llama gradients are identical with and without activation recomputation", () => {
  const model = tinyModel();
  const plain = step(model, false);
  const live = getBackend().liveBytes();
  const re = step(model, true);
  assert.equal(re.loss, plain.loss);
  assert.equal(re.grads.size, model.parameters().length);
  for (const [name, g] of plain.grads) {
    const h = re.grads.get(name)!;
    let worst = 0;
    for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i]! - h[i]!));
    assert.ok(worst <= 1e-6, `${name}: max |Δ| ${worst}`);
    assert.ok(
      g.some((v) => v !== 0),
      `${name} has a gradient`,
    );
  }
  assert.deepEqual([...re.grads.values()], [...plain.grads.values()], "bit-identical");
  assert.equal(tapeLength(), 0);
  assert.equal(getBackend().liveBytes(), live, "nothing leaks");
  model.dispose();
});

test("recompute: the high-water mark of a training step drops", () => {
  const model = tinyModel();
  const plain = step(model, false, 128, 2);
  const re = step(model, true, 128, 2);
  // Without recomputation every block keeps its activations until backward; with it, only its input.
  assert.ok(re.peak < plain.peak * 0.8, `peak ${re.peak} B with recomputation vs ${plain.peak} B without`);
  model.dispose();
});

test("recompute: the model option applies only while recording (inference is unchanged)", () => {
  const model = tinyModel();
  model.recompute = true;
  const { ids } = batch(16, 1);
  const a = noGrad(() => scope(() => model.forward(ids).toArray()));
  model.recompute = false;
  const b = noGrad(() => scope(() => model.forward(ids).toArray()));
  assert.deepEqual(a, b);
  assert.equal(tapeLength(), 0);
  model.dispose();
});

test("checkpoint: nested recomputation gives the gradients of the plain composition", () => {
  const d = 8;
  const w1 = parameter(randArray(2 * d * d, 1), [2 * d, d], "w1");
  const w2 = parameter(randArray(2 * d * d, 2), [2 * d, d], "w2");
  const w3 = parameter(randArray(d * 2 * d, 3), [d, 2 * d], "w3");
  const n = parameter(
    randArray(d, 4, 0.5).map((v) => 1 + v),
    [d],
    "n",
  );
  const x = parameter(randArray(5 * d, 5), [5, d], "x");
  const ffn = (h: Tensor) => linear(swiglu(linear(h, w1), linear(h, w2)), w3);
  const block = (h: Tensor) => ffn(rmsNorm(h, n, 1e-5));
  const run = (wrap: boolean): Float32Array[] => {
    for (const p of [w1, w2, w3, n, x]) p.grad?.data.fill(0);
    scope(() => {
      const y = wrap
        ? checkpoint((h) => checkpoint(ffn, [rmsNorm(h, n, 1e-5)], [w1, w2, w3]), [x], [n, w1, w2, w3])
        : block(x);
      backward(mean(wrap ? checkpoint(block, [y], [n, w1, w2, w3]) : block(y)));
    });
    return [w1, w2, w3, n, x].map((p) => p.grad!.toArray());
  };
  const plain = run(false);
  const nested = run(true);
  assert.deepEqual(nested, plain);
  assert.ok(plain.every((g) => g.some((v) => v !== 0)));
  assert.equal(tapeLength(), 0);
  for (const p of [w1, w2, w3, n, x]) p.dispose();
});

test("recompute: pre-training with model.recompute follows the same losses", async () => {
  const dir = tempDir();
  const shard = corpusShard(dir, 8000);
  const losses = async (recompute: boolean) => {
    const cfg = tinyConfig(tempDir(), shard, {
      model: { preset: "tiny", overrides: TINY, recompute },
      stages: [{ kind: "initial", steps: 4, seqLen: 32, batch: 4, microBatch: 2 }],
    });
    const res = await pretrain(cfg);
    assert.equal(res.model.recompute, recompute);
    res.model.dispose();
    return res.history.map((m) => [m.loss, m.gradNorm]);
  };
  assert.deepEqual(await losses(true), await losses(false));
});
