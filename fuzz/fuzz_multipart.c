/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the multipart/form-data parser. The input's first byte picks a
 * split point and a part-header limit; the rest is the body for the boundary "b". The
 * body is parsed whole and in two pieces (each an exact-size heap copy, so ASan sees an
 * over-read): the verdict and the transcript of callbacks (part headers, data, part
 * ends) must be the same, and every string a part hands over must lie inside the header
 * block.
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE
 *     fuzz/fuzz_multipart.c src/http/multipart.c src/http/url.c -o fuzz_multipart
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct digest {
    uint64_t h;
    uint64_t parts, ends, bytes;
};

static void mix(struct digest *d, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ (unsigned char)p[i]) * 1099511628211ull;
}

static void inside(const struct chopin__mp_part *part, const char *s, size_t n) {
    if (s && (s < part->headers || s + n > part->headers + part->headers_len))
        abort();
}

static int on_part(void *arg, const struct chopin__mp_part *part) {
    struct digest *d = arg;
    inside(part, part->name, part->name_len);
    inside(part, part->filename, part->filename_len);
    inside(part, part->content_type, part->content_type_len);
    if (!part->name)
        abort(); /* a part without a name is refused */
    d->parts++;
    mix(d, "[", 1);
    mix(d, part->name, part->name_len);
    if (part->filename)
        mix(d, part->filename, part->filename_len);
    return 0;
}

static int on_data(void *arg, const char *p, size_t n) {
    struct digest *d = arg;
    if (n == 0)
        abort(); /* no empty pieces */
    d->bytes += n;
    mix(d, p, n);
    return 0;
}

static int on_end(void *arg) {
    struct digest *d = arg;
    d->ends++;
    mix(d, "<", 1);
    return 0;
}

static int parse(const char *body, size_t len, size_t cut, uint32_t hcap, struct digest *d) {
    static const struct chopin__mp_callbacks cb = {on_part, on_data, on_end};
    struct chopin__multipart mp;
    char *hbuf = malloc(hcap);
    if (!hbuf || chopin__mp_init(&mp, "b", 1, hbuf, hcap, 8, &cb, d) != 0)
        abort();
    int rc = 0;
    size_t from[2] = {0, cut}, to[2] = {cut, len};
    for (int i = 0; i < 2 && rc == 0; i++) {
        size_t n = to[i] - from[i];
        char *piece = malloc(n ? n : 1);
        if (!piece)
            abort();
        memcpy(piece, body + from[i], n);
        if (n)
            rc = chopin__mp_feed(&mp, piece, n);
        free(piece);
    }
    if (rc == 0)
        rc = chopin__mp_finish(&mp);
    free(hbuf);
    if (d->ends > d->parts || d->parts > d->ends + 1)
        abort();
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    uint32_t hcap = 16 + (data[0] & 0x7f) * 4;
    size_t cut = len ? (size_t)data[0] * 2654435761u % (len + 1) : 0;
    struct digest whole = {.h = 14695981039346656037ull}, split = whole;
    int a = parse(body, len, len, hcap, &whole);
    int b = parse(body, len, cut, hcap, &split);
    /* A part's data may come out before the error that stops it, so the transcripts agree
     * only on success; the verdict always does. */
    if (a != b || (a == 0 && memcmp(&whole, &split, sizeof whole) != 0))
        abort();
    return 0;
}
