/* SPDX-License-Identifier: MIT */
/*
 * Streams that wait, over real sockets (issue 14, point 6): a producer with nothing yet
 * (CHOPIN_EAGAIN) keeps its response open without being called again, past the write
 * deadline; another client's request resumes it and its bytes arrive; it ends and the
 * connection serves the next request; a client leaving while it waits runs done() once.
 * Runs once per backend (CHOPIN_BACKEND), on one worker.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

#define WRITE_TIMEOUT_MS 200

/* The one stream (on the worker's thread), its next message, and counters the test
 * thread reads. */
static chopin_stream stream;
static char message[64];
static int ending;
static atomic_int calls, dones;

static long produce(void *state, char *buf, size_t cap) {
    atomic_fetch_add(&calls, 1);
    size_t n = strlen(message);
    if (n) {
        memcpy(buf, message, n < cap ? n : cap);
        message[0] = '\0';
        return (long)n;
    }
    return ending ? 0 : CHOPIN_EAGAIN;
}

static void stream_done(void *state) { atomic_fetch_add(&dones, 1); }

static void wait_handler(chopin_req *req, chopin_res *res, void *data) {
    message[0] = '\0';
    ending = 0;
    chopin_res_stream(res, 200, "text/plain", produce, stream_done, NULL);
    stream = chopin_req_stream(req);
}

/* /poke?text: the next message ("end" ends the stream), then a resume. */
static void poke_handler(chopin_req *req, chopin_res *res, void *data) {
    chopin_str q = chopin_req_query_string(req);
    if (q.len == 3 && memcmp(q.ptr, "end", 3) == 0)
        ending = 1;
    else
        snprintf(message, sizeof message, "%.*s", (int)q.len, q.ptr);
    int rc = chopin_stream_resume(stream);
    chopin_res_copy(res, 200, "text/plain", rc == 0 ? "ok" : "stale", rc == 0 ? 2 : 5);
}

static void sync_handler(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "sync", 4);
}

static int port;

/* The body of /poke?query (a fresh connection). */
static const char *poke(const char *query) {
    static char body[16];
    struct cl_resp r;
    char target[64];
    snprintf(target, sizeof target, "/poke?%s", query);
    body[0] = '\0';
    if (cl_get(port, target, &r) == 200) {
        snprintf(body, sizeof body, "%s", r.body);
        cl_resp_free(&r);
    }
    return body;
}

/* Reads from fd until the bytes received end with `tail` (or 5 s pass, or EOF). Returns
 * 1 when they do; the bytes read are in buf. */
static int read_until(int fd, char *buf, size_t cap, const char *tail) {
    size_t len = 0, tl = strlen(tail);
    buf[0] = '\0';
    while (len + 1 < cap) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            return 0;
        len += (size_t)n;
        buf[len] = '\0';
        if (len >= tl && memcmp(buf + len - tl, tail, tl) == 0)
            return 1;
    }
    return 0;
}

static int open_waiting(void) {
    int fd = cl_connect_fd(port);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    CHECK(cl_send_fd(fd, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK(read_until(fd, buf, sizeof buf, "\r\n\r\n"));
    CHECK(strstr(buf, "HTTP/1.1 200 OK\r\n") == buf);
    CHECK(strstr(buf, "Transfer-Encoding: chunked\r\n") != NULL);
    return fd;
}

static void test_wait_resume_end(void) {
    atomic_store(&calls, 0);
    atomic_store(&dones, 0);
    int fd = open_waiting();
    char buf[4096];
    /* Waiting longer than the write deadline: a stream with nothing to say is not a
     * reader that stopped reading, so it is still open. */
    usleep(3 * WRITE_TIMEOUT_MS * 1000);
    CHECK_STR(poke("hello"), "ok");
    CHECK(read_until(fd, buf, sizeof buf, "\r\n"));
    CHECK_STR(buf, "5\r\nhello\r\n");
    CHECK_STR(poke("again"), "ok");
    CHECK(read_until(fd, buf, sizeof buf, "again\r\n"));
    CHECK_STR(buf, "5\r\nagain\r\n");
    /* Called once per resume and once to find nothing more: never in a loop. */
    CHECK(atomic_load(&calls) <= 5);
    CHECK_STR(poke("end"), "ok");
    CHECK(read_until(fd, buf, sizeof buf, "0\r\n\r\n"));
    CHECK_STR(buf, "0\r\n\r\n");
    /* done() runs once the server learns the last chunk was sent: on io_uring that is its
     * send completion, which may come after the client has read the bytes. */
    for (int i = 0; i < 500 && atomic_load(&dones) == 0; i++)
        usleep(10000);
    CHECK_INT(atomic_load(&dones), 1);
    /* The connection goes on. */
    CHECK(cl_send_fd(fd, "GET /sync HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK(read_until(fd, buf, sizeof buf, "sync"));
    close(fd);
}

static void test_client_leaves(void) {
    atomic_store(&dones, 0);
    int fd = open_waiting();
    close(fd);
    for (int i = 0; i < 500 && atomic_load(&dones) == 0; i++)
        usleep(10000);
    CHECK_INT(atomic_load(&dones), 1);
    CHECK_STR(poke("late"), "stale"); /* its handle names a connection that is gone */
    usleep(50000);
    CHECK_INT(atomic_load(&dones), 1);
}

/* A stopping server ends a stream that waits for its application at once: an endless
 * stream (server-sent events) would hold the stop to its bound (60 s here). */
static chopin_router *router;

static void test_stop_ends_waiting_stream(void) {
    chopin_router *r = router;
    chopin_options o = chopin_options_default();
    o.workers = 1;
    o.shutdown_timeout_ms = 60000;
    chopin_server *s = cl_start(r, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    int saved = port;
    port = chopin_server_port(s);
    atomic_store(&dones, 0);
    int fd = open_waiting();
    chopin_server_stop(s);
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof buf, 0); /* closed, well within its 5 s receive bound */
    CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
    /* done() runs as the server frees the connection, just after closing its socket. */
    for (int i = 0; i < 500 && atomic_load(&dones) == 0; i++)
        usleep(10000);
    CHECK_INT(atomic_load(&dones), 1);
    close(fd);
    chopin_server_wait(s);
    port = saved;
}

int main(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/wait", wait_handler, NULL);
    chopin_router_get(r, "/poke", poke_handler, NULL);
    chopin_router_get(r, "/sync", sync_handler, NULL);
    chopin_options o = chopin_options_default();
    o.workers = 1;
    o.write_timeout_ms = WRITE_TIMEOUT_MS;
    chopin_server *s = cl_start(r, &o);
    if (!s) {
        fprintf(stderr, "server did not start\n");
        return 1;
    }
    port = chopin_server_port(s);
    RUN(test_wait_resume_end);
    RUN(test_client_leaves);
    cl_stop(s);
    router = r;
    RUN(test_stop_ends_waiting_stream);
    chopin_router_free(r);
    TEST_END();
}
