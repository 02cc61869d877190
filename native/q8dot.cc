// Q8_0 / Q4_0 inference with 8-bit activations: C (m×n) = Q8_0(A) · Wᵀ, W in GGUF Q8_0 or Q4_0 blocks,
// as ggml's ggml_vec_dot_q8_0_q8_0 / _q4_0_q8_0 compute it (the reference: matmulQuantQ8 in
// src/backends/js/quant.ts, which test/tensor/quant.test.ts checks these kernels against). quant.cc's
// matmulQuant hands Q8_0/Q4_0 here on a CPU with AVX2 unless HERD_NATIVE_INT8_DOT=0 (int8Dot, herd.h);
// otherwise it dequantises the weights to f32 as before.
//
// Activations: each row of A is quantised once per call, per 32 values (zero-padded to whole blocks), as
// ggml's quantize_row_q8_0_ref: d = amax/127, q = roundf(x·(1/d)) (halves away from zero), so the int8
// values are ggml's byte for byte; the scale d stays f32 (ggml rounds it to f16, which only adds error).
// A block holding a NaN or ±Inf gets d = NaN, so the non-finite value reaches the output as NaN.
//
// Dot: per block the exact integer sum Σ q_w·q_x, times the f32 product d_w·d_x, added into f32 lanes.
// Q8_0: vpmaddubsw(|w|, sign(x, w)) (u8·s8 pairs → i16, at most 2·128·127: no saturation, right for
// w = −128 too), vpmaddwd by ones (→ i32). Q4_0: the same of (nibbles, x) minus that of (8, x), the −8
// offset computed once per block of A. Four rows of W share every load of A, and their i32 sums are
// gathered into one vector (vphaddd) for a single convert and FMA per block; up to four rows of A share
// every unpacked block of W; rows go to the pool in groups of four, chunked and prefetched as quant.cc's.
// AVX-512 with VNNI (herd::isa avx512 and CPUID avx512vnni): the same kernel with vpdpbusd on 256-bit
// vectors (u8·s8 quads → i32 in one instruction; q8dot_impl.h holds the kernel, compiled once per
// target); an AVX-512 CPU without VNNI runs the AVX2 one.
//
// Plain C++ (declared in herd.h), no N-API: the binding is in napi.cc.
#include <cstring>

#include "herd.h"

namespace herd {

namespace {

// One block of 32 values (len of them real, the rest zero): ggml's quantize_row_q8_0_ref.
void quantizeBlockScalar(const float* x, int len, int8_t* q, float* d) {
  float amax = 0;
  bool finite = true;
  for (int j = 0; j < len; j++) {
    const float ax = std::fabs(x[j]);
    finite = finite && ax <= 3.4028235e38f;  // false for NaN and ±Inf
    amax = std::max(amax, ax);
  }
  std::memset(q, 0, QK);
  if (!finite) {
    *d = NAN;
    return;
  }
  *d = amax / 127.f;
  const float id = *d != 0 ? 1.f / *d : 0.f;
  for (int j = 0; j < len; j++) q[j] = (int8_t)std::round(x[j] * id);
}

#if HERD_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))

// The same for a whole block, bit for bit: roundf as trunc(v) ± 1 where |v − trunc(v)| ≥ ½ (exact for
// |v| ≤ 127.5).
AVX2 void quantizeBlockAvx2(const float* x, int8_t* q, float* d) {
  const __m256 sign = _mm256_set1_ps(-0.f), big = _mm256_set1_ps(3.4028235e38f);
  __m256 v[4], mx = _mm256_setzero_ps(), ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  for (int t = 0; t < 4; t++) {
    v[t] = _mm256_loadu_ps(x + 8 * t);
    const __m256 a = _mm256_andnot_ps(sign, v[t]);
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(a, big, _CMP_LE_OQ));
    mx = _mm256_max_ps(mx, a);
  }
  if (_mm256_movemask_ps(ok) != 0xff) return quantizeBlockScalar(x, QK, q, d);
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
  *d = amax / 127.f;
  const __m256 id = _mm256_set1_ps(*d != 0 ? 1.f / *d : 0.f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.f);
  __m256i i[4];
  for (int t = 0; t < 4; t++) {
    const __m256 p = _mm256_mul_ps(v[t], id);
    const __m256 tr = _mm256_round_ps(p, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 up = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(p, tr)), half, _CMP_GE_OQ);
    const __m256 step = _mm256_and_ps(up, _mm256_or_ps(one, _mm256_and_ps(p, sign)));  // ±1 where rounding away
    i[t] = _mm256_cvttps_epi32(_mm256_add_ps(tr, step));
  }
  const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
  _mm256_storeu_si256((__m256i*)q, _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

#undef AVX2

// The activations of up to four rows of A, as quantizeQ8_0 lays them out (row i: qs + i·kp, d + i·nb).
struct XQ {
  const int8_t* qs;
  const float* d;
  int64_t kp, nb;
};

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace avx2 {
#define Q8DOT_VNNI 0
#include "q8dot_impl.h"
#undef Q8DOT_VNNI
}  // namespace avx2
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
namespace vnni {
#define Q8DOT_VNNI 1
#include "q8dot_impl.h"
#undef Q8DOT_VNNI
}  // namespace vnni
#pragma GCC pop_options

// The VNNI kernels where the CPU has them and herd::isa is AVX-512 (HERD_NATIVE_ISA=avx2 tests the others).
inline bool useVnni() {
  static const bool has = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
  return isa == Isa::Avx512 && has;
}
#endif


}  // namespace

void quantizeQ8_0(const float* x, int64_t rows, int64_t k, int8_t* qs, float* d) {
  const int64_t nb = (k + QK - 1) / QK;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t b = 0; b < nb; b++) {
      const float* xb = x + i * k + b * QK;
      int8_t* q = qs + (i * nb + b) * QK;
      float* db = d + i * nb + b;
      const int len = (int)std::min<int64_t>(QK, k - b * QK);
#if HERD_X86
      if (isa != Isa::Generic) {
        alignas(32) float pad[QK] = {0};
        if (len < QK) std::memcpy(pad, xb, len * sizeof(float));
        quantizeBlockAvx2(len < QK ? pad : xb, q, db);
        continue;
      }
#endif
      quantizeBlockScalar(xb, len, q, db);
    }
}

void matmulQuantQ8(const float* a, const uint8_t* w, float* c, int64_t m, int64_t n, int64_t k, int f) {
#if HERD_X86
  if (m == 0 || n == 0) return;
  const int64_t nb = (k + QK - 1) / QK, kp = nb * QK, rowBytes = nb * blockBytes(f);
  std::vector<int8_t> qs(m * kp);
  std::vector<float> d(m * nb);
  parallelFor(m, std::max<int64_t>(1, 16384 / kp), [&](int64_t i0, int64_t i1) {
    quantizeQ8_0(a + i0 * k, i1 - i0, k, qs.data() + i0 * kp, d.data() + i0 * nb);
  });
  const bool v = useVnni();
  using Dot = void (*)(const XQ&, int, const uint8_t* const*, float*, int64_t);
  const Dot dot = v ? (f == Q8_0 ? vnni::dotQ8Rows<Q8_0> : vnni::dotQ8Rows<Q4_0>)
                    : (f == Q8_0 ? avx2::dotQ8Rows<Q8_0> : avx2::dotQ8Rows<Q4_0>);
  quantRowGroups(w, rowBytes, c, m, n, [&](int64_t i0, int mx, const uint8_t* const* rows, float* out, int64_t pf) {
    dot(XQ{qs.data() + i0 * kp, d.data() + i0 * nb, kp, nb}, mx, rows, out, pf);
  });
#else
  (void)a, (void)w, (void)c, (void)m, (void)n, (void)k, (void)f;  // never called: int8Dot needs AVX2
#endif
}

}  // namespace herd
