/* SPDX-License-Identifier: MIT */
/*
 * Conditional requests (RFC 9110 §13): the validators' comparisons and the order in which
 * a server evaluates the preconditions (§13.2.2), as pure functions over the field values.
 */
#ifndef CHOPIN_HTTP_CONDITIONAL_H
#define CHOPIN_HTTP_CONDITIONAL_H

#include <stddef.h>
#include <stdint.h>

#include "chopin.h"

/**
 * Parses an HTTP-date (§5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms a
 * recipient must also accept. Returns 0 with seconds since the epoch in *out, or -1.
 * A two-digit RFC 850 year more than 50 years in the future (from `now`) is in the past
 * century, as §5.6.7 asks.
 */
int chopin__http_date_parse(const char *s, size_t len, int64_t now, int64_t *out);

/**
 * Whether the entity-tag list s[0..len) (If-Match, If-None-Match: "*" or 1#entity-tag)
 * holds a tag that matches `etag` (the quoted opaque-tag, no "W/"). Strong comparison
 * (`weak` 0): a weak tag in the list never matches; weak comparison: "W/" is ignored.
 * "*" matches any current representation. A list that does not parse matches nothing.
 */
int chopin__etag_list_match(const char *s, size_t len, const char *etag, size_t etag_len,
                            int weak);

/** The precondition fields of a request; ptr NULL when absent (several lines of a list
 *  field are joined with ", " by the caller, as §5.3 allows). */
struct chopin__cond_fields {
    chopin_str if_match, if_none_match, if_modified_since, if_unmodified_since, if_range;
};

/** The selected representation's validators: a strong ETag (quoted) and its mtime. */
struct chopin__validators {
    const char *etag;
    size_t etag_len;
    int64_t last_modified;
};

enum chopin__cond_result {
    CHOPIN__COND_PROCEED = 0,   /* answer normally */
    CHOPIN__COND_NOT_MODIFIED,  /* 304 (GET and HEAD only) */
    CHOPIN__COND_FAILED,        /* 412 Precondition Failed */
};

/**
 * Evaluates the preconditions in the order of RFC 9110 §13.2.2 (steps 1 to 4; step 5,
 * If-Range, is chopin__if_range_holds). `get_or_head`: the method is GET or HEAD (a failed
 * If-None-Match is 304 for them, 412 for others; If-Modified-Since applies only to them).
 * `now` is for RFC 850 dates (chopin__http_date_parse). Invalid dates are ignored.
 */
enum chopin__cond_result chopin__cond_eval(const struct chopin__cond_fields *f, int get_or_head,
                                           const struct chopin__validators *v, int64_t now);

/**
 * If-Range (§13.1.5): nonzero when the range request may be honoured, zero when the whole
 * representation must be sent. An entity-tag must match strongly (a weak one never does);
 * an HTTP-date must equal Last-Modified exactly. Absent (ptr NULL): honoured.
 */
int chopin__if_range_holds(chopin_str if_range, const struct chopin__validators *v, int64_t now);

#endif
