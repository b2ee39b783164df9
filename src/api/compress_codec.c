/* SPDX-License-Identifier: MIT */
/*
 * Encoders for the content codings of chopin_compress. Per coding, the fastest well-kept
 * library Debian ships for the job:
 *   - a whole body (copied, static or owned): libdeflate for gzip (about twice zlib's speed
 *     at the same level, and a single call), ZSTD_compressCCtx, BrotliEncoderCompress;
 *   - a stream, flushed at each piece so that every piece can be decoded on arrival (what
 *     server-sent events need): zlib's deflate with Z_SYNC_FLUSH (libdeflate cannot
 *     stream), BrotliEncoderCompressStream with BROTLI_OPERATION_FLUSH, ZSTD_compressStream2
 *     with ZSTD_e_flush.
 * Without libdeflate, whole gzip bodies go through the zlib stream, finished in one call.
 */
#include "api/compress.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef CHOPIN_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif
#ifdef CHOPIN_HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef CHOPIN_HAVE_BROTLI
#include <brotli/encode.h>
#endif
#ifdef CHOPIN_HAVE_ZSTD
#include <zstd.h>
#endif

/* What this build has: any encoder at all (they share the growable output), and one with a
 * per-thread context (libdeflate, zstd). */
#if defined(CHOPIN_HAVE_ZLIB) || defined(CHOPIN_HAVE_BROTLI) || defined(CHOPIN_HAVE_ZSTD)
#define HAVE_ANY_CODEC 1
#endif
#if defined(CHOPIN_HAVE_LIBDEFLATE) || defined(CHOPIN_HAVE_ZSTD)
#define HAVE_TLS_CODECS 1
#endif

/* Streams keep a bounded window: a server-sent event stream may stay open for hours, and
 * each one holds its encoder. 2^18 = 256 KiB of history is plenty for events. */
#define STREAM_WINDOW_LOG 18
/* zlib's deflate memory is (1 << (windowBits + 2)) + (1 << (memLevel + 9)): 256 KiB for
 * the maximum window (15) and the default memLevel (8). */
#define ZLIB_GZIP_WINDOW (15 + 16) /* +16: a gzip wrapper, not zlib's */
#define ZLIB_MEM_LEVEL 8

int chopin__codec_available(enum chopin__coding c)
{
    switch (c) {
#ifdef CHOPIN_HAVE_ZLIB
    case CHOPIN__CODING_GZIP:
        return 1;
#endif
#ifdef CHOPIN_HAVE_BROTLI
    case CHOPIN__CODING_BR:
        return 1;
#endif
#ifdef CHOPIN_HAVE_ZSTD
    case CHOPIN__CODING_ZSTD:
        return 1;
#endif
    default:
        return 0;
    }
}

void chopin__codec_levels(enum chopin__coding c, int *min, int *max)
{
    *min = 1;
    switch (c) {
    case CHOPIN__CODING_GZIP:
        *max = 9; /* zlib's range; libdeflate's 10..12 are too slow for answers on the fly */
        break;
    case CHOPIN__CODING_BR:
        *max = 11;
        break;
    case CHOPIN__CODING_ZSTD:
        *max = 19; /* 20..22 are the "ultra" levels, with windows far beyond an answer */
        break;
    default:
        *max = 1;
        break;
    }
}

static int clamp_level(enum chopin__coding c, int level)
{
    int min, max;
    chopin__codec_levels(c, &min, &max);
    return level < min ? min : level > max ? max : level;
}

/* ---- growable output ---------------------------------------------------------------- */
#ifdef HAVE_ANY_CODEC

/* Room for `more` bytes after *len in *buf. */
static int out_reserve(char **buf, size_t len, size_t *cap, size_t more)
{
    if (*cap - len >= more)
        return 0;
    size_t want = *cap ? *cap : 4096;
    while (want - len < more)
        want *= 2;
    char *b = realloc(*buf, want);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = want;
    return 0;
}

#endif

/* ---- per-thread contexts for whole buffers -------------------------------------------- */
#ifdef HAVE_TLS_CODECS

/* A compressor per gzip level and one zstd context, per worker thread: allocating them
 * costs more than compressing a 10 KiB answer (libdeflate's level-6 compressor is ~300 KiB
 * of tables to allocate), and a thread never shares them. Freed when the thread ends. */
struct tls_codecs {
#ifdef CHOPIN_HAVE_LIBDEFLATE
    struct libdeflate_compressor *gzip[13];
#endif
#ifdef CHOPIN_HAVE_ZSTD
    ZSTD_CCtx *zstd;
#endif
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_ok;

static void tls_free(void *p)
{
    struct tls_codecs *t = p;
#ifdef CHOPIN_HAVE_LIBDEFLATE
    for (size_t i = 0; i < sizeof t->gzip / sizeof t->gzip[0]; i++)
        libdeflate_free_compressor(t->gzip[i]);
#endif
#ifdef CHOPIN_HAVE_ZSTD
    ZSTD_freeCCtx(t->zstd);
#endif
    free(t);
}

static void tls_init(void)
{
    tls_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

static struct tls_codecs *tls_codecs(void)
{
    pthread_once(&tls_once, tls_init);
    if (!tls_ok)
        return NULL;
    struct tls_codecs *t = pthread_getspecific(tls_key);
    if (t)
        return t;
    t = calloc(1, sizeof *t);
    if (t && pthread_setspecific(tls_key, t) != 0) {
        free(t);
        t = NULL;
    }
    return t;
}

#endif

/* ---- whole buffers -------------------------------------------------------------------- */

#ifdef CHOPIN_HAVE_LIBDEFLATE
static int gzip_buffer(int level, const void *in, size_t len, void **out, size_t *out_len)
{
    struct tls_codecs *t = tls_codecs();
    if (!t)
        return -ENOMEM;
    if (!t->gzip[level] && !(t->gzip[level] = libdeflate_alloc_compressor(level)))
        return -ENOMEM;
    size_t bound = libdeflate_gzip_compress_bound(t->gzip[level], len);
    char *buf = malloc(bound);
    if (!buf)
        return -ENOMEM;
    size_t n = libdeflate_gzip_compress(t->gzip[level], in, len, buf, bound);
    if (n == 0) {
        free(buf);
        return -EIO;
    }
    *out = buf;
    *out_len = n;
    return 0;
}
#endif

#ifdef CHOPIN_HAVE_ZSTD
static int zstd_buffer(int level, const void *in, size_t len, void **out, size_t *out_len)
{
    struct tls_codecs *t = tls_codecs();
    if (!t)
        return -ENOMEM;
    if (!t->zstd && !(t->zstd = ZSTD_createCCtx()))
        return -ENOMEM;
    size_t bound = ZSTD_compressBound(len);
    char *buf = malloc(bound);
    if (!buf)
        return -ENOMEM;
    size_t n = ZSTD_compressCCtx(t->zstd, buf, bound, in, len, level);
    if (ZSTD_isError(n)) {
        free(buf);
        return -EIO;
    }
    *out = buf;
    *out_len = n;
    return 0;
}
#endif

#ifdef CHOPIN_HAVE_BROTLI
/* The smallest window holding the whole body: brotli sizes its tables by the window, and
 * an answer of a few KiB needs nothing like the default 4 MiB. */
static int brotli_window(size_t len)
{
    int lg = BROTLI_MIN_WINDOW_BITS;
    while (lg < BROTLI_MAX_WINDOW_BITS && ((size_t)1 << lg) - 16 < len)
        lg++;
    return lg;
}

static int brotli_buffer(int level, const void *in, size_t len, void **out, size_t *out_len)
{
    size_t bound = BrotliEncoderMaxCompressedSize(len);
    if (bound == 0)
        return -EIO;
    char *buf = malloc(bound);
    if (!buf)
        return -ENOMEM;
    size_t n = bound;
    if (!BrotliEncoderCompress(level, brotli_window(len), BROTLI_MODE_GENERIC, len, in, &n,
                               (uint8_t *)buf)) {
        free(buf);
        return -EIO;
    }
    *out = buf;
    *out_len = n;
    return 0;
}
#endif

int chopin__codec_buffer(enum chopin__coding c, int level, const void *in, size_t len, void **out,
                         size_t *out_len)
{
    if (!chopin__codec_available(c))
        return -ENOTSUP;
    level = clamp_level(c, level);
    switch (c) {
    case CHOPIN__CODING_GZIP:
#ifdef CHOPIN_HAVE_LIBDEFLATE
        return gzip_buffer(level, in, len, out, out_len);
#else
        break; /* the zlib stream below, finished at once */
#endif
#ifdef CHOPIN_HAVE_ZSTD
    case CHOPIN__CODING_ZSTD:
        return zstd_buffer(level, in, len, out, out_len);
#endif
#ifdef CHOPIN_HAVE_BROTLI
    case CHOPIN__CODING_BR:
        return brotli_buffer(level, in, len, out, out_len);
#endif
    default:
        return -ENOTSUP;
    }
    struct chopin__encoder *e = chopin__encoder_new(c, level);
    if (!e)
        return -ENOMEM;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int err = chopin__encoder_run(e, in, len, 1, &buf, &n, &cap);
    chopin__encoder_free(e);
    if (err) {
        free(buf);
        return err;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

/* ---- streams -------------------------------------------------------------------------- */

struct chopin__encoder {
    enum chopin__coding coding;
    union {
#ifdef CHOPIN_HAVE_ZLIB
        z_stream z;
#endif
#ifdef CHOPIN_HAVE_BROTLI
        BrotliEncoderState *br;
#endif
#ifdef CHOPIN_HAVE_ZSTD
        ZSTD_CCtx *zstd;
#endif
        int none_;
    } u;
};

#ifdef CHOPIN_HAVE_ZLIB
static int zlib_new(struct chopin__encoder *e, int level)
{
    memset(&e->u.z, 0, sizeof e->u.z);
    return deflateInit2(&e->u.z, level, Z_DEFLATED, ZLIB_GZIP_WINDOW, ZLIB_MEM_LEVEL,
                        Z_DEFAULT_STRATEGY) == Z_OK ? 0 : -ENOMEM;
}

/* Z_SYNC_FLUSH ends on a byte boundary with an empty stored block, so everything given so
 * far decodes; deflate is called until it leaves output space unused (zlib's contract for
 * "all output written"). */
static int zlib_run(struct chopin__encoder *e, const void *in, size_t len, int finish, char **buf,
                    size_t *n, size_t *cap)
{
    z_stream *z = &e->u.z;
    z->next_in = (Bytef *)in;
    z->avail_in = (uInt)len;
    int flush = finish ? Z_FINISH : Z_SYNC_FLUSH;
    for (;;) {
        size_t room = deflateBound(z, (uLong)z->avail_in) + 64;
        if (out_reserve(buf, *n, cap, room) < 0)
            return -ENOMEM;
        z->next_out = (Bytef *)*buf + *n;
        z->avail_out = (uInt)(*cap - *n);
        int rc = deflate(z, flush);
        *n = *cap - z->avail_out;
        if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END)
            return -EIO;
        /* Z_BUF_ERROR is "no progress possible": with room left, nothing was pending. */
        if (finish ? rc == Z_STREAM_END : z->avail_out != 0)
            return 0;
    }
}
#endif

#ifdef CHOPIN_HAVE_BROTLI
static int brotli_new(struct chopin__encoder *e, int level)
{
    e->u.br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
    if (!e->u.br)
        return -ENOMEM;
    BrotliEncoderSetParameter(e->u.br, BROTLI_PARAM_QUALITY, (uint32_t)level);
    BrotliEncoderSetParameter(e->u.br, BROTLI_PARAM_LGWIN, STREAM_WINDOW_LOG);
    return 0;
}

static int brotli_run(struct chopin__encoder *e, const void *in, size_t len, int finish, char **buf,
                      size_t *n, size_t *cap)
{
    const uint8_t *next_in = in;
    size_t avail_in = len;
    BrotliEncoderOperation op = finish ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH;
    do {
        if (out_reserve(buf, *n, cap, avail_in + 1024) < 0)
            return -ENOMEM;
        uint8_t *next_out = (uint8_t *)*buf + *n;
        size_t avail_out = *cap - *n;
        if (!BrotliEncoderCompressStream(e->u.br, op, &avail_in, &next_in, &avail_out, &next_out,
                                         NULL))
            return -EIO;
        *n = *cap - avail_out;
    } while (avail_in || BrotliEncoderHasMoreOutput(e->u.br) ||
             (finish && !BrotliEncoderIsFinished(e->u.br)));
    return 0;
}
#endif

#ifdef CHOPIN_HAVE_ZSTD
static int zstd_new(struct chopin__encoder *e, int level)
{
    e->u.zstd = ZSTD_createCCtx();
    if (!e->u.zstd)
        return -ENOMEM;
    ZSTD_CCtx_setParameter(e->u.zstd, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(e->u.zstd, ZSTD_c_windowLog, STREAM_WINDOW_LOG);
    return 0;
}

static int zstd_run(struct chopin__encoder *e, const void *in, size_t len, int finish, char **buf,
                    size_t *n, size_t *cap)
{
    ZSTD_inBuffer input = {in, len, 0};
    ZSTD_EndDirective op = finish ? ZSTD_e_end : ZSTD_e_flush;
    for (;;) {
        if (out_reserve(buf, *n, cap, ZSTD_CStreamOutSize()) < 0)
            return -ENOMEM;
        ZSTD_outBuffer output = {*buf, *cap, *n};
        size_t left = ZSTD_compressStream2(e->u.zstd, &output, &input, op);
        if (ZSTD_isError(left))
            return -EIO;
        *n = output.pos;
        if (left == 0) /* flushed (or ended) completely, which implies all input taken */
            return 0;
    }
}
#endif

struct chopin__encoder *chopin__encoder_new(enum chopin__coding c, int level)
{
    if (!chopin__codec_available(c))
        return NULL;
    struct chopin__encoder *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->coding = c;
    level = clamp_level(c, level);
    int err = -ENOTSUP;
    switch (c) {
#ifdef CHOPIN_HAVE_ZLIB
    case CHOPIN__CODING_GZIP:
        err = zlib_new(e, level);
        break;
#endif
#ifdef CHOPIN_HAVE_BROTLI
    case CHOPIN__CODING_BR:
        err = brotli_new(e, level);
        break;
#endif
#ifdef CHOPIN_HAVE_ZSTD
    case CHOPIN__CODING_ZSTD:
        err = zstd_new(e, level);
        break;
#endif
    default:
        break;
    }
    if (err) {
        free(e);
        return NULL;
    }
    return e;
}

int chopin__encoder_run(struct chopin__encoder *e, const void *in, size_t len, int finish,
                        char **buf, size_t *len_out, size_t *cap)
{
    switch (e->coding) {
#ifdef CHOPIN_HAVE_ZLIB
    case CHOPIN__CODING_GZIP:
        return zlib_run(e, in, len, finish, buf, len_out, cap);
#endif
#ifdef CHOPIN_HAVE_BROTLI
    case CHOPIN__CODING_BR:
        return brotli_run(e, in, len, finish, buf, len_out, cap);
#endif
#ifdef CHOPIN_HAVE_ZSTD
    case CHOPIN__CODING_ZSTD:
        return zstd_run(e, in, len, finish, buf, len_out, cap);
#endif
    default:
        return -ENOTSUP;
    }
}

void chopin__encoder_free(struct chopin__encoder *e)
{
    if (!e)
        return;
    switch (e->coding) {
#ifdef CHOPIN_HAVE_ZLIB
    case CHOPIN__CODING_GZIP:
        deflateEnd(&e->u.z);
        break;
#endif
#ifdef CHOPIN_HAVE_BROTLI
    case CHOPIN__CODING_BR:
        BrotliEncoderDestroyInstance(e->u.br);
        break;
#endif
#ifdef CHOPIN_HAVE_ZSTD
    case CHOPIN__CODING_ZSTD:
        ZSTD_freeCCtx(e->u.zstd);
        break;
#endif
    default:
        break;
    }
    free(e);
}
