/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the router: registration of arbitrary patterns and prefixes, and
 * dispatch of arbitrary paths.
 *
 * Input: "pattern\n" lines (each registered as a route on top of a fixed table, and as a
 * middleware prefix), an empty line, then one request per line: a method digit followed
 * by the path. Checks that every dispatch ends in a response with a sane status, that
 * params point into the routed path, that a routed path is normalised (no "." or ".."
 * segment), and that exactly the middleware whose prefix covers that path ran, in
 * registration order (only the global ones for a refused path).
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE
 *     fuzz/fuzz_router.c src/router/{router,tree,middleware}.c src/api/response.c
 *     src/api/mime.c src/http/url.c
 *     src/mem/arena.c src/http/status.c -o fuzz_router
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chopin.h"
#include "api/exchange.h"
#include "http/message.h"
#include "mem/arena.h"
#include "router/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const base[] = {
    "/", "/users", "/users/:id", "/users/:id/posts/:post", "/assets/*path", "/a/b/c",
    "/a/:x/d", "/files/*rest", "/files/:name/meta", "/slash/", "//double", "/caf\xc3\xa9",
};

static void handler(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_static(res, 200, NULL, "ok", 2);
}

/* The middleware registered, with their prefixes as the router keeps them (no trailing
 * '/'), and the order they ran in for the current request. */
#define MAX_MWS 34
static struct registered {
    char prefix[256];
    size_t len;
} mws[MAX_MWS];
static int nmws, ran[MAX_MWS], nran;

static void mw(chopin_req *req, chopin_res *res, chopin_next *next, void *data)
{
    if (nran < MAX_MWS)
        ran[nran++] = (int)(intptr_t)data;
    chopin_next_run(next);
}

static void use(chopin_router *r, const char *prefix)
{
    if (nmws == MAX_MWS || (prefix && strlen(prefix) >= sizeof(mws[0].prefix)))
        return;
    if (chopin_router_use(r, prefix, mw, (void *)(intptr_t)nmws) != 0)
        return;
    struct registered *m = &mws[nmws++];
    size_t len = prefix ? strlen(prefix) : 0;
    while (len > 0 && prefix[len - 1] == '/')
        len--;
    memcpy(m->prefix, prefix ? prefix : "", len);
    m->len = len;
}

static int covers(const struct registered *m, const char *path, size_t len)
{
    if (m->len == 0)
        return 1;
    return len >= m->len && memcmp(path, m->prefix, m->len) == 0 &&
           (len == m->len || path[m->len] == '/');
}

/* The middleware that ran are those that apply, in registration order. */
static void check_chain(const chopin_req *req, int status)
{
    int want = 0;
    for (int i = 0; i < nmws; i++) {
        int applies = status == 400 || status == 500 ? mws[i].len == 0
                                                     : covers(&mws[i], req->path, req->path_len);
        if (!applies)
            continue;
        if (want >= nran || ran[want] != i)
            abort();
        want++;
    }
    if (want != nran)
        abort();
}

static void check_normalised(const chopin_req *req)
{
    const char *p = req->path, *end = p + req->path_len;
    if (req->path_len == 0 || p[0] != '/')
        abort();
    while (p < end) {
        const char *seg = p + 1, *slash = memchr(seg, '/', (size_t)(end - seg));
        size_t len = (size_t)((slash ? slash : end) - seg);
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            abort();
        p = seg + len;
    }
}

static void check_params(const chopin_req *req)
{
    if (req->nparams > CHOPIN__MAX_PARAMS)
        abort();
    for (uint32_t i = 0; i < req->nparams; i++) {
        const struct chopin__param *p = &req->params[i];
        if (p->value < req->path || p->value + p->value_len > req->path + req->path_len)
            abort();
    }
}

static void dispatch(const chopin_router *r, struct chopin__arena *arena, const char *line,
                     size_t len)
{
    if (len == 0)
        return;
    chopin_req req;
    chopin_res res;
    memset(&req, 0, sizeof(req));
    req.head.method_id = (uint8_t)((unsigned char)line[0] % CHOPIN_METHOD_COUNT);
    req.head.path = line + 1;
    req.head.path_len = (uint32_t)(len - 1);
    req.arena = arena;
    chopin__res_init(&res, arena);
    nran = 0;
    chopin__router_dispatch(r, &req, &res);
    if (res.status != 200 && res.status != 400 && res.status != 404 && res.status != 405)
        abort();
    int asterisk = len == 2 && line[1] == '*'; /* "OPTIONS *": the server's own answer */
    if (asterisk && res.status != (req.head.method_id == CHOPIN_METHOD_OPTIONS ? 200 : 404))
        abort();
    if (res.status == 200 && !asterisk) {
        check_params(&req);
        check_normalised(&req);
    }
    if (req.path && req.path[0] == '/')
        check_chain(&req, res.status);
    if (req.path_len > len - 1)
        abort(); /* decoding and normalising never lengthen the path */
    chopin__res_discard(&res);
    chopin__arena_reset(arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    chopin_router *r = chopin_router_new();
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        chopin_router_get(r, base[i], handler, NULL);
    nmws = 0;
    use(r, "/users");
    use(r, NULL);

    char *p = text, *end = text + size;
    int patterns = 1, nregistered = 0;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (patterns) {
            if (len == 0) {
                patterns = 0;
                chopin__router_freeze(r);
            } else if (nregistered++ < 32 && !memchr(p, '\0', len)) {
                p[len] = '\0';
                chopin_method m = (chopin_method)(len % (CHOPIN_METHOD_COUNT - 1));
                chopin_router_route(r, len % 5 == 0 ? CHOPIN_METHOD_ANY : m, p, handler, NULL);
                use(r, p);
            }
        } else {
            static struct chopin__arena arena;
            static int arena_ready;
            if (!arena_ready) {
                chopin__arena_init(&arena, 1024, 1 << 20);
                arena_ready = 1;
            }
            dispatch(r, &arena, p, len);
        }
        p += len + 1;
    }
    chopin_router_free(r);
    free(text);
    return 0;
}
