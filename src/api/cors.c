/* SPDX-License-Identifier: MIT */
/*
 * CORS (WHATWG Fetch, "CORS protocol"): answers preflights, and marks the answers to
 * allowed origins so the browser hands them to the page. Nothing here refuses a request:
 * an origin that is not allowed simply gets no CORS headers, and the browser withholds
 * the answer from the page (the server must still authorise requests by other means).
 */
#include <stdio.h>
#include <string.h>

#include "chopin.h"

#define DEFAULT_METHODS "GET, HEAD, POST, PUT, PATCH, DELETE"
/* Longer Origin or Access-Control-Request-Headers values are not honoured. */
#define VALUE_MAX 1024

static int any_origin(const chopin_cors_options *o) {
    return !o->origins || strcmp(o->origins, "*") == 0;
}

/* Whether `origin` is one of the comma-separated origins (spaces around commas ignored). */
static int origin_listed(const char *list, chopin_str origin) {
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p + strcspn(p, ",");
        const char *last = end;
        while (last > p && last[-1] == ' ')
            last--;
        if ((size_t)(last - p) == origin.len && origin.len && memcmp(p, origin.ptr, origin.len) == 0)
            return 1;
        p = end;
    }
    return 0;
}

/* A request header's value as a C string in `buf`; 0 when absent or too long. */
static int header_text(const chopin_req *req, const char *name, char *buf, size_t cap) {
    chopin_str v = chopin_req_header(req, name);
    if (!v.ptr || v.len >= cap)
        return 0;
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = '\0';
    return 1;
}

/* Access-Control-Allow-Origin (and Credentials): "*" only when every origin is allowed
 * and no credentials are involved (Fetch refuses "*" with credentials); otherwise the
 * origin itself, and Vary: Origin so a cache keeps one answer per origin. */
static void allow_origin(chopin_res *res, const chopin_cors_options *o, const char *origin) {
    if (any_origin(o) && !o->credentials) {
        chopin_res_header_set(res, "Access-Control-Allow-Origin", "*");
        return;
    }
    chopin_res_header_set(res, "Access-Control-Allow-Origin", origin);
    chopin_res_header_add(res, "Vary", "Origin");
    if (o->credentials)
        chopin_res_header_set(res, "Access-Control-Allow-Credentials", "true");
}

static void preflight(chopin_req *req, chopin_res *res, const chopin_cors_options *o,
                      const char *origin, int allowed) {
    chopin_res_empty(res, 204);
    if (!allowed)
        return;
    allow_origin(res, o, origin);
    chopin_res_header_set(res, "Access-Control-Allow-Methods",
                          o->methods ? o->methods : DEFAULT_METHODS);
    char asked[VALUE_MAX];
    if (o->headers) {
        chopin_res_header_set(res, "Access-Control-Allow-Headers", o->headers);
    } else if (header_text(req, "access-control-request-headers", asked, sizeof asked)) {
        chopin_res_header_set(res, "Access-Control-Allow-Headers", asked);
        chopin_res_header_add(res, "Vary", "Access-Control-Request-Headers");
    }
    if (o->max_age) {
        char age[16];
        snprintf(age, sizeof age, "%u", o->max_age);
        chopin_res_header_set(res, "Access-Control-Max-Age", age);
    }
}

void chopin_cors(chopin_req *req, chopin_res *res, chopin_next *next, void *opts) {
    const chopin_cors_options *o = opts;
    char origin[VALUE_MAX];
    if (!header_text(req, "origin", origin, sizeof origin)) {
        chopin_next_run(next); /* not a cross-origin request (or an absurd Origin) */
        return;
    }
    chopin_str os = {origin, strlen(origin)};
    int allowed = any_origin(o) || origin_listed(o->origins, os);
    if (chopin_req_method(req) == CHOPIN_METHOD_OPTIONS &&
        chopin_req_header(req, "access-control-request-method").ptr) {
        preflight(req, res, o, origin, allowed);
        return;
    }
    chopin_next_run(next);
    if (!allowed)
        return;
    allow_origin(res, o, origin);
    if (o->expose)
        chopin_res_header_set(res, "Access-Control-Expose-Headers", o->expose);
}
