/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 request-head parser: a pure function over a buffer. No allocation, no I/O, no
 * global state except the SIMD choice made once at start-up.
 */
#ifndef CHOPIN_HTTP_PARSER_H
#define CHOPIN_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "chopin.h"

struct chopin__header {
    const char *name;
    const char *value;
    uint32_t name_len;
    uint32_t value_len;
};

enum chopin__body_kind {
    CHOPIN__BODY_NONE = 0,
    CHOPIN__BODY_LENGTH,  /* Content-Length bytes follow the head */
    CHOPIN__BODY_CHUNKED, /* Transfer-Encoding ends in chunked */
};

/** What the parser found. Every pointer points into the parsed buffer. */
struct chopin__head {
    const char *method;
    const char *target;
    const char *path;  /* origin-form path, or the path of an absolute-form target ("/"
                          when empty); "*"; the authority of a CONNECT target */
    const char *query; /* after '?', NULL when none */
    const char *host;  /* Host header value (or authority of an absolute-form target) */
    struct chopin__header *headers; /* caller's array */
    uint64_t content_length;
    uint32_t nheaders;
    uint32_t target_len;
    uint32_t path_len;
    uint32_t query_len;
    uint32_t host_len;
    uint16_t method_len;
    uint8_t method_id;  /* chopin_method */
    uint8_t minor;      /* 0 or 1 */
    uint8_t body_kind;  /* enum chopin__body_kind */
    uint8_t keep_alive; /* RFC 9112 §9.3 verdict from version and Connection */
    uint8_t expect_continue;
    uint8_t upgrade;    /* Connection: upgrade with an Upgrade header */
};

struct chopin__limits {
    uint32_t max_request_line; /* longer request line: 414 */
    uint32_t max_header_bytes; /* longer head (request line included): 431 */
    uint32_t max_headers;      /* capacity of head->headers; more: 431 */
};

#define CHOPIN__PARSE_INCOMPLETE (-1)

/**
 * Parses one request head from buf[0..len).
 *
 * Returns the length of the head (through the blank line) when it is complete and valid;
 * CHOPIN__PARSE_INCOMPLETE when more bytes are needed (and no limit is exceeded yet); or
 * minus an HTTP status (-400, -414, -417, -431, -501, -505) for a request that must be
 * refused and its connection closed after the answer. Leading empty lines (RFC 9112 §2.2)
 * are skipped and counted in the returned length.
 *
 * `head->headers` must point to `lim->max_headers` entries.
 */
ssize_t chopin__parse_request(const char *buf, size_t len, struct chopin__head *head,
                              const struct chopin__limits *lim);

/** SIMD selection: CHOPIN__SIMD_AUTO picks the best the CPU has; the others force it
 *  (forcing a level the CPU lacks falls back to the best available below it). */
enum chopin__simd { CHOPIN__SIMD_AUTO, CHOPIN__SIMD_SCALAR, CHOPIN__SIMD_SSE2, CHOPIN__SIMD_AVX2 };
/** Chooses the scanning code; returns the level now in use. Not thread-safe: call before
 *  workers start (chopin_serve calls it, reading CHOPIN_SIMD=auto|scalar|sse2|avx2). */
enum chopin__simd chopin__parser_set_simd(enum chopin__simd want);
const char *chopin__simd_name(enum chopin__simd level);

#endif
