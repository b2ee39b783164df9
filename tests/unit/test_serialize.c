/* The response serializer, byte for byte. */
#include <string.h>

#include "http/message.h"
#include "http/serialize.h"
#include "mem/arena.h"
#include "test.h"

static const char DATE[] = "Sun, 06 Nov 1994 08:49:37 GMT";
static const char SERVER[] = "Server: chopin\r\n";

static size_t head(const struct chopin_res *res, int framing, int connection, uint64_t len,
                   char *out) {
    struct chopin__head_ctx ctx = {.date = DATE, .server_line = SERVER,
                                   .server_line_len = sizeof SERVER - 1,
                                   .framing = (uint8_t)framing, .connection = (uint8_t)connection,
                                   .body_len = len};
    size_t bound = chopin__serialize_head_size(res, &ctx);
    size_t n = chopin__serialize_head(out, res, &ctx);
    CHECK(n <= bound);
    return n;
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
    chopin_res_status(&res, 204);
    CHECK_INT(chopin_res_header(&res, "X-A", "1"), 0);
    CHECK_INT(chopin_res_header(&res, "X-Bad", "a\r\nInjected: 1"), -22);
    char out[512];
    size_t n = head(&res, CHOPIN__FRAME_NONE, 1, 0, out);
    CHECK_MEM(out, n, "HTTP/1.1 204 No Content\r\nServer: chopin\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                      "Connection: close\r\nX-A: 1\r\n\r\n");
    chopin__res_discard(&res);

    chopin__res_init(&res, &a);
    chopin_res_status(&res, 599); /* unregistered: class phrase, never "000 Unknown" */
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

int main(void) {
    RUN(test_plain_200);
    RUN(test_headers_close_and_statuses);
    RUN(test_content_length_digits);
    TEST_END();
}
