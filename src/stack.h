/* SPDX-License-Identifier: MIT */
/*
 * What a connection may become besides plain HTTP/1.1, chosen once per worker from the
 * server's options (stack.c), so that conn.c and engine.c name no transport or protocol
 * of their own: they call through this table, whose NULL members are the features that
 * are off (the plain path tests one pointer). docs/design.md, "Layers".
 */
#ifndef CHOPIN_STACK_H
#define CHOPIN_STACK_H

#include <stddef.h>

#include "chopin.h"

struct chopin__conn;
struct chopin__exchange;
struct chopin__tls_ctx;

struct chopin__stack {
    /* The transport of a connection accepted on a CHOPIN__LISTEN_TLS listener, installed
     * before its first byte: 0, or <0 (the connection is closed). */
    int (*secure)(struct chopin__conn *c, struct chopin__tls_ctx *ctx);
    struct chopin__tls_ctx *secure_ctx;
    /* A protocol a plain connection may open with, known by its first bytes (HTTP/2 with
     * prior knowledge): `start` makes it the connection's protocol (0, or <0 with the
     * connection unchanged), the preface included in what it then reads. */
    const char *preface;
    size_t preface_len;
    int (*start)(struct chopin__conn *c);
    /* A protocol an HTTP/1.1 request may switch to with Upgrade (h2c) before its handler
     * runs: the exchange whose 101 switches it, or NULL (HTTP/1.1 answers the request;
     * conn->ask says when the connection must close instead). */
    struct chopin__exchange *(*upgrade)(struct chopin__conn *c, struct chopin__exchange *x);
};

/** Fills `s` from the options: h2c by prior knowledge and by Upgrade when they are on and
 *  the build has HTTP/2, the TLS transport when `tls` (the server's context) is given. */
void chopin__stack_choose(struct chopin__stack *s, const chopin_options *o,
                          struct chopin__tls_ctx *tls);

#endif
