/* SPDX-License-Identifier: MIT */
/* The response serializer, byte for byte. */
#include <string.h>

#include "api/exchange.h"
#include "http/message.h"
#include "http/serialize.h"
#include "mem/arena.h"
#include "test.h"

static const char DATE[] = "Sun, 06 Nov 1994 08:49:37 GMT";
static const char SERVER[] = "Server: chopin\r\n";

/* Serializes `res` (through `hc` when not NULL); *hit tells whether the cache answered. */
static size_t head_via(struct chopin__head_cache *hc, const struct chopin_res *res, int framing,
                       int connection, uint64_t len, char *out, int *hit) {
    struct chopin__head_ctx ctx = {.date = DATE, .server_line = SERVER,
                                   .server_line_len = sizeof SERVER - 1, .cache = hc,
                                   .framing = (uint8_t)framing, .connection = (uint8_t)connection,
                                   .body_len = len};
    size_t bound = chopin__serialize_head_size(res, &ctx);
    *hit = ctx.cached;
    size_t n = chopin__serialize_head(out, res, &ctx);
    CHECK(n <= bound);
    return n;
}

static size_t head(const struct chopin_res *res, int framing, int connection, uint64_t len,
                   char *out) {
    int hit;
    return head_via(NULL, res, framing, connection, len, out, &hit);
}

static void test_plain_200(void) {
    struct chopin__arena a;
    chopin__arena_init(&a, 4096, 1 << 20);
    struct chopin_res res;
    chopin__res_init(&res, &a);
    chopin_res_static(&res, 200, "text/plain", "Hello, World!", 13);
    char out[512];
    size_t n = head(&res, CHOPIN__FRAME_LENGTH, 0, 13, out);
    CHECK_MEM(out, n, "HTTP/1.1 200 OK\r\nServer: chopin\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                      "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n");
    chopin__arena_destroy(&a);
}

static void test_headers_close_and_statuses(void) {
    struct chopin__arena a;
    chopin__arena_init(&a, 4096, 1 << 20);
    struct chopin_res res;
    chopin__res_init(&res, &a);
    chopin_res_empty(&res, 204);
    CHECK_INT(chopin_res_header_add(&res, "X-A", "1"), 0);
    CHECK_INT(chopin_res_header_add(&res, "X-Bad", "a\r\nInjected: 1"), -22);
    char out[512];
    size_t n = head(&res, CHOPIN__FRAME_NONE, 1, 0, out);
    CHECK_MEM(out, n, "HTTP/1.1 204 No Content\r\nServer: chopin\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                      "Connection: close\r\nX-A: 1\r\n\r\n");
    chopin__res_discard(&res);

    chopin__res_init(&res, &a);
    chopin_res_empty(&res, 599); /* unregistered: class phrase, never "000 Unknown" */
    n = head(&res, CHOPIN__FRAME_CHUNKED, 2, 0, out);
    CHECK(strncmp(out, "HTTP/1.1 599 Server Error\r\n", 27) == 0);
    CHECK(memmem(out, n, "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n", 54) != NULL);
    chopin__arena_destroy(&a);
}

static void test_content_length_digits(void) {
    static const struct {
        uint64_t v;
        const char *s;
    } cases[] = {{0, "0"}, {9, "9"}, {10, "10"}, {99, "99"}, {100, "100"}, {4294967296ull, "4294967296"},
                 {18446744073709551615ull, "18446744073709551615"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        size_t n = chopin__u64_to_dec(buf, cases[i].v);
        CHECK_MEM(buf, n, cases[i].s);
    }
}

/* The cached last head is reused only for the same content type (by bytes, not pointer),
 * length and Connection header, and forgotten when the lead gets a new Date. */
static size_t cached_head(struct chopin__head_cache *hc, const struct chopin_res *res,
                          int connection, uint64_t len, char *out, int *hit) {
    return head_via(hc, res, CHOPIN__FRAME_LENGTH, connection, len, out, hit);
}

static void test_head_cache(void) {
    struct chopin__arena a;
    chopin__arena_init(&a, 4096, 1 << 20);
    struct chopin__head_cache hc;
    memset(&hc, 0, sizeof hc);
    chopin__head_cache_set_lead(&hc, SERVER, sizeof SERVER - 1, DATE);
    struct chopin_res res;
    chopin__res_init(&res, &a);
    char type[] = "text/plain";
    chopin_res_static(&res, 200, type, "Hello, World!", 13);
    char out[512];
    int hit;
    static const char plain13[] =
        "HTTP/1.1 200 OK\r\nServer: chopin\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n";
    size_t n = cached_head(&hc, &res, 0, 13, out, &hit);
    CHECK(!hit);
    CHECK_MEM(out, n, plain13);
    n = cached_head(&hc, &res, 0, 13, out, &hit);
    CHECK(hit);
    CHECK_MEM(out, n, plain13);

    /* same pointer, same length, other bytes: a miss */
    memcpy(type, "text/xmlxx", 10);
    chopin_res_static(&res, 200, type, "Hello, World!", 13);
    n = cached_head(&hc, &res, 0, 13, out, &hit);
    CHECK(!hit);
    CHECK(memmem(out, n, "Content-Type: text/xmlxx\r\n", 26) != NULL);
    /* another length or Connection header: a miss */
    n = cached_head(&hc, &res, 0, 14, out, &hit);
    CHECK(!hit);
    CHECK(memmem(out, n, "Content-Length: 14\r\n", 20) != NULL);
    n = cached_head(&hc, &res, 1, 14, out, &hit);
    CHECK(!hit);
    CHECK(memmem(out, n, "Connection: close\r\n", 19) != NULL);
    /* extra headers or another status are never cached */
    CHECK_INT(chopin_res_header_add(&res, "X-A", "1"), 0);
    n = cached_head(&hc, &res, 1, 14, out, &hit);
    CHECK(!hit);
    CHECK(memmem(out, n, "X-A: 1\r\n", 8) != NULL);
    n = cached_head(&hc, &res, 1, 14, out, &hit);
    CHECK(!hit);
    chopin__res_init(&res, &a);
    chopin_res_static(&res, 404, "text/plain", "no", 2);
    n = cached_head(&hc, &res, 0, 2, out, &hit);
    n = cached_head(&hc, &res, 0, 2, out, &hit);
    CHECK(!hit);
    CHECK(strncmp(out, "HTTP/1.1 404 Not Found\r\n", 24) == 0);

    /* a new Date: the lead is rebuilt and the last head forgotten */
    chopin__res_init(&res, &a);
    chopin_res_static(&res, 200, "text/plain", "Hello, World!", 13);
    cached_head(&hc, &res, 0, 13, out, &hit);
    cached_head(&hc, &res, 0, 13, out, &hit);
    CHECK(hit);
    chopin__head_cache_set_lead(&hc, SERVER, sizeof SERVER - 1, "Mon, 07 Nov 1994 08:49:38 GMT");
    n = cached_head(&hc, &res, 0, 13, out, &hit);
    CHECK(!hit);
    CHECK(memmem(out, n, "Date: Mon, 07 Nov 1994 08:49:38 GMT\r\n", 37) != NULL);
    chopin__arena_destroy(&a);
}

int main(void) {
    RUN(test_plain_200);
    RUN(test_headers_close_and_statuses);
    RUN(test_content_length_digits);
    RUN(test_head_cache);
    TEST_END();
}
