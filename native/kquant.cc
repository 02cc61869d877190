// K-quant inference: C (m×n) = A (m×k) · Wᵀ with W in ggml's Q4_K, Q5_K or Q6_K super-blocks of 256
// weights exactly as a GGUF file stores them (layouts and the reference: src/backends/js/kquant.ts,
// matmulKQ8, which test/tensor/kquant.test.ts checks these kernels against).
//
// Scheme, as ggml's ggml_vec_dot_q*_K_q8_K: each row of A is first quantised to 8 bits per value
// with one f32 scale per 256 (Q8_K: quantizeQ8K, ggml's quantize_row_q8_K_ref), then each super-block's
// product is an exact integer sum, Σ_g s_g·Σ_l q·q8 (s_g the 16-value group's integer scale, q the
// unsigned 4-, 5- or 6-bit level), with one float scale per block: d·d8·isum − dmin·d8·msum, where
// msum = Σ_g min_g·bsum_g comes from the Q8_K block's sums of 16 (Q6_K's −32 offset: dmin = d,
// min_g = 32·s_g). Only the float combination of block results is rounded, in another order than the
// reference's, so the kernels equal it to f32 summation error.
//
// AVX2: a super-block unpacks to eight vectors of 32 unsigned levels (nibble masks and shifts, the high
// bits OR-ed in), each multiplied into the int8 activations with vpmaddubsw (u8·s8 pairs → i16: at most
// 2·63·127, no saturation) and vpmaddwd by the 16-bit group scales (→ i32), summed in i32 lanes; block
// results accumulate in f32 lanes and are added across lanes once per output. One unpack serves up to
// four rows of A (prefill), so rows of W go to the pool in tiles that stay in L2 while every group of
// four rows of A passes over them. A CPU with AVX-512 runs the AVX2 kernel (no AVX-512/VNNI variant yet:
// nothing to test one on). Generic: the same integers in plain C++.
//
// Plain C++ (declared in herd.h), no N-API: the binding is in napi.cc.
#include <cstring>

#include "herd.h"

namespace herd {

// ggml's nearest_int: round to nearest, halves to even (|v| < 2^22), by the float's mantissa bits.
static inline int nearestInt(float v) {
  float t = v + 12582912.f;
  int32_t i;
  std::memcpy(&i, &t, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// Baseline ISA on purpose (no FMA contraction of iscale·x + 12582912): the bytes must be ggml's.
void quantizeQ8K(const float* x, int64_t rows, int64_t k, int8_t* qs, float* d, int16_t* bsums) {
  const int64_t nb = rows * (k / QK_K);
  for (int64_t b = 0; b < nb; b++) {
    const float* xb = x + b * QK_K;
    int8_t* q = qs + b * QK_K;
    float amax = 0, max = 0;
    for (int j = 0; j < QK_K; j++) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) amax = ax, max = xb[j];
    }
    if (amax == 0) {
      d[b] = 0;
      std::memset(q, 0, QK_K);
      std::memset(bsums + b * 16, 0, 16 * sizeof(int16_t));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; j++) q[j] = (int8_t)std::min(127, nearestInt(iscale * xb[j]));
    for (int g = 0; g < 16; g++) {
      int s = 0;
      for (int l = 0; l < 16; l++) s += q[g * 16 + l];
      bsums[b * 16 + g] = (int16_t)s;
    }
    d[b] = 1 / iscale;
  }
}

namespace {

inline float halfAt(const uint8_t* p) { return halfToFloat((uint16_t)(p[0] | (p[1] << 8))); }

// The activations of up to four rows of A, as quantizeQ8K lays them out (row i: qs + i·k, d + i·nb,
// bsums + i·nb·16).
struct XRows {
  const int8_t* qs;
  const float* d;
  const int16_t* bsums;
  int64_t k, nb;
};

// A super-block's float scales and its integer scale and offset coefficient per 16 values.
struct Scales {
  float d, dmin;
  alignas(32) int16_t s[16], min[16];
};

template <int F>
inline void scalesOf(const uint8_t* p, Scales& S) {
  if (F == Q6_K) {
    S.d = S.dmin = halfAt(p + 208);
    for (int g = 0; g < 16; g++) {
      S.s[g] = (int8_t)p[192 + g];
      S.min[g] = (int16_t)(32 * S.s[g]);
    }
    return;
  }
  S.d = halfAt(p), S.dmin = halfAt(p + 2);
  const uint8_t* q = p + 4;  // ggml's get_scale_min_k4
  for (int j = 0; j < 8; j++) {
    int sc, m;
    if (j < 4) sc = q[j] & 63, m = q[j + 4] & 63;
    else sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4), m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    S.s[2 * j] = S.s[2 * j + 1] = (int16_t)sc;
    S.min[2 * j] = S.min[2 * j + 1] = (int16_t)m;
  }
}

// Level p (0..255) of the super-block at p: Q4_K/Q5_K value v = 32·j + l of sub-block j; Q6_K as
// kquant.ts unpackKBlock.
template <int F>
inline int levelOf(const uint8_t* b, int v) {
  if (F == Q6_K) {
    const int h = v >> 7, r = (v >> 5) & 3, l = v & 31;
    const uint8_t ql = b[64 * h + (r & 1) * 32 + l], qh = b[128 + 32 * h + l];
    return ((r < 2 ? ql & 0xf : ql >> 4)) | (((qh >> (2 * r)) & 3) << 4);
  }
  const int j = v >> 5, l = v & 31;
  const uint8_t byte = b[(F == Q4_K ? 16 : 48) + (j >> 1) * 32 + l];
  int q = j & 1 ? byte >> 4 : byte & 0xf;
  if (F == Q5_K) q |= ((b[16 + l] >> j) & 1) << 4;
  return q;
}

// out[i] = row w (nb super-blocks) · row i of X, for i < mx.
template <int F>
void dotKGeneric(const uint8_t* w, const XRows& X, int mx, float* out) {
  float acc[4] = {0, 0, 0, 0};
  Scales S;
  uint8_t q[QK_K];
  for (int64_t b = 0; b < X.nb; b++) {
    const uint8_t* p = w + b * blockBytes(F);
    scalesOf<F>(p, S);
    for (int v = 0; v < QK_K; v++) q[v] = (uint8_t)levelOf<F>(p, v);
    for (int i = 0; i < mx; i++) {
      const int8_t* x = X.qs + i * X.k + b * QK_K;
      const int16_t* bs = X.bsums + (i * X.nb + b) * 16;
      int32_t isum = 0, msum = 0;
      for (int g = 0; g < 16; g++) {
        int32_t dot = 0;
        for (int l = 0; l < 16; l++) dot += q[g * 16 + l] * x[g * 16 + l];
        isum += S.s[g] * dot;
        msum += S.min[g] * bs[g];
      }
      const float dx = X.d[i * X.nb + b];
      acc[i] += (S.d * dx) * (float)isum - (S.dmin * dx) * (float)msum;
    }
  }
  for (int i = 0; i < mx; i++) out[i] = acc[i];
}

#if HERD_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))

// The 32 levels of vector v (values 32v..32v+31) of the super-block at p, one per byte.
template <int F>
AVX2 inline __m256i levelsAvx2(const uint8_t* p, int v) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  if (F == Q6_K) {
    const int h = v >> 2, r = v & 3;
    const __m256i ql = _mm256_loadu_si256((const __m256i*)(p + 64 * h + (r & 1) * 32));
    const __m256i qh = _mm256_loadu_si256((const __m256i*)(p + 128 + 32 * h));
    const __m256i lo = r < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
    const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * r)), _mm256_set1_epi8(3));
    return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
  }
  const __m256i bytes = _mm256_loadu_si256((const __m256i*)(p + (F == Q4_K ? 16 : 48) + (v >> 1) * 32));
  __m256i q = v & 1 ? _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4) : _mm256_and_si256(bytes, m4);
  if (F == Q5_K) {
    const __m256i qh = _mm256_loadu_si256((const __m256i*)(p + 16));
    const __m256i bit = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(v)), _mm256_set1_epi8(1));
    q = _mm256_or_si256(q, _mm256_slli_epi16(bit, 4));
  }
  return q;
}

template <int F, int MX>
AVX2 void dotKAvx2(const uint8_t* w, const XRows& X, float* out) {
  __m256 acc[MX];
  for (int i = 0; i < MX; i++) acc[i] = _mm256_setzero_ps();
  Scales S;
  for (int64_t b = 0; b < X.nb; b++) {
    const uint8_t* p = w + b * blockBytes(F);
    _mm_prefetch((const char*)(p + 4 * blockBytes(F)), _MM_HINT_T0);
    _mm_prefetch((const char*)(p + 4 * blockBytes(F) + 64), _MM_HINT_T0);
    _mm_prefetch((const char*)(p + 4 * blockBytes(F) + 128), _MM_HINT_T0);
    scalesOf<F>(p, S);
    __m256i isum[MX];
    for (int i = 0; i < MX; i++) isum[i] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int v = 0; v < 8; v++) {
      const __m256i q = levelsAvx2<F>(p, v);
      // Group scales: one per 32 (Q4_K, Q5_K), or 16 and 16 (Q6_K: the two 128-bit lanes).
      const __m256i sc = _mm256_set_m128i(_mm_set1_epi16(S.s[2 * v + 1]), _mm_set1_epi16(S.s[2 * v]));
#pragma GCC unroll 4
      for (int i = 0; i < MX; i++) {
        const __m256i x = _mm256_loadu_si256((const __m256i*)(X.qs + i * X.k + b * QK_K + 32 * v));
        isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), sc));
      }
    }
    const __m256i mins = _mm256_load_si256((const __m256i*)S.min);
#pragma GCC unroll 4
    for (int i = 0; i < MX; i++) {
      const __m256i bs = _mm256_loadu_si256((const __m256i*)(X.bsums + (i * X.nb + b) * 16));
      const __m256i msum = _mm256_madd_epi16(bs, mins);
      const float dx = X.d[i * X.nb + b];
      acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(S.d * dx), _mm256_cvtepi32_ps(isum[i]), acc[i]);
      acc[i] = _mm256_fnmadd_ps(_mm256_set1_ps(S.dmin * dx), _mm256_cvtepi32_ps(msum), acc[i]);
    }
  }
  for (int i = 0; i < MX; i++) out[i] = hsum256(acc[i]);
}

template <int F>
void dotKAvx2Rows(const uint8_t* w, const XRows& X, int mx, float* out) {
  switch (mx) {
    case 1: return dotKAvx2<F, 1>(w, X, out);
    case 2: return dotKAvx2<F, 2>(w, X, out);
    case 3: return dotKAvx2<F, 3>(w, X, out);
    default: return dotKAvx2<F, 4>(w, X, out);
  }
}
#undef AVX2
#endif

using DotK = void (*)(const uint8_t*, const XRows&, int, float*);

DotK pickDotK(int f) {
#if HERD_X86
  if (isa == Isa::Avx512 || isa == Isa::Avx2)
    return f == Q4_K ? dotKAvx2Rows<Q4_K> : f == Q5_K ? dotKAvx2Rows<Q5_K> : dotKAvx2Rows<Q6_K>;
#endif
  return f == Q4_K ? dotKGeneric<Q4_K> : f == Q5_K ? dotKGeneric<Q5_K> : dotKGeneric<Q6_K>;
}

}  // namespace

void matmulKQuant(const float* a, const uint8_t* w, float* c, int64_t m, int64_t n, int64_t k, int f) {
  if (m == 0 || n == 0) return;
  const int64_t nb = k / QK_K, rowBytes = nb * blockBytes(f);
  std::vector<int8_t> qs(m * k);
  std::vector<float> d(m * nb);
  std::vector<int16_t> bsums(m * nb * 16);
  parallelFor(m, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, k)), [&](int64_t i0, int64_t i1) {
    quantizeQ8K(a + i0 * k, i1 - i0, k, qs.data() + i0 * k, d.data() + i0 * nb, bsums.data() + i0 * nb * 16);
  });
  const DotK dot = pickDotK(f);
  // Decode (m ≤ 4): rows of W in chunks of about 1 MiB (as quant.cc's). Prefill: tiles of 16 rows (at
  // most 16·4.6 KB for k = 8192 Q4_K... Q6_K 6.7 KB: in L2), each passed by every group of four rows of A.
  const int64_t grain = m <= 4 ? std::clamp<int64_t>((1 << 20) / std::max<int64_t>(1, rowBytes), 4, 1024) : 16;
  parallelFor(n, grain, [&](int64_t j0, int64_t j1) {
    float out[4];
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
      const int mx = (int)std::min<int64_t>(4, m - i0);
      const XRows X{qs.data() + i0 * k, d.data() + i0 * nb, bsums.data() + i0 * nb * 16, k, nb};
      for (int64_t j = j0; j < j1; j++) {
        dot(w + j * rowBytes, X, mx, out);
        for (int i = 0; i < mx; i++) c[(i0 + i) * n + j] = out[i];
      }
    }
  });
}

}  // namespace herd
