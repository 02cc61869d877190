// Packed, cache-blocked, register-blocked SGEMM with 128-bit SIMD: C (+)= op(A)·op(B), the wasm
// backend's matmul for m > 1 and n > 1 (gemv.ts takes the vector cases). The readable reference is
// `matmul` in src/backends/js/index.ts; this file computes the same thing, organised for the caches:
//
//   for jc in columns, step NC:            B panel op(B)[pc.., jc..] (KC×NC) packed once, lives in L2/L3
//     for pc in 0..k, step KC:
//       pack B panel into NR-wide slivers: Bp[sliver][p][0..NR)
//       for ic in rows, step MC:           A block op(A)[ic.., pc..] (MC×KC) packed, lives in L2
//         pack A block into MR-tall slivers: Ap[sliver][p][0..MR)
//         for jr in slivers of B:          one B sliver (KC×NR, 8 KiB) stays in L1
//           for ir in slivers of A:
//             micro-kernel: C[ir..+MR, jr..+NR] (+)= Ap sliver · Bp sliver
//
// The micro-kernel holds a 4×8 tile of C in 8 f32x4 registers (12 would spill: V8 has 16 xmm registers
// to give), reading both operands as contiguous streams whatever the transposition of A and B: packing
// is where transA/transB, strides and ragged edges are dealt with (edges are zero-padded, so every tile
// runs the same arithmetic, and each element of C sees the same sequence of additions however the work
// is split between threads: results do not depend on the thread count).
//
// Threads: every thread calls sgemm with its own tid and a private scratch area, and claims strips of C
// from a shared counter (one atomic add per strip); no other synchronisation is needed inside wasm.

export const MR: i32 = 4;
export const NR: i32 = 8;
export const MC: i32 = 128;
export const KC: i32 = 256;
export const NC: i32 = 2048;

/** Bytes of scratch one thread needs: a packed A block, a packed B panel and one C tile. */
export function gemmScratchBytes(): i32 {
  return (MC * KC + KC * NC + MR * NR) * 4 + 64;
}

// 4×4 transpose of rows r0..r3 into columns, stored as 4 vectors at dst, dst+step, dst+2·step, dst+3·step.
@inline
function transpose4Store(r0: v128, r1: v128, r2: v128, r3: v128, dst: usize, step: usize): void {
  const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5);
  const t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7);
  const t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(dst, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
  v128.store(dst + step, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
  v128.store(dst + 2 * step, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * step, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
}

// Pack op(A)[i0..i0+mc, p0..p0+kc] into MR-tall slivers: dst[s·kc·MR + p·MR + r] = op(A)(i0+s·MR+r, p0+p),
// zero where i0+s·MR+r ≥ i0+mc. op(A)(i, p) lives at a + 4·(i·rs + p·cs).
function packA(a: usize, rs: i32, cs: i32, i0: i32, p0: i32, mc: i32, kc: i32, dst: usize): void {
  for (let s = 0; s < mc; s += MR) {
    const rows = min(MR, mc - s);
    const out = dst + <usize>(s * kc) * 4;
    const base = a + (<usize>(i0 + s) * rs + <usize>p0 * cs) * 4;
    if (rows == MR && rs == 1) {
      // op(A) = Aᵀ: the MR values of one p are adjacent in memory.
      for (let p = 0; p < kc; p++) v128.store(out + <usize>p * 16, v128.load(base + <usize>p * cs * 4));
    } else if (rows == MR && cs == 1) {
      // A row-major: each row is contiguous in p; transpose 4×4 blocks.
      const rb = <usize>rs * 4;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const src = base + <usize>p * 4;
        transpose4Store(v128.load(src), v128.load(src + rb), v128.load(src + 2 * rb), v128.load(src + 3 * rb), out + <usize>p * 16, 16);
      }
      for (; p < kc; p++) {
        for (let r = 0; r < MR; r++) store<f32>(out + <usize>(p * MR + r) * 4, load<f32>(base + (<usize>r * rs + p) * 4));
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let r = 0; r < MR; r++) {
          const v: f32 = r < rows ? load<f32>(base + (<usize>r * rs + <usize>p * cs) * 4) : 0;
          store<f32>(out + <usize>(p * MR + r) * 4, v);
        }
      }
    }
  }
}

// Pack op(B)[p0..p0+kc, j0..j0+nc] into NR-wide slivers: dst[t·kc·NR + p·NR + c] = op(B)(p0+p, j0+t·NR+c),
// zero past the last column. op(B)(p, j) lives at b + 4·(p·rs + j·cs).
function packB(b: usize, rs: i32, cs: i32, p0: i32, j0: i32, kc: i32, nc: i32, dst: usize): void {
  for (let t = 0; t < nc; t += NR) {
    const cols = min(NR, nc - t);
    const out = dst + <usize>(t * kc) * 4;
    const base = b + (<usize>p0 * rs + <usize>(j0 + t) * cs) * 4;
    if (cols == NR && cs == 1) {
      // B row-major: the NR values of one p are adjacent.
      for (let p = 0; p < kc; p++) {
        const src = base + <usize>p * rs * 4;
        v128.store(out + <usize>p * 32, v128.load(src));
        v128.store(out + <usize>p * 32 + 16, v128.load(src + 16));
      }
    } else if (cols == NR && rs == 1) {
      // op(B) = Bᵀ (PyTorch weight layout): each column of op(B) is contiguous in p; transpose 4×4 blocks.
      const cb = <usize>cs * 4;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const src = base + <usize>p * 4;
        const o = out + <usize>p * 32;
        transpose4Store(v128.load(src), v128.load(src + cb), v128.load(src + 2 * cb), v128.load(src + 3 * cb), o, 32);
        const s4 = src + 4 * cb;
        transpose4Store(v128.load(s4), v128.load(s4 + cb), v128.load(s4 + 2 * cb), v128.load(s4 + 3 * cb), o + 16, 32);
      }
      for (; p < kc; p++) {
        for (let c = 0; c < NR; c++) store<f32>(out + <usize>(p * NR + c) * 4, load<f32>(base + (<usize>c * cs + p) * 4));
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let c = 0; c < NR; c++) {
          const v: f32 = c < cols ? load<f32>(base + (<usize>p * rs + <usize>c * cs) * 4) : 0;
          store<f32>(out + <usize>(p * NR + c) * 4, v);
        }
      }
    }
  }
}

// C[0..4, 0..8] = (loadC ? C : 0) + Ap·Bp over kc steps; C rows are ldc floats apart.
// One step: 2 loads of B, 4 broadcasts of A, 8 multiplies and 8 adds into 8 accumulators.
@inline
function micro(kc: i32, ap: usize, bp: usize, c: usize, ldc: usize, loadC: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = f32x4.add(c00, f32x4.mul(a, b0));
    c01 = f32x4.add(c01, f32x4.mul(a, b1));
    a = v128.load32_splat(ap, 4);
    c10 = f32x4.add(c10, f32x4.mul(a, b0));
    c11 = f32x4.add(c11, f32x4.mul(a, b1));
    a = v128.load32_splat(ap, 8);
    c20 = f32x4.add(c20, f32x4.mul(a, b0));
    c21 = f32x4.add(c21, f32x4.mul(a, b1));
    a = v128.load32_splat(ap, 12);
    c30 = f32x4.add(c30, f32x4.mul(a, b0));
    c31 = f32x4.add(c31, f32x4.mul(a, b1));
    ap += 16;
    bp += 32;
  }
  const r = ldc * 4;
  if (loadC) {
    c00 = f32x4.add(c00, v128.load(c));
    c01 = f32x4.add(c01, v128.load(c, 16));
    c10 = f32x4.add(c10, v128.load(c + r));
    c11 = f32x4.add(c11, v128.load(c + r, 16));
    c20 = f32x4.add(c20, v128.load(c + 2 * r));
    c21 = f32x4.add(c21, v128.load(c + 2 * r, 16));
    c30 = f32x4.add(c30, v128.load(c + 3 * r));
    c31 = f32x4.add(c31, v128.load(c + 3 * r, 16));
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(c + r, c10);
  v128.store(c + r, c11, 16);
  v128.store(c + 2 * r, c20);
  v128.store(c + 2 * r, c21, 16);
  v128.store(c + 3 * r, c30);
  v128.store(c + 3 * r, c31, 16);
}

// C[i0..i1, j0..j1] of one product. op(A)(i,p) at a + 4(i·ars + p·acs), op(B)(p,j) at b + 4(p·brs + j·bcs),
// C(i,j) at c + 4(i·ldc + j).
function gemmRect(
  a: usize, ars: i32, acs: i32, b: usize, brs: i32, bcs: i32, c: usize, ldc: i32, k: i32,
  i0: i32, i1: i32, j0: i32, j1: i32, accumulate: bool, scratch: usize,
): void {
  const ap = (scratch + 63) & ~(<usize>63);
  const bp = ap + <usize>(MC * KC) * 4;
  const tile = bp + <usize>(KC * NC) * 4;
  if (k == 0) {
    // An empty sum: C = 0, or unchanged when accumulating.
    if (!accumulate) for (let i = i0; i < i1; i++) memory.fill(c + (<usize>i * ldc + j0) * 4, 0, <usize>(j1 - j0) * 4);
    return;
  }
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      const loadC = accumulate || pc > 0;
      packB(b, brs, bcs, pc, jc, kc, nc, bp);
      for (let ic = i0; ic < i1; ic += MC) {
        const mc = min(MC, i1 - ic);
        packA(a, ars, acs, ic, pc, mc, kc, ap);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const bs = bp + <usize>(jr * kc) * 4;
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            const as = ap + <usize>(ir * kc) * 4;
            const cij = c + (<usize>(ic + ir) * ldc + <usize>(jc + jr)) * 4;
            if (mr == MR && nr == NR) {
              micro(kc, as, bs, cij, ldc, loadC);
            } else {
              // Ragged edge: full tile into scratch, then the valid part into C.
              micro(kc, as, bs, tile, NR, false);
              for (let r = 0; r < mr; r++) {
                for (let q = 0; q < nr; q++) {
                  const dst = cij + (<usize>r * ldc + q) * 4;
                  const v = load<f32>(tile + <usize>(r * NR + q) * 4);
                  store<f32>(dst, loadC ? load<f32>(dst) + v : v);
                }
              }
            }
          }
        }
      }
    }
  }
}

/**
 * Batched C[bi] (+)= op(A[bi])·op(B[bi]) (see MatmulArgs in src/backends/backend.ts), run by each of nth
 * threads with its tid. Pointers are byte addresses; strides are in elements (0 broadcasts); rows of C
 * are ldc elements apart (n for a whole matrix, more for a block of columns of a wider one). Thread tid
 * packs into scratchBase + tid·scratchStride (gemmScratchBytes() each). The work is cut into units, each
 * a strip of whole tiles of one product along C's longer side (at least 64 rows or columns, so packing
 * stays cheap), and threads claim units from the shared i32 at `counter` (zeroed by the caller): a
 * thread that starts late or is preempted simply does fewer units.
 */
export function sgemm(
  a: usize, b: usize, c: usize, batch: i32, m: i32, n: i32, k: i32, transA: bool, transB: bool,
  strideA: i32, strideB: i32, strideC: i32, accumulate: bool, ldc: i32, scratchBase: usize, scratchStride: i32,
  counter: usize, tid: i32, nth: i32,
): void {
  const scratch = scratchBase + <usize>tid * scratchStride;
  const ars = transA ? 1 : k;
  const acs = transA ? m : 1;
  const brs = transB ? 1 : n;
  const bcs = transB ? k : 1;
  const rowTiles = (m + MR - 1) / MR;
  const colTiles = (n + NR - 1) / NR;
  const alongCols = colTiles >= rowTiles;
  const tiles = alongCols ? colTiles : rowTiles;
  let per = tiles; // tiles per strip
  if (nth > 1 && batch < 4 * nth) {
    const strips = (4 * nth + batch - 1) / batch; // aim for ≥ 4 units per thread
    per = max(alongCols ? 64 / NR : 64 / MR, (tiles + strips - 1) / strips);
  }
  const strips = (tiles + per - 1) / per;
  const units = batch * strips;
  for (let u = atomic.add<i32>(counter, 1); u < units; u = atomic.add<i32>(counter, 1)) {
    const bi = u / strips;
    const t0 = (u % strips) * per;
    const t1 = min(tiles, t0 + per);
    const ao = a + <usize>bi * strideA * 4;
    const bo = b + <usize>bi * strideB * 4;
    const co = c + <usize>bi * strideC * 4;
    if (alongCols) gemmRect(ao, ars, acs, bo, brs, bcs, co, ldc, k, 0, m, t0 * NR, min(n, t1 * NR), accumulate, scratch);
    else gemmRect(ao, ars, acs, bo, brs, bcs, co, ldc, k, t0 * MR, min(m, t1 * MR), 0, n, accumulate, scratch);
  }
}
