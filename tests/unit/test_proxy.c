/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol parser (src/http/proxy.c) and the trusted networks (src/trust.c).
 * Every input ends right before a PROT_NONE page, so a read past the end faults, and every
 * valid header is also fed at every split point: each prefix must say "more", never
 * "invalid", never a length.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/proxy.h"
#include "test.h"
#include "trust.h"

#define GUARD_CAP (64 * 1024)
static uint8_t *guard_end;

static void guard_init(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *m = mmap(NULL, GUARD_CAP + page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + GUARD_CAP, page, PROT_NONE)) {
        perror("guard page");
        exit(2);
    }
    guard_end = m + GUARD_CAP;
}

static long parse(const void *s, size_t n, struct chopin__proxy_info *info) {
    memcpy(guard_end - n, s, n);
    return chopin__proxy_parse(guard_end - n, n, info);
}

/* Every strict prefix of a valid header is "more". */
static int prefixes_need_more(const void *s, size_t n) {
    struct chopin__proxy_info info;
    for (size_t i = 0; i < n; i++)
        if (parse(s, i, &info) != CHOPIN__PROXY_MORE)
            return 0;
    return 1;
}

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A v2 header: version/command, family/transport, then `len` bytes of body. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t len) {
    memcpy(out, sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (len)
        memcpy(out + 16, body, len);
    return 16 + len;
}

static const uint8_t inet_body[12] = {192, 0, 2, 1, 10, 0, 0, 1, 0x13, 0x88, 0x1f, 0x90};

/* ----- version 1 ----------------------------------------------------------------------- */

static void v1_tcp4(void) {
    const char h[] = "PROXY TCP4 192.0.2.1 10.0.0.1 5000 8080\r\nGET / HTTP/1.1\r\n";
    struct chopin__proxy_info info;
    long n = parse(h, sizeof h - 1, &info);
    CHECK_INT(n, 41);
    CHECK_INT(info.version, 1);
    CHECK_INT(info.family, AF_INET);
    CHECK_INT(info.src_port, 5000);
    CHECK_INT(info.dst_port, 8080);
    CHECK(memcmp(info.src, (uint8_t[]){192, 0, 2, 1}, 4) == 0);
    CHECK(memcmp(info.dst, (uint8_t[]){10, 0, 0, 1}, 4) == 0);
    CHECK(prefixes_need_more(h, 41));
}

static void v1_tcp6(void) {
    const char h[] = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
    struct chopin__proxy_info info;
    CHECK_INT(parse(h, sizeof h - 1, &info), (long)(sizeof h - 1));
    CHECK_INT(info.family, AF_INET6);
    CHECK_INT(info.src_port, 65535);
    CHECK_INT(info.dst_port, 0);
    uint8_t want[16];
    inet_pton(AF_INET6, "2001:db8::1", want);
    CHECK(memcmp(info.src, want, 16) == 0);
    CHECK(prefixes_need_more(h, sizeof h - 1));
}

static void v1_unknown(void) {
    struct chopin__proxy_info info;
    const char a[] = "PROXY UNKNOWN\r\n";
    CHECK_INT(parse(a, sizeof a - 1, &info), (long)(sizeof a - 1));
    CHECK_INT(info.family, 0);
    const char b[] = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"; /* the rest is ignored */
    CHECK_INT(parse(b, sizeof b - 1, &info), (long)(sizeof b - 1));
    CHECK_INT(info.family, 0);
}

/* The longest line the specification allows is whole; one byte more is not. */
static void v1_length_limit(void) {
    char h[200];
    const char head[] = "PROXY UNKNOWN ";
    struct chopin__proxy_info info;
    memset(h, 'x', sizeof h);
    memcpy(h, head, sizeof head - 1);
    memcpy(h + 105, "\r\n", 2);
    CHECK_INT(parse(h, 107, &info), 107);
    memset(h, 'x', sizeof h);
    memcpy(h, head, sizeof head - 1);
    memcpy(h + 106, "\r\n", 2);
    CHECK_INT(parse(h, 108, &info), CHOPIN__PROXY_INVALID);
    CHECK_INT(parse(h, 107, &info), CHOPIN__PROXY_INVALID); /* 107 bytes, no line end */
    CHECK_INT(parse(h, 106, &info), CHOPIN__PROXY_MORE);
}

static void v1_malformed(void) {
    static const char *const bad[] = {
        "PROXY TCP4 192.0.2.1 10.0.0.1 5000 8080\n",      /* LF without CR */
        "PROXY TCP4 192.0.2.1 10.0.0.1 5000\r\n",         /* a field missing */
        "PROXY TCP4 192.0.2.1 10.0.0.1 5000 8080 1\r\n",  /* one too many */
        "PROXY TCP4 192.0.2.1  10.0.0.1 5000 8080\r\n",   /* two spaces */
        "PROXY TCP4 192.0.2.1 10.0.0.1 65536 8080\r\n",   /* port out of range */
        "PROXY TCP4 192.0.2.1 10.0.0.1 05000 8080\r\n",   /* leading zero */
        "PROXY TCP4 192.0.2.1 10.0.0.1 -1 8080\r\n",
        "PROXY TCP4 192.0.2 10.0.0.1 5000 8080\r\n",      /* not a dotted quad */
        "PROXY TCP4 ::1 ::1 5000 8080\r\n",               /* IPv6 under TCP4 */
        "PROXY TCP6 192.0.2.1 10.0.0.1 5000 8080\r\n",    /* IPv4 under TCP6 */
        "PROXY UDP4 192.0.2.1 10.0.0.1 5000 8080\r\n",
        "PROXY TCP4\r\n",
        "PROXY \r\n",
        "PROXY UNKNOWNX\r\n",
        "proxy TCP4 192.0.2.1 10.0.0.1 5000 8080\r\n",    /* case matters */
        "GET / HTTP/1.1\r\n",                             /* no header at all */
        "PROXX",
        "\r\n\r\n\x00\r\nQUIX",                           /* a v2 signature gone wrong */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct chopin__proxy_info info;
        size_t len = strlen(bad[i]);
        if (i == sizeof bad / sizeof *bad - 1)
            len = 12;
        long n = parse(bad[i], len, &info);
        if (n != CHOPIN__PROXY_INVALID)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK_INT(n, CHOPIN__PROXY_INVALID);
    }
}

/* ----- version 2 --------------------------------------------------------------------------- */

static void v2_inet(void) {
    uint8_t h[64];
    size_t n = v2(h, 0x21, 0x11, inet_body, sizeof inet_body);
    struct chopin__proxy_info info;
    CHECK_INT(parse(h, n, &info), 28);
    CHECK_INT(info.version, 2);
    CHECK_INT(info.family, AF_INET);
    CHECK_INT(info.local, 0);
    CHECK_INT(info.src_port, 5000);
    CHECK_INT(info.dst_port, 8080);
    CHECK(memcmp(info.src, inet_body, 4) == 0);
    CHECK_INT(info.tlv_len, 0);
    CHECK(prefixes_need_more(h, n));
}

static void v2_inet6(void) {
    uint8_t body[36] = {0}, h[64];
    inet_pton(AF_INET6, "2001:db8::7", body);
    inet_pton(AF_INET6, "::1", body + 16);
    body[32] = 0x01; /* port 443 */
    body[33] = 0xbb;
    size_t n = v2(h, 0x21, 0x21, body, sizeof body);
    struct chopin__proxy_info info;
    CHECK_INT(parse(h, n, &info), 52);
    CHECK_INT(info.family, AF_INET6);
    CHECK_INT(info.src_port, 443);
    CHECK(memcmp(info.src, body, 16) == 0);
    CHECK(prefixes_need_more(h, n));
}

/* LOCAL: the proxy's own connection (health checks): whatever follows is discarded. */
static void v2_local(void) {
    uint8_t h[64];
    struct chopin__proxy_info info;
    size_t n = v2(h, 0x20, 0x00, NULL, 0);
    CHECK_INT(parse(h, n, &info), 16);
    CHECK_INT(info.local, 1);
    CHECK_INT(info.family, 0);
    n = v2(h, 0x20, 0x11, inet_body, sizeof inet_body);
    CHECK_INT(parse(h, n, &info), 28);
    CHECK_INT(info.local, 1);
    CHECK_INT(info.family, 0);
}

/* UNSPEC and UNIX: no usable client address; the connection's own stands. */
static void v2_unspec_and_unix(void) {
    uint8_t h[300], body[216] = {0};
    struct chopin__proxy_info info;
    size_t n = v2(h, 0x21, 0x00, NULL, 0);
    CHECK_INT(parse(h, n, &info), 16);
    CHECK_INT(info.family, 0);
    n = v2(h, 0x21, 0x31, body, sizeof body);
    CHECK_INT(parse(h, n, &info), 232);
    CHECK_INT(info.family, 0);
    n = v2(h, 0x21, 0x31, body, 100); /* too short for two paths */
    CHECK_INT(parse(h, n, &info), CHOPIN__PROXY_INVALID);
}

static void v2_tlvs(void) {
    uint8_t body[64], h[96];
    memcpy(body, inet_body, 12);
    const uint8_t tlvs[] = {CHOPIN__PP2_TYPE_ALPN, 0, 2, 'h', '2',
                            CHOPIN__PP2_TYPE_SSL, 0, 5, 0x01, 0, 0, 0, 0,
                            CHOPIN__PP2_TYPE_NOOP, 0, 0};
    memcpy(body + 12, tlvs, sizeof tlvs);
    size_t n = v2(h, 0x21, 0x11, body, 12 + sizeof tlvs);
    struct chopin__proxy_info info;
    CHECK_INT(parse(h, n, &info), (long)n);
    CHECK_INT(info.tlv_len, sizeof tlvs);
    size_t len = 0;
    const uint8_t *alpn = chopin__proxy_tlv(&info, CHOPIN__PP2_TYPE_ALPN, &len);
    CHECK(alpn && len == 2 && memcmp(alpn, "h2", 2) == 0);
    const uint8_t *ssl = chopin__proxy_tlv(&info, CHOPIN__PP2_TYPE_SSL, &len);
    CHECK(ssl && len == 5 && ssl[0] == 0x01);
    CHECK(chopin__proxy_tlv(&info, CHOPIN__PP2_TYPE_UNIQUE_ID, &len) == NULL);
    /* A TLV whose length runs past the header. */
    body[12 + 2] = 3;
    n = v2(h, 0x21, 0x11, body, 12 + 5);
    CHECK_INT(parse(h, n, &info), CHOPIN__PROXY_INVALID);
    /* Two bytes of a TLV head. */
    n = v2(h, 0x21, 0x11, body, 12 + 2);
    CHECK_INT(parse(h, n, &info), CHOPIN__PROXY_INVALID);
}

/* CRC32C of the header with the checksum's own bytes zero (2.2.3). */
static uint32_t crc32c(const uint8_t *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

static void v2_crc32c(void) {
    uint8_t body[32], h[64];
    memcpy(body, inet_body, 12);
    const uint8_t tlv[] = {CHOPIN__PP2_TYPE_CRC32C, 0, 4, 0, 0, 0, 0};
    memcpy(body + 12, tlv, sizeof tlv);
    size_t n = v2(h, 0x21, 0x11, body, 12 + sizeof tlv);
    uint32_t crc = crc32c(h, n);
    h[n - 4] = (uint8_t)(crc >> 24);
    h[n - 3] = (uint8_t)(crc >> 16);
    h[n - 2] = (uint8_t)(crc >> 8);
    h[n - 1] = (uint8_t)crc;
    struct chopin__proxy_info info;
    CHECK_INT(parse(h, n, &info), (long)n);
    h[20] ^= 1; /* a source address bit flipped on the way */
    CHECK_INT(parse(h, n, &info), CHOPIN__PROXY_INVALID);
    /* The known answer of RFC 3720 B.4: 32 zero bytes. */
    uint8_t zeros[32] = {0};
    CHECK_INT(crc32c(zeros, 32), 0x8A9136AA);
}

static void v2_malformed(void) {
    uint8_t h[64];
    struct chopin__proxy_info info;
    size_t n = v2(h, 0x11, 0x11, inet_body, 12); /* version 1 in a v2 header */
    CHECK_INT(parse(h, n, &info), CHOPIN__PROXY_INVALID);
    n = v2(h, 0x22, 0x11, inet_body, 12); /* command 2 */
    CHECK_INT(parse(h, n, &info), CHOPIN__PROXY_INVALID);
    n = v2(h, 0x21, 0x12, inet_body, 12); /* DGRAM */
    CHECK_INT(parse(h, n, &info), CHOPIN__PROXY_INVALID);
    n = v2(h, 0x21, 0x41, inet_body, 12); /* family 4 */
    CHECK_INT(parse(h, n, &info), CHOPIN__PROXY_INVALID);
    n = v2(h, 0x21, 0x13, inet_body, 12); /* transport 3 */
    CHECK_INT(parse(h, n, &info), CHOPIN__PROXY_INVALID);
    n = v2(h, 0x21, 0x10, inet_body, 12); /* INET without a transport */
    CHECK_INT(parse(h, n, &info), CHOPIN__PROXY_INVALID);
    n = v2(h, 0x21, 0x11, inet_body, 11); /* too short for IPv4 */
    CHECK_INT(parse(h, n, &info), CHOPIN__PROXY_INVALID);
    n = v2(h, 0x21, 0x21, inet_body, 12); /* too short for IPv6 */
    CHECK_INT(parse(h, n, &info), CHOPIN__PROXY_INVALID);
}

/* A length beyond what a connection buffers is refused from the fixed part alone. */
static void v2_too_long(void) {
    uint8_t h[16];
    memcpy(h, sig, 12);
    h[12] = 0x21;
    h[13] = 0x11;
    h[14] = 0xff;
    h[15] = 0xff;
    struct chopin__proxy_info info;
    CHECK_INT(parse(h, 16, &info), CHOPIN__PROXY_INVALID);
    size_t len = CHOPIN__PROXY_MAX - 16;
    h[14] = (uint8_t)(len >> 8);
    h[15] = (uint8_t)len;
    CHECK_INT(parse(h, 16, &info), CHOPIN__PROXY_MORE);
}

/* ----- trusted networks -------------------------------------------------------------------- */

static int trusted(const struct chopin__trust *t, const char *addr) {
    return chopin__trust_match_text(t, addr, strlen(addr));
}

static void trust_blocks(void) {
    struct chopin__trust t;
    char why[64];
    CHECK_INT(chopin__trust_parse(&t, "10.0.0.0/8, 192.168.1.5 ,fd00::/8 127.0.0.1/32, 172.16.0.0/12", why, sizeof why), 0);
    CHECK_INT(t.n, 5);
    CHECK(trusted(&t, "10.255.0.1"));
    CHECK(!trusted(&t, "11.0.0.1"));
    CHECK(trusted(&t, "192.168.1.5"));
    CHECK(!trusted(&t, "192.168.1.6"));
    CHECK(trusted(&t, "fd12::1"));
    CHECK(trusted(&t, "[fd12::1]"));
    CHECK(!trusted(&t, "fe80::1"));
    CHECK(trusted(&t, "::ffff:10.1.2.3")); /* IPv4-mapped */
    CHECK(trusted(&t, "172.31.255.255"));
    CHECK(!trusted(&t, "172.32.0.0"));
    CHECK(!trusted(&t, "unknown"));
    CHECK(!trusted(&t, "10.0.0.1:80"));
    CHECK_INT(chopin__trust_parse(&t, "0.0.0.0/0", why, sizeof why), 0);
    CHECK(trusted(&t, "203.0.113.9"));
    CHECK(!trusted(&t, "::1"));
    CHECK_INT(chopin__trust_parse(&t, NULL, why, sizeof why), 0);
    CHECK_INT(t.n, 0);
    CHECK(!trusted(&t, "127.0.0.1"));
}

static void trust_refused(void) {
    static const char *const bad[] = {"10.0.0.0/33", "10.0.0.0/", "::1/129", "host.example",
                                      "10.0.0.0/8x", "1.2.3", "10.0.0.0/-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct chopin__trust t;
        char why[64] = "";
        CHECK_INT(chopin__trust_parse(&t, bad[i], why, sizeof why), -EINVAL);
        CHECK_STR(why, bad[i]);
    }
}

int main(void) {
    guard_init();
    RUN(v1_tcp4);
    RUN(v1_tcp6);
    RUN(v1_unknown);
    RUN(v1_length_limit);
    RUN(v1_malformed);
    RUN(v2_inet);
    RUN(v2_inet6);
    RUN(v2_local);
    RUN(v2_unspec_and_unix);
    RUN(v2_tlvs);
    RUN(v2_crc32c);
    RUN(v2_malformed);
    RUN(v2_too_long);
    RUN(trust_blocks);
    RUN(trust_refused);
    TEST_END();
}
