// SFT: the step's gradient is the same whether its rows go through as one batch or as two
// micro-batches (the loss is normalised over the whole step), a packed row gives each dialog the loss it
// has alone (document mask + position restarts), a step without supervised tokens is an error, and a
// short run lowers the loss and resumes to the same weights as an uninterrupted one.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { validate } from "../../src/core/schema.js";
import { SFT_SCHEMA } from "../../src/posttrain/config.js";
import type { SftExample } from "../../src/posttrain/data.js";
import { pack } from "../../src/posttrain/pack.js";
import { packExamples, sft, sftEvaluate, sftStep } from "../../src/posttrain/sft.js";
import { maxRelError } from "../helpers.js";
import { tempDir, tinyModel } from "./fixture.js";

function example(line: number, n: number, seed: number): SftExample {
  const ids = Int32Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) % 500);
  const supervised = Uint8Array.from({ length: n }, (_, i) => (i >= n / 2 ? 1 : 0));
  return { line, ids, supervised };
}

const data = [example(1, 10, 1), example(2, 14, 2), example(3, 9, 3), example(4, 20, 4), example(5, 12, 5)];

function grads(model: ReturnType<typeof tinyModel>): Float32Array[] {
  return model.parameters().map((p) => Float32Array.from(p.grad!.data));
}

test("accumulation over 2 micro-batches equals one batch", () => {
  const model = tinyModel();
  model.trainable();
  const rows = [[data[0]!, data[1]!], [data[2]!], [data[3]!, data[4]!]];
  const one = sftStep(model, [packExamples(rows, 40)]);
  const g1 = grads(model);
  for (const p of model.parameters()) p.grad = null;
  const two = sftStep(model, [packExamples(rows.slice(0, 1), 40), packExamples(rows.slice(1), 40)]);
  const g2 = grads(model);
  assert.ok(Math.abs(one.loss - two.loss) < 1e-5, `${one.loss} vs ${two.loss}`);
  assert.equal(one.supervised, two.supervised);
  g1.forEach((g, i) => {
    assert.ok(maxRelError(g2[i]!, g, 1e-3) < 1e-3, `parameter ${i}`);
  });
  model.dispose();
});

test("a packed row gives each dialog its own loss", () => {
  const model = tinyModel();
  const alone = data.slice(0, 2).map((e) => sftEvaluate(model, [e], 40));
  const packed = sftEvaluate(model, data.slice(0, 2), 40);
  const want =
    (alone[0]!.loss * alone[0]!.supervisedTokens + alone[1]!.loss * alone[1]!.supervisedTokens) /
    packed.supervisedTokens;
  assert.ok(Math.abs(packed.loss - want) < 1e-4, `${packed.loss} vs ${want}`);
  model.dispose();
});

test("zero supervised tokens in a step is an error", () => {
  const model = tinyModel();
  model.trainable();
  const none = pack([{ ids: Int32Array.of(1, 2, 3), trained: new Uint8Array(3) }], 8);
  assert.throws(() => sftStep(model, [none]), /zero supervised tokens/);
  model.dispose();
});

test("training lowers the loss; a resumed run ends on the same weights", async () => {
  const dir = tempDir();
  const cfg = {
    ...validate(SFT_SCHEMA, { epochs: 10, batch: 2, "micro-batch": 1, "checkpoint-every": 3 }, "test"),
    lr: 1e-2,
    "seq-len": 40,
  };
  const a = tinyModel();
  const before = sftEvaluate(a, data, 40).loss;
  const full = await sft({ runDir: join(dir, "a"), model: a, data, cfg });
  const after = sftEvaluate(a, data, 40).loss;
  assert.ok(after < before * 0.8, `${before} → ${after}`);
  // The same run killed during step 7 (checkpoint at 6), then resumed.
  const b = tinyModel();
  const kill = (m: { step: number }) => {
    if (m.step === 7) throw new Error("killed");
  };
  await assert.rejects(sft({ runDir: join(dir, "b"), model: b, data, cfg }, { onStep: kill }), /killed/);
  const c = tinyModel();
  const res = await sft({ runDir: join(dir, "b"), model: c, data, cfg });
  assert.equal(res.history.length, full.history.length - 6);
  assert.equal(res.resumedFrom, 6);
  for (const [name, t] of a.weights)
    assert.ok(maxRelError(c.weights.get(name)!.data, t.data, 1e-4) < 1e-4, name);
  for (const m of [a, b, c]) m.dispose();
});
