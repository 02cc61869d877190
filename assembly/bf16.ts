// Linear layers on bf16 weights (inference): C = A·Bᵀ with B (n×k) held as bf16 bit patterns, the wasm
// side of `matmulBf16` (src/backends/backend.ts; the reference is src/backends/js/bf16.ts). A bf16 is the
// top half of an f32, so widening is exact: zero-extend each 16-bit lane to 32 bits and shift left 16.
//   gemvBf16   m = 1 (a decode step): dot products of x with the weight rows, widened in registers, so
//              the weights are streamed once at 2 bytes each (half the traffic of f32 weights).
//              The scalar tail reads bf16 at odd 2-byte offsets too: weights need only 2-byte alignment.
//   widenBf16  for m > 1: a block of rows widened into f32 scratch, then the packed sgemm.
// Rows are claimed in units of 64 from the shared counter (zeroed by the caller), so results do not
// depend on the thread count.

// Widening without unpacking: read 8 bf16 as four 32-bit words; `w << 16` is the f32 of the even ones
// (0, 2, 4, 6) and `w & 0xffff0000` of the odd ones (1, 3, 5, 7): one instruction per 4 weights. So x is
// first split the same way into xs: for each 8 values, [x0 x2 x4 x6 x1 x3 x5 x7] (its tail, k mod 8,
// stays in order).
function splitX(x: usize, xs: usize, k: i32): void {
  const k8 = k & ~7;
  for (let p = 0; p < k8; p += 8) {
    const a = v128.load(x + <usize>p * 4);
    const b = v128.load(x + <usize>p * 4, 16);
    v128.store(xs + <usize>p * 4, f32x4.shuffle(a, b, 0, 2, 4, 6));
    v128.store(xs + <usize>p * 4, f32x4.shuffle(a, b, 1, 3, 5, 7), 16);
  }
  for (let p = k8; p < k; p++) store<f32>(xs + <usize>p * 4, load<f32>(x + <usize>p * 4));
}

// xs (split x, k floats) · widened row r (k bf16 at r), in f32 with 4 accumulators.
@inline
function dotBf16(xs: usize, r: usize, k: i32): f32 {
  const k16 = k & ~15;
  const k8 = k & ~7;
  const hi = i32x4.splat(0xffff0000);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let p = 0; p < k16; p += 16) {
    const w0 = v128.load(r + <usize>p * 2);
    const w1 = v128.load(r + <usize>p * 2, 16);
    const o = xs + <usize>p * 4;
    a0 = f32x4.add(a0, f32x4.mul(v128.load(o), i32x4.shl(w0, 16)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(o, 16), v128.and(w0, hi)));
    a2 = f32x4.add(a2, f32x4.mul(v128.load(o, 32), i32x4.shl(w1, 16)));
    a3 = f32x4.add(a3, f32x4.mul(v128.load(o, 48), v128.and(w1, hi)));
  }
  if (k8 > k16) {
    const w0 = v128.load(r + <usize>k16 * 2);
    const o = xs + <usize>k16 * 4;
    a0 = f32x4.add(a0, f32x4.mul(v128.load(o), i32x4.shl(w0, 16)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(o, 16), v128.and(w0, hi)));
  }
  const v = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
  let s = (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
  for (let p = k8; p < k; p++) {
    s += load<f32>(xs + <usize>p * 4) * reinterpret<f32>(<u32>load<u16>(r + <usize>p * 2) << 16);
  }
  return s;
}

/**
 * y[j] = x · widen(w[j]) for rows j < n (each k bf16), y overwritten. Thread tid first splits x into
 * its own scratch at scratchBase + tid·scratchStride (k floats).
 */
export function gemvBf16(
  x: usize, w: usize, y: usize, n: i32, k: i32, scratchBase: usize, scratchStride: i32, counter: usize,
  tid: i32, nth: i32,
): void {
  const xs = scratchBase + <usize>tid * scratchStride;
  splitX(x, xs, k);
  const per = nth > 1 ? 64 : n;
  const units = (n + per - 1) / per;
  const rb = <usize>k * 2;
  for (let u = atomic.add<i32>(counter, 1); u < units; u = atomic.add<i32>(counter, 1)) {
    const j1 = min(n, (u + 1) * per);
    for (let j = u * per; j < j1; j++) store<f32>(y + <usize>j * 4, dotBf16(xs, w + <usize>j * rb, k));
  }
}

/** dst[i] (f32) = widen(src[i]) (bf16 bits) for this thread's share of [0, n). */
export function widenBf16(src: usize, dst: usize, n: i32, tid: i32, nth: i32): void {
  const i0 = tid == 0 ? 0 : min(n, <i32>((<i64>n * tid) / nth) & ~15);
  const i1 = tid + 1 >= nth ? n : min(n, <i32>((<i64>n * (tid + 1)) / nth) & ~15);
  let i = i0;
  for (; i + 8 <= i1; i += 8) {
    const v = v128.load(src + <usize>i * 2);
    v128.store(dst + <usize>i * 4, i32x4.shl(i32x4.extend_low_i16x8_u(v), 16));
    v128.store(dst + <usize>i * 4, i32x4.shl(i32x4.extend_high_i16x8_u(v), 16), 16);
  }
  for (; i < i1; i++) store<u32>(dst + <usize>i * 4, <u32>load<u16>(src + <usize>i * 2) << 16);
}
