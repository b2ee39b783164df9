/* SPDX-License-Identifier: MIT */
/*
 * The open-file cache of a static directory, one per worker thread (nothing shared, no
 * lock), in the manner of nginx's open_file_cache: what a path resolved to (a file with
 * its descriptor and stat, a directory, or an error), checked again at most once per
 * validity period, bounded, least recently used first out. A hot small file also keeps
 * its bytes, so answering it costs neither open, fstat nor read.
 */
#ifndef CHOPIN_API_STATIC_CACHE_H
#define CHOPIN_API_STATIC_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* The bytes of a small file, shared by the cache and the answers that send them (the
 * entry can be replaced while an answer is still queued). Touched only on its worker. */
struct chopin__static_bytes {
    uint32_t refs;
    uint64_t len;
    char data[];
};

/** Drops one reference (a chopin_free_fn: `ptr` unused, `arg` the bytes). */
void chopin__static_bytes_unref(void *ptr, void *arg);

/* The descriptor of a file sent from disk, shared the same way: an answer takes a
 * reference instead of a duplicate descriptor (no fcntl and close per answer, and a
 * thousand slow downloads of one file hold one descriptor); closed with the last. */
struct chopin__static_fd {
    uint32_t refs;
    int fd;
};

/** Drops one reference (a chopin_free_fn: `ptr` unused, `arg` the chopin__static_fd). */
void chopin__static_fd_unref(void *ptr, void *arg);

enum chopin__static_kind {
    CHOPIN__STATIC_ERROR = 0, /* err holds why (a negative errno) */
    CHOPIN__STATIC_FILE,
    CHOPIN__STATIC_DIR,
};

#define CHOPIN__ETAG_MAX 64
#define CHOPIN__VALIDATOR_LINES_MAX 128

struct chopin__static_entry {
    struct chopin__static_entry *hnext;            /* hash chain */
    struct chopin__static_entry *newer, *older;    /* LRU list */
    uint64_t hash;
    char *path; /* NUL-terminated, relative to the root ("" is the root) */
    size_t path_len;
    uint64_t checked_ms; /* when the path was last resolved */
    int kind;            /* enum chopin__static_kind */
    int err;
    struct chopin__static_fd *file; /* a file not kept in memory; else NULL */
    struct chopin__static_bytes *bytes; /* a small file's content; else NULL */
    uint64_t size, ino;
    int64_t mtime;       /* seconds */
    int64_t mtime_ns;
    uint32_t etag_len, lines_len;
    char etag[CHOPIN__ETAG_MAX]; /* quoted */
    /* "ETag: ...\r\nLast-Modified: ...\r\n", ready to append to an answer's head. */
    char lines[CHOPIN__VALIDATOR_LINES_MAX];
};

struct chopin__static_cache;

struct chopin__static_cache_cfg {
    int root;              /* directory descriptor */
    unsigned open_flags;   /* for chopin__open_beneath */
    uint32_t capacity;     /* entries */
    uint32_t valid_ms;     /* 0: resolve on every lookup */
    uint64_t memory_max;   /* files up to this size keep their bytes */
};

struct chopin__static_cache *chopin__static_cache_new(const struct chopin__static_cache_cfg *cfg);
void chopin__static_cache_free(struct chopin__static_cache *c);

/**
 * What path[0..len) (relative, already checked) resolves to now, from the cache when it
 * was resolved less than valid_ms ago, else opened again. `now_ms` is a monotonic clock.
 * NULL only when out of memory. The entry is valid until the next lookup on this cache.
 */
const struct chopin__static_entry *chopin__static_cache_get(struct chopin__static_cache *c,
                                                            const char *path, size_t len,
                                                            uint64_t now_ms);

#endif
