/* SPDX-License-Identifier: MIT */
/*
 * Request-head parser tests. Every input is copied so that it ends right before a
 * PROT_NONE page: any read past the end faults at once. Every case also runs at every
 * split point (each prefix must be incomplete, or refused with the whole input's status),
 * and the whole suite runs once per SIMD level the CPU has.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http/chars.h"
#include "http/parser.h"
#include "test.h"

#define GUARD_CAP (64 * 1024)
static char *guard_end; /* first byte of the PROT_NONE page */

static void guard_init(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, GUARD_CAP + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED || mprotect(m + GUARD_CAP, page, PROT_NONE)) {
        perror("guard page");
        exit(2);
    }
    guard_end = m + GUARD_CAP;
}

/* Copies n bytes so that they end at the guard page. */
static const char *place(const char *s, size_t n)
{
    memcpy(guard_end - n, s, n);
    return guard_end - n;
}

#define MAXH 64
static struct chopin__header hdrs[MAXH];
static const struct chopin__limits lim_default = {1024, 4096, MAXH};

static ssize_t parse_lim(const char *s, size_t n, struct chopin__head *h,
                         const struct chopin__limits *lim)
{
    memset(h, 0x5a, sizeof *h);
    h->headers = hdrs;
    return chopin__parse_request(place(s, n), n, h, lim);
}

static ssize_t parse_n(const char *s, size_t n, struct chopin__head *h)
{
    return parse_lim(s, n, h, &lim_default);
}

static ssize_t parse(const char *s, struct chopin__head *h)
{
    return parse_n(s, strlen(s), h);
}

/* ----------------------------------------------------------------------------------- */

static enum chopin__simd level;
static char case_name[256];

static void name_case(const char *what)
{
    snprintf(case_name, sizeof case_name, "%s [%s]", what, chopin__simd_name(level));
    test_case_name = case_name;
}

#define RL "GET / HTTP/1.1\r\n"
#define HOST "Host: a\r\n"
#define END "\r\n"

/* want: 0 = complete (the whole input), otherwise the status. */
struct pcase {
    const char *in;
    size_t len;
    int want;
};
#define C(in, want) {in, sizeof(in) - 1, want}

static const struct pcase cases[] = {
    /* accepted */
    C(RL HOST END, 0),
    C("GET / HTTP/1.0\r\n\r\n", 0),
    C("\r\nGET / HTTP/1.0\r\n\r\n", 0),
    C("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.0\r\n\r\n", 0),
    C("PROPFIND /x HTTP/1.1\r\n" HOST END, 0),
    C("M-SEARCH * HTTP/1.1\r\n" HOST END, 400), /* asterisk only for OPTIONS */
    C("get / HTTP/1.1\r\n" HOST END, 0),
    C("!#$%&'*+-.^_`|~09AZaz / HTTP/1.1\r\n" HOST END, 0),
    C("OPTIONS * HTTP/1.1\r\n" HOST END, 0),
    C("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 0),
    C("CONNECT [::1]:8443 HTTP/1.1\r\n" HOST END, 0),
    C("GET http://example.com/a?b HTTP/1.1\r\n" HOST END, 0),
    C("GET HTTPS://Example.com:8443 HTTP/1.1\r\n" HOST END, 0),
    C("GET hTtP://h?q HTTP/1.1\r\n" HOST END, 0),
    C("GET /a\x80\xff\"{}|%zz HTTP/1.1\r\n" HOST END, 0),
    C("GET /?? HTTP/1.1\r\n" HOST END, 0),
    C(RL "Host:\r\n\r\n", 0),
    C(RL "Host: example.com:8080\r\n\r\n", 0),
    C(RL HOST "X: \x80\xff caf\xc3\xa9\r\n\r\n", 0),
    C(RL HOST "X: a\tb \t\r\n\r\n", 0),
    C(RL HOST "X:\r\n\r\n", 0),
    C(RL HOST "X-!#$%&'*+-.^_`|~: v\r\n\r\n", 0),
    C(RL HOST "Content-Length: 0\r\n\r\n", 0),
    C(RL HOST "Content-Length: 42\r\n\r\n", 0),
    C(RL HOST "Content-Length: 42, 42\r\n\r\n", 0),
    C(RL HOST "Content-Length: 42\r\nContent-Length: 42\r\n\r\n", 0),
    C(RL HOST "Content-Length: 0042\r\n\r\n", 0),
    C(RL HOST "Content-Length: 18446744073709551615\r\n\r\n", 0),
    C(RL HOST "Transfer-Encoding: chunked\r\n\r\n", 0),
    C(RL HOST "transfer-encoding:  CHUNKED \r\n\r\n", 0),
    C(RL HOST "Connection: close\r\n\r\n", 0),
    C(RL HOST "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0),
    C(RL HOST "Expect: 100-continue\r\n\r\n", 0),
    C("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", 0),
    /* request line */
    C(" GET / HTTP/1.1\r\n" HOST END, 400),
    C("GET  / HTTP/1.1\r\n" HOST END, 400),
    C("GET /  HTTP/1.1\r\n" HOST END, 400),
    C("GET / HTTP/1.1 \r\n" HOST END, 400),
    C("GET\t/ HTTP/1.1\r\n" HOST END, 400),
    C("GET /\r\n\r\n", 400),
    C("GET / HTTP/1.1\n" HOST END, 400),
    C("GET / HTTP/1.1\r" HOST END, 400),
    C("GET / HTTP/1.1\r\r\n" HOST END, 400),
    C("G(T / HTTP/1.1\r\n" HOST END, 400),
    C("GET\x80 / HTTP/1.1\r\n" HOST END, 400),
    C("\nGET / HTTP/1.1\r\n" HOST END, 400),
    C("\r\n\nGET / HTTP/1.1\r\n" HOST END, 400),
    C("\rGET / HTTP/1.1\r\n" HOST END, 400),
    C("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.0\r\n\r\n", 400),
    C("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    C("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    /* targets */
    C("GET /a\x01 HTTP/1.1\r\n" HOST END, 400),
    C("GET /a\x7f HTTP/1.1\r\n" HOST END, 400),
    C("GET /a\tb HTTP/1.1\r\n" HOST END, 400),
    C("GET /a?b\x7f HTTP/1.1\r\n" HOST END, 400),
    C("GET /a?b\x1f HTTP/1.1\r\n" HOST END, 400),
    C("GET /a\x00 HTTP/1.1\r\n" HOST END, 400),
    C("GET * HTTP/1.1\r\n" HOST END, 400),
    /* a fragment is never sent (RFC 9112 §3.2): short, past 16 and 32 bytes (the SIMD
     * blocks), in the path and in the query */
    C("GET /a#b HTTP/1.1\r\n" HOST END, 400),
    C("GET /# HTTP/1.1\r\n" HOST END, 400),
    C("GET /a?b#c HTTP/1.1\r\n" HOST END, 400),
    C("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa#b HTTP/1.1\r\n" HOST END, 400),
    C("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa#bbbbbbbbbbbbbbbbbbbbbbbb HTTP/1.1\r\n" HOST END, 400),
    C("GET /a?bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb#c HTTP/1.1\r\n" HOST END, 400),
    C("GET http://h/a#b HTTP/1.1\r\n" HOST END, 400),
    C("OPTIONS *a HTTP/1.1\r\n" HOST END, 400),
    C("OPTIONS *?x HTTP/1.1\r\n" HOST END, 400),
    C("GET example.com:80 HTTP/1.1\r\n" HOST END, 400),
    C("GET a HTTP/1.1\r\n" HOST END, 400),
    C("GET ?a HTTP/1.1\r\n" HOST END, 400),
    C("GET ftp://h/ HTTP/1.1\r\n" HOST END, 400),
    C("GET http:/h/ HTTP/1.1\r\n" HOST END, 400),
    C("GET http:// HTTP/1.1\r\n" HOST END, 400),
    C("GET http:///x HTTP/1.1\r\n" HOST END, 400),
    C("GET http://?x HTTP/1.1\r\n" HOST END, 400),
    C("GET http://u@h/ HTTP/1.1\r\n" HOST END, 400),
    C("GET http HTTP/1.1\r\n" HOST END, 400),
    C("CONNECT / HTTP/1.1\r\n" HOST END, 400),
    C("CONNECT h HTTP/1.1\r\n" HOST END, 400),
    C("CONNECT h: HTTP/1.1\r\n" HOST END, 400),
    C("CONNECT :443 HTTP/1.1\r\n" HOST END, 400),
    C("CONNECT h:44a HTTP/1.1\r\n" HOST END, 400),
    C("CONNECT u@h:443 HTTP/1.1\r\n" HOST END, 400),
    C("CONNECT h:443/x HTTP/1.1\r\n" HOST END, 400),
    C("CONNECT http://h:443/ HTTP/1.1\r\n" HOST END, 400),
    /* versions */
    C("GET / HTTP/2.0\r\n" HOST END, 505),
    C("GET / HTTP/1.2\r\n" HOST END, 505),
    C("GET / HTTP/0.9\r\n" HOST END, 505),
    C("GET / HTTP/9.9\r\n\r\n", 505),
    C("GET / HTTP/1.1x\r\n" HOST END, 400),
    C("GET / HTTP/1.10\r\n" HOST END, 400),
    C("GET / http/1.1\r\n" HOST END, 400),
    C("GET / HTTP/11\r\n" HOST END, 400),
    C("GET / HTTP/1\r\n" HOST END, 400),
    C("GET / HTTP/1.\r\n" HOST END, 400),
    C("GET / HTTP/a.b\r\n" HOST END, 400),
    C("GET / HTTP/2\r\n" HOST END, 400),
    C("GET / HTTP 1.1\r\n" HOST END, 400),
    C("GET / HTTPS/1.1\r\n" HOST END, 400),
    C("GET / \r\n" HOST END, 400),
    /* header lines */
    C(RL "Host : a\r\n\r\n", 400),
    C(RL "Host\t: a\r\n\r\n", 400),
    C(RL ": a\r\n" HOST END, 400),
    C(RL "Ho st: a\r\n\r\n", 400),
    C(RL "Host a\r\n\r\n", 400),
    C(RL "Host\r\n\r\n", 400),
    C(RL HOST "X(: a\r\n\r\n", 400),
    C(RL HOST "X\x80: a\r\n\r\n", 400),
    C(RL HOST "X\x01: a\r\n\r\n", 400),
    C(RL HOST "X: a\r\n b\r\n\r\n", 400),
    C(RL HOST "X: a\r\n\tb\r\n\r\n", 400),
    C(RL " Host: a\r\n\r\n", 400),
    C(RL HOST "X: a\nY: b\r\n\r\n", 400),
    C(RL HOST "X: a\r\n\n", 400),
    C(RL HOST "\n", 400),
    C(RL HOST "X: a\rb\r\n\r\n", 400),
    C(RL HOST "X: a\r\r\n\r\n", 400),
    C(RL HOST "\r\r\n", 400),
    C(RL HOST "\rX", 400),
    C(RL HOST "X: a\x00b\r\n\r\n", 400),
    C(RL HOST "X: a\x01\r\n\r\n", 400),
    C(RL HOST "X: a\x1f\r\n\r\n", 400),
    C(RL HOST "X: a\x7f\r\n\r\n", 400),
    C(RL HOST "X: 0123456789abcdef0123456789abcdef0123456789\x0b\r\n\r\n", 400),
    /* Host */
    C("GET / HTTP/1.1\r\n\r\n", 400),
    C(RL HOST HOST END, 400),
    C(RL "Host: a\r\nHOST: b\r\n\r\n", 400),
    C("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    C(RL "Host: a b\r\n\r\n", 400),
    C(RL "Host: a\tb\r\n\r\n", 400),
    C("GET http://h/ HTTP/1.1\r\n\r\n", 400),
    /* Content-Length */
    C(RL HOST "Content-Length: abc\r\n\r\n", 400),
    C(RL HOST "Content-Length: -1\r\n\r\n", 400),
    C(RL HOST "Content-Length: +1\r\n\r\n", 400),
    C(RL HOST "Content-Length: 1 2\r\n\r\n", 400),
    C(RL HOST "Content-Length: 0x10\r\n\r\n", 400),
    C(RL HOST "Content-Length: 1a\r\n\r\n", 400),
    C(RL HOST "Content-Length:\r\n\r\n", 400),
    C(RL HOST "Content-Length: 1,\r\n\r\n", 400),
    C(RL HOST "Content-Length: ,1\r\n\r\n", 400),
    C(RL HOST "Content-Length: 1, 2\r\n\r\n", 400),
    C(RL HOST "Content-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    C(RL HOST "Content-Length: 18446744073709551616\r\n\r\n", 400),
    C(RL HOST "Content-Length: 99999999999999999999999\r\n\r\n", 400),
    C(RL HOST "Content-Length: 1.0\r\n\r\n", 400),
    /* Transfer-Encoding */
    C(RL HOST "Transfer-Encoding: gzip\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding: chunked, chunked\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding:\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding: chunked,\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding: ,chunked\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding: gzip,,chunked\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding: chunked;q=1\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding: \"chunked\"\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding: chunk\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
    C(RL HOST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    C("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    C(RL HOST "Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
    C(RL HOST "Transfer-Encoding: deflate,chunked\r\n\r\n", 501),
    C(RL HOST "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    /* Expect */
    C(RL HOST "Expect: foo\r\n\r\n", 417),
    C(RL HOST "Expect: 100-continue, foo\r\n\r\n", 417),
    C(RL HOST "Expect:\r\n\r\n", 417),
    C("GET / HTTP/1.0\r\nExpect: 200-ok\r\n\r\n", 417),
};

static const size_t ncases = sizeof cases / sizeof cases[0];
static size_t cur_case;

static const char *visible(const char *s)
{
    static char out[200];
    size_t o = 0;
    for (; *s && o + 5 < sizeof out; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f) out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", c);
    }
    out[o] = 0;
    return out;
}

/* The whole input gets the table's verdict; every prefix is incomplete or gets the same
 * verdict; bytes after a complete head are never looked at. */
static void test_table_case(void)
{
    const struct pcase *c = &cases[cur_case];
    struct chopin__head h;
    size_t n = c->len;
    char label[240];
    snprintf(label, sizeof label, "case %zu \"%s\"", cur_case, visible(c->in));
    name_case(label);

    ssize_t r = parse_n(c->in, n, &h);
    CHECK_INT(r, c->want ? -c->want : (ssize_t)n);
    for (size_t k = 0; k < n; k++) {
        ssize_t rk = parse_n(c->in, k, &h);
        if (c->want == 0) {
            if (rk != CHOPIN__PARSE_INCOMPLETE) {
                fprintf(stderr, "  prefix %zu -> %zd\n", k, rk);
                CHECK_INT(rk, CHOPIN__PARSE_INCOMPLETE);
                break;
            }
        } else if (rk != CHOPIN__PARSE_INCOMPLETE && rk != -c->want) {
            fprintf(stderr, "  prefix %zu -> %zd\n", k, rk);
            CHECK_INT(rk, -c->want);
            break;
        }
    }
    /* Bytes after the verdict's position change nothing; 64 of them also let every line
     * take the 32-byte-window path of the SIMD levels. */
    char more[600];
    memcpy(more, c->in, n);
    memset(more + n, 'x', 64);
    CHECK_INT(parse_n(more, n + 64, &h), c->want ? -c->want : (ssize_t)n);
    memcpy(more + n, "XYZ\r\n", 5);
    CHECK_INT(parse_n(more, n + 5, &h), c->want ? -c->want : (ssize_t)n);
}

/* ----------------------------------------------------------------------------------- */

static void test_fields_basic(void)
{
    name_case("fields_basic");
    struct chopin__head h;
    const char *req = "GET /hello/world?x=1&y=2 HTTP/1.1\r\n"
                      "Host: example.com\r\n"
                      "User-Agent:  curl/8.0 \t\r\n"
                      "Accept: */*\r\n"
                      "\r\n";
    ssize_t r = parse(req, &h);
    CHECK_INT(r, strlen(req));
    CHECK_MEM(h.method, h.method_len, "GET");
    CHECK_INT(h.method_id, CHOPIN_METHOD_GET);
    CHECK_MEM(h.target, h.target_len, "/hello/world?x=1&y=2");
    CHECK_MEM(h.path, h.path_len, "/hello/world");
    CHECK_MEM(h.query, h.query_len, "x=1&y=2");
    CHECK_MEM(h.host, h.host_len, "example.com");
    CHECK_INT(h.minor, 1);
    CHECK_INT(h.nheaders, 3);
    CHECK_MEM(h.headers[0].name, h.headers[0].name_len, "Host");
    CHECK_MEM(h.headers[0].value, h.headers[0].value_len, "example.com");
    CHECK_MEM(h.headers[1].name, h.headers[1].name_len, "User-Agent");
    CHECK_MEM(h.headers[1].value, h.headers[1].value_len, "curl/8.0");
    CHECK_MEM(h.headers[2].name, h.headers[2].name_len, "Accept");
    CHECK_MEM(h.headers[2].value, h.headers[2].value_len, "*/*");
    CHECK_INT(h.body_kind, CHOPIN__BODY_NONE);
    CHECK_INT(h.content_length, 0);
    CHECK_INT(h.keep_alive, 1);
    CHECK_INT(h.expect_continue, 0);
    CHECK_INT(h.upgrade, 0);
    CHECK(h.method == guard_end - strlen(req));
}

static void test_method_ids(void)
{
    name_case("method_ids");
    static const struct {
        const char *m;
        int id;
    } t[] = {
#define M(name, str) {str, CHOPIN_METHOD_##name},
        CHOPIN_METHOD_MAP(M)
#undef M
        {"get", CHOPIN_METHOD_OTHER},
        {"GETS", CHOPIN_METHOD_OTHER},
        {"GE", CHOPIN_METHOD_OTHER},
        {"PROPFIND", CHOPIN_METHOD_OTHER},
        {"Delete", CHOPIN_METHOD_OTHER},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char req[128];
        struct chopin__head h;
        const char *target = strcmp(t[i].m, "CONNECT") == 0   ? "h:1"
                             : strcmp(t[i].m, "OPTIONS") == 0 ? "*"
                                                              : "/";
        snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: h\r\n\r\n", t[i].m, target);
        CHECK_INT(parse(req, &h), strlen(req));
        CHECK_INT(h.method_id, t[i].id);
        CHECK_MEM(h.method, h.method_len, t[i].m);
    }
}

static void test_targets(void)
{
    name_case("targets");
    struct chopin__head h;

    CHECK(parse("GET /a HTTP/1.1\r\nHost: h\r\n\r\n", &h) > 0);
    CHECK_MEM(h.path, h.path_len, "/a");
    CHECK(h.query == NULL);
    CHECK_INT(h.query_len, 0);

    CHECK(parse("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", &h) > 0);
    CHECK_MEM(h.path, h.path_len, "/a");
    CHECK(h.query != NULL);
    CHECK_MEM(h.query, h.query_len, "");

    CHECK(parse("GET /a?b?c=/d HTTP/1.1\r\nHost: h\r\n\r\n", &h) > 0);
    CHECK_MEM(h.path, h.path_len, "/a");
    CHECK_MEM(h.query, h.query_len, "b?c=/d");

    /* absolute-form: the target's authority wins over Host (RFC 9112 §3.2.2) */
    CHECK(parse("GET http://example.com:81/p/q?x HTTP/1.1\r\nHost: other\r\n\r\n", &h) > 0);
    CHECK_MEM(h.target, h.target_len, "http://example.com:81/p/q?x");
    CHECK_MEM(h.host, h.host_len, "example.com:81");
    CHECK_MEM(h.path, h.path_len, "/p/q");
    CHECK_MEM(h.query, h.query_len, "x");

    CHECK(parse("GET HTTPS://h.example HTTP/1.1\r\nHost: h\r\n\r\n", &h) > 0);
    CHECK_MEM(h.host, h.host_len, "h.example");
    CHECK_MEM(h.path, h.path_len, "/");
    CHECK(h.query == NULL);

    CHECK(parse("GET http://h?a=b HTTP/1.1\r\nHost: h\r\n\r\n", &h) > 0);
    CHECK_MEM(h.host, h.host_len, "h");
    CHECK_MEM(h.path, h.path_len, "/");
    CHECK_MEM(h.query, h.query_len, "a=b");
    /* the "/" points into the buffer */
    CHECK(h.path >= h.target && h.path < h.target + h.target_len);

    CHECK(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &h) > 0);
    CHECK_MEM(h.path, h.path_len, "*");
    CHECK(h.query == NULL);

    CHECK(parse("CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n", &h) > 0);
    CHECK_INT(h.method_id, CHOPIN_METHOD_CONNECT);
    CHECK_MEM(h.host, h.host_len, "db.example:5432");
    CHECK_MEM(h.path, h.path_len, "db.example:5432");
    CHECK(h.query == NULL);

    CHECK(parse("OPTIONS http://h HTTP/1.1\r\nHost: h\r\n\r\n", &h) > 0);
    CHECK_MEM(h.path, h.path_len, "/");
}

static void test_version_and_host(void)
{
    name_case("version_and_host");
    struct chopin__head h;
    CHECK(parse("GET / HTTP/1.0\r\n\r\n", &h) > 0);
    CHECK_INT(h.minor, 0);
    CHECK(h.host == NULL);
    CHECK_INT(h.host_len, 0);
    CHECK(parse("GET / HTTP/1.0\r\nHost: x:1\r\n\r\n", &h) > 0);
    CHECK_MEM(h.host, h.host_len, "x:1");
    CHECK(parse("GET / HTTP/1.1\r\nhOsT:   \r\n\r\n", &h) > 0);
    CHECK(h.host != NULL);
    CHECK_INT(h.host_len, 0);
}

static uint32_t rng(void);

/* RFC 9112 §3.2 / RFC 3986 uri-host [":" port], written out plainly as the reference for
 * the parser's table-and-word check: IP-literal in brackets (reg-name bytes and ':'), or
 * reg-name (unreserved, '%', sub-delims; empty only without need_host), then ':' and
 * digits. */
static int ref_reg_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~%!$&'()*+,;=", c));
}

static int ref_host(const char *s, size_t n, int need_host)
{
    size_t i = 0;
    if (n && s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++)
            if (!ref_reg_byte((unsigned char)s[i]) && s[i] != ':') return 0;
        if (i == n || i == 1) return 0;
        i++;
    } else {
        while (i < n && ref_reg_byte((unsigned char)s[i])) i++;
        if (need_host && i == 0) return 0;
    }
    if (i == n) return 1;
    if (s[i++] != ':') return 0;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* before, n bytes of s (NUL included), after: a request in out, its length returned. */
static size_t wrap(char *out, const char *before, const char *s, size_t n, const char *after)
{
    size_t a = strlen(before), b = strlen(after);
    memcpy(out, before, a);
    memcpy(out + a, s, n);
    memcpy(out + a + n, after, b);
    return a + n + b;
}

/* The parser's verdict on `host` (n bytes) as a Host field and, when it can stand in one,
 * as an absolute-form authority, against ref_host. The field value loses surrounding
 * SP/HTAB first (RFC 9110 §5.5), so the reference sees it trimmed. Returns 0 on a
 * mismatch, after printing it. */
static int host_agrees(const char *host, size_t n)
{
    char req[256], vis[64];
    struct chopin__head h;
    size_t a = 0, b = n;
    while (a < b && (host[a] == ' ' || host[a] == '\t')) a++;
    while (b > a && (host[b - 1] == ' ' || host[b - 1] == '\t')) b--;
    int want = ref_host(host + a, b - a, 0);
    size_t len = wrap(req, "GET / HTTP/1.1\r\nHost: ", host, n, "\r\n\r\n");
    ssize_t r = parse_n(req, len, &h);
    memcpy(vis, host, n < sizeof vis ? n : sizeof vis - 1);
    vis[n < sizeof vis ? n : sizeof vis - 1] = 0;
    if (r != (want ? (ssize_t)len : -400)) {
        fprintf(stderr, "  Host \"%s\" (%zu bytes): %zd, reference %s\n", visible(vis), n, r,
                want ? "valid" : "invalid");
        return 0;
    }
    /* The target ends at SP, CTLs and DEL, its authority at '/' and '?': those bytes are
     * the target grammar's to judge, not the host check's. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= 0x20 || c == 0x7f || c == '/' || c == '?') return 1;
    }
    want = ref_host(host, n, 1);
    len = wrap(req, "GET http://", host, n, "/ HTTP/1.1\r\nHost: x\r\n\r\n");
    r = parse_n(req, len, &h);
    if (r != (want ? (ssize_t)len : -400)) {
        fprintf(stderr, "  authority \"%s\" (%zu bytes): %zd, reference %s\n", visible(vis), n,
                r, want ? "valid" : "invalid");
        return 0;
    }
    return 1;
}

/* Every byte value at every position of hosts of each shape and of lengths around the
 * check's 4- and 8-byte groups, then random strings over the bytes that matter: a byte
 * class accepted or refused by mistake, or a port split in the wrong place, shows here. */
static void test_host_bytes(void)
{
    name_case("host_bytes");
    static const char *const shapes[] = {
        "a", "ab", "abc", "abcd", "server", "abcdefg", "abcdefgh", "127.0.0.1",
        "example.com", "a:1", "h:80", "server:8080", "127.0.0.1:40000", "localhost:65535",
        "sub.example.org:12345678", "[::1]", "[::1]:8080", "[v1.x]", "[fe80::1%25en0]:443",
        ":80", "a:", "[a]:",
    };
    char buf[64];
    int failures = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0] && failures < 10; k++) {
        size_t n = strlen(shapes[k]);
        CHECK(host_agrees(shapes[k], n));
        for (size_t at = 0; at < n && failures < 10; at++)
            for (int c = 0; c < 256; c++) {
                memcpy(buf, shapes[k], n);
                buf[at] = (char)c;
                if (!host_agrees(buf, n)) failures++;
            }
        for (int c = 0; c < 256 && failures < 10; c++) { /* appended */
            memcpy(buf, shapes[k], n);
            buf[n] = (char)c;
            if (!host_agrees(buf, n + 1)) failures++;
        }
    }
    static const char alphabet[] = "[]:0123456789a.-%/@?# \t\x80\xff\"\\";
    for (int iter = 0; iter < 20000 && failures < 10; iter++) {
        size_t n = rng() % 26;
        for (size_t i = 0; i < n; i++)
            buf[i] = rng() % 4 ? alphabet[rng() % 16] : alphabet[rng() % (sizeof alphabet - 1)];
        if (!host_agrees(buf, n)) failures++;
    }
    CHECK_INT(failures, 0);
}

static void test_keep_alive(void)
{
    name_case("keep_alive");
    static const struct {
        const char *req;
        int ka;
    } t[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, Close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1},
        {"GET / HTTP/1.0\r\nConnection: te ,keep-alive , x\r\n\r\n", 1},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nKeep-Alive: 300\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct chopin__head h;
        CHECK_INT(parse(t[i].req, &h), strlen(t[i].req));
        if (h.keep_alive != t[i].ka) fprintf(stderr, "  %s\n", visible(t[i].req));
        CHECK_INT(h.keep_alive, t[i].ka);
    }
}

static void test_upgrade_expect(void)
{
    name_case("upgrade_expect");
    static const struct {
        const char *req;
        int upgrade, expect;
    } t[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 1, 0},
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: keep-alive, upgrade\r\n\r\n",
         1, 0},
        {"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", 0, 0},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n", 0, 0},
        {"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", 0, 0},
        {"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", 0, 1},
        {"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue \r\n\r\n", 0, 1},
        {"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", 0, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct chopin__head h;
        CHECK_INT(parse(t[i].req, &h), strlen(t[i].req));
        CHECK_INT(h.upgrade, t[i].upgrade);
        CHECK_INT(h.expect_continue, t[i].expect);
    }
}

static void test_framing(void)
{
    name_case("framing");
    static const struct {
        const char *fields;
        int kind;
        uint64_t len;
    } t[] = {
        {"", CHOPIN__BODY_NONE, 0},
        {"Content-Length: 0\r\n", CHOPIN__BODY_NONE, 0},
        {"Content-Length: 000\r\n", CHOPIN__BODY_NONE, 0},
        {"Content-Length: 42\r\n", CHOPIN__BODY_LENGTH, 42},
        {"content-length:42\r\n", CHOPIN__BODY_LENGTH, 42},
        {"Content-Length: 0042\r\n", CHOPIN__BODY_LENGTH, 42},
        {"Content-Length: 42 , 42,42\r\n", CHOPIN__BODY_LENGTH, 42},
        {"Content-Length: 7\r\nContent-Length: 07\r\n", CHOPIN__BODY_LENGTH, 7},
        {"Content-Length: 18446744073709551615\r\n", CHOPIN__BODY_LENGTH, UINT64_MAX},
        {"Transfer-Encoding: chunked\r\n", CHOPIN__BODY_CHUNKED, 0},
        {"Transfer-Encoding: Chunked\r\n", CHOPIN__BODY_CHUNKED, 0},
        {"Content-Lengths: 5\r\n", CHOPIN__BODY_NONE, 0},
        {"Transfer-Encodings: gzip\r\n", CHOPIN__BODY_NONE, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char req[256];
        struct chopin__head h;
        snprintf(req, sizeof req, "POST / HTTP/1.1\r\nHost: h\r\n%s\r\n", t[i].fields);
        CHECK_INT(parse(req, &h), strlen(req));
        CHECK_INT(h.body_kind, t[i].kind);
        CHECK(h.content_length == t[i].len);
    }
}

static void test_value_trim(void)
{
    name_case("value_trim");
    struct chopin__head h;
    CHECK(parse("GET / HTTP/1.1\r\nHost: h\r\nA:  \t a \t b \t \r\nB:\r\nC: \t \r\nD:x\r\n\r\n",
                &h) > 0);
    CHECK_INT(h.nheaders, 5);
    CHECK_MEM(h.headers[1].value, h.headers[1].value_len, "a \t b");
    CHECK_MEM(h.headers[2].value, h.headers[2].value_len, "");
    CHECK_MEM(h.headers[3].value, h.headers[3].value_len, "");
    CHECK_MEM(h.headers[4].value, h.headers[4].value_len, "x");
    /* a value with tabs long enough for several SIMD blocks */
    char req[512];
    snprintf(req, sizeof req,
             "GET / HTTP/1.1\r\nHost: h\r\nX: %s\t%s\t\t%s \r\n\r\n",
             "0123456789abcdefghijklmnopqrstuvwxyz", "0123456789abcdefghijklmnopqrstuvwxyz",
             "0123456789abcdefghijklmnopqrstuvwxyz0123456789");
    CHECK_INT(parse(req, &h), strlen(req));
    CHECK_INT(h.headers[1].value_len, 36 * 2 + 46 + 3);
}

static void test_leading_empty_lines(void)
{
    name_case("leading_empty_lines");
    struct chopin__head h;
    const char *req = "\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(parse(req, &h), strlen(req));
    CHECK_MEM(h.path, h.path_len, "/x");
    CHECK_INT(parse("\r\n", &h), CHOPIN__PARSE_INCOMPLETE);
    CHECK_INT(parse("\r", &h), CHOPIN__PARSE_INCOMPLETE);
    CHECK_INT(parse("", &h), CHOPIN__PARSE_INCOMPLETE);
}

static void test_limits(void)
{
    name_case("limits");
    struct chopin__head h;
    char req[8192];
    /* request line of exactly 100 bytes is fine, 101 is 414, complete or not */
    struct chopin__limits lim = {100, 4096, 8};
    size_t pad = 100 - strlen("GET / HTTP/1.1") + 1; /* path "/" + pad = 100 bytes */
    int n = snprintf(req, sizeof req, "GET /%.*s HTTP/1.1\r\nHost: h\r\n\r\n", (int)(pad - 1),
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    CHECK_INT(parse_lim(req, (size_t)n, &h, &lim), n);
    lim.max_request_line = 99;
    CHECK_INT(parse_lim(req, (size_t)n, &h, &lim), -414);
    CHECK_INT(parse_lim(req, 100, &h, &lim), -414);     /* no CR yet, already too long */
    CHECK_INT(parse_lim(req, 99, &h, &lim), CHOPIN__PARSE_INCOMPLETE);
    lim.max_request_line = 100;
    CHECK_INT(parse_lim(req, 101, &h, &lim), CHOPIN__PARSE_INCOMPLETE); /* the CR */
    /* leading empty lines do not count against the request line */
    memmove(req + 4, req, (size_t)n);
    memcpy(req, "\r\n\r\n", 4);
    CHECK_INT(parse_lim(req, (size_t)n + 4, &h, &lim), n + 4);

    /* head of exactly max_header_bytes is fine; one more byte is 431 */
    n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: h\r\nX: %0200d\r\n\r\n", 0);
    lim = (struct chopin__limits){1024, (uint32_t)n, 8};
    CHECK_INT(parse_lim(req, (size_t)n, &h, &lim), n);
    lim.max_header_bytes = (uint32_t)n - 1;
    CHECK_INT(parse_lim(req, (size_t)n, &h, &lim), -431);
    CHECK_INT(parse_lim(req, (size_t)n - 1, &h, &lim), CHOPIN__PARSE_INCOMPLETE);
    CHECK_INT(parse_lim(req, (size_t)n - 2, &h, &lim), CHOPIN__PARSE_INCOMPLETE);
    /* an endless header: 431 as soon as the limit is passed */
    memset(req, 'a', 4000);
    memcpy(req, "GET / HTTP/1.1\r\nHost: h\r\nX: ", 28);
    lim = (struct chopin__limits){1024, 2048, 8};
    CHECK_INT(parse_lim(req, 2048, &h, &lim), CHOPIN__PARSE_INCOMPLETE);
    CHECK_INT(parse_lim(req, 2049, &h, &lim), -431);
    CHECK_INT(parse_lim(req, 4000, &h, &lim), -431);
    /* endless leading CRLFs stop at the ninth anyway; an endless request line is 414 */
    memset(req, 'A', 4000);
    CHECK_INT(parse_lim(req, 4000, &h, &lim), -414);
    CHECK_INT(parse_lim(req, 1024, &h, &lim), CHOPIN__PARSE_INCOMPLETE);
    CHECK_INT(parse_lim(req, 1025, &h, &lim), -414);
    /* head limit below the request line limit: 431 first */
    lim = (struct chopin__limits){1024, 64, 8};
    CHECK_INT(parse_lim(req, 4000, &h, &lim), -431);

    /* max_headers: exactly N fine, N+1 is 431, also with 0 */
    const char *four = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    lim = (struct chopin__limits){1024, 4096, 4};
    CHECK_INT(parse_lim(four, strlen(four), &h, &lim), strlen(four));
    CHECK_INT(h.nheaders, 4);
    lim.max_headers = 3;
    CHECK_INT(parse_lim(four, strlen(four), &h, &lim), -431);
    CHECK_INT(parse_lim(four, 39, &h, &lim), -431); /* the fourth name is enough */
    lim.max_headers = 0;
    CHECK_INT(parse_lim(four, strlen(four), &h, &lim), -431);
    const char *none = "GET / HTTP/1.0\r\n\r\n";
    CHECK_INT(parse_lim(none, strlen(none), &h, &lim), strlen(none));
    CHECK_INT(h.nheaders, 0);
}

/* Several requests back to back, cut at every point: the complete ones parse in order
 * (with their bodies skipped), then the rest is incomplete. */
static void test_pipelined(void)
{
    name_case("pipelined");
    static const char *reqs[] = {
        "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
        "\r\nGET /3?x HTTP/1.1\r\nHost: a\r\nCookie: k=v; k2=v2\r\n\r\n",
        "HEAD http://a/4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "OPTIONS * HTTP/1.0\r\n\r\n",
    };
    static const size_t body[] = {0, 5, 0, 0, 0};
    char all[1024];
    size_t ends[5], starts[5], total = 0;
    for (size_t i = 0; i < 5; i++) {
        starts[i] = total;
        size_t n = strlen(reqs[i]);
        memcpy(all + total, reqs[i], n);
        total += n;
        ends[i] = total;
        memcpy(all + total, "hello", body[i]);
        total += body[i];
    }
    for (size_t k = 0; k <= total; k++) {
        const char *b = place(all, k);
        size_t off = 0, i = 0;
        struct chopin__head h;
        h.headers = hdrs;
        for (;;) {
            ssize_t r = chopin__parse_request(b + off, k - off, &h, &lim_default);
            if (r == CHOPIN__PARSE_INCOMPLETE) break;
            if (r < 0 || i >= 5 || off + (size_t)r != ends[i]) {
                fprintf(stderr, "  split %zu: request %zu -> %zd\n", k, i, r);
                CHECK(0);
                return;
            }
            CHECK(h.method >= b + starts[i]);
            if (h.body_kind == CHOPIN__BODY_LENGTH) {
                if (k - ends[i] < h.content_length) {
                    off = k; /* body incomplete */
                    i++;
                    break;
                }
                off = ends[i] + h.content_length;
            } else {
                off = ends[i];
            }
            i++;
        }
        size_t want = 0;
        while (want < 5 && ends[want] <= k) want++;
        CHECK_INT(i, want);
    }
}

/* The shared byte classes, checked against the RFC's own definitions byte by byte. */
static void test_chars(void)
{
    name_case("chars");
    for (unsigned c = 0; c < 256; c++) {
        int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        int tchar = alnum || (c && strchr("!#$%&'*+-.^_`|~", (int)c)); /* RFC 9110 §5.6.2 */
        int vchar = c >= 0x21 && c <= 0x7e;
        int field = c == '\t' || c == ' ' || vchar || c >= 0x80; /* §5.5 */
        int qdtext = c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
                     (c >= 0x5d && c <= 0x7e) || c >= 0x80; /* §5.6.4 */
        unsigned char u = (unsigned char)c;
        CHECK(!!chopin__is_tchar(u) == tchar);
        CHECK(!!chopin__is_field_byte(u) == field);
        CHECK(!!chopin__is_qdtext(u) == qdtext);
        CHECK(!!chopin__is_ows(u) == (c == ' ' || c == '\t'));
        int hex = c >= '0' && c <= '9' ? (int)c - '0'
                  : c >= 'a' && c <= 'f' ? (int)c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? (int)c - 'A' + 10
                                         : -1;
        CHECK_INT(chopin__hex_value(u), hex);
        CHECK_INT(chopin__ascii_lower(u), c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    CHECK(chopin__is_token("chunked", 7));
    CHECK(!chopin__is_token("", 0));
    CHECK(!chopin__is_token("a b", 3));
}

static void test_simd_names(void)
{
    name_case("simd_names");
    CHECK(!strcmp(chopin__simd_name(CHOPIN__SIMD_SCALAR), "scalar"));
    CHECK(!strcmp(chopin__simd_name(CHOPIN__SIMD_SSE2), "sse2"));
    CHECK(!strcmp(chopin__simd_name(CHOPIN__SIMD_AVX2), "avx2"));
    CHECK(!strcmp(chopin__simd_name(CHOPIN__SIMD_AUTO), "auto"));
    enum chopin__simd best = chopin__parser_set_simd(CHOPIN__SIMD_AUTO);
    CHECK(best != CHOPIN__SIMD_AUTO);
    CHECK_INT(chopin__parser_set_simd(CHOPIN__SIMD_SCALAR), CHOPIN__SIMD_SCALAR);
    CHECK_INT(chopin__parser_set_simd(CHOPIN__SIMD_AVX2), best);
    chopin__parser_set_simd(level);
}

/* ----------------------------------------------------------------------------------- */

/* A small deterministic generator for the mutation test. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static const char *const seeds[] = {
    "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux "
    "x86_64) AppleWebKit/537.36\r\nAccept: text/html,*/*;q=0.8\r\nConnection: keep-alive\r\n\r\n",
    "POST http://h:8080/upload HTTP/1.1\r\nHost: h\r\nContent-Length: 10, 10\r\nExpect: "
    "100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    "\r\nPUT /x HTTP/1.0\r\nConnection: keep-alive, close\r\nX-Long: "
    "0123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: \r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
};
static const char interesting[] = " \t\r\n:,?/*\x00\x7f\x80\xff" "aZ09-_.";

struct outcome {
    ssize_t r;
    struct chopin__head h;
    struct chopin__header hd[16];
};

static void parse_at(enum chopin__simd lv, const char *b, size_t n, struct outcome *o,
                     const struct chopin__limits *lim)
{
    chopin__parser_set_simd(lv);
    memset(o, 0, sizeof *o);
    o->h.headers = o->hd;
    o->r = chopin__parse_request(b, n, &o->h, lim);
}

static int same_outcome(const struct outcome *a, const struct outcome *b)
{
    if (a->r != b->r) return 0;
    if (a->r < 0) return 1;
    const struct chopin__head *x = &a->h, *y = &b->h;
    if (x->method != y->method || x->target != y->target || x->path != y->path ||
        x->query != y->query || x->host != y->host || x->content_length != y->content_length ||
        x->nheaders != y->nheaders || x->target_len != y->target_len ||
        x->path_len != y->path_len || x->query_len != y->query_len ||
        x->host_len != y->host_len || x->method_len != y->method_len ||
        x->method_id != y->method_id || x->minor != y->minor || x->body_kind != y->body_kind ||
        x->keep_alive != y->keep_alive || x->expect_continue != y->expect_continue ||
        x->upgrade != y->upgrade)
        return 0;
    for (uint32_t i = 0; i < x->nheaders; i++)
        if (memcmp(&a->hd[i], &b->hd[i], sizeof a->hd[i])) return 0;
    return 1;
}

/* Random byte changes to valid requests: every SIMD level gives the same outcome, and
 * the prefix rule holds. The guard page sits right after each input. */
static void test_mutations(void)
{
    name_case("mutations");
    static const enum chopin__simd lv[] = {CHOPIN__SIMD_SCALAR, CHOPIN__SIMD_SSE2,
                                           CHOPIN__SIMD_AVX2};
    const struct chopin__limits lim = {96, 200, 6};
    char buf[512];
    int failures = 0;
    for (int iter = 0; iter < 3000 && failures < 5; iter++) {
        const char *s = seeds[rng() % (sizeof seeds / sizeof seeds[0])];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int edits = 1 + (int)(rng() % 3);
        for (int e = 0; e < edits; e++) {
            size_t at = rng() % n;
            switch (rng() % 3) {
            case 0:
                buf[at] = interesting[rng() % (sizeof interesting - 1)];
                break;
            case 1:
                buf[at] = (char)rng();
                break;
            default: /* delete a byte */
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
                break;
            }
        }
        const char *b = place(buf, n);
        struct outcome ref, o;
        parse_at(lv[0], b, n, &ref, &lim);
        for (size_t l = 1; l < 3; l++) {
            if (chopin__parser_set_simd(lv[l]) != lv[l]) continue;
            parse_at(lv[l], b, n, &o, &lim);
            if (!same_outcome(&ref, &o)) {
                fprintf(stderr, "  %s disagrees on \"%s\": %zd vs %zd\n",
                        chopin__simd_name(lv[l]), visible(buf), o.r, ref.r);
                CHECK(0);
                failures++;
            }
        }
        for (size_t k = 0; k < n; k++) {
            const char *bk = place(buf, k);
            parse_at(level, bk, k, &o, &lim);
            int ok = o.r == CHOPIN__PARSE_INCOMPLETE ||
                     (ref.r < 0 ? o.r == ref.r : (size_t)ref.r <= k && o.r == ref.r);
            if (!ok) {
                fprintf(stderr, "  prefix %zu of \"%s\": %zd, whole %zd\n", k, visible(buf),
                        o.r, ref.r);
                CHECK(0);
                failures++;
                break;
            }
        }
    }
    chopin__parser_set_simd(level);
}

int main(void)
{
    static const enum chopin__simd levels[] = {CHOPIN__SIMD_SCALAR, CHOPIN__SIMD_SSE2,
                                               CHOPIN__SIMD_AVX2};
    guard_init();
    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
        level = levels[l];
        if (chopin__parser_set_simd(level) != level) {
            printf("# SIMD level %s not available, skipped\n", chopin__simd_name(level));
            continue;
        }
        for (cur_case = 0; cur_case < ncases; cur_case++) RUN(test_table_case);
        RUN(test_fields_basic);
        RUN(test_method_ids);
        RUN(test_targets);
        RUN(test_version_and_host);
        RUN(test_host_bytes);
        RUN(test_keep_alive);
        RUN(test_upgrade_expect);
        RUN(test_framing);
        RUN(test_value_trim);
        RUN(test_leading_empty_lines);
        RUN(test_limits);
        RUN(test_pipelined);
        RUN(test_simd_names);
        RUN(test_chars);
        RUN(test_mutations);
    }
    chopin__parser_set_simd(CHOPIN__SIMD_AUTO);
    TEST_END();
}
