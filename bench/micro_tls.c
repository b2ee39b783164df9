/* SPDX-License-Identifier: MIT */
/*
 * The TLS path without sockets (issue 16): an OpenSSL client in memory against a
 * connection with the TLS transport, as bench/tls.sh's peers are measured (TLS 1.3,
 * TLS_AES_128_GCM_SHA256, X25519, the ECDSA P-256 certificate of tests/tls/mkcerts.sh).
 * Scenarios: keep-alive requests on one connection (bench/run.sh's request, one per
 * read), new connections with a full handshake and one request, and the same resumed
 * from a ticket. The time printed includes the client's share; for the server's alone
 * count instructions with callgrind, collecting only inside the server's entry points:
 *
 *   valgrind --tool=callgrind --toggle-collect='chopin__conn_*' \
 *       --toggle-collect=chopin__engine_conn_new --toggle-collect=chopin__engine_conn_free \
 *       --toggle-collect=chopin__tls_transport_install build/bench/micro_tls 2 0
 *
 * Usage: micro_tls [THOUSANDS] [SCENARIO]   (scenario 0: keep-alive, 1: full, 2: resumed)
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "router/router.h"
#include "tls/tls.h"
#include "tls/transport.h"

static const char REQUEST[] =
    "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:40000\r\n"
    "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n"
    "Connection: keep-alive\r\n\r\n";

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    (void)req, (void)data;
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

struct client {
    SSL *ssl;
    BIO *in, *out;
};

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Moves bytes both ways until neither side has any; returns the plaintext bytes the
 * client read. The client's records land in a scratch buffer, as a worker's read does. */
static size_t pump(struct client *cl, struct chopin__conn *c) {
    static char scratch[1 << 16], got[1 << 16];
    size_t read = 0;
    for (;;) {
        int moved = 0;
        if (!SSL_is_init_finished(cl->ssl))
            SSL_do_handshake(cl->ssl);
        int n = BIO_read(cl->out, scratch, sizeof scratch);
        if (n > 0) {
            chopin__conn_on_data(c, scratch, (size_t)n);
            moved = 1;
        }
        struct chopin__plan p;
        while (chopin__conn_has_output(c) && chopin__conn_out_plan(c, &p) > 0) {
            for (int i = 0; i < p.iovcnt; i++)
                BIO_write(cl->in, p.iov[i].iov_base, (int)p.iov[i].iov_len);
            chopin__conn_on_sent(c, p.bytes);
            moved = 1;
        }
        if (SSL_is_init_finished(cl->ssl)) {
            int k;
            while ((k = SSL_read(cl->ssl, got, sizeof got)) > 0)
                read += (size_t)k, moved = 1;
        }
        if (!moved)
            return read;
    }
}

static void client_new(struct client *cl, SSL_CTX *ctx, SSL_SESSION *resume) {
    cl->ssl = SSL_new(ctx);
    cl->in = BIO_new(BIO_s_mem());
    cl->out = BIO_new(BIO_s_mem());
    SSL_set_bio(cl->ssl, cl->in, cl->out);
    SSL_set_connect_state(cl->ssl);
    if (resume)
        SSL_set_session(cl->ssl, resume);
}

static void client_free(struct client *cl) {
    SSL_set_shutdown(cl->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(cl->ssl);
}

static struct chopin__conn *conn_new(struct chopin__engine *e, struct chopin__tls_ctx *tls) {
    struct chopin__conn *c = chopin__engine_conn_new(e, -1);
    if (!c || chopin__tls_transport_install(c, tls) < 0) {
        fprintf(stderr, "micro_tls: cannot open a connection\n");
        exit(1);
    }
    return c;
}

/* `rounds` requests on one connection (its handshake not counted). */
static double keepalive(struct chopin__engine *e, struct chopin__tls_ctx *tls, SSL_CTX *cctx,
                        long rounds) {
    struct client cl;
    client_new(&cl, cctx, NULL);
    struct chopin__conn *c = conn_new(e, tls);
    pump(&cl, c);
    double t0 = now_ns();
    for (long r = 0; r < rounds; r++) {
        SSL_write(cl.ssl, REQUEST, sizeof REQUEST - 1);
        if (pump(&cl, c) == 0) {
            fprintf(stderr, "micro_tls: no answer\n");
            exit(1);
        }
    }
    double ns = (now_ns() - t0) / (double)rounds;
    chopin__engine_conn_free(e, c);
    client_free(&cl);
    return ns;
}

/* `rounds` connections, each a handshake (resumed from the first one's ticket when
 * `resume`) and one request. */
static double handshakes(struct chopin__engine *e, struct chopin__tls_ctx *tls, SSL_CTX *cctx,
                         long rounds, int resume) {
    SSL_SESSION *ticket = NULL;
    double t0 = now_ns();
    for (long r = 0; r < rounds; r++) {
        struct client cl;
        client_new(&cl, cctx, ticket);
        struct chopin__conn *c = conn_new(e, tls);
        pump(&cl, c);
        SSL_write(cl.ssl, REQUEST, sizeof REQUEST - 1);
        if (pump(&cl, c) == 0 || (resume && ticket && !SSL_session_reused(cl.ssl))) {
            fprintf(stderr, "micro_tls: handshake %ld failed\n", r);
            exit(1);
        }
        if (resume && !ticket)
            ticket = SSL_get1_session(cl.ssl);
        chopin__engine_conn_free(e, c);
        client_free(&cl);
    }
    SSL_SESSION_free(ticket);
    return (now_ns() - t0) / (double)rounds;
}

static struct chopin__tls_ctx *server_tls(const char *dir) {
    char cert[512], key[512], err[512];
    snprintf(cert, sizeof cert, "%s/a.pem", dir);
    snprintf(key, sizeof key, "%s/a.key", dir);
    chopin_options o = chopin_options_default();
    o.tls_cert = cert, o.tls_key = key;
    o.tls_ciphersuites = "TLS_AES_128_GCM_SHA256";
    o.tls_groups = "X25519";
    struct chopin__tls_settings s;
    struct chopin__tls_ctx *ctx = NULL;
    if (chopin__tls_settings_resolve(&s, &o) < 0 || chopin__tls_ctx_new(&ctx, &s, err, sizeof err) < 0) {
        fprintf(stderr, "micro_tls: %s\n", err);
        exit(1);
    }
    chopin__tls_settings_free(&s);
    return ctx;
}

int main(int argc, char **argv) {
    long k = argc > 1 ? atol(argv[1]) : 20;
    int only = argc > 2 ? atoi(argv[2]) : -1;
    char dir[] = "/tmp/chopin-micro-tls-XXXXXX", cmd[256];
    if (!mkdtemp(dir))
        return 1;
    snprintf(cmd, sizeof cmd, "tests/tls/mkcerts.sh %s >/dev/null 2>&1", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "micro_tls: cannot make certificates (tests/tls/mkcerts.sh)\n");
        return 1;
    }
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/plaintext", plaintext, NULL);
    chopin__router_freeze(r);
    struct chopin__config cfg;
    chopin_options o = chopin_options_default();
    o.slab_capacity = 4;
    chopin__config_resolve(&cfg, &o);
    struct chopin__engine e;
    chopin__engine_init(&e, &cfg, r, 0, 1000);
    chopin__engine_set_clock(&e, 1000, time(NULL));
    struct chopin__tls_ctx *tls = server_tls(dir);
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_ciphersuites(cctx, "TLS_AES_128_GCM_SHA256");
    SSL_CTX_set1_groups_list(cctx, "X25519");

    if (only < 0 || only == 0)
        printf("%-44s %9.0f ns/request (client included)\n", "keep-alive, bench/run.sh request",
               keepalive(&e, tls, cctx, k * 1000));
    if (only < 0 || only == 1)
        printf("%-44s %9.0f ns/handshake (client included)\n", "full handshake + one request",
               handshakes(&e, tls, cctx, k * 10, 0));
    if (only < 0 || only == 2)
        printf("%-44s %9.0f ns/handshake (client included)\n", "resumed handshake + one request",
               handshakes(&e, tls, cctx, k * 10, 1));

    SSL_CTX_free(cctx);
    chopin__tls_ctx_free(tls);
    chopin__engine_destroy(&e);
    chopin_router_free(r);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
