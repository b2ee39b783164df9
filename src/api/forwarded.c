/* SPDX-License-Identifier: MIT */
/*
 * The client as seen through trusted proxies (chopin_req_client_addr, _client_scheme):
 * Forwarded (RFC 7239), else X-Forwarded-For and X-Forwarded-Proto, believed only when the
 * connection's peer is a trusted proxy (options.trusted_proxies), and then only as far as
 * trusted proxies wrote them: the chain is read from the right, each trusted hop passed
 * over, and the first address that is not a trusted proxy is the client (a client can
 * write anything in the header it sends; only what the proxies appended after it counts).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "http/forwarded.h"
#include "http/message.h"
#include "listen.h"
#include "peer.h"

static chopin_str str_of(const char *p, size_t len) { return (chopin_str){p, len}; }

static int name_is(const struct chopin__header *h, const char *name) {
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

/* Every line of header `name`, in order, through `parse`. -1 when one is malformed. */
static int collect(const chopin_req *req, const char *name,
                   int (*parse)(const char *, size_t, struct chopin__fwd_hop *, int *),
                   struct chopin__fwd_hop *hops, int *n) {
    for (uint32_t i = 0; i < req->head.nheaders; i++) {
        const struct chopin__header *h = &req->head.headers[i];
        if (name_is(h, name) && parse(h->value, h->value_len, hops, n) < 0)
            return -1;
    }
    return 0;
}

static int trusted_node(const chopin_req *req, const struct chopin__fwd_hop *hop) {
    return hop->node && chopin__trust_match_text(&req->engine->cfg->trusted, hop->node,
                                                 hop->node_len);
}

/* The hops the trusted proxies vouch for, and which of them is the client: -1 when the
 * headers are not to be believed (an untrusted peer, none, malformed, a hop without for=). */
static int client_hop(const chopin_req *req, struct chopin__fwd_hop *hops, int *n, int *from_xff) {
    *n = 0;
    *from_xff = 0;
    if (!req->conn || !chopin__peer_trusted(req->conn))
        return -1;
    if (collect(req, "forwarded", chopin__forwarded_parse, hops, n) < 0)
        return -1;
    if (*n == 0) {
        *from_xff = 1;
        if (collect(req, "x-forwarded-for", chopin__xff_parse, hops, n) < 0)
            return -1;
    }
    int i = *n - 1;
    while (i > 0 && trusted_node(req, &hops[i]))
        i--;
    return i >= 0 && hops[i].node ? i : -1;
}

/* The connection's peer without its port: the relayed client, or the socket's. */
static chopin_str immediate_addr(chopin_req *req) {
    static const char unknown[] = "unknown";
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = req->conn ? chopin__conn_fd(req->conn) : -1;
    if (!(req->conn && chopin__peer_sockaddr(req->conn->peer, &ss)) &&
        (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0))
        return str_of(unknown, sizeof unknown - 1);
    if (ss.ss_family == AF_UNIX)
        return str_of("unix", 4);
    char *buf = chopin_req_alloc(req, INET6_ADDRSTRLEN);
    const void *addr = ss.ss_family == AF_INET6
                           ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                           : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
    if (!buf || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ||
        !inet_ntop(ss.ss_family, addr, buf, INET6_ADDRSTRLEN))
        return str_of(unknown, sizeof unknown - 1);
    return str_of(buf, strlen(buf));
}

chopin_str chopin_req_client_addr(chopin_req *req) {
    struct chopin__fwd_hop hops[CHOPIN__FWD_MAX];
    int n, from_xff;
    int i = client_hop(req, hops, &n, &from_xff);
    if (i < 0)
        return immediate_addr(req);
    return str_of(hops[i].node, hops[i].node_len);
}

/* "http" or "https" (any case) in v[0..len), else NULL. */
static const char *scheme_of(const char *v, size_t len) {
    if (len == 4 && strncasecmp(v, "http", 4) == 0)
        return "http";
    if (len == 5 && strncasecmp(v, "https", 5) == 0)
        return "https";
    return NULL;
}

/* X-Forwarded-Proto: the value of the same hop when it has one per hop, else its last,
 * written by the proxy next to us. */
static const char *xfp_scheme(const chopin_req *req, int hop, int nhops) {
    struct chopin__fwd_hop protos[CHOPIN__FWD_MAX];
    int n = 0;
    if (collect(req, "x-forwarded-proto", chopin__xff_parse, protos, &n) < 0 || n == 0)
        return NULL;
    const struct chopin__fwd_hop *p = &protos[n == nhops ? hop : n - 1];
    return scheme_of(p->node, p->node_len);
}

chopin_str chopin_req_client_scheme(chopin_req *req) {
    struct chopin__fwd_hop hops[CHOPIN__FWD_MAX];
    int n, from_xff;
    int i = client_hop(req, hops, &n, &from_xff);
    const char *s = NULL;
    if (i >= 0)
        s = from_xff ? xfp_scheme(req, i, n)
                     : (hops[i].proto ? scheme_of(hops[i].proto, hops[i].proto_len) : NULL);
    if (!s && req->conn) {
        const struct chopin__peer *p = req->conn->peer;
        s = (p && p->tls) || (req->conn->listen_flags & CHOPIN__LISTEN_TLS) ? "https" : "http";
    }
    if (!s)
        s = "http";
    return str_of(s, strlen(s));
}
