/* SPDX-License-Identifier: MIT */
/*
 * Router internals shared by router.c (registration, freeze, dispatch), tree.c (the
 * segment tree and the static table) and middleware.c (chains and chopin_next).
 */
#ifndef CHOPIN_ROUTER_INTERNAL_H
#define CHOPIN_ROUTER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "chopin.h"
#include "http/message.h"

/* Endpoint slots of a node: one per chopin_method, then one for CHOPIN_METHOD_ANY. */
#define CHOPIN__SLOT_ANY CHOPIN_METHOD_COUNT
#define CHOPIN__NSLOTS (CHOPIN_METHOD_COUNT + 1)

/* One middleware as the chain runs it. `prefix` is NULL when freeze proved that the
 * middleware applies to every request reaching this chain; otherwise the chain checks, when
 * it gets there, that the prefix covers the request's (decoded, normalised) path. */
struct chopin__mw_call {
    chopin_middleware fn;
    void *data;
    const char *prefix;
    size_t prefix_len;
};

struct chopin__endpoint {
    chopin_handler handler; /* NULL: no route for this slot */
    void *data;
    const struct chopin__mw_call *chain; /* composed at freeze */
    uint32_t nchain;
    uint8_t checks; /* some layer of chain has a prefix to check: chopin__chain_run_for_path */
    uint8_t streams;   /* chopin_router_stream: runs when the head arrives (issue 18) */
    uint64_t max_body; /* its body limit; 0: the server's max_body_bytes */
};

enum chopin__node_kind { CHOPIN__NODE_STATIC, CHOPIN__NODE_PARAM, CHOPIN__NODE_WILDCARD };

/*
 * One path segment. A node has sorted static children, at most one param child and at
 * most one wildcard child (two different names at one position are refused), so a
 * request visits each node at most once: matching is linear in the tree size even with
 * backtracking.
 */
struct chopin__node {
    char *text; /* static: the decoded segment; param/wildcard: the name */
    uint32_t text_len;
    uint8_t kind;
    uint8_t has_endpoint;
    struct chopin__node **statics; /* sorted by (length, bytes) */
    uint32_t nstatics, statics_cap;
    struct chopin__node *param;
    struct chopin__node *wildcard;
    struct chopin__endpoint slots[CHOPIN__NSLOTS];
};

/* A slice of a pattern or of a request path. */
struct chopin__seg {
    const char *ptr;
    size_t len;
};

/* A registration as given, kept so that nest/merge can replay it into another router. */
struct chopin__route {
    char *pattern;
    chopin_method method;
    chopin_handler handler;
    void *data;
    struct chopin__endpoint *endpoint;
    uint8_t streams;   /* registered with chopin_router_stream, with max_body */
    uint64_t max_body;
};

struct chopin__mw {
    char *prefix; /* "" for every request; else "/a/b" without a trailing '/' */
    size_t prefix_len;
    chopin_middleware fn;
    void *data;
};

struct chopin__static_entry {
    uint64_t hash;
    const char *path; /* NULL: empty slot */
    size_t len;
    const struct chopin__node *node;
};

struct chopin_router {
    struct chopin__node *root;
    struct chopin__route *routes;
    size_t nroutes, routes_cap;
    struct chopin__mw *mws;
    size_t nmws, mws_cap;
    int frozen;
    /* Built at freeze. */
    struct chopin__static_entry *statics;
    size_t statics_mask; /* table size - 1 (a power of two), 0 when there is no table */
    struct chopin__mw_call *calls; /* every composed chain, back to back */
    const struct chopin__mw_call *global_chain; /* prefix NULL or "/" only: refused requests */
    uint32_t nglobal;
    const struct chopin__mw_call *fallback_chain; /* every middleware: 404 and 405 */
    uint32_t nfallback;
    uint8_t fallback_checks;
    uint32_t methods; /* bit per chopin_method routed anywhere (ANY: every one): OPTIONS * */
    uint8_t metrics;  /* chopin_metrics_route was called: the workers time requests */
    uint32_t nstreaming; /* routes registered with chopin_router_stream */
    char error[256];
};

/* ---- tree.c ---- */

/** Splits a pattern segment into kind and text (name without ':' or '*'). */
enum chopin__node_kind chopin__seg_kind(struct chopin__seg seg, struct chopin__seg *text);
struct chopin__node *chopin__node_new(enum chopin__node_kind kind, const char *text, size_t len);
void chopin__node_free(struct chopin__node *n);
/** The static child for `seg`, or NULL. */
struct chopin__node *chopin__node_static_child(const struct chopin__node *n, const char *seg,
                                               size_t len);
/** Adds a static child (kept sorted). Returns 0 or -ENOMEM. */
int chopin__node_add_static(struct chopin__node *n, struct chopin__node *child);

/** The endpoint `method` reaches at `n`: its own, HEAD falling back to GET, then ANY. */
const struct chopin__endpoint *chopin__node_pick(const struct chopin__node *n,
                                                 chopin_method method);

/** Mask of methods (bit per chopin_method) with a route at `n`. */
uint32_t chopin__node_methods(const struct chopin__node *n);

/** Match state for one request. */
struct chopin__match {
    const struct chopin__seg *segs;
    size_t nsegs;
    const char *path_end; /* end of the path the segments point into (wildcard values) */
    chopin_method method;
    struct chopin__param *params;
    uint32_t nparams;
    uint32_t allowed; /* chopin__tree_allowed: union of the matching nodes' methods */
};

/** Finds the highest-precedence route for the segments and method, filling params.
 *  NULL when none. */
const struct chopin__endpoint *chopin__tree_match(const struct chopin__node *root,
                                                  struct chopin__match *m);
/** Sets m->allowed to the methods of every route whose pattern matches the path. */
void chopin__tree_allowed(const struct chopin__node *root, struct chopin__match *m);

uint64_t chopin__path_hash(const char *p, size_t len);
/** Builds r->statics from every fully static route. Returns 0 or -ENOMEM. */
int chopin__statics_build(struct chopin_router *r);
/** The node of a fully static route whose path is exactly p[0..len), or NULL. */
const struct chopin__node *chopin__statics_find(const struct chopin_router *r, const char *p,
                                                size_t len);

/* ---- middleware.c ---- */

/** Composes every endpoint's chain, the global chain and the fallback chain. Returns 0 or
 *  -ENOMEM. */
int chopin__chains_build(struct chopin_router *r);
/** Nonzero when prefix[0..len) is `path` or one of its ancestors on a segment boundary
 *  ("/api" covers "/api", "/api/" and "/api/x", not "/apix"); len 0 covers everything. */
int chopin__prefix_covers(const char *prefix, size_t len, const char *path, size_t path_len);
/** Runs `chain` around handler(req, res, data). Every layer runs: see
 *  chopin__chain_run_for_path for a chain with prefixes to check. */
void chopin__chain_run(const struct chopin__mw_call *chain, uint32_t n, chopin_handler handler,
                       void *data, chopin_req *req, chopin_res *res);
/** Runs the layers of `chain` whose prefix is NULL or covers req->path, in order, around
 *  handler(req, res, data). Returns 0, or -ENOMEM (nothing ran) when more than 16 layers
 *  need picking and the request arena is full. */
int chopin__chain_run_for_path(const struct chopin__mw_call *chain, uint32_t n,
                               chopin_handler handler, void *data, chopin_req *req,
                               chopin_res *res);

#endif
