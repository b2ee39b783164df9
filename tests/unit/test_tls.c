/* SPDX-License-Identifier: MIT */
/*
 * The TLS session (src/tls/session.c) and context (context.c) against an OpenSSL client
 * in memory: no sockets. Handshakes over TLS 1.3 and 1.2 with the client's bytes split at
 * every byte boundary, SNI, ALPN, resumption across ticket-key rotation, client
 * certificates, OCSP stapling, plain HTTP and garbage, reload. Certificates are made by
 * tests/tls/mkcerts.sh (the openssl command) in a temporary directory.
 */
#include "test.h"

#ifndef CHOPIN_HAVE_TLS
int main(void) {
    printf("test_tls: skipped: built without OpenSSL (pkg-config finds no openssl >= 3)\n");
    printf("RESULT 0 0 1\n");
    return 0;
}
#else

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include "tls/tls.h"

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

static void alpn_without_http11_refused(void) {
    struct chopin__tls_ctx *ctx = ctx_new(0, 0);
    struct client cl;
    client_init(&cl, "a.test", 0, "h2", NULL);
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
    RUN(bad_settings_refused);
    RUN(ktls_fallback);
    RUN(reload); /* last: it changes the certificate files */
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    TEST_END();
}
#endif
