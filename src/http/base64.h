/* SPDX-License-Identifier: MIT */
/*
 * Base64 (RFC 4648 §4) and base64url (§5), the three places HTTP meets them: Basic
 * credentials (RFC 7617, padded), HTTP2-Settings (RFC 7540 §3.2.1, base64url without
 * padding) and Sec-WebSocket-Accept (RFC 6455 §4.2.2, encoded). Pure functions over
 * buffers the caller provides.
 */
#ifndef CHOPIN_HTTP_BASE64_H
#define CHOPIN_HTTP_BASE64_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum chopin__base64_flags {
    CHOPIN__B64_URL = 1u << 0,    /* the URL alphabet: '-' and '_' for '+' and '/' */
    CHOPIN__B64_PADDED = 1u << 1, /* the length must be a multiple of 4 ("=" padding) */
};

/** The encoded length of n bytes, padded, without the NUL. */
#define CHOPIN__B64_LEN(n) (((n) + 2) / 3 * 4)

/**
 * Decodes in[0..n) into out (room for `cap` bytes). "=" may only end the text, once or
 * twice and where a group of four lacks one or two characters; without
 * CHOPIN__B64_PADDED it may be left out. Returns the decoded length, or -EINVAL (a
 * character outside the alphabet, misplaced or missing padding, a lone last character)
 * or -ENOSPC (out is too small).
 */
ssize_t chopin__base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, unsigned flags);

/** Encodes in[0..n) padded with the standard alphabet into out (CHOPIN__B64_LEN(n) + 1
 *  bytes: NUL-terminated). Returns the length. */
size_t chopin__base64_encode(const uint8_t *in, size_t n, char *out);

#endif
