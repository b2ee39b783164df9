/* SPDX-License-Identifier: MIT */
/*
 * The application's side of a worker's loop on a bare engine (no backend, a set clock):
 *   - the post queue under threads: every function runs exactly once, each thread's in
 *     the order it posted, one wake per batch, and a close in the middle of the posting
 *     loses nothing (a post either ran or was refused);
 *   - timers: one-shot, repeating without drift, stop, stop from the callback, a stale
 *     handle that names a reused node;
 *   - watches: the table's generations (a late event for an ended watch is dropped) and
 *     the argument checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "loop/loop.h"
#include "router/router.h"
#include "test.h"

#define T0 1000000
#define WALL 784111777

struct fixture {
    chopin_router *router;
    struct chopin__config cfg;
    struct chopin__engine engine;
};

static void setup(struct fixture *f) {
    f->router = chopin_router_new();
    chopin__router_freeze(f->router);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 4;
    chopin__config_resolve(&f->cfg, &o);
    chopin__engine_init(&f->engine, &f->cfg, f->router, 0, T0);
    chopin__engine_set_clock(&f->engine, T0, WALL);
}

static void teardown(struct fixture *f) {
    chopin__engine_destroy(&f->engine);
    chopin_router_free(f->router);
}

static chopin_worker *worker(struct fixture *f) { return (chopin_worker *)&f->engine; }

static void advance(struct fixture *f, uint64_t ms) {
    chopin__engine_set_clock(&f->engine, f->engine.now_ms + ms, WALL);
    chopin__engine_run_timers(&f->engine);
}

/* ----- the post queue ----------------------------------------------------------------- */

#define THREADS 8
#define POSTS 20000

struct producer {
    chopin_worker *w;
    int id;
    int limit;      /* posts to make; 0: until refused */
    int posted;     /* posts that returned 0 */
    int refused;    /* posts that returned CHOPIN_ESHUTDOWN (then it stops) */
    int ran;        /* written by the consumer only */
    int next;       /* the sequence number the consumer expects next */
    int out_of_order;
    int wrong_worker;
};

struct post_arg {
    struct producer *p;
    int seq;
};

static void posted_fn(chopin_worker *w, void *arg) {
    struct post_arg *a = arg;
    if (w != a->p->w)
        a->p->wrong_worker++;
    if (a->seq != a->p->next)
        a->p->out_of_order++;
    a->p->next = a->seq + 1;
    a->p->ran++;
    free(a);
}

static void *produce(void *arg) {
    struct producer *p = arg;
    for (int i = 0; !p->limit || i < p->limit; i++) {
        struct post_arg *a = malloc(sizeof *a);
        *a = (struct post_arg){p, i};
        int rc = chopin_worker_post(p->w, posted_fn, a);
        if (rc == CHOPIN_ESHUTDOWN) {
            free(a); /* refused: the argument stays ours */
            p->refused++;
            break;
        }
        p->posted += rc == 0;
    }
    return NULL;
}

static atomic_int wakes;
static void count_wake(void *ctx) { atomic_fetch_add((atomic_int *)ctx, 1); }

static void run_producers(struct producer *p, pthread_t *t, chopin_worker *w, int limit) {
    for (int i = 0; i < THREADS; i++) {
        p[i] = (struct producer){.w = w, .id = i, .limit = limit};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
}

static void test_post_every_function_once_in_order(void) {
    struct fixture f;
    setup(&f);
    atomic_store(&wakes, 0);
    f.engine.loop.wake = count_wake;
    f.engine.loop.wake_ctx = &wakes;
    struct producer p[THREADS];
    pthread_t t[THREADS];
    run_producers(p, t, worker(&f), POSTS);
    int batches = 0, ran = 0;
    while (ran < THREADS * POSTS) {
        unsigned n = chopin__postq_run(&f.engine.loop.postq, &f.engine);
        batches += n > 0;
        ran += (int)n;
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(chopin__postq_run(&f.engine.loop.postq, &f.engine), 0);
    for (int i = 0; i < THREADS; i++) {
        CHECK_INT(p[i].posted, POSTS);
        CHECK_INT(p[i].ran, POSTS);
        CHECK_INT(p[i].out_of_order, 0);
        CHECK_INT(p[i].wrong_worker, 0);
    }
    /* A wake only when the queue was empty: exactly one per batch the consumer took. */
    CHECK_INT(atomic_load(&wakes), batches);
    CHECK(batches < THREADS * POSTS); /* batches of more than one do happen ... */
    teardown(&f);
}

static void test_post_close_while_posting_loses_nothing(void) {
    struct fixture f;
    setup(&f);
    struct producer p[THREADS];
    pthread_t t[THREADS];
    run_producers(p, t, worker(&f), 0);
    int ran = 0;
    while (ran < POSTS) /* some of it runs before the close, the rest at the close */
        ran += (int)chopin__postq_run(&f.engine.loop.postq, &f.engine);
    chopin__loop_close(&f.engine);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    int refused = 0;
    for (int i = 0; i < THREADS; i++) {
        CHECK_INT(p[i].ran, p[i].posted); /* each accepted post ran exactly once */
        CHECK_INT(p[i].out_of_order, 0);
        CHECK_INT(p[i].refused, 1); /* each ran into the close: it came while they posted */
        refused += p[i].refused;
    }
    CHECK_INT(refused, THREADS);
    CHECK_INT(chopin_worker_post(worker(&f), posted_fn, NULL), CHOPIN_ESHUTDOWN);
    CHECK_INT(chopin__engine_post(&f.engine, free, NULL), CHOPIN_ESHUTDOWN);
    teardown(&f);
    /* Destroying a closed engine does not reopen it. */
    CHECK_INT(chopin_worker_post(worker(&f), posted_fn, NULL), CHOPIN_ESHUTDOWN);
}

static int internal_ran;
static void internal_fn(void *arg) { internal_ran += *(int *)arg; }

static void test_post_destroy_runs_what_is_left(void) {
    struct fixture f;
    setup(&f);
    int one = 1;
    internal_ran = 0;
    CHECK_INT(chopin__engine_post(&f.engine, internal_fn, &one), 0);
    CHECK_INT(chopin__engine_post(&f.engine, internal_fn, &one), 0);
    CHECK_INT(chopin_worker_post(NULL, posted_fn, NULL), CHOPIN_EINVAL);
    teardown(&f); /* never lost, never leaked (ASan) */
    CHECK_INT(internal_ran, 2);
}

/* ----- timers --------------------------------------------------------------------------- */

struct fired {
    int count;
    chopin_timer last;
    int stop_at;    /* the callback stops its own timer at this count (0: never) */
    int stop_rc;
    uint64_t at[8]; /* the clock at each call */
};

static void on_timer(chopin_worker *w, chopin_timer t, void *arg) {
    struct fired *f = arg;
    if (f->count < 8)
        f->at[f->count] = ((struct chopin__engine *)w)->now_ms;
    f->count++;
    f->last = t;
    if (f->stop_at && f->count == f->stop_at)
        f->stop_rc = chopin_timer_stop(w, t);
}

static void test_timer_one_shot(void) {
    struct fixture f;
    setup(&f);
    struct fired x = {0};
    chopin_timer t = chopin_timer_start(worker(&f), 100, 0, on_timer, &x);
    CHECK(t != 0);
    advance(&f, 99);
    CHECK_INT(x.count, 0);
    advance(&f, 1);
    CHECK_INT(x.count, 1);
    CHECK(x.last == t);
    advance(&f, 1000);
    CHECK_INT(x.count, 1);
    CHECK_INT(chopin_timer_stop(worker(&f), t), CHOPIN_ENOENT); /* it fired */
    teardown(&f);
}

static void test_timer_repeats_without_drift(void) {
    struct fixture f;
    setup(&f);
    struct fired x = {0};
    chopin_timer t = chopin_timer_start(worker(&f), 10, 10, on_timer, &x);
    advance(&f, 10);
    CHECK_INT(x.count, 1);
    advance(&f, 15); /* T0+25: late for the one due at 20 */
    CHECK_INT(x.count, 2);
    advance(&f, 4); /* T0+29: the next is due at 30, not 35 */
    CHECK_INT(x.count, 2);
    advance(&f, 1);
    CHECK_INT(x.count, 3);
    CHECK_INT(x.at[2], T0 + 30);
    CHECK_INT(chopin_timer_stop(worker(&f), t), 0);
    advance(&f, 100);
    CHECK_INT(x.count, 3);
    CHECK_INT(chopin_timer_stop(worker(&f), t), CHOPIN_ENOENT);
    teardown(&f);
}

static void test_timer_stop_before_it_fires(void) {
    struct fixture f;
    setup(&f);
    struct fired x = {0};
    chopin_timer t = chopin_timer_start(worker(&f), 5, 0, on_timer, &x);
    CHECK_INT(chopin_timer_stop(worker(&f), t), 0);
    advance(&f, 100);
    CHECK_INT(x.count, 0);
    CHECK_INT(chopin_timer_stop(worker(&f), 0), CHOPIN_ENOENT);
    CHECK_INT(chopin_timer_stop(worker(&f), 12345), CHOPIN_ENOENT);
    teardown(&f);
}

static void test_timer_stops_itself_from_its_callback(void) {
    struct fixture f;
    setup(&f);
    struct fired x = {.stop_at = 3};
    chopin_timer_start(worker(&f), 1, 1, on_timer, &x);
    for (int i = 0; i < 10; i++)
        advance(&f, 1);
    CHECK_INT(x.count, 3);
    CHECK_INT(x.stop_rc, 0);
    teardown(&f);
}

static void test_timer_stale_handle_leaves_the_new_timer_alone(void) {
    struct fixture f;
    setup(&f);
    struct fired a = {0}, b = {0};
    chopin_timer ta = chopin_timer_start(worker(&f), 1, 0, on_timer, &a);
    advance(&f, 1);
    CHECK_INT(a.count, 1);
    chopin_timer tb = chopin_timer_start(worker(&f), 10, 0, on_timer, &b); /* a's node again */
    CHECK(tb != ta);
    CHECK_INT(chopin_timer_stop(worker(&f), ta), CHOPIN_ENOENT);
    advance(&f, 10);
    CHECK_INT(b.count, 1);
    teardown(&f);
}

static void test_timer_pending_at_destroy_is_freed(void) {
    struct fixture f;
    setup(&f);
    struct fired x = {0};
    for (int i = 0; i < 40; i++)
        CHECK(chopin_timer_start(worker(&f), 1000 + (uint64_t)i, 0, on_timer, &x) != 0);
    teardown(&f); /* ASan: no leak; none fired */
    CHECK_INT(x.count, 0);
}

/* ----- watches ---------------------------------------------------------------------- */

struct seen {
    int calls;
    unsigned events;
    int unwatch_self;
};

static void on_ready(chopin_worker *w, int fd, unsigned events, void *arg) {
    struct seen *s = arg;
    s->calls++;
    s->events = events;
    if (s->unwatch_self)
        chopin_worker_unwatch(w, fd);
}

static void test_watch_generations(void) {
    struct fixture f;
    setup(&f);
    int p[2];
    CHECK_INT(pipe(p), 0);
    struct seen s = {0};
    unsigned ev = 0;
    CHECK_INT(chopin_worker_watch(worker(&f), p[0], CHOPIN_READABLE, on_ready, &s), 0);
    uint32_t g1 = chopin__loop_watch_gen(&f.engine, p[0], &ev);
    CHECK(g1 != 0);
    CHECK_INT(ev, CHOPIN_READABLE);
    chopin__loop_watch_fire(&f.engine, p[0], g1, CHOPIN_READABLE | CHOPIN_WRITABLE);
    CHECK_INT(s.calls, 1);
    CHECK_INT(s.events, CHOPIN_READABLE); /* only what it watches */
    chopin__loop_watch_fire(&f.engine, p[0], g1, CHOPIN__WATCH_ERR);
    CHECK_INT(s.calls, 2);
    CHECK_INT(s.events, CHOPIN_READABLE);
    /* Unwatched, then watched again: the old watch's late event is dropped. */
    CHECK_INT(chopin_worker_unwatch(worker(&f), p[0]), 0);
    CHECK_INT(chopin__loop_watch_gen(&f.engine, p[0], &ev), 0);
    chopin__loop_watch_fire(&f.engine, p[0], g1, CHOPIN_READABLE);
    CHECK_INT(s.calls, 2);
    CHECK_INT(chopin_worker_watch(worker(&f), p[0], CHOPIN_READABLE, on_ready, &s), 0);
    uint32_t g2 = chopin__loop_watch_gen(&f.engine, p[0], &ev);
    CHECK(g2 != g1);
    chopin__loop_watch_fire(&f.engine, p[0], g1, CHOPIN_READABLE);
    CHECK_INT(s.calls, 2);
    /* Same events, new callback: the registration (and generation) stays. */
    struct seen s2 = {.unwatch_self = 1};
    CHECK_INT(chopin_worker_watch(worker(&f), p[0], CHOPIN_READABLE, on_ready, &s2), 0);
    CHECK_INT(chopin__loop_watch_gen(&f.engine, p[0], &ev), g2);
    chopin__loop_watch_fire(&f.engine, p[0], g2, CHOPIN_READABLE);
    CHECK_INT(s2.calls, 1);
    CHECK_INT(chopin__loop_watch_gen(&f.engine, p[0], &ev), 0); /* it unwatched itself */
    chopin__loop_watch_fire(&f.engine, p[0], g2, CHOPIN_READABLE);
    CHECK_INT(s2.calls, 1);
    CHECK_INT(chopin_worker_unwatch(worker(&f), p[0]), CHOPIN_ENOENT);
    close(p[0]);
    close(p[1]);
    teardown(&f);
}

static void test_watch_arguments(void) {
    struct fixture f;
    setup(&f);
    int p[2];
    CHECK_INT(pipe(p), 0);
    struct seen s = {0};
    CHECK_INT(chopin_worker_watch(worker(&f), p[0], 0, on_ready, &s), CHOPIN_EINVAL);
    CHECK_INT(chopin_worker_watch(worker(&f), p[0], CHOPIN_READABLE, NULL, &s), CHOPIN_EINVAL);
    CHECK_INT(chopin_worker_watch(worker(&f), -1, CHOPIN_READABLE, on_ready, &s), CHOPIN_EBADF);
    int closed = dup(p[0]);
    close(closed);
    CHECK_INT(chopin_worker_watch(worker(&f), closed, CHOPIN_READABLE, on_ready, &s), CHOPIN_EBADF);
    CHECK_INT(chopin_worker_unwatch(worker(&f), 100000), CHOPIN_ENOENT);
    /* A descriptor far past the table's first size grows it. */
    int high = fcntl(p[1], F_DUPFD, 700);
    CHECK(high >= 700);
    CHECK_INT(chopin_worker_watch(worker(&f), high, CHOPIN_WRITABLE, on_ready, &s), 0);
    CHECK_INT(chopin_worker_unwatch(worker(&f), high), 0);
    close(high);
    close(p[0]);
    close(p[1]);
    teardown(&f);
}

int main(void) {
    RUN(test_post_every_function_once_in_order);
    RUN(test_post_close_while_posting_loses_nothing);
    RUN(test_post_destroy_runs_what_is_left);
    RUN(test_timer_one_shot);
    RUN(test_timer_repeats_without_drift);
    RUN(test_timer_stop_before_it_fires);
    RUN(test_timer_stops_itself_from_its_callback);
    RUN(test_timer_stale_handle_leaves_the_new_timer_alone);
    RUN(test_timer_pending_at_destroy_is_freed);
    RUN(test_watch_generations);
    RUN(test_watch_arguments);
    TEST_END();
}
