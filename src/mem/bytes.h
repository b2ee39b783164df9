/* SPDX-License-Identifier: MIT */
/*
 * Unaligned word loads and a short-compare for the hot path. Comparing a path or a
 * content type of a dozen bytes through the C library's memcmp costs a call and a
 * branchy prologue per request (perf, pipelined /plaintext: 2.3% of the server's CPU for
 * two such compares); a few word loads do it inline.
 */
#ifndef CHOPIN_MEM_BYTES_H
#define CHOPIN_MEM_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t chopin__load64(const char *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static inline uint32_t chopin__load32(const char *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

/** a[0..n) == b[0..n). Reads only those bytes (overlapping words, never past n). */
static inline int chopin__bytes_eq(const char *a, const char *b, size_t n) {
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
            if (chopin__load64(a + i) != chopin__load64(b + i))
                return 0;
        return chopin__load64(a + n - 8) == chopin__load64(b + n - 8);
    }
    if (n >= 4)
        return chopin__load32(a) == chopin__load32(b) &&
               chopin__load32(a + n - 4) == chopin__load32(b + n - 4);
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

#endif
