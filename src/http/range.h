/* SPDX-License-Identifier: MIT */
/*
 * The Range request header (RFC 9110 §14.1.2, §14.2) for the "bytes" unit: a pure parser
 * that resolves every range against the representation's length, so the caller only
 * decides between 200, 206 and 416.
 */
#ifndef CHOPIN_HTTP_RANGE_H
#define CHOPIN_HTTP_RANGE_H

#include <stddef.h>
#include <stdint.h>

/** One satisfiable range, resolved: bytes first..last inclusive, last < the length. */
struct chopin__range {
    uint64_t first, last;
};

enum chopin__range_result {
    /* No usable Range: another unit, a syntax error, more than `max` satisfiable ranges,
     * or ranges that overlap (RFC 9110 §14.2 lets a server ignore those: many small or
     * overlapping ranges are a known amplification attack). Send the whole (200). */
    CHOPIN__RANGE_IGNORE = 0,
    CHOPIN__RANGE_OK,            /* *n >= 1 satisfiable ranges in out, in request order */
    CHOPIN__RANGE_UNSATISFIABLE, /* valid, but no range overlaps the content: 416 */
};

/**
 * Parses the Range field value s[0..len) for a representation of `size` bytes. Ranges
 * that start past the end are dropped (unsatisfiable); the others are clamped to the
 * end. Numbers too large for 64 bits saturate (a first-pos that large is past any end).
 * Writes at most `max` ranges into out and their count into *n.
 */
enum chopin__range_result chopin__range_parse(const char *s, size_t len, uint64_t size,
                                              struct chopin__range *out, size_t max,
                                              size_t *n);

#endif
