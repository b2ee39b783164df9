/* SPDX-License-Identifier: MIT */
/*
 * What the README and docs/hardening.md promise, over real sockets (issue 13, points 6
 * and 7): which refusals close the connection and which keep it (the router's 400, 404
 * and 405 keep it: the request was framed; the parser's 400 closes it: the framing is
 * lost), `OPTIONS *` answered for the server, a fragment in the target refused, and the
 * write deadline counting from the last send the kernel accepted. Runs once per backend
 * (CHOPIN_BACKEND).
 *
 * No assertion depends on timing: the write-deadline case checks that the connection is
 * dropped while the client still reads, waited for with a bound many deadlines long.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

static void plain(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_text(res, 200, "a");
}

/* Global middleware: marks every answer, refused ones included. */
static void mark(chopin_req *req, chopin_res *res, chopin_next *next, void *data) {
    chopin_next_run(next);
    chopin_res_header_add(res, "X-Global", "1");
}

/* Far more than any socket buffer on either side. */
#define BIG_LEN (16u << 20)
static char big_body[BIG_LEN];
static void big(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "application/octet-stream", big_body, BIG_LEN);
}

static chopin_router *make_router(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/a", plain, NULL);
    chopin_router_post(r, "/a", plain, NULL);
    chopin_router_get(r, "/big", big, NULL);
    chopin_router_use(r, NULL, mark, NULL);
    return r;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static uint64_t open_connections(chopin_server *s) {
    chopin_stats st;
    chopin_server_stats(s, &st);
    return st.connections_open;
}

/* Reads one answer: its status, whether it says Connection: close, and a header. */
struct answer {
    int status;
    int closing;
    char allow[128];
    char global[8];
    size_t body_len;
};

static int read_answer(struct cl_conn *c, struct answer *a) {
    struct cl_resp r;
    memset(a, 0, sizeof *a);
    if (cl_read(c, &r, 0) < 0)
        return 0;
    char v[64] = "";
    a->status = r.status;
    a->closing = cl_header(&r, "Connection", v, sizeof v) == 0 && strcmp(v, "close") == 0;
    cl_header(&r, "Allow", a->allow, sizeof a->allow);
    cl_header(&r, "X-Global", a->global, sizeof a->global);
    a->body_len = r.body_len;
    cl_resp_free(&r);
    return 1;
}

/* One request on `c`; 1 when it gets `status`, keeps the connection open and went
 * through the global middleware. */
static int kept_open_with(struct cl_conn *c, const char *req, int status, struct answer *a) {
    if (cl_send(c, req, 0) < 0 || !read_answer(c, a))
        return 0;
    if (a->status != status || a->closing || strcmp(a->global, "1") != 0) {
        fprintf(stderr, "  %.*s: %d closing %d global \"%s\"\n", (int)strcspn(req, "\r"), req,
                a->status, a->closing, a->global);
        return 0;
    }
    return 1;
}

/* The router's refusals (404, 405, 400 for a path it cannot take) come after a request
 * was framed: the connection stays usable, and the next request on it is answered. */
static void test_router_answers_keep_the_connection(void) {
    chopin_router *r = make_router();
    chopin_server *s = cl_start(r, NULL);
    struct cl_conn *c = cl_open(chopin_server_port(s));
    CHECK(c != NULL);
    struct answer a;
    CHECK(kept_open_with(c, "GET /nothing HTTP/1.1\r\nHost: h\r\n\r\n", 404, &a));
    CHECK(kept_open_with(c, "DELETE /a HTTP/1.1\r\nHost: h\r\n\r\n", 405, &a));
    CHECK(strcmp(a.allow, "GET, HEAD, POST") == 0);
    CHECK(kept_open_with(c, "GET /a%00b HTTP/1.1\r\nHost: h\r\n\r\n", 400, &a));
    CHECK(kept_open_with(c, "GET /../a HTTP/1.1\r\nHost: h\r\n\r\n", 400, &a));
    CHECK(kept_open_with(c, "POST /nothing HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
                         404, &a));
    CHECK(kept_open_with(c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 200, &a));
    cl_close(c);
    cl_stop(s);
    chopin_router_free(r);
}

/* The parser's 400s: the bytes after a malformed head cannot be trusted to be a request,
 * so the answer says Connection: close and the connection closes; the request pipelined
 * behind it is never answered. A fragment in the target is one of them (RFC 9112 §3.2). */
static void test_parser_400_closes(void) {
    static const char *const bad[] = {
        "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a?x#b HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    chopin_router *r = make_router();
    chopin_server *s = cl_start(r, NULL);
    int port = chopin_server_port(s);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cl_conn *c = cl_open(port);
        CHECK(c != NULL);
        struct answer a;
        CHECK(cl_send(c, bad[i], 0) == 0);
        CHECK(cl_send(c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 0) == 0);
        CHECK(read_answer(c, &a));
        CHECK_INT(a.status, 400);
        CHECK(a.closing);
        CHECK(strcmp(a.global, "1") == 0);
        CHECK(cl_closed(c));
        cl_close(c);
    }
    cl_stop(s);
    chopin_router_free(r);
}

/* RFC 9110 §9.3.7: OPTIONS * asks about the server. 200, no body, Allow naming the
 * methods some route answers, through the global middleware; the connection stays. */
static void test_options_asterisk(void) {
    chopin_router *r = make_router();
    chopin_server *s = cl_start(r, NULL);
    struct cl_conn *c = cl_open(chopin_server_port(s));
    CHECK(c != NULL);
    struct answer a;
    CHECK(kept_open_with(c, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 200, &a));
    CHECK(strcmp(a.allow, "GET, HEAD, POST") == 0);
    CHECK(a.body_len == 0);
    CHECK(kept_open_with(c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 200, &a));
    cl_close(c);
    cl_stop(s);
    chopin_router_free(r);
}

/* The write deadline counts from the last send the kernel accepted, not from the last
 * byte the client acknowledged (docs/hardening.md §3). The kernel takes more only once a
 * third or so of its (megabytes of) send buffer has drained, so a client that reads
 * steadily but slowly, 256 bytes every 20 ms, is dropped while it still reads, within a
 * bound of many deadlines. */
#define WRITE_MS 300
static void test_write_deadline_counts_kernel_sends(void) {
    chopin_router *r = make_router();
    chopin_options o = chopin_options_default();
    o.write_timeout_ms = WRITE_MS;
    chopin_server *s = cl_start(r, &o);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rcvbuf = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)chopin_server_port(s))};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
    const char req[] = "GET /big HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK(send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)sizeof req - 1);
    char head[12];
    CHECK(recv(fd, head, sizeof head, MSG_WAITALL) == (ssize_t)sizeof head); /* accepted */
    CHECK(memcmp(head, "HTTP/1.1 200", sizeof head) == 0);
    size_t got = sizeof head;
    int dropped = 0;
    uint64_t end = now_ms() + 40 * WRITE_MS;
    while (now_ms() < end) {
        char buf[256];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        if (open_connections(s) == 0) {
            dropped = 1;
            break;
        }
        sleep_ms(20);
    }
    CHECK(dropped);
    CHECK(got > sizeof head && got < BIG_LEN); /* it kept reading, and was far from done */
    close(fd);
    cl_stop(s);
    chopin_router_free(r);
}

int main(void) {
    memset(big_body, 'b', sizeof big_body);
    RUN(test_router_answers_keep_the_connection);
    RUN(test_parser_400_closes);
    RUN(test_options_asterisk);
    RUN(test_write_deadline_counts_kernel_sends);
    TEST_END();
}
