/* SPDX-License-Identifier: MIT */
/*
 * A token bucket per client address, per worker: each worker keeps its own table and is
 * the only one to touch it, so the request path takes no lock. The tables are fixed-size
 * open-addressed arrays (a bounded probe, the least recently seen client of the probe
 * forgotten when they are all taken): memory does not grow with the number of clients,
 * and a flood of addresses costs a forgotten bucket, which starts full again.
 */
#include <math.h> /* isfinite: a macro, no libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "http/message.h"

#define TABLE_SIZE 4096 /* per worker, a power of two */
#define PROBE 8
#define MAX_WORKERS 4096 /* options.workers' bound (config.c) */

struct bucket {
    uint64_t last_ms; /* 0: free */
    double tokens;
    uint8_t len;
    char key[47]; /* the address without its port: INET6_ADDRSTRLEN - 1 */
};

struct table {
    struct bucket b[TABLE_SIZE];
};

struct chopin_rate_limit {
    double per_ms, burst;
    struct table *tables[MAX_WORKERS]; /* each written by its own worker only */
};

chopin_rate_limit *chopin_rate_limit_new(double per_second, uint32_t burst) {
    if (!(per_second > 0) || !isfinite(per_second) || burst == 0)
        return NULL;
    chopin_rate_limit *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->per_ms = per_second / 1000.0;
    l->burst = burst;
    return l;
}

void chopin_rate_limit_free(chopin_rate_limit *l) {
    if (!l)
        return;
    for (int i = 0; i < MAX_WORKERS; i++)
        free(l->tables[i]);
    free(l);
}

/* The client's address without the port: "203.0.113.9", "2001:db8::1". */
static chopin_str client_of(chopin_req *req) {
    chopin_str s = chopin_req_remote_addr(req);
    const char *colon = memrchr(s.ptr, ':', s.len);
    if (colon && s.ptr[0] == '[' && colon > s.ptr && colon[-1] == ']')
        return (chopin_str){s.ptr + 1, (size_t)(colon - s.ptr) - 2};
    if (colon && !memchr(s.ptr, ':', (size_t)(colon - s.ptr)))
        return (chopin_str){s.ptr, (size_t)(colon - s.ptr)};
    return s;
}

static uint32_t hash(chopin_str k) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < k.len; i++)
        h = (h ^ (unsigned char)k.ptr[i]) * 16777619u;
    return h;
}

/* The client's bucket, found or made (full) in place of a free or the stalest entry. */
static struct bucket *bucket_of(const chopin_rate_limit *l, struct table *t, chopin_str key,
                                uint64_t now) {
    if (key.len > sizeof t->b[0].key)
        key.len = sizeof t->b[0].key;
    uint32_t h = hash(key);
    struct bucket *victim = NULL;
    for (uint32_t i = 0; i < PROBE; i++) {
        struct bucket *b = &t->b[(h + i) & (TABLE_SIZE - 1)];
        if (b->last_ms && b->len == key.len && memcmp(b->key, key.ptr, key.len) == 0)
            return b;
        if (!victim || b->last_ms < victim->last_ms)
            victim = b;
    }
    victim->last_ms = now ? now : 1;
    victim->tokens = l->burst;
    victim->len = (uint8_t)key.len;
    memcpy(victim->key, key.ptr, key.len);
    return victim;
}

void chopin_rate_limit_mw(chopin_req *req, chopin_res *res, chopin_next *next, void *limit) {
    chopin_rate_limit *l = limit;
    int w = chopin_req_worker_id(req);
    if (w < 0 || w >= MAX_WORKERS) {
        chopin_next_run(next);
        return;
    }
    struct table *t = l->tables[w];
    if (!t && !(t = l->tables[w] = calloc(1, sizeof *t))) {
        chopin_next_run(next); /* out of memory: serve rather than refuse everyone */
        return;
    }
    uint64_t now = req->engine->now_ms;
    struct bucket *b = bucket_of(l, t, client_of(req), now);
    double tokens = b->tokens + (double)(now - b->last_ms) * l->per_ms;
    b->tokens = tokens < l->burst ? tokens : l->burst;
    b->last_ms = now ? now : 1;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        chopin_next_run(next);
        return;
    }
    /* Whole seconds until the next token (RFC 9110 §10.2.3), at least 1. */
    double wait_ms = (1.0 - b->tokens) / l->per_ms;
    uint64_t wait_s = (uint64_t)(wait_ms / 1000.0);
    if ((double)wait_s * 1000.0 < wait_ms)
        wait_s++;
    char after[24];
    snprintf(after, sizeof after, "%llu", (unsigned long long)(wait_s ? wait_s : 1));
    chopin_res_text(res, 429, "too many requests\n");
    chopin_res_header_set(res, "Retry-After", after);
}
