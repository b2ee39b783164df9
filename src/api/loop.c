/* SPDX-License-Identifier: MIT */
/* The worker's loop seen from a request (chopin.h, "The worker's loop"); the loop itself
 * is src/loop/loop.c. */
#include "chopin.h"
#include "engine.h"
#include "http/message.h"

chopin_worker *chopin_req_worker(const chopin_req *req) { return (chopin_worker *)req->engine; }

int chopin_worker_id(const chopin_worker *w) {
    return chopin__engine_worker_id((const struct chopin__engine *)w);
}
