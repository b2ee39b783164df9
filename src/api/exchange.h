/* SPDX-License-Identifier: MIT */
/*
 * What the connection needs from the application API to run one exchange: reset a
 * response, tell whether a JSON writer was left open, release what a response owns.
 * Declared here, beside their definitions in api/, so http/ does not declare api/'s
 * functions.
 */
#ifndef CHOPIN_API_EXCHANGE_H
#define CHOPIN_API_EXCHANGE_H

#include "http/message.h"

struct chopin__arena;

/** Resets `res` for a new request, using `arena` for its scratch. */
void chopin__res_init(struct chopin_res *res, struct chopin__arena *arena);
/** Nonzero when a JSON writer was started on `res` and never ended: its body is not
 *  a document, and the connection answers 500 instead. */
int chopin__json_unfinished(const struct chopin_res *res);
/** Releases what a response owns when it will never be sent (owned body, fd, stream). */
void chopin__res_discard(struct chopin_res *res);
/** Runs the response's finalize hook (compression, issue 15), if one was set, once: the
 *  answer is complete and about to be serialized. */
void chopin__res_finalize(struct chopin_req *req, struct chopin_res *res);

#endif
