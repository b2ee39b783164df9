/* SPDX-License-Identifier: MIT */
/*
 * The client as seen through trusted proxies (chopin_req_client_addr, _client_scheme) over
 * real sockets: X-Forwarded-For/-Proto and Forwarded believed from a trusted peer, and only
 * as far as trusted proxies wrote them; ignored from an untrusted one; a malformed header
 * ignored; a PROXY-relayed peer is the one trusted or not; a PROXY v2 header saying the
 * client spoke TLS makes the scheme https. Runs once per backend (CHOPIN_BACKEND).
 */
#include <string.h>

#include "client.h"
#include "test.h"

static void client(chopin_req *req, chopin_res *res, void *data) {
    chopin_str a = chopin_req_client_addr(req), s = chopin_req_client_scheme(req);
    char *text = chopin_req_alloc(req, a.len + s.len + 2);
    snprintf(text, a.len + s.len + 2, "%.*s %.*s", (int)a.len, a.ptr, (int)s.len, s.ptr);
    chopin_res_text(res, 200, text);
}

static chopin_server *start(chopin_router **r, const char *address, const char *trusted) {
    *r = chopin_router_new();
    chopin_router_get(*r, "/client", client, NULL);
    chopin_options o = chopin_options_default();
    o.quiet = 1;
    o.workers = 1;
    o.trusted_proxies = trusted;
    chopin_server *s = NULL;
    if (chopin_server_start(*r, address, &o, &s) < 0)
        return NULL;
    return s;
}

/* GET /client with `prefix` sent first (a PROXY header, or "") and `headers`. */
static const char *ask(int port, const void *prefix, size_t plen, const char *headers) {
    static char body[256];
    char req[1024];
    snprintf(req, sizeof req, "GET /client HTTP/1.1\r\nHost: x\r\n%s\r\n", headers);
    struct cl_resp r;
    body[0] = '\0';
    struct cl_conn *c = cl_open(port);
    if (!c)
        return body;
    if ((!plen || cl_send(c, prefix, plen) == 0) && cl_send(c, req, 0) == 0 && cl_read(c, &r, 0) == 0) {
        snprintf(body, sizeof body, "%s", r.status == 200 ? r.body : "");
        cl_resp_free(&r);
    }
    cl_close(c);
    return body;
}

static void trusted_peer(void) {
    chopin_router *r;
    chopin_server *s = start(&r, "127.0.0.1:0", "127.0.0.1, 10.0.0.0/8");
    CHECK(s != NULL);
    if (s) {
        int p = chopin_server_port(s);
        CHECK_STR(ask(p, "", 0, ""), "127.0.0.1 http");
        CHECK_STR(ask(p, "", 0, "X-Forwarded-For: 203.0.113.9, 10.0.0.5\r\n"
                                "X-Forwarded-Proto: https\r\n"), "203.0.113.9 https");
        /* What the client wrote itself (the left part) is not believed past an untrusted
         * hop. */
        CHECK_STR(ask(p, "", 0, "X-Forwarded-For: 1.1.1.1, 198.51.100.4, 10.0.0.5\r\n"),
                  "198.51.100.4 http");
        /* Two lines are one list. */
        CHECK_STR(ask(p, "", 0, "X-Forwarded-For: 198.51.100.4\r\nX-Forwarded-For: 10.0.0.5\r\n"),
                  "198.51.100.4 http");
        /* Every hop trusted: the leftmost is the client. */
        CHECK_STR(ask(p, "", 0, "X-Forwarded-For: 10.1.1.1, 10.0.0.5\r\n"), "10.1.1.1 http");
        CHECK_STR(ask(p, "", 0, "Forwarded: for=\"[2001:db8:cafe::17]:4711\";proto=https\r\n"),
                  "2001:db8:cafe::17 https");
        /* Forwarded comes first when both are there. */
        CHECK_STR(ask(p, "", 0, "Forwarded: for=192.0.2.60;proto=http\r\n"
                                "X-Forwarded-For: 203.0.113.9\r\n"), "192.0.2.60 http");
        CHECK_STR(ask(p, "", 0, "Forwarded: for=\"192.0.2.60\\\"\r\n"), "127.0.0.1 http");
        CHECK_STR(ask(p, "", 0, "X-Forwarded-For: 203.0.113.9,,\r\n"), "127.0.0.1 http");
        CHECK_STR(ask(p, "", 0, "X-Forwarded-Proto: gopher\r\n"
                                "X-Forwarded-For: 203.0.113.9\r\n"), "203.0.113.9 http");
        cl_stop(s);
    }
    chopin_router_free(r);
}

static void untrusted_peer_is_not_believed(void) {
    chopin_router *r;
    chopin_server *s = start(&r, "127.0.0.1:0", "10.0.0.0/8");
    CHECK(s != NULL);
    if (s) {
        int p = chopin_server_port(s);
        CHECK_STR(ask(p, "", 0, "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"),
                  "127.0.0.1 http");
        CHECK_STR(ask(p, "", 0, "Forwarded: for=203.0.113.9;proto=https\r\n"), "127.0.0.1 http");
        cl_stop(s);
    }
    chopin_router_free(r);
}

/* Behind a PROXY header the relayed client is the peer: it is not a proxy, so what it
 * writes in X-Forwarded-For counts for nothing. */
static void relayed_peer(void) {
    chopin_router *r;
    chopin_server *s = start(&r, "127.0.0.1:0?proxy", "127.0.0.1");
    CHECK(s != NULL);
    if (s) {
        int p = chopin_server_port(s);
        const char v1[] = "PROXY TCP4 192.0.2.1 10.0.0.1 5000 8080\r\n";
        CHECK_STR(ask(p, v1, sizeof v1 - 1, "X-Forwarded-For: 203.0.113.9\r\n"), "192.0.2.1 http");
        /* v2 with PP2_TYPE_SSL, PP2_CLIENT_SSL set: the client spoke TLS to the proxy. */
        const unsigned char v2[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
                                    0x54, 0x0A, 0x21, 0x11, 0x00, 20,   192,  0,    2,    9,
                                    127,  0,    0,    1,    0x13, 0x88, 0x1f, 0x90, 0x20, 0x00,
                                    0x05, 0x01, 0x00, 0x00, 0x00, 0x00};
        CHECK_STR(ask(p, v2, sizeof v2, ""), "192.0.2.9 https");
        cl_stop(s);
    }
    chopin_router_free(r);
}

int main(void) {
    RUN(trusted_peer);
    RUN(untrusted_peer_is_not_believed);
    RUN(relayed_peer);
    TEST_END();
}
