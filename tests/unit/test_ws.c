/* SPDX-License-Identifier: MIT */
/*
 * The sans-I/O WebSocket core (src/ws/): SHA-1 and the accept key, the opening
 * handshake's checks, UTF-8, the frame reader section by section of RFC 6455 (the case
 * families of the Autobahn suite: framing 1-2, reserved bits 3, opcodes 4, fragmentation
 * 5, UTF-8 6, close 7, limits 9, compression 12-13), every input fed whole and split at
 * every byte, and permessage-deflate (RFC 7692) negotiation and round trips.
 */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "ws/deflate.h"
#include "ws/frame.h"
#include "ws/handshake.h"
#include "ws/sha1.h"
#include "ws/utf8.h"

#define S(lit) ((chopin_str){lit, sizeof lit - 1})

static void hex(const uint8_t *d, size_t n, char *out) {
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_sha1_vectors(void) {
    uint8_t d[20];
    char h[41];
    chopin__sha1("abc", 3, d);
    hex(d, 20, h);
    CHECK_STR(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
    chopin__sha1("", 0, d);
    hex(d, 20, h);
    CHECK_STR(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56: two blocks */
    chopin__sha1(two, strlen(two), d);
    hex(d, 20, h);
    CHECK_STR(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    char million[1000];
    memset(million, 'a', sizeof million);
    chopin__sha1(million, 1000, d);
    hex(d, 20, h);
    CHECK_STR(h, "291e9a6c66994949b57ba5e650361e98fc36b1ba");
}

/* RFC 6455 §1.3's example. */
static void test_accept_key(void) {
    char out[29];
    chopin__ws_accept_key(S("dGhlIHNhbXBsZSBub25jZQ=="), out);
    CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static int check(const char *method, int minor, const char *const *lines, struct chopin__ws_offer *o) {
    chopin_str names[16], values[16];
    size_t n = 0;
    for (; lines[n]; n++) {
        const char *colon = strchr(lines[n], ':');
        names[n] = (chopin_str){lines[n], (size_t)(colon - lines[n])};
        values[n] = (chopin_str){colon + 2, strlen(colon + 2)};
    }
    return chopin__ws_handshake_check((chopin_str){method, strlen(method)}, minor, names, values,
                                      n, o);
}

static void test_handshake(void) {
    struct chopin__ws_offer o;
    const char *good[] = {"Host: x", "Upgrade: WebSocket", "Connection: keep-alive, Upgrade",
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                          "Sec-WebSocket-Version: 13", "Origin: http://x",
                          "Sec-WebSocket-Protocol: chat, superchat",
                          "Sec-WebSocket-Extensions: permessage-deflate", NULL};
    CHECK_INT(check("GET", 1, good, &o), 0);
    CHECK_MEM(o.key.ptr, o.key.len, "dGhlIHNhbXBsZSBub25jZQ==");
    CHECK_MEM(o.origin.ptr, o.origin.len, "http://x");
    CHECK_INT(o.nprotocols, 1);
    CHECK_INT(o.nextensions, 1);
    CHECK(chopin__ws_list_has(o.protocols, o.nprotocols, "superchat", 9));
    CHECK(!chopin__ws_list_has(o.protocols, o.nprotocols, "Chat", 4));
    CHECK_INT(check("POST", 1, good, &o), 400);
    CHECK_INT(check("GET", 0, good, &o), 400);
    const char *plain[] = {"Host: x", NULL};
    CHECK_INT(check("GET", 1, plain, &o), 426);
    const char *no_conn[] = {"Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                             "Sec-WebSocket-Version: 13", NULL};
    CHECK_INT(check("GET", 1, no_conn, &o), 426);
    const char *v8[] = {"Upgrade: websocket", "Connection: upgrade",
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 8",
                        NULL};
    CHECK_INT(check("GET", 1, v8, &o), 426);
    const char *no_version[] = {"Upgrade: websocket", "Connection: upgrade",
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", NULL};
    CHECK_INT(check("GET", 1, no_version, &o), 426);
    const char *bad_key[] = {"Upgrade: websocket", "Connection: upgrade",
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=", "Sec-WebSocket-Version: 13",
                             NULL};
    CHECK_INT(check("GET", 1, bad_key, &o), 400);
    const char *key_bits[] = {"Upgrade: websocket", "Connection: upgrade",
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==",
                              "Sec-WebSocket-Version: 13", NULL};
    CHECK_INT(check("GET", 1, key_bits, &o), 400);
    const char *two_keys[] = {"Upgrade: websocket", "Connection: upgrade",
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                              "Sec-WebSocket-Version: 13", NULL};
    CHECK_INT(check("GET", 1, two_keys, &o), 400);
    const char *no_key[] = {"Upgrade: websocket", "Connection: upgrade",
                            "Sec-WebSocket-Version: 13", NULL};
    CHECK_INT(check("GET", 1, no_key, &o), 400);
    /* "upgrade" must be a token of its own, not a part of one */
    const char *partial[] = {"Upgrade: websocket", "Connection: upgraded",
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                             "Sec-WebSocket-Version: 13", NULL};
    CHECK_INT(check("GET", 1, partial, &o), 426);
}

static void test_utf8(void) {
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"hello", 1}, {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1}, /* κόσμε */
        {"\xf4\x8f\xbf\xbf", 1},   /* U+10FFFF */
        {"\xf4\x90\x80\x80", 0},   /* above U+10FFFF */
        {"\xed\xa0\x80", 0},       /* a surrogate */
        {"\xc0\xaf", 0},           /* overlong '/' */
        {"\xe0\x80\xaf", 0},       /* overlong */
        {"\xf0\x80\x80\xaf", 0},   /* overlong */
        {"\x80", 0}, {"\xfe", 0}, {"\xff", 0},
        {"\xef\xbf\xbf", 1},       /* U+FFFF is allowed */
        {"abcdefgh\xce\xba", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint8_t *p = (const uint8_t *)cases[i].s;
        size_t n = strlen(cases[i].s);
        for (size_t k = 0; k <= n; k++) { /* split at every byte */
            struct chopin__utf8 u = {0};
            int bad = chopin__utf8_feed(&u, p, k) || chopin__utf8_feed(&u, p + k, n - k);
            int ok = !bad && chopin__utf8_complete(&u);
            if (ok != cases[i].ok)
                fprintf(stderr, "  utf8 case %zu split %zu\n", i, k);
            CHECK_INT(ok, cases[i].ok);
        }
    }
    struct chopin__utf8 u = {0};
    CHECK_INT(chopin__utf8_feed(&u, (const uint8_t *)"\xce", 1), 0);
    CHECK(!chopin__utf8_complete(&u)); /* a truncated character is not a whole text */
}

/* ----- the frame reader ------------------------------------------------------------ */

/* Builds a client frame (masked with a fixed key) into out; returns its length. */
static size_t frame(uint8_t *out, int b0, const void *payload, size_t len) {
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = chopin__ws_frame_head(out, (unsigned)b0 & 0xf, b0 & 0x80, b0 & 0x40, len);
    out[0] = (uint8_t)b0;
    out[1] |= 0x80;
    memcpy(out + h, key, 4);
    for (size_t i = 0; i < len; i++)
        out[h + 4 + i] = ((const uint8_t *)payload)[i] ^ key[i & 3];
    return h + 4 + len;
}

#define FIN 0x80
#define RSV1 0x40

/* Feeds in[0..n) split at `split` (n: whole), writes a transcript of the events:
 * "T:hello|" text, "B:3|" binary (length), "P:x|" ping, "O:x|" pong, "C:1000:bye|" close,
 * then "E:1002|" for an error. */
static void transcript(const uint8_t *in, size_t n, size_t split, uint64_t max,
                       const struct chopin__ws_pmd *pmd, char *out, size_t cap) {
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, in, n);
    struct chopin__ws_reader r;
    chopin__ws_reader_init(&r, max, pmd);
    out[0] = '\0';
    size_t len = 0;
    size_t parts[2][2] = {{0, split}, {split, n}};
    for (int part = 0; part < 2; part++) {
        char *base = (char *)copy + parts[part][0];
        size_t m = parts[part][1] - parts[part][0], used = 0;
        for (;;) {
            struct chopin__ws_event ev;
            int rc = chopin__ws_read(&r, base, m, &used, &ev);
            if (rc == 0)
                break;
            if (rc < 0) {
                len += (size_t)snprintf(out + len, cap - len, "E:%d|", -rc);
                break;
            }
            switch (ev.opcode) {
            case CHOPIN__WS_TEXT:
                len += (size_t)snprintf(out + len, cap - len, "T:%.*s|", (int)ev.len, ev.data);
                break;
            case CHOPIN__WS_BINARY:
                len += (size_t)snprintf(out + len, cap - len, "B:%zu|", ev.len);
                break;
            case CHOPIN__WS_PING:
                len += (size_t)snprintf(out + len, cap - len, "P:%.*s|", (int)ev.len, ev.data);
                break;
            case CHOPIN__WS_PONG:
                len += (size_t)snprintf(out + len, cap - len, "O:%.*s|", (int)ev.len, ev.data);
                break;
            case CHOPIN__WS_CLOSE:
                len += (size_t)snprintf(out + len, cap - len, "C:%u:%.*s|", ev.code, (int)ev.len,
                                        ev.data);
                break;
            }
        }
    }
    chopin__ws_reader_free(&r);
    free(copy);
}

/* Checks that in[0..n) reads as `want` whole and split at every byte. */
static int expect(const uint8_t *in, size_t n, uint64_t max, const struct chopin__ws_pmd *pmd,
                  const char *want) {
    char got[4096];
    int ok = 1;
    for (size_t split = 0; split <= n; split++) {
        transcript(in, n, split, max, pmd, got, sizeof got);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "  split %zu of %zu: got \"%s\", want \"%s\"\n", split, n, got, want);
            ok = 0;
            break;
        }
    }
    return ok;
}

#define MAX_MSG (1u << 20)

/* Autobahn 1.x: text and binary of every length encoding. */
static void test_frames_basic(void) {
    uint8_t in[70000 + 64];
    size_t n = frame(in, FIN | CHOPIN__WS_TEXT, "hello", 5);
    CHECK(expect(in, n, MAX_MSG, NULL, "T:hello|"));
    n = frame(in, FIN | CHOPIN__WS_TEXT, "", 0);
    CHECK(expect(in, n, MAX_MSG, NULL, "T:|"));
    static uint8_t big[70000];
    memset(big, 0xfe, sizeof big);
    size_t sizes[] = {125, 126, 127, 65535, 65536, 70000};
    for (size_t i = 0; i < 6; i++) {
        char want[32];
        snprintf(want, sizeof want, "B:%zu|", sizes[i]);
        n = frame(in, FIN | CHOPIN__WS_BINARY, big, sizes[i]);
        char got[64];
        transcript(in, n, n / 2, MAX_MSG, NULL, got, sizeof got); /* every split: slow */
        CHECK_STR(got, want);
    }
    /* two messages in one read */
    n = frame(in, FIN | CHOPIN__WS_TEXT, "a", 1);
    n += frame(in + n, FIN | CHOPIN__WS_TEXT, "bc", 2);
    CHECK(expect(in, n, MAX_MSG, NULL, "T:a|T:bc|"));
}

/* §5.1: an unmasked client frame fails the connection. */
static void test_frames_unmasked(void) {
    uint8_t in[] = {0x81, 0x02, 'h', 'i'};
    CHECK(expect(in, sizeof in, MAX_MSG, NULL, "E:1002|"));
}

/* §5.2: non-minimal lengths, the top bit of a 64-bit length. */
static void test_frames_lengths(void) {
    uint8_t in[32] = {0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4};
    CHECK(expect(in, 8, MAX_MSG, NULL, "E:1002|"));
    uint8_t in64[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    CHECK(expect(in64, sizeof in64, MAX_MSG, NULL, "E:1002|"));
}

/* Autobahn 3.x: reserved bits without an extension. */
static void test_frames_rsv(void) {
    uint8_t in[64];
    for (int bit = 0x10; bit <= 0x40; bit <<= 1) {
        size_t n = frame(in, FIN | bit | CHOPIN__WS_TEXT, "x", 1);
        CHECK(expect(in, n, MAX_MSG, NULL, "E:1002|"));
    }
    size_t n = frame(in, FIN | 0x10 | CHOPIN__WS_PING, "", 0);
    CHECK(expect(in, n, MAX_MSG, NULL, "E:1002|"));
}

/* Autobahn 4.x: reserved opcodes, data and control; a message before fails after it. */
static void test_frames_opcodes(void) {
    uint8_t in[64];
    int codes[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
    for (size_t i = 0; i < 10; i++) {
        size_t n = frame(in, FIN | CHOPIN__WS_TEXT, "ok", 2);
        n += frame(in + n, FIN | codes[i], "", 0);
        CHECK(expect(in, n, MAX_MSG, NULL, "T:ok|E:1002|"));
    }
}

/* Autobahn 2.x and 5.x: control frames, fragmentation. */
static void test_frames_control(void) {
    uint8_t in[512];
    size_t n = frame(in, FIN | CHOPIN__WS_PING, "hey", 3);
    CHECK(expect(in, n, MAX_MSG, NULL, "P:hey|"));
    n = frame(in, FIN | CHOPIN__WS_PONG, "", 0);
    CHECK(expect(in, n, MAX_MSG, NULL, "O:|"));
    uint8_t p125[125], p126[126];
    memset(p125, 'x', sizeof p125);
    memset(p126, 'x', sizeof p126);
    n = frame(in, FIN | CHOPIN__WS_PING, p125, 125);
    char want[160];
    snprintf(want, sizeof want, "P:%.125s|", (const char *)p125);
    CHECK(expect(in, n, MAX_MSG, NULL, want));
    n = frame(in, FIN | CHOPIN__WS_PING, p126, 126);
    CHECK(expect(in, n, MAX_MSG, NULL, "E:1002|"));
    n = frame(in, CHOPIN__WS_PING, "a", 1); /* fragmented ping */
    CHECK(expect(in, n, MAX_MSG, NULL, "E:1002|"));
}

static void test_frames_fragments(void) {
    uint8_t in[512];
    /* 5.3-5.9: fragments with control frames between them */
    size_t n = frame(in, CHOPIN__WS_TEXT, "frag", 4);
    n += frame(in + n, FIN | CHOPIN__WS_PING, "p", 1);
    n += frame(in + n, CHOPIN__WS_CONT, "men", 3);
    n += frame(in + n, CHOPIN__WS_CONT, "", 0);
    n += frame(in + n, FIN | CHOPIN__WS_CONT, "ted", 3);
    CHECK(expect(in, n, MAX_MSG, NULL, "P:p|T:fragmented|"));
    /* 5.1: a fragmented ping; 5.9-5.11: a continuation with nothing to continue */
    n = frame(in, FIN | CHOPIN__WS_CONT, "x", 1);
    CHECK(expect(in, n, MAX_MSG, NULL, "E:1002|"));
    /* 5.18: a new message inside one */
    n = frame(in, CHOPIN__WS_TEXT, "a", 1);
    n += frame(in + n, FIN | CHOPIN__WS_TEXT, "b", 1);
    CHECK(expect(in, n, MAX_MSG, NULL, "E:1002|"));
}

/* Autobahn 6.x: UTF-8 in text, checked across fragments, failing fast. */
static void test_frames_utf8(void) {
    uint8_t in[512];
    /* κόσμε split inside a character over three fragments */
    const char *k = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    size_t n = frame(in, CHOPIN__WS_TEXT, k, 3);
    n += frame(in + n, CHOPIN__WS_CONT, k + 3, 5);
    n += frame(in + n, FIN | CHOPIN__WS_CONT, k + 8, 3);
    char want[64];
    snprintf(want, sizeof want, "T:%s|", k);
    CHECK(expect(in, n, MAX_MSG, NULL, want));
    /* an invalid byte in the first fragment fails before the message ends */
    n = frame(in, CHOPIN__WS_TEXT, "ok\xff", 3);
    CHECK(expect(in, n, MAX_MSG, NULL, "E:1007|"));
    /* a message that ends inside a character */
    n = frame(in, FIN | CHOPIN__WS_TEXT, "\xce", 1);
    CHECK(expect(in, n, MAX_MSG, NULL, "E:1007|"));
    n = frame(in, CHOPIN__WS_TEXT, "\xce", 1);
    n += frame(in + n, FIN | CHOPIN__WS_CONT, "", 0);
    CHECK(expect(in, n, MAX_MSG, NULL, "E:1007|"));
    /* binary is not checked */
    n = frame(in, FIN | CHOPIN__WS_BINARY, "\xff", 1);
    CHECK(expect(in, n, MAX_MSG, NULL, "B:1|"));
}

/* Autobahn 7.x: close frames. */
static void test_frames_close(void) {
    uint8_t in[512];
    size_t n = frame(in, FIN | CHOPIN__WS_CLOSE, "", 0);
    CHECK(expect(in, n, MAX_MSG, NULL, "C:1005:|"));
    n = frame(in, FIN | CHOPIN__WS_CLOSE, "\x03\xe8" "bye", 5);
    n += frame(in + n, FIN | CHOPIN__WS_TEXT, "after", 5); /* ignored after a close */
    CHECK(expect(in, n, MAX_MSG, NULL, "C:1000:bye|"));
    n = frame(in, FIN | CHOPIN__WS_CLOSE, "\x03", 1);
    CHECK(expect(in, n, MAX_MSG, NULL, "E:1002|"));
    unsigned bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t p[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        n = frame(in, FIN | CHOPIN__WS_CLOSE, p, 2);
        CHECK(expect(in, n, MAX_MSG, NULL, "E:1002|"));
    }
    unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1013, 3000, 3999,
                       4000, 4999};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint8_t p[2] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i]};
        n = frame(in, FIN | CHOPIN__WS_CLOSE, p, 2);
        char want[32];
        snprintf(want, sizeof want, "C:%u:|", good[i]);
        CHECK(expect(in, n, MAX_MSG, NULL, want));
    }
    n = frame(in, FIN | CHOPIN__WS_CLOSE, "\x03\xe8\xff", 3); /* reason not UTF-8 */
    CHECK(expect(in, n, MAX_MSG, NULL, "E:1007|"));
}

/* Autobahn 9.x: the message limit, whole and in fragments. */
static void test_frames_limit(void) {
    uint8_t in[512], p[100];
    memset(p, 'a', sizeof p);
    size_t n = frame(in, FIN | CHOPIN__WS_BINARY, p, 100);
    CHECK(expect(in, n, 100, NULL, "B:100|"));
    CHECK(expect(in, n, 99, NULL, "E:1009|"));
    n = frame(in, CHOPIN__WS_BINARY, p, 60);
    n += frame(in + n, FIN | CHOPIN__WS_CONT, p, 40);
    CHECK(expect(in, n, 100, NULL, "B:100|"));
    CHECK(expect(in, n, 99, NULL, "E:1009|"));
}

static void test_frame_head(void) {
    uint8_t h[10];
    CHECK_INT(chopin__ws_frame_head(h, CHOPIN__WS_TEXT, 1, 0, 5), 2);
    CHECK_INT(h[0], 0x81);
    CHECK_INT(h[1], 5);
    CHECK_INT(chopin__ws_frame_head(h, CHOPIN__WS_BINARY, 0, 1, 300), 4);
    CHECK_INT(h[0], 0x42);
    CHECK_INT(h[1], 126);
    CHECK_INT(h[2] << 8 | h[3], 300);
    CHECK_INT(chopin__ws_frame_head(h, CHOPIN__WS_BINARY, 1, 0, 1ull << 32), 10);
    CHECK_INT(h[1], 127);
    CHECK_INT(h[5], 1);
}

/* ----- permessage-deflate ------------------------------------------------------------ */

static int negotiate(const char *line, struct chopin__ws_pmd *p, char *resp) {
    chopin_str l = {line, strlen(line)};
    return chopin__ws_pmd_negotiate(&l, 1, 12, p, resp, 256);
}

static int skipped;

/* The permessage-deflate cases need zlib: without it they are skipped (and counted). */
static int need_zlib(void) {
    if (chopin__ws_pmd_available())
        return 1;
    fprintf(stderr, "  skip %s: built without zlib (zlib1g-dev)\n", test_case_name);
    skipped++;
    return 0;
}

static void test_pmd_negotiate(void) {
    if (!need_zlib()) {
        struct chopin__ws_pmd p;
        char resp[256];
        CHECK_INT(negotiate("permessage-deflate", &p, resp), 0); /* never agreed then */
        return;
    }
    struct chopin__ws_pmd p;
    char resp[256];
    CHECK_INT(negotiate("permessage-deflate; client_max_window_bits", &p, resp), 1);
    CHECK_STR(resp, "permessage-deflate; client_max_window_bits=12");
    CHECK_INT(p.client_bits, 12);
    CHECK_INT(p.server_bits, 12);
    CHECK_INT(negotiate("permessage-deflate", &p, resp), 1);
    CHECK_STR(resp, "permessage-deflate");
    CHECK_INT(p.client_bits, 15); /* it did not let us limit its window */
    CHECK_INT(negotiate("permessage-deflate; server_no_context_takeover; "
                        "client_no_context_takeover; server_max_window_bits=10", &p, resp), 1);
    CHECK_STR(resp, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                    "server_max_window_bits=10");
    CHECK_INT(p.server_bits, 10);
    CHECK(p.server_no_takeover && p.client_no_takeover);
    /* unknown, repeated or out-of-range parameters decline that offer; the next may do */
    CHECK_INT(negotiate("permessage-deflate; foo", &p, resp), 0);
    CHECK_INT(negotiate("permessage-deflate; server_max_window_bits=16", &p, resp), 0);
    CHECK_INT(negotiate("permessage-deflate; server_max_window_bits=08", &p, resp), 0);
    CHECK_INT(negotiate("permessage-deflate; server_max_window_bits", &p, resp), 0);
    CHECK_INT(negotiate("permessage-deflate; client_no_context_takeover; client_no_context_takeover",
                        &p, resp), 0);
    CHECK_INT(negotiate("permessage-deflate; server_max_window_bits=8, "
                        "permessage-deflate; client_max_window_bits=\"9\"", &p, resp), 1);
    CHECK_STR(resp, "permessage-deflate; client_max_window_bits=9");
    CHECK_INT(negotiate("x-webkit-deflate-frame", &p, resp), 0);
}

/* Compresses `text` with our compressor (what a client does too) into a frame. */
static size_t deflated_frame(uint8_t *out, const struct chopin__ws_pmd *p,
                             struct chopin__ws_zout **z, const char *text, size_t len) {
    struct chopin__ws_buf b = {0};
    CHECK_INT(chopin__ws_deflate(z, p, text, len, &b), 0);
    size_t n = frame(out, FIN | RSV1 | CHOPIN__WS_TEXT, b.ptr, b.len);
    free(b.ptr);
    return n;
}

static void test_pmd_round_trip(void) {
    if (!need_zlib())
        return;
    struct chopin__ws_pmd p = {.server_bits = 12, .client_bits = 12};
    struct chopin__ws_zout *z = NULL;
    uint8_t in[4096];
    /* two messages with context takeover: the second refers back into the first */
    size_t n = deflated_frame(in, &p, &z, "hello hello hello", 17);
    n += deflated_frame(in + n, &p, &z, "hello hello hello", 17);
    CHECK(expect(in, n, MAX_MSG, &p, "T:hello hello hello|T:hello hello hello|"));
    chopin__ws_zout_free(z);
    /* compressed fragments: RSV1 on the first only */
    z = NULL;
    struct chopin__ws_buf b = {0};
    CHECK_INT(chopin__ws_deflate(&z, &p, "fragmented text", 15, &b), 0);
    n = frame(in, RSV1 | CHOPIN__WS_TEXT, b.ptr, 3);
    n += frame(in + n, FIN | CHOPIN__WS_CONT, b.ptr + 3, b.len - 3);
    CHECK(expect(in, n, MAX_MSG, &p, "T:fragmented text|"));
    n = frame(in, RSV1 | CHOPIN__WS_TEXT, b.ptr, 3);
    n += frame(in + n, FIN | RSV1 | CHOPIN__WS_CONT, b.ptr + 3, b.len - 3);
    CHECK(expect(in, n, MAX_MSG, &p, "E:1002|"));
    free(b.ptr);
    chopin__ws_zout_free(z);
    /* data that does not inflate */
    n = frame(in, FIN | RSV1 | CHOPIN__WS_TEXT, "\xff\xff\xff\xff", 4);
    CHECK(expect(in, n, MAX_MSG, &p, "E:1007|"));
    /* compressed text that is not UTF-8 */
    z = NULL;
    n = deflated_frame(in, &p, &z, "bad \xff", 5);
    CHECK(expect(in, n, MAX_MSG, &p, "E:1007|"));
    chopin__ws_zout_free(z);
}

/* A zip bomb: 1 MiB of zeros compresses to about a kilobyte; the limit stops the
 * inflating at the limit, exactly. */
static void test_pmd_bomb(void) {
    if (!need_zlib())
        return;
    struct chopin__ws_pmd p = {.server_bits = 15, .client_bits = 15, .server_no_takeover = 1};
    size_t big = 1u << 20;
    char *zeros = calloc(1, big);
    struct chopin__ws_zout *z = NULL;
    struct chopin__ws_buf b = {0};
    CHECK_INT(chopin__ws_deflate(&z, &p, zeros, big, &b), 0);
    CHECK(z == NULL); /* no context takeover: freed after the message */
    CHECK(b.len < 4096);
    uint8_t *in = malloc(b.len + 14);
    size_t n = frame(in, FIN | RSV1 | CHOPIN__WS_BINARY, b.ptr, b.len);
    char got[64];
    transcript(in, n, n, 65536, &p, got, sizeof got);
    CHECK_STR(got, "E:1009|");
    transcript(in, n, 7, big, &p, got, sizeof got);
    CHECK_STR(got, "B:1048576|"); /* exactly at the limit is allowed */
    transcript(in, n, 7, big - 1, &p, got, sizeof got);
    CHECK_STR(got, "E:1009|");
    free(in);
    free(b.ptr);
    free(zeros);
}

/* RSV1 on a message is refused when no extension was agreed. */
static void test_pmd_not_agreed(void) {
    uint8_t in[64];
    size_t n = frame(in, FIN | RSV1 | CHOPIN__WS_TEXT, "x", 1);
    CHECK(expect(in, n, MAX_MSG, NULL, "E:1002|"));
}

int main(void) {
    RUN(test_sha1_vectors);
    RUN(test_accept_key);
    RUN(test_handshake);
    RUN(test_utf8);
    RUN(test_frames_basic);
    RUN(test_frames_unmasked);
    RUN(test_frames_lengths);
    RUN(test_frames_rsv);
    RUN(test_frames_opcodes);
    RUN(test_frames_control);
    RUN(test_frames_fragments);
    RUN(test_frames_utf8);
    RUN(test_frames_close);
    RUN(test_frames_limit);
    RUN(test_frame_head);
    RUN(test_pmd_negotiate);
    RUN(test_pmd_round_trip);
    RUN(test_pmd_bomb);
    RUN(test_pmd_not_agreed);
    printf("RESULT %d %d %d\n", test_passed, test_failed, skipped);
    return test_failed ? 1 : 0;
}
