/* SPDX-License-Identifier: MIT */
/*
 * The application's side of a worker's loop (chopin.h, "The worker's loop"): functions
 * posted from any thread, timers, and the application's own descriptors. It lives in the
 * engine, sans-I/O, so unit tests drive it with a set clock and no backend: the engine
 * knows only two hooks the worker and its backend set,
 *   - wake: a post found the queue empty (one wake per batch; the worker's loop then runs
 *     the queue in its next turn, chopin__loop_run_posted);
 *   - watch: start, change or stop the kernel's interest in an application descriptor.
 * The backend reports readiness back with chopin__loop_watch_fire, naming the watch by
 * descriptor and generation, so an event that comes after the descriptor was unwatched
 * (or unwatched and watched again) is recognised and dropped.
 *
 * `chopin_worker *` is the worker's engine (a cast), so all of this works on a bare
 * engine too.
 */
#ifndef CHOPIN_LOOP_LOOP_H
#define CHOPIN_LOOP_LOOP_H

#include <stdint.h>

#include "loop/postq.h"

struct chopin__engine;
struct chopin__utimer;
struct chopin__watch;

/** The backend's side of a watch: make the kernel report `fd` for `events`
 *  (CHOPIN_READABLE / CHOPIN_WRITABLE, level-triggered) under generation `gen`, replacing
 *  what was registered (`old_events` under `old_gen`; 0: nothing), or stop (`events` 0).
 *  0 or a negative errno (then nothing changed). */
typedef int (*chopin__watch_hook)(void *ctx, int fd, unsigned events, uint32_t gen,
                                  unsigned old_events, uint32_t old_gen);

struct chopin__apploop {
    struct chopin__postq postq;
    void (*wake)(void *ctx); /* set once, before anyone may post */
    void *wake_ctx;
    chopin__watch_hook watch; /* NULL while no backend runs */
    void *watch_ctx;
    struct chopin__utimer **timers; /* by handle index; nodes never move (the wheel links them) */
    uint32_t ntimers, timers_cap;
    uint32_t timer_free;            /* index + 1 of the first free node, 0: none */
    struct chopin__watch *watches;  /* by descriptor */
    uint32_t watches_cap;
};

/* Readiness a backend reports besides CHOPIN_READABLE / CHOPIN_WRITABLE: an error or a
 * hang-up, which the application sees as every event it watches. */
#define CHOPIN__WATCH_ERR 0x100u

/** Thread-safe: runs fn(arg) on e's worker thread in a coming loop turn (one thread's
 *  posts run in the order posted). 0, -ENOMEM, or -ESHUTDOWN once the worker has ended
 *  (fn never runs; arg stays the caller's). */
int chopin__engine_post(struct chopin__engine *e, void (*fn)(void *arg), void *arg);

/** The calling thread is e's worker from now on (chopin_worker_current); NULL: no longer. */
void chopin__loop_enter(struct chopin__engine *e);

/** The worker's thread, once per loop turn when chopin__postq_busy says so: runs what
 *  was posted. */
void chopin__loop_run_posted(struct chopin__engine *e);
/** The worker's end: closes the queue (later posts fail) and runs what was posted before. */
void chopin__loop_close(struct chopin__engine *e);
/** Closes the queue and frees timers and the watch table (engine destroy). */
void chopin__loop_destroy(struct chopin__engine *e);

/** A backend starts: sets the watch hook and registers every descriptor already watched
 *  (worker_init may have watched some). A descriptor that cannot be registered stops being
 *  watched. NULL hook: the backend ends (the kernel objects go with it). */
void chopin__loop_attach(struct chopin__engine *e, chopin__watch_hook hook, void *ctx);
/** The backend reports `fd` ready (CHOPIN_READABLE | CHOPIN_WRITABLE | CHOPIN__WATCH_ERR)
 *  for watch `gen`: calls the application unless that watch has ended. */
void chopin__loop_watch_fire(struct chopin__engine *e, int fd, uint32_t gen, unsigned ready);
/** The current watch of `fd`: its generation (0: not watched) and events. */
uint32_t chopin__loop_watch_gen(const struct chopin__engine *e, int fd, unsigned *events);

#endif
