// A whole Llama decode step (one token, batch 1, KV cache) in one call: for every layer RMSNorm → Q/K/V
// → RoPE → append K and V to the cache → attention over the cache → o projection and residual →
// RMSNorm → gate/up → SwiGLU → down projection and residual; then the final norm and the head's logits.
// Reference: Llama.forward / Llama.block in src/model/llama.ts, which does the same op by op. Each step
// here calls the very kernel that op calls (herd.h lists them), in the same order, so the two paths give
// the same logits bit for bit (test/model/fusedDecode.test.ts).
//
// Why: a decode step streams ~2.5 GB of weights for a 1B model, and everything between two weight
// GEMVs leaves the memory system idle. Op by op, each of a layer's ~15 operations is a JS call with its
// own tensor allocation (zero-filled), shape checks and an N-API crossing; here the same work runs back
// to back on the pool, with the activations in a few reused scratch buffers (bench/RESULTS.md "Model").
#include "herd.h"

namespace herd {
namespace {

enum Format { Bf16 = 0, Q8_0 = 1, Q4_0 = 2 };

// A weight matrix of the step: n rows of k, in bf16 (Uint16Array) or quantised blocks (Uint8Array).
struct Weight {
  const void* data;
  int64_t n;
  const uint16_t* packed = nullptr;  // bf16 only: the interleaved layout (gemv.cc packBf16), when made
};

struct Step {
  int64_t layers, dim, heads, kvHeads, hd, ffn, vocab, pos, len, capacity;
  int format;
  float eps, scale;
  const float* invFreq;
  const float* norm;
  Weight head;
  // Per layer: attnNorm, ffnNorm (f32 [dim]); wq, wk, wv, wo, w1 (gate), w3 (up), w2 (down).
  std::vector<const float*> attnNorm, ffnNorm;
  std::vector<Weight> wq, wk, wv, wo, w1, w3, w2;
  std::vector<float*> kCache, vCache;  // [capacity, kvHeads·hd] each
};

// c_q = a·w_qᵀ for the products of one GEMV call (bf16: one parallel pass over all of them, as
// matmulBf16Many; quantised: one matmulQuant each, as the op path's one linear per weight).
void linears(const Step& S, const float* a, int64_t k, std::initializer_list<std::pair<Weight, float*>> ps) {
  if (S.format == Bf16) {
    Bf16Product prods[4];
    int n = 0;
    for (const auto& [w, c] : ps) prods[n++] = {static_cast<const uint16_t*>(w.data), c, w.n, w.packed};
    gemvBf16(a, 1, k, prods, n);
    return;
  }
  for (const auto& [w, c] : ps)
    matmulQuant(a, static_cast<const uint8_t*>(w.data), c, 1, w.n, k, S.format == Q8_0 ? 0 : 1);
}

void decodeStep(const Step& S, float* x, float* logits) {
  const int64_t D = S.dim, qd = S.heads * S.hd, kvd = S.kvHeads * S.hd, F = S.ffn;
  thread_local std::vector<float> buf;
  float* xn = scratch(buf, 2 * D + 3 * qd + (S.heads + 16) + 3 * kvd + 3 * F);
  float *tmp = xn + D, *q = tmp + D, *qr = q + qd, *att = qr + qd, *lse = att + qd;
  float *k = lse + S.heads + 16, *kr = k + kvd, *v = kr + kvd, *g = v + kvd, *u = g + F, *h = u + F;
  float rstd[1];
  const int32_t pos = (int32_t)S.pos;
  for (int64_t l = 0; l < S.layers; l++) {
    rmsNorm(x, S.attnNorm[l], xn, rstd, 1, D, S.eps);
    linears(S, xn, D, {{S.wq[l], q}, {S.wk[l], k}, {S.wv[l], v}});
    rope(q, qr, &pos, S.invFreq, 1, S.heads, S.hd, false);
    rope(k, kr, &pos, S.invFreq, 1, S.kvHeads, S.hd, false);
    std::memcpy(S.kCache[l] + S.len * kvd, kr, kvd * sizeof(float));
    std::memcpy(S.vCache[l] + S.len * kvd, v, kvd * sizeof(float));
    decodeAttention(qr, S.kCache[l], S.vCache[l], att, lse, S.len + 1, S.heads, S.kvHeads, S.hd, S.scale);
    linears(S, att, qd, {{S.wo[l], tmp}});
    for (int64_t i = 0; i < D; i++) x[i] = x[i] + tmp[i];
    rmsNorm(x, S.ffnNorm[l], xn, rstd, 1, D, S.eps);
    linears(S, xn, D, {{S.w1[l], g}, {S.w3[l], u}});
    swiglu(g, u, h, F);
    linears(S, h, F, {{S.w2[l], tmp}});
    for (int64_t i = 0; i < D; i++) x[i] = x[i] + tmp[i];
  }
  rmsNorm(x, S.norm, xn, rstd, 1, D, S.eps);
  linears(S, xn, D, {{S.head, logits}});
}

// ------------------------------------------------------------------------------------------------
// N-API glue
// ------------------------------------------------------------------------------------------------

// Bytes of one row of k weights in the format.
int64_t rowBytes(int format, int64_t k) {
  const int64_t blocks = (k + 31) / 32;
  return format == Bf16 ? 2 * k : format == Q8_0 ? 34 * blocks : 18 * blocks;
}

// llamaDecode(x, logits, layerArrays, kCaches, vCaches, norm, head, invFreq, sizes, eps, scale, packed?)
//   layerArrays: per layer [attnNorm, wq, wk, wv, wo, ffnNorm, w1, w3, w2], flat;
//   packed (bf16 only): per layer [wq, wk, wv, wo, w1, w3, w2], flat, then the head: each the matrix's
//   interleaved copy (gemv.cc packBf16) or null;
//   sizes: [layers, dim, heads, kvHeads, headDim, ffn, vocab, position, cached, capacity, format]
//   (format 0 = bf16 Uint16Array weights, 1 = q8_0, 2 = q4_0 Uint8Array blocks).
// x [dim] is the token's embedding on entry and the last hidden state on return; logits [vocab].
napi_value LlamaDecode(napi_env env, napi_callback_info info) {
  Args A(env, info);
  Step S{};
  int64_t sz[11] = {};
  uint32_t count = 0;
  if (napi_get_array_length(env, A.v[8], &count) != napi_ok || count != 11)
    A.fail("herd native: llamaDecode sizes must be an array of 11 numbers");
  for (uint32_t i = 0; i < 11 && !A.failed; i++) {
    napi_value e;
    double d = -1;
    napi_get_element(env, A.v[8], i, &e);
    if (napi_get_value_double(env, e, &d) != napi_ok || !(d >= 0)) A.fail("herd native: llamaDecode sizes must be ≥ 0");
    sz[i] = (int64_t)d;
  }
  if (A.failed) return undef(env);
  S.layers = sz[0], S.dim = sz[1], S.heads = sz[2], S.kvHeads = sz[3], S.hd = sz[4], S.ffn = sz[5];
  S.vocab = sz[6], S.pos = sz[7], S.len = sz[8], S.capacity = sz[9], S.format = (int)sz[10];
  S.eps = (float)A.num(9);
  S.scale = (float)A.num(10);
  if (S.format > Q4_0) return A.fail("herd native: llamaDecode format must be 0, 1 or 2"), undef(env);
  if (S.kvHeads == 0 || S.heads % S.kvHeads != 0 || S.hd % 2 != 0)
    return A.fail("herd native: llamaDecode heads must be a multiple of kvHeads, headDim even"), undef(env);
  if (S.len >= S.capacity) return A.fail("herd native: llamaDecode KV cache is full (reserve first)"), undef(env);
  const int64_t D = S.dim, qd = S.heads * S.hd, kvd = S.kvHeads * S.hd;
  float* x = A.f32(0, D);
  float* logits = A.f32(1, S.vocab);
  S.norm = A.f32(5, D);
  S.invFreq = A.f32(7, S.hd / 2);
  const napi_typedarray_type wt = S.format == Bf16 ? napi_uint16_array : napi_uint8_array;
  const int64_t per = S.format == Bf16 ? 2 : 1;  // bytes per element of the weights' typed array
  auto weight = [&](size_t i, int64_t n, int64_t k) {
    return Weight{A.arr(i, wt, n * rowBytes(S.format, k) / per), n};
  };
  S.head = weight(6, S.vocab, D);
  // The per-layer arrays go through the same checks, one element at a time.
  uint32_t nl = 0, nk = 0, nv = 0;
  if (!A.failed && (napi_get_array_length(env, A.v[2], &nl) != napi_ok || nl != 9 * S.layers ||
                    napi_get_array_length(env, A.v[3], &nk) != napi_ok || nk != S.layers ||
                    napi_get_array_length(env, A.v[4], &nv) != napi_ok || nv != S.layers))
    A.fail("herd native: llamaDecode takes 9 arrays per layer and one K and one V cache per layer");
  Args one = A;
  for (int64_t l = 0; l < S.layers && !A.failed; l++) {
    napi_value e[11];
    for (int i = 0; i < 9; i++) napi_get_element(env, A.v[2], (uint32_t)(9 * l + i), &e[i]);
    napi_get_element(env, A.v[3], (uint32_t)l, &e[9]);
    napi_get_element(env, A.v[4], (uint32_t)l, &e[10]);
    for (int i = 0; i < 11; i++) one.v[i] = e[i];
    S.attnNorm.push_back(one.f32(0, D));
    S.wq.push_back(Weight{one.arr(1, wt, qd * rowBytes(S.format, D) / per), qd});
    S.wk.push_back(Weight{one.arr(2, wt, kvd * rowBytes(S.format, D) / per), kvd});
    S.wv.push_back(Weight{one.arr(3, wt, kvd * rowBytes(S.format, D) / per), kvd});
    S.wo.push_back(Weight{one.arr(4, wt, D * rowBytes(S.format, qd) / per), D});
    S.ffnNorm.push_back(one.f32(5, D));
    S.w1.push_back(Weight{one.arr(6, wt, S.ffn * rowBytes(S.format, D) / per), S.ffn});
    S.w3.push_back(Weight{one.arr(7, wt, S.ffn * rowBytes(S.format, D) / per), S.ffn});
    S.w2.push_back(Weight{one.arr(8, wt, D * rowBytes(S.format, S.ffn) / per), D});
    S.kCache.push_back(one.f32(9, S.capacity * kvd));
    S.vCache.push_back(one.f32(10, S.capacity * kvd));
    A.failed = one.failed;
  }
  // Packed copies, checked as matmulBf16's are (packedArg).
  uint32_t np = 0;
  const bool hasPacked = A.n > 11 && !A.failed && napi_get_array_length(env, A.v[11], &np) == napi_ok;
  if (hasPacked && S.format == Bf16 && np == 7 * S.layers + 1) {
    auto pack = [&](uint32_t i, Weight& w, int64_t k) {
      napi_value e;
      napi_get_element(env, A.v[11], i, &e);
      w.packed = packedArg(A, e, w.n, k);
    };
    for (int64_t l = 0; l < S.layers && !A.failed; l++) {
      const uint32_t o = (uint32_t)(7 * l);
      pack(o, S.wq[l], D), pack(o + 1, S.wk[l], D), pack(o + 2, S.wv[l], D), pack(o + 3, S.wo[l], qd);
      pack(o + 4, S.w1[l], D), pack(o + 5, S.w3[l], D), pack(o + 6, S.w2[l], S.ffn);
    }
    pack((uint32_t)(7 * S.layers), S.head, D);
  } else if (hasPacked && np > 0) {
    A.fail("herd native: llamaDecode packed takes 7 per layer and one for the head, bf16 only");
  }
  if (A.failed) return undef(env);
  decodeStep(S, x, logits);
  return undef(env);
}

}  // namespace

void registerDecode(napi_env env, napi_value exports) {
  static const NamedFn fns[] = {{"llamaDecode", LlamaDecode}};
  registerFns(env, exports, fns, sizeof(fns) / sizeof(fns[0]));
}

}  // namespace herd
