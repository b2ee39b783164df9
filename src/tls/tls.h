/* SPDX-License-Identifier: MIT */
/*
 * TLS (issue 16): OpenSSL 3 as a transport under the protocol. Two layers, both free of I/O:
 *
 *   - the context (context.c): one per server, shared by every worker. It holds the
 *     certificates (several, chosen by SNI), the protocol and cipher policy, ALPN, the
 *     session-ticket keys (rotated, shared by all workers), OCSP responses and the
 *     client-certificate policy. A reload builds a whole new set of certificates and swaps
 *     it in; connections that started on the old set keep it until they end.
 *   - the session (session.c): one per TLS connection, OpenSSL driven through two memory
 *     BIOs. Ciphertext goes in (chopin__tls_session_input), plaintext comes out
 *     (chopin__tls_session_read); plaintext goes in (chopin__tls_session_write) and
 *     records come out (chopin__tls_session_out / _out_done). Nothing in it blocks or
 *     touches a socket, so the unit tests drive it against an OpenSSL client in memory and
 *     the fuzzer reaches its input path directly.
 *
 * The transport (transport.c) plugs a session into a connection through conn.h's hook.
 */
#ifndef CHOPIN_TLS_H
#define CHOPIN_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "chopin.h"

struct chopin__tls_ctx;
struct chopin__tls_certs;

/* What a context is built from: chopin_options' tls_* fields, each overridden by its
 * CHOPIN_TLS_* variable. Strings are copied. */
struct chopin__tls_settings {
    char *cert;        /* CHOPIN_TLS_CERT: PEM chain files, comma-separated (one per name) */
    char *key;         /* CHOPIN_TLS_KEY: PEM keys, in the same order */
    char *ciphers;     /* CHOPIN_TLS_CIPHERS: TLS 1.2 cipher list */
    char *ciphersuites;/* CHOPIN_TLS_CIPHERSUITES: TLS 1.3 suites */
    char *groups;      /* CHOPIN_TLS_GROUPS: key-exchange groups */
    char *client_ca;   /* CHOPIN_TLS_CLIENT_CA: CAs for client certificates (PEM) */
    char *ocsp;        /* CHOPIN_TLS_OCSP: DER OCSP responses, one per certificate ("" none) */
    uint32_t client_verify;       /* CHOPIN_TLS_CLIENT_VERIFY: CHOPIN_TLS_VERIFY_* */
    uint32_t handshake_timeout_ms;/* CHOPIN_TLS_HANDSHAKE_TIMEOUT_MS */
    uint32_t ticket_rotate_s;     /* CHOPIN_TLS_TICKET_ROTATE_S: ticket key lifetime */
};

/** Resolves the settings from `o` and the environment. Returns 0 or -EINVAL after one
 *  line on stderr per bad value; free with chopin__tls_settings_free either way. */
int chopin__tls_settings_resolve(struct chopin__tls_settings *s, const chopin_options *o);
void chopin__tls_settings_free(struct chopin__tls_settings *s);

/** Builds a context (takes ownership of *s's strings, leaving *s empty). On failure
 *  returns a negative CHOPIN_E* and writes why into err. */
int chopin__tls_ctx_new(struct chopin__tls_ctx **out, struct chopin__tls_settings *s, char *err,
                        size_t errlen);
void chopin__tls_ctx_free(struct chopin__tls_ctx *ctx);
/** Rereads the certificates, keys and OCSP files; swaps them in only when all load (a bad
 *  one keeps the old set; err says why). Callable from any thread. */
int chopin__tls_ctx_reload(struct chopin__tls_ctx *ctx, char *err, size_t errlen);
uint32_t chopin__tls_ctx_handshake_timeout_ms(const struct chopin__tls_ctx *ctx);
/** Process-wide counts (relaxed atomics: they change once per handshake, not per request). */
void chopin__tls_ctx_stats(const struct chopin__tls_ctx *ctx, chopin_tls_stats *out);
/** A reference to the current set of certificates, and its default SSL_CTX in *def. */
struct chopin__tls_certs *chopin__tls_certs_get(struct chopin__tls_ctx *ctx, SSL_CTX **def);
void chopin__tls_certs_put(struct chopin__tls_certs *set);
enum chopin__tls_count {
    CHOPIN__TLS_COUNT_HANDSHAKE = 0,
    CHOPIN__TLS_COUNT_RESUMED,
    CHOPIN__TLS_COUNT_FAILED,
    CHOPIN__TLS_COUNT_MALFORMED,
    CHOPIN__TLS_COUNT_PLAIN,
    CHOPIN__TLS_COUNT_TIMEOUT,
    CHOPIN__TLS_COUNT_KTLS,
};
void chopin__tls_ctx_count(struct chopin__tls_ctx *ctx, enum chopin__tls_count what);
/** Nonzero when this context gathers what a kTLS hand-over needs (its kernel has the tls
 *  module). */
int chopin__tls_ctx_ktls(const struct chopin__tls_ctx *ctx);
/** Test hook: gather them although the kernel has no tls module (the crypto_info is
 *  checked without the kernel). Before the first session. */
void chopin__tls_ctx_gather_ktls_keys(struct chopin__tls_ctx *ctx);
/** Test hook: ticket keys rotate now (as if their lifetime had passed). */
void chopin__tls_ctx_rotate_tickets(struct chopin__tls_ctx *ctx);

/* What a session is doing. */
enum chopin__tls_state {
    CHOPIN__TLS_HELLO = 0, /* nothing received yet: the first bytes decide */
    CHOPIN__TLS_HANDSHAKE, /* a ClientHello started: handshaking */
    CHOPIN__TLS_OPEN,      /* application data both ways */
    CHOPIN__TLS_CLOSED,    /* close_notify received: no more input */
    CHOPIN__TLS_PLAIN,     /* plain HTTP on the TLS port: the 400 goes out, then close */
    CHOPIN__TLS_FAILED,    /* fatal: alert (if any) goes out, then close */
};

/* Growing byte buffer: ciphertext waiting for the socket, or for OpenSSL. */
struct chopin__tls_bytes {
    char *buf;
    size_t len, off, cap;
};

struct chopin__tls_session {
    SSL *ssl;
    struct chopin__tls_ctx *ctx;
    struct chopin__tls_certs *certs; /* the set this handshake started on (a reference) */
    struct chopin__tls_bytes in;     /* ciphertext OpenSSL has not taken yet */
    struct chopin__tls_bytes out;    /* records not yet sent */
    /* Records made while part of `out` is lent to the backend (an io_uring send may still
     * read it): `out` must not move then, so they wait here until it is sent. */
    struct chopin__tls_bytes spill;
    size_t lent;                     /* bytes of `out` handed out by the last plan */
    const char *feed;                /* during input: the caller's bytes, read in place */
    size_t feed_len;
    char *subject;                   /* verified client certificate's subject, or NULL */
    int alert;                       /* the last alert we sent, or -1 */
    uint8_t state;                   /* enum chopin__tls_state */
    uint8_t resumed;
    uint8_t counted;                 /* its handshake is counted (once) */
    struct chopin__ktls_keys *keys;  /* kTLS may take it: what the hand-over needs, or NULL */
};

/** Starts a server session on `ctx`. Returns 0 or CHOPIN_ENOMEM. */
int chopin__tls_session_init(struct chopin__tls_session *s, struct chopin__tls_ctx *ctx);
void chopin__tls_session_release(struct chopin__tls_session *s);
/** OpenSSL gives its record buffers (some 34 KiB) back whenever it holds no record
 *  (SSL_MODE_RELEASE_BUFFERS): an idle connection keeps none, for a malloc and a free of
 *  each per request. Without it they stay for the session's life. */
void chopin__tls_session_lean(struct chopin__tls_session *s);
/** Ciphertext from the peer. The session reads `data` in place until
 *  chopin__tls_session_input_done, which copies what OpenSSL has not taken: in between,
 *  the caller takes the plaintext out with chopin__tls_session_read. Advances the
 *  handshake. Returns the state. */
int chopin__tls_session_input(struct chopin__tls_session *s, const char *data, size_t n);
void chopin__tls_session_input_done(struct chopin__tls_session *s);
/** Decrypted bytes, up to cap. Returns the count (0: none until more input) or -1 when
 *  the session has failed or closed. */
ssize_t chopin__tls_session_read(struct chopin__tls_session *s, char *buf, size_t cap);
/** Nonzero when a read may give more: ciphertext not yet taken by OpenSSL, or plaintext
 *  it decrypted and nobody read (OpenSSL reads one record at a time: with neither, the
 *  next read would only find the input empty). */
static inline int chopin__tls_session_more(const struct chopin__tls_session *s) {
    return s->feed_len || s->in.len > s->in.off || SSL_pending(s->ssl) > 0;
}
/** Encrypts `n` plaintext bytes (state OPEN) into the records waiting to go out. Returns
 *  0, or -1 when the session cannot take them (failed). */
int chopin__tls_session_write(struct chopin__tls_session *s, const void *data, size_t n);
/** Sends close_notify (records into out). */
void chopin__tls_session_shutdown(struct chopin__tls_session *s);
/** Bytes of records waiting to go out. */
static inline size_t chopin__tls_session_pending(const struct chopin__tls_session *s) {
    return s->out.len - s->out.off + s->spill.len - s->spill.off;
}
/** The records to send next, lent to the caller until chopin__tls_session_out_done
 *  reports them sent: the session neither moves nor frees them meanwhile. */
size_t chopin__tls_session_out(struct chopin__tls_session *s, const char **p);
/** `n` bytes of the records went out. */
void chopin__tls_session_out_done(struct chopin__tls_session *s, size_t n);
/** The negotiated ALPN protocol ("http/1.1", later "h2"; *len 0 when none). Not
 *  NUL-terminated; valid while the session is. */
const unsigned char *chopin__tls_session_alpn(const struct chopin__tls_session *s, unsigned *len);

/* kTLS (ktls.c, docs/tls.md "kTLS"): the kernel takes the record layer after the handshake. */
/** Attaches the kernel's "tls" upper-layer protocol to `fd`. Returns 0, or a negative
 *  errno (-ENOENT: no tls module); the first failure of the process is logged once. */
int chopin__ktls_attach(int fd);
/** 1 when the kernel has the tls upper-layer protocol (asked once per process). */
int chopin__ktls_probe(void);
/** A connection stays in user space because the probe found no tls module: logged once,
 *  as chopin__ktls_attach's failure is (no system call per connection). */
void chopin__ktls_fallback(void);

/* What a hand-over needs, gathered while OpenSSL handshakes (only on a context whose kernel
 * has the tls module, or a test's): the application traffic secrets (the keylog callback's
 * SERVER_TRAFFIC_SECRET_0 and CLIENT_TRAFFIC_SECRET_0), and OpenSSL's records counted both
 * ways (the message callback sees every record header and every handshake message), so
 * the sequence number of the next record under those secrets is known. */
struct chopin__ktls_keys {
    unsigned char tx_secret[EVP_MAX_MD_SIZE], rx_secret[EVP_MAX_MD_SIZE];
    uint8_t tx_len, rx_len;
    uint8_t tx_keyed, rx_keyed;  /* that side's Finished went by: its application keys rule */
    uint64_t tx_records, rx_records; /* record headers written / read, since the first */
    uint64_t tx_base, rx_base;   /* ...of them, the ones up to and with each Finished */
    uint64_t rx_framed;          /* bytes of the records OpenSSL started reading */
    uint64_t rx_taken;           /* bytes OpenSSL took from the input BIO */
};

/* The kernel's crypto_info for one direction (struct tls12_crypto_info_* of linux/tls.h,
 * which TLS 1.3 uses too), as bytes: this header includes no kernel header. */
struct chopin__ktls_crypto {
    unsigned char info[64]; /* TLS_CIPHER_AES_GCM_256's is the largest: 56 bytes */
    uint32_t len;
};

/** Fills `out` for the direction `tx` (1: what the server sends; 0: what it receives):
 *  key, salt and iv from the traffic secret (HKDF-Expand-Label "key" and "iv", RFC 8446
 *  7.1 and 7.3), and the sequence number of the next record OpenSSL has not written or
 *  read. Returns 0; -ENOTSUP for what the kernel cannot take here (TLS 1.2, no keys
 *  gathered, another cipher); -EAGAIN for receiving while OpenSSL or the session still
 *  holds ciphertext (part of a record, or records not yet read: the kernel would start
 *  in the middle of the stream). */
int chopin__ktls_crypto(const struct chopin__tls_session *s, int tx, struct chopin__ktls_crypto *out);
/** setsockopt(SOL_TLS, TLS_TX or TLS_RX) with `ci`: 0 or a negative errno. */
int chopin__ktls_install(int fd, int tx, const struct chopin__ktls_crypto *ci);
/** Test hook: the hand-over's setsockopt calls (TCP_ULP, TLS_TX, TLS_RX) go to `fn`
 *  instead of the kernel (NULL: the kernel again). */
void chopin__ktls_test_sockopt(int (*fn)(int, int, int, const void *, socklen_t));
/** Sends close_notify through the kernel's record layer (an alert record: sendmsg with
 *  TLS_SET_RECORD_TYPE), best effort, without blocking. */
void chopin__ktls_close_notify(int fd);
/** OpenSSL's keylog callback on a context that gathers kTLS keys (session.c). */
void chopin__tls_session_keylog(const SSL *ssl, const char *line);
/** The gathering callbacks (session.c hands them OpenSSL's calls). */
void chopin__ktls_keylog(struct chopin__ktls_keys *k, const char *line);
void chopin__ktls_on_message(struct chopin__ktls_keys *k, int write_p, int content_type,
                             const void *buf, size_t len);
/** The keys are handed over (or will never be): forget them. */
void chopin__tls_session_drop_keys(struct chopin__tls_session *s);

#endif
