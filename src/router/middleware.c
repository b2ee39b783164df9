/*
 * Middleware chains. chopin_router_use() records middleware in registration order; freeze
 * composes, for each route, the list of those whose prefix covers the route's pattern, in
 * that order (outermost first). All chains live in one array built once, so a request
 * allocates nothing: chopin_next is a small struct on the stack of each layer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "router/internal.h"

struct chopin_next {
    const struct chopin__mw_call *chain;
    uint32_t n, pos; /* chain[pos] is the next layer to run; pos == n: the handler */
    uint8_t ran;
    chopin_handler handler;
    void *data;
    chopin_req *req;
    chopin_res *res;
};

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

/* Segment-wise: "/api" covers "/api" and "/api/..." but not "/apix". Compared with the
 * pattern text, so a prefix names pattern segments (":id" covers the same ":id"). */
static int mw_covers(const struct chopin__mw *mw, const char *pattern)
{
    if (mw->prefix_len == 0)
        return 1;
    if (strncmp(pattern, mw->prefix, mw->prefix_len) != 0)
        return 0;
    char after = pattern[mw->prefix_len];
    return after == '\0' || after == '/';
}

/* Writes the chain for `pattern` (NULL: the global chain) to `out` when not NULL;
 * returns its length either way. */
static uint32_t compose(const struct chopin_router *r, const char *pattern,
                        struct chopin__mw_call *out)
{
    uint32_t n = 0;
    for (size_t i = 0; i < r->nmws; i++) {
        const struct chopin__mw *mw = &r->mws[i];
        if (pattern ? mw_covers(mw, pattern) : mw->prefix_len == 0) {
            if (out)
                out[n] = (struct chopin__mw_call){mw->fn, mw->data};
            n++;
        }
    }
    return n;
}

int chopin__chains_build(struct chopin_router *r)
{
    if (r->nmws == 0)
        return 0;
    size_t total = compose(r, NULL, NULL);
    for (size_t i = 0; i < r->nroutes; i++)
        total += compose(r, r->routes[i].pattern, NULL);
    if (total == 0)
        return 0;
    r->calls = calloc(total, sizeof(*r->calls));
    if (!r->calls)
        return -ENOMEM;
    struct chopin__mw_call *out = r->calls;
    r->global_chain = out;
    r->nglobal = compose(r, NULL, out);
    out += r->nglobal;
    for (size_t i = 0; i < r->nroutes; i++) {
        struct chopin__endpoint *ep = r->routes[i].endpoint;
        ep->chain = out;
        ep->nchain = compose(r, r->routes[i].pattern, out);
        out += ep->nchain;
    }
    return 0;
}
