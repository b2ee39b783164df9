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

struct chopin__head_ctx {
    const char *date;          /* CHOPIN__DATE_LEN bytes */
    const char *server_line;   /* "Server: x\r\n" or "" */
    uint32_t server_line_len;
    /* The lead of a 200 (status line, Server, Date) prebuilt once a second by the worker,
     * so the commonest response starts with one copy; NULL to build it each time. */
    const char *lead_200;
    uint32_t lead_200_len;
    uint8_t framing;           /* enum chopin__framing */
    uint8_t connection;        /* 0: no header, 1: "close", 2: "keep-alive" (HTTP/1.0) */
    uint64_t body_len;         /* for CHOPIN__FRAME_LENGTH */
    /* Filled by chopin__serialize_head_size for chopin__serialize_head. */
    const char *reason;
    uint32_t reason_len;
    uint32_t content_type_len;
};

/** Upper bound of the bytes chopin__serialize_head writes for `res` with `ctx`; also
 *  measures the strings the head needs (stored in ctx). */
size_t chopin__serialize_head_size(const struct chopin_res *res, struct chopin__head_ctx *ctx);
/** Writes "HTTP/1.1 <status> <reason>\r\n", the Server line and the Date line into dst
 *  (at most CHOPIN__LEAD_MAX bytes); returns the bytes written. */
#define CHOPIN__LEAD_MAX 192
size_t chopin__serialize_lead(char *dst, int status, const char *server_line,
                              uint32_t server_line_len, const char *date);
/** Writes the head (through the blank line) into `dst`, which has at least
 *  chopin__serialize_head_size bytes. Returns the bytes written. */
size_t chopin__serialize_head(char *dst, const struct chopin_res *res,
                              const struct chopin__head_ctx *ctx);
/** Writes `v` in decimal; returns the digits written (at most 20). */
size_t chopin__u64_to_dec(char *dst, uint64_t v);

#endif
