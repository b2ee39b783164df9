/* SPDX-License-Identifier: MIT */
/*
 * Per-worker buffer pool. Cached buffers are chained through their own first bytes, so
 * the pool needs no memory of its own. Buffers are allocated on first demand, which keeps a
 * worker that never sees traffic at zero buffers, and at most max_cached are kept, so the
 * memory of a burst goes back to malloc once the burst is over.
 */
#include "mem/pool.h"

#include <stdlib.h>

#define POOL_ALIGN 64 /* cache line: a buffer never shares a line with another */

struct free_buf {
    struct free_buf *next;
};

/* 0 when n cannot be rounded up (take() then fails without asking the allocator). */
static size_t round_up_to_line(size_t n)
{
    if (n == 0)
        return POOL_ALIGN;
    if (n > SIZE_MAX - (POOL_ALIGN - 1))
        return 0;
    return (n + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
}

void chopin__pool_init(struct chopin__pool *p, size_t buf_size, uint32_t max_cached)
{
    p->free_list = NULL;
    p->buf_size = round_up_to_line(buf_size);
    p->cached = 0;
    p->max_cached = max_cached;
    p->outstanding = 0;
}

static void *pop_cached(struct chopin__pool *p)
{
    struct free_buf *b = p->free_list;
    p->free_list = b->next;
    p->cached--;
    return b;
}

void *chopin__pool_take(struct chopin__pool *p)
{
    void *buf;
    if (p->free_list != NULL) {
        buf = pop_cached(p);
    } else {
        if (p->buf_size == 0)
            return NULL;
        /* buf_size is a multiple of the alignment, as C11 aligned_alloc requires. */
        buf = aligned_alloc(POOL_ALIGN, p->buf_size);
        if (buf == NULL)
            return NULL;
    }
    p->outstanding++;
    return buf;
}

void chopin__pool_give(struct chopin__pool *p, void *buf)
{
    if (buf == NULL)
        return;
    p->outstanding--;
    if (p->cached >= p->max_cached) {
        free(buf);
        return;
    }
    struct free_buf *b = buf;
    b->next = p->free_list;
    p->free_list = b;
    p->cached++;
}

void chopin__pool_destroy(struct chopin__pool *p)
{
    while (p->free_list != NULL)
        free(pop_cached(p));
}
