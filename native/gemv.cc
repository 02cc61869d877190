// Decode with bf16 weights: C (m×n) = A (m×k) · Bᵀ where B (n×k) is held as bf16 bit patterns (the
// x·Wᵀ of a linear layer whose weight stays in bf16), plus the memory-bandwidth probe the model
// benchmark's roofline divides by. Reference: matmulBf16 in src/backends/js/bf16.ts (widen each weight to
// f32, exact, then multiply-add in f32); test/backends/conformance.test.ts checks this against it.
//
// A decode step (m = 1) reads every weight once: it is a pure streaming read, so the kernel's only job is
// to keep the memory system busy. Rows are handed out in chunks of up to 2 MiB by the pool's atomic
// counter; each row is read as one sequential stream of aligned 64-byte lines (rowAvx512 says how, and
// what was measured), prefetched 4 KiB ahead. Few rows of A (m ≤ 4) reuse each row from L1; more rows (prefill) go to the tiled
// SGEMM, which widens bf16 while packing B (gemmBf16 in herd.cc). AVX2 and portable versions keep the
// simpler shape (4 rows at a time, zero-extension) and serve machines without AVX-512, and rows whose
// length is not a whole number of 64-byte lines (productRows).
//
// matmulBf16Many does several products with the same A in one pool round trip (a layer's Q, K, V or its
// gate and up projections), so the threads never wait at a barrier between them.
//
// Plain C++ (declared in herd.h), no N-API: the binding that checks the JS arguments and calls these
// kernels is in napi.cc.
#include <chrono>

#include "herd.h"

namespace herd {
namespace {

inline float bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ------------------------------------------------------------------------------------------------
// Row kernels: out[i·ldc + r] = Σ_p a[i·k + p]·w_r[p] for rows r of one group (w_r = w + r·k), every i < m.
// ------------------------------------------------------------------------------------------------

// Portable (the reference shape of the optimised ones): 8 partial sums per row.
void rowsGeneric(const float* a, int64_t m, const uint16_t* w, int rows, int64_t k, float* out, int64_t ldc) {
  for (int64_t i = 0; i < m; i++)
    for (int r = 0; r < rows; r++) {
      const float* x = a + i * k;
      const uint16_t* wr = w + r * k;
      float s[8] = {};
      int64_t p = 0;
      for (; p + 8 <= k; p += 8)
        for (int l = 0; l < 8; l++) s[l] += x[p + l] * bf16(wr[p + l]);
      float t = (s[0] + s[1]) + (s[2] + s[3]) + ((s[4] + s[5]) + (s[6] + s[7]));
      for (; p < k; p++) t += x[p] * bf16(wr[p]);
      out[i * ldc + r] = t;
    }
}

// A product's rows in line coordinates (see rowAvx512).
struct Lines {
  int64_t d, lines;  // offset of a row into its first line; lines per row
  // AND masks keeping the row's own elements of its first and last lines, and one keeping everything
  // (vectors in memory: an AND with them is a plain load, where a masked load would be several times
  // slower here).
  alignas(64) uint16_t first[32], last[32], all[32];
};

#if HERD_X86
// AVX2: up to 4 rows at a time, 8 values per load widened by zero-extension and a shift.
__attribute__((target("avx2,fma"))) void rowsAvx2(const float* a, int64_t m, const uint16_t* w, int rows,
                                                  int64_t k, float* out, int64_t ldc) {
  for (int64_t i = 0; i < m; i++) {
    const float* x = a + i * k;
    __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t p = 0;
    for (; p + 8 <= k; p += 8) {
      const __m256 xv = _mm256_loadu_ps(x + p);
      for (int r = 0; r < rows; r++) {
        const __m128i h = _mm_loadu_si128((const __m128i*)(w + r * k + p));
        const __m256 wv = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
        s[r] = _mm256_fmadd_ps(xv, wv, s[r]);
      }
    }
    for (int r = 0; r < rows; r++) {
      float t = hsum256(s[r]);
      for (int64_t q = p; q < k; q++) t += x[q] * bf16(w[r * k + q]);
      out[i * ldc + r] = t;
    }
  }
}

// AVX-512, one row as aligned 64-byte lines. Rows are k·2 bytes apart, a multiple of 64, so every row
// starts at the same offset d (in bf16 elements) into a cache line: row j covers `lines` whole lines
// from w_j − d, the first line beginning with d elements of row j−1, the last ending with some of row
// j+1 (masked off: `first`/`last` keep the row's own 16-bit lanes; a line never crosses a page, so the extra bytes are always
// readable). x is laid out in the same line coordinates, x[pos − d] (zero outside the row), and split
// into even/odd positions: a 64-byte line holds 32 bf16 values, and shifting each 32-bit lane left by 16
// gives the even positions as f32 while masking off the low half gives the odd ones, so each line feeds
// two FMAs with xe/xo and two ALU ops. The row is read as one sequential stream, 4 lines per step (8
// independent FMA chains): one stream comes close to a pure streaming read, where several rows read
// side by side, misaligned (split) or masked loads fall well short (bench/RESULTS.md "Kernel design notes").

// Lines ahead a row's stream prefetches: 4 KiB (one row of k = 2048), the distance that helped the 1B
// decode's GEMV sequence most; shorter and longer distances helped less (bench/RESULTS.md "Kernel design notes").
constexpr int64_t PREFETCH_LINES = 64;

// MASK: whether the row shares its first or last line with a neighbour (d > 0, or k not a multiple of
// 32); aligned rows of whole lines (the usual case: weights in the backend's 64-byte aligned buffers)
// skip the two mask loads and ANDs per step, which narrows their gap to the interleaved copy below.
template <bool MASK>
__attribute__((target("avx512f,avx512bw,fma"))) float rowAvx512(const float* xe, const float* xo,
                                                                 const uint16_t* line0, const Lines& L) {
  const int64_t lines = L.lines;
  const __m512i odd = _mm512_set1_epi32((int)0xffff0000u);
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
  // Lines 4 at a time, then the last few one at a time; the first and last lines masked.
  auto mask = [&](int64_t l) { return l == 0 ? L.first : l == lines - 1 ? L.last : L.all; };
  int64_t l = 0;
  for (; l + 4 <= lines; l += 4) {
    const uint16_t* w = line0 + 32 * l;
    // Software prefetch PREFETCH_LINES ahead (the hardware prefetchers stop at 4 KiB boundaries and
    // restart slowly; past the row's end this fetches the next row, which the same chunk reads next).
    for (int f = 0; f < 4; f++) _mm_prefetch((const char*)(w + 32 * (PREFETCH_LINES + f)), _MM_HINT_T0);
    const float* e = xe + 16 * l;
    const float* o = xo + 16 * l;
    __m512i h0 = _mm512_load_si512(w), h3 = _mm512_load_si512(w + 96);
    if (MASK) {
      h0 = _mm512_and_si512(h0, _mm512_load_si512(l == 0 ? L.first : L.all));
      h3 = _mm512_and_si512(h3, _mm512_load_si512(l + 4 == lines ? L.last : L.all));
    }
    const __m512i h1 = _mm512_load_si512(w + 32), h2 = _mm512_load_si512(w + 64);
    s0 = _mm512_fmadd_ps(_mm512_load_ps(e), _mm512_castsi512_ps(_mm512_slli_epi32(h0, 16)), s0);
    t0 = _mm512_fmadd_ps(_mm512_load_ps(o), _mm512_castsi512_ps(_mm512_and_si512(h0, odd)), t0);
    s1 = _mm512_fmadd_ps(_mm512_load_ps(e + 16), _mm512_castsi512_ps(_mm512_slli_epi32(h1, 16)), s1);
    t1 = _mm512_fmadd_ps(_mm512_load_ps(o + 16), _mm512_castsi512_ps(_mm512_and_si512(h1, odd)), t1);
    s2 = _mm512_fmadd_ps(_mm512_load_ps(e + 32), _mm512_castsi512_ps(_mm512_slli_epi32(h2, 16)), s2);
    t2 = _mm512_fmadd_ps(_mm512_load_ps(o + 32), _mm512_castsi512_ps(_mm512_and_si512(h2, odd)), t2);
    s3 = _mm512_fmadd_ps(_mm512_load_ps(e + 48), _mm512_castsi512_ps(_mm512_slli_epi32(h3, 16)), s3);
    t3 = _mm512_fmadd_ps(_mm512_load_ps(o + 48), _mm512_castsi512_ps(_mm512_and_si512(h3, odd)), t3);
  }
  for (; l < lines; l++) {
    __m512i h = _mm512_and_si512(_mm512_load_si512(line0 + 32 * l), _mm512_load_si512(mask(l)));
    if (l == 0 && lines == 1) h = _mm512_and_si512(h, _mm512_load_si512(L.last));
    s0 = _mm512_fmadd_ps(_mm512_load_ps(xe + 16 * l), _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)), s0);
    t0 = _mm512_fmadd_ps(_mm512_load_ps(xo + 16 * l), _mm512_castsi512_ps(_mm512_and_si512(h, odd)), t0);
  }
  const __m512 s = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
  const __m512 t = _mm512_add_ps(_mm512_add_ps(t0, t1), _mm512_add_ps(t2, t3));
  return _mm512_reduce_add_ps(_mm512_add_ps(s, t));
}
#endif

// ------------------------------------------------------------------------------------------------
// The interleaved layout. The row kernel above loads two lines of x (its even and odd halves) from L1
// for every line of weights, and those loads keep it short of the streaming read. Long rows (k = 8192)
// cost it more: their x (32 KiB) outgrows L1 beside the weight stream (the 1B model's down projections).
// Reading two rows side by side to share x is two streams, which the prefetchers serve at a much lower
// rate (bench/RESULTS.md "Kernel design notes"). So a matrix may get a second copy (packBf16, made once by the native backend,
// see src/backends/native/index.ts) in blocks of PACK_ROWS rows, each block stored line-interleaved:
// line 0 (32 elements) of each of its rows, then line 1 of each, …; a block is one stream, and each
// line of x loaded serves PACK_ROWS lines of weights (16 rows measured best; 8 and 32 less). Packed only when k is a whole number of lines (k % 32 == 0).
// ------------------------------------------------------------------------------------------------
constexpr int64_t PACK_ROWS = 16;

// Element offset of line l of row r inside the packed copy of an n×k matrix (a last block may be short).
inline int64_t packedAt(int64_t n, int64_t k, int64_t r, int64_t l) {
  const int64_t b0 = r / PACK_ROWS * PACK_ROWS, rows = std::min(PACK_ROWS, n - b0);
  return b0 * k + (l * rows + (r - b0)) * 32;
}

}  // namespace

void packBf16(const uint16_t* b, uint16_t* out, int64_t n, int64_t k) {
  parallelFor(n, PACK_ROWS, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
      for (int64_t l = 0; l < k / 32; l++) std::memcpy(out + packedAt(n, k, r, l), b + r * k + 32 * l, 64);
  });
}

namespace {

#if HERD_X86
// One block of R rows (R·lines lines, front to back): out[r] = row r · x, x split into even (xe) and
// odd (xo) halves as for rowAvx512 (aligned: d = 0). Two sums per row; each step loads one line of x
// and R lines of weights, prefetching R lines PREFETCH_LINES ahead in the block's stream.
template <int R>
__attribute__((target("avx512f,avx512bw,fma"))) void blockAvx512(const float* xe, const float* xo,
                                                                  const uint16_t* blk, int64_t lines, float* out) {
  const __m512i odd = _mm512_set1_epi32((int)0xffff0000u);
  __m512 s[R], t[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; r++) s[r] = t[r] = _mm512_setzero_ps();
  for (int64_t l = 0; l < lines; l++) {
    const uint16_t* w = blk + l * R * 32;
#pragma GCC unroll 16
    for (int f = 0; f < R; f++) _mm_prefetch((const char*)(w + 32 * (PREFETCH_LINES + f)), _MM_HINT_T0);
    const __m512 e = _mm512_load_ps(xe + 16 * l), o = _mm512_load_ps(xo + 16 * l);
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
      const __m512i h = _mm512_load_si512(w + 32 * r);
      s[r] = _mm512_fmadd_ps(e, _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)), s[r]);
      t[r] = _mm512_fmadd_ps(o, _mm512_castsi512_ps(_mm512_and_si512(h, odd)), t[r]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; r++) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(s[r], t[r]));
}

// A short last block (rows < PACK_ROWS), row by row: the same sums, its lines `rows` lines apart.
__attribute__((target("avx512f,avx512bw,fma"))) void shortBlockAvx512(const float* xe, const float* xo,
                                                                       const uint16_t* blk, int64_t rows,
                                                                       int64_t lines, float* out) {
  const __m512i odd = _mm512_set1_epi32((int)0xffff0000u);
  for (int64_t r = 0; r < rows; r++) {
    __m512 s = _mm512_setzero_ps(), t = s;
    for (int64_t l = 0; l < lines; l++) {
      const __m512i h = _mm512_load_si512(blk + (l * rows + r) * 32);
      s = _mm512_fmadd_ps(_mm512_load_ps(xe + 16 * l), _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)), s);
      t = _mm512_fmadd_ps(_mm512_load_ps(xo + 16 * l), _mm512_castsi512_ps(_mm512_and_si512(h, odd)), t);
    }
    out[r] = _mm512_reduce_add_ps(_mm512_add_ps(s, t));
  }
}
#endif

// x (k values) in the line coordinates of L, split: with X[pos] = x[pos − d] (zero outside the row),
// xe = X[0::2] and xo = X[1::2] (L.lines·16 each). x's even elements land in xe when d is even, in xo
// when it is odd; a plain stride-2 loop the compiler vectorises (a position-by-position form is several
// times slower).
void splitLines(const float* x, int64_t k, const Lines& L, float* xe, float* xo) {
  std::fill(xe, xe + L.lines * 16, 0.f);
  std::fill(xo, xo + L.lines * 16, 0.f);
  const int64_t d = L.d;
  float* ev = d % 2 ? xo + (d - 1) / 2 : xe + d / 2;
  float* od = d % 2 ? xe + (d + 1) / 2 : xo + d / 2;
  for (int64_t t = 0; t < k / 2; t++) {  // (k is even: k·2 is a multiple of 64)
    ev[t] = x[2 * t];
    od[t] = x[2 * t + 1];
  }
}

// Rows of B in line coordinates when k·2 is a multiple of 64 (else the kernels read rows as they are).
bool linesOf(const uint16_t* b, int64_t k, Lines* L) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(b);
  if ((k * 2) % 64 != 0 || addr % 2 != 0) return false;
  L->d = (int64_t)(addr % 64 / 2);
  L->lines = (L->d + k + 31) / 32;
  const int64_t end = L->d + k - 32 * (L->lines - 1);  // elements of the row in its last line, 1..32
  for (int64_t e = 0; e < 32; e++) {
    L->first[e] = e >= L->d ? 0xffff : 0;
    L->last[e] = e < end ? 0xffff : 0;
    L->all[e] = 0xffff;
  }
  return true;
}

// Rows [j0, j1) of one product, for every row of A. With `split` (AVX-512, line layout), row i of A
// in line coordinates is split + i·lines·32: lines·16 even positions, then lines·16 odd ones.
void productRows(const float* a, const float* split, int64_t m, int64_t k, const Bf16Product& P, Lines L,
                 int64_t j0, int64_t j1) {
#if HERD_X86
  if (split && P.packed) {  // whole blocks of PACK_ROWS rows (the chunks are), each front to back
    for (int64_t b0 = j0; b0 < j1; b0 += PACK_ROWS) {
      const int64_t rows = std::min(PACK_ROWS, P.n - b0);
      const uint16_t* blk = P.packed + b0 * k;
      for (int64_t i = 0; i < m; i++) {
        const float* xe = split + i * L.lines * 32;
        float sums[PACK_ROWS];
        if (rows == PACK_ROWS)
          blockAvx512<PACK_ROWS>(xe, xe + L.lines * 16, blk, L.lines, sums);
        else
          shortBlockAvx512(xe, xe + L.lines * 16, blk, rows, L.lines, sums);
        for (int64_t r = 0; r < rows; r++) P.c[i * P.n + b0 + r] = sums[r];
      }
    }
    return;
  }
  if (split) {
    const auto row = L.d == 0 && L.lines * 32 == k ? rowAvx512<false> : rowAvx512<true>;
    for (int64_t j = j0; j < j1; j++) {
      const uint16_t* line0 = P.b + j * k - L.d;
      for (int64_t i = 0; i < m; i++) {
        const float* xe = split + i * L.lines * 32;
        P.c[i * P.n + j] = row(xe, xe + L.lines * 16, line0, L);
      }
    }
    return;
  }
#endif
  constexpr int G = 4;
  for (int64_t j = j0; j < j1; j += G) {
    const int rows = (int)std::min<int64_t>(G, j1 - j);
#if HERD_X86
    if (isa == Isa::Avx2 || isa == Isa::Avx512) {
      rowsAvx2(a, m, P.b + j * k, rows, k, P.c + j, P.n);
      continue;
    }
#endif
    rowsGeneric(a, m, P.b + j * k, rows, k, P.c + j, P.n);
  }
}

// Several products x·Bᵀ sharing A (m ≤ SMALL_M rows), in one parallel pass over all their rows.
constexpr int64_t SMALL_M = 4;

}  // namespace

void gemvBf16(const float* a, int64_t m, int64_t k, const Bf16Product* ps, int count) {
  thread_local std::vector<float> splitBuf;
  Lines layouts[16];
  int64_t at[17];  // product q's split x: splits + at[q] (null: that product reads rows as they are)
  bool lined[16];
  at[0] = 0;
  for (int q = 0; q < count; q++) {
    lined[q] = isa == Isa::Avx512 && linesOf(ps[q].packed ? ps[q].packed : ps[q].b, k, &layouts[q]);
    at[q + 1] = at[q] + (lined[q] ? m * layouts[q].lines * 32 : 0);
  }
  float* splits = scratch(splitBuf, (size_t)at[count]);
  for (int q = 0; q < count; q++) {
    if (!lined[q]) continue;
    const Lines L = layouts[q];
    for (int64_t i = 0; i < m; i++) {
      float* xe = splits + at[q] + i * L.lines * 32;
      splitLines(a + i * k, k, L, xe, xe + L.lines * 16);
    }
  }
  // Chunks of up to 2 MiB of weights (one hugepage; fewer when the call is small, so that every thread
  // gets about two), numbered across the products: each switch to a new chunk restarts a stream, so
  // larger chunks read closer to the probe's rate (bench/RESULTS.md "Kernel design notes").
  int64_t total = 0;
  for (int q = 0; q < count; q++) total += ps[q].n * k * 2;
  const int64_t chunkBytes = std::clamp<int64_t>(total / (2 * pool.threads()), 256 << 10, 2 << 20);
  int64_t rowsPerChunk = std::max<int64_t>(4, (chunkBytes / 2 / std::max<int64_t>(1, k) + 3) & ~int64_t(3));
  for (int q = 0; q < count; q++)  // a packed product's chunks are whole blocks
    if (ps[q].packed && lined[q]) rowsPerChunk = (rowsPerChunk + PACK_ROWS - 1) / PACK_ROWS * PACK_ROWS;
  int64_t first[17];
  first[0] = 0;
  for (int q = 0; q < count; q++) first[q + 1] = first[q] + (ps[q].n + rowsPerChunk - 1) / rowsPerChunk;
  parallelFor(first[count], 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ch++) {
      int q = 0;
      while (ch >= first[q + 1]) q++;
      const int64_t j0 = (ch - first[q]) * rowsPerChunk, j1 = std::min(ps[q].n, j0 + rowsPerChunk);
      productRows(a, lined[q] ? splits + at[q] : nullptr, m, k, ps[q], layouts[q], j0, j1);
    }
  });
}

void linearBf16(const float* a, int64_t m, int64_t k, const Bf16Product* ps, int count) {
  if (m == 0) return;
  if (m > SMALL_M) {
    for (int q = 0; q < count; q++)
      if (ps[q].n > 0) gemmBf16(a, ps[q].b, ps[q].c, m, ps[q].n, k);
  } else {
    gemvBf16(a, m, k, ps, count);
  }
}

namespace {

// ------------------------------------------------------------------------------------------------
// Memory bandwidth probe: best-of-`reps` times of every pool thread streaming through its own slice of
// a buffer, reading only (what a decode step does to its weights) and copying (read + write). With
// `huge` the buffers are hugepage-backed (allocLarge), as the native backend's weights are: hugepages
// change the probe little but the GEMV a lot, and the probe swings with the host's load (bench/RESULTS.md "Kernel design notes").
// ------------------------------------------------------------------------------------------------

#if HERD_X86
__attribute__((target("avx512f"))) float readSliceAvx512(const float* p, int64_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t i = 0; i + 64 <= n; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_load_ps(p + i));
    s1 = _mm512_add_ps(s1, _mm512_load_ps(p + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_load_ps(p + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_load_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}
#endif

// Sum of p[0, n) (n a multiple of 64), read with the widest loads the ISA has.
float readSlice(const float* p, int64_t n) {
#if HERD_X86
  if (isa == Isa::Avx512) return readSliceAvx512(p, n);
#endif
  float s[16] = {};
  for (int64_t i = 0; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; l++) s[l] += p[i + l];
  float t = 0;
  for (float v : s) t += v;
  return t;
}

}  // namespace

Bandwidth memoryBandwidth(int64_t bytes, int reps, bool huge) {
  const int64_t n = std::max<int64_t>(1024, bytes / 4 / 1024 * 1024);
  bool advised;  // (whether MADV_HUGEPAGE took; either way the probe reads what alloc would hand out)
  auto get = [&] { return static_cast<float*>(huge ? allocLarge(n * 4, &advised) : std::aligned_alloc(64, n * 4)); };
  float* src = get();
  float* dst = get();
  auto release = [&] {
    if (huge) {
      freeLarge(src, n * 4);
      freeLarge(dst, n * 4);
    } else {
      std::free(src);
      std::free(dst);
    }
  };
  if (!src || !dst) {
    release();
    return {0, 0};
  }
  const int T = pool.threads();
  std::atomic<float> sink{0};
  auto slices = [&](auto&& body) {  // one contiguous slice (a multiple of 64 floats) per thread
    parallelFor(T, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; t++) {
        const int64_t a = n * t / T & ~int64_t(63), b = t == T - 1 ? n : n * (t + 1) / T & ~int64_t(63);
        body(a, b);
      }
    });
  };
  slices([&](int64_t a, int64_t b) {  // first touch by the thread that reads it
    std::memset(src + a, 0, (b - a) * 4);
    std::memset(dst + a, 0, (b - a) * 4);
  });
  auto best = [&](auto&& body) {
    double t = 1e30;
    for (int r = 0; r < reps; r++) {
      const auto t0 = std::chrono::steady_clock::now();
      slices(body);
      t = std::min(t, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return t;
  };
  const double tr = best([&](int64_t a, int64_t b) { sink.store(sink.load() + readSlice(src + a, b - a)); });
  const double tc = best([&](int64_t a, int64_t b) { std::memcpy(dst + a, src + a, (b - a) * 4); });
  release();
  return {n * 4.0 / tr, 2 * n * 4.0 / tc};
}

}  // namespace herd
