// Shared by the native backend's source files (native/*.cc): the persistent thread pool and
// parallelFor, the ISA chosen at load by CPUID, and the kernels' plain C++ interface, one section per
// kernel file. Nothing here knows N-API: the kernel files (herd.cc, gemv.cc, attention.cc, rows.cc,
// quant.cc, memory.cc, cpu.cc, graph.cc) never include Node's API header; the binding files (napi.cc and
// the graph's, with napi.h) check the JS arguments and call the functions declared here. Each kernel
// file keeps its helpers in an anonymous namespace inside `herd` and exposes only what is declared here.
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#define HERD_X86 1
#include <immintrin.h>
#else
#define HERD_X86 0
#endif

namespace herd {

// ------------------------------------------------------------------------------------------------
// Thread pool
// ------------------------------------------------------------------------------------------------

using Job = void (*)(void* ctx, int tid, int nthreads);

class Pool {
 public:
  void start(int n) {
    stopAll();
    nthreads_ = std::max(1, n);
    // A worker starts from the generation current now: a job posted before it first runs is still its.
    const uint64_t g = gen_.load(std::memory_order_acquire);
    for (int t = 1; t < nthreads_; t++) workers_.emplace_back([this, t, g] { loop(t, g); });
  }
  int threads() const { return nthreads_; }
  // Run job(ctx, tid, n) with up to n threads (the caller is tid 0) and wait for those that took part.
  // A worker joins only while the job is open; the caller closes it when its own share is done, so a
  // worker the OS has not scheduled yet (a loaded machine) is not waited for: jobs must hand out their
  // work dynamically (parallelFor does), never by tid.
  void run(Job job, void* ctx, int n) {
    n = std::max(1, std::min(n, nthreads_));
    if (n == 1) {
      job(ctx, 0, 1);
      return;
    }
    std::lock_guard<std::mutex> one(runMu_);  // one parallel kernel at a time (Node workers share the pool)
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = job;
      ctx_ = ctx;
      active_ = n;
      done_.store(0, std::memory_order_relaxed);
      const uint64_t g = gen_.load(std::memory_order_relaxed) + 1;
      state_.store(g << 32, std::memory_order_release);
      gen_.store(g, std::memory_order_release);
    }
    cv_.notify_all();
    job(ctx, 0, n);
    const uint64_t s = state_.fetch_or(CLOSED, std::memory_order_acq_rel);
    const int joined = (int)(s & JOINED);
    while (done_.load(std::memory_order_acquire) != joined) {
#if HERD_X86
      _mm_pause();
#endif
    }
  }
  ~Pool() { stopAll(); }

 private:
  void loop(int tid, uint64_t seen) {
    for (;;) {
      // Spin a little (back-to-back kernels of a layer), then sleep.
      int spins = 0;
      while (gen_.load(std::memory_order_acquire) == seen && spins < 20000) {
#if HERD_X86
        _mm_pause();
#endif
        spins++;
      }
      if (gen_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return gen_.load(std::memory_order_acquire) != seen || stop_; });
      }
      if (stop_) return;
      Job job;
      void* ctx;
      int active;
      {
        std::lock_guard<std::mutex> lock(mu_);
        seen = gen_.load(std::memory_order_acquire);
        job = job_;
        ctx = ctx_;
        active = active_;
      }
      if (tid < active && join(seen)) {
        job(ctx, tid, active);
        done_.fetch_add(1, std::memory_order_acq_rel);
      }
    }
  }
  // Take part in job `g` if it is still the current one and open.
  bool join(uint64_t g) {
    uint64_t s = state_.load(std::memory_order_acquire);
    while ((s >> 32) == (g & 0xffffffffu) && !(s & CLOSED))
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) return true;
    return false;
  }
  void stopAll() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    stop_ = false;
  }

  int nthreads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_, runMu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> gen_{0};
  // The current job: generation (high 32 bits), CLOSED, and how many workers joined it (low bits).
  static constexpr uint64_t CLOSED = uint64_t(1) << 31, JOINED = CLOSED - 1;
  std::atomic<uint64_t> state_{0};
  std::atomic<int> done_{0};
  Job job_ = nullptr;
  void* ctx_ = nullptr;
  int active_ = 0;
  bool stop_ = false;
};

inline Pool pool;

// Parallel for over [0, n) in chunks of `grain`, dynamically scheduled.
template <typename F>
void parallelFor(int64_t n, int64_t grain, F&& body) {
  if (n <= 0) return;
  int64_t chunks = (n + grain - 1) / grain;
  int nt = (int)std::min<int64_t>(pool.threads(), chunks);
  if (nt <= 1) {
    body(0, n);
    return;
  }
  struct Ctx {
    F* body;
    int64_t n, grain;
    std::atomic<int64_t> next{0};
  } ctx{&body, n, grain};
  pool.run(
      [](void* p, int, int) {
        Ctx* c = static_cast<Ctx*>(p);
        for (;;) {
          int64_t s = c->next.fetch_add(c->grain);
          if (s >= c->n) return;
          (*c->body)(s, std::min(c->n, s + c->grain));
        }
      },
      &ctx, nt);
}

// The tiling of the weight-only quantised matmuls (quant.cc's f32 path, q8dot.cc's int8 path): W's rows
// in groups of four, taken in chunks of up to 2 MiB of blocks a job (each thread still gets about two:
// each chunk switch restarts the row streams, and small chunks made the 1B decode much slower,
// bench/RESULTS.md "Kernel design notes"), and A's rows four at a time. `dot(i0, mx, rows, out, pf)`
// writes out[i*4 + r] = row i0+i of A · rows[r] for i < mx (rows past n repeat the last one) and
// prefetches pf bytes ahead: the rows `quantPrefetchGroups` groups further on.
constexpr int64_t quantPrefetchGroups = 2;

template <typename Dot>
void quantRowGroups(const uint8_t* w, int64_t rowBytes, float* c, int64_t m, int64_t n, Dot&& dot) {
  const int64_t pf = quantPrefetchGroups * 4 * rowBytes, groups = (n + 3) / 4;
  const int64_t chunkBytes = std::clamp<int64_t>(n * rowBytes / (2 * pool.threads()), 256 << 10, 2 << 20);
  parallelFor(groups, std::max<int64_t>(1, chunkBytes / (4 * rowBytes)), [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; g++) {
      const int64_t j = g * 4, cnt = std::min<int64_t>(4, n - j);
      const uint8_t* rows[4];
      for (int r = 0; r < 4; r++) rows[r] = w + (j + std::min<int64_t>(r, cnt - 1)) * rowBytes;
      float out[16];
      for (int64_t i0 = 0; i0 < m; i0 += 4) {
        const int mx = (int)std::min<int64_t>(4, m - i0);
        dot(i0, mx, rows, out, pf);
        for (int i = 0; i < mx; i++)
          for (int64_t r = 0; r < cnt; r++) c[(i0 + i) * n + j + r] = out[i * 4 + r];
      }
    }
  });
}

// ------------------------------------------------------------------------------------------------
// ISA selection
// ------------------------------------------------------------------------------------------------

#if HERD_X86
// The sum of an AVX2 vector's 8 lanes.
__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
#endif

enum class Isa { Generic, Avx2, Avx512 };

inline Isa detectIsa() {
#if HERD_X86
  const char* force = std::getenv("HERD_NATIVE_ISA");  // testing: generic | avx2 | avx512
  __builtin_cpu_init();
  bool has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (force) {
    if (!std::strcmp(force, "generic")) return Isa::Generic;
    if (!std::strcmp(force, "avx2") && has2) return Isa::Avx2;
  }
  if (has512) return Isa::Avx512;
  if (has2) return Isa::Avx2;
#endif
  return Isa::Generic;
}

inline Isa isa = Isa::Generic;

inline const char* isaName(Isa i) {
  return i == Isa::Avx512 ? "avx512" : i == Isa::Avx2 ? "avx2" : "generic";
}

// A 64-byte aligned scratch area of at least n floats inside v (grown as needed).
inline float* scratch(std::vector<float>& v, size_t n) {
  if (v.size() < n + 16) v.resize(n + 16);
  uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t(63));
}

// ------------------------------------------------------------------------------------------------
// The kernels, by file: plain C++ over raw pointers and sizes. Each kernel's N-API function (the binding
// files) has checked its arguments (types, lengths, ids, formats) before it calls one, and a
// replayed graph (graph.cc) calls the same functions, so a replay and the op-by-op path agree bit for
// bit.
// ------------------------------------------------------------------------------------------------

// herd.cc: the thread pool (re)started with `threads` threads (0: one per hardware thread; at most 256).
void startPool(int64_t threads);

// herd.cc: C (+)= op(A)·op(B) for `batch` matrices (A m×k, B k×n as op() sees them; transA/transB
// read them transposed; strides in elements between batch items; acc adds onto C).
struct MatmulP {
  const float* a;
  const float* b;
  float* c;
  int64_t batch, m, n, k, sa, sb, sc;
  bool ta, tb, acc;
  const uint16_t* bh = nullptr;  // B as bf16 bits instead of `b` (transB, batch 1: gemmBf16)
};
void matmul(const MatmulP& P);
// C (m×n) = A (m×k) · Bᵀ, B n×k in bf16, by the tiled SGEMM (herd.cc; many rows of A: prefill).
void gemmBf16(const float* a, const uint16_t* b, float* c, int64_t m, int64_t n, int64_t k);
// herd.cc: the SGEMM's micro-tile (mr×nr, by ISA) and cache blocks (mc, kc, nc), fixed at first use;
// source is "caches" (derived from cacheSizes()), "default" (no sizes known) or "HERD_GEMM_BLOCKING".
struct GemmBlocking {
  int mr, nr, mc, kc, nc;
  const char* source;
};
GemmBlocking gemmBlocking();

// herd.cc: the row and elementwise kernels of a layer, and AdamW.
void rmsNorm(const float* x, const float* w, float* out, float* rstd, int64_t rows, int64_t dim, float eps);
void rmsNormBackward(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* dw,
                     int64_t rows, int64_t dim);  // dw may be null
void swiglu(const float* g, const float* u, float* out, int64_t n);
void swigluBackward(const float* g, const float* u, const float* dout, float* dg, float* du, int64_t n);
void softmax(const float* x, float* out, int64_t rows, int64_t cols);
struct AdamW {
  double lr, b1, b2, eps, wd, step;
};
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, const AdamW& A);

// rows.cc: RoPE, embedding, cross-entropy (ids and targets already checked in range), elementwise
// kernels and the f64 sums.
void rope(const float* x, float* out, const int32_t* pos, const float* invFreq, int64_t tokens, int64_t heads,
          int64_t hd, bool inverse);
void embedding(const float* table, const int32_t* ids, float* out, int64_t rows, int64_t dim);
void embeddingBackward(const float* dout, const int32_t* ids, float* dtable, int64_t rows, int64_t dim);
// mask may be null; a target equal to `ignore` weighs 0.
void crossEntropy(const float* logits, const int32_t* targets, const float* mask, float* losses, float* lse,
                  int64_t rows, int64_t vocab, int32_t ignore);
void crossEntropyBackward(const float* logits, const int32_t* targets, const float* mask, const float* lse,
                          float scale, float* dlogits, int64_t rows, int64_t vocab, int32_t ignore);
void add(const float* a, const float* b, float* out, int64_t n);
void mul(const float* a, const float* b, float* out, int64_t n);
void scale(const float* a, float s, float* out, int64_t n);  // out = a·s
void axpy(float* acc, const float* a, float s, int64_t n);   // acc += a·s
double sum(const float* a, int64_t n);
double sumSquares(const float* a, int64_t n);

// attention.cc: flash attention, forward (q, k, v → o, lseOut) and backward (q, k, v, out, dout, lse →
// dq, dk, dv). Layouts: q, out [batch, seqQ, heads, hd]; k, v [batch, seqK, kvHeads, hd]; lse [batch,
// heads, seqQ]. heads is a multiple of kvHeads > 0; qDoc and kDoc, document ids per token, are both
// given or both null.
struct AttnP {
  const float *q, *k, *v, *out, *dout, *lse;
  float *o, *lseOut, *dq, *dk, *dv;
  int64_t batch, seqQ, seqK, heads, kvHeads, hd;
  float scale;
  bool causal;
  const int32_t *qDoc, *kDoc;  // both or neither
  int64_t group() const { return heads / kvHeads; }
  int64_t offset() const { return seqK - seqQ; }
  int64_t qStride() const { return heads * hd; }
  int64_t kStride() const { return kvHeads * hd; }
  // Keys [0, sMax) are the only ones queries before t1 may see.
  int64_t keyLimit(int64_t t1) const { return causal ? std::max<int64_t>(0, std::min(seqK, t1 + offset())) : seqK; }
};
void attention(const AttnP& P);
void attentionBackward(const AttnP& P);
// attention.cc: the forward without document masks (out and lse written), as attention().
void attentionNoDocs(const float* q, const float* k, const float* v, float* out, float* lse, int64_t batch,
                     int64_t seqQ, int64_t seqK, int64_t heads, int64_t kvHeads, int64_t hd, float scale,
                     bool causal);

// gemv.cc: c_q = a·b_qᵀ (m ≤ 4 rows of a; b_q n_q×k bf16) for `count` ≤ 16 products in one parallel pass.
// `packed`, when not null, is b in the interleaved layout of packBf16 (gemv.cc), read instead of b by the
// AVX-512 kernel.
struct Bf16Product {
  const uint16_t* b;
  float* c;
  int64_t n;
  const uint16_t* packed = nullptr;
};
void gemvBf16(const float* a, int64_t m, int64_t k, const Bf16Product* ps, int count);
// gemv.cc: the same products for any m, as matmulBf16Many: the GEMV for few rows, else the tiled SGEMM.
void linearBf16(const float* a, int64_t m, int64_t k, const Bf16Product* ps, int count);
// gemv.cc: out = b (n×k bf16, k a multiple of 32) in the interleaved layout the AVX-512 GEMV reads.
void packBf16(const uint16_t* b, uint16_t* out, int64_t n, int64_t k);
// gemv.cc: best-of-`reps` read and copy bandwidth in bytes/s on the pool's threads over `bytes`
// (hugepage-backed with `huge`); {0, 0} when the buffers could not be allocated.
struct Bandwidth {
  double read, copy;  // bytes per second (copy: bytes read + bytes written)
};
Bandwidth memoryBandwidth(int64_t bytes, int reps, bool huge);

// quant.cc: C (m×n) = A (m×k) · Wᵀ, W in Q8_0 (f = 0) or Q4_0 (f = 1) blocks of QK weights, or in the
// K-quants Q4_K (2), Q5_K (3), Q6_K (4), super-blocks of QK_K weights (k a multiple of QK_K), which it
// hands to kquant.cc's matmulKQuant.
constexpr int QK = 32, QK_K = 256;
enum Format { Q8_0 = 0, Q4_0 = 1, Q4_K = 2, Q5_K = 3, Q6_K = 4 };
constexpr bool isKQuant(int f) { return f >= Q4_K && f <= Q6_K; }
constexpr int64_t blockValues(int f) { return isKQuant(f) ? QK_K : QK; }
constexpr int64_t blockBytes(int f) {
  return f == Q8_0 ? 34 : f == Q4_0 ? 18 : f == Q4_K ? 144 : f == Q5_K ? 176 : 210;
}
constexpr int64_t quantRowBytes(int f, int64_t k) { return (k + blockValues(f) - 1) / blockValues(f) * blockBytes(f); }
// `exact`: Q8_0/Q4_0 keep A in f32 even where int8Dot would take q8dot.cc's path.
void matmulQuant(const float* a, const uint8_t* w, float* c, int64_t m, int64_t n, int64_t k, int f,
                 bool exact = false);
// kquant.cc: the same for a K-quant f, with A quantised to Q8_K (below) and integer dot products.
void matmulKQuant(const float* a, const uint8_t* w, float* c, int64_t m, int64_t n, int64_t k, int f);
// kquant.cc: ggml's quantize_row_q8_K_ref on `rows` rows of x (k a multiple of QK_K): per 256 values
// d[b], qs[b·256..], and bsums[b·16..] (the sums of each 16 qs).
void quantizeQ8K(const float* x, int64_t rows, int64_t k, int8_t* qs, float* d, int16_t* bsums);
// q8dot.cc: matmulQuant for Q8_0/Q4_0 with A quantised by quantizeQ8_0 and integer dot products
// (AVX2; quant.cc calls it while int8Dot holds on a CPU that has AVX2).
void matmulQuantQ8(const float* a, const uint8_t* w, float* c, int64_t m, int64_t n, int64_t k, int f);
// q8dot.cc: ggml's quantize_row_q8_0_ref on `rows` rows of x (k values each, zero-padded to whole blocks
// of QK): qs[(i·nb + b)·QK..] and the scale d[i·nb + b] kept in f32 (nb = ceil(k/QK); NaN for a block
// holding a non-finite value).
void quantizeQ8_0(const float* x, int64_t rows, int64_t k, int8_t* qs, float* d);
// Whether matmulQuant takes q8dot.cc's int8 path for Q8_0/Q4_0 (the binding's setInt8Dot, from
// HERD_NATIVE_INT8_DOT; default on).
inline bool int8Dot = true;
// An IEEE half's value (subnormals included).
inline float halfToFloat(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  float f;
  if (exp == 0) {
    f = (float)frac * (1.0f / 16777216.0f);  // subnormal (or zero): frac · 2^-24
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u |= sign;
    std::memcpy(&f, &u, 4);
    return f;
  }
  uint32_t u = sign | (exp == 31 ? 0x7f800000u | (frac << 13) : ((exp + 112) << 23) | (frac << 13));
  std::memcpy(&f, &u, 4);
  return f;
}

// cpu.cc: this core's data caches in bytes (l2, l3: its share of each), from sysfs, else CPUID, else all 0
// (source "none"); read once.
struct CacheSizes {
  int64_t l1d = 0, l2 = 0, l3 = 0;
  const char* source = "none";
};
CacheSizes cacheSizes();
// cpu.cc: f32 flops per cycle of one core with the `want` ISA's FMAs, measured; 0 where it cannot be.
double measureFmaFlopsPerCycle(Isa want);

// memory.cc: `bytes` of zeroed memory, 2 MiB aligned; *huge says whether madvise(MADV_HUGEPAGE) took.
// Null when it could not be mapped. Give it back with freeLarge(p, bytes).
void* allocLarge(size_t bytes, bool* huge);
void freeLarge(void* p, size_t bytes);

// graph.cc: a recorded sequence of kernel calls. Node i has buffers bufs[b0, b0+nb) and numbers
// nums[n0, n0+nn); each Dyn sets nums[num] = params[param]·mul + add before a run.
enum class BufType { Other, F32, U16, I32, U8 };
struct Buf {
  void* p = nullptr;  // null: absent
  int64_t len = 0;    // elements
  BufType type = BufType::F32;
};
struct Node {
  int kind;
  int32_t b0, nb, n0, nn;
};
struct Dyn {
  int32_t num, param;
  double mul, add;
};
struct Graph {
  std::vector<Node> nodes;
  std::vector<Buf> bufs;
  std::vector<double> nums;
  std::vector<Dyn> dyn;
};
// Run every node in order, each checked against its buffers first; "" or why a node was refused
// ("herd native: graph node i: …"; the nodes before it have run).
std::string runGraph(const Graph& G);

}  // namespace herd
