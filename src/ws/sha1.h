/* SPDX-License-Identifier: MIT */
/*
 * SHA-1 (FIPS 180-4), only for the WebSocket handshake's Sec-WebSocket-Accept (RFC 6455
 * §4.2.2), where it is a fixed transform, not a security measure: 60 bytes hashed once
 * per upgrade do not justify a dependency on libcrypto.
 */
#ifndef CHOPIN_WS_SHA1_H
#define CHOPIN_WS_SHA1_H

#include <stddef.h>
#include <stdint.h>

/** out = SHA-1(data[0..len)). */
void chopin__sha1(const void *data, size_t len, uint8_t out[20]);

#endif
