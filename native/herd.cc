// The native backend's kernels: a Node addon over the caller's Float32Arrays, zero-copy (a kernel gets
// the typed array's own pointer, so buffers of any size work: no 4 GB ceiling). This file holds the
// SGEMM, the row kernels (RMSNorm, SwiGLU, softmax) and AdamW as plain C++ (herd.h); their N-API
// bindings, and every other kernel file's, are in the binding files (napi.cc, and its sibling for the
// graph).
// The TypeScript side is src/backends/native/index.ts; the readable reference for every kernel here is
// the js backend (src/backends/js/), and test/backends/conformance.test.ts checks each one against it.
//
// - ISA: compiled for baseline x86-64; the GEMM micro-kernels (and gemv.cc's bf16 GEMV) have AVX-512 and
//   AVX2+FMA versions (per-function target attributes) chosen once at load by CPUID
//   (__builtin_cpu_supports), and a portable C++ version used elsewhere (and on non-x86 builds).
// - Threads: one persistent pool (HERD_THREADS, passed in by init()); a kernel runs on the calling
//   thread plus the workers, which spin briefly and then sleep between kernels.
// - GEMM: C (+)= op(A)·op(B) in one tile of C per thread (bands of rows or columns, handed out by an
//   atomic counter); in a tile, the Goto/BLIS loops: per NC columns and KC-slice of k, B is packed once
//   (any transpose, zero-padded) into NR-column panels, then per MC rows A into MR-row panels, and an
//   MR×NR register-blocked micro-kernel runs over them. MC, KC and NC come from this CPU's cache sizes
//   (gemmBlocking). Every shape takes this path (or, for ≤ 4 rows on AVX-512, one with the same sums),
//   so an element of C is summed in the same order whatever m, n and the tiling are (a forward
//   over the last row only equals the last row of a full forward, bit for bit, which the model tests
//   check); decode with f32 weights pays for packing B on every call (bf16 weights use matmulBf16).
#include "herd.h"
#include "simd.h"

namespace herd {
namespace {

// ------------------------------------------------------------------------------------------------
// GEMM micro-kernels: C[MR×NR] (+)= Ap[kc×MR]ᵀ-panel · Bp[kc×NR]-panel. Ap holds, for each p, MR values
// (rows of op(A)); Bp holds, for each p, NR values (columns of op(B)). `load` = add into C, else store.
// ------------------------------------------------------------------------------------------------

// Portable (the reference shape of the optimised ones).
constexpr int MR_G = 4, NR_G = 16;
void kernelGeneric(int kc, const float* Ap, const float* Bp, float* C, int64_t ldc, bool load) {
  float acc[MR_G][NR_G] = {};
  for (int p = 0; p < kc; p++)
    for (int i = 0; i < MR_G; i++) {
      float a = Ap[p * MR_G + i];
      for (int j = 0; j < NR_G; j++) acc[i][j] += a * Bp[p * NR_G + j];
    }
  for (int i = 0; i < MR_G; i++)
    for (int j = 0; j < NR_G; j++) C[i * ldc + j] = (load ? C[i * ldc + j] : 0.f) + acc[i][j];
}

#if HERD_X86
constexpr int MR_2 = 6, NR_2 = 16;
__attribute__((target("avx2,fma"))) void kernelAvx2(int kc, const float* Ap, const float* Bp, float* C,
                                                    int64_t ldc, bool load) {
  __m256 c[MR_2][2];
  for (int i = 0; i < MR_2; i++) c[i][0] = c[i][1] = _mm256_setzero_ps();
  for (int p = 0; p < kc; p++) {
    __m256 b0 = _mm256_loadu_ps(Bp + p * NR_2);
    __m256 b1 = _mm256_loadu_ps(Bp + p * NR_2 + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR_2; i++) {
      __m256 a = _mm256_broadcast_ss(Ap + p * MR_2 + i);
      c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
      c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR_2; i++) {
    float* r = C + i * ldc;
    if (load) {
      c[i][0] = _mm256_add_ps(c[i][0], _mm256_loadu_ps(r));
      c[i][1] = _mm256_add_ps(c[i][1], _mm256_loadu_ps(r + 8));
    }
    _mm256_storeu_ps(r, c[i][0]);
    _mm256_storeu_ps(r + 8, c[i][1]);
  }
}

constexpr int MR_5 = 12, NR_5 = 32;
// One step p of the k loop: C's R×32 accumulators += A's first R of 12 values (broadcast) × B's 32.
template <int R>
__attribute__((target("avx512f,fma"), always_inline)) inline void stepAvx512(const float* Ap, const float* Bp,
                                                                            __m512 c[R][2]) {
  const __m512 b0 = _mm512_loadu_ps(Bp);
  const __m512 b1 = _mm512_loadu_ps(Bp + 16);
  _mm_prefetch((const char*)(Bp + 8 * NR_5), _MM_HINT_T0);
#pragma GCC unroll 12
  for (int i = 0; i < R; i++) {
    const __m512 a = _mm512_set1_ps(Ap[i]);
    c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
    c[i][1] = _mm512_fmadd_ps(a, b1, c[i][1]);
  }
}

// The first R rows of the 12×32 micro-tile (R < 12: the last micro-panel of A, whose zero rows are not
// computed); every element gets the same FMAs in the same order whatever R.
template <int R>
__attribute__((target("avx512f,fma"))) void kernelAvx512(int kc, const float* Ap, const float* Bp, float* C,
                                                         int64_t ldc, bool load) {
  // C's rows are fetched into L2 at the start and into L1 during the last R steps of k, one row per
  // step: fetched into L1 at the start, they were evicted by the stream of A and B before the k loop
  // ended (a C row of a large matrix is also a page of its own, so a miss there is a TLB miss too).
  __m512 c[R][2];
#pragma GCC unroll 12
  for (int i = 0; i < R; i++) {
    c[i][0] = c[i][1] = _mm512_setzero_ps();
    _mm_prefetch((const char*)(C + i * ldc), _MM_HINT_T1);
    _mm_prefetch((const char*)(C + i * ldc + 16), _MM_HINT_T1);
  }
  const int tail = std::min(kc, R);
  int p = 0;
  for (; p < kc - tail; p++) stepAvx512<R>(Ap + p * MR_5, Bp + p * NR_5, c);
  for (int i = 0; p < kc; p++, i++) {
    _mm_prefetch((const char*)(C + i * ldc), _MM_HINT_T0);
    _mm_prefetch((const char*)(C + i * ldc + 16), _MM_HINT_T0);
    stepAvx512<R>(Ap + p * MR_5, Bp + p * NR_5, c);
  }
#pragma GCC unroll 12
  for (int i = 0; i < R; i++) {
    float* r = C + i * ldc;
    if (load) {
      c[i][0] = _mm512_add_ps(c[i][0], _mm512_loadu_ps(r));
      c[i][1] = _mm512_add_ps(c[i][1], _mm512_loadu_ps(r + 16));
    }
    _mm512_storeu_ps(r, c[i][0]);
    _mm512_storeu_ps(r + 16, c[i][1]);
  }
}
#endif

using Kernel = void (*)(int, const float*, const float*, float*, int64_t, bool);

// The kernel for the first `rows` rows of a micro-tile (0 < rows < mr), or null where there is none
// (the full kernel then runs into a scratch tile).
Kernel gemmRowsKernel(int rows) {
#if HERD_X86
  static const Kernel avx512[MR_5] = {nullptr,          kernelAvx512<1>, kernelAvx512<2>,  kernelAvx512<3>,
                                      kernelAvx512<4>,  kernelAvx512<5>, kernelAvx512<6>,  kernelAvx512<7>,
                                      kernelAvx512<8>,  kernelAvx512<9>, kernelAvx512<10>, kernelAvx512<11>};
  if (isa == Isa::Avx512 && rows > 0 && rows < MR_5) return avx512[rows];
#endif
  return nullptr;
}

Kernel gemmKernel() {
#if HERD_X86
  if (isa == Isa::Avx512) return kernelAvx512<MR_5>;
  if (isa == Isa::Avx2) return kernelAvx2;
#endif
  return kernelGeneric;
}

}  // namespace

// The cache blocks, from this core's caches (cpu.cc), by the BLIS/Goto rules (Low et al., "Analytical
// modeling is enough for high-performance BLIS", 2016): per kc-slice of k, a kc×nc panel of B is packed
// once and reused by every mc×kc block of A, which is reused by every kc×nr micro-panel of B.
//   kc: the deeper of two slices of k, a multiple of 64 in [128, 1024]: the textbook one, whose kc×nr
//       micro-panel of B fits L1 (L1d / (nr·4)), and √(L2/4), whose kc×kc block of f32 fills L2 (so
//       A's block below is about half as tall as it is deep). Each kc-slice is one more pass over C,
//       whose rows are fetched into L1 during the kernel's last steps of k; B's micro-panel, when it
//       outgrows L1, is read from L2 ahead of the FMAs. Measured on Zen 4 (bench/RESULTS.md,
//       2026-12-07): the L1 slice and half of it were slower on the squares, the √(L2/4) one the fastest
//       on the squares and the 64-row prefill shape together; four times the L1 slice won on the
//       largest square only.
//   mc: A's mc×kc block in half of L2: mc = L2/2 / (kc·4), a multiple of mr.
//   nc: B's kc×nc panel in half of this core's share of L3: nc = L3/2 / (kc·4), a multiple of nr in
//       [nr, 4096] (no L3: 4096).
// Without cache sizes: the constants tuned on a Zen 5 (kc 256; mc 192/144/128, nc 512/512/256 for
// AVX-512/AVX2/portable). HERD_GEMM_BLOCKING=mc,kc,nc sets them outright, for testing (a small blocking
// turns every loop of the GEMM over on small shapes) and tuning; kc also fixes the order of the sums
// (each kc-slice is summed on its own, then added onto C), so results change in the last bits with it.
GemmBlocking gemmBlocking() {
  static const GemmBlocking g = [] {
    GemmBlocking b{MR_G, NR_G, MR_G * 32, 256, 256, "default"};
#if HERD_X86
    if (isa == Isa::Avx512) b = {MR_5, NR_5, MR_5 * 16, 256, 512, "default"};
    if (isa == Isa::Avx2) b = {MR_2, NR_2, MR_2 * 24, 256, 512, "default"};
#endif
    const CacheSizes c = cacheSizes();
    if (c.l1d > 0 && c.l2 > 0) {
      const int64_t deep = std::max<int64_t>(c.l1d / (b.nr * 4), (int64_t)std::sqrt((double)c.l2 / 4));
      const int64_t kc = std::clamp<int64_t>(deep / 64 * 64, 128, 1024);
      const int64_t mc = std::clamp<int64_t>(c.l2 / 2 / (kc * 4) / b.mr * b.mr, b.mr, 4096 / b.mr * b.mr);
      const int64_t nc = c.l3 > 0 ? std::clamp<int64_t>(c.l3 / 2 / (kc * 4) / b.nr * b.nr, b.nr, 4096) : 4096;
      b = {b.mr, b.nr, (int)mc, (int)kc, (int)nc, "caches"};
    }
    const char* env = std::getenv("HERD_GEMM_BLOCKING");
    int mc = 0, kc = 0, nc = 0;
    if (env && std::sscanf(env, "%d,%d,%d", &mc, &kc, &nc) == 3 && mc > 0 && kc > 0 && nc > 0 && mc <= 65536 &&
        kc <= 65536 && nc <= 65536) {
      // Whole micro-tiles: mc a multiple of mr, nc of nr.
      b.mc = (mc + b.mr - 1) / b.mr * b.mr;
      b.kc = kc;
      b.nc = (nc + b.nr - 1) / b.nr * b.nr;
      b.source = "HERD_GEMM_BLOCKING";
    }
    return b;
  }();
  return g;
}

namespace {

// op(A)[i][p] and op(B)[p][j] of batch item `bi`.
inline float opA(const MatmulP& P, const float* a, int64_t i, int64_t p) {
  return P.ta ? a[p * P.m + i] : a[i * P.k + p];
}

#if HERD_X86
// 16×16 transpose in registers: lane c of r[i] becomes lane i of out[c] (r is overwritten).
__attribute__((target("avx512f"), always_inline)) inline void transpose16r(__m512 r[16], __m512 out[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int h = 0; h < 2; h++)
    for (int q = 0; q < 4; q++) {
      t[8 * h + q] = _mm512_shuffle_f32x4(r[8 * h + q], r[8 * h + q + 4], 0x88);
      t[8 * h + q + 4] = _mm512_shuffle_f32x4(r[8 * h + q], r[8 * h + q + 4], 0xDD);
    }
  for (int i = 0; i < 8; i++) {
    out[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    out[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
  }
}

// The same over memory: row i of the 16 rows at src (leading dimension ld) becomes lane i of out[c]
// (out[c][i] = src[i*ld + c]).
__attribute__((target("avx512f"), always_inline)) inline void transpose16(const float* src, int64_t ld,
                                                                           __m512 out[16]) {
  __m512 r[16];
  for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * ld);
  transpose16r(r, out);
}
#endif

// Pack rows [i0, i0+mc) × cols [p0, p0+kc) of op(A) into MR-row panels, zero-padded.
#if HERD_X86
// One 12-row micro-panel of op(A) = A (`rows` rows of A from `src`, the rest zeros), AVX-512: per 16
// values of k, 12 loads, a transpose in registers and 16 stores of 12 lanes each into the panel (one
// element at a time, every store was a 4-byte store 48 bytes from the last).
__attribute__((target("avx512f"))) void packAAvx512(const float* src, int64_t ld, int rows, int kc, float* d) {
  constexpr int MR = 12;
  const int kc16 = kc / 16 * 16;
  for (int p = 0; p < kc16; p += 16) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_loadu_ps(src + i * ld + p) : _mm512_setzero_ps();
    transpose16r(r, t);
    for (int q = 0; q < 16; q++) _mm512_mask_storeu_ps(d + (p + q) * MR, 0x0fff, t[q]);
  }
  for (int p = kc16; p < kc; p++)  // the last few p of the slice
    for (int i = 0; i < MR; i++) d[p * MR + i] = i < rows ? src[i * ld + p] : 0.f;
}
#endif

// Pack rows [i0, i0+mc) × cols [p0, p0+kc) of op(A) into MR-row panels, zero-padded.
void packA(const MatmulP& P, const float* a, int64_t i0, int mc, int64_t p0, int kc, int mr, float* dst) {
  for (int ib = 0; ib < mc; ib += mr) {
    int rows = std::min(mr, mc - ib);
    float* d = dst + (int64_t)ib * kc;
#if HERD_X86
    if (!P.ta && isa == Isa::Avx512 && mr == 12) {
      packAAvx512(a + (i0 + ib) * P.k + p0, P.k, rows, kc, d);
      continue;
    }
#endif
    if (!P.ta) {  // row by row of A: each read in order, written mr floats apart
      for (int ii = 0; ii < rows; ii++) {
        const float* src = a + (i0 + ib + ii) * P.k + p0;
        for (int p = 0; p < kc; p++) d[p * mr + ii] = src[p];
      }
    } else {
      for (int p = 0; p < kc; p++) {
        const float* src = a + (p0 + p) * P.m + i0 + ib;
        for (int ii = 0; ii < rows; ii++) d[p * mr + ii] = src[ii];
      }
    }
    for (int ii = rows; ii < mr; ii++)
      for (int p = 0; p < kc; p++) d[p * mr + ii] = 0.f;
  }
}

#if HERD_X86
// One 32-column micro-panel of op(B) = Bᵀ (B's rows j0.. are its columns; `cols` of them, the rest
// zeros), AVX-512: per 16 rows of B and 16 values of k, 16 loads, a transpose in registers and 16 whole
// 64-byte stores into the panel (one element at a time, every store was a 4-byte store 128 bytes from
// the last). bf16 rows are widened exactly on the way (a bf16 is the top half of an f32).
__attribute__((target("avx512f"))) void packBTransAvx512(const MatmulP& P, const float* b, int64_t p0, int kc,
                                                         int64_t j0, int cols, float* d) {
  constexpr int NR = 32;
  const int kc16 = kc / 16 * 16;
  for (int h = 0; h < NR; h += 16) {
    const int live = std::clamp(cols - h, 0, 16);
    for (int p = 0; p < kc16; p += 16) {
      __m512 r[16], t[16];
      for (int i = 0; i < 16; i++) {
        if (i >= live) {
          r[i] = _mm512_setzero_ps();
        } else if (P.bh) {
          const __m256i v = _mm256_loadu_si256((const __m256i*)(P.bh + (j0 + h + i) * P.k + p0 + p));
          r[i] = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
        } else {
          r[i] = _mm512_loadu_ps(b + (j0 + h + i) * P.k + p0 + p);
        }
      }
      transpose16r(r, t);
      for (int q = 0; q < 16; q++) _mm512_storeu_ps(d + (p + q) * NR + h, t[q]);
    }
    for (int p = kc16; p < kc; p++)  // the last few p of the slice
      for (int i = 0; i < 16; i++) {
        float v = 0.f;
        if (i < live) {
          const int64_t at = (j0 + h + i) * P.k + p0 + p;
          if (P.bh) {
            const uint32_t u = (uint32_t)P.bh[at] << 16;
            std::memcpy(&v, &u, 4);
          } else {
            v = b[at];
          }
        }
        d[p * NR + h + i] = v;
      }
  }
}
#endif

// Pack rows [p0, p0+kc) × cols [j0, j0+nc) of op(B) into NR-column panels, zero-padded.
void packB(const MatmulP& P, const float* b, int64_t p0, int kc, int64_t j0, int nc, int nr, float* dst) {
  for (int jb = 0; jb < nc; jb += nr) {
    int cols = std::min(nr, nc - jb);
    float* d = dst + (int64_t)jb * kc;
#if HERD_X86
    if (P.tb && isa == Isa::Avx512 && nr == 32) {
      packBTransAvx512(P, b, p0, kc, j0 + jb, cols, d);
      continue;
    }
#endif
    if (!P.tb) {
      for (int p = 0; p < kc; p++) {
        const float* src = b + (p0 + p) * P.n + j0 + jb;
        std::memcpy(d + p * nr, src, cols * sizeof(float));
        for (int jj = cols; jj < nr; jj++) d[p * nr + jj] = 0.f;
      }
    } else if (P.bh) {  // bf16 rows, widened exactly (a bf16 is the top half of an f32)
      for (int jj = 0; jj < cols; jj++) {
        const uint16_t* src = P.bh + (j0 + jb + jj) * P.k + p0;
        for (int p = 0; p < kc; p++) {
          const uint32_t u = (uint32_t)src[p] << 16;
          std::memcpy(d + p * nr + jj, &u, 4);
        }
      }
      for (int jj = cols; jj < nr; jj++)
        for (int p = 0; p < kc; p++) d[p * nr + jj] = 0.f;
    } else {
      for (int jj = 0; jj < cols; jj++) {
        const float* src = b + (j0 + jb + jj) * P.k + p0;
        for (int p = 0; p < kc; p++) d[p * nr + jj] = src[p];
      }
      for (int jj = cols; jj < nr; jj++)
        for (int p = 0; p < kc; p++) d[p * nr + jj] = 0.f;
    }
  }
}


// Tiles of C handed to the threads: rt bands of rows × ct bands of columns per batch item, at least
// `want` in all (or as many as whole micro-tiles allow), with the least packing: every column band packs all of its rows of A, every row band
// all of its columns of B, so the count minimises ct·m + rt·n.
struct Tiling {
  int64_t rows, cols, rt, ct;
};
Tiling tiling(const MatmulP& P, const GemmBlocking& B, int64_t want) {
  const int64_t perItem = std::max<int64_t>(1, (want + P.batch - 1) / P.batch);
  const int64_t maxR = (P.m + B.mr - 1) / B.mr, maxC = (P.n + B.nr - 1) / B.nr;
  int64_t bestR = 1, bestC = 1;
  double best = 1e300;
  for (int64_t ct = 1; ct <= std::min(perItem, maxC); ct++) {
    const int64_t rt = std::min(maxR, (perItem + ct - 1) / ct);
    const double cost = double(ct) * P.m + double(rt) * P.n;
    if (cost < best) best = cost, bestR = rt, bestC = ct;
  }
  const int64_t rows = ((P.m + bestR - 1) / bestR + B.mr - 1) / B.mr * B.mr;
  const int64_t cols = ((P.n + bestC - 1) / bestC + B.nr - 1) / B.nr * B.nr;
  return {rows, cols, (P.m + rows - 1) / rows, (P.n + cols - 1) / cols};
}

// The micro-kernel over a packed mc×kc block of A (Ap) and kc×nc panel of B (Bp): C rows [ic, ic+mc),
// columns [jc, jc+nc); `load` adds onto C.
void macroKernel(const MatmulP& P, const GemmBlocking& B, Kernel kernel, const float* Ap, const float* Bp,
                 float* c, int64_t ic, int mc, int64_t jc, int nc, int kc, bool load) {
  float edge[16 * 32];
  for (int jb = 0; jb < nc; jb += B.nr) {
    const int cols = std::min(B.nr, nc - jb);
    const float* bp = Bp + (int64_t)jb * kc;
    for (int ib = 0; ib < mc; ib += B.mr) {
      const int rows = std::min(B.mr, mc - ib);
      float* ct = c + (ic + ib) * P.n + jc + jb;
      const float* ap = Ap + (int64_t)ib * kc;
      const Kernel part = rows < B.mr ? gemmRowsKernel(rows) : nullptr;
      if (rows == B.mr && cols == B.nr) {
        kernel(kc, ap, bp, ct, P.n, load);
      } else if (part && cols == B.nr) {
        part(kc, ap, bp, ct, P.n, load);
      } else {
        kernel(kc, ap, bp, edge, B.nr, false);
        for (int i = 0; i < rows; i++)
          for (int j = 0; j < cols; j++) ct[i * P.n + j] = (load ? ct[i * P.n + j] : 0.f) + edge[i * B.nr + j];
      }
    }
  }
}

// A thread's buffer for packed panels, on transparent hugepages where the kernel gives them (memory.cc):
// B's packed panel is megabytes, read back micro-panel by micro-panel, and on 4 KiB pages its reads
// (and C's rows, thousands of pages apart) miss the TLB. Grown as needed, freed with the thread.
struct PackBuffer {
  float* p = nullptr;
  size_t bytes = 0;
  std::vector<float> fallback;  // where allocLarge fails
  float* get(size_t n) {
    const size_t want = (n + 16) * sizeof(float);
    if (want <= bytes) return p;
    if (p) freeLarge(p, bytes);
    bool huge = false;
    p = static_cast<float*>(allocLarge(want, &huge));
    bytes = p ? want : 0;
    return p ? p : scratch(fallback, n);
  }
  ~PackBuffer() {
    if (p) freeLarge(p, bytes);
  }
};

// One tile of C, rows [i0, i1) × columns [j0, j1), in the Goto loop order: per nc columns and kc-slice
// of k, B's kc×nc panel is packed once and every mc-row block of A runs against it.
void gemmTile(const MatmulP& P, const GemmBlocking& B, Kernel kernel, const float* a, const float* b, float* c,
              int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  thread_local PackBuffer abuf, bbuf;
  float* Ap = abuf.get((size_t)B.mc * B.kc);
  float* Bp = bbuf.get((size_t)B.kc * (B.nc + B.nr));
  // Blocks of A of even height (whole micro-panels): a thin last block would stream all of B's panel
  // past one or two micro-panels of A.
  const int64_t blocks = (i1 - i0 + B.mc - 1) / B.mc;
  const int64_t mcTile = ((i1 - i0 + blocks - 1) / blocks + B.mr - 1) / B.mr * B.mr;
  // With one block of A, B's panel serves it alone: one the size of A's block stays in L2 (nc columns
  // would be packed out to L3 and read back once); C's mc×nc tile stays cached across the kc-slices.
  const int64_t ncTile = blocks == 1 ? std::min<int64_t>(B.nc, (B.mc + B.nr - 1) / B.nr * B.nr) : B.nc;
  for (int64_t jc = j0; jc < j1; jc += ncTile) {
    const int nc = (int)std::min<int64_t>(ncTile, j1 - jc);
    for (int64_t pc = 0; pc < P.k; pc += B.kc) {
      const int kc = (int)std::min<int64_t>(B.kc, P.k - pc);
      packB(P, b, pc, kc, jc, nc, B.nr, Bp);
      for (int64_t ic = i0; ic < i1; ic += mcTile) {
        const int mc = (int)std::min<int64_t>(mcTile, i1 - ic);
        packA(P, a, ic, mc, pc, kc, B.mr, Ap);
        macroKernel(P, B, kernel, Ap, Bp, c, ic, mc, jc, nc, kc, P.acc || pc > 0);
      }
    }
  }
}

void gemmTiled(const MatmulP& P) {
  const GemmBlocking B = gemmBlocking();
  const Kernel kernel = gemmKernel();
  // One tile per thread (more, for dynamic balance, measured slower: each extra band packs A or B again).
  const Tiling T = tiling(P, B, pool.threads());
  const int64_t perItem = T.rt * T.ct;
  parallelFor(P.batch * perItem, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t bi = t / perItem, r = (t % perItem) / T.ct, q = t % T.ct;
      const int64_t i0 = r * T.rows, i1 = std::min(P.m, i0 + T.rows);
      const int64_t j0 = q * T.cols, j1 = std::min(P.n, j0 + T.cols);
      float* c = P.c + bi * P.sc;
      if (P.k == 0) {
        if (!P.acc)
          for (int64_t i = i0; i < i1; i++) std::memset(c + i * P.n + j0, 0, (j1 - j0) * sizeof(float));
        continue;
      }
      gemmTile(P, B, kernel, P.a + bi * P.sa, P.b ? P.b + bi * P.sb : nullptr, c, i0, i1, j0, j1);
    }
  });
}

// Few rows of op(A) (decode), AVX-512: the tiled path would pack all of B and waste MR-1 of every MR
// rows of work. This computes each C element with exactly the micro-kernel's arithmetic (an FMA chain
// over p within each KC block, blocks added onto C in order), so its results are bit-identical to the
// tiled path's: a forward over a few rows equals those rows of a full forward. Columns of op(B) go 16 to
// a vector; with transB, 16 rows of B are transposed 16×16 in registers and fed straight to the FMAs
// (no round trip through an L1 buffer).
#if HERD_X86
constexpr int SMALL_M = 4;
// Column groups [g0, g1) of C (16 columns each) for M rows of op(A), one group at a time. Interleaving
// several groups (more FMA chains in flight) was measured slower for the decode shape: 2 or 4 groups
// read 32 or 64 rows of B at once, and that many streams read slower than 16 (bench/RESULTS.md "Kernel design notes").
template <int M>
__attribute__((target("avx512f,fma"))) void smallMRange(const MatmulP& P, const float* a, const float* b,
                                                        float* c, int64_t g0, int64_t g1, int kcBlock) {
  for (int64_t g = g0; g < g1; g++) {
    const int64_t j = g * 16;
    const int cnt = (int)std::min<int64_t>(16, P.n - j);
    const __mmask16 mask = (__mmask16)(cnt == 16 ? 0xffff : (1u << cnt) - 1);
    const float* rows = b + j * P.k;  // transB: the group's first of 16 rows (a short group repeats its last)
    __m512 tot[M];
    for (int i = 0; i < M; i++) tot[i] = P.acc ? _mm512_maskz_loadu_ps(mask, c + i * P.n + j) : _mm512_setzero_ps();
    for (int64_t p0 = 0; p0 < P.k; p0 += kcBlock) {
      const int64_t p1 = std::min<int64_t>(P.k, p0 + kcBlock);
      __m512 acc[M];
      for (int i = 0; i < M; i++) acc[i] = _mm512_setzero_ps();
      int64_t p = p0;
      if (P.tb) {
        for (; p + 16 <= p1; p += 16) {
          __m512 t[16];
          if (cnt == 16) {
            transpose16(rows + p, P.k, t);
          } else {
            alignas(64) float edge[16 * 16];
            for (int r = 0; r < 16; r++) std::memcpy(edge + r * 16, rows + std::min(r, cnt - 1) * P.k + p, 64);
            transpose16(edge, 16, t);
          }
#pragma GCC unroll 16
          for (int q = 0; q < 16; q++)
#pragma GCC unroll 4
            for (int i = 0; i < M; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i * P.k + p + q]), t[q], acc[i]);
        }
        for (; p < p1; p++) {  // the last few p of k
          alignas(64) float col[16];
          for (int r = 0; r < 16; r++) col[r] = rows[std::min(r, cnt - 1) * P.k + p];
          const __m512 bv = _mm512_load_ps(col);
          for (int i = 0; i < M; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i * P.k + p]), bv, acc[i]);
        }
      } else {
        for (; p < p1; p++) {
          const __m512 bv = _mm512_maskz_loadu_ps(mask, b + p * P.n + j);
          for (int i = 0; i < M; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i * P.k + p]), bv, acc[i]);
        }
      }
      for (int i = 0; i < M; i++) tot[i] = (p0 == 0 && !P.acc) ? acc[i] : _mm512_add_ps(acc[i], tot[i]);
    }
    for (int i = 0; i < M; i++) _mm512_mask_storeu_ps(c + i * P.n + j, mask, tot[i]);
  }
}

void smallMAvx512(const MatmulP& P, int kcBlock) {
  const int64_t groups = (P.n + 15) / 16;
  // ~256 KB of B per chunk (at least 4 groups).
  const int64_t grain = std::max<int64_t>(4, 4096 / std::max<int64_t>(1, P.k));
  for (int64_t bi = 0; bi < P.batch; bi++) {
    const float* a = P.a + bi * P.sa;
    const float* b = P.b + bi * P.sb;
    float* c = P.c + bi * P.sc;
    parallelFor(groups, grain, [&](int64_t g0, int64_t g1) {
      switch (P.m) {
        case 1: return smallMRange<1>(P, a, b, c, g0, g1, kcBlock);
        case 2: return smallMRange<2>(P, a, b, c, g0, g1, kcBlock);
        case 3: return smallMRange<3>(P, a, b, c, g0, g1, kcBlock);
        default: return smallMRange<4>(P, a, b, c, g0, g1, kcBlock);
      }
    });
  }
}
#endif

}  // namespace

// C (m×n) = A (m×k) · Bᵀ with B n×k in bf16 (prefill with bf16 weights; native/gemv.cc has the GEMV).
void gemmBf16(const float* a, const uint16_t* b, float* c, int64_t m, int64_t n, int64_t k) {
  MatmulP P{a, nullptr, c, 1, m, n, k, 0, 0, 0, false, true, false, b};
  gemmTiled(P);
}

// C (+)= op(A)·op(B): the few-row AVX-512 path or the tiled SGEMM.
void matmul(const MatmulP& P) {
  if (P.m == 0 || P.n == 0) return;
#if HERD_X86
  if (isa == Isa::Avx512 && P.m <= SMALL_M && !P.ta && P.k > 0 && P.k * 16 < (int64_t(1) << 31))
    return smallMAvx512(P, gemmBlocking().kc);
#endif
  gemmTiled(P);
}

// ------------------------------------------------------------------------------------------------
// Row and elementwise kernels (reference: src/backends/js/index.ts; plain loops that the compiler
// vectorises for the baseline ISA, run over rows or chunks on the pool).
// ------------------------------------------------------------------------------------------------

// RMSNorm rows: the sums over a row are SimdOps dot products (f32 vector lanes; the reference sums in
// f64), the rest plain loops the compiler vectorises.
void rmsNorm(const float* x, const float* w, float* out, float* rstd, int64_t rows, int64_t dim, float eps) {
  const SimdOps& K = simdOps();
  parallelFor(rows, std::max<int64_t>(1, streamGrain(rows * dim, pool.threads(), 65536) / std::max<int64_t>(1, dim)),
              [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * dim;
      const double ss = K.dot(xr, xr, dim);
      const float s = (float)(1.0 / std::sqrt(ss / dim + eps));
      rstd[r] = s;
      float* o = out + r * dim;
      for (int64_t i = 0; i < dim; i++) o[i] = xr[i] * s * w[i];
    }
  });
}

void rmsNormBackward(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* dw,
                     int64_t rows, int64_t dim) {
  const SimdOps& K = simdOps();
  parallelFor(rows, std::max<int64_t>(1, streamGrain(rows * dim, pool.threads(), 65536) / std::max<int64_t>(1, dim)),
              [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t o = r * dim;
      const double s = rstd[r];
      const double d = K.dot3(w, dy + o, x + o, dim);
      const float cc = (float)(s * s * s * d / dim);
      const float sf = (float)s;
      for (int64_t i = 0; i < dim; i++) dx[o + i] = sf * w[i] * dy[o + i] - cc * x[o + i];
    }
  });
  // dw is a sum over rows: columns are split across threads so no two write the same element.
  if (dw)
    parallelFor(dim, rows * dim < (int64_t(1) << 18) ? dim : std::max<int64_t>(16, (dim / pool.threads() + 15) & ~int64_t(15)),
                [&](int64_t i0, int64_t i1) {
      for (int64_t r = 0; r < rows; r++) {
        const int64_t o = r * dim;
        const float s = rstd[r];
        for (int64_t i = i0; i < i1; i++) dw[i] += dy[o + i] * x[o + i] * s;
      }
    });
}

// SwiGLU and AdamW: the vectorised loops of simd.h (exp and sqrt in SIMD registers), over chunks.
void swiglu(const float* g, const float* u, float* out, int64_t n) {
  const SimdOps& K = simdOps();
  parallelFor(n, streamGrain(n, pool.threads(), 65536), [&](int64_t i0, int64_t i1) {
    K.swiglu(g + i0, u + i0, out + i0, i1 - i0);
  });
}

void swigluBackward(const float* g, const float* u, const float* dout, float* dg, float* du, int64_t n) {
  const SimdOps& K = simdOps();
  parallelFor(n, streamGrain(n, pool.threads(), 65536), [&](int64_t i0, int64_t i1) {
    K.swigluBackward(g + i0, u + i0, dout + i0, dg + i0, du + i0, i1 - i0);
  });
}

void softmax(const float* x, float* out, int64_t rows, int64_t cols) {
  parallelFor(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, cols)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      float* o = out + r * cols;
      float mx = -INFINITY;
      for (int64_t i = 0; i < cols; i++) mx = std::max(mx, xr[i]);
      double sum = 0;
      for (int64_t i = 0; i < cols; i++) {
        const float e = std::exp(xr[i] - mx);
        o[i] = e;
        sum += e;
      }
      const float inv = (float)(1.0 / sum);
      for (int64_t i = 0; i < cols; i++) o[i] *= inv;
    }
  });
}

// PyTorch AdamW (reference: adamw in src/backends/js/index.ts), in f32.
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, const AdamW& A) {
  const float a[7] = {(float)A.lr, (float)A.b1, (float)A.b2, (float)A.eps, (float)(1 - A.lr * A.wd),
                      (float)(1 - std::pow(A.b1, A.step)), (float)(1 - std::pow(A.b2, A.step))};
  const SimdOps& K = simdOps();
  parallelFor(n, streamGrain(n, pool.threads(), 65536), [&](int64_t i0, int64_t i1) {
    K.adamw(param + i0, grad + i0, m + i0, v + i0, i1 - i0, a);
  });
}

// (Re)start the pool with `threads` threads (0: one per hardware thread).
void startPool(int64_t threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  pool.start((int)std::min<int64_t>(threads, 256));
}

}  // namespace herd
