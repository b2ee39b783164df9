/* SPDX-License-Identifier: MIT */
/* Base64 and base64url (base64.h). */
#include "http/base64.h"

#include <errno.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int digit(unsigned char c, unsigned flags) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (flags & CHOPIN__B64_URL)
        return c == '-' ? 62 : c == '_' ? 63 : -1;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

ssize_t chopin__base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, unsigned flags) {
    size_t pad = 0;
    while (pad < 2 && pad < n && in[n - 1 - pad] == '=')
        pad++;
    size_t data = n - pad;
    /* (padding completes a group of four: 2 or 3 characters of data before it) */
    if (data % 4 == 1 || (pad && (n % 4 || data % 4 + pad != 4)) ||
        ((flags & CHOPIN__B64_PADDED) && n % 4))
        return -EINVAL;
    size_t len = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < data; i++) {
        int d = digit((unsigned char)in[i], flags);
        if (d < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (len == cap)
                return -ENOSPC;
            out[len++] = (uint8_t)(acc >> bits);
        }
    }
    return (ssize_t)len;
}

size_t chopin__base64_encode(const uint8_t *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}
