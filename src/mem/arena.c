/* SPDX-License-Identifier: MIT */
/*
 * Bump arena. Normal allocations are carved from a chain of block_size blocks; the first
 * block survives resets, so a request whose scratch fits in it costs no malloc at all.
 * An allocation larger than half a block gets a block of its own (kept on a separate
 * list): that keeps the current block for the small allocations that follow, lets the
 * most recent large allocation grow with realloc instead of a copy into yet another
 * block, and lets a large copied body leave with its response (chopin__arena_take).
 */
#include "mem/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include "mem/large.h"

#define ARENA_ALIGN 16
#define ARENA_MIN_BLOCK 64

struct chopin__arena_block {
    struct chopin__arena_block *next;
    size_t size; /* usable bytes in data */
    size_t top;  /* bytes of data handed out */
    alignas(ARENA_ALIGN) unsigned char data[];
};

/* malloc, realloc and mapped pages are aligned for max_align_t; data[] relies on that. */
_Static_assert(alignof(max_align_t) >= ARENA_ALIGN, "malloc alignment below 16");

/* n rounded up to 16, or 0 when that overflows (callers treat 0 for n > 0 as failure). */
static size_t round_up_16(size_t n)
{
    if (n > SIZE_MAX - (ARENA_ALIGN - 1))
        return 0;
    return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

/* A block of a large body is mapped (chopin__large_alloc), so that the memory goes back to
 * the kernel when the block is freed instead of staying in malloc's heap. */
static struct chopin__arena_block *block_new(size_t size)
{
    if (size > SIZE_MAX - sizeof(struct chopin__arena_block))
        return NULL;
    struct chopin__arena_block *b = chopin__large_alloc(sizeof *b + size);
    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->top = 0;
    return b;
}

static void block_free(struct chopin__arena_block *b)
{
    if (b != NULL)
        chopin__large_free(b, sizeof *b + b->size);
}

static void block_free_chain(struct chopin__arena_block *b)
{
    while (b != NULL) {
        struct chopin__arena_block *next = b->next;
        block_free(b);
        b = next;
    }
}

static void *block_bump(struct chopin__arena_block *b, size_t need)
{
    if (b->size - b->top < need)
        return NULL;
    void *p = b->data + b->top;
    b->top += need;
    return p;
}

static int is_top_of(const struct chopin__arena_block *b, const void *p, size_t rounded)
{
    return b != NULL && (const unsigned char *)p + rounded == b->data + b->top &&
           rounded <= b->top;
}

void chopin__arena_init(struct chopin__arena *a, size_t block_size, size_t limit)
{
    size_t rounded = round_up_16(block_size);
    a->first = a->cur = a->big = NULL;
    a->block_size = rounded < ARENA_MIN_BLOCK ? ARENA_MIN_BLOCK : rounded;
    if (rounded == 0 && block_size != 0)
        a->block_size = SIZE_MAX & ~(size_t)(ARENA_ALIGN - 1);
    a->limit = limit == 0 ? SIZE_MAX : limit;
    a->used = 0;
}

static void *alloc_own_block(struct chopin__arena *a, size_t need)
{
    struct chopin__arena_block *b = block_new(need);
    if (b == NULL)
        return NULL;
    b->top = need;
    b->next = a->big;
    a->big = b;
    return b->data;
}

static void *alloc_next_block(struct chopin__arena *a, size_t need)
{
    struct chopin__arena_block *b = block_new(a->block_size);
    if (b == NULL)
        return NULL;
    if (a->cur != NULL)
        a->cur->next = b;
    else
        a->first = b;
    a->cur = b;
    return block_bump(b, need);
}

/* Allocates `need` bytes (already rounded) without touching the limit accounting. */
static void *carve(struct chopin__arena *a, size_t need)
{
    /* The first block is created even when the first request is large: the steady state
     * needs it anyway. */
    if (a->first == NULL && alloc_next_block(a, 0) == NULL)
        return NULL;
    if (need > a->block_size / 2) /* even when it would fit: see chopin__arena_take */
        return alloc_own_block(a, need);
    void *p = block_bump(a->cur, need);
    if (p != NULL)
        return p;
    return alloc_next_block(a, need);
}

void *chopin__arena_alloc(struct chopin__arena *a, size_t size)
{
    size_t need = round_up_16(size);
    if ((need == 0 && size != 0) || need > a->limit - a->used)
        return NULL;
    void *p = carve(a, need);
    if (p != NULL)
        a->used += need;
    return p;
}

/* The newest own-block allocation can be resized in place of a copy (mremap for mapped
 * blocks), which never leaves a dead copy behind. */
static void *grow_own_block(struct chopin__arena *a, size_t new_need)
{
    struct chopin__arena_block *b = a->big;
    struct chopin__arena_block *nb =
        chopin__large_realloc(b, sizeof *b + b->size, sizeof *b + new_need);
    if (nb == NULL)
        return NULL;
    nb->size = nb->top = new_need;
    a->big = nb;
    return nb->data;
}

static void *grow_by_copy(struct chopin__arena *a, void *p, size_t old, size_t old_need,
                          size_t size)
{
    struct chopin__arena_block *cur = a->cur;
    int p_on_top = is_top_of(cur, p, old_need);
    void *q = chopin__arena_alloc(a, size);
    if (q == NULL)
        return NULL;
    memcpy(q, p, old);
    /* When the copy went to its own block, p's bytes at the top of the current block can
     * be handed out again. */
    if (p_on_top && a->cur == cur && is_top_of(cur, p, old_need)) {
        cur->top -= old_need;
        a->used -= old_need;
    }
    return q;
}

void *chopin__arena_grow(struct chopin__arena *a, void *p, size_t old, size_t size)
{
    if (p == NULL)
        return chopin__arena_alloc(a, size);
    size_t old_need = round_up_16(old), new_need = round_up_16(size);
    if (new_need == 0 && size != 0)
        return NULL;
    if (new_need <= old_need) {
        if (is_top_of(a->cur, p, old_need)) {
            a->cur->top -= old_need - new_need;
            a->used -= old_need - new_need;
        }
        return p;
    }
    size_t extra = new_need - old_need;
    if (extra > a->limit - a->used)
        return NULL;
    if (is_top_of(a->cur, p, old_need) && a->cur->size - a->cur->top >= extra) {
        a->cur->top += extra;
        a->used += extra;
        return p;
    }
    if (a->big != NULL && p == a->big->data && old_need == a->big->top) {
        void *q = grow_own_block(a, new_need);
        if (q != NULL)
            a->used += extra;
        return q;
    }
    return grow_by_copy(a, p, old, old_need, size);
}

void chopin__arena_release(struct chopin__arena *a, void *p, size_t size)
{
    size_t need = round_up_16(size);
    if (p == NULL || (need == 0 && size != 0))
        return;
    struct chopin__arena_block *b = a->big;
    if (b != NULL && p == b->data && need == b->top) {
        a->big = b->next;
        a->used -= need;
        block_free(b);
    } else if (is_top_of(a->cur, p, need)) {
        a->cur->top -= need;
        a->used -= need;
    }
}

void chopin__arena_reset(struct chopin__arena *a)
{
    block_free_chain(a->big);
    a->big = NULL;
    if (a->first != NULL) {
        block_free_chain(a->first->next);
        a->first->next = NULL;
        a->first->top = 0;
    }
    a->cur = a->first;
    a->used = 0;
}

void chopin__arena_destroy(struct chopin__arena *a)
{
    chopin__arena_reset(a);
    block_free(a->first);
    a->first = a->cur = NULL;
}

void *chopin__arena_take(struct chopin__arena *a, const void *p, size_t size)
{
    struct chopin__arena_block *b = a->big;
    size_t need = round_up_16(size);
    if (b == NULL || p != b->data || need != b->top || need == 0)
        return NULL;
    a->big = b->next;
    a->used -= need;
    return b;
}

void chopin__arena_free_taken(void *block)
{
    block_free(block);
}
