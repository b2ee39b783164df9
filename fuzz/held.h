/* SPDX-License-Identifier: MIT */
/*
 * The deferred exchanges a connection fuzz harness holds (its route `later` defers), oldest
 * first, so that the harness finishes them between reads, in its own words. A harness may
 * define HELD_MAX before including this.
 */
#ifndef CHOPIN_FUZZ_HELD_H
#define CHOPIN_FUZZ_HELD_H

#include <string.h>

#include "chopin.h"

#ifndef HELD_MAX
#define HELD_MAX 64
#endif

static chopin_exchange held[HELD_MAX];
static int nheld;

static void later(chopin_req *req, chopin_res *res, void *data) {
    chopin_exchange x;
    if (nheld < HELD_MAX && chopin_defer(req, res, &x) == 0)
        held[nheld++] = x;
}

/* Takes the oldest held exchange into *x: its request, or NULL when there is none or it
 * has already ended. */
static chopin_req *take_oldest(chopin_exchange *x) {
    if (nheld == 0)
        return NULL;
    *x = held[0];
    memmove(held, held + 1, (size_t)--nheld * sizeof held[0]);
    return chopin_exchange_req(*x);
}

#endif
