// The native addon's N-API bindings (node_api.h), apart from its kernels as tiktoken keeps py.rs apart
// from lib.rs: one napi_value function per kernel of the backend interface, each reading and checking
// its JS arguments (Args, napi.h: typed arrays of the right type and length, numbers, the argument
// records MatmulArgs, AttentionArgs and AdamWArgs by field name, ids and targets in range, the quant
// format's name), throwing the errors the JS side sees, then calling the plain C++ kernel declared in
// herd.h with the same arguments the kernel always got. ModuleInit (at the end) picks the ISA and
// registers every function. The graph's bindings (graphCreate/graphRun/graphFree) are napi_graph.cc.
//
// Constraints: no arithmetic of a kernel here (a kernel that needs a special case, such as an empty
// shape, handles it itself, so the graph replay and this path agree); the function names, argument
// order, record fields and error messages are the addon's API (src/backends/native/*.ts, and tests
// match the messages), so they change only together with it. Sections follow the kernel files.
#include <cstring>
#include <string>

#include "napi.h"

namespace herd {
namespace {

// ------------------------------------------------------------------------------------------------
// herd.cc: GEMM, RMSNorm, SwiGLU, softmax, AdamW, the pool
// ------------------------------------------------------------------------------------------------

// matmul(a, b, c, {batch, m, n, k, transA, transB, strideA, strideB, strideC, accumulate})
napi_value Matmul(napi_env env, napi_callback_info info) {
  Args A(env, info);
  MatmulP P;
  P.batch = A.sizeField(3, "batch"), P.m = A.sizeField(3, "m"), P.n = A.sizeField(3, "n"), P.k = A.sizeField(3, "k");
  P.ta = A.flagField(3, "transA"), P.tb = A.flagField(3, "transB");
  P.sa = A.sizeField(3, "strideA"), P.sb = A.sizeField(3, "strideB"), P.sc = A.sizeField(3, "strideC");
  P.acc = A.flagField(3, "accumulate");
  P.a = A.f32(0, span(P.batch, P.sa, P.m * P.k));
  P.b = A.f32(1, span(P.batch, P.sb, P.k * P.n));
  P.c = A.f32(2, span(P.batch, P.sc, P.m * P.n));
  if (!A.failed && P.batch > 0) matmul(P);
  return undef(env);
}

napi_value RmsNorm(napi_env env, napi_callback_info info) {
  Args A(env, info);
  int64_t rows = A.i64(4), dim = A.i64(5);
  double eps = A.num(6);
  const float* x = A.f32(0, rows * dim);
  const float* w = A.f32(1, dim);
  float* out = A.f32(2, rows * dim);
  float* rstd = A.f32(3, rows);
  if (!A.failed) rmsNorm(x, w, out, rstd, rows, dim, (float)eps);
  return undef(env);
}

napi_value RmsNormBackward(napi_env env, napi_callback_info info) {
  Args A(env, info);
  int64_t rows = A.i64(6), dim = A.i64(7);
  const float* dy = A.f32(0, rows * dim);
  const float* x = A.f32(1, rows * dim);
  const float* w = A.f32(2, dim);
  const float* rstd = A.f32(3, rows);
  float* dx = A.f32(4, rows * dim);
  float* dw = A.f32(5, dim, true);
  if (!A.failed) rmsNormBackward(dy, x, w, rstd, dx, dw, rows, dim);
  return undef(env);
}

napi_value Swiglu(napi_env env, napi_callback_info info) {
  Args A(env, info);
  int64_t n = A.i64(3);
  const float* g = A.f32(0, n);
  const float* u = A.f32(1, n);
  float* out = A.f32(2, n);
  if (!A.failed) swiglu(g, u, out, n);
  return undef(env);
}

napi_value SwigluBackward(napi_env env, napi_callback_info info) {
  Args A(env, info);
  int64_t n = A.i64(5);
  const float* g = A.f32(0, n);
  const float* u = A.f32(1, n);
  const float* d = A.f32(2, n);
  float* dg = A.f32(3, n);
  float* du = A.f32(4, n);
  if (!A.failed) swigluBackward(g, u, d, dg, du, n);
  return undef(env);
}

napi_value Softmax(napi_env env, napi_callback_info info) {
  Args A(env, info);
  int64_t rows = A.i64(2), cols = A.i64(3);
  const float* x = A.f32(0, rows * cols);
  float* out = A.f32(1, rows * cols);
  if (!A.failed) softmax(x, out, rows, cols);
  return undef(env);
}

// adamw(param, grad, m, v, n, {lr, beta1, beta2, eps, weightDecay, step})
napi_value AdamWFn(napi_env env, napi_callback_info info) {
  Args A(env, info);
  int64_t n = A.i64(4);
  AdamW p{A.numField(5, "lr"),  A.numField(5, "beta1"),       A.numField(5, "beta2"),
          A.numField(5, "eps"), A.numField(5, "weightDecay"), A.numField(5, "step")};
  float* param = A.f32(0, n);
  const float* grad = A.f32(1, n);
  float* m = A.f32(2, n);
  float* v = A.f32(3, n);
  if (!A.failed) adamw(param, grad, m, v, n, p);
  return undef(env);
}

// init(threads): (re)start the pool; returns the ISA name the kernels use.
napi_value Init(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t t = A.i64(0);
  if (A.failed) return undef(env);
  startPool(t);
  napi_value s;
  napi_create_string_utf8(env, isaName(isa), NAPI_AUTO_LENGTH, &s);
  return s;
}

napi_value Threads(napi_env env, napi_callback_info) {
  napi_value r;
  napi_create_int32(env, pool.threads(), &r);
  return r;
}

// ------------------------------------------------------------------------------------------------
// gemv.cc: bf16 GEMV, packing, bandwidth probe
// ------------------------------------------------------------------------------------------------

// The packed copy (packBf16's layout) of an n×k matrix given as argument v, or null when v is null or
// undefined (absent); anything else must be a 64-byte aligned Uint16Array of n·k with k a multiple of
// 32 (whole lines).
const uint16_t* packedArg(Args& A, napi_value v, int64_t n, int64_t k) {
  napi_valuetype t = napi_undefined;
  if (v) napi_typeof(A.env, v, &t);
  if (A.failed || t == napi_null || t == napi_undefined) return nullptr;
  Args one = A;
  one.v[0] = v;
  const auto* p = static_cast<const uint16_t*>(one.arr(0, napi_uint16_array, n * k));
  A.failed = one.failed;
  if (p && (k % 32 != 0 || reinterpret_cast<uintptr_t>(p) % 64 != 0))
    return A.fail("herd native: a packed bf16 matrix needs k a multiple of 32 and 64-byte alignment"), nullptr;
  return p;
}

// matmulBf16(a, bBits, c, m, n, k, packed?)
napi_value MatmulBf16(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t m = A.i64(3), n = A.i64(4), k = A.i64(5);
  const float* a = A.f32(0, m * k);
  const uint16_t* b = static_cast<const uint16_t*>(A.arr(1, napi_uint16_array, n * k));
  float* c = A.f32(2, m * n);
  const uint16_t* packed = packedArg(A, A.n > 6 ? A.v[6] : nullptr, n, k);
  if (A.failed || m == 0 || n == 0) return undef(env);
  const Bf16Product p{b, c, n, packed};
  linearBf16(a, m, k, &p, 1);
  return undef(env);
}

// packBf16(bBits, out, n, k): out = b in the interleaved layout (k a multiple of 32).
napi_value PackBf16(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t n = A.i64(2), k = A.i64(3);
  const auto* b = static_cast<const uint16_t*>(A.arr(0, napi_uint16_array, n * k));
  if (!A.failed && k % 32 != 0) A.fail("herd native: packBf16 needs k a multiple of 32");
  auto* out = static_cast<uint16_t*>(A.arr(1, napi_uint16_array, n * k));
  if (!A.failed) packBf16(b, out, n, k);
  return undef(env);
}

// matmulBf16Many(a, [bBits...], [c...], m, [n...], k, [packed or null...]?): c_q = a·b_qᵀ for each q
// (at most 16).
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
  Bf16Product ps[16];
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
    napi_value pq = nullptr;
    if (A.n > 6 && !A.failed) napi_get_element(env, A.v[6], q, &pq);
    ps[q].packed = packedArg(A, pq, n, k);
  }
  if (A.failed || m == 0 || count == 0) return undef(env);
  linearBf16(a, m, k, ps, (int)count);
  return undef(env);
}

// memoryBandwidth(bytes, reps, huge?) → { read, copy } in bytes/s on the pool's threads.
napi_value MemoryBandwidth(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t bytes = A.i64(0), reps = A.i64(1);
  const bool huge = A.n > 2 && A.flag(2);
  if (A.failed) return undef(env);
  const Bandwidth bw = memoryBandwidth(bytes, (int)std::max<int64_t>(1, reps), huge);
  napi_value out, r, c;
  napi_create_object(env, &out);
  napi_create_double(env, bw.read, &r);
  napi_create_double(env, bw.copy, &c);
  napi_set_named_property(env, out, "read", r);
  napi_set_named_property(env, out, "copy", c);
  return out;
}

// ------------------------------------------------------------------------------------------------
// rows.cc: RoPE, embedding, cross-entropy, elementwise, sums
// ------------------------------------------------------------------------------------------------

const int32_t* i32(Args& A, size_t i, int64_t need) {
  return static_cast<const int32_t*>(A.arr(i, napi_int32_array, need));
}

// rope(x, out, positions, invFreq, tokens, heads, headDim, inverse)
napi_value Rope(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t tokens = A.i64(4), heads = A.i64(5), hd = A.i64(6);
  const bool inverse = A.flag(7);
  const float* x = A.f32(0, tokens * heads * hd);
  float* out = A.f32(1, tokens * heads * hd);
  const int32_t* pos = i32(A, 2, tokens);
  const float* invFreq = A.f32(3, hd / 2);
  if (!A.failed && hd % 2 != 0) A.fail("rope: headDim must be even");
  if (!A.failed) rope(x, out, pos, invFreq, tokens, heads, hd, inverse);
  return undef(env);
}

// Throws unless every id of rows [0, rows) indexes a row of a table of `len` floats.
bool checkIds(Args& A, const int32_t* ids, int64_t rows, int64_t dim, size_t len) {
  const int64_t vocab = dim == 0 ? INT64_MAX : (int64_t)len / dim;
  for (int64_t r = 0; r < rows; r++)
    if (ids[r] < 0 || ids[r] >= vocab) {
      const std::string m = "embedding: id " + std::to_string(ids[r]) + " of row " + std::to_string(r) +
                            " is outside the table [0, " + std::to_string(vocab) + ")";
      napi_throw_range_error(A.env, nullptr, m.c_str());
      return false;
    }
  return true;
}

size_t lengthOf(napi_env env, napi_value v) {
  size_t len = 0;
  napi_get_typedarray_info(env, v, nullptr, &len, nullptr, nullptr, nullptr);
  return len;
}

// embedding(table, ids, out, rows, dim)
napi_value Embedding(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t rows = A.i64(3), dim = A.i64(4);
  const float* table = A.f32(0, 0);
  const int32_t* ids = i32(A, 1, rows);
  float* out = A.f32(2, rows * dim);
  if (!A.failed && checkIds(A, ids, rows, dim, lengthOf(env, A.v[0]))) embedding(table, ids, out, rows, dim);
  return undef(env);
}

// embeddingBackward(dout, ids, dtable, rows, dim)
napi_value EmbeddingBackward(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t rows = A.i64(3), dim = A.i64(4);
  const float* dout = A.f32(0, rows * dim);
  const int32_t* ids = i32(A, 1, rows);
  float* dtable = A.f32(2, 0);
  if (!A.failed && checkIds(A, ids, rows, dim, lengthOf(env, A.v[2]))) embeddingBackward(dout, ids, dtable, rows, dim);
  return undef(env);
}

// The reference's error for a target outside [0, vocab) that is not the ignore index.
bool checkTargets(Args& A, const int32_t* t, int64_t rows, int64_t vocab, int32_t ignore) {
  for (int64_t r = 0; r < rows; r++)
    if (t[r] != ignore && !(t[r] >= 0 && t[r] < vocab)) {
      const std::string m = "crossEntropy: target " + std::to_string(t[r]) + " of row " + std::to_string(r) +
                            " is out of range [0, " + std::to_string(vocab) + ") and is not the ignore index " +
                            std::to_string(ignore);
      napi_throw_error(A.env, nullptr, m.c_str());
      return false;
    }
  return true;
}

int32_t ignoreIndex(Args& A, size_t i) {
  const double d = A.num(i);
  return d >= INT32_MIN && d <= INT32_MAX ? (int32_t)d : INT32_MIN;
}

// crossEntropy(logits, targets, mask, losses, lse, rows, vocab, ignoreIndex)
napi_value CrossEntropy(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t rows = A.i64(5), vocab = A.i64(6);
  const int32_t ignore = ignoreIndex(A, 7);
  const float* logits = A.f32(0, rows * vocab);
  const int32_t* targets = i32(A, 1, rows);
  const float* mask = A.f32(2, rows, true);
  float* losses = A.f32(3, rows);
  float* lse = A.f32(4, rows);
  if (!A.failed && checkTargets(A, targets, rows, vocab, ignore))
    crossEntropy(logits, targets, mask, losses, lse, rows, vocab, ignore);
  return undef(env);
}

// crossEntropyBackward(logits, targets, mask, lse, scale, dlogits, rows, vocab, ignoreIndex)
napi_value CrossEntropyBackward(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t rows = A.i64(6), vocab = A.i64(7);
  const int32_t ignore = ignoreIndex(A, 8);
  const float scale = (float)A.num(4);
  const float* logits = A.f32(0, rows * vocab);
  const int32_t* targets = i32(A, 1, rows);
  const float* mask = A.f32(2, rows, true);
  const float* lse = A.f32(3, rows);
  float* d = A.f32(5, rows * vocab);
  if (!A.failed && checkTargets(A, targets, rows, vocab, ignore))
    crossEntropyBackward(logits, targets, mask, lse, scale, d, rows, vocab, ignore);
  return undef(env);
}

// add(a, b, out, n) and mul(a, b, out, n)
template <bool Mul>
napi_value Binary(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t n = A.i64(3);
  const float* a = A.f32(0, n);
  const float* b = A.f32(1, n);
  float* out = A.f32(2, n);
  if (!A.failed) (Mul ? mul : add)(a, b, out, n);
  return undef(env);
}

// scale(a, s, out, n): out = a·s
napi_value Scale(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t n = A.i64(3);
  const float s = (float)A.num(1);
  const float* a = A.f32(0, n);
  float* out = A.f32(2, n);
  if (!A.failed) scale(a, s, out, n);
  return undef(env);
}

// axpy(acc, a, s, n): acc += a·s
napi_value Axpy(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t n = A.i64(3);
  const float s = (float)A.num(2);
  float* acc = A.f32(0, n);
  const float* a = A.f32(1, n);
  if (!A.failed) axpy(acc, a, s, n);
  return undef(env);
}

// sum(a, n) and sumSquares(a, n)
template <bool Squares>
napi_value Sum(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t n = A.i64(1);
  const float* a = A.f32(0, n);
  napi_value r;
  napi_create_double(env, A.failed ? 0 : Squares ? sumSquares(a, n) : sum(a, n), &r);
  return r;
}

// ------------------------------------------------------------------------------------------------
// attention.cc
// ------------------------------------------------------------------------------------------------

// The argument record at i (AttentionArgs: batch, seqQ, seqK, heads, kvHeads, headDim, scale, causal,
// qDocIds and kDocIds, Int32Arrays or null).
bool attnShape(Args& A, size_t i, AttnP& P) {
  P.batch = A.sizeField(i, "batch"), P.seqQ = A.sizeField(i, "seqQ"), P.seqK = A.sizeField(i, "seqK");
  P.heads = A.sizeField(i, "heads"), P.kvHeads = A.sizeField(i, "kvHeads"), P.hd = A.sizeField(i, "headDim");
  P.scale = (float)A.numField(i, "scale");
  P.causal = A.flagField(i, "causal");
  if (A.failed) return false;
  P.qDoc = static_cast<const int32_t*>(A.arrOf(A.field(i, "qDocIds"), napi_int32_array, P.batch * P.seqQ, true));
  P.kDoc = static_cast<const int32_t*>(A.arrOf(A.field(i, "kDocIds"), napi_int32_array, P.batch * P.seqK, true));
  if (A.failed) return false;
  if ((P.qDoc == nullptr) != (P.kDoc == nullptr)) return A.fail("attention: qDocIds and kDocIds must be given together"), false;
  if (P.kvHeads == 0 || P.heads % P.kvHeads != 0) return A.fail("attention: heads must be a multiple of kvHeads"), false;
  return true;
}

// attention(q, k, v, out, lse, args)
napi_value Attention(napi_env env, napi_callback_info info) {
  Args A(env, info);
  AttnP P{};
  if (!attnShape(A, 5, P)) return undef(env);
  const int64_t qn = P.batch * P.seqQ * P.heads * P.hd, kn = P.batch * P.seqK * P.kvHeads * P.hd;
  P.q = A.f32(0, qn), P.k = A.f32(1, kn), P.v = A.f32(2, kn);
  P.o = A.f32(3, qn), P.lseOut = A.f32(4, P.batch * P.heads * P.seqQ);
  if (!A.failed) attention(P);
  return undef(env);
}

// attentionBackward(q, k, v, out, dout, lse, dq, dk, dv, args)
napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  Args A(env, info);
  AttnP P{};
  if (!attnShape(A, 9, P)) return undef(env);
  const int64_t qn = P.batch * P.seqQ * P.heads * P.hd, kn = P.batch * P.seqK * P.kvHeads * P.hd;
  P.q = A.f32(0, qn), P.k = A.f32(1, kn), P.v = A.f32(2, kn), P.out = A.f32(3, qn), P.dout = A.f32(4, qn);
  P.lse = A.f32(5, P.batch * P.heads * P.seqQ);
  P.dq = A.f32(6, qn), P.dk = A.f32(7, kn), P.dv = A.f32(8, kn);
  if (!A.failed) attentionBackward(P);
  return undef(env);
}

// ------------------------------------------------------------------------------------------------
// quant.cc
// ------------------------------------------------------------------------------------------------

// matmulQuant(a, blocks, c, m, n, k, format, exact?): format "q8_0", "q4_0", "q4_k", "q5_k" or "q6_k"
// (the K-quants need k a multiple of 256); `exact` true keeps a Q8_0/Q4_0 product's A in f32.
napi_value MatmulQuant(napi_env env, napi_callback_info info) {
  Args A(env, info);
  int64_t m = A.i64(3), n = A.i64(4), k = A.i64(5), f = -1;
  static const char* const names[] = {"q8_0", "q4_0", "q4_k", "q5_k", "q6_k"};
  char name[8] = {0};
  size_t len = 0;
  if (!A.failed && napi_get_value_string_utf8(env, A.v[6], name, sizeof name, &len) == napi_ok)
    for (int i = 0; i < 5; i++)
      if (std::strcmp(name, names[i]) == 0) f = i;
  if (!A.failed && f < 0) A.fail("herd native: matmulQuant format must be 'q8_0', 'q4_0', 'q4_k', 'q5_k' or 'q6_k'");
  if (!A.failed && isKQuant((int)f) && k % QK_K != 0) A.fail("herd native: matmulQuant: a K-quant k must be a multiple of 256");
  const float* a = A.f32(0, m * k);
  const uint8_t* w = static_cast<const uint8_t*>(A.arr(1, napi_uint8_array, n * quantRowBytes((int)f, k)));
  float* c = A.f32(2, m * n);
  napi_valuetype t = napi_undefined;
  if (!A.failed && A.n > 7) napi_typeof(env, A.v[7], &t);
  const bool exact = t != napi_undefined && A.flag(7);
  if (!A.failed) matmulQuant(a, w, c, m, n, k, (int)f, exact);
  return undef(env);
}

// quantizeQ8K(x, rows, k, qs: Int8Array, d: Float32Array, bsums: Int16Array): the K-quant kernels'
// activation quantiser (k a multiple of 256), for tests.
napi_value QuantizeQ8K(napi_env env, napi_callback_info info) {
  Args A(env, info);
  int64_t rows = A.i64(1), k = A.i64(2);
  if (!A.failed && (k % QK_K != 0 || rows < 0)) A.fail("herd native: quantizeQ8K: k must be a multiple of 256");
  const float* x = A.f32(0, rows * k);
  int8_t* qs = static_cast<int8_t*>(A.arr(3, napi_int8_array, rows * k));
  float* d = A.f32(4, rows * k / QK_K);
  int16_t* bs = static_cast<int16_t*>(A.arr(5, napi_int16_array, rows * k / 16));
  if (!A.failed) quantizeQ8K(x, rows, k, qs, d, bs);
  return undef(env);
}

// quantizeQ8_0(x, rows, k, qs: Int8Array, d: Float32Array): q8dot.cc's activation quantiser (rows
// zero-padded to whole blocks of 32), for tests.
napi_value QuantizeQ8_0(napi_env env, napi_callback_info info) {
  Args A(env, info);
  int64_t rows = A.i64(1), k = A.i64(2);
  const int64_t nb = (k + QK - 1) / QK;
  const float* x = A.f32(0, rows * k);
  int8_t* qs = static_cast<int8_t*>(A.arr(3, napi_int8_array, rows * nb * QK));
  float* d = A.f32(4, rows * nb);
  if (!A.failed) quantizeQ8_0(x, rows, k, qs, d);
  return undef(env);
}

// setInt8Dot(on): whether matmulQuant takes q8dot.cc's int8 path for Q8_0/Q4_0 (HERD_NATIVE_INT8_DOT);
// returns whether it will (false on a CPU without AVX2).
napi_value SetInt8Dot(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const bool on = A.flag(0);
  if (!A.failed) int8Dot = on;
  napi_value out;
  napi_get_boolean(env, int8Dot && isa != Isa::Generic, &out);
  return out;
}

// ------------------------------------------------------------------------------------------------
// memory.cc: hugepage-backed ArrayBuffers
// ------------------------------------------------------------------------------------------------

void finalizeLarge(napi_env env, void* data, void* hint) {
  const size_t bytes = reinterpret_cast<size_t>(hint);
  freeLarge(data, bytes);
  int64_t now;
  napi_adjust_external_memory(env, -(int64_t)bytes, &now);
}

// allocBuffer(bytes) → an ArrayBuffer of `bytes` zeroed bytes (2 MiB aligned, hugepage-advised), or null
// when the memory could not be mapped (the caller then allocates as usual).
napi_value AllocBuffer(napi_env env, napi_callback_info info) {
  Args A(env, info);
  const int64_t bytes = A.i64(0);
  if (A.failed) return undef(env);
  napi_value out;
  bool huge;
  void* p = bytes > 0 ? allocLarge((size_t)bytes, &huge) : nullptr;
  if (!p) {
    napi_get_null(env, &out);
    return out;
  }
  if (napi_create_external_arraybuffer(env, p, (size_t)bytes, finalizeLarge, reinterpret_cast<void*>(bytes),
                                       &out) != napi_ok) {
    freeLarge(p, (size_t)bytes);
    napi_get_null(env, &out);
    return out;
  }
  int64_t now;
  napi_adjust_external_memory(env, bytes, &now);
  return out;
}

// ------------------------------------------------------------------------------------------------
// cpu.cc: cache sizes, GEMM blocking, FMA probe
// ------------------------------------------------------------------------------------------------

napi_value setNum(napi_env env, napi_value obj, const char* name, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, obj, name, x);
  return obj;
}

// cpuInfo(): { l1d, l2, l3, cacheSource, mr, nr, mc, kc, nc, blockingSource } (bytes; l2 and l3 this
// core's share).
napi_value CpuInfo(napi_env env, napi_callback_info) {
  const CacheSizes c = cacheSizes();
  const GemmBlocking g = gemmBlocking();
  napi_value o;
  napi_create_object(env, &o);
  setNum(env, o, "l1d", (double)c.l1d);
  setNum(env, o, "l2", (double)c.l2);
  setNum(env, o, "l3", (double)c.l3);
  napi_value s;
  napi_create_string_utf8(env, c.source, NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, o, "cacheSource", s);
  setNum(env, o, "mr", g.mr);
  setNum(env, o, "nr", g.nr);
  setNum(env, o, "mc", g.mc);
  setNum(env, o, "kc", g.kc);
  setNum(env, o, "nc", g.nc);
  napi_create_string_utf8(env, g.source, NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, o, "blockingSource", s);
  return o;
}

// fmaFlopsPerCycle(isa): measured f32 flops per cycle with "avx512" or "avx2" FMAs (0: not measurable
// here, or the CPU lacks that ISA).
napi_value FmaFlopsPerCycle(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  napi_get_cb_info(env, info, &argc, &arg, nullptr, nullptr);
  char name[16] = {};
  size_t len = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, arg, name, sizeof name, &len) != napi_ok) name[0] = 0;
  Isa want = Isa::Generic;
  if (!std::strcmp(name, "avx512") && isa == Isa::Avx512) want = Isa::Avx512;
  if (!std::strcmp(name, "avx2") && isa != Isa::Generic) want = Isa::Avx2;
  napi_value r;
  napi_create_double(env, measureFmaFlopsPerCycle(want), &r);
  return r;
}

}  // namespace

void registerKernels(napi_env env, napi_value exports) {
  static const NamedFn fns[] = {
      // herd.cc
      {"init", Init},
      {"threads", Threads},
      {"matmul", Matmul},
      {"rmsNorm", RmsNorm},
      {"rmsNormBackward", RmsNormBackward},
      {"swiglu", Swiglu},
      {"swigluBackward", SwigluBackward},
      {"softmax", Softmax},
      {"adamw", AdamWFn},
      // gemv.cc
      {"matmulBf16", MatmulBf16},
      {"matmulBf16Many", MatmulBf16Many},
      {"packBf16", PackBf16},
      {"memoryBandwidth", MemoryBandwidth},
      // rows.cc
      {"rope", Rope},
      {"embedding", Embedding},
      {"embeddingBackward", EmbeddingBackward},
      {"crossEntropy", CrossEntropy},
      {"crossEntropyBackward", CrossEntropyBackward},
      {"add", Binary<false>},
      {"mul", Binary<true>},
      {"scale", Scale},
      {"axpy", Axpy},
      {"sum", Sum<false>},
      {"sumSquares", Sum<true>},
      // attention.cc
      {"attention", Attention},
      {"attentionBackward", AttentionBackward},
      // quant.cc
      {"matmulQuant", MatmulQuant},
      {"quantizeQ8K", QuantizeQ8K},
      {"quantizeQ8_0", QuantizeQ8_0},
      {"setInt8Dot", SetInt8Dot},
      // memory.cc
      {"allocBuffer", AllocBuffer},
      // cpu.cc
      {"cpuInfo", CpuInfo},
      {"fmaFlopsPerCycle", FmaFlopsPerCycle}};
  registerFns(env, exports, fns, sizeof(fns) / sizeof(fns[0]));
}

}  // namespace herd

namespace {
napi_value ModuleInit(napi_env env, napi_value exports) {
  herd::isa = herd::detectIsa();
  herd::registerKernels(env, exports);
  herd::registerGraph(env, exports);
  return exports;
}
}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, ModuleInit)
