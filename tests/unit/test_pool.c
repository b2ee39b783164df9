/* SPDX-License-Identifier: MIT */
/* Buffer pool: alignment, lazy allocation, caching bound, outstanding count. */
#include "mem/pool.h"

#include <stdint.h>

#include "test.h"

static void test_init_rounds_and_allocates_nothing(void)
{
    struct chopin__pool p;
    chopin__pool_init(&p, 100, 4);
    CHECK_INT(p.buf_size, 128);
    CHECK(p.free_list == NULL);
    CHECK_INT(p.cached, 0);
    CHECK_INT(p.outstanding, 0);
    chopin__pool_init(&p, 4096, 4);
    CHECK_INT(p.buf_size, 4096);
    chopin__pool_init(&p, 0, 4);
    CHECK_INT(p.buf_size, 64);
    chopin__pool_destroy(&p);
}

static void test_buffers_are_aligned_and_writable(void)
{
    struct chopin__pool p;
    void *bufs[16];
    chopin__pool_init(&p, 1000, 16);
    for (int i = 0; i < 16; i++) {
        bufs[i] = chopin__pool_take(&p);
        CHECK(bufs[i] != NULL);
        CHECK_INT((uintptr_t)bufs[i] % 64, 0);
        memset(bufs[i], i, p.buf_size);
    }
    CHECK_INT(p.outstanding, 16);
    for (int i = 0; i < 16; i++)
        chopin__pool_give(&p, bufs[i]);
    CHECK_INT(p.outstanding, 0);
    chopin__pool_destroy(&p);
}

static void test_reuse_is_lifo(void)
{
    struct chopin__pool p;
    chopin__pool_init(&p, 256, 8);
    void *a = chopin__pool_take(&p), *b = chopin__pool_take(&p);
    chopin__pool_give(&p, a);
    chopin__pool_give(&p, b);
    CHECK_INT(p.cached, 2);
    CHECK(chopin__pool_take(&p) == b); /* the most recently returned, likely still cached */
    CHECK(chopin__pool_take(&p) == a);
    CHECK_INT(p.cached, 0);
    CHECK_INT(p.outstanding, 2);
    chopin__pool_give(&p, a);
    chopin__pool_give(&p, b);
    chopin__pool_destroy(&p);
}

static void test_cache_is_bounded(void)
{
    struct chopin__pool p;
    void *bufs[10];
    chopin__pool_init(&p, 512, 3);
    for (int i = 0; i < 10; i++)
        bufs[i] = chopin__pool_take(&p);
    for (int i = 0; i < 10; i++)
        chopin__pool_give(&p, bufs[i]);
    CHECK_INT(p.cached, 3);
    CHECK_INT(p.outstanding, 0);
    chopin__pool_destroy(&p);
    CHECK_INT(p.cached, 0);
    CHECK(p.free_list == NULL);
}

static void test_zero_cache_frees_everything(void)
{
    struct chopin__pool p;
    chopin__pool_init(&p, 64, 0);
    void *a = chopin__pool_take(&p);
    CHECK(a != NULL);
    chopin__pool_give(&p, a);
    CHECK_INT(p.cached, 0);
    chopin__pool_give(&p, NULL); /* ignored */
    CHECK_INT(p.outstanding, 0);
    chopin__pool_destroy(&p);
}

static void test_huge_size_fails_cleanly(void)
{
    struct chopin__pool p;
    chopin__pool_init(&p, SIZE_MAX - 10, 4);
    CHECK_INT(p.buf_size, 0);
    CHECK(chopin__pool_take(&p) == NULL);
    CHECK_INT(p.outstanding, 0);
    chopin__pool_destroy(&p);
}

int main(void)
{
    RUN(test_init_rounds_and_allocates_nothing);
    RUN(test_buffers_are_aligned_and_writable);
    RUN(test_reuse_is_lifo);
    RUN(test_cache_is_bounded);
    RUN(test_zero_cache_frees_everything);
    RUN(test_huge_size_fails_cleanly);
    TEST_END();
}
