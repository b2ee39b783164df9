/* SPDX-License-Identifier: MIT */
/*
 * A streaming multipart/form-data parser (RFC 7578 on RFC 2046 §5.1). Sans-I/O: bytes go
 * in as they arrive, in pieces of any size; each part's headers come out once whole, then
 * its data in pieces, so a file part never has to fit in memory. The only memory it holds
 * is one part's header block, in a buffer the caller gives.
 *
 * The delimiter is CRLF "--" boundary: a boundary counts only at the start of a line (the
 * CRLF before it belongs to the delimiter, not to the data), except the very first, which
 * may open the body. After a delimiter: "--" closes the body (what follows is epilogue),
 * else optional transport padding (SP, HTAB) and CRLF open a part's headers.
 */
#ifndef CHOPIN_HTTP_MULTIPART_H
#define CHOPIN_HTTP_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

/* RFC 2046 §5.1.1: a boundary is 1 to 70 characters. */
#define CHOPIN__MP_BOUNDARY_MAX 70

/* One part's headers, borrowed from the parser's header buffer for the duration of the
 * part callback. name, filename and content_type are NULL when absent; name and filename
 * are unquoted (quoted-pairs undone) and filename* (RFC 8187, UTF-8) is percent-decoded
 * and wins over filename. headers is the raw block, each line ending in CRLF. */
struct chopin__mp_part {
    const char *name, *filename, *content_type, *headers;
    size_t name_len, filename_len, content_type_len, headers_len;
};

/* Each returns 0 to go on, or a negative code, which stops the parser and is returned by
 * chopin__mp_feed (and again by every later call). */
struct chopin__mp_callbacks {
    int (*part)(void *arg, const struct chopin__mp_part *part);
    int (*data)(void *arg, const char *p, size_t n);
    int (*part_end)(void *arg);
};

struct chopin__multipart {
    struct chopin__mp_callbacks cb;
    void *arg;
    char *hbuf;          /* the current part's header block (caller's memory) */
    uint32_t hcap, hlen; /* its capacity (the part-header limit) and use */
    uint32_t parts, max_parts;
    int err;             /* sticky: the first error */
    uint8_t state;
    uint8_t matched;     /* delimiter bytes matched at the end of the last piece */
    uint8_t dlen;        /* 4 + the boundary's length */
    uint8_t in_part;     /* a part callback ran and its part_end has not */
    char delim[4 + CHOPIN__MP_BOUNDARY_MAX];
};

/**
 * Finds the boundary parameter of a Content-Type value ("multipart/form-data;
 * boundary=x", token or quoted-string, any parameter order). Returns 0 with *b, *blen
 * (borrowing `ct`, quotes removed; a quoted boundary holds no quoted-pair since no
 * bchar needs one), or -EINVAL: not multipart/form-data, no boundary, or one that is
 * not 1..70 bchars (RFC 2046 §5.1.1, the last not a space).
 */
int chopin__mp_boundary(const char *ct, size_t len, const char **b, size_t *blen);

/**
 * Starts a parser for `boundary` (checked as above: -EINVAL) with `hbuf[0..hcap)` for
 * part headers (a part whose header block is longer fails with -EFBIG) and at most
 * `max_parts` parts (more: -EFBIG). `cb` and `arg` are kept.
 */
int chopin__mp_init(struct chopin__multipart *mp, const char *boundary, size_t blen,
                    char *hbuf, uint32_t hcap, uint32_t max_parts,
                    const struct chopin__mp_callbacks *cb, void *arg);

/**
 * Parses p[0..n), which follows what earlier calls saw. Returns 0, -EINVAL for a
 * malformed body (a delimiter followed by anything but "--", padding and CRLF; a part
 * without Content-Disposition form-data or with a malformed or repeated parameter; a
 * header line that is not "name: value"), -EFBIG past a limit, or a callback's error.
 * Errors stick. Data pieces point into p or into the parser (the held start of what
 * looked like a delimiter): valid during the callback only.
 */
int chopin__mp_feed(struct chopin__multipart *mp, const char *p, size_t n);

/** The body ended: 0 when the closing delimiter was seen, else -EINVAL (or the sticky
 *  error). */
int chopin__mp_finish(const struct chopin__multipart *mp);

#endif
