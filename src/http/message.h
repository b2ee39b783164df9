/* SPDX-License-Identifier: MIT */
/*
 * The definitions behind the opaque chopin_req and chopin_res. The connection state
 * machine fills a chopin_req from the parser's head, the router and handler fill a
 * chopin_res, the serializer turns it into bytes.
 */
#ifndef CHOPIN_HTTP_MESSAGE_H
#define CHOPIN_HTTP_MESSAGE_H

#include <stdint.h>

#include "chopin.h"
#include "http/parser.h"

struct chopin__engine;
struct chopin__conn;
struct chopin__arena;

#define CHOPIN__MAX_PARAMS 32

struct chopin__param {
    const char *name;  /* the pattern's name, without ':' or '*' */
    const char *value; /* decoded, in the arena */
    uint32_t name_len;
    uint32_t value_len;
};

/* One chopin_req_set_data entry: a caller's key (the address of its own static object)
 * and the pointer stored under it. */
struct chopin__req_data {
    const void *key;
    void *value;
};

struct chopin_req {
    struct chopin__head head;
    const char *body; /* whole body (contiguous), NULL when none */
    uint64_t body_len;
    const char *path; /* percent-decoded path (== head.path when nothing to decode) */
    uint32_t path_len;
    uint32_t nparams;
    struct chopin__param params[CHOPIN__MAX_PARAMS];
    struct chopin__arena *arena;
    struct chopin__engine *engine;
    struct chopin__conn *conn;
    uint32_t ndata; /* entries of data in use: set to 0 before the router runs */
    struct chopin__req_data data[CHOPIN_REQ_DATA_MAX];
};

enum chopin__res_body {
    CHOPIN__RES_UNSET = 0, /* handler did not answer: the server sends 500 */
    CHOPIN__RES_EMPTY,
    CHOPIN__RES_COPY,   /* body in the arena, copied into the output */
    CHOPIN__RES_STATIC, /* borrowed for the server's lifetime */
    CHOPIN__RES_OWNED,  /* free_fn(body, free_arg) after sending */
    CHOPIN__RES_FILE,   /* fd, offset, length; close_fd, else free_fn(NULL, free_arg) */
    CHOPIN__RES_STREAM, /* chunked from produce() */
};

struct chopin_res {
    int status;
    uint8_t body_kind;      /* enum chopin__res_body */
    uint8_t close;          /* send Connection: close and close afterwards */
    uint8_t close_fd;
    const char *content_type; /* NUL-terminated (static or arena), NULL for none */
    uint32_t content_type_len;
    const char *body;
    uint64_t body_len;
    chopin_free_fn free_fn;
    void *free_arg;
    int fd;
    uint64_t offset;
    chopin_produce_fn produce;
    void (*stream_done)(void *state);
    void *stream_state;
    char *headers; /* extra header lines "Name: value\r\n", in the arena */
    uint32_t headers_len;
    uint32_t headers_cap;
    struct chopin_json *json; /* the JSON writer in use, in the arena */
    struct chopin__arena *arena;
    /* Compression (issue 15): runs once on the final answer, just before it is serialized
     * (deferred answers too), to rewrite it; set by a middleware, NULL: none. */
    void (*finalize)(struct chopin_req *req, struct chopin_res *res, void *arg);
    void *finalize_arg;
    /* Trailer fields (issue 20): "Name: value\r\n" lines in the arena, sent after the body
     * where the protocol can carry them (chopin_res_trailer). */
    char *trailers;
    uint32_t trailers_len;
};

#endif
