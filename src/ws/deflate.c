/* SPDX-License-Identifier: MIT */
#include "ws/deflate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef CHOPIN_WS_DEFLATE
#include <zlib.h>
#endif

int chopin__ws_buf_reserve(struct chopin__ws_buf *b, size_t need, size_t max) {
    if (need <= b->cap)
        return 0;
    if (need > max)
        return -EFBIG;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > max)
        cap = max;
    char *p = realloc(b->ptr, cap);
    if (!p)
        return -ENOMEM;
    b->ptr = p;
    b->cap = cap;
    return 0;
}

/* ----- negotiation (RFC 7692 §5, §7.1) --------------------------------------------- */

static int is_ows(char ch) { return ch == ' ' || ch == '\t'; }

static chopin_str trim(const char *p, const char *end) {
    while (p < end && is_ows(*p))
        p++;
    while (end > p && is_ows(end[-1]))
        end--;
    return (chopin_str){p, (size_t)(end - p)};
}

static int str_is(chopin_str s, const char *want) {
    size_t n = strlen(want);
    return s.len == n && strncasecmp(s.ptr, want, n) == 0;
}

/* A window size parameter's value: 8..15 in plain decimal, no leading zero (RFC 7692
 * §7.1.2.1); quotes around it are allowed (§5.1, quoted-string). -1 when invalid. */
static int window_bits(chopin_str v) {
    if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"')
        v = (chopin_str){v.ptr + 1, v.len - 2};
    if (v.len == 1 && v.ptr[0] >= '8' && v.ptr[0] <= '9')
        return v.ptr[0] - '0';
    if (v.len == 2 && v.ptr[0] == '1' && v.ptr[1] >= '0' && v.ptr[1] <= '5')
        return 10 + v.ptr[1] - '0';
    return -1;
}

/* What one offer asked for; values -1 when the parameter was absent, 0 when given without
 * a value (client_max_window_bits alone). */
struct offer {
    int server_no_takeover, client_no_takeover, server_bits, client_bits;
};

/* Parses the parameters of one permessage-deflate offer: "; name[=value]" each. 0 when
 * one is unknown, repeated or out of range (the offer is then declined, §5). */
static int offer_parse(const char *p, const char *end, struct offer *o) {
    *o = (struct offer){-1, -1, -1, -1};
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        chopin_str name = trim(p, eq ? eq : stop);
        chopin_str value = eq ? trim(eq + 1, stop) : (chopin_str){NULL, 0};
        int *slot = NULL, bits = 0;
        if (str_is(name, "server_no_context_takeover") && !eq) {
            slot = &o->server_no_takeover;
        } else if (str_is(name, "client_no_context_takeover") && !eq) {
            slot = &o->client_no_takeover;
        } else if (str_is(name, "server_max_window_bits") && eq) {
            slot = &o->server_bits;
            bits = window_bits(value);
        } else if (str_is(name, "client_max_window_bits")) {
            slot = &o->client_bits;
            bits = eq ? window_bits(value) : 0;
        }
        if (!slot || *slot != -1 || bits < 0)
            return 0;
        *slot = bits;
        p = semi ? semi + 1 : end;
    }
    return 1;
}

/* Accepts offer `o` within our max_bits: fills *out and the response line. 0 when it
 * cannot be honoured: zlib cannot compress with a 256-byte window (it would use 512, which
 * a client that asked for 8 bits could not follow). */
static int offer_accept(const struct offer *o, unsigned max_bits, struct chopin__ws_pmd *out,
                        char *resp, size_t cap) {
    if (o->server_bits == 8)
        return 0;
    unsigned sbits = max_bits;
    if (o->server_bits > 0 && (unsigned)o->server_bits < sbits)
        sbits = (unsigned)o->server_bits;
    if (sbits < 9)
        sbits = 9;
    unsigned cbits = 15;
    if (o->client_bits >= 0) {
        unsigned asked = o->client_bits ? (unsigned)o->client_bits : 15;
        cbits = asked < max_bits ? asked : max_bits;
    }
    *out = (struct chopin__ws_pmd){
        .server_bits = (uint8_t)sbits,
        .client_bits = (uint8_t)cbits,
        .server_no_takeover = o->server_no_takeover == 0,
        .client_no_takeover = o->client_no_takeover == 0,
    };
    int len = snprintf(resp, cap, "permessage-deflate%s%s", out->server_no_takeover ?
                       "; server_no_context_takeover" : "", out->client_no_takeover ?
                       "; client_no_context_takeover" : "");
    if (len >= 0 && o->server_bits > 0 && (size_t)len < cap)
        len += snprintf(resp + len, cap - (size_t)len, "; server_max_window_bits=%u", sbits);
    if (len >= 0 && o->client_bits >= 0 && (size_t)len < cap)
        len += snprintf(resp + len, cap - (size_t)len, "; client_max_window_bits=%u", cbits);
    return len >= 0 && (size_t)len < cap;
}

int chopin__ws_pmd_negotiate(const chopin_str *lines, size_t n, unsigned max_bits,
                             struct chopin__ws_pmd *out, char *resp, size_t cap) {
    if (!chopin__ws_pmd_available())
        return 0;
    if (max_bits < 9 || max_bits > 15)
        max_bits = 15;
    for (size_t i = 0; i < n; i++) {
        const char *p = lines[i].ptr, *end = p + lines[i].len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *stop = comma ? comma : end;
            const char *semi = memchr(p, ';', (size_t)(stop - p));
            chopin_str name = trim(p, semi ? semi : stop);
            struct offer o;
            if (str_is(name, "permessage-deflate") &&
                offer_parse(semi ? semi + 1 : stop, stop, &o) &&
                offer_accept(&o, max_bits, out, resp, cap))
                return 1;
            p = comma ? comma + 1 : end;
        }
    }
    return 0;
}

/* ----- compression ------------------------------------------------------------------- */

#ifdef CHOPIN_WS_DEFLATE

struct chopin__ws_zin {
    z_stream zs;
};
struct chopin__ws_zout {
    z_stream zs;
};

int chopin__ws_pmd_available(void) { return 1; }

static const uint8_t TAIL[4] = {0x00, 0x00, 0xff, 0xff};

void chopin__ws_zin_free(struct chopin__ws_zin *z) {
    if (!z)
        return;
    inflateEnd(&z->zs);
    free(z);
}

void chopin__ws_zout_free(struct chopin__ws_zout *z) {
    if (!z)
        return;
    deflateEnd(&z->zs);
    free(z);
}

/* Runs inflate over in[0..n) into b, at most max bytes in b. */
static int inflate_into(z_stream *zs, const void *in, size_t n, struct chopin__ws_buf *b,
                        size_t max) {
    zs->next_in = (Bytef *)(uintptr_t)in;
    zs->avail_in = (uInt)n;
    for (;;) {
        uint8_t probe;
        int full = b->len == b->cap;
        if (full && b->len < max) {
            size_t want = b->cap ? b->cap * 2 : 1024;
            if (chopin__ws_buf_reserve(b, want < max ? want : max, max) != 0)
                return -1011;
            full = 0;
        }
        /* At the limit, one byte of room tells whether anything more would come out. */
        zs->next_out = full ? &probe : (Bytef *)b->ptr + b->len;
        zs->avail_out = full ? 1 : (uInt)(b->cap - b->len);
        int rc = inflate(zs, Z_SYNC_FLUSH);
        if (full && zs->avail_out == 0)
            return -1009;
        if (!full)
            b->len = b->cap - zs->avail_out;
        if (rc == Z_STREAM_END) {
            /* A block marked final (BFINAL) ends zlib's stream; the sender's next
             * bytes, if any, start a new one. */
            if (inflateReset(zs) != Z_OK)
                return -1011;
            if (!zs->avail_in)
                return 0;
            continue;
        }
        if (rc == Z_MEM_ERROR || rc == Z_STREAM_ERROR)
            return -1011;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return -1007;
        if (zs->avail_out)
            return 0; /* the input is used up and all it made is out */
    }
}

int chopin__ws_inflate(struct chopin__ws_zin **zp, const struct chopin__ws_pmd *p,
                       const void *in, size_t n, int last, struct chopin__ws_buf *b,
                       size_t max) {
    struct chopin__ws_zin *z = *zp;
    if (!z) {
        z = calloc(1, sizeof *z);
        /* zlib inflates raw deflate with windows of 2^9..2^15; a larger window than the
         * sender's reads its stream just as well. */
        int bits = p->client_bits < 9 ? 9 : p->client_bits;
        if (!z || inflateInit2(&z->zs, -bits) != Z_OK) {
            free(z);
            return -1011;
        }
        *zp = z;
    }
    int rc = inflate_into(&z->zs, in, n, b, max);
    if (rc == 0 && last)
        rc = inflate_into(&z->zs, TAIL, sizeof TAIL, b, max);
    if (last && rc == 0 && p->client_no_takeover) {
        chopin__ws_zin_free(z);
        *zp = NULL;
    }
    return rc;
}

int chopin__ws_deflate(struct chopin__ws_zout **zp, const struct chopin__ws_pmd *p,
                       const void *in, size_t n, struct chopin__ws_buf *out) {
    struct chopin__ws_zout *z = *zp;
    if (!z) {
        z = calloc(1, sizeof *z);
        if (!z || deflateInit2(&z->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -(int)p->server_bits,
                               CHOPIN__WS_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(z);
            return -ENOMEM;
        }
        *zp = z;
    }
    out->len = 0;
    /* deflateBound covers the whole message; a sync flush adds at most a few bytes. */
    size_t need = deflateBound(&z->zs, (uLong)n) + 16;
    if (chopin__ws_buf_reserve(out, need, SIZE_MAX) != 0)
        return -ENOMEM;
    z->zs.next_in = (Bytef *)(uintptr_t)in;
    z->zs.avail_in = (uInt)n;
    z->zs.next_out = (Bytef *)out->ptr;
    z->zs.avail_out = (uInt)out->cap;
    int rc = deflate(&z->zs, Z_SYNC_FLUSH);
    out->len = out->cap - z->zs.avail_out;
    if ((rc != Z_OK && rc != Z_BUF_ERROR) || z->zs.avail_in || out->len < 4)
        return -ENOMEM;
    out->len -= 4; /* RFC 7692 §7.2.1: the sync flush's empty block is not sent */
    if (p->server_no_takeover) {
        chopin__ws_zout_free(z);
        *zp = NULL;
    }
    return 0;
}

#else

int chopin__ws_pmd_available(void) { return 0; }
void chopin__ws_zin_free(struct chopin__ws_zin *z) { (void)z; }
void chopin__ws_zout_free(struct chopin__ws_zout *z) { (void)z; }

int chopin__ws_inflate(struct chopin__ws_zin **z, const struct chopin__ws_pmd *p,
                       const void *in, size_t n, int last, struct chopin__ws_buf *b,
                       size_t max) {
    return -1011;
}

int chopin__ws_deflate(struct chopin__ws_zout **z, const struct chopin__ws_pmd *p,
                       const void *in, size_t n, struct chopin__ws_buf *out) {
    return -ENOTSUP;
}

#endif
