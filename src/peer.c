/* SPDX-License-Identifier: MIT */
/* The PROXY protocol step and the relayed client address (peer.h). */
#include "peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "http/proxy.h"
#include "listen.h"

/* PP2_CLIENT_SSL: the first byte of a PP2_TYPE_SSL value, bit 0 (2.2.5). */
#define PP2_CLIENT_SSL 0x01

/* Whether the socket's peer may send a PROXY header: a trusted proxy, or anyone who can
 * reach a Unix socket. No socket (the sans-I/O tests) counts as trusted. */
static int source_trusted(const struct chopin__conn *c) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (c->fd < 0)
        return 1;
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    const struct chopin__trust *t = &c->engine->cfg->trusted;
    switch (ss.ss_family) {
    case AF_UNIX:
        return 1;
    case AF_INET:
        return chopin__trust_match(t, AF_INET,
                                   (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr);
    case AF_INET6:
        return chopin__trust_match(t, AF_INET6,
                                   (const uint8_t *)&((struct sockaddr_in6 *)&ss)->sin6_addr);
    default:
        return 0;
    }
}

static void refuse(struct chopin__conn *c) {
    chopin__peer_release(c);
    chopin__conn_on_error(c); /* no answer: whoever this is, it is not our proxy */
}

/* The header is whole: keep what it says about the client. */
static void take_header(struct chopin__conn *c, const struct chopin__proxy_info *info) {
    struct chopin__peer *p = c->peer;
    free(p->stash);
    p->stash = NULL;
    p->have = 0;
    if (!info->family || info->local) {
        chopin__peer_release(c); /* the socket's own addresses stand */
        return;
    }
    p->family = info->family;
    p->port = info->src_port;
    memcpy(p->addr, info->src, sizeof p->addr);
    size_t len;
    const uint8_t *ssl = chopin__proxy_tlv(info, CHOPIN__PP2_TYPE_SSL, &len);
    p->tls = ssl && len >= 1 && (ssl[0] & PP2_CLIENT_SSL);
}

/* The header arrives in pieces: keep them (bounded by CHOPIN__PROXY_MAX, beyond which the
 * parser has refused it). Returns -1 when out of memory. */
static int stash(struct chopin__peer *p, const char *data, size_t n) {
    if (!p->stash && !(p->stash = malloc(CHOPIN__PROXY_MAX)))
        return -1;
    size_t room = CHOPIN__PROXY_MAX - p->have;
    size_t take = n < room ? n : room;
    memcpy(p->stash + p->have, data, take);
    p->have += (uint32_t)take;
    return 0;
}

int chopin__peer_proxy_input(struct chopin__conn *c, char **data, size_t *n) {
    if (!c->peer) {
        if (!source_trusted(c) || !(c->peer = calloc(1, sizeof *c->peer))) {
            refuse(c);
            return 0;
        }
    }
    struct chopin__peer *p = c->peer;
    size_t before = p->have; /* header bytes taken from earlier input */
    const uint8_t *buf = (const uint8_t *)*data;
    size_t len = *n;
    if (p->stash) {
        if (stash(p, *data, *n) < 0) {
            refuse(c);
            return 0;
        }
        buf = p->stash;
        len = p->have;
    }
    struct chopin__proxy_info info;
    long r = chopin__proxy_parse(buf, len, &info);
    if (r == CHOPIN__PROXY_INVALID) {
        refuse(c);
        return 0;
    }
    if (r == CHOPIN__PROXY_MORE) {
        if (!p->stash && stash(p, *data, *n) < 0)
            refuse(c);
        return 0;
    }
    size_t used = (size_t)r - before; /* of this input */
    take_header(c, &info);
    c->listen_flags &= (uint8_t)~CHOPIN__LISTEN_PROXY;
    *data += used;
    *n -= used;
    return 1;
}

void chopin__peer_release(struct chopin__conn *c) {
    if (!c->peer)
        return;
    free(c->peer->stash);
    free(c->peer);
    c->peer = NULL;
}

int chopin__peer_trusted(const struct chopin__conn *c) {
    const struct chopin__peer *p = c->peer;
    if (p && p->family)
        return chopin__trust_match(&c->engine->cfg->trusted, p->family, p->addr);
    return c->fd >= 0 && source_trusted(c);
}
