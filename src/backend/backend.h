/* SPDX-License-Identifier: MIT */
/*
 * The backend contract: a backend moves bytes between sockets and the engine and
 * reports what happened; it knows nothing of HTTP. It owns its worker's event loop:
 *
 *   - accept on every socket of w->listen[] while chopin__worker_may_accept(w), handing
 *     each connection to chopin__engine_conn_accepted with its listener's flags; on EMFILE
 *     and friends, chopin__worker_accept_failed; when draining, close each listener
 *     socket (set its fd to -1), after forgetting it in the kernel's interest set;
 *   - feed received bytes to chopin__conn_on_data (or on_eof / on_error), send what
 *     chopin__conn_out_plan returns and report it with chopin__conn_on_sent, and obey
 *     conn->ask (SHUTDOWN, CLOSE) after every call (see conn.h);
 *   - act on engine->notify(conn), which the engine calls when a timer or an eviction
 *     changed a connection outside an I/O event;
 *   - call chopin__worker_turn once per loop turn (it runs posted functions and timers),
 *     sleep at most chopin__worker_timeout, and watch w->wake_fd: when it fires, call
 *     chopin__worker_woken, and stop accepting when it says the drain began;
 *   - register the application's descriptors through the watch hook it gives
 *     chopin__loop_attach while its loop runs (level-triggered), and report their
 *     readiness with chopin__loop_watch_fire outside any connection's events;
 *   - return once chopin__worker_turn says the worker is done, after closing every
 *     connection still open (chopin__worker_close_all helps).
 *
 * Readiness backends (epoll, kqueue) and completion backends (io_uring) both fit: the
 * connection never asks who performs the I/O or when.
 */
#ifndef CHOPIN_BACKEND_H
#define CHOPIN_BACKEND_H

struct chopin__worker;
struct chopin__config;

struct chopin__backend {
    const char *name;
    /** 0 when the backend can run on this machine with this configuration, else a
     *  negative errno (probed once, before the workers start). */
    int (*probe)(const struct chopin__config *cfg);
    /** Runs the worker's loop until it has drained. 0, or a negative errno when it
     *  could not start (the worker then falls back to epoll, if it was not epoll). */
    int (*run)(struct chopin__worker *w);
};

extern const struct chopin__backend chopin__epoll_backend;
#ifdef CHOPIN_HAVE_URING
extern const struct chopin__backend chopin__uring_backend;
#endif
#ifdef CHOPIN_HAVE_KQUEUE
extern const struct chopin__backend chopin__kqueue_backend;
#endif

#endif
