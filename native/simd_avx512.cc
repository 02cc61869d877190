// SimdOps (simd.h) for AVX-512: simd_impl.h compiled with the AVX-512 target (chosen at run time by CPUID).
#if defined(__x86_64__) || defined(_M_X64)
#include <cmath>
#include <cstdint>
#include <cstring>
#include <immintrin.h>

#include "simd.h"  // before the target pragma: its inline functions must stay baseline code
#if defined(__clang__)  // (clang's spelling of the same; not built by CI, which uses GCC)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi2"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi2")
#endif
#define SIMD_ISA 512
#define SIMD_NAME simdAvx512
#include "simd_impl.h"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
