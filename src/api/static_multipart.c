/* SPDX-License-Identifier: MIT */
/*
 * multipart/byteranges (RFC 9110 §14.6) for a static file: a stream whose producer writes
 * each part's head and then its bytes as the socket drains, so a large file is read a
 * buffer at a time, never whole. Parts from a descriptor are read with pread (a sendfile
 * segment per part would need the output queue to hold 2n+1 segments); a file that
 * shrank under it aborts the connection instead of sending short parts.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/static_internal.h"

enum stage { PART_HEAD, PART_DATA, CLOSING, DONE };

struct parts {
    struct chopin__static_source src;
    const char *type; /* static, or the mount's: outlives the answer */
    size_t n, i;
    enum stage stage;
    uint64_t at;      /* next byte of range i */
    size_t text_len, text_off;
    char text[320];   /* a part head or the closing line, not yet produced */
    char boundary[24];
    struct chopin__range r[];
};

static void parts_done(void *state)
{
    struct parts *p = state;
    if (p->src.fd >= 0)
        close(p->src.fd);
    chopin__static_bytes_unref(NULL, p->src.bytes);
    free(p);
}

static void next_text(struct parts *p)
{
    int n;
    if (p->stage == PART_HEAD) {
        const struct chopin__range *r = &p->r[p->i];
        n = snprintf(p->text, sizeof p->text,
                     "\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64
                     "/%" PRIu64 "\r\n\r\n",
                     p->boundary, p->type, r->first, r->last, p->src.size);
        p->stage = PART_DATA;
        p->at = r->first;
    } else {
        n = snprintf(p->text, sizeof p->text, "\r\n--%s--\r\n", p->boundary);
        p->stage = DONE;
    }
    p->text_len = n > 0 && (size_t)n < sizeof p->text ? (size_t)n : 0;
    p->text_off = 0;
}

/* Copies up to `cap` bytes of range i into buf; -1 when the file came up short. */
static long part_data(struct parts *p, char *buf, size_t cap)
{
    uint64_t left = p->r[p->i].last + 1 - p->at;
    size_t want = left < cap ? (size_t)left : cap;
    long got;
    if (p->src.bytes) {
        memcpy(buf, p->src.bytes->data + p->at, want);
        got = (long)want;
    } else {
        ssize_t n = pread(p->src.fd, buf, want, (off_t)p->at);
        if (n <= 0)
            return -1;
        got = (long)n;
    }
    p->at += (uint64_t)got;
    if (p->at > p->r[p->i].last) {
        p->i++;
        p->stage = p->i < p->n ? PART_HEAD : CLOSING;
    }
    return got;
}

static long parts_produce(void *state, char *buf, size_t cap)
{
    struct parts *p = state;
    size_t out = 0;
    while (out < cap) {
        if (p->text_off < p->text_len) {
            size_t k = p->text_len - p->text_off;
            if (k > cap - out)
                k = cap - out;
            memcpy(buf + out, p->text + p->text_off, k);
            p->text_off += k;
            out += k;
            continue;
        }
        if (p->stage == DONE)
            break;
        if (p->stage != PART_DATA) {
            next_text(p);
            continue;
        }
        long got = part_data(p, buf + out, cap - out);
        if (got < 0)
            return -EIO;
        out += (size_t)got;
    }
    return (long)out;
}

/* Unpredictable enough that no file's bytes contain it by accident; distinct per answer. */
static void make_boundary(char *out, size_t cap, const struct chopin__static_source *src)
{
    static _Atomic uint64_t counter;
    uint64_t x = atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed) ^
                 ((uint64_t)(uintptr_t)src->bytes * 0x9E3779B97F4A7C15ull) ^ src->size;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    snprintf(out, cap, "chopin%016" PRIx64, x);
}

void chopin__static_multipart(chopin_res *res, struct chopin__static_source src,
                              const char *type, const struct chopin__range *ranges, size_t n)
{
    struct parts *p = malloc(sizeof *p + n * sizeof p->r[0]);
    if (!p) {
        if (src.fd >= 0)
            close(src.fd);
        chopin__static_bytes_unref(NULL, src.bytes);
        chopin_res_error(res, 500, NULL);
        return;
    }
    *p = (struct parts){.src = src, .type = type, .n = n, .stage = PART_HEAD};
    memcpy(p->r, ranges, n * sizeof p->r[0]);
    make_boundary(p->boundary, sizeof p->boundary, &src);
    char ct[64];
    snprintf(ct, sizeof ct, "multipart/byteranges; boundary=%s", p->boundary);
    if (chopin_res_stream(res, 206, ct, parts_produce, parts_done, p) < 0) {
        parts_done(p);
        chopin_res_error(res, 500, NULL);
    }
}
