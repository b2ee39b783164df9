/*
 * libFuzzer target for the router: registration of arbitrary patterns and dispatch of
 * arbitrary paths.
 *
 * Input: "pattern\n" lines (registered on top of a fixed table), an empty line, then one
 * request per line: a method digit followed by the path. Checks that every dispatch ends
 * in a response with a sane status and that params point into the routed path.
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

static void mw(chopin_req *req, chopin_res *res, chopin_next *next, void *data)
{
    chopin_next_run(next);
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
    chopin__router_dispatch(r, &req, &res);
    if (res.status != 200 && res.status != 400 && res.status != 404 && res.status != 405)
        abort();
    if (res.status == 200)
        check_params(&req);
    if (req.path_len > len - 1)
        abort(); /* decoding never lengthens the path */
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
    chopin_router_use(r, "/users", mw, NULL);

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
                chopin_router_use(r, p, mw, NULL);
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
