/* SPDX-License-Identifier: MIT */
/*
 * Per-worker pool of fixed-size buffers. Buffers are taken only while a connection has
 * bytes in flight and returned as soon as it has none, so idle connections hold none.
 * Single-threaded: one pool per worker, no locks.
 */
#ifndef CHOPIN_MEM_POOL_H
#define CHOPIN_MEM_POOL_H

#include <stddef.h>
#include <stdint.h>

struct chopin__pool {
    void *free_list;      /* intrusive singly linked list of cached buffers */
    size_t buf_size;      /* usable bytes per buffer */
    uint32_t cached;      /* buffers in free_list */
    uint32_t max_cached;  /* beyond this, returned buffers are freed */
    uint64_t outstanding; /* taken and not yet returned */
};

/** buf_size is rounded up to a multiple of 64 (0 is taken as 64). Never fails (allocation is
 *  lazy); a size too large to round leaves p->buf_size 0 and every take() NULL. */
void chopin__pool_init(struct chopin__pool *p, size_t buf_size, uint32_t max_cached);
/** A buffer of p->buf_size bytes (64-byte aligned), or NULL when out of memory. */
void *chopin__pool_take(struct chopin__pool *p);
/** Returns a buffer taken from this pool. NULL is ignored. */
void chopin__pool_give(struct chopin__pool *p, void *buf);
/** Frees every cached buffer (outstanding ones must have been returned first). */
void chopin__pool_destroy(struct chopin__pool *p);

#endif
