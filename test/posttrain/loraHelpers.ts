// Shared by the LoRA tests: a tiny Llama (2 layers, GQA, tied embedding) whose matrices are f32, bf16 or
// Q8_0/Q4_0, a fixed token batch, and the model's loss as a plain number; for the CLI tests, a tiny base
// model directory over the byte tokenizer (fixture.ts).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Llama, type LlamaConfig } from "../../src/model/index.js";
import { saveModel } from "../../src/model/load.js";
import { initWeights } from "../../src/model/weights.js";
import { noGrad, type QuantTensor, quantize, scope, type Tensor } from "../../src/tensor/index.js";
import { TINY_CONFIG } from "./fixture.js";

export type BaseDtype = "f32" | "bf16" | "q8_0" | "q4_0";

export const tinyConfig: LlamaConfig = {
  hiddenSize: 32,
  intermediateSize: 64,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  headDim: 8,
  vocabSize: 48,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  ropeScaling: null,
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 64,
  bosTokenId: 0,
  eosTokenIds: [1],
};

/**
 * The tiny model with its matrices in `dtype` (the same random f32 values, rounded or quantised).
 * `embedStd`: the tied embedding's spread (default the init's 0.02, which keeps logits within ±1: a
 * frozen base then caps how far an adapter can lower the loss).
 */
export function tinyModel(dtype: BaseDtype, seed = 5, embedStd = 0.02): Llama {
  const ws = initWeights(tinyConfig, { seed });
  const embed = ws.get("model.embed_tokens.weight")!;
  for (let i = 0; i < embed.size; i++) embed.data[i] = embed.data[i]! * (embedStd / 0.02);
  if (dtype === "f32") return new Llama(tinyConfig, ws);
  const out = new Map<string, Tensor | QuantTensor>();
  for (const [name, t] of ws) {
    if (t.rank !== 2) out.set(name, t);
    else {
      out.set(name, dtype === "bf16" ? t.toDtype("bf16") : quantize(t, dtype));
      t.dispose();
    }
  }
  return new Llama(tinyConfig, out);
}

/** A batch of 2 rows × 7 tokens and its next-token targets. */
export const ids = Int32Array.from({ length: 14 }, (_, i) => (i * 7 + 3) % 48);
export const targets = Int32Array.from({ length: 14 }, (_, i) => (i * 5 + 11) % 48);

/** The mean cross-entropy of the batch (weighted by `mask` if given), without recording. */
export function lossValue(model: Llama, mask?: Float32Array): number {
  return noGrad(() => scope(() => model.loss(ids, targets, { batch: 2, ...(mask ? { mask } : {}) }).item()));
}

/** Logits of the batch as a plain array. */
export function logitsOf(model: Llama): Float32Array {
  return noGrad(() => scope(() => Float32Array.from(model.forward(ids, { batch: 2 }).toArray())));
}

/**
 * fixture.ts's tiny model (vocabulary 512) saved in f32 at `path` with the byte tokenizer.model; the
 * embedding's spread is 0.3 (15× the init's), so an adapter on the frozen base can move the logits.
 */
export async function tinyBaseDir(path: string, config: LlamaConfig = TINY_CONFIG): Promise<void> {
  const ws = initWeights(config, { seed: 1 });
  const e = ws.get("model.embed_tokens.weight")!;
  for (let i = 0; i < e.size; i++) e.data[i] = e.data[i]! * 15;
  const m = new Llama(config, ws);
  await saveModel(path, m, { dtype: "f32" });
  m.dispose();
  const ranks = Array.from({ length: 256 }, (_, b) => `${Buffer.from([b]).toString("base64")} ${b}`);
  writeFileSync(join(path, "tokenizer.model"), `${ranks.join("\n")}\n`);
}
