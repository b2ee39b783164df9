/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's user_data: which operation a completion belongs to, on which
 * connection slot, in which generation of that slot.
 *
 *     bits 63..56  operation (enum chopin__uop)
 *     bits 55..32  slot index in the worker's slab (so at most 2^24 slots per worker)
 *     bits 31..0   generation of the slot when the operation was submitted (conn->gen)
 *
 * The engine bumps a slot's generation when the connection in it is freed, so a
 * completion whose generation differs from the slot's current one belongs to a
 * connection that no longer exists, and must not touch whatever lives there now. The
 * backend also never frees a slot while operations it counts are in flight; the check
 * here is the second line of defence, and the only one for operations it does not count
 * (cancels and closes, whose completions carry nothing it needs).
 *
 * No liburing here: the unit test includes this header on its own.
 */
#ifndef CHOPIN_BACKEND_URING_UDATA_H
#define CHOPIN_BACKEND_URING_UDATA_H

#include <stdint.h>

#include "conn.h"
#include "engine.h"

enum chopin__uop {
    CHOPIN__UOP_NONE = 0,
    CHOPIN__UOP_ACCEPT,  /* the listener's (multishot) accept */
    CHOPIN__UOP_WAKE,    /* poll on the worker's wake eventfd */
    CHOPIN__UOP_RECV,    /* a connection's (multishot) receive into provided buffers */
    CHOPIN__UOP_SEND,    /* a connection's send / sendmsg of its output plan */
    CHOPIN__UOP_POLLOUT, /* a connection waits to be writable for a file range */
    CHOPIN__UOP_CANCEL,  /* async cancel: its own completion is ignored */
    CHOPIN__UOP_CLOSE,   /* async close: its own completion is ignored */
    CHOPIN__UOP_PROBE,   /* feature probing at start-up */
    CHOPIN__UOP_WATCH,   /* poll on an application descriptor: slot = fd, gen = the watch's */
    /* liburing's own timeout SQE (LIBURING_UDATA_TIMEOUT, all ones) decodes to 0xff:
     * never one of ours. */
};

#define CHOPIN__UDATA_SLOT_BITS 24
#define CHOPIN__UDATA_MAX_SLOTS (1u << CHOPIN__UDATA_SLOT_BITS)

static inline uint64_t chopin__udata_make(unsigned op, uint32_t slot, uint32_t gen) {
    return (uint64_t)(op & 0xffu) << 56 |
           (uint64_t)(slot & (CHOPIN__UDATA_MAX_SLOTS - 1)) << 32 | gen;
}

static inline unsigned chopin__udata_op(uint64_t ud) { return (unsigned)(ud >> 56); }

static inline uint32_t chopin__udata_slot(uint64_t ud) {
    return (uint32_t)(ud >> 32) & (CHOPIN__UDATA_MAX_SLOTS - 1);
}

static inline uint32_t chopin__udata_gen(uint64_t ud) { return (uint32_t)ud; }

/** user_data for operation `op` on live connection `c`. */
static inline uint64_t chopin__udata_for(const struct chopin__engine *e, unsigned op,
                                         const struct chopin__conn *c) {
    return chopin__udata_make(op, chopin__slab_index(&e->slab, c), c->gen);
}

/** The connection a completion belongs to, or NULL when it is stale: the slot was freed
 *  (and maybe taken again by another connection) since the operation was submitted. */
static inline struct chopin__conn *chopin__udata_conn(const struct chopin__engine *e,
                                                      uint64_t ud) {
    uint32_t slot = chopin__udata_slot(ud);
    if (slot >= e->slab.capacity || e->gens[slot] != chopin__udata_gen(ud))
        return NULL;
    struct chopin__conn *c = chopin__slab_at(&e->slab, slot);
    return c->live && c->gen == chopin__udata_gen(ud) ? c : NULL;
}

#endif
