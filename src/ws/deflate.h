/* SPDX-License-Identifier: MIT */
/*
 * permessage-deflate (RFC 7692): the negotiation of its parameters, and the compression
 * and decompression of messages with zlib. Built only when zlib is (CHOPIN_WS_DEFLATE, from
 * the Makefile's pkg-config check); without it no offer is ever accepted.
 *
 * Memory per connection is bounded by the window sizes: the server compresses with
 * 2^server_bits windows and zlib memLevel CHOPIN__WS_MEM_LEVEL (deflate state: 2^(bits+2)
 * + 2^(memLevel+9) bytes), and inflates the client's messages with a 2^client_bits window
 * (plus about 7 KiB of zlib's own). Without context takeover the state is freed after
 * every message, so an idle connection holds none.
 */
#ifndef CHOPIN_WS_DEFLATE_H
#define CHOPIN_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "chopin.h"

#define CHOPIN__WS_MEM_LEVEL 5

/** The parameters in force, as agreed with the client. */
struct chopin__ws_pmd {
    uint8_t server_bits;        /* window we compress with (8..15; zlib takes 9 for 8) */
    uint8_t client_bits;        /* window the client compresses with (8..15) */
    uint8_t server_no_takeover; /* we reset our compressor after each message */
    uint8_t client_no_takeover; /* the client resets its own: so do we our inflater */
};

/** Nonzero when this build has permessage-deflate (zlib). */
int chopin__ws_pmd_available(void);

/**
 * Picks the first acceptable permessage-deflate offer among the Sec-WebSocket-Extensions
 * lines (RFC 7692 §5, §7.1): parameters known, each at most once, values in range. Our
 * windows are at most 2^max_bits (8..15): a client that lets us limit its window
 * (client_max_window_bits) is told max_bits; one that does not is inflated with the full
 * window it may use (15). Returns 1 with *out set and the response's extension line (NUL-
 * terminated) in resp[0..cap); 0 when no offer is acceptable (or none was made, or the
 * build has no zlib, or `cap` is too small): the connection then runs without it.
 */
int chopin__ws_pmd_negotiate(const chopin_str *lines, size_t n, unsigned max_bits,
                             struct chopin__ws_pmd *out, char *resp, size_t cap);

struct chopin__ws_zin;
struct chopin__ws_zout;

/** A growable buffer the inflater writes a message into (the reader's reassembly). */
struct chopin__ws_buf {
    char *ptr;
    size_t len, cap;
};

/** Grows b to hold at least `need` bytes (doubling), never beyond `max`. 0, -ENOMEM, or
 *  -EFBIG when `need` is beyond `max`. */
int chopin__ws_buf_reserve(struct chopin__ws_buf *b, size_t need, size_t max);

/**
 * Inflates `n` bytes of a compressed message's payload into b (appended), at most `max`
 * bytes in all; `last` adds the 0x00 0x00 0xff 0xff tail the sender removed (RFC 7692
 * §7.2.2) after them, ending the message. *z is created at the first call (NULL: none
 * yet) and freed at the end of a message when the client resets its context. Returns 0,
 * -1009 past `max` (a zip bomb stops there: at most `max` bytes are ever produced),
 * -1007 for data zlib refuses, -1011 when out of memory.
 */
int chopin__ws_inflate(struct chopin__ws_zin **z, const struct chopin__ws_pmd *p,
                       const void *in, size_t n, int last, struct chopin__ws_buf *b,
                       size_t max);

/**
 * Compresses one whole message: out receives the payload to send in a frame with RSV1
 * (the trailing 0x00 0x00 0xff 0xff removed), replacing what it held. *z is created at
 * the first call and freed after it when we reset our context. Returns 0, -ENOMEM.
 */
int chopin__ws_deflate(struct chopin__ws_zout **z, const struct chopin__ws_pmd *p,
                       const void *in, size_t n, struct chopin__ws_buf *out);

/** Frees the compressor and inflater (either may be NULL). */
void chopin__ws_zin_free(struct chopin__ws_zin *z);
void chopin__ws_zout_free(struct chopin__ws_zout *z);

#endif
