/* SPDX-License-Identifier: MIT */
/* A small HTTP/1.1 test client over real sockets, plus helpers to run a server in-process. */
#ifndef CHOPIN_TEST_CLIENT_H
#define CHOPIN_TEST_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include "chopin.h"

struct cl_conn {
    int fd;
    size_t len;      /* bytes buffered in buf */
    char buf[1 << 21];
};

struct cl_resp {
    int status;
    int minor;
    char head[8192]; /* the response head, NUL-terminated */
    char *body;      /* malloc'd, NUL-terminated (free with cl_resp_free) */
    size_t body_len;
    int chunked;
};

/** Connects to 127.0.0.1:port (or ::1 when v6) with 5 s socket timeouts. NULL on failure. */
struct cl_conn *cl_open(int port);
/** A plain blocking socket connected to 127.0.0.1:port, or -1: for tests that hold many
 *  raw connections at once (slowloris, bursts) rather than read answers through cl_conn. */
int cl_connect_fd(int port);
/** Sends the NUL-terminated `s` on `fd` whole; 1 when it went out, 0 otherwise (or fd < 0). */
int cl_send_fd(int fd, const char *s);
struct cl_conn *cl_open6(int port);
void cl_close(struct cl_conn *c);
/** Sends all of s (n bytes, or strlen when n == 0). 0 or -1. */
int cl_send(struct cl_conn *c, const char *s, size_t n);
/** Reads one response (Content-Length, chunked, or until close for neither). 0, or -1 on
 *  EOF/timeout/garbage. `head_request`: no body follows. */
int cl_read(struct cl_conn *c, struct cl_resp *r, int head_request);
void cl_resp_free(struct cl_resp *r);
/** The value of header `name` in r (case-insensitive), copied into out; 0 if found. */
int cl_header(const struct cl_resp *r, const char *name, char *out, size_t cap);
/** 1 when the server closed the connection (read returns 0 or ECONNRESET) within 5 s and
 *  sent nothing more, 0 otherwise. */
int cl_closed(struct cl_conn *c);
/** One request on a fresh connection; returns the status or -1. Body in *r if r. */
int cl_get(int port, const char *target, struct cl_resp *r);

/** Starts a server on 127.0.0.1:0 (backend from CHOPIN_BACKEND as usual); NULL on failure. */
/* Over TLS (issue 16): when CHOPIN_TEST_TLS=1 (tests/run.sh sets it for the TLS pass),
 * cl_start listens on https://127.0.0.1:0 with certificates made by tests/tls/mkcerts.sh
 * in a temporary directory (removed at exit), and cl_open/cl_open6 to such a server's
 * port handshake TLS before returning; cl_send, cl_read and cl_closed then speak through
 * it. A server a test starts itself (chopin_server_start) stays plain. cl_connect_fd and
 * cl_send_fd stay raw sockets: the suites built on them run in the plain pass only
 * (tests/tls/plain_only). */
/** Nonzero when the suite runs over TLS. */
int cl_tls(void);
/** cl_open to `port` handshakes TLS from now on (a TLS server the test started itself).
 *  The test certificates' CA is trusted; the name checked is "localhost". */
void cl_mark_tls(int port);
/** The directory of the test certificates (tests/tls/mkcerts.sh), made at the first call
 *  and removed at exit; NULL in a build without TLS. */
const char *cl_certs(void);
chopin_server *cl_start(chopin_router *r, chopin_options *opt);
void cl_stop(chopin_server *s);

#endif
