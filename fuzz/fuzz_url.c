/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for percent-decoding. Checks the properties the router and the query
 * helpers rely on: decoding never lengthens, in-place equals out-of-place, a strict
 * success equals the lenient result, and chopin__pct_equal agrees with the decoder.
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE
 *     fuzz/fuzz_url.c src/http/url.c -o fuzz_url
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned plus = data[0] & 1 ? CHOPIN__PCT_PLUS : 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    /* Exact-size heap copies, so ASan sees any read or write past the end. */
    char *lenient = malloc(len + 1), *strict = malloc(len + 1), *inplace = malloc(len + 1);
    if (!lenient || !strict || !inplace)
        abort();
    memcpy(inplace, in, len);

    ssize_t n = chopin__pct_decode(lenient, in, len, plus);
    if (n < 0 || (size_t)n > len)
        abort();
    ssize_t m = chopin__pct_decode(inplace, inplace, len, plus);
    if (m != n || memcmp(inplace, lenient, (size_t)n) != 0)
        abort();
    ssize_t s = chopin__pct_decode(strict, in, len, plus | CHOPIN__PCT_STRICT | CHOPIN__PCT_NO_NUL);
    if (s >= 0 && (s != n || memcmp(strict, lenient, (size_t)n) != 0 ||
                   memchr(strict, '\0', (size_t)s)))
        abort();
    if (!chopin__pct_equal(in, len, lenient, (size_t)n, plus))
        abort();
    if (n > 0 && chopin__pct_equal(in, len, lenient, (size_t)n - 1, plus))
        abort();
    if (!chopin__pct_needs_decode(in, len, plus) && (n != (ssize_t)len || memcmp(in, lenient, len)))
        abort();
    free(lenient);
    free(strict);
    free(inplace);
    return 0;
}
