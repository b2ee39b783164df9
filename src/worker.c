/* SPDX-License-Identifier: MIT */
/* Worker helpers shared by every backend (see worker.h and backend/backend.h). */
#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "ops/observe.h"
#include "platform.h"

/* After EMFILE/ENFILE/ENOBUFS/ENOMEM: how long to leave the backlog alone. Long enough
 * not to spin, short enough that clients barely notice once descriptors free up. */
#define ACCEPT_BACKOFF_MS 100

uint64_t chopin__clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t wall_seconds(void) {
    struct timespec ts;
    /* The coarse clock is a vDSO read without a TSC access: plenty for a 1 s Date. */
    clock_gettime(CHOPIN__CLOCK_WALL_COARSE, &ts);
    return (int64_t)ts.tv_sec;
}

void chopin__worker_clock(struct chopin__worker *w) {
    chopin__engine_set_clock(&w->engine, chopin__clock_ms(), wall_seconds());
}

static int drained(const struct chopin__worker *w) {
    return w->draining && (chopin__engine_conns(&w->engine) == 0 ||
                           w->engine.now_ms >= w->drain_deadline_ms);
}

int chopin__worker_turn(struct chopin__worker *w) {
    /* First: what a posted function finishes is served in this same turn. */
    if (chopin__postq_busy(&w->engine.loop.postq))
        chopin__loop_run_posted(&w->engine);
    chopin__engine_run_ready(&w->engine);
    chopin__engine_run_timers(&w->engine);
    if (w->engine.obs)
        chopin__observe_turn(&w->engine);
    return drained(w);
}

int chopin__worker_timeout(const struct chopin__worker *w) {
    if (drained(w))
        return 0;
    int t = chopin__engine_timeout(&w->engine);
    if (w->accept_state == CHOPIN__ACCEPT_BACKOFF) {
        uint64_t now = w->engine.now_ms;
        int until = w->accept_retry_ms > now ? (int)(w->accept_retry_ms - now) : 0;
        if (until < t)
            t = until;
    }
    if (w->draining) {
        uint64_t now = w->engine.now_ms;
        int until = w->drain_deadline_ms > now ? (int)(w->drain_deadline_ms - now) : 0;
        if (until < t)
            t = until;
    }
    return t;
}

int chopin__worker_may_accept(struct chopin__worker *w) {
    struct chopin__engine *e = &w->engine;
    if (w->draining || w->accept_state == CHOPIN__ACCEPT_CLOSED)
        return 0;
    /* With the slab full, the next socket takes the slot of the connection that has made
     * the least progress (a stalled head, an idle one), evicted once the socket is in hand
     * (chopin__engine_conn_new): evicting here, before accept() tells whether anyone
     * waits, closed a client for nothing at the end of every accept loop (issue 2). */
    if (e->slab.used < e->slab.capacity || chopin__engine_can_evict(e))
        return 1;
    /* Leave the connection in the kernel's backlog: it is served when a slot frees
     * (chopin__worker_slot_freed), and nothing it sent is lost meanwhile. */
    if (w->accept_state != CHOPIN__ACCEPT_FULL)
        chopin__count(&e->counters.slab_full, 1);
    w->accept_state = CHOPIN__ACCEPT_FULL;
    return 0;
}

void chopin__worker_accept_backoff(struct chopin__worker *w) {
    w->accept_state = CHOPIN__ACCEPT_BACKOFF;
    w->accept_retry_ms = w->engine.now_ms + ACCEPT_BACKOFF_MS;
}

/* A connection waits in the accept queue of one of the worker's listeners (with a
 * deferred accept, one that has sent its first bytes). */
static int listener_has_pending(const struct chopin__worker *w) {
    struct pollfd p[CHOPIN__MAX_LISTENERS];
    int n = 0;
    for (int i = 0; i < w->nlisten; i++)
        if (w->listen[i].fd >= 0)
            p[n++] = (struct pollfd){.fd = w->listen[i].fd, .events = POLLIN};
    return n > 0 && poll(p, (nfds_t)n, 0) > 0;
}

int chopin__worker_accept_failed(struct chopin__worker *w, int err) {
    switch (err) {
    case EINTR:
    case ECONNABORTED: /* the peer gave up while queued: take the next one */
    case EPERM:        /* firewall refused this one */
        return 1;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        chopin__count(&w->engine.counters.accept_errors, 1);
        /* Closing an idle keep-alive connection frees a descriptor right away; but only
         * for a client that is waiting: accept() takes the descriptor before it looks at
         * the backlog (Linux __sys_accept4_file, io_accept), so EMFILE also ends an accept
         * loop that has emptied the backlog. Not a head arriving in pieces: the slab, sized
         * from the descriptor limit, fills first and meets slowloris there; out of
         * descriptors, the slow client may be one the backlog rightly waits behind. */
        if (listener_has_pending(w) && chopin__engine_close_idle(&w->engine))
            return 1;
        chopin__worker_accept_backoff(w);
        return 0;
    default:
        chopin__count(&w->engine.counters.accept_errors, 1);
        return 0;
    }
}

void chopin__worker_slot_freed(struct chopin__worker *w) {
    if (w->accept_state == CHOPIN__ACCEPT_FULL)
        w->accept_resume = 1;
}

int chopin__worker_accept_due(struct chopin__worker *w) {
    /* A connection that went idle, or started a head in pieces, can be evicted for one
     * waiting in the backlog. */
    if (w->accept_state == CHOPIN__ACCEPT_FULL &&
        (w->accept_resume || chopin__engine_can_evict(&w->engine))) {
        w->accept_state = CHOPIN__ACCEPT_ON;
        w->accept_resume = 0;
        return 1;
    }
    if (w->accept_state == CHOPIN__ACCEPT_BACKOFF && w->engine.now_ms >= w->accept_retry_ms) {
        w->accept_state = CHOPIN__ACCEPT_ON;
        return 1;
    }
    return 0;
}

static void begin_drain(struct chopin__worker *w) {
    w->draining = 1;
    w->accept_state = CHOPIN__ACCEPT_CLOSED;
    w->drain_deadline_ms = chopin__clock_ms() + w->engine.cfg->opt.shutdown_timeout_ms;
    chopin__engine_drain(&w->engine);
}

/* Consumed before the queue is run in the turn (chopin__worker_turn): a post that comes
 * after the run found the queue empty and wakes the worker again, so none waits a sleep. */
int chopin__worker_woken(struct chopin__worker *w) {
    chopin__wake_clear(w->wake_fd);
    if (w->draining || !atomic_load(w->engine.stop_requested))
        return 0;
    begin_drain(w);
    return 1;
}

static void wake(void *ctx) {
    struct chopin__worker *w = ctx;
    chopin__wake_signal(w->wake_fd);
}

void chopin__worker_wake_on_post(struct chopin__worker *w) {
    w->engine.loop.wake = wake;
    w->engine.loop.wake_ctx = w;
}

void chopin__worker_close_all(struct chopin__worker *w,
                              void (*close_conn)(struct chopin__worker *w, struct chopin__conn *c)) {
    struct chopin__slab *s = &w->engine.slab;
    for (uint32_t i = 0; i < s->never_used; i++) {
        struct chopin__conn *c = chopin__slab_at(s, i);
        if (c->live)
            close_conn(w, c);
    }
}

void chopin__worker_log(const struct chopin__worker *w, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    chopin_log(CHOPIN_LOG_WARN, "chopin: worker %d: %s", w->id, line);
}
