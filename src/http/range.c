/* SPDX-License-Identifier: MIT */
/*
 * Range parsing (see range.h). Grammar (RFC 9110 §14.1.1, §14.1.2):
 *
 *   ranges-specifier = range-unit "=" range-set
 *   range-set        = 1#range-spec            (empty list elements allowed, §5.6.1.2)
 *   range-spec       = int-range / suffix-range / other-range
 *   int-range        = first-pos "-" [ last-pos ]
 *   suffix-range     = "-" suffix-length
 *
 * For the bytes unit an other-range is a syntax error, as is a last-pos below its
 * first-pos (§14.1.1: "invalid"). Either makes the whole field unusable, and the
 * server then ignores it (§14.2), as nginx does.
 */
#include "http/range.h"

#include "http/chars.h"

/* A spec as written, before it is resolved against the length. */
struct spec {
    int suffix;          /* "-N" */
    uint64_t first, last; /* last == UINT64_MAX: open-ended "N-" */
};

/* Digits at *p, saturating at UINT64_MAX. Returns 0 when there is no digit. */
static int parse_num(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        s++;
    }
    if (s == *p)
        return 0;
    *p = s;
    *out = v;
    return 1;
}

/* One range-spec spanning exactly s[0..len). Returns 0 when it is not one. */
static int parse_spec(const char *s, size_t len, struct spec *sp)
{
    const char *p = s, *end = s + len;
    sp->suffix = 0;
    sp->last = UINT64_MAX;
    if (p < end && *p == '-') {
        p++;
        sp->suffix = 1;
        return parse_num(&p, end, &sp->first) && p == end;
    }
    if (!parse_num(&p, end, &sp->first) || p == end || *p != '-')
        return 0;
    p++;
    if (p == end)
        return 1;
    return parse_num(&p, end, &sp->last) && p == end && sp->last >= sp->first;
}

/* The satisfiable part of `sp` for `size` bytes; 0 when there is none (§14.1.2: a
 * first-pos at or past the length, or a zero suffix-length, or an empty representation). */
static int resolve(const struct spec *sp, uint64_t size, struct chopin__range *r)
{
    if (size == 0)
        return 0;
    if (sp->suffix) {
        if (sp->first == 0)
            return 0;
        r->first = sp->first >= size ? 0 : size - sp->first;
        r->last = size - 1;
        return 1;
    }
    if (sp->first >= size)
        return 0;
    r->first = sp->first;
    r->last = sp->last >= size ? size - 1 : sp->last;
    return 1;
}

static int overlaps(const struct chopin__range *a, const struct chopin__range *b)
{
    return a->first <= b->last && b->first <= a->last;
}

/* Nonzero when "bytes" (case-insensitive, §14.1) is s[0..len). */
static int is_bytes_unit(const char *s, size_t len)
{
    static const char unit[] = "bytes";
    if (len != sizeof unit - 1)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (chopin__ascii_lower((unsigned char)s[i]) != (unsigned char)unit[i])
            return 0;
    return 1;
}

enum chopin__range_result chopin__range_parse(const char *s, size_t len, uint64_t size,
                                              struct chopin__range *out, size_t max,
                                              size_t *n)
{
    *n = 0;
    const char *end = s + len, *eq = s;
    while (eq < end && *eq != '=')
        eq++;
    if (eq == end || !is_bytes_unit(s, (size_t)(eq - s)))
        return CHOPIN__RANGE_IGNORE;
    size_t specs = 0, kept = 0;
    size_t at = (size_t)(eq - s) + 1;
    while (at <= len) {
        size_t stop = at;
        while (stop < len && s[stop] != ',')
            stop++;
        size_t a = at, b = stop;
        at = stop + 1; /* past the comma; len + 1 ends the loop */
        while (a < b && chopin__is_ows((unsigned char)s[a]))
            a++;
        while (b > a && chopin__is_ows((unsigned char)s[b - 1]))
            b--;
        if (a == b)
            continue; /* an empty list element */
        struct spec sp;
        if (!parse_spec(s + a, b - a, &sp))
            return CHOPIN__RANGE_IGNORE;
        specs++;
        struct chopin__range r;
        if (!resolve(&sp, size, &r))
            continue;
        if (kept == max)
            return CHOPIN__RANGE_IGNORE;
        for (size_t i = 0; i < kept; i++)
            if (overlaps(&out[i], &r))
                return CHOPIN__RANGE_IGNORE;
        out[kept++] = r;
    }
    if (specs == 0)
        return CHOPIN__RANGE_IGNORE;
    *n = kept;
    return kept ? CHOPIN__RANGE_OK : CHOPIN__RANGE_UNSATISFIABLE;
}
