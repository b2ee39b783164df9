/* SPDX-License-Identifier: MIT */
/* The per-worker open-file cache of a static directory (see static_cache.h). */
#include "api/static_cache.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/open_beneath.h"
#include "http/date.h"

struct chopin__static_cache {
    struct chopin__static_cache_cfg cfg;
    struct chopin__static_entry **table;
    size_t mask;
    uint32_t count;
    struct chopin__static_entry *newest, *oldest;
};

void chopin__static_bytes_unref(void *ptr, void *arg)
{
    (void)ptr;
    struct chopin__static_bytes *b = arg;
    if (b && --b->refs == 0)
        free(b);
}

void chopin__static_fd_unref(void *ptr, void *arg)
{
    (void)ptr;
    struct chopin__static_fd *f = arg;
    if (f && --f->refs == 0) {
        close(f->fd);
        free(f);
    }
}

struct chopin__static_cache *chopin__static_cache_new(const struct chopin__static_cache_cfg *cfg)
{
    struct chopin__static_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    size_t slots = 16;
    while (slots < (size_t)cfg->capacity * 2)
        slots *= 2;
    c->table = calloc(slots, sizeof *c->table);
    if (!c->table) {
        free(c);
        return NULL;
    }
    c->mask = slots - 1;
    return c;
}

/* Forgets what the entry resolved to (its descriptor and bytes), keeping its key. */
static void entry_clear(struct chopin__static_entry *e)
{
    chopin__static_fd_unref(NULL, e->file);
    e->file = NULL;
    chopin__static_bytes_unref(NULL, e->bytes);
    e->bytes = NULL;
}

static void entry_free(struct chopin__static_entry *e)
{
    entry_clear(e);
    free(e->path);
    free(e);
}

void chopin__static_cache_free(struct chopin__static_cache *c)
{
    if (!c)
        return;
    for (struct chopin__static_entry *e = c->newest, *next; e; e = next) {
        next = e->older;
        entry_free(e);
    }
    free(c->table);
    free(c);
}

/* FNV-1a: paths are short, and the table is the worker's own (no hash flooding across
 * processes; a flood of distinct misses only churns this bounded table). */
static uint64_t path_hash(const char *p, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static void lru_unlink(struct chopin__static_cache *c, struct chopin__static_entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push_newest(struct chopin__static_cache *c, struct chopin__static_entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    c->newest = e;
    if (!c->oldest)
        c->oldest = e;
}

static void table_remove(struct chopin__static_cache *c, struct chopin__static_entry *e)
{
    struct chopin__static_entry **pp = &c->table[e->hash & c->mask];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
}

static void evict_oldest(struct chopin__static_cache *c)
{
    struct chopin__static_entry *e = c->oldest;
    lru_unlink(c, e);
    table_remove(c, e);
    c->count--;
    entry_free(e);
}

/* Strong validators from the inode, size and modification time (RFC 9110 §8.8.3: any
 * change of content changes at least one of them, short of a same-size rewrite within
 * the file system's timestamp granularity), and the head lines that carry them. */
static void entry_validators(struct chopin__static_entry *e)
{
    int n = snprintf(e->etag, sizeof e->etag, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", e->ino,
                     e->size, (uint64_t)e->mtime * 1000000000u + (uint64_t)e->mtime_ns);
    e->etag_len = (uint32_t)n;
    char date[CHOPIN__DATE_LEN + 1];
    chopin__date_format((time_t)e->mtime, date);
    n = snprintf(e->lines, sizeof e->lines, "ETag: %s\r\nLast-Modified: %s\r\n", e->etag, date);
    e->lines_len = (uint32_t)n;
}

/* The whole file into memory, or NULL (then it is sent from its descriptor). A file
 * that changed size while read is not kept: its sendfile finds out what it holds. */
static struct chopin__static_bytes *read_small(int fd, uint64_t size)
{
    struct chopin__static_bytes *b = malloc(sizeof *b + (size ? size : 1));
    if (!b)
        return NULL;
    uint64_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, b->data + got, size - got, (off_t)got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            free(b);
            return NULL;
        }
        got += (uint64_t)n;
    }
    b->refs = 1;
    b->len = size;
    return b;
}

/* Takes fd (open on the entry's path) and its stat as the entry's new state. */
static void entry_fill(const struct chopin__static_cache *c, struct chopin__static_entry *e,
                       int fd, const struct stat *st)
{
    e->ino = (uint64_t)st->st_ino;
    e->size = (uint64_t)st->st_size;
    e->mtime = (int64_t)st->st_mtim.tv_sec;
    e->mtime_ns = (int64_t)st->st_mtim.tv_nsec;
    e->err = 0;
    if (S_ISDIR(st->st_mode)) {
        e->kind = CHOPIN__STATIC_DIR;
        close(fd);
        return;
    }
    if (!S_ISREG(st->st_mode)) { /* a FIFO, device or socket is never served */
        e->kind = CHOPIN__STATIC_ERROR;
        e->err = -EACCES;
        close(fd);
        return;
    }
    e->kind = CHOPIN__STATIC_FILE;
    entry_validators(e);
    if (e->size <= c->cfg.memory_max && (e->bytes = read_small(fd, e->size)) != NULL) {
        close(fd);
        return;
    }
    if (!(e->file = malloc(sizeof *e->file))) {
        close(fd);
        e->kind = CHOPIN__STATIC_ERROR;
        e->err = -ENOMEM;
        return;
    }
    e->file->refs = 1;
    e->file->fd = fd;
}

static int same_file(const struct chopin__static_entry *e, const struct stat *st)
{
    return e->kind != CHOPIN__STATIC_ERROR && e->ino == (uint64_t)st->st_ino &&
           e->size == (uint64_t)st->st_size && e->mtime == (int64_t)st->st_mtim.tv_sec &&
           e->mtime_ns == (int64_t)st->st_mtim.tv_nsec &&
           (e->kind == CHOPIN__STATIC_DIR) == !!S_ISDIR(st->st_mode);
}

/* Resolves the entry's path again. An unchanged file keeps its descriptor and bytes
 * (answers in flight may be sending them); a changed one gets the new ones. */
static void entry_resolve(const struct chopin__static_cache *c, struct chopin__static_entry *e,
                          uint64_t now_ms)
{
    e->checked_ms = now_ms;
    int fd = chopin__open_beneath(c->cfg.root, e->path[0] ? e->path : ".", c->cfg.open_flags);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) < 0) {
        int err = errno;
        close(fd);
        fd = -err;
    }
    if (fd < 0) {
        entry_clear(e);
        e->kind = CHOPIN__STATIC_ERROR;
        e->err = fd;
        return;
    }
    if (same_file(e, &st)) {
        close(fd);
        return;
    }
    entry_clear(e);
    entry_fill(c, e, fd, &st);
}

static struct chopin__static_entry *entry_new(struct chopin__static_cache *c, const char *path,
                                              size_t len, uint64_t hash)
{
    struct chopin__static_entry *e = calloc(1, sizeof *e);
    char *copy = malloc(len + 1);
    if (!e || !copy) {
        free(e);
        free(copy);
        return NULL;
    }
    memcpy(copy, path, len);
    copy[len] = '\0';
    e->path = copy;
    e->path_len = len;
    e->hash = hash;
    if (c->count >= c->cfg.capacity && c->oldest)
        evict_oldest(c);
    e->hnext = c->table[hash & c->mask];
    c->table[hash & c->mask] = e;
    c->count++;
    return e;
}

const struct chopin__static_entry *chopin__static_cache_get(struct chopin__static_cache *c,
                                                            const char *path, size_t len,
                                                            uint64_t now_ms)
{
    uint64_t h = path_hash(path, len);
    struct chopin__static_entry *e = c->table[h & c->mask];
    while (e && !(e->hash == h && e->path_len == len && memcmp(e->path, path, len) == 0))
        e = e->hnext;
    if (e) {
        lru_unlink(c, e);
        if (now_ms - e->checked_ms >= c->cfg.valid_ms)
            entry_resolve(c, e, now_ms);
    } else {
        if (!(e = entry_new(c, path, len, h)))
            return NULL;
        entry_resolve(c, e, now_ms);
    }
    lru_push_newest(c, e);
    return e;
}
