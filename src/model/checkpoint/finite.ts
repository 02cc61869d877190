// Non-finite weights (NaN, ±Inf) in a checkpoint are refused when it is read: a model that holds one
// produces NaN logits for every token after it, so generation, perplexity and quantisation would give
// garbage without saying why. Errors name the file, the tensor and the first bad element.
//
// The scan reads a tensor's raw bits once, 32 bits at a time, OR-ing one comparison-free expression per
// word (an all-ones exponent field carries into the bit above it), so it costs one pass over the memory;
// only a tensor that fails is scanned again to find the element.
import { QUANT_BLOCK_BYTES, type QuantFormat } from "../../tensor/quant.js";
import type { Tensor } from "../../tensor/tensor.js";

/** Exponent field of each half of a 32-bit word, and the carry that reaches bits 15 and 31 only from all ones. */
const HALF = {
  bf16: { mask: 0x7f807f80, carry: 0x00800080, exp: 0x7f80 },
  f16: { mask: 0x7c007c00, carry: 0x04000400, exp: 0x7c00 },
} as const;

/** Index of the first NaN or ±Inf in `data` (f32 values, or half bits of `dtype`), or -1. */
export function firstNonFinite(data: Float32Array | Uint16Array, dtype: "f32" | "bf16" | "f16"): number {
  if (data instanceof Float32Array) {
    const w = new Uint32Array(data.buffer, data.byteOffset, data.length);
    let acc = 0;
    for (let i = 0; i < w.length; i++) acc |= (w[i]! & 0x7f800000) + 0x00800000;
    if (acc >= 0) return -1; // bit 31 never set: no exponent was all ones
    for (let i = 0; i < w.length; i++) if ((w[i]! & 0x7f800000) === 0x7f800000) return i;
    return -1;
  }
  const { mask, carry, exp } = HALF[dtype === "f16" ? "f16" : "bf16"];
  // Two halves per 32-bit word, from the first 4-byte boundary; the elements outside are checked alone.
  const head = data.byteOffset % 4 === 0 ? 0 : 1;
  const pairs = (data.length - head) >>> 1;
  const words = new Uint32Array(data.buffer, data.byteOffset + 2 * head, pairs);
  let acc = 0;
  for (let i = 0; i < words.length; i++) acc |= (words[i]! & mask) + carry;
  const bad = (acc & 0x80008000) !== 0;
  for (let i = 0; i < data.length; i++) {
    if (i === head && !bad) i = head + 2 * pairs; // skip the words already found clean
    if (i < data.length && (data[i]! & exp) === exp) return i;
  }
  return -1;
}

/** Throw if `data` holds a NaN or ±Inf, naming `file` and tensor `name`. */
export function checkFinite(
  data: Float32Array | Uint16Array,
  dtype: "f32" | "bf16" | "f16",
  file: string,
  name: string,
  offset = 0,
): void {
  const i = firstNonFinite(data, dtype);
  if (i < 0) return;
  const v = dtype === "f32" ? (data as Float32Array)[i]! : null;
  const what = v === null ? "NaN or ±Inf" : String(v);
  throw new Error(
    `${file}: tensor '${name}' holds a non-finite value (${what}) at element ${offset + i}; the checkpoint is corrupt`,
  );
}

/** checkFinite on a tensor read from `file`, f32 or half bits as it is held. */
export function checkTensorFinite(t: Tensor, file: string): Tensor {
  if (t.dtype === "f32") checkFinite(t.data, "f32", file, t.name);
  else checkFinite(t.halfBits, t.dtype, file, t.name);
  return t;
}

/**
 * Throw if a quantised tensor's block scales (f16: the first 2 bytes of each block; Q4_K/Q5_K: d and dmin,
 * the first 4; Q6_K: d, the last 2) hold a NaN or ±Inf.
 */
export function checkFiniteBlocks(blocks: Uint8Array, format: QuantFormat, file: string, name: string): void {
  const b = QUANT_BLOCK_BYTES[format];
  const at = format === "q6_k" ? [208] : format === "q4_k" || format === "q5_k" ? [0, 2] : [0];
  for (let o = 0; o < blocks.length; o += b)
    for (const a of at)
      if ((blocks[o + a + 1]! & 0x7c) === 0x7c)
        throw new Error(
          `${file}: tensor '${name}' holds a non-finite block scale at byte ${o + a}; the checkpoint is corrupt`,
        );
}
