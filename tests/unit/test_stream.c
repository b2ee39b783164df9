/* SPDX-License-Identifier: MIT */
/*
 * Streams that wait, through a fake backend: a producer that has nothing yet
 * (CHOPIN_EAGAIN) is not called again until its stream is resumed, no deadline runs
 * while it waits, its handle goes stale with its connection, and the connection closing
 * while it waits runs done() once. No sockets, exact output bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "fake.h"
#include "api/exchange.h"
#include "mem/arena.h"

#define T0 FAKE_T0
#define WALL FAKE_WALL
#define WRITE_TIMEOUT 5000

/* What the producer has to give: the next piece, and whether it is done after it. */
static struct {
    const char *next;
    int finish;
    int calls, done;
} src;
static chopin_stream handle;
static int poke_rc;

static long produce(void *state, char *buf, size_t cap) {
    src.calls++;
    if (src.next) {
        size_t n = strlen(src.next);
        memcpy(buf, src.next, n < cap ? n : cap);
        src.next = NULL;
        return (long)n;
    }
    return src.finish ? 0 : CHOPIN_EAGAIN;
}

static void stream_done(void *state) { src.done++; }

static void events(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_stream(res, 200, "text/plain", produce, stream_done, NULL);
    handle = chopin_req_stream(req);
}

/* Another client's request resumes the stream (a publisher): from inside a handler. */
static void poke(chopin_req *req, chopin_res *res, void *data) {
    src.next = "poked";
    poke_rc = chopin_stream_resume(handle);
    chopin_res_static(res, 200, "text/plain", "ok", 2);
}

/* Trailers (issue 20): with a stream, and with a body whose length is known. */
static void trailed(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_stream(res, 200, "text/plain", produce, stream_done, NULL);
    CHECK_INT(chopin_res_trailer(res, "X-Checksum", "abc123"), 0);
    CHECK_INT(chopin_res_trailer(res, "Grpc-Status", "0"), 0);
}

static void trailed_length(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "sized", 5);
    chopin_res_trailer(res, "X-Checksum", "abc123");
}

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "sync", 4);
}

static void setup(struct fake *f) {
    memset(&src, 0, sizeof src);
    memset(&handle, 0, sizeof handle);
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/events", events, NULL);
    chopin_router_get(r, "/poke", poke, NULL);
    chopin_router_get(r, "/sync", plaintext, NULL);
    chopin_router_get(r, "/trailed", trailed, NULL);
    chopin_router_get(r, "/trailed-length", trailed_length, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 4;
    o.write_timeout_ms = WRITE_TIMEOUT;
    fake_start(f, r, &o);
}

/* The body bytes after the head in `out` ("" when there is no head). */
static const char *body_of(const char *out) {
    const char *b = strstr(out, "\r\n\r\n");
    return b ? b + 4 : "";
}

/* A connection whose stream has sent its head and now waits. */
static struct chopin__conn *waiting_stream(struct fake *f) {
    struct chopin__conn *c = chopin__engine_conn_new(&f->engine, -1);
    fake_feed(c, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    const char *out = fake_output(c);
    CHECK(strstr(out, "HTTP/1.1 200 OK\r\n") == out);
    CHECK(strstr(out, "Transfer-Encoding: chunked\r\n") != NULL);
    CHECK_STR(body_of(out), "");
    CHECK_INT(src.calls, 1);
    return c;
}

static void test_waits_then_resumes(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = waiting_stream(&f);
    /* Waiting: nothing to send, the producer is not asked again however often the
     * backend looks, and the connection stays open. */
    CHECK_STR(fake_output(c), "");
    CHECK_STR(fake_output(c), "");
    CHECK_INT(src.calls, 1);
    CHECK(chopin__conn_has_output(c));
    CHECK(!(c->ask & CHOPIN__CONN_CLOSE));

    src.next = "hello";
    CHECK_INT(chopin_stream_resume(handle), 0);
    /* Never served inside the caller's call: at the loop's turn, the backend is told. */
    CHECK_INT(f.notified, 0);
    CHECK_INT(src.calls, 1);
    chopin__engine_run_ready(&f.engine);
    CHECK_INT(f.notified, 1);
    CHECK_STR(fake_output(c), "5\r\nhello\r\n");
    CHECK_INT(src.calls, 3); /* hello, then "nothing yet" again */

    src.next = "0123456789abcdefg";
    chopin_stream_resume(handle);
    CHECK_STR(fake_output(c), "11\r\n0123456789abcdefg\r\n");

    src.finish = 1;
    chopin_stream_resume(handle);
    CHECK_STR(fake_output(c), "0\r\n\r\n");
    CHECK_INT(src.done, 1);
    CHECK(!chopin__conn_has_output(c));
    /* Keep-alive as usual afterwards; the ended stream's handle wakes nothing. */
    CHECK_INT(chopin_stream_resume(handle), 0);
    fake_feed(c, "GET /sync HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_STR(body_of(fake_output(c)), "sync");
    CHECK_INT(src.done, 1);
    fake_stop(&f);
}

/* The trailer fields end a chunked body's last chunk (RFC 9112 §7.1.2); a body with a
 * Content-Length has nowhere to put them: they are dropped. */
static void test_trailers(void) {
    struct fake f;
    setup(&f);
    src.next = "body";
    src.finish = 1;
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /trailed HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_STR(body_of(fake_output(c)),
              "4\r\nbody\r\n0\r\nX-Checksum: abc123\r\nGrpc-Status: 0\r\n\r\n");
    CHECK_INT(src.done, 1);
    fake_feed(c, "GET /trailed-length HTTP/1.1\r\nHost: x\r\n\r\n");
    const char *out = fake_output(c);
    CHECK(strstr(out, "Content-Length: 5\r\n") != NULL);
    CHECK_STR(body_of(out), "sized");
    fake_feed(c, "GET /sync HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_STR(body_of(fake_output(c)), "sync");
    fake_stop(&f);
}

/* What a trailer may not carry (RFC 9110 §6.5.1), and its bound. */
static void test_trailer_refusals(void) {
    struct chopin__arena a;
    chopin__arena_init(&a, 4096, 1 << 20);
    chopin_res res;
    chopin__res_init(&res, &a);
    CHECK_INT(chopin_res_trailer(&res, "Content-Length", "5"), CHOPIN_EINVAL);
    CHECK_INT(chopin_res_trailer(&res, "transfer-encoding", "chunked"), CHOPIN_EINVAL);
    CHECK_INT(chopin_res_trailer(&res, "Host", "x"), CHOPIN_EINVAL);
    CHECK_INT(chopin_res_trailer(&res, "Trailer", "x"), CHOPIN_EINVAL);
    CHECK_INT(chopin_res_trailer(&res, "Bad Name", "x"), CHOPIN_EINVAL);
    CHECK_INT(chopin_res_trailer(&res, "X-A", "bad\r\nvalue"), CHOPIN_EINVAL);
    CHECK_INT(res.trailers_len, 0);
    char big[600];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(chopin_res_trailer(&res, "X-A", big), 0);
    CHECK_INT(chopin_res_trailer(&res, "X-B", big), CHOPIN_ENOSPC);
    CHECK_INT(res.trailers_len, 3 + 2 + 599 + 2);
    chopin__arena_destroy(&a);
}

static void test_resume_when_not_waiting(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = waiting_stream(&f);
    src.next = "x";
    chopin_stream_resume(handle);
    /* Resumed, not yet called: a second resume changes nothing (listed once). */
    CHECK_INT(chopin_stream_resume(handle), 0);
    chopin__engine_run_ready(&f.engine);
    CHECK_INT(f.notified, 1);
    CHECK_STR(fake_output(c), "1\r\nx\r\n");
    fake_stop(&f);
    CHECK_INT(src.done, 1);
}

static void test_no_deadline_while_waiting(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = waiting_stream(&f);
    /* Long past the write deadline: a stream with nothing to say is not a peer that
     * stopped reading. */
    chopin__engine_set_clock(&f.engine, T0 + 10 * WRITE_TIMEOUT, WALL + 50);
    chopin__engine_run_timers(&f.engine);
    CHECK(!(c->ask & CHOPIN__CONN_CLOSE));
    CHECK_INT(src.done, 0);
    src.next = "late";
    CHECK_INT(chopin_stream_resume(handle), 0);
    CHECK_STR(fake_output(c), "4\r\nlate\r\n");
    fake_stop(&f);
}

static void test_client_leaves_while_waiting(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = waiting_stream(&f);
    chopin__conn_on_eof(c);
    CHECK(c->ask & CHOPIN__CONN_CLOSE); /* it has left: no one reads what would come */
    chopin_stream old = handle;
    chopin__engine_conn_free(&f.engine, c);
    CHECK_INT(src.done, 1);
    CHECK_INT(src.calls, 1);
    CHECK_INT(chopin_stream_resume(old), CHOPIN_ESTALE);
    /* The slot taken by another connection: the old handle still names nothing. */
    src.calls = 0;
    struct chopin__conn *c2 = waiting_stream(&f);
    CHECK(c2 == c);
    CHECK_INT(chopin_stream_resume(old), CHOPIN_ESTALE);
    CHECK_INT(chopin_stream_resume(handle), 0);
    fake_stop(&f);
    CHECK_INT(src.done, 2);
}

static void test_reset_while_waiting(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = waiting_stream(&f);
    chopin__conn_on_error(c);
    CHECK(c->ask & CHOPIN__CONN_CLOSE);
    CHECK_INT(chopin_stream_resume(handle), 0); /* not freed yet: nothing happens */
    chopin__engine_run_ready(&f.engine);
    CHECK_INT(f.notified, 0);
    chopin__engine_conn_free(&f.engine, c);
    CHECK_INT(src.done, 1);
    CHECK_INT(chopin_stream_resume(handle), CHOPIN_ESTALE);
    fake_stop(&f);
    CHECK_INT(src.done, 1);
}

static void test_resume_from_a_handler(void) {
    struct fake f;
    setup(&f);
    struct chopin__conn *c = waiting_stream(&f);
    struct chopin__conn *other = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(other, "GET /poke HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(poke_rc, 0);
    /* Never served inside another connection's handler: listed for the loop's turn. */
    CHECK_INT(f.notified, 0);
    CHECK_INT(src.calls, 1);
    CHECK_STR(body_of(fake_output(other)), "ok");
    chopin__engine_run_ready(&f.engine);
    CHECK_INT(f.notified, 1);
    CHECK_STR(fake_output(c), "5\r\npoked\r\n");
    fake_stop(&f);
}

/* ----- server-sent events ---------------------------------------------------------- */

static chopin_sse *sse;
static int sse_closes;
static char last_id[32]; /* the request's Last-Event-ID, copied ("-" when absent) */

static void sse_closed(chopin_sse *s, void *arg) {
    sse_closes++;
    CHECK(s == sse);
    CHECK_INT(chopin_sse_send(s, NULL, NULL, "x", 1), CHOPIN_ESTALE); /* closing now */
    sse = NULL;
}

static void sse_open(chopin_req *req, chopin_res *res, void *data) {
    chopin_str id = chopin_sse_last_id(req);
    snprintf(last_id, sizeof last_id, "%.*s", id.ptr ? (int)id.len : 1, id.ptr ? id.ptr : "-");
    sse = chopin_sse_open(req, res, sse_closed, NULL);
}

static chopin_exchange deferred;

static void sse_later(chopin_req *req, chopin_res *res, void *data) {
    CHECK_INT(chopin_defer(req, res, &deferred), 0);
}

static void setup_sse(struct fake *f) {
    sse = NULL;
    sse_closes = 0;
    setup(f);
    /* (the fixture's router is frozen: a second one for these routes) */
    chopin_router_free(f->router);
    f->router = chopin_router_new();
    chopin_router_get(f->router, "/sse", sse_open, NULL);
    chopin_router_get(f->router, "/sse-later", sse_later, NULL);
    chopin_router_get(f->router, "/sync", plaintext, NULL);
    chopin__router_freeze(f->router);
    f->engine.router = f->router;
}

/* The chunk carrying `text`. */
static const char *chunk(const char *text) {
    static char out[4096];
    snprintf(out, sizeof out, "%zx\r\n%s\r\n", strlen(text), text);
    return out;
}

static struct chopin__conn *sse_conn(struct fake *f, const char *extra) {
    struct chopin__conn *c = chopin__engine_conn_new(&f->engine, -1);
    char req[256];
    snprintf(req, sizeof req, "GET /sse HTTP/1.1\r\nHost: x\r\n%s\r\n", extra);
    fake_feed(c, req);
    const char *out = fake_output(c);
    CHECK(strstr(out, "HTTP/1.1 200 OK\r\n") == out);
    CHECK(strstr(out, "Content-Type: text/event-stream\r\n") != NULL);
    CHECK(strstr(out, "Cache-Control: no-cache\r\n") != NULL);
    CHECK(strstr(out, "Transfer-Encoding: chunked\r\n") != NULL);
    CHECK(strstr(out, "Content-Length") == NULL);
    CHECK_STR(body_of(out), "");
    CHECK(sse != NULL);
    return c;
}

static void test_sse_fields(void) {
    struct fake f;
    setup_sse(&f);
    struct chopin__conn *c = sse_conn(&f, "Last-Event-ID: 41\r\n");
    CHECK_STR(last_id, "41");
    CHECK_INT(chopin_sse_send(sse, "tick", "42", "one", 3), 0);
    CHECK_STR(fake_output(c), chunk("event: tick\nid: 42\ndata: one\n\n"));
    /* CRLF, LF and CR each end a data line; a trailing break leaves an empty last line. */
    CHECK_INT(chopin_sse_send(sse, NULL, NULL, "a\r\nb\nc\rd\n", 9), 0);
    CHECK_STR(fake_output(c), chunk("data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"));
    CHECK_INT(chopin_sse_send(sse, NULL, NULL, "", 0), 0);
    CHECK_INT(chopin_sse_retry(sse, 2500), 0);
    CHECK_INT(chopin_sse_comment(sse, "hi"), 0);
    CHECK_STR(fake_output(c), chunk("data: \n\nretry: 2500\n: hi\n"));
    CHECK_INT(chopin_sse_send(sse, "a\nb", NULL, "x", 1), CHOPIN_EINVAL);
    CHECK_INT(chopin_sse_send(sse, NULL, "1\r", "x", 1), CHOPIN_EINVAL);
    CHECK_INT(chopin_sse_comment(sse, "a\rb"), CHOPIN_EINVAL);
    CHECK_STR(fake_output(c), "");
    chopin_sse_close(sse);
    CHECK_STR(fake_output(c), "0\r\n\r\n");
    CHECK_INT(sse_closes, 1);
    fake_feed(c, "GET /sync HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_STR(body_of(fake_output(c)), "sync");
    fake_stop(&f);
    CHECK_INT(sse_closes, 1);
}

static void test_sse_bounded(void) {
    struct fake f;
    setup_sse(&f);
    struct chopin__conn *c = sse_conn(&f, "");
    CHECK_STR(last_id, "-");
    static char big[64 << 10];
    memset(big, 'x', sizeof big);
    int sent = 0, rc;
    while ((rc = chopin_sse_send(sse, NULL, NULL, big, sizeof big)) == 0)
        sent++;
    CHECK_INT(rc, CHOPIN_ENOSPC); /* a reader that does not read: bounded */
    CHECK_INT(sent, CHOPIN_SSE_MAX_QUEUED / (sizeof big + 8));
    CHECK(!(c->ask & CHOPIN__CONN_CLOSE));
    fake_stop(&f);
}

static void test_sse_heartbeat(void) {
    struct fake f;
    setup_sse(&f);
    struct chopin__conn *c = sse_conn(&f, "");
    uint32_t every = f.cfg.opt.sse_heartbeat_ms;
    chopin__engine_set_clock(&f.engine, T0 + every, WALL + 15);
    chopin__engine_run_timers(&f.engine);
    CHECK_STR(fake_output(c), ""); /* the first tick only notes that nothing was sent */
    chopin__engine_set_clock(&f.engine, T0 + 2 * every, WALL + 30);
    chopin__engine_run_timers(&f.engine);
    CHECK_STR(fake_output(c), chunk(": \n"));
    /* An event in the period: no heartbeat at its end. */
    CHECK_INT(chopin_sse_send(sse, NULL, NULL, "e", 1), 0);
    chopin__engine_set_clock(&f.engine, T0 + 3 * every, WALL + 45);
    chopin__engine_run_timers(&f.engine);
    CHECK_STR(fake_output(c), chunk("data: e\n\n"));
    fake_stop(&f);
}

static void test_sse_client_leaves(void) {
    struct fake f;
    setup_sse(&f);
    struct chopin__conn *c = sse_conn(&f, "");
    CHECK_INT(chopin_sse_send(sse, NULL, NULL, "q", 1), 0); /* queued, never sent */
    chopin__conn_on_error(c);
    chopin__engine_conn_free(&f.engine, c);
    CHECK_INT(sse_closes, 1);
    CHECK(sse == NULL);
    chopin__engine_set_clock(&f.engine, T0 + 100000, WALL + 100);
    chopin__engine_run_timers(&f.engine); /* its heartbeat stopped with it */
    fake_stop(&f);
    CHECK_INT(sse_closes, 1);
}

/* Events after a deferral: the stream opens on the exchange's request and response. */
static void test_sse_after_defer(void) {
    struct fake f;
    setup_sse(&f);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /sse-later HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 9\r\n\r\n");
    CHECK_STR(fake_output(c), "");
    chopin_req *req = chopin_exchange_req(deferred);
    sse = chopin_sse_open(req, chopin_exchange_res(deferred), sse_closed, NULL);
    CHECK(sse != NULL);
    CHECK_MEM(chopin_sse_last_id(req).ptr, chopin_sse_last_id(req).len, "9");
    CHECK_INT(chopin_sse_send(sse, NULL, "10", "ten", 3), 0);
    CHECK_INT(chopin_exchange_finish(deferred), 0);
    const char *out = fake_output(c);
    CHECK(strstr(out, "Content-Type: text/event-stream\r\n") != NULL);
    CHECK_STR(body_of(out), chunk("id: 10\ndata: ten\n\n"));
    CHECK_INT(chopin_sse_send(sse, NULL, NULL, "more", 4), 0);
    chopin__engine_run_ready(&f.engine);
    CHECK_STR(fake_output(c), chunk("data: more\n\n"));
    chopin__conn_on_eof(c); /* the client leaves */
    CHECK(c->ask & CHOPIN__CONN_CLOSE);
    chopin__engine_conn_free(&f.engine, c);
    CHECK_INT(sse_closes, 1);
    fake_stop(&f);
}

int main(void) {
    RUN(test_waits_then_resumes);
    RUN(test_trailers);
    RUN(test_trailer_refusals);
    RUN(test_resume_when_not_waiting);
    RUN(test_no_deadline_while_waiting);
    RUN(test_client_leaves_while_waiting);
    RUN(test_reset_while_waiting);
    RUN(test_resume_from_a_handler);
    RUN(test_sse_fields);
    RUN(test_sse_bounded);
    RUN(test_sse_heartbeat);
    RUN(test_sse_client_leaves);
    RUN(test_sse_after_defer);
    TEST_END();
}
