/* SPDX-License-Identifier: MIT */
/*
 * Bump arena for per-request scratch (decoded path and query, params, response headers,
 * copied bodies). Reset after each response; a reset keeps the first block, so the
 * steady state allocates nothing. Allocations larger than what is left of the current
 * block get a block of their own, freed at reset.
 */
#ifndef CHOPIN_MEM_ARENA_H
#define CHOPIN_MEM_ARENA_H

#include <stddef.h>

struct chopin__arena_block;

struct chopin__arena {
    struct chopin__arena_block *first; /* kept across resets */
    struct chopin__arena_block *cur;
    struct chopin__arena_block *big; /* blocks of one large allocation each, newest first */
    size_t block_size;
    size_t limit; /* total bytes one request may hold; beyond it alloc returns NULL */
    size_t used;  /* bytes handed out since the last reset */
};

/** No allocation happens until the first chopin__arena_alloc. block_size is rounded up to
 *  a multiple of 16 (at least 64); a limit of 0 means no limit. */
void chopin__arena_init(struct chopin__arena *a, size_t block_size, size_t limit);
/** `size` bytes aligned to 16, or NULL (limit reached or out of memory). */
void *chopin__arena_alloc(struct chopin__arena *a, size_t size);
/** Grows the most recent allocation `p` of `old` bytes to `size` bytes, in place when it is
 *  at the top of the current block, else by copying. NULL on failure (p stays valid). */
void *chopin__arena_grow(struct chopin__arena *a, void *p, size_t old, size_t size);
/** Gives back the most recent allocation `p` of `size` bytes when it can be (it is the
 *  newest large allocation, or the top of the current block); otherwise it stays until
 *  reset. Lets a failed large document make room for the answer that replaces it. */
void chopin__arena_release(struct chopin__arena *a, void *p, size_t size);
/** Bytes the arena may still hand out before its limit (SIZE_MAX - used without one). */
static inline size_t chopin__arena_left(const struct chopin__arena *a)
{
    return a->limit - a->used;
}
/** Hands the newest large allocation `p` of `size` bytes (one with a block of its own)
 *  over to the caller: returns what to pass to chopin__arena_free_taken once done with p,
 *  or NULL when p is not such an allocation (it then stays the arena's until reset). Lets
 *  a large copied body leave with its response instead of being copied once more. */
void *chopin__arena_take(struct chopin__arena *a, const void *p, size_t size);
/** Frees what chopin__arena_take returned (a large block is mapped: not free()'s). */
void chopin__arena_free_taken(void *block);
void chopin__arena_reset(struct chopin__arena *a);
void chopin__arena_destroy(struct chopin__arena *a);

#endif
