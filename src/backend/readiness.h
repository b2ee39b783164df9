/* SPDX-License-Identifier: MIT */
/*
 * The readiness loop, shared by the epoll and kqueue backends (as redis's ae.c is shared by
 * ae_epoll.c and ae_kqueue.c). The loop owns everything a turn does: wait, serve the
 * connections the wait reported, serve again those that used up their read budget, accept,
 * run timers, drain and stop. A poller supplies only what differs between the kernels:
 * the wait, and its interest calls (watch a new connection, watch for output or stop,
 * forget a descriptor before it is closed).
 *
 * Readiness is edge-like on both (EPOLLET, EV_CLEAR): an event is not repeated while the
 * socket stays ready. So the loop remembers per connection, in conn->backend_flags, whether
 * the socket may still hold input or take output, reads until EAGAIN or until the
 * connection stops wanting input (backpressure), and resumes as soon as it wants more.
 */
#ifndef CHOPIN_BACKEND_READINESS_H
#define CHOPIN_BACKEND_READINESS_H

#include <stdint.h>

struct chopin__conn;
struct chopin__worker;
struct chopin__readiness_loop;

/* conn->backend_flags kept by the loop; a poller's own flags start at 0x20. A poller sets
 * the first three from its events and reads OUT_ARMED; the loop does the rest. */
#define CHOPIN__READABLE 0x1u     /* the socket may hold input */
#define CHOPIN__WRITABLE 0x2u     /* the socket may take output */
#define CHOPIN__HUNG_UP 0x4u      /* the peer hung up: read on until EOF */
#define CHOPIN__OUT_ARMED 0x8u    /* output interest is registered (or queued to be) */
#define CHOPIN__READY_QUEUED 0x10u /* in the loop's ready list */

/* The most events one wait reports: a poller asks its kernel for no more. */
#define CHOPIN__LOOP_EVENTS 256

/** What a poller supplies. Every function gets the loop its own state embeds. */
struct chopin__poller {
    const char *wait_name; /* the wait's system call, for the log when it fails */
    /** Waits at most `timeout_ms` (0: do not sleep) and reports what happened: each
     *  connection with an event gets its CHOPIN__READABLE / WRITABLE / HUNG_UP flags set
     *  and is put in l->fired (a connection may be there twice); an event on the listener
     *  sets l->accept_now, one on the wake descriptor l->woken. Returns how many
     *  connections it put in l->fired (0 on EINTR), or a negative errno. */
    int (*wait)(struct chopin__readiness_loop *l, int timeout_ms);
    /** A new connection: watch it for input from now on. 0 or a negative errno. */
    int (*watch)(struct chopin__readiness_loop *l, struct chopin__conn *c);
    /** Start (on) or stop (!on) watching the connection for output. 0 or a negative errno
     *  (the loop then fails the connection). */
    int (*watch_output)(struct chopin__readiness_loop *l, struct chopin__conn *c, int on);
    /** The connection's socket is about to be closed. NULL when close() is enough. */
    void (*forget)(struct chopin__readiness_loop *l, struct chopin__conn *c);
    /** Listener socket `fd` is about to be closed. NULL when close() is enough. */
    void (*forget_listener)(struct chopin__readiness_loop *l, int fd);
    /** An application descriptor (chopin_worker_watch): register `events` (CHOPIN_READABLE,
     *  CHOPIN_WRITABLE), level-triggered, reported with `tag`, in place of `old_events`;
     *  `events` 0: stop. Applied at once (the application hears of a failure). 0 or a
     *  negative errno. Its events go to chopin__readiness_app_event. */
    int (*watch_app)(struct chopin__readiness_loop *l, int fd, unsigned events,
                     unsigned old_events, uint64_t tag);
};

/* The tag (epoll data, kevent udata) of the worker's listener socket `i` (w->listen[i]):
 * low bits 1, which no connection slot (64-byte aligned) has. */
#define CHOPIN__LISTENER_TAG 1u
static inline uint64_t chopin__readiness_listener_tag(int i) {
    return (uint64_t)i << 3 | CHOPIN__LISTENER_TAG;
}
static inline int chopin__readiness_is_listener(uint64_t tag) {
    return (tag & 7u) == CHOPIN__LISTENER_TAG;
}

/* The tag (epoll data, kevent udata) of an application descriptor's watch: its
 * descriptor and the watch's generation, with low bits no connection slot (64-byte
 * aligned), listener (1) or wake (2) tag has. */
#define CHOPIN__APP_TAG 4u
static inline uint64_t chopin__readiness_app_tag(int fd, uint32_t gen) {
    return (uint64_t)gen << 32 | (uint64_t)(uint32_t)fd << 3 | CHOPIN__APP_TAG;
}
static inline int chopin__readiness_is_app(uint64_t tag) { return (tag & 7u) == CHOPIN__APP_TAG; }

/* An application descriptor reported ready by the last wait. */
struct chopin__app_event {
    int fd;
    uint32_t gen;
    unsigned ready; /* CHOPIN_READABLE | CHOPIN_WRITABLE | CHOPIN__WATCH_ERR (loop/loop.h) */
};

/* A connection to serve again: it used up its read budget, or a poller failed it. With
 * its generation, because it may be closed and its slot reused before the list is served. */
struct chopin__ready {
    struct chopin__conn *c;
    uint32_t gen;
};

/** The loop's state; a poller's state embeds it (first member) and fills poller and w. */
struct chopin__readiness_loop {
    const struct chopin__poller *poller;
    struct chopin__worker *w;
    uint32_t accept_now; /* bit i: listener i reported connections (set by wait) */
    int woken;      /* the wake descriptor fired: a stop or a post (set by wait) */
    struct chopin__ready *ready;
    uint32_t nready, ready_cap;
    struct chopin__conn *fired[CHOPIN__LOOP_EVENTS];
    struct chopin__app_event app[CHOPIN__LOOP_EVENTS];
    int napp;
};

/** A poller's wait saw the listener socket of `tag` ready. */
static inline void chopin__readiness_listener_event(struct chopin__readiness_loop *l,
                                                    uint64_t tag) {
    l->accept_now |= 1u << (tag >> 3);
}

/** A poller's wait saw the application descriptor of `tag` ready (served after the
 *  connections of the same wait). */
static inline void chopin__readiness_app_event(struct chopin__readiness_loop *l, uint64_t tag,
                                               unsigned ready) {
    l->app[l->napp++] = (struct chopin__app_event){(int)((uint32_t)tag >> 3),
                                                   (uint32_t)(tag >> 32), ready};
}

/**
 * Runs the worker's loop (backend.h's contract) until it has drained, and closes every
 * connection still open and the listener. The poller's descriptors are its own to close
 * afterwards. Returns 0.
 */
int chopin__readiness_run(struct chopin__readiness_loop *l);

/**
 * A poller could not apply an interest change for `c` outside a call about `c` (a batch
 * of changes flushed early): the connection fails and is closed when the loop next serves
 * its ready list.
 */
void chopin__readiness_conn_failed(struct chopin__readiness_loop *l, struct chopin__conn *c);

#endif
