// ggml's reference quantisers (ggufQuantize.ts) against llama.cpp's own, and the Q4_K_M / Q5_K_M mix:
//   - bit for bit against quantize_row_{q4_K,q5_K,q6_K,q5_0,q5_1}_ref in the libggml-base that
//     node-llama-cpp ships prebuilt, called through Python's ctypes (llamacpp_quantize.py; skipped with
//     the reason when python3 or the library is missing), on fixed blocks of several kinds: Gaussian at
//     scales from 3e-6 (f16 subnormal super-scales) to 100, mostly-zero, one-signed, half-constant;
//   - a whole file: herd's `q4_k_m` / `q5_k_m` export of a 9-layer 256-wide model, and of a 64-wide one
//     whose rows fall back to Q5_0/Q5_1/Q8_0, equals tensor for tensor (types and bytes) what
//     llama_model_quantize (llama-quantize's library call) makes of herd's f32 export of the same model;
//   - without llama.cpp: all-zero blocks are all-zero bytes, and the round trip through herd's reference
//     dequantisers keeps the relative RMS error of Gaussian weights under 0.08 (Q4_K), 0.04 (Q5_K),
//     0.02 (Q6_K), 0.045 (Q5_0), 0.04 (Q5_1): the bits each type has.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { GGML_TYPES, GGUFFile } from "../../src/model/checkpoint/gguf.js";
import { dequantizeK } from "../../src/model/checkpoint/ggufKQuant.js";
import { writeGGUFModel } from "../../src/model/checkpoint/ggufLlama.js";
import { dequantizeQ5, type GGMLQuant, quantizeGGML } from "../../src/model/checkpoint/ggufQuantize.js";
import { Llama, type LlamaConfig } from "../../src/model/index.js";
import { initWeights } from "../../src/model/weights.js";
import { repoPath } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "herd-ggufq-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const TYPES: GGMLQuant[] = ["q4_k", "q5_k", "q6_k", "q5_0", "q5_1"];
const GGML_NAME: Record<GGMLQuant, string> = {
  q4_k: "q4_K",
  q5_k: "q5_K",
  q6_k: "q6_K",
  q5_0: "q5_0",
  q5_1: "q5_1",
};

/** Where node-llama-cpp's prebuilt Linux x64 libraries are, and whether python3 can call them. */
function findLlamaCpp(): { libdir: string; skip: string | false } {
  let libdir = "";
  try {
    // its main module is dist/index.js; the libraries are in bins/linux-x64 beside dist/
    const main = createRequire(import.meta.url).resolve("@node-llama-cpp/linux-x64");
    libdir = join(dirname(dirname(main)), "bins", "linux-x64");
  } catch {
    return { libdir, skip: "node-llama-cpp's prebuilt Linux x64 package is not installed" };
  }
  if (!existsSync(join(libdir, "libggml-base.so")))
    return { libdir, skip: `no libggml-base.so in ${libdir}` };
  const py = spawnSync("python3", ["-c", "import ctypes"], { encoding: "utf8" });
  if (py.status !== 0) return { libdir, skip: "python3 with ctypes is not available" };
  return { libdir, skip: false };
}
const { libdir, skip } = findLlamaCpp();
const script = repoPath("test", "model", "llamacpp_quantize.py");

function python(args: string[]): void {
  const r = spawnSync("python3", [script, libdir, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`llamacpp_quantize.py ${args.join(" ")}: ${r.stderr.slice(-2000)}`);
}

/** Deterministic test values: 64 super-blocks of 8 kinds (see the header). */
function values(seed: number): Float32Array {
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
  const x = new Float32Array(64 * 256);
  for (let b = 0; b < 64; b++) {
    const kind = b % 8;
    const scale = [0.02, 1, 1e-4, 100, 0.02, 3e-6, 0.5, 0.02][kind]!;
    for (let i = 0; i < 256; i++) {
      let v = gauss() * scale;
      if (kind === 4 && i % 3) v = 0;
      if (kind === 7) v = Math.abs(v) + 0.01;
      if (kind === 6 && i < 128) v = 0.25;
      x[b * 256 + i] = v;
    }
  }
  return x;
}

function dequant(type: GGMLQuant, b: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  if (type === "q5_0" || type === "q5_1") dequantizeQ5(type, b, n, y);
  else dequantizeK(type, b, n, y);
  return y;
}

describe("ggml's reference quantisers", () => {
  for (const type of TYPES)
    test(`${type}: the bytes of llama.cpp's quantize_row_${GGML_NAME[type]}_ref`, { skip }, () => {
      const x = values(7 + type.length);
      const inp = join(tmp, `${type}.f32`);
      const out = join(tmp, `${type}.bin`);
      writeFileSync(inp, new Uint8Array(x.buffer));
      python(["rows", GGML_NAME[type], inp, out]);
      const want = new Uint8Array(readFileSync(out));
      const got = quantizeGGML(type, x);
      assert.equal(got.length, want.length);
      for (let i = 0; i < want.length; i++)
        if (got[i] !== want[i]) assert.fail(`${type}: byte ${i} is ${got[i]}, llama.cpp's ${want[i]}`);
    });

  test("all-zero blocks: zero bytes; Q5_0's d −0 (max/−16) with every code 16 (its zero), as in ggml", () => {
    for (const type of TYPES) {
      const b = quantizeGGML(type, new Float32Array(512));
      const want = new Uint8Array(b.length);
      if (type === "q5_0")
        for (let o = 0; o < b.length; o += 22) want.set([0x00, 0x80, 0xff, 0xff, 0xff, 0xff], o);
      assert.deepEqual(b, want, type);
    }
  });

  const bound: Record<GGMLQuant, number> = { q4_k: 0.08, q5_k: 0.04, q6_k: 0.02, q5_0: 0.045, q5_1: 0.04 };
  for (const type of TYPES)
    test(`${type}: Gaussian weights round-trip with relative RMS error under ${bound[type]}`, () => {
      const x = values(3).subarray(0, 256); // kind 0: N(0, 0.02²)
      const all = new Float32Array(256 * 32);
      for (let r = 0; r < 32; r++) all.set(values(100 + r).subarray(0, 256), r * 256);
      all.set(x);
      const y = dequant(type, quantizeGGML(type, all), all.length);
      let e = 0;
      let s = 0;
      for (let i = 0; i < all.length; i++) {
        e += (all[i]! - y[i]!) ** 2;
        s += all[i]! ** 2;
      }
      assert.ok(Math.sqrt(e / s) < bound[type], `${type}: ${Math.sqrt(e / s)}`);
    });

  test("a length that is not whole blocks is refused", () => {
    assert.throws(
      () => quantizeGGML("q4_k", new Float32Array(300)),
      /300 values are not whole blocks of 256/,
    );
  });
});

function config(hidden: number, ffn: number, layers: number, tied: boolean): LlamaConfig {
  return {
    hiddenSize: hidden,
    intermediateSize: ffn,
    numHiddenLayers: layers,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: hidden / 4,
    vocabSize: 512,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: null,
    tieWordEmbeddings: tied,
    maxPositionEmbeddings: 1024,
    bosTokenId: 0,
    eosTokenIds: [1],
  };
}

describe("herd's Q4_K_M / Q5_K_M files are llama-quantize's", () => {
  const cases: [string, LlamaConfig][] = [
    ["256-wide, 9 layers, tied", config(256, 512, 9, true)],
    ["64-wide (fallbacks), 2 layers", config(64, 224, 2, false)],
  ];
  for (const [what, c] of cases)
    for (const [type, ftype] of [
      ["q4_k_m", 15],
      ["q5_k_m", 17],
    ] as const)
      test(`${what}: ${type}`, { skip }, () => {
        const model = new Llama(c, initWeights(c, { seed: 3 }), "random");
        const f32 = join(tmp, "f32.gguf");
        const ours = join(tmp, `${type}.gguf`);
        const theirs = join(tmp, `${type}-llamacpp.gguf`);
        try {
          writeGGUFModel(f32, { config: c, weights: model.weights, tokenizer: null }, "f32");
          writeGGUFModel(ours, { config: c, weights: model.weights, tokenizer: null }, type);
        } finally {
          model.dispose();
        }
        python(["file", String(ftype), f32, theirs]);
        const a = GGUFFile.open(ours);
        const b = GGUFFile.open(theirs);
        try {
          assert.equal(a.get("general.file_type"), b.get("general.file_type"));
          assert.deepEqual([...a.tensors.keys()].sort(), [...b.tensors.keys()].sort());
          for (const [name, t] of b.tensors) {
            const u = a.tensors.get(name)!;
            const tn = (x: number) => GGML_TYPES[x]!.name;
            assert.equal(tn(u.type), tn(t.type), `${name}: type`);
            const x = new Uint8Array(t.bytes);
            const y = new Uint8Array(u.bytes);
            b.readInto(name, x);
            a.readInto(name, y);
            assert.ok(Buffer.from(x).equals(Buffer.from(y)), `${name} (${tn(t.type)}): bytes differ`);
          }
        } finally {
          a.close();
          b.close();
        }
      });
});
