// LoRA on a tiny Llama: PEFT's initialisation (B zero, A kaiming-uniform), the gradients of A, B and the
// inputs by central finite differences on f32, bf16 and Q8_0 bases, disabled() and merge() against the
// unmerged model, target resolution and its errors. (The Q8_0 base's central differences run with the
// native int8-activation path off: it rounds the activations to 8 bits, so the loss it gives is a step
// function of the parameters at the scale of those differences; the gradient is the f32 product's.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { nativeInt8Dot } from "../../src/backends/native/index.js";
import { knob } from "../../src/core/knobs.js";
import { parseCli } from "../../src/core/schema.js";
import {
  applyLora,
  kaimingUniformBound,
  LORA_OPTIONS,
  type Lora,
  loraOptionsFrom,
  resolveTargets,
} from "../../src/posttrain/lora.js";
import {
  backward,
  dequantize,
  fromArray,
  linear,
  matmul,
  mul,
  noGrad,
  QuantTensor,
  quantize,
  scope,
  sum,
  type Tensor,
} from "../../src/tensor/index.js";
import { closeness, randArray, rng } from "../helpers.js";
import { type BaseDtype, ids, logitsOf, lossValue, targets, tinyConfig, tinyModel } from "./loraHelpers.js";

/** Give every B (and A) random values, so that no gradient is zero by construction. */
function randomise(lora: Lora, seed: number): void {
  const r = rng(seed);
  for (const t of lora.parameters()) for (let i = 0; i < t.size; i++) t.data[i] = (r() * 2 - 1) * 0.2;
}

/** Analytic gradients of the batch loss for `params` (zeroed first). */
function gradients(model: ReturnType<typeof tinyModel>, params: Tensor[]): Float32Array[] {
  for (const p of params) p.grad?.data.fill(0);
  scope(() => backward(model.loss(ids, targets, { batch: 2 })));
  return params.map((p) => Float32Array.from(p.grad!.data));
}

/** The derivative of the loss by central differences along a random direction v of tensor p, against grad·v. */
function directional(model: ReturnType<typeof tinyModel>, p: Tensor, grad: Float32Array, seed: number) {
  const v = randArray(p.size, seed);
  const h = 4e-3;
  const keep = Float32Array.from(p.data);
  const at = (s: number) => {
    for (let i = 0; i < p.size; i++) p.data[i] = keep[i]! + s * v[i]!;
    return lossValue(model);
  };
  // Richardson extrapolation of two central differences cancels their h² error.
  const d = (s: number) => (at(s) - at(-s)) / (2 * s);
  const numeric = (4 * d(h / 2) - d(h)) / 3;
  p.data.set(keep);
  let analytic = 0;
  for (let i = 0; i < p.size; i++) analytic += grad[i]! * v[i]!;
  return { numeric, analytic };
}

test("a fresh adapter: B is zero, A is U(−1/√in, 1/√in), and the logits are the base's bit for bit", () => {
  const model = tinyModel("f32");
  const base = logitsOf(model);
  const lora = applyLora(model, { rank: 4, alpha: 8, seed: 3 });
  assert.equal(lora.modules.length, 2 * 7);
  assert.equal(lora.scaling, 2);
  for (const m of lora.modules) {
    const [out, inp] = m.base.shape;
    assert.deepEqual(m.A.shape, [4, inp]);
    assert.deepEqual(m.B.shape, [out, 4]);
    assert.ok(
      m.B.data.every((x) => x === 0),
      `${m.module} B is zero`,
    );
    const bound = 1 / Math.sqrt(inp);
    assert.ok(Math.abs(kaimingUniformBound(inp) - bound) < 1e-12);
    assert.ok(m.A.data.every((x) => Math.abs(x) <= bound));
    // The variance of U(−b, b) is b²/3; with 128+ draws the sample is within 35% of it.
    const variance = m.A.data.reduce((s, x) => s + x * x, 0) / m.A.size;
    assert.ok(Math.abs(variance / ((bound * bound) / 3) - 1) < 0.35, `${m.module} variance ${variance}`);
  }
  assert.deepEqual(logitsOf(model), base);
  assert.ok(
    [...model.weights.values()].every((w) => !w.requiresGrad),
    "the base is frozen",
  );
  assert.equal(lora.parameters().length, 28);
  assert.ok(lora.parameters().every((t) => t.requiresGrad));
});

for (const dtype of ["f32", "bf16", "q8_0"] as BaseDtype[])
  test(`gradients of A and B equal central differences of the loss (${dtype} base)`, (t) => {
    if (dtype === "q8_0") nativeInt8Dot(false);
    t.after(() => nativeInt8Dot(knob("HERD_NATIVE_INT8_DOT")));
    const model = tinyModel(dtype);
    const lora = applyLora(model, { rank: 3, alpha: 6, seed: 1 });
    randomise(lora, 11);
    // A of layer 0 reaches the loss through every frozen matrix after it: its gradient checks the
    // input gradients through the base (bf16 / Q8_0 kernels) too.
    const picks = [0, 1, 4, 5, 12, 13, 26, 27].map((i) => lora.parameters()[i]!);
    const grads = gradients(model, picks);
    picks.forEach((p, i) => {
      const { numeric, analytic } = directional(model, p, grads[i]!, 100 + i);
      // The loss is computed in f32 (about 1e-7 relative): the differences carry ~1e-4 of noise.
      const err = Math.abs(numeric - analytic) / (1e-4 + 2e-3 * Math.abs(analytic));
      assert.ok(err <= 1, `${dtype} ${p.name}: analytic ${analytic}, numeric ${numeric}`);
    });
  });

test("the input gradient through the base and the adapter equals central differences (f32 base, trainable embedding)", () => {
  const model = tinyModel("f32");
  const lora = applyLora(model, { rank: 2, alpha: 4, targets: ["q_proj", "v_proj", "down_proj"] });
  randomise(lora, 5);
  const embed = model.weights.get("model.embed_tokens.weight")!;
  embed.requiresGrad = true;
  const [g] = gradients(model, [embed]);
  const { numeric, analytic } = directional(model, embed, g!, 7);
  assert.ok(
    Math.abs(numeric - analytic) / Math.abs(analytic) < 2e-2,
    `analytic ${analytic}, numeric ${numeric}`,
  );
});

for (const dtype of ["bf16", "q8_0", "q4_0"] as BaseDtype[])
  test(`one adapted ${dtype} layer: dx, dA and dB equal the f32 computation on the widened weight`, () => {
    const model = tinyModel(dtype);
    const lora = applyLora(model, { rank: 4, alpha: 4, targets: ["model.layers.1.mlp.up_proj"] });
    randomise(lora, 9);
    const m = lora.modules[0]!;
    assert.equal(lora.modules.length, 1);
    const wide = m.base instanceof QuantTensor ? dequantize(m.base).keep() : m.base.toF32().keep();
    const X = randArray(5 * 32, 2);
    const R = randArray(5 * 64, 3);
    const run = (w: Tensor | QuantTensor) =>
      scope(() => {
        const x = fromArray(X, [5, 32]);
        x.requiresGrad = true;
        for (const p of lora.parameters()) p.grad?.data.fill(0);
        const y = model.adapters
          .get("model.layers.1.mlp.up_proj.weight")!
          .apply(x, linear(x, w), { training: true, index: 0 });
        const loss = sum(mul(y, fromArray(R, [5, 64])));
        backward(loss);
        return [x.grad!.toArray(), m.A.grad!.toArray(), m.B.grad!.toArray()].map((a) => Float32Array.from(a));
      });
    const got = run(m.base);
    const want = run(wide);
    for (const [i, name] of ["dx", "dA", "dB"].entries())
      assert.ok(closeness(got[i]!, want[i]!, 1e-5, 1e-5) <= 1, `${dtype} ${name}`);
    // dx by hand: R·W + scaling·(R·B)·A.
    const hand = noGrad(() =>
      scope(() => {
        const r = fromArray(R, [5, 64]);
        const base = matmul(r, wide);
        const viaB = matmul(matmul(r, m.B), m.A).toArray();
        return Float32Array.from(base.toArray(), (v, i) => v + lora.scaling * viaB[i]!);
      }),
    );
    assert.ok(closeness(got[0]!, hand, 1e-5, 1e-5) <= 1, `${dtype} dx by hand`);
    wide.dispose();
  });

test("disabled() runs the base alone; dropout only while training and recording", () => {
  const model = tinyModel("bf16");
  const base = logitsOf(model);
  const lora = applyLora(model, { rank: 2, alpha: 2, dropout: 0.5 });
  randomise(lora, 4);
  const adapted = logitsOf(model);
  assert.ok(
    adapted.some((v, i) => v !== base[i]),
    "the adapter changes the logits",
  );
  assert.deepEqual(
    lora.disabled(() => logitsOf(model)),
    base,
  );
  assert.deepEqual(logitsOf(model), adapted, "switched back on after disabled()");
  // Under noGrad (evaluation) dropout is off: the same logits twice; recording, it draws masks.
  assert.deepEqual(logitsOf(model), adapted);
  const recorded = () => scope(() => Float32Array.from(model.forward(ids, { batch: 2 }).toArray()));
  const a = recorded();
  const b = recorded();
  assert.ok(
    a.some((v, i) => v !== b[i]),
    "two training forwards draw different dropout masks",
  );
  lora.training = false;
  assert.deepEqual(recorded(), adapted);
});

test("dropout under activation recomputation draws the same masks again: the same gradients as without", () => {
  const grads = (recompute: boolean) => {
    const model = tinyModel("bf16");
    model.recompute = recompute;
    const lora = applyLora(model, { rank: 2, alpha: 4, dropout: 0.3, seed: 8 });
    randomise(lora, 12);
    gradients(model, lora.parameters()); // a first step, so the masks are not the first forward's only
    return gradients(model, lora.parameters());
  };
  const plain = grads(false);
  const recomputed = grads(true);
  for (const [i, g] of plain.entries())
    assert.ok(closeness(recomputed[i]!, g, 1e-5, 1e-7) <= 1, `parameter ${i}`);
});

test("merge() folds B·A·scaling into the base: the same logits as base + adapter", () => {
  for (const dtype of ["f32", "bf16", "q8_0"] as BaseDtype[]) {
    const model = tinyModel(dtype);
    const lora = applyLora(model, {
      rank: 4,
      alpha: 8,
      targets: ["q_proj", "o_proj", "gate_proj", "down_proj"],
    });
    randomise(lora, 21);
    // The merged weights by hand, from the f32 product of B and A, rounded to the base's dtype.
    const want = new Map<string, Float32Array>();
    for (const m of lora.modules) {
      const wide = noGrad(() => (m.base instanceof QuantTensor ? dequantize(m.base) : m.base.toF32()).keep());
      const ba = noGrad(() => matmul(m.B, m.A).keep());
      const sum = Float32Array.from(wide.data, (v, i) => v + lora.scaling * ba.data[i]!);
      const rounded = noGrad(() => {
        const t = fromArray(sum, m.base.shape);
        if (dtype === "f32") return sum;
        if (dtype === "bf16") return Float32Array.from(t.toDtype("bf16").toF32().data);
        return Float32Array.from(dequantize(quantize(t, dtype)).data);
      });
      want.set(`${m.module}.weight`, rounded);
      wide.dispose();
      ba.dispose();
    }
    const unmerged = logitsOf(model);
    const modules = lora.modules.map((m) => m.module);
    lora.merge();
    assert.equal(model.adapters.size, 0);
    assert.throws(() => lora.merge(), /already merged or removed/);
    for (const name of modules.map((m) => `${m}.weight`)) {
      const w = model.matrix(name)!;
      const got = noGrad(() => (w instanceof QuantTensor ? dequantize(w) : w.toF32()).data);
      assert.ok(closeness(got, want.get(name)!, 1e-6, 1e-7) <= 1, `${dtype} ${name} merged`);
    }
    // Tolerance: f32 merges change only the order of the sums (1e-4); bf16 and Q8_0 round W + ΔW to
    // their grid (bf16: 2^-9 of each weight; Q8_0: half a step of amax/127 per block), a few % here.
    const tol = dtype === "f32" ? 1e-5 : 1e-2;
    const c = closeness(logitsOf(model), unmerged, tol, tol);
    assert.ok(c <= 1, `${dtype}: merged logits are ${c}× the tolerance from base + adapter`);
  }
});

test("targets: PEFT's suffix matching, patterns, all-linear; a target that names no module is an error", () => {
  const L = tinyConfig.numHiddenLayers;
  assert.equal(resolveTargets("all-linear", L).length, 14);
  assert.deepEqual(
    resolveTargets(["v_proj", "q_proj"], L).map((m) => m.module),
    [
      "model.layers.0.self_attn.q_proj",
      "model.layers.0.self_attn.v_proj",
      "model.layers.1.self_attn.q_proj",
      "model.layers.1.self_attn.v_proj",
    ],
  );
  assert.deepEqual(
    resolveTargets(["model.layers.1.mlp.down_proj"], L).map((m) => m.module),
    ["model.layers.1.mlp.down_proj"],
  );
  assert.deepEqual(
    resolveTargets(".*\\.1\\.self_attn\\.(k|o)_proj", L).map((m) => m.target),
    ["k_proj", "o_proj"],
  );
  assert.throws(
    () => resolveTargets(["q_proj", "qkv_proj"], L),
    /LoRA target 'qkv_proj' names no module of this model; the linear modules are q_proj, k_proj/,
  );
  assert.throws(() => resolveTargets(["lm_head"], L), /LoRA target 'lm_head' names no module/);
  assert.throws(() => resolveTargets("q_proj", L), /LoRA target pattern 'q_proj' names no module/);
  assert.throws(() => resolveTargets([], L), /LoRA targets are empty/);
  const model = tinyModel("f32");
  assert.throws(
    () => applyLora(model, { rank: 2, alpha: 2, targets: ["gate"] }),
    /LoRA target 'gate' names no module/,
  );
  assert.throws(() => applyLora(model, { rank: 0, alpha: 2 }), /rank must be an integer ≥ 1, got 0/);
  assert.throws(() => applyLora(model, { rank: 2, alpha: 2, dropout: 1 }), /dropout must be in \[0, 1\)/);
  const lora = applyLora(model, { rank: 2, alpha: 2, targets: ["q_proj"] });
  assert.throws(
    () => applyLora(model, { rank: 2, alpha: 2 }),
    /'model\.layers\.0\.self_attn\.q_proj' already has an adapter/,
  );
  lora.remove();
  assert.equal(model.adapters.size, 0);
  applyLora(model, { rank: 2, alpha: 2 });
});

test("LORA_OPTIONS: --lora and its settings on a command line become LoraOptions", () => {
  const parse = (...argv: string[]) => loraOptionsFrom(parseCli(LORA_OPTIONS, argv).values);
  assert.equal(parse(), null);
  assert.deepEqual(parse("--lora"), { rank: 8, alpha: 16, dropout: 0, targets: "all-linear" });
  assert.deepEqual(
    parse(
      "--lora",
      "--lora-rank",
      "4",
      "--lora-alpha",
      "8",
      "--lora-dropout",
      "0.1",
      "--lora-targets",
      "q_proj,v_proj",
    ),
    { rank: 4, alpha: 8, dropout: 0.1, targets: ["q_proj", "v_proj"] },
  );
  assert.throws(() => parse("--lora", "--lora-rank", "0"), /--lora-rank/);
  assert.throws(() => parse("--lora", "--lora-dropout", "1"), /--lora-dropout/);
});
