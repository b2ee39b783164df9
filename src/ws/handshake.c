/* SPDX-License-Identifier: MIT */
#include "ws/handshake.h"

#include <string.h>
#include <strings.h>

#include "http/base64.h"
#include "ws/sha1.h"

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int is_ows(char ch) { return ch == ' ' || ch == '\t'; }

static int name_is(chopin_str name, const char *want) {
    size_t n = strlen(want);
    return name.len == n && strncasecmp(name.ptr, want, n) == 0;
}

/* Walks the comma-separated elements of a list (RFC 9110 §5.6.1), empty ones skipped:
 * *pos starts at 0; returns 1 with the next element trimmed of whitespace, 0 at the end. */
static int list_next(chopin_str list, size_t *pos, chopin_str *elem) {
    size_t i = *pos;
    while (i < list.len) {
        while (i < list.len && (is_ows(list.ptr[i]) || list.ptr[i] == ','))
            i++;
        size_t start = i;
        while (i < list.len && list.ptr[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_ows(list.ptr[end - 1]))
            end--;
        if (end > start) {
            *pos = i;
            *elem = (chopin_str){list.ptr + start, end - start};
            return 1;
        }
    }
    *pos = i;
    return 0;
}

int chopin__ws_token_in(chopin_str value, const char *token) {
    size_t pos = 0, n = strlen(token);
    chopin_str e;
    while (list_next(value, &pos, &e))
        if (e.len == n && strncasecmp(e.ptr, token, n) == 0)
            return 1;
    return 0;
}

int chopin__ws_list_has(const chopin_str *lines, size_t n, const char *token, size_t len) {
    for (size_t i = 0; i < n; i++) {
        size_t pos = 0;
        chopin_str e;
        while (list_next(lines[i], &pos, &e))
            if (e.len == len && memcmp(e.ptr, token, len) == 0)
                return 1;
    }
    return 0;
}

/* RFC 6455 §4.1: the key is a base64-encoded 16-byte value: 22 characters and "==" (the
 * last character carries only 2 bits: one of A, Q, g, w). */
static int key_valid(chopin_str k) {
    uint8_t raw[18];
    return k.len == 24 &&
           chopin__base64_decode(k.ptr, k.len, raw, sizeof raw, CHOPIN__B64_PADDED) == 16 &&
           strchr("AQgw", k.ptr[21]) != NULL;
}

/* Stores one more line of a repeatable header; 0 when there are too many. */
static int keep_line(chopin_str *lines, size_t *n, chopin_str v) {
    if (*n == CHOPIN__WS_MAX_LINES)
        return 0;
    lines[(*n)++] = v;
    return 1;
}

int chopin__ws_handshake_check(chopin_str method, int http_minor, const chopin_str *names,
                               const chopin_str *values, size_t n,
                               struct chopin__ws_offer *offer) {
    memset(offer, 0, sizeof *offer);
    int upgrade = 0, connection = 0, versions = 0, version13 = 0, keys = 0, too_many = 0;
    for (size_t i = 0; i < n; i++) {
        chopin_str v = values[i];
        if (name_is(names[i], "upgrade")) {
            upgrade |= chopin__ws_token_in(v, "websocket");
        } else if (name_is(names[i], "connection")) {
            connection |= chopin__ws_token_in(v, "upgrade");
        } else if (name_is(names[i], "sec-websocket-version")) {
            versions++;
            version13 = v.len == 2 && memcmp(v.ptr, "13", 2) == 0;
        } else if (name_is(names[i], "sec-websocket-key")) {
            keys++;
            offer->key = v;
        } else if (name_is(names[i], "origin")) {
            offer->origin = v;
        } else if (name_is(names[i], "sec-websocket-protocol")) {
            too_many |= !keep_line(offer->protocols, &offer->nprotocols, v);
        } else if (name_is(names[i], "sec-websocket-extensions")) {
            too_many |= !keep_line(offer->extensions, &offer->nextensions, v);
        }
    }
    if (!upgrade || !connection)
        return 426;
    if (versions > 1 || keys != 1 || too_many || !key_valid(offer->key))
        return 400;
    if (method.len != 3 || memcmp(method.ptr, "GET", 3) != 0 || http_minor < 1)
        return 400;
    if (!version13)
        return 426;
    return 0;
}

void chopin__ws_accept_key(chopin_str key, char out[29]) {
    char buf[64 + sizeof GUID];
    size_t klen = key.len < 64 ? key.len : 64;
    memcpy(buf, key.ptr, klen);
    memcpy(buf + klen, GUID, sizeof GUID - 1);
    uint8_t digest[20];
    chopin__sha1(buf, klen + sizeof GUID - 1, digest);
    chopin__base64_encode(digest, sizeof digest, out);
}
