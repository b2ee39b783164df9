/* SPDX-License-Identifier: MIT */
/*
 * HTTP/2 (RFC 9113) as a protocol beside HTTP/1.1 (conn.h, struct chopin__protocol):
 * nghttp2 does the framing, HPACK and flow control, driven without I/O (bytes in from the
 * connection's on_data, frames out into its output queue), so every backend and the TLS
 * transport carry it unchanged. Every stream is an exchange (exchange.h) through the same
 * router and handlers. Built only when pkg-config finds libnghttp2 (CHOPIN_HAVE_NGHTTP2);
 * docs/http2.md.
 */
#ifndef CHOPIN_H2_H
#define CHOPIN_H2_H

#include <stddef.h>

struct chopin__conn;

/* The client connection preface (RFC 9113 §3.4), which a plain connection with prior
 * knowledge starts with. */
#define CHOPIN__H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define CHOPIN__H2_PREFACE_LEN 24

/** Nonzero when the library was built with HTTP/2. */
int chopin__h2_available(void);

/** Starts HTTP/2 on `c`, a fresh connection whose peer's next bytes are its connection
 *  preface (ALPN "h2" on TLS, h2c with prior knowledge): the server's SETTINGS are queued
 *  at once. Returns 0; -ENOMEM; -ENOTSUP when built without nghttp2. On failure the
 *  connection is unchanged. */
int chopin__h2_start(struct chopin__conn *c);

/** The HTTP/1.1 request of exchange `x` (its handler not run yet) asks for h2c (RFC 7540
 *  §3.2: Upgrade: h2c and a valid HTTP2-Settings): it becomes stream 1 of a new HTTP/2
 *  session, whose handler runs now and whose answer goes out as HTTP/2 once the
 *  connection has switched. Returns the exchange whose answer is the 101 that switches
 *  it, for the connection to queue as the request's answer; NULL when the request is not
 *  such an upgrade (HTTP/1.1 answers it), or the connection must close (out of memory:
 *  conn->ask says so). */
struct chopin__exchange *chopin__h2_upgrade(struct chopin__conn *c, struct chopin__exchange *x);

#endif
