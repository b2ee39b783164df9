/* SPDX-License-Identifier: MIT */
/*
 * Request bodies as streams (issue 18): chopin_body_read and its backpressure, the
 * spooling reader, and the public faces of the form and multipart parsers (src/http/).
 * The connection's side, which hands the bytes over as they arrive, is in conn.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chopin.h"
#include "conn.h"
#include "engine.h"
#include "../exchange.h" /* src/exchange.h, not api/exchange.h beside this file */
#include "http/form.h"
#include "http/message.h"
#include "http/multipart.h"
#include "mem/arena.h"

/* ----- streamed bodies --------------------------------------------------------------------- */

int chopin_body_read(chopin_req *req, chopin_res *res, const chopin_body_handler *h, void *arg,
                     chopin_exchange *out) {
    struct chopin__engine *e = req ? req->engine : NULL;
    struct chopin__exchange *x = e ? e->dispatching : NULL;
    if (!x || req != &x->req || !h || !h->on_data || !h->on_end || !out || x->sink)
        return CHOPIN_EINVAL;
    struct chopin__body_sink *sink = chopin__arena_alloc(&x->arena, sizeof *sink);
    if (!sink)
        return CHOPIN_ENOMEM;
    int rc = chopin_defer(req, res, out);
    if (rc < 0)
        return rc;
    *sink = (struct chopin__body_sink){.h = *h, .arg = arg};
    x->sink = sink;
    /* The handler deadline starts when the body has ended (chopin__exchange_body_end). */
    chopin__exchange_deadline_hold(e, x);
    if (x->body_to_come)
        return 0;
    chopin__exchange_body_data(e, x, req->body, (size_t)req->body_len);
    chopin__exchange_body_end(e, x);
    return 0;
}

/* The exchange whose body is still being read, or NULL. */
static struct chopin__exchange *reading(chopin_exchange h) {
    struct chopin__exchange *x = chopin__exchange_lookup(h);
    return x && x->sink && !x->sink->ended && x->conn ? x : NULL;
}

/* A protocol that carries several bodies at once (HTTP/2) pauses the exchange's own. */
static void body_pause(struct chopin__exchange *x, int pause) {
    struct chopin__conn *c = x->conn;
    if (c->proto && c->proto->body_pause)
        c->proto->body_pause(c, x, pause);
    else if (pause)
        chopin__conn_body_pause(c);
    else
        chopin__conn_body_resume(c);
}

int chopin_body_pause(chopin_exchange h) {
    struct chopin__exchange *x = reading(h);
    if (!x)
        return CHOPIN_ESTALE;
    body_pause(x, 1);
    return 0;
}

int chopin_body_resume(chopin_exchange h) {
    struct chopin__exchange *x = reading(h);
    if (!x)
        return CHOPIN_ESTALE;
    body_pause(x, 0);
    return 0;
}

/* ----- spooling ------------------------------------------------------------------------------ */

#define SPOOL_IN_MEMORY (64u << 10)

struct spool {
    chopin_spool_fn done;
    void *arg;
    char *mem;
    size_t mem_len, mem_cap, in_memory;
    int fd;
    uint64_t len;
    char dir[];
};

static void spool_free(struct spool *s) {
    if (s->fd >= 0)
        close(s->fd);
    free(s->mem);
    free(s);
}

/* An unnamed file: O_TMPFILE (Linux 3.11, on file systems that have it), else a named one
 * unlinked at once, so nothing is left behind whatever happens to the process. */
static int spool_file(const char *dir) {
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
#endif
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/chopin-body-XXXXXX", dir) >= sizeof path)
        return -ENAMETOOLONG;
    int tmp = mkostemp(path, O_CLOEXEC);
    if (tmp < 0)
        return -errno;
    unlink(path);
    return tmp;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        if (w == 0)
            return CHOPIN_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int spool_put(struct spool *s, const char *p, size_t n) {
    if (s->fd < 0 && s->mem_len + n <= s->in_memory) {
        if (s->mem_len + n > s->mem_cap) {
            size_t cap = s->mem_cap ? s->mem_cap : 4096;
            while (cap < s->mem_len + n)
                cap *= 2;
            if (cap > s->in_memory)
                cap = s->in_memory;
            char *m = realloc(s->mem, cap);
            if (!m)
                return CHOPIN_ENOMEM;
            s->mem = m;
            s->mem_cap = cap;
        }
        memcpy(s->mem + s->mem_len, p, n);
        s->mem_len += n;
        return 0;
    }
    if (s->fd < 0) {
        int fd = spool_file(s->dir);
        if (fd < 0)
            return fd;
        s->fd = fd;
        int rc = write_all(fd, s->mem, s->mem_len);
        free(s->mem);
        s->mem = NULL;
        s->mem_len = s->mem_cap = 0;
        if (rc < 0)
            return rc;
    }
    return write_all(s->fd, p, n);
}

static void spool_data(chopin_exchange x, const char *p, size_t n, void *arg) {
    struct spool *s = arg;
    int rc = spool_put(s, p, n);
    if (rc == 0) {
        s->len += n;
        return;
    }
    /* The answer leaves now and the rest of the body is not read: no callback comes
     * after this one (the exchange is no longer open). */
    s->done(x, NULL, rc, s->arg);
    chopin_res *res = chopin_exchange_res(x);
    if (res) {
        chopin_res_error(res, 500, NULL);
        chopin_exchange_finish(x);
    }
    spool_free(s);
}

static void spool_end(chopin_exchange x, void *arg) {
    struct spool *s = arg;
    chopin_spooled body = {.data = s->fd < 0 ? (s->mem ? s->mem : "") : NULL,
                           .fd = s->fd,
                           .len = s->len};
    s->done(x, &body, 0, s->arg);
    spool_free(s);
}

static void spool_error(chopin_exchange x, int err, void *arg) {
    struct spool *s = arg;
    s->done(x, NULL, err, s->arg);
    spool_free(s);
}

int chopin_body_spool(chopin_req *req, chopin_res *res, uint64_t in_memory, const char *dir,
                      chopin_spool_fn done, void *arg, chopin_exchange *out) {
    if (!done)
        return CHOPIN_EINVAL;
    if (!dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    size_t dlen = strlen(dir);
    struct spool *s = malloc(sizeof *s + dlen + 1);
    if (!s) {
        chopin_res_error(res, 503, NULL);
        return CHOPIN_ENOMEM;
    }
    *s = (struct spool){.done = done, .arg = arg, .fd = -1,
                        .in_memory = in_memory ? (size_t)in_memory : SPOOL_IN_MEMORY};
    memcpy(s->dir, dir, dlen + 1);
    static const chopin_body_handler h = {spool_data, spool_end, spool_error};
    int rc = chopin_body_read(req, res, &h, s, out);
    if (rc < 0)
        free(s); /* no callback ran, none will */
    return rc;
}

/* ----- application/x-www-form-urlencoded ------------------------------------------------- */

#define FORM_MAX_FIELDS 1000
#define FORM_MAX_FIELD (64u << 10)

struct form_fields {
    chopin_form_field *v;
    size_t n;
};

static int form_field(void *arg, const char *name, size_t nlen, const char *value, size_t vlen) {
    struct form_fields *f = arg;
    f->v[f->n++] = (chopin_form_field){{name, nlen}, {value, vlen}};
    return 0;
}

int chopin_form_parse(chopin_req *req, const char *data, size_t len, uint32_t max_fields,
                      size_t max_field_bytes, const chopin_form_field **out) {
    if (!req || !out || (!data && len))
        return CHOPIN_EINVAL;
    *out = NULL;
    if (!max_fields)
        max_fields = FORM_MAX_FIELDS;
    if (!max_field_bytes)
        max_field_bytes = FORM_MAX_FIELD;
    size_t pieces = 1;
    for (const char *p = data, *end = data + len; p && (p = memchr(p, '&', (size_t)(end - p))); p++)
        pieces++;
    size_t cap = pieces < max_fields ? pieces : max_fields;
    char *copy = len ? chopin__arena_alloc(req->arena, len) : NULL;
    struct form_fields f = {chopin__arena_alloc(req->arena, cap * sizeof *f.v), 0};
    if ((len && !copy) || !f.v)
        return CHOPIN_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    ssize_t n = chopin__form_parse(copy, len, max_fields, max_field_bytes, form_field, &f);
    if (n < 0)
        return (int)n;
    *out = n ? f.v : NULL;
    return (int)n;
}

chopin_str chopin_form_value(const chopin_form_field *fields, size_t n, const char *name) {
    size_t len = name ? strlen(name) : 0;
    for (size_t i = 0; fields && name && i < n; i++)
        if (fields[i].name.len == len && memcmp(fields[i].name.ptr, name, len) == 0)
            return fields[i].value;
    return (chopin_str){NULL, 0};
}

/* ----- multipart/form-data ------------------------------------------------------------------ */

#define MP_MAX_PARTS 1000
#define MP_MAX_HEADER (8u << 10)

struct chopin_multipart {
    struct chopin__multipart mp;
    chopin_multipart_handler h;
    void *arg;
    char hbuf[];
};

static int mp_part(void *arg, const struct chopin__mp_part *p) {
    chopin_multipart *m = arg;
    chopin_part part = {
        .name = {p->name, p->name_len},
        .filename = {p->filename, p->filename_len},
        .content_type = {p->content_type, p->content_type_len},
        .headers = {p->headers, p->headers_len},
    };
    return m->h.on_part(&part, m->arg);
}

static int mp_data(void *arg, const char *p, size_t n) {
    chopin_multipart *m = arg;
    return m->h.on_data(p, n, m->arg);
}

static int mp_end(void *arg) {
    chopin_multipart *m = arg;
    return m->h.on_part_end ? m->h.on_part_end(m->arg) : 0;
}

int chopin_multipart_new(chopin_str content_type, uint32_t max_parts, uint32_t max_header_bytes,
                         const chopin_multipart_handler *h, void *arg, chopin_multipart **out) {
    if (!out || !h || !h->on_part || !h->on_data || !content_type.ptr)
        return CHOPIN_EINVAL;
    *out = NULL;
    const char *b;
    size_t blen;
    if (chopin__mp_boundary(content_type.ptr, content_type.len, &b, &blen) < 0)
        return CHOPIN_EINVAL;
    if (!max_parts)
        max_parts = MP_MAX_PARTS;
    if (!max_header_bytes)
        max_header_bytes = MP_MAX_HEADER;
    chopin_multipart *m = malloc(sizeof *m + max_header_bytes);
    if (!m)
        return CHOPIN_ENOMEM;
    m->h = *h;
    m->arg = arg;
    static const struct chopin__mp_callbacks cb = {mp_part, mp_data, mp_end};
    if (chopin__mp_init(&m->mp, b, blen, m->hbuf, max_header_bytes, max_parts, &cb, m) < 0) {
        free(m);
        return CHOPIN_EINVAL;
    }
    *out = m;
    return 0;
}

int chopin_multipart_feed(chopin_multipart *mp, const char *data, size_t len) {
    if (!mp || (!data && len))
        return CHOPIN_EINVAL;
    return len ? chopin__mp_feed(&mp->mp, data, len) : mp->mp.err;
}

int chopin_multipart_finish(const chopin_multipart *mp) {
    return mp ? chopin__mp_finish(&mp->mp) : CHOPIN_EINVAL;
}

void chopin_multipart_free(chopin_multipart *mp) { free(mp); }

int chopin_multipart_status(int err) { return err == CHOPIN_EFBIG ? 413 : 400; }
