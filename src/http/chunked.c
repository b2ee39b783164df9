/* SPDX-License-Identifier: MIT */
/*
 * Chunked transfer coding decoder (RFC 9112 §7.1), one byte of framing at a time and
 * memmove for the payload. The state lives in struct chopin__chunked, so the input may be
 * cut anywhere.
 *
 * Strictness is deliberate (request smuggling hides in lax framing): chunk extensions are
 * checked against the §7.1.1 grammar, not skipped; trailer lines must be field lines
 * (§7.1.2, no obs-fold); CR and LF only come as CRLF.
 */
#include "http/chunked.h"

#include <string.h>

#include "http/chars.h"

/* A size line, and the whole trailer section, may hold at most this many bytes (CRLFs
 * included): enough for any sane extension or trailer, small enough that a client cannot
 * keep us reading framing forever. */
#define LINE_MAX_BYTES 4096

enum {
    S_SIZE_FIRST,     /* first hex digit of a chunk-size */
    S_SIZE,           /* more hex digits, or what follows the size */
    S_EXT_SEMI,       /* BWS seen: only more BWS or ';' */
    S_EXT_NAME_WS,    /* after ';': BWS, then a token */
    S_EXT_NAME,       /* in chunk-ext-name */
    S_EXT_NAME_BWS,   /* BWS after the name: '=' or ';' or more BWS */
    S_EXT_VAL_WS,     /* after '=': BWS, then a token or a quoted-string */
    S_EXT_VAL,        /* in a token value */
    S_EXT_QSTR,       /* in a quoted-string value */
    S_EXT_QESC,       /* after a backslash in it */
    S_EXT_AFTER_QSTR, /* after the closing quote */
    S_SIZE_LF,        /* CR of the size line seen */
    S_DATA,
    S_DATA_CR,
    S_DATA_LF,
    S_TR_START,       /* start of a trailer line, or of the final CRLF */
    S_TR_NAME,
    S_TR_VALUE,
    S_TR_LF,
    S_END_LF,
    S_DONE,
    S_ERR_400,
    S_ERR_413,
};

void chopin__chunked_init(struct chopin__chunked *c)
{
    memset(c, 0, sizeof *c);
    c->state = S_SIZE_FIRST;
}

/* One byte of a size line (chunk-size, chunk-ext, CRLF). Returns the next state, or
 * S_ERR_400. */
static uint8_t size_line_byte(struct chopin__chunked *c, unsigned ch)
{
    int d;
    switch (c->state) {
    case S_SIZE_FIRST:
    case S_SIZE:
        d = chopin__hex_value(ch);
        if (d >= 0) {
            /* Leading zeros are free; 16 significant digits fill a uint64_t, so a
             * seventeenth is an overflow. */
            if (c->remaining || d) {
                if (c->digits == 16) return S_ERR_400;
                c->remaining = c->remaining << 4 | (uint64_t)d;
                c->digits++;
            }
            return S_SIZE;
        }
        if (c->state == S_SIZE_FIRST) return S_ERR_400;
        if (ch == ';') return S_EXT_NAME_WS;
        if (chopin__is_ows(ch)) return S_EXT_SEMI;
        return ch == '\r' ? S_SIZE_LF : S_ERR_400;
    case S_EXT_SEMI:
        if (chopin__is_ows(ch)) return S_EXT_SEMI;
        return ch == ';' ? S_EXT_NAME_WS : S_ERR_400;
    case S_EXT_NAME_WS:
        if (chopin__is_ows(ch)) return S_EXT_NAME_WS;
        return chopin__is_tchar(ch) ? S_EXT_NAME : S_ERR_400;
    case S_EXT_NAME:
        if (chopin__is_tchar(ch)) return S_EXT_NAME;
        if (ch == '=') return S_EXT_VAL_WS;
        if (ch == ';') return S_EXT_NAME_WS;
        if (chopin__is_ows(ch)) return S_EXT_NAME_BWS;
        return ch == '\r' ? S_SIZE_LF : S_ERR_400;
    case S_EXT_NAME_BWS:
        if (chopin__is_ows(ch)) return S_EXT_NAME_BWS;
        if (ch == '=') return S_EXT_VAL_WS;
        return ch == ';' ? S_EXT_NAME_WS : S_ERR_400;
    case S_EXT_VAL_WS:
        if (chopin__is_ows(ch)) return S_EXT_VAL_WS;
        if (ch == '"') return S_EXT_QSTR;
        return chopin__is_tchar(ch) ? S_EXT_VAL : S_ERR_400;
    case S_EXT_VAL:
        if (chopin__is_tchar(ch)) return S_EXT_VAL;
        __attribute__((fallthrough)); /* the same bytes may follow either value form */
    case S_EXT_AFTER_QSTR:
        if (ch == ';') return S_EXT_NAME_WS;
        if (chopin__is_ows(ch)) return S_EXT_SEMI;
        return ch == '\r' ? S_SIZE_LF : S_ERR_400;
    case S_EXT_QSTR:
        if (ch == '"') return S_EXT_AFTER_QSTR;
        if (ch == '\\') return S_EXT_QESC;
        return chopin__is_qdtext(ch) ? S_EXT_QSTR : S_ERR_400;
    case S_EXT_QESC:
        return chopin__is_field_byte(ch) ? S_EXT_QSTR : S_ERR_400;
    default:
        return S_ERR_400;
    }
}

/* One byte of the trailer section (RFC 9112 §7.1.2: field lines, then CRLF). */
static uint8_t trailer_byte(uint8_t state, unsigned ch)
{
    switch (state) {
    case S_TR_START:
        if (ch == '\r') return S_END_LF;
        /* a token start; SP/HTAB here would be obs-fold, ':' an empty name */
        return chopin__is_tchar(ch) ? S_TR_NAME : S_ERR_400;
    case S_TR_NAME:
        if (chopin__is_tchar(ch)) return S_TR_NAME;
        return ch == ':' ? S_TR_VALUE : S_ERR_400;
    case S_TR_VALUE:
        if (chopin__is_field_byte(ch)) return S_TR_VALUE;
        return ch == '\r' ? S_TR_LF : S_ERR_400;
    case S_TR_LF:
        return ch == '\n' ? S_TR_START : S_ERR_400;
    default:
        return S_ERR_400;
    }
}

int chopin__chunked_decode(struct chopin__chunked *c, char *buf, size_t len, size_t *in,
                           size_t *out, uint64_t max_body)
{
    size_t i = *in, o = *out;
    int ret = 0;

    while (ret == 0) {
        uint8_t st = c->state;
        if (st == S_DONE) {
            ret = 1;
            break;
        }
        if (st == S_ERR_400 || st == S_ERR_413) {
            ret = st == S_ERR_400 ? -400 : -413;
            break;
        }
        if (i == len) break;

        if (st == S_DATA) {
            size_t n = len - i;
            if ((uint64_t)n > c->remaining) n = (size_t)c->remaining;
            if (o != i) memmove(buf + o, buf + i, n);
            i += n;
            o += n;
            c->total += n;
            c->remaining -= n;
            if (c->remaining == 0) c->state = S_DATA_CR;
            continue;
        }

        unsigned ch = (uint8_t)buf[i++];
        switch (st) {
        case S_DATA_CR:
            c->state = ch == '\r' ? S_DATA_LF : S_ERR_400;
            break;
        case S_DATA_LF:
            if (ch != '\n') {
                c->state = S_ERR_400;
                break;
            }
            c->state = S_SIZE_FIRST;
            c->digits = 0;
            c->line_len = 0;
            break;
        case S_SIZE_LF:
            if (ch != '\n') {
                c->state = S_ERR_400;
            } else if (c->remaining == 0) {
                c->state = S_TR_START; /* last-chunk */
                c->line_len = 0;
            } else if (c->remaining > max_body - (c->total < max_body ? c->total : max_body)) {
                c->state = S_ERR_413;
            } else {
                c->state = S_DATA;
            }
            break;
        case S_END_LF:
            c->state = ch == '\n' ? S_DONE : S_ERR_400;
            break;
        case S_TR_START:
        case S_TR_NAME:
        case S_TR_VALUE:
        case S_TR_LF:
            c->state = ++c->line_len > LINE_MAX_BYTES ? S_ERR_400 : trailer_byte(st, ch);
            break;
        default:
            c->state = ++c->line_len > LINE_MAX_BYTES ? S_ERR_400 : size_line_byte(c, ch);
            break;
        }
    }
    *in = i;
    *out = o;
    return ret;
}
