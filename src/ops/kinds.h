/* SPDX-License-Identifier: MIT */
/* What the per-worker counters keep for the metrics (engine.h): the kinds of timeouts and
 * refusals, in the order the metrics name them (api/metrics.c), answers by method and
 * status class, and the latency histograms. */
#ifndef CHOPIN_OPS_KINDS_H
#define CHOPIN_OPS_KINDS_H

#include <stdint.h>

#include "chopin.h"

enum chopin__timeout_kind {
    CHOPIN__TIMEOUT_HEADER = 0, /* the request head did not arrive in time: 408 */
    CHOPIN__TIMEOUT_BODY,       /* nor its body: 408 */
    CHOPIN__TIMEOUT_WRITE,      /* the peer stopped reading: closed */
    CHOPIN__TIMEOUT_KEEPALIVE,  /* idle keep-alive connection closed */
    CHOPIN__TIMEOUT_HANDLER,    /* a deferred exchange not finished in time: 504 */
    CHOPIN__TIMEOUT_KINDS
};

/* Requests refused before routing, by the status they were answered with. */
enum chopin__refused_kind {
    CHOPIN__REFUSED_BAD_REQUEST = 0, /* 400: malformed */
    CHOPIN__REFUSED_BODY_TOO_LARGE,  /* 413 */
    CHOPIN__REFUSED_URI_TOO_LONG,    /* 414 */
    CHOPIN__REFUSED_HEADERS_TOO_LARGE, /* 431 */
    CHOPIN__REFUSED_NOT_IMPLEMENTED, /* 501: a transfer coding we do not know */
    CHOPIN__REFUSED_VERSION,         /* 505 */
    CHOPIN__REFUSED_OTHER,
    CHOPIN__REFUSED_KINDS
};

/* Latency buckets, log-linear: 1, 2.5, 5 and 7.5 times each power of ten from 10 µs to
 * 1 s, then 10 s (upper bounds, in ns; ops/observe.c); the last bucket is +Inf. */
#define CHOPIN__HIST_BOUNDS 25

struct chopin__hist {
    uint64_t bucket[CHOPIN__HIST_BOUNDS + 1]; /* not cumulative; [BOUNDS]: above the last */
    uint64_t sum_ns;
};

/* Status classes 1xx..5xx; method CHOPIN_METHOD_COUNT: refused before routing (no method). */
#define CHOPIN__CLASSES 5
#define CHOPIN__METHOD_NONE CHOPIN_METHOD_COUNT

/* Kept in the engine, not with the observer: the metrics route reads them from other
 * workers, and the engine lives as long as the server, while the observer does not. */
struct chopin__metrics {
    uint64_t answers[CHOPIN_METHOD_COUNT + 1][CHOPIN__CLASSES];
    struct chopin__hist handler; /* dispatch to the answer queued (a deferral included) */
    struct chopin__hist ttlb;    /* dispatch to the answer's last byte taken by the kernel */
};

#endif
