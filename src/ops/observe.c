/* SPDX-License-Identifier: MIT */
/* Answers observed per worker: counts, latency histograms, the access log (observe.h). */
#include "ops/observe.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "conn.h"
#include "engine.h"
#include "http/message.h"

const char chopin__request_id_key;
const char chopin__user_key;

#define US 1000ull
#define MS 1000000ull
#define SEC 1000000000ull

const uint64_t chopin__hist_bounds_ns[CHOPIN__HIST_BOUNDS] = {
    10 * US,  25 * US,  50 * US,  75 * US,  100 * US, 250 * US, 500 * US, 750 * US, 1 * MS,
    25 * MS / 10, 5 * MS, 75 * MS / 10, 10 * MS, 25 * MS, 50 * MS, 75 * MS, 100 * MS,
    250 * MS, 500 * MS, 750 * MS, 1 * SEC, 25 * SEC / 10, 5 * SEC, 75 * SEC / 10, 10 * SEC,
};

/* What a connection slot's answers wait for: the time the oldest answer not yet fully
 * sent was dispatched, and how many answers are queued since the output was last empty
 * (pipelined answers leave together). `gen` tells a reused slot. */
struct chopin__obs_slot {
    uint64_t start_ns;
    uint32_t gen;
    uint32_t queued;
};

static uint64_t clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

int chopin__observer_init(struct chopin__engine *e, int timing) {
    const struct chopin__config *cfg = e->cfg;
    if (!timing && cfg->access_fd < 0)
        return 0;
    struct chopin__observer *o = malloc(sizeof *o);
    if (!o)
        return -ENOMEM;
    *o = (struct chopin__observer){.timing = timing};
    e->obs = o;
    if (timing) {
        /* (calloc of a large array maps zero pages: only slots in use cost memory) */
        o->nslots = e->slab.capacity;
        o->slots = calloc(o->nslots, sizeof *o->slots);
        if (!o->slots)
            goto fail;
    }
    if (cfg->access_fd >= 0 &&
        !(o->access = chopin__access_new(cfg->access_fd, cfg->opt.access_log_format,
                                         e->slab.capacity)))
        goto fail;
    return 0;
fail:
    chopin__observer_destroy(e);
    return -ENOMEM;
}

void chopin__observer_destroy(struct chopin__engine *e) {
    struct chopin__observer *o = e->obs;
    if (!o)
        return;
    if (o->access) {
        chopin__access_flush(o->access, 0, 1);
        chopin__access_free(o->access);
    }
    free(o->slots);
    free(o);
    e->obs = NULL;
}

uint64_t chopin__observe_start(const struct chopin__engine *e) {
    return e->obs->timing ? clock_ns() : 0;
}

/* The bucket of `ns`: a binary search over the bounds (upper bounds are inclusive, as
 * Prometheus' `le`). */
static unsigned bucket_of(uint64_t ns) {
    unsigned lo = 0, hi = CHOPIN__HIST_BOUNDS;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (ns <= chopin__hist_bounds_ns[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static void hist_add(struct chopin__hist *h, uint64_t ns, uint32_t n) {
    chopin__count(&h->bucket[bucket_of(ns)], n);
    chopin__count(&h->sum_ns, (int64_t)(ns * n));
}

static struct chopin__obs_slot *slot_of(struct chopin__engine *e, struct chopin__conn *c) {
    uint32_t i = chopin__slab_index(&e->slab, c);
    return i < e->obs->nslots ? &e->obs->slots[i] : NULL;
}

static unsigned status_class(int status) {
    unsigned k = (unsigned)status / 100u;
    return k >= 1 && k <= CHOPIN__CLASSES ? k - 1 : CHOPIN__CLASSES - 1;
}

void chopin__observe_answer(struct chopin__engine *e, struct chopin__conn *c,
                            const chopin_req *req, const chopin_res *res, uint64_t started_ns,
                            const char *protocol) {
    struct chopin__metrics *mt = &e->metrics;
    unsigned m = req->head.method_len ? req->head.method_id : CHOPIN__METHOD_NONE;
    if (m > CHOPIN__METHOD_NONE)
        m = CHOPIN_METHOD_OTHER;
    chopin__count(&mt->answers[m][status_class(res->status)], 1);
    uint64_t took = 0;
    if (started_ns) {
        took = clock_ns() - started_ns;
        hist_add(&mt->handler, took, 1);
        struct chopin__obs_slot *s = slot_of(e, c);
        if (s) {
            if (s->gen != c->gen || s->queued == 0) {
                s->gen = c->gen;
                s->queued = 0;
                s->start_ns = started_ns;
            }
            s->queued++;
        }
    }
    if (e->obs->access)
        chopin__access_line(e, e->obs->access, c, req, res, took, protocol);
}

void chopin__observe_sent_all(struct chopin__engine *e, struct chopin__conn *c) {
    if (!e->obs->timing)
        return;
    struct chopin__obs_slot *s = slot_of(e, c);
    if (!s || s->gen != c->gen || s->queued == 0)
        return;
    hist_add(&e->metrics.ttlb, clock_ns() - s->start_ns, s->queued);
    s->queued = 0;
}

void chopin__observe_turn(struct chopin__engine *e) {
    if (e->counters.idle != e->idle_count)
        __atomic_store_n(&e->counters.idle, e->idle_count, __ATOMIC_RELAXED);
    if (e->obs->access)
        chopin__access_flush(e->obs->access, e->now_ms, 0);
}
