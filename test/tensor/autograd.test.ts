// The tensor front end and its autograd: gradients of composed ops against finite differences (on every
// backend), matmul's batched and transposed forms, shape errors that name the op and both shapes,
// scopes and deterministic memory release over a thousand training steps.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { backendNames, setBackend } from "../../src/backends/index.js";
import {
  AdamW,
  add,
  attention,
  backward,
  clipGradNorm,
  crossEntropy,
  embedding,
  fromArray,
  linear,
  matmul,
  mean,
  mul,
  noGrad,
  parameter,
  reshape,
  rmsNorm,
  rope,
  scale,
  scope,
  softmax,
  sum,
  swiglu,
  type Tensor,
  tapeLength,
} from "../../src/tensor/index.js";
import { randArray } from "../helpers.js";

/** Finite-difference check of d loss / d p for a few elements of each parameter (f32 forward). */
function checkGrads(params: Tensor[], loss: () => Tensor, picks = 6, h = 1e-2, tol = 2e-2): void {
  for (const p of params) p.grad?.data.fill(0);
  scope(() => backward(loss()));
  for (const p of params) {
    assert.ok(p.grad, `${p} got a gradient`);
    const step = Math.max(1, Math.floor(p.size / picks));
    for (let i = 0; i < p.size; i += step) {
      const keep = p.data[i]!;
      p.data[i] = keep + h;
      const up = noGrad(() => scope(() => loss().item()));
      p.data[i] = keep - h;
      const down = noGrad(() => scope(() => loss().item()));
      p.data[i] = keep;
      const numeric = (up - down) / (2 * h);
      const analytic = p.grad.data[i]!;
      assert.ok(
        Math.abs(analytic - numeric) <= tol * (Math.abs(numeric) + 0.05),
        `${p.name}[${i}]: analytic ${analytic} vs numeric ${numeric}`,
      );
    }
  }
}

/** A two-token-document, one-block Llama-style model built from every op. */
function tinyModel(seed: number) {
  const [vocab, dim, heads, kvHeads, hd, ffn] = [13, 16, 4, 2, 4, 24];
  const P = (shape: number[], name: string, s = 0.3) =>
    parameter(
      randArray(
        shape.reduce((a, b) => a * b),
        seed++,
        s,
      ),
      shape,
      name,
    );
  const params = {
    emb: P([vocab, dim], "emb", 1),
    n1: P([dim], "n1", 1),
    wq: P([heads * hd, dim], "wq"),
    wk: P([kvHeads * hd, dim], "wk"),
    wv: P([kvHeads * hd, dim], "wv"),
    wo: P([dim, heads * hd], "wo"),
    n2: P([dim], "n2", 1),
    wg: P([ffn, dim], "wg"),
    wu: P([ffn, dim], "wu"),
    wd: P([dim, ffn], "wd"),
    out: P([vocab, dim], "out"),
  };
  const [B, T] = [2, 7];
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 3) % vocab);
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i % 4 === 3 ? -100 : (i * 7 + 1) % vocab));
  const docIds = Int32Array.from({ length: B * T }, (_, i) => (i % T < 3 ? 0 : 1));
  const positions = Int32Array.from({ length: B * T }, (_, i) => i % T);
  const invFreq = Float32Array.from({ length: hd / 2 }, (_, i) => 10000 ** (-(2 * i) / hd));
  const forward = (): Tensor => {
    const x = embedding(params.emb, ids, [B, T]);
    const h = rmsNorm(x, params.n1, 1e-5);
    const q = rope(reshape(linear(h, params.wq), [B, T, heads, hd]), positions, invFreq);
    const k = rope(reshape(linear(h, params.wk), [B, T, kvHeads, hd]), positions, invFreq);
    const v = reshape(linear(h, params.wv), [B, T, kvHeads, hd]);
    const a = attention(q, k, v, { causal: true, docIds });
    const x2 = add(x, linear(reshape(a, [B, T, heads * hd]), params.wo));
    const h2 = rmsNorm(x2, params.n2, 1e-5);
    const x3 = add(x2, linear(swiglu(linear(h2, params.wg), linear(h2, params.wu)), params.wd));
    return crossEntropy(linear(x3, params.out), targets);
  };
  return { params: Object.values(params), forward };
}

for (const name of backendNames()) {
  describe(`front end on ${name}`, () => {
    test("a Llama-style block: every parameter's gradient matches finite differences", () => {
      setBackend(name);
      const { params, forward } = tinyModel(1);
      checkGrads(params, forward);
      for (const p of params) p.dispose();
    });

    test("a thousand training steps leave no memory behind", () => {
      setBackend(name);
      const backend = setBackend(name);
      const { params, forward } = tinyModel(2);
      const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
      const losses: number[] = [];
      let baseline = 0;
      for (let step = 0; step < 1000; step++) {
        const loss = scope(() => {
          const l = forward();
          backward(l);
          return l.item();
        });
        clipGradNorm(params, 1);
        opt.update();
        opt.zeroGrad();
        losses.push(loss);
        if (step === 1) baseline = backend.liveBytes();
        if (step > 1) assert.equal(backend.liveBytes(), baseline, `live bytes grew at step ${step}`);
      }
      assert.equal(tapeLength(), 0);
      assert.ok(losses[999]! < losses[0]! * 0.5, `training reduces the loss (${losses[0]} → ${losses[999]})`);
      opt.dispose();
      for (const p of params) p.dispose();
    });
  });
}

test("matmul forms: batched, broadcast, transposed — gradients by finite differences", () => {
  setBackend("js");
  const A = parameter(randArray(2 * 3 * 4, 1), [2, 3, 4], "A");
  const At = parameter(randArray(2 * 4 * 3, 2), [2, 4, 3], "At");
  const W = parameter(randArray(5 * 4, 3), [5, 4], "W");
  const B = parameter(randArray(2 * 4 * 5, 4), [2, 4, 5], "B");
  const M2 = parameter(randArray(3 * 4, 5), [3, 4], "M2");
  const R = fromArray(randArray(2 * 3 * 5, 6), [2, 3, 5]).keep();
  const loss = () =>
    add(
      add(sum(mul(matmul(A, W, { transB: true }), R)), sum(mul(matmul(At, B, { transA: true }), R))),
      add(sum(mul(matmul(M2, B), R)), sum(mul(matmul(At, W, { transA: true, transB: true }), R))),
    );
  checkGrads([A, At, W, B, M2], loss, 24, 1e-2, 1e-2);
  const out = matmul(A, W, { transB: true });
  assert.deepEqual(out.shape, [2, 3, 5]);
});

test("softmax, scale and mean gradients", () => {
  setBackend("js");
  const x = parameter(randArray(12, 9, 2), [3, 4], "x");
  const R = fromArray(randArray(12, 10), [3, 4]).keep();
  checkGrads([x], () => mean(scale(mul(softmax(x), R), 3)), 12);
});

test("errors name the op and both shapes", () => {
  const a = fromArray(randArray(6, 1), [2, 3]);
  const b = fromArray(randArray(8, 2), [4, 2]);
  assert.throws(() => matmul(a, b), /matmul: inner dimensions differ: a \[2,3\] has k=3, b \[4,2\] has k=4/);
  assert.throws(() => add(a, b), /add: shapes differ: \[2,3\] vs \[4,2\]/);
  assert.throws(() => mul(a, reshape(b, [8])), /mul: shapes differ: \[2,3\] vs \[8\]/);
  assert.throws(() => reshape(a, [4]), /reshape: cannot view \[2,3\] \(6\) as \[4\] \(4\)/);
  assert.throws(() => rmsNorm(a, fromArray([1, 2]), 1e-5), /rmsNorm: weight \[2\] does not match x \[2,3\]/);
  assert.throws(() => linear(a, b), /linear: input \[2,3\] has 3 features, weight \[4,2\] expects 2/);
  assert.throws(
    () => embedding(b, Int32Array.from([0, 4])),
    /embedding: id 4 at position 1 is outside the vocabulary \[0, 4\)/,
  );
  assert.throws(
    () => crossEntropy(a, Int32Array.from([0])),
    /crossEntropy: 1 targets for logits \[2,3\] \(2 rows\)/,
  );
  const q = fromArray(randArray(24, 3), [1, 2, 3, 4]);
  const kv = fromArray(randArray(16, 4), [1, 2, 2, 4]);
  assert.throws(() => attention(q, kv, kv), /attention: 3 query heads are not a multiple of 2 KV heads/);
  assert.throws(() => a.toDtype("bf16").data, /data of a bf16 tensor/);
});

test("scopes free what they made, keep what they return; noGrad records nothing", () => {
  const backend = setBackend("js");
  const before = backend.liveBytes();
  const w = parameter(randArray(4, 1), [2, 2], "w");
  const afterParam = backend.liveBytes();
  const kept = scope(() => {
    const x = fromArray([1, 2, 3, 4], [2, 2]);
    const y = matmul(x, w);
    const z = add(y, y);
    return z;
  });
  // z survives (4 floats); x and y are freed. The tape still holds y's inputs until cleared.
  assert.deepEqual(Array.from(kept.shape), [2, 2]);
  backward(sum(kept));
  assert.ok(w.grad);
  kept.dispose();
  assert.equal(backend.liveBytes() - afterParam, 16 + 4, "only w.grad (16 bytes) and sum's scalar remain");
  const s = noGrad(() =>
    scope(() => {
      matmul(fromArray([1, 2], [1, 2]), w);
    }),
  );
  assert.equal(s, undefined);
  assert.equal(tapeLength(), 0);
  w.dispose();
  assert.equal(backend.liveBytes(), before + 4, "only the scalar from sum() outside any scope remains");
});

test("gradients accumulate across backward calls until zeroed", () => {
  setBackend("js");
  const w = parameter([1, 2, 3], [3], "w");
  backward(sum(mul(w, w)));
  backward(sum(mul(w, w)));
  assert.deepEqual(Array.from(w.grad!.data), [4, 8, 12]);
});
