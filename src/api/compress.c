/* SPDX-License-Identifier: MIT */
/*
 * chopin_compress: the on-the-fly compression middleware (chopin.h, "Compression").
 *
 * The middleware only marks the response (chopin_res.finalize); the work happens once the
 * answer is final, just before it is serialized (conn.c, send_answer). Deciding there, not
 * after chopin_next_run returns, is what covers deferred answers: their body is set long
 * after the middleware returned.
 *
 * What is compressed and why not the rest (RFC 9110):
 *   - 1xx, 204 and 304 have no content; a 206 or anything with Content-Range is a range of
 *     the identity representation, which a coding would corrupt (§14.4); HEAD sends no body,
 *     and its headers describe the identity answer (Content-Length included);
 *   - an answer with Content-Encoding is encoded already;
 *   - a file over 1 MiB keeps sendfile: it is never read into memory (precompressed
 *     siblings are the static files' answer for those).
 * Vary: Accept-Encoding (§12.5.5) goes on every answer whose type qualifies, compressed or
 * not: a cache must not hand a stored gzip body to a client that did not ask for one, nor
 * keep an identity body as the only variant.
 * An ETag names one representation, and the gzip bytes are another one (§8.8.3: strong
 * validators differ per content coding), so the coding's name is appended to it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/compress.h"
#include "http/accept_encoding.h"
#include "http/chars.h"
#include "http/message.h"

#define DEFAULT_MIN_SIZE 256
#define DEFAULT_GZIP_LEVEL 6
#define DEFAULT_BR_LEVEL 4
#define DEFAULT_ZSTD_LEVEL 3
#define DEFAULT_PREFER "zstd,br,gzip"
/* Files up to this size are read and compressed like a body in memory; larger ones keep
 * sendfile (a large file is never read into memory, issue 15). */
#define MAX_FILE_BYTES (1u << 20)

static const char *const default_types[] = {
    "text/html", "text/plain", "text/css", "text/javascript", "text/csv", "text/xml",
    "text/markdown", "text/event-stream", "application/json", "application/javascript",
    "application/xml", "application/wasm", "image/svg+xml", "application/*+json",
    "application/*+xml", NULL,
};

static const chopin_compress_options defaults = {0};

static void free_heap(void *p, void *arg)
{
    (void)arg;
    free(p);
}

/* ---- what qualifies -------------------------------------------------------------------- */

static int no_content_status(int status)
{
    return status < 200 || status == 204 || status == 206 || status == 304;
}

static int ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (chopin__ascii_lower((unsigned char)a[i]) != chopin__ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* Whether media type `type`/`sub` (the answer's, without parameters) matches list entry
 * `pat`: "*"; "type/" and a star (any subtype); "type/", a star and "+suffix" (a structured
 * syntax suffix, RFC 6838 §4.2.8); or "type/sub". */
static int type_matches(const char *pat, const char *type, size_t tlen, const char *sub, size_t slen)
{
    if (strcmp(pat, "*") == 0)
        return 1;
    const char *slash = strchr(pat, '/');
    if (!slash || (size_t)(slash - pat) != tlen || !ieq(pat, type, tlen))
        return 0;
    const char *psub = slash + 1;
    size_t plen = strlen(psub);
    if (strcmp(psub, "*") == 0)
        return 1;
    if (psub[0] == '*' && psub[1] == '+') /* "*+json": a structured syntax suffix */
        return slen > plen - 1 && ieq(psub + 1, sub + slen - (plen - 1), plen - 1);
    return plen == slen && ieq(psub, sub, slen);
}

static int type_listed(const chopin_compress_options *o, const char *ct, size_t len)
{
    if (!ct)
        return 0;
    size_t end = 0;
    while (end < len && ct[end] != ';')
        end++;
    while (end > 0 && (chopin__chars[(unsigned char)ct[end - 1]] & CHOPIN__C_OWS))
        end--;
    const char *slash = memchr(ct, '/', end);
    if (!slash)
        return 0;
    size_t tlen = (size_t)(slash - ct);
    const char *const *types = o->types ? o->types : default_types;
    for (; *types; types++)
        if (type_matches(*types, ct, tlen, slash + 1, end - tlen - 1))
            return 1;
    return 0;
}

/* Whether the response's Vary already covers Accept-Encoding ("*" covers everything). */
static int vary_covers(chopin_str v)
{
    static const char name[] = "accept-encoding";
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (v.ptr[i] == ',' || (chopin__chars[(unsigned char)v.ptr[i]] & CHOPIN__C_OWS)))
            i++;
        size_t start = i;
        while (i < v.len && v.ptr[i] != ',' && !(chopin__chars[(unsigned char)v.ptr[i]] & CHOPIN__C_OWS))
            i++;
        size_t n = i - start;
        if ((n == 1 && v.ptr[start] == '*') ||
            (n == sizeof name - 1 && ieq(v.ptr + start, name, n)))
            return 1;
    }
    return 0;
}

static void add_vary(chopin_res *res)
{
    if (!vary_covers(chopin_res_header(res, "Vary")))
        chopin_res_header_add(res, "Vary", "Accept-Encoding");
}

/* ---- negotiation ------------------------------------------------------------------------ */

static int level_of(const chopin_compress_options *o, enum chopin__coding c)
{
    switch (c) {
    case CHOPIN__CODING_GZIP:
        return o->gzip_level ? o->gzip_level : DEFAULT_GZIP_LEVEL;
    case CHOPIN__CODING_BR:
        return o->br_level ? o->br_level : DEFAULT_BR_LEVEL;
    default:
        return o->zstd_level ? o->zstd_level : DEFAULT_ZSTD_LEVEL;
    }
}

static enum chopin__coding coding_named(const char *p, size_t n)
{
    for (int c = CHOPIN__CODING_GZIP; c < CHOPIN__CODING_COUNT_; c++) {
        const char *name = chopin__coding_name((enum chopin__coding)c);
        if (strlen(name) == n && ieq(p, name, n))
            return (enum chopin__coding)c;
    }
    return CHOPIN__CODING_NONE;
}

/* The offer: the codings of `prefer` this build has, in its order, then identity. */
static size_t offer(const chopin_compress_options *o, uint8_t out[CHOPIN__CODING_COUNT_])
{
    const char *p = o->prefer ? o->prefer : DEFAULT_PREFER;
    size_t n = 0;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ')
            p++;
        enum chopin__coding c = coding_named(start, (size_t)(p - start));
        if (c != CHOPIN__CODING_NONE && chopin__codec_available(c) && !memchr(out, c, n) &&
            n < CHOPIN__CODING_COUNT_ - 1)
            out[n++] = (uint8_t)c;
    }
    out[n++] = CHOPIN__CODING_IDENTITY;
    return n;
}

static int name_is(chopin_str s, const char *lower)
{
    size_t n = strlen(lower);
    return s.len == n && ieq(s.ptr, lower, n);
}

/* The coding to send: every Accept-Encoding line of the request counts (RFC 9110 §5.3). */
static enum chopin__coding negotiate(const chopin_req *req, const chopin_compress_options *o)
{
    struct chopin__accept_encoding ae;
    chopin__accept_encoding_init(&ae);
    size_t count = chopin_req_header_count(req);
    for (size_t i = 0; i < count; i++) {
        chopin_str name, value;
        if (chopin_req_header_at(req, i, &name, &value) == 0 && name_is(name, "accept-encoding"))
            chopin__accept_encoding_add(&ae, value.ptr, value.len);
    }
    uint8_t prefer[CHOPIN__CODING_COUNT_] = {0};
    size_t n = offer(o, prefer);
    return chopin__accept_encoding_choose(&ae, prefer, n);
}

/* ---- validators ------------------------------------------------------------------------- */

/* The opaque part of entity-tag text `t` (RFC 9110 §8.8.3: [W/] DQUOTE etagc DQUOTE), and
 * whether it is weak; 0 when `t` is not one entity-tag. */
static int etag_split(chopin_str t, int *weak, chopin_str *opaque)
{
    const char *p = t.ptr;
    size_t n = t.len;
    *weak = n >= 2 && p[0] == 'W' && p[1] == '/';
    if (*weak)
        p += 2, n -= 2;
    if (n < 2 || p[0] != '"' || p[n - 1] != '"' || memchr(p + 1, '"', n - 2))
        return 0;
    *opaque = (chopin_str){p + 1, n - 2};
    return 1;
}

/* The ETag of the coded representation ("x" -> "x-gzip"), in the request arena; NULL when
 * out of memory. */
static char *coded_etag(chopin_req *req, int weak, chopin_str opaque, const char *coding)
{
    size_t clen = strlen(coding);
    char *s = chopin_req_alloc(req, opaque.len + clen + 6);
    if (!s)
        return NULL;
    char *p = s;
    if (weak)
        *p++ = 'W', *p++ = '/';
    *p++ = '"';
    memcpy(p, opaque.ptr, opaque.len);
    p += opaque.len;
    *p++ = '-';
    memcpy(p, coding, clen);
    p += clen;
    *p++ = '"';
    *p = '\0';
    return s;
}

/* Whether an If-None-Match line of the request names `opaque` (weak comparison, §13.1.2). */
static int none_match_names(const chopin_req *req, const char *tag)
{
    int weak;
    chopin_str mine;
    etag_split((chopin_str){tag, strlen(tag)}, &weak, &mine);
    size_t count = chopin_req_header_count(req);
    for (size_t i = 0; i < count; i++) {
        chopin_str name, v;
        if (chopin_req_header_at(req, i, &name, &v) != 0 || !name_is(name, "if-none-match"))
            continue;
        size_t at = 0;
        while (at < v.len) {
            while (at < v.len && (v.ptr[at] == ',' || v.ptr[at] == ' ' || v.ptr[at] == '\t'))
                at++;
            size_t start = at;
            if (at + 1 < v.len && v.ptr[at] == 'W' && v.ptr[at + 1] == '/')
                at += 2;
            if (at >= v.len || v.ptr[at] != '"')
                break; /* not a list of entity-tags ("*" is the handler's to answer) */
            const char *close = memchr(v.ptr + at + 1, '"', v.len - at - 1);
            if (!close)
                break;
            at = (size_t)(close - v.ptr) + 1;
            chopin_str theirs;
            if (etag_split((chopin_str){v.ptr + start, at - start}, &weak, &theirs) &&
                theirs.len == mine.len && memcmp(theirs.ptr, mine.ptr, mine.len) == 0)
                return 1;
        }
    }
    return 0;
}

/* The coded ETag, or "" when the answer has none; NULL when its ETag cannot be made the
 * coding's own (not an entity-tag, or no memory): then the answer is not compressed, since
 * identity and coded bytes must not share a validator. */
static const char *etag_for(chopin_req *req, chopin_res *res, enum chopin__coding c)
{
    chopin_str t = chopin_res_header(res, "ETag");
    if (!t.ptr)
        return "";
    int weak;
    chopin_str opaque;
    if (!etag_split(t, &weak, &opaque))
        return NULL;
    return coded_etag(req, weak, opaque, chopin__coding_name(c));
}

/* Content-Encoding and the coded ETag on the answer, both or neither. Accept-Ranges goes:
 * ranges are served of the identity bytes (the 206 is never coded), so a client holding
 * part of the coded bytes must not be told it can resume them with a Range (nginx's gzip
 * filter drops it too). */
static int mark_coded(chopin_res *res, enum chopin__coding c, const char *etag)
{
    if (chopin_res_header_set(res, "Content-Encoding", chopin__coding_name(c)) < 0)
        return -1;
    if (*etag && chopin_res_header_set(res, "ETag", etag) < 0) {
        chopin_res_header_remove(res, "Content-Encoding");
        return -1;
    }
    chopin_res_header_remove(res, "Accept-Ranges");
    return 0;
}

/* ---- bodies in memory --------------------------------------------------------------------- */

/* The file body's bytes in a new heap buffer, or NULL: a read error, or the file shrank
 * since its size was taken (then the answer goes out as a file, whose sender ends the
 * connection at the short read instead of sending garbage). */
static char *read_file(const chopin_res *res)
{
    size_t len = res->body_len, got = 0;
    char *buf = malloc(len ? len : 1);
    while (buf && got < len) {
        ssize_t n = pread(res->fd, buf + got, len - got, (off_t)(res->offset + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            return NULL;
        }
        got += (size_t)n;
    }
    return buf;
}

static void compress_whole(chopin_req *req, chopin_res *res, const chopin_compress_options *o,
                           enum chopin__coding c)
{
    const char *etag = etag_for(req, res, c);
    if (!etag)
        return;
    if (*etag && res->status == 200 && chopin_req_method(req) == CHOPIN_METHOD_GET &&
        none_match_names(req, etag)) {
        /* The client holds this coded representation: a 304, and nothing to compress. */
        chopin_res_header_set(res, "ETag", etag);
        chopin_res_empty(res, 304);
        return;
    }
    char *file_bytes = NULL;
    if (res->body_kind == CHOPIN__RES_FILE && !(file_bytes = read_file(res)))
        return;
    void *out;
    size_t out_len;
    int err = chopin__codec_buffer(c, level_of(o, c), file_bytes ? file_bytes : res->body,
                                   res->body_len, &out, &out_len);
    free(file_bytes);
    if (err < 0)
        return;
    if (out_len >= res->body_len || mark_coded(res, c, etag) < 0) {
        free(out);
        return;
    }
    chopin__res_replace_body(res, res->status, CHOPIN__RES_OWNED, res->content_type,
                             res->content_type_len);
    res->body = out;
    res->body_len = out_len;
    res->free_fn = free_heap;
    res->free_arg = NULL;
}

/* ---- streams ------------------------------------------------------------------------------ */

/* A compressing producer around the application's: each piece it returns is encoded and
 * flushed, and what does not fit the caller's buffer waits in `out` for the next call. */
struct zstream {
    chopin_produce_fn produce;
    void (*done)(void *state);
    void *state;
    struct chopin__encoder *enc;
    char *out;
    size_t out_len, out_pos, out_cap;
    uint8_t finished; /* the trailer is in `out`: 0 once it has been handed over */
};

/* A buffer grown by a burst is given back once it drained. */
#define KEEP_OUT (64u << 10)

static long zproduce(void *st, char *buf, size_t cap)
{
    struct zstream *z = st;
    for (;;) {
        if (z->out_pos < z->out_len) {
            size_t n = z->out_len - z->out_pos < cap ? z->out_len - z->out_pos : cap;
            memcpy(buf, z->out + z->out_pos, n);
            z->out_pos += n;
            return (long)n;
        }
        z->out_pos = z->out_len = 0;
        if (z->out_cap > KEEP_OUT) {
            free(z->out);
            z->out = NULL;
            z->out_cap = 0;
        }
        if (z->finished)
            return 0;
        /* The application writes into the caller's buffer; its bytes are encoded from
         * there into `out`, then copied back over them. */
        long n = z->produce(z->state, buf, cap);
        if (n < 0)
            return n; /* waiting (CHOPIN_EAGAIN) or an abort: nothing is pending */
        z->finished = n == 0;
        if (chopin__encoder_run(z->enc, buf, (size_t)n, z->finished, &z->out, &z->out_len,
                                &z->out_cap) < 0)
            return CHOPIN_EIO;
    }
}

static void zdone(void *st)
{
    struct zstream *z = st;
    if (z->done)
        z->done(z->state);
    chopin__encoder_free(z->enc);
    free(z->out);
    free(z);
}

static void compress_stream(chopin_req *req, chopin_res *res, const chopin_compress_options *o,
                            enum chopin__coding c)
{
    if (o->no_streams)
        return;
    const char *etag = etag_for(req, res, c);
    if (!etag)
        return;
    struct zstream *z = calloc(1, sizeof *z);
    if (!z)
        return;
    if (!(z->enc = chopin__encoder_new(c, level_of(o, c))) || mark_coded(res, c, etag) < 0) {
        chopin__encoder_free(z->enc);
        free(z);
        return;
    }
    z->produce = res->produce;
    z->done = res->stream_done;
    z->state = res->stream_state;
    res->produce = zproduce;
    res->stream_done = zdone;
    res->stream_state = z;
}

/* ---- the middleware ------------------------------------------------------------------------ */

/* Whether the answer's status, body kind and size leave it a candidate at all. A small
 * body goes out as it is to every client, so it needs no Vary either (nginx's
 * gzip_min_length does the same), which keeps the tiny answers' fast path: the worker's
 * cached head needs an answer without extra headers. */
static int candidate(const chopin_res *res, const chopin_compress_options *o)
{
    int kind = res->body_kind;
    if (no_content_status(res->status) || kind == CHOPIN__RES_EMPTY || kind == CHOPIN__RES_UNSET)
        return 0;
    if (kind == CHOPIN__RES_STREAM)
        return 1;
    if (kind == CHOPIN__RES_FILE && (o->no_files || res->body_len > MAX_FILE_BYTES))
        return 0;
    return res->body_len >= (o->min_size ? o->min_size : DEFAULT_MIN_SIZE);
}

/* Out of line, so that the answers turned away by candidate() (every tiny one) cost a few
 * compares, not this function's frame (callgrind, bench/micro_conn.c /json behind
 * chopin_compress: finalize 45 -> 28 instructions per request). */
__attribute__((noinline)) static void consider(chopin_req *req, chopin_res *res,
                                               const chopin_compress_options *o)
{
    if (chopin_res_header(res, "Content-Encoding").ptr || chopin_res_header(res, "Content-Range").ptr)
        return;
    if (!type_listed(o, res->content_type, res->content_type_len))
        return;
    add_vary(res);
    if (chopin_req_method(req) == CHOPIN_METHOD_HEAD)
        return;
    enum chopin__coding c = negotiate(req, o);
    if (c == CHOPIN__CODING_NONE || c == CHOPIN__CODING_IDENTITY)
        return; /* none acceptable: identity anyway, as RFC 9110 §12.5.3 allows */
    if (res->body_kind == CHOPIN__RES_STREAM)
        compress_stream(req, res, o, c);
    else
        compress_whole(req, res, o, c);
}

static void finalize(chopin_req *req, chopin_res *res, void *arg)
{
    const chopin_compress_options *o = arg ? arg : &defaults;
    if (candidate(res, o))
        consider(req, res, o);
}

void chopin_compress(chopin_req *req, chopin_res *res, chopin_next *next, void *opts)
{
    res->finalize = finalize;
    res->finalize_arg = opts;
    chopin_next_run(next);
}

int chopin_compress_supported(const char *name)
{
    if (!name)
        return 0;
    enum chopin__coding c = coding_named(name, strlen(name));
    return c != CHOPIN__CODING_NONE && chopin__codec_available(c);
}
