/* SPDX-License-Identifier: MIT */
/* The streaming multipart/form-data parser (see multipart.h). */
#include "http/multipart.h"

#include <errno.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "http/chars.h"
#include "http/url.h"

enum {
    S_PREAMBLE = 0, /* before the first delimiter: discarded */
    S_AFTER,        /* just past a delimiter */
    S_DASH,         /* past a delimiter and one '-' */
    S_PAD,          /* transport padding before the CRLF that opens a part */
    S_PAD_CR,       /* the padding's CR */
    S_HEADERS,      /* a part's header block */
    S_DATA,         /* a part's data */
    S_EPILOGUE,     /* after the closing delimiter: discarded */
};

/* RFC 2046 §5.1.1 bchars: DIGIT, ALPHA and '()+_,-./:=? plus space (not last). */
static int is_bchar(unsigned char c) {
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           (c && strchr("'()+_,-./:=? ", c));
}

static int boundary_valid(const char *b, size_t len) {
    if (len == 0 || len > CHOPIN__MP_BOUNDARY_MAX || b[len - 1] == ' ')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_bchar((unsigned char)b[i]))
            return 0;
    return 1;
}

static int equal_nocase(const char *a, size_t alen, const char *lit) {
    size_t n = strlen(lit);
    if (alen != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (chopin__ascii_lower((unsigned char)a[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

/* ----- parameters: `; name=value` lists (RFC 9110 §5.6.6, RFC 2045 §5.1) ---------------- */

/* A cursor over a header value. */
struct cursor {
    char *p, *end;
};

static void skip_ows(struct cursor *c) {
    while (c->p < c->end && chopin__is_ows((unsigned char)*c->p))
        c->p++;
}

static size_t token(struct cursor *c, char **start) {
    *start = c->p;
    while (c->p < c->end && chopin__is_tchar((unsigned char)*c->p))
        c->p++;
    return (size_t)(c->p - *start);
}

/* A quoted-string, its quoted-pairs undone in place (the result is never longer). Returns
 * its length, or -1 when it is not closed or holds a byte no quoted-string may. */
static long quoted(struct cursor *c, char **start) {
    char *out = ++c->p;
    *start = out;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"')
            return (long)(out - *start);
        if (ch == '\\') {
            if (c->p == c->end || !chopin__is_field_byte((unsigned char)*c->p))
                return -1;
            ch = (unsigned char)*c->p++;
        } else if (!chopin__is_qdtext(ch)) {
            return -1;
        }
        *out++ = (char)ch;
    }
    return -1;
}

/* One `; name=value` parameter: 1 with its name and value, 0 at the end, -1 malformed. */
static int next_param(struct cursor *c, char **name, size_t *nlen, char **val, size_t *vlen) {
    skip_ows(c);
    if (c->p == c->end)
        return 0;
    if (*c->p++ != ';')
        return -1;
    skip_ows(c);
    if (c->p == c->end)
        return 0; /* a trailing ';' (some clients send one) */
    *nlen = token(c, name);
    skip_ows(c);
    if (!*nlen || c->p == c->end || *c->p++ != '=')
        return -1;
    skip_ows(c);
    if (c->p < c->end && *c->p == '"') {
        long n = quoted(c, val);
        if (n < 0)
            return -1;
        *vlen = (size_t)n;
    } else {
        *vlen = token(c, val);
        if (!*vlen)
            return -1;
    }
    return 1;
}

int chopin__mp_boundary(const char *ct, size_t len, const char **b, size_t *blen) {
    /* The parameters are read through a copy: quoted() rewrites in place. */
    char copy[512];
    if (len > sizeof copy)
        return -EINVAL;
    memcpy(copy, ct, len);
    struct cursor c = {copy, copy + len};
    skip_ows(&c);
    char *type;
    size_t tlen = token(&c, &type);
    if (!equal_nocase(type, tlen, "multipart") || c.p == c.end || *c.p++ != '/')
        return -EINVAL;
    tlen = token(&c, &type);
    if (!equal_nocase(type, tlen, "form-data"))
        return -EINVAL;
    char *name, *val;
    size_t nlen, vlen;
    int rc, found = 0;
    while ((rc = next_param(&c, &name, &nlen, &val, &vlen)) == 1) {
        if (!equal_nocase(name, nlen, "boundary"))
            continue;
        /* A boundary needs no quoted-pair (bchars are all qdtext): with none, unquoting
         * rewrote nothing and the boundary lies at the same offset in `ct`. */
        if (found || !boundary_valid(val, vlen) || memcmp(ct + (val - copy), val, vlen))
            return -EINVAL;
        *b = ct + (val - copy);
        *blen = vlen;
        found = 1;
    }
    return rc < 0 || !found ? -EINVAL : 0;
}

/* ----- part headers ---------------------------------------------------------------------- */

/* RFC 8187 §3.2 ext-value: charset "'" [language] "'" value-chars. Only UTF-8 is taken
 * (what every client sends); the value is percent-decoded in place. Returns the decoded
 * length, or -1 when the value is not that (the plain filename is used then). */
static long ext_value(char *v, size_t len, char **out) {
    char *q1 = memchr(v, '\'', len);
    if (!q1 || !equal_nocase(v, (size_t)(q1 - v), "utf-8"))
        return -1;
    char *rest = q1 + 1, *end = v + len;
    char *q2 = memchr(rest, '\'', (size_t)(end - rest));
    if (!q2)
        return -1;
    rest = q2 + 1;
    ssize_t n = chopin__pct_decode(rest, rest, (size_t)(end - rest), CHOPIN__PCT_STRICT);
    if (n < 0)
        return -1;
    *out = rest;
    return (long)n;
}

/* Content-Disposition: form-data; name="..."; filename="..."; filename*=UTF-8''...
 * Parameter names compare whole and case-insensitively, so "filename" never matches
 * "name"; a repeated parameter makes the part malformed (two parsers could disagree on
 * which one counts). */
static int disposition(char *v, size_t len, struct chopin__mp_part *part) {
    struct cursor c = {v, v + len};
    skip_ows(&c);
    char *type;
    size_t tlen = token(&c, &type);
    if (!equal_nocase(type, tlen, "form-data"))
        return -EINVAL;
    char *name, *val, *ext = NULL;
    size_t nlen, vlen;
    long ext_len = -1;
    int rc, seen_filename = 0;
    while ((rc = next_param(&c, &name, &nlen, &val, &vlen)) == 1) {
        if (equal_nocase(name, nlen, "name")) {
            if (part->name)
                return -EINVAL;
            part->name = val;
            part->name_len = vlen;
        } else if (equal_nocase(name, nlen, "filename")) {
            if (seen_filename++)
                return -EINVAL;
            if (!part->filename) { /* (filename* may have come first) */
                part->filename = val;
                part->filename_len = vlen;
            }
        } else if (equal_nocase(name, nlen, "filename*")) {
            if (ext)
                return -EINVAL;
            ext = val;
            ext_len = ext_value(val, vlen, &ext);
            if (ext_len >= 0) {
                part->filename = ext;
                part->filename_len = (size_t)ext_len;
            }
        }
    }
    return rc < 0 || !part->name ? -EINVAL : 0;
}

static void trim(const char **v, size_t *len) {
    while (*len && chopin__is_ows((unsigned char)(*v)[*len - 1]))
        (*len)--;
    while (*len && chopin__is_ows((unsigned char)**v)) {
        (*v)++;
        (*len)--;
    }
}

/* Reads the header block hbuf[0..hlen) (lines ending in CRLF, the empty line included)
 * into `part`. */
static int parse_headers(struct chopin__multipart *mp, struct chopin__mp_part *part) {
    *part = (struct chopin__mp_part){.headers = mp->hbuf, .headers_len = mp->hlen - 2};
    char *p = mp->hbuf, *end = mp->hbuf + mp->hlen - 2;
    int disp = 0;
    while (p < end) {
        char *eol = memchr(p, '\r', (size_t)(end - p));
        char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p || !chopin__is_token(p, (size_t)(colon - p)))
            return -EINVAL; /* also an obs-fold line, which starts with a space */
        const char *v = colon + 1;
        size_t vlen = (size_t)(eol - v);
        for (size_t i = 0; i < vlen; i++)
            if (!chopin__is_field_byte((unsigned char)v[i]))
                return -EINVAL;
        trim(&v, &vlen);
        size_t nlen = (size_t)(colon - p);
        if (equal_nocase(p, nlen, "content-disposition")) {
            if (disp++ || disposition(colon + 1, (size_t)(eol - colon - 1), part) < 0)
                return -EINVAL;
        } else if (equal_nocase(p, nlen, "content-type")) {
            if (part->content_type)
                return -EINVAL;
            part->content_type = v;
            part->content_type_len = vlen;
        }
        p = eol + 2;
    }
    return disp ? 0 : -EINVAL;
}

/* Appends header bytes up to the block's end (an empty line). Returns the bytes taken;
 * sets *done when the block is whole. Every CR must start a CRLF. */
static size_t gather_headers(struct chopin__multipart *mp, const char *p, size_t n, int *done) {
    size_t i = 0;
    while (i < n) {
        const char *lf = memchr(p + i, '\n', n - i);
        size_t take = lf ? (size_t)(lf - (p + i)) + 1 : n - i;
        if (take > mp->hcap - mp->hlen) {
            mp->err = -EFBIG;
            return i;
        }
        memcpy(mp->hbuf + mp->hlen, p + i, take);
        mp->hlen += take;
        i += take;
        if (!lf)
            break;
        /* A line is done: it must end in CRLF and hold no other CR. */
        char *line_end = mp->hbuf + mp->hlen;
        if (mp->hlen < 2 || line_end[-2] != '\r') {
            mp->err = -EINVAL;
            return i;
        }
        int empty = mp->hlen == 2 || (mp->hlen >= 4 && line_end[-3] == '\n');
        if (empty) {
            *done = 1;
            return i;
        }
    }
    return i;
}

/* Checks the block for stray CRs (a CR not before LF) and hands the part over. */
static int part_begins(struct chopin__multipart *mp) {
    for (uint32_t i = 0; i < mp->hlen; i++)
        if (mp->hbuf[i] == '\r' && (i + 1 == mp->hlen || mp->hbuf[i + 1] != '\n'))
            return -EINVAL;
    if (mp->parts >= mp->max_parts)
        return -EFBIG;
    mp->parts++;
    struct chopin__mp_part part;
    int rc = parse_headers(mp, &part);
    if (rc < 0)
        return rc;
    mp->in_part = 1;
    return mp->cb.part(mp->arg, &part);
}

/* ----- delimiter search ---------------------------------------------------------------- */

static int emit(struct chopin__multipart *mp, const char *p, size_t n) {
    if (!n || mp->state != S_DATA)
        return 0; /* the preamble is discarded */
    return mp->cb.data(mp->arg, p, n);
}

/* The CRLFs of p[i..i+32) (a CR at p[i+31] is paired with p[i+32]) as a bit mask: bytes
 * equal to CR, and the bytes one further on equal to LF, sixteen per SSE2 compare (the
 * baseline of x86-64). In random file data a search for CR stops once per 256 bytes, one
 * for CRLF once per 64 KiB; the CR-only search and the memcmp after each stop took 25% of
 * the server's CPU on a 100 MiB upload (perf, bench/upload.sh). */
#ifdef __SSE2__
static uint32_t crlf_mask(const char *p) {
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    __m128i a0 = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i a1 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
    __m128i b0 = _mm_loadu_si128((const __m128i *)(const void *)(p + 1));
    __m128i b1 = _mm_loadu_si128((const __m128i *)(const void *)(p + 17));
    uint32_t m0 = (uint32_t)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a0, cr), _mm_cmpeq_epi8(b0, lf)));
    uint32_t m1 = (uint32_t)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a1, cr), _mm_cmpeq_epi8(b1, lf)));
    return m0 | m1 << 16;
}
#endif

/* Whether the CRLF at p[j] starts the delimiter, as far as p[0..n) shows: 2 when it is
 * all there, 1 when p ends inside it, 0 when it is not one. */
static int delimiter_at(const struct chopin__multipart *mp, const char *p, size_t j, size_t n) {
    size_t avail = n - j, m = avail < mp->dlen ? avail : mp->dlen;
    if ((m > 2 && p[j + 2] != '-') || memcmp(p + j, mp->delim, m) != 0)
        return 0;
    return m == mp->dlen ? 2 : 1;
}

/*
 * Scans p[0..n) for the delimiter, emitting what precedes it as data (in a part). Returns
 * the bytes used; *found is set when the delimiter ended there. A delimiter cut by the end
 * of p is held as a count (mp->matched), not copied: its bytes are the delimiter's own, so
 * when it turns out to be data, they are emitted from mp->delim.
 *
 * CR occurs in the delimiter only as its first byte (bchars have none), and LF only as its
 * second: so when a match fails, no later start can lie inside the bytes matched so far,
 * and the search resumes at the byte that failed. Every CRLF of a 32-byte block is tried
 * from one mask: restarting the vector search after each one cost 40 ns per line on text
 * with 64-byte lines, against 10 for longer ones.
 */
static size_t scan(struct chopin__multipart *mp, const char *p, size_t n, int *found) {
    size_t i = 0;
    const char *d = mp->delim;
    size_t dlen = mp->dlen;
    if (mp->matched) {
        size_t k = mp->matched;
        while (k < dlen && i < n && p[i] == d[k]) {
            k++;
            i++;
        }
        if (k == dlen) {
            mp->matched = 0;
            *found = 1;
            return i;
        }
        if (i == n) {
            mp->matched = (uint8_t)k;
            return n;
        }
        mp->matched = 0;
        if ((mp->err = emit(mp, d, k)) < 0)
            return i;
    }
    size_t start = i, j = n;
    int hit = 0;
#ifdef __SSE2__
    for (; !hit && i + 33 <= n; i += 32)
        for (uint32_t m = crlf_mask(p + i); m && !hit; m &= m - 1) {
            j = i + (size_t)__builtin_ctz(m);
            hit = delimiter_at(mp, p, j, n);
        }
#endif
    for (; !hit && i + 1 < n; i++) {
        const char *cr = memchr(p + i, '\r', n - 1 - i);
        if (!cr)
            break;
        j = (size_t)(cr - p);
        i = j;
        hit = p[j + 1] == '\n' ? delimiter_at(mp, p, j, n) : 0;
    }
    if (hit) {
        if ((mp->err = emit(mp, p + start, j - start)) < 0)
            return j;
        if (hit == 2) {
            *found = 1;
            return j + dlen;
        }
        mp->matched = (uint8_t)(n - j);
        return n;
    }
    /* A CR as the last byte may start a delimiter: held, as above. */
    size_t end = n > start && p[n - 1] == '\r' ? n - 1 : n;
    mp->err = emit(mp, p + start, end - start);
    mp->matched = (uint8_t)(n - end);
    return n;
}

/* ----- the state machine ------------------------------------------------------------------ */

int chopin__mp_init(struct chopin__multipart *mp, const char *boundary, size_t blen,
                    char *hbuf, uint32_t hcap, uint32_t max_parts,
                    const struct chopin__mp_callbacks *cb, void *arg) {
    if (!boundary_valid(boundary, blen) || hcap < 2)
        return -EINVAL;
    *mp = (struct chopin__multipart){.cb = *cb, .arg = arg, .hbuf = hbuf, .hcap = hcap,
                                     .max_parts = max_parts, .state = S_PREAMBLE,
                                     .dlen = (uint8_t)(4 + blen)};
    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, boundary, blen);
    /* The first delimiter may open the body, with no CRLF before it: start as if one had
     * just been seen. */
    mp->matched = 2;
    return 0;
}

static int delimiter_found(struct chopin__multipart *mp) {
    int rc = 0;
    if (mp->in_part) {
        mp->in_part = 0;
        rc = mp->cb.part_end(mp->arg);
    }
    mp->state = S_AFTER;
    return rc;
}

/* One step of the machine at p[0..n); returns the bytes used. */
static size_t step(struct chopin__multipart *mp, const char *p, size_t n) {
    int found = 0, done = 0;
    size_t used;
    unsigned char c = (unsigned char)p[0];
    switch (mp->state) {
    case S_PREAMBLE:
    case S_DATA:
        used = scan(mp, p, n, &found);
        if (found && mp->err == 0)
            mp->err = delimiter_found(mp);
        return used;
    case S_AFTER:
        mp->state = c == '-' ? S_DASH : c == '\r' ? S_PAD_CR : S_PAD;
        if (c != '-' && c != '\r' && !chopin__is_ows(c))
            mp->err = -EINVAL;
        return 1;
    case S_DASH:
        mp->state = S_EPILOGUE;
        if (c != '-')
            mp->err = -EINVAL;
        return 1;
    case S_PAD:
        if (c == '\r')
            mp->state = S_PAD_CR;
        else if (!chopin__is_ows(c))
            mp->err = -EINVAL;
        return 1;
    case S_PAD_CR:
        if (c != '\n')
            mp->err = -EINVAL;
        mp->state = S_HEADERS;
        mp->hlen = 0;
        return 1;
    case S_HEADERS:
        used = gather_headers(mp, p, n, &done);
        if (done && mp->err == 0) {
            mp->state = S_DATA;
            mp->err = part_begins(mp);
        }
        return used;
    default: /* S_EPILOGUE */
        return n;
    }
}

int chopin__mp_feed(struct chopin__multipart *mp, const char *p, size_t n) {
    size_t i = 0;
    while (i < n && mp->err == 0)
        i += step(mp, p + i, n - i);
    return mp->err;
}

int chopin__mp_finish(const struct chopin__multipart *mp) {
    if (mp->err)
        return mp->err;
    return mp->state == S_EPILOGUE ? 0 : -EINVAL;
}
