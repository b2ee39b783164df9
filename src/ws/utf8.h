/* SPDX-License-Identifier: MIT */
/*
 * Incremental UTF-8 validation (RFC 3629 §4, as RFC 6455 §8.1 requires of text): the
 * state carries an unfinished sequence across calls, so a message may be checked fragment
 * by fragment and fail at the first bad byte (Autobahn case family 6: "fail fast").
 */
#ifndef CHOPIN_WS_UTF8_H
#define CHOPIN_WS_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The state: continuation bytes still due, and the range the next one must lie in (the
 * first continuation of E0, ED, F0 and F4 is narrower: no overlong form, no surrogate,
 * nothing above U+10FFFF). need == 0: between characters. */
struct chopin__utf8 {
    uint8_t need, lo, hi;
};

/** Returns 0 while the bytes so far can start valid UTF-8, -1 at the first that cannot. */
static inline int chopin__utf8_feed(struct chopin__utf8 *u, const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (u->need == 0) {
            /* ASCII runs eight bytes at a time: most text is mostly ASCII. */
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            if (i == n)
                break;
            uint8_t b = p[i++];
            if (b < 0x80)
                continue;
            u->lo = 0x80;
            u->hi = 0xbf;
            if (b >= 0xc2 && b <= 0xdf) {
                u->need = 1;
            } else if (b >= 0xe0 && b <= 0xef) {
                u->need = 2;
                if (b == 0xe0)
                    u->lo = 0xa0;
                else if (b == 0xed)
                    u->hi = 0x9f;
            } else if (b >= 0xf0 && b <= 0xf4) {
                u->need = 3;
                if (b == 0xf0)
                    u->lo = 0x90;
                else if (b == 0xf4)
                    u->hi = 0x8f;
            } else {
                return -1;
            }
        } else {
            uint8_t b = p[i++];
            if (b < u->lo || b > u->hi)
                return -1;
            u->need--;
            u->lo = 0x80;
            u->hi = 0xbf;
        }
    }
    return 0;
}

/** Nonzero when the bytes fed so far end on a character boundary. */
static inline int chopin__utf8_complete(const struct chopin__utf8 *u) { return u->need == 0; }

#endif
