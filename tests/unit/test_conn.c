/*
 * The connection state machine through a fake backend: no sockets, a clock we set, and
 * exact output bytes. What a backend does (send the plan, report progress, obey `ask`)
 * is done here by hand, with writes of any size to model partial sends.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "outq.h"
#include "router/router.h"
#include "test.h"

#define T0 1000000 /* monotonic ms at start */
#define WALL 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */

static const char PLAIN_RESPONSE[] = "HTTP/1.1 200 OK\r\nServer: chopin\r\n"
                                     "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                                     "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                                     "Hello, World!";
static const char GET[] = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

static void echo(chopin_req *req, chopin_res *res, void *data) {
    chopin_str b = chopin_req_body(req);
    chopin_res_copy(res, 200, "text/plain", b.ptr, b.len);
}

struct fixture {
    chopin_router *router;
    struct chopin__config cfg;
    struct chopin__engine engine;
};

static void setup(struct fixture *f, uint32_t capacity) {
    f->router = chopin_router_new();
    chopin_router_get(f->router, "/plaintext", plaintext, NULL);
    chopin_router_post(f->router, "/echo", echo, NULL);
    chopin__router_freeze(f->router);
    chopin_options o = chopin_options_default();
    o.slab_capacity = capacity;
    o.keepalive_timeout_ms = 5000;
    o.header_timeout_ms = 2000;
    o.write_timeout_ms = 3000;
    chopin__config_resolve(&f->cfg, &o);
    chopin__engine_init(&f->engine, &f->cfg, f->router, 0, T0);
    chopin__engine_set_clock(&f->engine, T0, WALL);
}

static void close_if_asked(struct fixture *f, struct chopin__conn *c) {
    if (c->live && (c->ask & CHOPIN__CONN_CLOSE))
        chopin__engine_conn_free(&f->engine, c);
}

static void teardown(struct fixture *f) {
    struct chopin__slab *s = &f->engine.slab;
    for (uint32_t i = 0; i < s->never_used; i++) {
        struct chopin__conn *c = chopin__slab_at(s, i);
        if (c->live)
            chopin__engine_conn_free(&f->engine, c);
    }
    CHECK_INT(f->engine.pool.outstanding, 0);
    chopin__engine_destroy(&f->engine);
    chopin_router_free(f->router);
}

/* Sends everything the connection has, at most `chunk` bytes per "write", appending it
 * to out. Returns the bytes sent. */
static size_t drain(struct chopin__conn *c, char *out, size_t cap, size_t chunk) {
    size_t total = 0;
    struct chopin__plan p;
    while (chopin__conn_out_plan(c, &p) > 0) {
        size_t n = 0;
        for (int i = 0; i < p.iovcnt && n < chunk; i++) {
            size_t k = p.iov[i].iov_len;
            if (k > chunk - n)
                k = chunk - n;
            if (total + n + k <= cap)
                memcpy(out + total + n, p.iov[i].iov_base, k);
            n += k;
        }
        total += n;
        chopin__conn_on_sent(c, n);
    }
    return total;
}

static void test_exact_bytes(void) {
    struct fixture f;
    setup(&f, 4);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    char in[sizeof GET];
    memcpy(in, GET, sizeof GET);
    chopin__conn_on_data(c, in, sizeof GET - 1);
    static char out[4096];
    size_t n = drain(c, out, sizeof out, 1 << 20);
    CHECK_MEM(out, n, PLAIN_RESPONSE);
    /* Idle keep-alive: no buffer held, listed for eviction, keep-alive timer armed. */
    CHECK(c->in == NULL && c->out == NULL);
    CHECK_INT(f.engine.pool.outstanding, 0);
    CHECK(c->idle_listed);
    CHECK(chopin__conn_wants_read(c));
    teardown(&f);
}

/* A pipelined batch split into two reads at every possible point gives the same bytes,
 * and partial writes of any size resume exactly. */
static void test_every_split_and_partial_write(void) {
    static char batch[512], want[4096], out[4096];
    size_t bn = 0;
    bn += (size_t)sprintf(batch + bn, "%s", GET);
    bn += (size_t)sprintf(batch + bn, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    bn += (size_t)sprintf(batch + bn, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    bn += (size_t)sprintf(batch + bn, "%s", GET);

    struct fixture f;
    setup(&f, 4);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    char copy[512];
    memcpy(copy, batch, bn);
    chopin__conn_on_data(c, copy, bn);
    size_t wn = drain(c, want, sizeof want, 1 << 20);
    CHECK(strstr(want, "hello") && strstr(want, "abc"));
    chopin__engine_conn_free(&f.engine, c);

    int bad = 0;
    for (size_t split = 1; split < bn; split++) {
        c = chopin__engine_conn_new(&f.engine, -1);
        memcpy(copy, batch, bn);
        chopin__conn_on_data(c, copy, split);
        char rest[512];
        memcpy(rest, batch + split, bn - split); /* a new read lands in a new buffer */
        chopin__conn_on_data(c, rest, bn - split);
        size_t n = drain(c, out, sizeof out, 1 + split % 37);
        if (n != wn || memcmp(out, want, wn) != 0)
            bad++;
        chopin__engine_conn_free(&f.engine, c);
    }
    CHECK_INT(bad, 0);
    teardown(&f);
}

/* A client that pipelines without reading: the connection stops taking input once its
 * output is full (bounded memory), and answers everything once output drains. */
static void test_backpressure(void) {
    struct fixture f;
    setup(&f, 4);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    size_t n = 1000, len = sizeof GET - 1;
    char *batch = malloc(n * len);
    for (size_t i = 0; i < n; i++)
        memcpy(batch + i * len, GET, len);
    chopin__conn_on_data(c, batch, n * len);
    CHECK(!chopin__conn_wants_read(c));
    CHECK(c->out && c->out->pending < f.cfg.opt.buffer_size);
    size_t answered = 0;
    char *out = malloc(n * sizeof PLAIN_RESPONSE);
    answered = drain(c, out, n * sizeof PLAIN_RESPONSE, 1 << 20);
    CHECK_INT(answered, n * (sizeof PLAIN_RESPONSE - 1));
    CHECK(memcmp(out + (n - 1) * (sizeof PLAIN_RESPONSE - 1), PLAIN_RESPONSE,
                 sizeof PLAIN_RESPONSE - 1) == 0);
    CHECK(chopin__conn_wants_read(c));
    free(out);
    free(batch);
    teardown(&f);
}

static void advance(struct fixture *f, uint64_t ms) {
    chopin__engine_set_clock(&f->engine, f->engine.now_ms + ms, WALL);
    chopin__engine_run_timers(&f->engine);
}

static void test_timeouts(void) {
    struct fixture f;
    setup(&f, 4);
    /* Idle keep-alive closes at its deadline, not before. */
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    advance(&f, 4999);
    CHECK(!(c->ask & CHOPIN__CONN_CLOSE));
    advance(&f, 2);
    CHECK(c->ask & CHOPIN__CONN_CLOSE);
    close_if_asked(&f, c);

    /* Header deadline counts from the first byte; more bytes do not extend it. */
    c = chopin__engine_conn_new(&f.engine, -1);
    char part[] = "GET /plaintext HTTP/1.1\r\n";
    chopin__conn_on_data(c, part, sizeof part - 1);
    for (int i = 0; i < 3; i++) {
        advance(&f, 600);
        char x[] = "X";
        chopin__conn_on_data(c, x, 1);
    }
    CHECK(!chopin__conn_has_output(c));
    advance(&f, 300);
    static char out[1024];
    size_t n = drain(c, out, sizeof out, 1 << 20);
    CHECK(n > 12 && memcmp(out, "HTTP/1.1 408", 12) == 0);
    CHECK(c->ask & CHOPIN__CONN_SHUTDOWN);
    chopin__conn_on_eof(c);
    CHECK(c->ask & CHOPIN__CONN_CLOSE);
    close_if_asked(&f, c);

    /* Write deadline: a peer that stops reading is dropped, its buffers freed. */
    c = chopin__engine_conn_new(&f.engine, -1);
    char in[sizeof GET];
    memcpy(in, GET, sizeof GET);
    chopin__conn_on_data(c, in, sizeof GET - 1);
    CHECK(chopin__conn_has_output(c));
    advance(&f, 3001);
    CHECK(c->ask & CHOPIN__CONN_CLOSE);
    close_if_asked(&f, c);
    CHECK_INT(f.engine.pool.outstanding, 0);
    teardown(&f);
}

static void test_close_and_linger(void) {
    struct fixture f;
    setup(&f, 4);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    char in[] = "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    chopin__conn_on_data(c, in, sizeof in - 1);
    static char out[1024];
    size_t n = drain(c, out, sizeof out, 1 << 20);
    CHECK(strstr(out, "Connection: close\r\n") != NULL);
    CHECK(memmem(out + 10, n - 10, "HTTP/1.1", 8) == NULL); /* second request not served */
    CHECK(c->ask & CHOPIN__CONN_SHUTDOWN);
    c->ask &= (uint8_t)~CHOPIN__CONN_SHUTDOWN;
    c->shut = 1;
    char more[] = "ignored";
    chopin__conn_on_data(c, more, sizeof more - 1); /* lingering: discarded */
    CHECK(!chopin__conn_has_output(c));
    advance(&f, 2001);
    CHECK(c->ask & CHOPIN__CONN_CLOSE);
    teardown(&f);
}

static void notify_close(struct chopin__conn *c, void *ctx) { close_if_asked(ctx, c); }

static void test_slab_eviction(void) {
    struct fixture f;
    setup(&f, 1);
    struct chopin__conn *a = chopin__engine_conn_new(&f.engine, -1);
    CHECK(a != NULL);
    char part[] = "GET / HTTP/1.1\r\n";
    chopin__conn_on_data(a, part, sizeof part - 1); /* busy: not evictable */
    CHECK(chopin__engine_conn_new(&f.engine, -1) == NULL);
    CHECK_INT(f.engine.counters.slab_full, 1);
    char rest[] = "Host: x\r\n\r\n";
    chopin__conn_on_data(a, rest, sizeof rest - 1);
    static char out[1024];
    drain(a, out, sizeof out, 1 << 20);
    CHECK(a->idle_listed);
    /* Now idle: evicted (through notify, as a backend would close it) for the newcomer. */
    f.engine.notify = notify_close;
    f.engine.notify_ctx = &f;
    struct chopin__conn *b = chopin__engine_conn_new(&f.engine, -1);
    CHECK(b != NULL);
    CHECK(b == a && b->live && !(b->ask & CHOPIN__CONN_CLOSE));
    teardown(&f);
}

static void test_drain(void) {
    struct fixture f;
    setup(&f, 4);
    struct chopin__conn *idle = chopin__engine_conn_new(&f.engine, -1);
    struct chopin__conn *busy = chopin__engine_conn_new(&f.engine, -1);
    char part[] = "GET /plaintext HTTP/1.1\r\n";
    chopin__conn_on_data(busy, part, sizeof part - 1);
    chopin__engine_drain(&f.engine);
    CHECK(idle->ask & CHOPIN__CONN_CLOSE);
    CHECK(!(busy->ask & CHOPIN__CONN_CLOSE));
    char rest[] = "Host: x\r\n\r\n";
    chopin__conn_on_data(busy, rest, sizeof rest - 1);
    static char out[1024];
    drain(busy, out, sizeof out, 1 << 20);
    CHECK(strstr(out, "Connection: close\r\n") != NULL);
    CHECK(busy->ask & CHOPIN__CONN_SHUTDOWN);
    teardown(&f);
}

int main(void) {
    RUN(test_exact_bytes);
    RUN(test_every_split_and_partial_write);
    RUN(test_backpressure);
    RUN(test_timeouts);
    RUN(test_close_and_linger);
    RUN(test_slab_eviction);
    RUN(test_drain);
    TEST_END();
}
