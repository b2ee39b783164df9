/* SPDX-License-Identifier: MIT */
/* The per-worker protocol engine (see engine.h). */
#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "conn.h"
#include "exchange.h"
#include "http/serialize.h"
#include "listen.h"
#ifdef CHOPIN_HAVE_TLS
#endif
#include "peer.h"
#include "ops/observe.h"
#include "router/router.h"

/* Cached buffers kept per worker beyond those in use: enough to absorb bursts without
 * going back to malloc, small enough not to pin memory after them. */
#define POOL_MAX_CACHED 256

int chopin__engine_init(struct chopin__engine *e, const struct chopin__config *cfg,
                        const chopin_router *router, int worker_id, uint64_t now_ms) {
    const chopin_options *o = &cfg->opt;
    *e = (struct chopin__engine){.cfg = cfg, .router = router, .worker_id = worker_id,
                                 .now_ms = now_ms};
    int rc = chopin__slab_init(&e->slab, sizeof(struct chopin__conn), o->slab_capacity);
    if (rc < 0)
        return rc;
    e->headers = calloc(cfg->limits.max_headers, sizeof *e->headers);
    e->gens = calloc(o->slab_capacity, sizeof *e->gens);
    if (!e->headers || !e->gens) {
        chopin__engine_destroy(e);
        return -ENOMEM;
    }
    rc = chopin__observer_init(e, router && chopin__router_metrics_wanted(router));
    if (rc < 0) {
        chopin__engine_destroy(e);
        return rc;
    }
    chopin__pool_init(&e->pool, o->buffer_size, POOL_MAX_CACHED);
    chopin__wheel_init(&e->wheel, now_ms);
    chopin__wheel_init(&e->app_wheel, now_ms);
    return 0;
}

void chopin__engine_destroy(struct chopin__engine *e) {
    chopin__observer_destroy(e);
    chopin__exchange_destroy_all(e);
    chopin__pool_destroy(&e->pool);
    chopin__slab_destroy(&e->slab);
    chopin__loop_destroy(e);
    free(e->headers);
    free(e->gens);
    e->headers = NULL;
    e->gens = NULL;
}

void chopin__engine_notify(struct chopin__engine *e, struct chopin__conn *c) {
    if (e->notify)
        e->notify(c, e->notify_ctx);
}

void chopin__engine_list_ready(struct chopin__engine *e, struct chopin__conn *c) {
    if (c->ready_listed)
        return;
    if (e->nready == e->ready_cap) {
        uint32_t cap = e->ready_cap ? e->ready_cap * 2 : 16;
        struct chopin__ready_conn *r = realloc(e->ready, cap * sizeof *r);
        if (!r)
            return; /* its answer then waits for the connection's next event */
        e->ready = r;
        e->ready_cap = cap;
    }
    e->ready[e->nready++] = (struct chopin__ready_conn){c, c->gen};
    c->ready_listed = 1;
}

void chopin__engine_run_ready(struct chopin__engine *e) {
    /* By index: serving one may list others (a handler finishing another's exchange). */
    for (uint32_t i = 0; i < e->nready; i++) {
        struct chopin__conn *c = e->ready[i].c;
        if (!c->live || c->gen != e->ready[i].gen)
            continue;
        c->ready_listed = 0;
        chopin__conn_flush_answers(c);
        chopin__engine_notify(e, c);
    }
    e->nready = 0;
}

static void fire(struct chopin__timer *t, void *arg) {
    struct chopin__conn *c = (struct chopin__conn *)((char *)t - offsetof(struct chopin__conn, timer));
    if (chopin__conn_on_timeout(c))
        chopin__engine_notify(arg, c);
}

void chopin__engine_set_clock(struct chopin__engine *e, uint64_t now_ms, int64_t wall_sec) {
    e->now_ms = now_ms;
    if (chopin__date_update(&e->date, (time_t)wall_sec) || !e->heads.lead_len)
        chopin__head_cache_set_lead(&e->heads, e->cfg->server_header, e->cfg->server_header_len,
                                    e->date.text);
}

static void fire_app(struct chopin__timer *t, void *arg) {
    (void)arg;
    struct chopin__app_timer *at =
        (struct chopin__app_timer *)((char *)t - offsetof(struct chopin__app_timer, t));
    at->fire(at);
}

/* The shortest time between two trims of one worker: malloc_trim walks every arena (other
 * workers' too, taking their locks), so a worker whose last connection leaves many times a
 * second trims once. */
#define TRIM_INTERVAL_MS 1000

/* Gives the pages glibc's malloc keeps free back to the kernel once the worker has no
 * connection left (issue 13, point 4). Bodies under CHOPIN__LARGE_MIN (mem/large.h) come
 * from the heap, and freed chunks inside a thread's heap stay resident until a trim:
 * 1,000 slow readers of a 106 KB answer built per request left 65 MB behind them on epoll
 * and 37 MB on io_uring, after a start of 4 (tests/integration/test_memory.c). Runs from the loop turn, so a trim the interval put off is done within
 * a second (the loop wakes at least once a second). */
static void trim_when_idle(struct chopin__engine *e) {
    if (!e->trim_wanted || chopin__engine_conns(e) != 0 ||
        e->now_ms - e->trimmed_ms < TRIM_INTERVAL_MS)
        return;
    e->trim_wanted = 0;
    e->trimmed_ms = e->now_ms;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

void chopin__engine_run_timers(struct chopin__engine *e) {
    chopin__wheel_run(&e->wheel, e->now_ms, fire, e);
    chopin__wheel_run(&e->app_wheel, e->now_ms, fire_app, e);
    trim_when_idle(e);
}

void chopin__engine_app_timer_add(struct chopin__engine *e, struct chopin__app_timer *t,
                                  uint64_t expire_ms) {
    chopin__wheel_add(&e->app_wheel, &t->t, expire_ms);
}

void chopin__engine_app_timer_del(struct chopin__engine *e, struct chopin__app_timer *t) {
    chopin__wheel_del(&e->app_wheel, &t->t);
}

int chopin__engine_timeout(const struct chopin__engine *e) {
    if (e->nready)
        return 0;
    uint64_t t = chopin__wheel_timeout(&e->wheel, e->now_ms);
    if (e->app_wheel.count) {
        uint64_t a = chopin__wheel_timeout(&e->app_wheel, e->now_ms);
        if (a < t)
            t = a;
    }
    return t > 1000 ? 1000 : (int)t;
}

struct chopin__conn *chopin__engine_conn_new(struct chopin__engine *e, int fd) {
    return chopin__engine_conn_accepted(e, fd, 0);
}

/* A TLS listener's connection speaks its transport first (stack.h); one whose transport
 * cannot be set up (out of memory) is closed before its first byte. */
static void start_transport(struct chopin__engine *e, struct chopin__conn *c) {
    if ((c->listen_flags & CHOPIN__LISTEN_TLS) && e->stack.secure &&
        e->stack.secure(c, e->stack.secure_ctx) < 0)
        chopin__conn_close(c);
}

struct chopin__conn *chopin__engine_conn_accepted(struct chopin__engine *e, int fd,
                                                  uint8_t listen_flags) {
    struct chopin__conn *c = chopin__slab_take(&e->slab);
    if (!c && chopin__engine_evict_idle(e))
        c = chopin__slab_take(&e->slab);
    if (!c) {
        chopin__count(&e->counters.slab_full, 1);
        return NULL;
    }
    uint32_t idx = chopin__slab_index(&e->slab, c);
    c->listen_flags = listen_flags; /* before init: it chooses the first deadline */
    chopin__conn_init(c, e, fd);
    c->gen = ++e->gens[idx];
    chopin__count(&e->counters.accepted, 1);
    chopin__count(&e->counters.open, 1);
    start_transport(e, c);
    if (e->draining)
        chopin__conn_on_drain(c);
    return c;
}

void chopin__engine_conn_free(struct chopin__engine *e, struct chopin__conn *c) {
    chopin__conn_release(c);
    chopin__peer_release(c);
    e->gens[chopin__slab_index(&e->slab, c)]++;
    chopin__count(&e->counters.open, -1);
    chopin__slab_give(&e->slab, c);
    e->trim_wanted |= chopin__engine_conns(e) == 0;
}

/* Partial heads passed over (output owed: pipelined answers not read yet) before an idle
 * connection is chosen instead: bounds the cost of a choice made at every accept while
 * the slab is full. */
#define EVICT_SCAN 16

/* Slowloris holds slots with heads that never complete, which the header deadline alone
 * frees only when it expires: a newcomer would wait that long. So the oldest such head
 * goes first, then the oldest idle connection, which breaks no promise (RFC 9112 §9.8). */
static struct chopin__conn *eviction_victim(const struct chopin__engine *e) {
    struct chopin__conn *c = e->partial_head;
    for (int seen = 0; c && seen < EVICT_SCAN; c = c->list_next, seen++)
        if (!chopin__conn_has_output(c))
            return c;
    return e->idle_head;
}

int chopin__engine_can_evict(const struct chopin__engine *e) { return eviction_victim(e) != NULL; }

int chopin__engine_evict_idle(struct chopin__engine *e) {
    struct chopin__conn *c = eviction_victim(e);
    if (!c)
        return 0;
    chopin__conn_evict(c);
    chopin__engine_notify(e, c);
    return 1;
}

int chopin__engine_close_idle(struct chopin__engine *e) {
    struct chopin__conn *c = e->idle_head;
    if (!c)
        return 0;
    chopin__conn_evict(c);
    chopin__engine_notify(e, c);
    return 1;
}

void chopin__engine_drain(struct chopin__engine *e) {
    e->draining = 1;
    /* Idle keep-alive connections close; one that has not sent its first request yet
     * waits for it (it was accepted in flight). Either way it leaves the idle list. */
    while (e->idle_head) {
        struct chopin__conn *c = e->idle_head;
        chopin__conn_on_drain(c);
        chopin__engine_notify(e, c);
    }
    /* A stream waiting for its application (server-sent events) has no next event to see
     * the drain by, and would hold the stop to its bound: it ends now too. So do the
     * connections another protocol has (WebSocket, HTTP/2), which end politely. */
    for (uint32_t i = 0; i < e->slab.never_used; i++) {
        struct chopin__conn *c = chopin__slab_at(&e->slab, i);
        if (c->live && (chopin__conn_stream_waiting(c) || c->phase == CHOPIN__PHASE_PROTOCOL)) {
            chopin__conn_on_drain(c);
            chopin__engine_notify(e, c);
        }
    }
}

void *chopin__engine_worker_data(const struct chopin__engine *e) { return e->worker_data; }
int chopin__engine_worker_id(const struct chopin__engine *e) { return e->worker_id; }
