/* SPDX-License-Identifier: MIT */
/*
 * The offload pool over real sockets (issue 14, point 5): many requests through
 * chopin_offload from several connections come back right; a client that leaves while
 * its work is on the pool gets its done call once, with no response; a full queue answers
 * 503; a server stopped with work running and queued calls every done once. Runs once per
 * backend (CHOPIN_BACKEND); the ASan tree finds what a done call that never ran leaks.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

/* ----- a gate the blocking work waits at ---------------------------------------------- */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open = 1;

static void gate_set(int open) {
    pthread_mutex_lock(&gate_lock);
    gate_open = open;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static void gate_pass(void) {
    pthread_mutex_lock(&gate_lock);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
}

/* ----- the application ---------------------------------------------------------------- */

static atomic_int offloaded, refused, started, cancels, dones, null_dones;

struct job {
    long n, result;
    int gated;
};

/* On a pool thread. */
static void work(void *arg) {
    struct job *j = arg;
    if (j->gated) {
        atomic_fetch_add(&started, 1);
        gate_pass();
    }
    j->result = j->n * 2;
}

/* On the worker (or, once the worker ended, the thread of chopin_server_wait). */
static void done(chopin_exchange x, void *arg) {
    struct job *j = arg;
    chopin_res *res = chopin_exchange_res(x);
    atomic_fetch_add(&dones, 1);
    if (!res) {
        atomic_fetch_add(&null_dones, 1);
        free(j);
        return;
    }
    char body[32];
    int len = snprintf(body, sizeof body, "%ld", j->result);
    chopin_res_copy(res, 200, "text/plain", body, (size_t)len);
    free(j);
    chopin_exchange_finish(x);
}

static void on_cancel(chopin_exchange x, void *arg) { atomic_fetch_add(&cancels, 1); }

static void offload(chopin_req *req, chopin_res *res, int gated) {
    chopin_str q = chopin_req_query_string(req);
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        chopin_res_error(res, 500, NULL);
        return;
    }
    j->n = q.len ? strtol(q.ptr, NULL, 10) : 0;
    j->gated = gated;
    int rc = chopin_offload(req, res, work, done, j);
    if (rc < 0) {
        atomic_fetch_add(&refused, rc == CHOPIN_EBUSY);
        free(j);
        return;
    }
    chopin_exchange x; /* the same exchange chopin_offload deferred */
    if (chopin_defer(req, res, &x) == 0)
        chopin_exchange_on_cancel(x, on_cancel, NULL);
    atomic_fetch_add(&offloaded, 1);
}

static void doubled(chopin_req *req, chopin_res *res, void *data) { offload(req, res, 0); }
static void gated(chopin_req *req, chopin_res *res, void *data) { offload(req, res, 1); }

static chopin_router *routes(void) {
    chopin_router *rt = chopin_router_new();
    chopin_router_get(rt, "/double", doubled, NULL);
    chopin_router_get(rt, "/gated", gated, NULL);
    return rt;
}

/* Waits (bounded) until *counter reaches want; returns its value. */
static int wait_for(atomic_int *counter, int want) {
    for (int i = 0; i < 500 && atomic_load(counter) < want; i++)
        usleep(10000);
    return atomic_load(counter);
}

static struct cl_conn *send_on_new(int port, const char *target) {
    struct cl_conn *c = cl_open(port);
    if (c) {
        char req[128];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
        cl_send(c, req, 0);
    }
    return c;
}

/* ----- tests -------------------------------------------------------------------------- */

#define CONNS 8
#define PER_CONN 300
#define BATCH 6

static int port;

/* Requests pipelined in batches on several connections, each answered from the pool. */
static void *client(void *arg) {
    long id = (long)(intptr_t)arg;
    int bad = 0;
    struct cl_conn *c = cl_open(port);
    if (!c)
        return (void *)1;
    for (int sent = 0; sent < PER_CONN && !bad; sent += BATCH) {
        char batch[BATCH * 64];
        size_t len = 0;
        for (int i = 0; i < BATCH; i++)
            len += (size_t)snprintf(batch + len, sizeof batch - len,
                                    "GET /double?%ld HTTP/1.1\r\nHost: x\r\n\r\n",
                                    id * 100000 + sent + i);
        bad = cl_send(c, batch, len) < 0;
        for (int i = 0; i < BATCH && !bad; i++) {
            struct cl_resp r;
            char want[32];
            snprintf(want, sizeof want, "%ld", (id * 100000 + sent + i) * 2);
            if (cl_read(c, &r, 0) < 0) {
                bad = 1;
                break;
            }
            if (r.status != 200 || strcmp(r.body, want) != 0) {
                fprintf(stderr, "  conn %ld request %d: %d \"%s\", expected %s\n", id, sent + i,
                        r.status, r.body, want);
                bad = 1;
            }
            cl_resp_free(&r);
        }
    }
    cl_close(c);
    return (void *)(intptr_t)bad;
}

static void test_many_answers_right(void) {
    int d0 = atomic_load(&dones);
    pthread_t t[CONNS];
    for (int i = 0; i < CONNS; i++)
        pthread_create(&t[i], NULL, client, (void *)(intptr_t)i);
    int bad = 0;
    for (int i = 0; i < CONNS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        bad += rc != NULL;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(atomic_load(&dones) - d0, CONNS * PER_CONN);
}

/* The client leaves while its work blocks on the pool: cancelled once, done once with
 * no response (and frees its job: ASan's leak check). */
static void test_cancelled_on_pool(void) {
    int s0 = atomic_load(&started), c0 = atomic_load(&cancels);
    int d0 = atomic_load(&dones), n0 = atomic_load(&null_dones);
    gate_set(0);
    struct cl_conn *c = send_on_new(port, "/gated?1");
    CHECK(c != NULL);
    CHECK_INT(wait_for(&started, s0 + 1), s0 + 1);
    cl_close(c);
    CHECK_INT(wait_for(&cancels, c0 + 1), c0 + 1);
    gate_set(1);
    CHECK_INT(wait_for(&null_dones, n0 + 1), n0 + 1);
    usleep(50000);
    CHECK_INT(atomic_load(&dones), d0 + 1);
    CHECK_INT(atomic_load(&cancels), c0 + 1);
    struct cl_resp r; /* the worker goes on */
    CHECK_INT(cl_get(port, "/double?21", &r), 200);
    CHECK_STR(r.body, "42");
    cl_resp_free(&r);
}

/* One thread, a queue of one: one job runs, one waits, the third is answered 503. */
static void test_full_queue(void) {
    chopin_router *rt = routes();
    chopin_options o = CHOPIN_OPTIONS_INIT;
    o.workers = 1;
    o.offload_threads = 1;
    o.offload_queue = 1;
    chopin_server *s = cl_start(rt, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    int p = chopin_server_port(s);
    int s0 = atomic_load(&started), o0 = atomic_load(&offloaded), r0 = atomic_load(&refused);
    gate_set(0);
    struct cl_conn *running = send_on_new(p, "/gated?5");
    CHECK_INT(wait_for(&started, s0 + 1), s0 + 1);
    struct cl_conn *queued = send_on_new(p, "/gated?6");
    CHECK_INT(wait_for(&offloaded, o0 + 2), o0 + 2);
    struct cl_resp r;
    CHECK_INT(cl_get(p, "/gated?7", &r), 503);
    cl_resp_free(&r);
    CHECK_INT(atomic_load(&refused), r0 + 1);
    gate_set(1);
    CHECK(running && cl_read(running, &r, 0) == 0 && r.status == 200);
    if (running) {
        CHECK_STR(r.body, "10");
        cl_resp_free(&r);
    }
    CHECK(queued && cl_read(queued, &r, 0) == 0 && r.status == 200);
    if (queued) {
        CHECK_STR(r.body, "12");
        cl_resp_free(&r);
    }
    cl_close(running);
    cl_close(queued);
    cl_stop(s);
    chopin_router_free(rt);
}

/* The worker's end opens the gate: the job running then finishes after its worker. */
static void open_gate_at_end(int id, void *data, void *arg) { gate_set(1); }

/* The server stops with one job blocked on the pool and one queued behind it: the drain
 * cancels both exchanges, and each done runs once, with no response. */
static void test_stop_with_work_on_pool(void) {
    chopin_router *rt = routes();
    chopin_options o = CHOPIN_OPTIONS_INIT;
    o.workers = 1;
    o.offload_threads = 1;
    o.offload_queue = 4;
    o.shutdown_timeout_ms = 200;
    o.worker_fini = open_gate_at_end;
    chopin_server *s = cl_start(rt, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    int p = chopin_server_port(s);
    int s0 = atomic_load(&started), o0 = atomic_load(&offloaded);
    int d0 = atomic_load(&dones), n0 = atomic_load(&null_dones);
    gate_set(0);
    struct cl_conn *running = send_on_new(p, "/gated?1");
    CHECK_INT(wait_for(&started, s0 + 1), s0 + 1);
    struct cl_conn *queued = send_on_new(p, "/gated?2");
    CHECK_INT(wait_for(&offloaded, o0 + 2), o0 + 2);
    cl_stop(s);
    CHECK_INT(atomic_load(&dones) - d0, 2);
    CHECK_INT(atomic_load(&null_dones) - n0, 2);
    cl_close(running);
    cl_close(queued);
    chopin_router_free(rt);
    gate_set(1);
}

int main(void) {
    chopin_router *rt = routes();
    chopin_options o = CHOPIN_OPTIONS_INIT;
    o.workers = 2;
    o.offload_threads = 3;
    chopin_server *s = cl_start(rt, &o);
    CHECK(s != NULL);
    if (!s)
        TEST_END();
    port = chopin_server_port(s);
    RUN(test_many_answers_right);
    RUN(test_cancelled_on_pool);
    cl_stop(s);
    chopin_router_free(rt);
    RUN(test_full_queue);
    RUN(test_stop_with_work_on_pool);
    TEST_END();
}
