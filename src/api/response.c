/*
 * The response side of the public API: one body (the last one set wins, and the one it
 * replaces is released), extra header lines validated against injection, cookies.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "http/message.h"
#include "http/status.h"
#include "mem/arena.h"

/* Bound on the extra header block of one response (the -ENOSPC of chopin_res_header_add). */
#define MAX_HEADER_BYTES (32u * 1024)

static const char TEXT_PLAIN[] = "text/plain; charset=utf-8";
static const char TEXT_HTML[] = "text/html; charset=utf-8";
static const char APP_JSON[] = "application/json";

/* Field by field: the body fields of each kind are written by its setter and read only
 * for that kind. A memset of the whole struct compiles to `rep stosq`, whose start-up
 * cost showed in profiles of every request (perf, pipelined /plaintext: 1.7%). */
void chopin__res_init(struct chopin_res *res, struct chopin__arena *arena)
{
    res->status = 0;
    res->body_kind = CHOPIN__RES_UNSET;
    res->close = 0;
    res->close_fd = 0;
    res->content_type = NULL;
    res->content_type_len = 0;
    res->body = NULL;
    res->body_len = 0;
    res->fd = -1;
    res->headers = NULL;
    res->headers_len = 0;
    res->headers_cap = 0;
    res->json = NULL;
    res->arena = arena;
}

/* Gives back what the body owns. The other body fields are left as they are: every setter
 * writes the ones its kind uses, and nothing reads those of another kind. */
static void release_body(chopin_res *res)
{
    switch (res->body_kind) {
    case CHOPIN__RES_OWNED:
        if (res->free_fn)
            res->free_fn((void *)res->body, res->free_arg);
        break;
    case CHOPIN__RES_FILE:
        if (res->close_fd && res->fd >= 0)
            close(res->fd);
        break;
    case CHOPIN__RES_STREAM:
        if (res->stream_done)
            res->stream_done(res->stream_state);
        break;
    default:
        break;
    }
    res->json = NULL; /* a writer still held by the handler sees this and stops writing */
}

void chopin__res_discard(struct chopin_res *res)
{
    release_body(res);
    res->body_kind = CHOPIN__RES_UNSET;
}

int chopin__res_status_valid(int status)
{
    return status == 101 || (status >= 200 && status <= 599);
}

void chopin__res_replace_body(chopin_res *res, int status, enum chopin__res_body kind,
                              const char *content_type, size_t content_type_len)
{
    release_body(res);
    res->status = status;
    res->body_kind = (uint8_t)kind;
    res->content_type = content_type;
    res->content_type_len = (uint32_t)content_type_len;
}

int chopin_res_status(const chopin_res *res)
{
    return res->status;
}

/* ---- validation -------------------------------------------------------------------- */

/* tchar of RFC 9110 §5.6.2. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

/* field-value (RFC 9110 §5.5): visible ASCII, SP, HTAB, obs-text. Refusing every other
 * control byte, not only CR and LF, also keeps bare CR and NUL tricks out. Returns the
 * length of `s`, or -1 when it is NULL or not a field value: one pass both validates and
 * measures, so the serializer never runs strlen on it again. */
static ssize_t field_value_len(const char *s)
{
    if (!s)
        return -1;
    /* Bytes that end the scan: NUL, the other C0 controls but HTAB, and DEL. A table load
     * per byte, four bytes a step, instead of three compares per byte (callgrind,
     * micro_conn.c: chopin_res_static with "text/plain" 107 -> 43 instructions). */
    static const uint8_t stop[256] = {
        [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
        [0x07] = 1, [0x08] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1, [0x0e] = 1,
        [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1,
        [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1, [0x1c] = 1,
        [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, [0x7f] = 1,
    };
    const unsigned char *p = (const unsigned char *)s;
    for (;; p += 4) {
        if (stop[p[0]])
            break;
        if (stop[p[1]]) {
            p += 1;
            break;
        }
        if (stop[p[2]]) {
            p += 2;
            break;
        }
        if (stop[p[3]]) {
            p += 3;
            break;
        }
    }
    return *p ? -1 : (ssize_t)(p - (const unsigned char *)s);
}

static int is_field_value(const char *s)
{
    return field_value_len(s) >= 0;
}

static int ascii_ieq(const char *a, const char *lower)
{
    for (; *a && *lower; a++, lower++) {
        char c = *a >= 'A' && *a <= 'Z' ? (char)(*a | 0x20) : *a;
        if (c != *lower)
            return 0;
    }
    return *a == *lower;
}

/* The caller's content type validated and copied into the arena (Content-Type set as a
 * header: the value may be a temporary). */
static int content_type_copy(chopin_res *res, const char *type)
{
    ssize_t len = field_value_len(type);
    if (len < 0)
        return -EINVAL;
    char *copy = res->arena ? chopin__arena_alloc(res->arena, (size_t)len + 1) : NULL;
    if (!copy)
        return -ENOMEM;
    memcpy(copy, type, (size_t)len + 1);
    res->content_type = copy;
    res->content_type_len = (uint32_t)len;
    return 0;
}

/* The length of a body setter's content type, which is borrowed: chopin.h asks for a
 * string that outlives the response (a literal, or chopin_req_alloc memory); copying it
 * cost about 120 instructions per response on the TechEmpower path (callgrind). 0 for
 * NULL (no Content-Type), -1 when it is not a field value. */
static ssize_t body_type_len(const char *type)
{
    return type ? field_value_len(type) : 0;
}

/* Validates the content type, releases the old body and sets status and kind; the caller
 * fills the body fields of `kind`. */
static int set_body(chopin_res *res, int status, enum chopin__res_body kind, const char *type)
{
    ssize_t len = body_type_len(type);
    if (len < 0)
        return -EINVAL;
    chopin__res_replace_body(res, status, kind, type, (size_t)len);
    return 0;
}

/* ---- headers ----------------------------------------------------------------------- */

static int headers_reserve(chopin_res *res, size_t need)
{
    size_t want = (size_t)res->headers_len + need;
    if (want > MAX_HEADER_BYTES)
        return -ENOSPC;
    if (want <= res->headers_cap)
        return 0;
    size_t cap = res->headers_cap ? res->headers_cap : 256;
    while (cap < want)
        cap *= 2;
    if (cap > MAX_HEADER_BYTES)
        cap = MAX_HEADER_BYTES;
    if (!res->arena)
        return -ENOMEM;
    char *h = res->headers ? chopin__arena_grow(res->arena, res->headers, res->headers_cap, cap)
                           : chopin__arena_alloc(res->arena, cap);
    if (!h)
        return -ENOMEM;
    res->headers = h;
    res->headers_cap = (uint32_t)cap;
    return 0;
}

static int header_append(chopin_res *res, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    int err = headers_reserve(res, nlen + vlen + 4);
    if (err)
        return err;
    char *p = res->headers + res->headers_len;
    memcpy(p, name, nlen);
    p += nlen;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value, vlen);
    p += vlen;
    *p++ = '\r';
    *p++ = '\n';
    res->headers_len = (uint32_t)(p - res->headers);
    return 0;
}

/* Drops every line of header `name` (for headers that must appear once, like Location). */
static void header_remove(chopin_res *res, const char *name)
{
    size_t nlen = strlen(name), in = 0, out = 0;
    while (in < res->headers_len) {
        const char *line = res->headers + in;
        const char *eol = memchr(line, '\n', res->headers_len - in);
        size_t len = (size_t)(eol - line) + 1; /* every line ends in "\r\n" */
        int match = len > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0;
        if (!match) {
            memmove(res->headers + out, line, len);
            out += len;
        }
        in += len;
    }
    res->headers_len = (uint32_t)out;
}

/* Headers with a meaning the server owns: message framing is computed by the serializer
 * (a second Content-Length would be a response-splitting tool), Content-Type and
 * "Connection: close" map onto the response fields instead of adding a duplicate. */
static int header_special(chopin_res *res, const char *name, const char *value, int *handled)
{
    *handled = 1;
    if (ascii_ieq(name, "content-length") || ascii_ieq(name, "transfer-encoding"))
        return -EINVAL;
    if (ascii_ieq(name, "content-type"))
        return content_type_copy(res, value);
    if (ascii_ieq(name, "connection")) {
        if (!ascii_ieq(value, "close"))
            return -EINVAL;
        res->close = 1;
        return 0;
    }
    *handled = 0;
    return 0;
}

int chopin_res_header_add(chopin_res *res, const char *name, const char *value)
{
    if (!res || !is_token(name) || !is_field_value(value))
        return -EINVAL;
    int handled, err = header_special(res, name, value, &handled);
    if (handled)
        return err;
    return header_append(res, name, value);
}

/* ---- bodies ------------------------------------------------------------------------ */

/* Copies `len` bytes into the arena and makes them the body under a content type of
 * `type_len` bytes, already checked. The old body stays when the copy fails. */
static int set_copied_body(chopin_res *res, int status, const char *type, size_t type_len,
                           const void *body, size_t len)
{
    char *copy = res->arena ? chopin__arena_alloc(res->arena, len ? len : 1) : NULL;
    if (!copy)
        return -ENOMEM;
    if (len)
        memcpy(copy, body, len);
    chopin__res_replace_body(res, status, CHOPIN__RES_COPY, type, type_len);
    res->body = copy;
    res->body_len = len;
    return 0;
}

int chopin_res_copy(chopin_res *res, int status, const char *content_type, const void *body,
                    size_t len)
{
    if (!chopin__res_status_valid(status) || (len && !body))
        return -EINVAL;
    ssize_t type_len = body_type_len(content_type);
    if (type_len < 0)
        return -EINVAL;
    return set_copied_body(res, status, content_type, (size_t)type_len, body, len);
}

/* Copy of a text body under one of the content types above. */
static int copy_typed(chopin_res *res, int status, const char *type, size_t type_len,
                      const char *text)
{
    if (!chopin__res_status_valid(status) || !text)
        return -EINVAL;
    return set_copied_body(res, status, type, type_len, text, strlen(text));
}
#define TYPE(t) (t), sizeof(t) - 1

int chopin_res_static(chopin_res *res, int status, const char *content_type, const void *body,
                      size_t len)
{
    if (!chopin__res_status_valid(status) || (len && !body))
        return -EINVAL;
    int err = set_body(res, status, CHOPIN__RES_STATIC, content_type);
    if (err)
        return err;
    res->body = body;
    res->body_len = len;
    return 0;
}

int chopin_res_owned(chopin_res *res, int status, const char *content_type, void *body,
                     size_t len, chopin_free_fn free_fn, void *arg)
{
    /* On error the body stays the caller's: nothing was taken. */
    if (!chopin__res_status_valid(status) || (len && !body))
        return -EINVAL;
    int err = set_body(res, status, CHOPIN__RES_OWNED, content_type);
    if (err)
        return err;
    res->body = body;
    res->body_len = len;
    res->free_fn = free_fn;
    res->free_arg = arg;
    return 0;
}

int chopin_res_fd(chopin_res *res, int status, const char *content_type, int fd,
                  uint64_t offset, uint64_t len, int close_fd)
{
    if (!chopin__res_status_valid(status) || fd < 0)
        return -EINVAL;
    int err = set_body(res, status, CHOPIN__RES_FILE, content_type);
    if (err)
        return err;
    res->fd = fd;
    res->offset = offset;
    res->body_len = len;
    res->close_fd = close_fd ? 1 : 0;
    return 0;
}

/* Sets the 404/403/500 that a failed open or stat means and returns the errno code. */
static int file_error(chopin_res *res, int err)
{
    int status = 500;
    if (err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG || err == ELOOP)
        status = 404;
    else if (err == EACCES || err == EPERM || err == EISDIR)
        status = 403;
    chopin_res_error(res, status, NULL);
    return -err;
}

int chopin_res_file(chopin_res *res, const char *path)
{
    if (!path)
        return -EINVAL;
    /* O_NONBLOCK: opening a FIFO must not block the worker waiting for a writer; it has
     * no effect on the regular files we go on to serve. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return file_error(res, errno);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = errno;
        close(fd);
        return file_error(res, err);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return file_error(res, EACCES);
    }
    const char *type = chopin__mime_type(path);
    chopin__res_replace_body(res, 200, CHOPIN__RES_FILE, type, strlen(type));
    res->fd = fd;
    res->offset = 0;
    res->body_len = (uint64_t)st.st_size;
    res->close_fd = 1;
    return 0;
}

int chopin_res_empty(chopin_res *res, int status)
{
    if (!chopin__res_status_valid(status))
        return -EINVAL;
    chopin__res_replace_body(res, status, CHOPIN__RES_EMPTY, NULL, 0);
    return 0;
}

int chopin_res_text(chopin_res *res, int status, const char *text)
{
    return copy_typed(res, status, TYPE(TEXT_PLAIN), text);
}

int chopin_res_html(chopin_res *res, int status, const char *html)
{
    return copy_typed(res, status, TYPE(TEXT_HTML), html);
}

int chopin_res_json_str(chopin_res *res, int status, const char *json)
{
    return copy_typed(res, status, TYPE(APP_JSON), json);
}

/* A URI-reference (RFC 3986) has no space, control byte or DEL; refusing them is what
 * keeps the Location line from being split or spoofed. */
static int is_location(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

int chopin_res_redirect(chopin_res *res, int status, const char *location)
{
    if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308)
        return -EINVAL;
    if (!is_location(location))
        return -EINVAL;
    header_remove(res, "Location");
    int err = header_append(res, "Location", location);
    if (err)
        return err;
    chopin__res_replace_body(res, status, CHOPIN__RES_EMPTY, NULL, 0);
    return 0;
}

int chopin_res_error(chopin_res *res, int status, const char *message)
{
    if (status < 100 || status > 599)
        return -EINVAL;
    if (message)
        return copy_typed(res, status, TYPE(TEXT_PLAIN), message);
    /* The reason phrase is static: an error answer must work even with the arena full. */
    const char *reason = chopin__status_reason(status);
    if (!reason)
        reason = "Error";
    chopin__res_replace_body(res, status, CHOPIN__RES_STATIC, TYPE(TEXT_PLAIN));
    res->body = reason;
    res->body_len = strlen(reason);
    return 0;
}

int chopin_res_stream(chopin_res *res, int status, const char *content_type,
                      chopin_produce_fn produce, void (*done)(void *state), void *state)
{
    if (!chopin__res_status_valid(status) || !produce)
        return -EINVAL;
    int err = set_body(res, status, CHOPIN__RES_STREAM, content_type);
    if (err)
        return err;
    res->produce = produce;
    res->stream_done = done;
    res->stream_state = state;
    return 0;
}

/* ---- cookies (RFC 6265 §4.1.1) ----------------------------------------------------- */

/* cookie-octet: visible ASCII without DQUOTE, comma, semicolon and backslash. */
static int is_cookie_octet(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

static int is_cookie_value(const char *s)
{
    size_t len = strlen(s);
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') { /* DQUOTE *cookie-octet DQUOTE */
        s++;
        len -= 2;
    }
    for (size_t i = 0; i < len; i++)
        if (!is_cookie_octet((unsigned char)s[i]))
            return 0;
    return 1;
}

/* av-octet of path-value: any CHAR except CTLs or ';'. */
static int is_path_value(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == ';')
            return 0;
    return 1;
}

/* A host name (RFC 1034 letters, digits, hyphens, dots); a leading dot is tolerated. */
static int is_domain(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        char c = *s;
        int ok = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
                 c == '-' || c == '.';
        if (!ok)
            return 0;
    }
    return 1;
}

/* Canonical spelling of a SameSite value, or NULL when it is not one. */
static const char *same_site_value(const char *s)
{
    if (ascii_ieq(s, "strict"))
        return "Strict";
    if (ascii_ieq(s, "lax"))
        return "Lax";
    if (ascii_ieq(s, "none"))
        return "None";
    return NULL;
}

static int cookie_check(const chopin_cookie *c, const char **same_site)
{
    *same_site = NULL;
    if (!is_token(c->name) || !c->value || !is_cookie_value(c->value))
        return -EINVAL;
    if (c->path && !is_path_value(c->path))
        return -EINVAL;
    if (c->domain && !is_domain(c->domain))
        return -EINVAL;
    if (c->same_site) {
        *same_site = same_site_value(c->same_site);
        /* Browsers drop SameSite=None cookies without Secure: fail loudly here instead. */
        if (!*same_site || (**same_site == 'N' && !c->secure))
            return -EINVAL;
    }
    return 0;
}

int chopin_res_cookie_add(chopin_res *res, const chopin_cookie *c)
{
    const char *same_site;
    if (!res || !c || cookie_check(c, &same_site) < 0)
        return -EINVAL;
    size_t cap = strlen(c->name) + strlen(c->value) + (c->path ? strlen(c->path) : 0) +
                 (c->domain ? strlen(c->domain) : 0) + 96;
    char *buf = res->arena ? chopin__arena_alloc(res->arena, cap) : NULL;
    if (!buf)
        return -ENOMEM;
    size_t n = (size_t)snprintf(buf, cap, "%s=%s", c->name, c->value);
    if (c->path)
        n += (size_t)snprintf(buf + n, cap - n, "; Path=%s", c->path);
    if (c->domain)
        n += (size_t)snprintf(buf + n, cap - n, "; Domain=%s", c->domain);
    if (c->max_age >= 0)
        n += (size_t)snprintf(buf + n, cap - n, "; Max-Age=%" PRId64, c->max_age);
    if (c->secure)
        n += (size_t)snprintf(buf + n, cap - n, "; Secure");
    if (c->http_only)
        n += (size_t)snprintf(buf + n, cap - n, "; HttpOnly");
    if (same_site)
        snprintf(buf + n, cap - n, "; SameSite=%s", same_site);
    return header_append(res, "Set-Cookie", buf);
}
