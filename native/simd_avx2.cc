// SimdOps (simd.h) for AVX2 + FMA: simd_impl.h compiled with that target (chosen at run time by CPUID).
#if defined(__x86_64__) || defined(_M_X64)
#include <cmath>
#include <cstdint>
#include <cstring>
#include <immintrin.h>

#include "simd.h"  // before the target pragma: its inline functions must stay baseline code
#if defined(__clang__)  // (clang's spelling of the same; not built by CI, which uses GCC)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif
#define SIMD_ISA 2
#define SIMD_NAME simdAvx2
#include "simd_impl.h"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
