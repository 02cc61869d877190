// The one source of the SimdOps kernels (simd.h), compiled once per ISA by simd_<isa>.cc, which sets
// SIMD_ISA (512, 2 or 0) and SIMD_NAME and a `#pragma GCC target` before including this. V is the
// vector type (float on the portable build), W its width in floats; the readable reference of every
// function is the scalar loop it vectorises (and src/backends/js/ for what the kernels compute).
// Everything here has internal linkage, and every header with inline code (the standard library's,
// simd.h) is included before the target pragma, so no function compiled for AVX-512 or AVX2 can be
// merged by the linker with a baseline copy used elsewhere.
#include <cmath>
#include <cstdint>
#include <cstring>
#if SIMD_ISA
#include <immintrin.h>
#endif
#include "simd.h"

namespace {

#if SIMD_ISA == 512
typedef __m512 V;
constexpr int W = 16, MR = 8, NV = 2;
inline V vzero() { return _mm512_setzero_ps(); }
inline V vset(float x) { return _mm512_set1_ps(x); }
inline V vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, V x) { _mm512_storeu_ps(p, x); }
inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
inline V vsub(V a, V b) { return _mm512_sub_ps(a, b); }
inline V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
inline V vdiv(V a, V b) { return _mm512_div_ps(a, b); }
inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline V vmax(V a, V b) { return _mm512_max_ps(a, b); }
inline V vsqrt(V a) { return _mm512_sqrt_ps(a); }
inline float vsum(V a) { return _mm512_reduce_add_ps(a); }
inline float vhmax(V a) { return _mm512_reduce_max_ps(a); }
// out[0..3] = the lane sums of a, b, c, d: one reduction tree for four (per 128-bit lane: pairs, then
// quads; then the four lanes), a third of the shuffles and adds of four vsum calls.
inline void vsum4(V a, V b, V c, V d, float* out) {
  const V ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const V cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  const V q = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(q), _mm512_extractf32x8_ps(q, 1));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}
inline V vround(V x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline V vpow2i(V n) {  // 2^n for integral n in [-126, 127]
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
inline V vzeroWhereBelow(V r, V x, V lo) { return _mm512_maskz_mov_ps(~_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), r); }
#elif SIMD_ISA == 2
typedef __m256 V;
constexpr int W = 8, MR = 6, NV = 2;
inline V vzero() { return _mm256_setzero_ps(); }
inline V vset(float x) { return _mm256_set1_ps(x); }
inline V vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, V x) { _mm256_storeu_ps(p, x); }
inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }
inline V vsub(V a, V b) { return _mm256_sub_ps(a, b); }
inline V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V vdiv(V a, V b) { return _mm256_div_ps(a, b); }
inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V vmax(V a, V b) { return _mm256_max_ps(a, b); }
inline V vsqrt(V a) { return _mm256_sqrt_ps(a); }
inline float vsum(V a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
inline float vhmax(V a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
inline void vsum4(V a, V b, V c, V d, float* out) {  // as the AVX-512 one, on two 128-bit lanes
  const V ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
  const V cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
  const V q = _mm256_add_ps(_mm256_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)), _mm256_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(q), _mm256_extractf128_ps(q, 1)));
}
inline V vround(V x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline V vpow2i(V n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
inline V vzeroWhereBelow(V r, V x, V lo) { return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), r); }
#else
typedef float V;
constexpr int W = 1, MR = 4, NV = 16;
inline V vzero() { return 0.f; }
inline V vset(float x) { return x; }
inline V vload(const float* p) { return *p; }
inline void vstore(float* p, V x) { *p = x; }
inline V vadd(V a, V b) { return a + b; }
inline V vsub(V a, V b) { return a - b; }
inline V vmul(V a, V b) { return a * b; }
inline V vdiv(V a, V b) { return a / b; }
inline V vfma(V a, V b, V c) { return a * b + c; }
inline V vmax(V a, V b) { return a > b ? a : b; }
inline V vsqrt(V a) { return std::sqrt(a); }
inline float vsum(V a) { return a; }
inline float vhmax(V a) { return a; }
inline void vsum4(V a, V b, V c, V d, float* out) { out[0] = a, out[1] = b, out[2] = c, out[3] = d; }
#endif

// exp(x). Vector versions: Cephes' expf (range reduction by ln 2 in two parts, degree-6 polynomial,
// 2^n built in the exponent bits), within 2 ulp; x < -87.34 gives 0 (exp(-Infinity) = 0 exactly, as the
// masks need), x > 88.38 is clamped, NaN stays NaN.
inline V vexp(V x) {
#if SIMD_ISA
  const V lo = vset(-87.336544f), hi = vset(88.376262f);
  V xc = vmax(lo, x);                       // NaN in x stays NaN (max returns its second operand)
  xc = vsub(xc, vmax(vsub(xc, hi), vzero()));  // min(xc, hi), NaN kept
  const V n = vround(vmul(xc, vset(1.44269504088896341f)));
  V r = vfma(n, vset(-0.693359375f), xc);
  r = vfma(n, vset(2.12194440e-4f), r);
  V y = vset(1.9875691500e-4f);
  y = vfma(y, r, vset(1.3981999507e-3f));
  y = vfma(y, r, vset(8.3334519073e-3f));
  y = vfma(y, r, vset(4.1665795894e-2f));
  y = vfma(y, r, vset(1.6666665459e-1f));
  y = vfma(y, r, vset(5.0000001201e-1f));
  y = vfma(y, vmul(r, r), vadd(r, vset(1.f)));
  return vzeroWhereBelow(vmul(y, vpow2i(n)), x, lo);
#else
  return std::exp(x);
#endif
}

inline int imin(int a, int b) { return a < b ? a : b; }
inline int64_t lmax(int64_t a, int64_t b) { return a > b ? a : b; }

// One MR×(nv·W) block of C from K steps: rows of A at arow[i] (stride acs along p), B rows ldb apart.
template <int NVEC>
inline void micro(int K, const float* const* arow, int64_t acs, const float* b, int64_t ldb, float* c, int64_t ldc,
                  int rows, bool accumulate) {
  V acc[MR][NVEC];
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NVEC; v++) acc[i][v] = vzero();
  for (int p = 0; p < K; p++) {
    V bv[NVEC];
    for (int v = 0; v < NVEC; v++) bv[v] = vload(b + p * ldb + v * W);
    const int64_t ap = p * acs;
    for (int i = 0; i < MR; i++) {
      const V a = vset(arow[i][ap]);
      for (int v = 0; v < NVEC; v++) acc[i][v] = vfma(a, bv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < rows; i++)
    for (int v = 0; v < NVEC; v++) {
      float* cp = c + i * ldc + v * W;
      vstore(cp, accumulate ? vadd(acc[i][v], vload(cp)) : acc[i][v]);
    }
}

void gemm(int M, int N, int K, const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb, float* c,
          int64_t ldc, bool accumulate) {
  for (int i0 = 0; i0 < M; i0 += MR) {
    const int rows = imin(MR, M - i0);
    const float* arow[MR];
    for (int i = 0; i < MR; i++) arow[i] = a + (int64_t)(i0 + imin(i, rows - 1)) * ars;  // past M: repeat a row
    float* ci = c + (int64_t)i0 * ldc;
    int j0 = 0;
    for (; j0 + NV * W <= N; j0 += NV * W) micro<NV>(K, arow, acs, b + j0, ldb, ci + j0, ldc, rows, accumulate);
    for (; j0 < N; j0 += W) micro<1>(K, arow, acs, b + j0, ldb, ci + j0, ldc, rows, accumulate);
  }
}

void maskScores(float* s, int rows, int m, int n, int64_t ld, float scale, bool causal, int64_t firstVis,
                const int32_t* qDoc, const int32_t* kDoc, float* colMax) {
  const V sc = vset(scale);
  for (int j = 0; j < rows; j++) {
    float* r = s + j * ld;
    for (int i = 0; i < n; i += W) vstore(r + i, vmul(vload(r + i), sc));
    if (qDoc && kDoc) {
      const int32_t d = kDoc[j];
      for (int i = 0; i < m; i++)
        if (qDoc[i] != d) r[i] = -INFINITY;
    }
    const int first = causal ? (int)std::fmin((double)m, (double)lmax(0, j + firstVis)) : 0;
    for (int i = 0; i < first; i++) r[i] = -INFINITY;
    for (int i = m; i < n; i++) r[i] = -INFINITY;
    if (colMax)
      for (int i = 0; i < n; i += W) vstore(colMax + i, vmax(vload(colMax + i), vload(r + i)));
  }
}

void expScores(float* s, int rows, int n, int64_t ld, const float* shift, float* colSum) {
  for (int j = 0; j < rows; j++) {
    float* r = s + j * ld;
    for (int i = 0; i < n; i += W) {
      const V e = vexp(vsub(vload(r + i), vload(shift + i)));
      vstore(r + i, e);
      if (colSum) vstore(colSum + i, vadd(vload(colSum + i), e));
    }
  }
}

void dScores(const float* p, float* dp, int rows, int n, int64_t ld, const float* D, float scale) {
  const V sc = vset(scale);
  for (int j = 0; j < rows; j++)
    for (int i = 0; i < n; i += W) {
      const int64_t o = j * ld + i;
      vstore(dp + o, vmul(vmul(vload(p + o), vsub(vload(dp + o), vload(D + i))), sc));
    }
}

float dot(const float* a, const float* b, int64_t n) {
  V acc0 = vzero(), acc1 = vzero();
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    acc0 = vfma(vload(a + i), vload(b + i), acc0);
    acc1 = vfma(vload(a + i + W), vload(b + i + W), acc1);
  }
  float s = vsum(vadd(acc0, acc1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// Decode attention (attention.cc forwardRows): a GQA group's G query heads against n keys, heads in
// blocks of up to 4 so each K row is loaded once for the block; reference: G·n calls of dot.
// Keys 4 at a time: 4·NH sums in registers, each head's 4 reduced together (vsum4).
template <int NH>
void scoresBlock(const float* q, int64_t hd, const float* k, int64_t ks, int64_t n, float* s, int64_t ld) {
  const int64_t hv = hd / W * W;
  int64_t t = 0;
  for (; t + 4 <= n; t += 4) {
    const float* kt = k + t * ks;
    V a[4][NH];
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < NH; j++) a[i][j] = vzero();
    for (int64_t d = 0; d < hv; d += W)
      for (int i = 0; i < 4; i++) {
        const V kv = vload(kt + i * ks + d);
        for (int j = 0; j < NH; j++) a[i][j] = vfma(vload(q + j * hd + d), kv, a[i][j]);
      }
    for (int j = 0; j < NH; j++) {
      float* r = s + j * ld + t;
      vsum4(a[0][j], a[1][j], a[2][j], a[3][j], r);
      for (int i = 0; i < 4; i++)
        for (int64_t d = hv; d < hd; d++) r[i] += q[j * hd + d] * kt[i * ks + d];
    }
  }
  for (; t < n; t++) {
    const float* kt = k + t * ks;
    V a[NH];
    for (int j = 0; j < NH; j++) a[j] = vzero();
    for (int64_t d = 0; d < hv; d += W) {
      const V kv = vload(kt + d);
      for (int j = 0; j < NH; j++) a[j] = vfma(vload(q + j * hd + d), kv, a[j]);
    }
    for (int j = 0; j < NH; j++) {
      float r = vsum(a[j]);
      for (int64_t d = hv; d < hd; d++) r += q[j * hd + d] * kt[d];
      s[j * ld + t] = r;
    }
  }
}

// s[j·ld + t] = Σ_d q[j·hd + d]·k[t·ks + d] for heads j < G, keys t < n.
void groupScores(const float* q, int G, int64_t hd, const float* k, int64_t ks, int64_t n, float* s, int64_t ld) {
  for (int j = 0; j < G; j += 4) {
    const float* qj = q + j * hd;
    float* sj = s + j * ld;
    switch (imin(4, G - j)) {
      case 4: scoresBlock<4>(qj, hd, k, ks, n, sj, ld); break;
      case 3: scoresBlock<3>(qj, hd, k, ks, n, sj, ld); break;
      case 2: scoresBlock<2>(qj, hd, k, ks, n, sj, ld); break;
      default: scoresBlock<1>(qj, hd, k, ks, n, sj, ld); break;
    }
  }
}

// NH heads × NV vectors of their accumulators held in registers while the keys stream past.
template <int NH, int NV_>
void mixBlock(float* acc, int64_t hd, const float* p, int64_t ld, const float* v, int64_t ks, int64_t n) {
  V a[NH][NV_];
  for (int j = 0; j < NH; j++)
    for (int i = 0; i < NV_; i++) a[j][i] = vload(acc + j * hd + i * W);
  for (int64_t t = 0; t < n; t++) {
    V x[NV_];
    for (int i = 0; i < NV_; i++) x[i] = vload(v + t * ks + i * W);
    for (int j = 0; j < NH; j++) {
      const V pj = vset(p[j * ld + t]);
      for (int i = 0; i < NV_; i++) a[j][i] = vfma(pj, x[i], a[j][i]);
    }
  }
  for (int j = 0; j < NH; j++)
    for (int i = 0; i < NV_; i++) vstore(acc + j * hd + i * W, a[j][i]);
}

template <int NH>
void mixHeads(float* acc, int64_t hd, const float* p, int64_t ld, const float* v, int64_t ks, int64_t n) {
  int64_t d = 0;
  for (; d + 4 * W <= hd; d += 4 * W) mixBlock<NH, 4>(acc + d, hd, p, ld, v + d, ks, n);
  for (; d + W <= hd; d += W) mixBlock<NH, 1>(acc + d, hd, p, ld, v + d, ks, n);
  for (; d < hd; d++)
    for (int j = 0; j < NH; j++)
      for (int64_t t = 0; t < n; t++) acc[j * hd + d] += p[j * ld + t] * v[t * ks + d];
}

// acc[j·hd + d] += Σ_t p[j·ld + t]·v[t·ks + d] for heads j < G (the P·V of decode attention; reference:
// for each head and key, acc_j += p·v_t).
void groupMix(float* acc, int G, int64_t hd, const float* p, int64_t ld, const float* v, int64_t ks, int64_t n) {
  for (int j = 0; j < G; j += 4) {
    float* aj = acc + j * hd;
    const float* pj = p + j * ld;
    switch (imin(4, G - j)) {
      case 4: mixHeads<4>(aj, hd, pj, ld, v, ks, n); break;
      case 3: mixHeads<3>(aj, hd, pj, ld, v, ks, n); break;
      case 2: mixHeads<2>(aj, hd, pj, ld, v, ks, n); break;
      default: mixHeads<1>(aj, hd, pj, ld, v, ks, n); break;
    }
  }
}

float dot3(const float* a, const float* b, const float* c, int64_t n) {
  V acc0 = vzero(), acc1 = vzero();
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    acc0 = vfma(vmul(vload(a + i), vload(b + i)), vload(c + i), acc0);
    acc1 = vfma(vmul(vload(a + i + W), vload(b + i + W)), vload(c + i + W), acc1);
  }
  float s = vsum(vadd(acc0, acc1));
  for (; i < n; i++) s += a[i] * b[i] * c[i];
  return s;
}

float maxOf(const float* x, int64_t n) {
  float m = -INFINITY;
  int64_t i = 0;
  if (n >= W) {
    V mv = vset(-INFINITY);
    for (; i + W <= n; i += W) mv = vmax(mv, vload(x + i));
    m = vhmax(mv);
  }
  for (; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

double expSum(const float* x, int64_t n, float shift) {
  const V sh = vset(shift);
  V acc = vzero();
  double s = 0;
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    acc = vadd(acc, vexp(vsub(vload(x + i), sh)));
    if ((i & 1023) == 1024 - W) {  // fold into f64 every 1024 elements
      s += vsum(acc);
      acc = vzero();
    }
  }
  s += vsum(acc);
  for (; i < n; i++) s += std::exp(x[i] - shift);
  return s;
}

void expScale(const float* x, float* out, int64_t n, float shift, float c) {
  const V sh = vset(shift), cv = vset(c);
  int64_t i = 0;
  for (; i + W <= n; i += W) vstore(out + i, vmul(cv, vexp(vsub(vload(x + i), sh))));
  for (; i < n; i++) out[i] = c * std::exp(x[i] - shift);
}

// out = g·σ(g)·u with σ(g) = 1 / (1 + exp(-g)).
void swiglu(const float* g, const float* u, float* out, int64_t n) {
  const V one = vset(1.f), zero = vzero();
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const V gv = vload(g + i);
    const V s = vdiv(one, vadd(one, vexp(vsub(zero, gv))));
    vstore(out + i, vmul(vmul(gv, s), vload(u + i)));
  }
  for (; i < n; i++) out[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
}

// du = dout·g·σ(g), dg = dout·u·σ(g)·(1 + g·(1 − σ(g))).
void swigluBackward(const float* g, const float* u, const float* dout, float* dg, float* du, int64_t n) {
  const V one = vset(1.f), zero = vzero();
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const V gv = vload(g + i), d = vload(dout + i);
    const V s = vdiv(one, vadd(one, vexp(vsub(zero, gv))));
    vstore(du + i, vmul(vmul(d, gv), s));
    vstore(dg + i, vmul(vmul(vmul(d, vload(u + i)), s), vfma(gv, vsub(one, s), one)));
  }
  for (; i < n; i++) {
    const float gi = g[i], s = 1.f / (1.f + std::exp(-gi)), d = dout[i];
    du[i] = d * gi * s;
    dg[i] = d * u[i] * s * (1.f + gi * (1.f - s));
  }
}

// AdamW over [0, n) (herd.cc's adamw has the formula; `a` holds lr, beta1, beta2, eps, decay = 1 - lr·wd,
// and the bias corrections bc1, bc2).
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, const float* a) {
  const float lr = a[0], b1 = a[1], b2 = a[2], eps = a[3], decay = a[4], bc1 = a[5], bc2 = a[6];
  const float ob1 = 1.f - b1, ob2 = 1.f - b2;
  const V vb1 = vset(b1), vb2 = vset(b2), vob1 = vset(ob1), vob2 = vset(ob2), vlr = vset(lr), veps = vset(eps);
  const V vdecay = vset(decay), vbc1 = vset(bc1), vbc2 = vset(bc2);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const V g = vload(grad + i);
    const V mi = vadd(vmul(vb1, vload(m + i)), vmul(vob1, g));
    const V vi = vadd(vmul(vb2, vload(v + i)), vmul(vmul(vob2, g), g));
    vstore(m + i, mi);
    vstore(v + i, vi);
    const V step = vdiv(vmul(vlr, vdiv(mi, vbc1)), vadd(vsqrt(vdiv(vi, vbc2)), veps));
    vstore(param + i, vsub(vmul(vload(param + i), vdecay), step));
  }
  for (; i < n; i++) {
    const float g = grad[i];
    const float mi = b1 * m[i] + ob1 * g, vi = b2 * v[i] + ob2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - (lr * (mi / bc1)) / (std::sqrt(vi / bc2) + eps);
  }
}

}  // namespace

namespace herd {
const SimdOps SIMD_NAME = {gemm,   maskScores,     expScores, dScores,     dot,     dot3,   maxOf,
                           expSum, expScale,       swiglu,    swigluBackward, adamw, groupScores, groupMix};
}  // namespace herd
