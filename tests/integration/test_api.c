/* SPDX-License-Identifier: MIT */
/*
 * The application API over real sockets (issue 12): what a handler sets is what the client
 * gets, and the traps a new user fell into stay closed: a 1xx final answer, a borrowed
 * content type, a request path that walks out of a file root, a JSON answer past the
 * arena's limit. Runs once per backend (CHOPIN_BACKEND).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

static int root_fd = -1;
static int interim_result;

/* A handler that tries "100 Continue" as its answer: refused, so it answered nothing and
 * the client gets a 500 instead of waiting forever for a final answer. */
static void interim(chopin_req *req, chopin_res *res, void *data)
{
    interim_result = chopin_res_error(res, 100, NULL);
}

static void files(chopin_req *req, chopin_res *res, void *data)
{
    chopin_str p = chopin_req_param(req, "path");
    chopin_res_file_at(res, root_fd, p.ptr, p.len);
}

/* The content type lives in this frame, which later calls reuse before the head is
 * serialized. */
static void __attribute__((noinline)) typed(chopin_req *req, chopin_res *res, void *data)
{
    char type[64];
    snprintf(type, sizeof type, "text/x-built; v=%d", 42);
    chopin_res_copy(res, 200, type, "ok", 2);
    memset(type, '@', sizeof type);
}

/* 40 MB of JSON against a 17 MiB arena: the handler sees why and answers otherwise. */
static void big_json(chopin_req *req, chopin_res *res, void *data)
{
    static char chunk[2000];
    memset(chunk, 'j', sizeof chunk);
    chopin_json *j = chopin_res_json(res, 200);
    chopin_json_arr_begin(j);
    for (int i = 0; i < 20000; i++)
        chopin_json_strn(j, chunk, sizeof chunk);
    chopin_json_arr_end(j);
    int err = chopin_json_end(j);
    if (err) {
        char msg[96];
        snprintf(msg, sizeof msg, "json: %s", err == CHOPIN_EFBIG ? "too big" : chopin_strerror(err));
        chopin_res_error(res, 507, msg);
    }
}

/* Middleware hands the handler what it found, and edits what the handler produced. */
static const char user_key;

static void auth(chopin_req *req, chopin_res *res, chopin_next *next, void *data)
{
    chopin_str sid = chopin_req_cookie(req, "sid");
    if (!sid.ptr) {
        chopin_res_error(res, 401, NULL);
        return;
    }
    char *user = chopin_req_alloc(req, sid.len + 6);
    snprintf(user, sid.len + 6, "user-%.*s", (int)sid.len, sid.ptr);
    chopin_req_set_data(req, &user_key, user);
    chopin_next_run(next);
    chopin_res_header_set(res, "X-Stage", "after");
    chopin_res_header_remove(res, "X-Internal");
}

static void whoami(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_header_add(res, "X-Stage", "handler");
    chopin_res_header_add(res, "X-Internal", "secret");
    chopin_res_header_set(res, "Content-Type", "text/x-user");
    chopin_res_copy(res, 200, NULL, chopin_req_data(req, &user_key),
                    strlen(chopin_req_data(req, &user_key)));
}

static char dir[] = "/tmp/chopin-api-XXXXXX";

static void make_root(void)
{
    char p[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(p, sizeof p, "%s/root", dir);
    CHECK_INT(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/root/a.txt", dir);
    FILE *f = fopen(p, "w");
    fputs("A file", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/root/sub", dir);
    CHECK_INT(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/root/link", dir);
    CHECK_INT(symlink("/etc/passwd", p), 0);
    snprintf(p, sizeof p, "%s/secret.txt", dir); /* beside the root, not in it */
    f = fopen(p, "w");
    fputs("root:secret", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/root", dir);
    root_fd = chopin_dir_open(p);
    CHECK(root_fd >= 0);
}

static void remove_root(void)
{
    static const char *const names[] = {"root/a.txt", "root/link", "root/sub", "root",
                                        "secret.txt"};
    char p[256];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (unlink(p) < 0)
            rmdir(p);
    }
    rmdir(dir);
    close(root_fd);
}

static int port;

static void test_interim_never_final(void)
{
    struct cl_resp r;
    CHECK_INT(cl_get(port, "/interim", &r), 500);
    CHECK_INT(interim_result, CHOPIN_EINVAL);
    cl_resp_free(&r);
}

static void test_file_root(void)
{
    struct cl_resp r;
    CHECK_INT(cl_get(port, "/files/a.txt", &r), 200);
    CHECK_MEM(r.body, r.body_len, "A file");
    cl_resp_free(&r);

    static const char *const escapes[] = {
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/..%2fsecret.txt",
        "/files/sub/..%2f..%2fsecret.txt",
        "/files/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/files/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/files/%2fetc%2fpasswd",
        "/files/link",
        "/files/sub%5c..%5c..%5csecret.txt",
        "/files/a.txt%00.png",
    };
    for (size_t i = 0; i < sizeof escapes / sizeof *escapes; i++) {
        int st = cl_get(port, escapes[i], &r);
        int leaked = st == 200 || (st >= 0 && r.body && strstr(r.body, "root:"));
        if (leaked || st < 0)
            fprintf(stderr, "  %s: %d %.*s\n", escapes[i], st, st >= 0 ? (int)r.body_len : 0,
                    st >= 0 && r.body ? r.body : "");
        CHECK(!leaked);
        CHECK(st == 404 || st == 400);
        if (st >= 0)
            cl_resp_free(&r);
    }
}

static void test_built_type(void)
{
    struct cl_resp r;
    char type[128];
    CHECK_INT(cl_get(port, "/typed", &r), 200);
    CHECK_INT(cl_header(&r, "Content-Type", type, sizeof type), 0);
    CHECK(strcmp(type, "text/x-built; v=42") == 0);
    cl_resp_free(&r);
}

static void test_big_json(void)
{
    struct cl_resp r;
    CHECK_INT(cl_get(port, "/big.json", &r), 507);
    CHECK_MEM(r.body, r.body_len, "json: too big");
    cl_resp_free(&r);
}

static void test_middleware_data(void)
{
    struct cl_conn *c = cl_open(port);
    struct cl_resp r;
    char v[64];
    CHECK(c != NULL);
    cl_send(c, "GET /me HTTP/1.1\r\nHost: h\r\nCookie: theme=dark; sid=42\r\n\r\n", 0);
    CHECK_INT(cl_read(c, &r, 0), 0);
    CHECK_INT(r.status, 200);
    CHECK_MEM(r.body, r.body_len, "user-42");
    CHECK_INT(cl_header(&r, "Content-Type", v, sizeof v), 0);
    CHECK(strcmp(v, "text/x-user") == 0);
    CHECK_INT(cl_header(&r, "X-Stage", v, sizeof v), 0);
    CHECK(strcmp(v, "after") == 0);
    CHECK(strstr(r.head, "handler") == NULL);
    CHECK(cl_header(&r, "X-Internal", v, sizeof v) != 0);
    cl_resp_free(&r);
    cl_send(c, "GET /me HTTP/1.1\r\nHost: h\r\n\r\n", 0);
    CHECK_INT(cl_read(c, &r, 0), 0);
    CHECK_INT(r.status, 401);
    cl_resp_free(&r);
    cl_close(c);
}

int main(void)
{
    make_root();
    chopin_router *rt = chopin_router_new();
    chopin_router_get(rt, "/interim", interim, NULL);
    chopin_router_get(rt, "/files/*path", files, NULL);
    chopin_router_get(rt, "/typed", typed, NULL);
    chopin_router_get(rt, "/big.json", big_json, NULL);
    chopin_router_get(rt, "/me", whoami, NULL);
    chopin_router_use(rt, "/me", auth, NULL);
    chopin_server *s = cl_start(rt, NULL);
    CHECK(s != NULL);
    if (!s)
        TEST_END();
    port = chopin_server_port(s);
    RUN(test_interim_never_final);
    RUN(test_file_root);
    RUN(test_built_type);
    RUN(test_big_json);
    RUN(test_middleware_data);
    cl_stop(s);
    chopin_router_free(rt);
    remove_root();
    TEST_END();
}
