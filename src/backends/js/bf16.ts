// C = A·Bᵀ with B held as bf16 bit patterns: the `x·Wᵀ` of a linear layer whose weight W (n×k) stays in
// bf16, so inference needs no f32 copy of the weights (a 1B model: 2.5 GB instead of 5 GB). A block of
// rows of B is widened to f32 into a small scratch buffer (exact: a bf16 is the top half of an f32), then
// dotted with every row of A, accumulating in f64. The reference for faster backends' versions.

const BLOCK_ELEMENTS = 1 << 16; // 256 KB of widened weights: stays in L2 while every row of A passes

/** Widen bf16 bits src[0..n) to f32 bit patterns in dst (Uint32 view of a Float32Array). */
export function widenBf16(src: Uint16Array, dst: Uint32Array, n: number): void {
  // Two bf16 values per 32-bit load when src is 4-byte aligned (little-endian: low half first).
  if ((src.byteOffset & 3) === 0) {
    const pairs = n >> 1;
    const s32 = new Uint32Array(src.buffer, src.byteOffset, pairs);
    for (let p = 0; p < pairs; p++) {
      const w = s32[p]!;
      dst[2 * p] = w << 16;
      dst[2 * p + 1] = w & 0xffff0000;
    }
    if (n & 1) dst[n - 1] = src[n - 1]! << 16;
  } else for (let i = 0; i < n; i++) dst[i] = src[i]! << 16;
}

/** C (m×n) = A (m×k) · Bᵀ, B stored n×k as bf16 bits. C is overwritten. */
export function matmulBf16(
  a: Float32Array,
  bBits: Uint16Array,
  c: Float32Array,
  m: number,
  n: number,
  k: number,
): void {
  if (a.length < m * k || bBits.length < n * k || c.length < m * n)
    throw new Error(`matmulBf16: buffers too small for m=${m} n=${n} k=${k}`);
  const rowsPerBlock = Math.max(1, Math.floor(BLOCK_ELEMENTS / Math.max(1, k)));
  const wf = new Float32Array(Math.min(n, rowsPerBlock) * k);
  const wu = new Uint32Array(wf.buffer);
  const k4 = k & ~3;
  for (let j0 = 0; j0 < n; j0 += rowsPerBlock) {
    const nb = Math.min(rowsPerBlock, n - j0);
    widenBf16(bBits.subarray(j0 * k, (j0 + nb) * k), wu, nb * k);
    for (let i = 0; i < m; i++) {
      const ao = i * k;
      for (let jj = 0; jj < nb; jj++) {
        const wo = jj * k;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        let p = 0;
        for (; p < k4; p += 4) {
          s0 += a[ao + p]! * wf[wo + p]!;
          s1 += a[ao + p + 1]! * wf[wo + p + 1]!;
          s2 += a[ao + p + 2]! * wf[wo + p + 2]!;
          s3 += a[ao + p + 3]! * wf[wo + p + 3]!;
        }
        for (; p < k; p++) s0 += a[ao + p]! * wf[wo + p]!;
        c[i * n + j0 + jj] = s0 + s1 + (s2 + s3);
      }
    }
  }
}

/**
 * dX (m×k) (+)= dY (m×n) · B, B stored n×k as bf16 bits: the input gradient of matmulBf16 (B frozen).
 * A block of rows of B is widened at a time and each of its rows, times dY's column, added into every
 * row of dX (f32 sums, in the order of B's rows).
 */
export function matmulBf16Grad(
  dy: Float32Array,
  bBits: Uint16Array,
  dx: Float32Array,
  m: number,
  n: number,
  k: number,
  accumulate: boolean,
): void {
  if (dy.length < m * n || bBits.length < n * k || dx.length < m * k)
    throw new Error(`matmulBf16Grad: buffers too small for m=${m} n=${n} k=${k}`);
  if (!accumulate) dx.fill(0, 0, m * k);
  const rowsPerBlock = Math.max(1, Math.floor(BLOCK_ELEMENTS / Math.max(1, k)));
  const wf = new Float32Array(Math.min(n, rowsPerBlock) * k);
  const wu = new Uint32Array(wf.buffer);
  for (let j0 = 0; j0 < n; j0 += rowsPerBlock) {
    const nb = Math.min(rowsPerBlock, n - j0);
    widenBf16(bBits.subarray(j0 * k, (j0 + nb) * k), wu, nb * k);
    for (let i = 0; i < m; i++) {
      const xo = i * k;
      for (let jj = 0; jj < nb; jj++) {
        const s = dy[i * n + j0 + jj]!;
        if (s === 0) continue;
        const wo = jj * k;
        for (let p = 0; p < k; p++) dx[xo + p]! += s * wf[wo + p]!;
      }
    }
  }
}
