/* SPDX-License-Identifier: MIT */
/* Conditional requests (src/http/conditional.c): dates, entity-tag lists, and the
 * precedence of RFC 9110 §13.2.2 as a matrix. */
#include "http/conditional.h"
#include "test.h"

#define NOW 1764720000 /* 2025-12-03 */
#define LM 784111777   /* Sun, 06 Nov 1994 08:49:37 GMT */
static const char *const DATE_LM = "Sun, 06 Nov 1994 08:49:37 GMT";
static const char *const DATE_BEFORE = "Sun, 06 Nov 1994 08:49:36 GMT";
static const char *const DATE_AFTER = "Sun, 06 Nov 1994 08:49:38 GMT";

static void test_http_dates(void)
{
    int64_t t;
    CHECK_INT(chopin__http_date_parse(DATE_LM, strlen(DATE_LM), NOW, &t), 0);
    CHECK_INT(t, LM);
    const char *rfc850 = "Sunday, 06-Nov-94 08:49:37 GMT";
    CHECK_INT(chopin__http_date_parse(rfc850, strlen(rfc850), NOW, &t), 0);
    CHECK_INT(t, LM);
    const char *asc = "Sun Nov  6 08:49:37 1994";
    CHECK_INT(chopin__http_date_parse(asc, strlen(asc), NOW, &t), 0);
    CHECK_INT(t, LM);
    const char *epoch = "Thu, 01 Jan 1970 00:00:00 GMT";
    CHECK_INT(chopin__http_date_parse(epoch, strlen(epoch), NOW, &t), 0);
    CHECK_INT(t, 0);
    const char *leap = "Tue, 29 Feb 2000 12:00:00 GMT";
    CHECK_INT(chopin__http_date_parse(leap, strlen(leap), NOW, &t), 0);
    CHECK_INT(t, 951825600);
    const char *bad[] = {"", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC",
                         "Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 29 Feb 1900 08:49:37 GMT",
                         "Sun, 06 Nov 1994 24:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 08:49:37 GMT ", "Xyz, 06 Nov 1994 08:49:37 GMT",
                         "Funday, 06-Nov-94 08:49:37 GMT"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (chopin__http_date_parse(bad[i], strlen(bad[i]), NOW, &t) == 0) {
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
            test_case_failed = 1;
        }
    }
}

static int list_match(const char *list, const char *etag, int weak)
{
    return chopin__etag_list_match(list, strlen(list), etag, strlen(etag), weak);
}

static void test_etag_lists(void)
{
    CHECK(list_match("\"a\"", "\"a\"", 0));
    CHECK(list_match("\"x\", \"a\"", "\"a\"", 0));
    CHECK(list_match(" * ", "\"a\"", 0));
    CHECK(!list_match("\"b\"", "\"a\"", 0));
    CHECK(!list_match("W/\"a\"", "\"a\"", 0)); /* strong comparison: weak never matches */
    CHECK(list_match("W/\"a\"", "\"a\"", 1));  /* weak comparison ignores W/ */
    CHECK(!list_match("\"a", "\"a\"", 1));     /* unterminated: nothing matches */
    CHECK(!list_match("a", "\"a\"", 1));
    CHECK(!list_match("\"a\" \"a\"", "\"a\"", 1));
    CHECK(list_match(",\"a\",", "\"a\"", 1));  /* empty list elements */
    CHECK(!list_match("*, \"a\"", "\"a\"", 1)); /* "*" stands alone */
    CHECK(!list_match("", "\"a\"", 1));
}

static chopin_str field(const char *s)
{
    return (chopin_str){s, s ? strlen(s) : 0};
}
#define FIELD(s) field(s)

struct cond_case {
    const char *name;
    const char *if_match, *if_none_match, *ims, *ius;
    int get_or_head;
    enum chopin__cond_result want;
};

/* RFC 9110 §13.2.2, step by step: each row names the step that decides it. */
static void test_precedence_matrix(void)
{
    const char *E = "\"v1\"", *OTHER = "\"v0\"";
    const struct cond_case cases[] = {
        {"none", NULL, NULL, NULL, NULL, 1, CHOPIN__COND_PROCEED},
        {"1 If-Match true", E, NULL, NULL, NULL, 1, CHOPIN__COND_PROCEED},
        {"1 If-Match *", "*", NULL, NULL, NULL, 1, CHOPIN__COND_PROCEED},
        {"1 If-Match false", OTHER, NULL, NULL, NULL, 1, CHOPIN__COND_FAILED},
        {"1 If-Match weak is false", "W/\"v1\"", NULL, NULL, NULL, 1, CHOPIN__COND_FAILED},
        {"1 If-Match false beats INM", OTHER, E, NULL, NULL, 1, CHOPIN__COND_FAILED},
        {"2 IUS true", NULL, NULL, NULL, DATE_LM, 1, CHOPIN__COND_PROCEED},
        {"2 IUS later true", NULL, NULL, NULL, DATE_AFTER, 1, CHOPIN__COND_PROCEED},
        {"2 IUS false", NULL, NULL, NULL, DATE_BEFORE, 1, CHOPIN__COND_FAILED},
        {"2 IUS invalid ignored", NULL, NULL, NULL, "garbage", 1, CHOPIN__COND_PROCEED},
        {"2 IUS ignored with If-Match", E, NULL, NULL, DATE_BEFORE, 1, CHOPIN__COND_PROCEED},
        {"3 INM match GET 304", NULL, E, NULL, NULL, 1, CHOPIN__COND_NOT_MODIFIED},
        {"3 INM weak match 304", NULL, "W/\"v1\"", NULL, NULL, 1, CHOPIN__COND_NOT_MODIFIED},
        {"3 INM * 304", NULL, "*", NULL, NULL, 1, CHOPIN__COND_NOT_MODIFIED},
        {"3 INM match other method 412", NULL, E, NULL, NULL, 0, CHOPIN__COND_FAILED},
        {"3 INM no match", NULL, OTHER, NULL, NULL, 1, CHOPIN__COND_PROCEED},
        {"3 INM no match beats IMS", NULL, OTHER, DATE_LM, NULL, 1, CHOPIN__COND_PROCEED},
        {"4 IMS same date 304", NULL, NULL, DATE_LM, NULL, 1, CHOPIN__COND_NOT_MODIFIED},
        {"4 IMS later 304", NULL, NULL, DATE_AFTER, NULL, 1, CHOPIN__COND_NOT_MODIFIED},
        {"4 IMS earlier", NULL, NULL, DATE_BEFORE, NULL, 1, CHOPIN__COND_PROCEED},
        {"4 IMS invalid ignored", NULL, NULL, "garbage", NULL, 1, CHOPIN__COND_PROCEED},
        {"4 IMS not for other methods", NULL, NULL, DATE_LM, NULL, 0, CHOPIN__COND_PROCEED},
        {"1+3 If-Match true then INM", E, E, NULL, NULL, 1, CHOPIN__COND_NOT_MODIFIED},
        {"2+4 IUS false first", NULL, NULL, DATE_LM, DATE_BEFORE, 1, CHOPIN__COND_FAILED},
        {"2+4 IUS true then IMS", NULL, NULL, DATE_LM, DATE_LM, 1, CHOPIN__COND_NOT_MODIFIED},
    };
    struct chopin__validators v = {E, strlen(E), LM};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct cond_case *c = &cases[i];
        struct chopin__cond_fields f = {FIELD(c->if_match), FIELD(c->if_none_match),
                                        FIELD(c->ims), FIELD(c->ius), FIELD(NULL)};
        enum chopin__cond_result got = chopin__cond_eval(&f, c->get_or_head, &v, NOW);
        if (got != c->want) {
            fprintf(stderr, "  %s: %d, expected %d\n", c->name, (int)got, (int)c->want);
            test_case_failed = 1;
        }
    }
}

static void test_if_range(void)
{
    const char *E = "\"v1\"";
    struct chopin__validators v = {E, strlen(E), LM};
    CHECK(chopin__if_range_holds((chopin_str){NULL, 0}, &v, NOW));
    CHECK(chopin__if_range_holds(FIELD(E), &v, NOW));
    CHECK(!chopin__if_range_holds(FIELD("\"v0\""), &v, NOW));
    CHECK(!chopin__if_range_holds(FIELD("W/\"v1\""), &v, NOW)); /* weak never */
    CHECK(chopin__if_range_holds(FIELD(DATE_LM), &v, NOW));
    CHECK(!chopin__if_range_holds(FIELD(DATE_AFTER), &v, NOW)); /* exact match only */
    CHECK(!chopin__if_range_holds(FIELD(DATE_BEFORE), &v, NOW));
    CHECK(!chopin__if_range_holds(FIELD("garbage"), &v, NOW));
}

int main(void)
{
    RUN(test_http_dates);
    RUN(test_etag_lists);
    RUN(test_precedence_matrix);
    RUN(test_if_range);
    TEST_END();
}
