/* SPDX-License-Identifier: MIT */
/*
 * HTTPS over real sockets (issue 16): a server with an https:// and a plain listener,
 * checked with curl and `openssl s_client` (TLS 1.2 and 1.3, SNI to two certificates,
 * ALPN, resumption, client certificates accepted and refused, plain HTTP to the TLS
 * port, a stalled and a garbage handshake), pipelined big and file answers through the
 * records, a certificate reload under load with no failed request, the redirect to
 * HTTPS, and the kTLS fallback said once. Certificates: tests/tls/mkcerts.sh in a
 * temporary directory. Runs once per backend; skipped without TLS, curl or openssl.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef CHOPIN_HAVE_TLS
int main(void) {
    printf("test_tls: skipped: built without OpenSSL\nRESULT 0 0 1\n");
    return 0;
}
#else

#include "client.h"
#include "test.h"

#define BIG_LEN 100000
#define FILE_LEN 1000000

static const char *dir;
static char file_path[300];
static int tls_port, plain_port;
static chopin_server *server;
static chopin_router *router;

static char fill_byte(unsigned id, size_t i) { return (char)('a' + (id + i / 97) % 26); }

static void hello(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "hello", 5);
}

static void who(chopin_req *req, chopin_res *res, void *data) {
    chopin_str s = chopin_req_tls_subject(req);
    char buf[160];
    int n = snprintf(buf, sizeof buf, "%s %.*s", chopin_req_is_tls(req) ? "tls" : "plain",
                     (int)s.len, s.ptr);
    chopin_res_copy(res, 200, "text/plain", buf, (size_t)n);
}

static void big(chopin_req *req, chopin_res *res, void *data) {
    chopin_str n = chopin_req_param(req, "n");
    unsigned id = (unsigned)strtoul(n.ptr, NULL, 10);
    char *body = chopin_req_alloc(req, BIG_LEN);
    for (size_t i = 0; i < BIG_LEN; i++)
        body[i] = fill_byte(id, i);
    chopin_res_copy(res, 200, "application/octet-stream", body, BIG_LEN);
}

static void file(chopin_req *req, chopin_res *res, void *data) {
    int fd = open(file_path, O_RDONLY | O_CLOEXEC);
    chopin_res_fd(res, 200, "application/octet-stream", fd, 0, FILE_LEN, 1);
}

static char *at(const char *name) {
    static char buf[8][400];
    static int i;
    char *p = buf[i++ % 8];
    snprintf(p, 400, "%s/%s", dir, name);
    return p;
}

/* Runs a shell command; its stdout (and stderr when `both`) in out. Returns its status. */
static int run(char *out, size_t cap, int both, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int run(char *out, size_t cap, int both, const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (both)
        strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    else
        strncat(cmd, " 2>/dev/null", sizeof cmd - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, cap - 1, p) : 0;
    out[n] = '\0';
    int rc = p ? pclose(p) : -1;
    return rc;
}

static chopin_server *start(uint32_t verify, const char *address) {
    chopin_options o = chopin_options_default();
    char cert[900], key[900];
    snprintf(cert, sizeof cert, "%s,%s", at("a.pem"), at("b.pem"));
    snprintf(key, sizeof key, "%s,%s", at("a.key"), at("b.key"));
    o.tls_cert = cert, o.tls_key = key;
    o.tls_client_ca = at("ca.pem");
    o.tls_client_verify = verify;
    o.tls_ocsp = NULL;
    o.tls_handshake_timeout_ms = 300;
    o.workers = 2;
    o.quiet = 1;
    chopin_server *s;
    int rc = chopin_server_start(router, address, &o, &s);
    if (rc < 0) {
        fprintf(stderr, "start: %s\n", chopin_strerror(rc));
        return NULL;
    }
    return s;
}

/* ----- curl and openssl s_client ------------------------------------------------------ */

static void curl_tls12_and_tls13(void) {
    char out[8192];
    const char *flags[] = {"--tlsv1.2 --tls-max 1.2", "--tlsv1.3"};
    const char *want[] = {"TLSv1.2", "TLSv1.3"};
    for (int i = 0; i < 2; i++) {
        run(out, sizeof out, 1, "curl -sv --http1.1 --max-time 5 --cacert %s %s https://localhost:%d/hello",
            at("ca.pem"), flags[i], tls_port);
        CHECK(strstr(out, want[i]) != NULL);
        CHECK(strstr(out, "\nhello") != NULL || strncmp(out, "hello", 5) == 0 || strstr(out, "hello") != NULL);
        CHECK(strstr(out, "ALPN: server accepted http/1.1") != NULL ||
              strstr(out, "ALPN, server accepted to use http/1.1") != NULL);
    }
    /* TLS 1.1 and below: refused */
    CHECK(run(out, sizeof out, 1, "openssl s_client -connect 127.0.0.1:%d -tls1_1 </dev/null",
              tls_port) != 0);
}

static void sni_two_certificates(void) {
    char out[16384];
    const char *names[] = {"b.test", "a.test"};
    const char *want[] = {"CN = b.test", "CN = a.test"};
    for (int i = 0; i < 2; i++) {
        run(out, sizeof out, 1, "openssl s_client -connect 127.0.0.1:%d -servername %s </dev/null",
            tls_port, names[i]);
        CHECK(strstr(out, want[i]) != NULL);
    }
}

static void alpn(void) {
    char out[16384];
    run(out, sizeof out, 1, "openssl s_client -connect 127.0.0.1:%d -alpn http/1.1 </dev/null", tls_port);
    CHECK(strstr(out, "ALPN protocol: http/1.1") != NULL);
    /* h2 when the build has HTTP/2 (src/h2 takes the connection), else refused */
    run(out, sizeof out, 1, "openssl s_client -connect 127.0.0.1:%d -alpn h2 </dev/null", tls_port);
#ifdef CHOPIN_HAVE_NGHTTP2
    CHECK(strstr(out, "ALPN protocol: h2") != NULL);
#else
    CHECK(strstr(out, "no application protocol") != NULL);
#endif
    run(out, sizeof out, 1, "openssl s_client -connect 127.0.0.1:%d -alpn spdy/3 </dev/null", tls_port);
    CHECK(strstr(out, "no application protocol") != NULL);
}

/* A ticket from the first handshake resumes the second, on TLS 1.3 and 1.2; the server
 * counts it. */
static void resumption(void) {
    char out[16384];
    const char *versions[] = {"-tls1_3", "-tls1_2"};
    chopin_tls_stats before, after;
    chopin_server_tls_stats(server, &before, sizeof before);
    for (int i = 0; i < 2; i++) {
        /* a request read to the end: TLS 1.3 tickets come after the handshake */
        run(out, sizeof out, 1,
            "printf 'GET /hello HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' | "
            "openssl s_client -connect 127.0.0.1:%d %s -ign_eof -sess_out %s",
            tls_port, versions[i], at("sess.pem"));
        CHECK(strstr(out, "hello") != NULL);
        run(out, sizeof out, 1,
            "printf 'GET /hello HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' | "
            "openssl s_client -connect 127.0.0.1:%d %s -ign_eof -sess_in %s",
            tls_port, versions[i], at("sess.pem"));
        CHECK(strstr(out, "Reused, TLSv1.") != NULL);
        CHECK(strstr(out, "hello") != NULL);
    }
    chopin_server_tls_stats(server, &after, sizeof after);
    CHECK(after.resumed >= before.resumed + 2);
}

static void client_certificates(void) {
    char out[8192];
    /* optional verification: with a good certificate the handler sees its subject;
     * without one it is served; a certificate the CA did not sign is refused */
    run(out, sizeof out, 0, "curl -s --max-time 5 --cacert %s --cert %s --key %s https://localhost:%d/who",
        at("ca.pem"), at("client.pem"), at("client.key"), tls_port);
    CHECK_STR(out, "tls CN=alice,O=Chopin tests");
    run(out, sizeof out, 0, "curl -s --max-time 5 --cacert %s https://localhost:%d/who", at("ca.pem"),
        tls_port);
    CHECK_STR(out, "tls ");
    CHECK(run(out, sizeof out, 0, "curl -s --max-time 5 --cacert %s --cert %s --key %s https://localhost:%d/who",
              at("ca.pem"), at("rogue.pem"), at("rogue.key"), tls_port) != 0);
    /* required: no certificate, no answer */
    chopin_server *req = start(CHOPIN_TLS_VERIFY_REQUIRE, "https://127.0.0.1:0");
    CHECK(req != NULL);
    if (!req)
        return;
    int p = chopin_server_port(req);
    CHECK(run(out, sizeof out, 0, "curl -s --max-time 5 --cacert %s https://localhost:%d/who",
              at("ca.pem"), p) != 0);
    run(out, sizeof out, 0, "curl -s --max-time 5 --cacert %s --cert %s --key %s https://localhost:%d/who",
        at("ca.pem"), at("client.pem"), at("client.key"), p);
    CHECK_STR(out, "tls CN=alice,O=Chopin tests");
    cl_stop(req);
}

static void plain_http_to_tls_port(void) {
    char out[8192];
    run(out, sizeof out, 0, "curl -s -i --max-time 5 http://127.0.0.1:%d/hello", tls_port);
    CHECK(strncmp(out, "HTTP/1.1 400", 12) == 0);
    CHECK(strstr(out, "plain HTTP was sent to an HTTPS port") != NULL);
}

static void plain_listener_beside(void) {
    struct cl_resp r;
    CHECK_INT(cl_get(plain_port, "/who", &r), 200);
    CHECK_MEM(r.body, r.body_len, "plain ");
    cl_resp_free(&r);
}

/* Waits (bounded) for the server to close `fd`; 1 when it did. */
static int closed_by_server(int fd) {
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char b[256];
    ssize_t n;
    while ((n = recv(fd, b, sizeof b, 0)) > 0) {
    }
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* A client that stops mid-handshake is closed at the handshake deadline (300 ms here)
 * and holds nothing else: a request beside it is answered meanwhile. */
static void stalled_handshake(void) {
    chopin_tls_stats before, after;
    chopin_server_tls_stats(server, &before, sizeof before);
    int fd = cl_connect_fd(tls_port);
    CHECK(cl_send_fd(fd, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")); /* a ClientHello's start */
    struct cl_resp r;
    CHECK_INT(cl_get(tls_port, "/hello", &r), 200);
    cl_resp_free(&r);
    CHECK(closed_by_server(fd));
    close(fd);
    int idle = cl_connect_fd(tls_port); /* nothing sent at all */
    CHECK(closed_by_server(idle));
    close(idle);
    /* counted as the slot is freed, just after the close the client saw */
    for (int i = 0; i < 100; i++) {
        chopin_server_tls_stats(server, &after, sizeof after);
        if (after.timeouts >= before.timeouts + 2)
            break;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK(after.timeouts >= before.timeouts + 2);
}

static void garbage_handshake(void) {
    chopin_tls_stats before, after;
    chopin_server_tls_stats(server, &before, sizeof before);
    const char *garbage[] = {"\x01\x02\x03\x04 not a hello", "\x16\x03\x01\x00\x05\x07\x00\x00\x01\x00"};
    size_t lens[] = {17, 10};
    for (int i = 0; i < 2; i++) {
        int fd = cl_connect_fd(tls_port);
        CHECK(send(fd, garbage[i], lens[i], MSG_NOSIGNAL) == (ssize_t)lens[i]);
        CHECK(closed_by_server(fd));
        close(fd);
    }
    chopin_server_tls_stats(server, &after, sizeof after);
    CHECK_INT(after.malformed_hello, before.malformed_hello + 2);
}

/* ----- the records: big and file answers, pipelined, on several connections at once -- */

static int mismatches;

static int check_big(struct cl_conn *c, unsigned id) {
    struct cl_resp r;
    int ok = cl_read(c, &r, 0) == 0 && r.status == 200 && r.body_len == BIG_LEN;
    for (size_t i = 0; ok && i < BIG_LEN; i++)
        ok = r.body[i] == fill_byte(id, i);
    cl_resp_free(&r);
    return ok;
}

static int check_file(struct cl_conn *c) {
    struct cl_resp r;
    int ok = cl_read(c, &r, 0) == 0 && r.status == 200 && r.body_len == FILE_LEN;
    for (size_t i = 0; ok && i < FILE_LEN; i++)
        ok = r.body[i] == (char)(i * 13 + 1);
    cl_resp_free(&r);
    return ok;
}

static void *pipeliner(void *arg) {
    unsigned base = (unsigned)(uintptr_t)arg * 1000u;
    for (unsigned round = 0; round < 12; round++) {
        struct cl_conn *c = cl_open(tls_port);
        unsigned id = base + round * 10;
        char req[512];
        snprintf(req, sizeof req,
                 "GET /big/%u HTTP/1.1\r\nHost: a\r\n\r\nGET /file HTTP/1.1\r\nHost: a\r\n\r\n"
                 "GET /big/%u HTTP/1.1\r\nHost: a\r\n\r\n", id, id + 1);
        int ok = c && cl_send(c, req, 0) == 0 && check_big(c, id) && check_file(c) &&
                 check_big(c, id + 1);
        if (!ok)
            __atomic_add_fetch(&mismatches, 1, __ATOMIC_SEQ_CST);
        cl_close(c);
    }
    return NULL;
}

static void pipelined_big_and_file_answers(void) {
    pthread_t t[3];
    mismatches = 0;
    for (uintptr_t i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, pipeliner, (void *)i);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(mismatches, 0);
}

/* ----- reload under load ------------------------------------------------------------- */

static int load_running, load_requests, load_failures;

static void *loader(void *arg) {
    while (__atomic_load_n(&load_running, __ATOMIC_SEQ_CST)) {
        struct cl_resp r;
        int status = cl_get(tls_port, "/hello", &r); /* a new handshake each time */
        if (status == 200)
            cl_resp_free(&r);
        __atomic_add_fetch(status == 200 ? &load_requests : &load_failures, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void copy(const char *from, const char *to) {
    char out[256];
    CHECK_INT(run(out, sizeof out, 1, "cp '%s' '%s'", from, to), 0);
}

/* Reloads while clients handshake without pause: no request fails; a bad key is refused
 * and changes nothing; a new certificate serves the next handshakes. */
static void reload_under_load(void) {
    pthread_t t[3];
    load_running = 1, load_requests = load_failures = 0;
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, loader, NULL);
    for (int i = 0; i < 20; i++) {
        CHECK_INT(chopin_server_tls_reload(server), 0);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    copy(at("a.key"), at("a.key.good"));
    copy(at("b.key"), at("a.key")); /* a.pem with b's key */
    capture_begin();
    int rc = chopin_server_tls_reload(server);
    const char *msg = capture_end();
    CHECK_INT(rc, CHOPIN_EINVAL);
    CHECK(strstr(msg, "TLS reload refused") != NULL && strstr(msg, "a.key") != NULL);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    __atomic_store_n(&load_running, 0, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(load_failures, 0);
    CHECK(load_requests > 20);
    copy(at("a.key.good"), at("a.key"));
    /* a new default certificate: b's pair under a's names */
    copy(at("b.pem"), at("a.pem"));
    copy(at("b.key"), at("a.key"));
    CHECK_INT(chopin_server_tls_reload(server), 0);
    char out[16384];
    run(out, sizeof out, 1, "openssl s_client -connect 127.0.0.1:%d </dev/null", tls_port);
    CHECK(strstr(out, "CN = b.test") != NULL);
    chopin_tls_stats st;
    chopin_server_tls_stats(server, &st, sizeof st);
    CHECK_INT(st.reloads, 21);
}

/* ----- redirect, kTLS ------------------------------------------------------------------ */

static void redirect_to_https(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_use(r, "/", chopin_tls_redirect, "8443");
    chopin_router_get(r, "/hello", hello, NULL);
    chopin_options o = chopin_options_default();
    o.quiet = 1;
    chopin_server *s;
    CHECK_INT(chopin_server_start(r, "127.0.0.1:0", &o, &s), 0);
    struct cl_conn *c = cl_open(chopin_server_port(s));
    struct cl_resp resp;
    CHECK(c && cl_send(c, "GET /hello?x=1 HTTP/1.1\r\nHost: example.test:8080\r\n\r\n", 0) == 0);
    CHECK(c && cl_read(c, &resp, 0) == 0);
    CHECK_INT(resp.status, 308);
    char loc[256] = "";
    cl_header(&resp, "location", loc, sizeof loc);
    CHECK_STR(loc, "https://example.test:8443/hello?x=1");
    cl_resp_free(&resp);
    cl_close(c);
    cl_stop(s);
    chopin_router_free(r);
}

/* Where the kernel has no tls module the first handshake says so once and the
 * connection goes on in user space; where it has one, nothing is said and each of the
 * three connections (TLS 1.3) hands its sending keys to the kernel, whose records the
 * client reads. */
static void ktls_fallback_said_once(void) {
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)plain_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int has_module = connect(probe, (struct sockaddr *)&a, sizeof a) == 0 &&
                     setsockopt(probe, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls") == 0;
    close(probe);
    capture_begin();
    chopin_server *s = start(0, "https://127.0.0.1:0");
    int ok = 1;
    if (s) {
        cl_mark_tls(chopin_server_port(s));
        for (int i = 0; i < 3; i++)
            ok &= cl_get(chopin_server_port(s), "/hello", NULL) == 200;
    }
    const char *said = capture_end();
    CHECK(s != NULL && ok);
    const char *first = strstr(said, "kTLS unavailable");
    chopin_tls_stats st;
    if (s)
        chopin_server_tls_stats(s, &st, sizeof st);
    const char *must = getenv("CHOPIN_TEST_KTLS"); /* make test-ktls: the module must be there */
    if (must && strcmp(must, "1") == 0)
        CHECK(has_module);
    if (has_module) {
        CHECK(first == NULL);
        CHECK(s && st.ktls == 3);
    } else {
        CHECK(s && st.ktls == 0);
        CHECK(first != NULL && strstr(first + 1, "kTLS unavailable") == NULL);
        CHECK(strstr(said, "no tls module") != NULL);
    }
    cl_stop(s);
}

static int have(const char *cmd) {
    char out[256], c[128];
    snprintf(c, sizeof c, "command -v %s", cmd);
    return run(out, sizeof out, 0, "%s", c) == 0;
}

int main(void) {
    if (!have("curl") || !have("openssl")) {
        printf("test_tls: skipped: needs curl and openssl\nRESULT 0 0 1\n");
        return 0;
    }
    dir = cl_certs();
    snprintf(file_path, sizeof file_path, "%s/file.bin", dir);
    FILE *f = fopen(file_path, "wb");
    for (size_t i = 0; f && i < FILE_LEN; i++)
        fputc((char)(i * 13 + 1), f);
    if (f)
        fclose(f);
    router = chopin_router_new();
    chopin_router_get(router, "/hello", hello, NULL);
    chopin_router_get(router, "/who", who, NULL);
    chopin_router_get(router, "/big/:n", big, NULL);
    chopin_router_get(router, "/file", file, NULL);
    RUN(ktls_fallback_said_once); /* first: the message is said once per process */
    server = start(CHOPIN_TLS_VERIFY_OPTIONAL, "https://127.0.0.1:0, 127.0.0.1:0");
    if (!server) {
        printf("RESULT 0 1\n");
        return 1;
    }
    tls_port = chopin_server_listener_port(server, 0);
    plain_port = chopin_server_listener_port(server, 1);
    cl_mark_tls(tls_port);
    RUN(curl_tls12_and_tls13);
    RUN(sni_two_certificates);
    RUN(alpn);
    RUN(resumption);
    RUN(client_certificates);
    RUN(plain_http_to_tls_port);
    RUN(plain_listener_beside);
    RUN(stalled_handshake);
    RUN(garbage_handshake);
    RUN(pipelined_big_and_file_answers);
    RUN(redirect_to_https);
    RUN(reload_under_load); /* last: it changes the certificate files */
    cl_stop(server);
    chopin_router_free(router);
    TEST_END();
}
#endif
