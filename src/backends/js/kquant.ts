// ggml's K-quants Q4_K, Q5_K and Q6_K (super-blocks of 256 values), the types Q4_K_M / Q5_K_M GGUF files
// hold most of their matrices in: the reference dequantiser, and the reference for what the native
// kernels (native/kquant.cc) compute, the integer dot product against activations quantised to 8 bits.
//
// Dequantiser: a transcription of ggml's dequantize_row_q4_K / _q5_K / _q6_K (ggml-quants.c) with f32
// rounding after every operation, as the C computes them (test/model/ggufKQuant.test.ts checks it against
// the per-element formulas bit for bit).
//
// Block layouts (little-endian; f16 = IEEE half):
//   Q4_K (144 B): f16 d, f16 dmin, u8 scales[12] (8 six-bit scales and 8 six-bit mins, packed),
//                 u8 qs[128] (4-bit values: each 64-value group's first 32 in the low nibbles, next 32 high)
//   Q5_K (176 B): f16 d, f16 dmin, u8 scales[12], u8 qh[32] (the fifth bits), u8 qs[128]
//   Q6_K (210 B): u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits), i8 scales[16], f16 d
// A value is d·scale·q − dmin·min (Q4_K, Q5_K; 8 sub-blocks of 32) or d·scale·(q − 32) (Q6_K; 16 of 16).
//
// Integer path (matmulKQ8, what ggml's ggml_vec_dot_q*_K_q8_K compute): each row of x is quantised
// per 256 values to Q8_K (quantizeQ8K: d = max/−127 for the x of largest |x|, q = nearest(x/d) rounding
// halves to even, clamped to 127; bsums = the sums of each 16 q), and each super-block's product is the
// exact integer sum Σ_g s_g·Σ q·q8 with one float scale: fr(d·d8)·isum − fr(dmin·d8)·msum, where
// msum = Σ_g min_g·bsum_g (Q6_K: dmin = d, min_g = 32·s_g). Only the activations' rounding separates it
// from the dequantise-and-dot reference (matmulQuant in ./quant.ts).
import { f16BitsToF32 } from "../../io/half.js";

export const QK_K = 256;
export type KQuant = "q4_k" | "q5_k" | "q6_k";
export const K_BLOCK_BYTES: Readonly<Record<KQuant, number>> = { q4_k: 144, q5_k: 176, q6_k: 210 };

const f = Math.fround;

function half(b: Uint8Array, at: number): number {
  return f16BitsToF32(b[at]! | (b[at + 1]! << 8));
}

/** ggml's get_scale_min_k4: the j-th six-bit scale and min of a packed 12-byte scales array. */
export function scaleMinK4(j: number, q: Uint8Array, at: number): [number, number] {
  if (j < 4) return [q[at + j]! & 63, q[at + j + 4]! & 63];
  return [
    (q[at + j + 4]! & 0xf) | ((q[at + j - 4]! >> 6) << 4),
    (q[at + j + 4]! >> 4) | ((q[at + j]! >> 6) << 4),
  ];
}

function q4k(b: Uint8Array, at: number, y: Float32Array, o: number): void {
  const d = half(b, at);
  const min = half(b, at + 2);
  const sc = at + 4;
  let q = at + 16;
  for (let j = 0, is = 0; j < QK_K; j += 64, is += 2) {
    const [s1, m1s] = scaleMinK4(is, b, sc);
    const [s2, m2s] = scaleMinK4(is + 1, b, sc);
    const d1 = f(d * s1);
    const m1 = f(min * m1s);
    const d2 = f(d * s2);
    const m2 = f(min * m2s);
    for (let l = 0; l < 32; l++) y[o + j + l] = f(f(d1 * (b[q + l]! & 0xf)) - m1);
    for (let l = 0; l < 32; l++) y[o + j + 32 + l] = f(f(d2 * (b[q + l]! >> 4)) - m2);
    q += 32;
  }
}

function q5k(b: Uint8Array, at: number, y: Float32Array, o: number): void {
  const d = half(b, at);
  const min = half(b, at + 2);
  const sc = at + 4;
  const qh = at + 16;
  let ql = at + 48;
  let u1 = 1;
  let u2 = 2;
  for (let j = 0, is = 0; j < QK_K; j += 64, is += 2) {
    const [s1, m1s] = scaleMinK4(is, b, sc);
    const [s2, m2s] = scaleMinK4(is + 1, b, sc);
    const d1 = f(d * s1);
    const m1 = f(min * m1s);
    const d2 = f(d * s2);
    const m2 = f(min * m2s);
    for (let l = 0; l < 32; l++)
      y[o + j + l] = f(f(d1 * ((b[ql + l]! & 0xf) + (b[qh + l]! & u1 ? 16 : 0))) - m1);
    for (let l = 0; l < 32; l++)
      y[o + j + 32 + l] = f(f(d2 * ((b[ql + l]! >> 4) + (b[qh + l]! & u2 ? 16 : 0))) - m2);
    ql += 32;
    u1 <<= 2;
    u2 <<= 2;
  }
}

function q6k(b: Uint8Array, at: number, y: Float32Array, o: number): void {
  const d = half(b, at + 208);
  let ql = at;
  let qh = at + 128;
  let sc = at + 192;
  const s8 = (i: number) => (b[i]! << 24) >> 24; // int8
  for (let n = 0; n < QK_K; n += 128) {
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = b[qh + l]!;
      const q1 = ((b[ql + l]! & 0xf) | ((h & 3) << 4)) - 32;
      const q2 = ((b[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((b[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((b[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
      y[o + n + l] = f(f(d * s8(sc + is)) * q1);
      y[o + n + l + 32] = f(f(d * s8(sc + is + 2)) * q2);
      y[o + n + l + 64] = f(f(d * s8(sc + is + 4)) * q3);
      y[o + n + l + 96] = f(f(d * s8(sc + is + 6)) * q4);
    }
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

const ROW = { q4_k: q4k, q5_k: q5k, q6_k: q6k };

/** Dequantise the super-block of `type` at byte `at` of `blocks` into out[o..o+256). */
export function dequantizeKBlock(
  type: KQuant,
  blocks: Uint8Array,
  at: number,
  out: Float32Array,
  o: number,
): void {
  ROW[type](blocks, at, out, o);
}

/** Dequantise `count` values (a multiple of 256) of `type` blocks from `blocks` into `out`. */
export function dequantizeK(type: KQuant, blocks: Uint8Array, count: number, out: Float32Array): void {
  if (count % QK_K !== 0) throw new Error(`dequantizeK: ${count} values are not whole blocks of ${QK_K}`);
  const bb = K_BLOCK_BYTES[type];
  if (blocks.length < (count / QK_K) * bb || out.length < count)
    throw new Error(
      `dequantizeK: ${blocks.length} bytes / ${out.length} outputs for ${count} ${type} values`,
    );
  const fn = ROW[type];
  for (let i = 0; i < count / QK_K; i++) fn(blocks, i * bb, out, i * QK_K);
}

/** Activations quantised per 256 values (ggml's block_q8_K): scale d, int8 q, and the sums of each 16 q. */
export interface Q8K {
  d: Float32Array; // [rows · k/256]
  qs: Int8Array; // [rows · k]
  bsums: Int32Array; // [rows · k/16]
}

/** ggml's nearest_int: round to nearest, halves to even (for |v| < 2^22). */
function nearestInt(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** ggml's quantize_row_q8_K_ref on each of `rows` rows of x (k a multiple of 256). */
export function quantizeQ8K(x: Float32Array, rows: number, k: number): Q8K {
  const nb = k / QK_K;
  const out: Q8K = {
    d: new Float32Array(rows * nb),
    qs: new Int8Array(rows * k),
    bsums: new Int32Array(rows * nb * 16),
  };
  for (let b = 0; b < rows * nb; b++) {
    const o = b * QK_K;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK_K; j++) {
      const a = Math.abs(x[o + j]!);
      if (a > amax) {
        amax = a;
        max = x[o + j]!;
      }
    }
    if (amax === 0) continue;
    const iscale = f(-127 / max);
    for (let j = 0; j < QK_K; j++) out.qs[o + j] = Math.min(127, nearestInt(f(iscale * x[o + j]!)));
    for (let g = 0; g < 16; g++) {
      let s = 0;
      for (let j = 0; j < 16; j++) s += out.qs[o + g * 16 + j]!;
      out.bsums[b * 16 + g] = s;
    }
    out.d[b] = f(1 / iscale);
  }
  return out;
}

/**
 * One super-block as integers: q[256] the unsigned levels, s[16] the scale of each 16 values, min[16]
 * the offset coefficient of each 16, and the float d, dmin: value p = d·s[p>>4]·q[p] − dmin·min[p>>4].
 */
export interface KBlockInts {
  q: Uint8Array;
  s: Int32Array;
  min: Int32Array;
  d: number;
  dmin: number;
}

/** Unpack the super-block of `type` at byte `at` (the layouts in the header) into `u`. */
export function unpackKBlock(type: KQuant, b: Uint8Array, at: number, u: KBlockInts): void {
  if (type === "q6_k") {
    u.d = u.dmin = half(b, at + 208);
    for (let h = 0; h < 2; h++) {
      const ql = at + 64 * h;
      const qh = at + 128 + 32 * h;
      for (let l = 0; l < 32; l++) {
        const hb = b[qh + l]!;
        u.q[128 * h + l] = (b[ql + l]! & 0xf) | ((hb & 3) << 4);
        u.q[128 * h + 32 + l] = (b[ql + 32 + l]! & 0xf) | (((hb >> 2) & 3) << 4);
        u.q[128 * h + 64 + l] = (b[ql + l]! >> 4) | (((hb >> 4) & 3) << 4);
        u.q[128 * h + 96 + l] = (b[ql + 32 + l]! >> 4) | (((hb >> 6) & 3) << 4);
      }
    }
    for (let g = 0; g < 16; g++) {
      u.s[g] = (b[at + 192 + g]! << 24) >> 24;
      u.min[g] = 32 * u.s[g]!;
    }
    return;
  }
  u.d = half(b, at);
  u.dmin = half(b, at + 2);
  const qs = at + (type === "q4_k" ? 16 : 48);
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(j, b, at + 4);
    u.s[2 * j] = u.s[2 * j + 1] = s;
    u.min[2 * j] = u.min[2 * j + 1] = m;
    for (let l = 0; l < 32; l++) {
      const byte = b[qs + (j >> 1) * 32 + l]!;
      let q = j & 1 ? byte >> 4 : byte & 0xf;
      if (type === "q5_k") q |= ((b[at + 16 + l]! >> j) & 1) << 4;
      u.q[32 * j + l] = q;
    }
  }
}

export function kBlockInts(): KBlockInts {
  return { q: new Uint8Array(QK_K), s: new Int32Array(16), min: new Int32Array(16), d: 0, dmin: 0 };
}

/**
 * C (m×n) = Q8K(A) · Wᵀ, W (n×k) as `type` super-blocks: the integer path of the header, block values
 * summed in f64. `mag`, when given, gets Σ over blocks of |fr(d·d8)·isum| + |fr(dmin·d8)·msum| per
 * output (the scale of a float summation-order error, for tests of the native kernels).
 */
export function matmulKQ8(
  a: Float32Array,
  blocks: Uint8Array,
  c: Float32Array,
  m: number,
  n: number,
  k: number,
  type: KQuant,
  mag?: Float32Array,
): void {
  if (k % QK_K !== 0) throw new Error(`matmulKQ8: k=${k} is not a multiple of ${QK_K}`);
  const nb = k / QK_K;
  const bb = K_BLOCK_BYTES[type];
  const x = quantizeQ8K(a, m, k);
  const u = kBlockInts();
  for (let j = 0; j < n; j++)
    for (let i = 0; i < m; i++) {
      let acc = 0;
      let size = 0;
      for (let b = 0; b < nb; b++) {
        unpackKBlock(type, blocks, (j * nb + b) * bb, u);
        const xb = i * nb + b;
        let isum = 0;
        let msum = 0;
        for (let g = 0; g < 16; g++) {
          let dot = 0;
          for (let l = 0; l < 16; l++) dot += u.q[g * 16 + l]! * x.qs[xb * QK_K + g * 16 + l]!;
          isum += u.s[g]! * dot;
          msum += u.min[g]! * x.bsums[xb * 16 + g]!;
        }
        const hi = f(u.d * x.d[xb]!) * isum;
        const lo = f(u.dmin * x.d[xb]!) * msum;
        acc += hi - lo;
        size += Math.abs(hi) + Math.abs(lo);
      }
      c[i * n + j] = acc;
      if (mag) mag[i * n + j] = size;
    }
}
