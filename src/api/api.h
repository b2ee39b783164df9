/* Helpers shared by the response, JSON and MIME parts of the application API. */
#ifndef CHOPIN_API_API_H
#define CHOPIN_API_API_H

#include "http/message.h"

/** Nonzero for a status a handler may answer with: 101 or 200..599. */
int chopin__res_status_valid(int status);

/**
 * Releases the current body (an owned one is freed, a file closed when the response owned
 * it, a stream's done() called, a JSON writer detached) and sets status, kind and content
 * type of `content_type_len` bytes (which must outlive the response: static or in the
 * arena). The caller then fills the body fields of `kind`.
 */
void chopin__res_replace_body(chopin_res *res, int status, enum chopin__res_body kind,
                              const char *content_type, size_t content_type_len);

/** The Content-Type for a file name, from its extension (case-insensitive);
 *  "application/octet-stream" when unknown. */
const char *chopin__mime_type(const char *path);

#endif
