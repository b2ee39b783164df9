/* SPDX-License-Identifier: MIT */
/*
 * The TLS transport as the rest of the library sees it (transport.c): installed on a
 * connection accepted by an https:// listener, and the server's context. Includes no
 * OpenSSL header; only built when CHOPIN_HAVE_TLS is defined (the callers test it).
 */
#ifndef CHOPIN_TLS_TRANSPORT_H
#define CHOPIN_TLS_TRANSPORT_H

#include "chopin.h"

struct chopin__conn;
struct chopin__tls_ctx;
struct chopin__tls_session;

/** Builds the server's TLS context from the options and the environment; prints why on
 *  stderr and returns -EINVAL when it cannot. */
int chopin__tls_server_ctx(const chopin_options *opt, struct chopin__tls_ctx **out);
/** chopin_server_tls_reload: 0, or -EINVAL after one line on stderr saying why. */
int chopin__tls_server_reload(struct chopin__tls_ctx *ctx);
/** Makes `c` (fresh, before its first byte) speak TLS on `ctx`. 0 or -ENOMEM. */
int chopin__tls_transport_install(struct chopin__conn *c, struct chopin__tls_ctx *ctx);
/** The session of a TLS connection, or NULL for a plain one. */
const struct chopin__tls_session *chopin__tls_transport_session(const struct chopin__conn *c);
/** The verified client certificate's subject, or NULL. */
const char *chopin__tls_conn_subject(const struct chopin__conn *c);
int chopin__tls_conn_is_tls(const struct chopin__conn *c);

#endif
