/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the Range parser. The first 8 bytes pick the representation's
 * length (small lengths more often, where the edges are), the rest is the field value.
 * Checks what the static file server relies on: every range lies inside the file, none
 * overlaps another, no more than asked for, their total at most the length (no
 * amplification), and nothing reported unless the answer is a 206.
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE
 *     fuzz/fuzz_range.c src/http/range.c -o fuzz_range
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t len;
    memcpy(&len, data, 8);
    if (data[0] & 1)
        len %= 64;
    size -= 8;
    char *v = malloc(size ? size : 1); /* exact size: ASan sees an over-read */
    if (!v)
        abort();
    memcpy(v, data + 8, size);
    struct chopin__range r[MAX];
    size_t n = 12345;
    enum chopin__range_result res = chopin__range_parse(v, size, len, r, MAX, &n);
    if (res != CHOPIN__RANGE_OK && n != 0)
        abort();
    if (res == CHOPIN__RANGE_OK && (n == 0 || n > MAX))
        abort();
    uint64_t total = 0;
    for (size_t i = 0; res == CHOPIN__RANGE_OK && i < n; i++) {
        if (r[i].first > r[i].last || r[i].last >= len)
            abort();
        for (size_t j = 0; j < i; j++)
            if (r[i].first <= r[j].last && r[j].first <= r[i].last)
                abort();
        total += r[i].last - r[i].first + 1;
    }
    if (total > len)
        abort();
    free(v);
    return 0;
}
