/* SPDX-License-Identifier: MIT */
/* Connection slab: errors, alignment, zeroing, LIFO reuse, fullness, lazy RSS. */
#include "mem/slab.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"

static void test_invalid_arguments(void)
{
    struct chopin__slab s;
    CHECK_INT(chopin__slab_init(&s, 200, 0), -EINVAL);
    CHECK_INT(chopin__slab_init(&s, 0, 10), -EINVAL);
    CHECK_INT(chopin__slab_init(&s, SIZE_MAX - 8, 10), -ENOMEM);
    CHECK_INT(chopin__slab_init(&s, SIZE_MAX / 4, UINT32_MAX), -ENOMEM);
    chopin__slab_destroy(&s); /* safe after a failed init */
}

static void test_slots_are_aligned_and_rounded(void)
{
    static const size_t sizes[] = {1, 63, 64, 65, 200, 256, 1000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct chopin__slab s;
        CHECK_INT(chopin__slab_init(&s, sizes[i], 5), 0);
        CHECK_INT(s.slot_size % 64, 0);
        CHECK(s.slot_size >= sizes[i] && s.slot_size < sizes[i] + 64);
        for (int k = 0; k < 5; k++) {
            char *slot = chopin__slab_take(&s);
            CHECK(slot != NULL);
            CHECK_INT((uintptr_t)slot % 64, 0);
            CHECK_INT(chopin__slab_index(&s, slot), k);
            CHECK(chopin__slab_at(&s, (uint32_t)k) == slot);
        }
        chopin__slab_destroy(&s);
    }
}

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static void test_full_then_lifo_reuse_zeroed(void)
{
    enum { CAP = 100 };
    struct chopin__slab s;
    char *slots[CAP];
    CHECK_INT(chopin__slab_init(&s, 200, CAP), 0);
    for (int i = 0; i < CAP; i++) {
        slots[i] = chopin__slab_take(&s);
        CHECK(slots[i] != NULL && all_zero(slots[i], s.slot_size));
        memset(slots[i], 0xab, s.slot_size);
    }
    CHECK_INT(s.used, CAP);
    CHECK(chopin__slab_take(&s) == NULL);
    CHECK_INT(s.used, CAP);

    chopin__slab_give(&s, slots[10]);
    chopin__slab_give(&s, slots[70]);
    chopin__slab_give(&s, slots[42]);
    CHECK_INT(s.used, CAP - 3);
    char *a = chopin__slab_take(&s), *b = chopin__slab_take(&s), *c = chopin__slab_take(&s);
    CHECK(a == slots[42] && b == slots[70] && c == slots[10]);
    CHECK(all_zero(a, s.slot_size) && all_zero(b, s.slot_size) && all_zero(c, s.slot_size));
    CHECK(chopin__slab_take(&s) == NULL);

    for (int i = 0; i < CAP; i++)
        chopin__slab_give(&s, slots[i]);
    CHECK_INT(s.used, 0);
    chopin__slab_destroy(&s);
}

static void test_capacity_one(void)
{
    struct chopin__slab s;
    CHECK_INT(chopin__slab_init(&s, 8, 1), 0);
    void *a = chopin__slab_take(&s);
    CHECK(a != NULL);
    CHECK(chopin__slab_take(&s) == NULL);
    chopin__slab_give(&s, a);
    CHECK(chopin__slab_take(&s) == a);
    chopin__slab_destroy(&s);
}

/* Resident set size in bytes, from /proc (0 when unavailable). */
static long rss_bytes(void)
{
    long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2)
        pages_resident = 0;
    fclose(f);
    return pages_resident * sysconf(_SC_PAGESIZE);
}

/* A million 256-byte slots reserve 256 MB; touching ten of them must not cost that. */
static void test_untouched_slots_cost_no_rss(void)
{
    struct chopin__slab s;
    long before = rss_bytes();
    CHECK_INT(chopin__slab_init(&s, 256, 1000000), 0);
    for (int i = 0; i < 10; i++)
        memset(chopin__slab_take(&s), 1, 256);
    long after = rss_bytes();
    if (before > 0)
        CHECK(after - before < 4 * 1024 * 1024);
    chopin__slab_destroy(&s);
}

/* Random take/give against a set of flags: no slot is ever handed out twice. */
static void test_random_take_give(void)
{
    enum { CAP = 1000 };
    struct chopin__slab s;
    static char *held[CAP];
    static unsigned char in_use[CAP];
    int n = 0, dup = 0;
    uint32_t x = 12345;
    CHECK_INT(chopin__slab_init(&s, 96, CAP), 0);
    for (int step = 0; step < 200000; step++) {
        x = x * 1103515245u + 12345u;
        if ((x >> 16) % 3 != 0 || n == 0) {
            char *p = chopin__slab_take(&s);
            if (p == NULL) {
                CHECK_INT(n, CAP);
                continue;
            }
            uint32_t i = chopin__slab_index(&s, p);
            dup += in_use[i];
            in_use[i] = 1;
            dup += !all_zero(p, s.slot_size);
            p[0] = 1;
            held[n++] = p;
        } else {
            int k = (int)((x >> 8) % (uint32_t)n);
            in_use[chopin__slab_index(&s, held[k])] = 0;
            chopin__slab_give(&s, held[k]);
            held[k] = held[--n];
        }
    }
    CHECK_INT(dup, 0);
    CHECK_INT(s.used, n);
    chopin__slab_destroy(&s);
}

int main(void)
{
    RUN(test_invalid_arguments);
    RUN(test_slots_are_aligned_and_rounded);
    RUN(test_full_then_lifo_reuse_zeroed);
    RUN(test_capacity_one);
    RUN(test_untouched_slots_cost_no_rss);
    RUN(test_random_take_give);
    TEST_END();
}
