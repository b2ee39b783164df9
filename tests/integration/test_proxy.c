/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol over real sockets (issue 19, "Behind a load balancer"): v1 and v2
 * headers give chopin_req_remote_addr the relayed client, for every request of the
 * connection; LOCAL keeps the socket's address; a header in pieces is waited for; a
 * malformed header, plain HTTP, a header from an untrusted source, and a header not whole
 * within proxy_timeout_ms are each answered by a close and nothing else; a listener
 * without ?proxy beside it is untouched; a ?proxy listener without trusted proxies does
 * not start. Runs once per backend (CHOPIN_BACKEND).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

static void remote(chopin_req *req, chopin_res *res, void *data) {
    chopin_str a = chopin_req_remote_addr(req);
    char *text = chopin_req_alloc(req, a.len + 1);
    memcpy(text, a.ptr, a.len);
    text[a.len] = '\0';
    chopin_res_text(res, 200, text);
}

static chopin_router *router(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/remote", remote, NULL);
    return r;
}

/* A server on "127.0.0.1:0?proxy, 127.0.0.1:0" trusting `trusted`. */
static chopin_server *start(chopin_router *r, const char *address, const char *trusted,
                            uint32_t timeout_ms) {
    chopin_options o = chopin_options_default();
    o.quiet = 1;
    o.workers = 1;
    o.trusted_proxies = trusted;
    o.proxy_timeout_ms = timeout_ms;
    chopin_server *s = NULL;
    int rc = chopin_server_start(r, address, &o, &s);
    if (rc < 0)
        fprintf(stderr, "start: %s\n", chopin_strerror(rc));
    return s;
}

static const char get_remote[] = "GET /remote HTTP/1.1\r\nHost: x\r\n\r\n";

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A v2 PROXY header for 2001:db8::7 port 443 to ::1 port 8080. */
static size_t v2_inet6(uint8_t *h) {
    memcpy(h, v2_sig, 12);
    h[12] = 0x21;
    h[13] = 0x21;
    h[14] = 0;
    h[15] = 36;
    memset(h + 16, 0, 36);
    inet_pton(AF_INET6, "2001:db8::7", h + 16);
    inet_pton(AF_INET6, "::1", h + 32);
    h[48] = 0x01;
    h[49] = 0xbb;
    h[50] = 0x1f;
    h[51] = 0x90;
    return 52;
}

/* Sends `head` (n bytes) then GET /remote; the body answered, or "" on failure. */
static const char *ask(struct cl_conn *c, const void *head, size_t n, char *out, size_t cap) {
    struct cl_resp r;
    out[0] = '\0';
    if ((n && cl_send(c, head, n) < 0) || cl_send(c, get_remote, 0) < 0 || cl_read(c, &r, 0) < 0)
        return out;
    if (r.status == 200)
        snprintf(out, cap, "%s", r.body);
    cl_resp_free(&r);
    return out;
}

static void v1_gives_the_client_address(void) {
    chopin_router *r = router();
    chopin_server *s = start(r, "127.0.0.1:0?proxy", "127.0.0.1", 0);
    CHECK(s != NULL);
    if (s) {
        struct cl_conn *c = cl_open(chopin_server_port(s));
        const char h[] = "PROXY TCP4 192.0.2.1 10.0.0.1 5000 8080\r\n";
        char body[128];
        CHECK_STR(ask(c, h, sizeof h - 1, body, sizeof body), "192.0.2.1:5000");
        /* Keep-alive: the next request of the connection has the same client. */
        CHECK_STR(ask(c, NULL, 0, body, sizeof body), "192.0.2.1:5000");
        cl_close(c);
        cl_stop(s);
    }
    chopin_router_free(r);
}

static void v2_gives_the_client_address(void) {
    chopin_router *r = router();
    chopin_server *s = start(r, "127.0.0.1:0?proxy", "127.0.0.0/8", 0);
    CHECK(s != NULL);
    if (s) {
        uint8_t h[64];
        size_t n = v2_inet6(h);
        struct cl_conn *c = cl_open(chopin_server_port(s));
        char body[128];
        CHECK_STR(ask(c, h, n, body, sizeof body), "[2001:db8::7]:443");
        cl_close(c);
        /* The header and the request in one segment, as HAProxy often sends them. */
        char both[256];
        memcpy(both, h, n);
        memcpy(both + n, get_remote, sizeof get_remote);
        c = cl_open(chopin_server_port(s));
        CHECK_STR(ask(c, both, n + sizeof get_remote - 1, body, sizeof body), "[2001:db8::7]:443");
        cl_close(c);
        cl_stop(s);
    }
    chopin_router_free(r);
}

/* LOCAL: the proxy's own health check; the socket's address stands. */
static void v2_local_keeps_the_socket_address(void) {
    chopin_router *r = router();
    chopin_server *s = start(r, "127.0.0.1:0?proxy", "127.0.0.1", 0);
    CHECK(s != NULL);
    if (s) {
        uint8_t h[16];
        memcpy(h, v2_sig, 12);
        h[12] = 0x20;
        h[13] = h[14] = h[15] = 0;
        struct cl_conn *c = cl_open(chopin_server_port(s));
        char body[128];
        ask(c, h, 16, body, sizeof body);
        CHECK(strncmp(body, "127.0.0.1:", 10) == 0);
        cl_close(c);
        cl_stop(s);
    }
    chopin_router_free(r);
}

/* The header byte by byte: each piece is kept until it is whole. */
static void header_in_pieces(void) {
    chopin_router *r = router();
    chopin_server *s = start(r, "127.0.0.1:0?proxy", "127.0.0.1", 0);
    CHECK(s != NULL);
    if (s) {
        uint8_t h[64];
        size_t n = v2_inet6(h);
        struct cl_conn *c = cl_open(chopin_server_port(s));
        for (size_t i = 0; i + 1 < n; i++) {
            cl_send(c, (const char *)h + i, 1);
            usleep(2000);
        }
        char body[128];
        CHECK_STR(ask(c, h + n - 1, 1, body, sizeof body), "[2001:db8::7]:443");
        cl_close(c);
        cl_stop(s);
    }
    chopin_router_free(r);
}

/* Refused: the connection is closed and nothing at all is sent. */
static void refused(int port, const void *bytes, size_t n) {
    struct cl_conn *c = cl_open(port);
    CHECK(c != NULL);
    if (!c)
        return;
    if (n)
        cl_send(c, bytes, n);
    CHECK(cl_closed(c));
    cl_close(c);
}

static void malformed_and_plain_http_are_closed(void) {
    chopin_router *r = router();
    chopin_server *s = start(r, "127.0.0.1:0?proxy", "127.0.0.1", 0);
    CHECK(s != NULL);
    if (s) {
        int port = chopin_server_port(s);
        const char bad_v1[] = "PROXY TCP4 192.0.2.1 10.0.0.1 99999 8080\r\nGET /remote HTTP/1.1\r\n\r\n";
        refused(port, bad_v1, sizeof bad_v1 - 1);
        refused(port, get_remote, sizeof get_remote - 1);
        uint8_t h[64];
        size_t n = v2_inet6(h);
        h[13] = 0x22; /* DGRAM */
        refused(port, h, n);
        /* The server still serves well-formed headers afterwards. */
        struct cl_conn *c = cl_open(port);
        char body[128];
        ask(c, "PROXY UNKNOWN\r\n", 15, body, sizeof body);
        CHECK(strncmp(body, "127.0.0.1:", 10) == 0); /* UNKNOWN: the socket's address */
        cl_close(c);
        cl_stop(s);
    }
    chopin_router_free(r);
}

/* Only trusted sources may say who the client is. */
static void untrusted_source_is_closed(void) {
    chopin_router *r = router();
    chopin_server *s = start(r, "127.0.0.1:0?proxy", "10.0.0.0/8, ::1", 0);
    CHECK(s != NULL);
    if (s) {
        const char h[] = "PROXY TCP4 192.0.2.1 10.0.0.1 5000 8080\r\nGET /remote HTTP/1.1\r\n\r\n";
        refused(chopin_server_port(s), h, sizeof h - 1);
        cl_stop(s);
    }
    chopin_router_free(r);
}

static void header_not_whole_in_time_is_closed(void) {
    chopin_router *r = router();
    chopin_server *s = start(r, "127.0.0.1:0?proxy", "127.0.0.1", 200);
    CHECK(s != NULL);
    if (s) {
        refused(chopin_server_port(s), "PROXY TCP4 192.0.2.1", 20);
        refused(chopin_server_port(s), NULL, 0); /* nothing at all */
        cl_stop(s);
    }
    chopin_router_free(r);
}

/* A plain listener beside a ?proxy one reads no header. */
static void plain_listener_beside(void) {
    chopin_router *r = router();
    chopin_server *s = start(r, "127.0.0.1:0?proxy, 127.0.0.1:0", "127.0.0.1", 0);
    CHECK(s != NULL);
    if (s) {
        struct cl_conn *c = cl_open(chopin_server_listener_port(s, 1));
        char body[128];
        ask(c, NULL, 0, body, sizeof body);
        CHECK(strncmp(body, "127.0.0.1:", 10) == 0);
        cl_close(c);
        cl_stop(s);
    }
    chopin_router_free(r);
}

/* A Unix socket's peer needs no trusted_proxies: the file's permissions choose. */
static void unix_proxy_listener(void) {
    char dir[] = "/tmp/chopin-proxy-XXXXXX", path[128], address[160];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/p.sock", dir);
    snprintf(address, sizeof address, "unix:%s?proxy", path);
    chopin_router *r = router();
    chopin_server *s = start(r, address, NULL, 0);
    CHECK(s != NULL);
    if (s) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof sun.sun_path, "%.100s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0);
        const char req[] = "PROXY TCP4 198.51.100.7 10.0.0.1 4000 80\r\n"
                           "GET /remote HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        CHECK(write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1));
        char buf[1024];
        size_t got = 0;
        ssize_t n;
        while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
            got += (size_t)n;
        buf[got] = '\0';
        CHECK(strstr(buf, "\r\n\r\n198.51.100.7:4000") != NULL);
        close(fd);
        cl_stop(s);
    }
    chopin_router_free(r);
    rmdir(dir);
}

static void proxy_listener_needs_trusted_proxies(void) {
    chopin_router *r = router();
    chopin_options o = chopin_options_default();
    o.quiet = 1;
    chopin_server *s = NULL;
    capture_begin();
    int rc = chopin_server_start(r, "127.0.0.1:0?proxy", &o, &s);
    const char *err = capture_end();
    CHECK_INT(rc, CHOPIN_EINVAL);
    CHECK(strstr(err, "trusted_proxies") != NULL);
    o.trusted_proxies = "10.0.0.0/33";
    capture_begin();
    rc = chopin_server_start(r, "127.0.0.1:0?proxy", &o, &s);
    err = capture_end();
    CHECK_INT(rc, CHOPIN_EINVAL);
    CHECK(strstr(err, "\"10.0.0.0/33\" is not an address") != NULL);
    chopin_router_free(r);
}

int main(void) {
    RUN(v1_gives_the_client_address);
    RUN(v2_gives_the_client_address);
    RUN(v2_local_keeps_the_socket_address);
    RUN(header_in_pieces);
    RUN(malformed_and_plain_http_are_closed);
    RUN(untrusted_source_is_closed);
    RUN(header_not_whole_in_time_is_closed);
    RUN(plain_listener_beside);
    RUN(unix_proxy_listener);
    RUN(proxy_listener_needs_trusted_proxies);
    TEST_END();
}
