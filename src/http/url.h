/* SPDX-License-Identifier: MIT */
/*
 * Percent-decoding (RFC 3986 §2.1) for request paths and query strings, and the
 * application/x-www-form-urlencoded '+' rule for queries. Pure functions over buffers: no
 * allocation, the caller provides the output (decoding never makes text longer).
 */
#ifndef CHOPIN_HTTP_URL_H
#define CHOPIN_HTTP_URL_H

#include <stddef.h>
#include <sys/types.h>

enum chopin__pct_flags {
    CHOPIN__PCT_PLUS = 1u << 0,   /* '+' decodes to a space (query strings) */
    CHOPIN__PCT_STRICT = 1u << 1, /* a '%' not followed by two hex digits is an error;
                                     without it the '%' is kept as it is */
    CHOPIN__PCT_NO_NUL = 1u << 2, /* a NUL in the result ("%00" or a raw one) is an
                                     error (paths: a NUL would truncate the name handed
                                     to open() and friends) */
};

/**
 * Decodes in[0..len) into out (room for `len` bytes; out may equal in for in-place
 * decoding). Returns the decoded length, or -EINVAL when a flag's rule is broken.
 */
ssize_t chopin__pct_decode(char *out, const char *in, size_t len, unsigned flags);

/** Nonzero when in[0..len) would change under chopin__pct_decode with `flags`. */
int chopin__pct_needs_decode(const char *in, size_t len, unsigned flags);

/**
 * Compares the decoding of enc[0..enc_len) (lenient: invalid escapes kept as text) with
 * plain[0..plain_len) without writing anything. Returns nonzero when equal.
 */
int chopin__pct_equal(const char *enc, size_t enc_len, const char *plain, size_t plain_len,
                      unsigned flags);

#endif
