/* SPDX-License-Identifier: MIT */
/*
 * A worker: one thread, pinned to one CPU, with its own listener sockets, engine and backend
 * loop. Nothing here is shared with other workers except the read-only router and
 * configuration, and the stop request.
 */
#ifndef CHOPIN_WORKER_H
#define CHOPIN_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "engine.h"
#include "listen.h"

struct chopin__backend;
struct chopin_server;

enum chopin__accept_state {
    CHOPIN__ACCEPT_ON = 0,
    CHOPIN__ACCEPT_FULL,   /* slab full: connections wait in the backlog until a slot frees */
    CHOPIN__ACCEPT_BACKOFF,/* out of descriptors or memory: retry at accept_retry_ms */
    CHOPIN__ACCEPT_CLOSED, /* draining: the listener is closed */
};

/* A worker's socket of one of the server's listeners (-1 once closed: draining). */
struct chopin__worker_listen {
    int fd;
    uint8_t flags; /* CHOPIN__LISTEN_*: given to every connection accepted on it */
};

struct chopin__worker {
    struct chopin__engine engine;
    struct chopin_server *server;
    const struct chopin__backend *backend;
    pthread_t thread;
    int id;
    int cpu;        /* CPU to pin to, -1 for none */
    int nlisten;
    struct chopin__worker_listen listen[CHOPIN__MAX_LISTENERS]; /* the server's, in order */
    int wake_fd;    /* eventfd: written by chopin_server_stop, and by a post to an empty
                       queue (loop/postq.h) */
    int draining;
    int done;
    int result;
    int ready;      /* engine initialized (atomic): chopin_server_stats may read its counters */
    uint8_t accept_state;
    uint8_t accept_resume; /* a slot freed while ACCEPT_FULL: accept again this turn */
    uint64_t accept_retry_ms;
    uint64_t drain_deadline_ms;
    char *scratch;  /* where reads land before the engine sees them */
    size_t scratch_size;
};

/** Monotonic milliseconds. */
uint64_t chopin__clock_ms(void);

/** Refreshes the clocks: call right after waking, before handling events. */
void chopin__worker_clock(struct chopin__worker *w);
/** Runs posted functions, fires due timers; returns nonzero when the loop should end
 *  (drained, or the shutdown bound passed). Call after handling the events of a turn. */
int chopin__worker_turn(struct chopin__worker *w);
/** How long the loop may sleep (ms). */
int chopin__worker_timeout(const struct chopin__worker *w);
/** Nonzero when a new connection can be taken now: a slot is free, or the slab is full
 *  and a connection can be evicted for the socket once it is accepted (a head arriving in
 *  pieces, an idle one: chopin__engine_evict_idle; nothing is evicted here:
 *  chopin__engine_conn_new does it with the socket in hand). Zero when draining, or when
 *  the slab is full of connections serving or owing answers (ACCEPT_FULL: new connections
 *  wait in the kernel's backlog until a slot frees). */
int chopin__worker_may_accept(struct chopin__worker *w);
/** accept failed with `err`: returns 1 to retry at once, 0 to stop accepting for now.
 *  Out of descriptors or memory, it evicts an idle connection if a client is waiting in
 *  the listener's backlog, else backs off (accept_retry_ms). */
int chopin__worker_accept_failed(struct chopin__worker *w, int err);
/** Stops accepting until accept_retry_ms (out of descriptors or memory, nothing to evict
 *  now). */
void chopin__worker_accept_backoff(struct chopin__worker *w);
/** A connection was freed: resume accepting if the slab was full. */
void chopin__worker_slot_freed(struct chopin__worker *w);
/** Nonzero when the loop should run its accept path this turn (backoff expired, or
 *  a slot freed). Clears the condition. */
int chopin__worker_accept_due(struct chopin__worker *w);
/** The wake descriptor fired (a stop, or a post to an empty queue): consumes it, and
 *  starts the graceful drain when the server was asked to stop. Returns 1 when the drain
 *  began now: the backend must then stop accepting (take the backlog, close the
 *  listener). The posted functions run in chopin__worker_turn. */
int chopin__worker_woken(struct chopin__worker *w);
/** Posts to the engine wake the worker through its wake descriptor (before anyone may
 *  post: the worker's thread, before it is marked ready). */
void chopin__worker_wake_on_post(struct chopin__worker *w);
/** Calls close_conn on every connection still open. */
void chopin__worker_close_all(struct chopin__worker *w,
                              void (*close_conn)(struct chopin__worker *w, struct chopin__conn *c));
/** Logs a line to stderr prefixed with the worker id (not on the hot path). */
void chopin__worker_log(const struct chopin__worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
