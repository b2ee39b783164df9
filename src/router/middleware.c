/* SPDX-License-Identifier: MIT */
/*
 * Middleware chains. chopin_router_use() records middleware in registration order. A
 * prefix middleware applies to every request whose decoded, normalised path (router.c) is
 * the prefix or lies under it, whatever route matched, and to the 404 and 405 answers
 * under it; a middleware without prefix applies to everything. Matching the request path
 * rather than the route pattern is what makes "/api" auth hold for a wildcard route ("/" "*path")
 * serving "/api/secret" (issue 12, point 3).
 *
 * Freeze composes one chain per route, in registration order (outermost first), holding
 * every middleware that may apply to a path the route can match. Whether one applies is
 * decided at freeze where the pattern settles it (always, for a fully static pattern:
 * its path is the pattern); where it does not (a prefix reaching into a param or
 * wildcard, and every prefix for 404/405), the chain is marked and the request picks its
 * layers into a stack array before running them. chopin_next is a small struct on the
 * stack of each layer, so a request allocates nothing (past 16 layers to pick, from the
 * arena), and a router without prefix middleware compares nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem/arena.h"
#include "router/internal.h"

/* Layers of a chain picked per request kept on the stack; longer chains use the arena. */
#define STACK_LAYERS 16

struct chopin_next {
    const struct chopin__mw_call *chain;
    uint32_t n, pos; /* chain[pos] is the next layer to run; pos == n: the handler */
    uint8_t ran;
    chopin_handler handler;
    void *data;
    chopin_req *req;
    chopin_res *res;
};

int chopin__prefix_covers(const char *prefix, size_t len, const char *path, size_t path_len)
{
    if (len == 0)
        return 1;
    return path_len >= len && memcmp(path, prefix, len) == 0 &&
           (path_len == len || path[len] == '/');
}

void chopin_next_run(chopin_next *next)
{
    if (!next || next->ran)
        return; /* documented: at most once; a second call must not run the handler twice */
    next->ran = 1;
    if (next->pos == next->n) {
        next->handler(next->req, next->res, next->data);
        return;
    }
    /* Each layer gets its own copy, so a layer's "ran" flag guards only its own call. */
    struct chopin_next inner = *next;
    inner.pos++;
    inner.ran = 0;
    const struct chopin__mw_call *call = &next->chain[next->pos];
    call->fn(next->req, next->res, &inner, call->data);
}

void chopin__chain_run(const struct chopin__mw_call *chain, uint32_t n, chopin_handler handler,
                       void *data, chopin_req *req, chopin_res *res)
{
    struct chopin_next next = {chain, n, 0, 0, handler, data, req, res};
    chopin_next_run(&next);
}

int chopin__chain_run_for_path(const struct chopin__mw_call *chain, uint32_t n,
                               chopin_handler handler, void *data, chopin_req *req,
                               chopin_res *res)
{
    struct chopin__mw_call stack[STACK_LAYERS];
    struct chopin__mw_call *picked =
        n <= STACK_LAYERS ? stack : chopin__arena_alloc(req->arena, n * sizeof(*picked));
    if (!picked)
        return -ENOMEM;
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct chopin__mw_call *c = &chain[i];
        if (!c->prefix || chopin__prefix_covers(c->prefix, c->prefix_len, req->path,
                                                req->path_len))
            picked[k++] = *c;
    }
    chopin__chain_run(picked, k, handler, data, req, res);
    return 0;
}

/* Where `mw` stands for the paths of one chain. */
enum reach { REACH_NEVER, REACH_ALWAYS, REACH_CHECK };

/* `fixed` is the part of the pattern every matching path starts with: the whole pattern
 * when it has no param or wildcard (then the path is the pattern), else the text up to
 * and including the '/' before the first one. NULL: any path (the fallback chain). */
static enum reach mw_reach(const struct chopin__mw *mw, const char *fixed, size_t fixed_len,
                           int fully_static)
{
    if (mw->prefix_len == 0)
        return REACH_ALWAYS;
    if (!fixed)
        return REACH_CHECK;
    if (chopin__prefix_covers(mw->prefix, mw->prefix_len, fixed, fixed_len))
        return REACH_ALWAYS;
    /* A path starting with `fixed` (which ends in '/') can still be covered by a longer
     * prefix starting with it: "/items/42" for "/items/:id". Any other prefix can neither
     * equal such a path nor be one of its ancestors. */
    if (!fully_static && mw->prefix_len > fixed_len &&
        memcmp(mw->prefix, fixed, fixed_len) == 0)
        return REACH_CHECK;
    return REACH_NEVER;
}

/* The length of the fixed part of `pattern` (see mw_reach); sets *fully_static. */
static size_t fixed_length(const char *pattern, int *fully_static)
{
    for (const char *s = pattern + 1; *s; s++) {
        if ((*s == ':' || *s == '*') && s[-1] == '/') {
            *fully_static = 0;
            return (size_t)(s - pattern);
        }
    }
    *fully_static = 1;
    return strlen(pattern);
}

/* Writes the chain for `pattern` to `out` when not NULL; returns its length either way.
 * pattern NULL: the fallback chain (every middleware); `globals_only`: the global chain. */
static uint32_t compose(const struct chopin_router *r, const char *pattern, int globals_only,
                        struct chopin__mw_call *out)
{
    int fully_static = 0;
    size_t fixed_len = pattern ? fixed_length(pattern, &fully_static) : 0;
    uint32_t n = 0;
    for (size_t i = 0; i < r->nmws; i++) {
        const struct chopin__mw *mw = &r->mws[i];
        enum reach reach = mw_reach(mw, pattern, fixed_len, fully_static);
        if (reach == REACH_NEVER || (globals_only && reach != REACH_ALWAYS))
            continue;
        if (out) {
            int check = reach == REACH_CHECK;
            out[n] = (struct chopin__mw_call){mw->fn, mw->data, check ? mw->prefix : NULL,
                                              check ? mw->prefix_len : 0};
        }
        n++;
    }
    return n;
}

static uint8_t has_checks(const struct chopin__mw_call *chain, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (chain[i].prefix)
            return 1;
    return 0;
}

int chopin__chains_build(struct chopin_router *r)
{
    if (r->nmws == 0)
        return 0;
    size_t total = compose(r, NULL, 1, NULL) + compose(r, NULL, 0, NULL);
    for (size_t i = 0; i < r->nroutes; i++)
        total += compose(r, r->routes[i].pattern, 0, NULL);
    r->calls = calloc(total, sizeof(*r->calls));
    if (!r->calls)
        return -ENOMEM;
    struct chopin__mw_call *out = r->calls;
    r->global_chain = out;
    r->nglobal = compose(r, NULL, 1, out);
    out += r->nglobal;
    r->fallback_chain = out;
    r->nfallback = compose(r, NULL, 0, out);
    r->fallback_checks = has_checks(out, r->nfallback);
    out += r->nfallback;
    for (size_t i = 0; i < r->nroutes; i++) {
        struct chopin__endpoint *ep = r->routes[i].endpoint;
        ep->chain = out;
        ep->nchain = compose(r, r->routes[i].pattern, 0, out);
        ep->checks = has_checks(out, ep->nchain);
        out += ep->nchain;
    }
    return 0;
}
