/* SPDX-License-Identifier: MIT */
/* SHA-256 (FIPS 180-4), incremental, for the demo's /upload answers. */
#ifndef CHOPIN_EXAMPLES_SHA256_H
#define CHOPIN_EXAMPLES_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
    uint32_t h[8];
    uint64_t len;      /* bytes hashed so far */
    uint8_t block[64]; /* a partial block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
/** Writes the digest as 64 lowercase hex digits and a NUL into hex[65]. */
void sha256_hex(struct sha256 *s, char hex[65]);

#endif
