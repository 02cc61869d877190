// Matrix-vector products: the matmul cases with m = 1 (a decode step: x·Wᵀ with W stored n×k) or n = 1.
// They are memory-bound (each weight is read once and used once), so instead of packing, the kernels
// stream the matrix straight from memory in the order it is stored, with enough independent
// accumulators to keep loads in flight. Two shapes of loop, depending on how the matrix is stored:
//
//   dot form   y[j] = Σ_p x[p]·M[j·k + p]   (rows of M contiguous in p): 4 rows at a time, each a
//                                          dot product with x, x loaded once per 4 rows.
//   axpy form  y[j] = Σ_p x[p]·M[p·n + j]   (rows of M contiguous in j): y[j0..j1] is kept in L1 and
//                                          updated by 4 rows of M at a time.
//
// The reference is `matmul` in src/backends/js/index.ts. Each y[j] sees the same sequence of operations
// whichever thread computes it, so results do not depend on the thread count.

// Horizontal sum of the lanes of a and b (same order in every path).
@inline
function hsum2(a: v128, b: v128): f32 {
  const s = f32x4.add(a, b);
  return (f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1)) + (f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3));
}

// Dot products of x (k floats) with rows j0..j1 of M (rows k floats apart), into y[j0..j1].
function gemvDot(x: usize, mat: usize, y: usize, k: i32, j0: i32, j1: i32, accumulate: bool): void {
  const k8 = k & ~7;
  const rb = <usize>k * 4;
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const r0 = mat + <usize>j * rb;
    const r1 = r0 + rb;
    const r2 = r1 + rb;
    const r3 = r2 + rb;
    let a0 = f32x4.splat(0), b0 = f32x4.splat(0), a1 = f32x4.splat(0), b1 = f32x4.splat(0);
    let a2 = f32x4.splat(0), b2 = f32x4.splat(0), a3 = f32x4.splat(0), b3 = f32x4.splat(0);
    for (let p = 0; p < k8; p += 8) {
      const o = <usize>p * 4;
      const x0 = v128.load(x + o);
      const x1 = v128.load(x + o, 16);
      a0 = f32x4.add(a0, f32x4.mul(x0, v128.load(r0 + o)));
      b0 = f32x4.add(b0, f32x4.mul(x1, v128.load(r0 + o, 16)));
      a1 = f32x4.add(a1, f32x4.mul(x0, v128.load(r1 + o)));
      b1 = f32x4.add(b1, f32x4.mul(x1, v128.load(r1 + o, 16)));
      a2 = f32x4.add(a2, f32x4.mul(x0, v128.load(r2 + o)));
      b2 = f32x4.add(b2, f32x4.mul(x1, v128.load(r2 + o, 16)));
      a3 = f32x4.add(a3, f32x4.mul(x0, v128.load(r3 + o)));
      b3 = f32x4.add(b3, f32x4.mul(x1, v128.load(r3 + o, 16)));
    }
    let s0 = hsum2(a0, b0), s1 = hsum2(a1, b1), s2 = hsum2(a2, b2), s3 = hsum2(a3, b3);
    for (let p = k8; p < k; p++) {
      const xp = load<f32>(x + <usize>p * 4);
      s0 += xp * load<f32>(r0 + <usize>p * 4);
      s1 += xp * load<f32>(r1 + <usize>p * 4);
      s2 += xp * load<f32>(r2 + <usize>p * 4);
      s3 += xp * load<f32>(r3 + <usize>p * 4);
    }
    const yj = y + <usize>j * 4;
    if (accumulate) {
      s0 += load<f32>(yj);
      s1 += load<f32>(yj, 4);
      s2 += load<f32>(yj, 8);
      s3 += load<f32>(yj, 12);
    }
    store<f32>(yj, s0);
    store<f32>(yj, s1, 4);
    store<f32>(yj, s2, 8);
    store<f32>(yj, s3, 12);
  }
  for (; j < j1; j++) {
    // The same arithmetic, one row at a time.
    const r0 = mat + <usize>j * rb;
    let a0 = f32x4.splat(0), b0 = f32x4.splat(0);
    for (let p = 0; p < k8; p += 8) {
      const o = <usize>p * 4;
      a0 = f32x4.add(a0, f32x4.mul(v128.load(x + o), v128.load(r0 + o)));
      b0 = f32x4.add(b0, f32x4.mul(v128.load(x + o, 16), v128.load(r0 + o, 16)));
    }
    let s0 = hsum2(a0, b0);
    for (let p = k8; p < k; p++) s0 += load<f32>(x + <usize>p * 4) * load<f32>(r0 + <usize>p * 4);
    const yj = y + <usize>j * 4;
    if (accumulate) s0 += load<f32>(yj);
    store<f32>(yj, s0);
  }
}

// y[j0..j1] (+)= Σ_p x[p]·M[p·n + j], 4 rows of M per pass over a block of y that stays in L1.
const AXPY_BLOCK: i32 = 1024;
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
 * The matmul cases m = 1 or n = 1 (MatmulArgs in src/backends/backend.ts), share of thread tid of nth.
 * With m = 1: y = C row (n), x = A (k values whatever transA), M = B. With n = 1: y = C column (m),
 * x = B (k values), M = A. The threads split each y into 4-aligned ranges.
 */
export function gemv(
  a: usize, b: usize, c: usize, batch: i32, m: i32, n: i32, k: i32, transA: bool, transB: bool,
  strideA: i32, strideB: i32, strideC: i32, accumulate: bool, tid: i32, nth: i32,
): void {
  const rowVector = m == 1;
  const len = rowVector ? n : m;
  // Dot form when the matrix is stored with rows of k: B stored n×k (transB), or A stored m×k.
  const dot = rowVector ? transB : !transA;
  const units = (len + 3) >> 2;
  const j0 = min(len, (<i32>((<i64>units * tid) / nth)) * 4);
  const j1 = min(len, (<i32>((<i64>units * (tid + 1)) / nth)) * 4);
  if (j1 <= j0) return;
  for (let bi = 0; bi < batch; bi++) {
    const ao = a + <usize>bi * strideA * 4;
    const bo = b + <usize>bi * strideB * 4;
    const y = c + <usize>bi * strideC * 4;
    const x = rowVector ? ao : bo;
    const mat = rowVector ? bo : ao;
    if (dot) gemvDot(x, mat, y, k, j0, j1, accumulate);
    else gemvAxpy(x, mat, y, k, len, j0, j1, accumulate);
  }
}
