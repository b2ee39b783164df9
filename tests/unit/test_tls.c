/* SPDX-License-Identifier: MIT */
/*
 * The TLS session (src/tls/session.c) and context (context.c) against an OpenSSL client
 * in memory: no sockets. Handshakes over TLS 1.3 and 1.2 with the client's bytes split at
 * every byte boundary, SNI, ALPN, resumption across ticket-key rotation, client
 * certificates, OCSP stapling, plain HTTP and garbage, reload. Certificates are made by
 * tests/tls/mkcerts.sh (the openssl command) in a temporary directory.
 */
#ifndef CHOPIN_HAVE_TLS
#include <stdio.h>

int main(void) {
    printf("test_tls: skipped: built without OpenSSL (pkg-config finds no openssl >= 3)\n");
    printf("RESULT 0 0 1\n");
    return 0;
}
#else

#include "test.h"

#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdlib.h>

#include "fake.h"
#include "tls/tls.h"
#include "tls/transport.h"

static char dir[256];

static char *path(const char *name) {
    static char buf[4][512];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* A context over a.pem (default) and b.pem, with `verify` for client certificates. */
static struct chopin__tls_ctx *ctx_new(uint32_t verify, int ocsp) {
    chopin_options o = CHOPIN_OPTIONS_INIT;
    char cert[1100], key[1100], ocspf[600];
    snprintf(cert, sizeof cert, "%s,%s", path("a.pem"), path("b.pem"));
    snprintf(key, sizeof key, "%s,%s", path("a.key"), path("b.key"));
    snprintf(ocspf, sizeof ocspf, "%s,", path("a.ocsp"));
    o.tls_cert = cert, o.tls_key = key, o.tls_client_verify = verify;
    o.tls_client_ca = verify ? path("ca.pem") : NULL;
    o.tls_ocsp = ocsp ? ocspf : NULL;
    struct chopin__tls_settings s;
    struct chopin__tls_ctx *ctx = NULL;
    char err[512];
    CHECK_INT(chopin__tls_settings_resolve(&s, &o), 0);
    int rc = chopin__tls_ctx_new(&ctx, &s, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "ctx: %s\n", err);
    chopin__tls_settings_free(&s);
    return ctx;
}

/* The client: an OpenSSL SSL over two memory BIOs. */
struct client {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *in, *out; /* in: bytes from the server; out: bytes to it */
    unsigned char ocsp[4096];
    long ocsp_len;
};

static int client_ocsp(SSL *ssl, void *arg) {
    struct client *cl = arg;
    const unsigned char *p;
    long n = SSL_get_tlsext_status_ocsp_resp(ssl, &p);
    cl->ocsp_len = n > 0 && n <= (long)sizeof cl->ocsp ? n : 0;
    if (cl->ocsp_len)
        memcpy(cl->ocsp, p, (size_t)n);
    return 1;
}

static void client_init(struct client *cl, const char *sni, int max_version, const char *alpn,
                        const char *cert) {
    memset(cl, 0, sizeof *cl);
    cl->ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(cl->ctx, path("ca.pem"), NULL);
    SSL_CTX_set_verify(cl->ctx, SSL_VERIFY_PEER, NULL);
    if (max_version) {
        SSL_CTX_set_min_proto_version(cl->ctx, max_version == TLS1_1_VERSION ? TLS1_VERSION : 0);
        SSL_CTX_set_max_proto_version(cl->ctx, max_version);
        if (max_version < TLS1_2_VERSION)
            SSL_CTX_set_security_level(cl->ctx, 0), SSL_CTX_set_cipher_list(cl->ctx, "ALL:@SECLEVEL=0");
    }
    if (cert) {
        char key[256];
        snprintf(key, sizeof key, "%.*s.key", (int)(strlen(cert) - 4), cert);
        SSL_CTX_use_certificate_file(cl->ctx, cert, SSL_FILETYPE_PEM);
        SSL_CTX_use_PrivateKey_file(cl->ctx, key, SSL_FILETYPE_PEM);
    }
    SSL_CTX_set_tlsext_status_cb(cl->ctx, client_ocsp);
    SSL_CTX_set_tlsext_status_arg(cl->ctx, cl);
    cl->ssl = SSL_new(cl->ctx);
    cl->in = BIO_new(BIO_s_mem());
    cl->out = BIO_new(BIO_s_mem());
    SSL_set_bio(cl->ssl, cl->in, cl->out);
    SSL_set_connect_state(cl->ssl);
    SSL_set_tlsext_status_type(cl->ssl, TLSEXT_STATUSTYPE_ocsp);
    if (sni)
        SSL_set_tlsext_host_name(cl->ssl, sni);
    if (alpn) {
        unsigned char wire[64];
        size_t n = strlen(alpn);
        wire[0] = (unsigned char)n;
        memcpy(wire + 1, alpn, n);
        SSL_set_alpn_protos(cl->ssl, wire, (unsigned)n + 1);
    }
}

static void client_free(struct client *cl) {
    /* Freed without a shutdown, OpenSSL would mark its session not resumable. */
    SSL_set_shutdown(cl->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(cl->ssl);
    SSL_CTX_free(cl->ctx);
    ERR_clear_error();
}

/* Plaintext the server has read, accumulated. */
static char plain[1 << 21];
static size_t plain_len;

/* Feeds `n` client bytes to the server in pieces of `split` (0: at once) and drains its
 * plaintext. */
static void to_server(struct chopin__tls_session *s, const char *p, size_t n, size_t split) {
    for (size_t off = 0; off < n;) {
        size_t k = split && split < n - off ? split : n - off;
        chopin__tls_session_input(s, p + off, k);
        ssize_t got;
        while ((got = chopin__tls_session_read(s, plain + plain_len, sizeof plain - plain_len)) > 0)
            plain_len += (size_t)got;
        chopin__tls_session_input_done(s);
        off += k;
    }
}

/* Moves what each side has written to the other; `split` cuts the client's bytes. The
 * client's bytes pass through a scratch buffer that is scribbled over after each piece,
 * as a worker's read buffer is. */
static void pump(struct client *cl, struct chopin__tls_session *s, size_t split) {
    for (int round = 0; round < 8; round++) {
        char *p;
        long n = BIO_get_mem_data(cl->out, &p);
        if (n > 0) {
            char *copy = malloc((size_t)n);
            memcpy(copy, p, (size_t)n);
            (void)BIO_reset(cl->out);
            to_server(s, copy, (size_t)n, split);
            memset(copy, 0xAA, (size_t)n);
            free(copy);
        }
        const char *o;
        size_t m = chopin__tls_session_out(s, &o);
        if (m) {
            BIO_write(cl->in, o, (int)m);
            chopin__tls_session_out_done(s, m);
        }
        if (SSL_do_handshake(cl->ssl) == 1 && n <= 0 && m == 0)
            break;
    }
}

/* The handshake and one request through it, the client's bytes cut every `split` bytes. */
static int roundtrip(struct chopin__tls_ctx *ctx, struct client *cl, size_t split) {
    struct chopin__tls_session s;
    plain_len = 0;
    if (chopin__tls_session_init(&s, ctx) < 0)
        return -1;
    pump(cl, &s, split);
    int ok = s.state == CHOPIN__TLS_OPEN && SSL_is_init_finished(cl->ssl);
    if (ok) {
        SSL_write(cl->ssl, "GET / HTTP/1.1\r\n\r\n", 18);
        pump(cl, &s, split);
        ok = plain_len == 18 && memcmp(plain, "GET / HTTP/1.1\r\n\r\n", 18) == 0;
    }
    if (ok) {
        chopin__tls_session_write(&s, "HTTP/1.1 200 OK\r\n\r\n", 19);
        pump(cl, &s, 0);
        char got[64];
        ok = SSL_read(cl->ssl, got, sizeof got) == 19 && memcmp(got, "HTTP/1.1 200 OK", 15) == 0;
    }
    chopin__tls_session_release(&s);
    return ok ? 0 : -1;
}

static void handshake_tls13(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct client cl;
    client_init(&cl, "a.test", 0, "http/1.1", NULL);
    CHECK_INT(roundtrip(ctx, &cl, 0), 0);
    CHECK_INT(SSL_version(cl.ssl), TLS1_3_VERSION);
    const unsigned char *p;
    unsigned n;
    SSL_get0_alpn_selected(cl.ssl, &p, &n);
    CHECK_MEM(p, n, "http/1.1");
    client_free(&cl);
    chopin_tls_stats st;
    chopin__tls_ctx_stats(ctx, &st);
    CHECK_INT(st.handshakes, 1);
    chopin__tls_ctx_free(ctx);
}

static void handshake_tls12_forward_secret(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct client cl;
    client_init(&cl, NULL, TLS1_2_VERSION, NULL, NULL);
    CHECK_INT(roundtrip(ctx, &cl, 0), 0);
    CHECK_INT(SSL_version(cl.ssl), TLS1_2_VERSION);
    CHECK(strncmp(SSL_get_cipher_name(cl.ssl), "ECDHE-", 6) == 0);
    client_free(&cl);
    chopin__tls_ctx_free(ctx);
}

/* Every cut of the client's bytes (each flight and the request record) must give the
 * same handshake and the same plaintext: TLS 1.3, then 1.2 (more flights). */
static void split_at_every_byte(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    int versions[] = {0, TLS1_2_VERSION};
    for (int v = 0; v < 2; v++) {
        int bad = 0;
        for (size_t split = 1; split <= 600; split++) {
            struct client cl;
            client_init(&cl, "a.test", versions[v], "http/1.1", NULL);
            if (roundtrip(ctx, &cl, split) < 0 && bad++ < 3)
                fprintf(stderr, "  version %d, split %zu: failed\n", versions[v], split);
            client_free(&cl);
        }
        CHECK_INT(bad, 0);
    }
    chopin__tls_ctx_free(ctx);
}

static void old_versions_refused(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct client cl;
    client_init(&cl, NULL, TLS1_1_VERSION, NULL, NULL);
    CHECK_INT(roundtrip(ctx, &cl, 0), -1);
    client_free(&cl);
    chopin_tls_stats st;
    chopin__tls_ctx_stats(ctx, &st);
    CHECK_INT(st.handshakes, 0);
    CHECK_INT(st.failed, 1);
    chopin__tls_ctx_free(ctx);
}

static void sni_chooses_certificate(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    const char *names[] = {"b.test", "a.test", NULL, "other.test"};
    const char *want[] = {"CN=b.test", "CN=a.test", "CN=a.test", "CN=a.test"};
    for (int i = 0; i < 4; i++) {
        struct client cl;
        client_init(&cl, names[i], 0, NULL, NULL);
        if (i == 3) /* a name no certificate holds gets the default, which the client refuses */
            SSL_set_verify(cl.ssl, SSL_VERIFY_NONE, NULL);
        CHECK_INT(roundtrip(ctx, &cl, 0), 0);
        X509 *x = SSL_get0_peer_certificate(cl.ssl);
        char subj[128] = "";
        if (x)
            X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof subj);
        CHECK_STR(subj + 1, want[i]); /* oneline starts with '/' */
        client_free(&cl);
    }
    chopin__tls_ctx_free(ctx);
}

/* A client offering only protocols the server does not speak is refused (h2 is spoken
 * when the build has HTTP/2, so the unknown one is spdy/3). */
static void alpn_without_http11_refused(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct client cl;
    client_init(&cl, "a.test", 0, "spdy/3", NULL);
    CHECK_INT(roundtrip(ctx, &cl, 0), -1);
    client_free(&cl);
    client_init(&cl, "a.test", 0, NULL, NULL); /* no ALPN at all: served */
    CHECK_INT(roundtrip(ctx, &cl, 0), 0);
    client_free(&cl);
    chopin__tls_ctx_free(ctx);
}

/* A ticket from one handshake resumes the next one (any session of the context, as any
 * worker of the process), still after one key rotation, and no longer after two. */
static void resumption_and_rotation(void) {
    int versions[] = {0, TLS1_2_VERSION};
    for (int v = 0; v < 2; v++) {
        struct chopin__tls_ctx *ctx = ctx_new(0, 0);
        struct client cl;
        client_init(&cl, "a.test", versions[v], NULL, NULL);
        CHECK_INT(roundtrip(ctx, &cl, 0), 0);
        SSL_SESSION *sess = SSL_get1_session(cl.ssl);
        CHECK(sess != NULL);
        client_free(&cl);
        int expect[] = {1, 1, 0};
        for (int round = 0; round < 3; round++) {
            if (round)
                chopin__tls_ctx_rotate_tickets(ctx);
            client_init(&cl, "a.test", versions[v], NULL, NULL);
            SSL_set_session(cl.ssl, sess);
            CHECK_INT(roundtrip(ctx, &cl, 0), 0);
            CHECK_INT(SSL_session_reused(cl.ssl), expect[round]);
            client_free(&cl);
        }
        SSL_SESSION_free(sess);
        chopin_tls_stats st;
        chopin__tls_ctx_stats(ctx, &st);
        CHECK_INT(st.handshakes, 4);
        CHECK_INT(st.resumed, 2);
        chopin__tls_ctx_free(ctx);
    }
}

static const char *subject_of(struct chopin__tls_ctx *ctx, const char *cert, int *ok) {
    static char subject[128];
    struct client cl;
    struct chopin__tls_session s;
    client_init(&cl, "a.test", 0, NULL, cert);
    chopin__tls_session_init(&s, ctx);
    pump(&cl, &s, 0);
    *ok = s.state == CHOPIN__TLS_OPEN;
    snprintf(subject, sizeof subject, "%s", s.subject ? s.subject : "(none)");
    chopin__tls_session_release(&s);
    client_free(&cl);
    return subject;
}

static void client_certificates(void) {
    struct chopin__tls_ctx *ctx = ctx_new(CHOPIN_TLS_VERIFY_REQUIRE, 0);
    int ok;
    CHECK_STR(subject_of(ctx, path("client.pem"), &ok), "CN=alice,O=Chopin tests");
    CHECK_INT(ok, 1);
    subject_of(ctx, path("rogue.pem"), &ok);
    CHECK_INT(ok, 0);
    subject_of(ctx, NULL, &ok);
    CHECK_INT(ok, 0);
    chopin__tls_ctx_free(ctx);
    ctx = ctx_new(CHOPIN_TLS_VERIFY_OPTIONAL, 0);
    CHECK_STR(subject_of(ctx, NULL, &ok), "(none)");
    CHECK_INT(ok, 1);
    CHECK_STR(subject_of(ctx, path("client.pem"), &ok), "CN=alice,O=Chopin tests");
    subject_of(ctx, path("rogue.pem"), &ok);
    CHECK_INT(ok, 0);
    chopin__tls_ctx_free(ctx);
}

static void ocsp_stapled(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 1);
    FILE *f = fopen(path("a.ocsp"), "rb");
    unsigned char want[4096];
    size_t n = f ? fread(want, 1, sizeof want, f) : 0;
    if (f)
        fclose(f);
    CHECK(n > 0);
    struct client cl;
    client_init(&cl, "a.test", 0, NULL, NULL);
    CHECK_INT(roundtrip(ctx, &cl, 0), 0);
    CHECK_INT(cl.ocsp_len, n);
    CHECK(memcmp(cl.ocsp, want, n) == 0);
    client_free(&cl);
    client_init(&cl, "b.test", 0, NULL, NULL); /* b has none */
    CHECK_INT(roundtrip(ctx, &cl, 0), 0);
    CHECK_INT(cl.ocsp_len, 0);
    client_free(&cl);
    chopin__tls_ctx_free(ctx);
}

static void plain_http_answered_400(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct chopin__tls_session s;
    chopin__tls_session_init(&s, ctx);
    CHECK_INT(chopin__tls_session_input(&s, "GET / HTTP/1.1\r\n", 16), CHOPIN__TLS_PLAIN);
    chopin__tls_session_input_done(&s);
    char buf[64];
    CHECK_INT(chopin__tls_session_read(&s, buf, sizeof buf), -1);
    const char *o;
    size_t n = chopin__tls_session_out(&s, &o);
    CHECK(n > 20 && memcmp(o, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    CHECK(memmem(o, n, "plain HTTP was sent to an HTTPS port", 36) != NULL);
    chopin__tls_session_release(&s);
    chopin_tls_stats st;
    chopin__tls_ctx_stats(ctx, &st);
    CHECK_INT(st.plain_http, 1);
    CHECK_INT(st.malformed_hello, 0);
    chopin__tls_ctx_free(ctx);
}

/* Not a handshake record at all, and a handshake record that does not parse: both are
 * malformed ClientHellos, counted; neither gets plaintext out. */
static void garbage_counted_and_closed(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    static const char *garbage[] = {
        "\x00\x01\x02\x03 not TLS",
        "\x16\x03\x01\x00\x08\x01\x00\x00\x04\xff\xff\xff\xff", /* ClientHello of nonsense */
        "\x16\x03\x01\x00\x05\x07\x00\x00\x01\x00", /* not even a ClientHello type */
    };
    size_t lens[] = {13, 13, 10};
    for (int i = 0; i < 3; i++) {
        struct chopin__tls_session s;
        chopin__tls_session_init(&s, ctx);
        chopin__tls_session_input(&s, garbage[i], lens[i]);
        char buf[64];
        CHECK_INT(chopin__tls_session_read(&s, buf, sizeof buf), -1);
        chopin__tls_session_input_done(&s);
        CHECK_INT(s.state, CHOPIN__TLS_FAILED);
        chopin__tls_session_release(&s);
    }
    chopin_tls_stats st;
    chopin__tls_ctx_stats(ctx, &st);
    CHECK_INT(st.malformed_hello, 3);
    CHECK_INT(st.failed, 0);
    chopin__tls_ctx_free(ctx);
}

/* 1 MiB each way through the records, and close_notify. */
static void large_data_and_close(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct client cl;
    struct chopin__tls_session s;
    client_init(&cl, "a.test", 0, NULL, NULL);
    chopin__tls_session_init(&s, ctx);
    plain_len = 0;
    pump(&cl, &s, 0);
    static char big[1 << 20], back[1 << 20];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7 + (i >> 9));
    CHECK_INT(chopin__tls_session_write(&s, big, sizeof big), 0);
    const char *o;
    size_t n = chopin__tls_session_out(&s, &o);
    CHECK(n > sizeof big);
    BIO_write(cl.in, o, (int)n);
    chopin__tls_session_out_done(&s, n);
    size_t got = 0;
    int k;
    while (got < sizeof back && (k = SSL_read(cl.ssl, back + got, (int)(sizeof back - got))) > 0)
        got += (size_t)k;
    CHECK_INT(got, sizeof big);
    CHECK(memcmp(big, back, sizeof big) == 0);
    SSL_write(cl.ssl, big, sizeof big);
    plain_len = 0;
    pump(&cl, &s, 5000);
    CHECK_INT(plain_len, sizeof big);
    CHECK(memcmp(plain, big, sizeof big) == 0);
    SSL_shutdown(cl.ssl);
    pump(&cl, &s, 0);
    CHECK_INT(s.state, CHOPIN__TLS_CLOSED);
    chopin__tls_session_release(&s);
    client_free(&cl);
    chopin__tls_ctx_free(ctx);
}

/* Records lent to the backend stay where they are until it reports them sent (an
 * io_uring send may still read them): the records made meanwhile (TLS 1.3 session tickets,
 * made as the client's Finished arrives) wait behind them, and come next. */
static void lent_records_stay(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct client cl;
    struct chopin__tls_session s;
    client_init(&cl, "a.test", 0, NULL, NULL);
    chopin__tls_session_init(&s, ctx);
    SSL_do_handshake(cl.ssl);
    char *p;
    long n = BIO_get_mem_data(cl.out, &p);
    to_server(&s, p, (size_t)n, 0);
    (void)BIO_reset(cl.out);
    const char *flight;
    size_t m = chopin__tls_session_out(&s, &flight); /* lent: "in flight" from here */
    char *copy = malloc(m);
    memcpy(copy, flight, m);
    BIO_write(cl.in, copy, (int)m);
    CHECK_INT(SSL_do_handshake(cl.ssl), 1);
    n = BIO_get_mem_data(cl.out, &p);
    const char *base = s.out.buf;
    to_server(&s, p, (size_t)n, 0); /* Finished: the server makes its tickets now */
    CHECK_INT(s.state, CHOPIN__TLS_OPEN);
    static char answer[64 * 1024]; /* and records far larger than the buffer lent */
    memset(answer, 'x', sizeof answer);
    CHECK_INT(chopin__tls_session_write(&s, answer, sizeof answer), 0);
    CHECK(s.out.buf == base);             /* not moved (realloc) under the send */
    CHECK(memcmp(flight, copy, m) == 0); /* (ASan: still the same live memory) */
    CHECK(chopin__tls_session_pending(&s) > m + sizeof answer);
    chopin__tls_session_out_done(&s, m);
    const char *rest;
    size_t t = chopin__tls_session_out(&s, &rest);
    CHECK(t > sizeof answer && t == chopin__tls_session_pending(&s));
    BIO_write(cl.in, rest, (int)t);
    chopin__tls_session_out_done(&s, t);
    static char got[64 * 1024];
    size_t g = 0;
    int k;
    while (g < sizeof got && (k = SSL_read(cl.ssl, got + g, (int)(sizeof got - g))) > 0)
        g += (size_t)k;
    CHECK_INT(g, sizeof answer); /* the tickets, then the answer, in order */
    free(copy);
    chopin__tls_session_release(&s);
    client_free(&cl);
    chopin__tls_ctx_free(ctx);
}

static void copy_file(const char *from, const char *to) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    CHECK_INT(system(cmd), 0);
}

/* A reload with a bad key keeps the old certificate and says why; a good one changes the
 * certificate of new handshakes; a session started before keeps its set. */
static void reload(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct chopin__tls_session before;
    chopin__tls_session_init(&before, ctx);
    char err[512] = "";
    copy_file(path("b.key"), path("a.key")); /* a.pem with b's key: does not match */
    CHECK(chopin__tls_ctx_reload(ctx, err, sizeof err) < 0);
    CHECK(strstr(err, "a.key") != NULL && strstr(err, "mismatch") != NULL);
    struct client cl;
    client_init(&cl, "a.test", 0, NULL, NULL);
    CHECK_INT(roundtrip(ctx, &cl, 0), 0);
    client_free(&cl);
    copy_file(path("b.pem"), path("a.pem")); /* now b's pair under a's names */
    CHECK_INT(chopin__tls_ctx_reload(ctx, err, sizeof err), 0);
    client_init(&cl, NULL, 0, NULL, NULL);
    CHECK_INT(roundtrip(ctx, &cl, 0), 0);
    char subj[128] = "";
    X509_NAME_oneline(X509_get_subject_name(SSL_get0_peer_certificate(cl.ssl)), subj, sizeof subj);
    CHECK_STR(subj, "/CN=b.test");
    client_free(&cl);
    /* the session from before still handshakes with a.test's certificate */
    client_init(&cl, "a.test", 0, NULL, NULL);
    plain_len = 0;
    pump(&cl, &before, 0);
    CHECK_INT(before.state, CHOPIN__TLS_OPEN);
    client_free(&cl);
    chopin__tls_session_release(&before);
    chopin_tls_stats st;
    chopin__tls_ctx_stats(ctx, &st);
    CHECK_INT(st.reloads, 1);
    chopin__tls_ctx_free(ctx);
}

static void bad_settings_refused(void) {
    chopin_options o = CHOPIN_OPTIONS_INIT;
    struct chopin__tls_settings s;
    capture_begin();
    int rc = chopin__tls_settings_resolve(&s, &o);
    const char *msg = capture_end();
    CHECK_INT(rc, -EINVAL);
    CHECK(strstr(msg, "CHOPIN_TLS_CERT") != NULL);
    chopin__tls_settings_free(&s);
    o.tls_cert = path("a.pem"), o.tls_key = path("a.key"), o.tls_groups = "no-such-group";
    CHECK_INT(chopin__tls_settings_resolve(&s, &o), 0);
    struct chopin__tls_ctx *ctx = NULL;
    char err[512] = "";
    CHECK_INT(chopin__tls_ctx_new(&ctx, &s, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "CHOPIN_TLS_GROUPS") != NULL);
    chopin__tls_settings_free(&s);
}

static void ktls_fallback(void) {
    /* Not a socket: refused without touching the log; the kernel's answer on a real TCP
     * socket is checked by the integration test (ENOENT here: no tls module). */
    CHECK_INT(chopin__ktls_attach(-1), -EBADF);
}

/* ----- kTLS: the crypto_info the kernel would be handed ------------------------------- */

/* What the kernel does with a crypto_info, done here with EVP: opens one TLS 1.3 record
 * (RFC 8446 5.2: nonce = iv XOR the sequence number; the header is the additional data;
 * the plaintext ends with its content type and zero padding). `ci` is the struct of
 * linux/tls.h exactly as it would go to setsockopt. Returns the content's length, or -1
 * when the record does not open. */
static int ktls_open_record(const struct chopin__ktls_crypto *ci, const unsigned char *rec,
                            size_t n, unsigned char *out) {
    struct tls_crypto_info head;
    memcpy(&head, ci->info, sizeof head);
    const EVP_CIPHER *cipher;
    unsigned char key[32], nonce[12], seq[8];
    if (head.cipher_type == TLS_CIPHER_CHACHA20_POLY1305) {
        struct tls12_crypto_info_chacha20_poly1305 c;
        memcpy(&c, ci->info, sizeof c);
        cipher = EVP_chacha20_poly1305();
        memcpy(key, c.key, 32), memcpy(nonce, c.iv, 12), memcpy(seq, c.rec_seq, 8);
    } else if (head.cipher_type == TLS_CIPHER_AES_GCM_256) {
        struct tls12_crypto_info_aes_gcm_256 c;
        memcpy(&c, ci->info, sizeof c);
        cipher = EVP_aes_256_gcm();
        memcpy(key, c.key, 32), memcpy(nonce, c.salt, 4), memcpy(nonce + 4, c.iv, 8);
        memcpy(seq, c.rec_seq, 8);
    } else {
        struct tls12_crypto_info_aes_gcm_128 c;
        memcpy(&c, ci->info, sizeof c);
        cipher = EVP_aes_128_gcm();
        memcpy(key, c.key, 16), memcpy(nonce, c.salt, 4), memcpy(nonce + 4, c.iv, 8);
        memcpy(seq, c.rec_seq, 8);
    }
    for (int i = 0; i < 8; i++)
        nonce[4 + i] ^= seq[i];
    if (n < 5 + 16 || rec[0] != 0x17 || (size_t)(rec[3] << 8 | rec[4]) != n - 5)
        return -1;
    size_t clen = n - 5 - 16;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    int ok = EVP_DecryptInit_ex(x, cipher, NULL, key, nonce) == 1 &&
             EVP_DecryptUpdate(x, NULL, &len, rec, 5) == 1 &&
             EVP_DecryptUpdate(x, out, &len, rec + 5, (int)clen) == 1 &&
             EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, 16, (void *)(rec + 5 + clen)) == 1 &&
             EVP_DecryptFinal_ex(x, out + len, &fin) == 1;
    EVP_CIPHER_CTX_free(x);
    if (!ok)
        return -1;
    int m = (int)clen;
    while (m > 0 && out[m - 1] == 0)
        m--;
    return m > 0 && out[m - 1] == 0x17 ? m - 1 : -1; /* application data */
}

/* The record's plaintext compared with `want`, through `ci`. */
static int ktls_opens_to(const struct chopin__ktls_crypto *ci, const void *rec, size_t n,
                         const char *want) {
    unsigned char out[4096];
    int m = n <= sizeof out ? ktls_open_record(ci, rec, n, out) : -1;
    return m == (int)strlen(want) && memcmp(out, want, (size_t)m) == 0;
}

/* A crypto_info with one byte of a field changed (at `off` of the struct, see
 * linux/tls.h: info 4, then iv, key, salt, rec_seq). */
static struct chopin__ktls_crypto ktls_altered(const struct chopin__ktls_crypto *ci, size_t off) {
    struct chopin__ktls_crypto bad = *ci;
    bad.info[off] ^= 1;
    return bad;
}

/* Offsets of iv, key, salt and rec_seq's last byte for the cipher of `ci`. */
static void ktls_field_offsets(const struct chopin__ktls_crypto *ci, size_t off[4]) {
    struct tls_crypto_info head;
    memcpy(&head, ci->info, sizeof head);
    if (head.cipher_type == TLS_CIPHER_CHACHA20_POLY1305) {
        struct tls12_crypto_info_chacha20_poly1305 c;
        off[0] = offsetof(__typeof__(c), iv), off[1] = offsetof(__typeof__(c), key);
        off[2] = offsetof(__typeof__(c), iv) + 11; /* no salt: the iv's last byte */
        off[3] = offsetof(__typeof__(c), rec_seq) + 7;
    } else if (head.cipher_type == TLS_CIPHER_AES_GCM_256) {
        struct tls12_crypto_info_aes_gcm_256 c;
        off[0] = offsetof(__typeof__(c), iv), off[1] = offsetof(__typeof__(c), key);
        off[2] = offsetof(__typeof__(c), salt), off[3] = offsetof(__typeof__(c), rec_seq) + 7;
    } else {
        struct tls12_crypto_info_aes_gcm_128 c;
        off[0] = offsetof(__typeof__(c), iv), off[1] = offsetof(__typeof__(c), key);
        off[2] = offsetof(__typeof__(c), salt), off[3] = offsetof(__typeof__(c), rec_seq) + 7;
    }
}

/* The records the kernel would send and receive after the hand-over open with exactly the
 * crypto_info handed to it, for each TLS 1.3 suite: the server's next record (after the
 * handshake, its two tickets and one answer OpenSSL already wrote: sequence 3) and the
 * client's next one (after one request: sequence 1). Changing any byte of the iv, the key,
 * the salt or the sequence number makes them fail to open. Receiving is refused while a
 * record is cut in half inside OpenSSL. */
static void ktls_crypto_info(void) {
    static const struct {
        const char *suite;
        uint16_t type;
    } suites[] = {
        {"TLS_AES_128_GCM_SHA256", TLS_CIPHER_AES_GCM_128},
        {"TLS_AES_256_GCM_SHA384", TLS_CIPHER_AES_GCM_256},
        {"TLS_CHACHA20_POLY1305_SHA256", TLS_CIPHER_CHACHA20_POLY1305},
    };
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        struct chopin__tls_ctx *ctx = ctx_new(0, 0);
        chopin__tls_ctx_gather_ktls_keys(ctx);
        struct client cl;
        client_init(&cl, "a.test", 0, "http/1.1", NULL);
        SSL_set_ciphersuites(cl.ssl, suites[i].suite);
        struct chopin__tls_session s;
        plain_len = 0;
        CHECK_INT(chopin__tls_session_init(&s, ctx), 0);
        pump(&cl, &s, 0);
        CHECK_INT(s.state, CHOPIN__TLS_OPEN);
        SSL_write(cl.ssl, "GET /1 HTTP/1.1\r\n\r\n", 19);
        pump(&cl, &s, 0);
        CHECK_INT(plain_len, 19);
        CHECK_INT(chopin__tls_session_write(&s, "first", 5), 0);
        pump(&cl, &s, 0);
        char got[64];
        CHECK_INT(SSL_read(cl.ssl, got, sizeof got), 5);

        /* Half a client record inside: receiving cannot be handed over yet. */
        struct chopin__ktls_crypto tx, rx;
        SSL_write(cl.ssl, "GET /2 HTTP/1.1\r\n\r\n", 19);
        char *p;
        long n = BIO_get_mem_data(cl.out, &p);
        char rec[256];
        CHECK(n > 10 && n < (long)sizeof rec);
        memcpy(rec, p, (size_t)n);
        (void)BIO_reset(cl.out);
        to_server(&s, rec, 10, 0);
        CHECK_INT(chopin__ktls_crypto(&s, 0, &rx), -EAGAIN);
        to_server(&s, rec + 10, (size_t)n - 10, 0);
        CHECK_INT(plain_len, 38);

        CHECK_INT(chopin__ktls_crypto(&s, 1, &tx), 0);
        CHECK_INT(chopin__ktls_crypto(&s, 0, &rx), 0);
        struct tls_crypto_info head;
        memcpy(&head, tx.info, sizeof head);
        CHECK_INT(head.version, TLS_1_3_VERSION);
        CHECK_INT(head.cipher_type, suites[i].type);

        /* The server's next record, as OpenSSL writes it (the kernel would write the same). */
        static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        CHECK_INT(chopin__tls_session_write(&s, answer, sizeof answer - 1), 0);
        const char *o;
        size_t m = chopin__tls_session_out(&s, &o);
        CHECK(ktls_opens_to(&tx, o, m, answer));
        /* The client's next record, as the kernel would receive it. */
        static const char req[] = "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
        SSL_write(cl.ssl, req, sizeof req - 1);
        n = BIO_get_mem_data(cl.out, &p);
        CHECK(ktls_opens_to(&rx, p, (size_t)n, req));

        size_t off[4];
        ktls_field_offsets(&tx, off);
        for (int f = 0; f < 4; f++) {
            struct chopin__ktls_crypto bad = ktls_altered(&tx, off[f]);
            CHECK(!ktls_opens_to(&bad, o, m, answer));
            bad = ktls_altered(&rx, off[f]);
            CHECK(!ktls_opens_to(&bad, p, (size_t)n, req));
        }
        chopin__tls_session_out_done(&s, m);
        client_free(&cl);
        chopin__tls_session_release(&s);
        chopin__tls_ctx_free(ctx);
    }
}

/* TLS 1.2 stays in user space (its keys are not derived); a context whose kernel has no
 * tls module gathers nothing. */
static void ktls_crypto_refused(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct chopin__tls_session s;
    struct chopin__ktls_crypto ci;
    struct client cl;
    CHECK_INT(chopin__tls_ctx_ktls(ctx), chopin__ktls_probe());
    if (!chopin__ktls_probe()) {
        client_init(&cl, "a.test", 0, "http/1.1", NULL);
        CHECK_INT(chopin__tls_session_init(&s, ctx), 0);
        pump(&cl, &s, 0);
        CHECK(s.keys == NULL);
        CHECK_INT(chopin__ktls_crypto(&s, 1, &ci), -ENOTSUP);
        chopin__tls_session_release(&s);
        client_free(&cl);
    }
    chopin__tls_ctx_gather_ktls_keys(ctx);
    client_init(&cl, NULL, TLS1_2_VERSION, NULL, NULL);
    CHECK_INT(chopin__tls_session_init(&s, ctx), 0);
    pump(&cl, &s, 0);
    CHECK_INT(s.state, CHOPIN__TLS_OPEN);
    CHECK_INT(chopin__ktls_crypto(&s, 1, &ci), -ENOTSUP);
    CHECK_INT(chopin__ktls_crypto(&s, 0, &ci), -ENOTSUP);
    chopin__tls_session_release(&s);
    client_free(&cl);
    chopin__tls_ctx_free(ctx);
}

/* ----- the transport on a connection, through the fake backend ------------------------ */

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

static char big_path[300];
static void file(chopin_req *req, chopin_res *res, void *data) {
    if (chopin_res_file(res, big_path) < 0)
        chopin_res_static(res, 500, "text/plain", "no file", 7);
}

static void conn_setup(struct fake *f) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hello", hello, NULL);
    chopin_router_get(r, "/who", who, NULL);
    chopin_router_get(r, "/file", file, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 8;
    fake_start(f, r, &o);
}

static struct chopin__conn *tls_conn(struct fake *f, struct chopin__tls_ctx *ctx) {
    struct chopin__conn *c = chopin__engine_conn_new(&f->engine, -1);
    CHECK_INT(chopin__tls_transport_install(c, ctx), 0);
    return c;
}

/* What the client read back (plaintext). */
static char resp[1 << 21];
static size_t resp_len;

/* Moves bytes both ways between the client and the connection until neither moves:
 * the client's bytes cut every `split` bytes (0: whole), the connection's output sent
 * as the fake socket takes it. */
static void conn_pump(struct client *cl, struct chopin__conn *c, size_t split) {
    for (int round = 0; round < 64; round++) {
        int moved = 0;
        char *p;
        if (!SSL_is_init_finished(cl->ssl))
            SSL_do_handshake(cl->ssl);
        long n = BIO_get_mem_data(cl->out, &p);
        if (n > 0 && !(c->ask & CHOPIN__CONN_CLOSE)) {
            char *copy = malloc((size_t)n);
            memcpy(copy, p, (size_t)n);
            (void)BIO_reset(cl->out);
            for (size_t off = 0; off < (size_t)n;) {
                size_t k = split && split < (size_t)n - off ? split : (size_t)n - off;
                char *piece = malloc(k);
                memcpy(piece, copy + off, k);
                chopin__conn_on_data(c, piece, k);
                memset(piece, '#', k);
                free(piece);
                off += k;
            }
            free(copy);
            moved = 1;
        }
        struct chopin__plan pl;
        while (chopin__conn_has_output(c) && chopin__conn_out_plan(c, &pl) > 0) {
            for (int i = 0; i < pl.iovcnt; i++)
                BIO_write(cl->in, pl.iov[i].iov_base, (int)pl.iov[i].iov_len);
            chopin__conn_on_sent(c, pl.bytes);
            moved = 1;
        }
        if (SSL_do_handshake(cl->ssl) == 1) {
            int k;
            while ((k = SSL_read(cl->ssl, resp + resp_len, (int)(sizeof resp - resp_len))) > 0)
                resp_len += (size_t)k, moved = 1;
        }
        if (!moved)
            break;
    }
    ERR_clear_error();
}

static int conn_get(struct client *cl, struct chopin__conn *c, const char *req, size_t split) {
    resp_len = 0;
    conn_pump(cl, c, split);
    if (!SSL_is_init_finished(cl->ssl))
        return -1;
    SSL_write(cl->ssl, req, (int)strlen(req));
    conn_pump(cl, c, split);
    resp[resp_len] = '\0';
    return 0;
}

/* A request through handshake, records and HTTP/1.1, the client's bytes cut at every
 * boundary up to 600 (past the ClientHello): the same answer each time. */
static void conn_split_at_every_byte(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    int bad = 0;
    for (size_t split = 1; split <= 600; split++) {
        struct fake f;
        conn_setup(&f);
        struct chopin__conn *c = tls_conn(&f, ctx);
        struct client cl;
        client_init(&cl, "a.test", split % 2 ? 0 : TLS1_2_VERSION, "http/1.1", NULL);
        int rc = conn_get(&cl, c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", split);
        if ((rc < 0 || !strstr(resp, "200 OK") || !strstr(resp, "\r\n\r\nhello")) && bad++ < 3)
            fprintf(stderr, "  split %zu: \"%s\"\n", split, resp);
        client_free(&cl);
        chopin__engine_conn_free(&f.engine, c);
        fake_stop(&f);
    }
    CHECK_INT(bad, 0);
    chopin__tls_ctx_free(ctx);
}

/* Three requests in one record: three answers, in order. */
static void conn_pipelining(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct fake f;
    conn_setup(&f);
    struct chopin__conn *c = tls_conn(&f, ctx);
    struct client cl;
    client_init(&cl, "a.test", 0, NULL, NULL);
    CHECK_INT(conn_get(&cl, c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /who HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 0), 0);
    const char *a = strstr(resp, "hello"), *b = a ? strstr(a, "tls ") : NULL;
    CHECK(a && b && strstr(b, "hello"));
    CHECK(!chopin__conn_has_output(c));
    client_free(&cl);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
    chopin__tls_ctx_free(ctx);
}

/* A file answer (sendfile on a plain connection) is read with pread piece by piece and
 * encrypted: 1 MiB arrives whole. */
static void conn_file_encrypted(void) {
    snprintf(big_path, sizeof big_path, "%s/big.bin", dir);
    FILE *fp = fopen(big_path, "wb");
    for (int i = 0; i < (1 << 20); i++)
        fputc((i * 13 + (i >> 10)) & 0xff, fp);
    fclose(fp);
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct fake f;
    conn_setup(&f);
    struct chopin__conn *c = tls_conn(&f, ctx);
    struct client cl;
    client_init(&cl, "a.test", 0, NULL, NULL);
    CHECK_INT(conn_get(&cl, c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n", 0), 0);
    const char *body = strstr(resp, "\r\n\r\n");
    CHECK(body != NULL);
    size_t len = body ? resp_len - (size_t)(body + 4 - resp) : 0;
    CHECK_INT(len, 1 << 20);
    int same = 1;
    for (size_t i = 0; body && i < len && same; i++)
        same = (unsigned char)body[4 + i] == ((i * 13 + (i >> 10)) & 0xff);
    CHECK(same);
    client_free(&cl);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
    chopin__tls_ctx_free(ctx);
}

/* ----- kTLS on a connection: the test plays the kernel -------------------------------- */

/* What the kernel was handed, and the records it has built and opened since. */
static struct {
    int ulp;
    struct chopin__ktls_crypto tx, rx;
    int has_tx, has_rx;
    uint64_t tx_seq, rx_seq;
} kern;

static int fake_sockopt(int fd, int level, int name, const void *v, socklen_t len) {
    (void)fd;
    if (level == IPPROTO_TCP && name == TCP_ULP) {
        kern.ulp = len == 4 && memcmp(v, "tls", 4) == 0;
        return 0;
    }
    if (level != SOL_TLS || !kern.ulp || len > sizeof kern.tx.info)
        return errno = EINVAL, -1;
    struct chopin__ktls_crypto *ci = name == TLS_TX ? &kern.tx : &kern.rx;
    memcpy(ci->info, v, len);
    ci->len = len;
    *(name == TLS_TX ? &kern.has_tx : &kern.has_rx) = 1;
    return 0;
}

/* The sequence number in a crypto_info (the last 8 bytes of each struct). */
static uint64_t ktls_seq_of(const struct chopin__ktls_crypto *ci) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | ci->info[ci->len - 8 + i];
    return v;
}

/* A copy of `ci` at sequence number `seq`. */
static struct chopin__ktls_crypto ktls_at(const struct chopin__ktls_crypto *ci, uint64_t seq) {
    struct chopin__ktls_crypto c = *ci;
    for (int i = 7; i >= 0; i--, seq >>= 8)
        c.info[c.len - 8 + i] = (unsigned char)seq;
    return c;
}

/* The kernel's sending side: `n` plaintext bytes into records (at most 16 KiB each). */
static void kernel_seal(const char *p, size_t n, BIO *to) {
    static const int tag = 16;
    while (n) {
        size_t k = n < 16384 ? n : 16384;
        struct chopin__ktls_crypto ci = ktls_at(&kern.tx, ktls_seq_of(&kern.tx) + kern.tx_seq++);
        struct tls_crypto_info head;
        memcpy(&head, ci.info, sizeof head);
        unsigned char key[32], nonce[12], seq[8];
        const EVP_CIPHER *cipher = EVP_aes_128_gcm();
        struct tls12_crypto_info_aes_gcm_128 g;
        CHECK_INT(head.cipher_type, TLS_CIPHER_AES_GCM_128); /* the client offers only it */
        memcpy(&g, ci.info, sizeof g);
        memcpy(key, g.key, 16), memcpy(nonce, g.salt, 4), memcpy(nonce + 4, g.iv, 8);
        memcpy(seq, g.rec_seq, 8);
        for (int i = 0; i < 8; i++)
            nonce[4 + i] ^= seq[i];
        unsigned char *rec = malloc(5 + k + 1 + tag);
        size_t body = k + 1 + tag;
        rec[0] = 0x17, rec[1] = 3, rec[2] = 3, rec[3] = (unsigned char)(body >> 8), rec[4] = (unsigned char)body;
        unsigned char *inner = malloc(k + 1);
        memcpy(inner, p, k);
        inner[k] = 0x17;
        EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
        int len = 0, fin = 0;
        CHECK(EVP_EncryptInit_ex(x, cipher, NULL, key, nonce) == 1 &&
              EVP_EncryptUpdate(x, NULL, &len, rec, 5) == 1 &&
              EVP_EncryptUpdate(x, rec + 5, &len, inner, (int)k + 1) == 1 &&
              EVP_EncryptFinal_ex(x, rec + 5 + len, &fin) == 1 &&
              EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, tag, rec + 5 + k + 1) == 1);
        EVP_CIPHER_CTX_free(x);
        BIO_write(to, rec, (int)(5 + body));
        free(rec), free(inner);
        p += k, n -= k;
    }
}

/* The kernel's receiving side: the client's records opened, the plaintext to the
 * connection. */
static void kernel_open(struct chopin__conn *c, const unsigned char *p, size_t n) {
    while (n >= 5) {
        size_t len = 5 + ((size_t)p[3] << 8 | p[4]);
        unsigned char out[17000];
        struct chopin__ktls_crypto ci = ktls_at(&kern.rx, ktls_seq_of(&kern.rx) + kern.rx_seq++);
        int m = len <= n ? ktls_open_record(&ci, p, len, out) : -1;
        CHECK(m >= 0);
        if (m < 0)
            return;
        chopin__conn_on_data(c, (char *)out, (size_t)m);
        p += len, n -= len;
    }
}

/* conn_pump, with the kernel's record layer in the directions handed to it. */
static void ktls_pump(struct client *cl, struct chopin__conn *c) {
    for (int round = 0; round < 64; round++) {
        int moved = 0;
        char *p;
        if (!SSL_is_init_finished(cl->ssl))
            SSL_do_handshake(cl->ssl);
        long n = BIO_get_mem_data(cl->out, &p);
        if (n > 0) {
            char *copy = malloc((size_t)n);
            memcpy(copy, p, (size_t)n);
            (void)BIO_reset(cl->out);
            if (kern.has_rx)
                kernel_open(c, (unsigned char *)copy, (size_t)n);
            else
                chopin__conn_on_data(c, copy, (size_t)n);
            free(copy);
            moved = 1;
        }
        struct chopin__plan pl;
        while (chopin__conn_has_output(c) && chopin__conn_out_plan(c, &pl) > 0) {
            char *buf = malloc(pl.bytes);
            size_t at = 0;
            for (int i = 0; i < pl.iovcnt; i++, at += pl.iov[i - 1].iov_len)
                memcpy(buf + at, pl.iov[i].iov_base, pl.iov[i].iov_len);
            if (pl.iovcnt == 0) /* a file range: what sendfile would send */
                CHECK_INT(pread(pl.file_fd, buf, pl.bytes, (off_t)pl.file_off), (ssize_t)pl.bytes);
            if (kern.has_tx)
                kernel_seal(buf, pl.bytes, cl->in);
            else
                BIO_write(cl->in, buf, (int)pl.bytes);
            free(buf);
            chopin__conn_on_sent(c, pl.bytes);
            moved = 1;
        }
        if (SSL_is_init_finished(cl->ssl)) {
            int k;
            while ((k = SSL_read(cl->ssl, resp + resp_len, (int)(sizeof resp - resp_len))) > 0)
                resp_len += (size_t)k, moved = 1;
        }
        if (!moved)
            break;
    }
    resp[resp_len] = '\0';
    ERR_clear_error();
}

/* After the handshake both directions move to the kernel (played here by the test, with
 * exactly the crypto_info handed to setsockopt): sending once the tickets are out, so the
 * first answer, a 1 MiB file (as sendfile would send it) and a keep-alive answer are
 * plaintext plans the "kernel" seals and the client opens; receiving once no ciphertext is
 * held, so later requests reach HTTP/1.1 as the kernel opened them. On a backend that
 * reads ahead (io_uring) receiving stays in user space. */
static void conn_ktls_handover(void) {
    snprintf(big_path, sizeof big_path, "%s/big.bin", dir);
    for (int ahead = 0; ahead < 2; ahead++) {
        struct chopin__tls_ctx *ctx = ctx_new(0, 0);
        chopin__tls_ctx_gather_ktls_keys(ctx);
        chopin__ktls_test_sockopt(fake_sockopt);
        memset(&kern, 0, sizeof kern);
        struct fake f;
        conn_setup(&f);
        f.engine.reads_ahead = ahead;
        int fd = socket(AF_INET, SOCK_STREAM, 0); /* a descriptor; no byte goes through it */
        struct chopin__conn *c = chopin__engine_conn_new(&f.engine, fd);
        CHECK_INT(chopin__tls_transport_install(c, ctx), 0);
        struct client cl;
        client_init(&cl, "a.test", 0, "http/1.1", NULL);
        SSL_set_ciphersuites(cl.ssl, "TLS_AES_128_GCM_SHA256");
        resp_len = 0;
        ktls_pump(&cl, c);
        CHECK(SSL_is_init_finished(cl.ssl));
        CHECK(kern.ulp && !kern.has_tx); /* the tickets still went out as OpenSSL's */
        SSL_write(cl.ssl, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 32);
        ktls_pump(&cl, c);
        CHECK(kern.has_tx);
        CHECK_INT(kern.has_rx, !ahead);
        CHECK_INT(ktls_seq_of(&kern.tx), 2); /* after the two tickets */
        CHECK(strstr(resp, "200 OK") && strstr(resp, "\r\n\r\nhello"));
        resp_len = 0;
        SSL_write(cl.ssl, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n", 31);
        ktls_pump(&cl, c);
        const char *body = strstr(resp, "\r\n\r\n");
        size_t len = body ? resp_len - (size_t)(body + 4 - resp) : 0;
        CHECK_INT(len, 1 << 20);
        int same = 1;
        for (size_t i = 0; body && i < len && same; i++)
            same = (unsigned char)body[4 + i] == ((i * 13 + (i >> 10)) & 0xff);
        CHECK(same);
        resp_len = 0;
        SSL_write(cl.ssl, "GET /who HTTP/1.1\r\nHost: x\r\n\r\n", 30);
        ktls_pump(&cl, c);
        CHECK(strstr(resp, "200 OK") != NULL);
        CHECK(kern.tx_seq > 64); /* the file went as the kernel's records */
        chopin_tls_stats st;
        chopin__tls_ctx_stats(ctx, &st);
        CHECK_INT(st.ktls, 1);
        CHECK(chopin__tls_transport_session(c)->keys == NULL); /* the secrets are forgotten */
        client_free(&cl);
        chopin__engine_conn_free(&f.engine, c);
        close(fd);
        fake_stop(&f);
        chopin__ktls_test_sockopt(NULL);
        chopin__tls_ctx_free(ctx);
    }
}

/* OpenSSL keeps its record buffers while the worker has few connections (a malloc and a
 * free fewer each way per request) and gives them back between records once it has many
 * (an idle connection then holds none). */
static void conn_buffers_lean_when_crowded(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hello", hello, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 1100;
    struct fake f;
    fake_start(&f, r, &o);
    struct chopin__conn *first = tls_conn(&f, ctx);
    CHECK(!(SSL_get_mode(chopin__tls_transport_session(first)->ssl) & SSL_MODE_RELEASE_BUFFERS));
    static struct chopin__conn *others[1100];
    int n = 0;
    while (f.engine.slab.used < 1024)
        others[n++] = chopin__engine_conn_new(&f.engine, -1);
    struct chopin__conn *crowded = tls_conn(&f, ctx);
    CHECK(SSL_get_mode(chopin__tls_transport_session(crowded)->ssl) & SSL_MODE_RELEASE_BUFFERS);
    struct client cl;
    client_init(&cl, "a.test", 0, NULL, NULL);
    CHECK_INT(conn_get(&cl, crowded, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 0), 0);
    CHECK(strstr(resp, "\r\n\r\nhello") != NULL);
    client_free(&cl);
    client_init(&cl, "a.test", 0, NULL, NULL);
    CHECK_INT(conn_get(&cl, first, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 0), 0);
    CHECK(strstr(resp, "\r\n\r\nhello") != NULL);
    client_free(&cl);
    while (n > 0)
        chopin__engine_conn_free(&f.engine, others[--n]);
    chopin__engine_conn_free(&f.engine, crowded);
    chopin__engine_conn_free(&f.engine, first);
    fake_stop(&f);
    chopin__tls_ctx_free(ctx);
}

/* The client's Finished and its first request in one flight: the tickets OpenSSL makes at
 * the end of the handshake and the answer leave in one send. */
static void conn_tickets_ride_with_answer(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct fake f;
    conn_setup(&f);
    struct chopin__conn *c = tls_conn(&f, ctx);
    struct client cl;
    client_init(&cl, "a.test", 0, NULL, NULL);
    char *p;
    long n;
    struct chopin__plan pl;
    int sends = 0;
    for (int round = 0; round < 4; round++) {
        if (SSL_do_handshake(cl.ssl) == 1)
            break; /* its Finished waits in cl.out */
        if ((n = BIO_get_mem_data(cl.out, &p)) > 0) {
            chopin__conn_on_data(c, p, (size_t)n);
            (void)BIO_reset(cl.out);
        }
        while (chopin__conn_has_output(c) && chopin__conn_out_plan(c, &pl) > 0) {
            BIO_write(cl.in, pl.iov[0].iov_base, (int)pl.iov[0].iov_len);
            chopin__conn_on_sent(c, pl.bytes);
        }
    }
    CHECK(SSL_is_init_finished(cl.ssl));
    SSL_write(cl.ssl, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 32);
    n = BIO_get_mem_data(cl.out, &p);
    chopin__conn_on_data(c, p, (size_t)n); /* Finished and the request at once */
    (void)BIO_reset(cl.out);
    while (chopin__conn_has_output(c) && chopin__conn_out_plan(c, &pl) > 0) {
        BIO_write(cl.in, pl.iov[0].iov_base, (int)pl.iov[0].iov_len);
        chopin__conn_on_sent(c, pl.bytes);
        sends++;
    }
    CHECK_INT(sends, 1);
    char got[256];
    int k = SSL_read(cl.ssl, got, sizeof got - 1);
    CHECK(k > 0 && memmem(got, (size_t)k, "\r\n\r\nhello", 9) != NULL);
    CHECK(SSL_SESSION_is_resumable(SSL_get0_session(cl.ssl))); /* the tickets came */
    client_free(&cl);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
    chopin__tls_ctx_free(ctx);
}

/* The handler sees the verified client certificate's subject. */
static void conn_client_subject(void) {
    struct chopin__tls_ctx *ctx = ctx_new(CHOPIN_TLS_VERIFY_OPTIONAL, 0);
    const char *certs[] = {path("client.pem"), NULL};
    const char *want[] = {"tls CN=alice,O=Chopin tests", "tls "};
    for (int i = 0; i < 2; i++) {
        struct fake f;
        conn_setup(&f);
        struct chopin__conn *c = tls_conn(&f, ctx);
        struct client cl;
        client_init(&cl, "a.test", 0, NULL, certs[i]);
        CHECK_INT(conn_get(&cl, c, "GET /who HTTP/1.1\r\nHost: x\r\n\r\n", 0), 0);
        const char *body = strstr(resp, "\r\n\r\n");
        CHECK_STR(body ? body + 4 : "", want[i]);
        client_free(&cl);
        chopin__engine_conn_free(&f.engine, c);
        fake_stop(&f);
    }
    chopin__tls_ctx_free(ctx);
}

/* Plain HTTP to the TLS connection: the clear 400, then the close. */
static void conn_plain_http(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct fake f;
    conn_setup(&f);
    struct chopin__conn *c = tls_conn(&f, ctx);
    fake_feed(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(chopin__conn_has_output(c));
    CHECK(!(c->ask & CHOPIN__CONN_CLOSE)); /* not before the answer is out */
    const char *out = fake_output(c);
    CHECK(strncmp(out, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    CHECK(strstr(out, "plain HTTP was sent to an HTTPS port") != NULL);
    CHECK(c->ask & CHOPIN__CONN_CLOSE);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
    chopin__tls_ctx_free(ctx);
}

/* Garbage: closed at once, nothing sent, counted. */
static void conn_garbage(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct fake f;
    conn_setup(&f);
    struct chopin__conn *c = tls_conn(&f, ctx);
    fake_feed(c, "\x01\x02\x03garbage");
    CHECK(c->ask & CHOPIN__CONN_CLOSE);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
    chopin_tls_stats st;
    chopin__tls_ctx_stats(ctx, &st);
    CHECK_INT(st.malformed_hello, 1);
    chopin__tls_ctx_free(ctx);
}

/* A client that stalls mid-handshake is closed at the handshake deadline (10 s by
 * default), long before keep-alive's 30 s, and counted; one that finished is not. */
static void conn_handshake_timeout(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    for (int finish = 0; finish < 2; finish++) {
        struct fake f;
        conn_setup(&f);
        struct chopin__conn *c = tls_conn(&f, ctx);
        struct client cl;
        client_init(&cl, "a.test", 0, NULL, NULL);
        SSL_do_handshake(cl.ssl);
        char *p;
        long n = BIO_get_mem_data(cl.out, &p);
        chopin__conn_on_data(c, p, (size_t)(finish ? n : n / 2)); /* half a ClientHello */
        (void)BIO_reset(cl.out);
        if (finish)
            conn_pump(&cl, c, 0);
        chopin__engine_set_clock(&f.engine, FAKE_T0 + 10001, FAKE_WALL + 10);
        chopin__engine_run_timers(&f.engine);
        CHECK_INT(!!(c->ask & CHOPIN__CONN_CLOSE), !finish);
        client_free(&cl);
        chopin__engine_conn_free(&f.engine, c);
        fake_stop(&f);
    }
    chopin_tls_stats st;
    chopin__tls_ctx_stats(ctx, &st);
    CHECK_INT(st.timeouts, 1);
    chopin__tls_ctx_free(ctx);
}

/* The handshake is bounded by its own timeout, not by keep-alive's: with a 100 ms
 * keep-alive a handshake still under way at 200 ms stays open (it failed with the
 * earlier of the two), and closes at the handshake deadline. */
static void conn_handshake_not_cut_by_keepalive(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct fake f;
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hello", hello, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 8;
    o.keepalive_timeout_ms = 100;
    fake_start(&f, r, &o);
    struct chopin__conn *c = tls_conn(&f, ctx);
    struct client cl;
    client_init(&cl, "a.test", 0, NULL, NULL);
    SSL_do_handshake(cl.ssl);
    char *p;
    long n = BIO_get_mem_data(cl.out, &p);
    chopin__conn_on_data(c, p, (size_t)n / 2);
    chopin__engine_set_clock(&f.engine, FAKE_T0 + 200, FAKE_WALL);
    chopin__engine_run_timers(&f.engine);
    CHECK(!(c->ask & CHOPIN__CONN_CLOSE));
    chopin__engine_set_clock(&f.engine, FAKE_T0 + 10001, FAKE_WALL + 10);
    chopin__engine_run_timers(&f.engine);
    CHECK(c->ask & CHOPIN__CONN_CLOSE);
    client_free(&cl);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
    chopin__tls_ctx_free(ctx);
}

/* Connection: close: the answer, then close_notify, before the half-close. */
static void conn_close_notify(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct fake f;
    conn_setup(&f);
    struct chopin__conn *c = tls_conn(&f, ctx);
    struct client cl;
    client_init(&cl, "a.test", 0, NULL, NULL);
    CHECK_INT(conn_get(&cl, c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0), 0);
    CHECK(strstr(resp, "hello") != NULL);
    CHECK(c->ask & CHOPIN__CONN_SHUTDOWN);
    char b[16];
    CHECK_INT(SSL_read(cl.ssl, b, sizeof b), 0);
    CHECK_INT(SSL_get_error(cl.ssl, 0), SSL_ERROR_ZERO_RETURN); /* close_notify arrived */
    client_free(&cl);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
    chopin__tls_ctx_free(ctx);
}

/* A send that failed (a reset) closes the connection: its records are not planned again,
 * or the backend would send them forever (test_churn over TLS hung on that). */
static void conn_error_stops_output(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct fake f;
    conn_setup(&f);
    struct chopin__conn *c = tls_conn(&f, ctx);
    struct client cl;
    client_init(&cl, "a.test", 0, NULL, NULL);
    SSL_do_handshake(cl.ssl);
    char *p;
    long n = BIO_get_mem_data(cl.out, &p);
    chopin__conn_on_data(c, p, (size_t)n);
    CHECK(chopin__conn_has_output(c)); /* the server's flight */
    chopin__conn_on_error(c);
    struct chopin__plan pl;
    CHECK_INT(chopin__conn_out_plan(c, &pl), 0);
    client_free(&cl);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
    chopin__tls_ctx_free(ctx);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/chopin-tls-unit-XXXXXX");
    char cmd[512];
    if (!mkdtemp(dir)) {
        printf("RESULT 0 1\n");
        return 1;
    }
    snprintf(cmd, sizeof cmd, "tests/tls/mkcerts.sh %s", dir);
    if (system(cmd) != 0) {
        printf("test_tls: skipped: cannot make certificates (is the openssl command installed?)\n");
        printf("RESULT 0 0 1\n");
        return 0;
    }
    RUN(handshake_tls13);
    RUN(handshake_tls12_forward_secret);
    RUN(split_at_every_byte);
    RUN(old_versions_refused);
    RUN(sni_chooses_certificate);
    RUN(alpn_without_http11_refused);
    RUN(resumption_and_rotation);
    RUN(client_certificates);
    RUN(ocsp_stapled);
    RUN(plain_http_answered_400);
    RUN(garbage_counted_and_closed);
    RUN(large_data_and_close);
    RUN(lent_records_stay);
    RUN(bad_settings_refused);
    RUN(ktls_fallback);
    RUN(ktls_crypto_info);
    RUN(ktls_crypto_refused);
    RUN(conn_split_at_every_byte);
    RUN(conn_pipelining);
    RUN(conn_file_encrypted);
    RUN(conn_ktls_handover); /* after conn_file_encrypted: its file */
    RUN(conn_buffers_lean_when_crowded);
    RUN(conn_tickets_ride_with_answer);
    RUN(conn_client_subject);
    RUN(conn_plain_http);
    RUN(conn_garbage);
    RUN(conn_handshake_timeout);
    RUN(conn_handshake_not_cut_by_keepalive);
    RUN(conn_close_notify);
    RUN(conn_error_stops_output);
    RUN(reload); /* last: it changes the certificate files */
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    TEST_END();
}
#endif
