/* SPDX-License-Identifier: MIT */
/*
 * Deferred exchanges through a fake backend: answers that come after the handler
 * returned, in request order, with their deadline, their bounds and their cancellation,
 * on a clock the test sets. No sockets, exact output bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"
#include "test.h"
#include "fake.h"

#define T0 FAKE_T0
#define WALL FAKE_WALL
#define HANDLER_TIMEOUT 4000

/* Handles of the exchanges deferred so far, in the order their handlers ran. */
static chopin_exchange held[64];
static int nheld;
static int defer_rc;
static int cancels[64];

static void on_cancel(chopin_exchange x, void *arg) { cancels[(intptr_t)arg]++; }

/* Defers; the answer is given later by answer_held. */
static void later(chopin_req *req, chopin_res *res, void *data) {
    chopin_exchange x;
    defer_rc = chopin_defer(req, res, &x);
    if (defer_rc == 0) {
        chopin_exchange_on_cancel(x, on_cancel, (void *)(intptr_t)nheld);
        held[nheld++] = x;
    }
}

/* Defers and finishes at once (a cache hit in a handler that usually waits). */
static void at_once(chopin_req *req, chopin_res *res, void *data) {
    chopin_exchange x;
    if (chopin_defer(req, res, &x) == 0) {
        chopin_res_static(chopin_exchange_res(x), 200, "text/plain", "now", 3);
        chopin_exchange_finish(x);
    }
}

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "sync", 4);
}

/* Middleware whose code after next_run edits whatever the handler left, deferred too. */
static void tag(chopin_req *req, chopin_res *res, chopin_next *next, void *data) {
    chopin_next_run(next);
    chopin_res_header_add(res, "X-Tag", "mw");
}

/* Answers held[i] with what its request carried: its path, a header and its body, read
 * after the connection's buffer was reused. */
static int answer_held(int i) {
    chopin_req *req = chopin_exchange_req(held[i]);
    chopin_res *res = chopin_exchange_res(held[i]);
    if (!req || !res)
        return chopin_exchange_finish(held[i]);
    chopin_str path = chopin_req_path(req), h = chopin_req_header(req, "X-Id");
    chopin_str body = chopin_req_body(req);
    char text[256];
    int n = snprintf(text, sizeof text, "%.*s %.*s %.*s", (int)path.len, path.ptr, (int)h.len,
                     h.ptr ? h.ptr : "", (int)body.len, body.ptr ? body.ptr : "");
    chopin_res_copy(res, 200, "text/plain", text, (size_t)n);
    return chopin_exchange_finish(held[i]);
}

static void setup_with(struct fake *f, uint32_t max_deferred, uint32_t max_pending) {
    memset(held, 0, sizeof held);
    memset(cancels, 0, sizeof cancels);
    nheld = 0;
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/later", later, NULL);
    chopin_router_post(r, "/later", later, NULL);
    chopin_router_get(r, "/now", at_once, NULL);
    chopin_router_get(r, "/sync", plaintext, NULL);
    chopin_router_use(r, "/later", tag, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 8;
    o.handler_timeout_ms = HANDLER_TIMEOUT;
    o.max_deferred = max_deferred;
    o.max_pending = max_pending;
    fake_start(f, r, &o);
}

static void setup(struct fake *f) { setup_with(f, 16, 16); }

static void teardown(struct fake *f) {
    fake_stop(f);
    CHECK_INT(f->engine.xopen, 0);
}

/* The bodies of the answers in `out`, in order, joined by '|'. */
static const char *bodies(const char *out) {
    static char joined[4096];
    size_t len = 0;
    joined[0] = '\0';
    for (const char *p = out; (p = strstr(p, "HTTP/1.1 ")) != NULL;) {
        const char *cl = strstr(p, "Content-Length: "), *start = strstr(p, "\r\n\r\n");
        if (!cl || !start)
            break;
        size_t blen = strtoul(cl + 16, NULL, 10);
        start += 4;
        len += (size_t)snprintf(joined + len, sizeof joined - len, "%s%.*s", len ? "|" : "",
                                (int)blen, start);
        p = start + blen;
    }
    return joined;
}

static void test_answer_after_return(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "POST /later HTTP/1.1\r\nHost: x\r\nX-Id: seven\r\nContent-Length: 4\r\n\r\nbody");
    CHECK_INT(defer_rc, 0);
    CHECK_STR(fake_output(c), "");                 /* nothing until it is finished */
    CHECK(chopin_exchange_open(held[0]));
    CHECK(!(c->ask & CHOPIN__CONN_CLOSE));
    CHECK(c->listed != CHOPIN__LIST_IDLE);     /* never evicted as idle meanwhile */
    CHECK_INT(answer_held(0), 0);
    CHECK_INT(f.notified, 1);                  /* the backend is told to send */
    const char *out = fake_output(c);
    CHECK(strstr(out, "HTTP/1.1 200 OK\r\n") == out);
    CHECK(strstr(out, "X-Tag: mw\r\n") != NULL); /* the middleware's edit after next_run */
    CHECK_STR(bodies(out), "/later seven body"); /* the request outlived the buffer */
    CHECK(!chopin_exchange_open(held[0]));
    CHECK_INT(chopin_exchange_finish(held[0]), CHOPIN_ESTALE);
    CHECK(chopin_exchange_req(held[0]) == NULL);
    CHECK_INT(cancels[0], 0);
    /* Keep-alive as usual afterwards. */
    fake_feed(c, "GET /sync HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_STR(bodies(fake_output(c)), "sync");
    teardown(&f);
}

static void test_pipelined_order(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /later?1 HTTP/1.1\r\nHost: x\r\nX-Id: a\r\n\r\n"
            "GET /sync HTTP/1.1\r\nHost: x\r\n\r\n"
            "GET /later?3 HTTP/1.1\r\nHost: x\r\nX-Id: c\r\n\r\n"
            "GET /now HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(nheld, 2);           /* later requests ran while the first waited */
    CHECK_STR(fake_output(c), "");      /* but their answers wait behind it */
    CHECK_INT(c->pending, 4);
    answer_held(1);                /* the third finishes first: still nothing */
    CHECK_STR(fake_output(c), "");
    answer_held(0);
    CHECK_STR(bodies(fake_output(c)), "/later a |sync|/later c |now");
    CHECK_INT(c->pending, 0);
    teardown(&f);
}

static void test_finish_inside_handler(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /now HTTP/1.1\r\nHost: x\r\n\r\nGET /now HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_STR(bodies(fake_output(c)), "now|now");
    CHECK_INT(f.notified, 0); /* its own connection's dispatch sent it */
    teardown(&f);
}

static void test_deadline(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /later HTTP/1.1\r\nHost: x\r\n\r\nGET /sync HTTP/1.1\r\nHost: x\r\n\r\n");
    chopin__engine_set_clock(&f.engine, T0 + HANDLER_TIMEOUT - 1, WALL);
    chopin__engine_run_timers(&f.engine);
    CHECK_STR(fake_output(c), "");
    chopin__engine_set_clock(&f.engine, T0 + HANDLER_TIMEOUT + 1, WALL);
    chopin__engine_run_timers(&f.engine);
    const char *out = fake_output(c);
    CHECK(strstr(out, "HTTP/1.1 504 Gateway Timeout\r\n") == out);
    CHECK(strstr(out, "X-Tag") == NULL); /* the handler's response was replaced */
    CHECK(strstr(bodies(out), "|sync") != NULL);
    CHECK_INT(cancels[0], 1);
    CHECK_INT(answer_held(0), CHOPIN_ESTALE); /* late: dropped */
    CHECK(!(c->ask & CHOPIN__CONN_CLOSE));
    teardown(&f);
}

/* Deadlines one after another, one of them finished first: each passes on its own. */
static void test_staggered_deadlines(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c[3];
    for (int i = 0; i < 3; i++) {
        chopin__engine_set_clock(&f.engine, T0 + (uint64_t)i * 1000, WALL);
        c[i] = chopin__engine_conn_new(&f.engine, -1);
        fake_feed(c[i], "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    answer_held(0); /* the first deadline leaves before it passes */
    CHECK_STR(bodies(fake_output(c[0])), "/later  ");
    chopin__engine_set_clock(&f.engine, T0 + 1000 + HANDLER_TIMEOUT, WALL);
    chopin__engine_run_timers(&f.engine);
    CHECK(strstr(fake_output(c[1]), "HTTP/1.1 504 ") != NULL);
    CHECK_STR(fake_output(c[2]), "");
    CHECK_INT(cancels[1], 1);
    CHECK_INT(cancels[2], 0);
    chopin__engine_set_clock(&f.engine, T0 + 2000 + HANDLER_TIMEOUT, WALL);
    chopin__engine_run_timers(&f.engine);
    CHECK(strstr(fake_output(c[2]), "HTTP/1.1 504 ") != NULL);
    CHECK_INT(cancels[0] + cancels[1] + cancels[2], 2);
    teardown(&f);
}

static void test_client_leaves(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /later HTTP/1.1\r\nHost: x\r\n\r\nGET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    chopin__conn_on_eof(c);
    CHECK(c->ask & CHOPIN__CONN_CLOSE);
    CHECK_INT(cancels[0], 1);
    CHECK_INT(cancels[1], 1);
    chopin__engine_conn_free(&f.engine, c);
    /* The slot is reused by a new connection and a new exchange: the old handles stay
     * stale and never reach them. */
    struct chopin__conn *c2 = chopin__engine_conn_new(&f.engine, -1);
    CHECK(c2 == c);
    fake_feed(c2, "GET /later HTTP/1.1\r\nHost: x\r\nX-Id: new\r\n\r\n");
    CHECK_INT(nheld, 3);
    CHECK(held[2].slot == held[0].slot || held[2].slot == held[1].slot);
    CHECK_INT(answer_held(0), CHOPIN_ESTALE);
    CHECK_INT(answer_held(1), CHOPIN_ESTALE);
    CHECK_STR(fake_output(c2), "");
    CHECK_INT(answer_held(2), 0);
    CHECK_STR(bodies(fake_output(c2)), "/later new ");
    CHECK_INT(cancels[0] + cancels[1] + cancels[2], 2); /* once each, never again */
    teardown(&f);
}

static void test_close_cancels(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    chopin__conn_on_error(c); /* a reset */
    chopin__engine_conn_free(&f.engine, c);
    CHECK_INT(cancels[0], 1);
    CHECK_INT(f.engine.xopen, 0);
    teardown(&f);
}

static void test_worker_bound(void) {
    struct fake f;
    setup_with(&f, 2, 16);
    struct chopin__conn *c1 = chopin__engine_conn_new(&f.engine, -1);
    struct chopin__conn *c2 = chopin__engine_conn_new(&f.engine, -1);
    struct chopin__conn *c3 = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c1, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    fake_feed(c2, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    fake_feed(c3, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(defer_rc, CHOPIN_EBUSY);
    CHECK(strstr(fake_output(c3), "HTTP/1.1 503 Service Unavailable\r\n") != NULL);
    CHECK_INT(nheld, 2);
    answer_held(0);
    fake_feed(c3, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"); /* room again */
    CHECK_INT(defer_rc, 0);
    teardown(&f);
}

static void test_connection_bound(void) {
    struct fake f;
    setup_with(&f, 16, 2);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /later HTTP/1.1\r\nHost: x\r\nX-Id: 1\r\n\r\n"
            "GET /later HTTP/1.1\r\nHost: x\r\nX-Id: 2\r\n\r\n"
            "GET /later HTTP/1.1\r\nHost: x\r\nX-Id: 3\r\n\r\n"
            "GET /sync HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(nheld, 2);              /* the rest is not read yet */
    CHECK(!chopin__conn_wants_read(c));
    answer_held(0);                   /* one answered: the third runs */
    CHECK_INT(nheld, 3);
    CHECK_STR(bodies(fake_output(c)), "/later 1 ");
    answer_held(2);
    answer_held(1);
    CHECK_STR(bodies(fake_output(c)), "/later 2 |/later 3 |sync");
    CHECK(chopin__conn_wants_read(c));
    teardown(&f);
}

/* A handler on one connection finishes another's exchange: the other is served once
 * the handler's connection is done, never inside it. */
static chopin_exchange to_finish;
static void finisher(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(chopin_exchange_res(to_finish), 200, "text/plain", "by-other", 8);
    chopin_exchange_finish(to_finish);
    chopin_res_static(res, 200, "text/plain", "done", 4);
}

static void test_finished_by_another_handler(void) {
    struct fake f;
    setup(&f);
    chopin_router *r = chopin_router_new(); /* a second router with the finisher */
    chopin_router_get(r, "/later", later, NULL);
    chopin_router_get(r, "/finish", finisher, NULL);
    chopin__router_freeze(r);
    f.engine.router = r;
    struct chopin__conn *a = chopin__engine_conn_new(&f.engine, -1);
    struct chopin__conn *b = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(a, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    to_finish = held[0];
    fake_feed(b, "GET /finish HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_STR(fake_output(a), "");          /* not inside b's handler */
    CHECK_INT(f.notified, 0);
    CHECK_STR(bodies(fake_output(b)), "done");
    CHECK_INT(chopin__engine_timeout(&f.engine), 0); /* the loop does not sleep on it */
    chopin__engine_run_ready(&f.engine);
    CHECK_INT(f.notified, 1);
    CHECK_STR(bodies(fake_output(a)), "by-other");
    teardown(&f);
    chopin_router_free(r);
}

static void test_drain_waits(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    chopin__engine_drain(&f.engine);
    CHECK(!(c->ask & CHOPIN__CONN_CLOSE)); /* a request in progress is not idle */
    answer_held(0);
    const char *out = fake_output(c);
    CHECK(strstr(out, "Connection: close\r\n") != NULL);
    CHECK(c->ask & (CHOPIN__CONN_SHUTDOWN | CHOPIN__CONN_CLOSE));
    teardown(&f);
}

/* A malformed request behind a deferred one gets its 400 after the deferred answer. */
static void test_refusal_waits_its_turn(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /later HTTP/1.1\r\nHost: x\r\nX-Id: first\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
    CHECK_STR(fake_output(c), "");
    answer_held(0);
    const char *out = fake_output(c);
    const char *bad = strstr(out, "HTTP/1.1 400 ");
    CHECK(strstr(out, "HTTP/1.1 200 OK") == out && bad != NULL);
    CHECK(c->ask & (CHOPIN__CONN_SHUTDOWN | CHOPIN__CONN_CLOSE));
    teardown(&f);
}

int main(void) {
    RUN(test_answer_after_return);
    RUN(test_pipelined_order);
    RUN(test_finish_inside_handler);
    RUN(test_deadline);
    RUN(test_staggered_deadlines);
    RUN(test_client_leaves);
    RUN(test_close_cancels);
    RUN(test_worker_bound);
    RUN(test_connection_bound);
    RUN(test_finished_by_another_handler);
    RUN(test_drain_waits);
    RUN(test_refusal_waits_its_turn);
    TEST_END();
}
