// The Llama 3 model configuration: plain data, one field per field of Hugging Face's `config.json`
// (LlamaConfig), read from HF configs and Meta's `params.json` and written back with exactly HF's keys.
// Spec: ../shared/spec/llama3.md §2.1 (hyperparameters), §2.2 (FFN size), §2.6 (llama3 RoPE scaling).
// Fields are checked with src/core/schema.ts (one wording for every config's errors).
import { validateField } from "../core/schema.js";

/** The "llama3" RoPE frequency scaling of Llama 3.1 and 3.2 (spec §2.6). */
export interface RopeScaling {
  ropeType: "llama3";
  /** s: low-frequency bands are divided by this (8 for 3.1, 32 for 3.2 1B/3B). */
  factor: number;
  /** α and β: wavelengths above L₀/α are fully scaled, below L₀/β kept, smoothed between. */
  lowFreqFactor: number;
  highFreqFactor: number;
  /** L₀: the context length of the unscaled pre-training (8192). */
  originalMaxPositionEmbeddings: number;
}

export interface LlamaConfig {
  /** d: model dimension (`hidden_size`, Meta `dim`). */
  hiddenSize: number;
  /** F: SwiGLU hidden size (`intermediate_size`). */
  intermediateSize: number;
  /** L: Transformer blocks (`num_hidden_layers`, Meta `n_layers`). */
  numHiddenLayers: number;
  /** H: query heads. */
  numAttentionHeads: number;
  /** K: key/value heads (grouped-query attention). */
  numKeyValueHeads: number;
  /** h_d: dimension of one head (HF `head_dim`, default d/H). */
  headDim: number;
  /** V: embedding rows. */
  vocabSize: number;
  rmsNormEps: number;
  /** θ: RoPE base (500,000 for Llama 3). */
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** The output projection is the input embedding (3.2 1B/3B). */
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  /** Generation stops on any of these (HF allows one id or a list). */
  eosTokenIds: number[];
}

/** The stop ids of the Llama 3 instruct models: <|end_of_text|>, <|eom_id|>, <|eot_id|> (spec §2.9). */
/** Stop ids of a model: its config's eos ids and, for a Llama 3 vocabulary, every Llama 3 end id. */
export function stopIdsOf(c: LlamaConfig): number[] {
  return [...new Set([...c.eosTokenIds, ...(c.vocabSize === 128256 ? LLAMA3_STOP_IDS : [])])];
}

export const LLAMA3_STOP_IDS: readonly number[] = [128001, 128008, 128009];

/** The Llama 3.1 scaling parameters (spec §2.6); 3.2 1B/3B use factor 32. */
export function llama3RopeScaling(factor = 8): RopeScaling {
  return {
    ropeType: "llama3",
    factor,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  };
}

// --- validation helpers ---------------------------------------------------------------------------

/**
 * Upper bounds on config integers: well above every published Llama (405B: 126 layers, d 16384, F 53248,
 * 128 heads, V 128,256, 131,072 positions), low enough that a hostile config cannot make herd allocate
 * or loop over absurd sizes (the weights a config implies are checked against the files separately).
 */
export const CONFIG_LIMITS = {
  layers: 512,
  hiddenSize: 65536,
  intermediateSize: 262144,
  heads: 1024,
  headDim: 4096,
  vocabSize: 4194304,
  positions: 16777216,
} as const;

type Json = Record<string, unknown>;

function field(file: string, name: string, msg: string): Error {
  return new Error(`${file}: field '${name}' ${msg}`);
}

/** A positive integer field of at most `max` (src/core/schema.ts's wording: "must be at most 512, got …"). */
function posInt(obj: Json, name: string, file: string, max: number, fallback?: number): number {
  const f = { type: "integer", min: 0, minExclusive: true, max, default: fallback, doc: name } as const;
  return validateField(f, obj[name] ?? undefined, file, name) as number;
}

function posNum(obj: Json, name: string, file: string, fallback?: number): number {
  const f = { type: "number", min: 0, minExclusive: true, default: fallback, doc: name } as const;
  return validateField(f, obj[name] ?? undefined, file, name) as number;
}

function tokenId(v: unknown, name: string, file: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
    throw field(file, name, `must be a token id (integer ≥ 0), got ${JSON.stringify(v)}`);
  return v;
}

/** Check the relations between fields (shared by every constructor). */
export function validateConfig(c: LlamaConfig, file = "config"): LlamaConfig {
  if (c.numAttentionHeads % c.numKeyValueHeads !== 0)
    throw new Error(
      `${file}: field 'num_key_value_heads' (${c.numKeyValueHeads}) must divide 'num_attention_heads' (${c.numAttentionHeads})`,
    );
  if (c.headDim % 2 !== 0) throw new Error(`${file}: field 'head_dim' (${c.headDim}) must be even for RoPE`);
  if (c.bosTokenId !== null && c.bosTokenId >= c.vocabSize)
    throw new Error(
      `${file}: field 'bos_token_id' (${c.bosTokenId}) is outside the vocabulary (${c.vocabSize})`,
    );
  for (const id of c.eosTokenIds)
    if (id >= c.vocabSize)
      throw new Error(`${file}: field 'eos_token_id' (${id}) is outside the vocabulary (${c.vocabSize})`);
  const s = c.ropeScaling;
  if (s && !(s.highFreqFactor > s.lowFreqFactor))
    throw new Error(
      `${file}: field 'rope_scaling.high_freq_factor' (${s.highFreqFactor}) must exceed 'low_freq_factor' (${s.lowFreqFactor})`,
    );
  return c;
}

function ropeScalingFrom(v: unknown, file: string): RopeScaling | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== "object" || Array.isArray(v))
    throw field(file, "rope_scaling", "must be an object or null");
  const o = v as Json;
  const type = o.rope_type ?? o.type;
  if (type === "default") return null;
  if (type !== "llama3")
    throw field(file, "rope_scaling.rope_type", `'${String(type)}' is not supported (only "llama3")`);
  const sub = (name: string) => `rope_scaling.${name}`;
  const num = (name: string) => {
    const x = o[name];
    if (typeof x !== "number" || !Number.isFinite(x) || x <= 0)
      throw field(file, sub(name), `must be a positive number, got ${JSON.stringify(x)}`);
    return x;
  };
  const orig = num("original_max_position_embeddings");
  if (!Number.isInteger(orig) || orig > CONFIG_LIMITS.positions)
    throw field(
      file,
      sub("original_max_position_embeddings"),
      `must be an integer of at most ${CONFIG_LIMITS.positions}, got ${orig}`,
    );
  return {
    ropeType: "llama3",
    factor: num("factor"),
    lowFreqFactor: num("low_freq_factor"),
    highFreqFactor: num("high_freq_factor"),
    originalMaxPositionEmbeddings: orig,
  };
}

// --- HF config.json -------------------------------------------------------------------------------

/** Parse an HF `config.json` object; `file` names it in errors. */
export function fromHFConfig(json: unknown, file = "config.json"): LlamaConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new Error(`${file}: not a JSON object`);
  const o = json as Json;
  if (o.model_type !== undefined && o.model_type !== "llama")
    throw field(file, "model_type", `is '${String(o.model_type)}'; herd reads "llama" models`);
  if (o.hidden_act !== undefined && o.hidden_act !== "silu")
    throw field(file, "hidden_act", `is '${String(o.hidden_act)}'; Llama uses "silu" (SwiGLU)`);
  for (const b of ["attention_bias", "mlp_bias"])
    if (o[b] === true) throw field(file, b, "is true; Llama 3 has no biases and herd does not support them");
  const hiddenSize = posInt(o, "hidden_size", file, CONFIG_LIMITS.hiddenSize);
  const heads = posInt(o, "num_attention_heads", file, CONFIG_LIMITS.heads);
  if (o.head_dim == null && hiddenSize % heads !== 0)
    throw field(file, "hidden_size", `(${hiddenSize}) is not a multiple of num_attention_heads (${heads})`);
  const eos = o.eos_token_id;
  let eosTokenIds: number[];
  if (eos === undefined || eos === null) eosTokenIds = [];
  else if (Array.isArray(eos)) eosTokenIds = eos.map((v) => tokenId(v, "eos_token_id", file));
  else eosTokenIds = [tokenId(eos, "eos_token_id", file)];
  const tie = o.tie_word_embeddings ?? false;
  if (typeof tie !== "boolean") throw field(file, "tie_word_embeddings", "must be true or false");
  return validateConfig(
    {
      hiddenSize,
      intermediateSize: posInt(o, "intermediate_size", file, CONFIG_LIMITS.intermediateSize),
      numHiddenLayers: posInt(o, "num_hidden_layers", file, CONFIG_LIMITS.layers),
      numAttentionHeads: heads,
      numKeyValueHeads: posInt(o, "num_key_value_heads", file, CONFIG_LIMITS.heads, heads),
      headDim: posInt(
        o,
        "head_dim",
        file,
        CONFIG_LIMITS.headDim,
        o.head_dim == null ? hiddenSize / heads : undefined,
      ),
      vocabSize: posInt(o, "vocab_size", file, CONFIG_LIMITS.vocabSize),
      rmsNormEps: posNum(o, "rms_norm_eps", file, 1e-6),
      ropeTheta: posNum(o, "rope_theta", file, 10000),
      ropeScaling: ropeScalingFrom(o.rope_scaling, file),
      tieWordEmbeddings: tie,
      maxPositionEmbeddings: posInt(o, "max_position_embeddings", file, CONFIG_LIMITS.positions, 2048),
      bosTokenId: o.bos_token_id == null ? null : tokenId(o.bos_token_id, "bos_token_id", file),
      eosTokenIds,
    },
    file,
  );
}

/** HF's name for a storage dtype in `torch_dtype`. */
export function torchDtypeName(dtype: "f32" | "bf16" | "f16"): string {
  return { f32: "float32", bf16: "bfloat16", f16: "float16" }[dtype];
}

/** The `config.json` object of a `LlamaForCausalLM` checkpoint with these weights, keys as HF writes them. */
export function toHFConfig(c: LlamaConfig, dtype: "f32" | "bf16" | "f16" = "f32"): Record<string, unknown> {
  const s = c.ropeScaling;
  return {
    architectures: ["LlamaForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds.length ? c.eosTokenIds : null,
    head_dim: c.headDim,
    hidden_act: "silu",
    hidden_size: c.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: c.intermediateSize,
    max_position_embeddings: c.maxPositionEmbeddings,
    mlp_bias: false,
    model_type: "llama",
    num_attention_heads: c.numAttentionHeads,
    num_hidden_layers: c.numHiddenLayers,
    num_key_value_heads: c.numKeyValueHeads,
    pretraining_tp: 1,
    rms_norm_eps: c.rmsNormEps,
    rope_scaling: s
      ? {
          factor: s.factor,
          high_freq_factor: s.highFreqFactor,
          low_freq_factor: s.lowFreqFactor,
          original_max_position_embeddings: s.originalMaxPositionEmbeddings,
          rope_type: "llama3",
        }
      : null,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: c.tieWordEmbeddings,
    torch_dtype: torchDtypeName(dtype),
    use_cache: true,
    vocab_size: c.vocabSize,
  };
}

// --- Meta params.json -----------------------------------------------------------------------------

/** FFN hidden size from Meta's params (spec §2.2): multiple_of·ceil(floor(mult·floor(8d/3)) / multiple_of). */
export function ffnHiddenSize(dim: number, multipleOf: number, ffnDimMultiplier: number | null): number {
  let h = Math.trunc((2 * (4 * dim)) / 3);
  if (ffnDimMultiplier !== null) h = Math.trunc(ffnDimMultiplier * h);
  return multipleOf * Math.ceil(h / multipleOf);
}

export interface MetaParamsOptions {
  /** Overrides the scaling implied by `use_scaled_rope` (Meta's params do not carry its parameters). */
  ropeScaling?: RopeScaling | null;
  tieWordEmbeddings?: boolean;
  maxPositionEmbeddings?: number;
  bosTokenId?: number | null;
  eosTokenIds?: number[];
}

/**
 * Config from Meta's `params.json`. With `use_scaled_rope`, the scaling is Meta's (factor 8, α 1, β 4,
 * L₀ 8192), except factor `rope_scaling_factor` when given and 32 for the 3.2 1B/3B shapes (spec §2.6:
 * Meta's code hard-codes 8; 32 is what HF ships and Meta confirmed). Vocabularies of 128,256 get the
 * Llama 3 token ids; tied embeddings default to the 3.2 1B/3B shapes.
 */
export function fromMetaParams(
  params: unknown,
  file = "params.json",
  opts: MetaParamsOptions = {},
): LlamaConfig {
  if (typeof params !== "object" || params === null || Array.isArray(params))
    throw new Error(`${file}: not a JSON object`);
  const o = params as Json;
  const dim = posInt(o, "dim", file, CONFIG_LIMITS.hiddenSize);
  const heads = posInt(o, "n_heads", file, CONFIG_LIMITS.heads);
  if (dim % heads !== 0) throw field(file, "dim", `(${dim}) is not a multiple of n_heads (${heads})`);
  const layers = posInt(o, "n_layers", file, CONFIG_LIMITS.layers);
  const vocab = posInt(o, "vocab_size", file, CONFIG_LIMITS.vocabSize);
  const multipleOf = posInt(o, "multiple_of", file, CONFIG_LIMITS.intermediateSize, 256);
  const mult = o.ffn_dim_multiplier == null ? null : posNum(o, "ffn_dim_multiplier", file);
  const isLlama3Vocab = vocab === 128256;
  const small32 = isLlama3Vocab && ((dim === 2048 && layers === 16) || (dim === 3072 && layers === 28));
  let ropeScaling: RopeScaling | null = null;
  if (opts.ropeScaling !== undefined) ropeScaling = opts.ropeScaling;
  else if (o.use_scaled_rope === true) {
    const f = o.rope_scaling_factor == null ? (small32 ? 32 : 8) : posNum(o, "rope_scaling_factor", file);
    ropeScaling = llama3RopeScaling(f);
  }
  const ffn = ffnHiddenSize(dim, multipleOf, mult);
  if (ffn > CONFIG_LIMITS.intermediateSize)
    throw field(
      file,
      mult === null ? "multiple_of" : "ffn_dim_multiplier",
      `gives an FFN size of ${ffn}, more than ${CONFIG_LIMITS.intermediateSize}`,
    );
  return validateConfig(
    {
      hiddenSize: dim,
      intermediateSize: ffn,
      numHiddenLayers: layers,
      numAttentionHeads: heads,
      numKeyValueHeads: posInt(o, "n_kv_heads", file, CONFIG_LIMITS.heads, heads),
      headDim: dim / heads,
      vocabSize: vocab,
      rmsNormEps: posNum(o, "norm_eps", file, 1e-5),
      ropeTheta: posNum(o, "rope_theta", file, 10000),
      ropeScaling,
      tieWordEmbeddings: opts.tieWordEmbeddings ?? small32,
      maxPositionEmbeddings: opts.maxPositionEmbeddings ?? (isLlama3Vocab ? 131072 : 2048),
      bosTokenId: opts.bosTokenId !== undefined ? opts.bosTokenId : isLlama3Vocab ? 128000 : null,
      eosTokenIds: opts.eosTokenIds ?? (isLlama3Vocab ? [...LLAMA3_STOP_IDS] : []),
    },
    file,
  );
}
