/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the whole connection state machine through a fake backend. The
 * input is split into reads of fuzzer-chosen sizes; output is drained in writes of
 * fuzzer-chosen sizes; the clock jumps now and then so timeouts fire mid-request.
 * Requests to /later are deferred and finished later, oldest first, between reads (or
 * left to their deadline, or to the connection's end), reading their request back then.
 * POST /stream takes its body as it arrives (chopin_router_stream, issue 18): its reader
 * pauses after a piece now and then (resumed between reads), answers early when a piece
 * starts with 'F', else answers at the end; its handler refuses a request carrying X-R.
 * Invariants: nothing crashes or leaks, and once a connection is closed and freed every
 * pooled buffer is back and no exchange is open.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE \
 *       fuzz/fuzz_conn.c build/asan/libchopin.a -o build/fuzz_conn -pthread -luring
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "router/router.h"

#include "held.h"

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

static void echo(chopin_req *req, chopin_res *res, void *data) {
    chopin_str b = chopin_req_body(req);
    chopin_str q = chopin_req_query(req, "q");
    chopin_str p = chopin_req_param(req, "id");
    (void)q;
    (void)p;
    chopin_res_copy(res, 200, "text/plain", b.ptr, b.len);
}

static void params(chopin_req *req, chopin_res *res, void *data) {
    chopin_str p = chopin_req_param(req, "rest");
    chopin_res_copy(res, 200, "text/plain", p.ptr, p.len);
}

/* Finishes the oldest deferred exchange (a no-op for one already ended). */
static void finish_oldest(void) {
    chopin_exchange x;
    chopin_req *req = take_oldest(&x);
    if (!req)
        return;
    chopin_str h = chopin_req_header(req, "x-a");
    chopin_str b = chopin_req_body(req);
    chopin_res_copy(chopin_exchange_res(x), 200, "text/plain", h.ptr ? h.ptr : b.ptr,
                    h.ptr ? h.len : b.len);
    chopin_exchange_finish(x);
}

/* The streamed body's reader: its handle while paused, and every reader's state. */
static chopin_exchange paused;
static int is_paused;
static unsigned pieces;

static void stream_data(chopin_exchange x, const char *p, size_t n, void *arg) {
    pieces++;
    if (p[0] == 'F') {
        chopin_res_error(chopin_exchange_res(x), 400, NULL);
        chopin_exchange_finish(x);
        return;
    }
    if (pieces % 3 == 0 && chopin_body_pause(x) == 0) {
        paused = x;
        is_paused = 1;
    }
}

static void stream_end(chopin_exchange x, void *arg) {
    chopin_res_text(chopin_exchange_res(x), 200, "streamed");
    chopin_exchange_finish(x);
}

static void stream_error(chopin_exchange x, int err, void *arg) {
    if (err >= 0 || chopin_exchange_open(x))
        abort(); /* an error, and the exchange is over */
}

static void stream(chopin_req *req, chopin_res *res, void *data) {
    static const chopin_body_handler h = {stream_data, stream_end, stream_error};
    chopin_exchange x;
    if (chopin_req_header(req, "x-r").ptr)
        chopin_res_error(res, 401, NULL);
    else
        chopin_body_read(req, res, &h, NULL, &x);
}

static void resume_paused(void) {
    if (is_paused) {
        is_paused = 0;
        chopin_body_resume(paused);
    }
}

static chopin_router *router;
static struct chopin__config cfg;

static void init(void) {
    router = chopin_router_new();
    chopin_router_get(router, "/plaintext", plaintext, NULL);
    chopin_router_route(router, CHOPIN_METHOD_ANY, "/echo/:id", echo, NULL);
    chopin_router_get(router, "/files/*rest", params, NULL);
    chopin_router_route(router, CHOPIN_METHOD_ANY, "/later", later, NULL);
    chopin_router_stream(router, CHOPIN_METHOD_POST, "/stream", stream, NULL, 3000);
    chopin__router_freeze(router);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 2;
    o.max_body_bytes = 4096;
    o.max_header_bytes = 2048;
    o.max_request_line = 512;
    o.max_headers = 16;
    o.buffer_size = 4096;
    o.max_pending = 4;
    o.handler_timeout_ms = 3000;
    chopin__config_resolve(&cfg, &o);
}

static void drain(struct chopin__conn *c, size_t chunk) {
    struct chopin__plan p;
    int rounds = 0;
    while (!(c->ask & CHOPIN__CONN_CLOSE) && chopin__conn_out_plan(c, &p) > 0 && rounds++ < 100000) {
        size_t n = p.bytes < chunk ? p.bytes : chunk;
        chopin__conn_on_sent(c, n);
    }
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
    chopin__engine_set_clock(&e, 1000, 784111777);
    struct chopin__conn *c = chopin__engine_conn_new(&e, -1);
    nheld = 0;
    is_paused = 0;
    size_t pos = 0, step = 0;
    while (pos < size && !(c->ask & CHOPIN__CONN_CLOSE)) {
        size_t n = 1 + (size_t)((shape * 31u + step * 7u) % 97u);
        if (n > size - pos)
            n = size - pos;
        char *buf = malloc(n); /* each read lands in a fresh buffer, as with a backend */
        memcpy(buf, data + pos, n);
        if (chopin__conn_wants_read(c) || c->phase == CHOPIN__PHASE_LINGER) {
            chopin__conn_on_data(c, buf, n);
            pos += n;
        } else {
            finish_oldest(); /* requests waiting for answers: let one leave */
            resume_paused();
            chopin__engine_run_ready(&e);
        }
        free(buf);
        if ((wshape >> (step % 8)) & 1) {
            finish_oldest();
            resume_paused();
            chopin__engine_run_ready(&e);
        }
        drain(c, 1 + (size_t)((wshape + step) % 4096u));
        if ((shape >> (step % 8)) & 1) {
            chopin__engine_set_clock(&e, e.now_ms + 700, 784111777);
            chopin__engine_run_timers(&e);
        }
        step++;
    }
    while ((nheld || is_paused) && !(c->ask & CHOPIN__CONN_CLOSE)) {
        finish_oldest();
        resume_paused();
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
