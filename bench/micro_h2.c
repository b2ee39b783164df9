/* SPDX-License-Identifier: MIT */
/*
 * HTTP/2's per-request path without sockets (issue 20): what h2load sends in bench/h2.sh
 * (one connection, 100 streams at a time, GET /plaintext or /json with h2load's fields),
 * recorded once from a client nghttp2 session, then fed to a server connection batch by
 * batch, its output planned and "sent". The recording is outside `serve`, so
 *
 *   valgrind --tool=callgrind --toggle-collect=serve build/bench/micro_h2 20 0
 *
 * counts the server's instructions only: divide by the requests printed.
 * Usage: micro_h2 [BATCHES (x100 requests, default 200)] [SCENARIO 0: plaintext, 1: json]
 */
#include <stdio.h>

#if !__has_include(<nghttp2/nghttp2.h>)
int main(void) {
    printf("micro_h2: skipped (no nghttp2/nghttp2.h: install libnghttp2-dev)\n");
    return 0;
}
#else

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "router/router.h"

#define STREAMS 100

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    (void)req, (void)data;
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

static void json(chopin_req *req, chopin_res *res, void *data) {
    (void)req, (void)data;
    chopin_json *j = chopin_res_json(res, 200);
    chopin_json_obj_begin(j);
    chopin_json_key(j, "message");
    chopin_json_str(j, "Hello, World!");
    chopin_json_obj_end(j);
    chopin_json_end(j);
}

/* The client's bytes, one batch per read the server gets. */
struct batch {
    uint8_t *p;
    size_t len;
};

static void append(struct batch *b, const uint8_t *p, size_t n) {
    b->p = realloc(b->p, b->len + n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* What the server sends, to the client (which closes its streams and acks). */
static void answer_client(struct chopin__conn *c, nghttp2_session *s) {
    struct chopin__plan p;
    while (chopin__conn_out_plan(c, &p) > 0) {
        for (int i = 0; i < p.iovcnt; i++)
            nghttp2_session_mem_recv(s, p.iov[i].iov_base, p.iov[i].iov_len);
        chopin__conn_on_sent(c, p.bytes);
    }
}

/* Records the client's side of a conversation with a server connection of `e`: batch 0
 * the preface, SETTINGS (h2load's windows: 2^30 - 1) and the connection's window; then
 * `batches` batches of STREAMS requests, each with what the client had to say about the
 * answers to the one before (SETTINGS ACK, nothing else: its windows are large). */
static struct batch *record(struct chopin__engine *e, int batches, const char *path) {
    struct batch *b = calloc((size_t)batches + 1, sizeof *b);
    nghttp2_session_callbacks *cb;
    nghttp2_session *s;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_client_new(&s, cb, NULL);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1u << 30) - 1}};
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_submit_window_update(s, NGHTTP2_FLAG_NONE, 0, (1 << 30) - 1 - 65535);
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"127.0.0.1:40000", 10, 15, 0},
        {(uint8_t *)"user-agent", (uint8_t *)"h2load nghttp2/1.52.0", 10, 21, 0},
    };
    struct chopin__conn *c = chopin__engine_conn_new(e, -1);
    for (int i = 0; i <= batches; i++) {
        for (int k = 0; i && k < STREAMS; k++)
            nghttp2_submit_request(s, NULL, nv, sizeof nv / sizeof nv[0], NULL, NULL);
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(s, &p)) > 0)
            append(&b[i], p, (size_t)n);
        char *copy = malloc(b[i].len);
        memcpy(copy, b[i].p, b[i].len);
        chopin__conn_on_data(c, copy, b[i].len);
        free(copy);
        answer_client(c, s);
    }
    chopin__engine_conn_free(e, c);
    nghttp2_session_del(s);
    return b;
}

static size_t drain(struct chopin__conn *c) {
    struct chopin__plan p;
    size_t total = 0;
    while (chopin__conn_out_plan(c, &p) > 0) {
        total += p.bytes;
        chopin__conn_on_sent(c, p.bytes);
    }
    return total;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The server's side: every batch in one read (a copy, as a read lands in a buffer the
 * connection may scribble on), then its answers out. Returns the bytes answered. */
__attribute__((noinline)) static size_t serve(struct chopin__conn *c, const struct batch *b,
                                              int batches, char *scratch) {
    size_t out = 0;
    for (int i = 0; i <= batches; i++) {
        memcpy(scratch, b[i].p, b[i].len);
        chopin__conn_on_data(c, scratch, b[i].len);
        out += drain(c);
    }
    return out;
}

int main(int argc, char **argv) {
    int batches = argc > 1 ? atoi(argv[1]) : 200;
    int scenario = argc > 2 ? atoi(argv[2]) : 0;
    const char *path = scenario == 1 ? "/json" : "/plaintext";
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/plaintext", plaintext, NULL);
    chopin_router_get(r, "/json", json, NULL);
    chopin__router_freeze(r);
    struct chopin__config cfg;
    chopin_options o = chopin_options_default();
    o.slab_capacity = 4;
    o.h2c = 1;
    chopin__config_resolve(&cfg, &o);
    struct chopin__engine e;
    chopin__engine_init(&e, &cfg, r, 0, 1000);
    chopin__stack_choose(&e.stack, &cfg.opt, NULL); /* (h2c: what the server would hand it) */
    chopin__engine_set_clock(&e, 1000, time(NULL));

    struct batch *b = record(&e, batches, path);
    uint64_t recorded = e.counters.requests;
    size_t most = 0;
    for (int i = 0; i <= batches; i++)
        most = b[i].len > most ? b[i].len : most;
    char *scratch = malloc(most);
    struct chopin__conn *c = chopin__engine_conn_new(&e, -1);
    double t0 = now_ns();
    size_t out = serve(c, b, batches, scratch);
    double ns = (now_ns() - t0) / ((double)batches * STREAMS);
    long requests = (long)(e.counters.requests - recorded);
    uint64_t errors = e.counters.errors_4xx + e.counters.errors_5xx;
    printf("h2 %s, %d streams per read: %ld requests, %zu bytes out, %.1f ns/request\n", path,
           STREAMS, requests, out, ns);
    chopin__engine_conn_free(&e, c);
    for (int i = 0; i <= batches; i++)
        free(b[i].p);
    free(b);
    free(scratch);
    chopin__engine_destroy(&e);
    chopin_router_free(r);
    /* (every request answered, and none with an error: a 404 would measure the wrong path) */
    return requests == (long)batches * STREAMS && !errors ? 0 : 1;
}

#endif
