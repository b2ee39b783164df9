/* SPDX-License-Identifier: MIT */
/*
 * The encoders behind chopin_compress (src/api/compress_codec.c), checked against the real
 * decoders (zlib, libbrotlidec, libzstd): whole bodies of every shape and size at the
 * levels' ends and defaults; streams whose every flushed piece decodes on arrival to exactly
 * the input so far; per-thread contexts used from several threads at once. A coding this
 * build lacks is skipped, and said so.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/compress.h"
#include "chopin.h"
#include "test.h"
#include "compress_decode.h"

static int skipped;

static const enum chopin__coding codings[] = {CHOPIN__CODING_GZIP, CHOPIN__CODING_BR,
                                              CHOPIN__CODING_ZSTD};
#define NCODINGS (sizeof codings / sizeof codings[0])

/* Whether coding c can be tested here (built, and decodable by the test). */
static int testable(enum chopin__coding c)
{
    return chopin__codec_available(c) && dec_have(chopin__coding_name(c));
}

/* Text that compresses the way answers do: JSON-ish records with varying numbers. */
static char *json_like(size_t len)
{
    char *s = malloc(len + 64);
    size_t n = 0;
    uint32_t x = 12345;
    while (n < len) {
        x = x * 1103515245u + 12345u;
        n += (size_t)snprintf(s + n, 64, "{\"id\":%u,\"title\":\"item %u\",\"done\":%s},",
                              x >> 20, (x >> 8) & 0xfff, x & 1 ? "true" : "false");
    }
    return s;
}

static char *random_bytes(size_t len)
{
    char *s = malloc(len ? len : 1);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        s[i] = (char)(x >> 32);
    }
    return s;
}

static void round_trip(enum chopin__coding c, int level, const char *in, size_t len)
{
    void *out = NULL;
    size_t out_len = 0;
    int rc = chopin__codec_buffer(c, level, in, len, &out, &out_len);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        int ok = dec_equals(chopin__coding_name(c), out, out_len, in, len);
        if (!ok)
            fprintf(stderr, "  %s level %d, %zu bytes: does not decode back\n",
                    chopin__coding_name(c), level, len);
        CHECK(ok);
    }
    free(out);
}

static void test_whole_bodies_decode(void)
{
    size_t sizes[] = {0, 1, 255, 10 * 1024, 1 << 20};
    for (size_t i = 0; i < NCODINGS; i++) {
        enum chopin__coding c = codings[i];
        if (!testable(c)) {
            fprintf(stderr, "  skip %s: not built (or no decoder)\n", chopin__coding_name(c));
            skipped++;
            continue;
        }
        int min, max;
        chopin__codec_levels(c, &min, &max);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            char *text = json_like(sizes[s]);
            round_trip(c, min, text, sizes[s]);
            round_trip(c, 5, text, sizes[s]);
            if (sizes[s] <= 10 * 1024) /* the top levels take seconds on a MiB */
                round_trip(c, max, text, sizes[s]);
            free(text);
        }
        char *noise = random_bytes(256 * 1024); /* incompressible: grows a little */
        round_trip(c, 5, noise, 256 * 1024);
        free(noise);
    }
}

/* Out-of-range levels are clamped, not refused. */
static void test_levels_clamped(void)
{
    char *text = json_like(4096);
    for (size_t i = 0; i < NCODINGS; i++) {
        if (!testable(codings[i]))
            continue;
        round_trip(codings[i], -5, text, 4096);
        round_trip(codings[i], 1000, text, 4096);
    }
    free(text);
}

/* Each flushed piece decodes on arrival: the decoder, fed only what the encoder has given
 * so far, has produced exactly the input so far (a browser reading events needs that). */
static void stream_pieces(enum chopin__coding c, int level)
{
    const char *name = chopin__coding_name(c);
    struct chopin__encoder *e = chopin__encoder_new(c, level);
    struct dec *d = dec_new(name);
    CHECK(e != NULL);
    CHECK(d != NULL);
    if (!e || !d) {
        chopin__encoder_free(e);
        dec_free(d);
        return;
    }
    char *text = json_like(300 * 1024);
    size_t piece[] = {1, 17, 100, 4096, 16384, 70000, 3};
    size_t given = 0, sent = 0, mismatches = 0;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof piece / sizeof piece[0]; i++) {
            CHECK_INT(chopin__encoder_run(e, text + given, piece[i], 0, &buf, &len, &cap), 0);
            given += piece[i];
            CHECK_INT(dec_feed(d, buf + sent, len - sent), 0);
            sent = len;
            if (d->out_len != given || memcmp(d->out, text, given) != 0)
                mismatches++;
        }
    }
    CHECK_INT(mismatches, 0);
    CHECK(!d->ended);
    CHECK_INT(chopin__encoder_run(e, NULL, 0, 1, &buf, &len, &cap), 0);
    CHECK_INT(dec_feed(d, buf + sent, len - sent), 0);
    CHECK(d->ended);
    CHECK_INT(d->out_len, given);
    free(buf);
    free(text);
    chopin__encoder_free(e);
    dec_free(d);
}

static void test_streams_decode_piece_by_piece(void)
{
    for (size_t i = 0; i < NCODINGS; i++) {
        if (!testable(codings[i])) {
            skipped++;
            continue;
        }
        stream_pieces(codings[i], 1);
        stream_pieces(codings[i], 6);
    }
}

/* A stream that ends without a byte is still a valid, empty stream. */
static void test_empty_stream(void)
{
    for (size_t i = 0; i < NCODINGS; i++) {
        if (!testable(codings[i]))
            continue;
        struct chopin__encoder *e = chopin__encoder_new(codings[i], 3);
        char *buf = NULL;
        size_t len = 0, cap = 0;
        CHECK_INT(chopin__encoder_run(e, NULL, 0, 1, &buf, &len, &cap), 0);
        CHECK(dec_equals(chopin__coding_name(codings[i]), buf, len, "", 0));
        free(buf);
        chopin__encoder_free(e);
    }
}

static void test_identity_is_not_a_codec(void)
{
    void *out = NULL;
    size_t n = 0;
    CHECK_INT(chopin__codec_buffer(CHOPIN__CODING_IDENTITY, 1, "x", 1, &out, &n), -ENOTSUP);
    CHECK(chopin__encoder_new(CHOPIN__CODING_IDENTITY, 1) == NULL);
    CHECK(chopin__encoder_new(CHOPIN__CODING_NONE, 1) == NULL);
    CHECK(!chopin__codec_available(CHOPIN__CODING_IDENTITY));
}

static void test_supported_names(void)
{
    CHECK_INT(chopin_compress_supported("gzip"), chopin__codec_available(CHOPIN__CODING_GZIP));
    CHECK_INT(chopin_compress_supported("GZip"), chopin__codec_available(CHOPIN__CODING_GZIP));
    CHECK_INT(chopin_compress_supported("br"), chopin__codec_available(CHOPIN__CODING_BR));
    CHECK_INT(chopin_compress_supported("zstd"), chopin__codec_available(CHOPIN__CODING_ZSTD));
    CHECK(!chopin_compress_supported("identity"));
    CHECK(!chopin_compress_supported("deflate"));
    CHECK(!chopin_compress_supported(""));
    CHECK(!chopin_compress_supported(NULL));
}

/* Workers compress at once, each with its own per-thread contexts. */
static void *compress_many(void *arg)
{
    const char *text = arg;
    long bad = 0;
    for (int i = 0; i < 200; i++) {
        enum chopin__coding c = codings[i % NCODINGS];
        if (!testable(c))
            continue;
        void *out;
        size_t n;
        size_t len = 1000 + (size_t)i * 37;
        if (chopin__codec_buffer(c, 1 + i % 6, text, len, &out, &n) != 0 ||
            !dec_equals(chopin__coding_name(c), out, n, text, len))
            bad++;
        else
            free(out);
    }
    return (void *)bad;
}

static void test_threads_keep_their_own_contexts(void)
{
    char *text = json_like(16384);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, compress_many, text);
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    CHECK_INT(bad, 0);
    free(text);
}

int main(void)
{
    RUN(test_whole_bodies_decode);
    RUN(test_levels_clamped);
    RUN(test_streams_decode_piece_by_piece);
    RUN(test_empty_stream);
    RUN(test_identity_is_not_a_codec);
    RUN(test_supported_names);
    RUN(test_threads_keep_their_own_contexts);
    printf("RESULT %d %d %d\n", test_passed, test_failed, skipped);
    return test_failed ? 1 : 0;
}
