/* SPDX-License-Identifier: MIT */
/* Request helpers over a request built by hand (the parser's output filled directly). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chopin.h"
#include "conn.h"
#include "engine.h"
#include "api/exchange.h"
#include "http/message.h"
#include "mem/arena.h"
#include "router/router.h"
#include "test.h"

/* The connection and engine modules provide these (declared in conn.h and engine.h);
 * weak stand-ins here so the test needs neither (a weak definition keeps the linker from
 * pulling the real ones out of the library). The fake connection and engine are plain
 * ints. */

__attribute__((weak)) int chopin__conn_fd(const struct chopin__conn *c)
{
    return *(const int *)c;
}

__attribute__((weak)) const struct chopin__peer *chopin__conn_peer(const struct chopin__conn *c)
{
    return NULL; /* no PROXY header */
}

static int fake_worker_data = 1234;

__attribute__((weak)) void *chopin__engine_worker_data(const struct chopin__engine *e)
{
    return &fake_worker_data;
}

__attribute__((weak)) int chopin__engine_worker_id(const struct chopin__engine *e)
{
    return *(const int *)e;
}

struct ctx {
    struct chopin__arena arena;
    struct chopin__header headers[8];
    chopin_req req;
    char target[256];
};

static void make_request(struct ctx *c, const char *method, int method_id, const char *target)
{
    memset(c, 0, sizeof(*c));
    chopin__arena_init(&c->arena, 256, 1 << 16);
    snprintf(c->target, sizeof(c->target), "%s", target);
    struct chopin__head *h = &c->req.head;
    h->method = method;
    h->method_len = (uint16_t)strlen(method);
    h->method_id = (uint8_t)method_id;
    h->target = c->target;
    h->target_len = (uint32_t)strlen(c->target);
    char *q = strchr(c->target, '?');
    h->path = c->target;
    h->path_len = (uint32_t)(q ? q - c->target : (long)strlen(c->target));
    if (q) {
        h->query = q + 1;
        h->query_len = (uint32_t)strlen(q + 1);
    }
    h->minor = 1;
    h->keep_alive = 1;
    h->headers = c->headers;
    c->req.arena = &c->arena;
}

static void add_header(struct ctx *c, const char *name, const char *value)
{
    struct chopin__header *h = &c->headers[c->req.head.nheaders++];
    h->name = name;
    h->name_len = (uint32_t)strlen(name);
    h->value = value;
    h->value_len = (uint32_t)strlen(value);
}

static void test_line(void)
{
    struct ctx c;
    make_request(&c, "PROPFIND", CHOPIN_METHOD_OTHER, "/a%20b/c?x=1");
    c.req.head.minor = 0;
    c.req.head.keep_alive = 0;
    CHECK_INT(chopin_req_method(&c.req), CHOPIN_METHOD_OTHER);
    chopin_str s = chopin_req_method_str(&c.req);
    CHECK_MEM(s.ptr, s.len, "PROPFIND");
    s = chopin_req_target(&c.req);
    CHECK_MEM(s.ptr, s.len, "/a%20b/c?x=1");
    s = chopin_req_path(&c.req); /* before routing: the raw path */
    CHECK_MEM(s.ptr, s.len, "/a%20b/c");
    s = chopin_req_query_string(&c.req);
    CHECK_MEM(s.ptr, s.len, "x=1");
    CHECK_INT(chopin_req_http_minor(&c.req), 0);
    CHECK_INT(chopin_req_keep_alive(&c.req), 0);
    c.req.path = "/a b/c";
    c.req.path_len = 6;
    s = chopin_req_path(&c.req);
    CHECK_MEM(s.ptr, s.len, "/a b/c");
    chopin__arena_destroy(&c.arena);

    make_request(&c, "GET", CHOPIN_METHOD_GET, "/");
    s = chopin_req_query_string(&c.req);
    CHECK_INT(s.len, 0);
    CHECK(s.ptr != NULL);
    CHECK_INT(chopin_req_http_minor(&c.req), 1);
    CHECK_INT(chopin_req_keep_alive(&c.req), 1);
    chopin__arena_destroy(&c.arena);
}

static void test_headers(void)
{
    struct ctx c;
    make_request(&c, "GET", CHOPIN_METHOD_GET, "/");
    add_header(&c, "Host", "example.com");
    add_header(&c, "X-Thing", "one");
    add_header(&c, "x-thing", "two");
    add_header(&c, "Content-Type", "text/plain");
    chopin_str s = chopin_req_header(&c.req, "host");
    CHECK_MEM(s.ptr, s.len, "example.com");
    s = chopin_req_header(&c.req, "X-THING");
    CHECK_MEM(s.ptr, s.len, "one");
    s = chopin_req_header(&c.req, "content-type");
    CHECK_MEM(s.ptr, s.len, "text/plain");
    s = chopin_req_header(&c.req, "Content-Typ");
    CHECK(s.ptr == NULL);
    s = chopin_req_header(&c.req, "Accept");
    CHECK(s.ptr == NULL);
    CHECK_INT(chopin_req_header_count(&c.req), 4);
    chopin_str n, v;
    CHECK_INT(chopin_req_header_at(&c.req, 2, &n, &v), 0);
    CHECK_MEM(n.ptr, n.len, "x-thing");
    CHECK_MEM(v.ptr, v.len, "two");
    CHECK_INT(chopin_req_header_at(&c.req, 4, &n, &v), -ERANGE);
    chopin__arena_destroy(&c.arena);
}

/* Cookies from every Cookie line (issue 12, point 10): split at ';', spaces trimmed,
 * names exact, values as sent. */
static void test_cookies(void)
{
    struct ctx c;
    make_request(&c, "GET", CHOPIN_METHOD_GET, "/");
    add_header(&c, "Cookie", "sid=abc; theme=\"dark\" ;  empty=; noval;a=b=c");
    add_header(&c, "X-Cookie", "other=1");
    add_header(&c, "cookie", "late=2; sid=second");
    static const struct {
        const char *name, *value;
    } cases[] = {
        {"sid", "abc"}, {"theme", "\"dark\""}, {"empty", ""}, {"a", "b=c"}, {"late", "2"},
        {"noval", NULL}, {"other", NULL}, {"SID", NULL}, {"si", NULL}, {"missing", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        chopin_str v = chopin_req_cookie(&c.req, cases[i].name);
        if (cases[i].value) {
            CHECK_MEM(v.ptr, v.len, cases[i].value);
        } else {
            if (v.ptr)
                fprintf(stderr, "  cookie %s found\n", cases[i].name);
            CHECK(v.ptr == NULL);
        }
    }
    chopin__arena_destroy(&c.arena);

    make_request(&c, "GET", CHOPIN_METHOD_GET, "/");
    CHECK(chopin_req_cookie(&c.req, "sid").ptr == NULL);
    add_header(&c, "Cookie", "");
    CHECK(chopin_req_cookie(&c.req, "sid").ptr == NULL);
    chopin__arena_destroy(&c.arena);
}

/* Data a middleware hands on, keyed by the address of its own static object. */
static void test_data(void)
{
    static const char key_user, key_id;
    static char keys[CHOPIN_REQ_DATA_MAX + 1];
    struct ctx c;
    make_request(&c, "GET", CHOPIN_METHOD_GET, "/");
    int user = 7, id = 9, other = 11;
    CHECK(chopin_req_data(&c.req, &key_user) == NULL);
    CHECK_INT(chopin_req_set_data(&c.req, &key_user, &user), 0);
    CHECK_INT(chopin_req_set_data(&c.req, &key_id, &id), 0);
    CHECK(chopin_req_data(&c.req, &key_user) == &user);
    CHECK(chopin_req_data(&c.req, &key_id) == &id);
    CHECK_INT(chopin_req_set_data(&c.req, &key_user, &other), 0); /* replaces */
    CHECK(chopin_req_data(&c.req, &key_user) == &other);
    CHECK_INT(chopin_req_set_data(&c.req, NULL, &user), -EINVAL);
    int err = 0;
    size_t i;
    for (i = 0; i < sizeof keys && !err; i++)
        err = chopin_req_set_data(&c.req, &keys[i], &user);
    CHECK_INT(err, -ENOSPC);
    CHECK_INT(i, CHOPIN_REQ_DATA_MAX - 1); /* two were taken already */
    CHECK(chopin_req_data(&c.req, &keys[i - 1]) == NULL);
    CHECK(chopin_req_data(&c.req, &key_id) == &id);
    chopin__arena_destroy(&c.arena);
}

/* The raw path keeps what the client sent, for logs; the routed path is decoded. */
static void test_path_raw(void)
{
    struct ctx c;
    make_request(&c, "GET", CHOPIN_METHOD_GET, "/a%20b/%2e%2e?q=1");
    c.req.path = "/a b/..";
    c.req.path_len = 7;
    chopin_str s = chopin_req_path_raw(&c.req);
    CHECK_MEM(s.ptr, s.len, "/a%20b/%2e%2e");
    s = chopin_req_path(&c.req);
    CHECK_MEM(s.ptr, s.len, "/a b/..");
    chopin__arena_destroy(&c.arena);
}

static void test_query(void)
{
    struct ctx c;
    make_request(&c, "GET", CHOPIN_METHOD_GET,
                 "/s?q=hello+world&empty=&flag&a%20b=c%2Bd&dup=1&dup=2&&pct=100%&x=%E2%82%AC");
    chopin_str s = chopin_req_query(&c.req, "q");
    CHECK_MEM(s.ptr, s.len, "hello world");
    s = chopin_req_query(&c.req, "empty");
    CHECK(s.ptr != NULL);
    CHECK_INT(s.len, 0);
    s = chopin_req_query(&c.req, "flag");
    CHECK(s.ptr != NULL);
    CHECK_INT(s.len, 0);
    s = chopin_req_query(&c.req, "a b"); /* the name is decoded too */
    CHECK_MEM(s.ptr, s.len, "c+d");
    s = chopin_req_query(&c.req, "dup");
    CHECK_MEM(s.ptr, s.len, "1");
    s = chopin_req_query(&c.req, "pct"); /* a broken escape stays text */
    CHECK_MEM(s.ptr, s.len, "100%");
    s = chopin_req_query(&c.req, "x");
    CHECK_MEM(s.ptr, s.len, "\xe2\x82\xac");
    s = chopin_req_query(&c.req, "missing");
    CHECK(s.ptr == NULL);
    s = chopin_req_query(&c.req, "fla");
    CHECK(s.ptr == NULL);
    /* "?flag" and "?empty=" both give an empty value; the kind tells them apart */
    CHECK_INT(chopin_req_query_kind(&c.req, "flag"), CHOPIN_QUERY_BARE);
    CHECK_INT(chopin_req_query_kind(&c.req, "empty"), CHOPIN_QUERY_VALUE);
    CHECK_INT(chopin_req_query_kind(&c.req, "q"), CHOPIN_QUERY_VALUE);
    CHECK_INT(chopin_req_query_kind(&c.req, "a b"), CHOPIN_QUERY_VALUE);
    CHECK_INT(chopin_req_query_kind(&c.req, "missing"), CHOPIN_QUERY_ABSENT);
    CHECK_INT(chopin_req_query_kind(&c.req, "fla"), CHOPIN_QUERY_ABSENT);

    static const char *const want[][2] = {
        {"q", "hello world"}, {"empty", ""}, {"flag", ""}, {"a b", "c+d"},
        {"dup", "1"},         {"dup", "2"},  {"pct", "100%"}, {"x", "\xe2\x82\xac"},
    };
    size_t pos = 0, i = 0;
    chopin_str n, v;
    while (chopin_req_query_next(&c.req, &pos, &n, &v)) {
        if (i < 8) {
            CHECK_MEM(n.ptr, n.len, want[i][0]);
            CHECK_MEM(v.ptr, v.len, want[i][1]);
        }
        i++;
    }
    CHECK_INT(i, 8);
    CHECK_INT(chopin_req_query_next(&c.req, &pos, &n, &v), 0);
    chopin__arena_destroy(&c.arena);

    make_request(&c, "GET", CHOPIN_METHOD_GET, "/none");
    pos = 0;
    CHECK_INT(chopin_req_query_next(&c.req, &pos, &n, &v), 0);
    CHECK(chopin_req_query(&c.req, "q").ptr == NULL);
    chopin__arena_destroy(&c.arena);
}

static void test_params_body_alloc(void)
{
    struct ctx c;
    make_request(&c, "POST", CHOPIN_METHOD_POST, "/u/42");
    c.req.nparams = 2;
    c.req.params[0] = (struct chopin__param){"id", "42", 2, 2};
    c.req.params[1] = (struct chopin__param){"rest", "a/b", 4, 3};
    chopin_str s = chopin_req_param(&c.req, "id");
    CHECK_MEM(s.ptr, s.len, "42");
    s = chopin_req_param(&c.req, "rest");
    CHECK_MEM(s.ptr, s.len, "a/b");
    CHECK(chopin_req_param(&c.req, "i").ptr == NULL);
    CHECK(chopin_req_param(&c.req, "nope").ptr == NULL);

    s = chopin_req_body(&c.req);
    CHECK_INT(s.len, 0);
    c.req.body = "{\"a\":1}";
    c.req.body_len = 7;
    s = chopin_req_body(&c.req);
    CHECK_MEM(s.ptr, s.len, "{\"a\":1}");

    char *p = chopin_req_alloc(&c.req, 100);
    CHECK(p != NULL);
    CHECK_INT((uintptr_t)p % 16, 0);
    memset(p, 'x', 100);
    CHECK(chopin_req_alloc(&c.req, 1 << 20) == NULL); /* past the arena limit */
    chopin__arena_destroy(&c.arena);
}

/* Params as the router fills them, read back through the API. */
static void show(chopin_req *req, chopin_res *res, void *data)
{
    chopin_str id = chopin_req_param(req, "id"), rest = chopin_req_param(req, "rest");
    char buf[128];
    snprintf(buf, sizeof(buf), "%.*s|%.*s", (int)id.len, id.ptr, (int)rest.len, rest.ptr);
    chopin_res_text(res, 200, buf);
}

static void test_params_routed(void)
{
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_get(r, "/u/:id/*rest", show, NULL), 0);
    CHECK_INT(chopin__router_freeze(r), 0);
    struct ctx c;
    make_request(&c, "GET", CHOPIN_METHOD_GET, "/u/a%2Fb/x%20y/z?q=1");
    chopin_res res;
    chopin__res_init(&res, &c.arena);
    chopin__router_dispatch(r, &c.req, &res);
    CHECK_INT(res.status, 200);
    CHECK_MEM(res.body, res.body_len, "a/b|x y/z");
    chopin_str p = chopin_req_path(&c.req);
    CHECK_MEM(p.ptr, p.len, "/u/a/b/x y/z");
    chopin__res_discard(&res);
    chopin__arena_destroy(&c.arena);
    chopin_router_free(r);
}

static void test_worker(void)
{
    struct ctx c;
    make_request(&c, "GET", CHOPIN_METHOD_GET, "/");
    CHECK(chopin_req_worker_data(&c.req) == NULL);
    CHECK_INT(chopin_req_worker_id(&c.req), 0);
    int id = 3;
    c.req.engine = (struct chopin__engine *)&id;
    CHECK(chopin_req_worker_data(&c.req) == &fake_worker_data);
    CHECK_INT(chopin_req_worker_id(&c.req), 3);
    chopin__arena_destroy(&c.arena);
}

/* A connected TCP pair on loopback; returns the accepted end, *client the other. */
static int tcp_pair(int family, int *client, int *client_port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        len = sizeof(*in6);
    }
    int l = socket(family, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&ss, &len) < 0) {
        if (l >= 0)
            close(l);
        return -1;
    }
    *client = socket(family, SOCK_STREAM, 0);
    if (connect(*client, (struct sockaddr *)&ss, len) < 0) {
        close(l);
        close(*client);
        return -1;
    }
    int s = accept(l, NULL, NULL);
    close(l);
    struct sockaddr_storage cs;
    socklen_t clen = sizeof(cs);
    getsockname(*client, (struct sockaddr *)&cs, &clen);
    *client_port = family == AF_INET ? ntohs(((struct sockaddr_in *)&cs)->sin_port)
                                     : ntohs(((struct sockaddr_in6 *)&cs)->sin6_port);
    return s;
}

static void test_remote_addr(void)
{
    struct ctx c;
    make_request(&c, "GET", CHOPIN_METHOD_GET, "/");
    chopin_str s = chopin_req_remote_addr(&c.req);
    CHECK_MEM(s.ptr, s.len, "unknown"); /* no connection */
    int fd = -1;
    c.req.conn = (struct chopin__conn *)&fd;
    s = chopin_req_remote_addr(&c.req);
    CHECK_MEM(s.ptr, s.len, "unknown");

    int client, port;
    fd = tcp_pair(AF_INET, &client, &port);
    CHECK(fd >= 0);
    if (fd >= 0) {
        char want[64];
        snprintf(want, sizeof(want), "127.0.0.1:%d", port);
        s = chopin_req_remote_addr(&c.req);
        CHECK_MEM(s.ptr, s.len, want);
        close(fd);
        close(client);
    }
    fd = tcp_pair(AF_INET6, &client, &port);
    if (fd >= 0) { /* IPv6 may be off in a container */
        char want[64];
        snprintf(want, sizeof(want), "[::1]:%d", port);
        s = chopin_req_remote_addr(&c.req);
        CHECK_MEM(s.ptr, s.len, want);
        close(fd);
        close(client);
    }
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fd = sv[0];
    s = chopin_req_remote_addr(&c.req);
    CHECK_MEM(s.ptr, s.len, "unix");
    close(sv[0]);
    close(sv[1]);
    chopin__arena_destroy(&c.arena);
}

int main(void)
{
    RUN(test_line);
    RUN(test_headers);
    RUN(test_cookies);
    RUN(test_data);
    RUN(test_path_raw);
    RUN(test_query);
    RUN(test_params_body_alloc);
    RUN(test_params_routed);
    RUN(test_worker);
    RUN(test_remote_addr);
    TEST_END();
}
