/* SPDX-License-Identifier: MIT */
/*
 * Publish/subscribe for WebSocket connections (chopin.h, chopin_ws_subscribe).
 *
 * Each worker keeps its own table of topics and their subscribers, in a thread-local
 * variable: only the worker's thread ever touches it (subscriptions are made on the
 * connection's worker, and a publish is posted to every worker), so no lock and no atomic
 * guards it, and nothing of it lives in the core.
 *
 * A publish is copied and framed once, for all workers: the frame's bytes are the same
 * for every subscriber. Every worker holds one reference (atomic: workers drop them on
 * their own threads); inside a worker, each subscriber's queued frame holds one of the
 * worker's own count, which is plain.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "chopin.h"
#include "ws/frame.h"
#include "ws/ws.h"

#define TOPIC_MAX 255

struct topic;

/* One subscription: a link in its topic's list and in its connection's. */
struct chopin__ws_sub {
    struct chopin__ws_sub *prev, *next; /* the topic's subscribers */
    struct chopin__ws_sub *ws_next;     /* the connection's subscriptions */
    struct topic *topic;
    chopin_ws *ws;
};

struct topic {
    struct topic *hash_next;
    struct chopin__ws_sub *subs;
    uint64_t hash;
    size_t len;
    char name[];
};

/* A worker's topics: a chained hash table that doubles as it fills. */
struct table {
    struct topic **buckets;
    size_t nbuckets, ntopics;
};

static _Thread_local struct table tbl;

static uint64_t hash_of(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h;
}

static struct topic **slot_of(const char *name, size_t len, uint64_t h) {
    if (!tbl.nbuckets)
        return NULL;
    struct topic **pp = &tbl.buckets[h & (tbl.nbuckets - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->len == len && !memcmp((*pp)->name, name, len)))
        pp = &(*pp)->hash_next;
    return pp;
}

static int table_grow(void) {
    size_t n = tbl.nbuckets ? tbl.nbuckets * 2 : 16;
    struct topic **b = calloc(n, sizeof *b);
    if (!b)
        return CHOPIN_ENOMEM;
    for (size_t i = 0; i < tbl.nbuckets; i++) {
        struct topic *t = tbl.buckets[i];
        while (t) {
            struct topic *next = t->hash_next;
            t->hash_next = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
            t = next;
        }
    }
    free(tbl.buckets);
    tbl.buckets = b;
    tbl.nbuckets = n;
    return 0;
}

static struct topic *topic_get(const char *name, size_t len) {
    uint64_t h = hash_of(name, len);
    struct topic **pp = slot_of(name, len, h);
    if (pp && *pp)
        return *pp;
    if (tbl.ntopics + 1 > tbl.nbuckets && table_grow() != 0)
        return NULL;
    struct topic *t = calloc(1, sizeof *t + len + 1);
    if (!t)
        return NULL;
    t->hash = h;
    t->len = len;
    memcpy(t->name, name, len);
    pp = slot_of(name, len, h);
    *pp = t;
    tbl.ntopics++;
    return t;
}

/* The last subscriber left: the topic goes, and the table with the last topic (a worker
 * that served a chat once keeps nothing of it). */
static void topic_drop_if_empty(struct topic *t) {
    if (t->subs)
        return;
    struct topic **pp = slot_of(t->name, t->len, t->hash);
    *pp = t->hash_next;
    free(t);
    if (--tbl.ntopics == 0) {
        free(tbl.buckets);
        tbl = (struct table){0};
    }
}

static int topic_len(const char *topic, size_t *len) {
    if (!topic)
        return CHOPIN_EINVAL;
    *len = strnlen(topic, TOPIC_MAX + 1);
    return *len > TOPIC_MAX ? CHOPIN_EINVAL : 0;
}

static void sub_free(struct chopin__ws_sub *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        s->topic->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    topic_drop_if_empty(s->topic);
    free(s);
}

/* Drops every subscription of `ws`: the connection ends (its subs_end). */
static void unsubscribe_all(chopin_ws *ws) {
    while (ws->subs) {
        struct chopin__ws_sub *s = ws->subs;
        ws->subs = s->ws_next;
        sub_free(s);
    }
}

int chopin_ws_subscribe(chopin_ws *ws, const char *topic) {
    size_t len;
    if (!ws || topic_len(topic, &len))
        return CHOPIN_EINVAL;
    for (struct chopin__ws_sub *s = ws->subs; s; s = s->ws_next)
        if (s->topic->len == len && !memcmp(s->topic->name, topic, len))
            return 0;
    struct topic *t = topic_get(topic, len);
    struct chopin__ws_sub *s = t ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        if (t)
            topic_drop_if_empty(t);
        return CHOPIN_ENOMEM;
    }
    s->topic = t;
    s->ws = ws;
    s->next = t->subs;
    if (t->subs)
        t->subs->prev = s;
    t->subs = s;
    s->ws_next = ws->subs;
    ws->subs = s;
    ws->subs_end = unsubscribe_all;
    return 0;
}

int chopin_ws_unsubscribe(chopin_ws *ws, const char *topic) {
    size_t len;
    if (!ws || topic_len(topic, &len))
        return CHOPIN_EINVAL;
    for (struct chopin__ws_sub **pp = &ws->subs; *pp; pp = &(*pp)->ws_next) {
        struct chopin__ws_sub *s = *pp;
        if (s->topic->len == len && !memcmp(s->topic->name, topic, len)) {
            *pp = s->ws_next;
            sub_free(s);
            return 0;
        }
    }
    return CHOPIN_ENOENT;
}


/* ----- publishing ---------------------------------------------------------------------- */

/* One published message: the topic and the whole frame, shared by every worker. */
struct pub {
    atomic_uint refs;   /* one per worker still delivering it, and the publisher's */
    size_t topic_len, frame_len;
    char *frame;        /* into bytes[], after the topic */
    char bytes[];
};

/* A worker's hold on a publish while its subscribers' queues send it. */
struct local {
    struct pub *pub;
    uint32_t refs;
};

static void pub_release(struct pub *p) {
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        free(p);
}

static void local_release(void *frame, void *arg) {
    (void)frame;
    struct local *l = arg;
    if (--l->refs == 0) {
        pub_release(l->pub);
        free(l);
    }
}

/* On each worker: hands the frame to every subscriber of the topic there. */
static void deliver(chopin_worker *w, void *arg) {
    (void)w;
    struct pub *p = arg;
    uint64_t h = hash_of(p->bytes, p->topic_len);
    struct topic **pp = slot_of(p->bytes, p->topic_len, h);
    struct local *l = pp && *pp ? malloc(sizeof *l) : NULL;
    if (!l) {
        pub_release(p);
        return;
    }
    l->pub = p;
    l->refs = 1; /* this loop's own, so a subscriber's early release cannot end it */
    /* A subscriber past its bound is closed, not unsubscribed, during the loop (its
     * subscriptions end when its connection is freed, later), so the list holds still. */
    for (struct chopin__ws_sub *s = (*pp)->subs; s; s = s->next) {
        l->refs++;
        if (chopin__ws_queue_shared(s->ws, p->frame, p->frame_len, local_release, l) == 0)
            chopin__ws_flush(s->ws);
    }
    local_release(NULL, l);
}

int chopin_ws_publish(chopin_server *s, const char *topic, chopin_ws_kind kind, const void *data,
                      size_t len) {
    size_t tlen;
    if (!s || topic_len(topic, &tlen) || (kind != CHOPIN_WS_TEXT && kind != CHOPIN_WS_BINARY) ||
        (!data && len))
        return CHOPIN_EINVAL;
    uint8_t head[10];
    size_t hlen = chopin__ws_frame_head(head, kind, 1, 0, len);
    struct pub *p = malloc(sizeof *p + tlen + hlen + len);
    if (!p)
        return CHOPIN_ENOMEM;
    int workers = chopin_server_workers(s);
    atomic_init(&p->refs, (unsigned)workers + 1);
    p->topic_len = tlen;
    memcpy(p->bytes, topic, tlen);
    p->frame = p->bytes + tlen;
    p->frame_len = hlen + len;
    memcpy(p->frame, head, hlen);
    if (len)
        memcpy(p->frame + hlen, data, len);
    int took = chopin_server_post_all(s, deliver, p);
    /* The workers that did not take it will not release it; nor will the publisher. */
    for (int i = took > 0 ? took : 0; i < workers; i++)
        pub_release(p);
    pub_release(p);
    return took > 0 ? took : CHOPIN_ESHUTDOWN;
}
