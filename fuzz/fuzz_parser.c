/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the request-head parser.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE \
 *       fuzz/fuzz_parser.c src/http/parser.c -o fuzz_parser
 *   ./fuzz_parser fuzz/corpus/parser
 *
 * Each input is parsed with two sets of limits (roomy and tight) at every SIMD level the
 * CPU has. Invariants: the levels agree exactly; a result is a length within the input,
 * "incomplete", or one of the documented statuses; every pointer of a complete head lies
 * inside it; and each prefix of the input is "incomplete" or gets the same verdict as the
 * whole (a complete head of n bytes is never reported for fewer than n bytes). Inputs are
 * copied to allocations of exactly their size so ASan catches any over-read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

#define MAXH 100

struct outcome {
    ssize_t r;
    struct chopin__head h;
    struct chopin__header hd[MAXH];
};

static const struct chopin__limits limits[] = {
    {65536, 65536, MAXH},
    {64, 256, 4},
};

static const enum chopin__simd levels[] = {CHOPIN__SIMD_SCALAR, CHOPIN__SIMD_SSE2,
                                           CHOPIN__SIMD_AVX2};
static size_t nlevels; /* levels[0..nlevels) are available */

#define REQUIRE(cond)                                                                       \
    do {                                                                                    \
        if (!(cond)) __builtin_trap();                                                      \
    } while (0)

static void parse_at(size_t level, const char *b, size_t n, const struct chopin__limits *lim,
                     struct outcome *o)
{
    chopin__parser_set_simd(levels[level]);
    memset(o, 0, sizeof *o);
    o->h.headers = o->hd;
    o->r = chopin__parse_request(b, n, &o->h, lim);
}

static int inside(const char *p, size_t len, const char *lo, const char *hi)
{
    return p && p >= lo && p + len <= hi;
}

static void check_outcome(const struct outcome *o, const char *b, size_t n,
                          const struct chopin__limits *lim)
{
    ssize_t r = o->r;
    if (r < 0) {
        REQUIRE(r == CHOPIN__PARSE_INCOMPLETE || r == -400 || r == -414 || r == -417 ||
                r == -431 || r == -501 || r == -505);
        return;
    }
    REQUIRE(r > 0 && (size_t)r <= n && (size_t)r <= lim->max_header_bytes);
    const struct chopin__head *h = &o->h;
    const char *e = b + r;
    REQUIRE(r >= 4 && !memcmp(e - 4, "\r\n\r\n", 4));
    REQUIRE(inside(h->method, h->method_len, b, e) && h->method_len > 0);
    REQUIRE(h->method_id < CHOPIN_METHOD_COUNT);
    REQUIRE(inside(h->target, h->target_len, b, e) && h->target_len > 0);
    REQUIRE(inside(h->path, h->path_len, b, e) && h->path_len > 0);
    REQUIRE(h->query == NULL ? h->query_len == 0 : inside(h->query, h->query_len, b, e));
    REQUIRE(h->host == NULL ? h->host_len == 0 : inside(h->host, h->host_len, b, e));
    REQUIRE(h->minor <= 1 && h->keep_alive <= 1 && h->expect_continue <= 1 && h->upgrade <= 1);
    REQUIRE(h->minor == 1 || h->body_kind != CHOPIN__BODY_CHUNKED);
    REQUIRE(h->body_kind <= CHOPIN__BODY_CHUNKED);
    REQUIRE((h->body_kind == CHOPIN__BODY_LENGTH) == (h->content_length > 0));
    REQUIRE(h->nheaders <= lim->max_headers);
    for (uint32_t i = 0; i < h->nheaders; i++) {
        const struct chopin__header *x = &h->headers[i];
        REQUIRE(inside(x->name, x->name_len, b, e) && x->name_len > 0);
        REQUIRE(x->value_len == 0 || inside(x->value, x->value_len, b, e));
        REQUIRE(x->name[x->name_len] == ':');
        for (uint32_t j = 0; j < x->value_len; j++) {
            unsigned char c = (unsigned char)x->value[j];
            REQUIRE(c == '\t' || c >= 0x20);
            REQUIRE(c != 0x7f);
        }
        if (x->value_len) {
            REQUIRE(x->value[0] != ' ' && x->value[0] != '\t');
            REQUIRE(x->value[x->value_len - 1] != ' ' && x->value[x->value_len - 1] != '\t');
        }
    }
    for (uint32_t j = 0; j < h->target_len; j++) {
        unsigned char c = (unsigned char)h->target[j];
        REQUIRE(c > 0x20 && c != 0x7f);
    }
}

static int same(const struct outcome *a, const struct outcome *b)
{
    if (a->r != b->r) return 0;
    if (a->r < 0) return 1;
    const struct chopin__head *x = &a->h, *y = &b->h;
    if (x->method != y->method || x->target != y->target || x->path != y->path ||
        x->query != y->query || x->host != y->host || x->content_length != y->content_length ||
        x->nheaders != y->nheaders || x->target_len != y->target_len ||
        x->path_len != y->path_len || x->query_len != y->query_len ||
        x->host_len != y->host_len || x->method_len != y->method_len ||
        x->method_id != y->method_id || x->minor != y->minor || x->body_kind != y->body_kind ||
        x->keep_alive != y->keep_alive || x->expect_continue != y->expect_continue ||
        x->upgrade != y->upgrade)
        return 0;
    return memcmp(a->hd, b->hd, x->nheaders * sizeof a->hd[0]) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* A prefix, in an exact-size copy, is incomplete or gets the whole input's verdict. */
static void check_prefix(const char *b, size_t k, const struct chopin__limits *lim,
                         const struct outcome *ref)
{
    static struct outcome o;
    char *p = malloc(k ? k : 1);
    memcpy(p, b, k);
    parse_at(k % nlevels, p, k, lim, &o);
    check_outcome(&o, p, k, lim);
    if (ref->r >= 0 && (size_t)ref->r <= k) REQUIRE(o.r == ref->r);
    else if (ref->r >= 0 || ref->r == CHOPIN__PARSE_INCOMPLETE)
        REQUIRE(o.r == CHOPIN__PARSE_INCOMPLETE);
    else REQUIRE(o.r == CHOPIN__PARSE_INCOMPLETE || o.r == ref->r);
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct outcome ref, o;
    if (nlevels == 0) {
        while (nlevels < 3 && chopin__parser_set_simd(levels[nlevels]) == levels[nlevels])
            nlevels++;
    }
    if (size > 16384) return 0;
    char *b = malloc(size ? size : 1);
    memcpy(b, data, size);

    for (size_t li = 0; li < sizeof limits / sizeof limits[0]; li++) {
        const struct chopin__limits *lim = &limits[li];
        parse_at(0, b, size, lim, &ref);
        check_outcome(&ref, b, size, lim);
        for (size_t l = 1; l < nlevels; l++) {
            parse_at(l, b, size, lim, &o);
            REQUIRE(same(&ref, &o));
        }

        /* Prefixes: all of them for small inputs, else a sample plus the one just short
         * of a complete head. */
        size_t step = size <= 256 ? 1 : size / 128;
        for (size_t k = 0; k < size; k += step) check_prefix(b, k, lim, &ref);
        if (ref.r > 1) check_prefix(b, (size_t)ref.r - 1, lim, &ref);
    }
    free(b);
    return 0;
}
