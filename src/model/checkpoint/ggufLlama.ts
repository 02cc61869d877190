// Llama models in GGUF files, as llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel) lays them out:
// metadata ↔ LlamaConfig, GGUF tensor names ↔ HF names, and the Q/K row order.
//
//   llama.context_length · embedding_length · block_count · feed_forward_length · vocab_size
//   llama.attention.head_count · head_count_kv · layer_norm_rms_epsilon · key_length · value_length
//   llama.rope.freq_base · rope.dimension_count
//   token_embd · blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up,
//   ffn_down} · output_norm · output (absent: tied to token_embd) · rope_freqs (Llama 3.1 scaling)
// A matrix [n, k] is stored with ggml dims [k, n]. attn_q/attn_k hold Meta's interleaved-pair row order
// (llama.cpp rotates pairs), so they are permuted to HF's split halves on reading and back on writing.
// Llama 3.1 RoPE scaling is stored as `rope_freqs.weight`, one divisor per frequency band; the reader
// recovers the llama3 scaling parameters from it and checks they reproduce every stored divisor.
// Weight types read: F32, F16, BF16 (as stored, or widened to f32), and Q8_0, Q4_0, Q4_K, Q5_K and Q6_K
// matrices as QuantTensors holding the file's blocks as stored (herd's block layouts are ggml's; the
// K-quants' in ggufKQuant.ts), computed by the quantised kernels; Q5_0/Q5_1 (a K-quant mix's fallback for
// rows that are not whole 256-blocks) are dequantised on loading. Other ggml types are refused by name.
// Writing: f32/f16/bf16, q8_0/q4_0 (every matrix), or llama.cpp's Q4_K_M / Q5_K_M mixes (kQuantMixType)
// quantised by ggml's reference rules (ggufQuantize.ts), tensor by tensor and a row at a time.
import { decodeHalf, encodeHalf } from "../../tensor/dtype.js";
import {
  dequantizeRow,
  type QuantFormat,
  QuantTensor,
  quantizeRow,
  quantRowBytes,
} from "../../tensor/quant.js";
import { halfZeros, type Tensor, zeros } from "../../tensor/tensor.js";
import type { Tokenizer } from "../../tokenizer/tiktoken.js";
import { CONFIG_LIMITS, type LlamaConfig, type RopeScaling, validateConfig } from "../config.js";
import { baseInvFreq, scaleFrequency } from "../rope.js";
import { EMBED, FINAL_NORM, type LAYER_PARTS, LM_HEAD, weightShapes } from "../weights.js";
import { checkFiniteBlocks, checkTensorFinite } from "./finite.js";
import {
  GGML,
  GGML_TYPES,
  type GGUFEntry,
  GGUFFile,
  type GGUFTensorOut,
  ggmlTensorBytes,
  gguf,
  writeGGUF,
} from "./gguf.js";
import { dequantizeQ5, type GGMLQuant, quantizeGGML } from "./ggufQuantize.js";
import { vocabMetadata } from "./ggufVocab.js";
import { permuteRowsInPlace } from "./permute.js";

const PART_NAMES: Record<(typeof LAYER_PARTS)[number], string> = {
  input_layernorm: "attn_norm",
  "self_attn.q_proj": "attn_q",
  "self_attn.k_proj": "attn_k",
  "self_attn.v_proj": "attn_v",
  "self_attn.o_proj": "attn_output",
  post_attention_layernorm: "ffn_norm",
  "mlp.gate_proj": "ffn_gate",
  "mlp.up_proj": "ffn_up",
  "mlp.down_proj": "ffn_down",
};
export const ROPE_FREQS = "rope_freqs.weight";

/** HF name → GGUF name. */
export function hfToGGUFName(hf: string): string {
  if (hf === EMBED) return "token_embd.weight";
  if (hf === FINAL_NORM) return "output_norm.weight";
  if (hf === LM_HEAD) return "output.weight";
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(hf);
  const part = m && PART_NAMES[m[2] as keyof typeof PART_NAMES];
  if (!m || !part) throw new Error(`GGUF: no GGUF name for tensor '${hf}'`);
  return `blk.${m[1]}.${part}.weight`;
}

/** f32 metadata as the shortest decimal that rounds to it (1e-5 stored as f32 reads back as 1e-5). */
function shortestF32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

/** Recover llama3 scaling (spec §2.6) from the stored divisors, or null when every divisor is 1. */
function scalingFromFactors(path: string, factors: Float32Array, c: LlamaConfig): RopeScaling | null {
  const base = baseInvFreq(c.headDim, c.ropeTheta);
  if (factors.length !== base.length)
    throw new Error(
      `${path}: tensor '${ROPE_FREQS}' has ${factors.length} values; head_dim ${c.headDim} needs ${base.length}`,
    );
  let s = 1;
  for (const f of factors) s = Math.max(s, f);
  if (s === 1) return null;
  const alpha = 1;
  const beta = 4;
  // L₀ from a blended band when there is one: 1/f = (1−γ)/s + γ, γ = (L₀/λ − α)/(β − α).
  let l0 = 8192;
  for (let i = 0; i < factors.length; i++) {
    const f = factors[i]!;
    if (f > 1.0001 && f < s * 0.9999) {
      const gamma = (1 / f - 1 / s) / (1 - 1 / s);
      l0 = Math.round(((gamma * (beta - alpha) + alpha) * 2 * Math.PI) / base[i]!);
      break;
    }
  }
  const cand: RopeScaling = {
    ropeType: "llama3",
    factor: shortestF32(Math.fround(s)),
    lowFreqFactor: alpha,
    highFreqFactor: beta,
    originalMaxPositionEmbeddings: l0,
  };
  for (let i = 0; i < factors.length; i++) {
    const want = base[i]! / scaleFrequency(base[i]!, cand);
    if (Math.abs(want - factors[i]!) > 1e-4 * want)
      throw new Error(
        `${path}: tensor '${ROPE_FREQS}'[${i}] is ${factors[i]}; herd's llama3 RoPE scaling (factor ${cand.factor}, α 1, β 4, L₀ ${l0}) gives ${want}`,
      );
  }
  return cand;
}

/** The divisors llama.cpp's converter stores as rope_freqs.weight for `c`'s llama3 scaling. */
export function ropeFreqFactors(c: LlamaConfig): Float32Array {
  const base = baseInvFreq(c.headDim, c.ropeTheta);
  return Float32Array.from(base, (w) => (c.ropeScaling ? w / scaleFrequency(w, c.ropeScaling) : 1));
}

function num(f: GGUFFile, key: string, required: boolean, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const e = f.metadata.get(key);
  if (!e) {
    if (required) throw new Error(`${f.path}: metadata key '${key}' is missing`);
    return undefined;
  }
  const v = typeof e.value === "bigint" ? Number(e.value) : e.value;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || v > max)
    throw new Error(
      `${f.path}: metadata key '${key}' must be a positive number of at most ${max}, got ${String(e.value)}`,
    );
  return v;
}

function int(f: GGUFFile, key: string, required: boolean, max: number): number | undefined {
  const v = num(f, key, required, max);
  if (v !== undefined && !Number.isInteger(v))
    throw new Error(`${f.path}: metadata key '${key}' must be an integer, got ${v}`);
  return v;
}

/** The LlamaConfig of a GGUF file's `llama.*` metadata (rope_freqs.weight read for the 3.1 scaling). */
export function ggufConfig(f: GGUFFile): LlamaConfig {
  const arch = f.get("general.architecture");
  if (arch !== "llama")
    throw new Error(
      `${f.path}: metadata key 'general.architecture' is '${String(arch)}'; herd reads "llama" models`,
    );
  const L = CONFIG_LIMITS;
  const d = int(f, "llama.embedding_length", true, L.hiddenSize)!;
  const heads = int(f, "llama.attention.head_count", true, L.heads)!;
  const headDim = int(f, "llama.attention.key_length", false, L.headDim) ?? d / heads;
  if (!Number.isInteger(headDim))
    throw new Error(
      `${f.path}: metadata key 'llama.embedding_length' (${d}) is not a multiple of the head count (${heads})`,
    );
  const vDim = int(f, "llama.attention.value_length", false, L.headDim);
  if (vDim !== undefined && vDim !== headDim)
    throw new Error(
      `${f.path}: metadata key 'llama.attention.value_length' (${vDim}) differs from key_length (${headDim})`,
    );
  const ropeDim = int(f, "llama.rope.dimension_count", false, L.headDim);
  if (ropeDim !== undefined && ropeDim !== headDim)
    throw new Error(
      `${f.path}: metadata key 'llama.rope.dimension_count' (${ropeDim}) is not the head dim ${headDim} (partial RoPE is not Llama 3)`,
    );
  const embd = f.tensors.get("token_embd.weight");
  if (!embd) throw new Error(`${f.path}: tensor 'token_embd.weight' is missing`);
  const tokens = f.metadata.get("tokenizer.ggml.tokens")?.value;
  const vocab =
    int(f, "llama.vocab_size", false, L.vocabSize) ??
    (typeof tokens === "object" ? tokens.items.length : embd.dims[1]);
  if (vocab === undefined || vocab > L.vocabSize)
    throw new Error(
      `${f.path}: no vocabulary size (llama.vocab_size, tokenizer.ggml.tokens or token_embd's rows)`,
    );
  const id = (key: string): number | null => {
    const v = f.get(key);
    if (v === undefined) return null;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0)
      throw new Error(`${f.path}: metadata key '${key}' must be a token id, got ${String(v)}`);
    return v;
  };
  const eos = [id("tokenizer.ggml.eos_token_id"), id("tokenizer.ggml.eot_token_id")].filter(
    (x) => x !== null,
  );
  const c: LlamaConfig = {
    hiddenSize: d,
    intermediateSize: int(f, "llama.feed_forward_length", true, L.intermediateSize)!,
    numHiddenLayers: int(f, "llama.block_count", true, L.layers)!,
    numAttentionHeads: heads,
    numKeyValueHeads: int(f, "llama.attention.head_count_kv", false, L.heads) ?? heads,
    headDim,
    vocabSize: vocab,
    rmsNormEps: shortestF32(num(f, "llama.attention.layer_norm_rms_epsilon", true)!),
    ropeTheta: shortestF32(num(f, "llama.rope.freq_base", false) ?? 10000),
    ropeScaling: null,
    tieWordEmbeddings: !f.tensors.has("output.weight"),
    maxPositionEmbeddings: int(f, "llama.context_length", false, L.positions) ?? 2048,
    bosTokenId: id("tokenizer.ggml.bos_token_id"),
    eosTokenIds: [...new Set(eos)],
  };
  const rf = f.tensors.get(ROPE_FREQS);
  if (rf) {
    if (rf.type !== GGML.F32 || rf.dims.length !== 1)
      throw new Error(`${f.path}: tensor '${ROPE_FREQS}' must be a 1-D F32 tensor`);
    const factors = new Float32Array(rf.dims[0]!);
    f.readInto(ROPE_FREQS, new Uint8Array(factors.buffer));
    c.ropeScaling = scalingFromFactors(f.path, factors, c);
  }
  return validateConfig(c, f.path);
}

const QUANT_OF: Record<number, QuantFormat> = {
  [GGML.Q8_0]: "q8_0",
  [GGML.Q4_0]: "q4_0",
  12: "q4_k",
  13: "q5_k",
  14: "q6_k",
};

/** Permute whole rows (of `rowBytes` bytes) of each head between Meta's and HF's order (permute.ts). */
function permuteRowBytes(data: Uint8Array, heads: number, rowBytes: number, toHF: boolean): void {
  if (rowBytes % 2 === 0)
    permuteRowsInPlace(
      new Uint16Array(data.buffer, data.byteOffset, data.length / 2),
      heads,
      rowBytes / 2,
      toHF,
    );
  else throw new Error(`GGUF: internal: odd row size ${rowBytes}`);
}

/**
 * Read every weight of a GGUF Llama file by HF name. `dtype: "f32"` widens F16/BF16 to f32; "keep"
 * leaves them half tensors. Q8_0/Q4_0/Q4_K/Q5_K/Q6_K matrices become QuantTensors whatever `dtype` says.
 */
export function readGGUFWeights(
  f: GGUFFile,
  config: LlamaConfig,
  dtype: "f32" | "keep",
): Map<string, Tensor | QuantTensor> {
  const shapes = weightShapes(config);
  const wanted = new Map<string, string>();
  for (const hf of shapes.keys()) wanted.set(hfToGGUFName(hf), hf);
  for (const name of f.tensors.keys())
    if (!wanted.has(name) && name !== ROPE_FREQS)
      throw new Error(`${f.path}: tensor '${name}' is not a weight of a Llama model`);
  const out = new Map<string, Tensor | QuantTensor>();
  try {
    for (const [gname, hf] of wanted) {
      const info = f.tensors.get(gname);
      if (!info) throw new Error(`${f.path}: tensor '${gname}' is missing`);
      const shape = shapes.get(hf)!;
      const want = [...shape].reverse();
      if (info.dims.length !== want.length || info.dims.some((x, i) => x !== want[i]))
        throw new Error(
          `${f.path}: tensor '${gname}' has ggml dims [${info.dims}]; the metadata needs [${want}]`,
        );
      const heads = hf.endsWith("q_proj.weight")
        ? config.numAttentionHeads
        : hf.endsWith("k_proj.weight")
          ? config.numKeyValueHeads
          : 0;
      const [n, k] = [shape[0]!, shape[1] ?? 1];
      const tname = GGML_TYPES[info.type]!.name;
      let t: Tensor | QuantTensor;
      const quant = QUANT_OF[info.type];
      if (quant) {
        if (shape.length !== 2)
          throw new Error(`${f.path}: tensor '${gname}' is ${tname}; herd needs norms as F32/F16/BF16`);
        const q = QuantTensor.allocate(quant, [n, k]);
        f.readInto(gname, q.blocks);
        checkFiniteBlocks(q.blocks, quant, f.path, gname);
        if (heads) permuteRowBytes(q.blocks, heads, quantRowBytes(quant, k), true);
        q.name = hf;
        t = q;
      } else if (info.type === GGML.F32) {
        const z = zeros(shape);
        f.readInto(gname, new Uint8Array(z.data.buffer, z.data.byteOffset, z.data.byteLength));
        if (heads) permuteRowsInPlace(z.data, heads, k, true);
        t = z;
      } else if (info.type === GGML.F16 || info.type === GGML.BF16) {
        const half = info.type === GGML.F16 ? "f16" : "bf16";
        if (dtype === "keep") {
          const h = halfZeros(shape, half);
          const bits = h.halfBits;
          f.readInto(gname, new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength));
          if (heads) permuteRowsInPlace(bits, heads, k, true);
          t = h;
        } else {
          const bits = new Uint16Array(n * k);
          f.readInto(gname, new Uint8Array(bits.buffer));
          if (heads) permuteRowsInPlace(bits, heads, k, true);
          const z = zeros(shape);
          decodeHalf(bits, half, z.data as Float32Array<ArrayBuffer>);
          t = z;
        }
      } else if (info.type === 6 || info.type === 7) {
        // Q5_0 / Q5_1: what llama.cpp stores a K-quant mix's matrix as when its rows are not whole
        // 256-blocks; dequantised here as the K-quants are.
        const raw = new Uint8Array(info.bytes);
        f.readInto(gname, raw);
        const z = zeros(shape);
        dequantizeQ5(info.type === 6 ? "q5_0" : "q5_1", raw, n * k, z.data);
        if (heads) permuteRowsInPlace(z.data, heads, k, true);
        t = dtype === "keep" ? z.toDtype("bf16") : z;
        if (t !== z) z.dispose();
      } else
        throw new Error(
          `${f.path}: tensor '${gname}' is ${tname}; herd reads F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K GGUF weights`,
        );
      if (!(t instanceof QuantTensor)) {
        t.name = hf;
        checkTensorFinite(t, f.path);
      }
      out.set(hf, t);
    }
    return out;
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  }
}

/** Read a GGUF Llama file: its config and weights (HF names). */
export function readGGUFModel(
  path: string,
  dtype: "f32" | "keep" = "f32",
): { config: LlamaConfig; tensors: Map<string, Tensor | QuantTensor> } {
  const f = GGUFFile.open(path);
  try {
    const config = ggufConfig(f);
    return { config, tensors: readGGUFWeights(f, config, dtype) };
  } finally {
    f.close();
  }
}

// --- writing -----------------------------------------------------------------------------------------

export type GGUFExportType = "f32" | "f16" | "bf16" | "q8_0" | "q4_0" | "q4_k_m" | "q5_k_m";
export const GGUF_EXPORT_TYPES: readonly GGUFExportType[] = [
  "f32",
  "f16",
  "bf16",
  "q8_0",
  "q4_0",
  "q4_k_m",
  "q5_k_m",
];
/** The ggml types the writer stores (ggml.h's enum ggml_type). */
const T = { F32: 0, F16: 1, Q4_0: 2, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 };
const GGML_OF = { f32: T.F32, f16: T.F16, bf16: T.BF16, q8_0: T.Q8_0, q4_0: T.Q4_0 } as const;
const GGML_QUANT: Partial<Record<number, GGMLQuant>> = {
  [T.Q4_K]: "q4_k",
  [T.Q5_K]: "q5_k",
  [T.Q6_K]: "q6_k",
  [T.Q5_0]: "q5_0",
  [T.Q5_1]: "q5_1",
};
/** llama.cpp's general.file_type (enum llama_ftype: ALL_F32, MOSTLY_F16, _Q4_0, _Q8_0, _Q4_K_M, _Q5_K_M, _BF16). */
const FILE_TYPE: Record<GGUFExportType, number> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q8_0: 7,
  q4_k_m: 15,
  q5_k_m: 17,
  bf16: 32,
};

/** llama-quant.cpp's use_more_bits: the layers (first and last eighth, every third between) given 6 bits. */
function useMoreBits(i: number, n: number): boolean {
  const e = Math.trunc(n / 8);
  return i < e || i >= Math.trunc((7 * n) / 8) || (i - e) % 3 === 2;
}

/** llama-quant.cpp's tensor_type_fallback: a type whose block does not divide the row length `k`. */
function fallback(type: number, k: number): number {
  const block = GGML_TYPES[type]!.block;
  if (k % block === 0) return type;
  const next = { [T.Q4_K]: T.Q5_0, [T.Q5_K]: T.Q5_1, [T.Q6_K]: T.Q8_0 }[type] ?? type;
  return k % GGML_TYPES[next]!.block === 0 ? next : T.F16;
}

/**
 * The ggml type of the matrix `gname` (row length k) in a Q4_K_M / Q5_K_M file, by llama-quant.cpp's
 * llama_tensor_get_type for the llama architecture without an importance matrix: the output matrix (the
 * token embedding when tied) Q6_K, or Q8_0 when its rows are not whole 256-blocks; attn_v and ffn_down Q6_K
 * in the use_more_bits layers (a 70B's other attn_v Q5_K for Q4_K_M); everything else Q4_K (Q5_K); then the
 * fallback for rows that are not whole super-blocks (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, else F16).
 */
function kQuantMixType(c: LlamaConfig, mix: "q4_k_m" | "q5_k_m", gname: string, k: number): number {
  const base = mix === "q4_k_m" ? T.Q4_K : T.Q5_K;
  const layer = /^blk\.(\d+)\./.exec(gname);
  const i = layer ? Number(layer[1]) : -1;
  const n = c.numHiddenLayers;
  let type = base;
  if (gname === "output.weight" || (gname === "token_embd.weight" && c.tieWordEmbeddings))
    type = k % 256 === 0 ? T.Q6_K : T.Q8_0;
  else if (gname.endsWith(".attn_v.weight")) {
    if (useMoreBits(i, n)) type = T.Q6_K;
    // llama.cpp's LLM_TYPE_70B: a llama with 80 layers and grouped-query attention.
    else if (type === T.Q4_K && n === 80 && c.numAttentionHeads !== c.numKeyValueHeads) type = T.Q5_K;
  } else if (gname.endsWith(".ffn_down.weight") && useMoreBits(i, n)) type = T.Q6_K;
  return fallback(type, k);
}

/** One tensor of a GGUF export: GGUF name, HF name (null: rope_freqs), ggml dims and type, Q/K heads. */
export interface GGUFTensorPlan {
  name: string;
  hf: string | null;
  dims: number[];
  type: number;
  /** Heads whose rows are permuted to Meta's order (q_proj, k_proj), else 0. */
  heads: number;
}

/**
 * The tensors of `c` exported as `type`, in file order: RMSNorm weights and rope_freqs F32 (as llama.cpp's
 * converter writes them); matrices in `type`: q8_0 and q4_0 for every matrix (llama-quantize --pure; F16
 * when rows are not whole 32-blocks), q4_k_m / q5_k_m by llama.cpp's mix (kQuantMixType).
 */
export function ggufTensorPlan(c: LlamaConfig, type: GGUFExportType): GGUFTensorPlan[] {
  const plan: GGUFTensorPlan[] = [];
  if (c.ropeScaling) plan.push({ name: ROPE_FREQS, hf: null, dims: [c.headDim / 2], type: T.F32, heads: 0 });
  for (const [hf, shape] of weightShapes(c)) {
    const name = hfToGGUFName(hf);
    const k = shape[1] ?? shape[0]!;
    let t: number;
    if (shape.length === 1) t = T.F32;
    else if (type === "q4_k_m" || type === "q5_k_m") t = kQuantMixType(c, type, name, k);
    else
      t = GGML_OF[type] === T.Q8_0 || GGML_OF[type] === T.Q4_0 ? fallback(GGML_OF[type], k) : GGML_OF[type];
    const heads = hf.endsWith("q_proj.weight")
      ? c.numAttentionHeads
      : hf.endsWith("k_proj.weight")
        ? c.numKeyValueHeads
        : 0;
    plan.push({ name, hf, dims: [...shape].reverse(), type: t, heads });
  }
  return plan;
}

/** The metadata of a GGUF export (llama.* hyperparameters, the vocabulary and its special ids). */
export function ggufMetadata(
  c: LlamaConfig,
  tokenizer: Tokenizer | null,
  type: GGUFExportType,
  name = "herd model",
): Map<string, GGUFEntry> {
  const meta = new Map<string, GGUFEntry>();
  meta.set("general.architecture", gguf.str("llama"));
  meta.set("general.name", gguf.str(name));
  meta.set("general.alignment", gguf.u32(32));
  meta.set("general.file_type", gguf.u32(FILE_TYPE[type]));
  if (!["f32", "f16", "bf16"].includes(type)) meta.set("general.quantization_version", gguf.u32(2));
  meta.set("llama.vocab_size", gguf.u32(c.vocabSize));
  meta.set("llama.context_length", gguf.u32(c.maxPositionEmbeddings));
  meta.set("llama.embedding_length", gguf.u32(c.hiddenSize));
  meta.set("llama.block_count", gguf.u32(c.numHiddenLayers));
  meta.set("llama.feed_forward_length", gguf.u32(c.intermediateSize));
  meta.set("llama.rope.dimension_count", gguf.u32(c.headDim));
  meta.set("llama.attention.head_count", gguf.u32(c.numAttentionHeads));
  meta.set("llama.attention.head_count_kv", gguf.u32(c.numKeyValueHeads));
  meta.set("llama.attention.key_length", gguf.u32(c.headDim));
  meta.set("llama.attention.value_length", gguf.u32(c.headDim));
  meta.set("llama.attention.layer_norm_rms_epsilon", gguf.f32(c.rmsNormEps));
  meta.set("llama.rope.freq_base", gguf.f32(c.ropeTheta));
  for (const [k, v] of vocabMetadata(tokenizer, c.vocabSize, { bos: c.bosTokenId, eos: c.eosTokenIds }))
    meta.set(k, v);
  return meta;
}

/** HF row of GGUF row g of a q_proj/k_proj with `heads` heads of hd rows (permute.ts's metaRow inverted). */
function hfRowOf(g: number, hd: number): number {
  const h = Math.floor(g / hd);
  const r = g - h * hd;
  return h * hd + (r % 2 === 0 ? r / 2 : (r - 1) / 2 + hd / 2);
}

/**
 * The stored bytes of one tensor of the plan from its source `t`, a row at a time: the only buffers are
 * the output (the tensor's size in the file) and one row of f32, so nothing is widened whole. A source
 * already in the stored type (a quantised matrix, or half bits) is copied as held, its rows reordered.
 */
export function ggufTensorBytes(p: GGUFTensorPlan, t: Tensor | QuantTensor): Uint8Array {
  const k = p.dims[0]!;
  const n = p.dims[1] ?? 1;
  const out = new Uint8Array(ggmlTensorBytes(p.type, p.dims));
  const rb = out.length / n;
  const src = (g: number) => (p.heads ? hfRowOf(g, n / p.heads) : g);
  if (t instanceof QuantTensor && QUANT_OF[p.type] === t.format) {
    for (let g = 0; g < n; g++) out.set(t.blocks.subarray(src(g) * rb, (src(g) + 1) * rb), g * rb);
    return out;
  }
  const half = t instanceof QuantTensor || t.dtype === "f32" ? null : (t.dtype as "f16" | "bf16");
  const keep = half && p.type === (half === "f16" ? T.F16 : T.BF16);
  const row = new Float32Array(k);
  const u16 = new Uint16Array(out.buffer);
  for (let g = 0; g < n; g++) {
    const r = src(g);
    if (keep) {
      u16.set((t as Tensor).halfBits.subarray(r * k, (r + 1) * k), g * k);
      continue;
    }
    if (t instanceof QuantTensor) dequantizeRow(t.blocks, t.format, r, k, row);
    else if (half) decodeHalf(t.halfBits.subarray(r * k, (r + 1) * k), half, row);
    else row.set(t.data.subarray(r * k, (r + 1) * k));
    if (p.type === T.F32) out.set(new Uint8Array(row.buffer), g * rb);
    else if (p.type === T.F16 || p.type === T.BF16)
      encodeHalf(row, p.type === T.F16 ? "f16" : "bf16", u16.subarray(g * k, (g + 1) * k));
    else if (GGML_QUANT[p.type]) quantizeGGML(GGML_QUANT[p.type]!, row, out, g * rb);
    else quantizeRow(row, QUANT_OF[p.type]!, out, g * rb);
  }
  return out;
}

export interface GGUFExportSource {
  config: LlamaConfig;
  /** Every weight by HF name (f32, half or quantised). */
  weights: ReadonlyMap<string, Tensor | QuantTensor>;
  tokenizer: Tokenizer | null;
  name?: string;
}

/**
 * Write a Llama model as a GGUF file llama.cpp loads (atomic), its tensors laid out by ggufTensorPlan and
 * produced one at a time by ggufTensorBytes (so the export holds one tensor's stored bytes beside the
 * model). A quantised source matrix already in the stored type is copied as held.
 */
export function writeGGUFModel(
  path: string,
  src: GGUFExportSource,
  type: GGUFExportType,
  onTensor?: (name: string, index: number, count: number) => void,
): void {
  const c = src.config;
  const tensors: GGUFTensorOut[] = ggufTensorPlan(c, type).map((p) => {
    if (p.hf === null) {
      const factors = ropeFreqFactors(c);
      return { name: p.name, dims: p.dims, type: p.type, data: () => new Uint8Array(factors.buffer) };
    }
    const t = src.weights.get(p.hf);
    if (!t) throw new Error(`GGUF export: weight '${p.hf}' is missing`);
    return { name: p.name, dims: p.dims, type: p.type, data: () => ggufTensorBytes(p, t) };
  });
  writeGGUF(path, ggufMetadata(c, src.tokenizer, type, src.name), tensors, onTensor);
}
