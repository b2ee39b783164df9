/* SPDX-License-Identifier: MIT */
/*
 * Connections at the edges of their life, over real sockets (issue 13, points 2 and 3):
 *   - a graceful stop answers every connection the kernel accepted before the listener
 *     closed, even those the worker had not taken yet because a handler held it, and the
 *     request in flight when the stop came says Connection: close;
 *   - a client that resets its connection in the middle of an upload frees its slot and
 *     descriptor at once, not at the body deadline; also fifty at once, each resetting at
 *     its own point of the body (on io_uring a multishot receive missed some of those
 *     resets, and one or more connections stayed open until the body deadline).
 * Runs once per backend (CHOPIN_BACKEND). Assertions are about answers and counts, never
 * about how long something took (the waits are bounds far above what is needed).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

static void sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static chopin_stats stats(chopin_server *s) {
    chopin_stats st;
    chopin_server_stats(s, &st);
    return st;
}

/* ----- a stop while a handler holds the worker ---------------------------------------- */

/* The first request blocks its worker until the test has queued the others behind it and
 * asked the server to stop (bounded, so a broken test cannot hang); each takes 200 ms. */
static int slow_started, slow_release;

static void slow(chopin_req *req, chopin_res *res, void *data) {
    if (!__atomic_exchange_n(&slow_started, 1, __ATOMIC_SEQ_CST)) {
        for (int i = 0; i < 500 && !__atomic_load_n(&slow_release, __ATOMIC_SEQ_CST); i++)
            usleep(10000);
    }
    usleep(200000);
    chopin_res_static(res, 200, "text/plain", "slow", 4);
}

#define GET_SLOW "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"
#define QUEUED 3

/* 1 when the response on `c` is a 200 and says Connection: close (when want_close). */
static int answered(struct cl_conn *c, int want_close) {
    struct cl_resp r;
    if (cl_read(c, &r, 0) < 0) {
        fprintf(stderr, "  no answer\n");
        return 0;
    }
    char v[64] = "";
    int closing = cl_header(&r, "Connection", v, sizeof v) == 0 && strcmp(v, "close") == 0;
    int ok = r.status == 200 && (!want_close || closing);
    if (!ok)
        fprintf(stderr, "  got %d (close %d)\n", r.status, closing);
    cl_resp_free(&r);
    return ok;
}

static void test_stop_answers_accepted_connections(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/slow", slow, NULL);
    chopin_options o = chopin_options_default();
    o.workers = 1;
    chopin_server *s = cl_start(r, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    int port = chopin_server_port(s);
    __atomic_store_n(&slow_started, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&slow_release, 0, __ATOMIC_SEQ_CST);

    /* Half the head first, the rest once the worker holds the connection: the handler
     * then runs for an event on it, not inside the worker's accept loop (which would
     * accept the others before it sees the stop). */
    struct cl_conn *first = cl_open(port);
    CHECK(first && cl_send(first, "GET /slow HTTP/1.1\r\n", 0) == 0);
    for (int i = 0; i < 500 && stats(s).connections_open < 1; i++)
        sleep_ms(10);
    CHECK(first && cl_send(first, "Host: h\r\n\r\n", 0) == 0);
    for (int i = 0; i < 500 && !__atomic_load_n(&slow_started, __ATOMIC_SEQ_CST); i++)
        sleep_ms(10);
    CHECK(__atomic_load_n(&slow_started, __ATOMIC_SEQ_CST));

    /* Connected: the kernel accepted them (they wait in the listener's queue, or in the
     * backend's hands), and their requests are sent, while the worker is in the handler. */
    struct cl_conn *queued[QUEUED];
    for (int i = 0; i < QUEUED; i++) {
        queued[i] = cl_open(port);
        CHECK(queued[i] && cl_send(queued[i], GET_SLOW, 0) == 0);
    }
    chopin_server_stop(s);
    __atomic_store_n(&slow_release, 1, __ATOMIC_SEQ_CST);

    CHECK(first && answered(first, 1));
    for (int i = 0; i < QUEUED; i++)
        CHECK(queued[i] && answered(queued[i], 0));
    chopin_server_wait(s);
    if (first)
        cl_close(first);
    for (int i = 0; i < QUEUED; i++)
        if (queued[i])
            cl_close(queued[i]);
    chopin_router_free(r);
}

/* ----- resets in the middle of an upload --------------------------------------------- */

#define UPLOADERS 8
#define UPLOAD_LEN (10u << 20) /* announced */
#define UPLOAD_SENT (2u << 20) /* sent before the reset */

static void echo_len(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_text(res, 200, "received");
}

struct upload_job {
    int port;
    int ok;
};

/* Sends the head and part of the body, then resets the connection (SO_LINGER 0). */
static void *upload_then_reset(void *arg) {
    struct upload_job *j = arg;
    struct cl_conn *c = cl_open(j->port);
    if (!c)
        return NULL;
    char head[128];
    snprintf(head, sizeof head, "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: %u\r\n\r\n",
             UPLOAD_LEN);
    static const char chunk[64 << 10];
    j->ok = cl_send(c, head, 0) == 0;
    /* As much as the socket takes at once: the reset then finds bytes still unread. */
    for (size_t sent = 0; j->ok && sent < UPLOAD_SENT; sent += sizeof chunk)
        if (send(c->fd, chunk, sizeof chunk, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
            break;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    cl_close(c);
    return NULL;
}

/* One worker serving POST /upload, whose connections only a reset can free (the head and
 * body deadlines are far away). NULL (a failed check) when it cannot start. */
static chopin_server *start_upload_server(chopin_router *r) {
    chopin_router_post(r, "/upload", echo_len, NULL);
    chopin_options o = chopin_options_default();
    o.workers = 1;
    o.body_timeout_ms = 60000;
    o.header_timeout_ms = 60000;
    chopin_server *s = cl_start(r, &o);
    CHECK(s != NULL);
    if (!s)
        chopin_router_free(r);
    return s;
}

/* Open connections once those just reset are freed: polled until back at `baseline`,
 * 10 s at most (far below the deadlines, which would free them too). */
static uint64_t open_after_resets(chopin_server *s, uint64_t baseline) {
    uint64_t end = now_ms() + 10000;
    while (stats(s).connections_open > baseline && now_ms() < end)
        sleep_ms(20);
    return stats(s).connections_open;
}

/* The server still answers after the resets; then it stops. */
static void stop_still_serving(chopin_server *s, chopin_router *r) {
    struct cl_resp resp;
    CHECK(cl_get(chopin_server_port(s), "/nothing", &resp) == 404);
    cl_resp_free(&resp);
    cl_stop(s);
    chopin_router_free(r);
}

static void test_reset_mid_upload_frees_at_once(void) {
    chopin_router *r = chopin_router_new();
    chopin_server *s = start_upload_server(r);
    if (!s)
        return;
    uint64_t baseline = stats(s).connections_open;
    for (int round = 0; round < 3; round++) {
        pthread_t t[UPLOADERS];
        struct upload_job jobs[UPLOADERS];
        for (int i = 0; i < UPLOADERS; i++) {
            jobs[i] = (struct upload_job){.port = chopin_server_port(s)};
            pthread_create(&t[i], NULL, upload_then_reset, &jobs[i]);
        }
        for (int i = 0; i < UPLOADERS; i++) {
            pthread_join(t[i], NULL);
            CHECK(jobs[i].ok);
        }
        CHECK_INT(open_after_resets(s, baseline), baseline);
    }
    stop_still_serving(s, r);
}

/* Many clients at once, each resetting at its own point of the upload: after the head
 * alone, or after 20 KiB, 40 KiB, ... up to about 1 MiB of the body. They reset together
 * (a barrier), while the worker still has their bytes to read. */
#define RESETTERS 50
#define RESET_STEP (20u << 10)

struct reset_job {
    int port, index, ok;
    pthread_barrier_t *together;
};

static void *send_part_then_reset(void *arg) {
    struct reset_job *j = arg;
    int fd = cl_connect_fd(j->port);
    char head[128];
    snprintf(head, sizeof head, "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: %u\r\n\r\n",
             UPLOAD_LEN);
    static const char chunk[RESET_STEP];
    j->ok = cl_send_fd(fd, head);
    for (int i = 0; j->ok && i < j->index; i++)
        if (send(fd, chunk, sizeof chunk, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
            break;
    pthread_barrier_wait(j->together);
    if (fd < 0)
        return NULL;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    return NULL;
}

static void test_many_resets_at_different_points_free_at_once(void) {
    chopin_router *r = chopin_router_new();
    chopin_server *s = start_upload_server(r);
    if (!s)
        return;
    uint64_t baseline = stats(s).connections_open;
    for (int round = 0; round < 3; round++) {
        pthread_t t[RESETTERS];
        struct reset_job jobs[RESETTERS];
        pthread_barrier_t together;
        pthread_barrier_init(&together, NULL, RESETTERS);
        for (int i = 0; i < RESETTERS; i++) {
            jobs[i] = (struct reset_job){
                .port = chopin_server_port(s), .index = i, .together = &together};
            pthread_create(&t[i], NULL, send_part_then_reset, &jobs[i]);
        }
        for (int i = 0; i < RESETTERS; i++) {
            pthread_join(t[i], NULL);
            CHECK(jobs[i].ok);
        }
        pthread_barrier_destroy(&together);
        CHECK_INT(open_after_resets(s, baseline), baseline);
    }
    stop_still_serving(s, r);
}

int main(void) {
    RUN(test_stop_answers_accepted_connections);
    RUN(test_reset_mid_upload_frees_at_once);
    RUN(test_many_resets_at_different_points_free_at_once);
    TEST_END();
}
