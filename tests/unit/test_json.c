/* SPDX-License-Identifier: MIT */
/* JSON writer: every document is parsed back with jansson (link -ljansson). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chopin.h"
#include "chopin_jansson.h"
#include "api/exchange.h"
#include "conn.h"
#include "engine.h"
#include "http/message.h"
#include "mem/arena.h"
#include "test.h"

/* request.c (reached through chopin_req_body) needs these from the connection and engine
 * modules (conn.h, engine.h); weak stand-ins keep the test free of them. */
__attribute__((weak)) int chopin__conn_fd(const struct chopin__conn *c)
{
    return -1;
}
__attribute__((weak)) void *chopin__engine_worker_data(const struct chopin__engine *e)
{
    return NULL;
}
__attribute__((weak)) int chopin__engine_worker_id(const struct chopin__engine *e)
{
    return 0;
}

struct ctx {
    struct chopin__arena arena;
    chopin_res res;
};

static void ctx_init(struct ctx *c)
{
    chopin__arena_init(&c->arena, 512, 1 << 22);
    chopin__res_init(&c->res, &c->arena);
}

static void ctx_fini(struct ctx *c)
{
    chopin__res_discard(&c->res);
    chopin__arena_destroy(&c->arena);
}

/* The body parsed by jansson, or NULL (with the reason printed). */
static json_t *parse_body(const chopin_res *res)
{
    json_error_t e;
    json_t *v = json_loadb(res->body, res->body_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        fprintf(stderr, "  jansson: %s in \"%.*s\"\n", e.text, (int)res->body_len, res->body);
    return v;
}

static void test_document(void)
{
    struct ctx c;
    ctx_init(&c);
    chopin_json *j = chopin_res_json(&c.res, 201);
    CHECK(j != NULL);
    CHECK_INT(c.res.body_kind, CHOPIN__RES_COPY);
    CHECK_INT(c.res.status, 201);
    CHECK(strcmp(c.res.content_type, "application/json") == 0);
    chopin_json_obj_begin(j);
    chopin_json_key(j, "id");
    chopin_json_int(j, 42);
    chopin_json_key(j, "name");
    chopin_json_str(j, "todo");
    chopin_json_key(j, "done");
    chopin_json_bool(j, 0);
    chopin_json_key(j, "ok");
    chopin_json_bool(j, 7);
    chopin_json_key(j, "none");
    chopin_json_null(j);
    chopin_json_key(j, "tags");
    chopin_json_arr_begin(j);
    chopin_json_str(j, "a");
    chopin_json_strn(j, "bcd", 2);
    chopin_json_arr_begin(j);
    chopin_json_arr_end(j);
    chopin_json_obj_begin(j);
    chopin_json_obj_end(j);
    chopin_json_double(j, 1.5);
    chopin_json_arr_end(j);
    chopin_json_key(j, "nested");
    chopin_json_obj_begin(j);
    chopin_json_key(j, "x");
    chopin_json_str(j, NULL);
    chopin_json_obj_end(j);
    chopin_json_obj_end(j);
    CHECK_INT(chopin_json_end(j), 0);
    CHECK_MEM(c.res.body, c.res.body_len,
              "{\"id\":42,\"name\":\"todo\",\"done\":false,\"ok\":true,\"none\":null,"
              "\"tags\":[\"a\",\"bc\",[],{},1.5],\"nested\":{\"x\":null}}");
    json_t *v = parse_body(&c.res);
    CHECK(v != NULL);
    CHECK_INT(json_integer_value(json_object_get(v, "id")), 42);
    json_decref(v);
    CHECK_INT(chopin_json_end(j), 0); /* idempotent */
    ctx_fini(&c);
}

static void test_scalars_at_top(void)
{
    static const char *const want[] = {"\"s\"", "-9223372036854775808", "9223372036854775807",
                                       "0", "true", "null", "[]", "{}"};
    for (int k = 0; k < 8; k++) {
        struct ctx c;
        ctx_init(&c);
        chopin_json *j = chopin_res_json(&c.res, 200);
        switch (k) {
        case 0: chopin_json_str(j, "s"); break;
        case 1: chopin_json_int(j, INT64_MIN); break;
        case 2: chopin_json_int(j, INT64_MAX); break;
        case 3: chopin_json_int(j, 0); break;
        case 4: chopin_json_bool(j, 1); break;
        case 5: chopin_json_null(j); break;
        case 6: chopin_json_arr_begin(j); chopin_json_arr_end(j); break;
        default: chopin_json_obj_begin(j); chopin_json_obj_end(j); break;
        }
        CHECK_INT(chopin_json_end(j), 0);
        CHECK_MEM(c.res.body, c.res.body_len, want[k]);
        json_t *v = parse_body(&c.res);
        CHECK(v != NULL);
        if (k == 1)
            CHECK(json_integer_value(v) == INT64_MIN);
        json_decref(v);
        ctx_fini(&c);
    }
}

/* Writes s[0..len) as a one-element array and returns jansson's reading of it. */
static json_t *roundtrip_string(struct ctx *c, const char *s, size_t len)
{
    chopin__res_discard(&c->res);
    chopin__res_init(&c->res, &c->arena);
    chopin_json *j = chopin_res_json(&c->res, 200);
    chopin_json_arr_begin(j);
    chopin_json_strn(j, s, len);
    chopin_json_arr_end(j);
    CHECK_INT(chopin_json_end(j), 0);
    json_t *v = parse_body(&c->res);
    json_t *str = v ? json_incref(json_array_get(v, 0)) : NULL;
    json_decref(v);
    return str;
}

static void test_escaping(void)
{
    struct ctx c;
    ctx_init(&c);
    char all[128];
    for (int i = 0; i < 128; i++)
        all[i] = (char)i; /* every ASCII byte, NUL and controls included */
    json_t *s = roundtrip_string(&c, all, sizeof(all));
    CHECK(s != NULL);
    if (s) {
        CHECK_INT(json_string_length(s), 128);
        CHECK(memcmp(json_string_value(s), all, 128) == 0);
    }
    json_decref(s);
    /* short escapes where JSON has them, \u00XX for the other controls */
    s = roundtrip_string(&c, "\"\\\b\f\n\r\t\x01\x1f/", 10);
    json_decref(s);
    CHECK_MEM(c.res.body, c.res.body_len,
              "[\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f/\"]");
    /* valid UTF-8 passes through unchanged */
    static const char utf8[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xb9 \xef\xbf\xbf "
                               "\xf4\x8f\xbf\xbf \xed\x9f\xbf";
    s = roundtrip_string(&c, utf8, sizeof(utf8) - 1);
    CHECK(s && strcmp(json_string_value(s), utf8) == 0);
    json_decref(s);
    CHECK(memmem(c.res.body, c.res.body_len, "\xf0\x9f\x8e\xb9", 4) != NULL);
    ctx_fini(&c);
}

/* What the writer must make of one byte: itself, a JSON escape, or (a lone byte from
 * 0x80 on being invalid UTF-8) U+FFFD. */
static size_t escaped_byte(unsigned char b, char *out)
{
    static const char shorts[] = {['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
                                  ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    if (b >= 0x80)
        return (size_t)sprintf(out, "\xef\xbf\xbd");
    if (b < sizeof shorts && shorts[b])
        return (size_t)sprintf(out, "\\%c", shorts[b]);
    if (b < 0x20)
        return (size_t)sprintf(out, "\\u%04x", b);
    out[0] = (char)b;
    return 1;
}

/* Strings are scanned 8 bytes at a time where 8 remain: every byte value at every position
 * of strings of 1 to 24 bytes (so in every lane of a word, and in the byte-wise tail) must
 * come out as escaped_byte says, the rest untouched. */
static void test_escape_every_position(void)
{
    int bad = 0;
    for (size_t len = 1; len <= 24; len++) {
        for (size_t at = 0; at < len; at++) {
            for (int b = 0; b < 256; b++) {
                char in[24], want[64];
                memset(in, 'a', len);
                in[at] = (char)b;
                size_t n = 0;
                want[n++] = '"';
                for (size_t i = 0; i < len; i++)
                    n += escaped_byte((unsigned char)in[i], want + n);
                want[n++] = '"';
                struct ctx c;
                ctx_init(&c);
                chopin_json *j = chopin_res_json(&c.res, 200);
                chopin_json_strn(j, in, len);
                if (chopin_json_end(j) != 0 || c.res.body_len != n ||
                    memcmp(c.res.body, want, n) != 0) {
                    if (!bad++)
                        fprintf(stderr, "  byte 0x%02x at %zu of %zu: got \"%.*s\"\n", b, at, len,
                                (int)c.res.body_len, c.res.body);
                }
                ctx_fini(&c);
            }
        }
    }
    CHECK_INT(bad, 0);
}

/* Invalid UTF-8: each maximal ill-formed subpart becomes one U+FFFD. */
static void test_invalid_utf8(void)
{
#define R "\xef\xbf\xbd"
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"a\x80z", "a" R "z"},                /* lone continuation */
        {"a\xc3z", "a" R "z"},                /* truncated 2-byte */
        {"\xc0\xaf", R R},                    /* overlong lead: never valid */
        {"\xc1\xbf", R R},
        {"\xe0\x80\xaf", R R R},              /* overlong 3-byte: E0 needs A0..BF */
        {"\xed\xa0\x80", R R R},              /* surrogate D800 */
        {"\xe2\x82", R},                      /* truncated 3-byte at the end */
        {"\xe2\x82z", R "z"},                 /* truncated 3-byte: one U+FFFD */
        {"\xf0\x9f\x8e", R},                  /* truncated 4-byte */
        {"\xf4\x90\x80\x80", R R R R},        /* above U+10FFFF */
        {"\xf5\x80", R R},                    /* F5..FF never valid */
        {"\xff", R},
        {"ok\xf0\x9f\x8e\xb9\x80", "ok\xf0\x9f\x8e\xb9" R},
    };
#undef R
    struct ctx c;
    ctx_init(&c);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *s = roundtrip_string(&c, cases[i].in, strlen(cases[i].in));
        CHECK(s != NULL);
        if (s && strcmp(json_string_value(s), cases[i].out) != 0) {
            fprintf(stderr, "  case %zu: got \"%s\"\n", i, json_string_value(s));
            CHECK(0);
        }
        json_decref(s);
    }
    ctx_fini(&c);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_doubles(void)
{
    struct ctx c;
    ctx_init(&c);
    double values[2000];
    static const double fixed[] = {0.0,     -0.0,        0.1,     1.0 / 3,     1e300,
                                   -2.5e-308, 4.9e-324,  1.7976931348623157e308,
                                   123456789012345678.0, 0.30000000000000004, 100.0};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        values[n++] = fixed[i];
    while (n < 2000) {
        uint64_t bits = rng();
        double d;
        memcpy(&d, &bits, sizeof(d));
        if (isfinite(d))
            values[n++] = d;
    }
    chopin_json *j = chopin_res_json(&c.res, 200);
    chopin_json_arr_begin(j);
    for (size_t i = 0; i < n; i++)
        chopin_json_double(j, values[i]);
    chopin_json_arr_end(j);
    CHECK_INT(chopin_json_end(j), 0);
    json_t *v = parse_body(&c.res);
    CHECK(v != NULL && json_array_size(v) == n);
    for (size_t i = 0; v && i < n; i++) {
        json_t *e = json_array_get(v, i);
        double got = json_is_integer(e) ? (double)json_integer_value(e) : json_real_value(e);
        if (memcmp(&got, &values[i], sizeof(got)) != 0 && !(got == 0 && values[i] == 0)) {
            fprintf(stderr, "  %zu: %.17g read back as %.17g\n", i, values[i], got);
            CHECK(0);
            break;
        }
    }
    json_decref(v);
    CHECK(memmem(c.res.body, c.res.body_len, "[0,-0,0.1,0.333333333333333", 27) != NULL);
    ctx_fini(&c);
}

/* A misused or failed writer reports it at the end and turns the response into a 500. */
static void test_errors(void)
{
    for (int k = 0; k < 12; k++) {
        struct ctx c;
        ctx_init(&c);
        chopin_json *j = chopin_res_json(&c.res, 200);
        switch (k) {
        case 0: chopin_json_double(j, NAN); break;
        case 1: chopin_json_arr_begin(j); chopin_json_double(j, INFINITY); chopin_json_arr_end(j); break;
        case 2: chopin_json_obj_begin(j); break;                          /* unclosed */
        case 3: chopin_json_arr_end(j); break;                            /* nothing open */
        case 4: chopin_json_obj_begin(j); chopin_json_arr_end(j); break;  /* mismatched */
        case 5: chopin_json_obj_begin(j); chopin_json_int(j, 1); break;   /* no key */
        case 6: chopin_json_arr_begin(j); chopin_json_key(j, "k"); break; /* key in array */
        case 7: chopin_json_int(j, 1); chopin_json_int(j, 2); break;      /* two documents */
        case 8: break;                                                    /* nothing */
        case 9: chopin_json_obj_begin(j); chopin_json_key(j, "k"); chopin_json_obj_end(j); break;
        case 10: chopin_json_obj_begin(j); chopin_json_key(j, NULL); break;
        default: chopin_json_arr_begin(j); chopin_json_strn(j, NULL, 3); break;
        }
        int err = chopin_json_end(j);
        if (err != -EINVAL)
            fprintf(stderr, "  case %d: end returned %d\n", k, err);
        CHECK_INT(err, -EINVAL);
        CHECK_INT(c.res.status, 500);
        CHECK(c.res.json == NULL);
        ctx_fini(&c);
    }
    CHECK_INT(chopin_json_end(NULL), -EINVAL);
    CHECK(chopin_res_json(NULL, 200) == NULL);
}

/* The last setter wins for JSON too: a 200 document already written, then a failure
 * found after it (a database commit), must be able to answer an error document. */
static void test_json_replaces_json(void)
{
    struct ctx c;
    ctx_init(&c);
    chopin_json *first = chopin_res_json(&c.res, 200);
    chopin_json_obj_begin(first);
    chopin_json_key(first, "ok");
    chopin_json_bool(first, 1);
    chopin_json_obj_end(first);
    CHECK_INT(chopin_json_end(first), 0);
    chopin_json *err = chopin_res_json(&c.res, 500);
    CHECK(err != NULL);
    chopin_json_obj_begin(err);
    chopin_json_key(err, "error");
    chopin_json_str(err, "commit failed");
    chopin_json_obj_end(err);
    CHECK_INT(chopin_json_end(err), 0);
    CHECK_INT(c.res.status, 500);
    CHECK_MEM(c.res.body, c.res.body_len, "{\"error\":\"commit failed\"}");
    ctx_fini(&c);

    /* An unfinished writer replaced mid-document: its later calls do nothing and its end
     * reports the replacement without touching the new body. */
    ctx_init(&c);
    chopin_json *old = chopin_res_json(&c.res, 200);
    chopin_json_arr_begin(old);
    chopin_json *now = chopin_res_json(&c.res, 201);
    CHECK(now != NULL && now != old);
    chopin_json_int(old, 1);
    chopin_json_arr_end(old);
    chopin_json_null(now);
    CHECK_INT(chopin_json_end(old), -EINVAL);
    CHECK_INT(chopin_json_end(now), 0);
    CHECK_INT(c.res.status, 201);
    CHECK_MEM(c.res.body, c.res.body_len, "null");
    CHECK(!chopin__json_unfinished(&c.res));
    ctx_fini(&c);
}

static void test_depth(void)
{
    struct ctx c;
    ctx_init(&c);
    chopin_json *j = chopin_res_json(&c.res, 200);
    for (int i = 0; i < 64; i++)
        chopin_json_arr_begin(j);
    for (int i = 0; i < 64; i++)
        chopin_json_arr_end(j);
    CHECK_INT(chopin_json_end(j), 0);
    json_t *v = parse_body(&c.res);
    CHECK(v != NULL);
    json_decref(v);
    ctx_fini(&c);

    ctx_init(&c);
    j = chopin_res_json(&c.res, 200);
    for (int i = 0; i < 65; i++)
        chopin_json_arr_begin(j);
    for (int i = 0; i < 65; i++)
        chopin_json_arr_end(j);
    CHECK_INT(chopin_json_end(j), -EINVAL);
    ctx_fini(&c);
}

/* A large document grows its buffer through the arena, across interleaved header writes;
 * an arena too small for it gives -ENOSPC. */
static void test_growth(void)
{
    struct ctx c;
    ctx_init(&c);
    chopin_json *j = chopin_res_json(&c.res, 200);
    chopin_json_arr_begin(j);
    for (int i = 0; i < 20000; i++) {
        chopin_json_obj_begin(j);
        chopin_json_key(j, "i");
        chopin_json_int(j, i);
        chopin_json_key(j, "s");
        chopin_json_str(j, "some text \"quoted\"\n");
        chopin_json_obj_end(j);
        if (i % 5000 == 0)
            CHECK_INT(chopin_res_header_add(&c.res, "X-Progress", "yes"), 0);
    }
    chopin_json_arr_end(j);
    CHECK_INT(chopin_json_end(j), 0);
    json_t *v = parse_body(&c.res);
    CHECK(v && json_array_size(v) == 20000);
    CHECK(v && json_integer_value(json_object_get(json_array_get(v, 19999), "i")) == 19999);
    json_decref(v);
    ctx_fini(&c);

    struct chopin__arena small;
    chopin__arena_init(&small, 1024, 4096);
    chopin_res res;
    chopin__res_init(&res, &small);
    j = chopin_res_json(&res, 200);
    CHECK(j != NULL);
    chopin_json_arr_begin(j);
    for (int i = 0; i < 2000; i++)
        chopin_json_str(j, "0123456789");
    chopin_json_arr_end(j);
    CHECK_INT(chopin_json_end(j), CHOPIN_EFBIG);
    CHECK_INT(res.status, 500);
    chopin__res_discard(&res);
    chopin__arena_destroy(&small);
}

/* A document past the arena's limit (issue 12, point 10: a bare 500 on a 40 MB answer):
 * the handler learns why (CHOPIN_EFBIG), the document's room comes back, and the
 * handler's own answer replaces the 500, even one that needs the arena. */
static void test_limit_visible(void)
{
    struct chopin__arena a;
    chopin__arena_init(&a, 16384, 1 << 20);
    chopin_res res;
    chopin__res_init(&res, &a);
    chopin_json *j = chopin_res_json(&res, 200);
    chopin_json_arr_begin(j);
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 2000; i++) /* 2 MB of strings in a 1 MiB arena */
        chopin_json_strn(j, chunk, sizeof chunk);
    chopin_json_arr_end(j);
    CHECK_INT(chopin_json_end(j), CHOPIN_EFBIG);
    CHECK_INT(res.status, 500);
    CHECK(chopin__arena_left(&a) > (1u << 20) - 4096); /* the document gave its room back */
    char big[600 * 1024];
    memset(big, 'y', sizeof big);
    CHECK_INT(chopin_res_copy(&res, 507, "text/plain", big, sizeof big), 0);
    CHECK_INT(res.status, 507);
    CHECK_INT(res.body_len, sizeof big);
    chopin__res_discard(&res);

    /* Up to the limit, not to half of it: the last growth takes what fits. */
    chopin__arena_reset(&a);
    chopin__res_init(&res, &a);
    j = chopin_res_json(&res, 200);
    chopin_json_arr_begin(j);
    for (int i = 0; i < 700; i++)
        chopin_json_strn(j, chunk, sizeof chunk);
    chopin_json_arr_end(j);
    CHECK_INT(chopin_json_end(j), 0);
    CHECK(res.body_len > 700 * 1000);
    chopin__res_discard(&res);
    chopin__arena_destroy(&a);
}

/* Raw values go in as given, with commas and keys handled like any other value. */
static void test_raw(void)
{
    struct ctx c;
    ctx_init(&c);
    chopin_json *j = chopin_res_json(&c.res, 200);
    chopin_json_obj_begin(j);
    chopin_json_key(j, "cached");
    chopin_json_raw(j, "{\"a\":[1,2]}", 11);
    chopin_json_key(j, "list");
    chopin_json_arr_begin(j);
    chopin_json_raw(j, "1", 1);
    chopin_json_raw(j, "\"two\"xx", 5); /* only len bytes */
    chopin_json_arr_end(j);
    chopin_json_obj_end(j);
    CHECK_INT(chopin_json_end(j), 0);
    CHECK_MEM(c.res.body, c.res.body_len, "{\"cached\":{\"a\":[1,2]},\"list\":[1,\"two\"]}");
    ctx_fini(&c);

    ctx_init(&c);
    j = chopin_res_json(&c.res, 200);
    chopin_json_arr_begin(j);
    chopin_json_raw(j, "", 0);
    chopin_json_arr_end(j);
    CHECK_INT(chopin_json_end(j), -EINVAL);
    ctx_fini(&c);

    ctx_init(&c);
    j = chopin_res_json(&c.res, 200);
    chopin_json_obj_begin(j);
    chopin_json_raw(j, "1", 1); /* a value without its key */
    chopin_json_obj_end(j);
    CHECK_INT(chopin_json_end(j), -EINVAL);
    ctx_fini(&c);
}

/* No JSON body under a 1xx: it would never be the final answer. */
static void test_interim_status(void)
{
    struct ctx c;
    ctx_init(&c);
    CHECK(chopin_res_json(&c.res, 100) == NULL);
    CHECK(chopin_res_json(&c.res, 101) == NULL);
    CHECK(chopin_res_json(&c.res, 199) == NULL);
    CHECK_INT(c.res.status, 0);
    ctx_fini(&c);
}

/* Another body replaces the JSON one: the writer stops touching the response. */
static void test_replaced(void)
{
    struct ctx c;
    ctx_init(&c);
    chopin_json *j = chopin_res_json(&c.res, 200);
    chopin_json_obj_begin(j);
    CHECK_INT(chopin_res_text(&c.res, 418, "teapot"), 0);
    chopin_json_key(j, "late");
    chopin_json_int(j, 1);
    chopin_json_obj_end(j);
    CHECK_INT(chopin_json_end(j), -EINVAL);
    CHECK_INT(c.res.status, 418);
    CHECK_MEM(c.res.body, c.res.body_len, "teapot");
    j = chopin_res_json(&c.res, 200); /* a fresh one may start */
    CHECK(j != NULL);
    chopin_json_null(j);
    CHECK_INT(chopin_json_end(j), 0);
    CHECK_MEM(c.res.body, c.res.body_len, "null");
    ctx_fini(&c);
}

/* The jansson helper: a parsed body, or a 400 with the reason as a JSON error. */
static void test_body_helper(void)
{
    static const struct {
        const char *body;
        int ok;
        const char *reason;
    } cases[] = {
        {"{\"title\":\"x\",\"n\":[1,2]}", 1, NULL},
        {"42", 1, NULL},
        {"", 0, "invalid JSON: "},
        {"{\"a\":1,}", 0, "at line 1 column"},
        {"{\"a\":1,\n\"a\":2}", 0, "duplicate object key"},
        {"[\"\\u0000\"]", 0, "invalid JSON: "},
        {"{\"a\":\"\x01\"}", 0, "invalid JSON: "},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctx c;
        ctx_init(&c);
        chopin_req req;
        memset(&req, 0, sizeof(req));
        req.arena = &c.arena;
        req.body = cases[i].body;
        req.body_len = strlen(cases[i].body);
        json_t *v = chopin_req_json_body(&req, &c.res);
        CHECK_INT(v != NULL, cases[i].ok);
        json_decref(v);
        if (!cases[i].ok) {
            CHECK_INT(c.res.status, 400);
            CHECK(strcmp(c.res.content_type, "application/json") == 0);
            json_t *err = parse_body(&c.res);
            const char *text = json_string_value(json_object_get(err, "error"));
            CHECK(text && strstr(text, cases[i].reason) && strncmp(text, "invalid JSON: ", 14) == 0);
            if (!text || !strstr(text, cases[i].reason))
                fprintf(stderr, "  case %zu: %.*s\n", i, (int)c.res.body_len, c.res.body);
            json_decref(err);
        } else {
            CHECK_INT(c.res.status, 0);
        }
        ctx_fini(&c);
    }
}

int main(void)
{
    RUN(test_body_helper);
    RUN(test_document);
    RUN(test_scalars_at_top);
    RUN(test_escaping);
    RUN(test_escape_every_position);
    RUN(test_invalid_utf8);
    RUN(test_doubles);
    RUN(test_errors);
    RUN(test_depth);
    RUN(test_growth);
    RUN(test_replaced);
    RUN(test_json_replaces_json);
    RUN(test_limit_visible);
    RUN(test_raw);
    RUN(test_interim_status);
    TEST_END();
}
