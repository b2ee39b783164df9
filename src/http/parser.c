/*
 * HTTP/1.1 request-head parser (RFC 9112 §2-§3, §5-§6.3; RFC 9110 §5, §7.2, §7.6.1, §8.6,
 * §10.1.1).
 *
 * One left-to-right pass. The buffer may end anywhere: every read is bounded, and running
 * out of bytes is always "incomplete" (or a limit verdict), never "end of line" or "end of
 * head". Because the scan is strictly sequential and the limits act as a shortened buffer,
 * a prefix of any input either is incomplete or gets the same verdict as the whole input;
 * the unit tests and the fuzz target check exactly that.
 *
 * The scanning loops are written once (parse_head, always inlined) and instantiated per
 * SIMD level, so the compiler sees the level as a constant and the AVX2 copy can inline
 * its AVX2 helpers. SIMD code uses only compare-and-movemask (SSE2/AVX2): valgrind 3.19
 * cannot decode SSE4.2 string instructions, and the tests run under memcheck.
 */
#include "http/parser.h"

#include <string.h>

#include "mem/bytes.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define PARSER_X86 1
#endif

#define ALWAYS_INLINE inline __attribute__((always_inline))

enum { L_SCALAR, L_SSE2, L_AVX2 };

/* RFC 9112 §2.2 lets a server skip empty lines before the request line; bound them so a
 * stream of CRLFs cannot keep a connection in the parser for free. */
#define MAX_LEADING_EMPTY_LINES 8

/* Byte classes. Ranges do not overlap, so -Woverride-init stays quiet. */
enum {
    C_TCHAR = 1,  /* RFC 9110 §5.6.2 token character */
    C_VALUE = 2,  /* RFC 9110 §5.5 field-value byte: HTAB, SP, VCHAR, obs-text */
    C_TARGET = 4, /* request-target byte other than '?': 0x21-0x7e minus '?', 0x80-0xff */
    C_QUERY = 8,  /* '?' (a target byte too, once the query has started) */
    C_OWS = 16,   /* optional whitespace around field values: SP, HTAB */
};
#define TVX (C_TCHAR | C_VALUE | C_TARGET)
#define VX (C_VALUE | C_TARGET)

static const uint8_t cls[256] = {
    [0x09] = C_VALUE | C_OWS,
    [0x20] = C_VALUE | C_OWS,
    [0x21] = TVX,
    [0x22] = VX,
    [0x23 ... 0x27] = TVX,
    [0x28 ... 0x29] = VX,
    [0x2a ... 0x2b] = TVX,
    [0x2c] = VX,
    [0x2d ... 0x2e] = TVX,
    [0x2f] = VX,
    [0x30 ... 0x39] = TVX,
    [0x3a ... 0x3e] = VX,
    [0x3f] = C_VALUE | C_QUERY,
    [0x40] = VX,
    [0x41 ... 0x5a] = TVX,
    [0x5b ... 0x5d] = VX,
    [0x5e ... 0x60] = TVX,
    [0x61 ... 0x7a] = TVX,
    [0x7b] = VX,
    [0x7c] = TVX,
    [0x7d] = VX,
    [0x7e] = TVX,
    [0x80 ... 0xff] = VX,
};

/* First byte in [p, end) whose entry in `tab` misses `mask`, or end. Unrolled because
 * this is the whole cost of the scalar level: three instructions per byte, one branch
 * each. */
static ALWAYS_INLINE const char *scan_table(const char *p, const char *end, const uint8_t *tab,
                                            unsigned mask)
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

static ALWAYS_INLINE const char *scan_class(const char *p, const char *end, unsigned mask)
{
    return scan_table(p, end, cls, mask);
}

#ifdef PARSER_X86
/*
 * Skips whole 16-byte blocks holding no "stop" byte: x <= lo (unsigned), 0x7f, or `extra`.
 * Returns the first stop byte, or the start of the last partial block (fewer than 16
 * bytes before `end`), which the scalar scan finishes: no load ever crosses `end`.
 */
static ALWAYS_INLINE const char *skip_sse2(const char *p, const char *end, char lo, char extra)
{
    const __m128i vlo = _mm_set1_epi8(lo), vdel = _mm_set1_epi8(0x7f);
    const __m128i vex = _mm_set1_epi8(extra);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, vlo), x),
                                    _mm_or_si128(_mm_cmpeq_epi8(x, vdel), _mm_cmpeq_epi8(x, vex)));
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
                                                                    char extra)
{
    const __m256i vlo = _mm256_set1_epi8(lo), vdel = _mm256_set1_epi8(0x7f);
    const __m256i vex = _mm256_set1_epi8(extra);
    if (end - p >= 16) {
        const char *q = skip_sse2(p, p + 16, lo, extra);
        if (q < p + 16) return q;
        p += 16;
    }
    while (end - p >= 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)p);
        __m256i stop = _mm256_or_si256(
            _mm256_cmpeq_epi8(_mm256_min_epu8(x, vlo), x),
            _mm256_or_si256(_mm256_cmpeq_epi8(x, vdel), _mm256_cmpeq_epi8(x, vex)));
        unsigned m = (unsigned)_mm256_movemask_epi8(stop);
        if (m) return p + __builtin_ctz(m);
        p += 32;
    }
    return skip_sse2(p, end, lo, extra);
}

/* Header names and methods are almost always [A-Za-z0-9-]: skip 16-byte blocks of those
 * (three range checks via sub+min), and let the table decide the rare other tchars. */
static ALWAYS_INLINE const char *skip_name_sse2(const char *p, const char *end)
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
static ALWAYS_INLINE void line_masks_sse2(const char *p, uint32_t *names, uint32_t *stops)
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
static ALWAYS_INLINE const char *token_end(const char *p, const char *end, int lvl)
{
#ifdef PARSER_X86
    while (lvl != L_SCALAR) {
        p = lvl == L_AVX2 ? skip_name_avx2(p, end) : skip_name_sse2(p, end);
        if (end - p < 16) break;
        if (!(cls[(uint8_t)*p] & C_TCHAR)) return p;
        p++;
    }
#endif
    return scan_class(p, end, C_TCHAR);
}

static ALWAYS_INLINE const char *skip_simd(const char *p, const char *end, int lvl, char lo,
                                           char extra)
{
#ifdef PARSER_X86
    if (lvl == L_AVX2) return skip_avx2(p, end, lo, extra);
    if (lvl == L_SSE2) return skip_sse2(p, end, lo, extra);
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
static ALWAYS_INLINE const char *skip_swar(const char *p, const char *end)
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
static ALWAYS_INLINE const char *value_end(const char *p, const char *end, int lvl)
{
    while (lvl != L_SCALAR) {
        p = skip_simd(p, end, lvl, 0x1f, 0x7f);
        if (end - p < 16) break;
        if (*p != '\t') return p;
        p++;
    }
    p = skip_swar(p, end);
    return scan_class(p, end, C_VALUE);
}

/*
 * A field line from one window (SIMD levels, 32 bytes available): the name is the run of
 * [A-Za-z0-9-] before the first other byte, which must be ':'; the value's first stop byte
 * comes from the same window, or the scan resumes at the window's end. So the next line
 * waits on one load-compare-tzcnt chain instead of two (measured on the 732-byte request:
 * AVX2 209 -> 165 ns, SSE2 203 -> 191 ns). Returns 0 to leave the line to the general path
 * (other tchars in the name, or anything wrong with it).
 */
static ALWAYS_INLINE int fast_line(const char *p, const char *hend, int lvl,
                                   const char **name_end, const char **stop)
{
    uint32_t names = 0, stops = 0;
#ifdef PARSER_X86
    if (lvl == L_AVX2) line_masks_avx2(p, &names, &stops);
    else line_masks_sse2(p, &names, &stops);
#endif
    if (!names) return 0;
    unsigned ne = (unsigned)__builtin_ctz(names);
    if (ne == 0 || p[ne] != ':') return 0;
    *name_end = p + ne;
    uint32_t after = stops & (~1u << ne); /* stops past the colon */
    if (!after) *stop = value_end(p + 32, hend, lvl);
    else if (p[__builtin_ctz(after)] != '\t') *stop = p + __builtin_ctz(after);
    else *stop = value_end(p + __builtin_ctz(after) + 1, hend, lvl);
    return 1;
}

/* End of a request-target run: stop bytes are <= SP, DEL and (before the query) '?'. */
static ALWAYS_INLINE const char *target_end(const char *p, const char *end, int lvl, int query)
{
    p = skip_simd(p, end, lvl, 0x20, query ? 0x7f : '?');
    if (lvl != L_SCALAR && end - p >= 16) return p;
    return scan_class(p, end, query ? C_TARGET | C_QUERY : C_TARGET);
}

/*
 * Case-insensitive match of field bytes against a literal made of lower-case letters,
 * digits and '-', a word at a time: OR-ing 0x20 maps only 'A'-'Z' onto the letters, and
 * onto a digit or '-' only a C0 control, which names and values never hold (they are
 * validated first).
 */
static ALWAYS_INLINE int ieq(const char *s, size_t len, const char *lower, size_t lower_len)
{
    if (len != lower_len) return 0;
    if (len >= 8) {
        const uint64_t m = 0x2020202020202020ull;
        size_t i = 0;
        for (; i + 8 <= len; i += 8)
            if ((chopin__load64(s + i) | m) != chopin__load64(lower + i)) return 0;
        return i == len || (chopin__load64(s + len - 8) | m) == chopin__load64(lower + len - 8);
    }
    if (len >= 4)
        return (chopin__load32(s) | 0x20202020u) == chopin__load32(lower) &&
               (chopin__load32(s + len - 4) | 0x20202020u) == chopin__load32(lower + len - 4);
    for (size_t i = 0; i < len; i++)
        if (((uint8_t)s[i] | 0x20) != (uint8_t)lower[i]) return 0;
    return 1;
}
#define IEQ(s, len, lit) ieq((s), (len), lit, sizeof(lit) - 1)

int chopin__token_ieq(const char *s, size_t len, const char *lower)
{
    for (size_t i = 0; i < len; i++) {
        unsigned c = (uint8_t)s[i];
        if (c - 'A' < 26u) c += 32;
        if (!lower[i] || c != (uint8_t)lower[i]) return 0;
    }
    return lower[len] == '\0';
}

static ALWAYS_INLINE int is_ows(char c) { return cls[(uint8_t)c] & C_OWS; }

/* Verdict when the bytes run out at the head limit `hend`: only a real end of buffer
 * means "incomplete". */
static ALWAYS_INLINE ssize_t need_more(const char *hend, const char *end)
{
    return hend < end ? -431 : CHOPIN__PARSE_INCOMPLETE;
}

static uint8_t method_id(const char *m, size_t len)
{
#define METHOD_MATCH(name, str)                                                              \
    if (len == sizeof(str) - 1 && memcmp(m, str, sizeof(str) - 1) == 0)                     \
        return CHOPIN_METHOD_##name;
    CHOPIN_METHOD_MAP(METHOD_MATCH)
#undef METHOD_MATCH
    return CHOPIN_METHOD_OTHER;
}

/* What the header fields say about framing and the connection, gathered in one pass and
 * judged once the head is complete (RFC 9112 §6.3 needs all of them). */
struct fields {
    uint64_t content_length;
    uint8_t cl_seen;
    uint8_t te_seen;
    uint8_t te_chunked; /* how many "chunked" codings */
    uint8_t te_last_chunked;
    uint8_t te_other; /* a coding we do not decode */
    uint8_t hosts;
    uint8_t conn_close, conn_keep_alive, conn_upgrade;
    uint8_t upgrade_seen;
    uint8_t expect_continue, expect_other;
};

/* One element of a comma-separated list (RFC 9110 §5.6.1): [*s, e) up to the next comma,
 * OWS trimmed; *s moves past the comma. Returns 0 at the end of the list. */
static int list_next(const char **s, const char *e, const char **el, size_t *el_len)
{
    const char *p = *s;
    if (p > e) return 0;
    while (p < e && is_ows(*p)) p++;
    const char *start = p;
    while (p < e && *p != ',') p++;
    const char *stop = p;
    while (stop > start && is_ows(stop[-1])) stop--;
    *el = start;
    *el_len = (size_t)(stop - start);
    *s = p + 1; /* one past e after the last element */
    return 1;
}

/* RFC 9112 §3.2 and RFC 3986 §3.2.2-§3.2.3: uri-host [ ":" port ], uri-host being an
 * IP-literal in brackets or a reg-name / IPv4address (unreserved, pct-encoded, sub-delims).
 * Anything else ('/', '@', '?', '#', '"', a second ':', non-ASCII) is an invalid Host,
 * which MUST get a 400: applications build URLs and cache keys from it.
 *
 * The table holds what a byte is NOT, so a run is checked by OR-ing entries without a
 * branch per byte, and one lookup answers for both host grammars. */
enum {
    H_NOT_REG = 1, /* not a reg-name byte (unreserved, '%', sub-delims) */
    H_NOT_LIT = 2, /* not allowed inside brackets either: reg-name bytes and ':' are */
};
#define H_BAD (H_NOT_REG | H_NOT_LIT)
static const uint8_t host_bad[256] = {
    [0x00 ... 0x20] = H_BAD, ['"'] = H_BAD, ['#'] = H_BAD, ['/'] = H_BAD,
    [':'] = H_NOT_REG, ['<'] = H_BAD, ['>' ... '@'] = H_BAD, ['[' ... '^'] = H_BAD,
    ['`'] = H_BAD, ['{' ... '}'] = H_BAD, [0x7f ... 0xff] = H_BAD,
};

#define HB(p, i) host_bad[(uint8_t)(p)[i]]

/* The OR of host_bad over [p, e). Overlapping reads are harmless to an OR, so the last
 * 1-7 bytes take two 4-byte groups or three single bytes: no byte loop, and no read
 * outside the run. A byte accumulator lets each entry be OR-ed straight from the table. */
static ALWAYS_INLINE unsigned host_bad_run(const char *p, const char *e)
{
    uint8_t acc = 0;
    for (; e - p >= 8; p += 8)
        acc |= HB(p, 0) | HB(p, 1) | HB(p, 2) | HB(p, 3) | HB(p, 4) | HB(p, 5) | HB(p, 6) |
               HB(p, 7);
    if (e - p >= 4)
        acc |= HB(p, 0) | HB(p, 1) | HB(p, 2) | HB(p, 3) | HB(e, -4) | HB(e, -3) | HB(e, -2) |
               HB(e, -1);
    else if (e > p)
        acc |= HB(p, 0) | HB(p, (size_t)(e - p) / 2) | HB(e, -1);
    return acc;
}

/*
 * Length of v[0..len) without the run of ASCII digits that ends it. A port has a few
 * digits, so one 8-byte word nearly always holds the byte before them; it is byte-swapped
 * so that the last byte in memory is the lowest: t = x ^ '0' is 0-9 for a digit, and
 * t | (t + 6) has a bit of its high nibble set for any other byte. A carry only moves
 * towards earlier bytes, past a real non-digit, so the lowest set bit is exact.
 */
static ALWAYS_INLINE size_t before_digits(const char *v, size_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (len >= 8) {
        const uint64_t ones = 0x0101010101010101ull;
        uint64_t t = __builtin_bswap64(chopin__load64(v + len - 8)) ^ ('0' * ones);
        uint64_t other = (t | (t + 6 * ones)) & (0xf0 * ones);
        if (other) return len - (size_t)__builtin_ctzll(other) / 8;
        len -= 8;
    }
#endif
    while (len && (unsigned)((uint8_t)v[len - 1] - '0') <= 9) len--;
    return len;
}

/* The port is the digits after the last non-digit, when that is ':'; what comes before
 * is the host. Only bytes in v[0..len) are read: the value may end a buffer. */
static int host_valid(const char *v, size_t len, int need_host)
{
    size_t n = before_digits(v, len);
    n = n && v[n - 1] == ':' ? n - 1 : len;
    const char *p = v, *e = v + n;
    unsigned bad = H_NOT_REG;
    if (n && *v == '[') { /* the first ']' must end it: ']' is H_NOT_LIT */
        if (n < 3 || e[-1] != ']') return 0;
        p++;
        e--;
        bad = H_NOT_LIT;
    } else if (need_host && n == 0) {
        return 0;
    }
    return !(host_bad_run(p, e) & bad);
}
#undef HB

static int all_tchar(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!(cls[(uint8_t)s[i]] & C_TCHAR)) return 0;
    return len > 0;
}

/* RFC 9110 §8.6: digits only; a list or a repeated field must repeat one value. */
static int field_content_length(struct fields *f, const char *v, size_t len)
{
    const char *s = v, *el;
    size_t n;
    while (list_next(&s, v + len, &el, &n)) {
        uint64_t x = 0;
        if (n == 0) return -400;
        for (size_t i = 0; i < n; i++) {
            unsigned d = (uint8_t)el[i] - '0';
            if (d > 9) return -400;
            if (x > (UINT64_MAX - d) / 10) return -400;
            x = x * 10 + d;
        }
        if (f->cl_seen && x != f->content_length) return -400;
        f->content_length = x;
        f->cl_seen = 1;
    }
    return 0;
}

/* RFC 9112 §6.1: repeated Transfer-Encoding fields form one list; only the order and the
 * presence of "chunked" matter, the verdict waits for the complete head. */
static int field_transfer_encoding(struct fields *f, const char *v, size_t len)
{
    const char *s = v, *el;
    size_t n;
    f->te_seen = 1;
    while (list_next(&s, v + len, &el, &n)) {
        if (!all_tchar(el, n)) return -400; /* empty element, parameters, junk */
        if (IEQ(el, n, "chunked")) {
            if (f->te_chunked < 255) f->te_chunked++;
            f->te_last_chunked = 1;
        } else {
            f->te_other = 1;
            f->te_last_chunked = 0;
        }
    }
    return 0;
}

static void field_connection(struct fields *f, const char *v, size_t len)
{
    if (IEQ(v, len, "keep-alive")) {
        f->conn_keep_alive = 1;
        return;
    }
    const char *s = v, *el;
    size_t n;
    while (list_next(&s, v + len, &el, &n)) {
        if (IEQ(el, n, "close")) f->conn_close = 1;
        else if (IEQ(el, n, "keep-alive")) f->conn_keep_alive = 1;
        else if (IEQ(el, n, "upgrade")) f->conn_upgrade = 1;
    }
}

/* The fields that decide framing, routing and the connection. Names are matched by length
 * first: most headers of a real request fall through after one compare. */
static ALWAYS_INLINE int field_semantics(struct fields *f, struct chopin__head *h,
                                         const char *name, size_t name_len, const char *v,
                                         size_t len)
{
    switch (name_len) {
    case 4:
        if (IEQ(name, name_len, "host")) {
            /* RFC 9112 §3.2: exactly one Host, and a valid one */
            if (++f->hosts > 1) return -400;
            if (!host_valid(v, len, 0)) return -400;
            if (!h->host) {
                h->host = v;
                h->host_len = (uint32_t)len;
            }
        }
        break;
    case 6:
        if (IEQ(name, name_len, "expect")) {
            /* RFC 9110 §10.1.1: 100-continue is the only expectation defined */
            if (IEQ(v, len, "100-continue")) f->expect_continue = 1;
            else f->expect_other = 1;
        }
        break;
    case 7:
        if (IEQ(name, name_len, "upgrade")) f->upgrade_seen = 1;
        break;
    case 10:
        if (IEQ(name, name_len, "connection")) field_connection(f, v, len);
        break;
    case 14:
        if (IEQ(name, name_len, "content-length")) return field_content_length(f, v, len);
        break;
    case 17:
        if (IEQ(name, name_len, "transfer-encoding")) return field_transfer_encoding(f, v, len);
        break;
    default:
        break;
    }
    return 0;
}

/* RFC 9112 §3.2.2 absolute-form: scheme "://" authority path-abempty. We serve http and
 * https only; userinfo is an error (RFC 9110 §4.2.4); an empty path means "/", which we
 * point at the second slash of "://" so every pointer stays inside the buffer. */
static int target_absolute(struct chopin__head *h, const char *t, const char *pend)
{
    const char *p = t;
    while (p < pend && *p != ':') p++;
    size_t slen = (size_t)(p - t);
    if (!(IEQ(t, slen, "http") || IEQ(t, slen, "https"))) return -400;
    if (pend - p < 3 || p[1] != '/' || p[2] != '/') return -400;
    const char *auth = p + 3;
    const char *a = auth;
    while (a < pend && *a != '/') a++;
    /* RFC 9110 §4.2.1: an http URI with an empty host is invalid */
    if (!host_valid(auth, (size_t)(a - auth), 1)) return -400;
    h->host = auth;
    h->host_len = (uint32_t)(a - auth);
    if (a == pend) {
        h->path = p + 2;
        h->path_len = 1;
    } else {
        h->path = a;
        h->path_len = (uint32_t)(pend - a);
    }
    return 0;
}

/* RFC 9112 §3.2.3 authority-form (CONNECT only): uri-host ":" port. The path and the host
 * both point at the authority. */
static int target_authority(struct chopin__head *h, const char *t, const char *tend)
{
    const char *colon = NULL;
    for (const char *p = t; p < tend; p++) {
        if (*p == '/' || *p == '@' || *p == '?' || *p == '#') return -400;
        if (*p == ':') colon = p;
    }
    if (!colon || colon == t || colon + 1 == tend) return -400;
    for (const char *p = colon + 1; p < tend; p++)
        if ((unsigned)(*p - '0') > 9) return -400;
    h->host = t;
    h->host_len = (uint32_t)(tend - t);
    h->path = t;
    h->path_len = (uint32_t)(tend - t);
    return 0;
}

/* Out of bytes inside the request line: past its cap that is 414, else as need_more. */
static ALWAYS_INLINE ssize_t line_more(int capped, const char *hend, const char *end)
{
    return capped ? -414 : need_more(hend, end);
}

static ALWAYS_INLINE ssize_t parse_head(const char *buf, size_t len, struct chopin__head *h,
                                        const struct chopin__limits *lim, const int lvl)
{
    const char *p = buf, *end = buf + len;
    /* The head limit acts as a shorter buffer; running into it is 431. */
    const char *hend = len > lim->max_header_bytes ? buf + lim->max_header_bytes : end;

    for (int empty = 0;; empty++) {
        if (hend - p < 2) {
            if (p < hend && *p != '\r') break;
            return need_more(hend, end);
        }
        if (*p != '\r') break;
        if (p[1] != '\n' || empty == MAX_LEADING_EMPTY_LINES) return -400;
        p += 2;
    }

    /* Request line (RFC 9112 §3): method SP request-target SP HTTP-version CRLF, single
     * spaces. Its CR must lie within max_request_line bytes of its start. */
    const char *line = p, *rend = hend;
    int capped = 0;
    if ((size_t)(hend - line) > lim->max_request_line) {
        rend = line + lim->max_request_line + 1;
        capped = 1;
    }

    p = token_end(p, rend, lvl);
    if (p == rend) return line_more(capped, hend, end);
    if (*p != ' ' || p == line) return -400;
    if (p - line > UINT16_MAX) return -501; /* a valid token, but no method we could name */
    h->method = line;
    h->method_len = (uint16_t)(p - line);
    h->method_id = method_id(line, (size_t)(p - line));

    const char *t = ++p, *qm = NULL;
    p = target_end(p, rend, lvl, 0);
    if (p < rend && *p == '?') {
        qm = p;
        p = target_end(p + 1, rend, lvl, 1);
    }
    if (p == rend) return line_more(capped, hend, end);
    if (*p != ' ' || p == t) return -400; /* CTL, DEL, a second space, HTTP/0.9 */
    const char *tend = p;
    const char *pend = qm ? qm : tend;
    h->target = t;
    h->target_len = (uint32_t)(tend - t);
    h->host = NULL;
    h->host_len = 0;
    h->query = qm ? qm + 1 : NULL;
    h->query_len = qm ? (uint32_t)(tend - qm - 1) : 0;
    if (h->method_id == CHOPIN_METHOD_CONNECT) {
        if (target_authority(h, t, tend)) return -400;
        h->query = NULL;
        h->query_len = 0;
    } else if (*t == '/') {
        h->path = t;
        h->path_len = (uint32_t)(pend - t);
    } else if (*t == '*') {
        /* RFC 9112 §3.2.4: asterisk-form is "*" alone, for OPTIONS */
        if (tend - t != 1 || h->method_id != CHOPIN_METHOD_OPTIONS) return -400;
        h->path = t;
        h->path_len = 1;
    } else if (target_absolute(h, t, pend)) {
        return -400;
    }

    /* HTTP-version (RFC 9112 §2.3): "HTTP/" DIGIT "." DIGIT, case-sensitive. A well-formed
     * version we do not speak is 505, anything else 400. HTTP/1.2+ is refused as well
     * rather than served as 1.1 (RFC 9110 §2.5 allows either; no such version exists). */
    p++;
    static const char version[] = "HTTP/1.1\r\n";
    if (rend - p >= 9 && hend - p >= 10 && memcmp(p, version, 7) == 0 &&
        (p[7] == '1' || p[7] == '0') && p[8] == '\r' && p[9] == '\n') {
        h->minor = (uint8_t)(p[7] - '0');
    } else {
        for (int i = 0; i < 10; i++) {
            if (p + i >= (i < 9 ? rend : hend))
                return i < 9 ? line_more(capped, hend, end) : need_more(hend, end);
            unsigned c = (uint8_t)p[i];
            int ok = i == 5 || i == 7 ? c - '0' < 10u : c == (uint8_t)version[i];
            if (!ok) return -400;
        }
        if (p[5] != '1' || p[7] > '1') return -505;
        h->minor = (uint8_t)(p[7] - '0');
    }
    p += 10;

    /* Header section (RFC 9112 §5, RFC 9110 §5.5). */
    struct fields f;
    memset(&f, 0, sizeof f);
    const char *target_host = h->host;
    uint32_t n = 0;
    for (;;) {
        if (p == hend) return need_more(hend, end);
        if (*p == '\r') {
            if (hend - p < 2) return need_more(hend, end);
            if (p[1] != '\n') return -400;
            p += 2;
            break;
        }
        const char *name = p, *name_end;
        if (lvl == L_SCALAR || hend - p < 32 || !fast_line(p, hend, lvl, &name_end, &p)) {
            p = token_end(p, hend, lvl);
            if (p == hend) return need_more(hend, end);
            /* Not a token up to ':' covers an empty name, whitespace before the colon
             * (§5.1), obs-fold (§5.2), bare LF and CTLs. */
            if (*p != ':' || p == name) return -400;
            name_end = p;
            p = value_end(p + 1, hend, lvl);
        }
        if (n == lim->max_headers) return -431;
        const char *v = name_end + 1;
        if (__builtin_expect(hend - p < 2 || p[0] != '\r' || p[1] != '\n', 0)) {
            if (p == hend) return need_more(hend, end);
            if (*p != '\r') return -400;
            if (hend - p < 2) return need_more(hend, end);
            return -400; /* CR without LF */
        }
        /* OWS around the value is not part of it (RFC 9110 §5.5); *p is CR, a stop. Nearly
         * every value follows one space and ends without OWS: test for that first. */
        v += *v == ' ';
        while (__builtin_expect(is_ows(*v), 0)) v++;
        const char *vend = p;
        if (__builtin_expect(vend > v && is_ows(vend[-1]), 0))
            while (vend > v && is_ows(vend[-1])) vend--;
        p += 2;

        struct chopin__header *hd = &h->headers[n++];
        hd->name = name;
        hd->name_len = (uint32_t)(name_end - name);
        hd->value = v;
        hd->value_len = (uint32_t)(vend - v);
        int err = field_semantics(&f, h, name, hd->name_len, v, hd->value_len);
        if (err) return err;
    }
    h->nheaders = n;

    /* Verdicts that need the whole head. */
    if (h->minor == 1 && f.hosts == 0) return -400; /* RFC 9112 §3.2 */
    if (target_host) {
        /* RFC 9112 §3.2.2: the target's authority wins over the Host field */
        h->host = target_host;
    }
    h->content_length = 0;
    h->body_kind = CHOPIN__BODY_NONE;
    if (f.te_seen) {
        /* RFC 9112 §6.1: HTTP/1.0 framing with Transfer-Encoding is faulty; with both TE
         * and CL the message is a smuggling attempt. §6.3: chunked must be last. */
        if (h->minor == 0 || f.cl_seen) return -400;
        if (f.te_chunked != 1 || !f.te_last_chunked) return -400;
        if (f.te_other) return -501; /* RFC 9112 §6.1: a coding we do not implement */
        h->body_kind = CHOPIN__BODY_CHUNKED;
    } else if (f.cl_seen && f.content_length > 0) {
        h->body_kind = CHOPIN__BODY_LENGTH;
        h->content_length = f.content_length;
    }
    if (f.expect_other) return -417;
    /* RFC 9110 §10.1.1 and §7.8: HTTP/1.0 ignores 100-continue and Upgrade. */
    h->expect_continue = h->minor == 1 && f.expect_continue;
    h->upgrade = h->minor == 1 && f.conn_upgrade && f.upgrade_seen;
    /* RFC 9112 §9.3 */
    h->keep_alive = !f.conn_close && (h->minor == 1 || f.conn_keep_alive);
    return p - buf;
}

typedef ssize_t parse_fn(const char *, size_t, struct chopin__head *,
                         const struct chopin__limits *);

static ssize_t parse_scalar(const char *buf, size_t len, struct chopin__head *h,
                            const struct chopin__limits *lim)
{
    return parse_head(buf, len, h, lim, L_SCALAR);
}

#ifdef PARSER_X86
static ssize_t parse_sse2(const char *buf, size_t len, struct chopin__head *h,
                          const struct chopin__limits *lim)
{
    return parse_head(buf, len, h, lim, L_SSE2);
}

__attribute__((target("avx2"))) static ssize_t parse_avx2(const char *buf, size_t len,
                                                          struct chopin__head *h,
                                                          const struct chopin__limits *lim)
{
    return parse_head(buf, len, h, lim, L_AVX2);
}
#endif

static parse_fn parse_first;
static parse_fn *parse_impl = parse_first;

static enum chopin__simd simd_best(void)
{
#ifdef PARSER_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return CHOPIN__SIMD_AVX2;
    return CHOPIN__SIMD_SSE2;
#else
    return CHOPIN__SIMD_SCALAR;
#endif
}

enum chopin__simd chopin__parser_set_simd(enum chopin__simd want)
{
    enum chopin__simd best = simd_best();
    if (want == CHOPIN__SIMD_AUTO || want > best) want = best;
    parse_fn *fn = parse_scalar;
#ifdef PARSER_X86
    if (want == CHOPIN__SIMD_AVX2) fn = parse_avx2;
    else if (want == CHOPIN__SIMD_SSE2) fn = parse_sse2;
#endif
    __atomic_store_n(&parse_impl, fn, __ATOMIC_RELAXED);
    return want;
}

/* First call without chopin__parser_set_simd(): pick the best level. Racing first calls
 * store the same values. */
static ssize_t parse_first(const char *buf, size_t len, struct chopin__head *h,
                           const struct chopin__limits *lim)
{
    chopin__parser_set_simd(CHOPIN__SIMD_AUTO);
    return __atomic_load_n(&parse_impl, __ATOMIC_RELAXED)(buf, len, h, lim);
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

ssize_t chopin__parse_request(const char *buf, size_t len, struct chopin__head *head,
                              const struct chopin__limits *lim)
{
    return __atomic_load_n(&parse_impl, __ATOMIC_RELAXED)(buf, len, head, lim);
}
