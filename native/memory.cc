// Large buffers for the native backend on transparent hugepages. A decode step streams every bf16
// weight once (2.47 GB for a 1B model); on 4 KiB pages that is ~600,000 TLB misses per step, and in a
// KVM guest each one walks two page tables (guest and host). Memory from allocLarge is mapped 2 MiB
// aligned and advised MADV_HUGEPAGE, so on a kernel whose THP setting is `madvise` (or `always`) it is
// backed by 2 MiB pages: one TLB entry per 2 MiB. Measured on this machine's 1B decode: see
// bench/RESULTS.md "Model". Where mmap or madvise is unavailable the memory is still valid (4 KiB
// pages, or aligned_alloc off Linux).
//
// allocBuffer(bytes) (its binding is napi.cc) hands such memory to JS as an external ArrayBuffer that
// frees it when collected, and tells V8 how much it holds (undone in the finalizer), so the garbage
// collector weighs it as it would a plain ArrayBuffer of the same size. The native backend's alloc()
// uses it for buffers of 2 MiB and more (src/backends/native/index.ts).
#include "herd.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace herd {

namespace {
constexpr size_t HUGE_PAGE = size_t(2) << 20;
size_t roundUp(size_t bytes) { return (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE; }
}  // namespace

void* allocLarge(size_t bytes, bool* huge) {
  *huge = false;
  if (bytes == 0) return nullptr;
  const size_t size = roundUp(bytes);
#if defined(__linux__)
  // Map one huge page more than needed, then unmap the unaligned head and the tail.
  void* m = mmap(nullptr, size + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  const uintptr_t base = reinterpret_cast<uintptr_t>(m);
  const uintptr_t aligned = (base + HUGE_PAGE - 1) & ~uintptr_t(HUGE_PAGE - 1);
  if (aligned > base) munmap(m, aligned - base);
  const size_t tail = base + size + HUGE_PAGE - (aligned + size);
  if (tail) munmap(reinterpret_cast<void*>(aligned + size), tail);
  void* p = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  *huge = madvise(p, size, MADV_HUGEPAGE) == 0;
#endif
  return p;  // fresh anonymous pages read as zero
#else
  void* p = std::aligned_alloc(HUGE_PAGE, size);
  if (p) std::memset(p, 0, size);
  return p;
#endif
}

void freeLarge(void* p, size_t bytes) {
  if (!p) return;
#if defined(__linux__)
  munmap(p, roundUp(bytes));
#else
  std::free(p);
#endif
}

}  // namespace herd
