// The rest of a training step's kernels on the native backend: RoPE (forward and inverse), embedding and
// its backward, fused cross-entropy forward and backward, and the elementwise kernels with the f64 sums.
// Reference: src/backends/js/index.ts and crossEntropy.ts (the conformance suite checks these against
// them). Exp-heavy loops use SimdOps (simd.h); the rest are plain loops the compiler vectorises.
//
// Plain C++ (declared in herd.h), no N-API: the binding that checks the JS arguments and calls these
// kernels is in napi.cc.

#include "herd.h"
#include "simd.h"

namespace herd {
namespace {

// ------------------------------------------------------------------------------------------------
// RoPE. The cos/sin table of a call is computed once per distinct position (f32 angle, as the
// reference) and kept for the next call with the same frequencies and positions (every layer of a
// step, forward and backward, shares it).
// ------------------------------------------------------------------------------------------------

struct RopeTable {
  std::vector<float> invFreq;  // the key: frequencies and position range
  int64_t lo = 0, hi = -1;     // positions [lo, hi] have rows
  std::vector<float> cos, sin;  // [(pos - lo) * half + i]
};
std::mutex ropeMu;
RopeTable ropeCache;

inline void ropeRow(const float* invFreq, int64_t half, int64_t pos, float* c, float* s) {
  for (int64_t i = 0; i < half; i++) {
    const float angle = (float)pos * invFreq[i];  // f32 product, as the reference
    c[i] = (float)std::cos((double)angle);
    s[i] = (float)std::sin((double)angle);
  }
}

// Make T cover positions [lo, hi] for these frequencies; rows T already has (same frequencies) are kept.
void ropeFill(RopeTable& T, const float* invFreq, int64_t half, int64_t lo, int64_t hi) {
  const bool keep = (int64_t)T.invFreq.size() == half && std::equal(invFreq, invFreq + half, T.invFreq.begin());
  std::vector<float> c((hi - lo + 1) * half), s((hi - lo + 1) * half);
  parallelFor(hi - lo + 1, std::max<int64_t>(1, 2048 / half), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t p = lo + r;
      if (keep && p >= T.lo && p <= T.hi) {
        std::memcpy(&c[r * half], &T.cos[(p - T.lo) * half], half * sizeof(float));
        std::memcpy(&s[r * half], &T.sin[(p - T.lo) * half], half * sizeof(float));
      } else {
        ropeRow(invFreq, half, p, &c[r * half], &s[r * half]);
      }
    }
  });
  T.invFreq.assign(invFreq, invFreq + half);
  T.lo = lo, T.hi = hi;
  T.cos.swap(c), T.sin.swap(s);
}

// out = x rotated by the angles of table rows row(t) (cos at c, sin at s; sin negated when inverse).
template <typename Row>
void rotate(const float* x, float* out, int64_t tokens, int64_t heads, int64_t hd, bool inverse, Row row) {
  const int64_t half = hd / 2;
  const float sgn = inverse ? -1.f : 1.f;
  const int64_t grain = std::max<int64_t>(1, streamGrain(tokens * heads * hd, pool.threads(), 65536) / (heads * hd));
  parallelFor(tokens, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const float *c, *s;
      row(t, c, s);
      for (int64_t h = 0; h < heads; h++) {
        const int64_t o = (t * heads + h) * hd;
        for (int64_t i = 0; i < half; i++) {
          const float a = x[o + i], b = x[o + i + half], sn = sgn * s[i];
          out[o + i] = a * c[i] - b * sn;
          out[o + i + half] = b * c[i] + a * sn;
        }
      }
    }
  });
}

}  // namespace

void rope(const float* x, float* out, const int32_t* pos, const float* invFreq, int64_t tokens, int64_t heads,
          int64_t hd, bool inverse) {
  const int64_t half = hd / 2;
  if (tokens == 0 || half == 0) return;
  int64_t lo = pos[0], hi = pos[0];
  for (int64_t t = 1; t < tokens; t++) lo = std::min<int64_t>(lo, pos[t]), hi = std::max<int64_t>(hi, pos[t]);
  std::lock_guard<std::mutex> lock(ropeMu);
  RopeTable& T = ropeCache;
  const bool same = (int64_t)T.invFreq.size() == half && std::equal(invFreq, invFreq + half, T.invFreq.begin());
  if (!same || lo < T.lo || hi > T.hi) {
    if (same && T.hi >= T.lo && std::max(hi, T.hi) - std::min(lo, T.lo) <= 4 * tokens + 4096) {
      // Grow the table; decode moves one position a step, so grow 256 ahead (one fill per 256 steps).
      ropeFill(T, invFreq, half, std::min(lo, T.lo), hi > T.hi ? hi + 255 : T.hi);
    } else if (hi - lo < 2 * tokens + 64) {
      ropeFill(T, invFreq, half, lo, hi);
    } else {
      // Sparse positions (a table over their range would be mostly unused): a row per token.
      std::vector<float> c(tokens * half), s(tokens * half);
      parallelFor(tokens, std::max<int64_t>(1, 2048 / half), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) ropeRow(invFreq, half, pos[r], &c[r * half], &s[r * half]);
      });
      rotate(x, out, tokens, heads, hd, inverse, [&](int64_t t, const float*& cr, const float*& sr) {
        cr = &c[t * half], sr = &s[t * half];
      });
      return;
    }
  }
  rotate(x, out, tokens, heads, hd, inverse, [&](int64_t t, const float*& cr, const float*& sr) {
    cr = &T.cos[(pos[t] - T.lo) * half], sr = &T.sin[(pos[t] - T.lo) * half];
  });
}

// ------------------------------------------------------------------------------------------------
// Embedding: rows copied; the backward splits the columns across threads and adds rows in order, so
// repeated ids accumulate deterministically without atomics.
// ------------------------------------------------------------------------------------------------

void embedding(const float* table, const int32_t* ids, float* out, int64_t rows, int64_t dim) {
  parallelFor(rows, std::max<int64_t>(1, streamGrain(rows * dim, pool.threads()) / std::max<int64_t>(1, dim)),
              [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) std::memcpy(out + r * dim, table + (int64_t)ids[r] * dim, dim * sizeof(float));
  });
}

void embeddingBackward(const float* dout, const int32_t* ids, float* dtable, int64_t rows, int64_t dim) {
  const int64_t grain = std::max<int64_t>(16, (dim + pool.threads() - 1) / pool.threads());
  parallelFor(dim, rows * dim < (int64_t(1) << 18) ? dim : grain, [&](int64_t i0, int64_t i1) {
    for (int64_t r = 0; r < rows; r++) {
      float* d = dtable + (int64_t)ids[r] * dim;
      const float* g = dout + r * dim;
      for (int64_t i = i0; i < i1; i++) d[i] += g[i];
    }
  });
}

// ------------------------------------------------------------------------------------------------
// Cross-entropy (targets are checked by the binding first, on the calling thread: napi.cc).
// ------------------------------------------------------------------------------------------------

namespace {

inline float rowWeight(int32_t t, int64_t r, const float* mask, int32_t ignore) {
  return t == ignore ? 0.f : mask ? mask[r] : 1.f;
}

void crossEntropyRows(const float* logits, const int32_t* targets, const float* mask, float* losses, float* lse,
                  int64_t rows, int64_t vocab, int32_t ignore) {
  const SimdOps& K = simdOps();
  parallelFor(rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, vocab)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* x = logits + r * vocab;
      const float mx = K.max(x, vocab);
      // A row of all -Infinity has no mass: lse -Infinity (not NaN). A NaN logit makes the sum NaN.
      const float l = mx == -INFINITY ? mx : (float)((double)mx + std::log(K.expSum(x, vocab, mx)));
      lse[r] = l;
      const int32_t t = targets[r];
      const float w = rowWeight(t, r, mask, ignore);
      losses[r] = w == 0.f ? 0.f : w * (l - x[t]);
    }
  });
}

void crossEntropyBackwardRows(const float* logits, const int32_t* targets, const float* mask, const float* lse,
                              float scale, float* dlogits, int64_t rows, int64_t vocab, int32_t ignore) {
  const SimdOps& K = simdOps();
  parallelFor(rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, vocab)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int32_t t = targets[r];
      const float c = scale * rowWeight(t, r, mask, ignore);
      float* d = dlogits + r * vocab;
      if (c == 0.f) {
        std::fill(d, d + vocab, 0.f);
        continue;
      }
      const float xt = logits[r * vocab + t];  // before the row is overwritten (dlogits may alias logits)
      K.expScale(logits + r * vocab, d, vocab, lse[r], c);
      d[t] = c * (std::exp(xt - lse[r]) - 1.f);
    }
  });
}

// ------------------------------------------------------------------------------------------------
// Elementwise and sums (f64 accumulation over fixed 64k-element chunks, added in order: the result
// does not depend on the thread count).
// ------------------------------------------------------------------------------------------------

template <typename F>
void elementwise(int64_t n, F&& f) {
  parallelFor(n, streamGrain(n, pool.threads()), [&](int64_t i0, int64_t i1) { f(i0, i1); });
}

template <bool Squares>
double reduce(const float* a, int64_t n) {
  constexpr int64_t CHUNK = 65536;
  const int64_t chunks = (n + CHUNK - 1) / CHUNK;
  std::vector<double> part(chunks);
  parallelFor(chunks, n < (int64_t(1) << 18) ? chunks : 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      const int64_t i1 = std::min(n, (c + 1) * CHUNK);
      double s[8] = {};
      int64_t i = c * CHUNK;
      for (; i + 8 <= i1; i += 8)
        for (int j = 0; j < 8; j++) {
          const double x = a[i + j];
          s[j] += Squares ? x * x : x;
        }
      for (; i < i1; i++) s[0] += Squares ? (double)a[i] * a[i] : (double)a[i];
      part[c] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    }
  });
  double total = 0;
  for (double p : part) total += p;
  return total;
}

}  // namespace

void crossEntropy(const float* logits, const int32_t* targets, const float* mask, float* losses, float* lse,
                  int64_t rows, int64_t vocab, int32_t ignore) {
  if (vocab > 0) {
    crossEntropyRows(logits, targets, mask, losses, lse, rows, vocab, ignore);
  } else {  // no classes (every target ignored): no mass, as the reference
    std::fill(lse, lse + rows, -INFINITY);
    std::fill(losses, losses + rows, 0.f);
  }
}

void crossEntropyBackward(const float* logits, const int32_t* targets, const float* mask, const float* lse,
                          float scale, float* dlogits, int64_t rows, int64_t vocab, int32_t ignore) {
  if (vocab > 0) crossEntropyBackwardRows(logits, targets, mask, lse, scale, dlogits, rows, vocab, ignore);
}

void add(const float* a, const float* b, float* out, int64_t n) {
  elementwise(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) out[i] = a[i] + b[i];
  });
}

void mul(const float* a, const float* b, float* out, int64_t n) {
  elementwise(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) out[i] = a[i] * b[i];
  });
}

void scale(const float* a, float s, float* out, int64_t n) {
  elementwise(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) out[i] = a[i] * s;
  });
}

void axpy(float* acc, const float* a, float s, int64_t n) {
  elementwise(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) acc[i] += a[i] * s;
  });
}

double sum(const float* a, int64_t n) { return reduce<false>(a, n); }
double sumSquares(const float* a, int64_t n) { return reduce<true>(a, n); }

}  // namespace herd
