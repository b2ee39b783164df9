/* SPDX-License-Identifier: MIT */
/* Large buffers (see large.h): which allocator owns a buffer follows from its size alone,
 * so the caller keeps no flag, only the size it asked for. */
#include "mem/large.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int is_large(size_t size) { return size >= CHOPIN__LARGE_MIN; }

static void *map_pages(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *chopin__large_alloc(size_t size)
{
    return is_large(size) ? map_pages(size) : malloc(size);
}

void chopin__large_free(void *p, size_t size)
{
    if (p != NULL && is_large(size))
        munmap(p, size);
    else
        free(p);
}

static void *move_to(void *p, size_t old, size_t size)
{
    void *q = chopin__large_alloc(size);
    if (q != NULL) {
        memcpy(q, p, old < size ? old : size);
        chopin__large_free(p, old);
    }
    return q;
}

void *chopin__large_realloc(void *p, size_t old, size_t size)
{
    if (p == NULL)
        return chopin__large_alloc(size);
    if (!is_large(old) && !is_large(size))
        return realloc(p, size);
#ifdef MREMAP_MAYMOVE /* Linux: the pages move or grow without being copied */
    if (is_large(old) && is_large(size)) {
        void *q = mremap(p, old, size, MREMAP_MAYMOVE);
        return q == MAP_FAILED ? NULL : q;
    }
#endif
    return move_to(p, old, size);
}
