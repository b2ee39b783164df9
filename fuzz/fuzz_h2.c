/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: HTTP/2 input to a connection (h2c with prior knowledge) through a
 * fake backend. The input follows the client preface, which is prepended, split into
 * reads of fuzzer-chosen sizes; output is drained in writes of fuzzer-chosen sizes (or
 * not at all for a while: a reader that stalls); the clock jumps now and then so the
 * deadlines fire mid-stream. Requests to /later are deferred and finished between reads,
 * /stream answers with a producer that waits until resumed, /file with a file read in
 * pieces. Invariants: nothing crashes or leaks, and once a connection is freed every
 * pooled buffer is back and no exchange is open.
 *
 *   make build/fuzz/fuzz_h2 && build/fuzz/fuzz_h2 fuzz/corpus/h2
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "h2/h2.h"
#include "router/router.h"

#define HELD_MAX 16
#include "held.h"

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

static void echo(chopin_req *req, chopin_res *res, void *data) {
    chopin_str b = chopin_req_body(req);
    chopin_str q = chopin_req_query(req, "q");
    chopin_str h = chopin_req_header(req, "x-a");
    (void)q;
    (void)h;
    chopin_res_header_add(res, "X-Id", "1");
    chopin_res_copy(res, 200, "text/plain", b.ptr, b.len);
}

static void finish_oldest(void) {
    chopin_exchange x;
    chopin_req *req = take_oldest(&x);
    if (!req)
        return;
    chopin_str p = chopin_req_path(req);
    chopin_res_copy(chopin_exchange_res(x), 200, "text/plain", p.ptr, p.len);
    chopin_exchange_finish(x);
}

/* A stream of three chunks that waits after each until resumed. */
static chopin_stream streams[16];
static int nstreams;

static long produce(void *state, char *buf, size_t cap) {
    int *left = state;
    if (*left == 0)
        return 0;
    if (*left & 1) {
        (*left)--;
        return CHOPIN_EAGAIN;
    }
    (*left)--;
    size_t n = cap < 100 ? cap : 100;
    memset(buf, 's', n);
    return (long)n;
}

static void stream_done(void *state) { free(state); }

static void stream(chopin_req *req, chopin_res *res, void *data) {
    int *left = malloc(sizeof *left);
    *left = 6;
    if (nstreams < 16)
        streams[nstreams++] = chopin_req_stream(req);
    chopin_res_stream(res, 200, "text/plain", produce, stream_done, left);
}

static int file_fd = -1;

static void file(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_fd(res, 200, NULL, file_fd, 0, 70000, 0);
}

static chopin_router *router;
static struct chopin__config cfg;

static void init(void) {
    router = chopin_router_new();
    chopin_router_get(router, "/plaintext", plaintext, NULL);
    chopin_router_route(router, CHOPIN_METHOD_ANY, "/echo/:id", echo, NULL);
    chopin_router_route(router, CHOPIN_METHOD_ANY, "/later", later, NULL);
    chopin_router_get(router, "/stream", stream, NULL);
    chopin_router_get(router, "/file", file, NULL);
    chopin__router_freeze(router);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 2;
    o.max_body_bytes = 4096;
    o.max_header_bytes = 2048;
    o.max_request_line = 512;
    o.max_headers = 16;
    o.buffer_size = 4096;
    o.handler_timeout_ms = 3000;
    o.h2c = 1;
    chopin__config_resolve(&cfg, &o);
    char path[] = "/tmp/fuzz-h2-XXXXXX";
    file_fd = mkstemp(path);
    unlink(path);
    static char block[70000];
    if (write(file_fd, block, sizeof block) < 0)
        abort();
}

static void drain(struct chopin__conn *c, size_t chunk) {
    struct chopin__plan p;
    int rounds = 0;
    while (!(c->ask & CHOPIN__CONN_CLOSE) && chopin__conn_out_plan(c, &p) > 0 && rounds++ < 100000) {
        size_t n = p.bytes < chunk ? p.bytes : chunk;
        chopin__conn_on_sent(c, n);
    }
}

static void resume_all(void) {
    for (int i = 0; i < nstreams; i++)
        chopin_stream_resume(streams[i]);
}

static void feed(struct chopin__conn *c, const uint8_t *p, size_t n) {
    char *buf = malloc(n); /* each read lands in a fresh buffer, as with a backend */
    memcpy(buf, p, n);
    chopin__conn_on_data(c, buf, n);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!router)
        init();
    if (size < 2)
        return 0;
    uint8_t shape = data[0], wshape = data[1];
    data += 2;
    size -= 2;
    struct chopin__engine e;
    if (chopin__engine_init(&e, &cfg, router, 0, 1000) < 0)
        return 0;
    chopin__stack_choose(&e.stack, &cfg.opt, NULL);
    chopin__engine_set_clock(&e, 1000, 784111777);
    struct chopin__conn *c = chopin__engine_conn_new(&e, -1);
    nheld = nstreams = 0;
    feed(c, (const uint8_t *)CHOPIN__H2_PREFACE, CHOPIN__H2_PREFACE_LEN);
    size_t pos = 0, step = 0;
    while (pos < size && !(c->ask & CHOPIN__CONN_CLOSE)) {
        size_t n = 1 + (size_t)((shape * 31u + step * 7u) % 97u);
        if (n > size - pos)
            n = size - pos;
        if (chopin__conn_wants_read(c)) {
            feed(c, data + pos, n);
            pos += n;
        } else {
            drain(c, 1 << 20); /* a paused reader: let the output go */
        }
        if ((wshape >> (step % 8)) & 1) {
            finish_oldest();
            resume_all();
            chopin__engine_run_ready(&e);
        }
        if ((step + wshape) % 3)
            drain(c, 1 + (size_t)((wshape + step) % 4096u));
        if ((shape >> (step % 8)) & 1) {
            chopin__engine_set_clock(&e, e.now_ms + 700, 784111777);
            chopin__engine_run_timers(&e);
        }
        step++;
    }
    while (nheld && !(c->ask & CHOPIN__CONN_CLOSE)) {
        finish_oldest();
        chopin__engine_run_ready(&e);
        drain(c, 1 << 20);
    }
    if (!(c->ask & CHOPIN__CONN_CLOSE))
        chopin__conn_on_eof(c);
    drain(c, 1 << 20);
    chopin__engine_conn_free(&e, c);
    if (e.pool.outstanding != 0 || e.xopen != 0)
        abort();
    chopin__engine_destroy(&e);
    return 0;
}
