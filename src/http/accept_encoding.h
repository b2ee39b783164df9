/* SPDX-License-Identifier: MIT */
/*
 * Accept-Encoding (RFC 9110 §12.5.3): a pure parser of the field and a negotiator that picks,
 * among the content codings the server can produce, the one the client prefers. Used by the
 * on-the-fly compression (src/api/compress.c) and by static files for precompressed siblings.
 *
 * Usage:
 *     struct chopin__accept_encoding ae;
 *     chopin__accept_encoding_init(&ae);
 *     for each Accept-Encoding field line: chopin__accept_encoding_add(&ae, value, len);
 *     static const uint8_t prefer[] = {CHOPIN__CODING_BR, CHOPIN__CODING_GZIP, CHOPIN__CODING_IDENTITY};
 *     enum chopin__coding c = chopin__accept_encoding_choose(&ae, prefer, 3);
 *
 * Nothing allocates; nothing reads outside [value, value + len).
 */
#ifndef CHOPIN_HTTP_ACCEPT_ENCODING_H
#define CHOPIN_HTTP_ACCEPT_ENCODING_H

#include <stddef.h>
#include <stdint.h>

/* The codings Chopin knows. CHOPIN__CODING_NONE is the negotiator's "nothing acceptable". */
enum chopin__coding {
    CHOPIN__CODING_NONE = 0,
    CHOPIN__CODING_IDENTITY,
    CHOPIN__CODING_GZIP, /* "gzip", and "x-gzip" (RFC 9110 §8.4.1.3) */
    CHOPIN__CODING_BR,
    CHOPIN__CODING_ZSTD,
    CHOPIN__CODING_COUNT_,
};

/* A qvalue in thousandths (RFC 9110 §12.4.2: at most three decimals), or "not listed". */
#define CHOPIN__Q_UNLISTED 0xffffu

struct chopin__accept_encoding {
    uint16_t q[CHOPIN__CODING_COUNT_]; /* per coding (index 0, NONE, unused) */
    uint16_t star;                     /* the q of "*" */
    uint8_t seen;                      /* a field line was added (even an empty one) */
};

/** An empty state: as if the request had no Accept-Encoding field. */
void chopin__accept_encoding_init(struct chopin__accept_encoding *ae);

/** Adds one field line's value (several lines are one comma-separated list, RFC 9110 §5.3).
 *  Malformed elements (a bad token, a qvalue out of the grammar, a parameter other than q)
 *  are ignored one by one; the rest of the list still counts. A coding listed twice keeps
 *  its highest q. Unknown codings are ignored (they cannot be chosen). */
void chopin__accept_encoding_add(struct chopin__accept_encoding *ae, const char *value, size_t len);

/** The coding to send: among `prefer` (the codings the server can send, best first; a coding
 *  not in it is never chosen), the one with the highest q above 0, ties going to the earlier
 *  in `prefer`. Identity is acceptable unless "identity;q=0", or "*;q=0" without identity
 *  listed; when the client did not list it, it ranks below every coding listed with q > 0.
 *  With no Accept-Encoding field at all, identity (if offered) is chosen: RFC 9110 allows any
 *  coding, but clients that send no field (curl, scripts) expect none. An empty field means
 *  identity only. Returns CHOPIN__CODING_NONE when nothing offered is acceptable (the caller
 *  may answer 406 or, as RFC 9110 §12.5.3 allows, send identity anyway). */
enum chopin__coding chopin__accept_encoding_choose(const struct chopin__accept_encoding *ae,
                                                   const uint8_t *prefer, size_t n);

/** One call for one field value (NULL: no field): init, add, choose. */
enum chopin__coding chopin__accept_encoding_pick(const char *value, size_t len, const uint8_t *prefer,
                                                 size_t n);

/** The coding's token as sent in Content-Encoding ("gzip", "br", "zstd"; "identity"), or NULL. */
const char *chopin__coding_name(enum chopin__coding c);

#endif
