/* SPDX-License-Identifier: MIT */
/*
 * The content-coding encoders behind chopin_compress (compress.c): whole buffers at once
 * (libdeflate for gzip, ZSTD_compressCCtx, BrotliEncoderCompress) and streams flushed piece
 * by piece (zlib for gzip, the brotli and zstd streaming encoders). Each coding is built when
 * its library was found (the Makefile defines CHOPIN_HAVE_<LIB>); the others are refused
 * with -ENOTSUP.
 */
#ifndef CHOPIN_API_COMPRESS_H
#define CHOPIN_API_COMPRESS_H

#include <stddef.h>

#include "http/accept_encoding.h"

/** Nonzero when coding `c` can be produced by this build (whole buffers and streams). */
int chopin__codec_available(enum chopin__coding c);

/** The levels each coding takes, inclusive (out-of-range levels are clamped to them). */
void chopin__codec_levels(enum chopin__coding c, int *min, int *max);

/**
 * Compresses in[0..len) with coding `c` at `level` into a new heap buffer (*out, to free()
 * by the caller; *out_len bytes). Per-thread contexts are kept between calls (a gzip
 * compressor per level, a zstd context), so only the first call on a thread allocates them.
 * Returns 0, -ENOMEM, -ENOTSUP (not built), -EIO (the library failed).
 */
int chopin__codec_buffer(enum chopin__coding c, int level, const void *in, size_t len, void **out,
                         size_t *out_len);

/** A streaming encoder: bytes in, each piece flushed so the client can decode it at once. */
struct chopin__encoder;

/** A new encoder, or NULL (out of memory, coding not built). Its window is bounded (about
 *  256 KiB) so that a long-lived stream (server-sent events) costs little memory. */
struct chopin__encoder *chopin__encoder_new(enum chopin__coding c, int level);

/**
 * Encodes in[0..len) and appends the output to the heap buffer (*buf, *len_out used of
 * *cap; grown with realloc). With `finish` the stream is ended (the coding's trailer);
 * otherwise the output is flushed: everything given so far can be decoded from what was
 * appended. Returns 0, -ENOMEM or -EIO.
 */
int chopin__encoder_run(struct chopin__encoder *e, const void *in, size_t len, int finish,
                        char **buf, size_t *len_out, size_t *cap);

void chopin__encoder_free(struct chopin__encoder *e);

#endif
