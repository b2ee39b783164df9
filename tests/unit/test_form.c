/* SPDX-License-Identifier: MIT */
/* The application/x-www-form-urlencoded parser (src/http/form.c): decoding, empty pieces,
 * fields without '=', and the limits on field count and size. */
#include <errno.h>
#include <stdlib.h>

#include "http/form.h"
#include "test.h"

/* The fields joined as "name=value;" */
struct joined {
    char text[512];
    size_t len;
};

static int join(void *arg, const char *name, size_t nlen, const char *value, size_t vlen) {
    struct joined *j = arg;
    j->len += (size_t)snprintf(j->text + j->len, sizeof j->text - j->len, "%.*s=%.*s;", (int)nlen,
                               name, (int)vlen, value);
    return 0;
}

static ssize_t parse(const char *body, uint32_t max_fields, size_t max_field, struct joined *j) {
    size_t len = strlen(body);
    char *copy = malloc(len + 1); /* exact size: ASan sees an over-read */
    memcpy(copy, body, len);
    j->len = 0;
    j->text[0] = '\0';
    ssize_t n = chopin__form_parse(copy, len, max_fields, max_field, join, j);
    free(copy);
    return n;
}

static void decodes_fields(void) {
    static const struct {
        const char *body, *want;
        int n;
    } cases[] = {
        {"a=1&b=two+words&c=%41%42", "a=1;b=two words;c=AB;", 3},
        {"", "", 0},
        {"&&a=1&&", "a=1;", 1},
        {"flag&x=", "flag=;x=;", 2},
        {"=v", "=v;", 1},
        {"a=%zz&b=%4", "a=%zz;b=%4;", 2},
        {"e%3D=%26&%E2%82%AC=1", "e==&;\xe2\x82\xac=1;", 2},
        {"a=1=2", "a=1=2;", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct joined j;
        CHECK_INT(parse(cases[i].body, 100, 100, &j), cases[i].n);
        CHECK_STR(j.text, cases[i].want);
    }
}

static void limits(void) {
    struct joined j;
    CHECK_INT(parse("a=1&b=2&c=3", 3, 100, &j), 3);
    CHECK_INT(parse("a=1&b=2&c=3", 2, 100, &j), -EFBIG);
    CHECK_STR(j.text, "a=1;b=2;");
    CHECK_INT(parse("a=1&bb=%41", 10, 6, &j), 2); /* the raw field, 6 bytes */
    CHECK_INT(parse("a=1&bb=%41x", 10, 6, &j), -EFBIG);
}

static int refuse(void *arg, const char *n, size_t nl, const char *v, size_t vl) { return -EIO; }

static void callback_error(void) {
    char body[] = "a=1&b=2";
    CHECK_INT(chopin__form_parse(body, strlen(body), 10, 10, refuse, NULL), -EIO);
}

int main(void) {
    RUN(decodes_fields);
    RUN(limits);
    RUN(callback_error);
    TEST_END();
}
