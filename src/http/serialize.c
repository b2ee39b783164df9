/* SPDX-License-Identifier: MIT */
/* Response head serialization (see serialize.h). */
#include "http/serialize.h"

#include <string.h>

#include "http/date.h"
#include "http/message.h"
#include "http/status.h"
#include "mem/bytes.h"

#define LIT(s) (sizeof(s) - 1)

static const char DIGITS2[201] = "00010203040506070809101112131415161718192021222324"
                                 "25262728293031323334353637383940414243444546474849"
                                 "50515253545556575859606162636465666768697071727374"
                                 "75767778798081828384858687888990919293949596979899";

size_t chopin__u64_to_dec(char *dst, uint64_t v) {
    char tmp[20];
    char *p = tmp + sizeof tmp;
    /* Two digits per division: half the divisions of the naive loop. */
    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = DIGITS2[i + 1];
        *--p = DIGITS2[i];
    }
    if (v >= 10) {
        unsigned i = (unsigned)v * 2;
        *--p = DIGITS2[i + 1];
        *--p = DIGITS2[i];
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(tmp + sizeof tmp - p);
    memcpy(dst, p, n);
    return n;
}

static char *put(char *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}
#define PUT_LIT(p, s) put((p), (s), LIT(s))

/* A plain 200 (a content type, no extra headers): the one shape the cache keeps. */
static int plain_200(const struct chopin_res *res) {
    return res->status == 200 && res->content_type && !res->headers_len;
}

static int cacheable(const struct chopin_res *res, const struct chopin__head_ctx *ctx) {
    return plain_200(res) && ctx->framing == CHOPIN__FRAME_LENGTH && ctx->cache &&
           ctx->cache->lead_len;
}

/* Where the cached head's content type starts: right after the lead. */
#define CACHED_TYPE_AT(hc) ((hc)->bytes + (hc)->lead_len + LIT("Content-Type: "))

/* Whether the last head is that of a plain 200 with this content type, length and
 * Connection header. */
static int cache_holds(const struct chopin__head_cache *hc, const struct chopin_res *res,
                       uint64_t body_len, uint8_t connection) {
    return hc->len && hc->body_len == body_len && hc->connection == connection &&
           hc->content_type_len == res->content_type_len &&
           chopin__bytes_eq(CACHED_TYPE_AT(hc), res->content_type, res->content_type_len);
}

static int cache_hit(const struct chopin_res *res, const struct chopin__head_ctx *ctx) {
    return cacheable(res, ctx) && cache_holds(ctx->cache, res, ctx->body_len, ctx->connection);
}

size_t chopin__head_cache_match(const struct chopin__head_cache *hc,
                                const struct chopin_res *res) {
    return plain_200(res) && cache_holds(hc, res, res->body_len, 0) ? hc->len : 0;
}

static void cache_store(const struct chopin_res *res, const struct chopin__head_ctx *ctx,
                        const char *head, size_t len) {
    struct chopin__head_cache *hc = ctx->cache;
    if (len > sizeof hc->bytes)
        return;
    memcpy(hc->bytes, head, len);
    hc->len = (uint32_t)len;
    hc->body_len = ctx->body_len;
    hc->connection = ctx->connection;
    hc->content_type_len = res->content_type_len;
}

size_t chopin__serialize_head_size(const struct chopin_res *res, struct chopin__head_ctx *ctx) {
    ctx->cached = (uint8_t)cache_hit(res, ctx);
    if (ctx->cached)
        return ctx->cache->len;
    ctx->reason = chopin__status_reason(res->status);
    ctx->reason_len = ctx->reason ? (uint32_t)strlen(ctx->reason) : 0;
    size_t n = LIT("HTTP/1.1 200 \r\n") + ctx->reason_len + ctx->server_line_len;
    n += LIT("Date: \r\n") + CHOPIN__DATE_LEN;
    if (res->content_type)
        n += LIT("Content-Type: \r\n") + res->content_type_len;
    n += LIT("Content-Length: \r\n") + 20; /* >= "Transfer-Encoding: chunked\r\n" */
    n += LIT("Connection: keep-alive\r\n");
    n += res->headers_len + LIT("\r\n");
    return n;
}

static char *put_status_line(char *p, int status, const char *reason, size_t reason_len) {
    p = PUT_LIT(p, "HTTP/1.1 ");
    p[0] = (char)('0' + status / 100);
    p[1] = (char)('0' + status / 10 % 10);
    p[2] = (char)('0' + status % 10);
    p[3] = ' ';
    p += 4;
    if (reason_len)
        p = put(p, reason, reason_len);
    return PUT_LIT(p, "\r\n");
}

static char *put_lead(char *p, int status, const char *reason, size_t reason_len,
                      const char *server_line, size_t server_line_len, const char *date) {
    p = put_status_line(p, status, reason, reason_len);
    p = put(p, server_line, server_line_len);
    p = PUT_LIT(p, "Date: ");
    p = put(p, date, CHOPIN__DATE_LEN);
    return PUT_LIT(p, "\r\n");
}

void chopin__head_cache_set_lead(struct chopin__head_cache *hc, const char *server_line,
                                 uint32_t server_line_len, const char *date) {
    const char *ok = chopin__status_reason(200);
    char *end = put_lead(hc->lead, 200, ok, strlen(ok), server_line, server_line_len, date);
    hc->lead_len = (uint32_t)(end - hc->lead);
    hc->len = 0;
}

static char *put_framing(char *p, const struct chopin__head_ctx *ctx) {
    switch (ctx->framing) {
    case CHOPIN__FRAME_LENGTH:
        p = PUT_LIT(p, "Content-Length: ");
        p += chopin__u64_to_dec(p, ctx->body_len);
        return PUT_LIT(p, "\r\n");
    case CHOPIN__FRAME_CHUNKED:
        return PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
    default:
        return p;
    }
}

size_t chopin__serialize_head(char *dst, const struct chopin_res *res,
                              const struct chopin__head_ctx *ctx) {
    if (ctx->cached) {
        memcpy(dst, ctx->cache->bytes, ctx->cache->len);
        return ctx->cache->len;
    }
    char *p;
    if (res->status == 200 && ctx->cache && ctx->cache->lead_len)
        p = put(dst, ctx->cache->lead, ctx->cache->lead_len);
    else
        p = put_lead(dst, res->status, ctx->reason, ctx->reason_len, ctx->server_line,
                     ctx->server_line_len, ctx->date);
    if (res->content_type) {
        p = PUT_LIT(p, "Content-Type: ");
        p = put(p, res->content_type, res->content_type_len);
        p = PUT_LIT(p, "\r\n");
    }
    p = put_framing(p, ctx);
    if (ctx->connection == 1)
        p = PUT_LIT(p, "Connection: close\r\n");
    else if (ctx->connection == 2)
        p = PUT_LIT(p, "Connection: keep-alive\r\n");
    else if (ctx->connection == 3)
        p = PUT_LIT(p, "Connection: Upgrade\r\n");
    if (res->headers_len)
        p = put(p, res->headers, res->headers_len);
    p = PUT_LIT(p, "\r\n");
    size_t n = (size_t)(p - dst);
    if (cacheable(res, ctx))
        cache_store(res, ctx, dst, n);
    return n;
}
