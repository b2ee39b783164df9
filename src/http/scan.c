/* SPDX-License-Identifier: MIT */
/* The SIMD level of the scan kernels (scan.h): what the CPU has, and names for logs. */
#include "http/scan.h"

enum chopin__simd chopin__simd_best(void)
{
#ifdef CHOPIN__SCAN_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return CHOPIN__SIMD_AVX2;
    return CHOPIN__SIMD_SSE2;
#else
    return CHOPIN__SIMD_SCALAR;
#endif
}

const char *chopin__simd_name(enum chopin__simd level)
{
    switch (level) {
    case CHOPIN__SIMD_SCALAR: return "scalar";
    case CHOPIN__SIMD_SSE2: return "sse2";
    case CHOPIN__SIMD_AVX2: return "avx2";
    default: return "auto";
    }
}
