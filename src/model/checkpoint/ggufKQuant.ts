// Reference dequantisers for ggml's K-quants Q4_K, Q5_K and Q6_K (super-blocks of 256 values), the types
// Q4_K_M / Q5_K_M GGUF files hold most of their matrices in. A transcription of ggml's
// dequantize_row_q4_K / _q5_K / _q6_K (ggml-quants.c) with f32 rounding after every operation, as the C
// computes them; the tests check them against the formulas on fixed blocks.
//
// Block layouts (little-endian; f16 = IEEE half):
//   Q4_K (144 B): f16 d, f16 dmin, u8 scales[12] (8 six-bit scales and 8 six-bit mins, packed),
//                 u8 qs[128] (4-bit values: each 64-value group's first 32 in the low nibbles, next 32 high)
//   Q5_K (176 B): f16 d, f16 dmin, u8 scales[12], u8 qh[32] (the fifth bits), u8 qs[128]
//   Q6_K (210 B): u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits), i8 scales[16], f16 d
// A value is d·scale·q − dmin·min (Q4_K, Q5_K; 8 sub-blocks of 32) or d·scale·(q − 32) (Q6_K; 16 of 16).
//
// herd has no native K-quant kernels yet (the next step): a GGUF file's K-quant matrices are dequantised
// when the model is loaded (to f32, or bf16 with dtype "keep"), so they take that much memory.
import { f16BitsToF32 } from "../../io/half.js";

export const QK_K = 256;
export type KQuant = "q4_k" | "q5_k" | "q6_k";
export const K_BLOCK_BYTES: Record<KQuant, number> = { q4_k: 144, q5_k: 176, q6_k: 210 };

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
