/* SPDX-License-Identifier: MIT */
/*
 * The request's side of TLS (issue 16): whether it came over TLS and the client
 * certificate its handshake verified. Without OpenSSL in the build every request is
 * plain.
 */
#include <stdio.h>
#include <string.h>

#include "chopin.h"
#include "http/message.h"
#ifdef CHOPIN_HAVE_TLS
#include "tls/transport.h"
#endif

int chopin_tls_available(void) {
#ifdef CHOPIN_HAVE_TLS
    return 1;
#else
    return 0;
#endif
}

chopin_str chopin_req_tls_subject(chopin_req *req) {
#ifdef CHOPIN_HAVE_TLS
    const char *s = req && req->conn ? chopin__tls_conn_subject(req->conn) : NULL;
    if (s)
        return (chopin_str){s, strlen(s)};
#endif
    (void)req;
    return (chopin_str){"", 0};
}

int chopin_req_is_tls(const chopin_req *req) {
#ifdef CHOPIN_HAVE_TLS
    return req && req->conn && chopin__tls_conn_is_tls(req->conn);
#else
    (void)req;
    return 0;
#endif
}

/* The host of a Host header: "[v6]" or a name/IPv4, without its port. */
static chopin_str host_without_port(chopin_str h) {
    size_t n = h.len;
    if (n && h.ptr[0] == '[') {
        const char *close = memchr(h.ptr, ']', n);
        return (chopin_str){h.ptr, close ? (size_t)(close - h.ptr) + 1 : n};
    }
    const char *colon = memchr(h.ptr, ':', n);
    return (chopin_str){h.ptr, colon ? (size_t)(colon - h.ptr) : n};
}

void chopin_tls_redirect(chopin_req *req, chopin_res *res, chopin_next *next, void *data) {
    if (chopin_req_is_tls(req)) {
        chopin_next_run(next);
        return;
    }
    const char *port = data;
    chopin_str host = host_without_port(chopin_req_header(req, "host"));
    chopin_str target = chopin_req_target(req);
    if (host.len == 0) {
        chopin_res_static(res, 400, "text/plain", "Host required\n", 14);
        return;
    }
    int with_port = port && *port && strcmp(port, "443") != 0;
    size_t cap = 8 + host.len + 1 + (port ? strlen(port) : 0) + target.len + 1;
    char *loc = chopin_req_alloc(req, cap);
    if (!loc) {
        chopin_res_static(res, 503, "text/plain", "busy\n", 5);
        return;
    }
    snprintf(loc, cap, "https://%.*s%s%s%.*s", (int)host.len, host.ptr, with_port ? ":" : "",
             with_port ? port : "", (int)target.len, target.ptr);
    /* 308: the method and body stay (a POST redirected is still a POST, RFC 9110 15.4.9) */
    chopin_res_empty(res, 308);
    chopin_res_header_set(res, "Location", loc);
}
