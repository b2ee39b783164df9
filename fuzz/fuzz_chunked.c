/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the chunked body decoder.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE \
 *       fuzz/fuzz_chunked.c src/http/chunked.c -o fuzz_chunked
 *   ./fuzz_chunked fuzz/corpus/chunked
 *
 * The input is a chunked body. It is decoded in one call, then again with the bytes
 * offered in pieces of pseudo-random sizes (seeded by the input), then one byte per call;
 * all three must agree on the verdict, the bytes consumed and the decoded payload. Each
 * run works on an exact-size copy so ASan catches any access past the input, and checks
 * that the output never overtakes the input and never exceeds max_body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/chunked.h"

#define REQUIRE(cond)                                                                       \
    do {                                                                                    \
        if (!(cond)) __builtin_trap();                                                      \
    } while (0)

struct result {
    int ret;
    size_t in, out;
};

/* Offers the body in pieces: piece sizes come from a xorshift seeded with `seed` (0 = all
 * at once, 1 = one byte per call). */
static struct result run(const uint8_t *data, size_t size, uint64_t max_body, uint64_t seed,
                         char **decoded)
{
    char *b = malloc(size ? size : 1);
    memcpy(b, data, size);
    struct chopin__chunked c;
    chopin__chunked_init(&c);
    struct result r = {0, 0, 0};
    size_t avail = seed ? 0 : size;
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (;;) {
        if (seed == 1) {
            avail += avail < size;
        } else if (seed) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t piece = (size_t)(x % 17);
            avail = size - avail < piece ? size : avail + piece;
        }
        size_t in0 = r.in;
        r.ret = chopin__chunked_decode(&c, b, avail, &r.in, &r.out, max_body);
        REQUIRE(r.out <= r.in && r.in <= avail && r.in >= in0);
        REQUIRE(c.total == r.out && r.out <= max_body);
        REQUIRE(r.ret == 0 || r.ret == 1 || r.ret == -400 || r.ret == -413);
        if (r.ret != 0 || avail == size) break;
    }
    if (r.ret != 0) { /* a final verdict sticks and consumes nothing */
        size_t in = r.in, out = r.out;
        REQUIRE(chopin__chunked_decode(&c, b, size, &in, &out, max_body) == r.ret);
        REQUIRE(in == r.in && out == r.out);
    }
    *decoded = b;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t maxes[] = {UINT64_MAX, 1 << 20, 64, 0};
    if (size > 65536) return 0;
    /* the last byte picks the body limit, so the corpus stays readable text */
    uint64_t max_body = maxes[size ? data[size - 1] % 4 : 0];

    char *whole, *piecewise, *bytewise;
    struct result a = run(data, size, max_body, 0, &whole);
    struct result b = run(data, size, max_body, size + 2, &piecewise);
    struct result c = run(data, size, max_body, 1, &bytewise);
    REQUIRE(a.ret == b.ret && a.in == b.in && a.out == b.out);
    REQUIRE(a.ret == c.ret && a.in == c.in && a.out == c.out);
    REQUIRE(memcmp(whole, piecewise, a.out) == 0 && memcmp(whole, bytewise, a.out) == 0);
    if (a.ret == 1) REQUIRE(a.in >= 5 && !memcmp(data + a.in - 2, "\r\n", 2));
    if (a.ret == 0) REQUIRE(a.in == size);
    free(whole);
    free(piecewise);
    free(bytewise);
    return 0;
}
