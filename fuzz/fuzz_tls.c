/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the TLS transport's input path (src/tls/session.c), what a TLS
 * listener does with the first bytes of a stranger: first-byte triage (ClientHello, plain
 * HTTP, garbage), OpenSSL's record and ClientHello parsing through our BIOs, the handshake
 * flight written back, and the plaintext read out. The input is cut into reads of
 * fuzzer-chosen sizes (its first byte seeds them), each read from a buffer scribbled over
 * afterwards, as the worker's read buffer is.
 * Invariants: nothing crashes or leaks; plaintext comes out only of an open session; a
 * session that is plain, failed or closed takes no more input and gives no plaintext.
 *
 *   make fuzz-build && build/fuzz/fuzz_tls fuzz/corpus/tls
 *
 * The certificate is made in memory at the first call (a throwaway P-256 key), written to
 * a temporary directory for the context to load, and removed at once.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls/tls.h"

static struct chopin__tls_ctx *ctx;

static int write_pem(const char *path, EVP_PKEY *key, X509 *x) {
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_X509(f, x);
    fclose(f);
    return ok == 1 ? 0 : -1;
}

static struct chopin__tls_ctx *make_ctx(void) {
    char dir[] = "/tmp/chopin-fuzz-tls-XXXXXX", cert[64], key[64];
    if (!mkdtemp(dir))
        return NULL;
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pk);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"fuzz.test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, pk, EVP_sha256());
    struct chopin__tls_ctx *c = NULL;
    if (write_pem(cert, NULL, x) == 0 && write_pem(key, pk, NULL) == 0) {
        chopin_options o = CHOPIN_OPTIONS_INIT;
        o.tls_cert = cert, o.tls_key = key;
        struct chopin__tls_settings s;
        char err[256];
        if (chopin__tls_settings_resolve(&s, &o) == 0)
            chopin__tls_ctx_new(&c, &s, err, sizeof err);
        chopin__tls_settings_free(&s);
    }
    unlink(cert), unlink(key), rmdir(dir);
    X509_free(x);
    EVP_PKEY_free(pk);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ctx && !(ctx = make_ctx()))
        abort();
    if (size == 0)
        return 0;
    uint32_t seed = data[0] * 2654435761u;
    data++, size--;
    struct chopin__tls_session s;
    if (chopin__tls_session_init(&s, ctx) < 0)
        abort();
    static char plain[1 << 16];
    for (size_t off = 0; off < size;) {
        seed = seed * 1103515245u + 12345u;
        size_t k = 1 + (seed >> 16) % 512;
        if (k > size - off)
            k = size - off;
        char *piece = malloc(k); /* exact size: ASan sees any read past it */
        memcpy(piece, data + off, k);
        int before = s.state;
        int after = chopin__tls_session_input(&s, piece, k);
        if (before >= CHOPIN__TLS_CLOSED && after != before)
            abort(); /* a finished session took input */
        ssize_t got;
        while ((got = chopin__tls_session_read(&s, plain, sizeof plain)) > 0)
            if (s.state != CHOPIN__TLS_OPEN)
                abort();
        chopin__tls_session_input_done(&s);
        memset(piece, 0xAA, k);
        free(piece);
        const char *o;
        size_t n = chopin__tls_session_out(&s, &o);
        if (n)
            chopin__tls_session_out_done(&s, n / 2 + (seed & 1)); /* partial sends too */
        off += k;
    }
    chopin__tls_session_release(&s);
    return 0;
}
