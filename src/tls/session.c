/* SPDX-License-Identifier: MIT */
/*
 * A TLS session without I/O (tls.h): OpenSSL reads ciphertext from, and writes records
 * into, two BIOs of our own over the session's buffers. The input BIO reads the caller's
 * bytes in place while chopin__tls_session_input's caller is reading plaintext out, and
 * only what OpenSSL leaves is copied (a record cut by the end of a read); the output BIO
 * appends records to one buffer the transport hands to the backend as it is.
 *
 * The first bytes decide what the peer speaks: a TLS handshake record (0x16 0x03), an
 * HTTP request line (an upper-case method: plain HTTP on the TLS port, answered 400 in
 * the clear as nginx does), or anything else (counted as a malformed ClientHello, closed).
 */
#include "tls/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* What the info callback saw: the alert we sent, for the malformed-hello count. */
#define ALERT_NONE (-1)

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;
static int session_index = -1;

static int bytes_reserve(struct chopin__tls_bytes *b, size_t more) {
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + more <= b->cap)
        return 0;
    if (b->off) { /* slide what is left to the front before growing */
        memmove(b->buf, b->buf + b->off, b->len - b->off);
        b->len -= b->off, b->off = 0;
        if (b->len + more <= b->cap)
            return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *bigger = realloc(b->buf, cap);
    if (!bigger)
        return -1;
    b->buf = bigger, b->cap = cap;
    return 0;
}

static int bytes_append(struct chopin__tls_bytes *b, const void *p, size_t n) {
    if (bytes_reserve(b, n) < 0)
        return -1;
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 0;
}

static void bytes_free(struct chopin__tls_bytes *b) {
    free(b->buf);
    memset(b, 0, sizeof *b);
}

/* OpenSSL reads: the bytes kept from earlier first, then the caller's. */
static int bio_read(BIO *bio, char *buf, size_t len, size_t *got) {
    struct chopin__tls_session *s = BIO_get_data(bio);
    size_t n = 0;
    BIO_clear_retry_flags(bio);
    if (s->in.len > s->in.off) {
        n = s->in.len - s->in.off < len ? s->in.len - s->in.off : len;
        memcpy(buf, s->in.buf + s->in.off, n);
        s->in.off += n;
    } else if (s->feed_len) {
        n = s->feed_len < len ? s->feed_len : len;
        memcpy(buf, s->feed, n);
        s->feed += n, s->feed_len -= n;
    }
    if (s->keys)
        s->keys->rx_taken += n;
    if (n == 0) {
        BIO_set_retry_read(bio);
        return 0;
    }
    *got = n;
    return 1;
}

static int bio_write(BIO *bio, const char *buf, size_t len, size_t *put) {
    struct chopin__tls_session *s = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (bytes_append(s->lent ? &s->spill : &s->out, buf, len) < 0)
        return 0;
    *put = len;
    return 1;
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr) {
    struct chopin__tls_session *s = BIO_get_data(bio);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return (long)(s->in.len - s->in.off + s->feed_len);
    case BIO_CTRL_WPENDING:
        return (long)chopin__tls_session_pending(s);
    default:
        return 0;
    }
}

static int bio_create(BIO *bio) {
    BIO_set_init(bio, 1);
    return 1;
}

static void make_bio_method(void) {
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "chopin");
    if (m && BIO_meth_set_read_ex(m, bio_read) == 1 && BIO_meth_set_write_ex(m, bio_write) == 1 &&
        BIO_meth_set_ctrl(m, bio_ctrl) == 1 && BIO_meth_set_create(m, bio_create) == 1)
        bio_method = m;
    session_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* Remembers the last alert we sent: decode errors name a malformed ClientHello. */
static void on_info(const SSL *ssl, int where, int ret) {
    if (!(where & SSL_CB_WRITE_ALERT))
        return;
    struct chopin__tls_session *s = SSL_get_ex_data(ssl, session_index);
    if (s)
        s->alert = ret & 0xff;
}

void chopin__tls_session_keylog(const SSL *ssl, const char *line) {
    struct chopin__tls_session *s = SSL_get_ex_data(ssl, session_index);
    if (s && s->keys)
        chopin__ktls_keylog(s->keys, line);
}

static void on_message(int write_p, int version, int content_type, const void *buf, size_t len,
                       SSL *ssl, void *arg) {
    (void)version, (void)ssl;
    chopin__ktls_on_message(arg, write_p, content_type, buf, len);
}

/* Where the kernel may take the record layer, the session gathers what it needs. */
static int gather_keys(struct chopin__tls_session *s) {
    if (!chopin__tls_ctx_ktls(s->ctx))
        return 0;
    s->keys = calloc(1, sizeof *s->keys);
    if (!s->keys)
        return -1;
    SSL_set_msg_callback(s->ssl, on_message);
    SSL_set_msg_callback_arg(s->ssl, s->keys);
    return 0;
}

void chopin__tls_session_drop_keys(struct chopin__tls_session *s) {
    if (!s->keys)
        return;
    SSL_set_msg_callback(s->ssl, NULL);
    OPENSSL_clear_free(s->keys, sizeof *s->keys);
    s->keys = NULL;
}

int chopin__tls_session_init(struct chopin__tls_session *s, struct chopin__tls_ctx *ctx) {
    memset(s, 0, sizeof *s);
    s->alert = ALERT_NONE;
    pthread_once(&bio_once, make_bio_method);
    if (!bio_method || session_index < 0)
        return -ENOMEM;
    SSL_CTX *def;
    s->ctx = ctx;
    s->certs = chopin__tls_certs_get(ctx, &def);
    s->ssl = SSL_new(def);
    BIO *bio = s->ssl ? BIO_new(bio_method) : NULL;
    if (!bio) {
        chopin__tls_session_release(s);
        return -ENOMEM;
    }
    BIO_set_data(bio, s);
    SSL_set_bio(s->ssl, bio, bio); /* one BIO both ways: SSL_free frees it once */
    SSL_set_ex_data(s->ssl, session_index, s);
    SSL_set_info_callback(s->ssl, on_info);
    SSL_set_accept_state(s->ssl);
    if (gather_keys(s) < 0) {
        chopin__tls_session_release(s);
        return -ENOMEM;
    }
    return 0;
}

void chopin__tls_session_lean(struct chopin__tls_session *s) {
    SSL_set_mode(s->ssl, SSL_MODE_RELEASE_BUFFERS);
}

void chopin__tls_session_release(struct chopin__tls_session *s) {
    chopin__tls_session_drop_keys(s);
    SSL_free(s->ssl);
    chopin__tls_certs_put(s->certs);
    bytes_free(&s->in);
    bytes_free(&s->out);
    bytes_free(&s->spill);
    free(s->subject);
    memset(s, 0, sizeof *s);
}

/* The answer to plain HTTP on the TLS port: clear text, then close (nginx answers the
 * same case with "400 The plain HTTP request was sent to HTTPS port"). */
#define PLAIN_HTTP_BODY "400 Bad Request: plain HTTP was sent to an HTTPS port.\r\n"
static const char plain_http_answer[] = "HTTP/1.1 400 Bad Request\r\n"
                                        "Content-Type: text/plain\r\n"
                                        "Content-Length: 56\r\n"
                                        "Connection: close\r\n"
                                        "\r\n" PLAIN_HTTP_BODY;
_Static_assert(sizeof PLAIN_HTTP_BODY - 1 == 56, "Content-Length of the plain-HTTP answer");

/* The first byte decides: 0x16 is a TLS handshake record; an upper-case letter starts an
 * HTTP method; anything else is no ClientHello at all. */
static void first_bytes(struct chopin__tls_session *s, unsigned char b0) {
    if (b0 == 0x16) {
        s->state = CHOPIN__TLS_HANDSHAKE;
    } else if (b0 >= 'A' && b0 <= 'Z') {
        s->state = CHOPIN__TLS_PLAIN;
        chopin__tls_ctx_count(s->ctx, CHOPIN__TLS_COUNT_PLAIN);
        if (bytes_append(&s->out, plain_http_answer, sizeof plain_http_answer - 1) < 0)
            s->state = CHOPIN__TLS_FAILED;
    } else {
        s->state = CHOPIN__TLS_FAILED;
        chopin__tls_ctx_count(s->ctx, CHOPIN__TLS_COUNT_MALFORMED);
    }
}

/* The alerts a server sends when the ClientHello (or a record around it) does not parse. */
static int alert_is_malformed(int alert) {
    return alert == SSL3_AD_UNEXPECTED_MESSAGE || alert == TLS1_AD_DECODE_ERROR ||
           alert == SSL3_AD_ILLEGAL_PARAMETER || alert == TLS1_AD_RECORD_OVERFLOW;
}

static void handshake_failed(struct chopin__tls_session *s) {
    s->state = CHOPIN__TLS_FAILED;
    if (alert_is_malformed(s->alert))
        chopin__tls_ctx_count(s->ctx, CHOPIN__TLS_COUNT_MALFORMED);
    else
        chopin__tls_ctx_count(s->ctx, CHOPIN__TLS_COUNT_FAILED);
    ERR_clear_error();
}

/* "CN=alice,O=Example" of a client certificate that verified. */
static void keep_subject(struct chopin__tls_session *s) {
    X509 *peer = SSL_get0_peer_certificate(s->ssl);
    if (!peer || SSL_get_verify_result(s->ssl) != X509_V_OK)
        return;
    BIO *mem = BIO_new(BIO_s_mem());
    if (!mem)
        return;
    if (X509_NAME_print_ex(mem, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0) {
        char *p;
        long n = BIO_get_mem_data(mem, &p);
        s->subject = n >= 0 ? strndup(p, (size_t)n) : NULL;
    }
    BIO_free(mem);
}

static void handshake_step(struct chopin__tls_session *s) {
    int rc = SSL_do_handshake(s->ssl);
    if (rc == 1) {
        s->state = CHOPIN__TLS_OPEN;
        s->resumed = (uint8_t)SSL_session_reused(s->ssl);
        chopin__tls_ctx_count(s->ctx, CHOPIN__TLS_COUNT_HANDSHAKE);
        if (s->resumed)
            chopin__tls_ctx_count(s->ctx, CHOPIN__TLS_COUNT_RESUMED);
        keep_subject(s);
        return;
    }
    int err = SSL_get_error(s->ssl, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
        handshake_failed(s);
}

int chopin__tls_session_input(struct chopin__tls_session *s, const char *data, size_t n) {
    if (n == 0 || s->state >= CHOPIN__TLS_CLOSED)
        return s->state;
    if (s->state == CHOPIN__TLS_HELLO)
        first_bytes(s, (unsigned char)data[0]);
    if (s->state >= CHOPIN__TLS_CLOSED)
        return s->state; /* plain HTTP or garbage: the rest of the input is not read */
    if (s->in.len > s->in.off) {
        if (bytes_append(&s->in, data, n) < 0) {
            s->state = CHOPIN__TLS_FAILED;
            return s->state;
        }
    } else {
        s->feed = data, s->feed_len = n;
    }
    if (s->state == CHOPIN__TLS_HANDSHAKE)
        handshake_step(s);
    return s->state;
}

void chopin__tls_session_input_done(struct chopin__tls_session *s) {
    if (s->feed_len && s->state < CHOPIN__TLS_CLOSED && bytes_append(&s->in, s->feed, s->feed_len) < 0)
        s->state = CHOPIN__TLS_FAILED;
    s->feed = NULL, s->feed_len = 0;
    if (s->in.off == s->in.len)
        s->in.off = s->in.len = 0;
}

ssize_t chopin__tls_session_read(struct chopin__tls_session *s, char *buf, size_t cap) {
    if (s->state == CHOPIN__TLS_HANDSHAKE)
        handshake_step(s);
    if (s->state != CHOPIN__TLS_OPEN)
        return s->state >= CHOPIN__TLS_CLOSED ? -1 : 0;
    size_t got = 0;
    if (SSL_read_ex(s->ssl, buf, cap, &got) == 1)
        return (ssize_t)got;
    switch (SSL_get_error(s->ssl, 0)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        s->state = CHOPIN__TLS_CLOSED;
        return -1;
    default:
        s->state = CHOPIN__TLS_FAILED;
        ERR_clear_error();
        return -1;
    }
}

int chopin__tls_session_write(struct chopin__tls_session *s, const void *data, size_t n) {
    size_t put = 0;
    if (s->state != CHOPIN__TLS_OPEN && s->state != CHOPIN__TLS_CLOSED)
        return -1;
    if (n == 0)
        return 0;
    if (SSL_write_ex(s->ssl, data, n, &put) != 1 || put != n) {
        s->state = CHOPIN__TLS_FAILED;
        ERR_clear_error();
        return -1;
    }
    return 0;
}

void chopin__tls_session_shutdown(struct chopin__tls_session *s) {
    if (s->state == CHOPIN__TLS_OPEN || s->state == CHOPIN__TLS_CLOSED)
        SSL_shutdown(s->ssl);
    ERR_clear_error();
}

/* `out` is all sent: the records that waited in `spill` take its place. */
static void out_swap_if_sent(struct chopin__tls_session *s) {
    if (s->out.off < s->out.len)
        return;
    s->out.off = s->out.len = 0;
    if (s->spill.len > s->spill.off) {
        struct chopin__tls_bytes t = s->out;
        s->out = s->spill;
        s->spill = t;
    }
}

size_t chopin__tls_session_out(struct chopin__tls_session *s, const char **p) {
    out_swap_if_sent(s);
    size_t n = s->out.len - s->out.off;
    *p = n ? s->out.buf + s->out.off : NULL;
    s->lent = n;
    return n;
}

void chopin__tls_session_out_done(struct chopin__tls_session *s, size_t n) {
    s->out.off += n < s->out.len - s->out.off ? n : s->out.len - s->out.off;
    s->lent = s->lent > n ? s->lent - n : 0;
    out_swap_if_sent(s);
}

const unsigned char *chopin__tls_session_alpn(const struct chopin__tls_session *s, unsigned *len) {
    const unsigned char *p = NULL;
    *len = 0;
    SSL_get0_alpn_selected(s->ssl, &p, len);
    return p;
}
