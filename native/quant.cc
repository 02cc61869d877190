// Weight-only quantised inference: C (m×n) = A (m×k) · Wᵀ with W in GGUF Q8_0 or Q4_0 blocks (the
// K-quants: kquant.cc; on an AVX2 CPU, unless HERD_NATIVE_INT8_DOT=0, q8dot.cc's 8-bit activations and
// integer dot products: this file's f32 kernels are then the fallback; layout and
// semantics: src/backends/js/quant.ts, the reference these kernels are tested against in
// test/tensor/quant.test.ts).
//
// Scheme: dequantise-and-FMA. Weights are dequantised exactly in registers (int8 or nibble → f32, times
// the block's f16 scale) and multiplied into f32 accumulators; activations stay f32, so the result
// differs from the reference only by summation order. Four rows of W share every load of x (decode is a
// GEMV: the weights stream from memory once and x stays in L1); rows go to the pool in groups of four.
// Prefill (m > 1) runs each group of four rows against every row of A while those rows sit in L1; the
// AVX-512 kernel takes four rows of A at a time, so each block is dequantised once per four rows.
// A k that is not a multiple of 32 (the last block zero-padded in the file) gets a zero-padded copy of A,
// so every kernel works on whole blocks.
//
// Plain C++ (declared in herd.h), no N-API: the binding that checks the JS arguments and calls these
// kernels is in napi.cc.
#include <cstring>

#include "herd.h"

namespace herd {
namespace {


// Software prefetch: while a group of four rows is dotted, the SIMD kernels prefetch the same position in
// the rows quantPrefetchGroups (herd.h) groups further on (pf bytes ahead). They spend many instructions per byte (a
// Q4_0 block is 18 bytes), so the out-of-order window alone keeps too few cache misses in flight to stream
// from memory; a distance of whole row groups streams much faster than a fixed byte distance
// (bench/RESULTS.md "Kernel design notes"). Past the end of W it is harmless.

inline uint16_t loadScale(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }

// out[r] = Σ_p x[p]·w_r[p] over nb whole blocks, for the 4 rows w[0..3] (each nb blocks of `F`).
template <int F>
void dotQx4Generic(const float* x, const uint8_t* const* w, int64_t nb, float* out, int64_t pf) {
  for (int r = 0; r < 4; r++) {
    float acc = 0;
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* p = w[r] + b * blockBytes(F);
      const float* xb = x + b * QK;
      float s = 0;
      if (F == Q8_0)
        for (int t = 0; t < QK; t++) s += xb[t] * (float)(int8_t)p[2 + t];
      else
        for (int t = 0; t < 16; t++)
          s += xb[t] * (float)((p[2 + t] & 15) - 8) + xb[t + 16] * (float)((p[2 + t] >> 4) - 8);
      acc += halfToFloat(loadScale(p)) * s;
    }
    out[r] = acc;
  }
}

#if HERD_X86
// out[i·4 + r] = x_i · w_r for MX rows x_i of A (leading dimension ldx) and the 4 rows w_r: each block of
// the 4 rows is dequantised once into registers (d·q, exact) and used for all MX rows of A, so prefill
// (m > 1) runs MX = 4 and pays the dequantisation once per 4 rows of A; decode is MX = 1. Q4_0: the
// 16 bytes widen to 16 dwords once; value j is the low nibble of dword j, value j+16 the high one, and
// d·(q − 8) is looked up in a 16-entry table scaled by the block's d (one permute per 16 weights).
template <int F, int MX>
__attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c"))) void dotQAvx512(const float* x, int64_t ldx,
                                                                                const uint8_t* const* w,
                                                                                int64_t nb, float* out,
                                                                                int64_t pf) {
  const __m512 table = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
  const __m512i low = _mm512_set1_epi32(15);
  __m512 acc[MX][4];
  for (int i = 0; i < MX; i++)
    for (int r = 0; r < 4; r++) acc[i][r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    __m512 w0[4], w1[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      const uint8_t* p = w[r] + b * blockBytes(F);
      const __m512 d = _mm512_set1_ps(_cvtsh_ss(loadScale(p)));
      if (F == Q8_0) {
        _mm_prefetch((const char*)(p + pf), _MM_HINT_T0);
        w0[r] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(p + 2)))));
        w1[r] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(p + 18)))));
      } else {
        if (!(b & 1)) _mm_prefetch((const char*)(p + pf), _MM_HINT_T0);
        const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + 2)));
        const __m512 td = _mm512_mul_ps(table, d);
        w0[r] = _mm512_permutexvar_ps(_mm512_and_si512(v, low), td);
        w1[r] = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), td);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MX; i++) {
      const __m512 x0 = _mm512_loadu_ps(x + i * ldx + b * QK), x1 = _mm512_loadu_ps(x + i * ldx + b * QK + 16);
#pragma GCC unroll 4
      for (int r = 0; r < 4; r++) acc[i][r] = _mm512_fmadd_ps(x1, w1[r], _mm512_fmadd_ps(x0, w0[r], acc[i][r]));
    }
  }
  for (int i = 0; i < MX; i++)
    for (int r = 0; r < 4; r++) out[i * 4 + r] = _mm512_reduce_add_ps(acc[i][r]);
}

template <int F>
void dotQAvx512Rows(const float* x, int64_t ldx, int mx, const uint8_t* const* w, int64_t nb, float* out,
                    int64_t pf) {
  switch (mx) {
    case 1: return dotQAvx512<F, 1>(x, ldx, w, nb, out, pf);
    case 2: return dotQAvx512<F, 2>(x, ldx, w, nb, out, pf);
    case 3: return dotQAvx512<F, 3>(x, ldx, w, nb, out, pf);
    default: return dotQAvx512<F, 4>(x, ldx, w, nb, out, pf);
  }
}

__attribute__((target("avx2,fma,f16c"))) inline __m256 i8to8f(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)));
}

__attribute__((target("avx2,fma,f16c"))) void dotQ8x4Avx2(const float* x, const uint8_t* const* w, int64_t nb,
                                                          float* out, int64_t pf) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t b = 0; b < nb; b++) {
    const float* xb = x + b * QK;
    const __m256 x0 = _mm256_loadu_ps(xb), x1 = _mm256_loadu_ps(xb + 8), x2 = _mm256_loadu_ps(xb + 16),
                 x3 = _mm256_loadu_ps(xb + 24);
    for (int r = 0; r < 4; r++) {
      const uint8_t* p = w[r] + b * 34 + 2;
      _mm_prefetch((const char*)(p + pf), _MM_HINT_T0);
      __m256 t = _mm256_mul_ps(x0, i8to8f(p));
      t = _mm256_fmadd_ps(x1, i8to8f(p + 8), t);
      t = _mm256_fmadd_ps(x2, i8to8f(p + 16), t);
      t = _mm256_fmadd_ps(x3, i8to8f(p + 24), t);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(loadScale(p - 2))), t, acc[r]);
    }
  }
  for (int r = 0; r < 4; r++) out[r] = hsum256(acc[r]);
}

__attribute__((target("avx2,fma,f16c"))) void dotQ4x4Avx2(const float* x, const uint8_t* const* w, int64_t nb,
                                                          float* out, int64_t pf) {
  const __m128i low = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t b = 0; b < nb; b++) {
    const float* xb = x + b * QK;
    const __m256 x0 = _mm256_loadu_ps(xb), x1 = _mm256_loadu_ps(xb + 8), x2 = _mm256_loadu_ps(xb + 16),
                 x3 = _mm256_loadu_ps(xb + 24);
    for (int r = 0; r < 4; r++) {
      const uint8_t* p = w[r] + b * 18;
      if (!(b & 1)) _mm_prefetch((const char*)(p + pf), _MM_HINT_T0);
      const __m128i bytes = _mm_loadu_si128((const __m128i*)(p + 2));
      const __m128i lo = _mm_sub_epi8(_mm_and_si128(bytes, low), eight);  // q − 8 as int8, values 0..15
      const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), low), eight);  // values 16..31
      __m256 t = _mm256_mul_ps(x0, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)));
      t = _mm256_fmadd_ps(x1, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), t);
      t = _mm256_fmadd_ps(x2, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), t);
      t = _mm256_fmadd_ps(x3, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), t);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(loadScale(p))), t, acc[r]);
    }
  }
  for (int r = 0; r < 4; r++) out[r] = hsum256(acc[r]);
}
#endif

using DotQx4 = void (*)(const float*, const uint8_t* const*, int64_t, float*, int64_t);

// mx (1..4) rows of A against the 4 rows of W: out[i·4 + r].
using DotQRows = void (*)(const float*, int64_t, int, const uint8_t* const*, int64_t, float*, int64_t);

template <DotQx4 dot>
void rowByRow(const float* x, int64_t ldx, int mx, const uint8_t* const* w, int64_t nb, float* out, int64_t pf) {
  for (int i = 0; i < mx; i++) dot(x + i * ldx, w, nb, out + i * 4, pf);
}

DotQRows pickDot(int f) {
#if HERD_X86
  if (isa == Isa::Avx512) return f == Q8_0 ? dotQAvx512Rows<Q8_0> : dotQAvx512Rows<Q4_0>;
  if (isa == Isa::Avx2) return f == Q8_0 ? rowByRow<dotQ8x4Avx2> : rowByRow<dotQ4x4Avx2>;
#endif
  return f == Q8_0 ? rowByRow<dotQx4Generic<Q8_0>> : rowByRow<dotQx4Generic<Q4_0>>;
}

}  // namespace

void matmulQuant(const float* a, const uint8_t* w, float* c, int64_t m, int64_t n, int64_t k, int f, bool exact) {
  if (isKQuant(f)) return matmulKQuant(a, w, c, m, n, k, f);
  if (!exact && int8Dot && isa != Isa::Generic) return matmulQuantQ8(a, w, c, m, n, k, f);
  if (m == 0 || n == 0) return;
  const int64_t nb = (k + QK - 1) / QK, kp = nb * QK, rowBytes = nb * blockBytes(f);
  std::vector<float> padded;
  if (kp != k) {  // zero-pad each row of A to whole blocks
    padded.assign(m * kp, 0.f);
    for (int64_t i = 0; i < m; i++) std::memcpy(padded.data() + i * kp, a + i * k, k * sizeof(float));
    a = padded.data();
  }
  const DotQRows dot = pickDot(f);
  quantRowGroups(w, rowBytes, c, m, n, [&](int64_t i0, int mx, const uint8_t* const* rows, float* out, int64_t pf) {
    dot(a + i0 * kp, kp, mx, rows, nb, out, pf);
  });
}

}  // namespace herd
