/* SPDX-License-Identifier: MIT */
/*
 * The engine through real sockets: keep-alive, versions, pipelining, bodies, framing
 * errors, timeouts, slab limits, shutdown. Runs once per backend (CHOPIN_BACKEND).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "conn.h"
#include "http/message.h"
#include "test.h"

static int port;
static chopin_server *server;
static int owned_freed;

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

static void echo(chopin_req *req, chopin_res *res, void *data) {
    chopin_str body = chopin_req_body(req);
    chopin_res_copy(res, 200, "application/octet-stream", body.ptr, body.len);
}

static void nodelay(chopin_req *req, chopin_res *res, void *data) {
    int v = -1;
    socklen_t len = sizeof v;
    getsockopt(chopin__conn_fd(req->conn), IPPROTO_TCP, TCP_NODELAY, &v, &len);
    chopin_res_text(res, 200, v ? "nodelay" : "delay");
}

static void silent(chopin_req *req, chopin_res *res, void *data) {}

static void half_json(chopin_req *req, chopin_res *res, void *data) {
    chopin_json *j = chopin_res_json(res, 200);
    chopin_json_obj_begin(j); /* and never ended */
}

static char big[300000];
static void big_static(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "application/octet-stream", big, sizeof big);
}

static void free_counted(void *p, void *arg) {
    free(p);
    __atomic_add_fetch(&owned_freed, 1, __ATOMIC_SEQ_CST);
}

static void owned(chopin_req *req, chopin_res *res, void *data) {
    char *p = malloc(5);
    memcpy(p, "owned", 5);
    chopin_res_owned(res, 200, "text/plain", p, 5, free_counted, NULL);
}

static char file_path[64];
static void file(chopin_req *req, chopin_res *res, void *data) {
    int fd = open(file_path, O_RDONLY | O_CLOEXEC);
    chopin_res_fd(res, 200, "application/octet-stream", fd, 10, 100000, 1);
}

struct counter {
    int left;
};
static long produce(void *state, char *buf, size_t cap) {
    struct counter *c = state;
    if (c->left == 0)
        return 0;
    c->left--;
    return snprintf(buf, cap, "chunk%d;", c->left);
}
static void stream(chopin_req *req, chopin_res *res, void *data) {
    /* The producer runs after the handler returned: its state must outlive the call. */
    static __thread struct counter st;
    st.left = 5;
    chopin_res_stream(res, 200, "text/plain", produce, NULL, &st);
}

static void slow(chopin_req *req, chopin_res *res, void *data) {
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    chopin_res_text(res, 200, "slow done");
}

static chopin_router *make_router(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/plaintext", plaintext, NULL);
    chopin_router_post(r, "/echo", echo, NULL);
    chopin_router_get(r, "/nodelay", nodelay, NULL);
    chopin_router_get(r, "/silent", silent, NULL);
    chopin_router_get(r, "/halfjson", half_json, NULL);
    chopin_router_get(r, "/big", big_static, NULL);
    chopin_router_get(r, "/owned", owned, NULL);
    chopin_router_get(r, "/file", file, NULL);
    chopin_router_get(r, "/stream", stream, NULL);
    chopin_router_get(r, "/slow", slow, NULL);
    return r;
}

/* Sends `req` on a new connection and reads one response into r; returns the status. */
static int exchange(const char *req, struct cl_resp *r) {
    struct cl_conn *c = cl_open(port);
    if (!c)
        return -1;
    int st = cl_send(c, req, 0) == 0 && cl_read(c, r, 0) == 0 ? r->status : -1;
    cl_close(c);
    return st;
}

static void test_keep_alive(void) {
    struct cl_conn *c = cl_open(port);
    struct cl_resp r;
    for (int i = 0; i < 3; i++) {
        CHECK(cl_send(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 0) == 0);
        CHECK(cl_read(c, &r, 0) == 0);
        CHECK_INT(r.status, 200);
        CHECK_MEM(r.body, r.body_len, "Hello, World!");
        char v[64];
        CHECK(cl_header(&r, "Date", v, sizeof v) == 0 && strlen(v) == 29);
        CHECK(cl_header(&r, "Content-Type", v, sizeof v) == 0 && strcmp(v, "text/plain") == 0);
        CHECK(cl_header(&r, "Connection", v, sizeof v) != 0);
        cl_resp_free(&r);
    }
    cl_close(c);
}

static void test_http10(void) {
    struct cl_conn *c = cl_open(port);
    struct cl_resp r;
    CHECK(cl_send(c, "GET /plaintext HTTP/1.0\r\n\r\n", 0) == 0);
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK_INT(r.status, 200);
    char v[64];
    CHECK(cl_header(&r, "Connection", v, sizeof v) == 0 && strcmp(v, "close") == 0);
    CHECK(cl_closed(c));
    cl_resp_free(&r);
    cl_close(c);

    c = cl_open(port); /* 1.0 with keep-alive stays open */
    /* After a 1.1 answer in the same read, whose head (no Connection header) the worker
     * caches: the 1.0 answer must still say keep-alive. */
    CHECK(cl_send(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"
                     "GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0) == 0);
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK(cl_header(&r, "Connection", v, sizeof v) != 0);
    cl_resp_free(&r);
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK(cl_header(&r, "Connection", v, sizeof v) == 0 && strcmp(v, "keep-alive") == 0);
    cl_resp_free(&r);
    for (int i = 0; i < 2; i++) {
        CHECK(cl_send(c, "GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0) == 0);
        CHECK(cl_read(c, &r, 0) == 0);
        CHECK(cl_header(&r, "Connection", v, sizeof v) == 0 && strcmp(v, "keep-alive") == 0);
        cl_resp_free(&r);
    }
    cl_close(c);
}

static void test_connection_close(void) {
    struct cl_conn *c = cl_open(port);
    struct cl_resp r;
    CHECK(cl_send(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0) == 0);
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK_INT(r.status, 200);
    char v[64];
    CHECK(cl_header(&r, "Connection", v, sizeof v) == 0 && strcmp(v, "close") == 0);
    CHECK(cl_closed(c));
    cl_resp_free(&r);
    cl_close(c);
}

static void test_head_and_404(void) {
    struct cl_conn *c = cl_open(port);
    struct cl_resp r;
    /* The GET first, in the same read: its head is then the worker's cached one, which the
     * HEAD answer must not take with the body that goes with it. */
    CHECK(cl_send(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"
                     "HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 0) == 0);
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK_INT(r.status, 200);
    CHECK_MEM(r.body, r.body_len, "Hello, World!");
    cl_resp_free(&r);
    CHECK(cl_read(c, &r, 1) == 0);
    CHECK_INT(r.status, 200);
    char v[64];
    CHECK(cl_header(&r, "Content-Length", v, sizeof v) == 0 && strcmp(v, "13") == 0);
    cl_resp_free(&r);
    /* The next response must start right after the head: no body was sent. */
    CHECK(cl_send(c, "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", 0) == 0);
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK_INT(r.status, 404);
    cl_resp_free(&r);
    cl_close(c);
}

static void test_pipelined_100(void) {
    static char batch[100 * 64];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(batch + n, "GET /plaintext HTTP/1.1\r\nHost: %d\r\n\r\n", i);
    struct cl_conn *c = cl_open(port);
    CHECK(cl_send(c, batch, n) == 0);
    int ok = 0;
    for (int i = 0; i < 100; i++) {
        struct cl_resp r;
        if (cl_read(c, &r, 0) == 0 && r.status == 200 && r.body_len == 13)
            ok++;
        cl_resp_free(&r);
    }
    CHECK_INT(ok, 100);
    cl_close(c);
}

static void test_dribble(void) {
    const char *req = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    struct cl_conn *c = cl_open(port);
    for (const char *p = req; *p; p++)
        CHECK(cl_send(c, p, 1) == 0);
    struct cl_resp r;
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK_INT(r.status, 200);
    CHECK_MEM(r.body, r.body_len, "hello");
    cl_resp_free(&r);
    cl_close(c);
}

static void test_echo_1mib(void) {
    size_t n = 1 << 20;
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    struct cl_conn *c = cl_open(port);
    char head[128];
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n", n);
    CHECK(cl_send(c, head, 0) == 0);
    CHECK(cl_send(c, body, n) == 0);
    struct cl_resp r;
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK_INT(r.status, 200);
    CHECK(r.body_len == n && memcmp(r.body, body, n) == 0);
    cl_resp_free(&r);
    cl_close(c);
    free(body);
}

static void test_chunked_echo(void) {
    struct cl_conn *c = cl_open(port);
    CHECK(cl_send(c, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5;ext=1\r\nhello\r\n", 0) == 0);
    CHECK(cl_send(c, "6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n", 0) == 0);
    struct cl_resp r;
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK_INT(r.status, 200);
    CHECK_MEM(r.body, r.body_len, "hello world");
    cl_resp_free(&r);
    /* The connection is still in sync after the trailers. */
    CHECK(cl_send(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 0) == 0);
    CHECK(cl_read(c, &r, 0) == 0 && r.status == 200);
    cl_resp_free(&r);
    cl_close(c);
}

static void test_expect_continue(void) {
    struct cl_conn *c = cl_open(port);
    CHECK(cl_send(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", 0) == 0);
    struct cl_resp r;
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK_INT(r.status, 100);
    cl_resp_free(&r);
    CHECK(cl_send(c, "abc", 3) == 0);
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK_INT(r.status, 200);
    CHECK_MEM(r.body, r.body_len, "abc");
    cl_resp_free(&r);
    cl_close(c);
}

/* A bad request after a good one in the same send: the good one is answered, the bad
 * one gets its status, and the connection closes. */
static void test_bad_request_in_pipeline(void) {
    struct cl_conn *c = cl_open(port);
    CHECK(cl_send(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"
                     "GET /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 0) == 0);
    struct cl_resp r;
    CHECK(cl_read(c, &r, 0) == 0 && r.status == 200);
    cl_resp_free(&r);
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK_INT(r.status, 400);
    char v[64];
    CHECK(cl_header(&r, "Connection", v, sizeof v) == 0 && strcmp(v, "close") == 0);
    cl_resp_free(&r);
    CHECK(cl_closed(c));
    cl_close(c);
}

static void test_statuses(void) {
    struct cl_resp r;
    CHECK_INT(exchange("GET /plaintext HTTP/2.0\r\nHost: a\r\n\r\n", &r), 505);
    cl_resp_free(&r);
    CHECK_INT(exchange("GET /plaintext HTTP/1.1\r\n\r\n", &r), 400); /* no Host */
    cl_resp_free(&r);
    CHECK_INT(exchange("GET /silent HTTP/1.1\r\nHost: a\r\n\r\n", &r), 500);
    cl_resp_free(&r);
    CHECK_INT(exchange("GET /halfjson HTTP/1.1\r\nHost: a\r\n\r\n", &r), 500);
    cl_resp_free(&r);
    static char longline[10000];
    memcpy(longline, "GET /", 5);
    memset(longline + 5, 'a', sizeof longline - 6);
    CHECK_INT(exchange(longline, &r), 414);
    cl_resp_free(&r);
}

static void test_pipelined_close_stops(void) {
    struct cl_conn *c = cl_open(port);
    CHECK(cl_send(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                     "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 0) == 0);
    struct cl_resp r;
    CHECK(cl_read(c, &r, 0) == 0 && r.status == 200);
    cl_resp_free(&r);
    CHECK(cl_closed(c));
    cl_close(c);
}

static void test_bodies(void) {
    struct cl_resp r;
    CHECK_INT(exchange("GET /big HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    CHECK(r.body_len == sizeof big && memcmp(r.body, big, sizeof big) == 0);
    cl_resp_free(&r);

    int before = __atomic_load_n(&owned_freed, __ATOMIC_SEQ_CST);
    CHECK_INT(exchange("GET /owned HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    CHECK_MEM(r.body, r.body_len, "owned");
    cl_resp_free(&r);
    /* HEAD drops an owned body: it must be freed all the same. */
    struct cl_conn *c = cl_open(port);
    CHECK(cl_send(c, "HEAD /owned HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 0) == 0);
    CHECK(cl_read(c, &r, 1) == 0 && r.status == 200);
    cl_resp_free(&r);
    CHECK(cl_read(c, &r, 0) == 0 && r.status == 200);
    cl_resp_free(&r);
    cl_close(c);
    CHECK_INT(__atomic_load_n(&owned_freed, __ATOMIC_SEQ_CST), before + 2);

    CHECK_INT(exchange("GET /file HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    int fd = open(file_path, O_RDONLY);
    char *want = malloc(100000);
    CHECK(pread(fd, want, 100000, 10) == 100000);
    close(fd);
    CHECK(r.body_len == 100000 && memcmp(r.body, want, 100000) == 0);
    free(want);
    cl_resp_free(&r);

    CHECK_INT(exchange("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    CHECK(r.chunked);
    CHECK_MEM(r.body, r.body_len, "chunk4;chunk3;chunk2;chunk1;chunk0;");
    cl_resp_free(&r);
}

static void test_nodelay_inherited(void) {
    struct cl_resp r;
    CHECK_INT(cl_get(port, "/nodelay", &r), 200);
    CHECK_MEM(r.body, r.body_len, "nodelay");
    cl_resp_free(&r);
}

static void test_ipv6(void) {
    chopin_router *r = make_router();
    chopin_options o = chopin_options_default();
    o.workers = 1;
    o.quiet = 1;
    chopin_server *s;
    int rc = chopin_server_start(r, "[::1]:0", &o, &s);
    if (rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL) { /* no IPv6 on this host */
        chopin_router_free(r);
        return;
    }
    CHECK_INT(rc, 0);
    struct cl_conn *c = cl_open6(chopin_server_port(s));
    CHECK(c != NULL);
    struct cl_resp resp;
    CHECK(c && cl_send(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 0) == 0);
    CHECK(c && cl_read(c, &resp, 0) == 0 && resp.status == 200);
    cl_resp_free(&resp);
    cl_close(c);
    cl_stop(s);
    chopin_router_free(r);
}

static void test_bind_errors(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 && listen(fd, 1) == 0);
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sin.sin_port));
    chopin_router *r = make_router();
    chopin_options o = chopin_options_default();
    o.quiet = 1;
    o.workers = 1;
    chopin_server *s;
    CHECK_INT(chopin_server_start(r, addr, &o, &s), -EADDRINUSE);
    CHECK_INT(chopin_server_start(r, "127.0.0.1:notaport", &o, &s), -EINVAL);
    CHECK_INT(chopin_server_start(r, "no-such-host.invalid:80", &o, &s), -EINVAL);
    close(fd);
    chopin_router_free(r);
}

/* Capacity 1: a newcomer takes the slot of the connection that has made the least
 * progress (README, "Slab full"): a half-sent head is answered 408 and closed, or, had its
 * head completed first, it is answered and then evicted as idle. Either way the newcomer
 * is served and the first connection ends closed; which way is a race, so only that is
 * asserted (test_slowloris covers the eviction order). */
static void test_slab_full(void) {
    chopin_router *r = make_router();
    chopin_options o = chopin_options_default();
    o.slab_capacity = 1;
    chopin_server *s = cl_start(r, &o);
    int p = chopin_server_port(s);
    struct cl_conn *a = cl_open(p);
    CHECK(cl_send(a, "GET /plaintext HTTP/1.1\r\n", 0) == 0); /* half a request */
    struct cl_conn *b = cl_open(p);
    CHECK(cl_send(b, "GET /plaintext HTTP/1.1\r\nHost: b\r\n\r\n", 0) == 0);
    cl_send(a, "Host: a\r\n\r\n", 0); /* may meet a closed socket */
    struct cl_resp resp;
    CHECK(cl_read(b, &resp, 0) == 0 && resp.status == 200);
    cl_resp_free(&resp);
    if (cl_read(a, &resp, 0) == 0) {
        CHECK(resp.status == 200 || resp.status == 408);
        cl_resp_free(&resp);
    }
    CHECK(cl_closed(a));
    cl_close(a);
    cl_close(b);
    cl_stop(s);
    chopin_router_free(r);
}

static void test_timeouts(void) {
    chopin_router *r = make_router();
    chopin_options o = chopin_options_default();
    o.keepalive_timeout_ms = 200;
    o.header_timeout_ms = 300;
    chopin_server *s = cl_start(r, &o);
    int p = chopin_server_port(s);
    /* Idle keep-alive: closed after the timeout. */
    struct cl_conn *c = cl_open(p);
    struct cl_resp resp;
    CHECK(cl_send(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 0) == 0);
    CHECK(cl_read(c, &resp, 0) == 0 && resp.status == 200);
    cl_resp_free(&resp);
    CHECK(cl_closed(c));
    cl_close(c);
    /* Slowloris: a trickle does not extend the header deadline; 408 then close. */
    c = cl_open(p);
    CHECK(cl_send(c, "GET /plaintext HTTP/1.1\r\n", 0) == 0);
    for (int i = 0; i < 6; i++) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (cl_send(c, "X", 1) < 0)
            break;
    }
    CHECK(cl_read(c, &resp, 0) == 0);
    CHECK_INT(resp.status, 408);
    cl_resp_free(&resp);
    CHECK(cl_closed(c));
    cl_close(c);
    cl_stop(s);
    chopin_router_free(r);
}

struct slow_client {
    int port;
    int status;
};

static void *slow_request(void *arg) {
    struct slow_client *sc = arg;
    struct cl_conn *c = cl_open(sc->port);
    struct cl_resp r;
    sc->status = -1;
    if (c && cl_send(c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n", 0) == 0 && cl_read(c, &r, 0) == 0) {
        sc->status = r.status;
        cl_resp_free(&r);
    }
    cl_close(c);
    return NULL;
}

/* Stop while a request is in flight: it is answered (with Connection: close), idle
 * connections are closed, and the server stops with success. */
static void test_graceful_shutdown(void) {
    chopin_router *r = make_router();
    chopin_server *s = cl_start(r, NULL);
    int p = chopin_server_port(s);
    struct cl_conn *idle = cl_open(p);
    struct cl_resp resp;
    CHECK(cl_send(idle, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 0) == 0);
    CHECK(cl_read(idle, &resp, 0) == 0);
    cl_resp_free(&resp);
    struct slow_client sc = {.port = p};
    pthread_t t;
    pthread_create(&t, NULL, slow_request, &sc);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
    nanosleep(&ts, NULL); /* let the request reach the handler */
    chopin_server_stop(s);
    CHECK_INT(chopin_server_wait(s), 0);
    pthread_join(t, NULL);
    /* The handler was running when the stop arrived: its answer still went out. */
    CHECK_INT(sc.status, 200);
    CHECK(cl_closed(idle));
    cl_close(idle);
    chopin_router_free(r);
}

int main(void) {
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7);
    snprintf(file_path, sizeof file_path, "/tmp/chopin-test-%d", (int)getpid());
    int fd = open(file_path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    static char fbuf[200000];
    for (size_t i = 0; i < sizeof fbuf; i++)
        fbuf[i] = (char)(i * 13 + 1);
    if (write(fd, fbuf, sizeof fbuf) != (ssize_t)sizeof fbuf)
        return 1;
    close(fd);

    chopin_router *r = make_router();
    server = cl_start(r, NULL);
    if (!server)
        return 1;
    port = chopin_server_port(server);

    RUN(test_keep_alive);
    RUN(test_http10);
    RUN(test_connection_close);
    RUN(test_head_and_404);
    RUN(test_pipelined_100);
    RUN(test_dribble);
    RUN(test_echo_1mib);
    RUN(test_chunked_echo);
    RUN(test_expect_continue);
    RUN(test_bad_request_in_pipeline);
    RUN(test_statuses);
    RUN(test_pipelined_close_stops);
    RUN(test_bodies);
    RUN(test_nodelay_inherited);
    cl_stop(server);
    chopin_router_free(r);

    RUN(test_ipv6);
    RUN(test_bind_errors);
    RUN(test_slab_full);
    RUN(test_timeouts);
    RUN(test_graceful_shutdown);
    unlink(file_path);
    TEST_END();
}
