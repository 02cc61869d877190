// ggml's reference quantisers for the types a Q4_K_M / Q5_K_M GGUF file holds: Q4_K, Q5_K, Q6_K (super-
// blocks of 256 values) and Q5_0, Q5_1 (blocks of 32, llama.cpp's fallback for a Q4_K/Q5_K matrix whose
// rows are not whole super-blocks). These are ggml-quants.c's quantize_row_*_ref, what llama-quantize runs
// without an importance matrix, restated with f32 rounding after every operation (the C computes in f32,
// without fused multiply-adds in the portable ggml-base build): the bytes are ggml's for the same input,
// which the tests check against llama.cpp's own quantiser.
//
// The search each type does, per super-block:
//   Q4_K / Q5_K: 8 sub-blocks of 32; each gets a scale and a min by make_qkx2_quants (a weighted least-
//     squares fit of x ≈ scale·q − min over a sweep of candidate scales, weights |x| + rms(x)); the 8 scales
//     and 8 mins are then stored as 6-bit multiples of two f16 super-scales (d = max scale/63, dmin = max
//     min/63), and every value re-quantised against the stored scales: q = round((x + dmin·m)/(d·s)).
//   Q6_K: 16 sub-blocks of 16; each gets a signed scale by make_qx_quants (weights x², 19 candidate scales
//     around −32/max); the 16 scales become int8 multiples of one f16 d = −max scale/128, and every value is
//     re-quantised: q = round(x/(d·s)) ∈ [−32, 31].
// nearest_int is ggml's: round half to even through the f32 addition of 1.5·2²³.
// Block layouts: ggufKQuant.ts (K-quants); Q5_0 = f16 d, u32 qh, 16 B nibbles; Q5_1 = f16 d, f16 m, u32 qh,
// 16 B nibbles (value j's fifth bit is bit j of qh; low nibbles hold j < 16, high nibbles j ≥ 16).
import { f16BitsToF32, f32ToF16Bits } from "../../io/half.js";
import { K_BLOCK_BYTES, type KQuant, QK_K } from "./ggufKQuant.js";

const fr = Math.fround;
const GROUP_MAX_EPS = fr(1e-15);
const RDELTA = fr(0.1);

/** ggml's nearest_int: round half to even (|x| < 2²²). */
function nearestInt(x: number): number {
  return fr(x + 12582912) - 12582912;
}

function putHalf(out: Uint8Array, at: number, v: number): number {
  const h = f32ToF16Bits(v);
  out[at] = h & 255;
  out[at + 1] = h >> 8;
  return f16BitsToF32(h);
}

/**
 * make_qkx2_quants(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad = false): codes L in
 * [0, nmax] and (scale, min) with x ≈ scale·L − min. Returns the scale; the min goes to out[0].
 */
function makeQkx2(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  w: Float32Array,
  L: Uint8Array,
  lo: number,
  aux: Uint8Array,
  rmin: number,
  nstep: number,
  out: Float32Array,
): number {
  let min = x[xo]!;
  let max = x[xo]!;
  let sumW = w[0]!;
  let sumX = fr(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = fr(sumW + w[i]!);
    sumX = fr(sumX + fr(w[i]! * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    out[0] = -min;
    return 0;
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let best = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[xo + i]! - min)))));
    L[lo + i] = l;
    const diff = fr(fr(fr(scale * l) + min) - x[xo + i]!);
    best = fr(best + fr(w[i]! * fr(diff * diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    // max − min with the min of the best fit so far, as the C's loop reads it
    iscale = fr(fr(fr(rmin + fr(RDELTA * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(v - min)))));
      aux[i] = l;
      const wl = fr(w[i]! * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * v));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let cur = 0;
      for (let i = 0; i < n; i++) {
        const diff = fr(fr(fr(thisScale * aux[i]!) + thisMin) - x[xo + i]!);
        cur = fr(cur + fr(w[i]! * fr(diff * diff)));
      }
      if (cur < best) {
        for (let i = 0; i < n; i++) L[lo + i] = aux[i]!;
        best = cur;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  out[0] = -min;
  return scale;
}

/** make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL): signed codes L + nmax ∈ [0, 2·nmax). */
function makeQx(n: number, nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]!);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i]!;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const code = (iscale: number, v: number) => Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * v))));
  let iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i]!;
    const l = code(iscale, v);
    L[lo + i] = l + nmax;
    const w = fr(v * v);
    sumlx = fr(sumlx + fr(fr(w * v) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(RDELTA * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      const l = code(iscale, v);
      const w = fr(v * v);
      sumlx = fr(sumlx + fr(fr(w * v) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) L[lo + i] = code(iscale, x[xo + i]!) + nmax;
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** get_scale_min_k4's inverse: store sub-block j's 6-bit scale ls and min lm into the 12 packed bytes. */
function packScaleMin(q: Uint8Array, at: number, j: number, ls: number, lm: number): void {
  if (j < 4) {
    q[at + j] = ls;
    q[at + j + 4] = lm;
  } else {
    q[at + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
    q[at + j - 4]! |= (ls >> 4) << 6;
    q[at + j]! |= (lm >> 4) << 6;
  }
}

function scaleMin(q: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [q[at + j]! & 63, q[at + j + 4]! & 63];
  return [
    (q[at + j + 4]! & 0xf) | ((q[at + j - 4]! >> 6) << 4),
    (q[at + j + 4]! >> 4) | ((q[at + j]! >> 6) << 4),
  ];
}

/** Scratch shared by the K-quant block functions (one call at a time; JS is single-threaded). */
const L = new Uint8Array(QK_K);
const aux = new Uint8Array(32);
const wts = new Float32Array(32);
const scales = new Float32Array(16);
const mins = new Float32Array(8);
const minOut = new Float32Array(1);

/** quantize_row_q4_K_ref (nmax 15) / quantize_row_q5_K_ref (nmax 31) for one super-block. */
function blockQ45K(five: boolean, x: Float32Array, xo: number, y: Uint8Array, o: number): void {
  const nmax = five ? 31 : 15;
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) {
      const v = x[xo + 32 * j + l]!;
      sumX2 = fr(sumX2 + fr(v * v));
    }
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) wts[l] = fr(avX + Math.abs(x[xo + 32 * j + l]!));
    const s = five
      ? makeQkx2(32, 31, x, xo + 32 * j, wts, L, 32 * j, aux, -0.5, 15, minOut)
      : makeQkx2(32, 15, x, xo + 32 * j, wts, L, 32 * j, aux, -1, 20, minOut);
    scales[j] = s;
    mins[j] = minOut[0]!;
    if (s > maxScale) maxScale = s;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const sc = o + 4;
  y.fill(0, sc, sc + 12);
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j]!)) & 255); // uint8_t, then MIN(63, ·)
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j]!)) & 255);
    packScaleMin(y, sc, j, ls, lm);
  }
  const d = putHalf(y, o, fr(maxScale / 63));
  const dmin = putHalf(y, o + 2, fr(maxMin / 63));
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMin(y, sc, j);
    const dj = fr(d * s);
    if (!dj) continue; // this sub-block keeps make_qkx2_quants' codes
    const dm = fr(dmin * m);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(fr(fr(x[xo + 32 * j + ii]! + dm) / dj));
      L[32 * j + ii] = Math.max(0, Math.min(nmax, l));
    }
  }
  if (!five) {
    let q = o + 16;
    for (let j = 0; j < QK_K; j += 64, q += 32)
      for (let l = 0; l < 32; l++) y[q + l] = L[j + l]! | (L[j + l + 32]! << 4);
    return;
  }
  const qh = o + 16;
  let ql = o + 48;
  y.fill(0, qh, qh + 32);
  let m1 = 1;
  let m2 = 2;
  for (let n = 0; n < QK_K; n += 64, ql += 32, m1 <<= 2, m2 <<= 2)
    for (let j = 0; j < 32; j++) {
      let l1 = L[n + j]!;
      if (l1 > 15) {
        l1 -= 16;
        y[qh + j]! |= m1;
      }
      let l2 = L[n + j + 32]!;
      if (l2 > 15) {
        l2 -= 16;
        y[qh + j]! |= m2;
      }
      y[ql + j] = l1 | (l2 << 4);
    }
}

/** quantize_row_q6_K_ref for one super-block. */
function blockQ6K(x: Float32Array, xo: number, y: Uint8Array, o: number): void {
  let maxScale = 0;
  let maxAbs = 0;
  for (let ib = 0; ib < 16; ib++) {
    const s = makeQx(16, 32, x, xo + 16 * ib, L, 16 * ib);
    scales[ib] = s;
    if (Math.abs(s) > maxAbs) {
      maxAbs = Math.abs(s);
      maxScale = s;
    }
  }
  y.fill(0, o, o + K_BLOCK_BYTES.q6_k);
  if (maxAbs < GROUP_MAX_EPS) return; // an all-zero block (d = +0)
  const iscale = fr(-128 / maxScale);
  const d = putHalf(y, o + 208, fr(1 / iscale));
  for (let ib = 0; ib < 16; ib++) y[o + 192 + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]!))) & 255;
  for (let j = 0; j < 16; j++) {
    const dj = fr(d * ((y[o + 192 + j]! << 24) >> 24));
    if (!dj) continue;
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(fr(x[xo + 16 * j + ii]! / dj));
      L[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
    }
  }
  let ql = o;
  let qh = o + 128;
  for (let j = 0; j < QK_K; j += 128, ql += 64, qh += 32)
    for (let l = 0; l < 32; l++) {
      const a = L[j + l]!;
      const b = L[j + l + 32]!;
      const c = L[j + l + 64]!;
      const e = L[j + l + 96]!;
      y[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
      y[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
      y[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
}

/** quantize_row_q5_0_ref / quantize_row_q5_1_ref for one block of 32. */
function blockQ5(one: boolean, x: Float32Array, xo: number, y: Uint8Array, o: number): void {
  let qh = 0;
  const at = o + (one ? 4 : 2);
  const qs = at + 4;
  if (!one) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[xo + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -16);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, o, d);
    for (let j = 0; j < 16; j++) {
      const x0 = Math.min(31, Math.trunc(fr(fr(x[xo + j]! * id) + 16.5)) & 255);
      const x1 = Math.min(31, Math.trunc(fr(fr(x[xo + j + 16]! * id) + 16.5)) & 255);
      y[qs + j] = (x0 & 0xf) | ((x1 & 0xf) << 4);
      qh |= ((x0 & 0x10) >> 4) << j;
      qh |= ((x1 & 0x10) >> 4) << (j + 16);
    }
  } else {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < 32; j++) {
      const v = x[xo + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 31);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, o, d);
    putHalf(y, o + 2, min);
    for (let j = 0; j < 16; j++) {
      const x0 = Math.trunc(fr(fr(fr(x[xo + j]! - min) * id) + 0.5)) & 255;
      const x1 = Math.trunc(fr(fr(fr(x[xo + j + 16]! - min) * id) + 0.5)) & 255;
      y[qs + j] = (x0 & 0xf) | ((x1 & 0xf) << 4);
      qh |= ((x0 & 0x10) >> 4) << j;
      qh |= ((x1 & 0x10) >> 4) << (j + 16);
    }
  }
  new DataView(y.buffer, y.byteOffset + at, 4).setUint32(0, qh >>> 0, true);
}

export type GGMLQuant = KQuant | "q5_0" | "q5_1";
const BLOCK: Record<GGMLQuant, { values: number; bytes: number }> = {
  q4_k: { values: QK_K, bytes: K_BLOCK_BYTES.q4_k },
  q5_k: { values: QK_K, bytes: K_BLOCK_BYTES.q5_k },
  q6_k: { values: QK_K, bytes: K_BLOCK_BYTES.q6_k },
  q5_0: { values: 32, bytes: 22 },
  q5_1: { values: 32, bytes: 24 },
};

/** Bytes `count` values of `type` take (count a multiple of the block). */
export function ggmlQuantBytes(type: GGMLQuant, count: number): number {
  const b = BLOCK[type];
  if (count % b.values !== 0) throw new Error(`${type}: ${count} values are not whole blocks of ${b.values}`);
  return (count / b.values) * b.bytes;
}

/**
 * Quantise `x` (a multiple of the type's block: 256 for K-quants, 32 for Q5_0/Q5_1) as ggml's reference
 * quantiser does, into `out` at byte `o` (or a new array). The values must be finite.
 */
export function quantizeGGML(type: GGMLQuant, x: Float32Array, out?: Uint8Array, o = 0): Uint8Array {
  const b = BLOCK[type];
  const bytes = ggmlQuantBytes(type, x.length);
  const y = out ?? new Uint8Array(bytes);
  if (y.length < o + bytes) throw new Error(`quantizeGGML: ${y.length - o} bytes for ${bytes}`);
  for (let i = 0, xo = 0; xo < x.length; i++, xo += b.values) {
    const at = o + i * b.bytes;
    if (type === "q6_k") blockQ6K(x, xo, y, at);
    else if (type === "q4_k" || type === "q5_k") blockQ45K(type === "q5_k", x, xo, y, at);
    else blockQ5(type === "q5_1", x, xo, y, at);
  }
  return y;
}

/** dequantize_row_q5_0 / _q5_1 (the K-quants' are in ggufKQuant.ts): for round trips in tests and export. */
export function dequantizeQ5(
  type: "q5_0" | "q5_1",
  blocks: Uint8Array,
  count: number,
  out: Float32Array,
): void {
  const bb = BLOCK[type].bytes;
  const dv = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  for (let i = 0; i < count / 32; i++) {
    const o = i * bb;
    const d = f16BitsToF32(blocks[o]! | (blocks[o + 1]! << 8));
    const m = type === "q5_1" ? f16BitsToF32(blocks[o + 2]! | (blocks[o + 3]! << 8)) : 0;
    const at = o + (type === "q5_1" ? 4 : 2);
    const qh = dv.getUint32(at, true);
    for (let j = 0; j < 16; j++) {
      const lo = blocks[at + 4 + j]!;
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      const q0 = (lo & 0xf) | h0;
      const q1 = (lo >> 4) | h1;
      out[i * 32 + j] = type === "q5_0" ? fr((q0 - 16) * d) : fr(fr(q0 * d) + m);
      out[i * 32 + j + 16] = type === "q5_0" ? fr((q1 - 16) * d) : fr(fr(q1 * d) + m);
    }
  }
}
