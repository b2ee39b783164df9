/* SPDX-License-Identifier: MIT */
/*
 * Static directories (chopin.h, "Static files"; docs/static.md): the mount, the request
 * path's checks, and the answer to one file: representation (precompressed sibling or
 * not), preconditions, ranges, head lines, body.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/open_beneath.h"
#include "api/static_internal.h"
#include "http/accept_encoding.h"
#include "http/chars.h"
#include "http/conditional.h"
#include "http/message.h"

#define DEFAULT_CACHE_ENTRIES 1024
#define DEFAULT_MAX_RANGES 16
#define DEFAULT_MEMORY_MAX 16384
#define VALID_MS 1000 /* how long a resolved path is trusted (nginx open_file_cache_valid) */
#define MAX_RANGES_CAP 256

/* ---- the mount ----------------------------------------------------------------------- */

static void cache_destroy(void *cache)
{
    chopin__static_cache_free(cache);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

/* A field value (RFC 9110 §5.5) that can go into a head line as it is. */
static int is_value(const char *s)
{
    for (; *s; s++)
        if (!chopin__is_field_byte((unsigned char)*s))
            return 0;
    return 1;
}

static int index_valid(const char *s)
{
    return is_value(s) && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") &&
           strcmp(s, "..");
}

/* The head lines every 200 and 206 carries, and the Cache-Control line of 304s too. */
static int build_lines(chopin_static *st, const char *cache_control)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "Accept-Ranges: bytes\r\n%s",
                     st->flags & CHOPIN_STATIC_NO_NOSNIFF ? ""
                                                          : "X-Content-Type-Options: nosniff\r\n");
    if (cache_control) {
        size_t len = strlen(cache_control) + sizeof "Cache-Control: \r\n";
        if (!(st->cache_line = malloc(len)))
            return -ENOMEM;
        st->cache_line_len = (size_t)snprintf(st->cache_line, len, "Cache-Control: %s\r\n",
                                              cache_control);
    }
    st->lines_len = (size_t)n + st->cache_line_len;
    if (!(st->lines = malloc(st->lines_len + 1)))
        return -ENOMEM;
    memcpy(st->lines, buf, (size_t)n);
    if (st->cache_line)
        memcpy(st->lines + n, st->cache_line, st->cache_line_len);
    st->lines[st->lines_len] = '\0';
    return 0;
}

static int options_valid(const chopin_static_options *o)
{
    if (o->size == 0 || o->size > sizeof *o)
        return 0;
    if (o->index && o->index[0] && !index_valid(o->index))
        return 0;
    return !o->cache_control || is_value(o->cache_control);
}

static int static_setup(chopin_static *st, const chopin_static_options *o)
{
    st->flags = o->flags;
    st->max_ranges = o->max_ranges ? o->max_ranges : DEFAULT_MAX_RANGES;
    if (st->max_ranges > MAX_RANGES_CAP)
        st->max_ranges = MAX_RANGES_CAP;
    const char *index = o->index ? o->index : "index.html";
    if (index[0] && !(st->index = dup_str(index)))
        return -ENOMEM;
    int uncached = o->cache_entries == CHOPIN_STATIC_NO_CACHE;
    st->cache_cfg = (struct chopin__static_cache_cfg){
        .root = st->root,
        .open_flags = st->flags & CHOPIN_STATIC_SYMLINKS ? CHOPIN__BENEATH_SYMLINKS : 0,
        .capacity = uncached ? 8 : o->cache_entries ? o->cache_entries : DEFAULT_CACHE_ENTRIES,
        .valid_ms = uncached ? 0 : VALID_MS,
        .memory_max = uncached ? 0 : o->memory_max ? o->memory_max : DEFAULT_MEMORY_MAX,
    };
    return build_lines(st, o->cache_control);
}

int chopin_static_new(const char *root, const chopin_static_options *opts, chopin_static **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    chopin_static_options defaults = CHOPIN_STATIC_OPTIONS_INIT, o = defaults;
    if (opts) {
        if (opts->size == 0 || opts->size > sizeof o)
            return -EINVAL;
        memcpy(&o, opts, opts->size);
    }
    if (!root || !options_valid(&o))
        return -EINVAL;
    chopin_static *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->root = chopin_dir_open(root);
    if (st->root < 0) {
        int err = st->root;
        free(st);
        return err;
    }
    if (pthread_key_create(&st->key, cache_destroy) != 0) {
        close(st->root);
        free(st);
        return -ENOMEM;
    }
    int err = static_setup(st, &o);
    if (err) {
        chopin_static_free(st);
        return err;
    }
    *out = st;
    return 0;
}

void chopin_static_free(chopin_static *st)
{
    if (!st)
        return;
    /* The workers' caches went with their threads (the key's destructor); one the
     * calling thread made (a test calling the handler directly) goes now. */
    chopin__static_cache_free(pthread_getspecific(st->key));
    pthread_key_delete(st->key);
    close(st->root);
    for (size_t i = 0; i < st->nmimes; i++) {
        free(st->mimes[i].ext);
        free(st->mimes[i].type);
    }
    free(st->mimes);
    free(st->index);
    free(st->lines);
    free(st->cache_line);
    free(st);
}

int chopin_static_mime(chopin_static *st, const char *ext, const char *type)
{
    /* The extension is what follows a name's last dot: it holds no dot itself. */
    if (!st || !ext || !type || !chopin__is_token(ext, strlen(ext)) || strchr(ext, '.') ||
        !type[0] || !is_value(type))
        return -EINVAL;
    int add_charset = strncmp(type, "text/", 5) == 0 && !strchr(type, ';');
    size_t len = strlen(type) + (add_charset ? sizeof "; charset=utf-8" : 1);
    struct chopin__static_mime m = {dup_str(ext), malloc(len)};
    struct chopin__static_mime *grown = realloc(st->mimes, (st->nmimes + 1) * sizeof *grown);
    if (!m.ext || !m.type || !grown) {
        free(m.ext);
        free(m.type);
        if (grown)
            st->mimes = grown;
        return -ENOMEM;
    }
    snprintf(m.type, len, "%s%s", type, add_charset ? "; charset=utf-8" : "");
    st->mimes = grown;
    st->mimes[st->nmimes++] = m;
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct chopin__static_cache *worker_cache(chopin_static *st)
{
    struct chopin__static_cache *c = pthread_getspecific(st->key);
    if (c)
        return c;
    c = chopin__static_cache_new(&st->cache_cfg);
    if (c && pthread_setspecific(st->key, c) != 0) {
        chopin__static_cache_free(c);
        c = NULL;
    }
    return c;
}

static int ieq(const char *a, size_t n, const char *lower)
{
    for (size_t i = 0; i < n; i++)
        if (!lower[i] || chopin__ascii_lower((unsigned char)a[i]) != (unsigned char)lower[i])
            return 0;
    return lower[n] == '\0';
}

/* The content type of file `name` (its basename's extension). */
static const char *type_of(const chopin_static *st, const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        for (size_t i = 0; i < st->nmimes; i++)
            if (ieq(dot + 1, strlen(dot + 1), st->mimes[i].ext))
                return st->mimes[i].type;
    return chopin__mime_type(name);
}

/* Nonzero when the decoded relative path may be looked up: no backslash or NUL (refused
 * again by chopin__beneath_path, which also refuses ".."), and no component starting with
 * '.' unless dot-files are served. */
static int path_allowed(const chopin_static *st, const char *p, size_t len)
{
    if (memchr(p, '\\', len) || memchr(p, '\0', len))
        return 0;
    if (st->flags & CHOPIN_STATIC_DOTFILES)
        return 1;
    for (size_t i = 0; i < len; i++)
        if (p[i] == '.' && (i == 0 || p[i - 1] == '/'))
            return 0;
    return 1;
}

static int error_status(int err)
{
    if (err == -EACCES || err == -EPERM || err == -EISDIR)
        return 403;
    if (err == -EMFILE || err == -ENFILE || err == -ENOMEM)
        return 503;
    return 404; /* missing, or refused (EXDEV, ELOOP, ENOTDIR): the same to a prober */
}

static int is_url_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~!$&'()*+,;=:@/", c) != NULL;
}

/* s[0..len) percent-encoded into the arena (NUL-terminated, `extra` bytes spare). */
static char *url_encode(chopin_req *req, const char *s, size_t len, size_t extra, size_t *out_len)
{
    char *out = chopin_req_alloc(req, len * 3 + extra + 1);
    if (!out)
        return NULL;
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c && is_url_safe(c)) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* 301 to the request's path with a '/' added, query kept. Built from the normalised
 * path (it starts with the mount's prefix), never from the raw target, which could make
 * it "//host/..." (an open redirect). */
static void redirect_slash(chopin_req *req, chopin_res *res)
{
    chopin_str path = chopin_req_path(req), q = chopin_req_query_string(req);
    while (path.len > 1 && path.ptr[1] == '/') { /* "//host/x" would leave the site */
        path.ptr++;
        path.len--;
    }
    size_t n;
    char *loc = url_encode(req, path.ptr, path.len, 2 + q.len, &n);
    if (!loc) {
        chopin_res_error(res, 503, NULL);
        return;
    }
    loc[n++] = '/';
    if (q.len) {
        loc[n++] = '?';
        memcpy(loc + n, q.ptr, q.len);
        n += q.len;
    }
    loc[n] = '\0';
    if (chopin_res_redirect(res, 301, loc) < 0)
        chopin_res_error(res, 404, NULL);
}

/* The request fields a static answer reads, found in one pass over the headers instead of
 * seven scans by name. The first line of each counts (a list split over several lines is
 * not joined: browsers and caches send one). */
struct fields {
    struct chopin__cond_fields cond;
    chopin_str range, accept_encoding;
};

static int name_is(chopin_str name, const char *lower, size_t len)
{
    return name.len == len && ieq(name.ptr, len, lower);
}

static void read_fields(const chopin_req *req, struct fields *f)
{
    *f = (struct fields){0};
    size_t n = chopin_req_header_count(req);
    for (size_t i = 0; i < n; i++) {
        chopin_str name, value, *slot = NULL;
        chopin_req_header_at(req, i, &name, &value);
        if (name.len < 5)
            continue;
        switch (chopin__ascii_lower((unsigned char)name.ptr[0])) {
        case 'i':
            if (name_is(name, "if-match", 8))
                slot = &f->cond.if_match;
            else if (name_is(name, "if-none-match", 13))
                slot = &f->cond.if_none_match;
            else if (name_is(name, "if-modified-since", 17))
                slot = &f->cond.if_modified_since;
            else if (name_is(name, "if-unmodified-since", 19))
                slot = &f->cond.if_unmodified_since;
            else if (name_is(name, "if-range", 8))
                slot = &f->cond.if_range;
            break;
        case 'r':
            if (name_is(name, "range", 5))
                slot = &f->range;
            break;
        case 'a':
            if (name_is(name, "accept-encoding", 15))
                slot = &f->accept_encoding;
            break;
        default:
            break;
        }
        if (slot && !slot->ptr)
            *slot = value;
    }
}

/* ---- content negotiation ------------------------------------------------------------ */

/* The precompressed siblings, in the order the server prefers them among equal q. */
static const struct {
    enum chopin__coding coding;
    const char *suffix;
} codings[] = {{CHOPIN__CODING_BR, ".br"}, {CHOPIN__CODING_ZSTD, ".zst"},
               {CHOPIN__CODING_GZIP, ".gz"}};
#define NCODINGS (sizeof codings / sizeof codings[0])

/* ---- one file ----------------------------------------------------------------------- */

struct want {
    const char *name;   /* the file's relative path (for its type) */
    size_t name_len;
    const char *coding; /* the sibling chosen, or NULL */
    int vary;
};

/* The representation to send: among the siblings that exist and the file itself, the one
 * Accept-Encoding prefers (src/http/accept_encoding.c: q-values, "*", identity;q=0), the
 * server's order breaking ties and identity last. Every sibling is looked up (the cache
 * keeps missing ones too) because Vary depends on whether any exists. A client that
 * accepts nothing on offer gets identity, as RFC 9110 §12.5.3 allows. */
static const struct chopin__static_entry *
pick_representation(struct chopin__static_cache *cache, const struct fields *f, struct want *w,
                    uint64_t now)
{
    char path[PATH_MAX];
    if (w->name_len + 5 > sizeof path)
        return chopin__static_cache_get(cache, w->name, w->name_len, now);
    uint8_t offer[NCODINGS + 1];
    size_t n = 0;
    memcpy(path, w->name, w->name_len);
    for (size_t i = 0; i < NCODINGS; i++) {
        size_t len = w->name_len + strlen(codings[i].suffix);
        memcpy(path + w->name_len, codings[i].suffix, len - w->name_len);
        const struct chopin__static_entry *e = chopin__static_cache_get(cache, path, len, now);
        if (e && e->kind == CHOPIN__STATIC_FILE)
            offer[n++] = (uint8_t)i;
    }
    w->vary = n > 0;
    uint8_t prefer[NCODINGS + 1];
    for (size_t i = 0; i < n; i++)
        prefer[i] = (uint8_t)codings[offer[i]].coding;
    prefer[n] = CHOPIN__CODING_IDENTITY;
    chopin_str ae = f->accept_encoding;
    enum chopin__coding c =
        n ? chopin__accept_encoding_pick(ae.ptr, ae.len, prefer, n + 1) : CHOPIN__CODING_IDENTITY;
    for (size_t i = 0; i < n; i++) {
        if (codings[offer[i]].coding != c)
            continue;
        w->coding = chopin__coding_name(c);
        size_t len = w->name_len + strlen(codings[offer[i]].suffix);
        memcpy(path + w->name_len, codings[offer[i]].suffix, len - w->name_len);
        return chopin__static_cache_get(cache, path, len, now);
    }
    return chopin__static_cache_get(cache, w->name, w->name_len, now);
}

/* Appends ready-made head lines; a failure (the arena) turns the answer into a 500. */
static int add_lines(chopin_res *res, const char *lines, size_t len)
{
    if (chopin__res_header_lines(res, lines, len) == 0)
        return 0;
    chopin_res_error(res, 500, NULL);
    return -1;
}

static void add_common_lines(const chopin_static *st, chopin_res *res,
                             const struct chopin__static_entry *e, const struct want *w)
{
    static const char vary[] = "Vary: Accept-Encoding\r\n";
    if (add_lines(res, e->lines, e->lines_len) < 0)
        return;
    if (w->vary && add_lines(res, vary, sizeof vary - 1) < 0)
        return;
    if (w->coding && chopin_res_header_add(res, "Content-Encoding", w->coding) < 0)
        chopin_res_error(res, 500, NULL);
}

static void not_modified(const chopin_static *st, chopin_res *res,
                         const struct chopin__static_entry *e, const struct want *w)
{
    chopin_res_empty(res, 304);
    if (st->cache_line && add_lines(res, st->cache_line, st->cache_line_len) < 0)
        return;
    add_common_lines(st, res, e, w);
}

/* Sets the body: bytes [first, first + len) of the entry's file, from memory or from its
 * descriptor, by reference either way (the entry may be replaced while the answer is
 * still queued: the answer keeps what it took). */
static void set_file_body(chopin_res *res, int status, const char *type,
                          const struct chopin__static_entry *e, uint64_t first, uint64_t len)
{
    if (e->bytes) {
        chopin__res_replace_body(res, status, CHOPIN__RES_OWNED, type, strlen(type));
        e->bytes->refs++;
        res->body = e->bytes->data + first;
        res->body_len = len;
        res->free_fn = chopin__static_bytes_unref;
        res->free_arg = e->bytes;
        return;
    }
    chopin__res_replace_body(res, status, CHOPIN__RES_FILE, type, strlen(type));
    e->file->refs++;
    res->fd = e->file->fd;
    res->offset = first;
    res->body_len = len;
    res->close_fd = 0;
    res->free_fn = chopin__static_fd_unref;
    res->free_arg = e->file;
}

static void range_unsatisfiable(chopin_res *res, uint64_t size)
{
    char line[64];
    snprintf(line, sizeof line, "bytes */%" PRIu64, size);
    chopin_res_error(res, 416, NULL);
    if (chopin_res_header_set(res, "Content-Range", line) < 0)
        chopin_res_error(res, 500, NULL);
}

static void multipart(chopin_res *res, const char *type, const struct chopin__static_entry *e,
                      const struct chopin__range *r, size_t n)
{
    struct chopin__static_source src = {.bytes = e->bytes, .fd = -1, .size = e->size};
    if (e->bytes) {
        e->bytes->refs++;
    } else if ((src.fd = fcntl(e->file->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        chopin_res_error(res, 503, NULL);
        return;
    }
    chopin__static_multipart(res, src, type, r, n);
}

/* The answer to GET/HEAD of a regular file, after its representation was chosen. */
static void answer_file(const chopin_static *st, chopin_req *req, chopin_res *res,
                        const struct fields *fl, const struct chopin__static_entry *e,
                        const struct want *w)
{
    struct chopin__validators v = {e->etag, e->etag_len, e->mtime};
    const struct chopin__cond_fields *f = &fl->cond;
    chopin_method m = chopin_req_method(req);
    int64_t now = (int64_t)(clock_ms(CLOCK_REALTIME_COARSE) / 1000);
    switch (chopin__cond_eval(f, 1, &v, now)) {
    case CHOPIN__COND_NOT_MODIFIED:
        not_modified(st, res, e, w);
        return;
    case CHOPIN__COND_FAILED:
        chopin_res_error(res, 412, NULL);
        return;
    default:
        break;
    }
    const char *type = type_of(st, w->name); /* not before: a 304 has none */
    /* RFC 9110 §14.2: range handling is defined for GET only. */
    chopin_str range = m == CHOPIN_METHOD_GET ? fl->range : (chopin_str){0};
    struct chopin__range r[MAX_RANGES_CAP];
    size_t n = 0;
    enum chopin__range_result rr = CHOPIN__RANGE_IGNORE;
    if (range.ptr && chopin__if_range_holds(f->if_range, &v, now))
        rr = chopin__range_parse(range.ptr, range.len, e->size, r, st->max_ranges, &n);
    if (rr == CHOPIN__RANGE_UNSATISFIABLE) {
        range_unsatisfiable(res, e->size);
        return;
    }
    if (rr == CHOPIN__RANGE_OK && n > 1) {
        multipart(res, type, e, r, n);
    } else if (rr == CHOPIN__RANGE_OK) {
        set_file_body(res, 206, type, e, r[0].first, r[0].last - r[0].first + 1);
        char line[96];
        snprintf(line, sizeof line, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, r[0].first,
                 r[0].last, e->size);
        if (chopin_res_header_set(res, "Content-Range", line) < 0) {
            chopin_res_error(res, 500, NULL);
            return;
        }
    } else {
        set_file_body(res, 200, type, e, 0, e->size);
    }
    if (add_lines(res, st->lines, st->lines_len) == 0)
        add_common_lines(st, res, e, w);
}

/* Answers regular file `name`, whose entry `e` was just looked up (the last lookup: it
 * is still valid), or one of its precompressed siblings. */
static void serve_file(chopin_static *st, struct chopin__static_cache *cache, chopin_req *req,
                       chopin_res *res, const char *name, size_t len,
                       const struct chopin__static_entry *e, uint64_t now)
{
    struct fields f;
    read_fields(req, &f);
    struct want w = {.name = name, .name_len = len};
    if (st->flags & CHOPIN_STATIC_PRECOMPRESSED)
        e = pick_representation(cache, &f, &w, now);
    if (!e)
        chopin_res_error(res, 503, NULL);
    else if (e->kind != CHOPIN__STATIC_FILE)
        chopin_res_error(res, error_status(e->err), NULL);
    else
        answer_file(st, req, res, &f, e, &w);
}

/* A directory: its index file, else a listing (when on), else 403 as nginx answers. */
static void serve_dir(chopin_static *st, struct chopin__static_cache *cache, chopin_req *req,
                      chopin_res *res, const char *rel, size_t len, uint64_t now)
{
    if (len && rel[len - 1] != '/') {
        redirect_slash(req, res);
        return;
    }
    if (st->index) {
        char path[PATH_MAX];
        size_t ilen = strlen(st->index);
        if (len + ilen < sizeof path) {
            memcpy(path, rel, len);
            memcpy(path + len, st->index, ilen + 1);
            const struct chopin__static_entry *e =
                chopin__static_cache_get(cache, path, len + ilen, now);
            if (e && e->kind == CHOPIN__STATIC_FILE) {
                serve_file(st, cache, req, res, path, len + ilen, e, now);
                return;
            }
        }
    }
    if (st->flags & CHOPIN_STATIC_LISTING)
        chopin__static_listing(st, req, res, rel, len);
    else
        chopin_res_error(res, 403, NULL);
}

static void static_handler(chopin_req *req, chopin_res *res, void *data)
{
    chopin_static *st = data;
    chopin_str rel = chopin_req_param(req, "path");
    if (!rel.ptr) { /* the prefix itself */
        redirect_slash(req, res);
        return;
    }
    while (rel.len && rel.ptr[0] == '/') { /* "/static//a": as nginx's merge_slashes */
        rel.ptr++;
        rel.len--;
    }
    char name[PATH_MAX]; /* NUL-terminated: the type comes from its extension */
    name[0] = '\0';
    if (!path_allowed(st, rel.ptr, rel.len) ||
        (rel.len && chopin__beneath_path(name, sizeof name, rel.ptr, rel.len) < 0)) {
        chopin_res_error(res, 404, NULL);
        return;
    }
    struct chopin__static_cache *cache = worker_cache(st);
    uint64_t now = clock_ms(CLOCK_MONOTONIC_COARSE);
    const struct chopin__static_entry *e =
        cache ? chopin__static_cache_get(cache, name, rel.len, now) : NULL;
    if (!e)
        chopin_res_error(res, 503, NULL);
    else if (e->kind == CHOPIN__STATIC_DIR)
        serve_dir(st, cache, req, res, name, rel.len, now);
    else if (e->kind == CHOPIN__STATIC_FILE && rel.len && name[rel.len - 1] != '/')
        serve_file(st, cache, req, res, name, rel.len, e, now);
    else
        chopin_res_error(res, e->kind == CHOPIN__STATIC_FILE ? 404 : error_status(e->err), NULL);
}

int chopin_router_static(chopin_router *r, const char *prefix, chopin_static *st)
{
    if (!r || !prefix || !st || prefix[0] != '/')
        return -EINVAL;
    size_t len = strlen(prefix);
    while (len > 0 && prefix[len - 1] == '/')
        len--;
    char pattern[1024];
    if (len + sizeof "/*path" > sizeof pattern)
        return -EINVAL;
    memcpy(pattern, prefix, len);
    memcpy(pattern + len, "/*path", sizeof "/*path");
    int err = chopin_router_get(r, pattern, static_handler, st);
    if (err || len == 0)
        return err;
    pattern[len] = '\0';
    return chopin_router_get(r, pattern, static_handler, st);
}
