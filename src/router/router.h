/* SPDX-License-Identifier: MIT */
/* The router seen from the connection: freeze once, then dispatch per request. */
#ifndef CHOPIN_ROUTER_ROUTER_H
#define CHOPIN_ROUTER_ROUTER_H

#include "chopin.h"

/** Makes `r` read-only and composes middleware chains. Called by chopin_serve before the
 *  workers start; later registrations return -EBUSY. Returns 0 or -ENOMEM. */
int chopin__router_freeze(chopin_router *r);

/**
 * Routes `req` (method and decoded, normalised path: router.c's path rules) and runs the
 * matched middleware chain and handler, which fill `res`. No match: 404; path known for
 * other methods: 405 with Allow; HEAD falls back to GET (the connection omits the body);
 * a path refused by the rules: 400. Sets req->path and req->params. Never allocates from
 * the heap (arena only).
 */
void chopin__router_dispatch(const chopin_router *r, chopin_req *req, chopin_res *res);

/**
 * Answers `status` (4xx/5xx) for bytes the connection refused before routing (a parse
 * error, a body too large, a slow client), through the global middleware (prefix NULL or
 * "/") so an access log sees every answer; prefix middleware does not run, there being no
 * trusted path. `req` must be zero-initialised apart from arena, engine and conn: the
 * middleware sees an empty request (method, target and path "", no headers, query,
 * params or body). What the middleware leaves in `res` is the caller's to check: the
 * connection keeps it only if it is still an error (4xx/5xx), and closes after it either
 * way. `r` may be NULL or not frozen (then no middleware runs).
 */
void chopin__router_refuse(const chopin_router *r, chopin_req *req, chopin_res *res,
                           int status);

/** Marks `r` as serving metrics (chopin_metrics_route): its workers then time every
 * request for the histograms. Copied by chopin_router_nest and chopin_router_merge. */
void chopin__router_want_metrics(chopin_router *r);
int chopin__router_metrics_wanted(const chopin_router *r);
struct chopin__endpoint;

/**
 * Issue 18: for a request whose body is still to come, the route registered with
 * chopin_router_stream that it reaches, or NULL (then nothing changed but req->path and
 * req->params, which dispatch sets again once the body is in). Sets req->path and
 * req->params as dispatch does. Costs nothing when no route streams.
 */
const struct chopin__endpoint *chopin__router_streaming(const chopin_router *r, chopin_req *req);
/** That route's body limit (0: the server's). */
uint64_t chopin__endpoint_max_body(const struct chopin__endpoint *ep);
/** Runs that route's middleware chain and handler on `req`. */
void chopin__router_run(const chopin_router *r, const struct chopin__endpoint *ep, chopin_req *req,
                        chopin_res *res);

#endif
