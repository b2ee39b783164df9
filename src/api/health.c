/* SPDX-License-Identifier: MIT */
/*
 * Liveness and readiness. Readiness fails as soon as the server is asked to stop, while
 * liveness holds: an orchestrator or load balancer that polls readiness stops sending
 * new clients before the drain closes anything, and does not restart a process that is
 * only finishing its work.
 */
#include "engine.h"
#include "http/message.h"

static int stopping(const struct chopin__engine *e) {
    return e->draining ||
           (e->stop_requested && atomic_load_explicit(e->stop_requested, memory_order_relaxed));
}

static void no_store(chopin_res *res) { chopin_res_header_set(res, "Cache-Control", "no-store"); }

static void live(chopin_req *req, chopin_res *res, void *data) {
    (void)req, (void)data;
    chopin_res_static(res, 200, "text/plain; charset=utf-8", "ok\n", 3);
    no_store(res);
}

static void ready(chopin_req *req, chopin_res *res, void *data) {
    const chopin_health_options *h = data;
    if (stopping(req->engine))
        chopin_res_static(res, 503, "text/plain; charset=utf-8", "draining\n", 9);
    else if (h->check && !h->check(h->arg))
        chopin_res_static(res, 503, "text/plain; charset=utf-8", "not ready\n", 10);
    else
        chopin_res_static(res, 200, "text/plain; charset=utf-8", "ready\n", 6);
    no_store(res);
}

int chopin_health_routes(chopin_router *r, const chopin_health_options *h) {
    if (!r || !h || (!h->live_path && !h->ready_path))
        return CHOPIN_EINVAL;
    int rc = h->live_path ? chopin_router_get(r, h->live_path, live, NULL) : 0;
    if (rc == 0 && h->ready_path)
        rc = chopin_router_get(r, h->ready_path, ready, (void *)h);
    return rc;
}
