// Shared by the LoRA tests: a tiny Llama (2 layers, GQA, tied embedding) whose matrices are f32, bf16 or
// Q8_0/Q4_0, a fixed token batch, and the model's loss as a plain number.
import { Llama, type LlamaConfig } from "../../src/model/index.js";
import { initWeights } from "../../src/model/weights.js";
import { noGrad, type QuantTensor, quantize, scope, type Tensor } from "../../src/tensor/index.js";

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

/** The tiny model with its matrices in `dtype` (the same random f32 values, rounded or quantised). */
export function tinyModel(dtype: BaseDtype, seed = 5): Llama {
  const half = dtype === "bf16";
  const ws = initWeights(tinyConfig, { seed, dtype: half ? "bf16" : "f32" });
  if (dtype === "f32" || dtype === "bf16") return new Llama(tinyConfig, ws);
  const q = new Map<string, Tensor | QuantTensor>();
  for (const [name, t] of ws) {
    if (t.rank !== 2) q.set(name, t);
    else {
      q.set(name, quantize(t, dtype));
      t.dispose();
    }
  }
  return new Llama(tinyConfig, q);
}

/** A batch of 2 rows × 7 tokens and its next-token targets. */
export const ids = Int32Array.from({ length: 14 }, (_, i) => (i * 7 + 3) % 48);
export const targets = Int32Array.from({ length: 14 }, (_, i) => (i * 5 + 11) % 48);

/** The mean cross-entropy of the batch, without recording. */
export function lossValue(model: Llama): number {
  return noGrad(() => scope(() => model.loss(ids, targets, { batch: 2 }).item()));
}

/** Logits of the batch as a plain array. */
export function logitsOf(model: Llama): Float32Array {
  return noGrad(() => scope(() => Float32Array.from(model.forward(ids, { batch: 2 }).toArray())));
}
