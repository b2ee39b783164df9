/* SPDX-License-Identifier: MIT */
/*
 * Fairness: a client that never stops sending must not starve the others. One worker
 * serves a flood (pipelined requests without end, or uploads one after another) while a
 * second client asks for one page: it must be answered. Without a read budget per loop
 * turn the worker keeps reading the flood as long as each read fills its buffer, and never
 * returns to its wait: the second client's connection is not even accepted.
 *
 * For every read to fill the buffer, the socket must hold more than a read takes, at every
 * read. So the flood first runs at full speed, which lets the kernel grow the socket's
 * receive buffer (TCP autotuning follows the reader's pace, and never shrinks it again);
 * then the flood's handlers start to do some work, and the worker takes its input far more
 * slowly than the client sends it: the buffer stays full. The answers are read at once, so
 * no backpressure stops the reading either. Runs once per backend. The bound is generous:
 * the check is that the answer comes, not how fast.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

#define ANSWER_WAIT_MS 20000 /* the second client's bound */
#define FLOOD_START_MS 10000 /* the flood must be under way by then */
#define UPLOAD_BODY (256 * 1024)

static atomic_int slow; /* the flood's handlers do their work */

struct flood {
    int fd;
    const char *unit; /* sent again and again, whole: requests stay intact */
    size_t unit_len;
    atomic_int stop;
    atomic_size_t answered; /* bytes of answers read */
    pthread_t writer, reader;
};

/* A handler's work, once the flood is slow: tens of microseconds per request, some
 * milliseconds per upload, so that a read of the worker takes milliseconds to process and
 * the flood's writer has all that time to fill the socket again. */
static void work(unsigned rounds) {
    volatile unsigned x = 0;
    if (!atomic_load(&slow))
        return;
    for (unsigned i = 0; i < rounds; i++)
        x += i;
}

static void hello(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_text(res, 200, "hello");
}

static void busy(chopin_req *req, chopin_res *res, void *data) {
    work(50000);
    chopin_res_text(res, 200, "done");
}

static void upload(chopin_req *req, chopin_res *res, void *data) {
    work(5000000);
    chopin_res_text(res, 200, "stored");
}

static void *flood_write(void *arg) {
    struct flood *f = arg;
    size_t off = 0;
    while (!atomic_load(&f->stop)) {
        ssize_t n = send(f->fd, f->unit + off, f->unit_len - off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue; /* the send timeout: the server is slow, not gone */
        if (n <= 0)
            break;
        off = (off + (size_t)n) % f->unit_len;
    }
    return NULL;
}

static void *flood_read(void *arg) {
    struct flood *f = arg;
    static char sink[1 << 16];
    while (!atomic_load(&f->stop)) {
        ssize_t n = recv(f->fd, sink, sizeof sink, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break;
        atomic_fetch_add(&f->answered, (size_t)n);
    }
    return NULL;
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The flood's threads run beside the worker, which is pinned to the first allowed CPU: a
 * writer that shares the worker's CPU lets the worker drain the socket now and then. */
static void pin_beside_worker(pthread_t t) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    int first = -1, last = -1;
    for (int i = 0; i < CPU_SETSIZE; i++) {
        if (CPU_ISSET(i, &set)) {
            if (first < 0)
                first = i;
            last = i;
        }
    }
    if (last <= first)
        return;
    CPU_ZERO(&set);
    CPU_SET(last, &set);
    pthread_setaffinity_np(t, sizeof set, &set);
}

/* Waits until `more` bytes of answers came back beyond what came already. 0, or -1 when
 * they did not come in FLOOD_START_MS. */
static int flood_answers(struct flood *f, size_t more) {
    size_t want = atomic_load(&f->answered) + more;
    long long deadline = now_ms() + FLOOD_START_MS;
    while (atomic_load(&f->answered) < want && now_ms() < deadline)
        usleep(1000);
    return atomic_load(&f->answered) >= want ? 0 : -1;
}

/* Starts the flood at full speed until `warm_up` bytes of its answers came back, then
 * slows it down and waits for one more answer: the worker is busy with it. 0, or -1 when
 * it never got going. */
static int flood_start(struct flood *f, int port, size_t warm_up) {
    struct cl_conn *c = cl_open(port);
    if (!c)
        return -1;
    f->fd = dup(c->fd); /* keeps the socket options (timeouts) of cl_open */
    cl_close(c);
    atomic_init(&f->stop, 0);
    atomic_init(&f->answered, 0);
    pthread_create(&f->writer, NULL, flood_write, f);
    pthread_create(&f->reader, NULL, flood_read, f);
    pin_beside_worker(f->writer);
    pin_beside_worker(f->reader);
    if (flood_answers(f, warm_up) < 0)
        return -1;
    atomic_store(&slow, 1);
    return flood_answers(f, 1);
}

static void flood_stop(struct flood *f) {
    atomic_store(&slow, 0); /* what the worker holds of the flood goes quickly */
    atomic_store(&f->stop, 1);
    shutdown(f->fd, SHUT_RDWR);
    pthread_join(f->writer, NULL);
    pthread_join(f->reader, NULL);
    close(f->fd);
}

/* One GET /hello on a new connection, answered within ANSWER_WAIT_MS: 1, else 0. */
static int answered_beside_flood(int port) {
    struct cl_conn *c = cl_open(port);
    if (!c)
        return 0;
    int ok = 0;
    if (cl_send(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 0) == 0) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, ANSWER_WAIT_MS) == 1) {
            struct cl_resp r;
            ok = cl_read(c, &r, 0) == 0 && r.status == 200 && r.body_len == 5 &&
                 memcmp(r.body, "hello", 5) == 0;
            cl_resp_free(&r);
        } else {
            fprintf(stderr, "  no answer within %d ms beside the flood\n", ANSWER_WAIT_MS);
        }
    }
    cl_close(c);
    return ok;
}

static void run_case(const char *unit, size_t unit_len, size_t warm_up) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hello", hello, NULL);
    chopin_router_get(r, "/busy", busy, NULL);
    chopin_router_post(r, "/upload", upload, NULL);
    chopin_options o = chopin_options_default();
    o.workers = 1;
    o.pin = 1;
    o.max_body_bytes = 2 * UPLOAD_BODY;
    chopin_server *s = cl_start(r, &o);
    CHECK(s != NULL);
    if (!s) {
        chopin_router_free(r);
        return;
    }
    int port = chopin_server_port(s);
    struct flood f = {.unit = unit, .unit_len = unit_len};
    int started = flood_start(&f, port, warm_up) == 0;
    CHECK(started);
    if (started)
        CHECK(answered_beside_flood(port));
    flood_stop(&f);
    cl_stop(s);
    chopin_router_free(r);
}

/* Pipelined GETs without end: each read of the worker is full of whole requests. Each
 * carries a header of padding, so the answers are far fewer bytes than the requests and
 * the flood's reader keeps up with them easily. */
static void test_pipelined_flood(void) {
    char req[1200];
    int len = snprintf(req, sizeof req, "GET /busy HTTP/1.1\r\nHost: t\r\nX-Pad: %01000d\r\n\r\n", 0);
    size_t n = 128;
    char *unit = malloc(n * (size_t)len);
    CHECK(unit != NULL);
    if (!unit)
        return;
    for (size_t i = 0; i < n; i++)
        memcpy(unit + i * (size_t)len, req, (size_t)len);
    run_case(unit, n * (size_t)len, 4 << 20); /* about 30 MiB of requests */
    free(unit);
}

/* Uploads one after another, each a Content-Length body of UPLOAD_BODY bytes. */
static void test_upload_flood(void) {
    char head[128];
    int hl = snprintf(head, sizeof head,
                      "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", UPLOAD_BODY);
    char *unit = malloc((size_t)hl + UPLOAD_BODY);
    CHECK(unit != NULL);
    if (!unit)
        return;
    memcpy(unit, head, (size_t)hl);
    memset(unit + hl, 'u', UPLOAD_BODY);
    run_case(unit, (size_t)hl + UPLOAD_BODY, 200 * 64); /* 64 uploads, 16 MiB */
    free(unit);
}

int main(void) {
    RUN(test_pipelined_flood);
    RUN(test_upload_flood);
    TEST_END();
}
