/* SPDX-License-Identifier: MIT */
/*
 * The response side of the public API: one body (the last one set wins, and the one it
 * replaces is released), extra header lines validated against injection and editable
 * (add, set, remove, read), cookies, files by path or beneath a directory.
 *
 * Nothing here keeps a pointer the caller gave: content types, header values and cookie
 * fields are copied into the request arena; only bodies whose setter says so by its name
 * (static, owned, fd) are borrowed or taken.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/open_beneath.h"
#include "http/chars.h"
#include "http/message.h"
#include "http/status.h"
#include "mem/arena.h"
#include "mem/bytes.h"

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
    res->finalize = NULL;
    res->trailers_len = 0;
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
        else if (!res->close_fd && res->free_fn)
            res->free_fn(NULL, res->free_arg);
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

void chopin__res_finalize(struct chopin_req *req, struct chopin_res *res)
{
    void (*fn)(struct chopin_req *, struct chopin_res *, void *) = res->finalize;
    if (!fn)
        return;
    res->finalize = NULL;
    fn(req, res, res->finalize_arg);
}

int chopin__res_status_valid(int status)
{
    return status >= 200 && status <= 599;
}

int chopin__arena_failure(const struct chopin__arena *a, size_t size)
{
    size_t left = a ? chopin__arena_left(a) : 0;
    size_t rounded = (size + 15) & ~(size_t)15; /* the arena hands out multiples of 16 */
    return size > left || rounded < size || rounded > left ? -EFBIG : -ENOMEM;
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

static int is_token(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!chopin__is_tchar((unsigned char)*s))
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
    /* The scan stops at the first byte that is not a field-value byte: NUL, the other C0
     * controls but HTAB, and DEL. A table load per byte, four bytes a step, instead of
     * three compares per byte (callgrind, micro_conn.c: chopin_res_static with
     * "text/plain" 107 -> 43 instructions). */
    const unsigned char *p = (const unsigned char *)s;
    for (;; p += 4) {
        if (!chopin__is_field_byte(p[0]))
            break;
        if (!chopin__is_field_byte(p[1])) {
            p += 1;
            break;
        }
        if (!chopin__is_field_byte(p[2])) {
            p += 2;
            break;
        }
        if (!chopin__is_field_byte(p[3])) {
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
    for (; *a && *lower; a++, lower++)
        if (chopin__ascii_lower((unsigned char)*a) != (unsigned char)*lower)
            return 0;
    return *a == *lower;
}

/* a[0..n) and b[0..n) equal but for ASCII case (field names, RFC 9110 §5.1). */
static int ascii_ieqn(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (chopin__ascii_lower((unsigned char)a[i]) != chopin__ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* A content type as the response will keep it. */
struct type {
    const char *ptr; /* NUL-terminated, static or in the arena; NULL for none */
    size_t len;
};

/* The commonest content types, by length (at most two per length), as static strings:
 * a caller's type equal to one of them is answered with the static copy instead of an
 * arena copy. Copying cost 89 instructions per request on the plaintext path (callgrind,
 * bench/micro_conn.c, "text/plain": 2,354 -> 2,443); a length index and one inline
 * compare cost a handful, and a match needs no validation (type_copy). */
#define COMMON_TYPE_MAX_LEN 31
static const char *const common_types[COMMON_TYPE_MAX_LEN + 1][2] = {
    [8] = {"text/css"},
    [9] = {"text/html", "image/png"},
    [10] = {"text/plain", "image/jpeg"},
    [15] = {"application/xml"},
    [16] = {"application/json"},
    [17] = {"text/event-stream"},
    [24] = {TEXT_HTML, "application/octet-stream"},
    [25] = {TEXT_PLAIN},
    [31] = {"application/json; charset=utf-8"},
};

static const char *common_type(const char *type, size_t len)
{
    if (len > COMMON_TYPE_MAX_LEN)
        return NULL;
    for (int i = 0; i < 2; i++) {
        const char *t = common_types[len][i];
        if (t && chopin__bytes_eq(t, type, len))
            return t;
    }
    return NULL;
}

/* Out of line: the arena copy of a content type that is not one of the common ones. */
__attribute__((noinline)) static int type_arena_copy(chopin_res *res, const char *type,
                                                     size_t len, struct type *out)
{
    char *copy = res->arena ? chopin__arena_alloc(res->arena, len + 1) : NULL;
    if (!copy)
        return chopin__arena_failure(res->arena, len + 1);
    memcpy(copy, type, len + 1);
    *out = (struct type){copy, len};
    return 0;
}

/* The caller's content type validated and made the response's own: the caller's string
 * may be a temporary (a stack buffer the handler built), and it is read only after the
 * handler returned, when the head is serialized. Not committed to the response yet, so
 * a failure leaves the response as it was. */
static int type_copy(chopin_res *res, const char *type, struct type *out)
{
    /* A common type is a known field value: its bytes need no validation, so the C
     * library's word-at-a-time strlen measures it and the table matches it (callgrind,
     * micro_conn, "text/plain": 39 instructions fewer per request than validating first). */
    size_t len = strlen(type);
    const char *common = common_type(type, len);
    if (common) {
        *out = (struct type){common, len};
        return 0;
    }
    if (field_value_len(type) < 0)
        return -EINVAL;
    return type_arena_copy(res, type, len, out);
}

/* The content type a body setter leaves on the response: a copy of `type`, or for NULL
 * the one the response has already (set with chopin_res_header_add/set or by an earlier
 * setter), so the header API and the setters never silently undo each other. */
static int body_type(chopin_res *res, const char *type, struct type *out)
{
    if (!type) {
        *out = (struct type){res->content_type, res->content_type_len};
        return 0;
    }
    return type_copy(res, type, out);
}

static void type_commit(chopin_res *res, struct type t)
{
    res->content_type = t.ptr;
    res->content_type_len = (uint32_t)t.len;
}

/* Settles the content type, releases the old body and sets status and kind; the caller
 * fills the body fields of `kind`. Nothing changes when it fails. */
static int set_body(chopin_res *res, int status, enum chopin__res_body kind, const char *type)
{
    struct type t;
    int err = body_type(res, type, &t);
    if (err)
        return err;
    chopin__res_replace_body(res, status, kind, t.ptr, t.len);
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
        return chopin__arena_failure(res->arena, cap - res->headers_cap);
    res->headers = h;
    res->headers_cap = (uint32_t)cap;
    return 0;
}

/* Bytes the line "name: value\r\n" takes. */
static size_t line_size(const char *name, const char *value)
{
    return strlen(name) + strlen(value) + 4;
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

int chopin__res_header_lines(chopin_res *res, const char *lines, size_t len)
{
    int err = headers_reserve(res, len);
    if (err)
        return err;
    memcpy(res->headers + res->headers_len, lines, len);
    res->headers_len += (uint32_t)len;
    return 0;
}

/* Whether the header line at `line` (`len` bytes, "\r\n" included) is named `name`. */
static int line_named(const char *line, size_t len, const char *name, size_t nlen)
{
    return len > nlen && line[nlen] == ':' && ascii_ieqn(line, name, nlen);
}

/* The length of the header line at offset `at` (every line ends in "\r\n"). */
static size_t line_len(const chopin_res *res, size_t at)
{
    const char *line = res->headers + at;
    const char *eol = memchr(line, '\n', res->headers_len - at);
    return (size_t)(eol - line) + 1;
}

/* Drops every line of header `name`; returns how many there were. */
static int header_remove(chopin_res *res, const char *name)
{
    size_t nlen = strlen(name), in = 0, out = 0;
    int removed = 0;
    while (in < res->headers_len) {
        const char *line = res->headers + in;
        size_t len = line_len(res, in);
        if (line_named(line, len, name, nlen)) {
            removed++;
        } else {
            memmove(res->headers + out, line, len);
            out += len;
        }
        in += len;
    }
    res->headers_len = (uint32_t)out;
    return removed;
}

/* The value of the first line of header `name`, without "\r\n"; ptr NULL when none. */
static chopin_str header_find(const chopin_res *res, const char *name)
{
    size_t nlen = strlen(name), in = 0;
    while (in < res->headers_len) {
        const char *line = res->headers + in;
        size_t len = line_len(res, in);
        if (line_named(line, len, name, nlen))
            return (chopin_str){line + nlen + 2, len - nlen - 4};
        in += len;
    }
    return (chopin_str){NULL, 0};
}

/* Headers with a meaning the server owns: message framing is computed by the serializer
 * (a second Content-Length would be a response-splitting tool), Content-Type and
 * "Connection: close" map onto the response fields instead of header lines. */
enum special { PLAIN, FRAMING, CONTENT_TYPE, CONNECTION };

static enum special special_of(const char *name)
{
    if (ascii_ieq(name, "content-length") || ascii_ieq(name, "transfer-encoding"))
        return FRAMING;
    if (ascii_ieq(name, "content-type"))
        return CONTENT_TYPE;
    if (ascii_ieq(name, "connection"))
        return CONNECTION;
    return PLAIN;
}

/* Add and set mean the same for the headers mapped onto fields: there is one of each. */
static int special_set(chopin_res *res, enum special kind, const char *value)
{
    if (kind == FRAMING)
        return -EINVAL;
    if (kind == CONTENT_TYPE) {
        struct type t;
        int err = type_copy(res, value, &t);
        if (!err)
            type_commit(res, t);
        return err;
    }
    if (!ascii_ieq(value, "close"))
        return -EINVAL;
    res->close = 1;
    return 0;
}

static int header_args_valid(const chopin_res *res, const char *name, const char *value)
{
    return res && is_token(name) && is_field_value(value);
}

int chopin_res_header_add(chopin_res *res, const char *name, const char *value)
{
    if (!header_args_valid(res, name, value))
        return -EINVAL;
    enum special kind = special_of(name);
    if (kind != PLAIN)
        return special_set(res, kind, value);
    return header_append(res, name, value);
}

int chopin_res_header_set(chopin_res *res, const char *name, const char *value)
{
    if (!header_args_valid(res, name, value))
        return -EINVAL;
    enum special kind = special_of(name);
    if (kind != PLAIN)
        return special_set(res, kind, value);
    /* Room first: once the old lines are gone, the new one must not fail to fit. */
    int err = headers_reserve(res, line_size(name, value));
    if (err)
        return err;
    header_remove(res, name);
    return header_append(res, name, value);
}

int chopin_res_header_remove(chopin_res *res, const char *name)
{
    if (!res || !is_token(name))
        return -EINVAL;
    switch (special_of(name)) {
    case FRAMING:
        return -EINVAL;
    case CONTENT_TYPE: {
        int had = res->content_type != NULL;
        type_commit(res, (struct type){NULL, 0});
        return had;
    }
    case CONNECTION: {
        int had = res->close;
        res->close = 0;
        return had;
    }
    default:
        return header_remove(res, name);
    }
}

chopin_str chopin_res_header(const chopin_res *res, const char *name)
{
    if (!res || !is_token(name))
        return (chopin_str){NULL, 0};
    switch (special_of(name)) {
    case CONTENT_TYPE:
        return (chopin_str){res->content_type, res->content_type_len};
    case CONNECTION:
        return res->close ? (chopin_str){"close", 5} : (chopin_str){NULL, 0};
    case FRAMING:
        return (chopin_str){NULL, 0}; /* computed when the head is serialized */
    default:
        return header_find(res, name);
    }
}

/* ---- bodies ------------------------------------------------------------------------ */

/* Copies `len` bytes into the arena and makes them the body under content type `t`,
 * already settled. The old body stays when the copy fails (-EFBIG past the arena's
 * limit, -ENOMEM when the heap is out), so the handler can still answer otherwise. */
static int set_copied_body(chopin_res *res, int status, struct type t, const void *body,
                           size_t len)
{
    char *copy = res->arena ? chopin__arena_alloc(res->arena, len ? len : 1) : NULL;
    if (!copy)
        return chopin__arena_failure(res->arena, len);
    if (len)
        memcpy(copy, body, len);
    chopin__res_replace_body(res, status, CHOPIN__RES_COPY, t.ptr, t.len);
    res->body = copy;
    res->body_len = len;
    return 0;
}

int chopin_res_copy(chopin_res *res, int status, const char *content_type, const void *body,
                    size_t len)
{
    if (!chopin__res_status_valid(status) || (len && !body))
        return -EINVAL;
    struct type t;
    int err = body_type(res, content_type, &t);
    if (err)
        return err;
    return set_copied_body(res, status, t, body, len);
}

/* Copy of a text body under one of the content types above. */
static int copy_typed(chopin_res *res, int status, struct type t, const char *text)
{
    if (!chopin__res_status_valid(status) || !text)
        return -EINVAL;
    return set_copied_body(res, status, t, text, strlen(text));
}
#define TYPE(t) ((struct type){(t), sizeof(t) - 1})

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
    res->free_fn = NULL;
    return 0;
}

/* Sets the 404/403/500 that a failed open or stat means and returns the errno code. A
 * path refused for leaving its root (EXDEV) or through a link (ELOOP) answers like a
 * missing file: the answer tells a prober nothing about what exists. */
static int file_error(chopin_res *res, int err)
{
    int status = 500;
    if (err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG || err == ELOOP || err == EXDEV)
        status = 404;
    else if (err == EACCES || err == EPERM || err == EISDIR)
        status = 403;
    chopin_res_error(res, status, NULL);
    return -err;
}

/* Serves the open descriptor `fd` of file `name` (for its type) as a 200, or answers the
 * error when it is not a regular file. Takes fd either way. */
static int serve_opened(chopin_res *res, int fd, const char *name)
{
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
    const char *type = chopin__mime_type(name);
    chopin__res_replace_body(res, 200, CHOPIN__RES_FILE, type, strlen(type));
    res->fd = fd;
    res->offset = 0;
    res->body_len = (uint64_t)st.st_size;
    res->close_fd = 1;
    res->free_fn = NULL;
    return 0;
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
    return serve_opened(res, fd, path);
}

int chopin_res_file_at(chopin_res *res, int dirfd, const char *relpath, size_t len)
{
    if (!res || dirfd < 0)
        return -EINVAL;
    char name[PATH_MAX];
    int err = chopin__beneath_path(name, sizeof name, relpath, len);
    int fd = err ? err : chopin__open_beneath(dirfd, name, 0);
    if (fd < 0)
        return file_error(res, -fd);
    return serve_opened(res, fd, name);
}

int chopin_dir_open(const char *path)
{
    if (!path)
        return -EINVAL;
#ifdef O_PATH
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
#else
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
#endif
    return fd < 0 ? -errno : fd;
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
    if (!chopin__res_status_valid(status))
        return -EINVAL;
    if (message)
        return copy_typed(res, status, TYPE(TEXT_PLAIN), message);
    /* The reason phrase is static: an error answer must work even with the arena full. */
    const char *reason = chopin__status_reason(status);
    if (!reason)
        reason = "Error";
    chopin__res_replace_body(res, status, CHOPIN__RES_STATIC, TEXT_PLAIN, sizeof TEXT_PLAIN - 1);
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

/* ---- trailers (issue 20) ---------------------------------------------------------- */

/* Bound on the trailer block: it travels in the output queue's data area on HTTP/1.1. */
#define MAX_TRAILER_BYTES 1024u

/* Fields a trailer may not carry (RFC 9110 §6.5.1): framing, routing, connection
 * management, the content's own metadata, authentication, and the Trailer field. */
static int trailer_forbidden(const char *name)
{
    static const char *const names[] = {
        "content-length", "transfer-encoding", "host",       "connection",   "keep-alive",
        "upgrade",        "te",                "trailer",    "content-type", "content-encoding",
        "content-range",  "authorization",     "set-cookie", "cache-control", "expect",
        "max-forwards",   "range",             "pragma",     "proxy-authenticate",
        "proxy-authorization", "www-authenticate", "location", "retry-after", "vary",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (ascii_ieq(name, names[i]))
            return 1;
    return 0;
}

int chopin_res_trailer(chopin_res *res, const char *name, const char *value)
{
    if (!header_args_valid(res, name, value) || trailer_forbidden(name))
        return -EINVAL;
    size_t nlen = strlen(name), vlen = strlen(value), len = res->trailers_len;
    if (len + nlen + vlen + 4 > MAX_TRAILER_BYTES)
        return -ENOSPC;
    if (!res->trailers_len) {
        if (!res->arena)
            return -ENOMEM;
        res->trailers = chopin__arena_alloc(res->arena, MAX_TRAILER_BYTES);
        if (!res->trailers)
            return chopin__arena_failure(res->arena, MAX_TRAILER_BYTES);
    }
    char *p = res->trailers + len;
    memcpy(p, name, nlen);
    p += nlen;
    memcpy(p, ": ", 2);
    memcpy(p + 2, value, vlen);
    memcpy(p + 2 + vlen, "\r\n", 2);
    res->trailers_len = (uint32_t)(len + nlen + vlen + 4);
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
    /* max_age 0 is "not set" (a zeroed struct must not delete the cookie); deleting is
     * said with `expire`, and saying both at once is a contradiction. */
    if (c->max_age < 0 || (c->expire && c->max_age))
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
        return chopin__arena_failure(res->arena, cap);
    size_t n = (size_t)snprintf(buf, cap, "%s=%s", c->name, c->value);
    if (c->path)
        n += (size_t)snprintf(buf + n, cap - n, "; Path=%s", c->path);
    if (c->domain)
        n += (size_t)snprintf(buf + n, cap - n, "; Domain=%s", c->domain);
    if (c->max_age > 0 || c->expire)
        n += (size_t)snprintf(buf + n, cap - n, "; Max-Age=%" PRId64, c->max_age);
    if (c->secure)
        n += (size_t)snprintf(buf + n, cap - n, "; Secure");
    if (c->http_only)
        n += (size_t)snprintf(buf + n, cap - n, "; HttpOnly");
    if (same_site)
        snprintf(buf + n, cap - n, "; SameSite=%s", same_site);
    return header_append(res, "Set-Cookie", buf);
}
