/* SPDX-License-Identifier: MIT */
/*
 * Router: registration (checked for conflicts when it happens), nest/merge, freeze, and
 * the per-request dispatch.
 *
 * Path rules (the contract; chopin.h has the short form):
 * - Paths are exact: "/a/" and "/a" are different resources (RFC 3986 §6.2.3 leaves it to
 *   the scheme; we merge nothing), "//a" has an empty first segment and only matches a
 *   pattern written the same way. A ":param" never matches an empty segment.
 * - "*name" matches the rest of the path, one or more segments, where the last may be
 *   empty: with the pattern "/assets/" "*p", "/assets/" matches (p = ""), and so does
 *   "/assets/js/app.js" (p = "js/app.js"), but "/assets" does not.
 * - Segments are percent-decoded one by one, so "%2F" stays inside its segment. A broken
 *   escape or "%00" answers 400.
 * - Dot segments are resolved after decoding, before matching (RFC 3986 §5.2.4): a "."
 *   segment goes, a ".." segment removes the one before it, and a path whose last segment
 *   was either ends with '/' ("/a/b/.." is "/a/"). A segment that decodes to "." or ".."
 *   ("%2e", ".%2E") is one. Answered 400 instead: a ".." with no segment left to remove
 *   (above the root), and a segment that decodes to text holding '/' with a "." or ".."
 *   part ("..%2F", "%2e%2e%2fx"), which code splitting it at that '/' (a file handler
 *   given a wildcard) would climb with. So "/public/../api/x" is "/api/x" for routing,
 *   for middleware and for chopin_req_path(); patterns and prefixes with a "." or ".."
 *   segment are refused at registration (they could never match).
 * - A route for a specific method wins over an any-method route on the same pattern.
 * - Middleware (middleware.c): one registered with a prefix runs for every request whose
 *   decoded, normalised path is the prefix or lies under it ("/api" covers "/api",
 *   "/api/", "/api/x", not "/apix"), whichever route matched, and for the 404 and 405
 *   answers under it; global middleware (no prefix, or "/") runs for everything,
 *   including the 400 of a path refused above and requests the connection refuses before
 *   routing (chopin__router_refuse). A prefix compares with the decoded path as text, so
 *   "/api%2Fx" (one segment "api/x") is under "/api" too: a prefix errs on running.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/url.h"
#include "mem/arena.h"
#include "router/internal.h"
#include "router/router.h"

/* Bound on the segments kept on the stack during dispatch; longer paths use the arena. */
#define STACK_SEGS 64

static const char *method_name(chopin_method m)
{
    static const char *const names[] = {
#define CHOPIN_METHOD_NAME(name, str) str,
        CHOPIN_METHOD_MAP(CHOPIN_METHOD_NAME)
#undef CHOPIN_METHOD_NAME
    };
    if (m == CHOPIN_METHOD_ANY)
        return "ANY";
    if ((unsigned)m < sizeof(names) / sizeof(names[0]))
        return names[m];
    return "?";
}

__attribute__((format(printf, 3, 4))) static int fail(chopin_router *r, int err,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    return err;
}

chopin_router *chopin_router_new(void)
{
    chopin_router *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->root = chopin__node_new(CHOPIN__NODE_STATIC, "", 0);
    if (!r->root) {
        free(r);
        return NULL;
    }
    return r;
}

void chopin_router_free(chopin_router *r)
{
    if (!r)
        return;
    chopin__node_free(r->root);
    for (size_t i = 0; i < r->nroutes; i++)
        free(r->routes[i].pattern);
    for (size_t i = 0; i < r->nmws; i++)
        free(r->mws[i].prefix);
    free(r->routes);
    free(r->mws);
    free(r->statics);
    free(r->calls);
    free(r);
}

const char *chopin_router_error(const chopin_router *r)
{
    return r ? r->error : "no router";
}

/* ---- patterns ---------------------------------------------------------------------- */

/* The segment starting at *p (just after a '/'); advances *p past it and its '/'.
 * Returns 0 when there are no more segments. */
static int next_segment(const char **p, struct chopin__seg *seg)
{
    if (!*p)
        return 0;
    const char *slash = strchr(*p, '/');
    seg->ptr = *p;
    seg->len = slash ? (size_t)(slash - *p) : strlen(*p);
    *p = slash ? slash + 1 : NULL;
    return 1;
}

/* 1 for ".", 2 for "..", 0 for any other segment (RFC 3986 §3.3 dot segments). */
static int dot_segment(const char *s, size_t len)
{
    if (len == 0 || len > 2 || s[0] != '.')
        return 0;
    return len == 1 ? 1 : s[1] == '.' ? 2 : 0;
}

/* Nonzero when the path or prefix p[0..len) has a "." or ".." segment. */
static int has_dot_segment(const char *p, size_t len)
{
    const char *end = p + len;
    while (p < end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t seg = (size_t)((slash ? slash : end) - p);
        if (dot_segment(p, seg))
            return 1;
        p += seg + 1;
    }
    return 0;
}

static int names_equal(struct chopin__seg a, struct chopin__seg b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* Syntax: leading '/', named params (unique, at most CHOPIN__MAX_PARAMS), a named
 * wildcard only as the last segment. */
static int pattern_check(chopin_router *r, const char *mname, const char *pattern)
{
    if (pattern[0] != '/')
        return fail(r, -EINVAL, "%s %s: a pattern starts with '/'", mname, pattern);
    struct chopin__seg names[CHOPIN__MAX_PARAMS];
    size_t nnames = 0;
    const char *p = pattern + 1;
    struct chopin__seg seg, text;
    while (next_segment(&p, &seg)) {
        enum chopin__node_kind kind = chopin__seg_kind(seg, &text);
        if (kind == CHOPIN__NODE_STATIC && dot_segment(seg.ptr, seg.len))
            return fail(r, -EINVAL, "%s %s: a '.' or '..' segment never matches (request "
                        "paths are normalised)", mname, pattern);
        if (kind == CHOPIN__NODE_STATIC)
            continue;
        if (text.len == 0)
            return fail(r, -EINVAL, "%s %s: a parameter needs a name", mname, pattern);
        if (kind == CHOPIN__NODE_WILDCARD && p)
            return fail(r, -EINVAL, "%s %s: '*%.*s' must be the last segment", mname, pattern,
                        (int)text.len, text.ptr);
        if (nnames == CHOPIN__MAX_PARAMS)
            return fail(r, -EINVAL, "%s %s: more than %d parameters", mname, pattern,
                        CHOPIN__MAX_PARAMS);
        for (size_t i = 0; i < nnames; i++)
            if (names_equal(names[i], text))
                return fail(r, -EINVAL, "%s %s: parameter '%.*s' appears twice", mname,
                            pattern, (int)text.len, text.ptr);
        names[nnames++] = text;
    }
    return 0;
}

/* Walks the existing tree along `pattern` to refuse, before changing anything, a param
 * or wildcard name that differs from the one already at its position, and a duplicate. */
static int conflict_check(chopin_router *r, const char *mname, int slot, const char *pattern)
{
    const struct chopin__node *n = r->root;
    const char *p = pattern + 1;
    struct chopin__seg seg, text;
    while (n && next_segment(&p, &seg)) {
        enum chopin__node_kind kind = chopin__seg_kind(seg, &text);
        const struct chopin__node *next;
        if (kind == CHOPIN__NODE_STATIC)
            next = chopin__node_static_child(n, text.ptr, text.len);
        else
            next = kind == CHOPIN__NODE_PARAM ? n->param : n->wildcard;
        if (next && kind != CHOPIN__NODE_STATIC &&
            !names_equal((struct chopin__seg){next->text, next->text_len}, text))
            return fail(r, -EEXIST, "%s %s: '%c%.*s' conflicts with '%c%s' registered at the "
                        "same position", mname, pattern, seg.ptr[0], (int)text.len, text.ptr,
                        seg.ptr[0], next->text);
        n = next;
    }
    if (n && n->slots[slot].handler)
        return fail(r, -EEXIST, "%s %s: route already registered", mname, pattern);
    return 0;
}

/* Creates the missing nodes along a checked pattern; returns the last one. */
static struct chopin__node *tree_insert(chopin_router *r, const char *pattern)
{
    struct chopin__node *n = r->root;
    const char *p = pattern + 1;
    struct chopin__seg seg, text;
    while (next_segment(&p, &seg)) {
        enum chopin__node_kind kind = chopin__seg_kind(seg, &text);
        struct chopin__node **slot = kind == CHOPIN__NODE_PARAM ? &n->param : &n->wildcard;
        struct chopin__node *next = kind == CHOPIN__NODE_STATIC
                                        ? chopin__node_static_child(n, text.ptr, text.len)
                                        : *slot;
        if (!next) {
            next = chopin__node_new(kind, text.ptr, text.len);
            if (!next)
                return NULL;
            if (kind != CHOPIN__NODE_STATIC) {
                *slot = next;
            } else if (chopin__node_add_static(n, next) < 0) {
                chopin__node_free(next);
                return NULL;
            }
        }
        n = next;
    }
    return n;
}

static int route_slot(chopin_method method)
{
    if (method == CHOPIN_METHOD_ANY)
        return CHOPIN__SLOT_ANY;
    if ((unsigned)method < CHOPIN_METHOD_OTHER)
        return (int)method;
    return -1; /* OTHER is "any unknown token": register it with CHOPIN_METHOD_ANY */
}

static int routes_reserve(chopin_router *r)
{
    if (r->nroutes < r->routes_cap)
        return 0;
    size_t cap = r->routes_cap ? r->routes_cap * 2 : 16;
    struct chopin__route *routes = realloc(r->routes, cap * sizeof(*routes));
    if (!routes)
        return -ENOMEM;
    r->routes = routes;
    r->routes_cap = cap;
    return 0;
}

int chopin_router_route(chopin_router *r, chopin_method method, const char *pattern,
                 chopin_handler handler, void *data)
{
    if (!r)
        return -EINVAL;
    const char *mname = method_name(method);
    if (r->frozen)
        return fail(r, -EBUSY, "%s %s: the router is already serving", mname,
                    pattern ? pattern : "(null)");
    if (!pattern || !handler)
        return fail(r, -EINVAL, "%s: pattern and handler are required", mname);
    int slot = route_slot(method);
    if (slot < 0)
        return fail(r, -EINVAL, "%s: not a method a route can be registered for", pattern);
    int err = pattern_check(r, mname, pattern);
    if (!err)
        err = conflict_check(r, mname, slot, pattern);
    if (err)
        return err;
    char *copy = strdup(pattern);
    if (!copy || routes_reserve(r) < 0) {
        free(copy);
        return fail(r, -ENOMEM, "%s %s: out of memory", mname, pattern);
    }
    struct chopin__node *n = tree_insert(r, pattern);
    if (!n) {
        free(copy);
        return fail(r, -ENOMEM, "%s %s: out of memory", mname, pattern);
    }
    n->slots[slot] = (struct chopin__endpoint){.handler = handler, .data = data};
    n->has_endpoint = 1;
    r->routes[r->nroutes++] = (struct chopin__route){
        .pattern = copy, .method = method, .handler = handler, .data = data, .endpoint = &n->slots[slot]};
    r->error[0] = '\0';
    return 0;
}

/* A route like any other, marked so the connection runs it when the head arrives. */
int chopin_router_stream(chopin_router *r, chopin_method method, const char *pattern,
                         chopin_handler handler, void *data, uint64_t max_body)
{
    int err = chopin_router_route(r, method, pattern, handler, data);
    if (err)
        return err;
    struct chopin__route *rt = &r->routes[r->nroutes - 1];
    rt->streams = rt->endpoint->streams = 1;
    rt->max_body = rt->endpoint->max_body = max_body;
    r->nstreaming++;
    return 0;
}

int chopin_router_get(chopin_router *r, const char *pattern, chopin_handler h, void *data)
{
    return chopin_router_route(r, CHOPIN_METHOD_GET, pattern, h, data);
}

int chopin_router_post(chopin_router *r, const char *pattern, chopin_handler h, void *data)
{
    return chopin_router_route(r, CHOPIN_METHOD_POST, pattern, h, data);
}

int chopin_router_put(chopin_router *r, const char *pattern, chopin_handler h, void *data)
{
    return chopin_router_route(r, CHOPIN_METHOD_PUT, pattern, h, data);
}

int chopin_router_delete(chopin_router *r, const char *pattern, chopin_handler h, void *data)
{
    return chopin_router_route(r, CHOPIN_METHOD_DELETE, pattern, h, data);
}

int chopin_router_patch(chopin_router *r, const char *pattern, chopin_handler h, void *data)
{
    return chopin_router_route(r, CHOPIN_METHOD_PATCH, pattern, h, data);
}

/* ---- middleware, nest, merge ------------------------------------------------------- */

/* Length of `prefix` without trailing '/'; "/", "" and NULL give 0 (every request). */
static size_t prefix_length(const char *prefix)
{
    size_t len = prefix ? strlen(prefix) : 0;
    while (len > 0 && prefix[len - 1] == '/')
        len--;
    return len;
}

int chopin_router_use(chopin_router *r, const char *prefix, chopin_middleware mw, void *data)
{
    if (!r)
        return -EINVAL;
    if (r->frozen)
        return fail(r, -EBUSY, "use %s: the router is already serving", prefix ? prefix : "/");
    if (!mw)
        return fail(r, -EINVAL, "use: middleware is required");
    if (prefix && prefix[0] && prefix[0] != '/')
        return fail(r, -EINVAL, "use %s: a prefix starts with '/'", prefix);
    size_t len = prefix_length(prefix);
    if (len && has_dot_segment(prefix + 1, len - 1))
        return fail(r, -EINVAL, "use %s: a '.' or '..' segment never matches (request paths "
                    "are normalised)", prefix);
    if (r->nmws == r->mws_cap) {
        size_t cap = r->mws_cap ? r->mws_cap * 2 : 8;
        struct chopin__mw *mws = realloc(r->mws, cap * sizeof(*mws));
        if (!mws)
            return fail(r, -ENOMEM, "use: out of memory");
        r->mws = mws;
        r->mws_cap = cap;
    }
    char *copy = strndup(len ? prefix : "", len);
    if (!copy)
        return fail(r, -ENOMEM, "use: out of memory");
    r->mws[r->nmws++] = (struct chopin__mw){copy, len, mw, data};
    return 0;
}

/* prefix[0..plen) followed by tail, in a new heap string. */
static char *join(const char *prefix, size_t plen, const char *tail)
{
    size_t tlen = strlen(tail);
    char *s = malloc(plen + tlen + 1);
    if (s) {
        if (plen)
            memcpy(s, prefix, plen);
        memcpy(s + plen, tail, tlen + 1);
    }
    return s;
}

/* Replays sub's routes, then its middleware, into r under prefix[0..plen). Indexes, not
 * pointers, because r may be sub and grow while we read it. */
static int replay(chopin_router *r, const char *prefix, size_t plen, const chopin_router *sub)
{
    size_t nroutes = sub->nroutes, nmws = sub->nmws;
    for (size_t i = 0; i < nroutes; i++) {
        const struct chopin__route rt = sub->routes[i];
        char *pattern = join(prefix, plen, rt.pattern);
        if (!pattern)
            return fail(r, -ENOMEM, "nest: out of memory");
        int err = rt.streams ? chopin_router_stream(r, rt.method, pattern, rt.handler, rt.data,
                                                    rt.max_body)
                             : chopin_router_route(r, rt.method, pattern, rt.handler, rt.data);
        free(pattern);
        if (err)
            return err;
    }
    for (size_t i = 0; i < nmws; i++) {
        const struct chopin__mw mw = sub->mws[i];
        char *full = join(prefix, plen, mw.prefix);
        if (!full)
            return fail(r, -ENOMEM, "nest: out of memory");
        int err = chopin_router_use(r, full[0] ? full : NULL, mw.fn, mw.data);
        free(full);
        if (err)
            return err;
    }
    return 0;
}

int chopin_router_nest(chopin_router *r, const char *prefix, const chopin_router *sub)
{
    if (!r || !sub)
        return -EINVAL;
    if (r->frozen)
        return fail(r, -EBUSY, "nest %s: the router is already serving", prefix ? prefix : "/");
    if (prefix && prefix[0] && prefix[0] != '/')
        return fail(r, -EINVAL, "nest %s: a prefix starts with '/'", prefix);
    r->metrics |= sub->metrics;
    return replay(r, prefix, prefix_length(prefix), sub);
}

void chopin__router_want_metrics(chopin_router *r) { r->metrics = 1; }

int chopin__router_metrics_wanted(const chopin_router *r) { return r->metrics; }

int chopin_router_merge(chopin_router *r, const chopin_router *other)
{
    return chopin_router_nest(r, NULL, other);
}

/* ---- file-scope routes ------------------------------------------------------------- */

/* The linker defines these when some object has a "chopin_routes" section; weak so a
 * program without any CHOPIN_GET() still links (both are then NULL). */
extern const chopin_route_def __start_chopin_routes[] __attribute__((weak));
extern const chopin_route_def __stop_chopin_routes[] __attribute__((weak));

int chopin_router_mount_all(chopin_router *r)
{
    if (!r)
        return -EINVAL;
    const chopin_route_def *def = __start_chopin_routes, *end = __stop_chopin_routes;
    if (!def || !end)
        return 0;
    for (; def < end; def++) {
        int err = chopin_router_route(r, def->method, def->pattern, def->handler, NULL);
        if (err)
            return err;
    }
    return 0;
}

/* ---- freeze and dispatch ----------------------------------------------------------- */

/* Every method some route answers, for the Allow of OPTIONS *. */
static uint32_t routed_methods(const chopin_router *r)
{
    uint32_t mask = 0;
    for (size_t i = 0; i < r->nroutes; i++) {
        chopin_method m = r->routes[i].method;
        mask |= m == CHOPIN_METHOD_ANY ? (1u << CHOPIN_METHOD_COUNT) - 1 : 1u << m;
    }
    return mask;
}

int chopin__router_freeze(chopin_router *r)
{
    if (!r)
        return -EINVAL;
    if (r->frozen)
        return 0;
    int err = chopin__statics_build(r);
    if (!err)
        err = chopin__chains_build(r);
    if (err) {
        free(r->statics);
        r->statics = NULL;
        r->statics_mask = 0;
        free(r->calls);
        r->calls = NULL;
        return fail(r, err, "freeze: out of memory");
    }
    r->methods = routed_methods(r);
    r->frozen = 1;
    return 0;
}

/* What the fallback handler answers: 400, 404, or 405 with the allowed methods. */
struct fallback {
    int status;
    uint32_t allowed;
};

/* "GET, HEAD, POST": RFC 9110 §10.2.1. HEAD is listed wherever GET is, since it is. */
static void allow_header(chopin_res *res, uint32_t allowed)
{
    static const chopin_method order[] = {
        CHOPIN_METHOD_GET,     CHOPIN_METHOD_HEAD,    CHOPIN_METHOD_POST,
        CHOPIN_METHOD_PUT,     CHOPIN_METHOD_DELETE,  CHOPIN_METHOD_PATCH,
        CHOPIN_METHOD_OPTIONS, CHOPIN_METHOD_CONNECT, CHOPIN_METHOD_TRACE,
    };
    if (allowed & (1u << CHOPIN_METHOD_GET))
        allowed |= 1u << CHOPIN_METHOD_HEAD;
    char buf[96];
    size_t len = 0;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (!(allowed & (1u << order[i])))
            continue;
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? ", " : "",
                                method_name(order[i]));
    }
    buf[len] = '\0';
    chopin_res_header_add(res, "Allow", buf);
}

/* RFC 9110 §9.3.7: OPTIONS * asks about the server, not a resource; the answer names
 * the methods it has routes for. */
static void options_server_handler(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_empty(res, 200);
    allow_header(res, *(const uint32_t *)data);
}

/* No path to match a prefix against: only global middleware runs, as for a bad path. */
static void answer_options_server(const chopin_router *r, chopin_req *req, chopin_res *res)
{
    uint32_t methods = r->methods;
    chopin__chain_run(r->global_chain, r->nglobal, options_server_handler, &methods, req, res);
}

static void fallback_handler(chopin_req *req, chopin_res *res, void *data)
{
    const struct fallback *fb = data;
    chopin_res_error(res, fb->status, NULL);
    if (fb->status == 405)
        allow_header(res, fb->allowed);
}

/* A path the router refuses (400) or cannot hold (500): no trusted path, so only global
 * middleware runs, and it sees the path as it came. */
static void answer_bad_path(const chopin_router *r, chopin_req *req, chopin_res *res,
                            int status)
{
    struct fallback fb = {status, 0};
    req->path = req->head.path;
    req->path_len = req->head.path_len;
    chopin__chain_run(r->global_chain, r->nglobal, fallback_handler, &fb, req, res);
}

/* Runs a chain of which some layers depend on the path; 500 when the arena cannot hold
 * the layers picked (only past 16 of them). Out of line: inlined, it made run_endpoint
 * too large to inline into dispatch, which cost a chain without prefixes 17 instructions
 * per request (callgrind). */
__attribute__((noinline)) static void run_for_path(const chopin_router *r, const struct chopin__mw_call *chain,
                         uint32_t n, chopin_handler handler, void *data, chopin_req *req,
                         chopin_res *res)
{
    if (chopin__chain_run_for_path(chain, n, handler, data, req, res) < 0)
        answer_bad_path(r, req, res, 500);
}

/* 404 and 405: every middleware whose prefix covers the path runs, so an auth middleware
 * answers before a 405 tells which methods exist under its prefix. */
static void answer_unrouted(const chopin_router *r, chopin_req *req, chopin_res *res,
                            int status, uint32_t allowed)
{
    struct fallback fb = {status, allowed};
    if (r->fallback_checks)
        run_for_path(r, r->fallback_chain, r->nfallback, fallback_handler, &fb, req, res);
    else
        chopin__chain_run(r->fallback_chain, r->nfallback, fallback_handler, &fb, req, res);
}

/* Inlined into both dispatch paths: a static route's answer is the hot path. */
__attribute__((always_inline)) static inline void
run_endpoint(const chopin_router *r, const struct chopin__endpoint *ep, chopin_req *req,
             chopin_res *res)
{
    if (ep->nchain == 0)
        ep->handler(req, res, ep->data); /* no middleware: no chain to set up */
    else if (!ep->checks)
        chopin__chain_run(ep->chain, ep->nchain, ep->handler, ep->data, req, res);
    else
        run_for_path(r, ep->chain, ep->nchain, ep->handler, ep->data, req, res);
}

/* A segment whose decoded text holds '/' (from "%2F"): refused when one of the parts that
 * '/' separates is a dot segment ("..%2F", "%2e%2e%2Fx"). */
static int hides_dot_segment(const char *s, size_t len)
{
    return memchr(s, '/', len) && has_dot_segment(s, len);
}

/* Splits req->path (which starts with '/') into segs, decoding each segment when
 * `decode` (then req->path becomes the decoded copy in the arena). Returns the number of
 * dot segments, -EINVAL for a bad escape or a hidden dot segment, -ENOMEM when the arena
 * is exhausted. */
static int split_path(chopin_req *req, struct chopin__seg *segs, size_t nsegs, int decode)
{
    const char *raw = req->path, *end = raw + req->path_len;
    char *out = NULL;
    size_t o = 1;
    int dots = 0;
    if (decode) {
        out = chopin__arena_alloc(req->arena, req->path_len);
        if (!out)
            return -ENOMEM;
        out[0] = '/';
    }
    const char *s = raw + 1;
    for (size_t i = 0; i < nsegs; i++) {
        const char *slash = memchr(s, '/', (size_t)(end - s));
        size_t len = (size_t)((slash ? slash : end) - s);
        if (decode) {
            ssize_t dlen = chopin__pct_decode(out + o, s, len,
                                              CHOPIN__PCT_STRICT | CHOPIN__PCT_NO_NUL);
            if (dlen < 0 || ((size_t)dlen < len && hides_dot_segment(out + o, (size_t)dlen)))
                return -EINVAL;
            segs[i] = (struct chopin__seg){out + o, (size_t)dlen};
            o += (size_t)dlen;
            if (slash)
                out[o++] = '/';
        } else {
            segs[i] = (struct chopin__seg){s, len};
        }
        dots += dot_segment(segs[i].ptr, segs[i].len) != 0;
        if (slash)
            s = slash + 1;
    }
    if (decode) {
        req->path = out;
        req->path_len = (uint32_t)o;
    }
    return dots;
}

/* RFC 3986 §5.2.4 on split segments: "." goes, ".." removes the segment before it, and
 * either one last leaves the path ending in '/'. A ".." with nothing to remove would
 * climb above the root: the RFC stops there silently, we answer 400 (-EINVAL), since no
 * client that means a resource sends it. The path is rebuilt in the arena and the
 * segments point into it: a wildcard's value runs from its segment to the path's end.
 * Returns the number of segments left (at least one), -EINVAL or -ENOMEM. */
static ssize_t remove_dot_segments(chopin_req *req, struct chopin__seg *segs, size_t nsegs)
{
    size_t kept = 0;
    for (size_t i = 0; i < nsegs; i++) {
        int dots = dot_segment(segs[i].ptr, segs[i].len);
        if (dots == 2) {
            if (kept == 0)
                return -EINVAL;
            kept--;
        }
        if (!dots)
            segs[kept++] = segs[i];
        else if (i + 1 == nsegs)
            segs[kept++] = (struct chopin__seg){"", 0};
    }
    /* Each dot segment removed takes at least its own "/." with it, and the empty
     * segment that may replace the last one costs one '/': never longer than before. */
    char *out = chopin__arena_alloc(req->arena, req->path_len);
    if (!out)
        return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < kept; i++) {
        out[o++] = '/';
        memcpy(out + o, segs[i].ptr, segs[i].len);
        segs[i].ptr = out + o;
        o += segs[i].len;
    }
    req->path = out;
    req->path_len = (uint32_t)o;
    return (ssize_t)kept;
}

static size_t count_slashes(const char *p, size_t len)
{
    size_t n = 0;
    for (const char *end = p + len; (p = memchr(p, '/', (size_t)(end - p))); p++)
        n++;
    return n;
}

/* Splits, decodes and normalises req->path into segs; returns their number, -EINVAL or
 * -ENOMEM. */
static ssize_t prepare_path(chopin_req *req, struct chopin__seg *segs, size_t nsegs,
                            int decode)
{
    int dots = split_path(req, segs, nsegs, decode);
    if (dots < 0)
        return dots;
    return dots ? remove_dot_segments(req, segs, nsegs) : (ssize_t)nsegs;
}

static void dispatch_tree(const chopin_router *r, chopin_req *req, chopin_res *res, int decode)
{
    struct chopin__seg stack_segs[STACK_SEGS];
    struct chopin__seg *segs = stack_segs;
    size_t nsegs = count_slashes(req->path, req->path_len);
    if (nsegs > STACK_SEGS) {
        segs = chopin__arena_alloc(req->arena, nsegs * sizeof(*segs));
        if (!segs) {
            answer_bad_path(r, req, res, 500);
            return;
        }
    }
    ssize_t n = prepare_path(req, segs, nsegs, decode);
    if (n < 0) {
        answer_bad_path(r, req, res, n == -EINVAL ? 400 : 500);
        return;
    }
    struct chopin__match m = {
        .segs = segs,
        .nsegs = (size_t)n,
        .path_end = req->path + req->path_len,
        .method = (chopin_method)req->head.method_id,
        .params = req->params,
    };
    const struct chopin__endpoint *ep = chopin__tree_match(r->root, &m);
    if (ep) {
        req->nparams = m.nparams;
        run_endpoint(r, ep, req, res);
        return;
    }
    chopin__tree_allowed(r->root, &m);
    answer_unrouted(r, req, res, m.allowed ? 405 : 404, m.allowed);
}

void chopin__router_dispatch(const chopin_router *r, chopin_req *req, chopin_res *res)
{
    req->path = req->head.path;
    req->path_len = req->head.path_len;
    req->nparams = 0;
    if (!r || !r->frozen) {
        chopin_res_error(res, 500, "router not frozen");
        return;
    }
    if (!req->path || req->path_len == 0 || req->path[0] != '/') {
        if (req->path && req->path_len == 1 && req->path[0] == '*' &&
            req->head.method_id == CHOPIN_METHOD_OPTIONS) /* the parser refuses other '*' */
            answer_options_server(r, req, res);
        else
            answer_unrouted(r, req, res, 404, 0); /* an absolute form without a path */
        return;
    }
    /* No static pattern holds '%' (see pattern_is_static) or a dot segment (refused at
     * registration), so a path found as it came needs no decoding and no normalising, and
     * the route's precomposed chain is exact: its path is its pattern. */
    const struct chopin__node *n = chopin__statics_find(r, req->path, req->path_len);
    const struct chopin__endpoint *ep =
        n ? chopin__node_pick(n, (chopin_method)req->head.method_id) : NULL;
    if (ep) {
        run_endpoint(r, ep, req, res);
        return;
    }
    dispatch_tree(r, req, res, memchr(req->path, '%', req->path_len) != NULL);
}

/* The endpoint a request reaches, without running it: dispatch's lookup, with no answer
 * for a path that reaches none (its dispatch answers once the body is in). */
static const struct chopin__endpoint *lookup(const chopin_router *r, chopin_req *req)
{
    req->path = req->head.path;
    req->path_len = req->head.path_len;
    req->nparams = 0;
    if (!req->path || req->path_len == 0 || req->path[0] != '/')
        return NULL;
    const struct chopin__node *n = chopin__statics_find(r, req->path, req->path_len);
    const struct chopin__endpoint *ep =
        n ? chopin__node_pick(n, (chopin_method)req->head.method_id) : NULL;
    if (ep)
        return ep;
    size_t nsegs = count_slashes(req->path, req->path_len);
    struct chopin__seg stack_segs[STACK_SEGS];
    struct chopin__seg *segs =
        nsegs > STACK_SEGS ? chopin__arena_alloc(req->arena, nsegs * sizeof(*segs)) : stack_segs;
    if (!segs)
        return NULL;
    ssize_t kept = prepare_path(req, segs, nsegs, memchr(req->path, '%', req->path_len) != NULL);
    if (kept < 0)
        return NULL;
    struct chopin__match m = {
        .segs = segs,
        .nsegs = (size_t)kept,
        .path_end = req->path + req->path_len,
        .method = (chopin_method)req->head.method_id,
        .params = req->params,
    };
    ep = chopin__tree_match(r->root, &m);
    if (ep)
        req->nparams = m.nparams;
    return ep;
}

const struct chopin__endpoint *chopin__router_streaming(const chopin_router *r, chopin_req *req)
{
    if (!r || !r->frozen || !r->nstreaming)
        return NULL;
    const struct chopin__endpoint *ep = lookup(r, req);
    return ep && ep->streams ? ep : NULL;
}

uint64_t chopin__endpoint_max_body(const struct chopin__endpoint *ep) { return ep->max_body; }

void chopin__router_run(const chopin_router *r, const struct chopin__endpoint *ep, chopin_req *req,
                        chopin_res *res)
{
    run_endpoint(r, ep, req, res);
}

/* The request seen by middleware for bytes the connection refused: nothing in them is
 * trusted, so it carries none of them (empty method, target and path; no headers, query,
 * params or body); the connection's own facts (peer address, worker) stay readable. */
static void blank_request(chopin_req *req)
{
    struct chopin__head *h = &req->head;
    *h = (struct chopin__head){.method = "", .target = "", .path = ""};
    h->method_id = CHOPIN_METHOD_OTHER;
    h->minor = 1;
    req->path = "";
    req->path_len = 0;
    req->nparams = 0;
    req->body = NULL;
    req->body_len = 0;
}

static void refuse_handler(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_error(res, *(const int *)data, NULL);
}

void chopin__router_refuse(const chopin_router *r, chopin_req *req, chopin_res *res, int status)
{
    blank_request(req);
    if (r && r->frozen && r->nglobal)
        chopin__chain_run(r->global_chain, r->nglobal, refuse_handler, &status, req, res);
    else
        chopin_res_error(res, status, NULL);
}
