// SimdOps (simd.h), portable: simd_impl.h with V = float, for CPUs without AVX2 (HERD_NATIVE_ISA=generic
// forces it) and non-x86 builds; simdOps() picks the set for herd::isa.
#define SIMD_ISA 0
#define SIMD_NAME simdGeneric
#include "simd_impl.h"
#include "herd.h"

namespace herd {
const SimdOps& simdOps() {
#if HERD_X86
  if (isa == Isa::Avx512) return simdAvx512;
  if (isa == Isa::Avx2) return simdAvx2;
#endif
  return simdGeneric;
}
}  // namespace herd
