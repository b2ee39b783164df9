/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend, the application's descriptors (chopin_worker_watch): a one-shot
 * IORING_OP_POLL_ADD per watch, armed again after each completion while the watch lasts,
 * which gives the level-triggered readiness the contract promises (a descriptor still
 * ready completes its next poll at once).
 *
 * A poll's user_data names the descriptor and the watch's generation (loop/loop.h): a
 * completion for a watch that ended, or was replaced (unwatched and watched again, or
 * given other events), is dropped and never armed again. Ending or replacing a watch also
 * cancels its poll, so the poll does not hold the descriptor's file until it fires.
 */
#ifdef CHOPIN_HAVE_URING

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "backend/uring_loop.h"
#include "chopin.h"
#include "engine.h"
#include "worker.h"

static uint64_t watch_udata(int fd, uint32_t gen) {
    return chopin__udata_make(CHOPIN__UOP_WATCH, (uint32_t)fd, gen);
}

static void retry_later(struct chopin__uring *l, uint64_t ud) {
    if (l->nwatch_retry == l->watch_retry_cap) {
        unsigned cap = l->watch_retry_cap ? l->watch_retry_cap * 2 : 16;
        uint64_t *r = realloc(l->watch_retry, cap * sizeof *r);
        if (!r)
            return; /* out of memory too: the watch stays silent until watched again */
        l->watch_retry = r;
        l->watch_retry_cap = cap;
    }
    l->watch_retry[l->nwatch_retry++] = ud;
}

static void arm(struct chopin__uring *l, int fd, unsigned events, uint32_t gen) {
    struct io_uring_sqe *sqe = chopin__uring_sqe(l);
    if (!sqe) {
        retry_later(l, watch_udata(fd, gen));
        return;
    }
    unsigned mask = (events & CHOPIN_READABLE ? POLLIN : 0) | (events & CHOPIN_WRITABLE ? POLLOUT : 0);
    io_uring_prep_poll_add(sqe, fd, mask);
    io_uring_sqe_set_data64(sqe, watch_udata(fd, gen));
    l->app_polls++;
}

static void cancel(struct chopin__uring *l, int fd, uint32_t gen) {
    struct io_uring_sqe *sqe = chopin__uring_sqe(l);
    if (!sqe)
        return; /* its completion is dropped all the same (stale generation) */
    io_uring_prep_cancel64(sqe, watch_udata(fd, gen), 0);
    io_uring_sqe_set_data64(sqe, chopin__udata_make(CHOPIN__UOP_CANCEL, 0, 0));
}

int chopin__uring_watch(void *ctx, int fd, unsigned events, uint32_t gen, unsigned old_events,
                        uint32_t old_gen) {
    struct chopin__uring *l = ctx;
    if ((uint32_t)fd >= CHOPIN__UDATA_MAX_SLOTS)
        return -EBADF; /* user_data has 24 bits for it */
    if (old_events)
        cancel(l, fd, old_gen);
    if (events)
        arm(l, fd, events, gen);
    return 0;
}

static unsigned ready_of(int res) {
    if (res < 0) /* EBADF and the like: the application must look */
        return CHOPIN__WATCH_ERR;
    return (res & POLLIN ? CHOPIN_READABLE : 0) | (res & POLLOUT ? CHOPIN_WRITABLE : 0) |
           (res & (POLLERR | POLLHUP | POLLNVAL) ? CHOPIN__WATCH_ERR : 0);
}

/* Armed again only when the watch is still the one polled: one the callback replaced has
 * its own poll already. */
static void rearm_if_current(struct chopin__uring *l, int fd, uint32_t gen) {
    unsigned events;
    if (!l->exiting && chopin__loop_watch_gen(&l->w->engine, fd, &events) == gen)
        arm(l, fd, events, gen);
}

void chopin__uring_watch_cqe(struct chopin__uring *l, const struct io_uring_cqe *cqe) {
    l->app_polls--;
    int fd = (int)chopin__udata_slot(cqe->user_data);
    uint32_t gen = chopin__udata_gen(cqe->user_data);
    if (cqe->res == -ECANCELED || l->exiting)
        return;
    chopin__loop_watch_fire(&l->w->engine, fd, gen, ready_of(cqe->res));
    rearm_if_current(l, fd, gen);
}

void chopin__uring_watch_retries(struct chopin__uring *l) {
    unsigned n = l->nwatch_retry;
    l->nwatch_retry = 0; /* arm() may queue them again */
    for (unsigned i = 0; i < n; i++) {
        uint64_t ud = l->watch_retry[i];
        rearm_if_current(l, (int)chopin__udata_slot(ud), chopin__udata_gen(ud));
    }
}

void chopin__uring_watch_cancel_all(struct chopin__uring *l) {
    const struct chopin__engine *e = &l->w->engine;
    for (uint32_t fd = 0; fd < e->loop.watches_cap; fd++) {
        unsigned events;
        uint32_t gen = chopin__loop_watch_gen(e, (int)fd, &events);
        if (gen)
            cancel(l, (int)fd, gen);
    }
    free(l->watch_retry);
    l->watch_retry = NULL;
    l->nwatch_retry = l->watch_retry_cap = 0;
}

#endif
