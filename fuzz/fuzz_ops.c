/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what the operations features of issue 19 read from clients, through
 * a whole connection on a fake backend: the request id (passed through or made), Basic
 * credentials (base64, user:password), CORS origins and preflights, and every byte of the
 * request line and headers that the access log writes. The first byte chooses the log's
 * format and how the input is split into reads.
 * Invariants: nothing crashes or leaks; the access log holds one line per answer the
 * metrics counted, and every line is printable ASCII ending in one newline (escaping lets
 * no byte a client sends break a line or forge one).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE \
 *       fuzz/fuzz_ops.c build/asan/libchopin.a -o build/fuzz_ops -pthread -luring
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "ops/observe.h"
#include "router/router.h"

static void hello(chopin_req *req, chopin_res *res, void *data) {
    chopin_str id = chopin_req_id(req), user = chopin_req_user(req);
    (void)user;
    chopin_res_copy(res, 200, "text/plain", id.ptr, id.len);
}

static const chopin_cors_options cors = {.origins = "https://a.example, https://b.example",
                                         .credentials = 1, .max_age = 60};
static const chopin_basic_auth_options auth = {.realm = "r", .user = "ada", .password = "pw"};

static chopin_router *router;
static struct chopin__config cfg[2];

static void init(void) {
    router = chopin_router_new();
    chopin_router_use(router, NULL, chopin_request_id, NULL);
    chopin_router_use(router, "/api", chopin_cors, (void *)&cors);
    chopin_router_use(router, "/admin", chopin_basic_auth, (void *)&auth);
    chopin_router_route(router, CHOPIN_METHOD_ANY, "/*rest", hello, NULL);
    chopin_metrics_route(router, "/metrics");
    chopin__router_freeze(router);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 2;
    o.max_body_bytes = 4096;
    o.max_header_bytes = 4096;
    o.max_request_line = 2048;
    o.max_headers = 16;
    o.buffer_size = 4096;
    for (int i = 0; i < 2; i++) {
        o.access_log_format = i ? CHOPIN_ACCESS_LOG_JSON : CHOPIN_ACCESS_LOG_COMBINED;
        chopin__config_resolve(&cfg[i], &o);
    }
}

static void drain(struct chopin__conn *c) {
    struct chopin__plan p;
    int rounds = 0;
    while (!(c->ask & CHOPIN__CONN_CLOSE) && chopin__conn_out_plan(c, &p) > 0 && rounds++ < 100000)
        chopin__conn_on_sent(c, p.bytes);
}

static uint64_t answers(const struct chopin__engine *e) {
    uint64_t n = 0;
    for (int m = 0; m <= CHOPIN_METHOD_COUNT; m++)
        for (int k = 0; k < CHOPIN__CLASSES; k++)
            n += e->metrics.answers[m][k];
    return n;
}

/* One line per answer, each printable ASCII up to its newline. */
static void check_log(int fd, uint64_t want) {
    off_t size = lseek(fd, 0, SEEK_END);
    char *buf = size > 0 ? malloc((size_t)size) : NULL;
    if (size > 0 && (!buf || pread(fd, buf, (size_t)size, 0) != size))
        abort();
    uint64_t lines = 0;
    for (off_t i = 0; i < size; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\n')
            lines++;
        else if (ch < 0x20 || ch > 0x7e)
            abort();
    }
    if (lines != want || (size > 0 && buf[size - 1] != '\n'))
        abort();
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!router)
        init();
    if (size < 1)
        return 0;
    uint8_t shape = data[0];
    data++;
    size--;
    int fd = memfd_create("access", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    struct chopin__config *c_cfg = &cfg[shape & 1];
    c_cfg->access_fd = fd;
    struct chopin__engine e;
    if (chopin__engine_init(&e, c_cfg, router, 0, 1000) < 0) {
        close(fd);
        return 0;
    }
    chopin__engine_set_clock(&e, 1000, 784111777);
    struct chopin__conn *c = chopin__engine_conn_new(&e, -1);
    size_t pos = 0, step = 0;
    while (pos < size && !(c->ask & CHOPIN__CONN_CLOSE)) {
        size_t n = 1 + (size_t)((shape * 31u + step * 7u) % 197u);
        if (n > size - pos)
            n = size - pos;
        char *buf = malloc(n);
        memcpy(buf, data + pos, n);
        if (chopin__conn_wants_read(c) || c->phase == CHOPIN__PHASE_LINGER)
            chopin__conn_on_data(c, buf, n);
        pos += n;
        free(buf);
        drain(c);
        if ((shape >> (1 + step % 7)) & 1)
            chopin__observe_turn(&e);
        step++;
    }
    if (!(c->ask & CHOPIN__CONN_CLOSE))
        chopin__conn_on_eof(c);
    drain(c);
    chopin__engine_conn_free(&e, c);
    uint64_t want = answers(&e);
    chopin__engine_destroy(&e); /* writes what the log still holds */
    check_log(fd, want);
    close(fd);
    c_cfg->access_fd = -1;
    return 0;
}
