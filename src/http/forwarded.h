/* SPDX-License-Identifier: MIT */
/*
 * Forwarded (RFC 7239) and X-Forwarded-For / X-Forwarded-Proto: the hops a request passed
 * through, as the proxies on the way wrote them, client first. Pure parsers over a header
 * value; what they return borrows it. Whether to believe them is the caller's decision
 * (only what trusted proxies appended: api/forwarded.c).
 */
#ifndef CHOPIN_HTTP_FORWARDED_H
#define CHOPIN_HTTP_FORWARDED_H

#include <stddef.h>

/* Hops kept per request, at most: a longer chain is refused as a whole. */
#define CHOPIN__FWD_MAX 32

struct chopin__fwd_hop {
    const char *node;  /* for=: the address without brackets and port ("192.0.2.1",
                          "2001:db8::1"), or "unknown", or an obfuscated "_name"; NULL
                          when the element has no for= */
    size_t node_len;
    const char *proto; /* proto= ("https"), NULL when absent */
    size_t proto_len;
};

/**
 * Appends the elements of one Forwarded value to hops[*n..CHOPIN__FWD_MAX). Returns 0, or
 * -1 when the value is malformed (bad syntax, a quoted string with escapes in for= or
 * proto=, a parameter twice in an element, too many hops): the caller then believes none
 * of it.
 */
int chopin__forwarded_parse(const char *v, size_t len, struct chopin__fwd_hop *hops, int *n);

/** Appends the nodes of one X-Forwarded-For value ("192.0.2.1, 10.0.0.2:5000, [::1]").
 *  0, or -1 when malformed (an empty item, a space inside one, too many). */
int chopin__xff_parse(const char *v, size_t len, struct chopin__fwd_hop *hops, int *n);

#endif
