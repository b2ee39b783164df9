/* SPDX-License-Identifier: MIT */
/* Percent-decoding: see url.h. */
#include "http/url.h"

#include <errno.h>
#include <string.h>

#include "http/chars.h"

/* Decodes the escape at in[i] ('%') when it is valid. Returns the byte, or -1. */
static int escape_at(const char *in, size_t len, size_t i)
{
    if (len - i < 3)
        return -1;
    int hi = chopin__hex_value((unsigned char)in[i + 1]);
    int lo = chopin__hex_value((unsigned char)in[i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    return hi << 4 | lo;
}

ssize_t chopin__pct_decode(char *out, const char *in, size_t len, unsigned flags)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            int b = escape_at(in, len, i);
            if (b < 0) {
                if (flags & CHOPIN__PCT_STRICT)
                    return -EINVAL;
            } else {
                if (b == 0 && (flags & CHOPIN__PCT_NO_NUL))
                    return -EINVAL;
                c = (char)b;
                i += 2;
            }
        } else if (c == '+' && (flags & CHOPIN__PCT_PLUS)) {
            c = ' ';
        } else if (c == '\0' && (flags & CHOPIN__PCT_NO_NUL)) {
            return -EINVAL; /* the parser refuses raw NULs; this holds without it too */
        }
        out[o++] = c;
    }
    return (ssize_t)o;
}

int chopin__pct_needs_decode(const char *in, size_t len, unsigned flags)
{
    if (memchr(in, '%', len))
        return 1;
    return (flags & CHOPIN__PCT_PLUS) && memchr(in, '+', len);
}

int chopin__pct_equal(const char *enc, size_t enc_len, const char *plain, size_t plain_len,
                      unsigned flags)
{
    size_t p = 0;
    for (size_t i = 0; i < enc_len; i++, p++) {
        char c = enc[i];
        if (c == '%') {
            int b = escape_at(enc, enc_len, i);
            if (b >= 0) {
                c = (char)b;
                i += 2;
            }
        } else if (c == '+' && (flags & CHOPIN__PCT_PLUS)) {
            c = ' ';
        }
        if (p == plain_len || plain[p] != c)
            return 0;
    }
    return p == plain_len;
}
