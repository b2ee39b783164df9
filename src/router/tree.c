/* SPDX-License-Identifier: MIT */
/*
 * The route tree: one node per path segment, static children sorted for binary search,
 * one param and one wildcard child per node. Plus the table of fully static paths that
 * answers most requests with one hash and one compare.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem/bytes.h"
#include "router/internal.h"

enum chopin__node_kind chopin__seg_kind(struct chopin__seg seg, struct chopin__seg *text)
{
    if (seg.len > 0 && (seg.ptr[0] == ':' || seg.ptr[0] == '*')) {
        text->ptr = seg.ptr + 1;
        text->len = seg.len - 1;
        return seg.ptr[0] == ':' ? CHOPIN__NODE_PARAM : CHOPIN__NODE_WILDCARD;
    }
    *text = seg;
    return CHOPIN__NODE_STATIC;
}

struct chopin__node *chopin__node_new(enum chopin__node_kind kind, const char *text, size_t len)
{
    struct chopin__node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->text = malloc(len + 1);
    if (!n->text) {
        free(n);
        return NULL;
    }
    memcpy(n->text, text, len);
    n->text[len] = '\0';
    n->text_len = (uint32_t)len;
    n->kind = (uint8_t)kind;
    return n;
}

void chopin__node_free(struct chopin__node *n)
{
    if (!n)
        return;
    for (uint32_t i = 0; i < n->nstatics; i++)
        chopin__node_free(n->statics[i]);
    chopin__node_free(n->param);
    chopin__node_free(n->wildcard);
    free(n->statics);
    free(n->text);
    free(n);
}

/* Order of static children: by length, then bytes. Any total order works for the binary
 * search; length first rejects most candidates without touching their text. */
static int seg_cmp(const char *a, size_t alen, const struct chopin__node *b)
{
    if (alen != b->text_len)
        return alen < b->text_len ? -1 : 1;
    if (alen == 0)
        return 0;
    /* The first byte settles most comparisons without a call to memcmp. */
    unsigned char a0 = (unsigned char)a[0], b0 = (unsigned char)b->text[0];
    if (a0 != b0)
        return a0 < b0 ? -1 : 1;
    return memcmp(a + 1, b->text + 1, alen - 1);
}

/* Index of the first static child not ordered before seg. */
static uint32_t static_lower_bound(const struct chopin__node *n, const char *seg, size_t len)
{
    uint32_t lo = 0, hi = n->nstatics;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (seg_cmp(seg, len, n->statics[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct chopin__node *chopin__node_static_child(const struct chopin__node *n, const char *seg,
                                               size_t len)
{
    uint32_t i = static_lower_bound(n, seg, len);
    if (i < n->nstatics && seg_cmp(seg, len, n->statics[i]) == 0)
        return n->statics[i];
    return NULL;
}

int chopin__node_add_static(struct chopin__node *n, struct chopin__node *child)
{
    if (n->nstatics == n->statics_cap) {
        uint32_t cap = n->statics_cap ? n->statics_cap * 2 : 4;
        struct chopin__node **s = realloc(n->statics, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        n->statics = s;
        n->statics_cap = cap;
    }
    uint32_t i = static_lower_bound(n, child->text, child->text_len);
    memmove(n->statics + i + 1, n->statics + i, (n->nstatics - i) * sizeof(*n->statics));
    n->statics[i] = child;
    n->nstatics++;
    return 0;
}

const struct chopin__endpoint *chopin__node_pick(const struct chopin__node *n,
                                                 chopin_method method)
{
    if (!n->has_endpoint)
        return NULL;
    if ((unsigned)method < CHOPIN_METHOD_COUNT && n->slots[method].handler)
        return &n->slots[method];
    /* RFC 9110 §9.3.2: HEAD is GET without the content; the connection drops the body. */
    if (method == CHOPIN_METHOD_HEAD && n->slots[CHOPIN_METHOD_GET].handler)
        return &n->slots[CHOPIN_METHOD_GET];
    if (n->slots[CHOPIN__SLOT_ANY].handler)
        return &n->slots[CHOPIN__SLOT_ANY];
    return NULL;
}

uint32_t chopin__node_methods(const struct chopin__node *n)
{
    uint32_t mask = 0;
    for (int i = 0; i < CHOPIN__NSLOTS; i++)
        if (n->slots[i].handler)
            mask |= 1u << i;
    return mask;
}

static int push_param(struct chopin__match *m, const struct chopin__node *n, const char *value,
                      size_t len)
{
    if (m->nparams == CHOPIN__MAX_PARAMS)
        return 0; /* registration refuses patterns with more params: defensive only */
    struct chopin__param *p = &m->params[m->nparams++];
    p->name = n->text;
    p->name_len = n->text_len;
    p->value = value;
    p->value_len = (uint32_t)len;
    return 1;
}

/* Depth-first in precedence order: static, then param, then wildcard. The first endpoint
 * found is the answer; a dead end pops the params it pushed and tries the next kind. */
static const struct chopin__endpoint *match_from(const struct chopin__node *n, size_t i,
                                                 struct chopin__match *m)
{
    if (i == m->nsegs)
        return chopin__node_pick(n, m->method);
    const struct chopin__seg *seg = &m->segs[i];
    const struct chopin__endpoint *ep;
    const struct chopin__node *child = chopin__node_static_child(n, seg->ptr, seg->len);
    if (child && (ep = match_from(child, i + 1, m)))
        return ep;
    if (n->param && seg->len > 0) {
        uint32_t saved = m->nparams;
        if (push_param(m, n->param, seg->ptr, seg->len) && (ep = match_from(n->param, i + 1, m)))
            return ep;
        m->nparams = saved;
    }
    if (n->wildcard && (ep = chopin__node_pick(n->wildcard, m->method))) {
        if (push_param(m, n->wildcard, seg->ptr, (size_t)(m->path_end - seg->ptr)))
            return ep;
    }
    return NULL;
}

const struct chopin__endpoint *chopin__tree_match(const struct chopin__node *root,
                                                  struct chopin__match *m)
{
    m->nparams = 0;
    return match_from(root, 0, m);
}

static void allowed_from(const struct chopin__node *n, size_t i, struct chopin__match *m)
{
    if (i == m->nsegs) {
        m->allowed |= chopin__node_methods(n);
        return;
    }
    const struct chopin__seg *seg = &m->segs[i];
    const struct chopin__node *child = chopin__node_static_child(n, seg->ptr, seg->len);
    if (child)
        allowed_from(child, i + 1, m);
    if (n->param && seg->len > 0)
        allowed_from(n->param, i + 1, m);
    if (n->wildcard)
        m->allowed |= chopin__node_methods(n->wildcard);
}

void chopin__tree_allowed(const struct chopin__node *root, struct chopin__match *m)
{
    m->allowed = 0;
    allowed_from(root, 0, m);
}

/* ---- static table ------------------------------------------------------------------ */

/* Eight bytes per step (multiply and fold): FNV-1a's byte-serial multiply chain made this
 * hash the largest part of a static lookup (about 40 ns on a 40-byte path). Lookups probe
 * a table whose keys are fixed at freeze, so a client choosing paths cannot lengthen the
 * probe sequences: hash flooding does not apply. */
static uint64_t mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

/* The last 1-7 bytes are read with (possibly overlapping) fixed-size loads rather than a
 * memcpy of variable length, which is a library call; the length in the seed keeps
 * overlaps from making paths of different lengths collide. */
uint64_t chopin__path_hash(const char *p, size_t len)
{
    uint64_t h = 0x243f6a8885a308d3ull ^ len;
    const char *end = p + len;
    for (; end - p >= 8; p += 8)
        h = mix(h, chopin__load64(p));
    size_t left = (size_t)(end - p);
    uint64_t w;
    if (left == 0)
        return h;
    if (len >= 8)
        w = chopin__load64(end - 8);
    else if (left >= 4)
        w = chopin__load32(p) | (uint64_t)chopin__load32(end - 4) << 32;
    else
        w = (uint8_t)p[0] | (uint64_t)(uint8_t)p[left / 2] << 8 | (uint64_t)(uint8_t)end[-1] << 16;
    return mix(h, w);
}

/* Patterns start with '/' (checked at registration), so every segment follows a '/'.
 * One holding '%' is left to the tree too: then a path found in the static table has no
 * '%' either, and the lookup can come before the scan for escapes to decode. */
static int pattern_is_static(const char *p)
{
    for (const char *s = p + 1; *s; s++)
        if (((*s == ':' || *s == '*') && s[-1] == '/') || *s == '%')
            return 0;
    return 1;
}

static void statics_insert(struct chopin_router *r, const char *path, size_t len,
                           const struct chopin__node *node)
{
    uint64_t h = chopin__path_hash(path, len);
    for (size_t i = h & r->statics_mask;; i = (i + 1) & r->statics_mask) {
        struct chopin__static_entry *e = &r->statics[i];
        if (!e->path) {
            *e = (struct chopin__static_entry){h, path, len, node};
            return;
        }
        if (e->hash == h && e->len == len && memcmp(e->path, path, len) == 0)
            return; /* same path, another method: same node */
    }
}

/* The node a registered static pattern ends at. */
static const struct chopin__node *static_node(const struct chopin_router *r, const char *p)
{
    const struct chopin__node *n = r->root;
    const char *seg = p + 1;
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        n = chopin__node_static_child(n, seg, len);
        if (!n || !slash)
            return n;
        seg = slash + 1;
    }
}

int chopin__statics_build(struct chopin_router *r)
{
    size_t count = 0;
    for (size_t i = 0; i < r->nroutes; i++)
        count += pattern_is_static(r->routes[i].pattern);
    if (count == 0)
        return 0;
    size_t size = 8;
    while (size < count * 2) /* load factor <= 1/2: short probe sequences */
        size *= 2;
    r->statics = calloc(size, sizeof(*r->statics));
    if (!r->statics)
        return -ENOMEM;
    r->statics_mask = size - 1;
    for (size_t i = 0; i < r->nroutes; i++) {
        const char *p = r->routes[i].pattern;
        if (pattern_is_static(p))
            statics_insert(r, p, strlen(p), static_node(r, p));
    }
    return 0;
}

const struct chopin__node *chopin__statics_find(const struct chopin_router *r, const char *p,
                                                size_t len)
{
    if (!r->statics)
        return NULL;
    uint64_t h = chopin__path_hash(p, len);
    for (size_t i = h & r->statics_mask;; i = (i + 1) & r->statics_mask) {
        const struct chopin__static_entry *e = &r->statics[i];
        if (!e->path)
            return NULL;
        if (e->hash == h && e->len == len && chopin__bytes_eq(e->path, p, len))
            return e->node;
    }
}
