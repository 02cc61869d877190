// Decode with bf16 weights: C (m×n) = A (m×k) · Bᵀ where B (n×k) is held as bf16 bit patterns (the
// x·Wᵀ of a linear layer whose weight stays in bf16), plus the memory-bandwidth probe the model
// benchmark's roofline divides by. Reference: matmulBf16 in src/backends/js/bf16.ts (widen each weight to
// f32, exact, then multiply-add in f32); test/backends/conformance.test.ts checks this against it.
//
// A decode step (m = 1) reads every weight once: it is a pure streaming read, so the kernel's only job is
// to keep the memory system busy. Per thread, row chunks of ~128 KB of weights handed out by the pool's
// atomic counter; in a chunk, 4 rows in flight at a time (8 independent FMA chains), each read with
// 64-byte loads and prefetched 2 KB ahead. A 64-byte load holds 32 bf16 values: shifting each 32-bit lane
// left by 16 gives the even-indexed ones as f32, masking off the low half gives the odd ones, so x is
// split once per call into its even and odd elements and every load feeds two FMAs with two ALU ops.
// Few rows of A (m ≤ 4) reuse each weight block from L1; more rows (prefill) go to the tiled SGEMM,
// which widens bf16 while packing B (gemmBf16 in herd.cc).
//
// matmulBf16Many does several products with the same A in one pool round trip (a layer's Q, K, V or its
// gate and up projections), so the threads never wait at a barrier between them.
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

// One product of the batch: C = A·Bᵀ with B n×k bf16.
struct Product {
  const uint16_t* b;
  float* c;
  int64_t n;
};

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

#if HERD_X86
__attribute__((target("avx2,fma"))) float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

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

constexpr int64_t PREFETCH = 1024;  // elements ahead (2 KB) on each row

// AVX-512, R rows: xe/xo hold x's even/odd elements of [0, k32) (k32 = k rounded down to 32), x the
// row itself (for the masked tail).
template <int R>
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void rowsAvx512(const float* xe, const float* xo,
                                                                 const float* x, const uint16_t* w,
                                                                 int64_t k, int64_t k32, float* out,
                                                                 bool prefetch) {
  __m512 s[R], t[R];
  for (int r = 0; r < R; r++) s[r] = t[r] = _mm512_setzero_ps();
  const __m512i odd = _mm512_set1_epi32((int)0xffff0000u);
  for (int64_t p = 0; p < k32; p += 32) {
    const __m512 e = _mm512_loadu_ps(xe + p / 2), o = _mm512_loadu_ps(xo + p / 2);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const uint16_t* row = w + r * k + p;
      if (prefetch) _mm_prefetch((const char*)(row + PREFETCH), _MM_HINT_T0);
      const __m512i h = _mm512_loadu_si512(row);
      s[r] = _mm512_fmadd_ps(e, _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)), s[r]);
      t[r] = _mm512_fmadd_ps(o, _mm512_castsi512_ps(_mm512_and_si512(h, odd)), t[r]);
    }
  }
  for (int64_t p = k32; p < k; p += 16) {  // tail: 16 at a time, widened by zero-extension
    const __mmask16 mk = (__mmask16)(k - p >= 16 ? 0xffff : (1u << (k - p)) - 1);
    const __m512 xv = _mm512_maskz_loadu_ps(mk, x + p);
    for (int r = 0; r < R; r++) {
      const __m256i h = _mm256_maskz_loadu_epi16(mk, w + r * k + p);
      const __m512 wv = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
      s[r] = _mm512_fmadd_ps(xv, wv, s[r]);
    }
  }
  for (int r = 0; r < R; r++) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(s[r], t[r]));
}
#endif

// Rows [j0, j1) of one product, for every row of A. `split` is A's even/odd elements (AVX-512 only):
// for row i, split + i·k holds k32/2 even then k32/2 odd elements.
void productRows(const float* a, const float* split, int64_t m, int64_t k, const Product& P, int64_t j0,
                 int64_t j1) {
  constexpr int G = 4;
#if HERD_X86
  if (isa == Isa::Avx512) {
    const int64_t k32 = k & ~int64_t(31);
    float out[G];
    for (int64_t j = j0; j < j1; j += G) {
      const int rows = (int)std::min<int64_t>(G, j1 - j);
      for (int64_t i = 0; i < m; i++) {
        const float* xe = split + i * k;
        const float* xo = xe + k32 / 2;
        const uint16_t* w = P.b + j * k;
        if (rows == G)
          rowsAvx512<G>(xe, xo, a + i * k, w, k, k32, out, i == 0);
        else
          for (int r = 0; r < rows; r++) rowsAvx512<1>(xe, xo, a + i * k, w + r * k, k, k32, out + r, i == 0);
        for (int r = 0; r < rows; r++) P.c[i * P.n + j + r] = out[r];
      }
    }
    return;
  }
#endif
  for (int64_t j = j0; j < j1; j += G) {
    const int rows = (int)std::min<int64_t>(G, j1 - j);
#if HERD_X86
    if (isa == Isa::Avx2) {
      rowsAvx2(a, m, P.b + j * k, rows, k, P.c + j, P.n);
      continue;
    }
#endif
    rowsGeneric(a, m, P.b + j * k, rows, k, P.c + j, P.n);
  }
}

// Several products x·Bᵀ sharing A (m ≤ SMALL_M rows), in one parallel pass over all their rows.
constexpr int64_t SMALL_M = 4;

void gemvBf16(const float* a, int64_t m, int64_t k, const Product* ps, int count) {
  thread_local std::vector<float> splitBuf;
  float* split = nullptr;
#if HERD_X86
  if (isa == Isa::Avx512) {
    const int64_t k32 = k & ~int64_t(31);
    split = scratch(splitBuf, (size_t)(m * k));
    for (int64_t i = 0; i < m; i++)
      for (int64_t q = 0; q < k32 / 2; q++) {
        split[i * k + q] = a[i * k + 2 * q];
        split[i * k + k32 / 2 + q] = a[i * k + 2 * q + 1];
      }
  }
#endif
  // Chunks of ~128 KB of weights (a multiple of 4 rows), numbered across the products.
  const int64_t rowsPerChunk = std::max<int64_t>(4, (65536 / std::max<int64_t>(1, k) + 3) & ~int64_t(3));
  int64_t first[17];
  first[0] = 0;
  for (int q = 0; q < count; q++) first[q + 1] = first[q] + (ps[q].n + rowsPerChunk - 1) / rowsPerChunk;
  parallelFor(first[count], 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ch++) {
      int q = 0;
      while (ch >= first[q + 1]) q++;
      const int64_t j0 = (ch - first[q]) * rowsPerChunk, j1 = std::min(ps[q].n, j0 + rowsPerChunk);
      productRows(a, split, m, k, ps[q], j0, j1);
    }
  });
}

// ------------------------------------------------------------------------------------------------
// Memory bandwidth probe: best-of-`reps` times of every pool thread streaming through its own slice of
// a buffer, reading only (what a decode step does to its weights) and copying (read + write).
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

struct Bandwidth {
  double read, copy;  // bytes per second (copy: bytes read + bytes written)
};

Bandwidth memoryBandwidth(int64_t bytes, int reps) {
  const int64_t n = std::max<int64_t>(1024, bytes / 4 / 1024 * 1024);
  float* src = static_cast<float*>(std::aligned_alloc(64, n * 4));
  float* dst = static_cast<float*>(std::aligned_alloc(64, n * 4));
  if (!src || !dst) {
    std::free(src);
    std::free(dst);
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
  std::free(src);
  std::free(dst);
  return {n * 4.0 / tr, 2 * n * 4.0 / tc};
}

// ------------------------------------------------------------------------------------------------
// N-API glue
// ------------------------------------------------------------------------------------------------

// matmulBf16(a, bBits, c, m, n, k)
napi_value MatmulBf16(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t m = A.i64(3), n = A.i64(4), k = A.i64(5);
  const float* a = A.f32(0, m * k);
  const uint16_t* b = static_cast<const uint16_t*>(A.arr(1, napi_uint16_array, n * k));
  float* c = A.f32(2, m * n);
  if (A.failed || m == 0 || n == 0) return undef(env);
  if (m > SMALL_M) {
    gemmBf16(a, b, c, m, n, k);
  } else {
    const Product p{b, c, n};
    gemvBf16(a, m, k, &p, 1);
  }
  return undef(env);
}

// matmulBf16Many(a, [bBits...], [c...], m, [n...], k): c_q = a·b_qᵀ for each q (at most 16).
napi_value MatmulBf16Many(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t m = A.i64(3), k = A.i64(5);
  uint32_t count = 0, nc = 0, nn = 0;
  if (!A.failed && (napi_get_array_length(env, A.v[1], &count) != napi_ok ||
                    napi_get_array_length(env, A.v[2], &nc) != napi_ok ||
                    napi_get_array_length(env, A.v[4], &nn) != napi_ok || nc != count || nn != count ||
                    count > 16))
    A.fail("herd native: matmulBf16Many takes equal arrays (at most 16) of weights, outputs and sizes");
  const float* a = A.f32(0, m * k);
  Product ps[16];
  for (uint32_t q = 0; q < count && !A.failed; q++) {
    napi_value bq, cq, nq;
    napi_get_element(env, A.v[1], q, &bq);
    napi_get_element(env, A.v[2], q, &cq);
    napi_get_element(env, A.v[4], q, &nq);
    double nd = -1;
    napi_get_value_double(env, nq, &nd);
    if (!(nd >= 0)) {
      A.fail("herd native: expected a non-negative size");
      break;
    }
    const int64_t n = (int64_t)nd;
    Args one = A;  // check each element with the same helpers
    one.v[0] = bq;
    one.v[1] = cq;
    ps[q].b = static_cast<const uint16_t*>(one.arr(0, napi_uint16_array, n * k));
    ps[q].c = one.f32(1, m * n);
    ps[q].n = n;
    A.failed = one.failed;
  }
  if (A.failed || m == 0 || count == 0) return undef(env);
  if (m > SMALL_M) {
    for (uint32_t q = 0; q < count; q++)
      if (ps[q].n > 0) gemmBf16(a, ps[q].b, ps[q].c, m, ps[q].n, k);
  } else {
    gemvBf16(a, m, k, ps, (int)count);
  }
  return undef(env);
}

// memoryBandwidth(bytes, reps) → { read, copy } in bytes/s on the pool's threads.
napi_value MemoryBandwidth(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t bytes = A.i64(0), reps = A.i64(1);
  if (A.failed) return undef(env);
  const Bandwidth bw = memoryBandwidth(bytes, (int)std::max<int64_t>(1, reps));
  napi_value out, r, c;
  napi_create_object(env, &out);
  napi_create_double(env, bw.read, &r);
  napi_create_double(env, bw.copy, &c);
  napi_set_named_property(env, out, "read", r);
  napi_set_named_property(env, out, "copy", c);
  return out;
}

}  // namespace

void registerGemv(napi_env env, napi_value exports) {
  static const NamedFn fns[] = {
      {"matmulBf16", MatmulBf16}, {"matmulBf16Many", MatmulBf16Many}, {"memoryBandwidth", MemoryBandwidth}};
  registerFns(env, exports, fns, sizeof(fns) / sizeof(fns[0]));
}

}  // namespace herd
