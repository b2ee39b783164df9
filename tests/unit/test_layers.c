/* SPDX-License-Identifier: MIT */
/*
 * The layers under and beside HTTP/1.1 (conn.h): a protocol a handler's 101 switches the
 * connection to, and a transport between the socket's bytes and the protocol. Both are
 * toys here ("shout" answers its input in capitals; "flip" flips the top bit of every
 * byte), driven through the fake backend with exact bytes: what WebSocket, HTTP/2 and TLS
 * build on.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"
#include "http/message.h"
#include "test.h"
#include "fake.h"

/* ----- the "shout" protocol -------------------------------------------------------- */

struct shout {
    int id;
};

static struct {
    int data_calls, eofs, timeouts, drains, releases, discards, sent;
} seen;

static void queue_text(struct chopin__conn *c, const char *p, size_t n) {
    struct chopin__outq *q = chopin__conn_output(c);
    char *dst = q ? chopin__outq_reserve(q, n) : NULL;
    if (!dst) {
        chopin__conn_close(c);
        return;
    }
    memcpy(dst, p, n);
    chopin__outq_commit(q, n);
}

static void shout_data(struct chopin__conn *c, char *data, size_t n) {
    seen.data_calls++;
    for (size_t i = 0; i < n; i++)
        data[i] = (char)toupper((unsigned char)data[i]);
    queue_text(c, data, n);
    if (n >= 3 && memcmp(data + n - 3, "BYE", 3) == 0)
        c->ask |= CHOPIN__CONN_SHUTDOWN;
}

static void shout_eof(struct chopin__conn *c) {
    seen.eofs++;
    chopin__conn_close(c);
}

static void shout_timeout(struct chopin__conn *c) {
    seen.timeouts++;
    queue_text(c, "PING", 4);
}

static void shout_sent(struct chopin__conn *c) { seen.sent++; }

static void shout_drain(struct chopin__conn *c) {
    seen.drains++;
    queue_text(c, "GOING", 5);
    c->ask |= CHOPIN__CONN_SHUTDOWN;
}

#define IDLE_PING_MS 5000

static void shout_settle(struct chopin__conn *c) {
    chopin__conn_arm(c, c->engine->now_ms + IDLE_PING_MS);
}

static void shout_release(struct chopin__conn *c) {
    seen.releases++;
    free(c->proto_state);
}

static void shout_discard(void *state) {
    seen.discards++;
    free(state);
}

static const struct chopin__protocol shout = {
    .name = "shout",
    .on_data = shout_data,
    .on_eof = shout_eof,
    .on_timeout = shout_timeout,
    .on_sent = shout_sent,
    .on_drain = shout_drain,
    .settle = shout_settle,
    .release = shout_release,
    .discard = shout_discard,
};

static int upgrade_rc;

/* Switches to "shout" after a 101. */
static void upgrade(chopin_req *req, chopin_res *res, void *data) {
    struct chopin__exchange *x = req->engine->dispatching;
    struct shout *s = calloc(1, sizeof *s);
    upgrade_rc = chopin__exchange_upgrade(req->engine, x, &shout, s);
    if (upgrade_rc < 0) {
        free(s);
        return;
    }
    chopin_res_header_add(res, "Upgrade", "shout"); /* (Connection: the serializer's) */
}

/* Asks to switch, then answers 200 instead: the switch must not happen. */
static void changes_its_mind(chopin_req *req, chopin_res *res, void *data) {
    upgrade(req, res, data);
    chopin_res_static(res, 200, "text/plain", "no", 2);
}

static chopin_exchange held;

static void later(chopin_req *req, chopin_res *res, void *data) { chopin_defer(req, res, &held); }

static void hello(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "hello", 5);
}

static void setup(struct fake *f) {
    memset(&seen, 0, sizeof seen);
    upgrade_rc = -1;
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/up", upgrade, NULL);
    chopin_router_get(r, "/fickle", changes_its_mind, NULL);
    chopin_router_get(r, "/later", later, NULL);
    chopin_router_get(r, "/hello", hello, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 8;
    fake_start(f, r, &o);
}

static const char *body_after_head(const char *out) {
    const char *end = strstr(out, "\r\n\r\n");
    return end ? end + 4 : "";
}

/* The bytes that followed the upgrading request in the same read are the protocol's. */
static void test_switch_with_bytes_behind(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /up HTTP/1.1\r\nHost: x\r\n\r\nhello GET /hello HTTP/1.1\r\n\r\n");
    CHECK_INT(upgrade_rc, 0);
    const char *out = fake_output(c);
    CHECK(strncmp(out, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
    CHECK(strstr(out, "Upgrade: shout\r\n") != NULL);
    const char *conn = strstr(out, "Connection: Upgrade\r\n"); /* once, as RFC 9110 §7.8 */
    CHECK(conn != NULL && strstr(conn + 1, "Connection:") == NULL);
    CHECK_STR(body_after_head(out), "HELLO GET /HELLO HTTP/1.1\r\n\r\n");
    CHECK_INT(c->phase, CHOPIN__PHASE_PROTOCOL);
    CHECK(c->in == NULL);
    fake_feed(c, "again");
    CHECK_STR(fake_output(c), "AGAIN");
    CHECK(seen.sent >= 1);
    chopin__engine_conn_free(&f.engine, c);
    CHECK_INT(seen.releases, 1);
    CHECK_INT(seen.discards, 0);
    fake_stop(&f);
}

/* Nothing after the request yet: the protocol starts with nothing, takes the next read. */
static void test_switch_then_read(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /up HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_STR(body_after_head(fake_output(c)), "");
    CHECK_INT(seen.data_calls, 0);
    fake_feed(c, "x");
    CHECK_STR(fake_output(c), "X");
    fake_feed(c, "bye");
    CHECK_STR(fake_output(c), "BYE");
    CHECK(c->ask & CHOPIN__CONN_SHUTDOWN);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
}

/* Behind a deferred answer the 101 waits its turn, and so do the bytes after it. */
static void test_switch_behind_deferred(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /later HTTP/1.1\r\nHost: x\r\n\r\nGET /up HTTP/1.1\r\nHost: x\r\n\r\nearly");
    CHECK_STR(fake_output(c), "");
    CHECK_INT(seen.data_calls, 0);
    fake_feed(c, " more");
    CHECK_INT(seen.data_calls, 0);
    chopin_res_static(chopin_exchange_res(held), 200, "text/plain", "first", 5);
    CHECK_INT(chopin_exchange_finish(held), 0);
    chopin__engine_run_ready(&f.engine);
    const char *out = fake_output(c);
    const char *up = strstr(out, "HTTP/1.1 101 ");
    CHECK(strncmp(out, "HTTP/1.1 200 OK", 15) == 0 && up != NULL);
    CHECK_STR(body_after_head(up ? up : out), "EARLY MORE");
    CHECK_INT(c->phase, CHOPIN__PHASE_PROTOCOL);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
}

/* A handler that asked to switch and then answered 200: no switch, the state discarded,
 * and the bytes after the request never read as HTTP/1.1 requests. */
static void test_no_switch_without_101(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /fickle HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    const char *out = fake_output(c);
    CHECK(strncmp(out, "HTTP/1.1 200 OK", 15) == 0);
    CHECK(strstr(out, "hello") == NULL);
    CHECK(c->proto == NULL);
    CHECK_INT(seen.discards, 1);
    CHECK(c->ask & (CHOPIN__CONN_SHUTDOWN | CHOPIN__CONN_CLOSE));
    chopin__engine_conn_free(&f.engine, c);
    CHECK_INT(seen.releases, 0);
    fake_stop(&f);
}

/* The connection ends before the 101 could be queued: the state is discarded. */
static void test_discard_when_closed_first(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /later HTTP/1.1\r\nHost: x\r\n\r\nGET /up HTTP/1.1\r\nHost: x\r\n\r\n");
    chopin__engine_conn_free(&f.engine, c);
    CHECK_INT(seen.discards, 1);
    CHECK_INT(seen.releases, 0);
    fake_stop(&f);
}

/* The protocol's own deadline, its EOF and the drain reach it. */
static void test_timer_eof_drain(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /up HTTP/1.1\r\nHost: x\r\n\r\n");
    fake_output(c);
    chopin__engine_set_clock(&f.engine, FAKE_T0 + IDLE_PING_MS + 100, FAKE_WALL + 6);
    chopin__engine_run_timers(&f.engine);
    CHECK_INT(seen.timeouts, 1);
    CHECK_STR(fake_output(c), "PING");
    chopin__engine_drain(&f.engine);
    CHECK_INT(seen.drains, 1);
    CHECK_STR(fake_output(c), "GOING");
    CHECK(c->ask & CHOPIN__CONN_SHUTDOWN);
    chopin__conn_on_eof(c);
    CHECK_INT(seen.eofs, 1);
    CHECK(c->ask & CHOPIN__CONN_CLOSE);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
}

/* An upgrade outside a handler, or twice, is refused. */
static void test_upgrade_refusals(void) {
    struct fake f;
    setup(&f);
    int state;
    CHECK_INT(chopin__exchange_upgrade(&f.engine, NULL, &shout, &state), -EINVAL);
    CHECK_INT(chopin__exchange_upgrade(&f.engine, chopin__exchange_current(&f.engine), &shout,
                                       &state),
              -EINVAL);
    fake_stop(&f);
}

/* ----- the "flip" transport -------------------------------------------------------- */

struct flip {
    struct chopin__transport t; /* first: conn->transport points here */
    char out[64];               /* flipped bytes not yet sent (small: many rounds) */
    size_t out_len;
    uint64_t deadline;
    int released;
};

static void flip_bytes(char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] ^= (char)0x80;
}

/* Delivers one byte at a time: a transport may hand over plaintext in any pieces. */
static void flip_input(struct chopin__conn *c, char *data, size_t n) {
    flip_bytes(data, n);
    for (size_t i = 0; i < n && !(c->ask & CHOPIN__CONN_CLOSE); i++)
        chopin__conn_deliver(c, data + i, 1);
}

static size_t flip_plan(struct chopin__conn *c, struct chopin__plan *p) {
    struct flip *fl = (struct flip *)c->transport;
    if (!fl->out_len) {
        struct chopin__plan plain;
        if (chopin__conn_plain_plan(c, &plain) > 0 && plain.iovcnt > 0) {
            size_t n = 0;
            for (int i = 0; i < plain.iovcnt && n < sizeof fl->out; i++) {
                size_t k = plain.iov[i].iov_len;
                if (k > sizeof fl->out - n)
                    k = sizeof fl->out - n;
                memcpy(fl->out + n, plain.iov[i].iov_base, k);
                n += k;
            }
            flip_bytes(fl->out, n);
            fl->out_len = n;
            chopin__conn_plain_sent(c, n);
        }
    }
    p->iovcnt = 0;
    p->file_len = 0;
    p->bytes = fl->out_len;
    if (fl->out_len) {
        p->iov[0] = (struct iovec){fl->out, fl->out_len};
        p->iovcnt = 1;
    }
    return p->bytes;
}

static void flip_sent(struct chopin__conn *c, size_t n) {
    struct flip *fl = (struct flip *)c->transport;
    memmove(fl->out, fl->out + n, fl->out_len - n);
    fl->out_len -= n;
}

static int flip_has_output(const struct chopin__conn *c) {
    return ((const struct flip *)c->transport)->out_len != 0;
}

static uint64_t flip_deadline(const struct chopin__conn *c) {
    return ((const struct flip *)c->transport)->deadline;
}

static void flip_release(struct chopin__conn *c) { ((struct flip *)c->transport)->released++; }

static const struct chopin__transport_ops flip_ops = {
    .name = "flip",
    .on_input = flip_input,
    .out_plan = flip_plan,
    .on_sent = flip_sent,
    .has_output = flip_has_output,
    .deadline = flip_deadline,
    .release = flip_release,
};

static void flip_str(char *dst, const char *src) {
    size_t n = strlen(src);
    memcpy(dst, src, n + 1);
    flip_bytes(dst, n);
}

/* Pipelined requests through the transport, delivered a byte at a time; the answers
 * leave flipped, in the transport's small pieces. */
static void test_transport_roundtrip(void) {
    struct fake f;
    setup(&f);
    struct flip fl = {.t = {&flip_ops}};
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    chopin__conn_set_transport(c, &fl.t);
    char wire[256];
    flip_str(wire, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    fake_feed(c, wire);
    CHECK(chopin__conn_has_output(c));
    char out[4096];
    snprintf(out, sizeof out, "%s", fake_output(c));
    flip_bytes(out, strlen(out));
    const char *second = strstr(out + 1, "HTTP/1.1 200 OK");
    CHECK(strncmp(out, "HTTP/1.1 200 OK", 15) == 0 && second != NULL);
    CHECK(strstr(out, "hello") != NULL && strstr(second ? second : out, "hello") != NULL);
    CHECK(!chopin__conn_has_output(c));
    chopin__engine_conn_free(&f.engine, c);
    CHECK_INT(fl.released, 1);
    fake_stop(&f);
}

/* A transport's deadline (a handshake's) bounds an idle connection before keep-alive
 * would; without one, keep-alive does. */
static void test_transport_deadline(void) {
    struct fake f;
    setup(&f);
    struct flip fl = {.t = {&flip_ops}, .deadline = FAKE_T0 + 700};
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    chopin__conn_set_transport(c, &fl.t);
    chopin__engine_set_clock(&f.engine, FAKE_T0 + 800, FAKE_WALL + 1);
    chopin__engine_run_timers(&f.engine);
    CHECK(c->ask & CHOPIN__CONN_CLOSE);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
}

/* The protocol switch through the transport: both layers at once. */
static void test_upgrade_under_transport(void) {
    struct fake f;
    setup(&f);
    struct flip fl = {.t = {&flip_ops}};
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    chopin__conn_set_transport(c, &fl.t);
    char wire[128];
    flip_str(wire, "GET /up HTTP/1.1\r\nHost: x\r\n\r\nabc");
    fake_feed(c, wire);
    char out[4096];
    snprintf(out, sizeof out, "%s", fake_output(c));
    flip_bytes(out, strlen(out));
    CHECK(strncmp(out, "HTTP/1.1 101 ", 13) == 0);
    CHECK_STR(body_after_head(out), "ABC");
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
}

int main(void) {
    RUN(test_switch_with_bytes_behind);
    RUN(test_switch_then_read);
    RUN(test_switch_behind_deferred);
    RUN(test_no_switch_without_101);
    RUN(test_discard_when_closed_first);
    RUN(test_timer_eof_drain);
    RUN(test_upgrade_refusals);
    RUN(test_transport_roundtrip);
    RUN(test_transport_deadline);
    RUN(test_upgrade_under_transport);
    TEST_END();
}
