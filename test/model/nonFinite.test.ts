// Checkpoints holding a NaN or ±Inf weight are refused when read, naming the file, the tensor and the
// element: HF safetensors (f32 and bf16 kept as is), Meta .pth shards, quantised block scales, and the
// commands a user runs on them (`herd generate`, `herd quantize`).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, cpSync, existsSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { firstNonFinite } from "../../src/model/checkpoint/finite.js";
import { readSafetensorsHeader, readTorchIndex } from "../../src/model/checkpoint/index.js";
import { ReadFile } from "../../src/model/checkpoint/io.js";
import { loadModel, quantizeCheckpoint, saveModel } from "../../src/model/index.js";
import { repoPath } from "../helpers.js";

const stories = repoPath("test", "fixtures", "stories260K");
const cli = repoPath("dist", "src", "cli", "main.js");
const tmp = mkdtempSync(join(tmpdir(), "herd-nonfinite-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Overwrite bytes of a file at `position`. */
function patch(path: string, position: number, bytes: Uint8Array): void {
  const fd = openSync(path, "r+");
  writeSync(fd, bytes, 0, bytes.length, position);
  closeSync(fd);
}

const f32Bytes = (x: number) => new Uint8Array(Float32Array.of(x).buffer);
const u16Bytes = (x: number) => new Uint8Array(Uint16Array.of(x).buffer);

/** A copy of `src` whose tensor `name` holds `bytes` at element `k` (of `esize` bytes). */
async function corrupt(src: string, dest: string, name: string, k: number, esize: number, bytes: Uint8Array) {
  cpSync(src, dest, { recursive: true });
  const file = join(dest, "model.safetensors");
  const e = (await readSafetensorsHeader(file)).entries.get(name)!;
  patch(file, e.begin + k * esize, bytes);
  return dest;
}

test("firstNonFinite finds NaN and ±Inf in f32, bf16 and f16 data, and nothing in finite extremes", () => {
  assert.equal(firstNonFinite(Float32Array.of(0, -0, 3.4e38, -3.4e38, 1e-45), "f32"), -1);
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    const a = new Float32Array(1000);
    a[997] = bad;
    assert.equal(firstNonFinite(a, "f32"), 997);
  }
  // bf16: 0x7f7f is the largest finite value, 0x7f80 +Inf, 0xff80 −Inf, 0x7fc0 NaN.
  assert.equal(firstNonFinite(Uint16Array.of(0x7f7f, 0xff7f, 0x8000, 0x0001, 0x7f7f), "bf16"), -1);
  // f16: 0x7bff is 65504, 0x7c00 +Inf, 0x7e00 NaN; 0x7f7f (bf16's max) is an f16 NaN.
  assert.equal(firstNonFinite(Uint16Array.of(0x7bff, 0xfbff, 0x3c00), "f16"), -1);
  assert.equal(firstNonFinite(Uint16Array.of(0x3c00, 0x7f7f), "f16"), 1);
  for (const [bits, dtype] of [
    [0x7f80, "bf16"],
    [0xff80, "bf16"],
    [0x7fc0, "bf16"],
    [0x7c00, "f16"],
    [0xfe00, "f16"],
  ] as const)
    for (const at of [0, 1, 6, 7, 8]) {
      const a = new Uint16Array(9).fill(0x3f80);
      a[at] = bits;
      assert.equal(firstNonFinite(a, dtype), at, `${bits.toString(16)} at ${at}`);
      // Views that start off a 4-byte boundary or end on an odd element.
      if (at >= 1) assert.equal(firstNonFinite(a.subarray(1), dtype), at - 1);
      if (at <= 6) assert.equal(firstNonFinite(a.subarray(0, 7), dtype), at);
    }
});

test("herd generate and herd quantize refuse an f32 checkpoint with a NaN weight, naming the file and tensor", async () => {
  const name = "model.layers.1.mlp.up_proj.weight";
  const dir = await corrupt(stories, join(tmp, "nan-f32"), name, 7, 4, f32Bytes(Number.NaN));
  const re =
    /nan-f32\/model\.safetensors: tensor 'model\.layers\.1\.mlp\.up_proj\.weight' holds a non-finite value \(NaN\) at element 7/;
  const gen = spawnSync(
    process.execPath,
    [cli, "generate", "-m", dir, "--prompt-ids", "1", "--max-tokens", "2"],
    {
      encoding: "utf8",
    },
  );
  assert.equal(gen.status, 1, gen.stderr);
  assert.match(gen.stderr, re);
  const out = join(tmp, "nan-q8");
  const q = spawnSync(process.execPath, [cli, "quantize", "-m", dir, "--out", out, "--format", "q8_0"], {
    encoding: "utf8",
  });
  assert.equal(q.status, 1, q.stderr);
  assert.match(q.stderr, re);
  assert.ok(!existsSync(out), "nothing is written");
});

test("bf16 weights kept as stored, a Meta shard and quantised block scales are checked too", async () => {
  // bf16, read without widening (the inference default): +Inf in the embedding.
  const bf = join(tmp, "bf16");
  const m = await loadModel(stories);
  await saveModel(bf, m, { dtype: "bf16" });
  m.dispose();
  const inf = await corrupt(bf, join(tmp, "inf-bf16"), "model.embed_tokens.weight", 100, 2, u16Bytes(0x7f80));
  await assert.rejects(
    loadModel(inf, { dtype: "keep" }),
    /inf-bf16\/model\.safetensors: tensor 'model\.embed_tokens\.weight' holds a non-finite value \(NaN or ±Inf\) at element 100/,
  );
  // A Meta shard: −Inf in w2 (bf16 storage).
  const meta = join(tmp, "meta-inf");
  cpSync(repoPath("test", "fixtures", "reference", "tiny-tied", "meta"), meta, { recursive: true });
  const pth = join(meta, "consolidated.00.pth");
  const f = new ReadFile(pth);
  const e = readTorchIndex(f).get("layers.1.feed_forward.w2.weight")!;
  f.close();
  const esize = e.dtype === "f32" ? 4 : 2;
  patch(
    pth,
    e.record.dataStart + (e.ref.offset + 3) * esize,
    esize === 4 ? f32Bytes(-Infinity) : u16Bytes(0xff80),
  );
  for (const dtype of ["f32", "keep"] as const)
    await assert.rejects(
      loadModel(meta, { dtype }),
      /meta-inf\/consolidated\.00\.pth: tensor 'layers\.1\.feed_forward\.w2\.weight' holds a non-finite value \(.*\) at element 3/,
    );
  // A quantised directory whose block scale is an f16 NaN.
  const q = join(tmp, "q8");
  await quantizeCheckpoint(stories, q, "q8_0");
  const h = await readSafetensorsHeader(join(q, "model.safetensors"));
  const up = h.entries.get("model.layers.0.mlp.up_proj.weight")!;
  patch(join(q, "model.safetensors"), up.begin + 34, u16Bytes(0x7e00));
  await assert.rejects(
    loadModel(q),
    /q8\/model\.safetensors: tensor 'model\.layers\.0\.mlp\.up_proj\.weight' holds a non-finite block scale at byte 34/,
  );
});
