/* SPDX-License-Identifier: MIT */
/* Percent-decoding of paths and query strings. */
#include <errno.h>
#include <string.h>

#include "http/chars.h"
#include "http/url.h"
#include "test.h"

enum { PLUS = CHOPIN__PCT_PLUS, STRICT = CHOPIN__PCT_STRICT, NO_NUL = CHOPIN__PCT_NO_NUL };

struct decode_case {
    const char *in;
    unsigned flags;
    int want_len; /* -EINVAL for an error */
    const char *out;
};

static const struct decode_case decode_cases[] = {
    {"", 0, 0, ""},
    {"plain", 0, 5, "plain"},
    {"a%20b", 0, 3, "a b"},
    {"%41%62%7a%5A", 0, 4, "AbzZ"},
    {"a%2Fb", 0, 3, "a/b"},
    {"a+b", 0, 3, "a+b"},
    {"a+b", PLUS, 3, "a b"},
    {"%2B+", PLUS, 2, "+ "},
    {"%", 0, 1, "%"},
    {"%4", 0, 2, "%4"},
    {"%zz", 0, 3, "%zz"},
    {"100%", 0, 4, "100%"},
    {"%", STRICT, -EINVAL, NULL},
    {"%4", STRICT, -EINVAL, NULL},
    {"%g0", STRICT, -EINVAL, NULL},
    {"%0g", STRICT, -EINVAL, NULL},
    {"ok%41", STRICT, 3, "okA"},
    {"%C3%A9", STRICT, 2, "\xc3\xa9"},
    {"%00", NO_NUL, -EINVAL, NULL},
    {"%00", 0, 1, ""}, /* one NUL byte; compared by length */
    {"%%41", 0, 2, "%A"},
    {"%%41", STRICT, -EINVAL, NULL},
};

static void test_decode(void)
{
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        const struct decode_case *c = &decode_cases[i];
        char out[64];
        ssize_t n = chopin__pct_decode(out, c->in, strlen(c->in), c->flags);
        CHECK_INT(n, c->want_len);
        if (n >= 0 && c->out && strcmp(c->in, "%00") != 0)
            CHECK_MEM(out, (size_t)n, c->out);
    }
    char nul[4];
    CHECK_INT(chopin__pct_decode(nul, "%00", 3, 0), 1);
    CHECK_INT(nul[0], 0);
    CHECK_INT(chopin__pct_decode(nul, "a\0b", 3, 0), 3);
    CHECK_INT(chopin__pct_decode(nul, "a\0b", 3, NO_NUL), -EINVAL);
}

static void test_decode_in_place(void)
{
    char buf[] = "a%20b%2Fc+d";
    ssize_t n = chopin__pct_decode(buf, buf, strlen(buf), PLUS);
    CHECK_MEM(buf, (size_t)n, "a b/c d");
}

static void test_hex(void)
{
    CHECK_INT(chopin__hex_value('0'), 0);
    CHECK_INT(chopin__hex_value('9'), 9);
    CHECK_INT(chopin__hex_value('a'), 10);
    CHECK_INT(chopin__hex_value('F'), 15);
    CHECK_INT(chopin__hex_value('g'), -1);
    CHECK_INT(chopin__hex_value('G'), -1);
    CHECK_INT(chopin__hex_value('/'), -1);
    CHECK_INT(chopin__hex_value(':'), -1);
    CHECK_INT(chopin__hex_value('@'), -1);
    CHECK_INT(chopin__hex_value(0xc1), -1); /* 0xc1 | 0x20 == 0xe1: not a letter */
}

static void test_needs_decode(void)
{
    CHECK(!chopin__pct_needs_decode("abc", 3, 0));
    CHECK(chopin__pct_needs_decode("a%20", 4, 0));
    CHECK(!chopin__pct_needs_decode("a+b", 3, 0));
    CHECK(chopin__pct_needs_decode("a+b", 3, PLUS));
    CHECK(!chopin__pct_needs_decode("", 0, PLUS));
}

static void test_equal(void)
{
    CHECK(chopin__pct_equal("a%20b", 5, "a b", 3, 0));
    CHECK(chopin__pct_equal("a+b", 3, "a b", 3, PLUS));
    CHECK(!chopin__pct_equal("a+b", 3, "a b", 3, 0));
    CHECK(chopin__pct_equal("a+b", 3, "a+b", 3, 0));
    CHECK(!chopin__pct_equal("ab", 2, "abc", 3, 0));
    CHECK(!chopin__pct_equal("abc", 3, "ab", 2, 0));
    CHECK(chopin__pct_equal("%zz", 3, "%zz", 3, 0));
    CHECK(chopin__pct_equal("", 0, "", 0, 0));
    CHECK(!chopin__pct_equal("%41", 3, "a", 1, 0));
    CHECK(chopin__pct_equal("%41", 3, "A", 1, 0));
}

int main(void)
{
    RUN(test_decode);
    RUN(test_decode_in_place);
    RUN(test_hex);
    RUN(test_needs_decode);
    RUN(test_equal);
    TEST_END();
}
