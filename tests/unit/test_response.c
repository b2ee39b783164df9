/* SPDX-License-Identifier: MIT */
/* Response helpers: bodies, validation against header injection, redirects, cookies,
 * files by path. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chopin.h"
#include "api/exchange.h"
#include "api/open_beneath.h"
#include "http/message.h"
#include "mem/arena.h"
#include "test.h"

struct ctx {
    struct chopin__arena arena;
    chopin_res res;
};

static void ctx_init(struct ctx *c)
{
    chopin__arena_init(&c->arena, 512, 1 << 20);
    chopin__res_init(&c->res, &c->arena);
}

static void ctx_fini(struct ctx *c)
{
    chopin__res_discard(&c->res);
    chopin__arena_destroy(&c->arena);
}

static int headers_are(const chopin_res *res, const char *want)
{
    if (res->headers_len != strlen(want) || memcmp(res->headers, want, res->headers_len)) {
        fprintf(stderr, "  headers: \"%.*s\"\n", (int)res->headers_len,
                res->headers ? res->headers : "");
        return 0;
    }
    return 1;
}

static void test_init(void)
{
    struct ctx c;
    ctx_init(&c);
    CHECK_INT(c.res.status, 0);
    CHECK_INT(c.res.body_kind, CHOPIN__RES_UNSET);
    CHECK_INT(c.res.fd, -1);
    CHECK(c.res.arena == &c.arena);
    CHECK_INT(chopin_res_status(&c.res), 0);
    ctx_fini(&c);
}

static void test_bodies(void)
{
    struct ctx c;
    ctx_init(&c);
    char buf[] = "temporary";
    CHECK_INT(chopin_res_copy(&c.res, 200, "text/x-mine", buf, 9), 0);
    memset(buf, 0, sizeof(buf));
    CHECK_INT(c.res.body_kind, CHOPIN__RES_COPY);
    CHECK_MEM(c.res.body, c.res.body_len, "temporary");
    CHECK(strcmp(c.res.content_type, "text/x-mine") == 0);
    CHECK_INT(chopin_res_status(&c.res), 200);

    static const char hello[] = "Hello";
    CHECK_INT(chopin_res_static(&c.res, 201, "text/plain", hello, 5), 0);
    CHECK_INT(c.res.body_kind, CHOPIN__RES_STATIC);
    CHECK(c.res.body == hello);
    CHECK_INT(chopin_res_status(&c.res), 201);

    CHECK_INT(chopin_res_text(&c.res, 404, "no"), 0);
    CHECK(strcmp(c.res.content_type, "text/plain; charset=utf-8") == 0);
    CHECK_MEM(c.res.body, c.res.body_len, "no");
    CHECK_INT(chopin_res_html(&c.res, 200, "<p>"), 0);
    CHECK(strcmp(c.res.content_type, "text/html; charset=utf-8") == 0);
    CHECK_INT(chopin_res_json_str(&c.res, 200, "{}"), 0);
    CHECK(strcmp(c.res.content_type, "application/json") == 0);
    CHECK_MEM(c.res.body, c.res.body_len, "{}");
    CHECK_INT(chopin_res_text(&c.res, 200, ""), 0);
    CHECK_INT(c.res.body_len, 0);

    CHECK_INT(chopin_res_empty(&c.res, 204), 0);
    CHECK_INT(c.res.body_kind, CHOPIN__RES_EMPTY);
    CHECK(c.res.content_type == NULL);
    CHECK_INT(c.res.body_len, 0);

    /* invalid statuses and arguments change nothing */
    CHECK_INT(chopin_res_empty(&c.res, 99), -EINVAL);
    CHECK_INT(chopin_res_empty(&c.res, 600), -EINVAL);
    CHECK_INT(chopin_res_empty(&c.res, 100), -EINVAL);
    CHECK_INT(chopin_res_text(&c.res, 0, "x"), -EINVAL);
    CHECK_INT(chopin_res_text(&c.res, 200, NULL), -EINVAL);
    CHECK_INT(chopin_res_copy(&c.res, 200, "a\r\nb: c", "x", 1), -EINVAL);
    CHECK_INT(chopin_res_copy(&c.res, 200, NULL, NULL, 3), -EINVAL);
    CHECK_INT(chopin_res_status(&c.res), 204);
    ctx_fini(&c);
}

static long produce(void *state, char *buf, size_t cap);

/* No setter makes a 1xx the final answer (issue 12, point 1): a client waits for the
 * real answer after "100 Continue" and hangs. 101 only comes with an upgrade. */
static void test_interim_refused(void)
{
    static const int interim[] = {100, 101, 102, 103, 199};
    struct ctx c;
    ctx_init(&c);
    CHECK_INT(chopin_res_text(&c.res, 404, "x"), 0);
    for (size_t i = 0; i < sizeof interim / sizeof *interim; i++) {
        int st = interim[i];
        CHECK_INT(chopin_res_error(&c.res, st, NULL), -EINVAL);
        CHECK_INT(chopin_res_error(&c.res, st, "m"), -EINVAL);
        CHECK_INT(chopin_res_empty(&c.res, st), -EINVAL);
        CHECK_INT(chopin_res_text(&c.res, st, "t"), -EINVAL);
        CHECK_INT(chopin_res_html(&c.res, st, "t"), -EINVAL);
        CHECK_INT(chopin_res_json_str(&c.res, st, "1"), -EINVAL);
        CHECK_INT(chopin_res_copy(&c.res, st, NULL, "b", 1), -EINVAL);
        CHECK_INT(chopin_res_static(&c.res, st, NULL, "b", 1), -EINVAL);
        CHECK_INT(chopin_res_owned(&c.res, st, NULL, (void *)"b", 1, NULL, NULL), -EINVAL);
        CHECK_INT(chopin_res_fd(&c.res, st, NULL, 0, 0, 1, 0), -EINVAL);
        CHECK_INT(chopin_res_stream(&c.res, st, NULL, produce, NULL, NULL), -EINVAL);
        CHECK_INT(chopin_res_redirect(&c.res, st, "/"), -EINVAL);
    }
    CHECK_INT(chopin_res_status(&c.res), 404);
    CHECK_INT(chopin_res_error(&c.res, 200, NULL), 0);
    CHECK_INT(chopin_res_error(&c.res, 599, NULL), 0);
    ctx_fini(&c);
}

static int frees;
static void count_free(void *p, void *arg)
{
    frees++;
    CHECK(arg == &frees);
    free(p);
}

static int stream_dones;
static long produce(void *state, char *buf, size_t cap)
{
    return 0;
}
static void stream_done(void *state)
{
    stream_dones++;
}

/* A second body replaces the first and releases what the first owned. */
static void test_replace(void)
{
    struct ctx c;
    ctx_init(&c);
    frees = 0;
    CHECK_INT(chopin_res_owned(&c.res, 200, "text/plain", strdup("abc"), 3, count_free, &frees),
              0);
    CHECK_INT(c.res.body_kind, CHOPIN__RES_OWNED);
    CHECK_INT(frees, 0);
    CHECK_INT(chopin_res_text(&c.res, 200, "replaced"), 0);
    CHECK_INT(frees, 1);

    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK_INT(chopin_res_fd(&c.res, 200, "application/octet-stream", fd, 5, 10, 1), 0);
    CHECK_INT(c.res.body_kind, CHOPIN__RES_FILE);
    CHECK_INT(c.res.fd, fd);
    CHECK_INT(c.res.offset, 5);
    CHECK_INT(c.res.body_len, 10);
    CHECK_INT(c.res.close_fd, 1);
    CHECK_INT(chopin_res_empty(&c.res, 204), 0);
    CHECK_INT(fcntl(fd, F_GETFD), -1); /* closed by the replacement */
    CHECK_INT(chopin_res_fd(&c.res, 200, NULL, -1, 0, 0, 0), -EINVAL);

    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK_INT(chopin_res_fd(&c.res, 200, NULL, fd, 0, 0, 0), 0);
    CHECK_INT(chopin_res_empty(&c.res, 204), 0);
    CHECK(fcntl(fd, F_GETFD) >= 0); /* not ours to close */
    close(fd);

    stream_dones = 0;
    CHECK_INT(chopin_res_stream(&c.res, 200, "text/event-stream", produce, stream_done, &c), 0);
    CHECK_INT(c.res.body_kind, CHOPIN__RES_STREAM);
    CHECK(c.res.produce == produce);
    CHECK(c.res.stream_state == &c);
    CHECK_INT(chopin_res_stream(&c.res, 200, NULL, NULL, NULL, NULL), -EINVAL);
    CHECK_INT(chopin_res_text(&c.res, 200, "x"), 0);
    CHECK_INT(stream_dones, 1);

    /* discard releases an owned body that will never be sent */
    CHECK_INT(chopin_res_owned(&c.res, 200, NULL, strdup("abc"), 3, count_free, &frees), 0);
    chopin__res_discard(&c.res);
    CHECK_INT(frees, 2);
    CHECK_INT(c.res.body_kind, CHOPIN__RES_UNSET);
    chopin__res_discard(&c.res);
    CHECK_INT(frees, 2);
    ctx_fini(&c);
}

static void test_headers(void)
{
    struct ctx c;
    ctx_init(&c);
    CHECK_INT(chopin_res_header_add(&c.res, "X-One", "1"), 0);
    CHECK_INT(chopin_res_header_add(&c.res, "Cache-Control", "no-cache, \tprivate"), 0);
    CHECK_INT(chopin_res_header_add(&c.res, "X-Empty", ""), 0);
    CHECK_INT(chopin_res_header_add(&c.res, "X-Utf8", "caf\xc3\xa9"), 0);
    CHECK(headers_are(&c.res, "X-One: 1\r\nCache-Control: no-cache, \tprivate\r\nX-Empty: \r\n"
                              "X-Utf8: caf\xc3\xa9\r\n"));
    /* injection attempts */
    static const char *const bad_values[] = {"a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "a\x01",
                                             "a\x7f", NULL};
    for (int i = 0; bad_values[i]; i++)
        CHECK_INT(chopin_res_header_add(&c.res, "X-Bad", bad_values[i]), -EINVAL);
    CHECK_INT(chopin_res_header_add(&c.res, "X-Bad", NULL), -EINVAL);
    static const char *const bad_names[] = {"", "X Bad", "X-Bad:", "X\r\nY", "X(", "Ä", NULL};
    for (int i = 0; bad_names[i]; i++)
        CHECK_INT(chopin_res_header_add(&c.res, bad_names[i], "v"), -EINVAL);
    CHECK_INT(chopin_res_header_add(&c.res, NULL, "v"), -EINVAL);
    /* framing belongs to the server */
    CHECK_INT(chopin_res_header_add(&c.res, "Content-Length", "5"), -EINVAL);
    CHECK_INT(chopin_res_header_add(&c.res, "transfer-encoding", "chunked"), -EINVAL);
    CHECK_INT(chopin_res_header_add(&c.res, "Connection", "keep-alive"), -EINVAL);
    CHECK_INT(c.res.close, 0);
    CHECK_INT(chopin_res_header_add(&c.res, "Connection", "Close"), 0);
    CHECK_INT(c.res.close, 1);
    CHECK_INT(chopin_res_header_add(&c.res, "content-type", "image/png"), 0);
    CHECK(strcmp(c.res.content_type, "image/png") == 0);
    CHECK(headers_are(&c.res, "X-One: 1\r\nCache-Control: no-cache, \tprivate\r\nX-Empty: \r\n"
                              "X-Utf8: caf\xc3\xa9\r\n"));
    /* the header space is bounded */
    char big[1024];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    int err = 0, i;
    for (i = 0; i < 100 && !err; i++)
        err = chopin_res_header_add(&c.res, "X-Big", big);
    CHECK_INT(err, -ENOSPC);
    CHECK(i > 20);
    ctx_fini(&c);
}

/* Middleware edits what a handler produced (issue 12, point 2): set replaces every line of
 * a name, remove drops them, the getter reads the first; Content-Type and Connection go
 * through the same calls. */
static void test_header_edit(void)
{
    struct ctx c;
    ctx_init(&c);
    CHECK(chopin_res_header(&c.res, "X-A").ptr == NULL);
    CHECK_INT(chopin_res_header_add(&c.res, "X-A", "1"), 0);
    CHECK_INT(chopin_res_header_add(&c.res, "Vary", "Accept"), 0);
    CHECK_INT(chopin_res_header_add(&c.res, "x-a", "2"), 0);
    chopin_str v = chopin_res_header(&c.res, "X-a");
    CHECK_MEM(v.ptr, v.len, "1");
    v = chopin_res_header(&c.res, "vary");
    CHECK_MEM(v.ptr, v.len, "Accept");
    CHECK(chopin_res_header(&c.res, "X").ptr == NULL); /* a prefix is not a name */
    CHECK(chopin_res_header(&c.res, "X-AB").ptr == NULL);

    CHECK_INT(chopin_res_header_set(&c.res, "X-A", "3"), 0);
    CHECK(headers_are(&c.res, "Vary: Accept\r\nX-A: 3\r\n"));
    CHECK_INT(chopin_res_header_set(&c.res, "Cache-Control", "no-store"), 0);
    CHECK(headers_are(&c.res, "Vary: Accept\r\nX-A: 3\r\nCache-Control: no-store\r\n"));
    CHECK_INT(chopin_res_header_set(&c.res, "X-A", "a\r\nb"), -EINVAL);
    CHECK(headers_are(&c.res, "Vary: Accept\r\nX-A: 3\r\nCache-Control: no-store\r\n"));

    CHECK_INT(chopin_res_header_remove(&c.res, "x-a"), 1);
    CHECK_INT(chopin_res_header_remove(&c.res, "x-a"), 0);
    CHECK(headers_are(&c.res, "Vary: Accept\r\nCache-Control: no-store\r\n"));
    CHECK_INT(chopin_res_header_remove(&c.res, "Content-Length"), -EINVAL);
    CHECK_INT(chopin_res_header_remove(&c.res, "bad name"), -EINVAL);
    CHECK_INT(chopin_res_header_set(&c.res, "Transfer-Encoding", "chunked"), -EINVAL);

    /* Content-Type is the response's content type, whichever call touches it */
    CHECK_INT(chopin_res_text(&c.res, 200, "hi"), 0);
    v = chopin_res_header(&c.res, "content-type");
    CHECK_MEM(v.ptr, v.len, "text/plain; charset=utf-8");
    CHECK_INT(chopin_res_header_set(&c.res, "Content-Type", "text/markdown"), 0);
    v = chopin_res_header(&c.res, "Content-Type");
    CHECK_MEM(v.ptr, v.len, "text/markdown");
    CHECK_INT(chopin_res_header_remove(&c.res, "Content-Type"), 1);
    CHECK(chopin_res_header(&c.res, "Content-Type").ptr == NULL);
    CHECK(c.res.content_type == NULL);
    CHECK_INT(chopin_res_header_remove(&c.res, "Content-Type"), 0);

    CHECK_INT(chopin_res_header_set(&c.res, "Connection", "close"), 0);
    v = chopin_res_header(&c.res, "connection");
    CHECK_MEM(v.ptr, v.len, "close");
    CHECK_INT(chopin_res_header_remove(&c.res, "Connection"), 1);
    CHECK_INT(c.res.close, 0);
    CHECK(chopin_res_header(&c.res, "Connection").ptr == NULL);

    /* a set that cannot fit leaves the old lines */
    char big[1024];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    int err = 0;
    for (int i = 0; i < 100 && !err; i++)
        err = chopin_res_header_add(&c.res, "X-Big", big);
    CHECK_INT(err, -ENOSPC);
    char bigger[8192];
    memset(bigger, 'w', sizeof bigger - 1);
    bigger[sizeof bigger - 1] = '\0';
    CHECK_INT(chopin_res_header_set(&c.res, "Vary", bigger), -ENOSPC);
    v = chopin_res_header(&c.res, "Vary");
    CHECK_MEM(v.ptr, v.len, "Accept");
    ctx_fini(&c);
}

/* Content types built in a temporary buffer survive it (issue 12, point 4): they went out
 * as garbage once the handler's stack frame was reused. */
static void test_type_copied(void)
{
    struct ctx c;
    ctx_init(&c);
    static const char *const types[] = {"text/x-custom; charset=latin1", "text/plain",
                                        "application/json", "text/plain; charset=utf-8",
                                        "text/plain; charset=utf-9"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", types[i]);
        CHECK_INT(chopin_res_static(&c.res, 200, buf, "x", 1), 0);
        memset(buf, '@', sizeof buf);
        CHECK_MEM(c.res.content_type, c.res.content_type_len, types[i]);
        CHECK(c.res.content_type[c.res.content_type_len] == '\0');

        snprintf(buf, sizeof buf, "%s", types[i]);
        CHECK_INT(chopin_res_copy(&c.res, 200, buf, "x", 1), 0);
        memset(buf, '@', sizeof buf);
        CHECK_MEM(c.res.content_type, c.res.content_type_len, types[i]);

        snprintf(buf, sizeof buf, "%s", types[i]);
        CHECK_INT(chopin_res_stream(&c.res, 200, buf, produce, NULL, NULL), 0);
        memset(buf, '@', sizeof buf);
        CHECK_MEM(c.res.content_type, c.res.content_type_len, types[i]);
    }
    ctx_fini(&c);
}

/* A Content-Type set as a header survives a setter given NULL (issue 12, point 5); a
 * setter's own type replaces it; a status-only answer drops it. */
static void test_type_kept(void)
{
    struct ctx c;
    ctx_init(&c);
    CHECK_INT(chopin_res_header_set(&c.res, "Content-Type", "image/svg+xml"), 0);
    CHECK_INT(chopin_res_copy(&c.res, 200, NULL, "<svg/>", 6), 0);
    CHECK_MEM(c.res.content_type, c.res.content_type_len, "image/svg+xml");
    CHECK_INT(chopin_res_static(&c.res, 200, NULL, "<svg/>", 6), 0);
    CHECK_MEM(c.res.content_type, c.res.content_type_len, "image/svg+xml");
    CHECK_INT(chopin_res_header_add(&c.res, "content-type", "image/png"), 0);
    CHECK_INT(chopin_res_owned(&c.res, 200, NULL, strdup("png"), 3, count_free, &frees), 0);
    CHECK_MEM(c.res.content_type, c.res.content_type_len, "image/png");
    CHECK_INT(chopin_res_copy(&c.res, 200, "text/csv", "a,b", 3), 0);
    CHECK_MEM(c.res.content_type, c.res.content_type_len, "text/csv");
    CHECK_INT(chopin_res_empty(&c.res, 204), 0);
    CHECK(c.res.content_type == NULL);
    ctx_fini(&c);
}

static void test_redirect(void)
{
    struct ctx c;
    ctx_init(&c);
    static const int ok[] = {301, 302, 303, 307, 308};
    for (int i = 0; i < 5; i++) {
        CHECK_INT(chopin_res_redirect(&c.res, ok[i], "/next?a=1"), 0);
        CHECK_INT(c.res.status, ok[i]);
        CHECK_INT(c.res.body_kind, CHOPIN__RES_EMPTY);
    }
    CHECK(headers_are(&c.res, "Location: /next?a=1\r\n")); /* replaced, not repeated */
    CHECK_INT(chopin_res_header_add(&c.res, "X-After", "1"), 0);
    CHECK_INT(chopin_res_redirect(&c.res, 302, "https://example.com/%20x"), 0);
    CHECK(headers_are(&c.res, "X-After: 1\r\nLocation: https://example.com/%20x\r\n"));
    static const int bad_status[] = {200, 300, 304, 305, 306, 309, 404};
    for (int i = 0; i < 7; i++)
        CHECK_INT(chopin_res_redirect(&c.res, bad_status[i], "/x"), -EINVAL);
    static const char *const bad_loc[] = {"", "/a b", "/a\r\nSet-Cookie: x=1", "/a\tb",
                                          "/\x7f", NULL};
    for (int i = 0; bad_loc[i]; i++)
        CHECK_INT(chopin_res_redirect(&c.res, 302, bad_loc[i]), -EINVAL);
    CHECK_INT(chopin_res_redirect(&c.res, 302, NULL), -EINVAL);
    CHECK_INT(c.res.status, 302);
    ctx_fini(&c);
}

static void test_error(void)
{
    struct ctx c;
    ctx_init(&c);
    CHECK_INT(chopin_res_error(&c.res, 404, NULL), 0);
    CHECK_INT(c.res.status, 404);
    CHECK_MEM(c.res.body, c.res.body_len, "Not Found");
    CHECK(strcmp(c.res.content_type, "text/plain; charset=utf-8") == 0);
    CHECK_INT(chopin_res_error(&c.res, 503, "try later"), 0);
    CHECK_MEM(c.res.body, c.res.body_len, "try later");
    CHECK_INT(chopin_res_error(&c.res, 499, NULL), 0);
    CHECK(c.res.body_len > 0);
    CHECK_INT(chopin_res_error(&c.res, 42, NULL), -EINVAL);
    ctx_fini(&c);
}

static void test_cookie(void)
{
    struct ctx c;
    ctx_init(&c);
    chopin_cookie k = {.name = "sid", .value = "abc123"}; /* zeroed: a session cookie */
    CHECK_INT(chopin_res_cookie_add(&c.res, &k), 0);
    chopin_cookie full = {.name = "pref",
                          .value = "\"dark\"",
                          .path = "/app",
                          .domain = "example.com",
                          .same_site = "lax",
                          .max_age = 3600,
                          .secure = 1,
                          .http_only = 1};
    CHECK_INT(chopin_res_cookie_add(&c.res, &full), 0);
    chopin_cookie gone = {.name = "old", .value = "", .expire = 1, .same_site = "None",
                          .secure = 1};
    CHECK_INT(chopin_res_cookie_add(&c.res, &gone), 0);
    CHECK(headers_are(&c.res, "Set-Cookie: sid=abc123\r\n"
                              "Set-Cookie: pref=\"dark\"; Path=/app; Domain=example.com; "
                              "Max-Age=3600; Secure; HttpOnly; SameSite=Lax\r\n"
                              "Set-Cookie: old=; Max-Age=0; Secure; SameSite=None\r\n"));
    static const chopin_cookie bad[] = {
        {.name = "a b", .value = "x"},
        {.name = "", .value = "x"},
        {.name = "a=", .value = "x"},
        {.name = "a", .value = "x;y"},
        {.name = "a", .value = "x y"},
        {.name = "a", .value = "x,y"},
        {.name = "a", .value = "x\\y"},
        {.name = "a", .value = "\"x"},
        {.name = "a", .value = "x\r\nSet-Cookie: evil=1"},
        {.name = "a", .value = NULL},
        {.name = "a", .value = "x", .path = "/;evil"},
        {.name = "a", .value = "x", .path = "/\r\n"},
        {.name = "a", .value = "x", .domain = "ex ample.com"},
        {.name = "a", .value = "x", .domain = ""},
        {.name = "a", .value = "x", .same_site = "sometimes"},
        {.name = "a", .value = "x", .same_site = "None"}, /* needs Secure */
        {.name = NULL, .value = "x"},
        {.name = "a", .value = "x", .max_age = -1},
        {.name = "a", .value = "x", .max_age = 60, .expire = 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int err = chopin_res_cookie_add(&c.res, &bad[i]);
        if (err != -EINVAL)
            fprintf(stderr, "  bad cookie %zu accepted\n", i);
        CHECK_INT(err, -EINVAL);
    }
    CHECK_INT(chopin_res_cookie_add(&c.res, NULL), -EINVAL);
    ctx_fini(&c);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_file(void)
{
    char dir[] = "/tmp/chopin-res-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    struct ctx c;
    ctx_init(&c);

    snprintf(path, sizeof(path), "%s/index.HTML", dir);
    write_file(path, "<h1>hi</h1>");
    CHECK_INT(chopin_res_file(&c.res, path), 0);
    CHECK_INT(c.res.status, 200);
    CHECK_INT(c.res.body_kind, CHOPIN__RES_FILE);
    CHECK_INT(c.res.body_len, 11);
    CHECK_INT(c.res.offset, 0);
    CHECK_INT(c.res.close_fd, 1);
    CHECK(strcmp(c.res.content_type, "text/html; charset=utf-8") == 0);
    int fd = c.res.fd;
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    char head[4] = {0};
    CHECK_INT(pread(fd, head, 3, 0), 3);
    CHECK_MEM(head, 3, "<h1");

    static const struct {
        const char *name, *type;
    } types[] = {
        {"a.css", "text/css; charset=utf-8"},
        {"a.min.js", "text/javascript; charset=utf-8"},
        {"a.json", "application/json"},
        {"a.png", "image/png"},
        {"a.svg", "image/svg+xml"},
        {"a.woff2", "font/woff2"},
        {"a.unknownext", "application/octet-stream"},
        {"noext", "application/octet-stream"},
        {".hidden", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, types[i].name);
        write_file(path, "x");
        CHECK_INT(chopin_res_file(&c.res, path), 0);
        CHECK(strcmp(c.res.content_type, types[i].type) == 0);
        unlink(path);
    }
    CHECK_INT(fcntl(fd, F_GETFD), -1); /* the first file was closed when replaced */

    snprintf(path, sizeof(path), "%s/missing.txt", dir);
    CHECK_INT(chopin_res_file(&c.res, path), -ENOENT);
    CHECK_INT(c.res.status, 404);
    CHECK_INT(c.res.body_kind, CHOPIN__RES_STATIC);
    snprintf(path, sizeof(path), "%s/index.HTML/x", dir);
    CHECK_INT(chopin_res_file(&c.res, path), -ENOTDIR);
    CHECK_INT(c.res.status, 404);

    CHECK_INT(chopin_res_file(&c.res, dir), -EACCES); /* a directory */
    CHECK_INT(c.res.status, 403);
    snprintf(path, sizeof(path), "%s/fifo", dir);
    CHECK_INT(mkfifo(path, 0600), 0);
    CHECK_INT(chopin_res_file(&c.res, path), -EACCES); /* must not block either */
    CHECK_INT(c.res.status, 403);
    unlink(path);
    CHECK_INT(chopin_res_file(&c.res, "/dev/null"), -EACCES);
    CHECK_INT(chopin_res_file(&c.res, NULL), -EINVAL);

    if (geteuid() != 0) { /* root reads anything: only an ordinary user sees EACCES */
        snprintf(path, sizeof(path), "%s/secret", dir);
        write_file(path, "x");
        chmod(path, 0);
        CHECK_INT(chopin_res_file(&c.res, path), -EACCES);
        CHECK_INT(c.res.status, 403);
        unlink(path);
    }
    ctx_fini(&c);
    snprintf(path, sizeof(path), "%s/index.HTML", dir);
    unlink(path);
    rmdir(dir);
}

/* A tree for the beneath tests: root/{a.txt, sub/b.css, link -> /etc/passwd,
 * inner -> a.txt, subl -> sub}. */
static void beneath_tree(char *root, size_t cap, const char *dir)
{
    char p[512];
    snprintf(root, cap, "%s/root", dir);
    CHECK_INT(mkdir(root, 0700), 0);
    snprintf(p, sizeof p, "%s/a.txt", root);
    write_file(p, "A");
    snprintf(p, sizeof p, "%s/sub", root);
    CHECK_INT(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/sub/b.css", root);
    write_file(p, "B");
    snprintf(p, sizeof p, "%s/link", root);
    CHECK_INT(symlink("/etc/passwd", p), 0);
    snprintf(p, sizeof p, "%s/inner", root);
    CHECK_INT(symlink("a.txt", p), 0);
    snprintf(p, sizeof p, "%s/subl", root);
    CHECK_INT(symlink("sub", p), 0);
}

static void beneath_tree_rm(const char *root, const char *dir)
{
    static const char *const names[] = {"a.txt", "sub/b.css", "sub", "link", "inner", "subl"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        if (unlink(p) < 0)
            rmdir(p);
    }
    rmdir(root);
    rmdir(dir);
}

/* Both ways of opening beneath a directory (openat2, and the component walk used where
 * it is missing) agree: inside is served, every way out is refused (issue 12, point 7). */
static void test_open_beneath(void)
{
    char dir[] = "/tmp/chopin-beneath-XXXXXX", root[256], buf[512];
    CHECK(mkdtemp(dir) != NULL);
    beneath_tree(root, sizeof root, dir);
    int dfd = chopin_dir_open(root);
    CHECK(dfd >= 0);
    static const struct {
        const char *path;
        int ok;
    } cases[] = {
        {"a.txt", 1}, {"sub/b.css", 1}, {"./sub//b.css", 1}, {"link", 0},
        {"inner", 0}, {"subl/b.css", 0}, {"missing", 0},
        {"a.txt/x", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int fd1 = chopin__open_beneath(dfd, cases[i].path, 0);
        int fd2 = chopin__open_beneath_walk(dfd, cases[i].path);
        if ((fd1 >= 0) != cases[i].ok || (fd2 >= 0) != cases[i].ok)
            fprintf(stderr, "  %s: openat2 %d, walk %d\n", cases[i].path, fd1, fd2);
        CHECK_INT(fd1 >= 0, cases[i].ok);
        CHECK_INT(fd2 >= 0, cases[i].ok);
        if (fd1 >= 0)
            close(fd1);
        if (fd2 >= 0)
            close(fd2);
    }
    CHECK_INT(chopin__open_beneath_walk(dfd, "link"), -ELOOP);
    CHECK_INT(chopin__open_beneath_walk(dfd, "../root/a.txt"), -EXDEV);

    static const struct {
        const char *path;
        size_t len;
        int err;
    } shapes[] = {
        {"../etc/passwd", 13, -EXDEV}, {"a/../../x", 9, -EXDEV},   {"..", 2, -EXDEV},
        {"/etc/passwd", 11, -EXDEV},   {"a\\..\\x", 7, -EXDEV}, {"a.txt\0.png", 10, -EXDEV},
        {"", 0, -ENOENT},              {"..a", 3, 0},              {"a..", 3, 0},
        {"sub/..x/y", 9, 0},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        int err = chopin__beneath_path(buf, sizeof buf, shapes[i].path, shapes[i].len);
        if (err != shapes[i].err)
            fprintf(stderr, "  shape %zu: %d\n", i, err);
        CHECK_INT(err, shapes[i].err);
    }
    CHECK_INT(chopin__beneath_path(buf, 4, "abcd", 4), -ENAMETOOLONG);

    /* chopin_res_file_at: served, or a 404 that says nothing about what exists */
    struct ctx c;
    ctx_init(&c);
    CHECK_INT(chopin_res_file_at(&c.res, dfd, "sub/b.css", 9), 0);
    CHECK_INT(c.res.status, 200);
    CHECK(strcmp(c.res.content_type, "text/css; charset=utf-8") == 0);
    CHECK_INT(c.res.body_len, 1);
    CHECK_INT(chopin_res_file_at(&c.res, dfd, "../root/a.txt", 13), CHOPIN_EXDEV);
    CHECK_INT(c.res.status, 404);
    CHECK_INT(chopin_res_file_at(&c.res, dfd, "link", 4), CHOPIN_ELOOP);
    CHECK_INT(c.res.status, 404);
    CHECK_INT(chopin_res_file_at(&c.res, dfd, "sub", 3), -EACCES); /* a directory */
    CHECK_INT(c.res.status, 403);
    CHECK_INT(chopin_res_file_at(&c.res, dfd, "a.txtjunk", 5), 0); /* len bytes only */
    CHECK_INT(c.res.status, 200);
    CHECK_INT(chopin_res_file_at(&c.res, -1, "a.txt", 5), -EINVAL);
    ctx_fini(&c);

    close(dfd);
    snprintf(buf, sizeof buf, "%s/a.txt", root);
    CHECK_INT(chopin_dir_open(buf), -ENOTDIR);
    CHECK_INT(chopin_dir_open(NULL), -EINVAL);
    beneath_tree_rm(root, dir);
}

/* Response helpers keep working without arena room for what they need not copy. */
static void test_arena_exhausted(void)
{
    struct chopin__arena a;
    chopin__arena_init(&a, 64, 128);
    chopin_res res;
    chopin__res_init(&res, &a);
    char big[200] = {0};
    CHECK_INT(chopin_res_copy(&res, 200, NULL, big, sizeof(big)), CHOPIN_EFBIG);
    CHECK_INT(res.body_kind, CHOPIN__RES_UNSET); /* nothing changed */
    CHECK_INT(chopin_res_text(&res, 507, "too big"), 0); /* a smaller answer still fits */
    CHECK_MEM(res.body, res.body_len, "too big");
    CHECK_INT(chopin_res_error(&res, 500, NULL), 0); /* static body */
    CHECK_MEM(res.body, res.body_len, "Internal Server Error");
    chopin__res_discard(&res);
    chopin__arena_destroy(&a);
}

int main(void)
{
    RUN(test_init);
    RUN(test_bodies);
    RUN(test_replace);
    RUN(test_interim_refused);
    RUN(test_headers);
    RUN(test_header_edit);
    RUN(test_type_copied);
    RUN(test_type_kept);
    RUN(test_redirect);
    RUN(test_error);
    RUN(test_cookie);
    RUN(test_file);
    RUN(test_open_beneath);
    RUN(test_arena_exhausted);
    TEST_END();
}
