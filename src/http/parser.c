/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 request-head parser (RFC 9112 §2-§3, §5-§6.3; RFC 9110 §5, §7.2, §7.6.1, §8.6,
 * §10.1.1): the grammar, in steps (leading empty lines, request line, field lines, the
 * verdicts that need the whole head). The byte classes are in chars.h, the loops that find
 * where a run of bytes ends in scan.h.
 *
 * One left-to-right pass. The buffer may end anywhere: every read is bounded, and running
 * out of bytes is always "incomplete" (or a limit verdict), never "end of line" or "end of
 * head". Because the scan is strictly sequential and the limits act as a shortened buffer,
 * a prefix of any input either is incomplete or gets the same verdict as the whole input;
 * the unit tests and the fuzz target check exactly that.
 *
 * The steps are always inlined into parse_head, which is instantiated once per SIMD level
 * (parse_scalar, parse_sse2, parse_avx2), so each copy sees its level as a constant.
 * Every step returns 0 to go on, or the final verdict (CHOPIN__PARSE_INCOMPLETE or minus
 * a status).
 */
#include "http/parser.h"

#include <string.h>

#include "http/chars.h"
#include "http/scan.h"
#include "mem/bytes.h"

#define ALWAYS_INLINE CHOPIN__ALWAYS_INLINE

/* RFC 9112 §2.2 lets a server skip empty lines before the request line; bound them so a
 * stream of CRLFs cannot keep a connection in the parser for free. */
#define MAX_LEADING_EMPTY_LINES 8

/* Where the parse stands. The head limit acts as a shorter buffer: running into `hend`
 * before `end` is 431, running into `end` is "incomplete". */
struct cursor {
    const char *p;
    const char *hend;
    const char *end;
};

/* Verdict when the bytes run out at the head limit `hend`: only a real end of buffer
 * means "incomplete". */
static ALWAYS_INLINE ssize_t need_more(const char *hend, const char *end)
{
    return hend < end ? -431 : CHOPIN__PARSE_INCOMPLETE;
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
    while (p < e && chopin__is_ows((uint8_t)*p)) p++;
    const char *start = p;
    while (p < e && *p != ',') p++;
    const char *stop = p;
    while (stop > start && chopin__is_ows((uint8_t)stop[-1])) stop--;
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
        if (!chopin__is_token(el, n)) return -400; /* empty element, parameters, junk */
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

/* ----- request line (RFC 9112 §3) ------------------------------------------------------ */

/* The request line is scanned against `rend`: its CR must lie within max_request_line
 * bytes of its start, and running out of bytes there is 414 when that cap cut it short. */
struct line {
    const char *start;
    const char *rend;
    int capped;
};

static ALWAYS_INLINE ssize_t line_more(const struct line *l, const struct cursor *c)
{
    return l->capped ? -414 : need_more(c->hend, c->end);
}

/* RFC 9112 §2.2: empty lines before the request line are skipped, a bounded number. */
static ALWAYS_INLINE ssize_t skip_empty_lines(struct cursor *c)
{
    const char *p = c->p;
    for (int empty = 0;; empty++) {
        if (c->hend - p < 2) {
            if (p < c->hend && *p != '\r') break;
            return need_more(c->hend, c->end);
        }
        if (*p != '\r') break;
        if (p[1] != '\n' || empty == MAX_LEADING_EMPTY_LINES) return -400;
        p += 2;
    }
    c->p = p;
    return 0;
}

/* method SP: a token, one space. */
static ALWAYS_INLINE ssize_t parse_method(struct cursor *c, const struct line *l,
                                          struct chopin__head *h, int lvl)
{
    const char *p = scan_token_end(c->p, l->rend, lvl);
    if (p == l->rend) return line_more(l, c);
    if (*p != ' ' || p == l->start) return -400;
    if (p - l->start > UINT16_MAX) return -501; /* a valid token, but no method we could name */
    h->method = l->start;
    h->method_len = (uint16_t)(p - l->start);
    h->method_id = method_id(l->start, (size_t)(p - l->start));
    c->p = p + 1;
    return 0;
}

/* RFC 9112 §3.2: which of the four forms the target [t, tend) takes (its query, if any,
 * starts after `qm`), and the path and host that gives. Returns 0 or -400. */
static ALWAYS_INLINE ssize_t target_form(struct chopin__head *h, const char *t,
                                         const char *qm, const char *tend)
{
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
    return 0;
}

/* request-target SP: visible bytes, the first '?' starting the query; a '#' is 400 (a
 * fragment is never sent, RFC 9112 §3.2: whoever sends one is not a conforming client). */
static ALWAYS_INLINE ssize_t parse_target(struct cursor *c, const struct line *l,
                                          struct chopin__head *h, int lvl)
{
    const char *t = c->p, *qm = NULL;
    const char *p = scan_target_end(t, l->rend, lvl, 0);
    if (p < l->rend && *p == '?') {
        qm = p;
        p = scan_target_end(p + 1, l->rend, lvl, 1);
    }
    if (p == l->rend) return line_more(l, c);
    if (*p != ' ' || p == t) return -400; /* CTL, DEL, a second space, HTTP/0.9 */
    c->p = p + 1;
    return target_form(h, t, qm, p);
}

/* HTTP-version CRLF (RFC 9112 §2.3): "HTTP/" DIGIT "." DIGIT, case-sensitive. A well-formed
 * version we do not speak is 505, anything else 400. HTTP/1.2+ is refused as well rather
 * than served as 1.1 (RFC 9110 §2.5 allows either; no such version exists). */
static ALWAYS_INLINE ssize_t parse_version(struct cursor *c, const struct line *l,
                                           struct chopin__head *h)
{
    static const char version[] = "HTTP/1.1\r\n";
    const char *p = c->p;
    if (l->rend - p >= 9 && c->hend - p >= 10 && memcmp(p, version, 7) == 0 &&
        (p[7] == '1' || p[7] == '0') && p[8] == '\r' && p[9] == '\n') {
        h->minor = (uint8_t)(p[7] - '0');
    } else {
        for (int i = 0; i < 10; i++) {
            if (p + i >= (i < 9 ? l->rend : c->hend))
                return i < 9 ? line_more(l, c) : need_more(c->hend, c->end);
            unsigned ch = (uint8_t)p[i];
            int ok = i == 5 || i == 7 ? ch - '0' < 10u : ch == (uint8_t)version[i];
            if (!ok) return -400;
        }
        if (p[5] != '1' || p[7] > '1') return -505;
        h->minor = (uint8_t)(p[7] - '0');
    }
    c->p = p + 10;
    return 0;
}

static ALWAYS_INLINE ssize_t parse_request_line(struct cursor *c, struct chopin__head *h,
                                                uint32_t max_request_line, int lvl)
{
    struct line l = {c->p, c->hend, 0};
    if ((size_t)(c->hend - l.start) > max_request_line) {
        l.rend = l.start + max_request_line + 1;
        l.capped = 1;
    }
    ssize_t r = parse_method(c, &l, h, lvl);
    if (!r) r = parse_target(c, &l, h, lvl);
    if (!r) r = parse_version(c, &l, h);
    return r;
}

/* ----- header section (RFC 9112 §5, RFC 9110 §5.5) ---------------------------------- */

/* Field line number `n` from *pp into h->headers[n] (name, and value without the OWS
 * around it), then noted in `f`. A line beyond max_headers is 431, once it was found
 * well-formed up to its CR. */
static ALWAYS_INLINE ssize_t parse_field_line(const char **pp, const char *hend,
                                              const char *end, struct chopin__head *h,
                                              struct fields *f, uint32_t n,
                                              uint32_t max_headers, int lvl)
{
    const char *p = *pp, *name = p, *name_end;
    if (lvl == CHOPIN__SIMD_SCALAR || hend - p < 32 ||
        !scan_field_line(p, hend, lvl, &name_end, &p)) {
        p = scan_token_end(p, hend, lvl);
        if (p == hend) return need_more(hend, end);
        /* Not a token up to ':' covers an empty name, whitespace before the colon
         * (§5.1), obs-fold (§5.2), bare LF and CTLs. */
        if (*p != ':' || p == name) return -400;
        name_end = p;
        p = scan_value_end(p + 1, hend, lvl);
    }
    if (n == max_headers) return -431;
    const char *v = name_end + 1;
    if (__builtin_expect(hend - p < 2 || p[0] != '\r' || p[1] != '\n', 0)) {
        if (p == hend) return need_more(hend, end);
        if (*p != '\r') return -400;
        if (hend - p < 2) return need_more(hend, end);
        return -400; /* CR without LF */
    }
    /* *p is CR, a stop. Nearly every value follows one space and ends without OWS: test
     * for that first. */
    v += *v == ' ';
    while (__builtin_expect(chopin__is_ows((uint8_t)*v), 0)) v++;
    const char *vend = p;
    if (__builtin_expect(vend > v && chopin__is_ows((uint8_t)vend[-1]), 0))
        while (vend > v && chopin__is_ows((uint8_t)vend[-1])) vend--;
    *pp = p + 2;

    struct chopin__header *hd = &h->headers[n];
    hd->name = name;
    hd->name_len = (uint32_t)(name_end - name);
    hd->value = v;
    hd->value_len = (uint32_t)(vend - v);
    return field_semantics(f, h, name, hd->name_len, v, hd->value_len);
}

/* Field lines up to the empty line that ends the head. */
static ALWAYS_INLINE ssize_t parse_fields(struct cursor *c, struct chopin__head *h,
                                          struct fields *f, uint32_t max_headers, int lvl)
{
    const char *p = c->p, *hend = c->hend, *end = c->end;
    uint32_t n = 0;
    for (;;) {
        if (p == hend) return need_more(hend, end);
        if (*p == '\r') {
            if (hend - p < 2) return need_more(hend, end);
            if (p[1] != '\n') return -400;
            p += 2;
            break;
        }
        ssize_t r = parse_field_line(&p, hend, end, h, f, n++, max_headers, lvl);
        if (r) return r;
    }
    h->nheaders = n;
    c->p = p;
    return 0;
}

/* ----- verdicts that need the whole head ---------------------------------------------- */

static ALWAYS_INLINE ssize_t judge_head(struct chopin__head *h, const struct fields *f,
                                        const char *target_host)
{
    if (h->minor == 1 && f->hosts == 0) return -400; /* RFC 9112 §3.2 */
    if (target_host) {
        /* RFC 9112 §3.2.2: the target's authority wins over the Host field */
        h->host = target_host;
    }
    h->content_length = 0;
    h->body_kind = CHOPIN__BODY_NONE;
    if (f->te_seen) {
        /* RFC 9112 §6.1: HTTP/1.0 framing with Transfer-Encoding is faulty; with both TE
         * and CL the message is a smuggling attempt. §6.3: chunked must be last. */
        if (h->minor == 0 || f->cl_seen) return -400;
        if (f->te_chunked != 1 || !f->te_last_chunked) return -400;
        if (f->te_other) return -501; /* RFC 9112 §6.1: a coding we do not implement */
        h->body_kind = CHOPIN__BODY_CHUNKED;
    } else if (f->cl_seen && f->content_length > 0) {
        h->body_kind = CHOPIN__BODY_LENGTH;
        h->content_length = f->content_length;
    }
    if (f->expect_other) return -417;
    /* RFC 9110 §10.1.1 and §7.8: HTTP/1.0 ignores 100-continue and Upgrade. */
    h->expect_continue = h->minor == 1 && f->expect_continue;
    h->upgrade = h->minor == 1 && f->conn_upgrade && f->upgrade_seen;
    /* RFC 9112 §9.3 */
    h->keep_alive = !f->conn_close && (h->minor == 1 || f->conn_keep_alive);
    return 0;
}

static ALWAYS_INLINE ssize_t parse_head(const char *buf, size_t len, struct chopin__head *h,
                                        const struct chopin__limits *lim, const int lvl)
{
    struct cursor c = {.p = buf, .hend = buf + len, .end = buf + len};
    if (len > lim->max_header_bytes) c.hend = buf + lim->max_header_bytes;
    ssize_t r = skip_empty_lines(&c);
    if (!r) r = parse_request_line(&c, h, lim->max_request_line, lvl);
    if (r) return r;
    struct fields f;
    memset(&f, 0, sizeof f);
    const char *target_host = h->host;
    r = parse_fields(&c, h, &f, lim->max_headers, lvl);
    if (!r) r = judge_head(h, &f, target_host);
    return r ? r : c.p - buf;
}

typedef ssize_t parse_fn(const char *, size_t, struct chopin__head *,
                         const struct chopin__limits *);

static ssize_t parse_scalar(const char *buf, size_t len, struct chopin__head *h,
                            const struct chopin__limits *lim)
{
    return parse_head(buf, len, h, lim, CHOPIN__SIMD_SCALAR);
}

#ifdef CHOPIN__SCAN_X86
static ssize_t parse_sse2(const char *buf, size_t len, struct chopin__head *h,
                          const struct chopin__limits *lim)
{
    return parse_head(buf, len, h, lim, CHOPIN__SIMD_SSE2);
}

__attribute__((target("avx2"))) static ssize_t parse_avx2(const char *buf, size_t len,
                                                          struct chopin__head *h,
                                                          const struct chopin__limits *lim)
{
    return parse_head(buf, len, h, lim, CHOPIN__SIMD_AVX2);
}
#endif

static parse_fn parse_first;
static parse_fn *parse_impl = parse_first;

enum chopin__simd chopin__parser_set_simd(enum chopin__simd want)
{
    enum chopin__simd best = chopin__simd_best();
    if (want == CHOPIN__SIMD_AUTO || want > best) want = best;
    parse_fn *fn = parse_scalar;
#ifdef CHOPIN__SCAN_X86
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

ssize_t chopin__parse_request(const char *buf, size_t len, struct chopin__head *head,
                              const struct chopin__limits *lim)
{
    return __atomic_load_n(&parse_impl, __ATOMIC_RELAXED)(buf, len, head, lim);
}
