/* SPDX-License-Identifier: MIT */
/*
 * The per-request cost of the operations features of issue 19 without sockets: one
 * request per read on a keep-alive connection (parse, route, handler, serialize, "sent",
 * then the loop turn's work), the request bench/run.sh sends (no User-Agent, no Referer)
 * and a browser's (both, 220 bytes of them, which the access log writes), with one
 * variant on:
 *   0 off, 1 access log (combined, to a file), 2 access log (JSON), 3 metrics route
 *   (histograms timed), 4 all of them and the request id middleware.
 * The log's write(2)s are made (one per 16 KiB of lines); their kernel time is not in the
 * instruction counts callgrind gives (bench/ops.sh takes the difference of two runs).
 *
 *   build/bench/micro_ops ROUNDS_IN_THOUSANDS [VARIANT [REQUEST]]   (REQUEST 0: wrk's, 1: a browser's)
 *   valgrind --tool=callgrind build/bench/micro_ops 20 1 1   # instructions
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "ops/observe.h"
#include "router/router.h"

static const char REQUEST[] =
    "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:40000\r\n"
    "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n"
    "Connection: keep-alive\r\n\r\n";

static const char BROWSER[] =
    "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:40000\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20130501 Firefox/30.0 AppleWebKit/600.00 "
    "Chrome/30.0.0000.0 Trident/10.0 Safari/600.00\r\n"
    "Referer: https://www.example.com/some/page?with=query\r\n"
    "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n"
    "Connection: keep-alive\r\n\r\n";

static const char *const names[] = {"off", "log", "log-json", "metrics", "all"};

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double run(int variant, const char *request, long rounds) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/plaintext", plaintext, NULL);
    if (variant >= 3)
        chopin_metrics_route(r, "/metrics");
    if (variant == 4)
        chopin_router_use(r, NULL, chopin_request_id, NULL);
    chopin__router_freeze(r);
    struct chopin__config cfg;
    chopin_options o = chopin_options_default();
    o.slab_capacity = 4;
    o.access_log_format = variant == 2 ? CHOPIN_ACCESS_LOG_JSON : CHOPIN_ACCESS_LOG_COMBINED;
    chopin__config_resolve(&cfg, &o);
    char path[] = "/tmp/chopin_micro_ops_XXXXXX";
    int fd = -1;
    if (variant == 1 || variant == 2 || variant == 4) {
        fd = mkstemp(path);
        unlink(path);
        cfg.access_fd = fd;
    }
    struct chopin__engine e;
    chopin__engine_init(&e, &cfg, r, 0, 1000);
    chopin__engine_set_clock(&e, 1000, time(NULL));
    struct chopin__conn *c = chopin__engine_conn_new(&e, -1);
    size_t len = strlen(request);
    char scratch[sizeof BROWSER];
    struct chopin__plan p;
    double t0 = now_ns();
    for (long i = 0; i < rounds; i++) {
        memcpy(scratch, request, len); /* a read lands in the scratch buffer */
        chopin__conn_on_data(c, scratch, len);
        while (chopin__conn_out_plan(c, &p) > 0)
            chopin__conn_on_sent(c, p.bytes);
        if (e.obs)
            chopin__observe_turn(&e); /* what the worker's loop does after each turn */
    }
    double ns = (now_ns() - t0) / (double)rounds;
    chopin__engine_conn_free(&e, c);
    chopin__engine_destroy(&e);
    chopin_router_free(r);
    if (fd >= 0)
        close(fd);
    return ns;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) * 1000 : 200000;
    int only = argc > 2 ? atoi(argv[2]) : -1;
    int which = argc > 3 ? atoi(argv[3]) : -1;
    const char *requests[] = {REQUEST, BROWSER};
    printf("%-10s %14s %14s\n", "variant", "ns/req (wrk)", "ns/req (browser)");
    for (int v = 0; v < 5; v++) {
        if (only >= 0 && only != v)
            continue;
        printf("%-10s", names[v]);
        for (int q = 0; q < 2; q++)
            if (which < 0 || which == q)
                printf(" %14.1f", run(v, requests[q], rounds));
        printf("\n");
    }
    return 0;
}
