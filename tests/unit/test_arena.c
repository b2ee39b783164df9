/* SPDX-License-Identifier: MIT */
/* Bump arena: alignment, blocks, limit, grow, reset keeping the first block. */
#include "mem/arena.h"

#include <stdint.h>

#include "test.h"

static int aligned16(const void *p) { return (uintptr_t)p % 16 == 0; }

static void test_lazy_init(void)
{
    struct chopin__arena a;
    chopin__arena_init(&a, 1000, 0);
    CHECK(a.first == NULL && a.cur == NULL && a.big == NULL);
    CHECK_INT(a.block_size, 1008);
    CHECK(a.limit == SIZE_MAX);
    chopin__arena_destroy(&a);
    chopin__arena_init(&a, 1, 100);
    CHECK_INT(a.block_size, 64);
    CHECK_INT(a.limit, 100);
    chopin__arena_destroy(&a);
}

static void test_alignment_and_bump(void)
{
    struct chopin__arena a;
    chopin__arena_init(&a, 4096, 0);
    char *p = chopin__arena_alloc(&a, 1);
    char *q = chopin__arena_alloc(&a, 17);
    char *r = chopin__arena_alloc(&a, 16);
    CHECK(p && q && r);
    CHECK(aligned16(p) && aligned16(q) && aligned16(r));
    CHECK(q == p + 16);
    CHECK(r == q + 32);
    CHECK_INT(a.used, 64);
    memset(p, 1, 1);
    memset(q, 2, 17);
    memset(r, 3, 16);
    CHECK(chopin__arena_alloc(&a, 0) != NULL);
    CHECK_INT(a.used, 64);
    chopin__arena_destroy(&a);
}

static void test_reset_keeps_first_block(void)
{
    struct chopin__arena a;
    chopin__arena_init(&a, 256, 0);
    for (int round = 0; round < 3; round++) {
        void *first_alloc = chopin__arena_alloc(&a, 100);
        struct chopin__arena_block *first = a.first;
        for (int i = 0; i < 20; i++) /* spills into further blocks */
            CHECK(chopin__arena_alloc(&a, 100) != NULL);
        CHECK(a.cur != a.first);
        CHECK(chopin__arena_alloc(&a, 5000) != NULL); /* a block of its own */
        CHECK(a.big != NULL);
        chopin__arena_reset(&a);
        CHECK(a.first == first);
        CHECK(a.cur == a.first);
        CHECK(a.big == NULL);
        CHECK_INT(a.used, 0);
        CHECK(chopin__arena_alloc(&a, 100) == first_alloc); /* same memory again */
        chopin__arena_reset(&a);
    }
    chopin__arena_destroy(&a);
    CHECK(a.first == NULL);
}

static void test_large_allocation_keeps_current_block(void)
{
    struct chopin__arena a;
    chopin__arena_init(&a, 1024, 0);
    char *small1 = chopin__arena_alloc(&a, 32);
    char *big = chopin__arena_alloc(&a, 10000);
    char *small2 = chopin__arena_alloc(&a, 32);
    CHECK(small1 && big && small2);
    CHECK(aligned16(big));
    CHECK(small2 == small1 + 32); /* the rest of the current block is not wasted */
    memset(big, 7, 10000);
    CHECK_INT(a.used, 10064);
    chopin__arena_destroy(&a);
}

static void test_first_allocation_oversize(void)
{
    struct chopin__arena a;
    chopin__arena_init(&a, 128, 0);
    char *big = chopin__arena_alloc(&a, 1000);
    CHECK(big != NULL && a.first != NULL && a.big != NULL);
    memset(big, 1, 1000);
    chopin__arena_reset(&a);
    CHECK(a.first != NULL);
    chopin__arena_destroy(&a);
}

static void test_limit(void)
{
    struct chopin__arena a;
    chopin__arena_init(&a, 256, 100);
    CHECK(chopin__arena_alloc(&a, 64) != NULL);
    CHECK(chopin__arena_alloc(&a, 33) == NULL); /* 64 + 48 > 100 */
    CHECK(chopin__arena_alloc(&a, 32) != NULL);
    CHECK(chopin__arena_alloc(&a, 1) == NULL);
    CHECK(chopin__arena_alloc(&a, SIZE_MAX) == NULL);
    chopin__arena_reset(&a);
    CHECK(chopin__arena_alloc(&a, 96) != NULL);
    chopin__arena_destroy(&a);

    chopin__arena_init(&a, 256, 0);
    CHECK(chopin__arena_alloc(&a, SIZE_MAX) == NULL);
    CHECK(chopin__arena_alloc(&a, SIZE_MAX - 20) == NULL);
    CHECK_INT(a.used, 0);
    chopin__arena_destroy(&a);
}

static void test_grow_in_place(void)
{
    struct chopin__arena a;
    chopin__arena_init(&a, 1024, 0);
    char *p = chopin__arena_alloc(&a, 10);
    memcpy(p, "0123456789", 10);
    char *q = chopin__arena_grow(&a, p, 10, 100);
    CHECK(q == p);
    CHECK_MEM(q, 10, "0123456789");
    CHECK_INT(a.used, 112);
    q = chopin__arena_grow(&a, q, 100, 20); /* shrink at the top gives bytes back */
    CHECK(q == p);
    CHECK_INT(a.used, 32);
    char *next = chopin__arena_alloc(&a, 16);
    CHECK(next == p + 32);
    chopin__arena_destroy(&a);
}

static void test_grow_by_copy_and_own_block(void)
{
    struct chopin__arena a;
    chopin__arena_init(&a, 256, 0);
    char *p = chopin__arena_alloc(&a, 50);
    memset(p, 'x', 50);
    char *other = chopin__arena_alloc(&a, 16); /* p is no longer at the top */
    CHECK(other != NULL);
    char *q = chopin__arena_grow(&a, p, 50, 100);
    CHECK(q != NULL && q != p);
    CHECK(aligned16(q));
    for (int i = 0; i < 50; i++)
        CHECK(q[i] == 'x');

    /* Grow to a large size: the copy goes to its own block, which then grows by realloc. */
    char *top = chopin__arena_alloc(&a, 40);
    memset(top, 'y', 40);
    size_t used_before = a.used;
    char *big = chopin__arena_grow(&a, top, 40, 4000);
    CHECK(big != NULL && big != top);
    CHECK(a.big != NULL);
    CHECK_INT(a.used, used_before - 48 + 4000); /* top's bytes were given back */
    size_t len = 4000;
    for (int i = 0; i < 10; i++) {
        char *bigger = chopin__arena_grow(&a, big, len, len * 2);
        CHECK(bigger != NULL);
        big = bigger;
        len *= 2;
    }
    for (int i = 0; i < 40; i++)
        CHECK(big[i] == 'y');
    CHECK_INT(a.used, used_before - 48 + len);
    memset(big, 'z', len);
    CHECK(chopin__arena_grow(&a, NULL, 0, 32) != NULL);
    chopin__arena_destroy(&a);
}

static void test_grow_respects_limit(void)
{
    struct chopin__arena a;
    chopin__arena_init(&a, 1024, 256);
    char *p = chopin__arena_alloc(&a, 100);
    memset(p, 'a', 100);
    CHECK(chopin__arena_grow(&a, p, 100, 300) == NULL);
    CHECK(p[99] == 'a'); /* p stays valid */
    CHECK(chopin__arena_grow(&a, p, 100, 256) == p);
    CHECK_INT(a.used, 256);
    chopin__arena_destroy(&a);
}

/* Many random allocations: every pointer aligned, contents never overlap. */
static void test_random_no_overlap(void)
{
    enum { N = 2000 };
    static unsigned char *ptrs[N];
    static size_t lens[N];
    struct chopin__arena a;
    uint32_t x = 99;
    int bad = 0;
    chopin__arena_init(&a, 2048, 0);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < N; i++) {
            x = x * 1664525u + 1013904223u;
            lens[i] = (x >> 8) % 3000 < 2900 ? (x >> 8) % 200 : (x >> 8) % 9000;
            ptrs[i] = chopin__arena_alloc(&a, lens[i]);
            bad += ptrs[i] == NULL || !aligned16(ptrs[i]);
            memset(ptrs[i], (unsigned char)i, lens[i]);
        }
        for (int i = 0; i < N; i++)
            for (size_t k = 0; k < lens[i]; k++)
                bad += ptrs[i][k] != (unsigned char)i;
        chopin__arena_reset(&a);
    }
    CHECK_INT(bad, 0);
    chopin__arena_destroy(&a);
}

int main(void)
{
    RUN(test_lazy_init);
    RUN(test_alignment_and_bump);
    RUN(test_reset_keeps_first_block);
    RUN(test_large_allocation_keeps_current_block);
    RUN(test_first_allocation_oversize);
    RUN(test_limit);
    RUN(test_grow_in_place);
    RUN(test_grow_by_copy_and_own_block);
    RUN(test_grow_respects_limit);
    RUN(test_random_no_overlap);
    TEST_END();
}
