// Named model shapes and the arithmetic of a shape: parameter count (spec §2.3), FLOPs per token, KV-cache
// bytes per token, and weight memory at a storage dtype. The published presets are the Llama 3.1/3.2
// text models of spec §2.1; `tiny` and `small` are shapes for training on a laptop CPU.
import { type DType, dtypeBytes } from "../tensor/dtype.js";
import { ffnHiddenSize, LLAMA3_STOP_IDS, type LlamaConfig, llama3RopeScaling } from "./config.js";

const LLAMA3_VOCAB = 128256;

function published(
  dim: number,
  layers: number,
  heads: number,
  multipleOf: number,
  mult: number,
  tied: boolean,
  ropeFactor: number,
): LlamaConfig {
  return {
    hiddenSize: dim,
    intermediateSize: ffnHiddenSize(dim, multipleOf, mult),
    numHiddenLayers: layers,
    numAttentionHeads: heads,
    numKeyValueHeads: 8,
    headDim: dim / heads,
    vocabSize: LLAMA3_VOCAB,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: llama3RopeScaling(ropeFactor),
    tieWordEmbeddings: tied,
    maxPositionEmbeddings: 131072,
    bosTokenId: 128000,
    eosTokenIds: [...LLAMA3_STOP_IDS],
  };
}

function small(
  dim: number,
  layers: number,
  heads: number,
  kvHeads: number,
  vocab: number,
  ctx: number,
): LlamaConfig {
  return {
    hiddenSize: dim,
    intermediateSize: ffnHiddenSize(dim, 32, null),
    numHiddenLayers: layers,
    numAttentionHeads: heads,
    numKeyValueHeads: kvHeads,
    headDim: dim / heads,
    vocabSize: vocab,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: null,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: ctx,
    bosTokenId: 0,
    eosTokenIds: [1],
  };
}

/** Preset shapes by name. Published ones follow spec §2.1 (dim, layers, heads, FFN rule, RoPE scaling). */
export const PRESETS: Readonly<Record<string, LlamaConfig>> = {
  "llama3.2-1b": published(2048, 16, 32, 256, 1.5, true, 32),
  "llama3.2-3b": published(3072, 28, 24, 256, 1.0, true, 32),
  "llama3.1-8b": published(4096, 32, 32, 1024, 1.3, false, 8),
  "llama3.1-70b": published(8192, 80, 64, 4096, 1.3, false, 8),
  "llama3.1-405b": published(16384, 126, 128, 4096, 1.2, false, 8),
  /** ~1.2M parameters: unit tests of training, seconds per step on one core. */
  tiny: small(128, 6, 4, 2, 512, 256),
  /** ~14M parameters: the laptop pre-training run (vocabulary of 4,096 from the BPE trainer). */
  small: small(384, 8, 6, 2, 4096, 1024),
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** A copy of a preset's config; errors list the names. */
export function preset(name: string): LlamaConfig {
  const c = PRESETS[name];
  if (!c) throw new Error(`unknown preset '${name}' (have: ${presetNames().join(", ")})`);
  return structuredClone(c);
}

export interface ParamBreakdown {
  /** Embedding rows V·d. */
  embedding: number;
  /** Output head V·d, 0 when tied. */
  output: number;
  /** Per block: Wq, Wk, Wv, Wo. */
  attentionPerLayer: number;
  /** Per block: W1 (gate), W3 (up), W2 (down). */
  ffnPerLayer: number;
  /** Per block: the two RMSNorm weights. */
  normsPerLayer: number;
  /** Final RMSNorm. */
  finalNorm: number;
  total: number;
  /** Everything but the embedding and the output head (spec §2.3's column). */
  nonEmbedding: number;
}

/** Parameter count (spec §2.3): V·d·(tied ? 1 : 2) + L·(2dHh + 2dKh + 3dF + 2d) + d. */
export function paramBreakdown(c: LlamaConfig): ParamBreakdown {
  const d = c.hiddenSize;
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const embedding = c.vocabSize * d;
  const output = c.tieWordEmbeddings ? 0 : embedding;
  const attentionPerLayer = 2 * d * q + 2 * d * kv;
  const ffnPerLayer = 3 * d * c.intermediateSize;
  const normsPerLayer = 2 * d;
  const total =
    embedding + output + c.numHiddenLayers * (attentionPerLayer + ffnPerLayer + normsPerLayer) + d;
  return {
    embedding,
    output,
    attentionPerLayer,
    ffnPerLayer,
    normsPerLayer,
    finalNorm: d,
    total,
    nonEmbedding: total - embedding - output,
  };
}

export function paramCount(c: LlamaConfig): number {
  return paramBreakdown(c).total;
}

/**
 * Forward FLOPs for one token at `context` earlier tokens: 2 per multiply-add of every weight matrix
 * (the embedding lookup is free, the output head is not) plus attention's q·kᵀ and p·v,
 * 4·L·H·h_d·context. Training (forward + backward) is 3× this.
 */
export function flopsPerToken(c: LlamaConfig, context = 0): { forward: number; training: number } {
  const p = paramBreakdown(c);
  const matmulParams = c.numHiddenLayers * (p.attentionPerLayer + p.ffnPerLayer) + c.vocabSize * c.hiddenSize;
  const attn = 4 * c.numHiddenLayers * c.numAttentionHeads * c.headDim * context;
  const forward = 2 * matmulParams + attn;
  return { forward, training: 3 * forward };
}

/** KV-cache bytes per token: 2 (K and V) · L · K · h_d · bytes per element (spec §2.3). */
export function kvBytesPerToken(c: LlamaConfig, dtype: DType = "bf16"): number {
  return 2 * c.numHiddenLayers * c.numKeyValueHeads * c.headDim * dtypeBytes[dtype];
}

/** Bytes of the weights stored in `dtype`. */
export function weightBytes(c: LlamaConfig, dtype: DType): number {
  return paramCount(c) * dtypeBytes[dtype];
}

/**
 * Bytes of weights one decode step reads: every matrix once (the embedding contributes one row, unless it
 * is also the output head), the norms. This over the memory bandwidth is the decode roofline.
 */
export function decodeBytesPerToken(c: LlamaConfig, dtype: DType): number {
  const p = paramBreakdown(c);
  const embRow = c.tieWordEmbeddings ? 0 : c.hiddenSize;
  return (p.total - p.embedding + (c.tieWordEmbeddings ? p.embedding : embRow)) * dtypeBytes[dtype];
}
