// The weights of a Llama model by Hugging Face name (spec §2.8), with the shape the config gives each,
// and a seeded random initialisation for training from scratch.
//
// Initialisation is not described in the paper (spec §2.4). herd's choice, after GPT-2/torchtitan:
// embeddings and linear weights with standard deviation 0.02, the two projections that write into the
// residual stream (o_proj, down_proj) with 0.02/√(2L), RMSNorm weights 1. Values are drawn from a sum of
// four uniforms scaled to that deviation (bell-shaped, bounded at ±2√3·σ ≈ ±3.46σ), which is fast
// enough to make the 1.2B-parameter benchmark model in seconds.
import { Rng } from "../core/rng.js";
import type { DType } from "../tensor/dtype.js";
import { encodeHalf } from "../tensor/dtype.js";
import { halfZeros, parameter, type Tensor } from "../tensor/tensor.js";
import type { LlamaConfig } from "./config.js";

export const EMBED = "model.embed_tokens.weight";
export const FINAL_NORM = "model.norm.weight";
export const LM_HEAD = "lm_head.weight";

/** Name of a per-layer tensor, e.g. layerName(3, "self_attn.q_proj") = model.layers.3.self_attn.q_proj.weight. */
export function layerName(layer: number, part: string): string {
  return `model.layers.${layer}.${part}.weight`;
}

export const LAYER_PARTS = [
  "input_layernorm",
  "self_attn.q_proj",
  "self_attn.k_proj",
  "self_attn.v_proj",
  "self_attn.o_proj",
  "post_attention_layernorm",
  "mlp.gate_proj",
  "mlp.up_proj",
  "mlp.down_proj",
] as const;

/** Every tensor a checkpoint of this config holds, in HF's order, with its shape. */
export function weightShapes(c: LlamaConfig): Map<string, number[]> {
  const d = c.hiddenSize;
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const f = c.intermediateSize;
  const m = new Map<string, number[]>();
  m.set(EMBED, [c.vocabSize, d]);
  const per: Record<(typeof LAYER_PARTS)[number], number[]> = {
    input_layernorm: [d],
    "self_attn.q_proj": [q, d],
    "self_attn.k_proj": [kv, d],
    "self_attn.v_proj": [kv, d],
    "self_attn.o_proj": [d, q],
    post_attention_layernorm: [d],
    "mlp.gate_proj": [f, d],
    "mlp.up_proj": [f, d],
    "mlp.down_proj": [d, f],
  };
  for (let l = 0; l < c.numHiddenLayers; l++)
    for (const part of LAYER_PARTS) m.set(layerName(l, part), per[part]);
  m.set(FINAL_NORM, [d]);
  if (!c.tieWordEmbeddings) m.set(LM_HEAD, [c.vocabSize, d]);
  return m;
}

/** Standard deviation of a tensor's initial values (0 means: RMSNorm weight, all ones). */
export function initStd(c: LlamaConfig, name: string): number {
  if (name.endsWith("layernorm.weight") || name === FINAL_NORM) return 0;
  if (name.endsWith("o_proj.weight") || name.endsWith("down_proj.weight"))
    return 0.02 / Math.sqrt(2 * c.numHiddenLayers);
  return 0.02;
}

/** Fill out with a bell-shaped seeded distribution of standard deviation std (see header). */
export function fillRandom(out: Float32Array, std: number, seed: number): void {
  const r = new Rng(seed);
  // Four uniform draws per value (src/core/rng.ts); (u1+u2+u3+u4 − 2) has variance 4/12 = 1/3.
  const k = std * Math.sqrt(3) * 2 ** -32;
  for (let i = 0; i < out.length; i++) {
    const acc = r.nextU32() + r.nextU32() + r.nextU32() + r.nextU32();
    out[i] = (acc - 2 * 2 ** 32) * k;
  }
}

/**
 * Fresh weights for `config`: f32 trainable parameters (dtype "f32", the default) or bf16 tensors for
 * inference experiments. Same seed, same weights.
 */
export function initWeights(
  c: LlamaConfig,
  opts: { seed?: number; dtype?: DType } = {},
): Map<string, Tensor> {
  const seed = opts.seed ?? 1;
  const dtype = opts.dtype ?? "f32";
  const out = new Map<string, Tensor>();
  let i = 0;
  for (const [name, shape] of weightShapes(c)) {
    i++;
    let n = 1;
    for (const dim of shape) n *= dim;
    const std = initStd(c, name);
    // Half tensors are filled a block at a time so no f32 copy of a large matrix is ever made.
    if (dtype !== "f32") {
      const t = halfZeros(shape, dtype).keep();
      const bits = t.halfBits;
      const block = new Float32Array(Math.min(n, 1 << 20));
      for (let o = 0; o < n; o += block.length) {
        const len = Math.min(block.length, n - o);
        const part = block.subarray(0, len);
        if (std === 0) part.fill(1);
        else fillRandom(part, std, seed * 1000003 + i * 7919 + o);
        encodeHalf(part, dtype, bits.subarray(o, o + len));
      }
      t.name = name;
      out.set(name, t);
      continue;
    }
    const values = new Float32Array(n);
    if (std === 0) values.fill(1);
    else fillRandom(values, std, seed * 1000003 + i * 7919);
    out.set(name, parameter(values, shape, name));
  }
  return out;
}
