// GGUF files herd writes, checked by llama.cpp itself (node-llama-cpp's prebuilt CPU binary, a dev
// dependency; the test skips with the reason when it cannot load). For the two reference models at every
// export type, and a tiny random model with Llama 3's 128,256-id vocabulary:
//   - llama.cpp's logits at every prompt position equal herd's within a tolerance per type, relative to
//     the largest |logit|: f32 1e-5 (both compute in f32; the KV cache is F32 here); f16 5e-3, bf16 3e-2
//     and q8_0/q4_0 8e-2, because llama.cpp rounds the activations to the weight's type (f16, bf16) or
//     quantises them to 8 bits (q8_0 blocks; Q8_K for the K-quants) before its dot products, where herd
//     keeps them f32; q4_k_m and q5_k_m 8e-2 likewise (a 256-wide model, so its matrices are K-quants,
//     and the reference models, whose narrow rows fall back to Q5_0/Q5_1/Q8_0 as in llama.cpp);
//   - herd's greedy continuation is llama.cpp's: at every step llama.cpp's argmax is herd's token
//     (steps where herd's top two logits are closer than twice the tolerance are not a disagreement;
//     for f32 none may be skipped);
//   - llama.cpp tokenises text with the vocabulary herd wrote (merges derived from Meta's ranks) exactly
//     as Meta's tokenizer does (test/fixtures/tokenizer/tokenizer-cases.json), and so does the herd
//     tokenizer read back from the file; likewise for a small BPE vocabulary herd trains here.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { generate } from "../../src/generate/index.js";
import { GGML_TYPES } from "../../src/model/checkpoint/gguf.js";
import { dequantizeK } from "../../src/model/checkpoint/ggufKQuant.js";
import { type GGUFExportType, ggufTensorPlan, writeGGUFModel } from "../../src/model/checkpoint/ggufLlama.js";
import { dequantizeQ5, type GGMLQuant, quantizeGGML } from "../../src/model/checkpoint/ggufQuantize.js";
import { readGGUFTokenizer } from "../../src/model/checkpoint/ggufVocab.js";
import { Llama, type LlamaConfig, loadModel } from "../../src/model/index.js";
import { quantizeWeights } from "../../src/model/quantize.js";
import { initWeights } from "../../src/model/weights.js";
import { fromArray, noGrad, scope, type Tensor } from "../../src/tensor/index.js";
import { dequantize, dequantizeRow, quantizeRow } from "../../src/tensor/quant.js";
import { formatRanks, parseRanks, Tokenizer, trainBpe } from "../../src/tokenizer/index.js";
import { repoPath } from "../helpers.js";
import { llamaCppLogits, llamaCppTokenize, skip } from "./llamacpp.js";

const TOL: Record<GGUFExportType, number> = {
  f32: 1e-5,
  f16: 5e-3,
  bf16: 3e-2,
  q8_0: 8e-2,
  q4_0: 8e-2,
  q4_k_m: 8e-2,
  q5_k_m: 8e-2,
};
const TYPES = Object.keys(TOL) as GGUFExportType[];
const NEW_TOKENS = 8;

const tmp = mkdtempSync(join(tmpdir(), "herd-llamacpp-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function herdLogits(m: Llama, ids: number[]): Float32Array {
  return noGrad(() => scope(() => m.forward(Int32Array.from(ids), { batch: 1 }).toArray()));
}

/**
 * The source model as herd runs it at `type`, made in memory (not read back from the GGUF file, whose
 * reader undoes whatever the writer did: only the source catches a layout llama.cpp reads otherwise).
 */
function asType(src: Llama, type: GGUFExportType): { model: Llama; free: () => void } {
  if (type === "f32") return { model: src, free: () => {} };
  if (type === "q8_0" || type === "q4_0") {
    const q = new Llama(src.config, quantizeWeights(src, type), type);
    return {
      model: q,
      free: () => {
        for (const t of q.quantized.values()) t.dispose(); // its norms are the source's
      },
    };
  }
  if (type === "q4_k_m" || type === "q5_k_m") {
    // Each matrix quantised row by row (HF order) to the type the plan gives it, and dequantised.
    const types = new Map(ggufTensorPlan(src.config, type).map((p) => [p.hf, p.type]));
    const out = new Map<string, Tensor>();
    for (const [n, t] of src.weights) {
      if (t.rank !== 2) {
        out.set(n, t.toF32());
        continue;
      }
      const [rows, k] = t.shape as [number, number];
      const name = GGML_TYPES[types.get(n)!]!.name.toLowerCase();
      const v = t.toArray();
      const w = new Float32Array(v.length);
      const row = new Float32Array(k);
      for (let r = 0; r < rows; r++) {
        const x = v.subarray(r * k, (r + 1) * k);
        if (name === "q8_0") {
          const b = new Uint8Array((k / 32) * 34);
          quantizeRow(x, "q8_0", b, 0);
          dequantizeRow(b, "q8_0", 0, k, row);
        } else {
          const b = quantizeGGML(name as GGMLQuant, Float32Array.from(x));
          if (name === "q5_0" || name === "q5_1") dequantizeQ5(name, b, k, row);
          else dequantizeK(name as "q4_k" | "q5_k" | "q6_k", b, k, row);
        }
        w.set(row, r * k);
      }
      out.set(n, fromArray(w, [rows, k]));
    }
    const m = new Llama(src.config, out, type);
    return { model: m, free: () => m.dispose() };
  }
  const rounded = new Map<string, Tensor>();
  for (const [n, t] of src.weights) rounded.set(n, t.rank === 2 ? t.toDtype(type) : t.toF32());
  const r = new Llama(src.config, rounded, type);
  return { model: r, free: () => r.dispose() };
}

/** Herd's greedy continuation checked against llama.cpp's logits over prompt + continuation (see header). */
async function compare(path: string, src: Llama, prompt: number[], type: GGUFExportType): Promise<void> {
  const { model: m, free } = asType(src, type);
  try {
    const V = m.config.vocabSize;
    const gen = generate(m, prompt, { temperature: 0, maxNewTokens: NEW_TOKENS, stopIds: [] }).tokens;
    assert.equal(gen.length, NEW_TOKENS);
    const ids = [...prompt, ...gen];
    const h = herdLogits(m, ids);
    const l = await llamaCppLogits(path, ids, V);
    let scale = 0;
    for (const x of h) scale = Math.max(scale, Math.abs(x));
    let worst = 0;
    for (let i = 0; i < h.length; i++) worst = Math.max(worst, Math.abs(h[i]! - l[i]!));
    assert.ok(
      worst <= TOL[type] * scale,
      `${type}: worst logit difference ${worst} > ${TOL[type]} × ${scale}`,
    );
    let skipped = 0;
    for (let s = 0; s < gen.length; s++) {
      const row = prompt.length - 1 + s;
      const at = (a: Float32Array, v: number) => a[row * V + v]!;
      let lb = 0;
      for (let v = 1; v < V; v++) if (at(l, v) > at(l, lb)) lb = v;
      if (lb === gen[s]) continue;
      const margin = at(h, gen[s]!) - at(h, lb);
      assert.ok(
        margin < 2 * TOL[type] * scale,
        `${type}: step ${s}: llama.cpp picks ${lb}, herd ${gen[s]} (margin ${margin})`,
      );
      skipped++;
    }
    if (type === "f32") assert.equal(skipped, 0, "f32: greedy tokens differ");
  } finally {
    free();
  }
}

for (const name of ["tiny-scaled", "tiny-tied"]) {
  describe(`llama.cpp runs herd's GGUF export of ${name}`, { skip }, async () => {
    if (skip) return;
    const dir = repoPath("test", "fixtures", "reference", name);
    const exp = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")) as { tokens: number[][] };
    const src = await loadModel(dir);
    after(() => src.dispose());
    for (const type of TYPES)
      test(`${type}: same logits within ${TOL[type]} and the same greedy tokens`, async () => {
        const path = join(tmp, `${name}-${type}.gguf`);
        writeGGUFModel(path, { config: src.config, weights: src.weights, tokenizer: null }, type);
        await compare(path, src, exp.tokens[0]!.slice(0, 12), type);
      });
  });
}

describe("llama.cpp runs herd's Q4_K_M and Q5_K_M export of a 256-wide model (K-quant matrices)", {
  skip,
}, () => {
  if (skip) return;
  // 256-wide rows, so every matrix is a K-quant; 9 layers, so the mix's Q6_K layers (0, 3, 6, 7, 8) and
  // Q4_K/Q5_K ones both occur.
  const config: LlamaConfig = {
    hiddenSize: 256,
    intermediateSize: 512,
    numHiddenLayers: 9,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: 64,
    vocabSize: 384,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: null,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 1024,
    bosTokenId: 0,
    eosTokenIds: [1],
  };
  const src = new Llama(config, initWeights(config, { seed: 11 }), "random");
  after(() => src.dispose());
  const prompt = [0, 17, 42, 99, 200, 3, 64, 128, 300, 5];
  for (const type of ["q4_k_m", "q5_k_m"] as const)
    test(`${type}: same logits within ${TOL[type]} and the same greedy tokens; herd reads the file back as made`, async () => {
      const path = join(tmp, `wide-${type}.gguf`);
      writeGGUFModel(path, { config, weights: src.weights, tokenizer: null }, type);
      await compare(path, src, prompt, type);
      // The file's matrices, dequantised, are exactly the values asType made in memory (herd keeps K-quant
      // blocks as stored and computes on 8-bit activations, so its logits are compared with llama.cpp's
      // above, not with the dequantised model's bit for bit).
      const { model: mem, free } = asType(src, type);
      const file = await loadModel(path);
      try {
        for (const [name, want] of mem.weights) {
          if (want.rank !== 2) continue;
          const q = file.quantized.get(name);
          const got = q ? dequantize(q) : file.weights.get(name)!.toF32();
          try {
            const a = want.toArray();
            const b = got.toArray();
            for (let i = 0; i < a.length; i++)
              if (!Object.is(a[i], b[i])) assert.fail(`${name}[${i}]: ${a[i]} ≠ ${b[i]}`);
          } finally {
            got.dispose();
          }
        }
      } finally {
        file.dispose();
        free();
      }
    });
});

describe("llama.cpp runs a tiny random model with Llama 3's vocabulary", { skip }, async () => {
  if (skip) return;
  const config: LlamaConfig = {
    hiddenSize: 64,
    intermediateSize: 128,
    numHiddenLayers: 1,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: 16,
    vocabSize: 128256,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: {
      ropeType: "llama3",
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    },
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 131072,
    bosTokenId: 128000,
    eosTokenIds: [128001, 128008, 128009],
  };
  const weights: Map<string, Tensor> = initWeights(config, { seed: 7 });
  const model = new Llama(config, weights, "random");
  after(() => model.dispose());
  const path = join(tmp, "llama3-vocab-f16.gguf");
  const tok = Tokenizer.llama3();
  writeGGUFModel(path, { config, weights: model.weights, tokenizer: tok }, "f16");
  const cases = JSON.parse(
    readFileSync(repoPath("test", "fixtures", "tokenizer", "tokenizer-cases.json"), "utf8"),
  ) as { text: string; ids: number[] }[];

  test("herd's tokenizer read back from the file encodes as Meta's", () => {
    const back = readGGUFTokenizer(path)!;
    assert.equal(back.vocabSize, 128256);
    for (const c of cases) assert.deepEqual(back.encode(c.text), c.ids, JSON.stringify(c.text));
    assert.equal(back.special("<|eot_id|>"), 128009);
  });

  test("llama.cpp tokenises with herd's vocabulary as Meta's tokenizer does", async () => {
    const got = await llamaCppTokenize(
      path,
      cases.map((c) => c.text),
    );
    for (const [i, c] of cases.entries()) assert.deepEqual(got[i], c.ids, JSON.stringify(c.text));
  });

  test("f16: same logits and greedy tokens", async () => {
    await compare(path, model, tok.encode("The capital of France is", { bos: true }), "f16");
  });
});

describe("llama.cpp tokenises with a BPE vocabulary herd trained", { skip }, async () => {
  if (skip) return;
  const english = gunzipSync(
    readFileSync(repoPath("test", "fixtures", "tokenizer", "corpus", "english.txt.gz")),
  ).toString("utf8");
  const train = english.slice(0, 20000);
  const held = [
    english.slice(30000, 32000),
    "  indented\n\tcode 12345",
    "don't DON'T I'm   here\r\n\r\nok",
    "Привет мир 日本語",
  ];
  const trained = trainBpe([train], { vocabSize: 600 });
  const tok = new Tokenizer(parseRanks(formatRanks(trained.tokens)));
  const config: LlamaConfig = {
    hiddenSize: 64,
    intermediateSize: 128,
    numHiddenLayers: 1,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: 16,
    vocabSize: tok.vocabSize,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: null,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 1024,
    bosTokenId: tok.bosId,
    eosTokenIds: [tok.eosId],
  };
  const model = new Llama(config, initWeights(config, { seed: 5 }), "random");
  after(() => model.dispose());
  const path = join(tmp, "trained-vocab.gguf");
  writeGGUFModel(path, { config, weights: model.weights, tokenizer: tok }, "f32");

  test("the same ids as herd's tokenizer, and herd reads the vocabulary back unchanged", async () => {
    const back = readGGUFTokenizer(path)!;
    const got = await llamaCppTokenize(path, held);
    held.forEach((text, i) => {
      const want = tok.encode(text);
      assert.deepEqual(back.encode(text), want, JSON.stringify(text));
      assert.deepEqual(got[i], want, JSON.stringify(text));
    });
  });
});
