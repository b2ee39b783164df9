/* SPDX-License-Identifier: MIT */
/*
 * Response serializer: status line and headers as raw bytes. Sizes are computed first,
 * so writing needs no bounds checks; nothing is formatted that could be cached (the
 * Date text comes from the worker's cache, the Server line is built once).
 */
#ifndef CHOPIN_HTTP_SERIALIZE_H
#define CHOPIN_HTTP_SERIALIZE_H

#include <stddef.h>
#include <stdint.h>

struct chopin_res;

enum chopin__framing {
    CHOPIN__FRAME_LENGTH = 0, /* Content-Length: body_len */
    CHOPIN__FRAME_CHUNKED,    /* Transfer-Encoding: chunked */
    CHOPIN__FRAME_CLOSE,      /* neither: the body ends when the connection closes (1.0) */
    CHOPIN__FRAME_NONE,       /* 1xx, 204, 304: no body and no length header */
};

/** The most bytes of one cached head (the lead, Content-Type, Content-Length, Connection). */
#define CHOPIN__LEAD_MAX 192
#define CHOPIN__CACHED_HEAD_MAX 384

/*
 * Heads a worker reuses. The lead of a 200 (status line, Server, Date) is rebuilt once a
 * second, so the commonest response starts with one copy. And the last plain 200 head
 * (no extra headers, a Content-Length) is kept whole: a server mostly answers with the
 * same content type and often the same length (TechEmpower's tests always), and then the
 * head is one copy instead of a dozen. Rebuilding the lead forgets the last head.
 */
struct chopin__head_cache {
    uint32_t lead_len;
    uint32_t len;               /* of `bytes`; 0: no last head */
    uint32_t content_type_len;  /* the key of the last head: its content type is in `bytes` */
    uint8_t connection;
    uint64_t body_len;
    char lead[CHOPIN__LEAD_MAX];
    char bytes[CHOPIN__CACHED_HEAD_MAX];
};

struct chopin__head_ctx {
    const char *date;          /* CHOPIN__DATE_LEN bytes */
    const char *server_line;   /* "Server: x\r\n" or "" */
    uint32_t server_line_len;
    struct chopin__head_cache *cache; /* NULL to build every head in full */
    uint8_t framing;           /* enum chopin__framing */
    uint8_t connection;        /* 0: no header, 1: "close", 2: "keep-alive" (HTTP/1.0),
                                  3: "Upgrade" (a 101: Upgrade is hop-by-hop, RFC 9110 §7.6.1) */
    uint64_t body_len;         /* for CHOPIN__FRAME_LENGTH */
    /* Filled by chopin__serialize_head_size for chopin__serialize_head. */
    uint8_t cached;            /* the cache's last head is this response's */
    const char *reason;
    uint32_t reason_len;
};

/** The length of the cache's last head when it is the head of `res` sent with a
 *  Content-Length of res->body_len and no Connection header: `res` a 200 with a content
 *  type and no extra headers. 0 when it is not. */
size_t chopin__head_cache_match(const struct chopin__head_cache *hc,
                                const struct chopin_res *res);
/** Upper bound of the bytes chopin__serialize_head writes for `res` with `ctx`; also
 *  measures the strings the head needs (stored in ctx). */
size_t chopin__serialize_head_size(const struct chopin_res *res, struct chopin__head_ctx *ctx);
/** Rebuilds the cache's 200 lead for a new Date (and forgets its last head). */
void chopin__head_cache_set_lead(struct chopin__head_cache *hc, const char *server_line,
                                 uint32_t server_line_len, const char *date);
/** Writes the head (through the blank line) into `dst`, which has at least
 *  chopin__serialize_head_size bytes. Returns the bytes written. */
size_t chopin__serialize_head(char *dst, const struct chopin_res *res,
                              const struct chopin__head_ctx *ctx);
/** Writes `v` in decimal; returns the digits written (at most 20). */
size_t chopin__u64_to_dec(char *dst, uint64_t v);

#endif
