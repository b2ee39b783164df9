/* SPDX-License-Identifier: MIT */
/*
 * Starting a server over real sockets: a handler reads its own server's counters, a
 * second server on an address in use fails instead of splitting the traffic (unless it
 * shares on purpose), a restart over connections in TIME_WAIT still binds, and a port
 * out of range is refused with that reason. Runs once per backend (CHOPIN_BACKEND).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

/* ----- handlers ------------------------------------------------------------------------ */

static chopin_server *started;

static void my_stats(chopin_req *req, chopin_res *res, void *data) {
    chopin_server *s = chopin_req_server(req);
    chopin_stats st;
    chopin_server_stats(s, &st);
    char *text = chopin_req_alloc(req, 64);
    snprintf(text, 64, "%s %llu", s == started ? "same" : "other",
             (unsigned long long)st.requests);
    chopin_res_text(res, 200, text);
}

static void hello(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_text(res, 200, "hello");
}

static chopin_router *router(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/stats", my_stats, NULL);
    chopin_router_get(r, "/", hello, NULL);
    return r;
}

static chopin_options quiet_options(void) {
    chopin_options o = chopin_options_default();
    o.quiet = 1;
    o.workers = 2;
    return o;
}

/* ----- point 8: a handler reaches its server ------------------------------------------- */

static void handler_reads_its_servers_counters(void) {
    chopin_router *r = router();
    chopin_options o = quiet_options();
    o.workers = 1; /* one worker: the count is exact */
    started = cl_start(r, &o);
    CHECK(started != NULL);
    if (!started)
        return;
    int port = chopin_server_port(started);
    struct cl_conn *c = cl_open(port);
    CHECK(c != NULL);
    for (int i = 0; c && i < 3; i++) {
        struct cl_resp resp;
        cl_send(c, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n", 0);
        CHECK_INT(cl_read(c, &resp, 0), 0);
        char want[32];
        snprintf(want, sizeof want, "same %d", i); /* the requests answered before this one */
        CHECK_MEM(resp.body, resp.body_len, want);
        cl_resp_free(&resp);
    }
    cl_close(c);
    cl_stop(started);
    started = NULL;
    chopin_router_free(r);
}

/* ----- point 12: an address in use ------------------------------------------------------- */

static int start_on(chopin_router *r, int port, const chopin_options *o, chopin_server **out,
                    const char **err) {
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%d", port);
    capture_begin();
    int rc = chopin_server_start(r, address, o, out);
    *err = capture_end();
    return rc;
}

static void second_server_on_a_used_port_fails(void) {
    chopin_router *r = router();
    chopin_options o = quiet_options();
    chopin_server *a = cl_start(r, &o), *b = (chopin_server *)&b;
    CHECK(a != NULL);
    if (!a)
        return;
    int port = chopin_server_port(a);
    const char *err;
    int rc = start_on(r, port, &o, &b, &err);
    CHECK_INT(rc, CHOPIN_EADDRINUSE);
    CHECK(b == NULL);
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%d", port);
    CHECK(strstr(err, where) != NULL);
    CHECK(strstr(err, "in use") != NULL);
    if (rc == 0)
        cl_stop(b);
    /* the first one still has all the traffic */
    CHECK_INT(cl_get(port, "/", NULL), 200);
    cl_stop(a);
    chopin_router_free(r);
}

static void sharing_on_purpose_starts(void) {
    chopin_router *r = router();
    chopin_options o = quiet_options();
    chopin_server *a = cl_start(r, &o), *b = NULL;
    CHECK(a != NULL);
    if (!a)
        return;
    int port = chopin_server_port(a);
    o.share_port = 1;
    const char *err;
    CHECK_INT(start_on(r, port, &o, &b, &err), 0);
    CHECK(b != NULL);
    if (b) {
        CHECK_INT(chopin_server_port(b), port);
        cl_stop(b);
    }
    cl_stop(a);
    chopin_router_free(r);
}

/* A socket of another kind holding the port: bound only, without SO_REUSEPORT. */
static void plain_bound_socket_holds_the_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    CHECK_INT(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    chopin_router *r = router();
    chopin_options o = quiet_options();
    chopin_server *s = NULL;
    const char *err;
    int rc = start_on(r, ntohs(sa.sin_port), &o, &s, &err);
    CHECK_INT(rc, CHOPIN_EADDRINUSE);
    if (rc == 0)
        cl_stop(s);
    close(fd);
    chopin_router_free(r);
}

/* Connections the server closed first stay in TIME_WAIT on its port after it stops; a
 * restart on that port must bind, as for any server. */
static void restart_over_time_wait_binds(void) {
    chopin_router *r = router();
    chopin_options o = quiet_options();
    chopin_server *a = cl_start(r, &o), *b = NULL;
    CHECK(a != NULL);
    if (!a)
        return;
    int port = chopin_server_port(a);
    for (int i = 0; i < 3; i++) {
        struct cl_conn *c = cl_open(port);
        struct cl_resp resp;
        cl_send(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0);
        CHECK_INT(cl_read(c, &resp, 0), 0);
        cl_resp_free(&resp);
        CHECK(cl_closed(c)); /* the server's FIN came first: its side waits in TIME_WAIT */
        cl_close(c);
    }
    cl_stop(a);
    const char *err;
    int rc = start_on(r, port, &o, &b, &err);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        CHECK_INT(cl_get(port, "/", NULL), 200);
        cl_stop(b);
    } else {
        fprintf(stderr, "%s", err);
    }
    chopin_router_free(r);
}

/* ----- point 13: a port out of range says so ------------------------------------------- */

static void port_out_of_range_is_named(void) {
    chopin_router *r = router();
    chopin_options o = quiet_options();
    chopin_server *s = NULL;
    const char *err;
    int rc = start_on(r, 99999, &o, &s, &err);
    CHECK_INT(rc, CHOPIN_EINVAL);
    CHECK(strstr(err, "127.0.0.1:99999") != NULL);
    CHECK(strstr(err, "out of range") != NULL);
    if (rc == 0)
        cl_stop(s);
    chopin_router_free(r);
}

int main(void) {
    RUN(handler_reads_its_servers_counters);
    RUN(second_server_on_a_used_port_fails);
    RUN(sharing_on_purpose_starts);
    RUN(plain_bound_socket_holds_the_port);
    RUN(restart_over_time_wait_binds);
    RUN(port_out_of_range_is_named);
    TEST_END();
}
