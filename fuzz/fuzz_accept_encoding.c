/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the Accept-Encoding parser and negotiator (src/http/accept_encoding.c).
 * The first byte chooses the server's offer; the rest is the field value, in an exact-size
 * heap copy so ASan sees any read past its end. Properties checked: every q is in 0..1000 or
 * unlisted; the chosen coding is one offered (or none); splitting the value at a comma into
 * two field lines changes nothing (RFC 9110 §5.3); a coding the negotiator chose is one the
 * client did not refuse.
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE
 *     fuzz/fuzz_accept_encoding.c src/http/accept_encoding.c -o fuzz_accept_encoding
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/accept_encoding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_state(const struct chopin__accept_encoding *ae)
{
    for (int c = CHOPIN__CODING_IDENTITY; c < CHOPIN__CODING_COUNT_; c++)
        if (ae->q[c] > 1000 && ae->q[c] != CHOPIN__Q_UNLISTED)
            abort();
    if (ae->star > 1000 && ae->star != CHOPIN__Q_UNLISTED)
        abort();
}

/* The offer: the codings whose bit is set in `bits`, in an order the bits rotate. */
static size_t offer_from(uint8_t bits, uint8_t *prefer)
{
    size_t n = 0;
    int start = bits >> 4;
    for (int i = 0; i < 4; i++) {
        int c = CHOPIN__CODING_IDENTITY + (start + i) % 4;
        if (bits & (1u << (c - 1)))
            prefer[n++] = (uint8_t)c;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t prefer[4];
    size_t n = offer_from(data[0], prefer);
    size_t len = size - 1;
    char *value = malloc(len ? len : 1);
    if (!value)
        abort();
    memcpy(value, data + 1, len);

    struct chopin__accept_encoding whole;
    chopin__accept_encoding_init(&whole);
    chopin__accept_encoding_add(&whole, value, len);
    check_state(&whole);
    enum chopin__coding c = chopin__accept_encoding_choose(&whole, prefer, n);
    if (c != CHOPIN__CODING_NONE) {
        if (!memchr(prefer, c, n))
            abort();
        uint16_t q = whole.q[c] != CHOPIN__Q_UNLISTED ? whole.q[c] : whole.star;
        if (q == 0)
            abort();
    }

    const char *comma = memchr(value, ',', len);
    if (comma) {
        size_t head = (size_t)(comma - value);
        struct chopin__accept_encoding split;
        chopin__accept_encoding_init(&split);
        chopin__accept_encoding_add(&split, value, head);
        chopin__accept_encoding_add(&split, comma + 1, len - head - 1);
        if (memcmp(split.q, whole.q, sizeof split.q) != 0 || split.star != whole.star ||
            chopin__accept_encoding_choose(&split, prefer, n) != c)
            abort();
    }
    free(value);
    return 0;
}
