/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the application/x-www-form-urlencoded parser. The input's first
 * byte sets the field limits; the rest is the body. Checks: every field lies inside the
 * buffer and is no longer than its raw form, the count matches the callbacks, the limits
 * hold, and a body without '%' or '+' comes out byte for byte.
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE
 *     fuzz/fuzz_form.c src/http/form.c src/http/url.c -o fuzz_form
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    const char *buf;
    size_t len, fields, bytes, max_field;
};

static int field(void *arg, const char *name, size_t nlen, const char *value, size_t vlen) {
    struct seen *s = arg;
    if (name < s->buf || name + nlen > s->buf + s->len || value < s->buf ||
        value + vlen > s->buf + s->len || nlen + vlen > s->max_field)
        abort();
    s->fields++;
    s->bytes += nlen + vlen;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    if (!buf)
        abort();
    memcpy(buf, data + 1, len);
    uint32_t max_fields = data[0] & 0x0f;
    size_t max_field = (size_t)(data[0] >> 4) * 8;
    struct seen s = {buf, len, 0, 0, max_field};
    ssize_t n = chopin__form_parse(buf, len, max_fields, max_field, field, &s);
    if (n >= 0 && ((size_t)n != s.fields || s.fields > max_fields || s.bytes > len))
        abort();
    if (n < 0 && n != -EFBIG)
        abort();
    if (n >= 0 && !memchr(data + 1, '%', len) && !memchr(data + 1, '+', len) &&
        memcmp(buf, data + 1, len) != 0)
        abort();
    free(buf);
    return 0;
}
