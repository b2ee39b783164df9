/*
 * The whole per-request path without sockets: parse, route, handler, serialize, output
 * plan, "sent". What is left of a request's cost once the kernel is taken away. Two
 * shapes: one request per read (keep-alive, no pipelining) and 16 pipelined per read.
 *
 *   valgrind --tool=callgrind build/bench/micro_conn 1   # instructions per request
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "router/router.h"

static const char TFB[] = "GET /plaintext HTTP/1.1\r\nHost: server\r\n"
                          "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20130501 Firefox/30.0 "
                          "AppleWebKit/600.00 Chrome/30.0.0000.0 Trident/10.0 Safari/600.00\r\n"
                          "Cookie: uid=12345678901234567890; __utma=1.1234567890.1234567890.1234567890.1234567890.12; wd=2560x1600\r\n"
                          "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n"
                          "Accept-Language: en-US,en;q=0.5\r\nConnection: keep-alive\r\n\r\n";

/* What wrk sends in bench/run.sh's /plaintext scenarios (bench/lib.sh, wrk_args). */
static const char BENCH_REQUEST[] =
    "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:40000\r\n"
    "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n"
    "Connection: keep-alive\r\n\r\n";

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

static void json(chopin_req *req, chopin_res *res, void *data) {
    chopin_json *j = chopin_res_json(res, 200);
    chopin_json_obj_begin(j);
    chopin_json_key(j, "message");
    chopin_json_str(j, "Hello, World!");
    chopin_json_obj_end(j);
    chopin_json_end(j);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
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

static double run(struct chopin__engine *e, const char *req, int depth, long rounds) {
    size_t one = strlen(req), n = one * (size_t)depth;
    char *batch = malloc(n), *scratch = malloc(n);
    for (int i = 0; i < depth; i++)
        memcpy(batch + (size_t)i * one, req, one);
    struct chopin__conn *c = chopin__engine_conn_new(e, -1);
    double t0 = now_ns();
    for (long r = 0; r < rounds; r++) {
        memcpy(scratch, batch, n); /* a read lands in the scratch buffer */
        chopin__conn_on_data(c, scratch, n);
        drain(c);
    }
    double ns = (now_ns() - t0) / ((double)rounds * depth);
    chopin__engine_conn_free(e, c);
    free(batch);
    free(scratch);
    return ns;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) * 1000 : 200000;
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/plaintext", plaintext, NULL);
    chopin_router_get(r, "/json", json, NULL);
    chopin__router_freeze(r);
    struct chopin__config cfg;
    chopin_options o = chopin_options_default();
    o.slab_capacity = 4;
    chopin__config_resolve(&cfg, &o);
    struct chopin__engine e;
    chopin__engine_init(&e, &cfg, r, 0, 1000);
    chopin__engine_set_clock(&e, 1000, time(NULL));

    /* argv[2] picks one scenario (0-4), for callgrind; without it all run. */
    int only = argc > 2 ? atoi(argv[2]) : -1;
    static const struct {
        const char *name;
        int req; /* 0: TechEmpower request, 1: short, 2: short /json */
        int depth;
    } scenarios[] = {{"plaintext, TechEmpower request", 0, 1},
                     {"plaintext, TFB request, 16 deep", 0, 16},
                     {"plaintext, short request", 1, 1},
                     {"json, short request", 2, 1},
                     {"plaintext, bench/run.sh request, 16 deep", 3, 16}};
    const char *reqs[] = {TFB, "GET /plaintext HTTP/1.1\r\nHost: server\r\nConnection: keep-alive\r\n\r\n",
                          "GET /json HTTP/1.1\r\nHost: server\r\nConnection: keep-alive\r\n\r\n",
                          BENCH_REQUEST};
    printf("%-42s %10s\n", "path (parse+route+handler+serialize)", "ns/request");
    for (int i = 0; i < (int)(sizeof scenarios / sizeof *scenarios); i++) {
        if (only >= 0 && i != only)
            continue;
        long n = scenarios[i].depth > 1 ? rounds / scenarios[i].depth + 1 : rounds;
        printf("%-42s %10.1f\n", scenarios[i].name, run(&e, reqs[scenarios[i].req], scenarios[i].depth, n));
    }
    chopin__engine_destroy(&e);
    chopin_router_free(r);
    return 0;
}
