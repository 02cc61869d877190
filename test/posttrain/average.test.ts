// herd average: the weighted element-wise mean of checkpoints (checked against the arithmetic on the
// stored values), dtype preserved (bf16 in, bf16 out), and mismatches named.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { decodeHalf, encodeHalf } from "../../src/io/half.js";
import { readHFCheckpoint } from "../../src/model/checkpoint/hf.js";
import { saveModel } from "../../src/model/load.js";
import { averageModels, normaliseWeights } from "../../src/posttrain/average.js";
import { tempDir, tinyModel } from "./fixture.js";

const dir = tempDir();
const NAME = "model.layers.0.self_attn.q_proj.weight";

test("weighted mean of f32 checkpoints; bf16 stays bf16", async () => {
  const a = tinyModel(1);
  const b = tinyModel(2);
  for (const [m, n] of [
    [a, "a"],
    [b, "b"],
  ] as const) {
    await saveModel(join(dir, n), m, { dtype: "f32" });
    await saveModel(join(dir, `${n}16`), m, { dtype: "bf16" });
  }
  await averageModels([join(dir, "a"), join(dir, "b")], join(dir, "avg"), [1, 3]);
  const avg = (await readHFCheckpoint(join(dir, "avg"))).tensors;
  const x = a.weights.get(NAME)!.data;
  const y = b.weights.get(NAME)!.data;
  const got = avg.get(NAME)!.data;
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(got[i]! - (0.25 * x[i]! + 0.75 * y[i]!)) < 1e-6);

  await averageModels([join(dir, "a16"), join(dir, "b16")], join(dir, "avg16"));
  const half = (await readHFCheckpoint(join(dir, "avg16"), { dtype: "keep" })).tensors.get(NAME)!;
  assert.equal(half.dtype, "bf16");
  const xa = decodeHalf(encodeHalf(x, "bf16"), "bf16");
  const yb = decodeHalf(encodeHalf(y, "bf16"), "bf16");
  const want = encodeHalf(
    Float32Array.from(xa, (v, i) => 0.5 * v + 0.5 * yb[i]!),
    "bf16",
  );
  assert.deepEqual(half.halfBits, want);
  a.dispose();
  b.dispose();
});

test("mismatches name the checkpoint and the tensor or field", async () => {
  await assert.rejects(
    averageModels([join(dir, "a"), join(dir, "b16")], join(dir, "x")),
    /b16: tensor '.*' is bf16 \[.*\], .* has f32/,
  );
  const wide = tinyModel(3);
  await saveModel(join(dir, "c"), wide);
  await assert.rejects(
    averageModels([join(dir, "a"), join(dir, "c"), join(dir, "c")], join(dir, "x"), [1, 2]),
    /3 weights|2 weights for 3/,
  );
  assert.throws(() => normaliseWeights(2, [1, -1]), /≥ 0/);
  wide.dispose();
});
