// SimdOps (simd.h) for AVX2 + FMA: simd_impl.h compiled with that target (chosen at run time by CPUID).
#if defined(__x86_64__) || defined(_M_X64)
#include <cmath>
#include <cstdint>
#include <cstring>
#include <immintrin.h>
#pragma GCC target("avx2,fma")
#define SIMD_ISA 2
#define SIMD_NAME simdAvx2
#include "simd_impl.h"
#endif
