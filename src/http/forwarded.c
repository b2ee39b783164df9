/* SPDX-License-Identifier: MIT */
/* Forwarded and X-Forwarded-For (forwarded.h). */
#include "http/forwarded.h"

#include <string.h>
#include <strings.h>

#include "http/chars.h"

static int is_alnum(unsigned char ch) {
    return (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z');
}

static int is_ows(char ch) { return ch == ' ' || ch == '\t'; }

/* The address of a node: "[v6]:port" -> "v6", "v4:port" -> "v4"; an IPv6 address without
 * brackets (X-Forwarded-For writes them so), "unknown" and "_obfuscated" stay whole.
 * -1 when brackets do not close. */
static int node_address(const char *s, size_t len, const char **out, size_t *out_len) {
    /* RFC 7239 §6: an IPv4 address, a bracketed IPv6 one, "unknown" or "_obfuscated"
     * (ALPHA, DIGIT, ".", "_", "-"), each with an optional ":port". */
    for (size_t i = 0; i < len; i++)
        if (!is_alnum((unsigned char)s[i]) && (!s[i] || !strchr(".:_-[]", s[i])))
            return -1;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close || close == s + 1)
            return -1;
        size_t after = len - (size_t)(close - s) - 1;
        if (after && close[1] != ':')
            return -1;
        *out = s + 1;
        *out_len = (size_t)(close - s) - 1;
        return 0;
    }
    const char *colon = memchr(s, ':', len);
    if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
        len = (size_t)(colon - s); /* one colon: IPv4 (or a name) with a port */
    if (len == 0)
        return -1;
    *out = s;
    *out_len = len;
    return 0;
}

/* A token (RFC 9110 tchar) at s[*pos..len); its length, 0 when none. */
static size_t token_len(const char *s, size_t pos, size_t len) {
    size_t start = pos;
    while (pos < len && chopin__is_tchar((unsigned char)s[pos]))
        pos++;
    return pos - start;
}

/* A value: a token, or a quoted string without escapes (for= and proto= hold addresses
 * and schemes: an escape there is a trick, not a need). */
static int parse_value(const char *s, size_t len, size_t *pos, const char **v, size_t *vlen) {
    if (*pos < len && s[*pos] == '"') {
        size_t start = ++*pos;
        while (*pos < len && s[*pos] != '"') {
            if (s[*pos] == '\\' || (unsigned char)s[*pos] < 0x20 || s[*pos] == 0x7f)
                return -1;
            ++*pos;
        }
        if (*pos == len)
            return -1;
        *v = s + start;
        *vlen = *pos - start;
        ++*pos;
        return 0;
    }
    size_t t = token_len(s, *pos, len);
    if (t == 0)
        return -1;
    *v = s + *pos;
    *vlen = t;
    *pos += t;
    return 0;
}

/* proto= is a URI scheme (RFC 7239 §5.4, RFC 3986 §3.1): ALPHA *( ALPHA / DIGIT / "+" /
 * "-" / "." ). Anything else (a quoted "17 :4711") is refused with the header. */
static int is_scheme(const char *v, size_t len) {
    if (len == 0 || !((v[0] | 0x20) >= 'a' && (v[0] | 0x20) <= 'z'))
        return 0;
    for (size_t i = 1; i < len; i++) {
        char c = v[i], l = (char)(c | 0x20);
        if (!((l >= 'a' && l <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' ||
              c == '.'))
            return 0;
    }
    return 1;
}

/* One pair "name=value" of an element into `hop`. */
static int parse_pair(const char *s, size_t len, size_t *pos, struct chopin__fwd_hop *hop,
                      unsigned *seen) {
    size_t name_len = token_len(s, *pos, len);
    const char *name = s + *pos;
    *pos += name_len;
    if (name_len == 0 || *pos >= len || s[*pos] != '=')
        return -1;
    ++*pos;
    const char *v;
    size_t vlen;
    if (parse_value(s, len, pos, &v, &vlen) < 0)
        return -1;
    static const char *const names[] = {"for", "proto", "by", "host"};
    for (unsigned i = 0; i < 4; i++) {
        if (name_len != strlen(names[i]) || strncasecmp(name, names[i], name_len) != 0)
            continue;
        if (*seen & (1u << i)) /* RFC 7239 §4: each parameter at most once per element */
            return -1;
        *seen |= 1u << i;
        if (i == 0)
            return node_address(v, vlen, &hop->node, &hop->node_len);
        if (i == 1) {
            if (!is_scheme(v, vlen))
                return -1;
            hop->proto = v;
            hop->proto_len = vlen;
        }
        return 0;
    }
    return 0; /* an extension parameter: ignored */
}

int chopin__forwarded_parse(const char *s, size_t len, struct chopin__fwd_hop *hops, int *n) {
    size_t pos = 0;
    for (;;) {
        while (pos < len && is_ows(s[pos]))
            pos++;
        if (*n == CHOPIN__FWD_MAX)
            return -1;
        struct chopin__fwd_hop *hop = &hops[*n];
        memset(hop, 0, sizeof *hop);
        unsigned seen = 0;
        for (;;) { /* pairs separated by ';' */
            while (pos < len && is_ows(s[pos]))
                pos++;
            if (pos < len && s[pos] != ';' && s[pos] != ',' && parse_pair(s, len, &pos, hop, &seen) < 0)
                return -1;
            while (pos < len && is_ows(s[pos]))
                pos++;
            if (pos < len && s[pos] == ';') {
                pos++;
                continue;
            }
            break;
        }
        if (!seen)
            return -1; /* an empty element */
        ++*n;
        if (pos == len)
            return 0;
        if (s[pos] != ',')
            return -1;
        pos++;
    }
}

int chopin__xff_parse(const char *s, size_t len, struct chopin__fwd_hop *hops, int *n) {
    size_t pos = 0;
    for (;;) {
        while (pos < len && is_ows(s[pos]))
            pos++;
        size_t start = pos;
        while (pos < len && s[pos] != ',' && !is_ows(s[pos]))
            pos++;
        size_t item = pos - start;
        while (pos < len && is_ows(s[pos]))
            pos++;
        if (item == 0 || (pos < len && s[pos] != ',') || *n == CHOPIN__FWD_MAX)
            return -1;
        for (size_t i = start; i < start + item; i++)
            if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == '"')
                return -1;
        struct chopin__fwd_hop *hop = &hops[*n];
        memset(hop, 0, sizeof *hop);
        if (node_address(s + start, item, &hop->node, &hop->node_len) < 0)
            return -1;
        ++*n;
        if (pos == len)
            return 0;
        pos++;
    }
}
