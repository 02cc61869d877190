// The model as a whole: a real trained checkpoint (stories260K) generates its known story, checkpoints
// written by herd read back identically, bad weights fail with errors naming the file and tensor, and a
// freshly initialised preset trains.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { generate, PieceVocab } from "../../src/generate/index.js";
import { readHFCheckpoint, readSafetensors } from "../../src/model/checkpoint/index.js";
import {
  fromHFConfig,
  initWeights,
  KVCache,
  Llama,
  loadModel,
  paramCount,
  preset,
  readConfig,
  saveModel,
  toHFConfig,
} from "../../src/model/index.js";
import { AdamW, backward, fromArray, linear, noGrad, scope } from "../../src/tensor/index.js";
import { repoPath } from "../helpers.js";

const stories = repoPath("test", "fixtures", "stories260K");
const tinyScaled = repoPath("test", "fixtures", "reference", "tiny-scaled");

test("stories260K generates the expected greedy tokens and text from BOS", async () => {
  const exp = JSON.parse(readFileSync(join(stories, "expected.json"), "utf8"));
  const m = await loadModel(stories);
  const codec = PieceVocab.fromFile(join(stories, "vocab.json"));
  let streamed = "";
  const r = generate(m, exp.prompt_ids, {
    temperature: 0,
    maxNewTokens: exp.greedy_new_tokens.length,
    codec,
    onText: (t) => {
      streamed += t;
    },
  });
  assert.deepEqual(r.tokens, exp.greedy_new_tokens);
  assert.equal(r.text, exp.greedy_text);
  assert.equal(streamed, exp.greedy_text);
  assert.equal(codec.decode([1, ...r.tokens]), exp.greedy_text);
  // A stop string cuts the text and ends generation early.
  const cut = generate(m, exp.prompt_ids, {
    maxNewTokens: 100,
    temperature: 0,
    codec,
    stopStrings: ["Lily."],
  });
  assert.equal(cut.finishReason, "stop_string");
  assert.equal(cut.text, exp.greedy_text.slice(0, exp.greedy_text.indexOf("Lily.")));
  m.dispose();
});

test("a checkpoint herd writes reads back identically (f32, bf16, sharded)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "herd-model-"));
  try {
    const m = await loadModel(tinyScaled);
    await saveModel(join(dir, "f32"), m);
    const back = await loadModel(join(dir, "f32"));
    assert.deepEqual(back.config, m.config);
    for (const [name, t] of m.weights) assert.deepEqual(back.weights.get(name)!.toArray(), t.toArray(), name);
    // Exactly HF's config keys and tensor names.
    const cfg = JSON.parse(readFileSync(join(dir, "f32", "config.json"), "utf8"));
    assert.deepEqual(cfg, toHFConfig(m.config, "f32"));
    const ref = await readHFCheckpoint(tinyScaled);
    const ours = await readHFCheckpoint(join(dir, "f32"));
    assert.deepEqual([...ours.tensors.keys()].sort(), [...ref.tensors.keys()].sort());

    await saveModel(join(dir, "bf16"), m, { dtype: "bf16", maxShardBytes: 40_000 });
    assert.ok(readdirSync(join(dir, "bf16")).includes("model.safetensors.index.json"), "sharded");
    const bf = await loadModel(join(dir, "bf16"), { dtype: "keep" });
    assert.equal(bf.dtype, "bf16");
    // Rounding our f32 weights to bf16 gives the reference's own bf16 file.
    const refBits = await readSafetensors(join(tinyScaled, "model-bf16.safetensors"), { dtype: "keep" });
    for (const [name, t] of bf.weights) {
      const r = refBits.get(name)!;
      if (t.dtype === "bf16") assert.deepEqual(t.halfBits, r.halfBits, name);
      else assert.deepEqual(t.toArray(), r.toArray(), name);
    }
    for (const x of [m, back, bf]) x.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("missing, misshapen and unknown tensors fail naming the source and the tensor", async () => {
  const { config, tensors } = await readHFCheckpoint(tinyScaled);
  const c = fromHFConfig(config);
  const src = "tiny/model.safetensors";
  const without = new Map(tensors);
  without.delete("model.layers.1.mlp.up_proj.weight");
  assert.throws(
    () => new Llama(c, without, src),
    /tiny\/model\.safetensors: tensor 'model\.layers\.1\.mlp\.up_proj\.weight' is missing/,
  );
  const wrong = new Map(tensors);
  wrong.set("model.norm.weight", fromArray(new Float32Array(63), [63]));
  assert.throws(
    () => new Llama(c, wrong, src),
    /tensor 'model\.norm\.weight' has shape \[63\], the config needs \[64\]/,
  );
  const extra = new Map(tensors);
  extra.set("model.layers.9.mlp.up_proj.weight", fromArray([1], [1]));
  assert.throws(
    () => new Llama(c, extra, src),
    /tensor 'model\.layers\.9\.mlp\.up_proj\.weight' is not a weight/,
  );
  // A config that disagrees with the file: the first tensor it mismatches is named.
  assert.throws(
    () => new Llama({ ...c, intermediateSize: 256 }, tensors, src),
    /tensor 'model\.layers\.0\.mlp\.gate_proj\.weight' has shape \[224,64\], the config needs \[256,64\]/,
  );
  await assert.rejects(loadModel(repoPath("test", "fixtures")), /no config\.json .* or params\.json/);
});

test("bf16 weights are frozen: training them or recording a gradient for them is an error", async () => {
  const file = join(tinyScaled, "model-bf16.safetensors");
  const m = new Llama(readConfig(tinyScaled), await readSafetensors(file, { dtype: "keep" }), file);
  assert.throws(() => m.trainable(), /is bf16; load the checkpoint as f32 to train/);
  const x = fromArray(new Float32Array(64), [1, 64]);
  const w = m.weights.get("model.layers.0.mlp.gate_proj.weight")!;
  w.requiresGrad = true;
  assert.throws(
    () => linear(x, w),
    /weight 'model\.layers\.0\.mlp\.gate_proj\.weight' is bf16 and requires a gradient/,
  );
  w.requiresGrad = false;
  const f = (await loadModel(tinyScaled)).trainable();
  const cache = new KVCache(f.config);
  assert.throws(() => f.forward(Int32Array.of(1, 2), { cache }), /KV cache is for inference/);
  cache.dispose();
  for (const z of [m, f]) z.dispose();
});

test("the tiny preset initialises reproducibly and learns a fixed batch", () => {
  const c = preset("tiny");
  const a = initWeights(c, { seed: 3 });
  const b = initWeights(c, { seed: 3 });
  let n = 0;
  for (const [name, t] of a) {
    assert.deepEqual(t.toArray(), b.get(name)!.toArray(), name);
    n += t.size;
  }
  assert.equal(n, paramCount(c));
  const m = new Llama(c, a, "init");
  const emb = m.weights.get("model.embed_tokens.weight")!.toArray();
  let ss = 0;
  for (const v of emb) ss += v * v;
  const std = Math.sqrt(ss / emb.length);
  assert.ok(Math.abs(std - 0.02) < 0.001, `embedding std ${std}`);
  const T = 32;
  const ids = Int32Array.from({ length: 2 * T }, (_, i) => (i * 7 + 3) % c.vocabSize);
  const targets = Int32Array.from({ length: 2 * T }, (_, i) => (i % T === T - 1 ? -100 : ids[i + 1]!));
  const opt = new AdamW(m.parameters(), { lr: 3e-3 });
  const losses: number[] = [];
  for (let step = 0; step < 8; step++)
    scope(() => {
      const loss = m.loss(ids, targets, { batch: 2 });
      losses.push(loss.item());
      backward(loss);
      opt.update();
      opt.zeroGrad();
    });
  assert.ok(Math.abs(losses[0]! - Math.log(c.vocabSize)) < 0.1, `initial loss ${losses[0]} ≈ ln V`);
  assert.ok(losses.at(-1)! < losses[0]! - 1, `loss went from ${losses[0]} to ${losses.at(-1)}`);
  // Logits of "last" equal the last row of a full forward.
  const full = noGrad(() => scope(() => m.forward(ids, { batch: 2 }).toArray()));
  const last = noGrad(() => scope(() => m.forward(ids, { batch: 2, logits: "last" }).toArray()));
  const V = c.vocabSize;
  assert.deepEqual(last.subarray(0, V), full.subarray((T - 1) * V, T * V));
  assert.deepEqual(last.subarray(V), full.subarray((2 * T - 1) * V, 2 * T * V));
  m.dispose();
});
