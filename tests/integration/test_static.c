/* SPDX-License-Identifier: MIT */
/*
 * Static directories over real sockets (issue 15): nothing outside the root is ever
 * served (a traversal corpus, links out and in loops, a directory swapped for a link
 * between requests), the conditional matrix of RFC 9110 §13.2.2 and the range matrix,
 * every body checked byte for byte (multipart answers parsed back), precompressed
 * siblings, listings, the open-file cache's revalidation, and a file that shrinks while
 * it is sent. Runs once per backend (CHOPIN_BACKEND).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

#define BIG_SIZE (300 * 1024) /* beyond memory_max: sent from its descriptor */
#define SHRINK_SIZE (64u << 20)

static char dir[256], root[300], outside[300];
static int port, workers;
static char *big; /* BIG_SIZE bytes of root/big.bin */
static const char HELLO[] = "hello, static world\n";
static const char SECRET[] = "TOP SECRET";

/* ---- fixture ----------------------------------------------------------------------- */

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        perror(path);
        exit(2);
    }
    close(fd);
}

static void at(char *out, size_t cap, const char *base, const char *rel)
{
    snprintf(out, cap, "%s/%s", base, rel);
}

static void put(const char *base, const char *rel, const char *text)
{
    char p[512];
    at(p, sizeof p, base, rel);
    write_file(p, text, strlen(text));
}

static void mkdir_in(const char *base, const char *rel)
{
    char p[512];
    at(p, sizeof p, base, rel);
    mkdir(p, 0755);
}

static void link_in(const char *target, const char *rel)
{
    char p[512];
    at(p, sizeof p, root, rel);
    if (symlink(target, p) < 0) {
        perror(p);
        exit(2);
    }
}

static void make_tree(void)
{
    snprintf(dir, sizeof dir, "/tmp/chopin-static-XXXXXX");
    if (!mkdtemp(dir))
        exit(2);
    snprintf(root, sizeof root, "%s/root", dir);
    snprintf(outside, sizeof outside, "%s/outside", dir);
    mkdir(root, 0755);
    mkdir(outside, 0755);
    put(outside, "secret.txt", SECRET);
    put(outside, "f.txt", SECRET);
    put(dir, "secret.txt", SECRET);
    put(root, "hello.txt", HELLO);
    put(root, ".secret", SECRET);
    put(root, "empty.txt", "");
    mkdir_in(root, "sub");
    put(root, "sub/index.html", "<p>sub index</p>\n");
    put(root, "sub/a.txt", "in sub\n");
    mkdir_in(root, "nolist");
    put(root, "nolist/x.txt", "x\n");
    put(root, "nolist/<b>&amp.txt", "escaped\n");
    put(root, "nolist/.hidden", SECRET);
    mkdir_in(root, "nolist/deeper");
    mkdir_in(root, "evil.example");
    mkdir_in(root, "swap");
    put(root, "swap/f.txt", "inside\n");
    mkdir_in(root, "swapc");
    put(root, "swapc/f.txt", "inside\n");
    put(root, "app.js", "console.log('identity');\n");
    put(root, "app.js.gz", "GZIP-BYTES");
    put(root, "app.js.br", "BROTLI-BYTES!");
    put(root, "data.txt2", "two\n");
    put(root, "img.png", "\x89PNG");
    link_in("../outside/secret.txt", "link_out");
    link_in("/etc/passwd", "link_abs");
    link_in("hello.txt", "link_in");
    link_in("loop", "loop");
    big = malloc(BIG_SIZE);
    uint32_t x = 12345;
    for (size_t i = 0; i < BIG_SIZE; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (char)(x >> 16);
    }
    char p[512];
    at(p, sizeof p, root, "big.bin");
    write_file(p, big, BIG_SIZE);
}

static void remove_tree(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- requests ---------------------------------------------------------------------- */

/* One request with extra head lines `extra` ("Name: v\r\n"...) on a fresh connection. */
static int request(const char *method, const char *target, const char *extra, struct cl_resp *r)
{
    struct cl_conn *c = cl_open(port);
    if (!c)
        return -1;
    char req[4096];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n", method, target,
             extra ? extra : "");
    int head = strcmp(method, "HEAD") == 0;
    int status = cl_send(c, req, 0) == 0 && cl_read(c, r, head) == 0 ? r->status : -1;
    cl_close(c);
    return status;
}

static int get(const char *target, const char *extra, struct cl_resp *r)
{
    return request("GET", target, extra, r);
}

static int header_is(const struct cl_resp *r, const char *name, const char *want)
{
    char v[512];
    if (cl_header(r, name, v, sizeof v) != 0) {
        fprintf(stderr, "  no %s header\n", name);
        return 0;
    }
    if (strcmp(v, want)) {
        fprintf(stderr, "  %s: \"%s\", expected \"%s\"\n", name, v, want);
        return 0;
    }
    return 1;
}

static int has_header(const struct cl_resp *r, const char *name)
{
    char v[512];
    return cl_header(r, name, v, sizeof v) == 0;
}

static int body_is(const struct cl_resp *r, const void *want, size_t len)
{
    return r->body_len == len && memcmp(r->body, want, len) == 0;
}

static void header_value(const struct cl_resp *r, const char *name, char *out, size_t cap)
{
    if (cl_header(r, name, out, cap) != 0)
        out[0] = '\0';
}

/* ---- files ------------------------------------------------------------------------- */

static void test_small_file_byte_for_byte(void)
{
    struct cl_resp r;
    for (int i = 0; i < 3; i++) { /* cold, then from the cache */
        CHECK_INT(get("/s/hello.txt", NULL, &r), 200);
        CHECK(body_is(&r, HELLO, sizeof HELLO - 1));
        CHECK(header_is(&r, "Content-Type", "text/plain; charset=utf-8"));
        CHECK(header_is(&r, "X-Content-Type-Options", "nosniff"));
        CHECK(header_is(&r, "Accept-Ranges", "bytes"));
        CHECK(has_header(&r, "ETag"));
        CHECK(has_header(&r, "Last-Modified"));
        CHECK(!has_header(&r, "Vary"));
        cl_resp_free(&r);
    }
    CHECK_INT(get("/s/empty.txt", NULL, &r), 200);
    CHECK_INT(r.body_len, 0);
    cl_resp_free(&r);
}

static void test_large_file_byte_for_byte(void)
{
    struct cl_resp r;
    for (int i = 0; i < 2; i++) {
        CHECK_INT(get("/s/big.bin", NULL, &r), 200);
        CHECK(body_is(&r, big, BIG_SIZE));
        CHECK(header_is(&r, "Content-Type", "application/octet-stream"));
        cl_resp_free(&r);
    }
    /* HEAD: the same head, no body. */
    CHECK_INT(request("HEAD", "/s/big.bin", NULL, &r), 200);
    CHECK(header_is(&r, "Content-Length", "307200"));
    CHECK_INT(r.body_len, 0);
    cl_resp_free(&r);
    CHECK_INT(request("HEAD", "/s/hello.txt", NULL, &r), 200);
    CHECK(header_is(&r, "Content-Length", "20"));
    cl_resp_free(&r);
}

static void test_mime_types(void)
{
    struct cl_resp r;
    CHECK_INT(get("/s/img.png", NULL, &r), 200);
    CHECK(header_is(&r, "Content-Type", "image/png"));
    cl_resp_free(&r);
    CHECK_INT(get("/s/data.txt2", NULL, &r), 200); /* chopin_static_mime, charset added */
    CHECK(header_is(&r, "Content-Type", "text/x-two; charset=utf-8"));
    cl_resp_free(&r);
    CHECK_INT(get("/s/app.js", NULL, &r), 200);
    CHECK(header_is(&r, "Content-Type", "text/javascript; charset=utf-8"));
    cl_resp_free(&r);
}

static void test_other_methods_405(void)
{
    struct cl_resp r;
    CHECK_INT(request("POST", "/s/hello.txt", "Content-Length: 0\r\n", &r), 405);
    cl_resp_free(&r);
    CHECK_INT(request("DELETE", "/s/hello.txt", NULL, &r), 405);
    cl_resp_free(&r);
}

/* ---- confinement ------------------------------------------------------------------- */

/* Every spelling of a way out: never a 200, never the secret's bytes. */
static void test_traversal_corpus(void)
{
    static const char *const targets[] = {
        "/s/../secret.txt",
        "/s/../outside/secret.txt",
        "/s/%2e%2e/outside/secret.txt",
        "/s/%2E%2E/%2E%2E/secret.txt",
        "/s/.%2e/outside/secret.txt",
        "/s/%252e%252e/outside/secret.txt",      /* double-encoded: decoded once only */
        "/s/%252e%252e%252foutside%252fsecret.txt",
        "/s/..%2foutside%2fsecret.txt",
        "/s/..%2Foutside/secret.txt",
        "/s/sub/..%2f..%2foutside/secret.txt",
        "/s/%c0%ae%c0%ae/outside/secret.txt",     /* overlong UTF-8 '.' */
        "/s/%c0%ae%c0%ae%c0%afoutside%c0%afsecret.txt",
        "/s/%e0%80%ae%e0%80%ae/outside/secret.txt",
        "/s/..%5coutside%5csecret.txt",           /* backslash */
        "/s/..\\outside\\secret.txt",
        "/s/sub%5c..%5c..%5csecret.txt",
        "/s/hello.txt%00.png",                    /* NUL */
        "/s/%00",
        "/s/link_out",                            /* symlink out of the root */
        "/s/link_abs",
        "/s/loop",                                /* symlink loop */
        "/s/link_in",                             /* even a link that stays inside */
        "/s/.secret",                             /* dot-files hidden */
        "/s/nolist/.hidden",
        "/s/%2esecret",
        "/s//..//outside/secret.txt",
        "/s/sub/../../outside/secret.txt",
        "/s/./../outside/secret.txt",
        "http://t/s/../outside/secret.txt",
        "/s/" "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/n/../outside/secret.txt",
        "/n/link_out",
        "/n/loop",
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        struct cl_resp r;
        int st = get(targets[i], NULL, &r);
        if (st == 200 || st < 400 || (r.body && (strstr(r.body, SECRET) || strstr(r.body, "root:")))) {
            fprintf(stderr, "  %s: %d (%.40s)\n", targets[i], st, r.body ? r.body : "");
            test_case_failed = 1;
        }
        if (st >= 0)
            cl_resp_free(&r);
    }
}

/* A directory replaced by a link out of the root between two requests: the uncached
 * mount refuses at once, the cached one at its next revalidation; neither ever serves the
 * file outside. */
static void swap_dir_for_link(const char *name)
{
    char from[512], to[520];
    at(from, sizeof from, root, name);
    snprintf(to, sizeof to, "%s.old", from);
    if (rename(from, to) < 0 || symlink(outside, from) < 0)
        perror("swap");
}

static void test_directory_swapped_for_link(void)
{
    struct cl_resp r;
    CHECK_INT(get("/n/swap/f.txt", NULL, &r), 200);
    CHECK(body_is(&r, "inside\n", 7));
    cl_resp_free(&r);
    swap_dir_for_link("swap");
    CHECK_INT(get("/n/swap/f.txt", NULL, &r), 404);
    CHECK(!strstr(r.body, SECRET));
    cl_resp_free(&r);

    CHECK_INT(get("/s/swapc/f.txt", NULL, &r), 200);
    cl_resp_free(&r);
    swap_dir_for_link("swapc");
    for (int i = 0; i < 2; i++) {
        int st = get("/s/swapc/f.txt", NULL, &r);
        CHECK(st == 404 || (st == 200 && body_is(&r, "inside\n", 7)));
        cl_resp_free(&r);
        if (i == 0)
            usleep(1100 * 1000); /* past the cache's validity: resolved again */
    }
    CHECK_INT(get("/s/swapc/f.txt", NULL, &r), 404);
    cl_resp_free(&r);
}

/* ---- directories ------------------------------------------------------------------- */

static void test_index_and_redirects(void)
{
    struct cl_resp r;
    CHECK_INT(get("/s/sub/", NULL, &r), 200);
    CHECK(body_is(&r, "<p>sub index</p>\n", 17));
    CHECK(header_is(&r, "Content-Type", "text/html; charset=utf-8"));
    cl_resp_free(&r);
    CHECK_INT(get("/s/sub", NULL, &r), 301);
    CHECK(header_is(&r, "Location", "/s/sub/"));
    cl_resp_free(&r);
    CHECK_INT(get("/s/sub?x=1&y", NULL, &r), 301);
    CHECK(header_is(&r, "Location", "/s/sub/?x=1&y"));
    cl_resp_free(&r);
    CHECK_INT(get("/s", NULL, &r), 301);
    CHECK(header_is(&r, "Location", "/s/"));
    cl_resp_free(&r);
    /* Never a Location of "//host/...", which a browser would take to another site. */
    CHECK_INT(get("//evil.example", NULL, &r), 301); /* the mount on "/" */
    CHECK(header_is(&r, "Location", "/evil.example/"));
    cl_resp_free(&r);
    CHECK_INT(get("/s//sub", NULL, &r), 301);
    CHECK(header_is(&r, "Location", "/s//sub/"));
    cl_resp_free(&r);
    CHECK_INT(get("/s/hello.txt/", NULL, &r), 404); /* a file is not a directory */
    cl_resp_free(&r);
}

static void test_listing(void)
{
    struct cl_resp r;
    CHECK_INT(get("/s/nolist/", NULL, &r), 403); /* off by default */
    cl_resp_free(&r);
    CHECK_INT(get("/n/nolist/", NULL, &r), 200);
    CHECK(header_is(&r, "Content-Type", "text/html; charset=utf-8"));
    const char *b = r.body;
    const char *esc = strstr(b, "<a href=\"%3Cb%3E%26amp.txt\">&lt;b&gt;&amp;amp.txt</a>");
    const char *deeper = strstr(b, "<a href=\"deeper/\">deeper/</a>");
    const char *x = strstr(b, "<a href=\"x.txt\">x.txt</a>");
    CHECK(esc && deeper && x);
    CHECK(esc < deeper && deeper < x); /* sorted bytewise */
    CHECK(!strstr(b, ".hidden"));
    CHECK(!strstr(b, "<b>"));
    cl_resp_free(&r);
}

/* ---- conditionals ------------------------------------------------------------------ */

static void test_conditional_matrix(void)
{
    struct cl_resp r;
    char etag[128], lm[64], h[512];
    CHECK_INT(get("/s/hello.txt", NULL, &r), 200);
    header_value(&r, "ETag", etag, sizeof etag);
    header_value(&r, "Last-Modified", lm, sizeof lm);
    cl_resp_free(&r);
    CHECK(etag[0] == '"');
    struct {
        const char *fmt; /* %s: the ETag, then Last-Modified where named */
        int use_lm;
        int want;
    } cases[] = {
        {"If-None-Match: %s\r\n", 0, 304},
        {"If-None-Match: \"other\", %s\r\n", 0, 304},
        {"If-None-Match: W/%s\r\n", 0, 304},            /* weak comparison */
        {"If-None-Match: *\r\n", 0, 304},
        {"If-None-Match: \"other\"\r\n", 0, 200},
        {"If-Modified-Since: %s\r\n", 1, 304},
        {"If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n", 0, 200},
        {"If-Modified-Since: not a date\r\n", 0, 200},
        {"If-None-Match: \"other\"\r\nIf-Modified-Since: %s\r\n", 1, 200}, /* INM wins */
        {"If-Match: %s\r\n", 0, 200},
        {"If-Match: *\r\n", 0, 200},
        {"If-Match: \"other\"\r\n", 0, 412},
        {"If-Match: W/%s\r\n", 0, 412},                 /* strong comparison */
        {"If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n", 0, 412},
        {"If-Unmodified-Since: %s\r\n", 1, 200},
        {"If-Match: %s\r\nIf-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n", 0, 200},
        {"If-Match: \"other\"\r\nIf-None-Match: %s\r\n", 0, 412},  /* step 1 first */
        {"If-Match: %s\r\nIf-None-Match: %s\r\n", 2, 304},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].use_lm == 2)
            snprintf(h, sizeof h, cases[i].fmt, etag, etag);
        else
            snprintf(h, sizeof h, cases[i].fmt, cases[i].use_lm ? lm : etag);
        int st = get("/s/hello.txt", h, &r);
        if (st != cases[i].want) {
            fprintf(stderr, "  [%s]: %d, expected %d\n", h, st, cases[i].want);
            test_case_failed = 1;
        }
        if (st == 304) {
            CHECK_INT(r.body_len, 0);
            CHECK(header_is(&r, "ETag", etag));
            CHECK(header_is(&r, "Last-Modified", lm));
            CHECK(!has_header(&r, "Content-Length"));
        }
        if (st == 200)
            CHECK(body_is(&r, HELLO, sizeof HELLO - 1));
        if (st >= 0)
            cl_resp_free(&r);
    }
    snprintf(h, sizeof h, "If-None-Match: %s\r\n", etag);
    CHECK_INT(request("HEAD", "/s/hello.txt", h, &r), 304);
    cl_resp_free(&r);
    CHECK_INT(get("/p/app.js", "If-None-Match: *\r\n", &r), 304); /* with Cache-Control */
    CHECK(header_is(&r, "Cache-Control", "public, max-age=60"));
    CHECK(header_is(&r, "Vary", "Accept-Encoding"));
    cl_resp_free(&r);
}

/* ---- ranges ------------------------------------------------------------------------ */

struct part {
    uint64_t first, last, len;
    const char *data;
    size_t data_len;
};

/* Splits a multipart/byteranges body (RFC 9110 §14.6) into its parts; their count, or -1
 * when it does not parse. */
static int parse_multipart(const struct cl_resp *r, struct part *parts, int max, const char *type)
{
    char ct[256];
    header_value(r, "Content-Type", ct, sizeof ct);
    const char *b = strstr(ct, "boundary=");
    if (strncmp(ct, "multipart/byteranges; ", 22) || !b)
        return -1;
    char delim[128];
    snprintf(delim, sizeof delim, "\r\n--%s", b + 9);
    size_t dl = strlen(delim);
    const char *p = r->body, *end = r->body + r->body_len;
    int n = 0;
    for (;;) {
        const char *d = memmem(p, (size_t)(end - p), delim, dl);
        if (!d)
            return -1;
        p = d + dl;
        if (end - p >= 4 && memcmp(p, "--\r\n", 4) == 0)
            return p + 4 == end ? n : -1;
        if (n == max)
            return -1;
        const char *head_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!head_end)
            return -1;
        char head[512];
        snprintf(head, sizeof head, "%.*s", (int)(head_end - p), p);
        char want_ct[128];
        snprintf(want_ct, sizeof want_ct, "\r\nContent-Type: %s\r\n", type);
        const char *cr = strstr(head, "Content-Range: bytes ");
        if (!strstr(head, want_ct) || !cr ||
            sscanf(cr + 21, "%lu-%lu/%lu", &parts[n].first, &parts[n].last, &parts[n].len) != 3)
            return -1;
        parts[n].data = head_end + 4;
        parts[n].data_len = parts[n].last - parts[n].first + 1;
        if (parts[n].data + parts[n].data_len > end)
            return -1;
        p = parts[n].data + parts[n].data_len;
        n++;
    }
}

struct range_case {
    const char *range;
    int want;
    const char *content_range; /* 206 single, 416 */
    const char *parts;         /* "a-b,c-d" for multipart */
};

static void check_range(const char *target, const char *file, size_t size, const char *type,
                        const struct range_case *c)
{
    char h[1024];
    struct cl_resp r;
    snprintf(h, sizeof h, "Range: %s\r\n", c->range);
    int st = get(target, h, &r);
    if (st != c->want) {
        fprintf(stderr, "  %s [%s]: %d, expected %d\n", target, c->range, st, c->want);
        test_case_failed = 1;
        if (st >= 0)
            cl_resp_free(&r);
        return;
    }
    if (st == 200)
        CHECK(body_is(&r, file, size));
    if (st == 416 || (st == 206 && !c->parts))
        CHECK(header_is(&r, "Content-Range", c->content_range));
    if (st == 206 && !c->parts) {
        uint64_t a, b;
        sscanf(c->content_range, "bytes %lu-%lu", &a, &b);
        CHECK(body_is(&r, file + a, b - a + 1));
    }
    if (st == 206 && c->parts) {
        struct part parts[32];
        int n = parse_multipart(&r, parts, 32, type);
        char got[256] = "";
        size_t len = 0;
        for (int i = 0; i < n; i++) {
            len += (size_t)snprintf(got + len, sizeof got - len, "%s%lu-%lu", i ? "," : "",
                                    parts[i].first, parts[i].last);
            CHECK_INT(parts[i].len, size);
            CHECK(memcmp(parts[i].data, file + parts[i].first, parts[i].data_len) == 0);
        }
        if (n < 0 || strcmp(got, c->parts)) {
            fprintf(stderr, "  %s [%s]: parts %s (%d), expected %s\n", target, c->range, got, n,
                    c->parts);
            test_case_failed = 1;
        }
    }
    cl_resp_free(&r);
}

static void test_range_matrix(void)
{
    static const struct range_case small[] = {
        {"bytes=0-4", 206, "bytes 0-4/20", NULL},
        {"bytes=7-", 206, "bytes 7-19/20", NULL},
        {"bytes=-6", 206, "bytes 14-19/20", NULL},
        {"bytes=-100", 206, "bytes 0-19/20", NULL},
        {"bytes=19-19", 206, "bytes 19-19/20", NULL},
        {"bytes=5-1000", 206, "bytes 5-19/20", NULL},
        {"bytes=20-", 416, "bytes */20", NULL},
        {"bytes=-0", 416, "bytes */20", NULL},
        {"bytes=30-40,50-60", 416, "bytes */20", NULL},
        {"bytes=0-1,30-40", 206, "bytes 0-1/20", NULL}, /* one satisfiable: single part */
        {"bytes=5-2", 200, NULL, NULL},                 /* invalid: ignored */
        {"lines=1-2", 200, NULL, NULL},
        {"bytes=0-4,3-6", 200, NULL, NULL},             /* overlapping: whole file */
        {"bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8,9-9,10-10,11-11,12-12,13-13,14-14,15-15,"
         "16-16", 200, NULL, NULL},                      /* 17 > max_ranges 16 */
        {"bytes=0-1,4-5", 206, NULL, "0-1,4-5"},
        {"bytes=10-, 0-0 ,-2", 206, NULL, NULL},        /* overlaps: -2 within 10- */
        {"bytes=0-0,2-3,-1", 206, NULL, "0-0,2-3,19-19"},
    };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        if (i == 15) { /* "10-, 0-0, -2": 10-19 and 18-19 overlap */
            struct range_case c = small[i];
            c.want = 200;
            check_range("/s/hello.txt", HELLO, sizeof HELLO - 1, "text/plain; charset=utf-8", &c);
            continue;
        }
        check_range("/s/hello.txt", HELLO, sizeof HELLO - 1, "text/plain; charset=utf-8",
                    &small[i]);
    }
    static const struct range_case large[] = {
        {"bytes=1000-1999", 206, "bytes 1000-1999/307200", NULL},
        {"bytes=-70000", 206, "bytes 237200-307199/307200", NULL},
        {"bytes=0-99999,200000-300000,307000-", 206, NULL, "0-99999,200000-300000,307000-307199"},
    };
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++)
        check_range("/s/big.bin", big, BIG_SIZE, "application/octet-stream", &large[i]);
    struct cl_resp r;
    CHECK_INT(request("HEAD", "/s/hello.txt", "Range: bytes=0-1\r\n", &r), 200); /* GET only */
    cl_resp_free(&r);
}

static void test_if_range(void)
{
    struct cl_resp r;
    char etag[128], lm[64], h[512];
    CHECK_INT(get("/s/hello.txt", NULL, &r), 200);
    header_value(&r, "ETag", etag, sizeof etag);
    header_value(&r, "Last-Modified", lm, sizeof lm);
    cl_resp_free(&r);
    snprintf(h, sizeof h, "Range: bytes=0-4\r\nIf-Range: %s\r\n", etag);
    CHECK_INT(get("/s/hello.txt", h, &r), 206);
    CHECK(body_is(&r, "hello", 5));
    cl_resp_free(&r);
    snprintf(h, sizeof h, "Range: bytes=0-4\r\nIf-Range: %s\r\n", lm);
    CHECK_INT(get("/s/hello.txt", h, &r), 206);
    cl_resp_free(&r);
    CHECK_INT(get("/s/hello.txt", "Range: bytes=0-4\r\nIf-Range: \"stale\"\r\n", &r), 200);
    CHECK(body_is(&r, HELLO, sizeof HELLO - 1));
    cl_resp_free(&r);
    snprintf(h, sizeof h, "Range: bytes=0-4\r\nIf-Range: W/%s\r\n", etag);
    CHECK_INT(get("/s/hello.txt", h, &r), 200);
    cl_resp_free(&r);
    CHECK_INT(get("/s/hello.txt",
                  "Range: bytes=0-4\r\nIf-Range: Thu, 01 Jan 1970 00:00:00 GMT\r\n", &r), 200);
    cl_resp_free(&r);
}

/* ---- precompressed siblings -------------------------------------------------------- */

static void test_precompressed(void)
{
    struct cl_resp r;
    char identity[128], gz[128], br[128];
    CHECK_INT(get("/p/app.js", NULL, &r), 200);
    CHECK(body_is(&r, "console.log('identity');\n", 25));
    CHECK(header_is(&r, "Vary", "Accept-Encoding"));
    CHECK(!has_header(&r, "Content-Encoding"));
    header_value(&r, "ETag", identity, sizeof identity);
    cl_resp_free(&r);
    CHECK_INT(get("/p/app.js", "Accept-Encoding: gzip\r\n", &r), 200);
    CHECK(body_is(&r, "GZIP-BYTES", 10));
    CHECK(header_is(&r, "Content-Encoding", "gzip"));
    CHECK(header_is(&r, "Content-Type", "text/javascript; charset=utf-8"));
    CHECK(header_is(&r, "Content-Length", "10"));
    CHECK(header_is(&r, "Vary", "Accept-Encoding"));
    CHECK(header_is(&r, "Cache-Control", "public, max-age=60"));
    header_value(&r, "ETag", gz, sizeof gz);
    cl_resp_free(&r);
    CHECK_INT(get("/p/app.js", "Accept-Encoding: gzip;q=0.5, br\r\n", &r), 200);
    CHECK(body_is(&r, "BROTLI-BYTES!", 13));
    CHECK(header_is(&r, "Content-Encoding", "br"));
    header_value(&r, "ETag", br, sizeof br);
    cl_resp_free(&r);
    CHECK(strcmp(identity, gz) && strcmp(identity, br) && strcmp(gz, br));
    CHECK_INT(get("/p/app.js", "Accept-Encoding: gzip;q=0, br;q=0\r\n", &r), 200);
    CHECK(body_is(&r, "console.log('identity');\n", 25));
    cl_resp_free(&r);
    CHECK_INT(get("/p/app.js", "Accept-Encoding: zstd\r\n", &r), 200); /* none on disk */
    CHECK(!has_header(&r, "Content-Encoding"));
    cl_resp_free(&r);
    CHECK_INT(get("/p/app.js", "Accept-Encoding: *\r\n", &r), 200);
    CHECK(header_is(&r, "Content-Encoding", "br"));
    cl_resp_free(&r);
    /* A range of the encoded bytes, and the encoded ETag validating. */
    char h[512];
    snprintf(h, sizeof h, "Accept-Encoding: gzip\r\nRange: bytes=0-3\r\nIf-Range: %s\r\n", gz);
    CHECK_INT(get("/p/app.js", h, &r), 206);
    CHECK(body_is(&r, "GZIP", 4));
    cl_resp_free(&r);
    snprintf(h, sizeof h, "Accept-Encoding: gzip\r\nIf-None-Match: %s\r\n", identity);
    CHECK_INT(get("/p/app.js", h, &r), 200);
    cl_resp_free(&r);
    CHECK_INT(get("/s/app.js", "Accept-Encoding: gzip\r\n", &r), 200); /* off on /s */
    CHECK(!has_header(&r, "Content-Encoding"));
    CHECK(!has_header(&r, "Vary"));
    cl_resp_free(&r);
}

/* ---- the cache --------------------------------------------------------------------- */

/* A changed file is served as it now is once the cache's second has passed; meanwhile
 * whatever is served is one consistent version (length, ETag and bytes together). */
static void test_cache_revalidates(void)
{
    struct cl_resp r;
    char etag1[128], etag2[128];
    put(root, "changing.txt", "version one\n");
    CHECK_INT(get("/s/changing.txt", NULL, &r), 200);
    CHECK(body_is(&r, "version one\n", 12));
    header_value(&r, "ETag", etag1, sizeof etag1);
    cl_resp_free(&r);
    put(root, "changing.txt", "version two, longer\n");
    CHECK_INT(get("/s/changing.txt", NULL, &r), 200);
    CHECK(body_is(&r, "version one\n", 12) || body_is(&r, "version two, longer\n", 20));
    cl_resp_free(&r);
    usleep(1100 * 1000);
    CHECK_INT(get("/s/changing.txt", NULL, &r), 200);
    CHECK(body_is(&r, "version two, longer\n", 20));
    header_value(&r, "ETag", etag2, sizeof etag2);
    cl_resp_free(&r);
    CHECK(strcmp(etag1, etag2) != 0);
    char p[512];
    at(p, sizeof p, root, "changing.txt");
    unlink(p);
    usleep(1100 * 1000);
    CHECK_INT(get("/s/changing.txt", NULL, &r), 404);
    cl_resp_free(&r);
}

/* ---- a file that shrinks while it is sent ------------------------------------------ */

static void test_file_shrinking_mid_send_ends_connection(void)
{
    char p[512];
    at(p, sizeof p, root, "shrink.bin");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, SHRINK_SIZE) < 0) {
        CHECK(0);
        return;
    }
    close(fd);
    struct cl_conn *c = cl_open(port);
    if (!c) {
        CHECK(0);
        return;
    }
    cl_send(c, "GET /s/shrink.bin HTTP/1.1\r\nHost: t\r\n\r\n", 0);
    char buf[65536];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    CHECK(n > 0 && memmem(buf, (size_t)n, "Content-Length: 67108864", 24));
    if (truncate(p, 1 << 20) < 0)
        CHECK(0);
    /* 64 MiB is far more than the socket buffers hold: most of it is still to be sent. */
    uint64_t total = (uint64_t)(n > 0 ? n : 0);
    int closed = 0;
    for (;;) {
        n = recv(c->fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            closed = 1;
            break;
        }
        if (n < 0)
            break; /* the 5 s timeout: the server hung instead of closing */
        total += (uint64_t)n;
    }
    CHECK(closed);
    CHECK(total < SHRINK_SIZE);
    cl_close(c);
    unlink(p);
    /* The server goes on serving. */
    struct cl_resp r;
    CHECK_INT(get("/s/hello.txt", NULL, &r), 200);
    cl_resp_free(&r);
}

/* ---- API --------------------------------------------------------------------------- */

/* ---- one descriptor for every answer of a file ------------------------------------------ */

/* Descriptors of this process (the server runs in it) open on `path`. */
static int fds_on(const char *path)
{
    char link[300], target[600];
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));) {
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(link, target, sizeof target - 1);
        if (k > 0) {
            target[k] = '\0';
            n += strcmp(target, path) == 0;
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* Downloads of one large file that stall hold the cache's descriptor by reference, not a
 * duplicate each: 16 clients that stop reading keep one descriptor per worker open on it
 * (and a thousand would not run the process out of descriptors). */
static void test_stalled_downloads_share_one_descriptor(void)
{
    char p[512];
    at(p, sizeof p, root, "shared.bin");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, SHRINK_SIZE) < 0) {
        CHECK(0);
        return;
    }
    close(fd);
    enum { CLIENTS = 16 };
    struct cl_conn *c[CLIENTS];
    char buf[4096];
    int started = 0;
    for (int i = 0; i < CLIENTS; i++) {
        c[i] = cl_open(port);
        if (!c[i])
            continue;
        cl_send(c[i], "GET /s/shared.bin HTTP/1.1\r\nHost: t\r\n\r\n", 0);
        /* its answer has begun: the server holds what it sends from */
        ssize_t n = recv(c[i]->fd, buf, sizeof buf, 0);
        started += n > 0 && memmem(buf, (size_t)n, "200 OK", 6) != NULL;
    }
    CHECK_INT(started, CLIENTS);
    int held = fds_on(p);
    CHECK(held >= 1 && held <= workers);
    for (int i = 0; i < CLIENTS; i++)
        if (c[i])
            cl_close(c[i]);
    unlink(p);
}

static void test_api_errors(void)
{
    chopin_static *st = (chopin_static *)1;
    CHECK_INT(chopin_static_new(NULL, NULL, &st), CHOPIN_EINVAL);
    CHECK(st == NULL);
    CHECK_INT(chopin_static_new("/nonexistent-chopin", NULL, &st), CHOPIN_ENOENT);
    CHECK_INT(chopin_static_new("/etc/passwd", NULL, &st), CHOPIN_ENOTDIR);
    chopin_static_options o = CHOPIN_STATIC_OPTIONS_INIT;
    o.index = "../x";
    CHECK_INT(chopin_static_new(root, &o, &st), CHOPIN_EINVAL);
    o.index = NULL;
    o.cache_control = "a\r\nb";
    CHECK_INT(chopin_static_new(root, &o, &st), CHOPIN_EINVAL);
    o.cache_control = NULL;
    o.size = 0;
    CHECK_INT(chopin_static_new(root, &o, &st), CHOPIN_EINVAL);
    CHECK_INT(chopin_static_new(root, NULL, &st), 0);
    CHECK_INT(chopin_static_mime(st, ".x", "text/plain"), CHOPIN_EINVAL);
    CHECK_INT(chopin_static_mime(st, "x", "a\nb"), CHOPIN_EINVAL);
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_static(r, "nope", st), CHOPIN_EINVAL);
    CHECK_INT(chopin_router_static(r, "/a", st), 0);
    CHECK_INT(chopin_router_static(r, "/a", st), CHOPIN_EEXIST);
    chopin_router_free(r);
    chopin_static_free(st);
    chopin_static_free(NULL);
}

int main(void)
{
    make_tree();
    chopin_static_options so = CHOPIN_STATIC_OPTIONS_INIT;
    chopin_static *st = NULL, *uncached = NULL, *pre = NULL;
    if (chopin_static_new(root, &so, &st) < 0 || chopin_static_mime(st, "txt2", "text/x-two") < 0)
        return 2;
    so.cache_entries = CHOPIN_STATIC_NO_CACHE;
    so.flags = CHOPIN_STATIC_LISTING;
    if (chopin_static_new(root, &so, &uncached) < 0)
        return 2;
    chopin_static_options po = CHOPIN_STATIC_OPTIONS_INIT;
    po.flags = CHOPIN_STATIC_PRECOMPRESSED;
    po.cache_control = "public, max-age=60";
    if (chopin_static_new(root, &po, &pre) < 0)
        return 2;
    chopin_router *r = chopin_router_new();
    if (chopin_router_static(r, "/s", st) || chopin_router_static(r, "/n/", uncached) ||
        chopin_router_static(r, "/p", pre) || chopin_router_static(r, "/", uncached))
        return 2;
    chopin_server *s = cl_start(r, NULL);
    if (!s)
        return 2;
    port = chopin_server_port(s);
    workers = chopin_server_workers(s);
    RUN(test_small_file_byte_for_byte);
    RUN(test_large_file_byte_for_byte);
    RUN(test_mime_types);
    RUN(test_other_methods_405);
    RUN(test_traversal_corpus);
    RUN(test_directory_swapped_for_link);
    RUN(test_index_and_redirects);
    RUN(test_listing);
    RUN(test_conditional_matrix);
    RUN(test_range_matrix);
    RUN(test_if_range);
    RUN(test_precompressed);
    RUN(test_cache_revalidates);
    RUN(test_file_shrinking_mid_send_ends_connection);
    RUN(test_stalled_downloads_share_one_descriptor);
    RUN(test_api_errors);
    cl_stop(s);
    chopin_router_free(r);
    chopin_static_free(st);
    chopin_static_free(uncached);
    chopin_static_free(pre);
    remove_tree();
    free(big);
    TEST_END();
}
