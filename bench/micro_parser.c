/*
 * Micro-benchmark of the request-head parser: nanoseconds per parse of two requests at
 * every SIMD level the CPU has.
 *
 *   cc -O2 -Iinclude -Isrc -D_GNU_SOURCE bench/micro_parser.c src/http/parser.c -o micro_parser
 *   cc -O2 -Iinclude -Isrc -D_GNU_SOURCE bench/micro_parser.c build/libchopin.a -lpthread -luring
 *
 * Usage: micro_parser                 the table (best of 60 runs of ~5 ms per cell)
 *        micro_parser LEVEL REQ N     N parses of REQ (techempower|browser) at LEVEL
 *                                     (scalar|sse2|avx2): for callgrind instruction counts,
 *                                     e.g. valgrind --tool=callgrind micro_parser scalar browser 1000
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/parser.h"

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

/* A browser GET of 732 bytes with 10 headers, the size and shape of picohttpparser's
 * benchmark request. */
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

static const struct chopin__limits lim = {8192, 65536, 64};
static struct chopin__header headers[64];

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

/* Minimum over many short runs: on a shared machine the minimum is the run nobody
 * preempted, which is the number that compares across builds. */
static double ns_per_parse(const char *req, size_t len)
{
    long n = 100;
    for (;;) { /* grow the batch until it takes ~5 ms */
        double t0 = now_ns();
        parse_n(req, len, n);
        if (now_ns() - t0 > 5e6) break;
        n *= 2;
    }
    double best = 1e30;
    for (int run = 0; run < 60; run++) {
        double t0 = now_ns();
        parse_n(req, len, n);
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
    }

    if (argc == 4) {
        enum chopin__simd got = chopin__parser_set_simd(level_named(argv[1]));
        long n = atol(argv[3]);
        for (size_t i = 0; i < nreq; i++) {
            if (strcmp(argv[2], reqs[i].name)) continue;
            long r = parse_n(reqs[i].req, reqs[i].len, n);
            printf("%s %s x%ld -> %ld\n", chopin__simd_name(got), reqs[i].name, n, r);
            return 0;
        }
        fprintf(stderr, "unknown request %s\n", argv[2]);
        return 2;
    }

    printf("%-12s %6s %8s", "request", "bytes", "headers");
    for (size_t l = 0; l < 3; l++) printf(" %9s", chopin__simd_name(levels[l]));
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
            printf(" %9.1f", ns_per_parse(reqs[i].req, reqs[i].len));
            fflush(stdout);
        }
        printf("\n");
    }
    chopin__parser_set_simd(CHOPIN__SIMD_AUTO);
    return 0;
}
