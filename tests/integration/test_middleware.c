/* SPDX-License-Identifier: MIT */
/*
 * Middleware over a real socket (issue 12, points 3 and 10).
 *
 * An "/api" auth middleware beside a wildcard route that serves every path: whatever
 * spelling of the path a client sends (percent-encoded, with dot segments, an encoded
 * '/'), and whatever the router would have answered (a route, 404, 405), the middleware
 * answers first. And a global access-log middleware that sees every answer, including
 * those to requests refused before routing (400, 414, 431, 413, 501, 505, and the 408 of
 * a client too slow to send its head), after which the connection still closes without
 * reading the bytes that follow, even when a middleware tried to make the answer a 200.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "test.h"

#define MAX_LINE 256
#define MAX_HEAD 1024
#define MAX_BODY 64

static int port;
static int slow_port; /* a header deadline of 1 s, for the 408 */
static int logged; /* answers the access log saw */
static int files_served;

/* The wildcard route: any file, no checks of its own. */
static void file(chopin_req *req, chopin_res *res, void *data) {
    __atomic_add_fetch(&files_served, 1, __ATOMIC_SEQ_CST);
    chopin_str p = chopin_req_param(req, "path");
    char buf[256];
    int n = snprintf(buf, sizeof buf, "file:%.*s", (int)p.len, p.ptr);
    chopin_res_copy(res, 200, "text/plain", buf, (size_t)n);
}

static void auth(chopin_req *req, chopin_res *res, chopin_next *next, void *data) {
    chopin_str token = chopin_req_header(req, "authorization");
    if (token.len == 6 && memcmp(token.ptr, "Bearer", 6) == 0) {
        chopin_next_run(next);
        return;
    }
    chopin_res_text(res, 401, "login first");
}

static void access_log(chopin_req *req, chopin_res *res, chopin_next *next, void *data) {
    chopin_next_run(next);
    __atomic_add_fetch(&logged, 1, __ATOMIC_SEQ_CST);
    char status[16];
    snprintf(status, sizeof status, "%d", chopin_res_status(res));
    chopin_res_header_add(res, "X-Logged", status);
}

/* Outermost, on refused requests only (their method is ""): restyles a 414, and tries to
 * turn a 505 into a 200, which the connection must not let through. */
static void restyle(chopin_req *req, chopin_res *res, chopin_next *next, void *data) {
    chopin_next_run(next);
    if (chopin_req_method_str(req).len != 0)
        return;
    if (chopin_res_status(res) == 414)
        chopin_res_text(res, 414, "shorter, please");
    else if (chopin_res_status(res) == 505)
        chopin_res_text(res, 200, "fine");
}

static int logged_now(void) { return __atomic_load_n(&logged, __ATOMIC_SEQ_CST); }

/* Sends `req` on a new connection; returns the answer's status (-1: none) and its
 * X-Logged header in `log` ("" when absent). */
static int exchange(const char *req, size_t len, struct cl_resp *r, char *log, size_t cap) {
    struct cl_conn *c = cl_open(port);
    if (!c)
        return -1;
    int status = -1;
    log[0] = '\0';
    if (cl_send(c, req, len) == 0 && cl_read(c, r, 0) == 0) {
        status = r->status;
        if (cl_header(r, "X-Logged", log, cap) != 0)
            log[0] = '\0';
    }
    cl_close(c);
    return status;
}

static void test_auth_holds(void) {
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"GET /api/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 401},
        {"GET /api HTTP/1.1\r\nHost: x\r\n\r\n", 401},
        {"GET /public/../api/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 401},
        {"GET /public/%2e%2E/api/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 401},
        {"GET /%61pi/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 401},
        {"GET /api%2Fsecret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 401},
        {"GET http://x/api/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 401},
        {"DELETE /api/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 401}, /* a 405 under /api */
        {"GET /apix/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 200},
        {"GET /public/a.txt HTTP/1.1\r\nHost: x\r\n\r\n", 200},
        {"GET /api/secret.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n\r\n", 200},
        {"DELETE /api/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n\r\n", 405},
        {"GET /public/../../api/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET /public/..%2Fapi/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    };
    int served = __atomic_load_n(&files_served, __ATOMIC_SEQ_CST), allowed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cl_resp r;
        char log[16], want[16];
        int st = exchange(cases[i].req, strlen(cases[i].req), &r, log, sizeof log);
        snprintf(want, sizeof want, "%d", cases[i].status);
        if (st != cases[i].status || strcmp(log, want) != 0) {
            fprintf(stderr, "  %.*s: %d (logged \"%s\"), expected %d\n",
                    (int)strcspn(cases[i].req, "\r"), cases[i].req, st, log, cases[i].status);
            CHECK(0);
        }
        allowed += st == 200;
        if (st >= 0)
            cl_resp_free(&r);
    }
    CHECK_INT(__atomic_load_n(&files_served, __ATOMIC_SEQ_CST) - served, allowed);
}

/* The handler sees the normalised path: the file it is asked for is the one auth saw. */
static void test_handler_sees_normalised_path(void) {
    struct cl_resp r;
    char log[16];
    static const char req[] = "GET /public/x/../%2e/b.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_INT(exchange(req, sizeof req - 1, &r, log, sizeof log), 200);
    CHECK_MEM(r.body, r.body_len, "file:public/b.txt");
    cl_resp_free(&r);
}

/* A refused request: its answer passes the access log, closes the connection, and the
 * request pipelined behind it (none for the slow client, whose head never ends) is never
 * read. */
static void refused_check(int to, const char *name, const char *req, size_t len, int status,
                          const char *body, int log_kept) {
    int before = logged_now(), served = __atomic_load_n(&files_served, __ATOMIC_SEQ_CST);
    struct cl_conn *c = cl_open(to);
    CHECK(c != NULL);
    if (!c)
        return;
    static const char behind[] = "GET /public/behind.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    struct cl_resp r;
    char log[16] = "", conn[16] = "", want[16];
    int ok = cl_send(c, req, len) == 0 &&
             (to == slow_port || cl_send(c, behind, sizeof behind - 1) == 0) &&
             cl_read(c, &r, 0) == 0;
    if (ok) {
        cl_header(&r, "X-Logged", log, sizeof log);
        cl_header(&r, "Connection", conn, sizeof conn);
    }
    snprintf(want, sizeof want, "%d", log_kept ? status : 0);
    if (!log_kept)
        want[0] = '\0';
    if (!ok || r.status != status || strcmp(log, want) != 0 || strcmp(conn, "close") != 0 ||
        (body && (r.body_len != strlen(body) || memcmp(r.body, body, r.body_len) != 0))) {
        fprintf(stderr, "  %s: %d logged \"%s\" connection \"%s\", expected %d\n", name,
                ok ? r.status : -1, log, conn, status);
        CHECK(0);
    }
    if (ok)
        cl_resp_free(&r);
    CHECK(cl_closed(c));
    CHECK_INT(logged_now() - before, 1);
    CHECK_INT(__atomic_load_n(&files_served, __ATOMIC_SEQ_CST), served);
    cl_close(c);
}

static void refused(const char *name, const char *req, size_t len, int status) {
    refused_check(port, name, req, len, status, NULL, 1);
}

static void test_refused_pass_global_middleware(void) {
    static char long_line[MAX_LINE + 64], big_head[MAX_HEAD + 256];
    int n = snprintf(long_line, sizeof long_line, "GET /");
    memset(long_line + n, 'a', MAX_LINE);
    strcpy(long_line + n + MAX_LINE, " HTTP/1.1\r\nHost: x\r\n\r\n");
    n = snprintf(big_head, sizeof big_head, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big_head + n, 'b', MAX_HEAD);
    strcpy(big_head + n + MAX_HEAD, "\r\n\r\n");
#define R(s) s, sizeof(s) - 1
    refused("malformed header", R("GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"), 400);
    refused("bad request line", R("GET /a b c\r\n\r\n"), 400);
    refused_check(port, "long request line (restyled)", long_line, strlen(long_line), 414,
                  "shorter, please", 1);
    refused("large head", big_head, strlen(big_head), 431);
    refused("body too large",
            R("POST /public/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"), 413);
    refused("unknown transfer coding",
            R("POST /public/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
    /* made a 200 by a middleware: the plain refusal goes out instead, still closing */
    refused_check(port, "HTTP/2.0 request line (made 200)",
                  R("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505, "HTTP Version Not Supported", 0);
    refused_check(slow_port, "slow client", R("GET /public/a HTTP/1.1\r\nHost: x\r\n"), 408,
                  NULL, 1);
#undef R
}

int main(void) {
    chopin_router *rt = chopin_router_new();
    chopin_router_use(rt, NULL, restyle, NULL);
    chopin_router_use(rt, NULL, access_log, NULL);
    chopin_router_use(rt, "/api", auth, NULL);
    chopin_router_get(rt, "/*path", file, NULL);
    chopin_router_get(rt, "/api/x", file, NULL);
    chopin_options o = chopin_options_default();
    o.max_request_line = MAX_LINE;
    o.max_header_bytes = MAX_HEAD;
    o.max_body_bytes = MAX_BODY;
    chopin_server *s = cl_start(rt, &o);
    o.header_timeout_ms = 1000;
    chopin_server *slow = cl_start(rt, &o);
    if (!s || !slow)
        return 1;
    port = chopin_server_port(s);
    slow_port = chopin_server_port(slow);
    RUN(test_auth_holds);
    RUN(test_handler_sees_normalised_path);
    RUN(test_refused_pass_global_middleware);
    cl_stop(s);
    cl_stop(slow);
    chopin_router_free(rt);
    TEST_END();
}
