/* SPDX-License-Identifier: MIT */
/*
 * The opening handshake of a WebSocket (RFC 6455 §4.2): what a client's upgrade request
 * must hold, and the server's Sec-WebSocket-Accept. Pure functions over the request's
 * header lines; the API (src/api/ws.c) builds the answer.
 */
#ifndef CHOPIN_WS_HANDSHAKE_H
#define CHOPIN_WS_HANDSHAKE_H

#include <stddef.h>

#include "chopin.h"

/* Header lines a request may repeat that the handshake reads all of. More are refused
 * (400): no client sends more than a few. */
#define CHOPIN__WS_MAX_LINES 8

/** What the handshake takes from a request's headers. */
struct chopin__ws_offer {
    chopin_str key;     /* Sec-WebSocket-Key, checked: 24 base64 characters (16 bytes) */
    chopin_str origin;  /* Origin (ptr NULL when absent) */
    chopin_str protocols[CHOPIN__WS_MAX_LINES];  /* Sec-WebSocket-Protocol lines */
    chopin_str extensions[CHOPIN__WS_MAX_LINES]; /* Sec-WebSocket-Extensions lines */
    size_t nprotocols, nextensions;
};

/**
 * Checks an upgrade request: `names[i]: values[i]` are its `n` header lines. Returns 0
 * with *offer filled; 426 when it does not ask for a WebSocket of version 13 (no
 * "websocket" token in Upgrade, no "upgrade" token in Connection, or another
 * Sec-WebSocket-Version: the answer then names version 13, RFC 6455 §4.2.2 and §4.4);
 * 400 when it asks but is malformed (not GET, not HTTP/1.1 or later, a missing, repeated
 * or malformed key, a repeated version, too many protocol or extension lines).
 */
int chopin__ws_handshake_check(chopin_str method, int http_minor, const chopin_str *names,
                               const chopin_str *values, size_t n,
                               struct chopin__ws_offer *offer);

/** Writes the 28 characters of Sec-WebSocket-Accept for `key` (RFC 6455 §4.2.2 step 5.4:
 *  base64 of SHA-1 of the key and the protocol's GUID) and a NUL: `out` holds 29 bytes. */
void chopin__ws_accept_key(chopin_str key, char out[29]);

/** Nonzero when the comma-separated token lists `lines` hold `token` (exact compare:
 *  subprotocol names are case-sensitive, RFC 6455 §4.1). */
int chopin__ws_list_has(const chopin_str *lines, size_t n, const char *token, size_t len);

/** Nonzero when the comma-separated list `value` holds `token`, compared
 *  case-insensitively (Connection, Upgrade). */
int chopin__ws_token_in(chopin_str value, const char *token);

#endif
