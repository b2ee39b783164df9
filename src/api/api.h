/* SPDX-License-Identifier: MIT */
/* Helpers shared by the response, JSON and MIME parts of the application API. */
#ifndef CHOPIN_API_API_H
#define CHOPIN_API_API_H

#include <stddef.h>

#include "api/exchange.h"
#include "http/message.h"

/** Nonzero for a status a handler may answer with: 200..599. A 1xx is never final, and
 *  101 belongs to an upgrade, which no setter performs. */
int chopin__res_status_valid(int status);

/**
 * Releases the current body (an owned one is freed, a file closed when the response owned
 * it, a stream's done() called, a JSON writer detached) and sets status, kind and content
 * type of `content_type_len` bytes (which must outlive the response: static or in the
 * arena; NULL for none). The caller then fills the body fields of `kind`.
 */
void chopin__res_replace_body(chopin_res *res, int status, enum chopin__res_body kind,
                              const char *content_type, size_t content_type_len);

/** Appends `len` bytes of complete header lines ("Name: value\r\n"...), which the caller
 *  has validated, to the response's extra headers. 0, -ENOSPC, or the arena's error. */
int chopin__res_header_lines(chopin_res *res, const char *lines, size_t len);

/** The Content-Type for a file name, from its extension (case-insensitive);
 *  "application/octet-stream" when unknown. */
const char *chopin__mime_type(const char *path);

/** The error for an arena allocation of `size` bytes that failed: -EFBIG when it is
 *  beyond what the request arena may still hold (its documented limit), else -ENOMEM. */
int chopin__arena_failure(const struct chopin__arena *a, size_t size);

#endif
