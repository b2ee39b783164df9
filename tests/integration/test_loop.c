/* SPDX-License-Identifier: MIT */
/*
 * The worker's loop for the application (issue 14, point 4), over a real server, once per
 * backend (CHOPIN_BACKEND):
 *   - functions posted from a handler to another worker and to all, and from another
 *     thread, run once each, on the worker named;
 *   - timers started from a handler fire (a repeating one until it stops itself);
 *   - a pipe written by another thread is watched level-triggered (one byte read per
 *     call still gets them all), a callback unwatches and closes its descriptor, and of
 *     two descriptors ready together whose callbacks unwatch each other only one runs;
 *     a writable socket is reported writable;
 *   - a deferred answer finished from a watch callback, a posted function or a timer
 *     leaves at once (the loop flushes its connection);
 *   - after the server stopped, a post returns CHOPIN_ESHUTDOWN, and every post it took
 *     before ran.
 * Waits are bounds far above what is needed; nothing asserts how long anything took.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

#define WORKERS 2

static void sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Polls `*v` until it reaches `want` (10 s at most); returns its last value. */
static int wait_for(atomic_int *v, int want) {
    for (int i = 0; i < 2000 && atomic_load(v) < want; i++)
        sleep_ms(5);
    return atomic_load(v);
}

/* Each worker's thread, recorded by worker_init: posted functions must run there. */
static pthread_t worker_thread[WORKERS];
static chopin_worker *worker_at_init[WORKERS]; /* chopin_worker_current() in worker_init */
static atomic_int wrong_thread;

static void *worker_init(int id, void *arg) {
    worker_thread[id] = pthread_self();
    worker_at_init[id] = chopin_worker_current();
    return NULL;
}

static void check_thread(chopin_worker *w) {
    int id = chopin_worker_id(w);
    if (id < 0 || id >= WORKERS || !pthread_equal(worker_thread[id], pthread_self()))
        atomic_fetch_add(&wrong_thread, 1);
}

static chopin_server *start(chopin_router *r) {
    chopin_options o = chopin_options_default();
    o.workers = WORKERS;
    o.worker_init = worker_init;
    return cl_start(r, &o);
}

static int get(chopin_server *s, const char *target) {
    return cl_get(chopin_server_port(s), target, NULL);
}

/* ----- posting ------------------------------------------------------------------------- */

static atomic_int ran_on[WORKERS];

static void count_run(chopin_worker *w, void *arg) {
    check_thread(w);
    atomic_fetch_add(&ran_on[chopin_worker_id(w)], 1);
}

/* Posts to the other worker and to all: 200 when every post was taken. */
static void post_h(chopin_req *req, chopin_res *res, void *data) {
    chopin_worker *me = chopin_req_worker(req);
    chopin_server *s = chopin_req_server(req);
    chopin_worker *other = chopin_server_worker(s, 1 - chopin_worker_id(me));
    int ok = chopin_worker_current() == me && worker_at_init[chopin_worker_id(me)] == me &&
             chopin_worker_post(other, count_run, NULL) == 0 &&
             chopin_server_post_all(s, count_run, NULL) == WORKERS;
    chopin_res_empty(res, ok ? 200 : 500);
}

static void test_post_to_other_and_all(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/post", post_h, NULL);
    chopin_server *s = start(r);
    CHECK(s != NULL);
    if (!s)
        return;
    atomic_store(&wrong_thread, 0);
    for (int i = 0; i < WORKERS; i++)
        atomic_store(&ran_on[i], 0);
    CHECK_INT(chopin_server_workers(s), WORKERS);
    CHECK(chopin_worker_current() == NULL); /* not a worker's thread */
    CHECK(chopin_server_worker(s, WORKERS) == NULL);
    CHECK(chopin_server_worker(s, -1) == NULL);
    CHECK_INT(get(s, "/post"), 200);
    /* One to the other worker, one to each: 3 in all, and at least 1 on each. */
    int total = 0;
    for (int i = 0; i < 2000 && total < 3; i++, sleep_ms(5))
        total = atomic_load(&ran_on[0]) + atomic_load(&ran_on[1]);
    CHECK_INT(total, 3);
    CHECK(atomic_load(&ran_on[0]) >= 1 && atomic_load(&ran_on[1]) >= 1);
    /* Both loops ran, so both worker_init hooks did: each saw its own worker. */
    CHECK(worker_at_init[0] == chopin_server_worker(s, 0));
    CHECK(worker_at_init[1] == chopin_server_worker(s, 1));
    /* From this thread, many to each worker. */
    for (int i = 0; i < 1000; i++)
        for (int k = 0; k < WORKERS; k++)
            CHECK_INT(chopin_worker_post(chopin_server_worker(s, k), count_run, NULL), 0);
    total = 0;
    for (int i = 0; i < 2000 && total < 2003; i++, sleep_ms(5))
        total = atomic_load(&ran_on[0]) + atomic_load(&ran_on[1]);
    CHECK_INT(total, 2003);
    CHECK_INT(atomic_load(&wrong_thread), 0);
    cl_stop(s);
    chopin_router_free(r);
}

/* ----- timers ------------------------------------------------------------------------- */

static atomic_int one_shot, repeats, stop_rc = 1;

static void on_once(chopin_worker *w, chopin_timer t, void *arg) {
    check_thread(w);
    atomic_fetch_add(&one_shot, 1);
}

static void on_repeat(chopin_worker *w, chopin_timer t, void *arg) {
    check_thread(w);
    if (atomic_fetch_add(&repeats, 1) + 1 == 3)
        atomic_store(&stop_rc, chopin_timer_stop(w, t));
}

static void timer_h(chopin_req *req, chopin_res *res, void *data) {
    chopin_worker *w = chopin_req_worker(req);
    int ok = chopin_timer_start(w, 5, 0, on_once, NULL) != 0 &&
             chopin_timer_start(w, 1, 2, on_repeat, NULL) != 0;
    chopin_res_empty(res, ok ? 200 : 500);
}

static void test_timers_from_a_handler(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/timer", timer_h, NULL);
    chopin_server *s = start(r);
    CHECK(s != NULL);
    if (!s)
        return;
    atomic_store(&wrong_thread, 0);
    CHECK_INT(get(s, "/timer"), 200);
    CHECK_INT(wait_for(&one_shot, 1), 1);
    CHECK_INT(wait_for(&repeats, 3), 3);
    cl_stop(s);
    CHECK_INT(atomic_load(&stop_rc), 0);
    CHECK_INT(atomic_load(&repeats), 3); /* stopped from its own callback: never again */
    CHECK_INT(atomic_load(&one_shot), 1);
    CHECK_INT(atomic_load(&wrong_thread), 0);
    chopin_router_free(r);
}

/* ----- watching descriptors ------------------------------------------------------------- */

#define BYTES 100

struct pipe_watch {
    int fds[2];
    atomic_int calls, bytes, done;
};

/* Reads one byte per call: only level-triggered readiness brings the rest. */
static void on_pipe(chopin_worker *w, int fd, unsigned events, void *arg) {
    struct pipe_watch *p = arg;
    check_thread(w);
    atomic_fetch_add(&p->calls, 1);
    char c;
    if ((events & CHOPIN_READABLE) && read(fd, &c, 1) == 1 &&
        atomic_fetch_add(&p->bytes, 1) + 1 == BYTES) {
        atomic_store(&p->done, chopin_worker_unwatch(w, fd) == 0 ? 1 : -1);
        close(fd); /* the descriptor is the application's: closed once unwatched */
    }
}

static void start_pipe_watch(chopin_worker *w, void *arg) {
    struct pipe_watch *p = arg;
    if (chopin_worker_watch(w, p->fds[0], CHOPIN_READABLE, on_pipe, p) < 0)
        atomic_store(&p->done, -2);
}

static void *write_all(void *arg) {
    struct pipe_watch *p = arg;
    char buf[BYTES];
    memset(buf, 'x', sizeof buf);
    ssize_t n = write(p->fds[1], buf, sizeof buf); /* at once: one readiness edge */
    return (void *)(intptr_t)(n == BYTES);
}

static void test_watch_pipe_level_triggered(void) {
    chopin_router *r = chopin_router_new();
    chopin_server *s = start(r);
    CHECK(s != NULL);
    if (!s)
        return;
    atomic_store(&wrong_thread, 0);
    static struct pipe_watch p;
    memset(&p, 0, sizeof p);
    CHECK_INT(pipe2(p.fds, O_NONBLOCK | O_CLOEXEC), 0);
    CHECK_INT(chopin_worker_post(chopin_server_worker(s, 1), start_pipe_watch, &p), 0);
    pthread_t t;
    pthread_create(&t, NULL, write_all, &p);
    void *wrote;
    pthread_join(t, &wrote);
    CHECK(wrote == (void *)1);
    CHECK_INT(wait_for(&p.done, 1), 1);
    CHECK_INT(atomic_load(&p.bytes), BYTES);
    CHECK_INT(atomic_load(&p.calls), BYTES); /* never called once unwatched */
    cl_stop(s);
    close(p.fds[1]);
    CHECK_INT(atomic_load(&wrong_thread), 0);
    chopin_router_free(r);
}

/* Two pipes ready together; each callback unwatches both and closes the other's: the
 * second callback of the turn must not run (its descriptor is not watched any more). */
struct pair_watch {
    int a[2], b[2];
    atomic_int calls, armed;
};

static void on_either(chopin_worker *w, int fd, unsigned events, void *arg) {
    struct pair_watch *p = arg;
    atomic_fetch_add(&p->calls, 1);
    int other = fd == p->a[0] ? p->b[0] : p->a[0];
    chopin_worker_unwatch(w, fd);
    if (chopin_worker_unwatch(w, other) == 0)
        close(other);
}

static void start_pair(chopin_worker *w, void *arg) {
    struct pair_watch *p = arg;
    /* Both readable before they are watched: the first wait reports both. */
    int ok = write(p->a[1], "x", 1) == 1 && write(p->b[1], "x", 1) == 1 &&
             chopin_worker_watch(w, p->a[0], CHOPIN_READABLE, on_either, p) == 0 &&
             chopin_worker_watch(w, p->b[0], CHOPIN_READABLE, on_either, p) == 0;
    atomic_store(&p->armed, ok ? 1 : -1);
}

static atomic_int turns_after;
static void later(chopin_worker *w, void *arg) {
    /* Two more posts: a callback wrongly still watched would have run by then. */
    if (atomic_fetch_add(&turns_after, 1) + 1 < 3)
        chopin_worker_post(w, later, arg);
}

static void test_watch_unwatch_other_in_same_turn(void) {
    chopin_router *r = chopin_router_new();
    chopin_server *s = start(r);
    CHECK(s != NULL);
    if (!s)
        return;
    static struct pair_watch p;
    memset(&p, 0, sizeof p);
    CHECK_INT(pipe2(p.a, O_NONBLOCK | O_CLOEXEC), 0);
    CHECK_INT(pipe2(p.b, O_NONBLOCK | O_CLOEXEC), 0);
    chopin_worker *w = chopin_server_worker(s, 0);
    CHECK_INT(chopin_worker_post(w, start_pair, &p), 0);
    CHECK_INT(wait_for(&p.armed, 1), 1);
    CHECK_INT(wait_for(&p.calls, 1), 1);
    atomic_store(&turns_after, 0);
    CHECK_INT(chopin_worker_post(w, later, NULL), 0);
    CHECK_INT(wait_for(&turns_after, 3), 3);
    cl_stop(s);
    CHECK_INT(atomic_load(&p.calls), 1);
    /* The first callback closed the other read end; its own is still open. */
    close(fcntl(p.a[0], F_GETFD) >= 0 ? p.a[0] : p.b[0]);
    close(p.a[1]);
    close(p.b[1]);
    chopin_router_free(r);
}

struct writable {
    int sv[2];
    atomic_int events;
};

static void on_writable(chopin_worker *w, int fd, unsigned events, void *arg) {
    struct writable *x = arg;
    chopin_worker_unwatch(w, fd);
    atomic_store(&x->events, (int)events);
}

static void start_writable(chopin_worker *w, void *arg) {
    struct writable *x = arg;
    if (chopin_worker_watch(w, x->sv[0], CHOPIN_WRITABLE, on_writable, x) < 0)
        atomic_store(&x->events, -1);
}

static void test_watch_socket_writable(void) {
    chopin_router *r = chopin_router_new();
    chopin_server *s = start(r);
    CHECK(s != NULL);
    if (!s)
        return;
    static struct writable x;
    memset(&x, 0, sizeof x);
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, x.sv), 0);
    CHECK_INT(chopin_worker_post(chopin_server_worker(s, 0), start_writable, &x), 0);
    CHECK_INT(wait_for(&x.events, 1), CHOPIN_WRITABLE);
    cl_stop(s);
    close(x.sv[0]);
    close(x.sv[1]);
    chopin_router_free(r);
}

/* ----- deferred answers finished from the loop -------------------------------------------- */

/* A handler defers; the answer comes from a watch callback, a function posted from the
 * test's thread, or a timer: the connection must then be flushed by the loop (nothing
 * else will wake it). */
static chopin_exchange parked;
static chopin_worker *parked_on;
static atomic_int deferred;
static int wake_pipe[2];

static void finish_with(const char *text) {
    chopin_res_static(chopin_exchange_res(parked), 200, "text/plain", text, strlen(text));
    chopin_exchange_finish(parked);
}

static void on_wake_pipe(chopin_worker *w, int fd, unsigned events, void *arg) {
    char c;
    if (read(fd, &c, 1) == 1) {
        chopin_worker_unwatch(w, fd);
        finish_with("from a watch");
    }
}

static void finish_posted(chopin_worker *w, void *arg) { finish_with("from a post"); }

static void finish_timer(chopin_worker *w, chopin_timer t, void *arg) { finish_with("from a timer"); }

static void defer_h(chopin_req *req, chopin_res *res, void *data) {
    const char *how = data;
    if (chopin_defer(req, res, &parked) < 0)
        return;
    parked_on = chopin_req_worker(req);
    if (how[0] == 'w')
        chopin_worker_watch(parked_on, wake_pipe[0], CHOPIN_READABLE, on_wake_pipe, NULL);
    else if (how[0] == 't')
        chopin_timer_start(parked_on, 1, 0, finish_timer, NULL);
    atomic_store(&deferred, 1);
}

/* 1 when GET `target` is answered 200 with `body`; `release` runs once it has deferred. */
static int answered_later(chopin_server *s, const char *target, const char *body,
                          void (*release)(void)) {
    struct cl_conn *c = cl_open(chopin_server_port(s));
    if (!c)
        return 0;
    atomic_store(&deferred, 0);
    char req[128];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", target);
    int ok = cl_send(c, req, 0) == 0 && wait_for(&deferred, 1) == 1;
    if (ok && release)
        release();
    struct cl_resp r;
    ok = ok && cl_read(c, &r, 0) == 0;
    if (ok) {
        ok = r.status == 200 && strcmp(r.body, body) == 0;
        if (!ok)
            fprintf(stderr, "  %s: %d '%s'\n", target, r.status, r.body);
        cl_resp_free(&r);
    }
    cl_close(c);
    return ok;
}

static void write_wake_pipe(void) { (void)!write(wake_pipe[1], "x", 1); }
static void post_finish(void) { chopin_worker_post(parked_on, finish_posted, NULL); }

static void test_deferred_answer_finished_from_the_loop(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/watch", defer_h, "w");
    chopin_router_get(r, "/post", defer_h, "p");
    chopin_router_get(r, "/timer", defer_h, "t");
    CHECK_INT(pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC), 0);
    /* One worker: `parked` is then only ever touched by its thread (and this one, after
     * `deferred` says it was written). */
    chopin_server *s = cl_start(r, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK(answered_later(s, "/watch", "from a watch", write_wake_pipe));
    CHECK(answered_later(s, "/post", "from a post", post_finish));
    CHECK(answered_later(s, "/timer", "from a timer", NULL));
    cl_stop(s);
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    chopin_router_free(r);
}

/* ----- after the end ------------------------------------------------------------------- */

static atomic_int late_ran;
static void late_fn(chopin_worker *w, void *arg) { atomic_fetch_add(&late_ran, 1); }

static void test_post_after_stop_is_refused(void) {
    chopin_router *r = chopin_router_new();
    chopin_server *s = start(r);
    CHECK(s != NULL);
    if (!s)
        return;
    chopin_worker *w[WORKERS];
    for (int k = 0; k < WORKERS; k++)
        w[k] = chopin_server_worker(s, k);
    atomic_store(&late_ran, 0);
    chopin_server_stop(s);
    /* Until a worker ends, posts are taken (and run before it ends); then refused. */
    int taken = 0;
    for (int k = 0; k < WORKERS; k++) {
        int rc = 0;
        for (int i = 0; i < 100000 && rc == 0; i++) {
            rc = chopin_worker_post(w[k], late_fn, NULL);
            taken += rc == 0;
            if (i % 64 == 0)
                sleep_ms(1);
        }
        CHECK_INT(rc, CHOPIN_ESHUTDOWN);
    }
    CHECK_INT(chopin_server_post_all(s, late_fn, NULL), 0);
    chopin_server_wait(s);
    CHECK_INT(atomic_load(&late_ran), taken);
    chopin_router_free(r);
}

int main(void) {
    RUN(test_post_to_other_and_all);
    RUN(test_timers_from_a_handler);
    RUN(test_watch_pipe_level_triggered);
    RUN(test_watch_unwatch_other_in_same_turn);
    RUN(test_watch_socket_writable);
    RUN(test_deferred_answer_finished_from_the_loop);
    RUN(test_post_after_stop_is_refused);
    TEST_END();
}
