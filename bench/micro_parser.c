/* SPDX-License-Identifier: MIT */
/*
 * Micro-benchmark of the request-head parser: nanoseconds per parse of two requests at
 * every SIMD level the CPU has.
 *
 *   cc -O2 -Iinclude -Isrc -D_GNU_SOURCE bench/micro_parser.c src/http/parser.c src/http/scan.c \
 *     -o micro_parser
 *   cc -O2 -Iinclude -Isrc -D_GNU_SOURCE bench/micro_parser.c build/libchopin.a -lpthread -luring
 *
 * Usage: micro_parser                 the table (best of 60 runs of ~5 ms per cell)
 *        micro_parser LEVEL REQ N     N parses of REQ (techempower|browser) at LEVEL
 *                                     (scalar|sse2|avx2, or pico below): for callgrind
 *                                     instruction counts, e.g.
 *                                     valgrind --tool=callgrind micro_parser scalar browser 1000
 *
 * Side by side with picohttpparser (h2o's parser): built with -DCHOPIN_BENCH_PICO=1,
 * -I<dir of picohttpparser.h> and picohttpparser.c on the command line, all from a copy
 * outside this repository (nothing of it lives here; docs/PERFORMANCE.md, section 7, has
 * the commands). The table then gains a column for it, and "pico" is a LEVEL. Its SIMD
 * path is chosen at compile time (-msse4.2: pcmpestri); compile picohttpparser.c and this
 * file in one command with the same flags, so the column's label (from __SSE4_2__ here)
 * says which path was measured. Both parsers get the same bytes and the same header
 * capacity, and their results are checked against each other before anything is timed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/parser.h"

#if CHOPIN_BENCH_PICO
#include "picohttpparser.h"
#ifdef __SSE4_2__
#define PICO_LABEL "pico-sse42"
#else
#define PICO_LABEL "pico-scalar"
#endif
#endif

/* The request wrk sends in TechEmpower's plaintext test. */
static const char techempower[] =
    "GET /plaintext HTTP/1.1\r\n"
    "Host: server\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20130501 Firefox/30.0 "
    "AppleWebKit/600.00 Chrome/30.0.0000.0 Trident/10.0 Safari/600.00\r\n"
    "Cookie: uid=12345678901234567890; __utma=1.1234567890.1234567890.1234567890.1234567890.12; "
    "wd=2560x1600\r\n"
    "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,"
    "*/*;q=0.7\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

/* A browser GET of 732 bytes with 10 headers, about the size and shape of
 * picohttpparser's own benchmark request (703 bytes, 9 headers: a long path, a long
 * User-Agent, Accept-*, Connection and a ~260-byte Cookie). */
static const char browser[] =
    "GET /static/images/2024/summer-collection/hero-banner-large.webp?v=1717171717 HTTP/1.1\r\n"
    "Host: www.example-shop.com\r\n"
    "Connection: keep-alive\r\n"
    "sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36\r\n"
    "Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Referer: https://www.example-shop.com/collections/summer?sort=price-asc\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n"
    "Cookie: session_id=8f14e45fceea167a5a36dedd4bea2543; cart=3c59dc048e8850243be8079a5c74d079; "
    "theme=dark; ab_test=variant-b4; consent=yes\r\n"
    "\r\n";

static const struct {
    const char *name;
    const char *req;
    size_t len;
} reqs[] = {
    {"techempower", techempower, sizeof techempower - 1},
    {"browser", browser, sizeof browser - 1},
};

#define MAX_HEADERS 64 /* header capacity, the same for both parsers */
static const struct chopin__limits lim = {8192, 65536, MAX_HEADERS};
static struct chopin__header headers[MAX_HEADERS];

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Parses `n` times; the buffer pointer goes through an opaque asm so the compiler cannot
 * hoist the call out of the loop. Returns the last result. */
static long parse_n(const char *req, size_t len, long n)
{
    struct chopin__head head;
    long r = 0;
    for (long i = 0; i < n; i++) {
        const char *p = req;
        __asm__ volatile("" : "+r"(p));
        head.headers = headers;
        r = chopin__parse_request(p, len, &head, &lim);
        __asm__ volatile("" : : "r"(r), "m"(head) : "memory");
    }
    return r;
}

#if CHOPIN_BENCH_PICO
static struct phr_header pico_headers[MAX_HEADERS];

/* The same loop around phr_parse_request. Its outputs are what our parse fills in too
 * (method, target, minor version, the headers); last_len 0: a first, whole read. */
static long pico_parse_n(const char *req, size_t len, long n)
{
    const char *method, *path;
    size_t method_len, path_len, nheaders;
    int minor;
    long r = 0;
    for (long i = 0; i < n; i++) {
        const char *p = req;
        __asm__ volatile("" : "+r"(p));
        nheaders = MAX_HEADERS;
        r = phr_parse_request(p, len, &method, &method_len, &path, &path_len, &minor,
                              pico_headers, &nheaders, 0);
        __asm__ volatile("" : : "r"(r), "r"(method), "r"(path), "r"(method_len), "r"(path_len),
                         "r"(minor), "r"(nheaders)
                         : "memory");
    }
    return r;
}

/* Both parsers must agree on one request before their times mean the same thing: the
 * whole head, the method, the target, the version, every name and value (pointer and
 * length: both strip the OWS around values). Returns 0 when they do. */
static int pico_check(const char *name, const char *req, size_t len, enum chopin__simd level)
{
    struct chopin__head head;
    head.headers = headers;
    if (chopin__parser_set_simd(level) != level) return 0; /* a level this CPU lacks */
    long r = chopin__parse_request(req, len, &head, &lim);
    const char *method, *path;
    size_t method_len, path_len, n = MAX_HEADERS;
    int minor;
    int pr = phr_parse_request(req, len, &method, &method_len, &path, &path_len, &minor,
                               pico_headers, &n, 0);
    int bad = r != (long)len || pr != (int)len || n != head.nheaders ||
              method != head.method || method_len != head.method_len ||
              path != head.target || path_len != head.target_len || minor != head.minor;
    for (size_t i = 0; !bad && i < n; i++)
        bad = pico_headers[i].name != headers[i].name ||
              pico_headers[i].name_len != headers[i].name_len ||
              pico_headers[i].value != headers[i].value ||
              pico_headers[i].value_len != headers[i].value_len;
    if (bad)
        fprintf(stderr,
                "%s: the parsers disagree: chopin (%s) %ld bytes, %u headers, method %u, "
                "target %u; picohttpparser %d bytes, %zu headers, method %zu, path %zu\n",
                name, chopin__simd_name(level), r, head.nheaders, head.method_len,
                head.target_len, pr, n, method_len, path_len);
    return bad;
}
#endif

typedef long parse_n_fn(const char *, size_t, long);

/* Minimum over many short runs: on a shared machine the minimum is the run nobody
 * preempted, which is the number that compares across builds. */
static double ns_per_parse(parse_n_fn *fn, const char *req, size_t len)
{
    long n = 100;
    for (;;) { /* grow the batch until it takes ~5 ms */
        double t0 = now_ns();
        fn(req, len, n);
        if (now_ns() - t0 > 5e6) break;
        n *= 2;
    }
    double best = 1e30;
    for (int run = 0; run < 60; run++) {
        double t0 = now_ns();
        fn(req, len, n);
        double x = (now_ns() - t0) / (double)n;
        if (x < best) best = x;
    }
    return best;
}

static enum chopin__simd level_named(const char *s)
{
    if (!strcmp(s, "scalar")) return CHOPIN__SIMD_SCALAR;
    if (!strcmp(s, "sse2")) return CHOPIN__SIMD_SSE2;
    if (!strcmp(s, "avx2")) return CHOPIN__SIMD_AVX2;
    return CHOPIN__SIMD_AUTO;
}

int main(int argc, char **argv)
{
    static const enum chopin__simd levels[] = {CHOPIN__SIMD_SCALAR, CHOPIN__SIMD_SSE2,
                                               CHOPIN__SIMD_AVX2};
    size_t nreq = sizeof reqs / sizeof reqs[0];

    for (size_t i = 0; i < nreq; i++) {
        long r = parse_n(reqs[i].req, reqs[i].len, 1);
        if (r != (long)reqs[i].len) {
            fprintf(stderr, "%s: parse returned %ld, expected %zu\n", reqs[i].name, r,
                    reqs[i].len);
            return 1;
        }
#if CHOPIN_BENCH_PICO
        for (size_t l = 0; l < 3; l++)
            if (pico_check(reqs[i].name, reqs[i].req, reqs[i].len, levels[l])) return 1;
        chopin__parser_set_simd(CHOPIN__SIMD_AUTO);
#endif
    }

    if (argc == 4) {
#if !CHOPIN_BENCH_PICO
        if (!strcmp(argv[1], "pico")) {
            fprintf(stderr, "built without picohttpparser (-DCHOPIN_BENCH_PICO=1)\n");
            return 2;
        }
#endif
        enum chopin__simd got = chopin__parser_set_simd(level_named(argv[1]));
        long n = atol(argv[3]);
        for (size_t i = 0; i < nreq; i++) {
            if (strcmp(argv[2], reqs[i].name)) continue;
#if CHOPIN_BENCH_PICO
            if (!strcmp(argv[1], "pico")) {
                long r = pico_parse_n(reqs[i].req, reqs[i].len, n);
                printf("%s %s x%ld -> %ld\n", PICO_LABEL, reqs[i].name, n, r);
                return 0;
            }
#endif
            long r = parse_n(reqs[i].req, reqs[i].len, n);
            printf("%s %s x%ld -> %ld\n", chopin__simd_name(got), reqs[i].name, n, r);
            return 0;
        }
        fprintf(stderr, "unknown request %s\n", argv[2]);
        return 2;
    }

    printf("%-12s %6s %8s", "request", "bytes", "headers");
    for (size_t l = 0; l < 3; l++) printf(" %9s", chopin__simd_name(levels[l]));
#if CHOPIN_BENCH_PICO
    printf(" %12s", PICO_LABEL);
#endif
    printf("   (ns per parse)\n");
    for (size_t i = 0; i < nreq; i++) {
        struct chopin__head head;
        head.headers = headers;
        chopin__parse_request(reqs[i].req, reqs[i].len, &head, &lim);
        printf("%-12s %6zu %8u", reqs[i].name, reqs[i].len, head.nheaders);
        for (size_t l = 0; l < 3; l++) {
            if (chopin__parser_set_simd(levels[l]) != levels[l]) {
                printf(" %9s", "n/a");
                continue;
            }
            printf(" %9.1f", ns_per_parse(parse_n, reqs[i].req, reqs[i].len));
            fflush(stdout);
        }
#if CHOPIN_BENCH_PICO
        printf(" %12.1f", ns_per_parse(pico_parse_n, reqs[i].req, reqs[i].len));
#endif
        printf("\n");
    }
    chopin__parser_set_simd(CHOPIN__SIMD_AUTO);
    return 0;
}
