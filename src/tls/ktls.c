/* SPDX-License-Identifier: MIT */
/*
 * kTLS (docs/tls.md, "kTLS"): the kernel takes the record layer of a connection after
 * OpenSSL's handshake, so sendfile stays zero-copy under TLS and io_uring sends plain bytes.
 *
 * Three steps. The socket takes the kernel's "tls" upper-layer protocol (setsockopt TCP_ULP
 * "tls", Linux 4.13+, module tls); where the module is missing the call fails with ENOENT,
 * the connection keeps OpenSSL's records in user space and the first failure of the process
 * is logged once. Then each direction gets its keys (setsockopt SOL_TLS, TLS_TX / TLS_RX,
 * struct tls12_crypto_info_*): TLS 1.3 only, from the application traffic secrets OpenSSL
 * gives its keylog callback, with the sequence number of the next record, counted from the
 * record headers OpenSSL's message callback reports. TLS 1.2 connections stay in user
 * space (their keys would come from the master secret's key block: not done).
 */
#include "tls/tls.h"

#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TLS_SET_RECORD_TYPE
#define TLS_SET_RECORD_TYPE 1
#endif

_Static_assert(sizeof(struct tls12_crypto_info_aes_gcm_256) <= sizeof(((struct chopin__ktls_crypto *)0)->info),
               "room for the largest crypto_info");

/* The kernel's side of a connection's hand-over; a test puts its own in its place (the
 * unit test plays the kernel's record layer, there being no module here). */
static int (*sockopt)(int, int, int, const void *, socklen_t) = setsockopt;

void chopin__ktls_test_sockopt(int (*fn)(int, int, int, const void *, socklen_t)) {
    sockopt = fn ? fn : setsockopt;
}

static atomic_int ktls_said;
static atomic_int probe_known; /* 0: not asked; 1: no module; 2: a module */
static atomic_int probe_errno;

static void say_unavailable(int err) {
    if (!atomic_exchange(&ktls_said, 1))
        chopin_log(CHOPIN_LOG_INFO, "chopin: kTLS unavailable (setsockopt TCP_ULP \"tls\": %s%s); TLS records "
                        "are built in user space", strerror(err),
                err == ENOENT ? ": the kernel has no tls module" : "");
}

int chopin__ktls_attach(int fd) {
    if (fd < 0)
        return -EBADF;
    if (sockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls") == 0)
        return 0;
    int err = errno;
    say_unavailable(err);
    return -err;
}

/* An unconnected socket answers ENOENT when no module provides "tls" (the kernel looks the
 * name up, loading the module if it can, before anything else), and ENOTCONN or similar
 * when one does. */
static int probe_once(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls") == 0 || errno != ENOENT
                 ? 0 : -ENOENT;
    close(fd);
    return rc;
}

int chopin__ktls_probe(void) {
    int v = atomic_load_explicit(&probe_known, memory_order_acquire);
    if (!v) {
        int rc = probe_once();
        atomic_store_explicit(&probe_errno, -rc, memory_order_relaxed);
        v = rc == 0 ? 2 : 1;
        atomic_store_explicit(&probe_known, v, memory_order_release);
    }
    return v == 2;
}

void chopin__ktls_fallback(void) {
    int err = atomic_load_explicit(&probe_errno, memory_order_relaxed);
    say_unavailable(err ? err : ENOENT);
}

/* Gathering ------------------------------------------------------------------------------ */

static int unhex(const char *p, size_t n, unsigned char *out, size_t cap) {
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int v = OPENSSL_hexchar2int((unsigned char)p[2 * i]) * 16;
        int w = OPENSSL_hexchar2int((unsigned char)p[2 * i + 1]);
        if (v < 0 || w < 0)
            return -1;
        out[i] = (unsigned char)(v + w);
    }
    return (int)(n / 2);
}

/* "LABEL <client random> <secret>", in NSS's key log format. */
void chopin__ktls_keylog(struct chopin__ktls_keys *k, const char *line) {
    static const char tx[] = "SERVER_TRAFFIC_SECRET_0 ", rx[] = "CLIENT_TRAFFIC_SECRET_0 ";
    unsigned char *secret;
    uint8_t *len;
    if (strncmp(line, tx, sizeof tx - 1) == 0)
        secret = k->tx_secret, len = &k->tx_len;
    else if (strncmp(line, rx, sizeof rx - 1) == 0)
        secret = k->rx_secret, len = &k->rx_len;
    else
        return;
    const char *hex = strchr(line + sizeof tx - 1, ' ');
    int n = hex ? unhex(hex + 1, strlen(hex + 1), secret, EVP_MAX_MD_SIZE) : -1;
    *len = n > 0 ? (uint8_t)n : 0;
}

/* Every record header OpenSSL writes or reads, and every handshake message: after a side's
 * Finished, its records are under its application keys (TLS 1.3; RFC 8446 7.2: the
 * sequence number restarts at 0 with each key). */
void chopin__ktls_on_message(struct chopin__ktls_keys *k, int write_p, int content_type,
                             const void *buf, size_t len) {
    const unsigned char *b = buf;
    if (content_type == SSL3_RT_HEADER && len >= SSL3_RT_HEADER_LENGTH) {
        if (write_p) {
            k->tx_records++;
        } else {
            k->rx_records++;
            k->rx_framed += SSL3_RT_HEADER_LENGTH + ((size_t)b[3] << 8 | b[4]);
        }
    } else if (content_type == SSL3_RT_HANDSHAKE && len >= 1 && b[0] == SSL3_MT_FINISHED) {
        if (write_p)
            k->tx_base = k->tx_records, k->tx_keyed = 1;
        else
            k->rx_base = k->rx_records, k->rx_keyed = 1;
    }
}

/* The crypto_info ------------------------------------------------------------------------ */

/* HKDF-Expand-Label(secret, label, "", n) (RFC 8446 7.1). */
static int expand_label(const EVP_MD *md, const unsigned char *secret, size_t slen,
                        const char *label, unsigned char *out, size_t n) {
    unsigned char info[2 + 1 + 6 + 16 + 1];
    size_t ll = strlen(label);
    info[0] = (unsigned char)(n >> 8), info[1] = (unsigned char)n;
    info[2] = (unsigned char)(6 + ll);
    memcpy(info + 3, "tls13 ", 6);
    memcpy(info + 9, label, ll);
    info[9 + ll] = 0; /* empty context */
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, slen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 10 + ll),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_end(),
    };
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int ok = kctx && EVP_KDF_derive(kctx, out, n, params) == 1;
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return ok ? 0 : -1;
}

/* Nothing of the peer's is held above the socket: no ciphertext in the session, no part of
 * a record inside OpenSSL, no plaintext OpenSSL decrypted and nobody read. */
static int input_at_record_boundary(const struct chopin__tls_session *s) {
    return s->in.len == s->in.off && s->feed_len == 0 && s->keys->rx_taken == s->keys->rx_framed &&
           SSL_pending(s->ssl) == 0;
}

static void put_seq(unsigned char *p, uint64_t seq) {
    for (int i = 7; i >= 0; i--, seq >>= 8)
        p[i] = (unsigned char)seq;
}

int chopin__ktls_crypto(const struct chopin__tls_session *s, int tx, struct chopin__ktls_crypto *out) {
    const struct chopin__ktls_keys *k = s->keys;
    memset(out, 0, sizeof *out);
    if (!k || SSL_version(s->ssl) != TLS1_3_VERSION || !(tx ? k->tx_keyed : k->rx_keyed) ||
        !(tx ? k->tx_len : k->rx_len))
        return -ENOTSUP;
    if (!tx && !input_at_record_boundary(s))
        return -EAGAIN;
    const SSL_CIPHER *cipher = SSL_get_current_cipher(s->ssl);
    const EVP_MD *md = cipher ? SSL_CIPHER_get_handshake_digest(cipher) : NULL;
    if (!md)
        return -ENOTSUP;
    uint16_t type;
    size_t keylen;
    switch (SSL_CIPHER_get_protocol_id(cipher)) {
    case 0x1301: type = TLS_CIPHER_AES_GCM_128, keylen = 16; break;
    case 0x1302: type = TLS_CIPHER_AES_GCM_256, keylen = 32; break;
    case 0x1303: type = TLS_CIPHER_CHACHA20_POLY1305, keylen = 32; break;
    default: return -ENOTSUP;
    }
    unsigned char key[32], iv[12];
    if (expand_label(md, tx ? k->tx_secret : k->rx_secret, tx ? k->tx_len : k->rx_len, "key",
                     key, keylen) < 0 ||
        expand_label(md, tx ? k->tx_secret : k->rx_secret, tx ? k->tx_len : k->rx_len, "iv", iv,
                     sizeof iv) < 0)
        return -ENOTSUP;
    uint64_t seq = tx ? k->tx_records - k->tx_base : k->rx_records - k->rx_base;
    struct tls_crypto_info head = {.version = TLS_1_3_VERSION, .cipher_type = type};
    if (type == TLS_CIPHER_CHACHA20_POLY1305) {
        struct tls12_crypto_info_chacha20_poly1305 ci = {.info = head};
        memcpy(ci.iv, iv, sizeof ci.iv); /* the whole 12-byte iv; no salt */
        memcpy(ci.key, key, sizeof ci.key);
        put_seq(ci.rec_seq, seq);
        memcpy(out->info, &ci, out->len = sizeof ci);
        OPENSSL_cleanse(&ci, sizeof ci);
    } else if (type == TLS_CIPHER_AES_GCM_256) {
        struct tls12_crypto_info_aes_gcm_256 ci = {.info = head};
        memcpy(ci.salt, iv, sizeof ci.salt); /* the iv's first 4 bytes, then its last 8 */
        memcpy(ci.iv, iv + sizeof ci.salt, sizeof ci.iv);
        memcpy(ci.key, key, sizeof ci.key);
        put_seq(ci.rec_seq, seq);
        memcpy(out->info, &ci, out->len = sizeof ci);
        OPENSSL_cleanse(&ci, sizeof ci);
    } else {
        struct tls12_crypto_info_aes_gcm_128 ci = {.info = head};
        memcpy(ci.salt, iv, sizeof ci.salt);
        memcpy(ci.iv, iv + sizeof ci.salt, sizeof ci.iv);
        memcpy(ci.key, key, sizeof ci.key);
        put_seq(ci.rec_seq, seq);
        memcpy(out->info, &ci, out->len = sizeof ci);
        OPENSSL_cleanse(&ci, sizeof ci);
    }
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(iv, sizeof iv);
    return 0;
}

int chopin__ktls_install(int fd, int tx, const struct chopin__ktls_crypto *ci) {
    if (sockopt(fd, SOL_TLS, tx ? TLS_TX : TLS_RX, ci->info, ci->len) == 0)
        return 0;
    return -errno;
}

void chopin__ktls_close_notify(int fd) {
    static const unsigned char alert[2] = {1, 0}; /* warning, close_notify */
    char control[CMSG_SPACE(sizeof(unsigned char))];
    struct iovec iov = {.iov_base = (void *)alert, .iov_len = sizeof alert};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof control};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_TLS;
    cm->cmsg_type = TLS_SET_RECORD_TYPE;
    cm->cmsg_len = CMSG_LEN(sizeof(unsigned char));
    *CMSG_DATA(cm) = 21; /* content type alert */
    (void)sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}
