/* The router seen from the connection: freeze once, then dispatch per request. */
#ifndef CHOPIN_ROUTER_ROUTER_H
#define CHOPIN_ROUTER_ROUTER_H

#include "chopin.h"

/** Makes `r` read-only and composes middleware chains. Called by chopin_serve before the
 *  workers start; later registrations return -EBUSY. Returns 0 or -ENOMEM. */
int chopin__router_freeze(chopin_router *r);

/**
 * Routes `req` (method and decoded path) and runs the matched middleware chain and
 * handler, which fill `res`. No match: 404; path known for other methods: 405 with Allow;
 * HEAD falls back to GET (the connection omits the body). Fills req->params. Never
 * allocates from the heap (arena only).
 */
void chopin__router_dispatch(const chopin_router *r, chopin_req *req, chopin_res *res);

#endif
