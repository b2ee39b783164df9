/* SPDX-License-Identifier: MIT */
/* The Range parser (src/http/range.c): RFC 9110 §14.1.2 and §14.2, table-driven. */
#include <stdlib.h>

#include "http/range.h"
#include "test.h"

struct range_case {
    const char *value;
    uint64_t size;
    enum chopin__range_result want;
    const char *ranges; /* "first-last,..." of the satisfiable ranges, for OK */
};

static void check_case(const struct range_case *c)
{
    struct chopin__range r[4];
    size_t n = 99;
    /* An exact-size copy: ASan sees any read past the end. */
    size_t len = strlen(c->value);
    char *v = malloc(len ? len : 1);
    memcpy(v, c->value, len);
    enum chopin__range_result got = chopin__range_parse(v, len, c->size, r, 4, &n);
    free(v);
    if ((int)got != (int)c->want) {
        fprintf(stderr, "  range \"%s\" of %" PRIu64 ": %d, expected %d\n", c->value, c->size,
                (int)got, (int)c->want);
        test_case_failed = 1;
        return;
    }
    if (got != CHOPIN__RANGE_OK) {
        CHECK_INT(n, 0);
        return;
    }
    char buf[128] = "";
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%" PRIu64 "-%" PRIu64, i ? "," : "",
                               r[i].first, r[i].last);
    if (strcmp(buf, c->ranges)) {
        fprintf(stderr, "  range \"%s\": %s, expected %s\n", c->value, buf, c->ranges);
        test_case_failed = 1;
    }
}

static void test_single_ranges(void)
{
    static const struct range_case cases[] = {
        {"bytes=0-0", 10, CHOPIN__RANGE_OK, "0-0"},
        {"bytes=0-9", 10, CHOPIN__RANGE_OK, "0-9"},
        {"bytes=2-5", 10, CHOPIN__RANGE_OK, "2-5"},
        {"bytes=5-100", 10, CHOPIN__RANGE_OK, "5-9"},      /* clamped to the end */
        {"bytes=5-", 10, CHOPIN__RANGE_OK, "5-9"},         /* open-ended */
        {"bytes=-3", 10, CHOPIN__RANGE_OK, "7-9"},         /* suffix */
        {"bytes=-30", 10, CHOPIN__RANGE_OK, "0-9"},        /* suffix longer than the file */
        {"BYTES=1-2", 10, CHOPIN__RANGE_OK, "1-2"},        /* the unit is case-insensitive */
        {"bytes=9-9", 10, CHOPIN__RANGE_OK, "9-9"},
        {"bytes=0-99999999999999999999999", 10, CHOPIN__RANGE_OK, "0-9"}, /* saturates */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
}

static void test_unsatisfiable(void)
{
    static const struct range_case cases[] = {
        {"bytes=10-", 10, CHOPIN__RANGE_UNSATISFIABLE, ""},
        {"bytes=10-20", 10, CHOPIN__RANGE_UNSATISFIABLE, ""},
        {"bytes=-0", 10, CHOPIN__RANGE_UNSATISFIABLE, ""},
        {"bytes=0-", 0, CHOPIN__RANGE_UNSATISFIABLE, ""},  /* empty file */
        {"bytes=-5", 0, CHOPIN__RANGE_UNSATISFIABLE, ""},
        {"bytes=99999999999999999999999-", 10, CHOPIN__RANGE_UNSATISFIABLE, ""},
        {"bytes=20-30, 40-", 10, CHOPIN__RANGE_UNSATISFIABLE, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
}

static void test_invalid_is_ignored(void)
{
    static const struct range_case cases[] = {
        {"", 10, CHOPIN__RANGE_IGNORE, ""},
        {"bytes", 10, CHOPIN__RANGE_IGNORE, ""},
        {"bytes=", 10, CHOPIN__RANGE_IGNORE, ""},
        {"bytes=,", 10, CHOPIN__RANGE_IGNORE, ""},
        {"items=0-1", 10, CHOPIN__RANGE_IGNORE, ""},     /* another unit */
        {"bytes=5-2", 10, CHOPIN__RANGE_IGNORE, ""},     /* last below first: invalid */
        {"bytes=-", 10, CHOPIN__RANGE_IGNORE, ""},
        {"bytes=a-b", 10, CHOPIN__RANGE_IGNORE, ""},
        {"bytes=1-2x", 10, CHOPIN__RANGE_IGNORE, ""},
        {"bytes=1 -2", 10, CHOPIN__RANGE_IGNORE, ""},    /* no space inside a spec */
        {"bytes =1-2", 10, CHOPIN__RANGE_IGNORE, ""},
        {"bytes=0-1,5-2", 10, CHOPIN__RANGE_IGNORE, ""}, /* one invalid spec spoils all */
        {"bytes=--1", 10, CHOPIN__RANGE_IGNORE, ""},
        {"bytes=+1-2", 10, CHOPIN__RANGE_IGNORE, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
}

static void test_several_ranges(void)
{
    static const struct range_case cases[] = {
        {"bytes=0-1,4-5", 10, CHOPIN__RANGE_OK, "0-1,4-5"},
        {"bytes=0-1 , 4-5", 10, CHOPIN__RANGE_OK, "0-1,4-5"},   /* OWS around commas */
        {"bytes=, 0-1,,4-5,", 10, CHOPIN__RANGE_OK, "0-1,4-5"}, /* empty list elements */
        {"bytes=4-5,0-1", 10, CHOPIN__RANGE_OK, "4-5,0-1"},     /* request order kept */
        {"bytes=0-1,2-3", 10, CHOPIN__RANGE_OK, "0-1,2-3"},     /* adjacent: no overlap */
        {"bytes=0-1,20-30", 10, CHOPIN__RANGE_OK, "0-1"},       /* unsatisfiable one dropped */
        {"bytes=0-4,3-6", 10, CHOPIN__RANGE_IGNORE, ""},        /* overlapping: whole file */
        {"bytes=0-0,-10", 10, CHOPIN__RANGE_IGNORE, ""},        /* suffix overlaps */
        {"bytes=0-0,1-1,2-2,3-3", 10, CHOPIN__RANGE_OK, "0-0,1-1,2-2,3-3"}, /* max 4 */
        {"bytes=0-0,1-1,2-2,3-3,4-4", 10, CHOPIN__RANGE_IGNORE, ""},        /* one too many */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
}

int main(void)
{
    RUN(test_single_ranges);
    RUN(test_unsatisfiable);
    RUN(test_invalid_is_ignored);
    RUN(test_several_ranges);
    TEST_END();
}
