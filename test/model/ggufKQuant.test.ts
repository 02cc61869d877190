// K-quant dequantisation (Q4_K, Q5_K, Q6_K): bit for bit against ggml's formulas restated per element
// (which 6-bit scale, which nibble, which high bits a value takes, from the block layout of ggml-common.h)
// on fixed pseudo-random blocks, plus hand-computed values; and a GGUF file whose matrices are K-quant
// blocks loads in herd with llama.cpp's logits (node-llama-cpp, test/model/llamacpp.ts; skipped when it cannot load), which checks
// the layout against ggml itself, and (the file's matrices load as K-quant QuantTensors) herd's native
// K-quant kernels against llama.cpp's. Tolerance: 8e-2 of the largest |logit|: both quantise the
// activations to 8 bits (Q8_K) for the dot products, but llama.cpp keeps an f16 KV cache and orders its
// sums otherwise, and these random blocks (Q6_K's int8 scales of either sign especially) cancel heavily:
// measured 2e-4 (Q4_K, Q5_K) and 2.1e-2 (Q6_K) here, where herd's int8 path and its dequantised f32 path
// differ by 7e-4 and 2.8e-2.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { generate } from "../../src/generate/generate.js";
import { f16BitsToF32, f32ToF16Bits } from "../../src/io/half.js";
import { GGUFFile, type GGUFTensorOut, writeGGUF } from "../../src/model/checkpoint/gguf.js";
import { dequantizeK, K_BLOCK_BYTES, type KQuant, QK_K } from "../../src/model/checkpoint/ggufKQuant.js";
import { hfToGGUFName, writeGGUFModel } from "../../src/model/checkpoint/ggufLlama.js";
import { Llama, type LlamaConfig, loadModel } from "../../src/model/index.js";
import { initWeights } from "../../src/model/weights.js";
import { dequantize, noGrad, type QuantTensor, scope, type Tensor } from "../../src/tensor/index.js";
import { llamaCppLogits, skip } from "./llamacpp.js";

const f = Math.fround;

/** Deterministic bytes with the f16 scale fields set to small normal values. */
function blocks(type: KQuant, n: number, seed: number): Uint8Array {
  const bb = K_BLOCK_BYTES[type];
  const b = new Uint8Array(n * bb);
  let s = seed >>> 0;
  for (let i = 0; i < b.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    b[i] = s >>> 24;
  }
  const setHalf = (at: number, v: number) => {
    const h = f32ToF16Bits(v);
    b[at] = h & 255;
    b[at + 1] = h >> 8;
  };
  for (let k = 0; k < n; k++) {
    const at = k * bb;
    if (type === "q6_k") setHalf(at + 208, 0.001 * (1 + (k % 5)));
    else {
      setHalf(at, 0.002 * (1 + (k % 3)));
      setHalf(at + 2, 0.001 * (1 + (k % 4)));
    }
  }
  return b;
}

const half = (b: Uint8Array, at: number) => f16BitsToF32(b[at]! | (b[at + 1]! << 8));

/** Sub-block j's 6-bit scale and min from the 12 packed bytes (ggml-common.h's block_q4_K comment). */
function sixBit(sc: Uint8Array, j: number): [number, number] {
  if (j < 4) return [sc[j]! & 0x3f, sc[j + 4]! & 0x3f];
  const lo = sc[8 + j - 4]!;
  return [(lo & 0x0f) | ((sc[j - 4]! >> 6) << 4), (lo >> 4) | ((sc[j]! >> 6) << 4)];
}

/** Value i of one block, per element. */
function element(type: KQuant, b: Uint8Array, i: number): number {
  if (type === "q6_k") {
    const d = half(b, 208);
    const chunk = i >> 7; // 128 values: 64 ql bytes, 32 qh bytes, 8 scales
    const r = i & 127;
    const quarter = r >> 5; // which of the four 32-value runs
    const l = r & 31;
    const qlByte = b[chunk * 64 + l + (quarter & 1) * 32]!;
    const low = quarter < 2 ? qlByte & 0xf : qlByte >> 4;
    const high = (b[128 + chunk * 32 + l]! >> (2 * quarter)) & 3;
    const scale = (b[192 + chunk * 8 + (l >> 4) + 2 * quarter]! << 24) >> 24;
    return f(f(d * scale) * ((low | (high << 4)) - 32));
  }
  const d = half(b, 0);
  const dmin = half(b, 2);
  const sub = i >> 5; // 8 sub-blocks of 32
  const l = i & 31;
  const [sc, m] = sixBit(b.subarray(4, 16), sub);
  const qsAt = type === "q4_k" ? 16 : 48;
  const byte = b[qsAt + (sub >> 1) * 32 + l]!;
  let q = sub & 1 ? byte >> 4 : byte & 0xf;
  if (type === "q5_k") q += ((b[16 + l]! >> sub) & 1) << 4;
  return f(f(f(d * sc) * q) - f(dmin * m));
}

describe("K-quant reference dequantisers", () => {
  for (const type of ["q4_k", "q5_k", "q6_k"] as const)
    test(`${type}: equals the per-element formulas bit for bit on fixed blocks`, () => {
      const n = 6;
      const b = blocks(type, n, 17 + type.length);
      const out = new Float32Array(n * QK_K);
      dequantizeK(type, b, n * QK_K, out);
      const bb = K_BLOCK_BYTES[type];
      for (let k = 0; k < n; k++)
        for (let i = 0; i < QK_K; i++) {
          const want = element(type, b.subarray(k * bb, (k + 1) * bb), i);
          if (!Object.is(out[k * QK_K + i], want))
            assert.fail(`${type} block ${k} value ${i}: ${out[k * QK_K + i]} ≠ ${want}`);
        }
    });

  test("hand-computed values", () => {
    // Q4_K: d 1, dmin 0.5, sub-block 0 scale 3 / min 2, first byte 0x75 → values 3·5 − 1 = 14 and
    // (sub-block 1, high nibble 7, scale 0 / min 0) 0.
    const b = new Uint8Array(144);
    b.set([0x00, 0x3c, 0x00, 0x38]); // f16 1.0, 0.5
    b[4] = 3; // scale 0
    b[8] = 2; // min 0
    b[16] = 0x75;
    const out = new Float32Array(256);
    dequantizeK("q4_k", b, 256, out);
    assert.equal(out[0], 14);
    assert.equal(out[32], 0);
    assert.equal(out[1], -1); // q 0 → −dmin·min
    // Q6_K: d 0.5, scale[0] −2, ql[0] 0x0f, qh[0] 0b11 → q = 0x3f − 32 = 31 → 0.5·(−2)·31 = −31.
    const c = new Uint8Array(210);
    c[0] = 0x0f;
    c[128] = 0b11;
    c[192] = 0xfe;
    c.set([0x00, 0x38], 208);
    const o6 = new Float32Array(256);
    dequantizeK("q6_k", c, 256, o6);
    assert.equal(o6[0], -31);
    assert.equal(o6[1], 0.5 * -2 * -32); // ql 0, qh 0 → q −32
  });
});

const TINY: LlamaConfig = {
  hiddenSize: 256,
  intermediateSize: 512,
  numHiddenLayers: 1,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  headDim: 64,
  vocabSize: 256,
  rmsNormEps: 1e-5,
  ropeTheta: 500000,
  ropeScaling: null,
  tieWordEmbeddings: false,
  maxPositionEmbeddings: 1024,
  bosTokenId: 0,
  eosTokenIds: [1],
};

/** A GGUF file of TINY's shape: f32 norms, matrix i in `typeOf(i)` blocks (seeded by i). */
function kQuantFile(dir: string, typeOf: (i: number) => KQuant): string {
  const src = new Llama(TINY, initWeights(TINY, { seed: 3 }), "random");
  const base = join(dir, "base.gguf");
  writeGGUFModel(base, { config: TINY, weights: src.weights, tokenizer: null }, "f32");
  src.dispose();
  const g = GGUFFile.open(base);
  const out: GGUFTensorOut[] = [];
  let i = 0;
  for (const t of g.tensors.values()) {
    const s = ++i;
    if (t.dims.length === 2) {
      const type = typeOf(s);
      out.push({
        name: t.name,
        dims: t.dims,
        type: { q4_k: 12, q5_k: 13, q6_k: 14 }[type],
        data: () => blocks(type, (t.dims[0]! * t.dims[1]!) / QK_K, s),
      });
    } else {
      const b = new Uint8Array(t.bytes);
      g.readInto(t.name, b);
      out.push({ name: t.name, dims: t.dims, type: 0, data: () => b });
    }
  }
  const path = join(dir, "kquant.gguf");
  writeGGUF(path, g.metadata, out);
  g.close();
  return path;
}

describe("a GGUF file with Q4_K, Q5_K and Q6_K matrices (as a Q4_K_M file mixes them)", () => {
  const tmp = mkdtempSync(join(tmpdir(), "herd-kquant-load-"));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const types: KQuant[] = ["q4_k", "q5_k", "q6_k"];
  const path = kQuantFile(tmp, (i) => types[i % 3]!);

  test("loads as K-quant QuantTensors holding the file's blocks (not a dequantised copy)", async () => {
    const m = await loadModel(path);
    const g = GGUFFile.open(path);
    try {
      assert.equal(m.quantized.size, 9, "every matrix (embedding and output included) stays quantised");
      for (const [name, q] of m.quantized) {
        const gname = g.tensors.get(hfToGGUFName(name))!;
        assert.equal(q.format, { 12: "q4_k", 13: "q5_k", 14: "q6_k" }[gname.type as 12 | 13 | 14], name);
        if (/q_proj|k_proj/.test(name)) continue; // rows reordered to HF's head layout
        const raw = new Uint8Array(gname.bytes);
        g.readInto(gname.name, raw);
        assert.deepEqual(q.blocks, raw, `${name}: the blocks as stored`);
      }
    } finally {
      g.close();
      m.dispose();
    }
  });

  test("greedy generation equals the dequantised model's (within the activations' 8-bit rounding)", async () => {
    const m = await loadModel(path);
    const wide = new Map<string, Tensor | QuantTensor>([...m.weights]);
    for (const [name, q] of m.quantized) wide.set(name, dequantize(q));
    const ref = new Llama(m.config, wide, "dequantised");
    try {
      assert.equal(ref.quantized.size, 0);
      const prompt = [0, 17, 42, 99, 200];
      const opts = { maxNewTokens: 12, temperature: 0, stopIds: [] };
      const got = generate(m, prompt, opts).tokens;
      const want = generate(ref, prompt, opts).tokens;
      // Teacher-forced on herd's K-quant continuation, the dequantised model's logits at every step: herd's
      // token is its argmax, or within the stated logit tolerance of it (then the two may part ways).
      const ids = [...prompt, ...got];
      const [a, b] = noGrad(() =>
        scope(() => [m, ref].map((x) => x.forward(Int32Array.from(ids), { batch: 1 }).toArray())),
      );
      const V = m.config.vocabSize;
      let scale = 0;
      let worst = 0;
      for (let i = 0; i < a!.length; i++) {
        scale = Math.max(scale, Math.abs(b![i]!));
        worst = Math.max(worst, Math.abs(a![i]! - b![i]!));
      }
      const tol = 5e-2 * scale; // measured 7e-4 (Q4_K, Q5_K) to 2.8e-2 (Q6_K) of the largest |logit|
      assert.ok(worst <= tol, `logits differ by ${worst} (scale ${scale})`);
      for (let s = 0; s < got.length; s++) {
        const row = b!.subarray((prompt.length - 1 + s) * V, (prompt.length + s) * V);
        const best = Math.max(...row);
        assert.ok(
          row[got[s]!]! >= best - tol,
          `step ${s}: herd picks ${got[s]}, the dequantised model prefers another by ${best - row[got[s]!]!}`,
        );
        if (got[s] !== want[s]) break; // beyond a near-tie the two continuations need not agree
      }
    } finally {
      ref.dispose();
      m.dispose();
    }
  });
});

describe("a K-quant GGUF file: herd's logits are llama.cpp's", { skip }, async () => {
  if (skip) return;
  const tmp = mkdtempSync(join(tmpdir(), "herd-kquant-"));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const config: LlamaConfig = {
    hiddenSize: 256,
    intermediateSize: 512,
    numHiddenLayers: 1,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: 64,
    vocabSize: 256,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: null,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 1024,
    bosTokenId: 0,
    eosTokenIds: [1],
  };
  const src = new Llama(config, initWeights(config, { seed: 3 }), "random");
  const base = join(tmp, "f32.gguf");
  writeGGUFModel(base, { config, weights: src.weights, tokenizer: null }, "f32");
  src.dispose();

  for (const type of ["q4_k", "q5_k", "q6_k"] as const)
    test(`${type}`, async () => {
      // The f32 file's metadata and norms, its matrices replaced by fixed K-quant blocks.
      const g = GGUFFile.open(base);
      const ggmlType = { q4_k: 12, q5_k: 13, q6_k: 14 }[type];
      const out: GGUFTensorOut[] = [];
      let seed = 1;
      for (const t of g.tensors.values()) {
        const s = seed++;
        if (t.dims.length === 2)
          out.push({
            name: t.name,
            dims: t.dims,
            type: ggmlType,
            data: () => blocks(type, (t.dims[0]! * t.dims[1]!) / QK_K, s),
          });
        else {
          const b = new Uint8Array(t.bytes);
          g.readInto(t.name, b);
          out.push({ name: t.name, dims: t.dims, type: 0, data: () => b });
        }
      }
      const path = join(tmp, `${type}.gguf`);
      writeGGUF(path, g.metadata, out);
      g.close();
      const m = await loadModel(path);
      const ids = [0, 17, 42, 99, 200, 3, 64, 128];
      const h = noGrad(() => scope(() => m.forward(Int32Array.from(ids), { batch: 1 }).toArray()));
      m.dispose();
      const l = await llamaCppLogits(path, ids, 256);
      let scale = 0;
      let worst = 0;
      for (let i = 0; i < ids.length; i++)
        for (let v = 0; v < 256; v++) {
          const a = h[i * 256 + v]!;
          scale = Math.max(scale, Math.abs(a));
          worst = Math.max(worst, Math.abs(a - l[i * 256 + v]!));
        }
      assert.ok(scale > 0 && worst <= 8e-2 * scale, `${type}: worst ${worst} vs scale ${scale}`);
    });
});
