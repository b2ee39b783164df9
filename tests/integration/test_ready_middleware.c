/* SPDX-License-Identifier: MIT */
/*
 * The ready-made middleware over real sockets (issue 19): CORS (allowed and refused
 * origins, preflights answered without the handler, credentials), Basic authentication
 * (the account, a check callback, malformed credentials), the rate limit (429 with
 * Retry-After once the bucket is empty) and request ids (made, passed through, refused
 * when they could break a header or a log line).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "test.h"

static int port;
static int handled;

static void any(chopin_req *req, chopin_res *res, void *data) {
    (void)data;
    __atomic_add_fetch(&handled, 1, __ATOMIC_SEQ_CST);
    chopin_str user = chopin_req_user(req), id = chopin_req_id(req);
    char body[256];
    int n = snprintf(body, sizeof body, "user=%.*s id=%.*s", (int)user.len,
                     user.ptr ? user.ptr : "", (int)id.len, id.ptr ? id.ptr : "");
    chopin_res_copy(res, 200, "text/plain", body, (size_t)n);
}

static int check_bob(const char *user, size_t ulen, const char *pass, size_t plen, void *arg) {
    (void)arg;
    return ulen == 3 && memcmp(user, "bob", 3) == 0 && plen == 2 && memcmp(pass, "pw", 2) == 0;
}

static const chopin_cors_options cors_listed = {
    .origins = "https://a.example, https://b.example",
    .expose = "X-Total",
    .credentials = 1,
    .max_age = 600,
};
static const chopin_cors_options cors_any = {0};
static const chopin_basic_auth_options admin = {.realm = "admin", .user = "ada",
                                                .password = "s3cret"};
static const chopin_basic_auth_options checked = {.check = check_bob};

/* One request on a new connection; the answer in *r (free it). */
static int ask(const char *req, struct cl_resp *r) {
    struct cl_conn *c = cl_open(port);
    int st = -1;
    if (c && cl_send(c, req, 0) == 0 && cl_read(c, r, 0) == 0)
        st = r->status;
    else
        memset(r, 0, sizeof *r);
    cl_close(c);
    return st;
}

static void header_is(const struct cl_resp *r, const char *name, const char *want) {
    char v[256] = "";
    int found = cl_header(r, name, v, sizeof v) == 0;
    if (!want) {
        if (found)
            fprintf(stderr, "  %s: \"%s\", expected none\n", name, v);
        CHECK(!found);
        return;
    }
    if (!found || strcmp(v, want) != 0)
        fprintf(stderr, "  %s: \"%s\", expected \"%s\"\n", name, found ? v : "(none)", want);
    CHECK(found && strcmp(v, want) == 0);
}

static void test_cors(void) {
    struct cl_resp r;
    CHECK_INT(ask("GET /api/x HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\r\n", &r), 200);
    header_is(&r, "Access-Control-Allow-Origin", "https://a.example");
    header_is(&r, "Access-Control-Allow-Credentials", "true");
    header_is(&r, "Vary", "Origin");
    header_is(&r, "Access-Control-Expose-Headers", "X-Total");
    cl_resp_free(&r);
    CHECK_INT(ask("GET /api/x HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n", &r), 200);
    header_is(&r, "Access-Control-Allow-Origin", NULL);
    cl_resp_free(&r);
    CHECK_INT(ask("GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    header_is(&r, "Access-Control-Allow-Origin", NULL);
    cl_resp_free(&r);

    int before = __atomic_load_n(&handled, __ATOMIC_SEQ_CST);
    CHECK_INT(ask("OPTIONS /api/x HTTP/1.1\r\nHost: x\r\nOrigin: https://b.example\r\n"
                  "Access-Control-Request-Method: PUT\r\n"
                  "Access-Control-Request-Headers: content-type, x-a\r\n\r\n", &r), 204);
    header_is(&r, "Access-Control-Allow-Origin", "https://b.example");
    header_is(&r, "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE");
    header_is(&r, "Access-Control-Allow-Headers", "content-type, x-a");
    header_is(&r, "Access-Control-Max-Age", "600");
    cl_resp_free(&r);
    CHECK_INT(ask("OPTIONS /api/x HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n"
                  "Access-Control-Request-Method: PUT\r\n\r\n", &r), 204);
    header_is(&r, "Access-Control-Allow-Origin", NULL);
    header_is(&r, "Access-Control-Allow-Methods", NULL);
    cl_resp_free(&r);
    CHECK_INT(__atomic_load_n(&handled, __ATOMIC_SEQ_CST), before);

    CHECK_INT(ask("GET /pub/x HTTP/1.1\r\nHost: x\r\nOrigin: https://any.example\r\n\r\n", &r), 200);
    header_is(&r, "Access-Control-Allow-Origin", "*");
    header_is(&r, "Vary", NULL);
    cl_resp_free(&r);
}

static void test_basic_auth(void) {
    struct cl_resp r;
    CHECK_INT(ask("GET /admin/x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 401);
    header_is(&r, "WWW-Authenticate", "Basic realm=\"admin\", charset=\"UTF-8\"");
    cl_resp_free(&r);
    /* "ada:s3cret" */
    CHECK_INT(ask("GET /admin/x HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRhOnMzY3JldA==\r\n\r\n", &r), 200);
    CHECK(r.body && strncmp(r.body, "user=ada ", 9) == 0);
    cl_resp_free(&r);
    CHECK_INT(ask("GET /admin/x HTTP/1.1\r\nHost: x\r\nauthorization: basic YWRhOnMzY3JldA==\r\n\r\n", &r), 200);
    cl_resp_free(&r);
    static const char *const refused[] = {
        "Basic YWRhOnMzY3JlVA==",     /* ada:s3creT */
        "Basic YWRhOnMzY3JldDE=",     /* ada:s3cret1 */
        "Basic YWRiOnMzY3JldA==",     /* adb:s3cret */
        "Basic YWRhczNjcmV0",         /* adas3cret: no colon */
        "Basic !!!!",
        "Basic YWRhOnMzY3JldA",       /* unpadded */
        "Bearer YWRhOnMzY3JldA==",
        "Basic",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET /admin/x HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n",
                 refused[i]);
        int st = ask(req, &r);
        if (st != 401)
            fprintf(stderr, "  %s: %d\n", refused[i], st);
        CHECK_INT(st, 401);
        cl_resp_free(&r);
    }
    /* "bob:pw" through the application's check */
    CHECK_INT(ask("GET /check/x HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Ym9iOnB3\r\n\r\n", &r), 200);
    CHECK(r.body && strncmp(r.body, "user=bob ", 9) == 0);
    cl_resp_free(&r);
    CHECK_INT(ask("GET /check/x HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRhOnMzY3JldA==\r\n\r\n", &r), 401);
    header_is(&r, "WWW-Authenticate", "Basic realm=\"chopin\", charset=\"UTF-8\"");
    cl_resp_free(&r);
}

static void test_rate_limit(void) {
    struct cl_resp r;
    CHECK(chopin_rate_limit_new(0, 3) == NULL);
    CHECK(chopin_rate_limit_new(1, 0) == NULL);
    /* burst 3, one token a second: three pass, the fourth waits a second */
    for (int i = 0; i < 3; i++) {
        CHECK_INT(ask("GET /limited HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
        cl_resp_free(&r);
    }
    int before = __atomic_load_n(&handled, __ATOMIC_SEQ_CST);
    CHECK_INT(ask("GET /limited HTTP/1.1\r\nHost: x\r\n\r\n", &r), 429);
    header_is(&r, "Retry-After", "1");
    cl_resp_free(&r);
    CHECK_INT(__atomic_load_n(&handled, __ATOMIC_SEQ_CST), before);
    /* other paths are not limited */
    CHECK_INT(ask("GET /pub/x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    cl_resp_free(&r);
}

static int is_hex32(const char *s) {
    if (strlen(s) != 32)
        return 0;
    for (; *s; s++)
        if (!strchr("0123456789abcdef", *s))
            return 0;
    return 1;
}

static void test_request_id(void) {
    struct cl_resp r;
    char id1[64] = "", id2[64] = "", body[128];
    CHECK_INT(ask("GET /pub/x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    cl_header(&r, "X-Request-Id", id1, sizeof id1);
    CHECK(is_hex32(id1));
    snprintf(body, sizeof body, "user= id=%s", id1);
    CHECK_MEM(r.body, r.body_len, body);
    cl_resp_free(&r);
    CHECK_INT(ask("GET /pub/x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    cl_header(&r, "X-Request-Id", id2, sizeof id2);
    CHECK(is_hex32(id2) && strcmp(id1, id2) != 0);
    cl_resp_free(&r);
    CHECK_INT(ask("GET /pub/x HTTP/1.1\r\nHost: x\r\nX-Request-Id: trace-42/a=b\r\n\r\n", &r), 200);
    header_is(&r, "X-Request-Id", "trace-42/a=b");
    CHECK_MEM(r.body, r.body_len, "user= id=trace-42/a=b");
    cl_resp_free(&r);
    static const char *const replaced[] = {"a b", "a\"b", "a\\b", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof replaced / sizeof replaced[0]; i++) {
        char req[256], id[64] = "";
        snprintf(req, sizeof req, "GET /pub/x HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\n\r\n",
                 replaced[i]);
        CHECK_INT(ask(req, &r), 200);
        cl_header(&r, "X-Request-Id", id, sizeof id);
        CHECK(is_hex32(id));
        cl_resp_free(&r);
    }
    char req[512] = "GET /pub/x HTTP/1.1\r\nHost: x\r\nX-Request-Id: ", id[64] = "";
    memset(req + strlen(req), 'a', 129);
    strcat(req, "\r\n\r\n");
    CHECK_INT(ask(req, &r), 200);
    cl_header(&r, "X-Request-Id", id, sizeof id);
    CHECK(is_hex32(id));
    cl_resp_free(&r);
}

int main(void) {
    chopin_router *r = chopin_router_new();
    chopin_rate_limit *limit = chopin_rate_limit_new(1, 3);
    chopin_router_use(r, NULL, chopin_request_id, NULL);
    chopin_router_use(r, "/api", chopin_cors, (void *)&cors_listed);
    chopin_router_use(r, "/pub", chopin_cors, (void *)&cors_any);
    chopin_router_use(r, "/admin", chopin_basic_auth, (void *)&admin);
    chopin_router_use(r, "/check", chopin_basic_auth, (void *)&checked);
    chopin_router_use(r, "/limited", chopin_rate_limit_mw, limit);
    chopin_router_get(r, "/*path", any, NULL);
    chopin_server *s = cl_start(r, NULL);
    if (!s)
        return 1;
    port = chopin_server_port(s);
    RUN(test_cors);
    RUN(test_basic_auth);
    RUN(test_rate_limit);
    RUN(test_request_id);
    cl_stop(s);
    chopin_router_free(r);
    chopin_rate_limit_free(limit);
    TEST_END();
}
