/* SPDX-License-Identifier: MIT */
/*
 * Scan kernels of the request-head parser: each finds the end of one run of bytes (a
 * token, a field value, a request-target, a whole field line) at one SIMD level.
 *
 * They are header-only and always inlined: the parser instantiates its grammar once per
 * level (see parser.c), so the level is a constant in each copy and the AVX2 copy can
 * inline its AVX2 helpers. SIMD code uses only compare-and-movemask (SSE2/AVX2): valgrind
 * 3.19 cannot decode SSE4.2 string instructions, and the tests run under memcheck.
 *
 * Every kernel reads only bytes in [p, end): a SIMD load is made only with a whole block
 * before `end`, and the last partial block is finished by the table or a word scan.
 */
#ifndef CHOPIN_HTTP_SCAN_H
#define CHOPIN_HTTP_SCAN_H

#include <stdint.h>

#include "http/chars.h"
#include "http/parser.h"
#include "mem/bytes.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define CHOPIN__SCAN_X86 1
#endif

#define CHOPIN__ALWAYS_INLINE inline __attribute__((always_inline))

/** The best level this CPU can run (CHOPIN__SIMD_SCALAR off x86-64). */
enum chopin__simd chopin__simd_best(void);

/* First byte in [p, end) whose entry in `tab` misses `mask`, or end. Unrolled because
 * this is the whole cost of the scalar level: three instructions per byte, one branch
 * each. */
static CHOPIN__ALWAYS_INLINE const char *scan_table(const char *p, const char *end,
                                                    const uint8_t *tab, unsigned mask)
{
    while (end - p >= 8) {
        if (!(tab[(uint8_t)p[0]] & mask)) return p;
        if (!(tab[(uint8_t)p[1]] & mask)) return p + 1;
        if (!(tab[(uint8_t)p[2]] & mask)) return p + 2;
        if (!(tab[(uint8_t)p[3]] & mask)) return p + 3;
        if (!(tab[(uint8_t)p[4]] & mask)) return p + 4;
        if (!(tab[(uint8_t)p[5]] & mask)) return p + 5;
        if (!(tab[(uint8_t)p[6]] & mask)) return p + 6;
        if (!(tab[(uint8_t)p[7]] & mask)) return p + 7;
        p += 8;
    }
    while (p < end && (tab[(uint8_t)*p] & mask)) p++;
    return p;
}

static CHOPIN__ALWAYS_INLINE const char *scan_class(const char *p, const char *end,
                                                    unsigned mask)
{
    return scan_table(p, end, chopin__chars, mask);
}

#ifdef CHOPIN__SCAN_X86
/*
 * Skips whole 16-byte blocks holding no "stop" byte: x <= lo (unsigned), 0x7f, or `extra`.
 * Returns the first stop byte, or the start of the last partial block (fewer than 16
 * bytes before `end`), which the scalar scan finishes: no load ever crosses `end`.
 */
static CHOPIN__ALWAYS_INLINE const char *skip_sse2(const char *p, const char *end, char lo,
                                                   char extra, char extra2)
{
    const __m128i vlo = _mm_set1_epi8(lo), vdel = _mm_set1_epi8(0x7f);
    const __m128i vex = _mm_set1_epi8(extra), vex2 = _mm_set1_epi8(extra2);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, vlo), x),
                                    _mm_or_si128(_mm_cmpeq_epi8(x, vdel), _mm_cmpeq_epi8(x, vex)));
        stop = _mm_or_si128(stop, _mm_cmpeq_epi8(x, vex2));
        unsigned m = (unsigned)_mm_movemask_epi8(stop);
        if (m) return p + __builtin_ctz(m);
        p += 16;
    }
    return p;
}

/* The same with 32-byte blocks between a 16-byte first probe and a 16-byte tail. Each
 * field waits on the previous one's load-compare-movemask-tzcnt chain, and most names and
 * many values end within 16 bytes, so the short probe comes first (measured: TechEmpower
 * request 139 -> 132 ns; the 732-byte one unchanged). Not always_inline: the scalar and
 * SSE2 instances of parse_head must be able to hold a (dead) call to it. */
__attribute__((target("avx2"))) static inline const char *skip_avx2(const char *p,
                                                                    const char *end, char lo,
                                                                    char extra, char extra2)
{
    const __m256i vlo = _mm256_set1_epi8(lo), vdel = _mm256_set1_epi8(0x7f);
    const __m256i vex = _mm256_set1_epi8(extra), vex2 = _mm256_set1_epi8(extra2);
    if (end - p >= 16) {
        const char *q = skip_sse2(p, p + 16, lo, extra, extra2);
        if (q < p + 16) return q;
        p += 16;
    }
    while (end - p >= 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)p);
        __m256i stop = _mm256_or_si256(
            _mm256_cmpeq_epi8(_mm256_min_epu8(x, vlo), x),
            _mm256_or_si256(_mm256_cmpeq_epi8(x, vdel), _mm256_cmpeq_epi8(x, vex)));
        stop = _mm256_or_si256(stop, _mm256_cmpeq_epi8(x, vex2));
        unsigned m = (unsigned)_mm256_movemask_epi8(stop);
        if (m) return p + __builtin_ctz(m);
        p += 32;
    }
    return skip_sse2(p, end, lo, extra, extra2);
}

/* Header names and methods are almost always [A-Za-z0-9-]: skip 16-byte blocks of those
 * (three range checks via sub+min), and let the table decide the rare other tchars. */
static CHOPIN__ALWAYS_INLINE const char *skip_name_sse2(const char *p, const char *end)
{
    const __m128i bit5 = _mm_set1_epi8(0x20), a = _mm_set1_epi8('a'), z = _mm_set1_epi8(25);
    const __m128i zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9);
    const __m128i dash = _mm_set1_epi8('-');
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i l = _mm_sub_epi8(_mm_or_si128(x, bit5), a);
        __m128i d = _mm_sub_epi8(x, zero);
        __m128i ok = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(l, z), l),
                                               _mm_cmpeq_epi8(_mm_min_epu8(d, nine), d)),
                                  _mm_cmpeq_epi8(x, dash));
        unsigned m = (unsigned)_mm_movemask_epi8(ok) ^ 0xffffu;
        if (m) return p + __builtin_ctz(m);
        p += 16;
    }
    return p;
}

/* As skip_avx2. */
__attribute__((target("avx2"))) static inline const char *skip_name_avx2(const char *p,
                                                                         const char *end)
{
    const __m256i bit5 = _mm256_set1_epi8(0x20), a = _mm256_set1_epi8('a');
    const __m256i z = _mm256_set1_epi8(25), zero = _mm256_set1_epi8('0');
    const __m256i nine = _mm256_set1_epi8(9), dash = _mm256_set1_epi8('-');
    if (end - p >= 16) {
        const char *q = skip_name_sse2(p, p + 16);
        if (q < p + 16) return q;
        p += 16;
    }
    while (end - p >= 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)p);
        __m256i l = _mm256_sub_epi8(_mm256_or_si256(x, bit5), a);
        __m256i d = _mm256_sub_epi8(x, zero);
        __m256i ok = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_min_epu8(l, z), l),
                            _mm256_cmpeq_epi8(_mm256_min_epu8(d, nine), d)),
            _mm256_cmpeq_epi8(x, dash));
        unsigned m = ~(unsigned)_mm256_movemask_epi8(ok);
        if (m) return p + __builtin_ctz(m);
        p += 32;
    }
    return skip_name_sse2(p, end);
}

/* Masks of one 32-byte window at a line start, bit i for p[i]: `names` marks bytes that
 * are not [A-Za-z0-9-], `stops` bytes below 0x20 or 0x7f. One window usually holds a
 * whole short field line, or the name and the start of the value of a long one. */
static CHOPIN__ALWAYS_INLINE void line_masks_sse2(const char *p, uint32_t *names, uint32_t *stops)
{
    const __m128i bit5 = _mm_set1_epi8(0x20), a = _mm_set1_epi8('a'), z = _mm_set1_epi8(25);
    const __m128i zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9);
    const __m128i dash = _mm_set1_epi8('-'), lo = _mm_set1_epi8(0x1f);
    const __m128i del = _mm_set1_epi8(0x7f);
    uint32_t nm = 0, sm = 0;
    for (int half = 0; half < 2; half++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * half));
        __m128i l = _mm_sub_epi8(_mm_or_si128(x, bit5), a);
        __m128i d = _mm_sub_epi8(x, zero);
        __m128i ok = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(l, z), l),
                                               _mm_cmpeq_epi8(_mm_min_epu8(d, nine), d)),
                                  _mm_cmpeq_epi8(x, dash));
        __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, lo), x),
                                    _mm_cmpeq_epi8(x, del));
        nm |= ((uint32_t)_mm_movemask_epi8(ok) ^ 0xffffu) << (16 * half);
        sm |= (uint32_t)_mm_movemask_epi8(stop) << (16 * half);
    }
    *names = nm;
    *stops = sm;
}

__attribute__((target("avx2"))) static inline void line_masks_avx2(const char *p,
                                                                   uint32_t *names,
                                                                   uint32_t *stops)
{
    const __m256i bit5 = _mm256_set1_epi8(0x20), a = _mm256_set1_epi8('a');
    const __m256i z = _mm256_set1_epi8(25), zero = _mm256_set1_epi8('0');
    const __m256i nine = _mm256_set1_epi8(9), dash = _mm256_set1_epi8('-');
    const __m256i lo = _mm256_set1_epi8(0x1f), del = _mm256_set1_epi8(0x7f);
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i l = _mm256_sub_epi8(_mm256_or_si256(x, bit5), a);
    __m256i d = _mm256_sub_epi8(x, zero);
    __m256i ok = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(_mm256_min_epu8(l, z), l),
                                                 _mm256_cmpeq_epi8(_mm256_min_epu8(d, nine), d)),
                                 _mm256_cmpeq_epi8(x, dash));
    __m256i stop = _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_min_epu8(x, lo), x),
                                   _mm256_cmpeq_epi8(x, del));
    *names = ~(uint32_t)_mm256_movemask_epi8(ok);
    *stops = (uint32_t)_mm256_movemask_epi8(stop);
}
#endif

/* End of a token (method, field name). A SIMD stop with 16 bytes left is decided here; the
 * last partial block goes to the table. */
static CHOPIN__ALWAYS_INLINE const char *scan_token_end(const char *p, const char *end, int lvl)
{
#ifdef CHOPIN__SCAN_X86
    while (lvl != CHOPIN__SIMD_SCALAR) {
        p = lvl == CHOPIN__SIMD_AVX2 ? skip_name_avx2(p, end) : skip_name_sse2(p, end);
        if (end - p < 16) break;
        if (!(chopin__chars[(uint8_t)*p] & CHOPIN__C_TCHAR)) return p;
        p++;
    }
#endif
    return scan_class(p, end, CHOPIN__C_TCHAR);
}

static CHOPIN__ALWAYS_INLINE const char *skip_simd(const char *p, const char *end, int lvl, char lo,
                                           char extra, char extra2)
{
#ifdef CHOPIN__SCAN_X86
    if (lvl == CHOPIN__SIMD_AVX2) return skip_avx2(p, end, lo, extra, extra2);
    if (lvl == CHOPIN__SIMD_SSE2) return skip_sse2(p, end, lo, extra, extra2);
#endif
    return p;
}

/*
 * Skips 8-byte words of field-value bytes without SIMD: `stops` has the high bit of each
 * byte below 0x20 or equal to 0x7f (bytes from 0x80 drop out through ~x). A borrow can
 * only set bits above a real stop, so the lowest bit is exact. HTAB is a stop here but
 * allowed: the table scan that follows steps over it. For the scalar level, one word
 * costs what a byte costs in the table (browser request: 3,730 -> ~2,970 instructions,
 * ~320 -> ~200 ns; bench/micro_parser.c); the SIMD levels use it for their last bytes.
 */
static CHOPIN__ALWAYS_INLINE const char *skip_swar(const char *p, const char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x = chopin__load64(p);
        uint64_t stops = ((x - 0x20 * ones) | ((x ^ 0x7f * ones) - ones)) & ~x & high;
        if (stops) return p + __builtin_ctzll(stops) / 8;
        p += 8;
    }
#endif
    return p;
}

/* End of a field value: the first byte that is not HTAB/SP/VCHAR/obs-text. The SIMD stop
 * set is "< 0x20 or 0x7f" (one min and two compares); HTAB is in it but allowed, so the
 * loop steps over it and carries on with SIMD. */
static CHOPIN__ALWAYS_INLINE const char *scan_value_end(const char *p, const char *end, int lvl)
{
    while (lvl != CHOPIN__SIMD_SCALAR) {
        p = skip_simd(p, end, lvl, 0x1f, 0x7f, 0x7f);
        if (end - p < 16) break;
        if (*p != '\t') return p;
        p++;
    }
    p = skip_swar(p, end);
    return scan_class(p, end, CHOPIN__C_VALUE);
}

/*
 * A field line from one window (SIMD levels, 32 bytes available): the name is the run of
 * [A-Za-z0-9-] before the first other byte, which must be ':'; the value's first stop byte
 * comes from the same window, or the scan resumes at the window's end. So the next line
 * waits on one load-compare-tzcnt chain instead of two (measured on the 732-byte request:
 * AVX2 209 -> 165 ns, SSE2 203 -> 191 ns). Returns 0 to leave the line to the general path
 * (other tchars in the name, or anything wrong with it).
 */
static CHOPIN__ALWAYS_INLINE int scan_field_line(const char *p, const char *hend, int lvl,
                                   const char **name_end, const char **stop)
{
    uint32_t names = 0, stops = 0;
#ifdef CHOPIN__SCAN_X86
    if (lvl == CHOPIN__SIMD_AVX2) line_masks_avx2(p, &names, &stops);
    else line_masks_sse2(p, &names, &stops);
#endif
    if (!names) return 0;
    unsigned ne = (unsigned)__builtin_ctz(names);
    if (ne == 0 || p[ne] != ':') return 0;
    *name_end = p + ne;
    uint32_t after = stops & (~1u << ne); /* stops past the colon */
    if (!after) *stop = scan_value_end(p + 32, hend, lvl);
    else if (p[__builtin_ctz(after)] != '\t') *stop = p + __builtin_ctz(after);
    else *stop = scan_value_end(p + __builtin_ctz(after) + 1, hend, lvl);
    return 1;
}

/* End of a request-target run: stop bytes are <= SP, DEL, '#' and (before the query) '?'.
 * A fragment is never sent (RFC 9112 §3.2), so '#' ends the target for a 400. */
static CHOPIN__ALWAYS_INLINE const char *scan_target_end(const char *p, const char *end,
                                                         int lvl, int query)
{
    p = skip_simd(p, end, lvl, 0x20, query ? 0x7f : '?', '#');
    if (lvl != CHOPIN__SIMD_SCALAR && end - p >= 16) return p;
    return scan_class(p, end, query ? CHOPIN__C_TARGET | CHOPIN__C_QUERY : CHOPIN__C_TARGET);
}


#endif
