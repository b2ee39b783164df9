/* SPDX-License-Identifier: MIT */
/* What the parts of a static directory share: the mount, and the listing and multipart
 * answers built in files of their own. */
#ifndef CHOPIN_API_STATIC_INTERNAL_H
#define CHOPIN_API_STATIC_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "api/static_cache.h"
#include "chopin.h"
#include "http/range.h"

struct chopin__static_mime {
    char *ext;  /* without the dot */
    char *type;
};

struct chopin_static {
    int root;
    pthread_key_t key; /* each worker's struct chopin__static_cache */
    struct chopin__static_cache_cfg cache_cfg;
    uint32_t flags;
    uint32_t max_ranges;
    char *index;        /* NULL: no index file */
    char *lines;        /* head lines of every 200 and 206 (Accept-Ranges, nosniff, ...) */
    size_t lines_len;
    char *cache_line;   /* "Cache-Control: ...\r\n" (also on 304), or NULL */
    size_t cache_line_len;
    struct chopin__static_mime *mimes;
    size_t nmimes;
};

/** Answers a directory listing of rel[0..len) (a directory, its name ending in '/' or
 *  empty) as HTML: names sorted bytewise, escaped, linked percent-encoded. */
void chopin__static_listing(const chopin_static *st, chopin_req *req, chopin_res *res,
                            const char *rel, size_t len);

/** The source a multipart answer reads: the file's bytes in memory (a reference taken)
 *  or a descriptor of its own (dup'ed, closed at the end). */
struct chopin__static_source {
    struct chopin__static_bytes *bytes;
    int fd;
    uint64_t size;
};

/** Answers 206 multipart/byteranges (RFC 9110 §14.6) of the n ranges of `src`, each part
 *  typed `type`. Takes `src` (also on failure, when it answers 500 instead). */
void chopin__static_multipart(chopin_res *res, struct chopin__static_source src,
                              const char *type, const struct chopin__range *ranges, size_t n);

#endif
