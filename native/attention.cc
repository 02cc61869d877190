// Flash attention on the native backend, forward and backward, with GQA, causal masking (KV-cache
// aware: query t sees key s iff s <= t + seqK - seqQ) and document masks. Reference and layouts:
// src/backends/js/attention.ts (q, out [batch, seqQ, heads, hd]; k, v [batch, seqK, kvHeads, hd];
// lse [batch, heads, seqQ]; a query with no visible key gets out 0, lse -Infinity, zero gradient).
//
// Scores are kept key-major: a block Sᵀ [BK keys][BQ queries] = K·Qᵀ, so the online softmax's per-query
// max, shift and sum run down the columns with whole vectors of queries, and K and V rows are read in
// place (no packing when hd % 16 == 0; Q and dO tiles are transposed once per tile). Every product is
// SimdOps::gemm (simd.h; AVX-512, AVX2 or portable by herd::isa).
// - Forward: units (batch item, head, tile of BQ queries) on the pool; key blocks the tile cannot see
//   (above the causal diagonal, or no shared document) are skipped. Fewer than 8 query rows (decode)
//   take flash-decoding instead (decodeRows: chunks of 64 keys for all heads at once, combined after),
//   since a 64-query tile would be mostly padding; it sums in another order, so a decode step agrees
//   with the same row of a full forward to rounding, not bit for bit.
// - Backward (FlashAttention-2): P = exp(scale·Sᵀ - lse) is recomputed; units are (batch item, KV head,
//   chunk of keys), each owning its keys' dK and dV (summed over the group's query heads in scratch),
//   so no two threads write the same element. dQ sums over chunks: with one chunk per (b, g) it is
//   written in place, else each chunk writes its own copy and the copies are added in chunk order
//   afterwards (results never depend on scheduling; the number of chunks follows the thread count).
//
// Plain C++ (declared in herd.h), no N-API: the binding that checks the JS arguments and calls these
// kernels is in napi.cc.
#include "herd.h"
#include "simd.h"

namespace herd {
namespace {

constexpr int BQ = 64;  // queries per tile
constexpr int BK = 64;  // keys per block

inline int64_t up16(int64_t x) { return (x + 15) & ~int64_t(15); }

// Smallest and largest of ids[0, n).
void idRange(const int32_t* ids, int64_t n, int32_t& lo, int32_t& hi) {
  lo = INT32_MAX;
  hi = INT32_MIN;
  for (int64_t i = 0; i < n; i++) lo = std::min(lo, ids[i]), hi = std::max(hi, ids[i]);
}

// Rows [0, rows) × cols of src (rows `stride` apart) into dst [cols][ld] (transposed), lanes past rows zero.
void transposeTile(const float* src, int64_t stride, int rows, int64_t cols, float* dst, int64_t ld) {
  for (int64_t d = 0; d < cols; d++) {
    float* o = dst + d * ld;
    for (int r = 0; r < rows; r++) o[r] = src[r * stride + d];
    for (int64_t r = rows; r < ld; r++) o[r] = 0.f;
  }
}

// B operand of rows [0, rows) × hd at src: in place when hd % 16 == 0, else copied into buf [rows][h16]
// zero-padded. Returns the rows and sets ld.
const float* rowsOperand(const float* src, int64_t stride, int rows, int64_t hd, float* buf, int64_t& ld) {
  if (hd % 16 == 0) {
    ld = stride;
    return src;
  }
  const int64_t h16 = up16(hd);
  for (int r = 0; r < rows; r++) {
    std::memcpy(buf + r * h16, src + r * stride, hd * sizeof(float));
    std::fill(buf + r * h16 + hd, buf + (r + 1) * h16, 0.f);
  }
  ld = h16;
  return buf;
}

// Per-thread scratch, grown as needed.
thread_local std::vector<float> tlsF;
thread_local std::vector<int32_t> tlsI;

// How document ids constrain a key block [s0, s0+nb) of batch item b against a query tile whose ids span
// [qLo, qHi]: no ids, one shared document (no per-element check), a mix (check each pair), or no
// document in common (skip the block).
enum class Docs { None, Uniform, Mixed, Disjoint };
Docs blockDocs(const AttnP& P, int32_t qLo, int32_t qHi, int64_t b, int64_t s0, int64_t nb) {
  if (!P.kDoc) return Docs::None;
  int32_t kLo, kHi;
  idRange(P.kDoc + b * P.seqK + s0, nb, kLo, kHi);
  if (qHi < kLo || qLo > kHi) return Docs::Disjoint;
  if (qLo == qHi && kLo == kHi) return Docs::Uniform;  // then qLo == kLo: every pair matches
  return Docs::Mixed;
}

// ------------------------------------------------------------------------------------------------
// Forward
// ------------------------------------------------------------------------------------------------

void forwardTile(const AttnP& P, const SimdOps& K, int64_t b, int64_t h, int64_t t0) {
  const int64_t hd = P.hd, h16 = up16(hd), g = h / P.group(), qs = P.qStride(), ks = P.kStride();
  const int M = (int)std::min<int64_t>(BQ, P.seqQ - t0);
  const int m16 = (int)up16(M);
  const int64_t sMax = P.keyLimit(t0 + M);
  // Scratch: Qᵀ [hd][m16], S [BK][m16], acc [M][h16], V rows [BK][h16], 6 vectors of m16.
  float* base = scratch(tlsF, hd * m16 + BK * m16 + (int64_t)BQ * h16 + BK * h16 + 6 * 64);
  float *qt = base, *s = qt + hd * m16, *acc = s + BK * m16, *vbuf = acc + BQ * h16, *rowMax = vbuf + BK * h16;
  float *rowSum = rowMax + 64, *bmax = rowSum + 64, *colSum = bmax + 64, *shift = colSum + 64, *alpha = shift + 64;
  if ((int64_t)tlsI.size() < BQ) tlsI.resize(BQ);
  int32_t* qd = tlsI.data();

  const float* qTile = P.q + (b * P.seqQ + t0) * qs + h * hd;
  transposeTile(qTile, qs, M, hd, qt, m16);
  std::fill(acc, acc + M * h16, 0.f);
  std::fill(rowMax, rowMax + m16, -INFINITY);
  std::fill(rowSum, rowSum + m16, 0.f);
  int32_t qLo = 0, qHi = 0;
  if (P.qDoc) {
    std::memcpy(qd, P.qDoc + b * P.seqQ + t0, M * sizeof(int32_t));
    idRange(qd, M, qLo, qHi);
  }
  const float* kvBase = P.k + b * P.seqK * ks + g * hd;
  const float* vBase = P.v + b * P.seqK * ks + g * hd;
  for (int64_t s0 = 0; s0 < sMax; s0 += BK) {
    const int nb = (int)std::min<int64_t>(BK, sMax - s0);
    const Docs docs = blockDocs(P, qLo, qHi, b, s0, nb);
    if (docs == Docs::Disjoint) continue;
    // Sᵀ = K·Qᵀ, then scale and mask; bmax = per-query max over the block.
    K.gemm(nb, m16, (int)hd, kvBase + s0 * ks, ks, 1, qt, m16, s, m16, false);
    std::fill(bmax, bmax + m16, -INFINITY);
    const bool mixed = docs == Docs::Mixed;
    K.maskScores(s, nb, M, m16, m16, P.scale, P.causal, s0 - P.offset() - t0, mixed ? qd : nullptr,
                 mixed ? P.kDoc + b * P.seqK + s0 : nullptr, bmax);
    // Online softmax: new max, the factor for what was accumulated under the old one, this block's shift.
    bool rescale = false;
    for (int i = 0; i < m16; i++) {
      const float old = rowMax[i], mx = std::max(old, bmax[i]);
      shift[i] = mx == -INFINITY ? 0.f : mx;  // a query with nothing visible yet: exp(-inf - 0) = 0
      alpha[i] = old == mx ? 1.f : std::exp(old - mx);
      rescale |= alpha[i] != 1.f;
      rowMax[i] = mx;
    }
    std::fill(colSum, colSum + m16, 0.f);
    K.expScores(s, nb, m16, m16, shift, colSum);
    for (int i = 0; i < M; i++) {
      rowSum[i] = rowSum[i] * alpha[i] + colSum[i];
      if (rescale && alpha[i] != 1.f)
        for (int64_t d = 0; d < hd; d++) acc[i * h16 + d] *= alpha[i];
    }
    // acc += P·V, P(i, j) = Sᵀ[j][i].
    int64_t ldv;
    const float* vr = rowsOperand(vBase + s0 * ks, ks, nb, hd, vbuf, ldv);
    K.gemm(M, (int)h16, nb, s, 1, m16, vr, ldv, acc, h16, true);
  }
  for (int i = 0; i < M; i++) {
    const int64_t t = t0 + i;
    float* o = P.o + (b * P.seqQ + t) * qs + h * hd;
    float* l = P.lseOut + (b * P.heads + h) * P.seqQ + t;
    if (rowSum[i] == 0.f) {
      std::fill(o, o + hd, 0.f);
      *l = -INFINITY;
      continue;
    }
    const float inv = 1.f / rowSum[i];
    for (int64_t d = 0; d < hd; d++) o[d] = acc[i * h16 + d] * inv;
    *l = (float)((double)rowMax[i] + std::log((double)rowSum[i]));
  }
}

// Few query rows (decode): flash-decoding. The visible keys of a query row are cut into chunks of KC
// (a fixed size, so results do not depend on the thread count); a chunk is one unit of work for every
// head: its K rows, then its V rows, are first read front to back (a cache row holds all KV heads, so the
// chunk is one contiguous block, and a sequential read is what the memory system serves fastest; a KV
// head's slice of each row, read head by head, was a strided, latency-bound walk), then each GQA
// group's scores and P·V run from cache (SimdOps groupScores / groupMix: up to 4 heads' sums in
// registers per K or V row). Each chunk leaves every head's un-normalised P·V, its max score and
// Σ exp(score − max); decodeCombine rescales the chunks to the overall max and adds them in chunk order.
// The readable form is the js reference: a softmax over all visible keys, then P·V.
constexpr int64_t KC = 64;

// A real read of every cache line of [p, p + n) (loads, not prefetch hints, so none is dropped), into 8
// independent sums so the loads are not serialised behind one chain of adds (measured: bench/RESULTS.md "Kernel design notes").
float touch(const float* p, int64_t n) {
  float s[8] = {};
  int64_t i = 0;
  for (; i + 128 <= n; i += 128)
    for (int j = 0; j < 8; j++) s[j] += p[i + 16 * j];
  for (; i < n; i += 16) s[0] += p[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// Keys [s0, s0 + n) of query row (b, t), every head: acc [heads][hd] = Σ exp(score − mx)·v, mx[h] the
// chunk's max score, sum[h] = Σ exp(score − mx) (a head that sees no key here: mx −inf, sum 0, acc 0).
void decodeChunk(const AttnP& P, const SimdOps& K, int64_t b, int64_t t, int64_t s0, int64_t n, float* acc,
                 float* mx, double* sum) {
  const int64_t hd = P.hd, G = P.group(), ks = P.kStride();
  float* sc = scratch(tlsF, P.heads * KC);
  const float* q = P.q + (b * P.seqQ + t) * P.qStride();
  const float* kb = P.k + (b * P.seqK + s0) * ks;
  const float* vb = P.v + (b * P.seqK + s0) * ks;
  volatile float sink = touch(kb, n * ks);
  for (int64_t g = 0; g < P.kvHeads; g++) K.groupScores(q + g * G * hd, (int)G, hd, kb + g * hd, ks, n, sc + g * G * KC, KC);
  sink = touch(vb, n * ks);
  (void)sink;
  const int32_t qDoc = P.qDoc ? P.qDoc[b * P.seqQ + t] : 0;
  const int32_t* kDoc = P.kDoc ? P.kDoc + b * P.seqK + s0 : nullptr;
  for (int64_t h = 0; h < P.heads; h++) {
    float* r = sc + h * KC;
    for (int64_t i = 0; i < n; i++) r[i] = !kDoc || kDoc[i] == qDoc ? P.scale * r[i] : -INFINITY;
    mx[h] = K.max(r, n);
    if (mx[h] == -INFINITY) {
      std::fill(r, r + n, 0.f);
      sum[h] = 0;
      continue;
    }
    sum[h] = K.expSum(r, n, mx[h]);
    K.expScale(r, r, n, mx[h], 1.f);
  }
  std::fill(acc, acc + P.heads * hd, 0.f);
  for (int64_t g = 0; g < P.kvHeads; g++) K.groupMix(acc + g * G * hd, (int)G, hd, sc + g * G * KC, KC, vb + g * hd, ks, n);
}

// Query row (b, t) from its `chunks` chunks' results (laid out as decodeChunk wrote them, one after another).
void decodeCombine(const AttnP& P, int64_t b, int64_t t, int64_t chunks, const float* acc, const float* mx,
                   const double* sum) {
  const int64_t hd = P.hd, H = P.heads;
  for (int64_t h = 0; h < H; h++) {
    float* o = P.o + (b * P.seqQ + t) * P.qStride() + h * hd;
    float* l = P.lseOut + (b * H + h) * P.seqQ + t;
    float m = -INFINITY;
    for (int64_t c = 0; c < chunks; c++) m = std::max(m, mx[c * H + h]);
    std::fill(o, o + hd, 0.f);
    if (m == -INFINITY) {  // no visible key: out 0, lse −inf
      *l = -INFINITY;
      continue;
    }
    double total = 0;
    for (int64_t c = 0; c < chunks; c++) {
      if (mx[c * H + h] == -INFINITY) continue;
      const double f = std::exp((double)mx[c * H + h] - m);
      total += f * sum[c * H + h];
      const float ff = (float)f;
      const float* a = acc + (c * H + h) * hd;
      for (int64_t d = 0; d < hd; d++) o[d] += ff * a[d];
    }
    const float inv = (float)(1.0 / total);
    for (int64_t d = 0; d < hd; d++) o[d] *= inv;
    *l = (float)((double)m + std::log(total));
  }
}

void decodeRows(const AttnP& P, const SimdOps& K) {
  const int64_t rows = P.batch * P.seqQ, H = P.heads, hd = P.hd;
  // Chunks of each row (a row sees keys [0, keyLimit(t + 1))), numbered across rows.
  thread_local std::vector<int64_t> firstBuf;  // (the workers read it through `first`, not by name)
  firstBuf.assign(rows + 1, 0);
  int64_t* first = firstBuf.data();
  for (int64_t r = 0; r < rows; r++) first[r + 1] = first[r] + (P.keyLimit(r % P.seqQ + 1) + KC - 1) / KC;
  const int64_t units = first[rows];
  thread_local std::vector<float> accBuf, mxBuf;
  thread_local std::vector<double> sumBuf;
  float* acc = scratch(accBuf, units * H * hd);
  float* mx = scratch(mxBuf, units * H);
  if ((int64_t)sumBuf.size() < units * H) sumBuf.resize(units * H);
  double* sum = sumBuf.data();
  parallelFor(units, 1, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; u++) {
      const int64_t r = std::upper_bound(first, first + rows + 1, u) - first - 1;
      const int64_t s0 = (u - first[r]) * KC, n = std::min(KC, P.keyLimit(r % P.seqQ + 1) - s0);
      decodeChunk(P, K, r / P.seqQ, r % P.seqQ, s0, n, acc + u * H * hd, mx + u * H, sum + u * H);
    }
  });
  for (int64_t r = 0; r < rows; r++)
    decodeCombine(P, r / P.seqQ, r % P.seqQ, first[r + 1] - first[r], acc + first[r] * H * hd, mx + first[r] * H,
                  sum + first[r] * H);
}

void flashForward(const AttnP& P) {
  const SimdOps& K = simdOps();
  if (P.seqQ < 8) return decodeRows(P, K);
  const int64_t tiles = (P.seqQ + BQ - 1) / BQ, units = P.batch * P.heads * tiles;
  parallelFor(units, 1, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; u++) forwardTile(P, K, u / (P.heads * tiles), (u / tiles) % P.heads, (u % tiles) * BQ);
  });
}

// ------------------------------------------------------------------------------------------------
// Backward
// ------------------------------------------------------------------------------------------------

// dK, dV of keys [k0, k1) of (b, g), and those keys' part of dQ (into dqOut, laid out like dq).
void backwardUnit(const AttnP& P, const SimdOps& K, int64_t b, int64_t g, int64_t k0, int64_t k1, float* dqOut) {
  const int64_t hd = P.hd, h16 = up16(hd), qs = P.qStride(), ks = P.kStride(), len = k1 - k0;
  // Scratch: dK, dV [len][h16]; Qᵀ, dOᵀ [hd][64]; Q, dO, dQ [64][h16]; S, dP [BK][64]; K, V rows [BK][h16];
  // D, lse', 2 spare [64].
  float* base = scratch(tlsF, 2 * len * h16 + 2 * hd * 64 + 3 * 64 * h16 + 2 * BK * 64 + 2 * BK * h16 + 4 * 64);
  float *dkAcc = base, *dvAcc = dkAcc + len * h16, *qt = dvAcc + len * h16, *dOt = qt + hd * 64;
  float *qbuf = dOt + hd * 64, *dobuf = qbuf + 64 * h16, *dqAcc = dobuf + 64 * h16, *s = dqAcc + 64 * h16;
  float *dp = s + BK * 64, *kbuf = dp + BK * 64, *vbuf = kbuf + BK * h16, *D = vbuf + BK * h16, *lse = D + 64;
  if ((int64_t)tlsI.size() < BQ) tlsI.resize(BQ);
  int32_t* qd = tlsI.data();
  std::fill(dkAcc, dkAcc + 2 * len * h16, 0.f);
  const float* kBase = P.k + b * P.seqK * ks + g * hd;
  const float* vBase = P.v + b * P.seqK * ks + g * hd;
  for (int64_t h = g * P.group(); h < (g + 1) * P.group(); h++) {
    for (int64_t t0 = 0; t0 < P.seqQ; t0 += BQ) {
      const int M = (int)std::min<int64_t>(BQ, P.seqQ - t0);
      const int m16 = (int)up16(M);
      const int64_t rowOff = (b * P.seqQ + t0) * qs + h * hd;
      const int64_t sEnd = std::min(k1, P.keyLimit(t0 + M));
      std::fill(dqAcc, dqAcc + M * h16, 0.f);
      if (sEnd > k0) {
        transposeTile(P.q + rowOff, qs, M, hd, qt, m16);
        transposeTile(P.dout + rowOff, qs, M, hd, dOt, m16);
        int64_t ldq, lddo;
        const float* qr = rowsOperand(P.q + rowOff, qs, M, hd, qbuf, ldq);
        const float* dor = rowsOperand(P.dout + rowOff, qs, M, hd, dobuf, lddo);
        for (int i = 0; i < m16; i++) {
          if (i >= M) {
            D[i] = 0.f;
            lse[i] = INFINITY;
            continue;
          }
          const float l = P.lse[(b * P.heads + h) * P.seqQ + t0 + i];
          lse[i] = l == -INFINITY ? INFINITY : l;  // no visible key: exp(x - inf) = 0, zero gradient
          D[i] = K.dot(P.dout + rowOff + i * qs, P.out + rowOff + i * qs, hd);
        }
        int32_t qLo = 0, qHi = 0;
        if (P.qDoc) {
          std::memcpy(qd, P.qDoc + b * P.seqQ + t0, M * sizeof(int32_t));
          idRange(qd, M, qLo, qHi);
        }
        for (int64_t s0 = k0; s0 < sEnd; s0 += BK) {
          const int nb = (int)std::min<int64_t>(BK, sEnd - s0);
          const Docs docs = blockDocs(P, qLo, qHi, b, s0, nb);
          if (docs == Docs::Disjoint) continue;
          const bool mixed = docs == Docs::Mixed;
          // Pᵀ = exp(scale·K·Qᵀ - lse), masked; dPᵀ = V·dOᵀ; dSᵀ = scale·Pᵀ∘(dPᵀ - D).
          K.gemm(nb, m16, (int)hd, kBase + s0 * ks, ks, 1, qt, m16, s, m16, false);
          K.maskScores(s, nb, M, m16, m16, P.scale, P.causal, s0 - P.offset() - t0, mixed ? qd : nullptr,
                       mixed ? P.kDoc + b * P.seqK + s0 : nullptr, nullptr);
          K.expScores(s, nb, m16, m16, lse, nullptr);
          K.gemm(nb, m16, (int)hd, vBase + s0 * ks, ks, 1, dOt, m16, dp, m16, false);
          K.dScores(s, dp, nb, m16, m16, D, P.scale);
          // dV += Pᵀ·dO, dK += dSᵀ·Q (keys × hd), dQ += dS·K (queries × hd).
          float* dvRows = dvAcc + (s0 - k0) * h16;
          float* dkRows = dkAcc + (s0 - k0) * h16;
          K.gemm(nb, (int)h16, M, s, m16, 1, dor, lddo, dvRows, h16, true);
          K.gemm(nb, (int)h16, M, dp, m16, 1, qr, ldq, dkRows, h16, true);
          int64_t ldk;
          const float* kr = rowsOperand(kBase + s0 * ks, ks, nb, hd, kbuf, ldk);
          K.gemm(M, (int)h16, nb, dp, 1, m16, kr, ldk, dqAcc, h16, true);
        }
      }
      for (int i = 0; i < M; i++) std::memcpy(dqOut + rowOff + i * qs, dqAcc + i * h16, hd * sizeof(float));
    }
  }
  for (int64_t s = k0; s < k1; s++) {
    const int64_t o = (b * P.seqK + s) * ks + g * hd;
    std::memcpy(P.dk + o, dkAcc + (s - k0) * h16, hd * sizeof(float));
    std::memcpy(P.dv + o, dvAcc + (s - k0) * h16, hd * sizeof(float));
  }
}

void flashBackward(const AttnP& P) {
  const SimdOps& K = simdOps();
  const int64_t pairs = P.batch * P.kvHeads, blocks = (P.seqK + BK - 1) / BK;
  const int64_t qn = P.batch * P.seqQ * P.heads * P.hd;
  if (P.seqK == 0) {
    std::fill(P.dq, P.dq + qn, 0.f);
    return;
  }
  // Enough units for the pool to balance (causal chunks differ in work): chunks of whole key blocks.
  const int64_t want = (4 * pool.threads() + pairs - 1) / pairs;
  const int64_t chunks = pool.threads() == 1 ? 1 : std::max<int64_t>(1, std::min(blocks, want));
  const int64_t chunkKeys = ((blocks + chunks - 1) / chunks) * BK;
  const int64_t nChunks = (P.seqK + chunkKeys - 1) / chunkKeys;
  std::vector<float> partial(nChunks > 1 ? nChunks * qn : 0);
  parallelFor(pairs * nChunks, 1, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; u++) {
      const int64_t pair = u / nChunks, c = u % nChunks;
      const int64_t k0 = c * chunkKeys, k1 = std::min(P.seqK, k0 + chunkKeys);
      backwardUnit(P, K, pair / P.kvHeads, pair % P.kvHeads, k0, k1, nChunks > 1 ? partial.data() + c * qn : P.dq);
    }
  });
  if (nChunks > 1)
    parallelFor(qn, 16384, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) {
        float s = 0.f;
        for (int64_t c = 0; c < nChunks; c++) s += partial[c * qn + i];
        P.dq[i] = s;
      }
    });
}

}  // namespace

void attention(const AttnP& P) {
  if (P.batch * P.seqQ * P.heads * P.hd > 0) flashForward(P);
}

// No queries: no gradient reaches k or v (dq is empty).
void attentionBackward(const AttnP& P) {
  const int64_t qn = P.batch * P.seqQ * P.heads * P.hd, kn = P.batch * P.seqK * P.kvHeads * P.hd;
  if (qn == 0) {
    std::fill(P.dk, P.dk + kn, 0.f);
    std::fill(P.dv, P.dv + kn, 0.f);
  } else {
    flashBackward(P);
  }
}

void attentionNoDocs(const float* q, const float* k, const float* v, float* out, float* lse, int64_t batch,
                     int64_t seqQ, int64_t seqK, int64_t heads, int64_t kvHeads, int64_t hd, float scale,
                     bool causal) {
  AttnP P{};
  P.q = q, P.k = k, P.v = v, P.o = out, P.lseOut = lse;
  P.batch = batch, P.seqQ = seqQ, P.seqK = seqK, P.heads = heads, P.kvHeads = kvHeads, P.hd = hd;
  P.scale = scale;
  P.causal = causal;
  if (batch * seqQ * heads * hd > 0) flashForward(P);
}

}  // namespace herd
