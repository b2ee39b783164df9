/* SPDX-License-Identifier: MIT */
/*
 * The cached HTTP Date header (RFC 9110 §5.6.7 IMF-fixdate). Each worker owns one cache
 * and refreshes it from its loop at most once a second; responses copy the bytes.
 */
#ifndef CHOPIN_HTTP_DATE_H
#define CHOPIN_HTTP_DATE_H

#include <stdint.h>
#include <time.h>

#define CHOPIN__DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

struct chopin__date {
    time_t second;                    /* the second the text shows */
    char text[CHOPIN__DATE_LEN + 3];  /* NUL-terminated */
};

/** Formats `t` into `out` (CHOPIN__DATE_LEN bytes + NUL), independent of locale and
 *  timezone, with no lock. Times outside years 0000..9999 are clamped to them. */
void chopin__date_format(time_t t, char out[CHOPIN__DATE_LEN + 1]);
/** Reformats only when `now` is a different second than the cached one; returns 1 if it
 *  did. A zeroed struct is a valid empty cache (the first call always formats). */
int chopin__date_update(struct chopin__date *d, time_t now);

#endif
