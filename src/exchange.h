/* SPDX-License-Identifier: MIT */
/*
 * Exchanges: one request and its response, with the arena their scratch lives in.
 *
 * The engine runs every request in its current exchange (engine->cur). A request answered
 * before its handler returns leaves it there, reset for the next request: the plain path
 * costs nothing more than before. A handler that defers (chopin_defer) takes the exchange
 * with it: its request bytes are copied into its own arena, it is detached from the
 * engine (which takes a spare for the next request) and queued on its connection, in
 * request order, until it is finished or cancelled. An answer produced while an earlier
 * exchange of the same connection is still open is queued behind it the same way.
 *
 * Outside the worker, a deferred exchange is named by a chopin_exchange handle: a slot of
 * the engine's table and that slot's generation, bumped when the exchange ends, so a late
 * handle is recognised and refused.
 */
#ifndef CHOPIN_EXCHANGE_H
#define CHOPIN_EXCHANGE_H

#include <stdint.h>

#include "engine.h"
#include "http/message.h"
#include "mem/arena.h"

struct chopin__conn;
struct chopin__protocol;

enum chopin__exchange_state {
    CHOPIN__X_RUNNING = 0, /* its handler runs (or it is the engine's current, idle) */
    CHOPIN__X_OPEN,        /* deferred: the answer comes later */
    CHOPIN__X_READY,       /* answered: waits for the answers before it on its connection */
};

#define CHOPIN__NO_SLOT UINT32_MAX

/* A body taken as it arrives (chopin_body_read, issue 18), in its exchange's arena. */
struct chopin__body_sink {
    chopin_body_handler h;
    void *arg;
    uint64_t max;      /* the route's limit (the server's when it set none) */
    uint8_t ended;     /* on_end or on_error ran, or the answer left before the body ended */
};

struct chopin__exchange {
    struct chopin_req req;
    struct chopin_res res;
    struct chopin__arena arena;
    struct chopin__exchange *dl_prev, *dl_next; /* the engine's deadline list, while OPEN */
    uint64_t deadline_ms; /* when handler_timeout_ms passes */
    uint64_t started_ns;  /* its dispatch, for the metrics' histograms (ops/observe.h) */
    struct chopin__conn *conn;
    struct chopin__exchange *next; /* its connection's queue, or the engine's spares */
    chopin_exchange_fn on_cancel;
    void *cancel_arg;
    struct chopin__body_sink *sink; /* its body is read as it arrives (issue 18) */
    /* The protocol its connection switches to once this answer (a 101) is queued. */
    const struct chopin__protocol *upgrade;
    void *upgrade_state;
    uint32_t slot;    /* its handle's slot in the engine's table, or CHOPIN__NO_SLOT */
    uint8_t state;    /* enum chopin__exchange_state */
    uint8_t body_to_come; /* its handler runs before its body (chopin_router_stream) */
    uint8_t kept;     /* its request's bytes are in its own arena (HTTP/2): a defer copies none */
};

/* The engine's handle table: slot -> exchange, with generations. */
struct chopin__xslot {
    struct chopin__exchange *x; /* NULL when free */
    uint32_t gen;
    uint32_t next_free;
};

/** Creates the engine's first current exchange; NULL when out of memory. */
struct chopin__exchange *chopin__exchange_first(struct chopin__engine *e);
/** The engine's current exchange, created on first use; NULL when out of memory. */
static inline struct chopin__exchange *chopin__exchange_current(struct chopin__engine *e) {
    return e->cur ? e->cur : chopin__exchange_first(e);
}
/** Resets an exchange for its next request (its arena keeps its first block). */
static inline void chopin__exchange_reset(struct chopin__exchange *x) {
    chopin__arena_reset(&x->arena);
}
/** Detaches the engine's current exchange `x` (deferred, or an answer that must wait):
 *  the engine's next current is a spare. Returns 0, or -ENOMEM (nothing changed). */
int chopin__exchange_detach(struct chopin__engine *e, struct chopin__exchange *x);
/** A detached exchange's end: its handle goes stale, its response is released, and it
 *  goes back to the spares. */
void chopin__exchange_free(struct chopin__engine *e, struct chopin__exchange *x);
/** Cancels an open exchange (client gone, server stopping): its handle goes stale and
 *  its cancel callback runs. It stays where it is (the caller frees it). */
void chopin__exchange_cancel(struct chopin__engine *e, struct chopin__exchange *x);
/* Streamed bodies (issue 18). The handler deadline of an exchange whose body is being
 * read starts when the body ends: an upload takes as long as its client needs, guarded by
 * the body's own idle deadline. */

/** The open exchange `h` names, or NULL when it has ended. */
struct chopin__exchange *chopin__exchange_lookup(chopin_exchange h);
/** The handle of an open exchange. */
chopin_exchange chopin__exchange_handle(struct chopin__engine *e, const struct chopin__exchange *x);
/** Takes `x` off the deadline list (its body is still to come). */
void chopin__exchange_deadline_hold(struct chopin__engine *e, struct chopin__exchange *x);
/** Hands p[0..n) to the body's on_data. */
void chopin__exchange_body_data(struct chopin__engine *e, struct chopin__exchange *x,
                                const char *p, size_t n);
/** The body ended whole: the handler deadline starts and on_end runs (when still open). */
void chopin__exchange_body_end(struct chopin__engine *e, struct chopin__exchange *x);
/** The body cannot end: the exchange is answered `status` (the connection closes after
 *  it), and on_error(err) runs with its stale handle. */
void chopin__exchange_body_fail(struct chopin__engine *e, struct chopin__exchange *x,
                                int status, int err);

/** The handler running `x` switches its connection to protocol `p` (with `state`, given
 *  to p once the switch happens or to p->discard if it never does) after its answer is
 *  queued. The answer becomes a 101 without a body, to which the caller adds its headers
 *  (Upgrade, Connection, ...); should the handler answer otherwise after all, there is no
 *  switch and the connection closes after that answer. The bytes after the request go to
 *  p->on_data. Returns 0; -EINVAL when `x` is not the exchange whose handler runs now, or
 *  it deferred or already upgrades; -ENOMEM. On failure nothing changed: `state` stays
 *  the caller's. */
int chopin__exchange_upgrade(struct chopin__engine *e, struct chopin__exchange *x,
                             const struct chopin__protocol *p, void *state);
/** Copies the request bytes `x` points into (the read buffer) into its own arena, as a
 *  deferred exchange's are (HTTP/2's Upgrade: h2c keeps the request as stream 1). Returns
 *  0 or -ENOMEM. */
int chopin__exchange_keep(struct chopin__exchange *x);
/** Frees the spares, the current exchange and the handle table (engine destroy). */
void chopin__exchange_destroy_all(struct chopin__engine *e);

#endif
