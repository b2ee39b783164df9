/* SPDX-License-Identifier: MIT */
/*
 * Router micro-benchmark: ns per dispatch (lookup, params, an empty middleware chain and a
 * handler that sets a static body) on a 100-route table shaped like a real REST API:
 * about half fully static paths (served by the freeze-time hash table), half with
 * :params and a few *wildcards (served by the segment tree).
 *
 * Built by bench/micro.sh: cc -O2 -g -Iinclude -Isrc -D_GNU_SOURCE bench/micro_router.c
 * build/libchopin.a -pthread -luring. Prints one line per scenario.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chopin.h"
#include "api/exchange.h"
#include "http/message.h"
#include "mem/arena.h"
#include "router/router.h"

static const char *const static_routes[] = {
    "/", "/about", "/health", "/metrics", "/login", "/logout", "/signup", "/search", "/feed",
    "/settings", "/settings/profile", "/settings/account", "/settings/emails",
    "/settings/keys", "/api/v1/users", "/api/v1/repos", "/api/v1/orgs", "/api/v1/teams",
    "/api/v1/gists", "/api/v1/events", "/api/v1/notifications", "/api/v1/rate_limit",
    "/api/v1/emojis", "/api/v1/meta", "/api/v1/user", "/api/v1/user/repos",
    "/api/v1/user/orgs", "/api/v1/user/keys", "/api/v1/user/emails", "/api/v1/user/followers",
    "/api/v1/user/following", "/api/v1/user/starred", "/api/v1/user/subscriptions",
    "/api/v1/search/repositories", "/api/v1/search/code", "/api/v1/search/issues",
    "/api/v1/search/users", "/static/app.js", "/static/app.css", "/static/logo.png", "/docs",
    "/docs/api", "/docs/guides", "/blog", "/pricing", "/contact", "/terms", "/privacy",
    "/plaintext", "/json",
};

static const char *const param_routes[] = {
    "/api/v1/users/:user", "/api/v1/users/:user/repos", "/api/v1/users/:user/orgs",
    "/api/v1/users/:user/gists", "/api/v1/users/:user/followers",
    "/api/v1/users/:user/following", "/api/v1/users/:user/keys", "/api/v1/users/:user/events",
    "/api/v1/repos/:owner/:repo", "/api/v1/repos/:owner/:repo/issues",
    "/api/v1/repos/:owner/:repo/issues/:number",
    "/api/v1/repos/:owner/:repo/issues/:number/comments", "/api/v1/repos/:owner/:repo/pulls",
    "/api/v1/repos/:owner/:repo/pulls/:number", "/api/v1/repos/:owner/:repo/commits",
    "/api/v1/repos/:owner/:repo/commits/:sha", "/api/v1/repos/:owner/:repo/branches",
    "/api/v1/repos/:owner/:repo/branches/:branch", "/api/v1/repos/:owner/:repo/tags",
    "/api/v1/repos/:owner/:repo/releases", "/api/v1/repos/:owner/:repo/releases/:id",
    "/api/v1/repos/:owner/:repo/contents/*path", "/api/v1/repos/:owner/:repo/forks",
    "/api/v1/repos/:owner/:repo/stargazers", "/api/v1/repos/:owner/:repo/collaborators",
    "/api/v1/repos/:owner/:repo/hooks", "/api/v1/repos/:owner/:repo/hooks/:id",
    "/api/v1/repos/:owner/:repo/labels", "/api/v1/repos/:owner/:repo/labels/:name",
    "/api/v1/repos/:owner/:repo/milestones", "/api/v1/orgs/:org", "/api/v1/orgs/:org/repos",
    "/api/v1/orgs/:org/members", "/api/v1/orgs/:org/teams", "/api/v1/teams/:id",
    "/api/v1/teams/:id/members", "/api/v1/gists/:id", "/api/v1/gists/:id/comments",
    "/api/v1/gists/:id/star", "/api/v1/notifications/threads/:id", "/users/:name",
    "/users/:name/posts", "/users/:name/posts/:post", "/posts/:id", "/posts/:id/comments",
    "/tags/:tag", "/static/*file", "/download/:id", "/blog/:slug", "/docs/api/:section",
};

static const char *const static_requests[] = {
    "/plaintext", "/json", "/api/v1/user/repos", "/settings/profile", "/",
    "/api/v1/search/repositories", "/static/app.js", "/health",
};

static const char *const param_requests[] = {
    "/api/v1/repos/torvalds/linux/issues/1234", "/users/alice/posts/99",
    "/api/v1/users/bob", "/api/v1/repos/chopin/server/contents/src/router/tree.c",
    "/posts/42/comments", "/api/v1/orgs/debian/members", "/blog/hello-world",
    "/static/img/a.png",
};

static const char *const missing_requests[] = {
    "/nope", "/api/v1/nope", "/api/v1/repos/a/b/c/d/e", "/users/",
};

static void handler(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_static(res, 200, NULL, "ok", 2);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Dispatches each target of `targets` in turn, `rounds` times; returns ns per dispatch. */
static double run_once(const chopin_router *r, const char *const *targets, size_t n, long rounds,
                  struct chopin__arena *arena, int *bad)
{
    chopin_req req;
    chopin_res res;
    memset(&req, 0, sizeof(req));
    size_t lens[16];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(targets[i]);
    double t0 = now_ns();
    for (long k = 0; k < rounds; k++) {
        for (size_t i = 0; i < n; i++) {
            req.head.method_id = CHOPIN_METHOD_GET;
            req.head.path = targets[i];
            req.head.path_len = (uint32_t)lens[i];
            req.arena = arena;
            chopin__res_init(&res, arena);
            chopin__router_dispatch(r, &req, &res);
            *bad += res.status == 0;
            chopin__arena_reset(arena);
        }
    }
    return (now_ns() - t0) / ((double)rounds * (double)n);
}

/* The best of several batches: the machine is shared (other builds, two cores), and the
 * minimum is the figure that preemption does not inflate. */
static double run(const chopin_router *r, const char *const *targets, size_t n, long rounds,
                  struct chopin__arena *arena, int *bad)
{
    double best = 1e30;
    for (int batch = 0; batch < 15; batch++) {
        double ns = run_once(r, targets, n, rounds / 15 + 1, arena, bad);
        if (ns < best)
            best = ns;
    }
    return best;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 1500000;
    chopin_router *r = chopin_router_new();
    size_t nstatic = sizeof(static_routes) / sizeof(static_routes[0]);
    size_t nparam = sizeof(param_routes) / sizeof(param_routes[0]);
    for (size_t i = 0; i < nstatic; i++)
        if (chopin_router_get(r, static_routes[i], handler, NULL) < 0)
            fprintf(stderr, "%s\n", chopin_router_error(r));
    for (size_t i = 0; i < nparam; i++)
        if (chopin_router_get(r, param_routes[i], handler, NULL) < 0)
            fprintf(stderr, "%s\n", chopin_router_error(r));
    if (chopin__router_freeze(r) < 0)
        return 1;
    struct chopin__arena arena;
    chopin__arena_init(&arena, 4096, 1 << 20);
    int bad = 0;
    run(r, static_requests, 8, rounds / 10, &arena, &bad); /* warm-up */
    double s = run(r, static_requests, 8, rounds, &arena, &bad);
    double p = run(r, param_requests, 8, rounds, &arena, &bad);
    double m = run(r, missing_requests, 4, rounds, &arena, &bad);
    printf("router: %zu routes (%zu static, %zu with params)\n", nstatic + nparam, nstatic,
           nparam);
    printf("router static   %8.1f ns/lookup\n", s);
    printf("router param    %8.1f ns/lookup\n", p);
    printf("router 404      %8.1f ns/lookup\n", m);
    chopin__arena_destroy(&arena);
    chopin_router_free(r);
    return bad != 0;
}
