/* SPDX-License-Identifier: MIT */
/*
 * Accept-Encoding = #( codings [ weight ] )          RFC 9110 §12.5.3
 * codings         = content-coding / "identity" / "*"
 * weight          = OWS ";" OWS "q=" qvalue          RFC 9110 §12.4.2
 * qvalue          = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
 *
 * Every element is parsed on its own between commas, so one malformed element costs only
 * itself. Tokens and "q" are case-insensitive (§8.4.1, §12.4.2). OWS around "=" is accepted
 * too: the grammar has none there, but refusing it would only lose a client's preference.
 */
#include "http/accept_encoding.h"

#include <string.h>

#include "http/chars.h"

static const char *const coding_names[CHOPIN__CODING_COUNT_] = {
    [CHOPIN__CODING_IDENTITY] = "identity",
    [CHOPIN__CODING_GZIP] = "gzip",
    [CHOPIN__CODING_BR] = "br",
    [CHOPIN__CODING_ZSTD] = "zstd",
};

/* What an element names: a known coding, "*" (STAR) or something we cannot send (IGNORED). */
enum { STAR = CHOPIN__CODING_COUNT_, IGNORED };

const char *chopin__coding_name(enum chopin__coding c)
{
    return c > CHOPIN__CODING_NONE && c < CHOPIN__CODING_COUNT_ ? coding_names[c] : NULL;
}

void chopin__accept_encoding_init(struct chopin__accept_encoding *ae)
{
    for (size_t i = 0; i < CHOPIN__CODING_COUNT_; i++)
        ae->q[i] = CHOPIN__Q_UNLISTED;
    ae->star = CHOPIN__Q_UNLISTED;
    ae->seen = 0;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int token_is(const char *p, size_t len, const char *name)
{
    if (strlen(name) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (lower((unsigned char)p[i]) != name[i])
            return 0;
    return 1;
}

static int coding_of_token(const char *p, size_t len)
{
    if (len == 1 && p[0] == '*')
        return STAR;
    if (token_is(p, len, "x-gzip"))
        return CHOPIN__CODING_GZIP;
    for (int c = CHOPIN__CODING_IDENTITY; c < CHOPIN__CODING_COUNT_; c++)
        if (token_is(p, len, coding_names[c]))
            return c;
    return IGNORED;
}

static size_t skip_ows(const char *p, size_t i, size_t end)
{
    while (i < end && (chopin__chars[(unsigned char)p[i]] & CHOPIN__C_OWS))
        i++;
    return i;
}

static size_t skip_token(const char *p, size_t i, size_t end)
{
    while (i < end && (chopin__chars[(unsigned char)p[i]] & CHOPIN__C_TCHAR))
        i++;
    return i;
}

/* The qvalue filling exactly [p, p + len) in thousandths, or -1. */
static int parse_qvalue(const char *p, size_t len)
{
    if (len == 0 || (p[0] != '0' && p[0] != '1'))
        return -1;
    int q = (p[0] - '0') * 1000;
    if (len == 1)
        return q;
    if (p[1] != '.' || len > 5)
        return -1;
    int scale = 100;
    for (size_t i = 2; i < len; i++, scale /= 10) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        q += (p[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

/* The q of the element's parameters in [i, end) (all of them after the token), 1000 when
 * there are none, or -1 when they are not one well-formed weight. */
static int parse_weight(const char *p, size_t i, size_t end)
{
    i = skip_ows(p, i, end);
    if (i == end)
        return 1000;
    if (p[i] != ';')
        return -1;
    i = skip_ows(p, i + 1, end);
    if (i == end || lower((unsigned char)p[i]) != 'q')
        return -1;
    i = skip_ows(p, i + 1, end);
    if (i == end || p[i] != '=')
        return -1;
    i = skip_ows(p, i + 1, end);
    size_t start = i;
    while (i < end && !(chopin__chars[(unsigned char)p[i]] & CHOPIN__C_OWS))
        i++;
    size_t stop = i;
    if (skip_ows(p, i, end) != end)
        return -1;
    return parse_qvalue(p + start, stop - start);
}

static void keep_highest(uint16_t *slot, int q)
{
    if (*slot == CHOPIN__Q_UNLISTED || q > *slot)
        *slot = (uint16_t)q;
}

/* One element in [start, end), between commas. */
static void add_element(struct chopin__accept_encoding *ae, const char *p, size_t start, size_t end)
{
    size_t i = skip_ows(p, start, end);
    if (i == end)
        return; /* an empty list element, which RFC 9110 §5.6.1 says to accept */
    size_t tok = i;
    i = skip_token(p, i, end);
    if (i == tok)
        return;
    int q = parse_weight(p, i, end);
    if (q < 0)
        return;
    int coding = coding_of_token(p + tok, i - tok);
    if (coding == STAR)
        keep_highest(&ae->star, q);
    else if (coding != IGNORED)
        keep_highest(&ae->q[coding], q);
}

void chopin__accept_encoding_add(struct chopin__accept_encoding *ae, const char *value, size_t len)
{
    ae->seen = 1;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || value[i] == ',') {
            add_element(ae, value, start, i);
            start = i + 1;
        }
    }
}

/* The coding's rank, higher is better: twice its q, so that identity the client did not
 * list (acceptable, RFC 9110 §12.5.3) ranks 1, below anything listed with q > 0. 0 means
 * not acceptable. */
static unsigned rank(const struct chopin__accept_encoding *ae, uint8_t c)
{
    if (!ae->seen)
        return c == CHOPIN__CODING_IDENTITY ? 1 : 0;
    if (ae->q[c] != CHOPIN__Q_UNLISTED)
        return 2u * ae->q[c];
    if (ae->star != CHOPIN__Q_UNLISTED)
        return 2u * ae->star;
    return c == CHOPIN__CODING_IDENTITY ? 1 : 0;
}

enum chopin__coding chopin__accept_encoding_choose(const struct chopin__accept_encoding *ae,
                                                   const uint8_t *prefer, size_t n)
{
    enum chopin__coding best = CHOPIN__CODING_NONE;
    unsigned best_rank = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = prefer[i];
        if (c <= CHOPIN__CODING_NONE || c >= CHOPIN__CODING_COUNT_)
            continue;
        unsigned r = rank(ae, c);
        if (r > best_rank)
            best = (enum chopin__coding)c, best_rank = r;
    }
    return best;
}

enum chopin__coding chopin__accept_encoding_pick(const char *value, size_t len, const uint8_t *prefer,
                                                 size_t n)
{
    struct chopin__accept_encoding ae;
    chopin__accept_encoding_init(&ae);
    if (value)
        chopin__accept_encoding_add(&ae, value, len);
    return chopin__accept_encoding_choose(&ae, prefer, n);
}
