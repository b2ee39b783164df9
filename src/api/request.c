/* SPDX-License-Identifier: MIT */
/*
 * The request side of the public API. Everything returned borrows the read buffer or the
 * request arena: valid until the response has been serialized.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "conn.h"
#include "engine.h"
#include "http/chars.h"
#include "http/message.h"
#include "http/url.h"
#include "mem/arena.h"
#include "peer.h"

static chopin_str str_of(const char *p, size_t len)
{
    return (chopin_str){p, len};
}

chopin_method chopin_req_method(const chopin_req *req)
{
    return (chopin_method)req->head.method_id;
}

chopin_str chopin_req_method_str(const chopin_req *req)
{
    return str_of(req->head.method, req->head.method_len);
}

chopin_str chopin_req_target(const chopin_req *req)
{
    return str_of(req->head.target, req->head.target_len);
}

chopin_str chopin_req_path(const chopin_req *req)
{
    if (req->path)
        return str_of(req->path, req->path_len);
    return str_of(req->head.path, req->head.path_len);
}

chopin_str chopin_req_path_raw(const chopin_req *req)
{
    return str_of(req->head.path, req->head.path_len);
}

chopin_str chopin_req_query_string(const chopin_req *req)
{
    if (!req->head.query)
        return str_of("", 0);
    return str_of(req->head.query, req->head.query_len);
}

int chopin_req_http_minor(const chopin_req *req)
{
    return req->head.minor;
}

int chopin_req_keep_alive(const chopin_req *req)
{
    return req->head.keep_alive;
}

/* ---- headers ----------------------------------------------------------------------- */

/* Field names are case-insensitive ASCII tokens (RFC 9110 §5.1); no locale involved. */
static int name_ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (chopin__ascii_lower((unsigned char)a[i]) != chopin__ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

chopin_str chopin_req_header(const chopin_req *req, const char *name)
{
    size_t len = strlen(name);
    for (uint32_t i = 0; i < req->head.nheaders; i++) {
        const struct chopin__header *h = &req->head.headers[i];
        if (name_ieq(h->name, h->name_len, name, len))
            return str_of(h->value, h->value_len);
    }
    return str_of(NULL, 0);
}

size_t chopin_req_header_count(const chopin_req *req)
{
    return req->head.nheaders;
}

int chopin_req_header_at(const chopin_req *req, size_t i, chopin_str *name, chopin_str *value)
{
    if (i >= req->head.nheaders)
        return -ERANGE;
    const struct chopin__header *h = &req->head.headers[i];
    if (name)
        *name = str_of(h->name, h->name_len);
    if (value)
        *value = str_of(h->value, h->value_len);
    return 0;
}

/* ---- cookies (RFC 6265 §5.4) -------------------------------------------------------- */

/* The value of cookie `name` in one Cookie field value ("a=1; b=2"); ptr NULL when it
 * is not there. Pairs are split at ';', trimmed of spaces and tabs, and split at their
 * first '='; a pair without '=' names no cookie. Names compare exactly (they are
 * case-sensitive), values come back as sent. */
static chopin_str cookie_in(const char *v, size_t len, const char *name, size_t nlen)
{
    const char *end = v + len;
    while (v < end) {
        const char *semi = memchr(v, ';', (size_t)(end - v));
        const char *pe = semi ? semi : end;
        while (v < pe && chopin__is_ows((unsigned char)*v))
            v++;
        const char *last = pe;
        while (last > v && chopin__is_ows((unsigned char)last[-1]))
            last--;
        const char *eq = memchr(v, '=', (size_t)(last - v));
        if (eq && (size_t)(eq - v) == nlen && memcmp(v, name, nlen) == 0)
            return str_of(eq + 1, (size_t)(last - eq - 1));
        v = semi ? semi + 1 : end;
    }
    return str_of(NULL, 0);
}

chopin_str chopin_req_cookie(const chopin_req *req, const char *name)
{
    if (!name || !*name)
        return str_of(NULL, 0);
    size_t nlen = strlen(name);
    for (uint32_t i = 0; i < req->head.nheaders; i++) {
        const struct chopin__header *h = &req->head.headers[i];
        if (!name_ieq(h->name, h->name_len, "cookie", 6))
            continue;
        chopin_str v = cookie_in(h->value, h->value_len, name, nlen);
        if (v.ptr)
            return v;
    }
    return str_of(NULL, 0);
}

/* ---- data passed along the chain ---------------------------------------------------- */

int chopin_req_set_data(chopin_req *req, const void *key, void *value)
{
    if (!req || !key)
        return -EINVAL;
    for (uint32_t i = 0; i < req->ndata; i++) {
        if (req->data[i].key == key) {
            req->data[i].value = value;
            return 0;
        }
    }
    if (req->ndata == CHOPIN_REQ_DATA_MAX)
        return -ENOSPC;
    req->data[req->ndata++] = (struct chopin__req_data){key, value};
    return 0;
}

void *chopin_req_data(const chopin_req *req, const void *key)
{
    for (uint32_t i = 0; i < req->ndata; i++)
        if (req->data[i].key == key)
            return req->data[i].value;
    return NULL;
}

/* ---- params, body, scratch --------------------------------------------------------- */

chopin_str chopin_req_param(const chopin_req *req, const char *name)
{
    size_t len = strlen(name);
    for (uint32_t i = 0; i < req->nparams; i++) {
        const struct chopin__param *p = &req->params[i];
        if (p->name_len == len && memcmp(p->name, name, len) == 0)
            return str_of(p->value, p->value_len);
    }
    return str_of(NULL, 0);
}

chopin_str chopin_req_body(const chopin_req *req)
{
    if (!req->body)
        return str_of("", 0);
    return str_of(req->body, (size_t)req->body_len);
}

void *chopin_req_alloc(chopin_req *req, size_t size)
{
    if (!req->arena)
        return NULL;
    return chopin__arena_alloc(req->arena, size);
}

void *chopin_req_worker_data(const chopin_req *req)
{
    return req->engine ? chopin__engine_worker_data(req->engine) : NULL;
}

int chopin_req_worker_id(const chopin_req *req)
{
    return req->engine ? chopin__engine_worker_id(req->engine) : 0;
}

/* ---- query ------------------------------------------------------------------------- */

/* The next non-empty "name[=value]" pair at or after *pos; advances *pos past it. */
static int query_pair(const char *q, size_t len, size_t *pos, chopin_str *name,
                      chopin_str *value)
{
    while (*pos < len) {
        const char *start = q + *pos;
        const char *amp = memchr(start, '&', len - *pos);
        size_t plen = amp ? (size_t)(amp - start) : len - *pos;
        *pos += plen + (amp ? 1 : 0);
        if (plen == 0)
            continue; /* "a=1&&b=2" */
        const char *eq = memchr(start, '=', plen);
        size_t nlen = eq ? (size_t)(eq - start) : plen;
        *name = str_of(start, nlen);
        *value = eq ? str_of(eq + 1, plen - nlen - 1) : str_of(start + plen, 0);
        return 1;
    }
    return 0;
}

/* Form decoding (WHATWG URL "application/x-www-form-urlencoded"): '+' is a space and a
 * broken escape stays as text rather than failing the whole query. */
static int form_decode(chopin_req *req, chopin_str *s)
{
    const unsigned flags = CHOPIN__PCT_PLUS;
    if (!chopin__pct_needs_decode(s->ptr, s->len, flags))
        return 0;
    char *out = req->arena ? chopin__arena_alloc(req->arena, s->len ? s->len : 1) : NULL;
    if (!out)
        return -ENOMEM;
    s->len = (size_t)chopin__pct_decode(out, s->ptr, s->len, flags);
    s->ptr = out;
    return 0;
}

/* The first pair named `name` (compared decoded); 0 when there is none. */
static int query_find(const chopin_req *req, const char *name, chopin_str *value)
{
    chopin_str q = chopin_req_query_string(req), n;
    size_t pos = 0, len = strlen(name);
    while (query_pair(q.ptr, q.len, &pos, &n, value))
        if (chopin__pct_equal(n.ptr, n.len, name, len, CHOPIN__PCT_PLUS))
            return 1;
    return 0;
}

chopin_str chopin_req_query(chopin_req *req, const char *name)
{
    chopin_str v;
    if (!query_find(req, name, &v) || form_decode(req, &v) < 0)
        return str_of(NULL, 0);
    return v;
}

/* query_pair leaves a bare name's value pointing at the byte after the name, where the
 * '=' would have been, and a "name=" one right after the '='. */
chopin_query_kind chopin_req_query_kind(const chopin_req *req, const char *name)
{
    chopin_str v;
    if (!query_find(req, name, &v))
        return CHOPIN_QUERY_ABSENT;
    return v.ptr[-1] == '=' ? CHOPIN_QUERY_VALUE : CHOPIN_QUERY_BARE;
}

int chopin_req_query_next(chopin_req *req, size_t *pos, chopin_str *name, chopin_str *value)
{
    chopin_str q = chopin_req_query_string(req), n, v;
    if (!query_pair(q.ptr, q.len, pos, &n, &v))
        return 0;
    if (form_decode(req, &n) < 0 || form_decode(req, &v) < 0)
        return 0;
    *name = n;
    *value = v;
    return 1;
}

/* ---- peer address ------------------------------------------------------------------ */

/* "1.2.3.4:5" or "[::1]:5" into buf; returns its length, 0 for other families. */
static size_t format_addr(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        if (!inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)))
            return 0;
        return (size_t)snprintf(buf, cap, "%s:%u", ip, ntohs(in->sin_port));
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)))
            return 0;
        return (size_t)snprintf(buf, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
    return 0;
}

chopin_str chopin_req_remote_addr(chopin_req *req)
{
    static const char unknown[] = "unknown";
    int fd = req->conn ? chopin__conn_fd(req->conn) : -1;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    /* The client a PROXY header relayed (peer.h), else the socket's peer. */
    if (!(req->conn && chopin__peer_sockaddr(chopin__conn_peer(req->conn), &ss)) &&
        (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sslen) < 0))
        return str_of(unknown, sizeof(unknown) - 1);
    if (ss.ss_family == AF_UNIX)
        return str_of("unix", 4);
    enum { CAP = INET6_ADDRSTRLEN + 8 }; /* "[" addr "]:" port */
    char *buf = chopin_req_alloc(req, CAP);
    size_t len = buf ? format_addr(&ss, buf, CAP) : 0;
    if (len == 0 || len >= CAP)
        return str_of(unknown, sizeof(unknown) - 1);
    return str_of(buf, len);
}
