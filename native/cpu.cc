// What the native backend learns about the CPU at load, beyond the ISA (herd.h detectIsa): the data
// cache sizes the SGEMM's blocking is derived from (herd.cc gemmBlocking), and the f32 FMA throughput
// per cycle that src/backends/peak.ts takes as the peak (MFU's denominator).
// - Caches: Linux sysfs (/sys/devices/system/cpu/cpu0/cache/index*/{level,type,size,shared_cpu_list}),
//   else CPUID (leaf 4 on Intel, 0x8000001D on AMD: ways · partitions · line size · sets), else none
//   (size 0: the caller keeps its constants). The L3 figure is this core's share: the size over the
//   number of logical CPUs that share it.
// - FMA throughput: independent chains of vector FMAs (more than latency × pipes on any x86 core), timed
//   against a chain of dependent 32-bit integer multiplies (3 cycles each on every Zen and on Intel since
//   Sandy Bridge), both a few ms on the calling thread, the best of several runs (preemption only makes
//   a run slower). flops/cycle = (flops / s) / (multiplies · 3 / s), so no clock needs to be known; a
//   core that lowers its clock for wide vectors reports fewer flops per cycle of its ordinary clock.
//
// Plain C++ (declared in herd.h), no N-API: the binding that checks the JS arguments and calls these
// kernels is in napi.cc.
#include <chrono>
#include <cstdio>
#include <string>

#include "herd.h"
#if HERD_X86
#include <cpuid.h>
#endif

namespace herd {
namespace {

// The number in a sysfs file such as "32K", "1024K" or "32M", in bytes (0 when unreadable).
int64_t readSize(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return 0;
  long long v = 0;
  char unit = 0;
  const int got = std::fscanf(f, "%lld%c", &v, &unit);
  std::fclose(f);
  if (got < 1 || v <= 0) return 0;
  if (unit == 'K') v <<= 10;
  else if (unit == 'M') v <<= 20;
  else if (unit == 'G') v <<= 30;
  return v;
}

std::string readLine(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return "";
  char buf[256] = {};
  const char* r = std::fgets(buf, sizeof buf, f);
  std::fclose(f);
  std::string s = r ? buf : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Logical CPUs in a list such as "0-1,4,6-7".
int countCpus(const std::string& list) {
  int n = 0;
  size_t i = 0;
  while (i < list.size()) {
    const size_t comma = list.find(',', i);
    const std::string part = list.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    int a = 0, b = 0;
    if (std::sscanf(part.c_str(), "%d-%d", &a, &b) == 2 && b >= a) n += b - a + 1;
    else if (!part.empty()) n += 1;
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  return std::max(1, n);
}

CacheSizes fromSysfs() {
  CacheSizes c;
  for (int i = 0; i < 16; i++) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    const std::string level = readLine(dir + "level"), type = readLine(dir + "type");
    if (level.empty()) break;
    if (type == "Instruction") continue;
    const int64_t size = readSize(dir + "size");
    const std::string shared = readLine(dir + "shared_cpu_list");
    const int64_t share = size / (shared.empty() ? 1 : countCpus(shared));
    if (level == "1") c.l1d = size;
    else if (level == "2") c.l2 = share;
    else if (level == "3") c.l3 = share;
  }
  if (c.l1d > 0 && c.l2 > 0) c.source = "sysfs";
  return c;
}

#if HERD_X86
// CPUID's deterministic cache parameters: `leaf` 4 (Intel) or 0x8000001D (AMD), one subleaf per cache.
CacheSizes fromCpuid() {
  CacheSizes c;
  unsigned a, b, cx, d;
  if (!__get_cpuid(0, &a, &b, &cx, &d)) return c;
  const bool amd = b == 0x68747541;  // "Auth"enticAMD
  unsigned leaf = 4;
  if (amd) {
    if (!__get_cpuid(0x80000000, &a, &b, &cx, &d) || a < 0x8000001D) return c;
    leaf = 0x8000001D;
  } else if (a < 4) {
    return c;
  }
  for (unsigned sub = 0; sub < 16; sub++) {
    __cpuid_count(leaf, sub, a, b, cx, d);
    const unsigned type = a & 31, level = (a >> 5) & 7;
    if (type == 0) break;
    if (type == 2) continue;  // instruction cache
    const int64_t size = int64_t((b >> 22) + 1) * (((b >> 12) & 1023) + 1) * ((b & 4095) + 1) * (int64_t(cx) + 1);
    const int64_t sharing = ((a >> 14) & 4095) + 1;
    if (level == 1) c.l1d = size;
    else if (level == 2) c.l2 = size / sharing;
    else if (level == 3) c.l3 = size / sharing;
  }
  if (c.l1d > 0 && c.l2 > 0) c.source = "cpuid";
  return c;
}

// Seconds for `iters` × 8 dependent imuls, and for `iters` × 8 rounds of CH independent FMAs.
double imulChain(int64_t iters) {
  uint32_t x = 3, y = 5;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; i++)
    asm volatile(
        "imul %1, %0\n\timul %1, %0\n\timul %1, %0\n\timul %1, %0\n\t"
        "imul %1, %0\n\timul %1, %0\n\timul %1, %0\n\timul %1, %0"
        : "+r"(x)
        : "r"(y));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

constexpr int CH512 = 16, CH256 = 12;
__attribute__((target("avx512f,fma"))) double fmaChains512(int64_t iters) {
  __m512 c[CH512];
  for (int i = 0; i < CH512; i++) c[i] = _mm512_set1_ps((float)i);
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < iters; it++)
    for (int r = 0; r < 8; r++)
#pragma GCC unroll 16
      for (int i = 0; i < CH512; i++) c[i] = _mm512_fmadd_ps(c[i], a, b);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  __m512 t = c[0];
  for (int i = 1; i < CH512; i++) t = _mm512_add_ps(t, c[i]);
  volatile float sink = _mm512_reduce_add_ps(t);
  (void)sink;
  return s;
}

__attribute__((target("avx2,fma"))) double fmaChains256(int64_t iters) {
  __m256 c[CH256];
  for (int i = 0; i < CH256; i++) c[i] = _mm256_set1_ps((float)i);
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < iters; it++)
    for (int r = 0; r < 8; r++)
#pragma GCC unroll 12
      for (int i = 0; i < CH256; i++) c[i] = _mm256_fmadd_ps(c[i], a, b);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  __m256 t = c[0];
  for (int i = 1; i < CH256; i++) t = _mm256_add_ps(t, c[i]);
  volatile float sink = hsum256(t);
  (void)sink;
  return s;
}
#endif

}  // namespace

// f32 flops per cycle of one core with the `want` ISA's FMAs, measured; 0 where it cannot be.
double measureFmaFlopsPerCycle(Isa want) {
#if HERD_X86
  if (want == Isa::Generic) return 0;
  const bool w512 = want == Isa::Avx512;
  const int64_t iters = 20000;  // ~1-2 ms per run at 3-5 GHz
  double bestImul = 1e30, bestFma = 1e30;
  for (int r = 0; r < 12; r++) {
    bestImul = std::min(bestImul, imulChain(iters * 4));
    bestFma = std::min(bestFma, w512 ? fmaChains512(iters) : fmaChains256(iters));
  }
  const double cycles = double(iters) * 4 * 8 * 3 / bestImul;  // per second
  const double flops = double(iters) * 8 * (w512 ? CH512 * 16 : CH256 * 8) * 2 / bestFma;
  return flops / cycles;
#else
  (void)want;
  return 0;
#endif
}

CacheSizes cacheSizes() {
  static const CacheSizes c = [] {
    CacheSizes s = fromSysfs();
#if HERD_X86
    if (!s.l1d || !s.l2) s = fromCpuid();
#endif
    return s;
  }();
  return c;
}

}  // namespace herd
