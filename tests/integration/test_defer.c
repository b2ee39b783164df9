/* SPDX-License-Identifier: MIT */
/*
 * Deferred exchanges over real sockets (issue 14): answers finished later, from other
 * threads and in random order, arrive in request order per connection; a client that
 * leaves, a deadline, the worker's bound and a stopping server each end an open exchange
 * once, and a late finish is dropped. Runs once per backend (CHOPIN_BACKEND).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

/* ----- handles waiting for another thread ------------------------------------------- */

#define MAX_WAITING 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static chopin_exchange waiting[MAX_WAITING];
static int nwaiting;
static atomic_int cancels, late_finishes, finished, deferrals;

static void on_cancel(chopin_exchange x, void *arg) { atomic_fetch_add(&cancels, 1); }

static void remember(chopin_exchange x) {
    pthread_mutex_lock(&lock);
    if (nwaiting < MAX_WAITING)
        waiting[nwaiting++] = x;
    pthread_mutex_unlock(&lock);
}

/* Defers and leaves the exchange to the finisher threads. */
static void deferred(chopin_req *req, chopin_res *res, void *data) {
    chopin_exchange x;
    if (chopin_defer(req, res, &x) != 0)
        return;
    chopin_exchange_on_cancel(x, on_cancel, NULL);
    remember(x);
    atomic_fetch_add(&deferrals, 1);
}

static void sync_answer(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "sync", 4);
}

/* On the exchange's worker: answers with the request's query (its id). */
static void finish(chopin_exchange x, void *arg) {
    chopin_req *req = chopin_exchange_req(x);
    chopin_res *res = chopin_exchange_res(x);
    if (!res) {
        atomic_fetch_add(&late_finishes, 1);
        return;
    }
    chopin_str q = chopin_req_query_string(req);
    chopin_res_copy(res, 200, "text/plain", q.ptr, q.len);
    chopin_exchange_finish(x);
    atomic_fetch_add(&finished, 1);
}

/* Takes a random waiting handle, or returns 0 when none waits. */
static int take_random(chopin_exchange *x, unsigned *seed) {
    pthread_mutex_lock(&lock);
    int got = nwaiting > 0;
    if (got) {
        int i = (int)(rand_r(seed) % (unsigned)nwaiting);
        *x = waiting[i];
        waiting[i] = waiting[--nwaiting];
    }
    pthread_mutex_unlock(&lock);
    return got;
}

static atomic_int finishers_stop;

static void *finisher(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&finishers_stop)) {
        chopin_exchange x;
        if (take_random(&x, &seed))
            chopin_exchange_post(x, finish, NULL);
        else
            usleep(200);
    }
    return NULL;
}

static int port;

/* Waits (bounded) until *counter reaches want; returns its value. */
static int wait_for(atomic_int *counter, int want) {
    for (int i = 0; i < 500 && atomic_load(counter) < want; i++)
        usleep(10000);
    return atomic_load(counter);
}

/* ----- tests ------------------------------------------------------------------------ */

#define CONNS 50
#define PER_CONN 200
#define BATCH 12 /* pipelined per write: below max_pending (16) and above it */

/* 10,000 deferred requests, finished from four threads in random order, some pipelined
 * behind synchronous ones: every answer right and in order on its connection. */
static void *client(void *arg) {
    int id = (int)(intptr_t)arg, bad = 0;
    struct cl_conn *c = cl_open(port);
    if (!c)
        return (void *)1;
    for (int sent = 0; sent < PER_CONN && !bad; sent += BATCH) {
        char batch[BATCH * 96];
        size_t len = 0;
        int n = PER_CONN - sent < BATCH ? PER_CONN - sent : BATCH;
        for (int i = 0; i < n; i++) {
            int k = sent + i;
            if (k % 7 == 3)
                len += (size_t)snprintf(batch + len, sizeof batch - len,
                                        "GET /sync HTTP/1.1\r\nHost: x\r\n\r\n");
            else
                len += (size_t)snprintf(batch + len, sizeof batch - len,
                                        "GET /later?%d-%d HTTP/1.1\r\nHost: x\r\n\r\n", id, k);
        }
        if (cl_send(c, batch, len) < 0)
            bad = 1;
        for (int i = 0; i < n && !bad; i++) {
            int k = sent + i;
            struct cl_resp r;
            char want[32];
            if (k % 7 == 3)
                snprintf(want, sizeof want, "sync");
            else
                snprintf(want, sizeof want, "%d-%d", id, k);
            if (cl_read(c, &r, 0) < 0) {
                bad = 1;
                break;
            }
            if (r.status != 200 || strcmp(r.body, want) != 0) {
                fprintf(stderr, "  conn %d request %d: %d \"%s\", expected \"%s\"\n", id, k,
                        r.status, r.body, want);
                bad = 1;
            }
            cl_resp_free(&r);
        }
    }
    cl_close(c);
    return (void *)(intptr_t)bad;
}

static void test_many_finished_elsewhere_in_order(void) {
    pthread_t fin[4], cli[CONNS];
    atomic_store(&finishers_stop, 0);
    int before = atomic_load(&finished);
    for (int i = 0; i < 4; i++)
        pthread_create(&fin[i], NULL, finisher, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < CONNS; i++)
        pthread_create(&cli[i], NULL, client, (void *)(intptr_t)i);
    int bad = 0;
    for (int i = 0; i < CONNS; i++) {
        void *rc;
        pthread_join(cli[i], &rc);
        bad += rc != NULL;
    }
    atomic_store(&finishers_stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(fin[i], NULL);
    CHECK_INT(bad, 0);
    int deferred_count = CONNS * (PER_CONN - (PER_CONN + 3) / 7);
    CHECK_INT(atomic_load(&finished) - before, deferred_count);
}

/* A client that leaves while its answer is pending: the cancel callback runs once, the
 * finish that comes later is dropped (its function still runs, with no response). */
static void test_client_leaves(void) {
    int c0 = atomic_load(&cancels), l0 = atomic_load(&late_finishes);
    struct cl_conn *c = cl_open(port);
    CHECK(c != NULL);
    if (!c)
        return;
    cl_send(c, "GET /later?gone HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    for (int i = 0; i < 500; i++) { /* until the handler has run */
        pthread_mutex_lock(&lock);
        int n = nwaiting;
        pthread_mutex_unlock(&lock);
        if (n)
            break;
        usleep(10000);
    }
    cl_close(c);
    CHECK_INT(wait_for(&cancels, c0 + 1), c0 + 1);
    chopin_exchange x;
    unsigned seed = 1;
    CHECK(take_random(&x, &seed));
    CHECK_INT(chopin_exchange_post(x, finish, NULL), 0);
    CHECK_INT(wait_for(&late_finishes, l0 + 1), l0 + 1);
    usleep(50000);
    CHECK_INT(atomic_load(&cancels), c0 + 1); /* once */
}

/* A slow answer on a connection does not hold a fast one on another (one worker). */
static void test_slow_does_not_delay_fast(void) {
    struct cl_conn *slow = cl_open(port);
    CHECK(slow != NULL);
    if (!slow)
        return;
    cl_send(slow, "GET /later?slow HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    struct cl_resp r;
    CHECK_INT(cl_get(port, "/sync", &r), 200); /* answered while the slow one waits */
    cl_resp_free(&r);
    chopin_exchange x;
    unsigned seed = 2;
    int got = 0;
    for (int i = 0; i < 500 && !(got = take_random(&x, &seed)); i++)
        usleep(10000);
    CHECK(got);
    chopin_exchange_post(x, finish, NULL);
    CHECK_INT(cl_read(slow, &r, 0), 0);
    CHECK_STR(r.body, "slow");
    cl_resp_free(&r);
    cl_close(slow);
}

/* handler_timeout_ms passes: a 504, the application told once. */
static void test_deadline(void) {
    chopin_router *rt = chopin_router_new();
    chopin_router_get(rt, "/later", deferred, NULL);
    chopin_options o = CHOPIN_OPTIONS_INIT;
    o.workers = 1;
    o.handler_timeout_ms = 200;
    chopin_server *s = cl_start(rt, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    int c0 = atomic_load(&cancels);
    struct cl_resp r;
    CHECK_INT(cl_get(chopin_server_port(s), "/later?slow", &r), 504);
    cl_resp_free(&r);
    CHECK_INT(wait_for(&cancels, c0 + 1), c0 + 1);
    cl_stop(s);
    chopin_router_free(rt);
    pthread_mutex_lock(&lock);
    nwaiting = 0; /* stale handles: nobody finishes them */
    pthread_mutex_unlock(&lock);
}

/* max_deferred open exchanges on a worker: the next one is answered 503 at once. */
static void test_worker_bound(void) {
    chopin_router *rt = chopin_router_new();
    chopin_router_get(rt, "/later", deferred, NULL);
    chopin_options o = CHOPIN_OPTIONS_INIT;
    o.workers = 1;
    o.max_deferred = 3;
    o.shutdown_timeout_ms = 300;
    chopin_server *s = cl_start(rt, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    int p = chopin_server_port(s);
    struct cl_conn *held[3];
    for (int i = 0; i < 3; i++) {
        held[i] = cl_open(p);
        cl_send(held[i], "GET /later?held HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    }
    for (int i = 0; i < 500; i++) { /* until the three are open */
        pthread_mutex_lock(&lock);
        int n = nwaiting;
        pthread_mutex_unlock(&lock);
        if (n == 3)
            break;
        usleep(10000);
    }
    struct cl_resp r;
    CHECK_INT(cl_get(p, "/later?fourth", &r), 503);
    cl_resp_free(&r);
    int c0 = atomic_load(&cancels);
    for (int i = 0; i < 3; i++)
        cl_close(held[i]);
    CHECK_INT(wait_for(&cancels, c0 + 3), c0 + 3); /* the three left: room again */
    /* A stopping server with open exchanges: they are cancelled at the drain bound. */
    int d0 = atomic_load(&deferrals);
    struct cl_conn *last = cl_open(p);
    cl_send(last, "GET /later?at-stop HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    CHECK_INT(wait_for(&deferrals, d0 + 1), d0 + 1);
    int before = atomic_load(&cancels);
    cl_stop(s);
    CHECK(atomic_load(&cancels) > before);
    cl_close(last);
    chopin_router_free(rt);
    pthread_mutex_lock(&lock);
    nwaiting = 0;
    pthread_mutex_unlock(&lock);
}

int main(void) {
    chopin_router *rt = chopin_router_new();
    chopin_router_get(rt, "/later", deferred, NULL);
    chopin_router_get(rt, "/sync", sync_answer, NULL);
    chopin_options o = CHOPIN_OPTIONS_INIT;
    o.workers = 1;
    chopin_server *s = cl_start(rt, &o);
    CHECK(s != NULL);
    if (!s)
        TEST_END();
    port = chopin_server_port(s);
    RUN(test_many_finished_elsewhere_in_order);
    RUN(test_client_leaves);
    RUN(test_slow_does_not_delay_fast);
    cl_stop(s);
    chopin_router_free(rt);
    RUN(test_deadline);
    RUN(test_worker_bound);
    TEST_END();
}
