/* SPDX-License-Identifier: MIT */
/*
 * Incremental, in-place decoder for chunked request bodies (RFC 9112 §7.1). Correct at any
 * split point: call it again with more bytes appended to the same buffer.
 */
#ifndef CHOPIN_HTTP_CHUNKED_H
#define CHOPIN_HTTP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

struct chopin__chunked {
    uint64_t remaining; /* payload bytes left in the current chunk */
    uint64_t total;     /* decoded bytes so far */
    uint32_t line_len;  /* bytes of the current size/trailer line seen (bounded) */
    uint8_t state;
    uint8_t digits;
};

/** Start state. */
void chopin__chunked_init(struct chopin__chunked *c);

/**
 * Decodes buf[*in..len): chunk payload is moved down to buf[*out..] (so *out <= *in
 * always) and both offsets advance. Chunk extensions are skipped, trailers consumed and
 * dropped.
 *
 * Returns 1 when the last chunk and the trailer section are consumed (*in is then just
 * past the final CRLF: bytes after it belong to the next request), 0 when more input is
 * needed, -400 for malformed framing (bad size, overflow, missing CRLF, bare CR/LF, a
 * malformed extension or trailer field, a size line or the whole trailer section longer
 * than 4 KiB), -413 when the decoded total would exceed `max_body` (decided from the
 * chunk size, before its data arrives). After 1 or an error, further calls return the
 * same value and consume nothing.
 */
int chopin__chunked_decode(struct chopin__chunked *c, char *buf, size_t len, size_t *in,
                           size_t *out, uint64_t max_body);

#endif
