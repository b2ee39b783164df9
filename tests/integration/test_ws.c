/* SPDX-License-Identifier: MIT */
/*
 * WebSocket over real sockets (issue 17), run on every backend: the handshake and its
 * refusals, framing rules with the close code each breach gets (RFC 6455 section by
 * section; the Autobahn case families as a map), the close handshake both ways, idle
 * pings, the bounded send queue, sends from another thread, publish/subscribe across
 * workers, permessage-deflate, the server's drain, and clients that leave at every byte
 * of a message. Then real clients: Python's websockets and Node's ws (Debian packages),
 * each skipped with its reason when absent.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef CHOPIN_WS_DEFLATE
#include <zlib.h>
#endif

#include "client.h"
#include "test.h"

static int port;
static chopin_server *server;
static atomic_int opens, closes, last_close_code, upgrades;
static atomic_int skipped;

/* ----- the server's routes ----------------------------------------------------------- */

static void echo_message(chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len) {
    /* "close:N" asks the server to start the close handshake with code N */
    if (kind == CHOPIN_WS_TEXT && len > 6 && len < 16 && !memcmp(data, "close:", 6)) {
        char code[16] = {0}; /* the message is not NUL-terminated: what follows it is not ours */
        memcpy(code, (const char *)data + 6, len - 6);
        chopin_ws_close(ws, atoi(code), "done");
        return;
    }
    /* "flood": more than the queue bound at once, to a client that does not read */
    if (kind == CHOPIN_WS_TEXT && len == 5 && !memcmp(data, "flood", 5)) {
        static char chunk[16384];
        while (chopin_ws_send(ws, CHOPIN_WS_BINARY, chunk, sizeof chunk) == 0) {
        }
        return;
    }
    chopin_ws_send(ws, kind, data, len);
}

static void counted_open(chopin_ws *ws) { atomic_fetch_add(&opens, 1); }

static atomic_int send_in_close; /* what chopin_ws_send returned from on_close */

static void counted_close(chopin_ws *ws, int code, const char *reason, size_t len) {
    atomic_store(&send_in_close, chopin_ws_send(ws, CHOPIN_WS_TEXT, "late", 4));
    atomic_store(&last_close_code, code);
    atomic_fetch_add(&closes, 1);
}

static const chopin_ws_config echo_cfg = {
    .on_open = counted_open,
    .on_message = echo_message,
    .on_close = counted_close,
    .max_message = 1000,
    .max_queued = 256 * 1024,
    .deflate = 1,
};

/* Every successful upgrade gets exactly one on_close. */
static void upgrade(chopin_req *req, chopin_res *res, const chopin_ws_config *cfg) {
    if (chopin_ws_upgrade(req, res, cfg, NULL) == 0)
        atomic_fetch_add(&upgrades, 1);
}

static void echo_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_ws_config cfg = echo_cfg; /* on the stack: the upgrade copies it */
    upgrade(req, res, &cfg);
}

static void big_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_ws_config cfg = echo_cfg;
    cfg.max_message = 4u << 20;
    cfg.max_queued = 16u << 20;
    upgrade(req, res, &cfg);
}

static void idle_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_ws_config cfg = echo_cfg;
    cfg.idle_ms = 200;
    upgrade(req, res, &cfg);
}

static int good_origin(chopin_str origin, void *user) {
    return origin.ptr && origin.len == 14 && !memcmp(origin.ptr, "http://good.ex", 14);
}

static void origin_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_ws_config cfg = echo_cfg;
    cfg.allow_origin = good_origin;
    upgrade(req, res, &cfg);
}

/* Picks "chat" when offered, else no subprotocol; "/proto?force" insists on "chat". */
static void proto_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_ws_config cfg = echo_cfg;
    if (chopin_ws_offers(req, "chat") || chopin_req_query(req, "force").ptr)
        cfg.protocol = "chat";
    upgrade(req, res, &cfg);
}

static _Atomic(chopin_ws_ref *) posted_ref;
static chopin_ws_ref ref_store;

static void post_open(chopin_ws *ws) {
    ref_store = chopin_ws_handle(ws);
    atomic_store(&posted_ref, &ref_store);
}

static void post_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_ws_config cfg = echo_cfg;
    cfg.on_open = post_open;
    upgrade(req, res, &cfg);
}

/* A small send queue: messages held behind a posted fragmented message soon fill it. */
static void post_small_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_ws_config cfg = echo_cfg;
    cfg.on_open = post_open;
    cfg.max_queued = 4096;
    upgrade(req, res, &cfg);
}

static void sub_open(chopin_ws *ws) {
    chopin_ws_subscribe(ws, "news");
    chopin_ws_send(ws, CHOPIN_WS_TEXT, "subscribed", 10);
}

static void sub_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_ws_config cfg = echo_cfg;
    cfg.on_open = sub_open;
    upgrade(req, res, &cfg);
}

static chopin_router *routes(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/echo", echo_route, NULL);
    chopin_router_get(r, "/big", big_route, NULL);
    chopin_router_get(r, "/idle", idle_route, NULL);
    chopin_router_get(r, "/origin", origin_route, NULL);
    chopin_router_get(r, "/proto", proto_route, NULL);
    chopin_router_get(r, "/post", post_route, NULL);
    chopin_router_get(r, "/post-small", post_small_route, NULL);
    chopin_router_get(r, "/sub", sub_route, NULL);
    return r;
}

/* ----- a raw WebSocket client ------------------------------------------------------------ */

struct wsc {
    int fd;
    size_t len;
    char buf[1 << 20];
    char head[4096];
    int status;
};

static const char KEY[] = "dGhlIHNhbXBsZSBub25jZQ==";

/* Reads more into c->buf within 5 s; 0 on EOF or timeout. */
static int fill(struct wsc *c) {
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (c->len == sizeof c->buf || poll(&p, 1, 5000) != 1)
        return 0;
    ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    if (n <= 0)
        return 0;
    c->len += (size_t)n;
    return 1;
}

static void consume(struct wsc *c, size_t n) {
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Sends the upgrade request for `path` with extra header lines; reads the answer's head. */
static struct wsc *ws_open_with(const char *path, const char *extra) {
    struct wsc *c = calloc(1, sizeof *c);
    c->fd = cl_connect_fd(port);
    char req[2048];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: %s\r\n%s\r\n",
             path, KEY, extra);
    if (!cl_send_fd(c->fd, req)) {
        close(c->fd);
        free(c);
        return NULL;
    }
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) {
            size_t n = (size_t)(end + 4 - c->buf);
            memcpy(c->head, c->buf, n < sizeof c->head ? n : sizeof c->head - 1);
            c->status = atoi(c->buf + 9);
            /* a refusal has a body: drop it with the head */
            char *cl = strcasestr(c->head, "content-length: ");
            size_t body = cl ? (size_t)atoi(cl + 16) : 0;
            while (c->len < n + body && fill(c)) {
            }
            consume(c, n + body <= c->len ? n + body : c->len);
            return c;
        }
        if (!fill(c))
            break;
    }
    c->status = -1;
    return c;
}

static struct wsc *ws_open(const char *path) {
    return ws_open_with(path, "Sec-WebSocket-Version: 13\r\n");
}

static void ws_free(struct wsc *c) {
    if (!c)
        return;
    close(c->fd);
    free(c);
}

/* Sends one frame: b0 as given (FIN, RSV, opcode), masked unless `unmasked`. */
static void send_frame_raw(struct wsc *c, int b0, const void *payload, size_t len, int unmasked) {
    uint8_t *f = malloc(len + 14);
    size_t h = 0;
    f[h++] = (uint8_t)b0;
    uint8_t mbit = unmasked ? 0 : 0x80;
    if (len < 126) {
        f[h++] = (uint8_t)(mbit | len);
    } else if (len < 65536) {
        f[h++] = mbit | 126;
        f[h++] = (uint8_t)(len >> 8);
        f[h++] = (uint8_t)len;
    } else {
        f[h++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            f[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    static const uint8_t key[4] = {0xa1, 0x07, 0x3c, 0x55};
    if (!unmasked) {
        memcpy(f + h, key, 4);
        h += 4;
    }
    for (size_t i = 0; i < len; i++)
        f[h + i] = ((const uint8_t *)payload)[i] ^ (unmasked ? 0 : key[i & 3]);
    size_t off = 0, total = h + len;
    while (off < total) {
        ssize_t n = write(c->fd, f + off, total - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    free(f);
}

static void send_frame(struct wsc *c, int b0, const void *payload, size_t len) {
    send_frame_raw(c, b0, payload, len, 0);
}

/* Reads one server frame: its first byte, payload malloc'd into *out (NUL-terminated).
 * Returns the payload length, or -1 on EOF or timeout (or a masked server frame). */
static long read_frame(struct wsc *c, int *b0, char **out) {
    *out = NULL;
    *b0 = -1;
    for (;;) {
        if (c->len >= 2) {
            uint8_t *p = (uint8_t *)c->buf;
            if (p[1] & 0x80)
                return -1;
            size_t h = 2;
            uint64_t len = p[1] & 0x7f;
            if (len == 126) {
                h = 4;
                len = c->len >= 4 ? (uint64_t)p[2] << 8 | p[3] : 0;
            } else if (len == 127) {
                h = 10;
                len = 0;
                for (int i = 0; i < 8 && c->len >= 10; i++)
                    len = len << 8 | p[2 + i];
            }
            if (c->len >= h && c->len >= h + len) {
                *b0 = p[0];
                *out = malloc(len + 1);
                memcpy(*out, c->buf + h, len);
                (*out)[len] = '\0';
                consume(c, h + len);
                return (long)len;
            }
            if (h + len > sizeof c->buf)
                return -1; /* (the tests read nothing that large this way) */
        }
        if (!fill(c))
            return -1;
    }
}

/* Reads frames until a close; returns its code (1005 without one), -1 when none came. */
static int read_close(struct wsc *c) {
    for (;;) {
        int b0;
        char *p;
        long n = read_frame(c, &b0, &p);
        if (n < 0)
            return -1;
        int code = (b0 & 0xf) == 8 ? (n >= 2 ? (uint8_t)p[0] << 8 | (uint8_t)p[1] : 1005) : 0;
        free(p);
        if ((b0 & 0xf) == 8)
            return code;
    }
}

/* 1 when the server closed the TCP connection (EOF) within 5 s. */
static int tcp_closed(struct wsc *c) {
    char tmp[4096];
    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 5000) != 1)
            return 0;
        ssize_t n = read(c->fd, tmp, sizeof tmp);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
        if (n < 0)
            return 0;
    }
}

/* Waits (bounded) until `closes` reaches `want`: on_close runs when the server frees the
 * connection, a moment after the client saw its end. */
static int wait_closes(int want) {
    for (int i = 0; i < 500 && atomic_load(&closes) < want; i++)
        usleep(10000);
    return atomic_load(&closes) >= want;
}

/* ----- the opening handshake (RFC 6455 §4) ---------------------------------------------- */

static void test_handshake_ok(void) {
    struct wsc *c = ws_open("/echo");
    CHECK_INT(c->status, 101);
    CHECK(strstr(c->head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL);
    CHECK(strcasestr(c->head, "\r\nUpgrade: websocket\r\n") != NULL);
    CHECK(strcasestr(c->head, "\r\nConnection: Upgrade\r\n") != NULL);
    CHECK(strcasestr(c->head, "Content-Length") == NULL); /* RFC 9110 §8.6: none in a 1xx */
    CHECK(strcasestr(c->head, "Sec-WebSocket-Extensions") == NULL); /* none offered */
    ws_free(c);
}

static void test_handshake_refused(void) {
    struct wsc *c = ws_open_with("/echo", "Sec-WebSocket-Version: 8\r\n");
    CHECK_INT(c->status, 426);
    CHECK(strstr(c->head, "Sec-WebSocket-Version: 13\r\n") != NULL);
    ws_free(c);
    c = ws_open_with("/echo", ""); /* no version at all */
    CHECK_INT(c->status, 426);
    ws_free(c);
    struct cl_resp r;
    CHECK_INT(cl_get(port, "/echo", &r), 426); /* a plain GET of a WebSocket route */
    cl_resp_free(&r);
    c = ws_open_with("/echo", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x\r\n");
    CHECK_INT(c->status, 400); /* two keys */
    ws_free(c);
    c = ws_open_with("/origin", "Sec-WebSocket-Version: 13\r\nOrigin: http://evil.ex\r\n");
    CHECK_INT(c->status, 403);
    ws_free(c);
    c = ws_open_with("/origin", "Sec-WebSocket-Version: 13\r\nOrigin: http://good.ex\r\n");
    CHECK_INT(c->status, 101);
    ws_free(c);
}

static void test_subprotocol(void) {
    struct wsc *c = ws_open_with("/proto", "Sec-WebSocket-Version: 13\r\n"
                                           "Sec-WebSocket-Protocol: superchat, chat\r\n");
    CHECK_INT(c->status, 101);
    CHECK(strstr(c->head, "Sec-WebSocket-Protocol: chat\r\n") != NULL);
    ws_free(c);
    c = ws_open("/proto");
    CHECK_INT(c->status, 101);
    CHECK(strcasestr(c->head, "Sec-WebSocket-Protocol") == NULL);
    ws_free(c);
    c = ws_open("/proto?force"); /* a protocol the client did not offer cannot be chosen */
    CHECK_INT(c->status, 400);
    ws_free(c);
}

/* ----- framing (§5; Autobahn 1-7, 9) --------------------------------------------------- */

static void echo_case(struct wsc *c, int opcode, size_t len) {
    char *msg = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        msg[i] = (char)('a' + i % 26);
    send_frame(c, 0x80 | opcode, msg, len);
    int b0;
    char *p = NULL;
    long n = read_frame(c, &b0, &p);
    CHECK_INT(n, (long)len);
    CHECK_INT(b0, 0x80 | opcode);
    CHECK(p && n == (long)len && memcmp(p, msg, len) == 0);
    free(p);
    free(msg);
}

static void test_echo_sizes(void) {
    struct wsc *c = ws_open("/echo");
    size_t sizes[] = {0, 1, 125, 126, 1000};
    for (size_t i = 0; i < 5; i++) {
        echo_case(c, 1, sizes[i]);
        echo_case(c, 2, sizes[i]);
    }
    ws_free(c);
    c = ws_open("/big");
    size_t big[] = {65535, 65536}; /* 16- and 64-bit lengths */
    for (size_t i = 0; i < 2; i++)
        echo_case(c, 2, big[i]);
    ws_free(c);
}

/* A client that sends its first frame in the same write as its upgrade request: the bytes
 * behind the request are the protocol's (they wait while the 101 is queued). */
static void test_frame_behind_request(void) {
    struct wsc *c = calloc(1, sizeof *c);
    c->fd = cl_connect_fd(port);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", KEY);
    /* "hi", masked with 00 00 00 00 */
    memcpy(req + n, "\x81\x82\x00\x00\x00\x00hi", 8);
    CHECK(write(c->fd, req, (size_t)n + 8) == n + 8);
    while (!memmem(c->buf, c->len, "\r\n\r\n", 4) && fill(c)) {
    }
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    CHECK(end && !strncmp(c->buf, "HTTP/1.1 101", 12));
    if (end)
        consume(c, (size_t)(end + 4 - c->buf));
    int b0;
    char *p;
    CHECK_INT(read_frame(c, &b0, &p), 2);
    CHECK_STR(p ? p : "", "hi");
    free(p);
    ws_free(c);
}

/* Autobahn 5: fragments, with a ping between them answered first. */
static void test_fragments_and_ping(void) {
    struct wsc *c = ws_open("/echo");
    send_frame(c, 0x01, "Hello, ", 7);
    send_frame(c, 0x89, "ping!", 5);
    send_frame(c, 0x00, "Wor", 3);
    send_frame(c, 0x80, "ld", 2);
    int b0;
    char *p;
    CHECK_INT(read_frame(c, &b0, &p), 5);
    CHECK_INT(b0, 0x8a); /* the pong, with the ping's payload */
    CHECK_STR(p ? p : "", "ping!");
    free(p);
    CHECK_INT(read_frame(c, &b0, &p), 12);
    CHECK_INT(b0, 0x81);
    CHECK_STR(p ? p : "", "Hello, World");
    free(p);
    ws_free(c);
}

/* Each breach: the close code the server fails the connection with, then its TCP close. */
static void breach(const char *what, int b0, const void *payload, size_t len, int unmasked,
                   int want) {
    int before = atomic_load(&closes);
    struct wsc *c = ws_open("/echo");
    send_frame_raw(c, b0, payload, len, unmasked);
    int code = read_close(c);
    if (code != want)
        fprintf(stderr, "  %s: close %d, want %d\n", what, code, want);
    CHECK_INT(code, want);
    CHECK(tcp_closed(c));
    CHECK(wait_closes(before + 1));
    CHECK_INT(atomic_load(&last_close_code), want);
    ws_free(c);
}

static void test_breaches(void) {
    breach("unmasked", 0x81, "hi", 2, 1, 1002);
    breach("rsv2", 0xa1, "hi", 2, 0, 1002);
    breach("rsv1 without deflate", 0xc1, "hi", 2, 0, 1002);
    breach("opcode 3", 0x83, "", 0, 0, 1002);
    breach("opcode 11", 0x8b, "", 0, 0, 1002);
    breach("fragmented ping", 0x09, "", 0, 0, 1002);
    char big[126] = {0};
    breach("ping of 126", 0x89, big, 126, 0, 1002);
    breach("continuation alone", 0x80, "x", 1, 0, 1002);
    breach("text not UTF-8", 0x81, "\xce\xba\xff", 3, 0, 1007);
    breach("close code 1005", 0x88, "\x03\xed", 2, 0, 1002);
    breach("close of one byte", 0x88, "\x03", 1, 0, 1002);
    char over[1001];
    memset(over, 'x', sizeof over);
    breach("over max_message", 0x82, over, sizeof over, 0, 1009);
}

/* §6.1 / Autobahn 6.x fail-fast: invalid UTF-8 in a first fragment closes at once, without
 * waiting for the message to end. */
static void test_utf8_fails_fast(void) {
    struct wsc *c = ws_open("/echo");
    send_frame(c, 0x01, "ok \xff", 4);
    CHECK_INT(read_close(c), 1007);
    ws_free(c);
}

/* ----- closing (§7) ------------------------------------------------------------------------ */

static void test_client_closes(void) {
    int before = atomic_load(&closes);
    struct wsc *c = ws_open("/echo");
    send_frame(c, 0x88, "\x03\xe8" "bye", 5);
    int b0;
    char *p;
    CHECK_INT(read_frame(c, &b0, &p), 2);
    CHECK_INT(b0, 0x88);
    CHECK_INT(p ? (uint8_t)p[0] << 8 | (uint8_t)p[1] : -1, 1000); /* the code echoed */
    free(p);
    CHECK(tcp_closed(c)); /* §7.1.1: the server closes TCP first */
    CHECK(wait_closes(before + 1));
    CHECK_INT(atomic_load(&last_close_code), 1000);
    CHECK_INT(atomic_load(&send_in_close), CHOPIN_ESTALE); /* nothing is sent after on_close */
    ws_free(c);
}

static void test_server_closes(void) {
    int before = atomic_load(&closes);
    struct wsc *c = ws_open("/echo");
    send_frame(c, 0x81, "close:4001", 10);
    int b0;
    char *p;
    CHECK_INT(read_frame(c, &b0, &p), 6);
    CHECK_INT(b0, 0x88);
    CHECK_INT(p ? (uint8_t)p[0] << 8 | (uint8_t)p[1] : -1, 4001);
    CHECK(p && memcmp(p + 2, "done", 4) == 0);
    free(p);
    send_frame(c, 0x81, "ignored", 7); /* data after its close: dropped */
    send_frame(c, 0x88, "\x0f\xa1", 2);  /* the client's answer */
    CHECK(tcp_closed(c));
    CHECK(wait_closes(before + 1));
    CHECK_INT(atomic_load(&last_close_code), 4001);
    ws_free(c);
}

/* The client vanishes without a close frame: on_close hears 1006. */
static void test_abnormal_end(void) {
    int before = atomic_load(&closes);
    struct wsc *c = ws_open("/echo");
    echo_case(c, 1, 3);
    ws_free(c);
    CHECK(wait_closes(before + 1));
    CHECK_INT(atomic_load(&last_close_code), 1006);
}

/* An idle connection gets a ping; one that answers stays, one that does not is closed. */
static void test_idle_ping(void) {
    struct wsc *c = ws_open("/idle");
    int b0;
    char *p;
    CHECK_INT(read_frame(c, &b0, &p), 0);
    CHECK_INT(b0, 0x89);
    free(p);
    send_frame(c, 0x8a, "", 0); /* the pong */
    echo_case(c, 1, 4);       /* still open */
    CHECK_INT(read_frame(c, &b0, &p), 0); /* the next ping... */
    CHECK_INT(b0, 0x89);
    free(p);
    CHECK(tcp_closed(c)); /* ...unanswered: closed */
    ws_free(c);
}

/* A client that does not read, sent more than max_queued at once: closed with 1008 rather
 * than buffered without bound. */
static void test_slow_reader(void) {
    int before = atomic_load(&closes);
    struct wsc *c = ws_open("/echo");
    int small = 4096;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    send_frame(c, 0x81, "flood", 5);
    CHECK(wait_closes(before + 1));
    CHECK_INT(atomic_load(&last_close_code), 1008);
    ws_free(c);
}

/* ----- from other threads: chopin_ws_post, chopin_ws_publish ---------------------------- */

static void test_post_from_thread(void) {
    atomic_store(&posted_ref, NULL);
    struct wsc *c = ws_open("/post");
    echo_case(c, 1, 2); /* on_open has run by the time the echo comes */
    chopin_ws_ref *r = atomic_load(&posted_ref);
    CHECK(r != NULL);
    if (r) {
        CHECK_INT(chopin_ws_post(*r, CHOPIN_WS_TEXT, "from a thread", 13), 0);
        int b0;
        char *p;
        CHECK_INT(read_frame(c, &b0, &p), 13);
        CHECK_STR(p ? p : "", "from a thread");
        free(p);
    }
    ws_free(c);
    /* a handle that outlived its connection: posting is harmless */
    CHECK(wait_closes(atomic_load(&upgrades)));
    if (r)
        CHECK_INT(chopin_ws_post(*r, CHOPIN_WS_TEXT, "late", 4), 0);
}

/* The handle of the connection just opened on a route with post_open (NULL: none came). */
static chopin_ws_ref *open_posted(const char *path, struct wsc **c) {
    atomic_store(&posted_ref, NULL);
    *c = ws_open(path);
    echo_case(*c, 1, 2); /* on_open has run by the time the echo comes */
    chopin_ws_ref *r = atomic_load(&posted_ref);
    CHECK(r != NULL);
    return r;
}

#define FRAGMENTS 300
#define ECHOES 300

struct fragment_writer {
    chopin_ws_ref ref;
    atomic_int go; /* the first fragment is read: write the others */
    int failures;
};

/* A thread's fragmented message: "[0]" first, then "[1]" to "[299]" once told to go. */
static void *write_fragments(void *arg) {
    struct fragment_writer *w = arg;
    chopin_ws_msg *m = chopin_ws_post_begin(w->ref, CHOPIN_WS_TEXT);
    if (!m || chopin_ws_post_fragment(m, "[0]", 3, 0) != 0) {
        w->failures++;
        return NULL;
    }
    while (!atomic_load(&w->go))
        usleep(1000);
    for (int i = 1; i < FRAGMENTS; i++) {
        char s[16];
        int n = snprintf(s, sizeof s, "[%d]", i);
        w->failures += chopin_ws_post_fragment(m, s, (size_t)n, i == FRAGMENTS - 1) != 0;
        if (i % 16 == 0)
            sched_yield(); /* let the worker run between fragments: echoes come meanwhile */
    }
    return NULL;
}

/* A thread sends a fragmented message while the worker echoes: its frames come in order
 * and no other data frame comes between them (RFC 6455 §5.4); the echoes asked for in the
 * meantime, and a message posted whole, wait for its end; a ping's pong does not. */
static void test_post_fragments(void) {
    struct wsc *c;
    chopin_ws_ref *r = open_posted("/post", &c);
    if (!r) {
        ws_free(c);
        return;
    }
    struct fragment_writer w = {.ref = *r};
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, write_fragments, &w), 0);
    int b0;
    char *p;
    CHECK_INT(read_frame(c, &b0, &p), 3);
    CHECK_INT(b0, 0x01); /* text, not final */
    free(p);
    /* the message is in progress: echoes and a posted message wait; the pong of a ping
     * sent behind the echoes shows the worker has read them */
    char e[16];
    for (int i = 0; i < 20; i++)
        send_frame(c, 0x81, e, (size_t)snprintf(e, sizeof e, "e%d", i));
    CHECK_INT(chopin_ws_post(*r, CHOPIN_WS_TEXT, "posted", 6), 0);
    send_frame(c, 0x89, "sync", 4);
    CHECK_INT(read_frame(c, &b0, &p), 4);
    CHECK_INT(b0, 0x8a);
    free(p);
    atomic_store(&w.go, 1);
    for (int i = 20; i < ECHOES; i++)
        send_frame(c, 0x81, e, (size_t)snprintf(e, sizeof e, "e%d", i));
    char *msg = calloc(1, 8 * FRAGMENTS), *want = calloc(1, 8 * FRAGMENTS);
    strcpy(msg, "[0]");
    for (int i = 0; i < FRAGMENTS; i++)
        sprintf(want + strlen(want), "[%d]", i);
    int in_msg = 1, echoes = 0, posted = 0, misplaced = 0;
    while (echoes < ECHOES || !posted) {
        long n = read_frame(c, &b0, &p);
        if (n < 0)
            break;
        int opcode = b0 & 0xf;
        if (opcode == 0 && in_msg) {
            strcat(msg, p);
            in_msg = !(b0 & 0x80);
        } else if (opcode == 1 && !in_msg && !strcmp(p, "posted")) {
            posted++;
        } else if (opcode == 1 && !in_msg) {
            snprintf(e, sizeof e, "e%d", echoes++);
            misplaced += strcmp(p, e) != 0; /* the echoes keep their order */
        } else {
            misplaced++; /* a data frame inside the message, or a stray continuation */
        }
        free(p);
    }
    CHECK_INT(misplaced, 0);
    CHECK_INT(in_msg, 0);
    CHECK_INT(echoes, ECHOES);
    CHECK_INT(posted, 1);
    CHECK_STR(msg, want);
    pthread_join(t, NULL);
    CHECK_INT(w.failures, 0);
    free(msg);
    free(want);
    ws_free(c);
}

/* What waits behind a fragmented message counts against max_queued: a message never ended
 * closes the connection (1008) once enough is held; its writer hears CHOPIN_ESTALE. A
 * message posted to a connection that has ended hears it too. */
static void test_post_fragments_bounded(void) {
    struct wsc *c;
    chopin_ws_ref *r = open_posted("/post-small", &c);
    if (!r) {
        ws_free(c);
        return;
    }
    chopin_ws_msg *m = chopin_ws_post_begin(*r, CHOPIN_WS_BINARY);
    CHECK(m != NULL);
    CHECK_INT(chopin_ws_post_fragment(m, "begun", 5, 0), 0);
    int b0;
    char *p;
    CHECK_INT(read_frame(c, &b0, &p), 5);
    CHECK_INT(b0, 0x02);
    free(p);
    static char big[900];
    for (int i = 0; i < 6; i++) /* 5,400 bytes of echoes held, past 4,096 */
        send_frame(c, 0x82, big, sizeof big);
    CHECK_INT(read_close(c), 1008);
    CHECK_INT(chopin_ws_post_fragment(m, "more", 4, 0), CHOPIN_ESTALE);
    CHECK_INT(chopin_ws_post_fragment(m, NULL, 0, 1), CHOPIN_ESTALE); /* releases it */
    ws_free(c);
    CHECK(wait_closes(atomic_load(&upgrades)));
    /* the connection has ended: the first fragment is posted, and dropped there */
    m = chopin_ws_post_begin(*r, CHOPIN_WS_TEXT);
    int rc = chopin_ws_post_fragment(m, "a", 1, 0);
    CHECK_INT(rc, 0);
    for (int i = 0; i < 500 && rc == 0; i++) {
        usleep(10000);
        rc = chopin_ws_post_fragment(m, "b", 1, 0);
    }
    CHECK_INT(rc, CHOPIN_ESTALE);
    CHECK_INT(chopin_ws_post_fragment(m, NULL, 0, 1), CHOPIN_ESTALE);
    CHECK(chopin_ws_post_begin(*r, (chopin_ws_kind)9) == NULL);
}

#define SUBSCRIBERS 8
#define PUBLISHES 200

/* Every subscriber, on every worker, gets every message once and in order. */
static void test_publish(void) {
    struct wsc *c[SUBSCRIBERS];
    for (int i = 0; i < SUBSCRIBERS; i++) {
        c[i] = ws_open("/sub");
        int b0;
        char *p;
        CHECK_INT(read_frame(c[i], &b0, &p), 10); /* "subscribed": it is on the list */
        free(p);
    }
    for (int i = 0; i < PUBLISHES; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "m%d", i);
        CHECK(chopin_ws_publish(server, "news", CHOPIN_WS_TEXT, msg, (size_t)n) >= 1);
    }
    CHECK_INT(chopin_ws_publish(server, "nobody", CHOPIN_WS_TEXT, "x", 1), 2);
    for (int i = 0; i < SUBSCRIBERS; i++) {
        int ok = 1;
        for (int k = 0; k < PUBLISHES && ok; k++) {
            int b0;
            char *p;
            char want[32];
            snprintf(want, sizeof want, "m%d", k);
            ok = read_frame(c[i], &b0, &p) >= 0 && strcmp(p, want) == 0;
            if (!ok)
                fprintf(stderr, "  subscriber %d: message %d\n", i, k);
            free(p);
        }
        CHECK(ok);
        echo_case(c[i], 1, 3); /* and nothing more came before the echo */
        ws_free(c[i]);
    }
}

/* A connection's subscriptions end with it: a publish after the subscribers left reaches
 * none of them (their state is gone), and a new subscriber gets the next one. */
static void count_turn(chopin_worker *w, void *arg) { atomic_fetch_add((atomic_int *)arg, 1); }

static void test_publish_after_leaving(void) {
    CHECK(wait_closes(atomic_load(&upgrades))); /* test_publish's subscribers have ended */
    int workers = chopin_ws_publish(server, "news", CHOPIN_WS_TEXT, "to nobody", 9);
    CHECK(workers >= 1);
    /* every worker has delivered it once a function posted after it has run (posts from
     * one thread run in order): the next subscriber comes after it */
    static atomic_int turns;
    atomic_store(&turns, 0);
    CHECK_INT(chopin_server_post_all(server, count_turn, &turns), workers);
    for (int i = 0; i < 500 && atomic_load(&turns) < workers; i++)
        usleep(10000);
    CHECK_INT(atomic_load(&turns), workers);
    struct wsc *c = ws_open("/sub");
    int b0;
    char *p;
    CHECK_INT(read_frame(c, &b0, &p), 10); /* "subscribed" */
    free(p);
    CHECK(chopin_ws_publish(server, "news", CHOPIN_WS_TEXT, "again", 5) >= 1);
    CHECK_INT(read_frame(c, &b0, &p), 5);
    CHECK_STR(p ? p : "", "again");
    free(p);
    ws_free(c);
}

/* ----- permessage-deflate (RFC 7692) --------------------------------------------------- */

#ifdef CHOPIN_WS_DEFLATE
static void test_deflate(void) {
    struct wsc *c = ws_open_with("/echo", "Sec-WebSocket-Version: 13\r\n"
                                          "Sec-WebSocket-Extensions: permessage-deflate; "
                                          "client_max_window_bits\r\n");
    CHECK_INT(c->status, 101);
    CHECK(strstr(c->head, "Sec-WebSocket-Extensions: permessage-deflate; "
                          "client_max_window_bits=12\r\n") != NULL);
    char text[600];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "chopin plays "[i % 13];
    z_stream zc = {0}, zd = {0};
    deflateInit2(&zc, 6, Z_DEFLATED, -12, 8, Z_DEFAULT_STRATEGY);
    inflateInit2(&zd, -15);
    for (int round = 0; round < 2; round++) { /* context takeover both ways */
        unsigned char z[1024];
        zc.next_in = (Bytef *)text;
        zc.avail_in = sizeof text;
        zc.next_out = z;
        zc.avail_out = sizeof z;
        deflate(&zc, Z_SYNC_FLUSH);
        size_t zlen = sizeof z - zc.avail_out - 4;
        send_frame(c, 0xc1, z, zlen);
        int b0;
        char *p;
        long n = read_frame(c, &b0, &p);
        CHECK(n > 0);
        CHECK_INT(b0, 0xc1); /* compressed back */
        unsigned char out[1024];
        char *q = realloc(p, (size_t)n + 4);
        memcpy(q + n, "\x00\x00\xff\xff", 4);
        zd.next_in = (Bytef *)q;
        zd.avail_in = (uInt)n + 4;
        zd.next_out = out;
        zd.avail_out = sizeof out;
        inflate(&zd, Z_SYNC_FLUSH);
        CHECK_INT(sizeof out - zd.avail_out, sizeof text);
        CHECK(memcmp(out, text, sizeof text) == 0);
        free(q);
    }
    deflateEnd(&zc);
    inflateEnd(&zd);
    ws_free(c);
}

/* A zip bomb: 1 MiB of zeros in about 1 KiB is stopped at max_message (1000), 1009. */
static void test_deflate_bomb(void) {
    struct wsc *c = ws_open_with("/echo", "Sec-WebSocket-Version: 13\r\n"
                                          "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    size_t big = 1 << 20;
    unsigned char *zeros = calloc(1, big), z[8192];
    z_stream zc = {0};
    deflateInit2(&zc, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    zc.next_in = zeros;
    zc.avail_in = (uInt)big;
    zc.next_out = z;
    zc.avail_out = sizeof z;
    deflate(&zc, Z_SYNC_FLUSH);
    send_frame(c, 0xc2, z, sizeof z - zc.avail_out - 4);
    CHECK_INT(read_close(c), 1009);
    deflateEnd(&zc);
    free(zeros);
    ws_free(c);
}
#endif

/* ----- clients that leave at every byte of a message ----------------------------------- */

static void test_disconnect_every_byte(void) {
    uint8_t frames[64];
    size_t n = 0;
    /* a fragmented text message with a ping inside, then a close */
    const char *parts[] = {"\x01" "abc", "\x89" "p", "\x80" "def", "\x88" "\x03\xe8"};
    size_t lens[] = {3, 1, 3, 2};
    static const uint8_t key[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) {
        frames[n++] = (uint8_t)parts[i][0];
        frames[n++] = (uint8_t)(0x80 | lens[i]);
        memcpy(frames + n, key, 4);
        n += 4;
        for (size_t k = 0; k < lens[i]; k++)
            frames[n++] = (uint8_t)parts[i][1 + k] ^ key[k & 3];
    }
    int before = atomic_load(&closes);
    for (size_t cut = 0; cut <= n; cut++) {
        struct wsc *c = ws_open("/echo");
        ssize_t w = write(c->fd, frames, cut);
        (void)w;
        ws_free(c);
    }
    /* every connection ended and was released (ASan: nothing leaked) */
    CHECK(wait_closes(before + (int)n + 1));
    struct wsc *c = ws_open("/echo");
    echo_case(c, 1, 5); /* the server is fine */
    ws_free(c);
}

/* ----- memory: idle connections (issue 17: at most 2 KiB each without deflate) ---------- */

/* Under AddressSanitizer or ThreadSanitizer the resident set says nothing of our memory:
 * their allocators are not ours. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

#define IDLE_CONNS 3000
#define IDLE_BYTES_MAX 2048

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = -1;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* An upgraded connection that keeps nothing on the client's side but its socket (the
 * process's resident set is the server's growth). -1 on failure. */
static int idle_ws(void) {
    int fd = cl_connect_fd(port);
    char req[256], head[512];
    snprintf(req, sizeof req, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n", KEY);
    if (!cl_send_fd(fd, req))
        return -1;
    size_t len = 0;
    while (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4)) {
        if (len == sizeof head || read(fd, head + len, 1) != 1) {
            close(fd);
            return -1;
        }
        len++;
    }
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* IDLE_CONNS idle WebSocket connections: the server's memory per connection, reported,
 * and at most IDLE_BYTES_MAX (measured: about 680 bytes, bench/ws.sh part C). */
static void test_idle_memory(void) {
    if (UNDER_SANITIZER) {
        printf("skipped the RSS check under a sanitizer (its allocator is not ours)\n");
        return;
    }
    static int fds[IDLE_CONNS];
    struct wsc *warm = ws_open("/echo"); /* the worker's first connection: its buffers */
    echo_case(warm, 1, 10);
    long before = rss_kib();
    int opened = 0;
    for (int i = 0; i < IDLE_CONNS; i++)
        opened += (fds[i] = idle_ws()) >= 0;
    CHECK_INT(opened, IDLE_CONNS);
    echo_case(warm, 1, 10); /* every upgrade before it is done */
    long after = rss_kib();
    long per = (after - before) * 1024 / IDLE_CONNS;
    printf("idle WebSocket connections: %d, RSS %ld -> %ld KiB, %ld bytes each\n", IDLE_CONNS,
           before, after, per);
    CHECK(per <= IDLE_BYTES_MAX);
    int before_closes = atomic_load(&closes);
    for (int i = 0; i < IDLE_CONNS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    ws_free(warm);
    CHECK(wait_closes(before_closes + IDLE_CONNS + 1));
}

/* ----- real clients ---------------------------------------------------------------------- */

/* Runs `argv` (the port, then "deflate" or "nodeflate"); counts its PASS and FAIL lines. A client
 * that reports "SKIP reason" is counted skipped. */
static void run_client(char *const argv[]) {
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(argv[0], argv);
        printf("SKIP cannot run %s\n", argv[0]);
        _exit(0);
    }
    close(pipefd[1]);
    FILE *f = fdopen(pipefd[0], "r");
    char line[1024];
    int pass = 0, fail = 0, skip = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "PASS", 4)) {
            pass++;
        } else if (!strncmp(line, "FAIL", 4)) {
            fail++;
            fprintf(stderr, "  %s: %s", argv[1], line);
        } else if (!strncmp(line, "SKIP", 4)) {
            skip++;
            fprintf(stderr, "  %s: %s", argv[1], line);
        }
    }
    fclose(f);
    int status = 0;
    waitpid(pid, &status, 0);
    if (skip && !pass && !fail) {
        atomic_fetch_add(&skipped, 1);
        return;
    }
    CHECK(pass > 0);
    CHECK_INT(fail, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static char port_arg[16];

/* Whether this build accepts permessage-deflate: the clients check it is agreed, or not. */
#ifdef CHOPIN_WS_DEFLATE
static char deflate_arg[] = "deflate";
#else
static char deflate_arg[] = "nodeflate";
#endif

static void test_python_websockets(void) {
    char *argv[] = {"/usr/bin/python3", "tests/integration/ws_client.py", port_arg, deflate_arg,
                    NULL};
    run_client(argv);
}

static void test_node_ws(void) {
    char *argv[] = {"/usr/bin/node", "tests/integration/ws_client.js", port_arg, deflate_arg, NULL};
    run_client(argv);
}

/* wss:// (issues 16, 17): the same router behind a TLS listener, and the same clients with
 * the test CA (tests/tls/mkcerts.sh): the handshake, echo at every size, fragments, close
 * codes, deflate, through the TLS transport on this backend. Skipped without TLS. */
#ifdef CHOPIN_HAVE_TLS
static char tls_port_arg[16], ca_arg[512];

static chopin_server *start_tls(chopin_router *r) {
    const char *dir = cl_certs();
    char cert[512], key[512];
    if (!dir)
        return NULL;
    snprintf(cert, sizeof cert, "%s/a.pem", dir);
    snprintf(key, sizeof key, "%s/a.key", dir);
    snprintf(ca_arg, sizeof ca_arg, "%s/ca.pem", dir);
    chopin_options o = chopin_options_default();
    o.workers = 2;
    o.quiet = 1;
    o.tls_cert = cert;
    o.tls_key = key;
    chopin_server *s;
    int rc = chopin_server_start(r, "https://127.0.0.1:0", &o, &s);
    if (rc < 0) {
        fprintf(stderr, "start_tls: %s\n", chopin_strerror(rc));
        return NULL;
    }
    snprintf(tls_port_arg, sizeof tls_port_arg, "%d", chopin_server_port(s));
    return s;
}

static void test_wss_python_websockets(void) {
    char *argv[] = {"/usr/bin/python3", "tests/integration/ws_client.py", tls_port_arg,
                    deflate_arg, ca_arg, NULL};
    run_client(argv);
}

static void test_wss_node_ws(void) {
    char *argv[] = {"/usr/bin/node", "tests/integration/ws_client.js", tls_port_arg, deflate_arg,
                    ca_arg, NULL};
    run_client(argv);
}
#endif

/* Last: the server stops while a client is connected; it hears 1001 (going away). */
static void test_drain_going_away(void) {
    struct wsc *c = ws_open("/echo");
    echo_case(c, 1, 1);
    chopin_server_stop(server);
    CHECK_INT(read_close(c), 1001);
    send_frame(c, 0x88, "\x03\xe9", 2);
    CHECK(tcp_closed(c));
    ws_free(c);
    chopin_server_wait(server);
    server = NULL;
}

int main(void) {
    chopin_options o = chopin_options_default();
    o.workers = 2;
    chopin_router *r = routes();
    server = cl_start(r, &o);
    if (!server)
        return 1;
    port = chopin_server_port(server);
    snprintf(port_arg, sizeof port_arg, "%d", port);
    RUN(test_handshake_ok);
    RUN(test_handshake_refused);
    RUN(test_subprotocol);
    RUN(test_echo_sizes);
    RUN(test_frame_behind_request);
    RUN(test_fragments_and_ping);
    RUN(test_breaches);
    RUN(test_utf8_fails_fast);
    RUN(test_client_closes);
    RUN(test_server_closes);
    RUN(test_abnormal_end);
    RUN(test_idle_ping);
    RUN(test_slow_reader);
    RUN(test_post_from_thread);
    RUN(test_post_fragments);
    RUN(test_post_fragments_bounded);
    RUN(test_publish);
    RUN(test_publish_after_leaving);
#ifdef CHOPIN_WS_DEFLATE
    RUN(test_deflate);
    RUN(test_deflate_bomb);
#else
    fprintf(stderr, "skip test_deflate, test_deflate_bomb: built without zlib (zlib1g-dev)\n");
    atomic_fetch_add(&skipped, 2);
#endif
    RUN(test_disconnect_every_byte);
    RUN(test_idle_memory);
    RUN(test_python_websockets);
    RUN(test_node_ws);
#ifdef CHOPIN_HAVE_TLS
    chopin_server *tls = start_tls(r);
    CHECK(tls != NULL);
    if (tls) {
        RUN(test_wss_python_websockets);
        RUN(test_wss_node_ws);
        chopin_server_stop(tls);
        chopin_server_wait(tls);
    }
#else
    fprintf(stderr, "skip test_wss_python_websockets, test_wss_node_ws: built without TLS\n");
    atomic_fetch_add(&skipped, 2);
#endif
    RUN(test_drain_going_away);
    if (server)
        cl_stop(server);
    CHECK_INT(atomic_load(&closes), atomic_load(&upgrades));
    CHECK(atomic_load(&opens) <= atomic_load(&closes));
    chopin_router_free(r);
    printf("RESULT %d %d %d\n", test_passed, test_failed, atomic_load(&skipped));
    return test_failed ? 1 : 0;
}
