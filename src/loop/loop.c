/* SPDX-License-Identifier: MIT */
/* The application's side of a worker's loop (see loop.h). */
#include "loop/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "chopin.h"
#include "engine.h"

#define WATCH_EVENTS (CHOPIN_READABLE | CHOPIN_WRITABLE)

/* ----- posted functions ------------------------------------------------------------- */

struct posted {
    struct chopin__task task;
    void (*fn)(void *arg);
    chopin_task_fn task_fn;
    void *arg;
};

static void run_posted(struct chopin__task *t, void *ctx) {
    struct posted p = *(struct posted *)t;
    free(t);
    if (p.task_fn)
        p.task_fn((chopin_worker *)ctx, p.arg);
    else
        p.fn(p.arg);
}

static int post(struct chopin__engine *e, void (*fn)(void *), chopin_task_fn task_fn, void *arg) {
    struct posted *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    *p = (struct posted){.task.run = run_posted, .fn = fn, .task_fn = task_fn, .arg = arg};
    struct chopin__apploop *l = &e->loop;
    int rc = chopin__postq_push(&l->postq, &p->task);
    if (rc < 0) {
        free(p);
        return rc;
    }
    if (rc == 1 && l->wake)
        l->wake(l->wake_ctx);
    return 0;
}

/* Each worker thread runs one engine: a thread-local names it for chopin_worker_current. */
static __thread struct chopin__engine *current_engine;

void chopin__loop_enter(struct chopin__engine *e) { current_engine = e; }

chopin_worker *chopin_worker_current(void) { return (chopin_worker *)current_engine; }

int chopin__engine_post(struct chopin__engine *e, void (*fn)(void *arg), void *arg) {
    return post(e, fn, NULL, arg);
}

int chopin_worker_post(chopin_worker *w, chopin_task_fn fn, void *arg) {
    if (!w || !fn)
        return -EINVAL;
    return post((struct chopin__engine *)w, NULL, fn, arg);
}

void chopin__loop_run_posted(struct chopin__engine *e) { chopin__postq_run(&e->loop.postq, e); }

void chopin__loop_close(struct chopin__engine *e) { chopin__postq_close(&e->loop.postq, e); }

/* ----- timers ------------------------------------------------------------------------- */

/* A handle is the node's index + 1 (0 is none) and its generation, bumped when the timer
 * ends: a handle kept past the end names nothing, even once the node serves another. */
struct chopin__utimer {
    struct chopin__app_timer at;
    struct chopin__engine *e;
    chopin_timer_fn fn;
    void *arg;
    uint64_t due_ms;
    uint64_t every_ms;
    uint32_t index, gen;
    uint32_t next_free; /* index + 1 of the next free node, 0: none */
    uint8_t live;
};

static chopin_timer handle_of(const struct chopin__utimer *t) {
    return (uint64_t)t->gen << 32 | (uint64_t)(t->index + 1);
}

static struct chopin__utimer *timer_of(struct chopin__engine *e, chopin_timer h) {
    uint32_t index = (uint32_t)h - 1;
    if ((uint32_t)h == 0 || index >= e->loop.ntimers)
        return NULL;
    struct chopin__utimer *t = e->loop.timers[index];
    return t->live && t->gen == (uint32_t)(h >> 32) ? t : NULL;
}

static void timer_end(struct chopin__utimer *t) {
    struct chopin__apploop *l = &t->e->loop;
    chopin__engine_app_timer_del(t->e, &t->at);
    t->live = 0;
    t->gen++;
    t->next_free = l->timer_free;
    l->timer_free = t->index + 1;
}

/* The next due time of a repeating timer: one period after the last due time (no drift
 * however late the loop ran it), skipping the periods a stalled loop missed. */
static uint64_t next_due(const struct chopin__utimer *t, uint64_t now) {
    uint64_t next = t->due_ms + t->every_ms;
    if (next < now)
        next += (now - next) / t->every_ms * t->every_ms;
    return next;
}

static void timer_fire(struct chopin__app_timer *at) {
    struct chopin__utimer *t = (struct chopin__utimer *)at;
    struct chopin__engine *e = t->e;
    chopin_timer h = handle_of(t);
    chopin_timer_fn fn = t->fn;
    void *arg = t->arg;
    if (t->every_ms) {
        t->due_ms = next_due(t, e->now_ms);
        chopin__engine_app_timer_add(e, &t->at, t->due_ms);
    } else {
        timer_end(t); /* before the call: the callback may start another in this node */
    }
    fn((chopin_worker *)e, h, arg);
}

static struct chopin__utimer *timer_node(struct chopin__engine *e) {
    struct chopin__apploop *l = &e->loop;
    if (l->timer_free) {
        struct chopin__utimer *t = l->timers[l->timer_free - 1];
        l->timer_free = t->next_free;
        return t;
    }
    if (l->ntimers == l->timers_cap) {
        uint32_t cap = l->timers_cap ? l->timers_cap * 2 : 16;
        struct chopin__utimer **a = realloc(l->timers, cap * sizeof *a);
        if (!a)
            return NULL;
        l->timers = a;
        l->timers_cap = cap;
    }
    struct chopin__utimer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    chopin__timer_init(&t->at.t);
    t->at.fire = timer_fire;
    t->e = e;
    t->index = l->ntimers;
    t->gen = 1;
    l->timers[l->ntimers++] = t;
    return t;
}

chopin_timer chopin_timer_start(chopin_worker *w, uint64_t after_ms, uint64_t every_ms,
                                chopin_timer_fn fn, void *arg) {
    struct chopin__engine *e = (struct chopin__engine *)w;
    if (!e || !fn)
        return 0;
    struct chopin__utimer *t = timer_node(e);
    if (!t)
        return 0;
    t->fn = fn;
    t->arg = arg;
    t->every_ms = every_ms;
    t->due_ms = e->now_ms + after_ms;
    t->live = 1;
    chopin__engine_app_timer_add(e, &t->at, t->due_ms);
    return handle_of(t);
}

int chopin_timer_stop(chopin_worker *w, chopin_timer h) {
    struct chopin__utimer *t = w ? timer_of((struct chopin__engine *)w, h) : NULL;
    if (!t)
        return -ENOENT;
    timer_end(t);
    return 0;
}

/* ----- watched descriptors -------------------------------------------------------------- */

struct chopin__watch {
    chopin_watch_fn fn;
    void *arg;
    uint32_t gen;    /* bumped at every change the kernel must know of */
    unsigned events; /* 0: not watched */
};

static int watches_grow(struct chopin__apploop *l, int fd) {
    if ((uint32_t)fd < l->watches_cap)
        return 0;
    uint32_t cap = l->watches_cap ? l->watches_cap : 64;
    while (cap <= (uint32_t)fd)
        cap *= 2;
    struct chopin__watch *a = realloc(l->watches, cap * sizeof *a);
    if (!a)
        return -ENOMEM;
    memset(a + l->watches_cap, 0, (cap - l->watches_cap) * sizeof *a);
    l->watches = a;
    l->watches_cap = cap;
    return 0;
}

static uint32_t next_gen(uint32_t gen) { return gen + 1 ? gen + 1 : 1; }

/* Asks the backend (if one runs) to register `events` for `fd` under a new generation. */
static int watch_set(struct chopin__apploop *l, int fd, unsigned events) {
    struct chopin__watch *x = &l->watches[fd];
    uint32_t gen = next_gen(x->gen);
    if (l->watch) {
        int rc = l->watch(l->watch_ctx, fd, events, gen, x->events, x->gen);
        if (rc < 0)
            return rc;
    }
    x->gen = gen;
    x->events = events;
    return 0;
}

int chopin_worker_watch(chopin_worker *w, int fd, unsigned events, chopin_watch_fn fn, void *arg) {
    struct chopin__engine *e = (struct chopin__engine *)w;
    events &= WATCH_EVENTS;
    if (!e || !fn || !events)
        return -EINVAL;
    if (fd < 0 || fcntl(fd, F_GETFD) < 0)
        return -EBADF;
    struct chopin__apploop *l = &e->loop;
    if (watches_grow(l, fd) < 0)
        return -ENOMEM;
    struct chopin__watch *x = &l->watches[fd];
    if (x->events != events) {
        int rc = watch_set(l, fd, events);
        if (rc < 0)
            return rc;
    }
    x->fn = fn;
    x->arg = arg;
    return 0;
}

int chopin_worker_unwatch(chopin_worker *w, int fd) {
    struct chopin__engine *e = (struct chopin__engine *)w;
    struct chopin__apploop *l = e ? &e->loop : NULL;
    if (!l || fd < 0 || (uint32_t)fd >= l->watches_cap || !l->watches[fd].events)
        return -ENOENT;
    if (watch_set(l, fd, 0) < 0) { /* a backend cannot refuse forgetting: be sure of it */
        l->watches[fd].gen = next_gen(l->watches[fd].gen);
        l->watches[fd].events = 0;
    }
    return 0;
}

void chopin__loop_watch_fire(struct chopin__engine *e, int fd, uint32_t gen, unsigned ready) {
    struct chopin__apploop *l = &e->loop;
    if (fd < 0 || (uint32_t)fd >= l->watches_cap)
        return;
    struct chopin__watch *x = &l->watches[fd];
    if (!x->events || x->gen != gen)
        return; /* unwatched (maybe watched again) since the backend saw it */
    unsigned events = ready & CHOPIN__WATCH_ERR ? x->events : ready & x->events;
    if (events)
        x->fn((chopin_worker *)e, fd, events, x->arg);
}

uint32_t chopin__loop_watch_gen(const struct chopin__engine *e, int fd, unsigned *events) {
    const struct chopin__apploop *l = &e->loop;
    if (fd < 0 || (uint32_t)fd >= l->watches_cap || !l->watches[fd].events)
        return 0;
    *events = l->watches[fd].events;
    return l->watches[fd].gen;
}

void chopin__loop_attach(struct chopin__engine *e, chopin__watch_hook hook, void *ctx) {
    struct chopin__apploop *l = &e->loop;
    l->watch = hook;
    l->watch_ctx = ctx;
    for (uint32_t fd = 0; hook && fd < l->watches_cap; fd++) {
        struct chopin__watch *x = &l->watches[fd];
        if (x->events && hook(ctx, (int)fd, x->events, x->gen, 0, 0) < 0) {
            x->events = 0;
            x->gen = next_gen(x->gen);
        }
    }
}

/* ----- the end ------------------------------------------------------------------------ */

void chopin__loop_destroy(struct chopin__engine *e) {
    struct chopin__apploop *l = &e->loop;
    chopin__loop_close(e);
    for (uint32_t i = 0; i < l->ntimers; i++) {
        chopin__engine_app_timer_del(e, &l->timers[i]->at);
        free(l->timers[i]);
    }
    free(l->timers);
    free(l->watches);
    l->timers = NULL;
    l->watches = NULL;
    l->ntimers = l->timers_cap = l->watches_cap = l->timer_free = 0;
}
