/* SPDX-License-Identifier: MIT */
/* Large buffers: contents survive resizes across CHOPIN__LARGE_MIN both ways, and a large
 * buffer is its own mapping, gone once freed (its memory is back with the kernel). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem/large.h"
#include "test.h"

static int filled(const unsigned char *p, size_t n, unsigned char c)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != c)
            return 0;
    return 1;
}

static void test_resize_keeps_contents(void)
{
    size_t small = 1000, large = CHOPIN__LARGE_MIN + 1, larger = 4 * CHOPIN__LARGE_MIN;
    unsigned char *p = chopin__large_alloc(small);
    CHECK(p != NULL);
    memset(p, 'a', small);
    p = chopin__large_realloc(p, small, large); /* malloc'd to mapped */
    CHECK(p != NULL && filled(p, small, 'a'));
    memset(p, 'b', large);
    p = chopin__large_realloc(p, large, larger); /* mapped to mapped */
    CHECK(p != NULL && filled(p, large, 'b'));
    memset(p, 'c', larger);
    p = chopin__large_realloc(p, larger, small); /* mapped to malloc'd */
    CHECK(p != NULL && filled(p, small, 'c'));
    p = chopin__large_realloc(p, small, small * 2);
    CHECK(p != NULL && filled(p, small, 'c'));
    chopin__large_free(p, small * 2);
    chopin__large_free(NULL, larger);
}

/* Whether a mapping covers the page of p: mincore fails with ENOMEM where none does (and
 * with EINVAL on an address inside a page, hence the rounding). */
static int mapped(const unsigned char *p)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    unsigned char vec[1];
    return mincore((void *)((uintptr_t)p & ~(page - 1)), 1, vec) == 0;
}

/* Twice: glibc's malloc maps the first 16 MiB chunk too, but freeing it raises its mmap
 * threshold, and the second comes from the heap, which keeps it. */
static void test_large_buffer_is_unmapped_when_freed(void)
{
    size_t size = 16u << 20;
    for (int i = 0; i < 2; i++) {
        unsigned char *p = chopin__large_alloc(size);
        CHECK(p != NULL);
        if (!p)
            return;
        CHECK(((uintptr_t)p & 15) == 0);
        memset(p, 'x', size);
        chopin__large_free(p, size);
        CHECK(!mapped(p) && !mapped(p + size - 1));
    }
}

int main(void)
{
    RUN(test_resize_keeps_contents);
    RUN(test_large_buffer_is_unmapped_when_freed);
    TEST_END();
}
