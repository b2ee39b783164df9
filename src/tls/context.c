/* SPDX-License-Identifier: MIT */
/*
 * The TLS context (tls.h): policy, certificates chosen by SNI, ALPN, session tickets,
 * OCSP stapling, client certificates and reload. Built once per server, shared by all
 * workers; OpenSSL's SSL_CTX is safe to share between threads once configured.
 *
 * A set of certificates (struct chopin__tls_certs) is immutable and reference-counted: a
 * reload builds a new one and swaps it in, and each session holds the set it started on,
 * so a live connection keeps its certificate and a bad reload changes nothing.
 */
#include "tls/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Today's defaults (Mozilla's "intermediate" profile): TLS 1.2 only with ECDHE and an
 * AEAD (forward secrecy only); TLS 1.3 with OpenSSL's suites. */
#define DEFAULT_CIPHERS                                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                          \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                          \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define DEFAULT_GROUPS "X25519:P-256:P-384"
#define DEFAULT_TICKET_ROTATE_S 3600
#define MAX_CERTS 16

/* The protocols ALPN may choose, in the server's order of preference, in wire format:
 * HTTP/2 first when the build has it (src/h2; the transport starts it on "h2"). */
#ifdef CHOPIN_HAVE_NGHTTP2
static const unsigned char alpn_protocols[] = "\x02h2\x08http/1.1";
#else
static const unsigned char alpn_protocols[] = "\x08http/1.1";
#endif

/* One certificate: its own SSL_CTX (SNI switches the session to it), and its stapled OCSP
 * response. */
struct cert {
    SSL_CTX *ssl_ctx;
    unsigned char *ocsp;
    size_t ocsp_len;
};

struct chopin__tls_certs {
    atomic_uint refs;
    int n;
    struct chopin__tls_ctx *owner;
    struct cert certs[MAX_CERTS]; /* [0]: the default, for clients without SNI */
};

/* A ticket key: name (sent in the clear in the ticket), AES key, HMAC key. */
struct ticket_key {
    unsigned char name[16], aes[32], hmac[32];
};

struct chopin__tls_ctx {
    struct chopin__tls_settings set;
    pthread_mutex_t lock; /* guards `current`'s swap and its reference taking */
    struct chopin__tls_certs *current;
    /* Ticket keys: [0] encrypts new tickets; [1] (the previous) still decrypts, so a
     * ticket lives one to two rotation periods. */
    pthread_rwlock_t ticket_lock;
    struct ticket_key tickets[2];
    time_t ticket_born;
    int ktls_keys; /* sessions gather what a kTLS hand-over needs */
    struct {
        atomic_ullong handshakes, resumed, failed, malformed_hello, plain_http, timeouts, reloads, ktls;
    } count;
};

/* Settings --------------------------------------------------------------------------- */

static char *setting(const char *env, const char *code) {
    const char *v = getenv(env);
    if (!v || !*v)
        v = code;
    return v && *v ? strdup(v) : NULL;
}

int chopin__tls_settings_resolve(struct chopin__tls_settings *s, const chopin_options *o) {
    memset(s, 0, sizeof *s);
    s->cert = setting("CHOPIN_TLS_CERT", o->tls_cert);
    s->key = setting("CHOPIN_TLS_KEY", o->tls_key);
    s->ciphers = setting("CHOPIN_TLS_CIPHERS", o->tls_ciphers);
    s->ciphersuites = setting("CHOPIN_TLS_CIPHERSUITES", o->tls_ciphersuites);
    s->groups = setting("CHOPIN_TLS_GROUPS", o->tls_groups);
    s->client_ca = setting("CHOPIN_TLS_CLIENT_CA", o->tls_client_ca);
    s->ocsp = setting("CHOPIN_TLS_OCSP", o->tls_ocsp);
    s->client_verify = o->tls_client_verify;
    s->handshake_timeout_ms = o->tls_handshake_timeout_ms ? o->tls_handshake_timeout_ms : 10000;
    s->ticket_rotate_s = DEFAULT_TICKET_ROTATE_S;
    const char *rot = getenv("CHOPIN_TLS_TICKET_ROTATE_S");
    if (rot && *rot) {
        char *end;
        unsigned long v = strtoul(rot, &end, 10);
        if (*end || v < 1 || v > 7 * 86400) {
            chopin_log(CHOPIN_LOG_ERROR, "chopin: CHOPIN_TLS_TICKET_ROTATE_S=\"%s\": expected 1 to 604800",
                    rot);
            return -EINVAL;
        }
        s->ticket_rotate_s = (uint32_t)v;
    }
    if (!s->cert || !s->key) {
        chopin_log(CHOPIN_LOG_ERROR, "chopin: an https:// listener needs a certificate and its key: set "
                        "tls_cert and tls_key (CHOPIN_TLS_CERT, CHOPIN_TLS_KEY)");
        return -EINVAL;
    }
    return 0;
}

void chopin__tls_settings_free(struct chopin__tls_settings *s) {
    free(s->cert), free(s->key), free(s->ciphers), free(s->ciphersuites), free(s->groups);
    free(s->client_ca), free(s->ocsp);
    memset(s, 0, sizeof *s);
}

/* Errors ------------------------------------------------------------------------------ */

/* "what: OpenSSL's reason" into err, and empties OpenSSL's error queue. */
static int fail(char *err, size_t errlen, const char *what) {
    unsigned long e = ERR_peek_last_error();
    char why[256] = "";
    if (e)
        ERR_error_string_n(e, why, sizeof why);
    snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", why);
    ERR_clear_error();
    return -EINVAL;
}

/* The i-th item of a comma-separated list into buf ("" when absent). */
static const char *list_item(const char *list, int i, char *buf, size_t cap) {
    buf[0] = '\0';
    for (const char *p = list; p && i >= 0; i--) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (i == 0) {
            if (n >= cap)
                n = cap - 1;
            memcpy(buf, p, n);
            buf[n] = '\0';
        }
        p = end ? end + 1 : NULL;
    }
    return buf;
}

static int list_count(const char *list) {
    int n = 1;
    for (const char *p = list; (p = strchr(p, ',')) != NULL; p++)
        n++;
    return n;
}

/* Callbacks ----------------------------------------------------------------------------- */

static struct chopin__tls_ctx *ctx_of(SSL *ssl) {
    struct chopin__tls_certs *set = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    return set->owner;
}

/* SNI: the first certificate whose names (SAN, else CN) match; the default otherwise. */
static int on_servername(SSL *ssl, int *alert, void *arg) {
    struct chopin__tls_certs *set = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_NOACK;
    for (int i = 1; i < set->n; i++) {
        X509 *x = SSL_CTX_get0_certificate(set->certs[i].ssl_ctx);
        if (x && X509_check_host(x, name, 0, 0, NULL) == 1) {
            SSL_set_SSL_CTX(ssl, set->certs[i].ssl_ctx);
            /* SSL_set_SSL_CTX keeps the first context's verification mode: the
             * client-certificate policy is the same for every certificate. */
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

/* RFC 7301 3.2: a client that offers only protocols we do not speak gets
 * no_application_protocol; a client that offers none gets no ALPN at all. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg) {
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, alpn_protocols, sizeof alpn_protocols - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* OCSP stapling: the response of the certificate chosen, when the client asks and one was
 * given. OpenSSL frees the copy. */
static int on_status(SSL *ssl, void *arg) {
    struct chopin__tls_certs *set = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    for (int i = 0; i < set->n; i++) {
        if (set->certs[i].ssl_ctx != SSL_get_SSL_CTX(ssl) || !set->certs[i].ocsp)
            continue;
        unsigned char *copy = OPENSSL_memdup(set->certs[i].ocsp, set->certs[i].ocsp_len);
        if (!copy)
            return SSL_TLSEXT_ERR_NOACK;
        SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)set->certs[i].ocsp_len);
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static void ticket_key_new(struct ticket_key *k) {
    if (RAND_bytes(k->name, sizeof k->name) != 1 || RAND_bytes(k->aes, sizeof k->aes) != 1 ||
        RAND_bytes(k->hmac, sizeof k->hmac) != 1)
        memset(k, 0, sizeof *k); /* an all-zero name matches no ticket: resumption is off */
}

static void rotate_locked(struct chopin__tls_ctx *ctx, time_t now) {
    ctx->tickets[1] = ctx->tickets[0];
    ticket_key_new(&ctx->tickets[0]);
    ctx->ticket_born = now;
}

/* Rotates the keys once their lifetime has passed (checked at each ticket, so an idle
 * server needs no timer). */
static void tickets_maybe_rotate(struct chopin__tls_ctx *ctx) {
    time_t now = time(NULL);
    pthread_rwlock_rdlock(&ctx->ticket_lock);
    int due = now - ctx->ticket_born >= (time_t)ctx->set.ticket_rotate_s;
    pthread_rwlock_unlock(&ctx->ticket_lock);
    if (!due)
        return;
    pthread_rwlock_wrlock(&ctx->ticket_lock);
    if (now - ctx->ticket_born >= (time_t)ctx->set.ticket_rotate_s)
        rotate_locked(ctx, now);
    pthread_rwlock_unlock(&ctx->ticket_lock);
}

static int ticket_keys_apply(const struct ticket_key *k, EVP_CIPHER_CTX *cctx,
                             EVP_MAC_CTX *hctx, unsigned char *iv, int enc) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_init(hctx, k->hmac, sizeof k->hmac, params) != 1)
        return -1;
    return EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv, enc) == 1 ? 0 : -1;
}

/* The ticket keys of every worker and every certificate: a ticket from one worker
 * resumes on another (the kernel spreads a client's connections over the workers). */
static int on_ticket(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc) {
    struct chopin__tls_ctx *ctx = ctx_of(ssl);
    tickets_maybe_rotate(ctx);
    int rc = 0;
    pthread_rwlock_rdlock(&ctx->ticket_lock);
    if (enc) {
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) == 1 &&
            ticket_keys_apply(&ctx->tickets[0], cctx, hctx, iv, 1) == 0) {
            memcpy(name, ctx->tickets[0].name, sizeof ctx->tickets[0].name);
            rc = 1;
        } else {
            rc = -1;
        }
    } else {
        for (int i = 0; i < 2; i++) {
            if (memcmp(name, ctx->tickets[i].name, sizeof ctx->tickets[i].name) != 0)
                continue;
            /* 2: valid, but renew it (it was made with the previous key) */
            rc = ticket_keys_apply(&ctx->tickets[i], cctx, hctx, iv, 0) == 0 ? (i ? 2 : 1) : -1;
            break;
        }
    }
    pthread_rwlock_unlock(&ctx->ticket_lock);
    return rc;
}

/* Building a set of certificates ----------------------------------------------------- */

static int read_file(const char *path, unsigned char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            unsigned char *bigger = realloc(buf, cap = cap ? cap * 2 : 4096);
            if (!bigger) {
                free(buf), fclose(f);
                return -ENOMEM;
            }
            buf = bigger;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0 && n < (1u << 20));
    fclose(f);
    *out = buf, *len = n;
    return n ? 0 : -EINVAL;
}

static int policy_apply(SSL_CTX *c, const struct chopin__tls_settings *s, char *err,
                        size_t errlen) {
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    /* No renegotiation (a CPU sink for an attacker, and nothing here needs it); no
     * compression (CRIME). The output buffers are ours, so partial writes may move.
     * Whether OpenSSL gives its record buffers back between records is chosen per
     * session (chopin__tls_session_lean). */
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_cipher_list(c, s->ciphers ? s->ciphers : DEFAULT_CIPHERS) != 1)
        return fail(err, errlen, "tls_ciphers (CHOPIN_TLS_CIPHERS)");
    if (s->ciphersuites && SSL_CTX_set_ciphersuites(c, s->ciphersuites) != 1)
        return fail(err, errlen, "tls_ciphersuites (CHOPIN_TLS_CIPHERSUITES)");
    if (SSL_CTX_set1_groups_list(c, s->groups ? s->groups : DEFAULT_GROUPS) != 1)
        return fail(err, errlen, "tls_groups (CHOPIN_TLS_GROUPS)");
    /* Stateless resumption only: tickets carry the session, no cache to share. */
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(c, on_alpn, NULL);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(c, on_ticket);
    SSL_CTX_set_tlsext_status_cb(c, on_status);
    if (s->client_verify != CHOPIN_TLS_VERIFY_OFF) {
        if (!s->client_ca) {
            snprintf(err, errlen, "tls_client_verify needs tls_client_ca (CHOPIN_TLS_CLIENT_CA)");
            return -EINVAL;
        }
        if (SSL_CTX_load_verify_locations(c, s->client_ca, NULL) != 1)
            return fail(err, errlen, s->client_ca);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(s->client_ca);
        if (names)
            SSL_CTX_set_client_CA_list(c, names);
        int mode = SSL_VERIFY_PEER;
        if (s->client_verify == CHOPIN_TLS_VERIFY_REQUIRE)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(c, mode, NULL);
        /* A context id is required once peers are verified and sessions resume. */
        static const unsigned char sid[] = "chopin";
        SSL_CTX_set_session_id_context(c, sid, sizeof sid - 1);
    }
    return 0;
}

static int cert_load(struct cert *ct, const struct chopin__tls_settings *s, int i, char *err,
                     size_t errlen) {
    char cert[1024], key[1024], ocsp[1024], what[2200];
    list_item(s->cert, i, cert, sizeof cert);
    list_item(s->key, i, key, sizeof key);
    list_item(s->ocsp, i, ocsp, sizeof ocsp);
    ct->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (!ct->ssl_ctx)
        return fail(err, errlen, "SSL_CTX_new");
    int rc = policy_apply(ct->ssl_ctx, s, err, errlen);
    if (rc < 0)
        return rc;
    snprintf(what, sizeof what, "certificate %s", cert);
    if (SSL_CTX_use_certificate_chain_file(ct->ssl_ctx, cert) != 1)
        return fail(err, errlen, what);
    snprintf(what, sizeof what, "key %s", key);
    if (SSL_CTX_use_PrivateKey_file(ct->ssl_ctx, key, SSL_FILETYPE_PEM) != 1)
        return fail(err, errlen, what);
    snprintf(what, sizeof what, "key %s does not match certificate %s", key, cert);
    if (SSL_CTX_check_private_key(ct->ssl_ctx) != 1)
        return fail(err, errlen, what);
    if (ocsp[0] && (rc = read_file(ocsp, &ct->ocsp, &ct->ocsp_len)) < 0) {
        snprintf(err, errlen, "OCSP response %s: %s", ocsp, strerror(-rc));
        return rc;
    }
    return 0;
}

static void certs_free(struct chopin__tls_certs *set) {
    for (int i = 0; i < set->n; i++) {
        SSL_CTX_free(set->certs[i].ssl_ctx);
        free(set->certs[i].ocsp);
    }
    free(set);
}

static int certs_build(struct chopin__tls_ctx *ctx, struct chopin__tls_certs **out, char *err,
                       size_t errlen) {
    const struct chopin__tls_settings *s = &ctx->set;
    int n = list_count(s->cert);
    if (n != list_count(s->key) || n > MAX_CERTS) {
        snprintf(err, errlen, "tls_cert names %d files and tls_key %d (at most %d pairs)", n,
                 list_count(s->key), MAX_CERTS);
        return -EINVAL;
    }
    struct chopin__tls_certs *set = calloc(1, sizeof *set);
    if (!set)
        return -ENOMEM;
    atomic_init(&set->refs, 1);
    set->owner = ctx;
    for (int i = 0; i < n; i++) {
        set->n = i + 1;
        int rc = cert_load(&set->certs[i], s, i, err, errlen);
        if (rc < 0) {
            certs_free(set);
            return rc;
        }
        SSL_CTX_set_app_data(set->certs[i].ssl_ctx, set);
        if (ctx->ktls_keys) /* on each: SNI moves a handshake to another certificate's */
            SSL_CTX_set_keylog_callback(set->certs[i].ssl_ctx, chopin__tls_session_keylog);
    }
    SSL_CTX_set_tlsext_servername_callback(set->certs[0].ssl_ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(set->certs[0].ssl_ctx, set);
    *out = set;
    return 0;
}

/* Context -------------------------------------------------------------------------------- */

int chopin__tls_ctx_new(struct chopin__tls_ctx **out, struct chopin__tls_settings *s, char *err,
                        size_t errlen) {
    struct chopin__tls_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return -ENOMEM;
    ctx->set = *s;
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&ctx->lock, NULL);
    pthread_rwlock_init(&ctx->ticket_lock, NULL);
    ticket_key_new(&ctx->tickets[0]);
    ticket_key_new(&ctx->tickets[1]);
    ctx->ticket_born = time(NULL);
    ctx->ktls_keys = chopin__ktls_probe();
    int rc = certs_build(ctx, &ctx->current, err, errlen);
    if (rc < 0) {
        chopin__tls_ctx_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

void chopin__tls_certs_put(struct chopin__tls_certs *set) {
    if (set && atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) == 1)
        certs_free(set);
}

struct chopin__tls_certs *chopin__tls_certs_get(struct chopin__tls_ctx *ctx, SSL_CTX **def) {
    pthread_mutex_lock(&ctx->lock);
    struct chopin__tls_certs *set = ctx->current;
    atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&ctx->lock);
    *def = set->certs[0].ssl_ctx;
    return set;
}

void chopin__tls_ctx_free(struct chopin__tls_ctx *ctx) {
    if (!ctx)
        return;
    chopin__tls_certs_put(ctx->current);
    chopin__tls_settings_free(&ctx->set);
    pthread_mutex_destroy(&ctx->lock);
    pthread_rwlock_destroy(&ctx->ticket_lock);
    OPENSSL_cleanse(ctx->tickets, sizeof ctx->tickets);
    free(ctx);
}

int chopin__tls_ctx_reload(struct chopin__tls_ctx *ctx, char *err, size_t errlen) {
    struct chopin__tls_certs *set;
    int rc = certs_build(ctx, &set, err, errlen);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&ctx->lock);
    struct chopin__tls_certs *old = ctx->current;
    ctx->current = set;
    pthread_mutex_unlock(&ctx->lock);
    chopin__tls_certs_put(old);
    atomic_fetch_add_explicit(&ctx->count.reloads, 1, memory_order_relaxed);
    return 0;
}

uint32_t chopin__tls_ctx_handshake_timeout_ms(const struct chopin__tls_ctx *ctx) {
    return ctx->set.handshake_timeout_ms;
}

int chopin__tls_ctx_ktls(const struct chopin__tls_ctx *ctx) { return ctx->ktls_keys; }

void chopin__tls_ctx_gather_ktls_keys(struct chopin__tls_ctx *ctx) {
    ctx->ktls_keys = 1;
    for (int i = 0; i < ctx->current->n; i++)
        SSL_CTX_set_keylog_callback(ctx->current->certs[i].ssl_ctx, chopin__tls_session_keylog);
}

void chopin__tls_ctx_rotate_tickets(struct chopin__tls_ctx *ctx) {
    pthread_rwlock_wrlock(&ctx->ticket_lock);
    rotate_locked(ctx, time(NULL));
    pthread_rwlock_unlock(&ctx->ticket_lock);
}

void chopin__tls_ctx_count(struct chopin__tls_ctx *ctx, enum chopin__tls_count what) {
    atomic_ullong *c[] = {&ctx->count.handshakes, &ctx->count.resumed, &ctx->count.failed,
                          &ctx->count.malformed_hello, &ctx->count.plain_http,
                          &ctx->count.timeouts, &ctx->count.ktls};
    atomic_fetch_add_explicit(c[what], 1, memory_order_relaxed);
}

void chopin__tls_ctx_stats(const struct chopin__tls_ctx *ctx, chopin_tls_stats *out) {
    memset(out, 0, sizeof *out);
    if (!ctx)
        return;
    out->handshakes = atomic_load_explicit(&ctx->count.handshakes, memory_order_relaxed);
    out->resumed = atomic_load_explicit(&ctx->count.resumed, memory_order_relaxed);
    out->failed = atomic_load_explicit(&ctx->count.failed, memory_order_relaxed);
    out->malformed_hello = atomic_load_explicit(&ctx->count.malformed_hello, memory_order_relaxed);
    out->plain_http = atomic_load_explicit(&ctx->count.plain_http, memory_order_relaxed);
    out->timeouts = atomic_load_explicit(&ctx->count.timeouts, memory_order_relaxed);
    out->reloads = atomic_load_explicit(&ctx->count.reloads, memory_order_relaxed);
    out->ktls = atomic_load_explicit(&ctx->count.ktls, memory_order_relaxed);
}
