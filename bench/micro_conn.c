/* SPDX-License-Identifier: MIT */
/*
 * The whole per-request path without sockets: parse, route, handler, serialize, output
 * plan, "sent". What is left of a request's cost once the kernel is taken away. Shapes:
 * one request per read (keep-alive, no pipelining), 16 pipelined per read, a 64 KiB
 * upload arriving in 4 KiB reads (Content-Length and chunked), and a 16 KiB copied answer.
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

/* Answers an upload without looking at it: the cost measured is reading the body. */
static void upload(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "ok", 2);
}

/* A 16 KiB answer the handler builds on its stack: chopin_res_copy must copy it. */
static void big_copy(chopin_req *req, chopin_res *res, void *data) {
    char body[16384];
    memset(body, 'x', sizeof body);
    chopin_res_copy(res, 200, "text/plain", body, sizeof body);
}

#define UPLOAD_BYTES 65536
#define UPLOAD_READ 4096

/* A POST of UPLOAD_BYTES, framed by Content-Length or as 4 KiB chunks. Caller frees. */
static char *upload_request(int chunked, size_t *len) {
    char *r = malloc(2 * UPLOAD_BYTES), *p = r;
    p += sprintf(p, "POST /upload HTTP/1.1\r\nHost: server\r\n%s\r\n",
                 chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: 65536\r\n");
    for (size_t done = 0; done < UPLOAD_BYTES; done += 4096) {
        if (chunked)
            p += sprintf(p, "1000\r\n");
        memset(p, 'u', 4096);
        p += 4096;
        if (chunked)
            p += sprintf(p, "\r\n");
    }
    if (chunked)
        p += sprintf(p, "0\r\n\r\n");
    *len = (size_t)(p - r);
    return r;
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

/* One request of `one` bytes per round, delivered `piece` bytes per read (0: all at once),
 * or `depth` copies of it in one read. */
static double run(struct chopin__engine *e, const char *req, size_t one, int depth,
                  size_t piece, long rounds) {
    size_t n = one * (size_t)depth;
    char *batch = malloc(n), *scratch = malloc(n);
    for (int i = 0; i < depth; i++)
        memcpy(batch + (size_t)i * one, req, one);
    struct chopin__conn *c = chopin__engine_conn_new(e, -1);
    double t0 = now_ns();
    for (long r = 0; r < rounds; r++) {
        memcpy(scratch, batch, n); /* a read lands in the scratch buffer */
        for (size_t off = 0; off < n; off += piece ? piece : n)
            chopin__conn_on_data(c, scratch + off, piece && n - off > piece ? piece : n - off);
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
    chopin_router_post(r, "/upload", upload, NULL);
    chopin_router_get(r, "/big", big_copy, NULL);
    chopin__router_freeze(r);
    struct chopin__config cfg;
    chopin_options o = chopin_options_default();
    o.slab_capacity = 4;
    chopin__config_resolve(&cfg, &o);
    struct chopin__engine e;
    chopin__engine_init(&e, &cfg, r, 0, 1000);
    chopin__engine_set_clock(&e, 1000, time(NULL));

    /* argv[2] picks one scenario (0-7), for callgrind; without it all run. */
    int only = argc > 2 ? atoi(argv[2]) : -1;
    static const struct {
        const char *name;
        int req; /* an index into reqs below */
        int depth;
        size_t piece; /* bytes per read, 0: the whole request in one */
    } scenarios[] = {{"plaintext, TechEmpower request", 0, 1, 0},
                     {"plaintext, TFB request, 16 deep", 0, 16, 0},
                     {"plaintext, short request", 1, 1, 0},
                     {"json, short request", 2, 1, 0},
                     {"plaintext, bench/run.sh request, 16 deep", 3, 16, 0},
                     {"64 KiB Content-Length upload, 4 KiB reads", 4, 1, UPLOAD_READ},
                     {"64 KiB chunked upload, 4 KiB reads", 5, 1, UPLOAD_READ},
                     {"16 KiB chopin_res_copy answer", 6, 1, 0}};
    size_t cl_len, chunked_len;
    char *cl_upload = upload_request(0, &cl_len), *chunked_upload = upload_request(1, &chunked_len);
    const char *reqs[] = {TFB, "GET /plaintext HTTP/1.1\r\nHost: server\r\nConnection: keep-alive\r\n\r\n",
                          "GET /json HTTP/1.1\r\nHost: server\r\nConnection: keep-alive\r\n\r\n",
                          BENCH_REQUEST, cl_upload, chunked_upload,
                          "GET /big HTTP/1.1\r\nHost: server\r\n\r\n"};
    size_t lens[] = {0, 0, 0, 0, cl_len, chunked_len, 0};
    printf("%-42s %10s\n", "path (parse+route+handler+serialize)", "ns/request");
    for (int i = 0; i < (int)(sizeof scenarios / sizeof *scenarios); i++) {
        if (only >= 0 && i != only)
            continue;
        long n = scenarios[i].depth > 1 ? rounds / scenarios[i].depth + 1 : rounds;
        int q = scenarios[i].req;
        size_t one = lens[q] ? lens[q] : strlen(reqs[q]);
        printf("%-42s %10.1f\n", scenarios[i].name,
               run(&e, reqs[q], one, scenarios[i].depth, scenarios[i].piece, n));
    }
    free(cl_upload);
    free(chunked_upload);
    chopin__engine_destroy(&e);
    chopin_router_free(r);
    return 0;
}
