/* SPDX-License-Identifier: MIT */
/* The PROXY protocol parser (proxy.h), after HAProxy's proxy-protocol.txt. */
#include "http/proxy.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

/* ----- version 1: one text line ------------------------------------------------------------ */

#define V1_PREFIX "PROXY "
#define V1_MAX 107 /* "the maximum line length is 107 characters including the CRLF" (2.1) */

/* A port: 1 to 5 digits, at most 65535, no leading zero (2.1: "a decimal integer"). */
static int parse_port(const char *s, size_t len, uint16_t *out) {
    unsigned v = 0;
    if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* An address of `family` in textual form (inet_pton is strict: dotted quad for IPv4). */
static int parse_addr(int family, const char *s, size_t len, uint8_t *out) {
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(family, buf, out) == 1 ? 0 : -1;
}

/* The four space-separated fields after "TCP4 " / "TCP6 ", in line[0..len). */
static int parse_v1_fields(const char *line, size_t len, int family,
                           struct chopin__proxy_info *out) {
    const char *field[4];
    size_t flen[4];
    size_t pos = 0;
    for (int i = 0; i < 4; i++) {
        field[i] = line + pos;
        const char *sp = i < 3 ? memchr(line + pos, ' ', len - pos) : NULL;
        flen[i] = sp ? (size_t)(sp - field[i]) : len - pos;
        if (i < 3 && !sp)
            return -1;
        pos += flen[i] + 1;
    }
    if (parse_addr(family, field[0], flen[0], out->src) < 0 ||
        parse_addr(family, field[1], flen[1], out->dst) < 0 ||
        parse_port(field[2], flen[2], &out->src_port) < 0 ||
        parse_port(field[3], flen[3], &out->dst_port) < 0)
        return -1;
    out->family = (uint8_t)family;
    return 0;
}

static long parse_v1(const uint8_t *p, size_t n, struct chopin__proxy_info *out) {
    size_t scan = n < V1_MAX ? n : V1_MAX;
    const uint8_t *lf = memchr(p, '\n', scan);
    if (!lf)
        return n < V1_MAX ? CHOPIN__PROXY_MORE : CHOPIN__PROXY_INVALID;
    size_t total = (size_t)(lf - p) + 1;
    if (total < sizeof V1_PREFIX + 1 || p[total - 2] != '\r')
        return CHOPIN__PROXY_INVALID;
    const char *line = (const char *)p + sizeof V1_PREFIX - 1;
    size_t len = total - 2 - (sizeof V1_PREFIX - 1); /* without the prefix and the CRLF */
    out->version = 1;
    /* "UNKNOWN": the sender cannot tell; whatever follows up to the CRLF is ignored (2.1). */
    if (len >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (len == 7 || line[7] == ' '))
        return (long)total;
    int family;
    if (len > 5 && memcmp(line, "TCP4 ", 5) == 0)
        family = AF_INET;
    else if (len > 5 && memcmp(line, "TCP6 ", 5) == 0)
        family = AF_INET6;
    else
        return CHOPIN__PROXY_INVALID;
    return parse_v1_fields(line + 5, len - 5, family, out) < 0 ? CHOPIN__PROXY_INVALID
                                                               : (long)total;
}

/* ----- version 2: binary -------------------------------------------------------------------- */

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
#define V2_HEAD 16

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: only for a header
 * that carries the checksum TLV, a few hundred bytes at most. */
static uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc;
}

/* The checksum of the whole header with the TLV's 4 value bytes (at `at`) taken as zero
 * (2.2.3). */
static int crc_matches(const uint8_t *p, size_t total, size_t at) {
    static const uint8_t zero[4];
    uint32_t crc = 0xFFFFFFFFu;
    crc = crc32c_update(crc, p, at);
    crc = crc32c_update(crc, zero, 4);
    crc = crc32c_update(crc, p + at + 4, total - at - 4);
    crc ^= 0xFFFFFFFFu;
    uint32_t want = (uint32_t)p[at] << 24 | (uint32_t)p[at + 1] << 16 |
                    (uint32_t)p[at + 2] << 8 | p[at + 3];
    return crc == want;
}

/* Every TLV must fit; a CRC32C one must be 4 bytes and match. */
static int check_tlvs(const uint8_t *p, size_t total, size_t start) {
    size_t pos = start;
    while (pos < total) {
        if (total - pos < 3)
            return -1;
        size_t len = (size_t)p[pos + 1] << 8 | p[pos + 2];
        if (len > total - pos - 3)
            return -1;
        if (p[pos] == CHOPIN__PP2_TYPE_CRC32C && (len != 4 || !crc_matches(p, total, pos + 3)))
            return -1;
        pos += 3 + len;
    }
    return 0;
}

/* The address block of a PROXY command: (family, transport) -> its size (2.2). */
static long v2_addresses(const uint8_t *p, size_t len, struct chopin__proxy_info *out) {
    unsigned af = p[13] >> 4, transport = p[13] & 0x0F;
    const uint8_t *a = p + V2_HEAD;
    if (af > 3 || transport > 2 || transport == 2) /* 2: DGRAM, never on a stream */
        return -1;
    if (af == 0) /* UNSPEC: "the receiver should ignore address information" */
        return 0;
    if (transport == 0)
        return -1; /* an address family without a transport */
    if (af == 1) {
        if (len < 12)
            return -1;
        memcpy(out->src, a, 4);
        memcpy(out->dst, a + 4, 4);
        out->src_port = (uint16_t)(a[8] << 8 | a[9]);
        out->dst_port = (uint16_t)(a[10] << 8 | a[11]);
        out->family = AF_INET;
        return 12;
    }
    if (af == 2) {
        if (len < 36)
            return -1;
        memcpy(out->src, a, 16);
        memcpy(out->dst, a + 16, 16);
        out->src_port = (uint16_t)(a[32] << 8 | a[33]);
        out->dst_port = (uint16_t)(a[34] << 8 | a[35]);
        out->family = AF_INET6;
        return 36;
    }
    return len < 216 ? -1 : 216; /* UNIX: two paths, kept as the socket's own addresses */
}

static long parse_v2(const uint8_t *p, size_t n, struct chopin__proxy_info *out) {
    if (n < V2_HEAD)
        return CHOPIN__PROXY_MORE;
    unsigned version = p[12] >> 4, command = p[12] & 0x0F;
    if (version != 2 || command > 1)
        return CHOPIN__PROXY_INVALID;
    size_t len = (size_t)p[14] << 8 | p[15];
    size_t total = V2_HEAD + len;
    if (total > CHOPIN__PROXY_MAX)
        return CHOPIN__PROXY_INVALID;
    if (n < total)
        return CHOPIN__PROXY_MORE;
    out->version = 2;
    if (command == 0) { /* LOCAL: "discard the protocol block including the family" */
        out->local = 1;
        return (long)total;
    }
    long addr = v2_addresses(p, len, out);
    if (addr < 0 || check_tlvs(p, total, V2_HEAD + (size_t)addr) < 0) {
        out->family = 0;
        return CHOPIN__PROXY_INVALID;
    }
    out->tlv = p + V2_HEAD + addr;
    out->tlv_len = len - (size_t)addr;
    return (long)total;
}

long chopin__proxy_parse(const uint8_t *p, size_t n, struct chopin__proxy_info *out) {
    memset(out, 0, sizeof *out);
    if (n == 0)
        return CHOPIN__PROXY_MORE;
    size_t v1 = n < sizeof V1_PREFIX - 1 ? n : sizeof V1_PREFIX - 1;
    if (memcmp(p, V1_PREFIX, v1) == 0)
        return v1 < sizeof V1_PREFIX - 1 ? CHOPIN__PROXY_MORE : parse_v1(p, n, out);
    size_t v2 = n < sizeof v2_sig ? n : sizeof v2_sig;
    if (memcmp(p, v2_sig, v2) == 0)
        return parse_v2(p, n, out);
    return CHOPIN__PROXY_INVALID;
}

const uint8_t *chopin__proxy_tlv(const struct chopin__proxy_info *info, uint8_t type,
                                 size_t *len) {
    size_t pos = 0;
    while (info->tlv && pos + 3 <= info->tlv_len) {
        size_t l = (size_t)info->tlv[pos + 1] << 8 | info->tlv[pos + 2];
        if (info->tlv[pos] == type) {
            *len = l;
            return info->tlv + pos + 3;
        }
        pos += 3 + l;
    }
    return NULL;
}
