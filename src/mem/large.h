/* SPDX-License-Identifier: MIT */
/*
 * Buffers that may be large (a request body, a copied response body): mapped from the
 * kernel at or above CHOPIN__LARGE_MIN and unmapped when freed, malloc'd below it.
 *
 * malloc maps large chunks too, but only above its mmap threshold, which glibc raises to
 * the size of each mapped chunk that is freed: after one 16 MiB body every later one came
 * from the heap, which keeps its high-water mark (issue 13: a worker with no connection
 * held 385 MB). malloc_trim when a worker goes idle did not help: it leaves the top of a
 * thread's heap alone (tests/integration/test_memory.c: 19.6 MB idle with it, 3.3 MB with
 * these buffers, 3.1 MB at the start).
 */
#ifndef CHOPIN_MEM_LARGE_H
#define CHOPIN_MEM_LARGE_H

#include <stddef.h>

/* Below it malloc is faster (no system call, no page faults on reuse) and what it keeps
 * is small. */
#define CHOPIN__LARGE_MIN ((size_t)256 << 10)

/** `size` bytes aligned for any type, or NULL when out of memory. */
void *chopin__large_alloc(size_t size);
/** Resizes a buffer of chopin__large_alloc from `old` bytes (the size it was last asked
 *  with) to `size`, keeping the first min(old, size). NULL on failure (p stays valid). */
void *chopin__large_realloc(void *p, size_t old, size_t size);
/** Frees a buffer of chopin__large_alloc, `size` being the size it was last asked with.
 *  NULL is ignored. */
void chopin__large_free(void *p, size_t size);

#endif
