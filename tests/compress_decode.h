/* SPDX-License-Identifier: MIT */
/*
 * Decoders of the content codings, from the real libraries (zlib, libbrotlidec, libzstd),
 * for the compression tests: whole bodies, and incremental decoding that returns what the
 * bytes received so far decode to (how a browser reads a compressed event stream).
 * Include after test.h. DEC_HAVE(name) says whether this build can decode (and so
 * produce, chopin_compress_supported) a coding.
 */
#ifndef CHOPIN_TEST_COMPRESS_DECODE_H
#define CHOPIN_TEST_COMPRESS_DECODE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef CHOPIN_HAVE_ZLIB
#include <zlib.h>
#endif
#if defined(CHOPIN_HAVE_BROTLI) && defined(CHOPIN_HAVE_BROTLIDEC)
#define DEC_BROTLI 1
#include <brotli/decode.h>
#endif
#ifdef CHOPIN_HAVE_ZSTD
#include <zstd.h>
#endif

struct dec {
    int kind; /* 'g', 'b', 'z' */
    int ended;
#ifdef CHOPIN_HAVE_ZLIB
    z_stream z;
#endif
#ifdef DEC_BROTLI
    BrotliDecoderState *br;
#endif
#ifdef CHOPIN_HAVE_ZSTD
    ZSTD_DStream *zs;
#endif
    char *out; /* everything decoded so far */
    size_t out_len, out_cap;
};

static inline int dec_have(const char *coding) {
#ifdef CHOPIN_HAVE_ZLIB
    if (strcmp(coding, "gzip") == 0)
        return 1;
#endif
#ifdef DEC_BROTLI
    if (strcmp(coding, "br") == 0)
        return 1;
#endif
#ifdef CHOPIN_HAVE_ZSTD
    if (strcmp(coding, "zstd") == 0)
        return 1;
#endif
    return 0;
}

static inline int dec_reserve(struct dec *d, size_t more) {
    if (d->out_cap - d->out_len >= more)
        return 0;
    size_t cap = d->out_cap ? d->out_cap : 4096;
    while (cap - d->out_len < more)
        cap *= 2;
    char *p = realloc(d->out, cap);
    if (!p)
        return -1;
    d->out = p;
    d->out_cap = cap;
    return 0;
}

/* A decoder for `coding`, or NULL when this build cannot decode it. */
static inline struct dec *dec_new(const char *coding) {
    if (!dec_have(coding))
        return NULL;
    struct dec *d = calloc(1, sizeof *d);
    d->kind = coding[0] == 'g' ? 'g' : coding[0] == 'b' ? 'b' : 'z';
#ifdef CHOPIN_HAVE_ZLIB
    if (d->kind == 'g' && inflateInit2(&d->z, 16 + 15) != Z_OK)
        abort();
#endif
#ifdef DEC_BROTLI
    if (d->kind == 'b')
        d->br = BrotliDecoderCreateInstance(NULL, NULL, NULL);
#endif
#ifdef CHOPIN_HAVE_ZSTD
    if (d->kind == 'z')
        d->zs = ZSTD_createDStream();
#endif
    return d;
}

/* Feeds n more bytes; 0, or -1 when they are not a valid stream (or come after its end). */
static inline int dec_feed(struct dec *d, const void *in, size_t n) {
    if (d->ended)
        return n ? -1 : 0;
#ifdef CHOPIN_HAVE_ZLIB
    if (d->kind == 'g') {
        d->z.next_in = (Bytef *)in;
        d->z.avail_in = (uInt)n;
        for (;;) {
            if (dec_reserve(d, 65536) < 0)
                return -1;
            d->z.next_out = (Bytef *)d->out + d->out_len;
            d->z.avail_out = (uInt)(d->out_cap - d->out_len);
            int rc = inflate(&d->z, Z_SYNC_FLUSH);
            d->out_len = d->out_cap - d->z.avail_out;
            if (rc == Z_STREAM_END) {
                d->ended = 1;
                return d->z.avail_in ? -1 : 0;
            }
            if (rc == Z_BUF_ERROR && d->z.avail_in == 0)
                return 0;
            if (rc != Z_OK)
                return -1;
            if (d->z.avail_in == 0 && d->z.avail_out != 0)
                return 0;
        }
    }
#endif
#ifdef DEC_BROTLI
    if (d->kind == 'b') {
        const uint8_t *next_in = in;
        size_t avail_in = n;
        for (;;) {
            if (dec_reserve(d, 65536) < 0)
                return -1;
            uint8_t *next_out = (uint8_t *)d->out + d->out_len;
            size_t avail_out = d->out_cap - d->out_len;
            BrotliDecoderResult rc = BrotliDecoderDecompressStream(d->br, &avail_in, &next_in,
                                                                   &avail_out, &next_out, NULL);
            d->out_len = d->out_cap - avail_out;
            if (rc == BROTLI_DECODER_RESULT_SUCCESS) {
                d->ended = 1;
                return avail_in ? -1 : 0;
            }
            if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
                return 0;
            if (rc != BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT)
                return -1;
        }
    }
#endif
#ifdef CHOPIN_HAVE_ZSTD
    if (d->kind == 'z') {
        ZSTD_inBuffer ib = {in, n, 0};
        for (;;) {
            if (dec_reserve(d, 65536) < 0)
                return -1;
            ZSTD_outBuffer ob = {d->out, d->out_cap, d->out_len};
            size_t rc = ZSTD_decompressStream(d->zs, &ob, &ib);
            d->out_len = ob.pos;
            if (ZSTD_isError(rc))
                return -1;
            if (rc == 0) {
                d->ended = 1;
                return ib.pos < ib.size ? -1 : 0;
            }
            if (ib.pos == ib.size && ob.pos < ob.size)
                return 0;
        }
    }
#endif
    return -1;
}

static inline void dec_free(struct dec *d) {
    if (!d)
        return;
#ifdef CHOPIN_HAVE_ZLIB
    if (d->kind == 'g')
        inflateEnd(&d->z);
#endif
#ifdef DEC_BROTLI
    if (d->kind == 'b')
        BrotliDecoderDestroyInstance(d->br);
#endif
#ifdef CHOPIN_HAVE_ZSTD
    if (d->kind == 'z')
        ZSTD_freeDStream(d->zs);
#endif
    free(d->out);
    free(d);
}

/* Decodes a whole body; 1 when it is one complete, valid stream decoding to want[0..len). */
static inline int dec_equals(const char *coding, const void *in, size_t n, const void *want,
                             size_t len) {
    struct dec *d = dec_new(coding);
    if (!d)
        return 0;
    int ok = dec_feed(d, in, n) == 0 && d->ended && d->out_len == len &&
             (len == 0 || memcmp(d->out, want, len) == 0);
    dec_free(d);
    return ok;
}

#endif
