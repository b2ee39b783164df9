/* SPDX-License-Identifier: MIT */
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
#include "http/message.h"
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

/* A 16 KiB answer copied from the handler's stack; where the copy landed is noted. */
#define BIG_BODY 16384
static const char *big_copy_at;

static void big_copy(chopin_req *req, chopin_res *res, void *data) {
    char body[BIG_BODY];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i * 7 % 26);
    chopin_res_copy(res, 200, "text/plain", body, sizeof body);
    big_copy_at = res->body;
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
    chopin_router_get(f->router, "/big", big_copy, NULL);
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
    CHECK(c->listed == CHOPIN__LIST_IDLE);
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

/* What the eviction hook saw: the connection closed and the answer it still sent. */
static struct chopin__conn *evicted;
static char farewell[512];
static size_t farewell_len;

static void notify_evict(struct chopin__conn *c, void *ctx) {
    evicted = c;
    farewell_len = drain(c, farewell, sizeof farewell, 1 << 20);
    close_if_asked(ctx, c);
}

static struct chopin__conn *conn_with(struct fixture *f, const char *bytes) {
    static char in[256];
    struct chopin__conn *c = chopin__engine_conn_new(&f->engine, -1);
    size_t n = strlen(bytes);
    memcpy(in, bytes, n);
    if (c)
        chopin__conn_on_data(c, in, n);
    return c;
}

static int evicted_with_408(struct chopin__conn *c) {
    return evicted == c && farewell_len > 12 && memcmp(farewell, "HTTP/1.1 408", 12) == 0;
}

/* A full slab makes room for a newcomer by closing the connection that has made the least
 * progress: the oldest head still arriving (408, as its deadline would), then the next,
 * then the oldest idle one. A request whole in one read never touches the list of heads. */
static void test_slab_eviction(void) {
    struct fixture f;
    setup(&f, 3);
    f.engine.notify = notify_evict;
    f.engine.notify_ctx = &f;
    static char out[1024];
    struct chopin__conn *idle = conn_with(&f, GET);
    drain(idle, out, sizeof out, 1 << 20);
    CHECK(idle->listed == CHOPIN__LIST_IDLE && f.engine.partial_head == NULL);
    struct chopin__conn *old = conn_with(&f, "GET / HTTP/1.1\r\n");
    advance(&f, 10);
    struct chopin__conn *young = conn_with(&f, "GET / HTTP/1.1\r\nHost: x\r\n");
    CHECK(old->listed == CHOPIN__LIST_PARTIAL && young->listed == CHOPIN__LIST_PARTIAL);
    CHECK(f.engine.partial_head == old && f.engine.partial_tail == young);
    struct chopin__conn *n1 = chopin__engine_conn_new(&f.engine, -1);
    CHECK(n1 == old && evicted_with_408(old)); /* the freed slot is the one reused */
    struct chopin__conn *n2 = chopin__engine_conn_new(&f.engine, -1);
    CHECK(n2 == young && evicted_with_408(young));
    CHECK(f.engine.partial_head == NULL);
    farewell_len = 0;
    struct chopin__conn *n3 = chopin__engine_conn_new(&f.engine, -1);
    CHECK(n3 == idle && evicted == idle && farewell_len == 0); /* idle: closed, no answer */
    CHECK(n3->live && !(n3->ask & CHOPIN__CONN_CLOSE));
    CHECK_INT(f.engine.counters.slab_full, 0);
    teardown(&f);
}

/* Never a connection with output owed: pipelined answers unread, the next head half there.
 * A head that completes leaves the list. */
static void test_slab_eviction_spares_output(void) {
    struct fixture f;
    setup(&f, 2);
    f.engine.notify = notify_evict;
    f.engine.notify_ctx = &f;
    char batch[sizeof GET + 32];
    snprintf(batch, sizeof batch, "%sGET / HTTP/1.1\r\n", GET);
    struct chopin__conn *owed = conn_with(&f, batch);
    CHECK(owed->listed == CHOPIN__LIST_PARTIAL && chopin__conn_has_output(owed));
    struct chopin__conn *slow = conn_with(&f, "GET /plaintext HTTP/1.1\r\n");
    char rest[] = "Host: x\r\n\r\n";
    chopin__conn_on_data(slow, rest, sizeof rest - 1);
    CHECK(slow->listed != CHOPIN__LIST_PARTIAL && chopin__conn_has_output(slow));
    CHECK(f.engine.partial_head == owed);
    evicted = NULL;
    CHECK(chopin__engine_conn_new(&f.engine, -1) == NULL);
    CHECK(evicted == NULL && owed->live && slow->live);
    CHECK_INT(f.engine.counters.slab_full, 1);
    teardown(&f);
}

/* Draining: an idle keep-alive connection closes; a request under way, and the first
 * request of a connection accepted before the drain (issue 13, point 2), are answered
 * with Connection: close. */
static void test_drain(void) {
    struct fixture f;
    setup(&f, 4);
    static char out[1024];
    struct chopin__conn *idle = conn_with(&f, "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    drain(idle, out, sizeof out, 1 << 20);
    struct chopin__conn *fresh = chopin__engine_conn_new(&f.engine, -1);
    struct chopin__conn *busy = conn_with(&f, "GET /plaintext HTTP/1.1\r\n");
    chopin__engine_drain(&f.engine);
    CHECK(idle->ask & CHOPIN__CONN_CLOSE);
    CHECK(!(busy->ask & CHOPIN__CONN_CLOSE) && !(fresh->ask & CHOPIN__CONN_CLOSE));
    CHECK(!(fresh->ask & CHOPIN__CONN_SHUTDOWN));
    char rest[] = "Host: x\r\n\r\n";
    chopin__conn_on_data(busy, rest, sizeof rest - 1);
    memset(out, 0, sizeof out);
    drain(busy, out, sizeof out, 1 << 20);
    CHECK(strstr(out, "Connection: close\r\n") != NULL);
    CHECK(busy->ask & CHOPIN__CONN_SHUTDOWN);
    char whole[] = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    chopin__conn_on_data(fresh, whole, sizeof whole - 1);
    memset(out, 0, sizeof out);
    drain(fresh, out, sizeof out, 1 << 20);
    CHECK(strncmp(out, "HTTP/1.1 200", 12) == 0 && strstr(out, "Connection: close\r\n") != NULL);
    CHECK(fresh->ask & CHOPIN__CONN_SHUTDOWN);
    teardown(&f);
}


/* Pseudo-random numbers for piece sizes and body bytes: the same run every time. */
static uint32_t lcg(uint32_t *state) {
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
}

/* A Content-Length upload and a chunked one (chunks of random sizes), each echoed, with a
 * GET pipelined behind each. Returns the length of what it wrote to buf. */
static size_t body_batch(char *buf, char *cl_body, size_t cl_len, char *ch_body, size_t ch_len) {
    uint32_t seed = 7;
    for (size_t i = 0; i < cl_len; i++)
        cl_body[i] = (char)lcg(&seed);
    for (size_t i = 0; i < ch_len; i++)
        ch_body[i] = (char)lcg(&seed);
    size_t n = (size_t)sprintf(buf, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
                               cl_len);
    memcpy(buf + n, cl_body, cl_len);
    n += cl_len;
    n += (size_t)sprintf(buf + n, "%sPOST /echo HTTP/1.1\r\nHost: x\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n", GET);
    for (size_t done = 0; done < ch_len;) {
        size_t k = 1 + lcg(&seed) % 700;
        if (k > ch_len - done)
            k = ch_len - done;
        n += (size_t)sprintf(buf + n, "%zx;ext=1\r\n", k);
        memcpy(buf + n, ch_body + done, k);
        n += k;
        n += (size_t)sprintf(buf + n, "\r\n");
        done += k;
    }
    n += (size_t)sprintf(buf + n, "0\r\n\r\n%s", GET);
    return n;
}

/* Feeds batch[0..n) in pieces of `piece` bytes (0: random 1-1500), each read in a fresh
 * buffer as a backend would, draining output after every read. Returns the output size. */
static size_t feed_in_pieces(struct fixture *f, const char *batch, size_t n, size_t piece,
                             char *out, size_t cap) {
    struct chopin__conn *c = chopin__engine_conn_new(&f->engine, -1);
    uint32_t seed = (uint32_t)piece + 99;
    size_t total = 0;
    char *read_buf = malloc(n);
    for (size_t off = 0; off < n;) {
        size_t k = piece ? piece : 1 + lcg(&seed) % 1500;
        if (k > n - off)
            k = n - off;
        memcpy(read_buf, batch + off, k);
        chopin__conn_on_data(c, read_buf, k);
        memset(read_buf, 0, k); /* the connection must have copied what it keeps */
        total += drain(c, out + total, cap - total, 1 << 20);
        off += k;
    }
    free(read_buf);
    chopin__engine_conn_free(&f->engine, c);
    return total;
}

/* Bodies arriving a byte at a time and in random pieces, for both framings, with requests
 * pipelined behind them: the same answers, byte for byte, as when all arrive at once. */
static void test_body_in_pieces(void) {
    static char batch[32768], cl_body[9000], ch_body[7000], want[65536], out[65536];
    size_t n = body_batch(batch, cl_body, sizeof cl_body, ch_body, sizeof ch_body);
    struct fixture f;
    setup(&f, 4);
    size_t wn = feed_in_pieces(&f, batch, n, n, want, sizeof want);
    /* Both bodies came back whole, each after its head, and both GETs were answered. */
    const char *first = memmem(want, wn, cl_body, sizeof cl_body);
    const char *second = memmem(want, wn, ch_body, sizeof ch_body);
    CHECK(first != NULL && second != NULL && first < second);
    size_t plain = 0;
    for (const char *p = want; (p = memmem(p, wn - (size_t)(p - want), "Hello, World!", 13)); p++)
        plain++;
    CHECK_INT(plain, 2);
    static const size_t pieces[] = {1, 2, 3, 7, 64, 4096, 0};
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) {
        size_t got = feed_in_pieces(&f, batch, n, pieces[i], out, sizeof out);
        CHECK_INT(got, wn);
        CHECK(got == wn && memcmp(out, want, wn) == 0);
    }
    teardown(&f);
}

/* Reading the body of a request does not parse its head again for every piece that
 * arrives (that made a large upload cost a head parse per read): the parser's output
 * array is left alone until the body is complete. */
static void test_head_parsed_once(void) {
    struct fixture f;
    setup(&f, 4);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab";
    chopin__conn_on_data(c, head, sizeof head - 1);
    CHECK_INT(c->phase, CHOPIN__PHASE_BODY);
    f.engine.headers[0].name = NULL; /* a parse would write it again */
    char more[] = "cd";
    chopin__conn_on_data(c, more, 2);
    CHECK(f.engine.headers[0].name == NULL);
    char last[] = "ef";
    chopin__conn_on_data(c, last, 2);
    static char out[1024];
    size_t n = drain(c, out, sizeof out, 1 << 20);
    CHECK(n > 6 && memcmp(out + n - 6, "abcdef", 6) == 0);
    chopin__engine_conn_free(&f.engine, c);
    teardown(&f);
}

/* A copied answer larger than what travels inline goes out intact, from the copy the
 * handler made: not copied a second time (with a malloc) when the arena is reset. */
static void test_large_copied_body(void) {
    struct fixture f;
    setup(&f, 4);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    for (int round = 0; round < 3; round++) {
        char req[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
        big_copy_at = NULL;
        chopin__conn_on_data(c, req, sizeof req - 1);
        CHECK(big_copy_at != NULL && c->out != NULL);
        int sent_from_copy = 0;
        for (uint32_t i = c->out->head; i < c->out->count; i++)
            if (c->out->seg[i].kind == CHOPIN__SEG_EXT && c->out->seg[i].ptr == big_copy_at)
                sent_from_copy = 1;
        CHECK(sent_from_copy);
        static char out[2 * BIG_BODY];
        size_t n = drain(c, out, sizeof out, 1000 + 999 * (size_t)round);
        CHECK(n > BIG_BODY);
        int intact = n > BIG_BODY;
        for (size_t i = 0; intact && i < BIG_BODY; i++)
            intact = out[n - BIG_BODY + i] == (char)('a' + i * 7 % 26);
        CHECK(intact);
    }
    chopin__engine_conn_free(&f.engine, c);
    teardown(&f);
}

int main(void) {
    RUN(test_exact_bytes);
    RUN(test_every_split_and_partial_write);
    RUN(test_backpressure);
    RUN(test_timeouts);
    RUN(test_close_and_linger);
    RUN(test_slab_eviction);
    RUN(test_slab_eviction_spares_output);
    RUN(test_drain);
    RUN(test_body_in_pieces);
    RUN(test_head_parsed_once);
    RUN(test_large_copied_body);
    TEST_END();
}
