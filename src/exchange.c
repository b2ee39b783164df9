/* SPDX-License-Identifier: MIT */
/* Exchanges and deferred answers (see exchange.h and chopin.h, "Answers that come later"). */
#include "exchange.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/exchange.h"
#include "conn.h"

/* The arena block of an exchange. Most requests need a few hundred bytes of scratch; a
 * block this size holds a small JSON document too. A deferred exchange keeps its block
 * while it waits, so this is also what one costs beyond its request's bytes. */
#define ARENA_BLOCK 16384
/* Exchanges kept for reuse beyond those in use. Deferred answers come in waves (10,000
 * clients answered by a 100 ms timer ask again together): freeing what a wave gave back
 * and allocating it again for the next one cost an allocation and a free of the arena
 * block per request, 12% of the worker's CPU (perf, bench/later.sh part B). So the spares
 * cover the most exchanges open at once in the last second, and at least SPARES_MIN; past
 * a quiet second the excess goes as exchanges come back. */
#define SPARES_MIN 256
#define PEAK_WINDOW_MS 1000

static struct chopin__engine *engine_of(chopin_worker *w) { return (struct chopin__engine *)w; }

static void deadlines_passed(struct chopin__app_timer *t);

/* ----- lifecycle --------------------------------------------------------------------- */

static struct chopin__exchange *exchange_new(struct chopin__engine *e) {
    struct chopin__exchange *x = e->spares;
    if (x) {
        e->spares = x->next;
        e->nspares--;
    } else {
        x = calloc(1, sizeof *x);
        if (!x)
            return NULL;
        /* The arena holds copied bodies, so one request may need up to the body limit. */
        chopin__arena_init(&x->arena, ARENA_BLOCK,
                           (size_t)e->cfg->opt.max_body_bytes + (1u << 20));
    }
    x->next = NULL;
    x->conn = NULL;
    x->on_cancel = NULL;
    x->cancel_arg = NULL;
    x->slot = CHOPIN__NO_SLOT;
    x->state = CHOPIN__X_RUNNING;
    x->sink = NULL;
    x->body_to_come = 0;
    x->kept = 0;
    return x;
}

static void exchange_destroy(struct chopin__exchange *x) {
    chopin__arena_destroy(&x->arena);
    free(x);
}

struct chopin__exchange *chopin__exchange_first(struct chopin__engine *e) {
    e->cur = exchange_new(e);
    return e->cur;
}

int chopin__exchange_detach(struct chopin__engine *e, struct chopin__exchange *x) {
    if (x != e->cur)
        return 0;
    struct chopin__exchange *next = exchange_new(e);
    if (!next)
        return -ENOMEM;
    e->cur = next;
    return 0;
}

/* The handle table. A slot is taken when an exchange defers and given back (its
 * generation bumped) when it is finished or cancelled: so the table's size bounds the open
 * exchanges, and a handle outliving its exchange never matches again. */
static int slot_take(struct chopin__engine *e, struct chopin__exchange *x) {
    uint32_t cap = e->cfg->opt.max_deferred;
    if (!e->xslots) {
        e->xslots = calloc(cap, sizeof *e->xslots);
        if (!e->xslots)
            return -ENOMEM;
        e->xfree = CHOPIN__NO_SLOT;
    }
    uint32_t s;
    if (e->xfree != CHOPIN__NO_SLOT) {
        s = e->xfree;
        e->xfree = e->xslots[s].next_free;
    } else if (e->xslots_used < cap) {
        s = e->xslots_used++;
    } else {
        return -EBUSY;
    }
    e->xslots[s].x = x;
    x->slot = s;
    return 0;
}

static void slot_release(struct chopin__engine *e, struct chopin__exchange *x) {
    if (x->slot == CHOPIN__NO_SLOT)
        return;
    struct chopin__xslot *s = &e->xslots[x->slot];
    s->x = NULL;
    s->gen++;
    s->next_free = e->xfree;
    e->xfree = x->slot;
    x->slot = CHOPIN__NO_SLOT;
}

/* The deadline list (engine.h). A finish only unlinks: the timer stays armed at a deadline
 * that may have left, and when it fires early it moves to the new first one. That spares a
 * timer wheel insertion and removal per deferred answer (perf: the wheel was 5% of a worker
 * answering 10,000 connections from 100 ms timers). */
static void deadline_list(struct chopin__engine *e, struct chopin__exchange *x) {
    x->deadline_ms = e->now_ms + e->cfg->opt.handler_timeout_ms;
    x->dl_next = NULL;
    x->dl_prev = e->dl_tail;
    if (e->dl_tail)
        e->dl_tail->dl_next = x;
    else
        e->dl_head = x;
    e->dl_tail = x;
    if (!chopin__timer_armed(&e->dl_timer.t)) {
        e->dl_timer.fire = deadlines_passed;
        chopin__engine_app_timer_add(e, &e->dl_timer, x->deadline_ms);
    }
}

static void deadline_unlist(struct chopin__engine *e, struct chopin__exchange *x) {
    if (!x->dl_prev && e->dl_head != x)
        return; /* not listed: its body is still to come (issue 18) */
    if (x->dl_prev)
        x->dl_prev->dl_next = x->dl_next;
    else
        e->dl_head = x->dl_next;
    if (x->dl_next)
        x->dl_next->dl_prev = x->dl_prev;
    else
        e->dl_tail = x->dl_prev;
    x->dl_prev = x->dl_next = NULL;
}

/* An open exchange stops being open: finished, timed out or cancelled. */
static void close_open(struct chopin__engine *e, struct chopin__exchange *x) {
    e->xopen--;
    deadline_unlist(e, x);
    slot_release(e, x);
    x->state = CHOPIN__X_READY;
}

/* Whether a returning exchange stays as a spare (see SPARES_MIN). */
static int keep_spare(struct chopin__engine *e) {
    if (e->now_ms - e->xpeak_at >= PEAK_WINDOW_MS) {
        e->xpeak = e->xopen;
        e->xpeak_at = e->now_ms;
    }
    return e->nspares < SPARES_MIN || e->nspares + e->xopen < e->xpeak;
}

void chopin__exchange_free(struct chopin__engine *e, struct chopin__exchange *x) {
    if (x->state == CHOPIN__X_OPEN)
        close_open(e, x);
    if (x->upgrade) { /* its connection never switched */
        x->upgrade->discard(x->upgrade_state);
        x->upgrade = NULL;
    }
    chopin__arena_reset(&x->arena);
    if (!keep_spare(e)) {
        exchange_destroy(x);
        return;
    }
    x->next = e->spares;
    e->spares = x;
    e->nspares++;
}

static chopin_exchange handle_of(struct chopin__engine *e, const struct chopin__exchange *x) {
    return (chopin_exchange){(chopin_worker *)e, x->slot, e->xslots[x->slot].gen};
}

/* Runs the cancel callback once; the handle is stale by then. */
static void run_cancel(struct chopin__engine *e, struct chopin__exchange *x, chopin_exchange h) {
    chopin_exchange_fn fn = x->on_cancel;
    x->on_cancel = NULL;
    if (!fn)
        return;
    e->nested++;
    fn(h, x->cancel_arg);
    e->nested--;
}

static void body_error(struct chopin__engine *e, struct chopin__exchange *x, chopin_exchange h,
                       int err);
static struct chopin__exchange *lookup(chopin_exchange h);

void chopin__exchange_cancel(struct chopin__engine *e, struct chopin__exchange *x) {
    if (x->state != CHOPIN__X_OPEN)
        return;
    chopin_exchange h = handle_of(e, x);
    close_open(e, x);
    body_error(e, x, h, CHOPIN_ECANCELED);
    run_cancel(e, x, h);
}

/* Detached at once, like a deferred exchange, so that the answer goes through the
 * connection's queue (conn.c answer_later), where the switch happens: the plain path
 * never looks for an upgrade. */
int chopin__exchange_upgrade(struct chopin__engine *e, struct chopin__exchange *x,
                             const struct chopin__protocol *p, void *state) {
    if (!x || x != e->dispatching || x->state != CHOPIN__X_RUNNING || x->upgrade || !p)
        return -EINVAL;
    int rc = chopin__exchange_detach(e, x);
    if (rc < 0)
        return rc;
    x->upgrade = p;
    x->upgrade_state = state;
    x->state = CHOPIN__X_READY;
    chopin__res_replace_body(&x->res, 101, CHOPIN__RES_EMPTY, NULL, 0);
    return 0;
}

void chopin__exchange_destroy_all(struct chopin__engine *e) {
    while (e->spares) {
        struct chopin__exchange *x = e->spares;
        e->spares = x->next;
        exchange_destroy(x);
    }
    e->nspares = 0;
    if (e->cur)
        exchange_destroy(e->cur);
    e->cur = NULL;
    free(e->xslots);
    e->xslots = NULL;
    free(e->ready);
    e->ready = NULL;
    e->nready = e->ready_cap = 0;
}

/* handler_timeout_ms passed: the client gets a 504 (the handler stands for whatever it
 * waited on, as a gateway does), the application is told it was cancelled. */
static void deadline_passed(struct chopin__engine *e, struct chopin__exchange *x) {
    struct chopin__conn *c = x->conn;
    chopin_exchange h = handle_of(e, x);
    chopin__count(&e->counters.timeouts[CHOPIN__TIMEOUT_HANDLER], 1);
    close_open(e, x);
    chopin__res_discard(&x->res);
    chopin__res_init(&x->res, &x->arena);
    chopin_res_error(&x->res, 504, NULL);
    run_cancel(e, x, h);
    chopin__conn_answer_ready(c);
}

/* The deadline timer fired: every exchange past its deadline is answered (each leaves the
 * list, so the head is read again after every one: callbacks may end others), then the
 * timer moves to the first deadline still ahead. */
static void deadlines_passed(struct chopin__app_timer *t) {
    struct chopin__engine *e =
        (struct chopin__engine *)((char *)t - offsetof(struct chopin__engine, dl_timer));
    struct chopin__exchange *x;
    while ((x = e->dl_head) && x->deadline_ms <= e->now_ms)
        deadline_passed(e, x);
    if (e->dl_head) /* (re-armed: a callback's new deferral may have armed it later) */
        chopin__engine_app_timer_add(e, &e->dl_timer, e->dl_head->deadline_ms);
}

/* ----- deferring ---------------------------------------------------------------------- */

static int in_range(const char *p, const char *from, size_t len) {
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)from;
    return p && a >= b && a <= b + len;
}

static const char *moved(const char *p, const char *from, size_t len, char *to) {
    return in_range(p, from, len) ? to + (p - from) : p;
}

static void extend(const char **lo, const char **hi, const char *p, size_t len) {
    if (!p)
        return;
    if (!*lo || p < *lo)
        *lo = p;
    if (!*hi || p + len > *hi)
        *hi = p + len;
}

/* Where the request's bytes lie in the read buffer: from its method to the end of what
 * its head and body point at (the parser's slices all lie in it). */
static size_t request_extent(const struct chopin_req *req, const char **from) {
    const struct chopin__head *h = &req->head;
    const char *lo = NULL, *hi = NULL;
    extend(&lo, &hi, h->method, h->method_len);
    extend(&lo, &hi, h->target, h->target_len);
    extend(&lo, &hi, h->host, h->host_len);
    for (uint32_t i = 0; i < h->nheaders; i++) {
        extend(&lo, &hi, h->headers[i].name, h->headers[i].name_len);
        extend(&lo, &hi, h->headers[i].value, h->headers[i].value_len);
    }
    extend(&lo, &hi, req->body, req->body_len);
    *from = lo;
    return lo ? (size_t)(hi - lo) : 0;
}

/* The request's bytes live in the connection's buffer (or the worker's scratch), which
 * the next request reuses: a deferred request takes a copy, and every pointer into them
 * is moved to the copy. The header array is the worker's too. */
static int keep_request(struct chopin__exchange *x) {
    struct chopin_req *req = &x->req;
    struct chopin__head *h = &req->head;
    const char *from;
    size_t len = request_extent(req, &from);
    char *to = chopin__arena_alloc(&x->arena, len ? len : 1);
    struct chopin__header *hs =
        h->nheaders ? chopin__arena_alloc(&x->arena, h->nheaders * sizeof *hs) : NULL;
    if (!to || (h->nheaders && !hs))
        return -ENOMEM;
    if (len)
        memcpy(to, from, len);
    for (uint32_t i = 0; i < h->nheaders; i++) {
        hs[i] = h->headers[i];
        hs[i].name = moved(hs[i].name, from, len, to);
        hs[i].value = moved(hs[i].value, from, len, to);
    }
    h->headers = hs;
    h->method = moved(h->method, from, len, to);
    h->target = moved(h->target, from, len, to);
    h->path = moved(h->path, from, len, to);
    h->query = moved(h->query, from, len, to);
    h->host = moved(h->host, from, len, to);
    req->body = moved(req->body, from, len, to);
    req->path = moved(req->path, from, len, to);
    for (uint32_t i = 0; i < req->nparams; i++)
        req->params[i].value = moved(req->params[i].value, from, len, to);
    return 0;
}

int chopin__exchange_keep(struct chopin__exchange *x) {
    if (x->kept)
        return 0;
    int rc = keep_request(x);
    x->kept = rc == 0;
    return rc;
}

static int refuse_defer(chopin_res *res, int err) {
    chopin__res_discard(res);
    chopin__res_init(res, res->arena);
    chopin_res_error(res, 503, NULL);
    return err;
}

int chopin_defer(chopin_req *req, chopin_res *res, chopin_exchange *out) {
    struct chopin__engine *e = req ? req->engine : NULL;
    struct chopin__exchange *x = e ? e->dispatching : NULL;
    /* (a refused request carries no bytes: nothing to wait for, no method) */
    if (!x || req != &x->req || res != &x->res || !req->head.method_len || !out)
        return CHOPIN_EINVAL;
    if (x->state == CHOPIN__X_OPEN) { /* middleware and handler both deferred: one exchange */
        *out = handle_of(e, x);
        return 0;
    }
    if (x->state != CHOPIN__X_RUNNING)
        return CHOPIN_EINVAL;
    if (e->xopen >= e->cfg->opt.max_deferred)
        return refuse_defer(res, CHOPIN_EBUSY);
    int rc = slot_take(e, x);
    if (rc == 0)
        rc = chopin__exchange_keep(x);
    if (rc == 0)
        rc = chopin__exchange_detach(e, x);
    if (rc < 0) {
        slot_release(e, x);
        return refuse_defer(res, rc == -EBUSY ? CHOPIN_EBUSY : CHOPIN_ENOMEM);
    }
    x->state = CHOPIN__X_OPEN;
    x->conn = req->conn;
    if (++e->xopen > e->xpeak)
        e->xpeak = e->xopen;
    deadline_list(e, x);
    *out = handle_of(e, x);
    return 0;
}

/* ----- handles ------------------------------------------------------------------------ */

static struct chopin__exchange *lookup(chopin_exchange h) {
    struct chopin__engine *e = engine_of(h.worker);
    if (!e || !e->xslots || h.slot >= e->xslots_used)
        return NULL;
    const struct chopin__xslot *s = &e->xslots[h.slot];
    return s->gen == h.gen ? s->x : NULL;
}

chopin_req *chopin_exchange_req(chopin_exchange h) {
    struct chopin__exchange *x = lookup(h);
    return x ? &x->req : NULL;
}

chopin_res *chopin_exchange_res(chopin_exchange h) {
    struct chopin__exchange *x = lookup(h);
    return x ? &x->res : NULL;
}

int chopin_exchange_open(chopin_exchange h) { return lookup(h) != NULL; }

int chopin_exchange_on_cancel(chopin_exchange h, chopin_exchange_fn fn, void *arg) {
    struct chopin__exchange *x = lookup(h);
    if (!x)
        return CHOPIN_ESTALE;
    x->on_cancel = fn;
    x->cancel_arg = arg;
    return 0;
}

int chopin_exchange_finish(chopin_exchange h) {
    struct chopin__exchange *x = lookup(h);
    if (!x)
        return CHOPIN_ESTALE;
    struct chopin__engine *e = engine_of(h.worker);
    close_open(e, x);
    if (x != e->dispatching) /* (its own handler finishing: the dispatch sends it) */
        chopin__conn_answer_ready(x->conn);
    return 0;
}
/* ----- streamed bodies (issue 18) --------------------------------------------------------- */

struct chopin__exchange *chopin__exchange_lookup(chopin_exchange h) { return lookup(h); }

chopin_exchange chopin__exchange_handle(struct chopin__engine *e, const struct chopin__exchange *x) {
    return handle_of(e, x);
}

void chopin__exchange_deadline_hold(struct chopin__engine *e, struct chopin__exchange *x) {
    deadline_unlist(e, x);
}

/* The body's callbacks run as a cancel callback does (e->nested): an answer they finish
 * waits for the ready list, never sent inside the connection's own input handling. */
void chopin__exchange_body_data(struct chopin__engine *e, struct chopin__exchange *x,
                                const char *p, size_t n) {
    struct chopin__body_sink *s = x->sink;
    if (x->state != CHOPIN__X_OPEN || s->ended || !n)
        return;
    e->nested++;
    s->h.on_data(handle_of(e, x), p, n, s->arg);
    e->nested--;
}

void chopin__exchange_body_end(struct chopin__engine *e, struct chopin__exchange *x) {
    struct chopin__body_sink *s = x->sink;
    if (s->ended)
        return;
    s->ended = 1;
    if (x->state != CHOPIN__X_OPEN)
        return;
    deadline_list(e, x);
    e->nested++;
    s->h.on_end(handle_of(e, x), s->arg);
    e->nested--;
}

static void body_error(struct chopin__engine *e, struct chopin__exchange *x, chopin_exchange h,
                       int err) {
    struct chopin__body_sink *s = x->sink;
    if (!s || s->ended)
        return;
    s->ended = 1;
    if (!s->h.on_error)
        return;
    e->nested++;
    s->h.on_error(h, err, s->arg);
    e->nested--;
}

void chopin__exchange_body_fail(struct chopin__engine *e, struct chopin__exchange *x,
                                int status, int err) {
    if (x->state != CHOPIN__X_OPEN)
        return;
    chopin_exchange h = handle_of(e, x);
    close_open(e, x);
    chopin__res_discard(&x->res);
    chopin__res_init(&x->res, &x->arena);
    chopin_res_error(&x->res, status, NULL);
    x->res.close = 1;
    body_error(e, x, h, err);
}

/* A function posted to an exchange's worker, with the handle it is for. */
struct posted {
    chopin_exchange h;
    chopin_exchange_fn fn;
    void *arg;
};

static void run_posted(void *arg) {
    struct posted *p = arg;
    p->fn(p->h, p->arg);
    free(p);
}

int chopin_exchange_post(chopin_exchange h, chopin_exchange_fn fn, void *arg) {
    struct chopin__engine *e = engine_of(h.worker);
    if (!e || !fn)
        return CHOPIN_EINVAL;
    struct posted *p = malloc(sizeof *p);
    if (!p)
        return CHOPIN_ENOMEM;
    *p = (struct posted){h, fn, arg};
    int rc = chopin__engine_post(e, run_posted, p);
    if (rc < 0)
        free(p);
    return rc;
}
