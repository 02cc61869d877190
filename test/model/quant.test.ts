// Quantised checkpoints end to end on a real trained model (stories260K): `herd quantize` writes the
// documented file (U8 block bytes equal to quantize() of the source weights, metadata, F32 norms), the
// model loads it and generates the known story greedily from Q8_0 weights, and the bad inputs fail with
// messages naming the file. The perplexity bound is in test/eval/perplexity.test.ts.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { generate } from "../../src/generate/index.js";
import { readSafetensorsHeader, SafetensorsFile } from "../../src/model/checkpoint/index.js";
import { loadModel, quantizeCheckpoint, saveModel } from "../../src/model/index.js";
import { QuantTensor, quantize, quantRowBytes } from "../../src/tensor/index.js";
import { repoPath } from "../helpers.js";

const stories = repoPath("test", "fixtures", "stories260K");
const refTied = repoPath("test", "fixtures", "reference", "tiny-tied");
const cli = repoPath("dist", "src", "cli", "main.js");
const tmp = mkdtempSync(join(tmpdir(), "herd-quant-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("herd quantize writes GGUF block bytes in safetensors, and the Q8_0 model tells stories260K's story", async () => {
  const out = join(tmp, "q8");
  const msg = execFileSync(
    process.execPath,
    [cli, "quantize", "-m", stories, "--out", out, "--format", "q8_0"],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  assert.match(msg, /47 tensors, q8_0, weights 1\.04 MB → 0\.29 MB/);
  const header = await readSafetensorsHeader(join(out, "model.safetensors"));
  assert.equal(header.metadata?.["herd.quantization"], "q8_0");
  const emb = header.entries.get("model.embed_tokens.weight")!;
  assert.deepEqual([emb.dtype, emb.shape], ["U8", [512, 2 * 34]]);
  // intermediate 172 is not a multiple of 32: down_proj rows are 6 blocks, the last zero-padded.
  const down = header.entries.get("model.layers.0.mlp.down_proj.weight")!;
  assert.deepEqual(down.shape, [64, quantRowBytes("q8_0", 172)]);
  assert.equal(header.entries.get("model.norm.weight")!.dtype, "F32");
  // The stored bytes are quantize() of the source weights.
  const src = SafetensorsFile.open(join(stories, "model.safetensors"));
  const q = SafetensorsFile.open(join(out, "model.safetensors"));
  try {
    for (const name of ["model.layers.0.mlp.down_proj.weight", "model.layers.4.self_attn.k_proj.weight"]) {
      const w = src.read(name);
      assert.deepEqual(q.readRaw(name), quantize(w, "q8_0").blocks, name);
      w.dispose();
    }
  } finally {
    src.close();
    q.close();
  }
  assert.equal(
    readFileSync(join(out, "vocab.json"), "utf8"),
    readFileSync(join(stories, "vocab.json"), "utf8"),
  );

  const model = await loadModel(out);
  assert.equal(model.dtype, "q8_0");
  assert.ok(model.quantized.get("model.layers.2.mlp.up_proj.weight") instanceof QuantTensor);
  const want = JSON.parse(readFileSync(join(stories, "expected.json"), "utf8")).greedy_new_tokens as number[];
  const r = generate(model, [1], { maxNewTokens: 40, temperature: 0 });
  assert.deepEqual(r.tokens, want.slice(0, 40));
  assert.throws(() => model.trainable(), /q8_0; quantised weights are for inference/);
  await assert.rejects(
    saveModel(join(tmp, "x"), model),
    /quantised models are written by writeQuantCheckpoint/,
  );
  model.dispose();
});

test("herd quantize refuses a quantised or f16 source, naming the file, and bad arguments", async () => {
  const q4 = join(tmp, "q4");
  await quantizeCheckpoint(stories, q4, "q4_0");
  await assert.rejects(
    quantizeCheckpoint(q4, join(tmp, "again"), "q8_0"),
    /q4\/model\.safetensors: already quantised \(q4_0\)/,
  );
  const f16 = join(tmp, "f16");
  const m = await loadModel(stories);
  await saveModel(f16, m, { dtype: "f16" });
  m.dispose();
  await assert.rejects(
    quantizeCheckpoint(f16, join(tmp, "nope"), "q8_0"),
    /f16\/model\.safetensors: tensor '.*' is F16; herd quantize takes bf16 or f32 checkpoints/,
  );
  const bad = spawnSync(
    process.execPath,
    [cli, "quantize", "-m", stories, "--out", join(tmp, "b"), "--format", "q5"],
    {
      encoding: "utf8",
    },
  );
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--format: bad value 'q5' \(expected one of q8_0, q4_0\)/);
  // A U8 tensor of the wrong width for the config is reported with file and tensor.
  const cfg = JSON.parse(readFileSync(join(q4, "config.json"), "utf8"));
  writeFileSync(join(q4, "config.json"), JSON.stringify({ ...cfg, hidden_size: 96, head_dim: 12 }));
  await assert.rejects(
    loadModel(q4),
    /model\.safetensors: tensor '.*' is U8 \[\d+,\d+\]; q4_0 blocks of the config's/,
  );
});

/** Run `herd quantize` on `src` into `out`; the exit status and stderr. */
function quantizeCli(src: string, out: string, ...extra: string[]) {
  return spawnSync(
    process.execPath,
    [cli, "quantize", "-m", src, "--out", out, "--format", "q8_0", ...extra],
    {
      encoding: "utf8",
    },
  );
}

/** Every file of a directory with its bytes, to compare before and after. */
function snapshot(dir: string): Map<string, string> {
  return new Map(
    readdirSync(dir, { recursive: true, encoding: "utf8" }).map((f) => {
      const p = join(dir, f);
      return [f, statSync(p).isDirectory() ? "dir" : readFileSync(p).toString("base64")];
    }),
  );
}

test("herd quantize --out: never the model itself (via a symlink, inside it), a non-empty folder only with --force, replaced whole", () => {
  const src = join(tmp, "out-src");
  cpSync(stories, src, { recursive: true });
  const before = snapshot(src);
  // A symlink to the model directory, and a folder inside it, are refused even with --force.
  const link = join(tmp, "out-link");
  symlinkSync(src, link);
  for (const out of [link, join(link, "q"), join(src, "q")])
    for (const force of [[], ["--force"]]) {
      const r = quantizeCli(src, out, ...force);
      assert.equal(r.status, 2, `${out} ${force}: ${r.stderr}`);
      assert.match(r.stderr, /--out .* is --model .* or inside it/);
    }
  assert.deepEqual(snapshot(src), before);
  assert.ok(!existsSync(join(src, "q")));
  // A folder that holds the model is refused too (replacing it would delete the model).
  const r0 = quantizeCli(src, tmp, "--force");
  assert.equal(r0.status, 2, r0.stderr);
  assert.match(r0.stderr, /holds --model/);

  // Another model's folder: refused without --force, untouched.
  const other = join(tmp, "out-other");
  cpSync(refTied, other, { recursive: true });
  const otherBefore = snapshot(other);
  const r1 = quantizeCli(src, other);
  assert.equal(r1.status, 2, r1.stderr);
  assert.match(r1.stderr, /out-other: exists and is not empty; pass --force to replace it/);
  assert.deepEqual(snapshot(other), otherBefore);
  // With --force it is replaced whole: none of the old model's files stay mixed in.
  const r2 = quantizeCli(refTied, join(tmp, "out-other"), "--force");
  assert.equal(r2.status, 0, r2.stderr);
  assert.deepEqual([...snapshot(other).keys()].sort(), ["config.json", "model.safetensors"]);
  // And again over the stories model's quantised folder: its vocab.json is gone, the new model's is there.
  const r3 = quantizeCli(src, other, "--force");
  assert.equal(r3.status, 0, r3.stderr);
  assert.deepEqual([...snapshot(other).keys()].sort(), ["config.json", "model.safetensors", "vocab.json"]);
  const r4 = quantizeCli(refTied, other, "--force");
  assert.equal(r4.status, 0, r4.stderr);
  assert.deepEqual([...snapshot(other).keys()].sort(), ["config.json", "model.safetensors"]);
  // No temporary or moved-aside folders are left beside it; an empty folder needs no --force.
  const empty = join(tmp, "out-empty");
  mkdirSync(empty);
  const r5 = quantizeCli(src, empty);
  assert.equal(r5.status, 0, r5.stderr);
  assert.ok(existsSync(join(empty, "model.safetensors")));
  assert.deepEqual(
    readdirSync(tmp).filter((f) => f.startsWith(".")),
    [],
  );
  // A file in place of --out is refused, also with --force.
  const file = join(tmp, "out-file");
  writeFileSync(file, "keep me");
  const r6 = quantizeCli(src, file, "--force");
  assert.equal(r6.status, 2, r6.stderr);
  assert.match(r6.stderr, /out-file: not a directory/);
  assert.equal(readFileSync(file, "utf8"), "keep me");
});
