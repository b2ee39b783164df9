/* SPDX-License-Identifier: MIT */
/*
 * What a worker observes of its answers (issue 19): the access log and the metrics that
 * cost something per request (answers by method and status class, latency histograms).
 * The connection calls in at the one place every answer passes, whatever produced it
 * (a handler, a deferred exchange, a refusal before routing): chopin__observe_answer.
 * Nothing here exists unless it is wanted (engine->obs is NULL otherwise), so the plain
 * path pays one predictable branch.
 *
 * The counts (engine->metrics, ops/kinds.h) are written by their worker only, with
 * chopin__count (a relaxed store), and read by the metrics route on any worker: no lock,
 * no atomic read-modify-write.
 */
#ifndef CHOPIN_OPS_OBSERVE_H
#define CHOPIN_OPS_OBSERVE_H

#include <stddef.h>
#include <stdint.h>

#include "chopin.h"
#include "ops/kinds.h"

struct chopin__engine;
struct chopin__conn;
struct chopin__config;

extern const uint64_t chopin__hist_bounds_ns[CHOPIN__HIST_BOUNDS];

struct chopin__obs_slot; /* per connection slot: ops/observe.c */
struct chopin__access;   /* the worker's access log buffer: ops/access.c */

struct chopin__observer {
    int timing;                  /* the histograms are wanted (chopin_metrics_route) */
    uint32_t nslots;
    struct chopin__obs_slot *slots; /* timing only: one per connection slot */
    struct chopin__access *access;  /* NULL when the access log is off */
};

/** Creates e->obs when the access log (cfg->access_fd) or the metrics (`timing`) are
 *  wanted; leaves it NULL otherwise. 0 or -ENOMEM. */
int chopin__observer_init(struct chopin__engine *e, int timing);
/** Writes what the access log still holds and frees e->obs. */
void chopin__observer_destroy(struct chopin__engine *e);

/** A monotonic clock in ns, or 0 when the histograms are off: the start of a dispatch. */
uint64_t chopin__observe_start(const struct chopin__engine *e);
/** An answer was queued on `c` for `req` (method "" when refused before routing),
 *  `started_ns` from chopin__observe_start (0: none, a refusal), over `protocol` for the
 *  log (8 bytes, "HTTP/2.0"; NULL: HTTP/1.x from the request). */
void chopin__observe_answer(struct chopin__engine *e, struct chopin__conn *c,
                            const chopin_req *req, const chopin_res *res, uint64_t started_ns,
                            const char *protocol);
/** Everything queued on `c` has been sent (its last answers' last bytes). */
void chopin__observe_sent_all(struct chopin__engine *e, struct chopin__conn *c);
/** Once per loop turn: publishes the idle gauge (counters.idle from engine->idle_count),
 *  writes the access log's lines when enough have gathered or the oldest has waited long
 *  enough. */
void chopin__observe_turn(struct chopin__engine *e);

/* ----- the access log (ops/access.c) ----- */

/** Opens cfg->access_path into cfg->access_fd (stderr for "-"; nothing when off). 0 or
 *  the open's error, after printing it. */
int chopin__access_open(struct chopin__config *cfg);
/** Reopens the file onto the same descriptor (async-signal-safe). 0 or -errno. */
int chopin__access_reopen(const struct chopin__config *cfg);
/** Closes what chopin__access_open opened. */
void chopin__access_close(struct chopin__config *cfg);

struct chopin__access *chopin__access_new(int fd, uint32_t format, uint32_t nslots);
/** Formats one line into the buffer (written now only when the buffer is full). */
void chopin__access_line(struct chopin__engine *e, struct chopin__access *a,
                         struct chopin__conn *c, const chopin_req *req, const chopin_res *res,
                         uint64_t duration_ns, const char *protocol);
/** Writes the buffer if it is due (`force`: whatever it holds). */
void chopin__access_flush(struct chopin__access *a, uint64_t now_ms, int force);
void chopin__access_free(struct chopin__access *a);

/* Keys of chopin_req_set_data the middleware fills and the access log reads. */
extern const char chopin__request_id_key;
extern const char chopin__user_key;

#endif
