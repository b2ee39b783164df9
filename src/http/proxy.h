/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol, versions 1 and 2 (HAProxy's "proxy-protocol.txt"): the header a load
 * balancer sends before anything else on a connection, saying whose connection it relays.
 * A pure parser over a buffer, like the HTTP one: the header's length, "need more", or
 * "invalid". It never reads past `n` and decides "invalid" as soon as the bytes seen
 * cannot start a header, so a client that speaks HTTP at once is refused at its first
 * bytes.
 */
#ifndef CHOPIN_HTTP_PROXY_H
#define CHOPIN_HTTP_PROXY_H

#include <stddef.h>
#include <stdint.h>

/* The longest header accepted: v1's is at most 107 bytes; v2's may carry TLVs up to
 * 64 KiB, but a connection buffers this much at most before anything vouches for it. */
#define CHOPIN__PROXY_MAX 4096

/* What the header says. */
struct chopin__proxy_info {
    uint8_t version;  /* 1 or 2 */
    uint8_t family;   /* AF_INET or AF_INET6: src/dst below hold the relayed addresses;
                         0: none (v1 UNKNOWN, v2 LOCAL, or v2 UNSPEC/UNIX): the
                         connection's own addresses stand */
    uint8_t local;    /* v2 LOCAL: the proxy's own connection (a health check) */
    uint16_t src_port, dst_port;
    uint8_t src[16], dst[16]; /* network order; 4 bytes for AF_INET */
    /* v2: the TLVs (type, 16-bit length, value), checked to fit; borrowed from the buffer */
    const uint8_t *tlv;
    size_t tlv_len;
};

#define CHOPIN__PROXY_MORE 0
#define CHOPIN__PROXY_INVALID (-1)

/**
 * Parses the header at the start of p[0..n). Returns its length (> 0) with *out filled,
 * CHOPIN__PROXY_MORE when the bytes so far are a valid beginning, or CHOPIN__PROXY_INVALID
 * (not a PROXY header, malformed, longer than CHOPIN__PROXY_MAX, a v2 CRC32C TLV that
 * does not match, a datagram transport).
 */
long chopin__proxy_parse(const uint8_t *p, size_t n, struct chopin__proxy_info *out);

/** The value of the first v2 TLV of `type` in `info` (its length in *len), or NULL. */
const uint8_t *chopin__proxy_tlv(const struct chopin__proxy_info *info, uint8_t type,
                                 size_t *len);

/* v2 TLV types (section 2.2). */
#define CHOPIN__PP2_TYPE_ALPN 0x01
#define CHOPIN__PP2_TYPE_AUTHORITY 0x02
#define CHOPIN__PP2_TYPE_CRC32C 0x03
#define CHOPIN__PP2_TYPE_NOOP 0x04
#define CHOPIN__PP2_TYPE_UNIQUE_ID 0x05
#define CHOPIN__PP2_TYPE_SSL 0x20

#endif
