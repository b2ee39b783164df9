/* SPDX-License-Identifier: MIT */
/*
 * nghttp2's allocator (h2/mem.h): blocks of a few size classes kept on per-thread free
 * lists. nghttp2 allocates and frees several blocks per stream (the stream, its frames,
 * their fields, the outbound items): through malloc that was 16% of the server's CPU
 * under h2load (perf, 64 connections x 100 streams, /plaintext: 1.61 -> 1.47 us per
 * request). A session lives on one worker thread, so the lists need no lock; each keeps
 * at most KEEP blocks (4 MiB in all, reached only with thousands of streams in flight),
 * and they are emptied when the thread's last session ends, and when the thread ends.
 */
#include "h2/mem.h"

#ifdef CHOPIN_HAVE_NGHTTP2

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CLASSES 6          /* 64, 128, ..., 2048 bytes */
#define SMALLEST 64
#define KEEP 1024          /* per class and thread */
#define BIG CLASSES        /* the class of a block malloc'd for its size alone */

/* Before every block: its class and the bytes it can hold. */
struct head {
    uint32_t cls;
    uint32_t pad;
    size_t cap;
};

struct cache {
    void *free[CLASSES]; /* each free block's first word links the next */
    uint32_t count[CLASSES];
};

static __thread struct cache *cache;
static __thread uint32_t sessions; /* the thread's sessions open now */
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_empty(struct cache *c) {
    for (int k = 0; k < CLASSES; k++) {
        while (c->free[k]) {
            void *b = c->free[k];
            memcpy(&c->free[k], b, sizeof(void *));
            free((struct head *)b - 1);
        }
        c->count[k] = 0;
    }
}

static void cache_free(void *arg) {
    cache_empty(arg);
    free(arg);
}

static void cache_setup(void) { pthread_key_create(&cache_key, cache_free); }

static struct cache *thread_cache(void) {
    if (!cache) {
        pthread_once(&cache_once, cache_setup);
        cache = calloc(1, sizeof *cache);
        if (cache)
            pthread_setspecific(cache_key, cache);
    }
    return cache;
}

static uint32_t class_of(size_t size) {
    uint32_t k = 0;
    for (size_t cap = SMALLEST; cap < size; cap <<= 1)
        if (++k == CLASSES)
            return BIG;
    return k;
}

static void *mem_malloc(size_t size, void *ud) {
    (void)ud;
    uint32_t k = class_of(size);
    struct cache *c = k < CLASSES ? thread_cache() : NULL;
    if (c && c->free[k]) {
        void *b = c->free[k];
        memcpy(&c->free[k], b, sizeof(void *));
        c->count[k]--;
        return b;
    }
    size_t cap = k < CLASSES ? (size_t)SMALLEST << k : size;
    if (cap > SIZE_MAX - sizeof(struct head))
        return NULL;
    struct head *h = malloc(sizeof *h + cap);
    if (!h)
        return NULL;
    h->cls = k;
    h->cap = cap;
    return h + 1;
}

static void mem_free(void *p, void *ud) {
    (void)ud;
    if (!p)
        return;
    struct head *h = (struct head *)p - 1;
    struct cache *c = h->cls < CLASSES ? thread_cache() : NULL;
    if (!c || c->count[h->cls] >= KEEP) {
        free(h);
        return;
    }
    memcpy(p, &c->free[h->cls], sizeof(void *));
    c->free[h->cls] = p;
    c->count[h->cls]++;
}

static void *mem_calloc(size_t n, size_t size, void *ud) {
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = mem_malloc(n * size, ud);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static void *mem_realloc(void *p, size_t size, void *ud) {
    if (!p)
        return mem_malloc(size, ud);
    struct head *h = (struct head *)p - 1;
    if (size <= h->cap)
        return p;
    void *q = mem_malloc(size, ud);
    if (!q)
        return NULL;
    memcpy(q, p, h->cap);
    mem_free(p, ud);
    return q;
}

static nghttp2_mem allocator = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};

nghttp2_mem *chopin__h2_mem(void) {
    sessions++;
    return &allocator;
}

void chopin__h2_mem_done(void) {
    if (--sessions == 0 && cache)
        cache_empty(cache);
}

#endif
