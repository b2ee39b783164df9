/* SPDX-License-Identifier: MIT */
/* Router: matching table, conflicts, nest/merge, middleware, file-scope routes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chopin.h"
#include "api/exchange.h"
#include "http/message.h"
#include "mem/arena.h"
#include "router/router.h"
#include "test.h"

/* ---- a request by hand -------------------------------------------------------------- */

struct ctx {
    struct chopin__arena arena;
    chopin_req req;
    chopin_res res;
    char target[8192];
    char body[512]; /* the response body, NUL-terminated */
};

static int method_id(const char *m)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE",
                                        "PATCH", "OPTIONS", "CONNECT", "TRACE"};
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
        if (strcmp(m, names[i]) == 0)
            return i;
    return CHOPIN_METHOD_OTHER;
}

static void ctx_init(struct ctx *c)
{
    memset(c, 0, sizeof(*c));
    chopin__arena_init(&c->arena, 4096, 1 << 20);
}

static void ctx_fini(struct ctx *c)
{
    chopin__res_discard(&c->res);
    chopin__arena_destroy(&c->arena);
}

static void request(struct ctx *c, const chopin_router *r, const char *method,
                    const char *target)
{
    chopin__arena_reset(&c->arena);
    memset(&c->req, 0, sizeof(c->req));
    snprintf(c->target, sizeof(c->target), "%s", target);
    struct chopin__head *h = &c->req.head;
    h->method = method;
    h->method_len = (uint16_t)strlen(method);
    h->method_id = (uint8_t)method_id(method);
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
    c->req.arena = &c->arena;
    chopin__res_init(&c->res, &c->arena);
    chopin__router_dispatch(r, &c->req, &c->res);
    size_t n = c->res.body_len < sizeof(c->body) - 1 ? c->res.body_len : sizeof(c->body) - 1;
    if (c->res.body && (c->res.body_kind == CHOPIN__RES_COPY ||
                        c->res.body_kind == CHOPIN__RES_STATIC))
        memcpy(c->body, c->res.body, n);
    else
        n = 0;
    c->body[n] = '\0';
}

/* Value of response header `name` (first one), "" when absent. */
static const char *res_header(const chopin_res *res, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    out[0] = '\0';
    if (!res->headers)
        return out;
    const char *p = res->headers, *end = res->headers + res->headers_len;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nlen + 1 && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            snprintf(out, cap, "%.*s", (int)(eol - p - nlen - 2), p + nlen + 2);
            return out;
        }
        p = eol + 2;
    }
    return out;
}

/* The handler answers "<route>" followed by "|name=value" for each param. */
static void echo(chopin_req *req, chopin_res *res, void *data)
{
    char buf[512];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "%s", (const char *)data);
    for (uint32_t i = 0; i < req->nparams && n < sizeof(buf); i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "|%.*s=%.*s",
                              (int)req->params[i].name_len, req->params[i].name,
                              (int)req->params[i].value_len, req->params[i].value);
    chopin_res_text(res, 200, buf);
}

/* ---- the main table ----------------------------------------------------------------- */

struct reg {
    chopin_method method;
    const char *pattern;
    const char *name;
};

static const struct reg table_routes[] = {
    {CHOPIN_METHOD_GET, "/", "root"},
    {CHOPIN_METHOD_GET, "/users", "users"},
    {CHOPIN_METHOD_GET, "/users/new", "users_new"},
    {CHOPIN_METHOD_POST, "/users", "users_create"},
    {CHOPIN_METHOD_GET, "/users/:id", "user"},
    {CHOPIN_METHOD_PUT, "/users/:id", "user_put"},
    {CHOPIN_METHOD_DELETE, "/users/:id", "user_del"},
    {CHOPIN_METHOD_GET, "/users/:id/posts", "user_posts"},
    {CHOPIN_METHOD_GET, "/users/:id/posts/:post", "user_post"},
    {CHOPIN_METHOD_GET, "/assets/*path", "assets"},
    {CHOPIN_METHOD_GET, "/assets/special.txt", "special"},
    {CHOPIN_METHOD_GET, "/a/b/c", "abc"},
    {CHOPIN_METHOD_GET, "/a/:x/d", "axd"},
    {CHOPIN_METHOD_GET, "/files/*rest", "files"},
    {CHOPIN_METHOD_GET, "/files/:name/meta", "meta"},
    {CHOPIN_METHOD_ANY, "/any", "any"},
    {CHOPIN_METHOD_GET, "/both", "both_get"},
    {CHOPIN_METHOD_ANY, "/both", "both_any"},
    {CHOPIN_METHOD_HEAD, "/h", "h_head"},
    {CHOPIN_METHOD_GET, "/h", "h_get"},
    {CHOPIN_METHOD_GET, "/slash/", "slash_trailing"},
    {CHOPIN_METHOD_GET, "/noslash", "noslash"},
    {CHOPIN_METHOD_GET, "/enc/:seg", "enc"},
    {CHOPIN_METHOD_GET, "/caf\xc3\xa9", "cafe"},
    {CHOPIN_METHOD_GET, "/sp ace", "space"},
    {CHOPIN_METHOD_OPTIONS, "/opt", "opt"},
    {CHOPIN_METHOD_GET, "//double", "double"},
    {CHOPIN_METHOD_POST, "/m/:v", "m_post"},
    {CHOPIN_METHOD_GET, "/m/fixed", "m_fixed"},
};

struct want {
    const char *method, *target;
    int status;
    const char *body;  /* NULL: not checked */
    const char *allow; /* NULL: not checked */
    const char *path;  /* decoded req->path; NULL: not checked */
};

static const struct want table_wants[] = {
    {"GET", "/", 200, "root", NULL, "/"},
    {"GET", "/users", 200, "users", NULL, NULL},
    {"GET", "/users?x=1", 200, "users", NULL, "/users"},
    {"GET", "/users/new", 200, "users_new", NULL, NULL},
    {"GET", "/users/42", 200, "user|id=42", NULL, NULL},
    {"PUT", "/users/42", 200, "user_put|id=42", NULL, NULL},
    {"DELETE", "/users/42", 200, "user_del|id=42", NULL, NULL},
    {"PATCH", "/users/42", 405, "Method Not Allowed", "GET, HEAD, PUT, DELETE", NULL},
    {"POST", "/users", 200, "users_create", NULL, NULL},
    {"DELETE", "/users", 405, NULL, "GET, HEAD, POST", NULL},
    {"GET", "/users/42/posts", 200, "user_posts|id=42", NULL, NULL},
    {"GET", "/users/42/posts/7", 200, "user_post|id=42|post=7", NULL, NULL},
    {"GET", "/users/new/posts", 200, "user_posts|id=new", NULL, NULL}, /* backtrack */
    /* exact paths: trailing slash and empty segments are different resources */
    {"GET", "/users/", 404, "Not Found", NULL, NULL},
    {"GET", "/users//", 404, NULL, NULL, NULL},
    {"GET", "//users", 404, NULL, NULL, NULL},
    {"GET", "/slash/", 200, "slash_trailing", NULL, NULL},
    {"GET", "/slash", 404, NULL, NULL, NULL},
    {"GET", "/noslash/", 404, NULL, NULL, NULL},
    {"GET", "//double", 200, "double", NULL, NULL},
    {"GET", "/double", 404, NULL, NULL, NULL},
    /* wildcards */
    {"GET", "/assets/js/app.js", 200, "assets|path=js/app.js", NULL, NULL},
    {"GET", "/assets/", 200, "assets|path=", NULL, NULL},
    {"GET", "/assets", 404, NULL, NULL, NULL},
    {"GET", "/assets/special.txt", 200, "special", NULL, NULL},
    {"GET", "/assets/special.txt/x", 200, "assets|path=special.txt/x", NULL, NULL},
    {"GET", "/assets/a%2Fb/c%20d", 200, "assets|path=a/b/c d", NULL, "/assets/a/b/c d"},
    {"POST", "/assets/x", 405, NULL, "GET, HEAD", NULL},
    /* backtracking: static, then param, then wildcard */
    {"GET", "/a/b/c", 200, "abc", NULL, NULL},
    {"GET", "/a/b/d", 200, "axd|x=b", NULL, NULL},
    {"GET", "/a/z/d", 200, "axd|x=z", NULL, NULL},
    {"GET", "/a/b/e", 404, NULL, NULL, NULL},
    {"GET", "/files/x/meta", 200, "meta|name=x", NULL, NULL},
    {"GET", "/files/x/other", 200, "files|rest=x/other", NULL, NULL},
    {"GET", "/files/x", 200, "files|rest=x", NULL, NULL},
    {"GET", "/files//meta", 200, "files|rest=/meta", NULL, NULL}, /* empty param: no */
    {"POST", "/files/x/meta", 405, NULL, "GET, HEAD", NULL},
    /* method-aware backtracking: a static path for another method does not hide a param */
    {"POST", "/m/fixed", 200, "m_post|v=fixed", NULL, NULL},
    {"GET", "/m/fixed", 200, "m_fixed", NULL, NULL},
    {"GET", "/m/other", 405, NULL, "POST", NULL},
    /* methods */
    {"GET", "/any", 200, "any", NULL, NULL},
    {"DELETE", "/any", 200, "any", NULL, NULL},
    {"PROPFIND", "/any", 200, "any", NULL, NULL},
    {"GET", "/both", 200, "both_get", NULL, NULL},
    {"POST", "/both", 200, "both_any", NULL, NULL},
    {"HEAD", "/both", 200, "both_get", NULL, NULL},
    {"HEAD", "/h", 200, "h_head", NULL, NULL},
    {"HEAD", "/users/42", 200, "user|id=42", NULL, NULL},
    {"HEAD", "/users", 200, "users", NULL, NULL},
    {"OPTIONS", "/opt", 200, "opt", NULL, NULL},
    {"GET", "/opt", 405, NULL, "OPTIONS", NULL},
    {"PROPFIND", "/users", 405, NULL, "GET, HEAD, POST", NULL},
    /* percent-encoding: segments decoded one by one */
    {"GET", "/enc/a%2Fb", 200, "enc|seg=a/b", NULL, "/enc/a/b"},
    {"GET", "/enc/a/b", 404, NULL, NULL, NULL},
    {"GET", "/us%65rs/42", 200, "user|id=42", NULL, "/users/42"},
    {"GET", "/users/%34%32", 200, "user|id=42", NULL, NULL},
    {"GET", "/caf%C3%A9", 200, "cafe", NULL, NULL},
    {"GET", "/caf%c3%a9", 200, "cafe", NULL, NULL},
    {"GET", "/sp%20ace", 200, "space", NULL, NULL},
    {"GET", "/sp+ace", 404, NULL, NULL, NULL}, /* '+' is not a space in a path */
    {"GET", "/enc/%zz", 400, "Bad Request", NULL, NULL},
    {"GET", "/enc/%2", 400, NULL, NULL, NULL},
    {"GET", "/enc/%00", 400, NULL, NULL, NULL},
    {"GET", "/users%2F42", 404, NULL, NULL, NULL},
    /* no match */
    {"GET", "/nothing", 404, "Not Found", NULL, NULL},
    {"GET", "/users/42/posts/7/x", 404, NULL, NULL, NULL},
    {"OPTIONS", "*", 200, "", "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, CONNECT, TRACE",
     NULL}, /* an ANY route answers every method */
    /* dot segments resolved before matching (RFC 3986 §5.2.4), decoded ones too */
    {"GET", "/users/../users/42", 200, "user|id=42", NULL, "/users/42"},
    {"GET", "/users/./42", 200, "user|id=42", NULL, "/users/42"},
    {"GET", "/./users", 200, "users", NULL, "/users"},
    {"GET", "/.", 200, "root", NULL, "/"},
    {"GET", "/users/42/..", 404, NULL, NULL, "/users/"}, /* a last dot segment leaves a '/' */
    {"GET", "/a/b/.", 404, NULL, NULL, "/a/b/"},
    {"GET", "/slash/x/..", 200, "slash_trailing", NULL, "/slash/"},
    {"GET", "/assets/x/../y.js", 200, "assets|path=y.js", NULL, "/assets/y.js"},
    {"GET", "/assets/.", 200, "assets|path=", NULL, "/assets/"},
    {"GET", "/files/x/../../files/y", 200, "files|rest=y", NULL, "/files/y"},
    {"GET", "/users/%2e%2e/users/42", 200, "user|id=42", NULL, "/users/42"},
    {"GET", "/users/.%2E/users/%2e/42", 200, "user|id=42", NULL, "/users/42"},
    {"GET", "/assets/...", 200, "assets|path=...", NULL, NULL}, /* not a dot segment */
    {"GET", "/assets/.x/..y", 200, "assets|path=.x/..y", NULL, NULL},
    {"GET", "/..", 400, "Bad Request", NULL, NULL}, /* above the root */
    {"GET", "/users/../..", 400, NULL, NULL, NULL},
    {"GET", "/users/42/../../../x", 400, NULL, NULL, NULL},
    {"GET", "/%2e%2e/etc/passwd", 400, NULL, NULL, NULL},
    {"GET", "/assets/..%2fetc", 400, NULL, NULL, NULL}, /* a hidden dot segment */
    {"GET", "/assets/%2e%2e%2Fx", 400, NULL, NULL, NULL},
    {"GET", "/assets/a%2F.%2Fb", 400, NULL, NULL, NULL},
    {"GET", "/assets/a%2F..", 400, NULL, NULL, NULL},
    {"GET", "/assets/a%2F...", 200, "assets|path=a/...", NULL, NULL},
};

static chopin_router *table_router(void)
{
    chopin_router *r = chopin_router_new();
    for (size_t i = 0; i < sizeof(table_routes) / sizeof(table_routes[0]); i++) {
        const struct reg *g = &table_routes[i];
        int err = chopin_router_route(r, g->method, g->pattern, echo, (void *)g->name);
        if (err)
            fprintf(stderr, "  register %s: %s\n", g->pattern, chopin_router_error(r));
        CHECK_INT(err, 0);
    }
    CHECK_INT(chopin__router_freeze(r), 0);
    return r;
}

static void test_table(void)
{
    chopin_router *r = table_router();
    struct ctx c;
    ctx_init(&c);
    for (size_t i = 0; i < sizeof(table_wants) / sizeof(table_wants[0]); i++) {
        const struct want *w = &table_wants[i];
        request(&c, r, w->method, w->target);
        int ok = c.res.status == w->status;
        if (w->body && strcmp(c.body, w->body) != 0)
            ok = 0;
        char allow[128];
        res_header(&c.res, "Allow", allow, sizeof(allow));
        if (w->allow && strcmp(allow, w->allow) != 0)
            ok = 0;
        if (w->path && (c.req.path_len != strlen(w->path) ||
                        memcmp(c.req.path, w->path, c.req.path_len) != 0))
            ok = 0;
        if (!ok) {
            fprintf(stderr, "  %s %s: got %d \"%s\" allow \"%s\" path \"%.*s\"\n", w->method,
                    w->target, c.res.status, c.body, allow, (int)c.req.path_len, c.req.path);
            CHECK(ok);
        }
    }
    ctx_fini(&c);
    chopin_router_free(r);
}

/* ---- registration errors ------------------------------------------------------------ */

/* No content type: the copy of one would be the only arena use (test_no_allocation). */
static void nop(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_static(res, 200, NULL, "nop", 3);
}

static void test_conflicts(void)
{
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_get(r, "/u/:id/a", echo, "ua"), 0);
    CHECK_INT(chopin_router_get(r, "/u/:name", nop, NULL), -EEXIST);
    CHECK(strstr(chopin_router_error(r), ":name") != NULL);
    CHECK(strstr(chopin_router_error(r), ":id") != NULL);
    CHECK_INT(chopin_router_get(r, "/u/:name/b", nop, NULL), -EEXIST);
    CHECK_INT(chopin_router_get(r, "/u/:id", echo, "u"), 0); /* the failed ones left nothing */
    CHECK_INT(chopin_router_get(r, "/u/:id", nop, NULL), -EEXIST);
    CHECK(strstr(chopin_router_error(r), "already registered") != NULL);
    CHECK_INT(chopin_router_post(r, "/u/:id", nop, NULL), 0);
    CHECK_INT(chopin_router_route(r, CHOPIN_METHOD_ANY, "/u/:id", nop, NULL), 0);
    CHECK_INT(chopin_router_route(r, CHOPIN_METHOD_ANY, "/u/:id", nop, NULL), -EEXIST);
    CHECK_INT(chopin_router_get(r, "/w/*a", nop, NULL), 0);
    CHECK_INT(chopin_router_post(r, "/w/*b", nop, NULL), -EEXIST);
    CHECK_INT(chopin_router_post(r, "/w/*a", nop, NULL), 0);
    CHECK_INT(chopin_router_get(r, "/w/*a/x", nop, NULL), -EINVAL);
    CHECK(strstr(chopin_router_error(r), "last segment") != NULL);
    CHECK_INT(chopin_router_get(r, "nope", nop, NULL), -EINVAL);
    CHECK_INT(chopin_router_get(r, "", nop, NULL), -EINVAL);
    CHECK_INT(chopin_router_get(r, "/x/:", nop, NULL), -EINVAL);
    CHECK_INT(chopin_router_get(r, "/x/*", nop, NULL), -EINVAL);
    CHECK_INT(chopin_router_get(r, "/x/:a/:a", nop, NULL), -EINVAL);
    CHECK_INT(chopin_router_get(r, NULL, nop, NULL), -EINVAL);
    CHECK_INT(chopin_router_get(r, "/x", NULL, NULL), -EINVAL);
    CHECK_INT(chopin_router_route(r, CHOPIN_METHOD_OTHER, "/x", nop, NULL), -EINVAL);
    CHECK_INT(chopin_router_route(r, (chopin_method)77, "/x", nop, NULL), -EINVAL);
    CHECK_INT(chopin_router_route(r, CHOPIN_METHOD_TRACE, "/x", nop, NULL), 0);
    CHECK_INT(chopin__router_freeze(r), 0);
    CHECK_INT(chopin__router_freeze(r), 0);
    CHECK_INT(chopin_router_get(r, "/late", nop, NULL), -EBUSY);
    CHECK_INT(chopin_router_use(r, NULL, NULL, NULL), -EBUSY);
    struct ctx c;
    ctx_init(&c);
    request(&c, r, "GET", "/u/5/a");
    CHECK_MEM(c.body, strlen(c.body), "ua|id=5");
    request(&c, r, "GET", "/u/5");
    CHECK_MEM(c.body, strlen(c.body), "u|id=5");
    ctx_fini(&c);
    chopin_router_free(r);
}

/* 16 and more params per route; 32 is the limit. */
static void test_many_params(void)
{
    chopin_router *r = chopin_router_new();
    char pattern[512] = "", target[512] = "", want[1024] = "many";
    for (int i = 0; i < 32; i++) {
        size_t n = strlen(pattern);
        snprintf(pattern + n, sizeof(pattern) - n, "/:p%d", i);
        n = strlen(target);
        snprintf(target + n, sizeof(target) - n, "/v%d", i);
        n = strlen(want);
        snprintf(want + n, sizeof(want) - n, "|p%d=v%d", i, i);
    }
    CHECK_INT(chopin_router_get(r, pattern, echo, "many"), 0);
    char too_many[600];
    snprintf(too_many, sizeof(too_many), "/x%s/:p32", pattern);
    CHECK_INT(chopin_router_get(r, too_many, echo, "x"), -EINVAL);
    CHECK_INT(chopin_router_get(r, "/s/:a/:b/:c/:d/:e/:f/:g/:h/:i/:j/:k/:l/:m/:n/:o/:p/:q", echo, "s"),
              0);
    CHECK_INT(chopin__router_freeze(r), 0);
    struct ctx c;
    ctx_init(&c);
    request(&c, r, "GET", target);
    CHECK_INT(c.req.nparams, 32);
    CHECK_MEM(c.body, strlen(c.body), want);
    request(&c, r, "GET", "/s/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17");
    CHECK_INT(c.req.nparams, 17);
    CHECK_MEM(c.req.params[16].value, c.req.params[16].value_len, "17");
    CHECK_MEM(c.req.params[16].name, c.req.params[16].name_len, "q");
    ctx_fini(&c);
    chopin_router_free(r);
}

/* Static and plain param routes take nothing from the arena; long paths work. */
static void test_no_allocation(void)
{
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_get(r, "/plaintext", nop, NULL), 0);
    CHECK_INT(chopin_router_get(r, "/u/:id/x", nop, NULL), 0);
    CHECK_INT(chopin_router_get(r, "/deep/*rest", echo, "deep"), 0);
    CHECK_INT(chopin__router_freeze(r), 0);
    struct ctx c;
    ctx_init(&c);
    request(&c, r, "GET", "/plaintext");
    CHECK_INT(c.res.status, 200);
    CHECK_INT(c.arena.used, 0);
    request(&c, r, "GET", "/u/77/x");
    CHECK_INT(c.res.status, 200);
    CHECK_INT(c.arena.used, 0);
    char target[4096] = "/deep", want[4096] = "deep|rest=";
    for (int i = 0; i < 200; i++) {
        strcat(target, "/s");
        strcat(want, i ? "/s" : "s");
    }
    request(&c, r, "GET", target);
    CHECK_INT(c.res.status, 200);
    CHECK_MEM(c.body, strlen(c.body), want);
    ctx_fini(&c);
    chopin_router_free(r);
}

static void test_not_frozen(void)
{
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_get(r, "/x", nop, NULL), 0);
    struct ctx c;
    ctx_init(&c);
    request(&c, r, "GET", "/x");
    CHECK_INT(c.res.status, 500);
    ctx_fini(&c);
    chopin_router_free(r);
}

/* ---- nest and merge ----------------------------------------------------------------- */

static char trace[256];

static void tracer(chopin_req *req, chopin_res *res, chopin_next *next, void *data)
{
    const char *name = data;
    strcat(trace, name);
    chopin_next_run(next);
    strcat(trace, name);
    strcat(trace, "'");
}

static void traced(chopin_req *req, chopin_res *res, void *data)
{
    strcat(trace, "H");
    echo(req, res, data);
}

static void test_nest_merge(void)
{
    chopin_router *sub = chopin_router_new();
    CHECK_INT(chopin_router_get(sub, "/", traced, "sub_root"), 0);
    CHECK_INT(chopin_router_get(sub, "/items/:id", traced, "item"), 0);
    CHECK_INT(chopin_router_use(sub, NULL, tracer, "S"), 0);
    CHECK_INT(chopin_router_use(sub, "/items", tracer, "I"), 0);

    chopin_router *other = chopin_router_new();
    CHECK_INT(chopin_router_get(other, "/health", traced, "health"), 0);

    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_get(r, "/", traced, "root"), 0);
    CHECK_INT(chopin_router_nest(r, "/api/", sub), 0); /* trailing '/' ignored */
    CHECK_INT(chopin_router_nest(r, "/v2", sub), 0);
    CHECK_INT(chopin_router_merge(r, other), 0);
    CHECK_INT(chopin_router_merge(r, other), -EEXIST);
    CHECK_INT(chopin_router_nest(r, "api", sub), -EINVAL);
    CHECK_INT(chopin__router_freeze(r), 0);

    struct ctx c;
    ctx_init(&c);
    trace[0] = '\0';
    request(&c, r, "GET", "/api/");
    CHECK_MEM(c.body, strlen(c.body), "sub_root");
    CHECK_MEM(trace, strlen(trace), "SHS'");
    trace[0] = '\0';
    request(&c, r, "GET", "/api/items/3");
    CHECK_MEM(c.body, strlen(c.body), "item|id=3");
    CHECK_MEM(trace, strlen(trace), "SIHI'S'");
    trace[0] = '\0';
    request(&c, r, "GET", "/v2/items/4");
    CHECK_MEM(c.body, strlen(c.body), "item|id=4");
    CHECK_MEM(trace, strlen(trace), "SIHI'S'");
    trace[0] = '\0';
    request(&c, r, "GET", "/");
    CHECK_MEM(c.body, strlen(c.body), "root");
    CHECK_MEM(trace, strlen(trace), "H"); /* the sub's middleware stays under its prefix */
    request(&c, r, "GET", "/health");
    CHECK_MEM(c.body, strlen(c.body), "health");
    request(&c, r, "GET", "/api");
    CHECK_INT(c.res.status, 404);
    ctx_fini(&c);

    /* the sub-routers are unchanged and still usable on their own */
    CHECK_INT(chopin__router_freeze(sub), 0);
    ctx_init(&c);
    request(&c, sub, "GET", "/items/9");
    CHECK_MEM(c.body, strlen(c.body), "item|id=9");
    ctx_fini(&c);
    chopin_router_free(r);
    chopin_router_free(sub);
    chopin_router_free(other);
}

/* ---- middleware --------------------------------------------------------------------- */

static void test_middleware_order(void)
{
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_use(r, NULL, tracer, "A"), 0);
    CHECK_INT(chopin_router_get(r, "/api/x", traced, "x"), 0);
    CHECK_INT(chopin_router_get(r, "/apix", traced, "apix"), 0);
    CHECK_INT(chopin_router_get(r, "/api", traced, "api"), 0);
    CHECK_INT(chopin_router_get(r, "/other", traced, "other"), 0);
    CHECK_INT(chopin_router_use(r, "/api", tracer, "B"), 0);
    CHECK_INT(chopin_router_use(r, "/", tracer, "C"), 0); /* after the routes: still applies */
    CHECK_INT(chopin_router_use(r, "/api/x/", tracer, "D"), 0);
    CHECK_INT(chopin_router_use(r, "api", tracer, "E"), -EINVAL);
    CHECK_INT(chopin__router_freeze(r), 0);
    struct ctx c;
    ctx_init(&c);
    static const struct {
        const char *target, *trace;
    } cases[] = {
        {"/api/x", "ABCDHD'C'B'A'"}, {"/api", "ABCHC'B'A'"},
        {"/apix", "ACHC'A'"},       {"/other", "ACHC'A'"},
        {"/missing", "ACC'A'"},     /* 404 elsewhere: global middleware only */
        {"/api/missing", "ABCC'B'A'"}, /* 404 under a prefix: its middleware too */
        {"/apix/missing", "ACC'A'"},
        {"/api/x/y", "ABCDD'C'B'A'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        trace[0] = '\0';
        request(&c, r, "GET", cases[i].target);
        if (strcmp(trace, cases[i].trace) != 0) {
            fprintf(stderr, "  %s: trace %s, expected %s\n", cases[i].target, trace,
                    cases[i].trace);
            CHECK(0);
        }
    }
    trace[0] = '\0';
    request(&c, r, "POST", "/api/x"); /* 405 too */
    CHECK_INT(c.res.status, 405);
    CHECK_MEM(trace, strlen(trace), "ABCDD'C'B'A'");
    ctx_fini(&c);
    chopin_router_free(r);
}

static int handler_runs;

static void counted(chopin_req *req, chopin_res *res, void *data)
{
    handler_runs++;
    chopin_res_text(res, 200, "handler");
}

static void auth(chopin_req *req, chopin_res *res, chopin_next *next, void *data)
{
    if (strncmp(req->path, "/private", 8) == 0) {
        chopin_res_text(res, 401, "who are you?");
        return;
    }
    chopin_next_run(next);
}

static void add_after(chopin_req *req, chopin_res *res, chopin_next *next, void *data)
{
    chopin_next_run(next);
    char status[16];
    snprintf(status, sizeof(status), "%d", chopin_res_status(res));
    chopin_res_header_add(res, "X-Seen-Status", status);
}

static void twice(chopin_req *req, chopin_res *res, chopin_next *next, void *data)
{
    chopin_next_run(next);
    chopin_next_run(next);
}

static void test_middleware_effects(void)
{
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_use(r, NULL, add_after, NULL), 0);
    CHECK_INT(chopin_router_use(r, NULL, auth, NULL), 0);
    CHECK_INT(chopin_router_use(r, NULL, twice, NULL), 0);
    CHECK_INT(chopin_router_get(r, "/private/x", counted, NULL), 0);
    CHECK_INT(chopin_router_get(r, "/public", counted, NULL), 0);
    CHECK_INT(chopin__router_freeze(r), 0);
    struct ctx c;
    ctx_init(&c);
    char v[32];
    handler_runs = 0;
    request(&c, r, "GET", "/private/x");
    CHECK_INT(c.res.status, 401);
    CHECK_INT(handler_runs, 0);
    CHECK_MEM(c.body, strlen(c.body), "who are you?");
    CHECK_MEM(v, strlen(res_header(&c.res, "X-Seen-Status", v, sizeof(v))), "401");
    request(&c, r, "GET", "/public");
    CHECK_INT(c.res.status, 200);
    CHECK_INT(handler_runs, 1); /* a second chopin_next_run is ignored */
    CHECK_MEM(v, strlen(res_header(&c.res, "X-Seen-Status", v, sizeof(v))), "200");
    request(&c, r, "GET", "/nope");
    CHECK_MEM(v, strlen(res_header(&c.res, "X-Seen-Status", v, sizeof(v))), "404");
    ctx_fini(&c);
    chopin_next_run(NULL);
    chopin_router_free(r);
}

/* ---- prefix middleware follows the request path (issue 12, point 3) ------------------ */

static void deny(chopin_req *req, chopin_res *res, chopin_next *next, void *data)
{
    strcat(trace, "X");
    chopin_res_text(res, 401, "login first");
}

/* "/api" auth with a wildcard route serving every path: no way around it. */
static void test_prefix_by_path(void)
{
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_get(r, "/*path", traced, "files"), 0);
    CHECK_INT(chopin_router_get(r, "/items/:id", traced, "item"), 0);
    CHECK_INT(chopin_router_get(r, "/items/:id/tags/*rest", traced, "tags"), 0);
    CHECK_INT(chopin_router_get(r, "/api/x", traced, "x"), 0);
    CHECK_INT(chopin_router_use(r, "/api", deny, NULL), 0);
    CHECK_INT(chopin_router_use(r, "/items/42", tracer, "I"), 0);
    CHECK_INT(chopin_router_use(r, "/items/42/tags/a", tracer, "T"), 0);
    CHECK_INT(chopin__router_freeze(r), 0);
    static const struct {
        const char *method, *target;
        int status;
        const char *trace;
    } cases[] = {
        {"GET", "/api/secret.txt", 401, "X"},
        {"GET", "/api", 401, "X"},
        {"GET", "/api/", 401, "X"},
        {"GET", "/api/x", 401, "X"},
        {"GET", "/%61pi/secret.txt", 401, "X"},
        {"GET", "/api%2Fsecret.txt", 401, "X"}, /* one segment "api/secret.txt" */
        {"GET", "/public/../api/secret.txt", 401, "X"},
        {"GET", "/public/%2E%2e/api/secret.txt", 401, "X"},
        {"GET", "/./api/secret.txt", 401, "X"},
        {"POST", "/api/x", 401, "X"},       /* a 405 under the prefix */
        {"DELETE", "/api/nope", 401, "X"}, /* idem, through the wildcard's methods */
        {"GET", "/apix/secret.txt", 200, "H"},
        {"GET", "/public/secret.txt", 200, "H"},
        {"GET", "/items/42", 200, "IHI'"},
        {"GET", "/items/%342", 200, "IHI'"},
        {"GET", "/items/43", 200, "H"},
        {"GET", "/items/420", 200, "H"},
        {"GET", "/items/42/tags/a/b", 200, "ITHT'I'"},
        {"GET", "/items/42/tags/ab", 200, "IHI'"},
        {"GET", "/items/42/other", 200, "IHI'"}, /* the wildcard route, under "/items/42" */
        {"POST", "/items/42", 405, "II'"},
    };
    struct ctx c;
    ctx_init(&c);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        trace[0] = '\0';
        request(&c, r, cases[i].method, cases[i].target);
        if (c.res.status != cases[i].status || strcmp(trace, cases[i].trace) != 0) {
            fprintf(stderr, "  %s %s: %d trace %s, expected %d %s\n", cases[i].method,
                    cases[i].target, c.res.status, trace, cases[i].status, cases[i].trace);
            CHECK(0);
        }
    }
    ctx_fini(&c);
    chopin_router_free(r);
}

/* A 404 under a prefix runs its middleware; a static route's precomposed chain is exact. */
static void test_prefix_not_found(void)
{
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_get(r, "/api/users", traced, "users"), 0);
    CHECK_INT(chopin_router_get(r, "/open", traced, "open"), 0);
    CHECK_INT(chopin_router_use(r, NULL, tracer, "G"), 0);
    CHECK_INT(chopin_router_use(r, "/api", deny, NULL), 0);
    CHECK_INT(chopin__router_freeze(r), 0);
    struct ctx c;
    ctx_init(&c);
    trace[0] = '\0';
    request(&c, r, "GET", "/api/nothing");
    CHECK_INT(c.res.status, 401);
    CHECK_MEM(trace, strlen(trace), "GXG'");
    trace[0] = '\0';
    request(&c, r, "GET", "/api/users");
    CHECK_INT(c.res.status, 401);
    trace[0] = '\0';
    request(&c, r, "GET", "/nothing");
    CHECK_INT(c.res.status, 404);
    CHECK_MEM(trace, strlen(trace), "GG'");
    trace[0] = '\0';
    request(&c, r, "GET", "/open");
    CHECK_INT(c.res.status, 200);
    CHECK_MEM(trace, strlen(trace), "GHG'");
    trace[0] = '\0';
    request(&c, r, "GET", "/api/../open"); /* normalised, then a static route */
    CHECK_INT(c.res.status, 200);
    CHECK_MEM(trace, strlen(trace), "GHG'");
    trace[0] = '\0';
    request(&c, r, "GET", "/open/../..");  /* refused path: global middleware only */
    CHECK_INT(c.res.status, 400);
    CHECK_MEM(trace, strlen(trace), "GG'");
    ctx_fini(&c);
    chopin_router_free(r);
}

static void test_dot_patterns_refused(void)
{
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_get(r, "/a/../b", nop, NULL), -EINVAL);
    CHECK(strstr(chopin_router_error(r), "'..'") != NULL);
    CHECK_INT(chopin_router_get(r, "/a/./b", nop, NULL), -EINVAL);
    CHECK_INT(chopin_router_get(r, "/..", nop, NULL), -EINVAL);
    CHECK_INT(chopin_router_get(r, "/a/.", nop, NULL), -EINVAL);
    CHECK_INT(chopin_router_use(r, "/api/..", tracer, "A"), -EINVAL);
    CHECK_INT(chopin_router_use(r, "/./api", tracer, "A"), -EINVAL);
    CHECK_INT(chopin_router_get(r, "/a/.../b", nop, NULL), 0);
    CHECK_INT(chopin_router_get(r, "/a/.b/c.", nop, NULL), 0);
    CHECK_INT(chopin_router_use(r, "/a/...", tracer, "A"), 0);
    chopin_router *sub = chopin_router_new();
    CHECK_INT(chopin_router_get(sub, "/x", nop, NULL), 0);
    CHECK_INT(chopin_router_nest(r, "/..", sub), -EINVAL);
    chopin_router_free(sub);
    chopin_router_free(r);
}

/* ---- requests refused before routing (issue 12, point 10) ------------------------------ */

static char seen[256];

/* What a refused request shows: nothing of its bytes. */
static void inspect(chopin_req *req, chopin_res *res, chopin_next *next, void *data)
{
    chopin_str m = chopin_req_method_str(req), t = chopin_req_target(req);
    chopin_str p = chopin_req_path(req), q = chopin_req_query_string(req);
    chopin_str b = chopin_req_body(req), h = chopin_req_header(req, "host");
    snprintf(seen, sizeof(seen), "%d[%.*s][%.*s][%.*s][%.*s][%.*s]%zu%d%s",
             (int)chopin_req_method(req), (int)m.len, m.ptr, (int)t.len, t.ptr, (int)p.len,
             p.ptr, (int)q.len, q.ptr, (int)b.len, b.ptr, chopin_req_header_count(req),
             h.ptr == NULL, chopin_req_param(req, "id").ptr ? "param" : "");
    chopin_next_run(next);
}

static void refuse(const chopin_router *r, struct ctx *c, int status)
{
    chopin__arena_reset(&c->arena);
    memset(&c->req, 0, sizeof(c->req));
    c->req.arena = &c->arena;
    chopin__res_init(&c->res, &c->arena);
    chopin__router_refuse(r, &c->req, &c->res, status);
    size_t n = c->res.body_len < sizeof(c->body) - 1 ? c->res.body_len : sizeof(c->body) - 1;
    memcpy(c->body, c->res.body ? c->res.body : "", c->res.body ? n : 0);
    c->body[c->res.body ? n : 0] = '\0';
}

static void test_refused(void)
{
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_get(r, "/*path", nop, NULL), 0);
    CHECK_INT(chopin_router_use(r, NULL, add_after, NULL), 0);
    CHECK_INT(chopin_router_use(r, "/", tracer, "G"), 0);
    CHECK_INT(chopin_router_use(r, "/api", tracer, "P"), 0);
    CHECK_INT(chopin_router_use(r, NULL, inspect, NULL), 0);
    CHECK_INT(chopin__router_freeze(r), 0);
    struct ctx c;
    ctx_init(&c);
    char v[32];
    static const int statuses[] = {400, 408, 413, 414, 431, 501, 505};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        trace[0] = seen[0] = '\0';
        refuse(r, &c, statuses[i]);
        CHECK_INT(c.res.status, statuses[i]);
        snprintf(v, sizeof(v), "%d", statuses[i]);
        char got[32];
        CHECK_MEM(got, strlen(res_header(&c.res, "X-Seen-Status", got, sizeof(got))), v);
        CHECK_MEM(trace, strlen(trace), "GG'"); /* global only: no trusted path */
    }
    char want[64];
    snprintf(want, sizeof(want), "%d[][][][][]01", CHOPIN_METHOD_OTHER);
    CHECK_MEM(seen, strlen(seen), want);
    ctx_fini(&c);
    chopin_router_free(r);

    /* No router, or no middleware: the plain answer. */
    ctx_init(&c);
    refuse(NULL, &c, 505);
    CHECK_INT(c.res.status, 505);
    CHECK_MEM(c.body, strlen(c.body), "HTTP Version Not Supported");
    ctx_fini(&c);
}

/* OPTIONS * (RFC 9110 §9.3.7) is about the server: 200, empty, Allow naming the methods
 * some route answers; it passes through global middleware like any answer, and through
 * no prefixed one (there is no path under a prefix). */
static void test_options_server(void)
{
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_get(r, "/a", nop, NULL), 0);
    CHECK_INT(chopin_router_post(r, "/b/:id", nop, NULL), 0);
    CHECK_INT(chopin_router_delete(r, "/c/*rest", nop, NULL), 0);
    CHECK_INT(chopin_router_use(r, NULL, add_after, NULL), 0);
    CHECK_INT(chopin_router_use(r, "/", tracer, "G"), 0);
    CHECK_INT(chopin_router_use(r, "/a", tracer, "P"), 0);
    CHECK_INT(chopin__router_freeze(r), 0);
    struct ctx c;
    ctx_init(&c);
    char v[64];
    trace[0] = '\0';
    request(&c, r, "OPTIONS", "*");
    CHECK_INT(c.res.status, 200);
    CHECK_INT((int)c.res.body_len, 0);
    CHECK_MEM(v, strlen(res_header(&c.res, "Allow", v, sizeof(v))), "GET, HEAD, POST, DELETE");
    CHECK_MEM(v, strlen(res_header(&c.res, "X-Seen-Status", v, sizeof(v))), "200");
    CHECK_MEM(trace, strlen(trace), "GG'");
    request(&c, r, "OPTIONS", "/a"); /* a resource: still the router's 405 */
    CHECK_INT(c.res.status, 405);
    ctx_fini(&c);
    chopin_router_free(r);

    r = chopin_router_new(); /* no routes: nothing to allow, but still an answer */
    CHECK_INT(chopin__router_freeze(r), 0);
    ctx_init(&c);
    request(&c, r, "OPTIONS", "*");
    CHECK_INT(c.res.status, 200);
    CHECK_MEM(v, strlen(res_header(&c.res, "Allow", v, sizeof(v))), "");
    ctx_fini(&c);
    chopin_router_free(r);
}

/* ---- file-scope routes -------------------------------------------------------------- */

CHOPIN_GET("/macro/:x", macro_get)
{
    echo(req, res, "macro");
}

CHOPIN_ANY("/macro-any", macro_any)
{
    chopin_res_text(res, 200, "any");
}

static void test_mount_all(void)
{
    chopin_router *r = chopin_router_new();
    CHECK_INT(chopin_router_mount_all(r), 0);
    CHECK_INT(chopin_router_mount_all(r), -EEXIST);
    CHECK_INT(chopin__router_freeze(r), 0);
    struct ctx c;
    ctx_init(&c);
    request(&c, r, "GET", "/macro/7");
    CHECK_MEM(c.body, strlen(c.body), "macro|x=7");
    request(&c, r, "DELETE", "/macro-any");
    CHECK_MEM(c.body, strlen(c.body), "any");
    ctx_fini(&c);
    chopin_router_free(r);
    CHECK_INT(chopin_router_mount_all(NULL), -EINVAL);
}

int main(void)
{
    RUN(test_table);
    RUN(test_conflicts);
    RUN(test_many_params);
    RUN(test_no_allocation);
    RUN(test_not_frozen);
    RUN(test_nest_merge);
    RUN(test_middleware_order);
    RUN(test_middleware_effects);
    RUN(test_prefix_by_path);
    RUN(test_prefix_not_found);
    RUN(test_dot_patterns_refused);
    RUN(test_refused);
    RUN(test_options_server);
    RUN(test_mount_all);
    TEST_END();
}
