/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the conditional-request parsers (src/http/conditional.c): the input
 * is split at '\n' into If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
 * If-Range and an entity-tag, each an exact-size heap copy (ASan sees any over-read).
 * Checks: a parsed HTTP-date formats and parses back to itself; a strong match is also a
 * weak one; without preconditions the answer proceeds; the evaluation gives one of its
 * three results; an absent If-Range holds.
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE
 *     fuzz/fuzz_conditional.c src/http/conditional.c src/http/date.c -o fuzz_conditional
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/conditional.h"
#include "http/date.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1764720000

static char *field(const uint8_t **p, const uint8_t *end, size_t *len)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    const uint8_t *stop = nl ? nl : end;
    *len = (size_t)(stop - *p);
    char *copy = malloc(*len ? *len : 1);
    if (!copy)
        abort();
    memcpy(copy, *p, *len);
    *p = nl ? nl + 1 : end;
    return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *f[6];
    size_t len[6];
    for (int i = 0; i < 6; i++)
        f[i] = field(&p, end, &len[i]);

    int64_t t;
    for (int i = 2; i <= 4; i++) {
        if (chopin__http_date_parse(f[i], len[i], NOW, &t) != 0)
            continue;
        char text[CHOPIN__DATE_LEN + 1];
        int64_t back;
        chopin__date_format((time_t)t, text);
        if (t >= -62167219200LL && t <= 253402300799LL &&
            (chopin__http_date_parse(text, CHOPIN__DATE_LEN, NOW, &back) != 0 || back != t))
            abort();
    }
    for (int i = 0; i < 2; i++)
        if (chopin__etag_list_match(f[i], len[i], f[5], len[5], 0) &&
            !chopin__etag_list_match(f[i], len[i], f[5], len[5], 1))
            abort();

    struct chopin__validators v = {f[5], len[5], (int64_t)len[0] * 86400};
    struct chopin__cond_fields all = {{f[0], len[0]}, {f[1], len[1]}, {f[2], len[2]},
                                      {f[3], len[3]}, {f[4], len[4]}};
    enum chopin__cond_result r = chopin__cond_eval(&all, (int)(size & 1), &v, NOW);
    if (r != CHOPIN__COND_PROCEED && r != CHOPIN__COND_NOT_MODIFIED && r != CHOPIN__COND_FAILED)
        abort();
    struct chopin__cond_fields none = {{NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}};
    if (chopin__cond_eval(&none, 1, &v, NOW) != CHOPIN__COND_PROCEED)
        abort();
    chopin__if_range_holds(all.if_range, &v, NOW);
    if (!chopin__if_range_holds(none.if_range, &v, NOW))
        abort();
    for (int i = 0; i < 6; i++)
        free(f[i]);
    return 0;
}
