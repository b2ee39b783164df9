/* SPDX-License-Identifier: MIT */
/*
 * Byte classes of the HTTP grammar, in one place for the request parser, the chunked
 * decoder, the URL decoder and the API's validation of what a handler hands us.
 *
 * The table is defined static in this header rather than once in a .c file: every user
 * keeps a RIP-relative load into its own copy, with no GOT indirection under -fPIC, and
 * the compiler can fold the class masks in. 256 bytes per translation unit that uses it.
 */
#ifndef CHOPIN_HTTP_CHARS_H
#define CHOPIN_HTTP_CHARS_H

#include <stddef.h>
#include <stdint.h>

/* Class bits; one byte may have several. */
enum {
    CHOPIN__C_TCHAR = 1,   /* RFC 9110 §5.6.2 token character */
    CHOPIN__C_VALUE = 2,   /* RFC 9110 §5.5 field-value byte: HTAB, SP, VCHAR, obs-text */
    CHOPIN__C_TARGET = 4,  /* request-target byte other than '?': 0x21-0x7e minus '?' and
                              '#' (a fragment is never sent, RFC 9112 §3.2), 0x80-0xff
                              (checked loosely, as origin servers may) */
    CHOPIN__C_QUERY = 8,   /* '?' (a target byte too, once the query has started) */
    CHOPIN__C_OWS = 16,    /* RFC 9110 §5.6.3 optional whitespace: SP, HTAB */
    CHOPIN__C_QDTEXT = 32, /* RFC 9110 §5.6.4 qdtext: field-value bytes but '"' and '\' */
};

#define CHOPIN__C_TVXQ_ (CHOPIN__C_TCHAR | CHOPIN__C_VALUE | CHOPIN__C_TARGET | CHOPIN__C_QDTEXT)
#define CHOPIN__C_VXQ_ (CHOPIN__C_VALUE | CHOPIN__C_TARGET | CHOPIN__C_QDTEXT)
#define CHOPIN__C_WS_ (CHOPIN__C_VALUE | CHOPIN__C_OWS | CHOPIN__C_QDTEXT)

/* Ranges do not overlap, so -Woverride-init stays quiet. */
static const uint8_t chopin__chars[256] = {
    [0x09] = CHOPIN__C_WS_,
    [0x20] = CHOPIN__C_WS_,
    [0x21] = CHOPIN__C_TVXQ_,                      /* ! */
    [0x22] = CHOPIN__C_VALUE | CHOPIN__C_TARGET,    /* " */
    [0x23] = CHOPIN__C_TCHAR | CHOPIN__C_VALUE | CHOPIN__C_QDTEXT, /* # */
    [0x24 ... 0x27] = CHOPIN__C_TVXQ_,             /* $ % & ' */
    [0x28 ... 0x29] = CHOPIN__C_VXQ_,              /* ( ) */
    [0x2a ... 0x2b] = CHOPIN__C_TVXQ_,             /* * + */
    [0x2c] = CHOPIN__C_VXQ_,                       /* , */
    [0x2d ... 0x2e] = CHOPIN__C_TVXQ_,             /* - . */
    [0x2f] = CHOPIN__C_VXQ_,                       /* / */
    [0x30 ... 0x39] = CHOPIN__C_TVXQ_,             /* digits */
    [0x3a ... 0x3e] = CHOPIN__C_VXQ_,              /* : ; < = > */
    [0x3f] = CHOPIN__C_VALUE | CHOPIN__C_QUERY | CHOPIN__C_QDTEXT, /* ? */
    [0x40] = CHOPIN__C_VXQ_,                       /* @ */
    [0x41 ... 0x5a] = CHOPIN__C_TVXQ_,             /* A-Z */
    [0x5b] = CHOPIN__C_VXQ_,                       /* [ */
    [0x5c] = CHOPIN__C_VALUE | CHOPIN__C_TARGET,    /* \ */
    [0x5d] = CHOPIN__C_VXQ_,                       /* ] */
    [0x5e ... 0x60] = CHOPIN__C_TVXQ_,             /* ^ _ ` */
    [0x61 ... 0x7a] = CHOPIN__C_TVXQ_,             /* a-z */
    [0x7b] = CHOPIN__C_VXQ_,                       /* { */
    [0x7c] = CHOPIN__C_TVXQ_,                      /* | */
    [0x7d] = CHOPIN__C_VXQ_,                       /* } */
    [0x7e] = CHOPIN__C_TVXQ_,                      /* ~ */
    [0x80 ... 0xff] = CHOPIN__C_VXQ_,              /* obs-text */
};

#undef CHOPIN__C_TVXQ_
#undef CHOPIN__C_VXQ_
#undef CHOPIN__C_WS_

static inline int chopin__is_tchar(unsigned char c) { return chopin__chars[c] & CHOPIN__C_TCHAR; }

/** A field-value byte (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text. */
static inline int chopin__is_field_byte(unsigned char c)
{
    return chopin__chars[c] & CHOPIN__C_VALUE;
}

static inline int chopin__is_ows(unsigned char c) { return chopin__chars[c] & CHOPIN__C_OWS; }

/** A byte of a quoted-string between its quotes, escapes aside (RFC 9110 §5.6.4). */
static inline int chopin__is_qdtext(unsigned char c)
{
    return chopin__chars[c] & CHOPIN__C_QDTEXT;
}

/** Nonzero when s[0..len) is a token: one or more tchars. */
static inline int chopin__is_token(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!chopin__is_tchar((unsigned char)s[i])) return 0;
    return len > 0;
}

/** Value of a hex digit (either case), or -1. */
static inline int chopin__hex_value(unsigned char c)
{
    if ((unsigned)(c - '0') < 10u) return c - '0';
    c |= 0x20; /* ASCII letters to lower case; no other byte lands on 'a'-'f' */
    if ((unsigned)(c - 'a') < 6u) return c - 'a' + 10;
    return -1;
}

/** ASCII lower case; every other byte is itself (no locale). */
static inline unsigned char chopin__ascii_lower(unsigned char c)
{
    return (unsigned)(c - 'A') < 26u ? (unsigned char)(c | 0x20) : c;
}

#endif
