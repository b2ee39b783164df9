/* SPDX-License-Identifier: MIT */
/*
 * The connection's peer as a load balancer reports it: the PROXY protocol step at the
 * start of a connection accepted on a ?proxy listener (listen.h), and the client address
 * it relays, which chopin_req_remote_addr then gives. The header is believed only from a
 * trusted source (options.trusted_proxies; a Unix socket's peer always: the socket file's
 * permissions choose who may connect); from anyone else, and when it is malformed or not
 * whole within proxy_timeout_ms, the connection is closed without a word.
 */
#ifndef CHOPIN_PEER_H
#define CHOPIN_PEER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

struct chopin__conn;

/* A connection's PROXY state (conn->peer): allocated at its first bytes, freed with it. */
struct chopin__peer {
    uint8_t family;   /* AF_INET / AF_INET6: the relayed client below; 0: the socket's
                         peer stands (LOCAL, UNKNOWN), or the header is not whole yet */
    uint8_t tls;      /* v2: the client spoke TLS to the proxy (PP2_TYPE_SSL, PP2_CLIENT_SSL) */
    uint16_t port;
    uint8_t addr[16];
    uint32_t have;    /* bytes in stash */
    uint8_t *stash;   /* the header while it arrives in pieces (CHOPIN__PROXY_MAX bytes) */
};

/**
 * Takes the PROXY header from the start of the connection's input (call it while
 * conn->listen_flags has CHOPIN__LISTEN_PROXY: it clears the flag once the header is
 * whole). Returns 1 when the input continues at *data (*n bytes, possibly 0), 0 when
 * nothing more is to be done with it now: the header is still arriving, or it was
 * refused and the connection asked to close.
 */
int chopin__peer_proxy_input(struct chopin__conn *c, char **data, size_t *n);

/** Frees the connection's PROXY state (with the connection). */
void chopin__peer_release(struct chopin__conn *c);

/** The client `p` relayed (a connection's chopin__conn_peer, may be NULL) as a socket
 *  address in *ss: 1, or 0 when there is none (the socket's own peer stands). */
static inline int chopin__peer_sockaddr(const struct chopin__peer *p,
                                        struct sockaddr_storage *ss) {
    if (!p || !p->family)
        return 0;
    memset(ss, 0, sizeof *ss);
    if (p->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(p->port);
        memcpy(&in->sin_addr, p->addr, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(p->port);
        memcpy(&in6->sin6_addr, p->addr, 16);
    }
    return 1;
}

/** Nonzero when the connection's immediate peer (the relayed client if a PROXY header
 *  named one, else the socket's) is a trusted proxy, or a Unix socket's peer. */
int chopin__peer_trusted(const struct chopin__conn *c);

#endif
