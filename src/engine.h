/* SPDX-License-Identifier: MIT */
/*
 * The per-worker protocol engine: everything a worker needs to run HTTP that is not I/O.
 * Connection slab, buffer pool, request arena, timer wheel, Date cache, counters. A
 * backend owns one engine, feeds it events (through conn.h) and is told through
 * `notify` when a connection needs its attention outside an event (a timer fired, an idle
 * connection was evicted).
 */
#ifndef CHOPIN_ENGINE_H
#define CHOPIN_ENGINE_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "http/date.h"
#include "http/parser.h"
#include "http/serialize.h"
#include "loop/loop.h"
#include "mem/arena.h"
#include "mem/pool.h"
#include "mem/slab.h"
#include "ops/kinds.h"
#include "stack.h"
#include "timer/wheel.h"

struct chopin__conn;
struct chopin__exchange;
struct chopin__offload;
struct chopin__observer;
struct chopin__xslot;

/* Per-worker counters: written only by their worker, read by chopin_server_stats. */
struct chopin__counters {
    uint64_t requests, accepted, open, bytes_sent, errors_4xx, errors_5xx, slab_full,
        accept_errors;
    /* For the metrics (issue 19; ops/kinds.h names the kinds). */
    uint64_t bytes_in, idle, evicted;
    uint64_t timeouts[CHOPIN__TIMEOUT_KINDS];
    uint64_t refused[CHOPIN__REFUSED_KINDS];
} __attribute__((aligned(64)));

/* Adds to a counter. Its worker is the only writer, so a relaxed load and store suffice
 * (a plain add on x86, no locked instruction); the store is atomic so that
 * chopin_server_stats reads it from another thread without a data race. */
static inline void chopin__count(uint64_t *counter, int64_t delta) {
    __atomic_store_n(counter, *counter + (uint64_t)delta, __ATOMIC_RELAXED);
}

/* A timer of the application's side of the loop (a deferred exchange's deadline, the
 * timers of chopin_timer_start): it fires its own callback. These live on a wheel of their
 * own, so the connections' wheel keeps one kind of entry and a direct call. */
struct chopin__app_timer {
    struct chopin__timer t;
    void (*fire)(struct chopin__app_timer *self);
};

struct chopin__engine {
    const struct chopin__config *cfg;
    const chopin_router *router;
    struct chopin__slab slab;
    struct chopin__pool pool;
    struct chopin__wheel wheel;     /* the connections' deadlines */
    struct chopin__wheel app_wheel; /* struct chopin__app_timer entries */
    struct chopin__date date;
    struct chopin__head_cache heads; /* the 200 lead (rebuilt each second), the last head */
    struct chopin__header *headers; /* parser output array, max_headers entries */
    uint32_t *gens;                 /* generation of each slab slot */
    uint64_t now_ms; /* monotonic, refreshed once per loop turn */
    /* The connections a full slab may close for a newcomer, oldest first (conn.h, enum
     * chopin__conn_list): idle keep-alive ones, and those whose request head arrives in
     * pieces (by when the head started). */
    struct chopin__conn *idle_head, *idle_tail;
    /* How many are on the idle list: counters.idle, the metrics' gauge, is this as the
     * worker's last loop turn left it (chopin__observe_turn), so that a keep-alive request,
     * which leaves the list and comes back, pays a plain add and subtract, not two counter
     * stores (7 instructions per request: callgrind, bench/micro_conn.c 2). */
    uint64_t idle_count;
    struct chopin__conn *partial_head, *partial_tail;
    void (*notify)(struct chopin__conn *c, void *ctx);
    void *notify_ctx;
    struct chopin_server *server; /* the server of this worker (chopin_req_server); NULL in tests */
    struct chopin__offload *offload; /* the server's blocking pool (chopin_offload); NULL in tests */
    /* Access log and metrics' histograms (ops/observe.h); NULL when neither is on. */
    struct chopin__observer *obs;
    struct chopin__stack stack; /* transports and protocols besides HTTP/1.1 (stack.h) */
    int worker_id;
    int draining; /* stop taking requests: answer in-flight ones with Connection: close */
    /* The server's stop request, set by another thread (NULL in tests): a response queued
     * after it says Connection: close although the worker has not begun to drain yet. */
    const atomic_int *stop_requested;
    void *worker_data;
    /* Exchanges (exchange.h): the one the next request runs in, spares for when a
     * deferred one leaves, the handle table of deferred ones, and connections whose
     * answers were finished from inside another connection's handler. */
    struct chopin__exchange *cur;
    struct chopin__exchange *spares;
    uint32_t nspares;
    /* Open deferred exchanges by deadline: every one gets the same handler_timeout_ms, so
     * the order they deferred in is their deadlines' order, and one timer at the first
     * deadline guards them all (exchange.c). */
    struct chopin__exchange *dl_head, *dl_tail;
    struct chopin__app_timer dl_timer;
    uint32_t xpeak;                 /* most deferred exchanges open at once lately */
    uint64_t xpeak_at;              /* when xpeak's window began */
    uint32_t xopen;                 /* deferred exchanges not yet finished */
    struct chopin__xslot *xslots;   /* max_deferred entries, allocated at the first defer */
    uint32_t xfree;                 /* first free slot (CHOPIN__NO_SLOT: none) */
    uint32_t xslots_used;           /* slots ever handed out (the rest are free in order) */
    struct chopin__exchange *dispatching; /* the exchange whose handler runs, if any */
    uint32_t nested; /* handlers or cancel callbacks running: answers they finish wait */
    struct chopin__ready_conn {
        struct chopin__conn *c;
        uint32_t gen;
    } *ready;
    uint32_t nready, ready_cap;
    /* The application's side of the loop (loop/loop.h): posted functions, timers,
     * watched descriptors. */
    struct chopin__apploop loop;
    /* Memory back to the kernel once the last connection left (engine.c, trim_when_idle):
     * wanted since then, and when it was last done. */
    int trim_wanted;
    uint64_t trimmed_ms;
    struct chopin__counters counters;
    struct chopin__metrics metrics; /* ops/kinds.h: counted only with e->obs */
};

/** 0, or -ENOMEM / -EINVAL. `now_ms` is the monotonic clock in ms. */
int chopin__engine_init(struct chopin__engine *e, const struct chopin__config *cfg,
                        const chopin_router *router, int worker_id, uint64_t now_ms);
/** Frees everything; every connection must have been released. */
void chopin__engine_destroy(struct chopin__engine *e);

/** Sets the clocks (once per loop turn, before handling events) and refreshes Date. */
void chopin__engine_set_clock(struct chopin__engine *e, uint64_t now_ms, int64_t wall_sec);
/** Fires due timers (after handling events, so no event of the batch meets a slot a
 *  timer just freed). */
void chopin__engine_run_timers(struct chopin__engine *e);
/** Arms `t` (t->fire set, the entry initialized once with chopin__timer_init) to fire at
 *  `expire_ms`, or re-arms it. */
void chopin__engine_app_timer_add(struct chopin__engine *e, struct chopin__app_timer *t,
                                  uint64_t expire_ms);
/** Disarms `t` (no-op when not armed). */
void chopin__engine_app_timer_del(struct chopin__engine *e, struct chopin__app_timer *t);
/** Asks the backend to look at `c` (send, read, close), as after a timer. */
void chopin__engine_notify(struct chopin__engine *e, struct chopin__conn *c);
/** Serves the connections whose answers were finished from inside a handler (listed by
 *  chopin__engine_list_ready): once per loop turn, outside any connection's events. */
void chopin__engine_run_ready(struct chopin__engine *e);
/** Lists `c` for chopin__engine_run_ready (once). */
void chopin__engine_list_ready(struct chopin__engine *e, struct chopin__conn *c);
/** Milliseconds the loop may sleep before the next timer (capped at 1000: Date refresh). */
int chopin__engine_timeout(const struct chopin__engine *e);

/** A slot for a new connection on socket `fd` (-1 when there is none, as in tests), or
 *  NULL when the slab is full and no idle connection could be evicted. */
struct chopin__conn *chopin__engine_conn_new(struct chopin__engine *e, int fd);
/** chopin__engine_conn_new for a socket accepted on a listener with `listen_flags`
 *  (CHOPIN__LISTEN_*, listen.h), which the connection keeps. */
struct chopin__conn *chopin__engine_conn_accepted(struct chopin__engine *e, int fd,
                                                  uint8_t listen_flags);
/** Returns a closed connection's slot (its socket is already closed). */
void chopin__engine_conn_free(struct chopin__engine *e, struct chopin__conn *c);
/** The slab is full and a newcomer waits: closes (through notify) the connection that
 *  has made the least progress, the oldest still receiving its request head (answered
 *  408), else the oldest idle keep-alive one; never one with a request being served or
 *  output owed. Returns 1 if there was one. (Named when only idle ones were evicted.) */
int chopin__engine_evict_idle(struct chopin__engine *e);
/** Nonzero when chopin__engine_evict_idle would close a connection. */
int chopin__engine_can_evict(const struct chopin__engine *e);
/** Out of descriptors: asks the oldest idle keep-alive connection to close (through
 *  notify). Returns 1 if there was one. */
int chopin__engine_close_idle(struct chopin__engine *e);
/** Starts draining: idle connections are asked to close, busy ones finish. */
void chopin__engine_drain(struct chopin__engine *e);
/** Open connections. */
static inline uint32_t chopin__engine_conns(const struct chopin__engine *e) { return e->slab.used; }

void *chopin__engine_worker_data(const struct chopin__engine *e);
int chopin__engine_worker_id(const struct chopin__engine *e);

#endif
