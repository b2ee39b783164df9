/* SPDX-License-Identifier: MIT */
/*
 * chopin_jansson.h: optional, header-only glue between Chopin and jansson (Debian
 * libjansson-dev) for JSON request bodies, used by the examples. `make install` puts it
 * beside chopin.h; a program that includes it links -ljansson (the library does not).
 */
#ifndef CHOPIN_JANSSON_H
#define CHOPIN_JANSSON_H

#include <jansson.h>
#include <stdio.h>

#include "chopin.h"

/**
 * Parses the request body as JSON (RFC 8259: any top-level value). Duplicate object keys
 * and "\u0000" in strings are refused: both let two parsers disagree about one document.
 *
 * Returns a new reference the caller releases with json_decref(). On invalid JSON returns
 * NULL after setting `res` to 400 with the body
 * {"error":"invalid JSON: <jansson's message> at line L column C"}.
 * Thread-safe as jansson is (call it from the handler that owns req and res).
 */
static inline json_t *chopin_req_json_body(chopin_req *req, chopin_res *res)
{
    chopin_str body = chopin_req_body(req);
    json_error_t e;
    json_t *v = json_loadb(body.ptr ? body.ptr : "", body.len,
                           JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (v)
        return v;
    char msg[JSON_ERROR_TEXT_LENGTH + 64];
    snprintf(msg, sizeof(msg), "invalid JSON: %s at line %d column %d", e.text, e.line,
             e.column);
    chopin_json *j = chopin_res_json(res, 400);
    if (!j) { /* a JSON body was already started: fall back to plain text */
        chopin_res_error(res, 400, msg);
        return NULL;
    }
    chopin_json_obj_begin(j);
    chopin_json_key(j, "error");
    chopin_json_str(j, msg); /* escaped by the writer: the message quotes the input */
    chopin_json_obj_end(j);
    chopin_json_end(j);
    return NULL;
}

#endif
