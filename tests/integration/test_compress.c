/* SPDX-License-Identifier: MIT */
/*
 * On-the-fly compression over real sockets (issue 15, "Compression"): chopin_compress on the
 * whole router. Bodies of every kind in memory (copied, static, owned, JSON writer, deferred)
 * come back decoded by the real libraries byte for byte; a negotiation table of
 * Accept-Encoding fields against the Content-Encoding sent; the answers never compressed
 * (HEAD, 204, 304, 206, already encoded, a type not listed, too small, a file) and the Vary
 * each one carries; ETags made the coding's own and the 304 for them; streams and
 * server-sent events decoded piece by piece while they are still open (each piece must
 * decode before the next one is even produced); curl --compressed for each coding.
 * Runs once per backend (CHOPIN_BACKEND), on one worker.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "client.h"
#include "test.h"
#include "compress_decode.h"

static int port, skipped;
static char *big_json; /* 10 KiB of JSON */
static size_t big_len;
static char tmpdir[64];
#define BIG_FILE ((1 << 20) + 1) /* one byte over what is read into memory */

static const char *const all_codings[] = {"gzip", "br", "zstd"};

/* ---- handlers --------------------------------------------------------------------------- */

static void json_copy(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_copy(res, 200, "application/json", big_json, big_len);
}

static void html_static(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_static(res, 200, "text/html; charset=utf-8", big_json, big_len);
}

static void free_owned(void *p, void *arg)
{
    free(p);
}

static void text_owned(chopin_req *req, chopin_res *res, void *data)
{
    char *copy = malloc(big_len);
    memcpy(copy, big_json, big_len);
    chopin_res_owned(res, 200, "text/plain", copy, big_len, free_owned, NULL);
}

static void json_writer(chopin_req *req, chopin_res *res, void *data)
{
    chopin_json *j = chopin_res_json(res, 200);
    chopin_json_arr_begin(j);
    for (int i = 0; i < 300; i++) {
        chopin_json_obj_begin(j);
        chopin_json_key(j, "id");
        chopin_json_int(j, i);
        chopin_json_key(j, "title");
        chopin_json_str(j, "a todo item with a title");
        chopin_json_obj_end(j);
    }
    chopin_json_arr_end(j);
    chopin_json_end(j);
}

static void small(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_text(res, 200, "short");
}

static void image(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_static(res, 200, "image/png", big_json, big_len);
}

static void encoded(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_header_set(res, "Content-Encoding", "gzip");
    chopin_res_static(res, 200, "text/plain", big_json, big_len);
}

static void no_content(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_empty(res, 204);
}

static void not_modified(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_header_set(res, "ETag", "\"v1\"");
    chopin_res_empty(res, 304);
}

static void partial(chopin_req *req, chopin_res *res, void *data)
{
    char range[64];
    snprintf(range, sizeof range, "bytes 0-999/%zu", big_len);
    chopin_res_header_set(res, "Content-Range", range);
    chopin_res_static(res, 206, "text/plain", big_json, 1000);
}

/* A body with Content-Range but a 200 (a handler's own range scheme): left alone too. */
static void ranged_200(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_header_set(res, "Content-Range", "bytes 0-9999/20000");
    chopin_res_static(res, 200, "text/plain", big_json, big_len);
}

static void tagged(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_header_set(res, "ETag", (const char *)data);
    chopin_res_static(res, 200, "text/plain", big_json, big_len);
}

static void varied(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_header_set(res, "Vary", (const char *)data);
    chopin_res_static(res, 200, "text/plain", big_json, big_len);
}

/* A file of the temporary directory (data: its name), with Accept-Ranges as a static file
 * server sends it. */
static void file(chopin_req *req, chopin_res *res, void *data)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, (const char *)data);
    chopin_res_file(res, path);
    chopin_res_header_set(res, "Accept-Ranges", "bytes");
}

static void error_page(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_copy(res, 404, "text/html", big_json, big_len);
}

/* A deferred answer, finished by a timer after the middleware has long returned. */
static void finish_later(chopin_worker *w, chopin_timer t, void *arg)
{
    chopin_exchange *x = arg;
    chopin_res *res = chopin_exchange_res(*x);
    if (res)
        chopin_res_copy(res, 200, "application/json", big_json, big_len);
    chopin_exchange_finish(*x);
    free(x);
}

static void later(chopin_req *req, chopin_res *res, void *data)
{
    chopin_exchange *x = malloc(sizeof *x);
    if (chopin_defer(req, res, x) == 0)
        chopin_timer_start(chopin_req_worker(req), 5, 0, finish_later, x);
    else
        free(x);
}

/* ---- a stream and an event stream that say something only when told ---------------------- */

static chopin_stream stream;
static char message[256];
static int ending;
static chopin_sse *sse;

static long produce(void *state, char *buf, size_t cap)
{
    size_t n = strlen(message);
    if (n) {
        memcpy(buf, message, n < cap ? n : cap);
        message[0] = '\0';
        return (long)n;
    }
    return ending ? 0 : CHOPIN_EAGAIN;
}

static void streamed(chopin_req *req, chopin_res *res, void *data)
{
    message[0] = '\0';
    ending = 0;
    chopin_res_stream(res, 200, "text/plain", produce, NULL, NULL);
    stream = chopin_req_stream(req);
}

static void sse_closed(chopin_sse *s, void *arg)
{
    sse = NULL;
}

static void events(chopin_req *req, chopin_res *res, void *data)
{
    sse = chopin_sse_open(req, res, sse_closed, NULL);
}

/* /say?text: the stream's next piece, or the next event ("end" ends either). */
static void say_handler(chopin_req *req, chopin_res *res, void *data)
{
    chopin_str q = chopin_req_query_string(req);
    int end = q.len == 3 && memcmp(q.ptr, "end", 3) == 0;
    if (sse) {
        if (end)
            chopin_sse_close(sse);
        else
            chopin_sse_send(sse, NULL, NULL, q.ptr, q.len);
    } else {
        if (end)
            ending = 1;
        else
            snprintf(message, sizeof message, "%.*s", (int)q.len, q.ptr);
        chopin_stream_resume(stream);
    }
    chopin_res_static(res, 200, "application/octet-stream", "ok", 2);
}

/* ---- the client side ---------------------------------------------------------------------- */

/* GET (or HEAD) `target` with extra header lines `extra` ("" for none) on a fresh
 * connection. Returns the status, -1 on failure. */
static int fetch(const char *method, const char *target, const char *extra, struct cl_resp *r)
{
    struct cl_conn *c = cl_open(port);
    if (!c)
        return -1;
    char req[1024];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n", method, target, extra);
    int rc = cl_send(c, req, 0) == 0 && cl_read(c, r, strcmp(method, "HEAD") == 0) == 0 ? r->status : -1;
    cl_close(c);
    return rc;
}

static const char *header(const struct cl_resp *r, const char *name)
{
    static char v[8][256];
    static int slot;
    char *out = v[slot++ % 8];
    if (cl_header(r, name, out, 256) != 0)
        return "(none)";
    return out;
}

/* The coding the answer says it has ("identity" for none). */
static const char *coding_of(const struct cl_resp *r)
{
    const char *ce = header(r, "Content-Encoding");
    return strcmp(ce, "(none)") == 0 ? "identity" : ce;
}

/* The body decoded by the real library of its Content-Encoding equals want[0..len). */
static int body_is(const struct cl_resp *r, const char *want, size_t len)
{
    const char *ce = coding_of(r);
    if (strcmp(ce, "identity") == 0)
        return r->body_len == len && memcmp(r->body, want, len) == 0;
    return dec_equals(ce, r->body, r->body_len, want, len);
}

static int have_all(void)
{
    for (size_t i = 0; i < 3; i++)
        if (!chopin_compress_supported(all_codings[i]) || !dec_have(all_codings[i]))
            return 0;
    return 1;
}

/* ---- tests --------------------------------------------------------------------------------- */

/* Every body kind in memory, in every coding, decodes back byte for byte. */
static void test_round_trips(void)
{
    static const char *const targets[] = {"/json", "/html", "/owned", "/later", "/file"};
    for (size_t c = 0; c < 3; c++) {
        if (!chopin_compress_supported(all_codings[c]) || !dec_have(all_codings[c])) {
            printf("test_round_trips: %s skipped: not built\n", all_codings[c]);
            skipped++;
            continue;
        }
        char extra[64];
        snprintf(extra, sizeof extra, "Accept-Encoding: %s\r\n", all_codings[c]);
        for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
            struct cl_resp r;
            CHECK_INT(fetch("GET", targets[t], extra, &r), 200);
            CHECK_STR(coding_of(&r), all_codings[c]);
            CHECK(r.body_len < big_len / 2);
            CHECK(body_is(&r, big_json, big_len));
            CHECK_STR(header(&r, "Vary"), "Accept-Encoding");
            CHECK_STR(header(&r, "Accept-Ranges"), "(none)"); /* ranges are of identity bytes */
            cl_resp_free(&r);
        }
        /* The JSON writer's document: compared with what identity sends. */
        struct cl_resp plain, coded;
        CHECK_INT(fetch("GET", "/jsonw", "", &plain), 200);
        CHECK_INT(fetch("GET", "/jsonw", extra, &coded), 200);
        CHECK_STR(coding_of(&plain), "identity");
        CHECK_STR(coding_of(&coded), all_codings[c]);
        CHECK(body_is(&coded, plain.body, plain.body_len));
        cl_resp_free(&plain);
        cl_resp_free(&coded);
    }
}

struct neg {
    const char *fields; /* the request's Accept-Encoding lines */
    const char *want;   /* the Content-Encoding expected (default offer: zstd, br, gzip) */
};

static const struct neg negotiation[] = {
    {"", "identity"}, /* no field: identity */
    {"Accept-Encoding: \r\n", "identity"},
    {"Accept-Encoding: identity\r\n", "identity"},
    {"Accept-Encoding: gzip\r\n", "gzip"},
    {"Accept-Encoding: x-gzip\r\n", "gzip"},
    {"Accept-Encoding: br\r\n", "br"},
    {"Accept-Encoding: zstd\r\n", "zstd"},
    {"Accept-Encoding: gzip, deflate, br, zstd\r\n", "zstd"}, /* a browser: the server's order */
    {"Accept-Encoding: gzip, deflate, br\r\n", "br"},
    {"Accept-Encoding: *\r\n", "zstd"},
    {"Accept-Encoding: br;q=0.5, gzip\r\n", "gzip"},
    {"Accept-Encoding: zstd;q=0.1, br;q=0.2, gzip;q=0.3\r\n", "gzip"},
    {"Accept-Encoding: GZIP;Q=1.0, BR;q=0.9\r\n", "gzip"},
    {"Accept-Encoding: gzip;q=0, *\r\n", "zstd"},
    {"Accept-Encoding: *;q=0.5, zstd;q=0, br;q=0\r\n", "gzip"},
    {"Accept-Encoding: gzip;q=0.5, identity\r\n", "identity"},
    {"Accept-Encoding: identity;q=0\r\n", "identity"}, /* nothing acceptable: identity anyway */
    {"Accept-Encoding: deflate, compress\r\n", "identity"},
    {"Accept-Encoding: gzip;q=2, br;q=0.5x\r\n", "identity"}, /* malformed elements ignored */
    {"Accept-Encoding: br;q=0.1\r\nAccept-Encoding: gzip\r\n", "gzip"}, /* two lines, one list */
};

static void test_negotiation_table(void)
{
    if (!have_all()) {
        printf("test_negotiation_table: skipped: not every coding is built\n");
        skipped++;
        return;
    }
    for (size_t i = 0; i < sizeof negotiation / sizeof negotiation[0]; i++) {
        struct cl_resp r;
        CHECK_INT(fetch("GET", "/json", negotiation[i].fields, &r), 200);
        const char *got = coding_of(&r);
        if (strcmp(got, negotiation[i].want) != 0)
            fprintf(stderr, "  case %zu (%s): got %s, expected %s\n", i, negotiation[i].fields, got,
                    negotiation[i].want);
        CHECK_STR(got, negotiation[i].want);
        CHECK(body_is(&r, big_json, big_len));
        cl_resp_free(&r);
    }
}

/* prefer and min_size of a nested middleware: the innermost one decides. */
static void test_options(void)
{
    if (!have_all()) {
        skipped++;
        return;
    }
    struct cl_resp r;
    CHECK_INT(fetch("GET", "/custom/text", "Accept-Encoding: gzip, br, zstd\r\n", &r), 200);
    CHECK_STR(coding_of(&r), "gzip"); /* prefer "gzip,br" */
    CHECK(body_is(&r, big_json, big_len));
    cl_resp_free(&r);
    CHECK_INT(fetch("GET", "/custom/text", "Accept-Encoding: zstd\r\n", &r), 200);
    CHECK_STR(coding_of(&r), "identity"); /* zstd not offered there */
    cl_resp_free(&r);
    CHECK_INT(fetch("GET", "/custom/small", "Accept-Encoding: gzip\r\n", &r), 200);
    CHECK_STR(coding_of(&r), "identity"); /* 5 bytes: min_size 1 lets it try; it grows */
    CHECK_STR(r.body, "short");
    cl_resp_free(&r);
    CHECK_INT(fetch("GET", "/custom/image", "Accept-Encoding: gzip\r\n", &r), 200);
    CHECK_STR(coding_of(&r), "gzip"); /* types {"image/" star} */
    CHECK(body_is(&r, big_json, big_len));
    cl_resp_free(&r);
    CHECK_INT(fetch("GET", "/custom/json2", "Accept-Encoding: gzip\r\n", &r), 200);
    CHECK_STR(coding_of(&r), "identity"); /* application/json is not in that list */
    CHECK_STR(header(&r, "Vary"), "(none)");
    cl_resp_free(&r);
}

struct never {
    const char *method, *target;
    int status;
    const char *vary; /* the Vary expected */
};

static const struct never nevers[] = {
    {"HEAD", "/json", 200, "Accept-Encoding"},
    {"GET", "/nocontent", 204, "(none)"},
    {"GET", "/notmodified", 304, "(none)"},
    {"GET", "/partial", 206, "(none)"},
    {"GET", "/ranged", 200, "(none)"},
    {"GET", "/encoded", 200, "(none)"},
    {"GET", "/image", 200, "(none)"},
    {"GET", "/small", 200, "(none)"}, /* identity for everyone: nothing varies */
};

static void test_never_compressed(void)
{
    for (size_t i = 0; i < sizeof nevers / sizeof nevers[0]; i++) {
        const struct never *n = &nevers[i];
        struct cl_resp r;
        CHECK_INT(fetch(n->method, n->target, "Accept-Encoding: gzip, br, zstd\r\n", &r), n->status);
        const char *ce = coding_of(&r);
        /* /encoded keeps the handler's own Content-Encoding, and its bytes */
        CHECK_STR(ce, strcmp(n->target, "/encoded") == 0 ? "gzip" : "identity");
        if (strcmp(header(&r, "Vary"), n->vary) != 0)
            fprintf(stderr, "  %s %s: Vary %s\n", n->method, n->target, header(&r, "Vary"));
        CHECK_STR(header(&r, "Vary"), n->vary);
        if (n->status == 200 && strcmp(n->target, "/small") != 0) {
            if (strcmp(n->method, "HEAD") == 0) {
                char len[32];
                snprintf(len, sizeof len, "%zu", big_len);
                CHECK_STR(header(&r, "Content-Length"), len); /* the identity length */
            } else {
                CHECK(r.body_len == big_len && memcmp(r.body, big_json, big_len) == 0);
            }
        }
        cl_resp_free(&r);
    }
}

/* A file over 1 MiB keeps sendfile (never read into memory), as does every file with
 * no_files; both go out as they are, with their Accept-Ranges. */
static void test_files_left_alone(void)
{
    struct cl_resp r;
    CHECK_INT(fetch("GET", "/bigfile", "Accept-Encoding: gzip, br, zstd\r\n", &r), 200);
    CHECK_STR(coding_of(&r), "identity");
    CHECK_STR(header(&r, "Vary"), "(none)");
    CHECK_STR(header(&r, "Accept-Ranges"), "bytes");
    CHECK_INT(r.body_len, BIG_FILE);
    CHECK(r.body_len >= big_len && memcmp(r.body, big_json, big_len) == 0);
    cl_resp_free(&r);
    CHECK_INT(fetch("GET", "/custom/file", "Accept-Encoding: gzip\r\n", &r), 200);
    CHECK_STR(coding_of(&r), "identity");
    CHECK(body_is(&r, big_json, big_len));
    cl_resp_free(&r);
}

/* Error pages are answers too: compressed when they qualify. */
static void test_error_page_compressed(void)
{
    if (!chopin_compress_supported("gzip")) {
        skipped++;
        return;
    }
    struct cl_resp r;
    CHECK_INT(fetch("GET", "/error", "Accept-Encoding: gzip\r\n", &r), 404);
    CHECK_STR(coding_of(&r), "gzip");
    CHECK(body_is(&r, big_json, big_len));
    cl_resp_free(&r);
}

/* Vary already there: Accept-Encoding added once, "*" left alone. */
static void test_vary_merged(void)
{
    struct cl_resp r;
    CHECK_INT(fetch("GET", "/vary/cookie", "Accept-Encoding: gzip\r\n", &r), 200);
    CHECK(strstr(r.head, "Vary: Cookie\r\n") != NULL);
    CHECK(strstr(r.head, "Vary: Accept-Encoding\r\n") != NULL);
    cl_resp_free(&r);
    CHECK_INT(fetch("GET", "/vary/both", "Accept-Encoding: gzip\r\n", &r), 200);
    CHECK_STR(header(&r, "Vary"), "Cookie, accept-encoding");
    CHECK(strstr(r.head, "Vary: Accept-Encoding") == NULL);
    cl_resp_free(&r);
    CHECK_INT(fetch("GET", "/vary/star", "Accept-Encoding: gzip\r\n", &r), 200);
    CHECK_STR(header(&r, "Vary"), "*");
    cl_resp_free(&r);
}

/* The coded answer has its own ETag, and If-None-Match with it is a 304. */
static void test_etags(void)
{
    if (!have_all()) {
        skipped++;
        return;
    }
    struct cl_resp r;
    CHECK_INT(fetch("GET", "/etag/strong", "", &r), 200);
    CHECK_STR(header(&r, "ETag"), "\"v7\"");
    cl_resp_free(&r);
    for (size_t c = 0; c < 3; c++) {
        char extra[256], want[64];
        snprintf(extra, sizeof extra, "Accept-Encoding: %s\r\n", all_codings[c]);
        snprintf(want, sizeof want, "\"v7-%s\"", all_codings[c]);
        CHECK_INT(fetch("GET", "/etag/strong", extra, &r), 200);
        CHECK_STR(header(&r, "ETag"), want);
        cl_resp_free(&r);
        snprintf(extra, sizeof extra, "Accept-Encoding: %s\r\nIf-None-Match: \"x\", W/%s\r\n",
                 all_codings[c], want);
        CHECK_INT(fetch("GET", "/etag/strong", extra, &r), 304);
        CHECK_STR(header(&r, "ETag"), want);
        CHECK_INT(r.body_len, 0);
        cl_resp_free(&r);
    }
    CHECK_INT(fetch("GET", "/etag/weak", "Accept-Encoding: gzip\r\n", &r), 200);
    CHECK_STR(header(&r, "ETag"), "W/\"v7-gzip\"");
    cl_resp_free(&r);
    /* Another coding's tag is not a match: the client holds other bytes. */
    CHECK_INT(fetch("GET", "/etag/strong", "Accept-Encoding: br\r\nIf-None-Match: \"v7-gzip\"\r\n", &r),
              200);
    CHECK(body_is(&r, big_json, big_len));
    cl_resp_free(&r);
    /* A malformed ETag cannot be made the coding's own: not compressed, left as it was. */
    CHECK_INT(fetch("GET", "/etag/bad", "Accept-Encoding: gzip\r\n", &r), 200);
    CHECK_STR(coding_of(&r), "identity");
    CHECK_STR(header(&r, "ETag"), "v7");
    cl_resp_free(&r);
}

/* Incremental reading of a chunked, coded body: de-chunks what arrived and decodes it. */
struct reader {
    int fd;
    char buf[1 << 16];
    size_t len;
    struct dec *dec;
    int last_chunk; /* the 0-size chunk arrived */
};

/* Consumes the complete chunks in r->buf. -1 on garbage. */
static int eat_chunks(struct reader *r)
{
    for (;;) {
        char *eol = memmem(r->buf, r->len, "\r\n", 2);
        if (!eol)
            return 0;
        size_t size = strtoul(r->buf, NULL, 16), line = (size_t)(eol - r->buf) + 2;
        if (size == 0) {
            r->last_chunk = 1;
            return 0;
        }
        if (r->len < line + size + 2)
            return 0;
        if (dec_feed(r->dec, r->buf + line, size) < 0)
            return -1;
        memmove(r->buf, r->buf + line + size + 2, r->len - line - size - 2);
        r->len -= line + size + 2;
    }
}

/* Reads until what was decoded ends with `tail` (1), or EOF / 5 s / garbage (0). */
static int read_decoded(struct reader *r, const char *tail)
{
    size_t tl = strlen(tail);
    for (;;) {
        if (r->dec->out_len >= tl && memcmp(r->dec->out + r->dec->out_len - tl, tail, tl) == 0)
            return 1;
        if (r->last_chunk)
            return 0;
        ssize_t n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
        if (n <= 0)
            return 0;
        r->len += (size_t)n;
        if (eat_chunks(r) < 0)
            return 0;
    }
}

static int say(const char *text)
{
    char target[300];
    snprintf(target, sizeof target, "/say?%s", text);
    struct cl_resp r;
    int status = cl_get(port, target, &r);
    if (status > 0)
        cl_resp_free(&r);
    return status;
}

/* Opens `target` asking for `coding`; the head is read, the reader set up for the body. */
static int open_stream(struct reader *r, const char *target, const char *coding)
{
    memset(r, 0, sizeof *r);
    r->fd = cl_connect_fd(port);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nAccept-Encoding: %s\r\n\r\n", target,
             coding);
    if (!cl_send_fd(r->fd, req))
        return 0;
    while (!memmem(r->buf, r->len, "\r\n\r\n", 4)) {
        ssize_t n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
        if (n <= 0)
            return 0;
        r->len += (size_t)n;
    }
    char *body = (char *)memmem(r->buf, r->len, "\r\n\r\n", 4) + 4;
    *(body - 2) = '\0';
    char want[64];
    snprintf(want, sizeof want, "Content-Encoding: %s\r\n", coding);
    int ok = strstr(r->buf, want) != NULL && strstr(r->buf, "Transfer-Encoding: chunked") != NULL &&
             strstr(r->buf, "Vary: Accept-Encoding") != NULL;
    r->len -= (size_t)(body - r->buf);
    memmove(r->buf, body, r->len);
    r->dec = dec_new(coding);
    return ok && r->dec && eat_chunks(r) == 0;
}

/* Each piece is produced only after the previous one was decoded by the client: without
 * a flush per piece, the client would wait for bytes the server holds back. */
static void stream_case(const char *target, const char *coding, int sse_format)
{
    struct reader r;
    CHECK(open_stream(&r, target, coding));
    if (!r.dec) {
        close(r.fd);
        return;
    }
    char text[64], tail[80];
    for (int i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "piece-%d-of-a-stream-that-stays-open", i);
        CHECK_INT(say(text), 200);
        snprintf(tail, sizeof tail, sse_format ? "data: %s\n\n" : "%s", text);
        int got = read_decoded(&r, tail);
        if (!got)
            fprintf(stderr, "  %s %s: piece %d not decodable on arrival\n", target, coding, i);
        CHECK(got);
    }
    CHECK(!r.dec->ended);
    CHECK_INT(say("end"), 200);
    while (!r.last_chunk) {
        ssize_t n = recv(r.fd, r.buf + r.len, sizeof r.buf - r.len, 0);
        if (n <= 0)
            break;
        r.len += (size_t)n;
        if (eat_chunks(&r) < 0)
            break;
    }
    CHECK(r.last_chunk);
    CHECK(r.dec->ended); /* the coding's trailer came before the last chunk */
    dec_free(r.dec);
    close(r.fd);
}

static void test_streams_decode_as_they_arrive(void)
{
    for (size_t c = 0; c < 3; c++) {
        if (!chopin_compress_supported(all_codings[c]) || !dec_have(all_codings[c])) {
            printf("test_streams_decode_as_they_arrive: %s skipped: not built\n", all_codings[c]);
            skipped++;
            continue;
        }
        stream_case("/stream", all_codings[c], 0);
        stream_case("/events", all_codings[c], 1);
    }
}

/* curl --compressed: a real client asks, decodes and checks the bytes. */
static int curl_fetch(const char *coding, const char *target, char *headers, size_t cap,
                      char **body, size_t *len)
{
    char cmd[512], out[128], hdr[128];
    snprintf(out, sizeof out, "%s/curl.out", tmpdir);
    snprintf(hdr, sizeof hdr, "%s/curl.head", tmpdir);
    snprintf(cmd, sizeof cmd,
             "curl -s --max-time 5 --compressed %s%s%s -D %s -o %s http://127.0.0.1:%d%s",
             coding ? "-H 'Accept-Encoding: " : "", coding ? coding : "", coding ? "'" : "", hdr, out,
             port, target);
    if (system(cmd) != 0)
        return -1;
    FILE *f = fopen(hdr, "r");
    size_t n = f ? fread(headers, 1, cap - 1, f) : 0;
    headers[n] = '\0';
    if (f)
        fclose(f);
    f = fopen(out, "rb");
    if (!f)
        return -1;
    *body = malloc(big_len * 4 + 1);
    *len = fread(*body, 1, big_len * 4, f);
    fclose(f);
    return 0;
}

static void test_curl_compressed(void)
{
    if (system("curl --version >/dev/null 2>&1") != 0) {
        printf("test_curl_compressed: skipped: no curl\n");
        skipped++;
        return;
    }
    /* curl's own Accept-Encoding (every coding it was built with), then one coding each. */
    const char *asks[] = {NULL, "gzip", "br", "zstd"};
    for (size_t i = 0; i < 4; i++) {
        if (asks[i] ? !chopin_compress_supported(asks[i]) : !have_all()) {
            skipped++;
            continue;
        }
        char headers[4096], want[64];
        char *body = NULL;
        size_t len = 0;
        CHECK_INT(curl_fetch(asks[i], "/json", headers, sizeof headers, &body, &len), 0);
        if (asks[i]) {
            snprintf(want, sizeof want, "Content-Encoding: %s\r\n", asks[i]);
            CHECK(strcasestr(headers, want) != NULL);
        } else {
            CHECK(strcasestr(headers, "Content-Encoding: ") != NULL);
        }
        CHECK(len == big_len && body && memcmp(body, big_json, big_len) == 0);
        free(body);
    }
}

/* ---- setup ------------------------------------------------------------------------------------- */

static const char *const image_types[] = {"image/*", "text/*", NULL};
static const chopin_compress_options custom = {
    .prefer = "gzip,br",
    .min_size = 1,
    .types = image_types,
    .gzip_level = 1,
    .no_files = 1,
};

static void make_json(void)
{
    big_json = malloc(10240 + 128);
    size_t n = 0;
    n += (size_t)snprintf(big_json, 16, "[");
    for (int i = 0; n < 10240 - 80; i++)
        n += (size_t)snprintf(big_json + n, 128, "%s{\"id\":%d,\"title\":\"todo number %d\",\"done\":%s}",
                              i ? "," : "", i, i * 7, i % 3 ? "false" : "true");
    n += (size_t)snprintf(big_json + n, 16, "]");
    big_len = n;
}

/* tmpdir/name: the JSON `times` times over, cut to BIG_FILE bytes at most. */
static void write_file(const char *name, size_t times)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    for (size_t i = 0, left = BIG_FILE; i < times && left; i++) {
        size_t n = big_len < left ? big_len : left;
        fwrite(big_json, 1, n, f);
        left -= n;
    }
    fclose(f);
}

static chopin_router *make_router(void)
{
    chopin_router *r = chopin_router_new();
    chopin_router_use(r, NULL, chopin_compress, NULL);
    chopin_router_use(r, "/custom", chopin_compress, (void *)&custom);
    chopin_router_get(r, "/json", json_copy, NULL);
    chopin_router_get(r, "/html", html_static, NULL);
    chopin_router_get(r, "/owned", text_owned, NULL);
    chopin_router_get(r, "/jsonw", json_writer, NULL);
    chopin_router_get(r, "/later", later, NULL);
    chopin_router_get(r, "/small", small, NULL);
    chopin_router_get(r, "/image", image, NULL);
    chopin_router_get(r, "/encoded", encoded, NULL);
    chopin_router_get(r, "/nocontent", no_content, NULL);
    chopin_router_get(r, "/notmodified", not_modified, NULL);
    chopin_router_get(r, "/partial", partial, NULL);
    chopin_router_get(r, "/ranged", ranged_200, NULL);
    chopin_router_get(r, "/file", file, "big.json");
    chopin_router_get(r, "/bigfile", file, "huge.json");
    chopin_router_get(r, "/custom/file", file, "big.txt");
    chopin_router_get(r, "/error", error_page, NULL);
    chopin_router_get(r, "/etag/strong", tagged, "\"v7\"");
    chopin_router_get(r, "/etag/weak", tagged, "W/\"v7\"");
    chopin_router_get(r, "/etag/bad", tagged, "v7");
    chopin_router_get(r, "/vary/cookie", varied, "Cookie");
    chopin_router_get(r, "/vary/both", varied, "Cookie, accept-encoding");
    chopin_router_get(r, "/vary/star", varied, "*");
    chopin_router_get(r, "/stream", streamed, NULL);
    chopin_router_get(r, "/events", events, NULL);
    chopin_router_get(r, "/say", say_handler, NULL);
    chopin_router_get(r, "/custom/text", text_owned, NULL); /* text/plain */
    chopin_router_get(r, "/custom/json2", json_copy, NULL);
    chopin_router_get(r, "/custom/small", small, NULL);
    chopin_router_get(r, "/custom/image", image, NULL);
    return r;
}

int main(void)
{
    make_json();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/chopin-compress-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    write_file("big.json", 1);
    write_file("big.txt", 1);
    write_file("huge.json", BIG_FILE / big_len + 1);

    chopin_router *r = make_router();
    chopin_options o = chopin_options_default();
    o.workers = 1;
    chopin_server *s = cl_start(r, &o);
    if (!s) {
        fprintf(stderr, "server did not start\n");
        return 1;
    }
    port = chopin_server_port(s);
    RUN(test_round_trips);
    RUN(test_negotiation_table);
    RUN(test_options);
    RUN(test_never_compressed);
    RUN(test_files_left_alone);
    RUN(test_error_page_compressed);
    RUN(test_vary_merged);
    RUN(test_etags);
    RUN(test_streams_decode_as_they_arrive);
    RUN(test_curl_compressed);
    cl_stop(s);
    chopin_router_free(r);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    free(big_json);
    printf("RESULT %d %d %d\n", test_passed, test_failed, skipped);
    return test_failed ? 1 : 0;
}
