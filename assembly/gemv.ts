// Matrix-vector products: the matmul cases with m = 1 (a decode step: x·Wᵀ with W stored n×k) or n = 1.
// They are memory-bound (each weight is read once and used once), so instead of packing, the kernels
// stream the matrix straight from memory in the order it is stored, with enough independent
// accumulators to keep loads in flight. Two shapes of loop, depending on how the matrix is stored:
//
//   dot form   y[j] = Σ_p x[p]·M[j·k + p]   (rows of M contiguous in p): one row at a time, a dot
//                                          product with x (which stays in L1).
//   axpy form  y[j] = Σ_p x[p]·M[p·n + j]   (rows of M contiguous in j): y[j0..j1] is kept in L1 and
//                                          updated by 4 rows of M at a time.
//
// The reference is `matmul` in src/backends/js/index.ts. Each y[j] sees the same sequence of operations
// whichever thread computes it, so results do not depend on the thread count.

// Dot products of x (k floats) with rows j0..j1 of M (rows k floats apart), into y[j0..j1]. One row at a
// time: the matrix is then read as one sequential stream, which on this machine streams ~1.7× faster
// than 4 or 8 rows interleaved (more streams defeat the prefetchers); x stays in L1. Four accumulators
// of 4 lanes each hide the add latency.
function gemvDot(x: usize, mat: usize, y: usize, k: i32, j0: i32, j1: i32, accumulate: bool): void {
  const k16 = k & ~15;
  const k4 = k & ~3;
  const rb = <usize>k * 4;
  for (let j = j0; j < j1; j++) {
    const r = mat + <usize>j * rb;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let p = 0; p < k16; p += 16) {
      const o = <usize>p * 4;
      a0 = f32x4.add(a0, f32x4.mul(v128.load(x + o), v128.load(r + o)));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(x + o, 16), v128.load(r + o, 16)));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(x + o, 32), v128.load(r + o, 32)));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(x + o, 48), v128.load(r + o, 48)));
    }
    for (let p = k16; p < k4; p += 4) {
      const o = <usize>p * 4;
      a0 = f32x4.add(a0, f32x4.mul(v128.load(x + o), v128.load(r + o)));
    }
    const v = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
    let s = (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
    for (let p = k4; p < k; p++) s += load<f32>(x + <usize>p * 4) * load<f32>(r + <usize>p * 4);
    const yj = y + <usize>j * 4;
    store<f32>(yj, accumulate ? load<f32>(yj) + s : s);
  }
}

// y[j0..j1] (+)= Σ_p x[p]·M[p·n + j], 4 rows of M per pass over a block of y that stays in L1.
const AXPY_BLOCK: i32 = 4096;
function gemvAxpy(x: usize, mat: usize, y: usize, k: i32, n: i32, j0: i32, j1: i32, accumulate: bool): void {
  const rb = <usize>n * 4;
  for (let jb = j0; jb < j1; jb += AXPY_BLOCK) {
    const je = min(j1, jb + AXPY_BLOCK);
    const je4 = jb + ((je - jb) & ~3);
    const yb = y + <usize>jb * 4;
    if (!accumulate) memory.fill(yb, 0, <usize>(je - jb) * 4);
    let p = 0;
    for (; p + 4 <= k; p += 4) {
      const xs = x + <usize>p * 4;
      const s0 = v128.load32_splat(xs), s1 = v128.load32_splat(xs, 4);
      const s2 = v128.load32_splat(xs, 8), s3 = v128.load32_splat(xs, 12);
      const m0 = mat + <usize>p * rb;
      for (let j = jb; j < je4; j += 4) {
        const o = <usize>j * 4;
        const r = m0 + o;
        let t = f32x4.add(f32x4.mul(s0, v128.load(r)), f32x4.mul(s1, v128.load(r + rb)));
        t = f32x4.add(t, f32x4.add(f32x4.mul(s2, v128.load(r + 2 * rb)), f32x4.mul(s3, v128.load(r + 3 * rb))));
        v128.store(y + o, f32x4.add(v128.load(y + o), t));
      }
      for (let j = je4; j < je; j++) {
        const o = <usize>j * 4;
        const r = m0 + o;
        const t = (f32x4.extract_lane(s0, 0) * load<f32>(r) + f32x4.extract_lane(s1, 0) * load<f32>(r + rb)) +
          (f32x4.extract_lane(s2, 0) * load<f32>(r + 2 * rb) + f32x4.extract_lane(s3, 0) * load<f32>(r + 3 * rb));
        store<f32>(y + o, load<f32>(y + o) + t);
      }
    }
    for (; p < k; p++) {
      const xp = load<f32>(x + <usize>p * 4);
      const s = f32x4.splat(xp);
      const m0 = mat + <usize>p * rb;
      for (let j = jb; j < je4; j += 4) {
        const o = <usize>j * 4;
        v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(s, v128.load(m0 + o))));
      }
      for (let j = je4; j < je; j++) {
        const o = <usize>j * 4;
        store<f32>(y + o, load<f32>(y + o) + xp * load<f32>(m0 + o));
      }
    }
  }
}

/**
 * The matmul cases m = 1 or n = 1 (MatmulArgs in src/backends/backend.ts), run by each of nth threads.
 * With m = 1: y = C row (n), x = A (k values whatever transA), M = B. With n = 1: y = C column (m),
 * x = B (k values), M = A. Units (pieces of one y) are claimed from the shared i32 at `counter` (zeroed
 * by the caller).
 */
export function gemv(
  a: usize, b: usize, c: usize, batch: i32, m: i32, n: i32, k: i32, transA: bool, transB: bool,
  strideA: i32, strideB: i32, strideC: i32, accumulate: bool, counter: usize, tid: i32, nth: i32,
): void {
  const rowVector = m == 1;
  const len = rowVector ? n : m;
  // Dot form when the matrix is stored with rows of k: B stored n×k (transB), or A stored m×k.
  const dot = rowVector ? transB : !transA;
  // Units: 64 rows of M in the dot form; in the axpy form, AXPY_BLOCK columns (then each row of M is
  // read in pieces of 16 KiB rather than short strided ones).
  const per = nth > 1 ? (dot ? 64 : AXPY_BLOCK) : len;
  const chunks = (len + per - 1) / per;
  const units = batch * chunks;
  for (let u = atomic.add<i32>(counter, 1); u < units; u = atomic.add<i32>(counter, 1)) {
    const bi = u / chunks;
    const j0 = (u % chunks) * per;
    const j1 = min(len, j0 + per);
    const ao = a + <usize>bi * strideA * 4;
    const bo = b + <usize>bi * strideB * 4;
    const y = c + <usize>bi * strideC * 4;
    const x = rowVector ? ao : bo;
    const mat = rowVector ? bo : ao;
    if (dot) gemvDot(x, mat, y, k, j0, j1, accumulate);
    else gemvAxpy(x, mat, y, k, len, j0, j1, accumulate);
  }
}
