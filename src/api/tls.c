/* SPDX-License-Identifier: MIT */
/*
 * The request's side of TLS (issue 16): whether it came over TLS and the client
 * certificate its handshake verified. Without OpenSSL in the build every request is
 * plain.
 */
#include <string.h>

#include "chopin.h"
#include "http/message.h"
#ifdef CHOPIN_HAVE_TLS
#include "tls/transport.h"
#endif

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
