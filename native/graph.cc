// A recorded sequence of kernel calls (src/tensor/graph.ts), compiled once and replayed in one call
// from JS each run (graphCreate/graphRun/graphFree: the graph's binding file, beside napi.cc): the
// kernels run back to back on the pool with no JS between them (the host gap is where
// a decode step's weight stream stands still). It knows no model: a node is one kernel of the backend
// interface with its buffers and numbers, and a run first patches the numbers that depend on the run's
// parameters (value = params[p]·mul + add, e.g. a KV cache's length). Each node calls the very function
// that kernel's own binding (napi.cc) calls, so a replay gives the op-by-op results bit for bit.
//
// Safety: the buffers are the caller's typed arrays, which src/backends/native/graph.ts keeps alive for
// the graph's life; every run re-checks every node's sizes against its buffers' lengths (a parameter may
// have moved an offset or a length), and a node that does not fit stops the run with an error.
#include <cstring>
#include <string>

#include "herd.h"
#include "simd.h"

namespace herd {
namespace {

// Node kinds; the numbering is shared with src/backends/native/graph.ts (GRAPH_KINDS).
enum Kind {
  kMatmulBf16 = 1,  // nums: m, k, count, n_q…; bufs: a, then (b, c, packed) per product
  kMatmulQuant = 2,  // nums: m, n, k, format (herd.h Format); bufs: a, blocks, c
  kRmsNorm = 3,      // nums: rows, dim, eps; bufs: x, w, out, rstd
  kRope = 4,         // nums: tokens, heads, headDim, inverse; bufs: x, out, positions, invFreq
  kSwiglu = 5,       // nums: n; bufs: gate, up, out
  kAdd = 6,          // nums: n; bufs: a, b, out
  kMul = 7,          // nums: n; bufs: a, b, out
  kScale = 8,        // nums: s, n; bufs: a, out
  kCopy = 9,         // nums: srcOffset, dstOffset, n; bufs: src, dst
  kAttention = 10,   // nums: batch, seqQ, seqK, heads, kvHeads, headDim, scale, causal; bufs: q, k, v, out, lse
};

// Why a node does not fit, or "" when it does.
struct Check {
  std::string err;
  const Buf* b;
  const double* x;
  const Node& n;
  // Buffer j of the node as T*, with at least `need` elements of type t (nullable: may be absent).
  template <typename T>
  T* buf(int j, BufType t, int64_t need, bool nullable = false) {
    const Buf& B = b[j];
    if (!err.empty()) return nullptr;
    if (B.p == nullptr && nullable) return nullptr;
    if (B.p == nullptr || B.type != t) return err = "wrong or missing buffer", nullptr;
    if (need < 0 || B.len < need) return err = "buffer too small for the shape", nullptr;
    return static_cast<T*>(B.p);
  }
  int64_t size(int j) {
    const double d = x[j];
    if (!(d >= 0 && d == (double)(int64_t)d)) err = "sizes must be non-negative integers";
    return err.empty() ? (int64_t)d : 0;
  }
};

// Run node n (checking it first); "" or why it was refused.
std::string runNode(const Graph& G, const Node& n) {
  Check C{"", G.bufs.data() + n.b0, G.nums.data() + n.n0, n};
  const auto f32 = BufType::F32;
  switch (n.kind) {
    case kMatmulBf16: {
      const int64_t m = C.size(0), k = C.size(1), count = C.size(2);
      if (count < 1 || count > 16 || n.nn != 3 + count || n.nb != 1 + 3 * count) return "malformed matmulBf16";
      const float* a = C.buf<float>(0, f32, m * k);
      Bf16Product ps[16];
      for (int64_t q = 0; q < count; q++) {
        const int64_t rows = C.size(3 + (int)q);
        ps[q].b = C.buf<const uint16_t>(1 + 3 * (int)q, BufType::U16, rows * k);
        ps[q].c = C.buf<float>(2 + 3 * (int)q, f32, m * rows);
        ps[q].n = rows;
        ps[q].packed = C.buf<const uint16_t>(3 + 3 * (int)q, BufType::U16, rows * k, true);
      }
      if (C.err.empty()) linearBf16(a, m, k, ps, (int)count);
      break;
    }
    case kMatmulQuant: {
      const int64_t m = C.size(0), rows = C.size(1), k = C.size(2), f = C.size(3);
      if (f < Q8_0 || f > Q6_K) return "matmulQuant format must be 0..4";
      if (isKQuant((int)f) && k % QK_K != 0) return "matmulQuant: a K-quant k must be a multiple of 256";
      const int64_t rowBytes = quantRowBytes((int)f, k);
      const float* a = C.buf<float>(0, f32, m * k);
      const uint8_t* w = C.buf<const uint8_t>(1, BufType::U8, rows * rowBytes);
      float* c = C.buf<float>(2, f32, m * rows);
      if (C.err.empty()) matmulQuant(a, w, c, m, rows, k, (int)f);
      break;
    }
    case kRmsNorm: {
      const int64_t rows = C.size(0), dim = C.size(1);
      const float* x = C.buf<float>(0, f32, rows * dim);
      const float* w = C.buf<float>(1, f32, dim);
      float* out = C.buf<float>(2, f32, rows * dim);
      float* rstd = C.buf<float>(3, f32, rows);
      if (C.err.empty()) rmsNorm(x, w, out, rstd, rows, dim, (float)C.x[2]);
      break;
    }
    case kRope: {
      const int64_t tokens = C.size(0), heads = C.size(1), hd = C.size(2);
      if (hd % 2 != 0) return "rope: headDim must be even";
      const float* x = C.buf<float>(0, f32, tokens * heads * hd);
      float* out = C.buf<float>(1, f32, tokens * heads * hd);
      const int32_t* pos = C.buf<const int32_t>(2, BufType::I32, tokens);
      const float* inv = C.buf<float>(3, f32, hd / 2);
      if (C.err.empty()) rope(x, out, pos, inv, tokens, heads, hd, C.x[3] != 0);
      break;
    }
    case kSwiglu: {
      const int64_t len = C.size(0);
      const float* g = C.buf<float>(0, f32, len);
      const float* u = C.buf<float>(1, f32, len);
      float* out = C.buf<float>(2, f32, len);
      if (C.err.empty()) swiglu(g, u, out, len);
      break;
    }
    case kAdd:
    case kMul: {
      const int64_t len = C.size(0);
      const float* a = C.buf<float>(0, f32, len);
      const float* b = C.buf<float>(1, f32, len);
      float* out = C.buf<float>(2, f32, len);
      if (!C.err.empty()) break;
      const bool mul = n.kind == kMul;
      parallelFor(len, streamGrain(len, pool.threads(), 65536), [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; i++) out[i] = mul ? a[i] * b[i] : a[i] + b[i];
      });
      break;
    }
    case kScale: {
      const float s = (float)C.x[0];
      const int64_t len = C.size(1);
      const float* a = C.buf<float>(0, f32, len);
      float* out = C.buf<float>(1, f32, len);
      if (!C.err.empty()) break;
      parallelFor(len, streamGrain(len, pool.threads(), 65536), [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; i++) out[i] = a[i] * s;
      });
      break;
    }
    case kCopy: {
      const int64_t so = C.size(0), dof = C.size(1), len = C.size(2);
      const float* src = C.buf<float>(0, f32, so + len);
      float* dst = C.buf<float>(1, f32, dof + len);
      if (C.err.empty() && len > 0) std::memmove(dst + dof, src + so, len * sizeof(float));
      break;
    }
    case kAttention: {
      const int64_t batch = C.size(0), seqQ = C.size(1), seqK = C.size(2), heads = C.size(3);
      const int64_t kvHeads = C.size(4), hd = C.size(5);
      if (kvHeads == 0 || heads % kvHeads != 0) return "attention: heads must be a multiple of kvHeads";
      const int64_t qn = batch * seqQ * heads * hd, kn = batch * seqK * kvHeads * hd;
      const float* q = C.buf<float>(0, f32, qn);
      const float* k = C.buf<float>(1, f32, kn);
      const float* v = C.buf<float>(2, f32, kn);
      float* out = C.buf<float>(3, f32, qn);
      float* lse = C.buf<float>(4, f32, batch * heads * seqQ);
      if (C.err.empty())
        attentionNoDocs(q, k, v, out, lse, batch, seqQ, seqK, heads, kvHeads, hd, (float)C.x[6], C.x[7] != 0);
      break;
    }
    default:
      return "unknown node kind";
  }
  return C.err;
}

}  // namespace

std::string runGraph(const Graph& G) {
  for (size_t i = 0; i < G.nodes.size(); i++) {
    const std::string err = runNode(G, G.nodes[i]);
    if (!err.empty()) return "herd native: graph node " + std::to_string(i) + ": " + err;
  }
  return "";
}

}  // namespace herd
