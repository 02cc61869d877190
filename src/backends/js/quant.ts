// Weight-only quantised matrices in GGUF's Q8_0 and Q4_0 block layouts and its K-quants Q4_K, Q5_K,
// Q6_K (./kquant.ts), and the reference kernel for a linear layer over them (C = A·Wᵀ, W stored n×k as
// blocks). The native addon's kernels (native/quant.cc, native/kquant.cc) are tested against this one; a
// backend without its own gets this one from the front end (src/tensor/quant.ts).
//
// Layout, per row of W (k values along the input dimension), ceil(k/32) blocks of 32 values back to back;
// a row whose k is not a multiple of 32 has its last block padded with zeros (GGUF itself needs k % 32 = 0):
//   Q8_0 (34 bytes): d: f16 little-endian, then q[0..31]: int8.           w[j] = d·q[j]
//   Q4_0 (18 bytes): d: f16 little-endian, then 16 bytes of nibbles:     w[j] = d·(q[j] − 8)
//                    q[j] for j < 16 is the low nibble of byte j, for j ≥ 16 the high nibble of byte j−16.
//
// The K-quants come in super-blocks of 256 values (layouts in ./kquant.ts) and need k % 256 = 0.
//
// Semantics of the kernel: every weight is dequantised (Q8_0/Q4_0 exactly: an f16 times a small integer
// is exact in f32; K-quants as ggml's dequantize_row_q*_K rounds), C[i][j] = Σ_p A[i][p]·w_j[p] summed in
// f64 and stored as f32. Activations are not quantised, so a quantised model differs from its source
// only by the weights' rounding. (The native kernels quantise the activations to 8 bits, as ggml does:
// matmulQuantQ8 below is the Q8_0/Q4_0 ones' reference, ./kquant.ts matmulKQ8 the K-quant ones'.)
//
// Integer path (matmulQuantQ8, what ggml's ggml_vec_dot_q8_0_q8_0 / _q4_0_q8_0 compute): each row of A
// is quantised per 32 values by quantizeQ8_0 (ggml's quantize_row_q8_0_ref: d = amax/127,
// q = round(x·(1/d)) halves away from zero; the scale kept in f32 where ggml rounds it to f16), and
// each block's product is the exact integer Σ q_w·q_x times fr(d_w·d_x). A block of A holding NaN or
// ±Inf gets d = NaN (the output becomes NaN rather than silently finite).

import { f16BitsToF32 } from "../../io/half.js";
import { dequantizeKBlock, K_BLOCK_BYTES, type KQuant, QK_K } from "./kquant.js";

export type QuantFormat = "q8_0" | "q4_0" | KQuant;

/** Values per block of Q8_0 and Q4_0 (QK8_0 = QK4_0 = 32 in ggml). */
export const QUANT_BLOCK = 32;

/** Bytes per block of each format (a block: quantBlockValues(format) values). */
export const QUANT_BLOCK_BYTES: Readonly<Record<QuantFormat, number>> = {
  q8_0: 34,
  q4_0: 18,
  ...K_BLOCK_BYTES,
};

/** Whether `format` is a K-quant (super-blocks of 256). */
export function isKQuant(format: QuantFormat): format is KQuant {
  return format === "q4_k" || format === "q5_k" || format === "q6_k";
}

/** Values per block: 32 (Q8_0, Q4_0) or 256 (the K-quants). */
export function quantBlockValues(format: QuantFormat): number {
  return isKQuant(format) ? QK_K : QUANT_BLOCK;
}

/** Bytes one row of k values takes. */
export function quantRowBytes(format: QuantFormat, k: number): number {
  return Math.ceil(k / quantBlockValues(format)) * QUANT_BLOCK_BYTES[format];
}

/** Dequantise row j of W (k values) into out[0..k). */
export function dequantizeRow(
  blocks: Uint8Array,
  format: QuantFormat,
  j: number,
  k: number,
  out: Float32Array,
): void {
  const bb = QUANT_BLOCK_BYTES[format];
  let o = j * quantRowBytes(format, k);
  if (isKQuant(format)) {
    if (k % QK_K !== 0) throw new Error(`dequantizeRow: ${format} needs k a multiple of ${QK_K}, not ${k}`);
    for (let p0 = 0; p0 < k; p0 += QK_K, o += bb) dequantizeKBlock(format, blocks, o, out, p0);
    return;
  }
  for (let p0 = 0; p0 < k; p0 += QUANT_BLOCK, o += bb) {
    const d = f16BitsToF32(blocks[o]! | (blocks[o + 1]! << 8));
    const len = Math.min(QUANT_BLOCK, k - p0);
    for (let t = 0; t < len; t++) {
      let q: number;
      if (format === "q8_0") q = (blocks[o + 2 + t]! << 24) >> 24;
      else q = (t < 16 ? blocks[o + 2 + t]! & 15 : blocks[o + 2 + t - 16]! >> 4) - 8;
      out[p0 + t] = d * q;
    }
  }
}

/** C (m×n) = A (m×k) · Wᵀ, W (n×k) as `format` blocks. C is overwritten. */
export function matmulQuant(
  a: Float32Array,
  blocks: Uint8Array,
  c: Float32Array,
  m: number,
  n: number,
  k: number,
  format: QuantFormat,
): void {
  if (a.length < m * k || blocks.length < n * quantRowBytes(format, k) || c.length < m * n)
    throw new Error(`matmulQuant: buffers too small for m=${m} n=${n} k=${k} ${format}`);
  const w = new Float32Array(k);
  for (let j = 0; j < n; j++) {
    dequantizeRow(blocks, format, j, k, w);
    for (let i = 0; i < m; i++) {
      const ao = i * k;
      let s = 0;
      for (let p = 0; p < k; p++) s += a[ao + p]! * w[p]!;
      c[i * n + j] = s;
    }
  }
}

/**
 * dX (m×k) (+)= dY (m×n) · W, W (n×k) as `format` blocks: matmulQuant's input gradient (W frozen). Each
 * row of W is dequantised once and, times dY's column, added into every row of dX (f32 sums).
 */
export function matmulQuantGrad(
  dy: Float32Array,
  blocks: Uint8Array,
  dx: Float32Array,
  m: number,
  n: number,
  k: number,
  format: QuantFormat,
  accumulate: boolean,
): void {
  if (dy.length < m * n || blocks.length < n * quantRowBytes(format, k) || dx.length < m * k)
    throw new Error(`matmulQuantGrad: buffers too small for m=${m} n=${n} k=${k} ${format}`);
  if (!accumulate) dx.fill(0, 0, m * k);
  const w = new Float32Array(k);
  for (let j = 0; j < n; j++) {
    dequantizeRow(blocks, format, j, k, w);
    for (let i = 0; i < m; i++) {
      const s = dy[i * n + j]!;
      if (s === 0) continue;
      const xo = i * k;
      for (let p = 0; p < k; p++) dx[xo + p]! += s * w[p]!;
    }
  }
}

/** Activations quantised per 32 values (ggml's block_q8_0, scale in f32): row i's block b is d[i·nb + b], qs[(i·nb + b)·32..]. */
export interface Q8Rows {
  d: Float32Array;
  qs: Int8Array;
  nb: number;
}

/** ggml's quantize_row_q8_0_ref on each of `rows` rows of x (k values, zero-padded to whole blocks). */
export function quantizeQ8_0(x: Float32Array, rows: number, k: number): Q8Rows {
  const f = Math.fround;
  const nb = Math.ceil(k / QUANT_BLOCK);
  const out: Q8Rows = { d: new Float32Array(rows * nb), qs: new Int8Array(rows * nb * QUANT_BLOCK), nb };
  for (let i = 0; i < rows; i++)
    for (let b = 0; b < nb; b++) {
      const o = i * k + b * QUANT_BLOCK;
      const len = Math.min(QUANT_BLOCK, k - b * QUANT_BLOCK);
      let amax = 0;
      for (let t = 0; t < len; t++) amax = Math.max(amax, Math.abs(x[o + t]!)); // NaN stays NaN
      const d = f(amax / 127);
      out.d[i * nb + b] = Number.isFinite(d) ? d : Number.NaN;
      if (!Number.isFinite(d)) continue;
      const id = d !== 0 ? f(1 / d) : 0;
      for (let t = 0; t < len; t++) {
        const v = f(x[o + t]! * id);
        out.qs[(i * nb + b) * QUANT_BLOCK + t] = v < 0 ? -Math.round(-v) : Math.round(v); // roundf
      }
    }
  return out;
}

/**
 * C (m×n) = Q8_0(A) · Wᵀ, W (n×k) as Q8_0 or Q4_0 blocks: the integer path of the header, block terms
 * fr(d_w·d_x)·Σ q_w·q_x summed in f64. `mag`, when given, gets Σ over blocks of |fr(d_w·d_x)|·Σ|q_w·q_x|
 * per output, which bounds every partial sum a kernel may form in any order (the scale of its f32
 * summation error, for tests of the native kernels).
 */
export function matmulQuantQ8(
  a: Float32Array,
  blocks: Uint8Array,
  c: Float32Array,
  m: number,
  n: number,
  k: number,
  format: "q8_0" | "q4_0",
  mag?: Float32Array,
): void {
  if (a.length < m * k || blocks.length < n * quantRowBytes(format, k) || c.length < m * n)
    throw new Error(`matmulQuantQ8: buffers too small for m=${m} n=${n} k=${k} ${format}`);
  const x = quantizeQ8_0(a, m, k);
  const bb = QUANT_BLOCK_BYTES[format];
  const w = new Int8Array(QUANT_BLOCK);
  for (let j = 0; j < n; j++)
    for (let i = 0; i < m; i++) {
      let acc = 0;
      let size = 0;
      for (let b = 0; b < x.nb; b++) {
        const o = (j * x.nb + b) * bb;
        for (let t = 0; t < QUANT_BLOCK; t++)
          w[t] =
            format === "q8_0"
              ? (blocks[o + 2 + t]! << 24) >> 24
              : (t < 16 ? blocks[o + 2 + t]! & 15 : blocks[o + 2 + t - 16]! >> 4) - 8;
        let isum = 0;
        let iabs = 0;
        for (let t = 0; t < QUANT_BLOCK; t++) {
          const p = w[t]! * x.qs[(i * x.nb + b) * QUANT_BLOCK + t]!;
          isum += p;
          iabs += Math.abs(p);
        }
        const d = Math.fround(f16BitsToF32(blocks[o]! | (blocks[o + 1]! << 8)) * x.d[i * x.nb + b]!);
        acc += d * isum;
        size += Math.abs(d) * iabs;
      }
      c[i * n + j] = acc;
      if (mag) mag[i * n + j] = size;
    }
}
