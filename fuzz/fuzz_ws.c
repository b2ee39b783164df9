/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the WebSocket frame reader and its inflate path (src/ws/frame.c,
 * src/ws/deflate.c).
 *
 *   make fuzz-build && build/fuzz/fuzz_ws fuzz/corpus/ws
 *
 * The first byte picks the setting: bit 0 permessage-deflate agreed (with context takeover
 * or not: bit 1), bits 2-3 the message limit, bit 4 "wrap": the rest is not raw frames
 * but the payload of one compressed message, cut into fragments and framed with a zero
 * mask here, so the fuzzer reaches zlib with arbitrary deflate data. The input is read
 * whole, then in pieces of pseudo-random sizes, then one byte per call: the three must
 * give the same events (a hash of them) and the same verdict. Events never exceed the
 * limit, and a failure is one of the documented close codes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"

#define REQUIRE(cond)                                                                       \
    do {                                                                                    \
        if (!(cond)) __builtin_trap();                                                      \
    } while (0)

static uint64_t mix(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Reads `in` in pieces (seed 0: whole, 1: bytewise, else pseudo-random sizes); returns the
 * hash of the events and the verdict in *verdict. */
static uint64_t run(const uint8_t *in, size_t size, uint64_t max,
                    const struct chopin__ws_pmd *pmd, uint64_t seed, int *verdict) {
    char *b = malloc(size ? size : 1);
    memcpy(b, in, size);
    struct chopin__ws_reader r;
    chopin__ws_reader_init(&r, max, pmd);
    uint64_t h = 0xcbf29ce484222325ull, x = seed * 0x9e3779b97f4a7c15ull + 1;
    size_t off = 0;
    *verdict = 0;
    while (off < size && *verdict == 0) {
        size_t piece = size - off;
        if (seed == 1) {
            piece = 1;
        } else if (seed) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            piece = 1 + (size_t)(x % 23);
            if (piece > size - off)
                piece = size - off;
        }
        size_t used = 0;
        for (;;) {
            struct chopin__ws_event ev;
            int rc = chopin__ws_read(&r, b + off, piece, &used, &ev);
            REQUIRE(used <= piece);
            if (rc == 0) {
                REQUIRE(used == piece); /* no event left unread: every byte taken */
                break;
            }
            if (rc < 0) {
                REQUIRE(rc == -1002 || rc == -1007 || rc == -1009 || rc == -1011);
                *verdict = rc;
                break;
            }
            REQUIRE(ev.len <= max || ev.opcode >= CHOPIN__WS_CLOSE);
            uint8_t tag[3] = {ev.opcode, (uint8_t)(ev.code >> 8), (uint8_t)ev.code};
            h = mix(h, tag, 3);
            h = mix(h, &ev.len, sizeof ev.len);
            if (ev.len)
                h = mix(h, ev.data, ev.len);
            if (ev.opcode == CHOPIN__WS_CLOSE)
                *verdict = 1;
        }
        off += piece;
    }
    chopin__ws_reader_free(&r);
    free(b);
    return h;
}

/* The "wrap" setting: the input becomes one compressed message of fragments of up to 64
 * bytes, masked with zeros (so the payload is the input itself). */
static uint8_t *wrap(const uint8_t *p, size_t n, size_t *out_len) {
    size_t frags = n / 64 + 1, len = 0;
    uint8_t *out = malloc(n + frags * 14);
    for (size_t f = 0; f < frags; f++) {
        size_t take = n - f * 64 < 64 ? n - f * 64 : 64;
        int first = f == 0, last = f == frags - 1;
        size_t h = chopin__ws_frame_head(out + len, first ? CHOPIN__WS_BINARY : CHOPIN__WS_CONT,
                                         last, first, take);
        out[len + 1] |= 0x80;
        memset(out + len + h, 0, 4);
        memcpy(out + len + h + 4, p + f * 64, take);
        len += h + 4 + take;
    }
    *out_len = len;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint64_t limits[] = {1u << 20, 4096, 125, 0};
    if (size < 1 || size > 65536)
        return 0;
    uint8_t mode = data[0];
    struct chopin__ws_pmd pmd = {.server_bits = 15, .client_bits = 15,
                                 .client_no_takeover = (mode & 2) != 0};
    const struct chopin__ws_pmd *p = (mode & 1) ? &pmd : NULL;
    uint64_t max = limits[(mode >> 2) & 3];
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    uint8_t *wrapped = NULL;
    if (mode & 16) {
        pmd.client_no_takeover = 0;
        p = &pmd;
        in = wrapped = wrap(in, n, &n);
    }
    int va, vb, vc;
    uint64_t a = run(in, n, max, p, 0, &va);
    uint64_t b = run(in, n, max, p, n + 2, &vb);
    uint64_t c = run(in, n, max, p, 1, &vc);
    REQUIRE(a == b && a == c);
    REQUIRE(va == vb && va == vc);
    free(wrapped);
    return 0;
}
