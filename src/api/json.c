/* SPDX-License-Identifier: MIT */
/*
 * JSON writer (RFC 8259) straight into the response body, which lives in the request
 * arena. Commas and nesting are tracked here so callers only say what comes next; the
 * first misuse or failure sticks and chopin_json_end() reports it (and turns the response
 * into a 500) instead of sending broken JSON.
 *
 * Strings are UTF-8. Invalid UTF-8 is not passed through (it would make the whole
 * document invalid for strict parsers): each maximal ill-formed subpart becomes one
 * U+FFFD, the "best practice" of Unicode §3.9 that browsers' decoders follow too.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/message.h"
#include "mem/arena.h"
#include "mem/bytes.h"

#define MAX_DEPTH 64 /* one bit per level in is_object/has_item */
#define JSON_START 256 /* bytes of document room a writer starts with */

struct chopin_json {
    chopin_res *res;
    char *buf; /* == res->body while this writer is the response's */
    size_t len, cap;
    int err;
    uint32_t depth;
    uint64_t is_object; /* bit d: level d+1 is an object (else an array) */
    uint64_t has_item;  /* bit d: level d+1 already holds a member or element */
    uint8_t after_key;  /* a key was written; its value comes next */
    uint8_t started;    /* the top-level value has begun */
    uint8_t ended;
};

static const char APP_JSON[] = "application/json";

/* Nonzero while the writer may write: no error so far, and no other body replaced it. */
static int live(const chopin_json *j)
{
    return j && !j->err && !j->ended && j->res->json == j;
}

static void set_error(chopin_json *j, int err)
{
    if (!j->err)
        j->err = err;
}

/* The capacity to grow to: doubled until `more` bytes fit; when doubling would pass what
 * the arena may still hold, half of what is left (or what is needed, if more): a document
 * may come close to the limit instead of failing at half of it, in a few more steps
 * rather than one realloc per value. 0 when even what is needed is too much. */
static size_t grown_cap(const chopin_json *j, size_t more)
{
    size_t need = j->len + more, cap = j->cap * 2;
    if (need < j->len)
        return 0;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    size_t left = chopin__arena_left(j->res->arena);
    if (cap - j->cap > left) {
        size_t half = j->cap + left / 2;
        cap = need > half ? need : half;
    }
    return cap - j->cap > left ? 0 : cap;
}

/* Out of line: the arena buffer grows until `more` bytes fit. Past the arena's limit the
 * error is -EFBIG; a heap failure is -ENOMEM. */
static int grow(chopin_json *j, size_t more)
{
    size_t cap = grown_cap(j, more);
    char *buf = cap ? chopin__arena_grow(j->res->arena, j->buf, j->cap, cap) : NULL;
    if (!buf) {
        set_error(j, cap ? -ENOMEM : -EFBIG);
        return 0;
    }
    j->buf = buf;
    j->cap = cap;
    j->res->body = buf;
    return 1;
}

static int room(chopin_json *j, size_t more)
{
    return j->cap - j->len >= more || grow(j, more);
}

static void put(chopin_json *j, const void *p, size_t n)
{
    if (!room(j, n))
        return;
    memcpy(j->buf + j->len, p, n);
    j->len += n;
}

/* Punctuation is most of what a writer puts: a byte store, not a memcpy call. */
static void put_char(chopin_json *j, char c)
{
    if (!room(j, 1))
        return;
    j->buf[j->len++] = c;
}

static int in_object(const chopin_json *j)
{
    return j->depth > 0 && (j->is_object >> (j->depth - 1) & 1);
}

static int level_has_item(const chopin_json *j)
{
    return j->has_item >> (j->depth - 1) & 1;
}

static void level_mark_item(chopin_json *j)
{
    j->has_item |= 1ull << (j->depth - 1);
}

/* Checks that a value may come here and writes the comma before it. */
static int begin_value(chopin_json *j)
{
    if (!live(j))
        return 0;
    if (j->depth == 0) {
        if (j->started) {
            set_error(j, -EINVAL); /* a second top-level value */
            return 0;
        }
        j->started = 1;
        return 1;
    }
    if (in_object(j)) {
        if (!j->after_key) {
            set_error(j, -EINVAL); /* object member without a key */
            return 0;
        }
        j->after_key = 0;
        return 1;
    }
    if (level_has_item(j))
        put_char(j, ',');
    level_mark_item(j);
    return !j->err;
}

chopin_json *chopin_res_json(chopin_res *res, int status)
{
    /* A writer already on `res`, ended or not, is replaced like any other body: the last
     * setter wins, so an error found after a document was written can still answer. */
    if (!res || !res->arena || !chopin__res_status_valid(status))
        return NULL;
    /* The writer and the first bytes of the document in one allocation. The buffer is its
     * top, so chopin__arena_grow extends it in place while nothing else was allocated,
     * and copies it otherwise; the writer stays put. */
    size_t head = (sizeof(chopin_json) + 15) & ~(size_t)15; /* the buffer 16-aligned */
    chopin_json *j = chopin__arena_alloc(res->arena, head + JSON_START);
    if (!j)
        return NULL;
    char *buf = (char *)j + head;
    memset(j, 0, sizeof(*j));
    j->res = res;
    j->buf = buf;
    j->cap = JSON_START;
    chopin__res_replace_body(res, status, CHOPIN__RES_COPY, APP_JSON, sizeof APP_JSON - 1);
    res->body = buf;
    res->body_len = 0;
    res->json = j;
    return j;
}

/* ---- containers -------------------------------------------------------------------- */

static void open_level(chopin_json *j, int object)
{
    if (!begin_value(j))
        return;
    if (j->depth == MAX_DEPTH) {
        set_error(j, -EINVAL);
        return;
    }
    j->depth++;
    uint64_t bit = 1ull << (j->depth - 1);
    j->is_object = object ? j->is_object | bit : j->is_object & ~bit;
    j->has_item &= ~bit;
    put_char(j, object ? '{' : '[');
}

static void close_level(chopin_json *j, int object)
{
    if (!live(j))
        return;
    if (j->depth == 0 || in_object(j) != object || j->after_key) {
        set_error(j, -EINVAL);
        return;
    }
    j->depth--;
    put_char(j, object ? '}' : ']');
}

void chopin_json_obj_begin(chopin_json *j)
{
    open_level(j, 1);
}

void chopin_json_obj_end(chopin_json *j)
{
    close_level(j, 1);
}

void chopin_json_arr_begin(chopin_json *j)
{
    open_level(j, 0);
}

void chopin_json_arr_end(chopin_json *j)
{
    close_level(j, 0);
}

/* ---- strings ----------------------------------------------------------------------- */

/* Length of a well-formed UTF-8 sequence at s (Unicode Table 3-7), or minus the length of
 * its maximal ill-formed prefix (at least 1) that one U+FFFD replaces. */
static long utf8_sequence(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t need;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* beyond U+10FFFF */
    } else {
        return -1;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= avail || s[k] < lo || s[k] > hi)
            return -(long)k;
        lo = 0x80;
        hi = 0xbf;
    }
    return (long)need + 1;
}

/* The bytes a string cannot hold as they are (RFC 8259 §7): controls, '"', '\\'; and
 * the non-ASCII ones, checked as UTF-8. */
static const uint8_t needs_escape[256] = {
    [0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1,
};

/* One bit per byte of w (bit 7 of that byte) for the bytes needs_escape holds, or
 * an overestimate in bytes above the first such byte: a borrow only carries out of a byte
 * that is itself a hit, so the lowest bit set is exact. */
static uint64_t escape_bits(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    uint64_t ctl = (w - ones * 0x20) & ~w;                 /* bytes below 0x20 */
    uint64_t zero = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash);
    return (ctl | zero | w) & high;                          /* w: bytes from 0x80 */
}

/* The 8 bytes at p, the first in the lowest bits whatever the byte order: escape_bits
 * borrows then run towards later bytes only, and the first hit is the lowest bit set. */
static uint64_t load_le64(const unsigned char *p)
{
    uint64_t w = chopin__load64((const char *)p);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* Index of the first byte from s[i] on that needs escaping, or len: 8 bytes a step where
 * 8 remain (field names and values are mostly plain ASCII), never reading past s[len). */
static size_t plain_run(const unsigned char *s, size_t i, size_t len)
{
    for (; len - i >= 8; i += 8) {
        uint64_t bits = escape_bits(load_le64(s + i));
        if (bits)
            return i + (size_t)__builtin_ctzll(bits) / 8;
    }
    while (i < len && !needs_escape[s[i]])
        i++;
    return i;
}

static void put_escape(chopin_json *j, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', 0};
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    default:
        memcpy(esc + 1, "u00", 3);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        put(j, esc, 6);
        return;
    }
    put(j, esc, 2);
}

static void put_string(chopin_json *j, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    put_char(j, '"');
    size_t i = 0;
    while (i < len && !j->err) {
        size_t run = plain_run(s, i, len);
        put(j, s + i, run - i); /* the common case: plain ASCII copied in one go */
        i = run;
        if (i == len)
            break;
        if (s[i] < 0x80) {
            put_escape(j, s[i++]);
            continue;
        }
        long n = utf8_sequence(s + i, len - i);
        if (n > 0) {
            put(j, s + i, (size_t)n);
            i += (size_t)n;
        } else {
            put(j, "\xef\xbf\xbd", 3); /* U+FFFD REPLACEMENT CHARACTER */
            i += (size_t)-n;
        }
    }
    put_char(j, '"');
}

void chopin_json_key(chopin_json *j, const char *key)
{
    if (!live(j))
        return;
    if (!key || !in_object(j) || j->after_key) {
        set_error(j, -EINVAL);
        return;
    }
    if (level_has_item(j))
        put_char(j, ',');
    level_mark_item(j);
    put_string(j, key, strlen(key));
    put_char(j, ':');
    j->after_key = 1;
}

void chopin_json_strn(chopin_json *j, const char *s, size_t len)
{
    if (!s && len) {
        if (live(j))
            set_error(j, -EINVAL);
        return;
    }
    if (begin_value(j))
        put_string(j, s ? s : "", len);
}

void chopin_json_str(chopin_json *j, const char *s)
{
    if (!s) {
        chopin_json_null(j); /* a missing C string is JSON's missing value */
        return;
    }
    chopin_json_strn(j, s, strlen(s));
}

/* ---- scalars ----------------------------------------------------------------------- */

void chopin_json_int(chopin_json *j, int64_t v)
{
    if (!begin_value(j))
        return;
    char buf[24], *p = buf + sizeof(buf);
    /* Work in unsigned so INT64_MIN negates without overflow. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(j, p, (size_t)(buf + sizeof(buf) - p));
}

/* The shortest of %.15g, %.16g, %.17g that reads back as the same double: 17 significant
 * digits always round-trip (IEEE 754 binary64), fewer avoid "0.10000000000000001". */
static size_t format_double(double v, char *buf, size_t cap)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    /* A locale with a decimal comma would make this invalid JSON. */
    for (char *c = buf; *c; c++)
        if (*c == ',')
            *c = '.';
    return (size_t)n;
}

void chopin_json_double(chopin_json *j, double v)
{
    if (!live(j))
        return;
    if (!isfinite(v)) {
        set_error(j, -EINVAL); /* JSON has no NaN or Infinity */
        return;
    }
    if (!begin_value(j))
        return;
    char buf[32];
    put(j, buf, format_double(v, buf, sizeof(buf)));
}

void chopin_json_bool(chopin_json *j, int v)
{
    if (begin_value(j))
        put(j, v ? "true" : "false", v ? 4 : 5);
}

void chopin_json_null(chopin_json *j)
{
    if (begin_value(j))
        put(j, "null", 4);
}

/* The bytes are the caller's promise of one JSON value: only their absence is checked
 * (an empty value would make the document invalid wherever it lands). */
void chopin_json_raw(chopin_json *j, const char *text, size_t len)
{
    if (!text || len == 0) {
        if (live(j))
            set_error(j, -EINVAL);
        return;
    }
    if (begin_value(j))
        put(j, text, len);
}

int chopin_json_end(chopin_json *j)
{
    if (!j)
        return -EINVAL;
    if (j->ended)
        return j->err;
    if (j->res->json != j)
        return -EINVAL; /* another body replaced this one; leave that one alone */
    if (!j->err && (j->depth != 0 || !j->started || j->after_key))
        j->err = -EINVAL;
    j->ended = 1;
    if (j->err) {
        /* The broken document gives its room back, so whatever the handler answers
         * instead (this 500, or its own) finds the arena as before the writer. */
        chopin__arena_release(j->res->arena, j->buf, j->cap);
        j->buf = NULL;
        j->len = j->cap = 0;
        chopin_res_error(j->res, 500, NULL);
    } else {
        j->res->body_len = j->len; /* the body is only sent once ended */
    }
    return j->err;
}

int chopin__json_unfinished(const chopin_res *res)
{
    return res->json && res->json->res == res && !res->json->ended;
}
