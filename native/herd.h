// Shared by the native backend's source files (native/*.cc): the persistent thread pool and
// parallelFor, the ISA chosen at load by CPUID, N-API argument checking, and each file's registration
// function, which ModuleInit in herd.cc calls. Every kernel file keeps its kernels in an anonymous
// namespace inside `herd` and exposes only its register* function.
#pragma once
#include <node_api.h>

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
// N-API helpers
// ------------------------------------------------------------------------------------------------

struct Args {
  napi_env env;
  napi_value v[16];
  size_t n = 16;
  bool failed = false;
  Args(napi_env e, napi_callback_info info) : env(e) { napi_get_cb_info(e, info, &n, v, nullptr, nullptr); }
  void fail(const char* msg) {
    if (!failed) napi_throw_type_error(env, nullptr, msg);
    failed = true;
  }
  // A typed array of the given type with at least `need` elements (null allowed when `nullable`).
  void* arr(size_t i, napi_typedarray_type want, int64_t need, bool nullable = false) {
    return failed ? nullptr : arrOf(v[i], want, need, nullable);
  }
  void* arrOf(napi_value x, napi_typedarray_type want, int64_t need, bool nullable = false) {
    if (failed) return nullptr;
    napi_valuetype t;
    napi_typeof(env, x, &t);
    if (nullable && (t == napi_null || t == napi_undefined)) return nullptr;
    bool is = false;
    napi_is_typedarray(env, x, &is);
    if (!is) return fail("herd native: expected a typed array"), nullptr;
    napi_typedarray_type type;
    size_t len;
    void* data;
    napi_get_typedarray_info(env, x, &type, &len, &data, nullptr, nullptr);
    if (type != want) return fail("herd native: wrong typed array type"), nullptr;
    if (need < 0 || (int64_t)len < need) return fail("herd native: buffer too small for the shape"), nullptr;
    return data;
  }
  // Field `name` of the argument record at i (the backend interface's MatmulArgs, AttentionArgs, …).
  napi_value field(size_t i, const char* name) {
    napi_value out = nullptr;
    if (failed) return nullptr;
    napi_valuetype t;
    napi_typeof(env, v[i], &t);
    bool has = false;
    if (t != napi_object || napi_has_named_property(env, v[i], name, &has) != napi_ok || !has ||
        napi_get_named_property(env, v[i], name, &out) != napi_ok) {
      const std::string m = std::string("herd native: the argument record lacks '") + name + "'";
      napi_throw_type_error(env, nullptr, m.c_str());
      failed = true;
      return nullptr;
    }
    return out;
  }
  double numField(size_t i, const char* name) {
    napi_value f = field(i, name);
    double d = 0;
    if (!failed && napi_get_value_double(env, f, &d) != napi_ok) fail("herd native: expected a number in the record");
    return d;
  }
  int64_t sizeField(size_t i, const char* name) {
    const double d = numField(i, name);
    if (!failed && !(d >= 0 && d == (double)(int64_t)d)) fail("herd native: record sizes must be non-negative integers");
    return failed ? 0 : (int64_t)d;
  }
  bool flagField(size_t i, const char* name) {
    napi_value f = field(i, name);
    bool b = false;
    if (!failed && napi_get_value_bool(env, f, &b) != napi_ok) fail("herd native: expected a boolean in the record");
    return b;
  }
  float* f32(size_t i, int64_t need, bool nullable = false) {
    return static_cast<float*>(arr(i, napi_float32_array, need, nullable));
  }
  double num(size_t i) {
    double d = 0;
    if (!failed && napi_get_value_double(env, v[i], &d) != napi_ok) fail("herd native: expected a number");
    return d;
  }
  int64_t i64(size_t i) {
    double d = num(i);
    if (!(d >= 0)) fail("herd native: expected a non-negative size");
    return (int64_t)d;
  }
  bool flag(size_t i) {
    bool b = false;
    if (!failed && napi_get_value_bool(env, v[i], &b) != napi_ok) fail("herd native: expected a boolean");
    return b;
  }
};

inline napi_value undef(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// Elements a batch of matrices needs: (batch-1)·stride + size, or size when the stride is 0.
inline int64_t span(int64_t batch, int64_t stride, int64_t size) {
  return batch == 0 ? 0 : (batch - 1) * stride + size;
}

struct NamedFn {
  const char* name;
  napi_callback fn;
};

// Set exports[name] = fn for each entry.
inline void registerFns(napi_env env, napi_value exports, const NamedFn* fns, size_t count) {
  for (size_t i = 0; i < count; i++) {
    napi_value v;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, nullptr, &v);
    napi_set_named_property(env, exports, fns[i].name, v);
  }
}

// C (m×n) = A (m×k) · Bᵀ, B n×k in bf16, by the tiled SGEMM (herd.cc; many rows of A: prefill).
void gemmBf16(const float* a, const uint16_t* b, float* c, int64_t m, int64_t n, int64_t k);

// Kernels a replayed graph (graph.cc) runs, each the one the kernel's own N-API function calls (so a
// replay and the op-by-op path agree bit for bit). herd.cc:
void rmsNorm(const float* x, const float* w, float* out, float* rstd, int64_t rows, int64_t dim, float eps);
void swiglu(const float* g, const float* u, float* out, int64_t n);
// rows.cc:
void rope(const float* x, float* out, const int32_t* pos, const float* invFreq, int64_t tokens, int64_t heads,
          int64_t hd, bool inverse);
// attention.cc: flash attention forward without document masks (out and lse written), as attention().
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
// gemv.cc: argument v as a packed copy of an n×k bf16 matrix (null/undefined: none; else checked).
const uint16_t* packedArg(Args& A, napi_value v, int64_t n, int64_t k);
// quant.cc: C (m×n) = A (m×k) · Wᵀ, W in Q8_0 (f = 0) or Q4_0 (f = 1) blocks.
void matmulQuant(const float* a, const uint8_t* w, float* c, int64_t m, int64_t n, int64_t k, int f);

// cpu.cc: this core's data caches in bytes (l2, l3: its share of each), from sysfs, else CPUID, else all 0
// (source "none"); read once.
struct CacheSizes {
  int64_t l1d = 0, l2 = 0, l3 = 0;
  const char* source = "none";
};
CacheSizes cacheSizes();
// herd.cc: the SGEMM's micro-tile (mr×nr, by ISA) and cache blocks (mc, kc, nc), fixed at first use;
// source is "caches" (derived from cacheSizes()), "default" (no sizes known) or "HERD_GEMM_BLOCKING".
struct GemmBlocking {
  int mr, nr, mc, kc, nc;
  const char* source;
};
GemmBlocking gemmBlocking();

// One per source file; herd.cc's ModuleInit calls them all.
void registerCore(napi_env env, napi_value exports);       // herd.cc: GEMM, few-row f32 GEMV, rows, AdamW
void registerGemv(napi_env env, napi_value exports);       // gemv.cc: bf16 GEMV, bandwidth probe
void registerAttention(napi_env env, napi_value exports);  // attention.cc
void registerQuant(napi_env env, napi_value exports);      // quant.cc
void registerMemory(napi_env env, napi_value exports);     // memory.cc: hugepage-backed buffers
void registerGraph(napi_env env, napi_value exports);      // graph.cc: recorded kernel calls, replayed
void registerCpu(napi_env env, napi_value exports);        // cpu.cc: cache sizes, blocking, FMA probe

// memory.cc: `bytes` of zeroed memory, 2 MiB aligned; *huge says whether madvise(MADV_HUGEPAGE) took.
// Null when it could not be mapped. Give it back with freeLarge(p, bytes).
void* allocLarge(size_t bytes, bool* huge);
void freeLarge(void* p, size_t bytes);

}  // namespace herd
