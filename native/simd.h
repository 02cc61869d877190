// Per-ISA building blocks of the native training kernels (attention.cc, rows.cc): a small register-
// blocked matrix product for attention tiles, the score-block steps of flash attention (mask and scale,
// exp against a per-query shift, dS), and the exp-heavy row loops (softmax sums, SwiGLU). simd_impl.h has
// the one source; simd_avx512.cc, simd_avx2.cc and simd_generic.cc compile it for each ISA (a
// `#pragma GCC target` before it, every function in an anonymous namespace so no inline code compiled
// for AVX-512 can be picked by the linker for another file). simdOps() returns the set for herd::isa.
#pragma once
#include <cstdint>

namespace herd {

struct SimdOps {
  // C[M×N] (+)= A[M×K]·B[K×N] with N % 16 == 0: A(i,p) = a[i·ars + p·acs] (any layout, read by
  // broadcast), B(p,j) = b[p·ldb + j] (rows contiguous), C(i,j) = c[i·ldc + j].
  void (*gemm)(int M, int N, int K, const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb,
               float* c, int64_t ldc, bool accumulate);
  // A block of scores in key-major layout: row j (a key) holds lanes i (queries), rows ld floats apart,
  // n lanes (n % 16 == 0) of which the first m are real. Each score is multiplied by `scale`; lanes
  // i >= m, lanes i < j + firstVis when `causal`, and lanes with qDoc[i] != kDoc[j] (when both are
  // given) become -Infinity. colMax[i] = max(colMax[i], column i) when colMax is not null.
  void (*maskScores)(float* s, int rows, int m, int n, int64_t ld, float scale, bool causal, int64_t firstVis,
                     const int32_t* qDoc, const int32_t* kDoc, float* colMax);
  // s[j][i] = exp(s[j][i] - shift[i]); colSum[i] += s[j][i] when colSum is not null.
  void (*expScores)(float* s, int rows, int n, int64_t ld, const float* shift, float* colSum);
  // dp[j][i] = p[j][i] · (dp[j][i] - D[i]) · scale.
  void (*dScores)(const float* p, float* dp, int rows, int n, int64_t ld, const float* D, float scale);
  float (*dot)(const float* a, const float* b, int64_t n);
  // Σ a[i]·b[i]·c[i]
  float (*dot3)(const float* a, const float* b, const float* c, int64_t n);
  // Largest element (NaN elements may be skipped; the sums below carry them).
  float (*max)(const float* x, int64_t n);
  // Σ exp(x[i] - shift), and out[i] = c · exp(x[i] - shift) (out may be x).
  double (*expSum)(const float* x, int64_t n, float shift);
  void (*expScale)(const float* x, float* out, int64_t n, float shift, float c);
  void (*swiglu)(const float* g, const float* u, float* out, int64_t n);
  void (*swigluBackward)(const float* g, const float* u, const float* dout, float* dg, float* du, int64_t n);
  // One AdamW step over n elements; a = {lr, beta1, beta2, eps, 1 - lr·weightDecay, 1 - beta1^t, 1 - beta2^t}.
  void (*adamw)(float* param, const float* grad, float* m, float* v, int64_t n, const float* a);
  // Decode attention over n keys (rows ks floats apart) for a GQA group's G query heads (q rows hd
  // apart): scores s[j·ld + t] = q_j·k_t, and acc[j·hd + d] += Σ_t p[j·ld + t]·v_t[d].
  void (*groupScores)(const float* q, int G, int64_t hd, const float* k, int64_t ks, int64_t n, float* s, int64_t ld);
  void (*groupMix)(float* acc, int G, int64_t hd, const float* p, int64_t ld, const float* v, int64_t ks, int64_t n);
};

// Chunk size for parallelFor over n elements of a memory-bound loop: the whole range on the calling
// thread below `serial` elements (waking the pool costs more than a second core saves there), else about
// four chunks per thread.
inline int64_t streamGrain(int64_t n, int threads, int64_t serial = int64_t(1) << 18) {
  if (n < serial || threads <= 1) return n > 0 ? n : 1;
  const int64_t g = (n + 4 * threads - 1) / (4 * threads);
  return (g + 4095) & ~int64_t(4095);
}

extern const SimdOps simdAvx512, simdAvx2, simdGeneric;

// The set for herd::isa (herd.h).
const SimdOps& simdOps();

}  // namespace herd
