/* SPDX-License-Identifier: MIT */
/*
 * Liveness and readiness over real sockets (issue 19): both 200 while serving; the
 * application's check makes readiness 503; once the server is asked to stop, requests
 * still in flight see readiness fail (503) while liveness holds (200).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

static int warm = 1;

static int is_warm(void *arg) { return __atomic_load_n((int *)arg, __ATOMIC_SEQ_CST); }

static const chopin_health_options health = {
    .live_path = "/healthz", .ready_path = "/readyz", .check = is_warm, .arg = &warm};

static int get(int port, const char *path, char *body, size_t cap) {
    struct cl_resp r;
    int st = cl_get(port, path, &r);
    body[0] = '\0';
    if (st > 0) {
        snprintf(body, cap, "%.*s", (int)r.body_len, r.body);
        cl_resp_free(&r);
    }
    return st;
}

static void test_health(void) {
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_health_routes(r, &health), 0);
    CHECK_INT(chopin_health_routes(r, &(chopin_health_options){0}), CHOPIN_EINVAL);
    chopin_options o = chopin_options_default();
    o.shutdown_timeout_ms = 5000;
    chopin_server *s = cl_start(r, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    int port = chopin_server_port(s);
    char body[64];
    CHECK_INT(get(port, "/healthz", body, sizeof body), 200);
    CHECK_STR(body, "ok\n");
    CHECK_INT(get(port, "/readyz", body, sizeof body), 200);
    CHECK_STR(body, "ready\n");
    __atomic_store_n(&warm, 0, __ATOMIC_SEQ_CST);
    CHECK_INT(get(port, "/readyz", body, sizeof body), 503);
    CHECK_STR(body, "not ready\n");
    CHECK_INT(get(port, "/healthz", body, sizeof body), 200);
    __atomic_store_n(&warm, 1, __ATOMIC_SEQ_CST);

    /* Two requests in flight (heads not finished) when the stop comes. */
    struct cl_conn *ready = cl_open(port), *live = cl_open(port);
    CHECK(ready && live);
    if (!ready || !live)
        return;
    CHECK_INT(cl_send(ready, "GET /readyz HTTP/1.1\r\nHost: x\r\n", 0), 0);
    CHECK_INT(cl_send(live, "GET /healthz HTTP/1.1\r\nHost: x\r\n", 0), 0);
    usleep(50000);
    chopin_server_stop(s);
    usleep(50000);
    struct cl_resp rr, lr;
    CHECK_INT(cl_send(ready, "\r\n", 0), 0);
    CHECK_INT(cl_send(live, "\r\n", 0), 0);
    CHECK_INT(cl_read(ready, &rr, 0), 0);
    CHECK_INT(cl_read(live, &lr, 0), 0);
    CHECK_INT(rr.status, 503);
    CHECK_MEM(rr.body, rr.body_len, "draining\n");
    CHECK_INT(lr.status, 200);
    CHECK_MEM(lr.body, lr.body_len, "ok\n");
    char cache[32] = "";
    cl_header(&rr, "Cache-Control", cache, sizeof cache);
    CHECK_STR(cache, "no-store");
    cl_resp_free(&rr);
    cl_resp_free(&lr);
    cl_close(ready);
    cl_close(live);
    chopin_server_wait(s);
    chopin_router_free(r);
}

int main(void) {
    RUN(test_health);
    TEST_END();
}
