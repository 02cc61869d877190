// SimdOps (simd.h) for AVX-512: simd_impl.h compiled with the AVX-512 target (chosen at run time by CPUID).
#if defined(__x86_64__) || defined(_M_X64)
#include <cmath>
#include <cstdint>
#include <cstring>
#include <immintrin.h>
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi2")
#define SIMD_ISA 512
#define SIMD_NAME simdAvx512
#include "simd_impl.h"
#endif
