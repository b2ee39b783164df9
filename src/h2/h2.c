/* SPDX-License-Identifier: MIT */
/*
 * HTTP/2 over nghttp2 (see h2.h). One nghttp2 server session per connection, fed with
 * nghttp2_session_mem_recv and drained with nghttp2_session_mem_send into the connection's
 * output queue, which is bounded (OUT_HIGH): past it reading stops and no body is pulled
 * until the socket took what is queued, so a slow reader holds bounded memory.
 *
 * A stream is an exchange taken from the engine (detached at once, as a deferred one is),
 * with the stream's own state, its request's header fields and its body in the exchange's
 * arena: what the request carries lives exactly as long as its exchange. The handler runs
 * when the request is complete (END_STREAM); its answer, now or later (chopin_defer), is
 * submitted with a data provider that pulls the body in frame-sized pieces: copied,
 * static and owned bodies from memory, files with pread at their offset, streams from
 * their producer (CHOPIN_EAGAIN defers the stream until chopin_stream_resume).
 *
 * Bounds nghttp2 has are set (CONTINUATION frames, SETTINGS entries, queued ACKs, resets);
 * the ones it lacks are here: header list size (431), body size (413), request bodies
 * buffered per connection, resets and control frames per second (GOAWAY
 * ENHANCE_YOUR_CALM), stream ids near the end of their space (GOAWAY), a peer that keeps
 * the flow-control window shut (write deadline) and idle connections (keep-alive).
 */
#include "h2/h2.h"
#include "h2/mem.h"

#include <errno.h>

#ifndef CHOPIN_HAVE_NGHTTP2

int chopin__h2_available(void) { return 0; }
int chopin__h2_start(struct chopin__conn *c) {
    (void)c;
    return -ENOTSUP;
}
struct chopin__exchange *chopin__h2_upgrade(struct chopin__conn *c, struct chopin__exchange *x) {
    (void)c;
    (void)x;
    return NULL;
}

#else

#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/exchange.h"
#include "http/chars.h"
#include "conn.h"
#include "engine.h"
#include "exchange.h"
#include "http/base64.h"
#include "http/date.h"
#include "http/message.h"
#include "mem/arena.h"
#include "ops/observe.h"
#include "outq.h"
#include "router/router.h"

/* Output queued for the socket beyond which nothing more is pulled (frames, bodies) and
 * no more input is read until it has been sent: what a slow reader costs at most, plus
 * one frame. */
#define OUT_HIGH (64u * 1024)
#define MAX_STREAMS 100
/* Per second, the peer's RST_STREAM frames (CVE-2023-44487, rapid reset) and control
 * frames that cost us work and carry no request (PING, SETTINGS, PRIORITY, empty DATA):
 * past either, GOAWAY ENHANCE_YOUR_CALM. Browsers send a handful. */
#define RESETS_PER_SEC 100
#define CONTROL_PER_SEC 100
/* nghttp2's own bounds, set explicitly: CONTINUATION frames per header block
 * (CVE-2024-28182), entries per SETTINGS frame, ACKs and RSTs queued for a peer that does
 * not read, and its reset rate limit (behind ours, which answers ENHANCE_YOUR_CALM). */
#define MAX_CONTINUATIONS 8
#define MAX_SETTINGS 32
#define MAX_OUTBOUND_ACK 1000
/* A client that came within this many ids of the end of the stream id space is told to
 * go elsewhere (GOAWAY) rather than left to fail (RFC 9113 §5.1.1). */
#define LAST_STREAM_ID_MARGIN (2 * MAX_STREAMS)
/* How long a connection that said GOAWAY waits for its peer to close after its last
 * frame left, as HTTP/1.1 lingers. */
#define LINGER_MS 2000

struct h2;

struct h2_stream {
    struct h2_stream *prev, *next; /* the connection's streams */
    struct h2 *h;
    struct chopin__exchange *x;
    int32_t id;
    uint16_t refuse;      /* 4xx the request gets instead of its handler (431, 413, 400) */
    uint8_t dispatched;   /* its handler ran (or the refusal was answered) */
    uint8_t submitted;    /* its response is with nghttp2 */
    uint8_t waiting;      /* its stream producer said CHOPIN_EAGAIN: resumed by on_ready */
    uint8_t streaming;    /* its body goes to its handler as it arrives (chopin_body_read) */
    uint8_t paused;       /* ...which asked for none for now (chopin_body_pause) */
    uint8_t resumed;      /* ...and then for more again: on_ready hands over what is held */
    uint8_t body_ended;   /* END_STREAM arrived (the sink hears it once the held bytes went) */
    uint8_t pseudo;       /* the pseudo-header fields seen (PSEUDO_*) */
    uint8_t regular;      /* a regular field was seen (no pseudo-header may follow) */
    uint8_t has_length;   /* it has a content-length */
    uint64_t received;    /* request body bytes in DATA frames (against content-length) */
    uint32_t header_bytes; /* header list size so far (RFC 9113 §6.5.2: name + value + 32) */
    uint32_t headers_cap;
    char *body;
    uint64_t body_cap;
    uint64_t sent; /* response body bytes handed to nghttp2 */
    uint64_t started_ms;
    /* A streamed body: its bound, the bytes seen, those that arrived while paused (on the
     * heap), and those the stream's flow-control window has not been given back for. */
    uint64_t max, streamed;
    char *held;
    size_t held_len, held_cap;
    uint64_t unconsumed;
    uint64_t data_ms; /* its last bytes: the body deadline runs from there */
};

struct h2 {
    nghttp2_session *session;
    struct chopin__conn *c;
    struct h2_stream *streams;
    uint32_t nstreams;
    uint64_t body_buffered; /* request body bytes held by all streams */
    uint64_t window_start;  /* the second the counters below count */
    uint32_t resets, control;
    uint64_t idle_since;  /* no stream open since */
    uint64_t stall_since; /* answers owed, and nothing can be sent (window shut) */
    uint8_t goaway;       /* GOAWAY queued: finish what is in flight, then close */
    uint8_t ending;       /* both sides done: half-close once output is sent */
    uint8_t upgraded;     /* by Upgrade: h2c: stream 1's answer may be ready at the switch */
    int32_t last_id;      /* the highest stream the peer opened */
    struct h2_stream *recent; /* the stream opened last, while it is open */
};

static const chopin_options *opts(const struct h2 *h) { return &h->c->engine->cfg->opt; }
static uint64_t now_ms(const struct h2 *h) { return h->c->engine->now_ms; }

/* ----- output ------------------------------------------------------------------------ */

static void free_heap(void *p, void *arg) {
    (void)arg;
    free(p);
}

/* Copies one piece of nghttp2's output (valid until its next call) into the output queue:
 * into its data area while there is room, else a heap copy of its own. */
static int queue_bytes(struct chopin__conn *c, const uint8_t *p, size_t n) {
    struct chopin__outq *q = chopin__conn_output(c);
    if (!q)
        return -ENOMEM;
    char *dst = chopin__outq_reserve(q, n);
    if (dst) {
        memcpy(dst, p, n);
        chopin__outq_commit(q, n);
        return 0;
    }
    char *copy = malloc(n);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, p, n);
    if (chopin__outq_push_ext(q, copy, n, free_heap, NULL) < 0) {
        free(copy);
        return -ENOSPC;
    }
    return 0;
}

/* Whether the output queue can take another piece: below OUT_HIGH, and segments to spare
 * (a piece takes at most one). */
static int output_has_room(const struct chopin__conn *c) {
    const struct chopin__outq *q = c->out;
    return !q || (q->pending < OUT_HIGH && q->count - q->head + 2 < CHOPIN__OUTQ_SEGS);
}

/* Moves what nghttp2 has to send into the output queue while it has room; past it,
 * reading pauses until the queue has been sent (on_sent). Closes the connection once both
 * sides are done (GOAWAY exchanged and no stream left, or a fatal error). */
static void ready_scan(struct h2 *h);
static const struct chopin__protocol h2_protocol;

static void pump(struct h2 *h) {
    struct chopin__conn *c = h->c;
    if ((c->ask & CHOPIN__CONN_CLOSE) || c->proto != &h2_protocol)
        return; /* (an upgrade's 101 has not been queued yet: nothing may precede it) */
    if (h->upgraded) {
        h->upgraded = 0;
        ready_scan(h);
    }
    while (output_has_room(c)) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(h->session, &p);
        if (n < 0) {
            chopin__conn_close(c);
            return;
        }
        if (n == 0)
            break;
        if (queue_bytes(c, p, (size_t)n) < 0) {
            chopin__conn_close(c);
            return;
        }
    }
    c->backpressure = !output_has_room(c);
    if (!nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session) &&
        !h->ending) {
        h->ending = 1;
        c->ask |= CHOPIN__CONN_SHUTDOWN; /* after the last frame: our GOAWAY reaches it */
    }
}

/* ----- attacks -------------------------------------------------------------------------- */

/* The peer misbehaves in a way that costs us: GOAWAY ENHANCE_YOUR_CALM, then close. */
static void calm(struct h2 *h) {
    if (h->goaway == 2)
        return;
    h->goaway = 2;
    nghttp2_session_terminate_session(h->session, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* Counts one frame against its per-second bound; returns nonzero when past it. */
static int over_rate(struct h2 *h, uint32_t *counter, uint32_t limit) {
    uint64_t second = now_ms(h) / 1000;
    if (second != h->window_start) {
        h->window_start = second;
        h->resets = h->control = 0;
    }
    return ++*counter > limit;
}

/* ----- streams ----------------------------------------------------------------------- */

/* The stream `id`: the last one opened is the one whose fields and body arrive, so it is
 * kept at hand instead of looked up in nghttp2's map for every field (perf, h2load: 1.2%). */
static struct h2_stream *stream_of(struct h2 *h, int32_t id) {
    if (h->recent && h->recent->id == id)
        return h->recent;
    return nghttp2_session_get_stream_user_data(h->session, id);
}

/* A fresh exchange for a stream: the engine's current one, detached so that the next
 * request (this connection's next stream, or another connection's) gets another. */
static struct chopin__exchange *exchange_take(struct chopin__engine *e) {
    struct chopin__exchange *x = chopin__exchange_current(e);
    if (!x || chopin__exchange_detach(e, x) < 0)
        return NULL;
    return x;
}

/* Stream `id` of exchange `x`, whose arena holds its state; NULL when out of memory. */
static struct h2_stream *stream_attach(struct h2 *h, struct chopin__exchange *x, int32_t id) {
    struct h2_stream *s = chopin__arena_alloc(&x->arena, sizeof *s);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->h = h;
    s->x = x;
    s->id = id;
    s->started_ms = now_ms(h);
    x->conn = h->c;
    x->kept = 1; /* its request lives in its arena already: chopin_defer copies nothing */
    s->next = h->streams;
    if (h->streams)
        h->streams->prev = s;
    h->streams = s;
    h->nstreams++;
    h->recent = s;
    return s;
}

static struct h2_stream *stream_new(struct h2 *h, int32_t id) {
    struct chopin__engine *e = h->c->engine;
    struct chopin__exchange *x = exchange_take(e);
    if (!x)
        return NULL;
    struct h2_stream *s = stream_attach(h, x, id);
    if (!s) {
        chopin__exchange_free(e, x);
        return NULL;
    }
    struct chopin_req *req = &x->req;
    memset(&req->head, 0, sizeof req->head);
    req->head.minor = 1;
    req->head.keep_alive = 1;
    req->head.method_id = CHOPIN_METHOD_OTHER;
    req->body = NULL;
    req->body_len = 0;
    req->arena = &x->arena;
    req->engine = e;
    req->conn = h->c;
    req->ndata = 0;
    chopin__res_init(&x->res, &x->arena);
    return s;
}

/* The stream is gone (closed, reset, or the connection ends): an open exchange is
 * cancelled, what its response owns is released, the exchange goes back. */
static void stream_free(struct h2 *h, struct h2_stream *s) {
    struct chopin__engine *e = h->c->engine;
    struct chopin__exchange *x = s->x;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    h->nstreams--;
    if (h->recent == s)
        h->recent = NULL;
    h->body_buffered -= x->req.body_len + s->held_len;
    free(s->held);
    if (!h->nstreams)
        h->idle_since = now_ms(h);
    chopin__exchange_cancel(e, x);
    chopin__res_discard(&x->res);
    chopin__exchange_free(e, x); /* (its arena, which held s, with it) */
}

/* ----- the request ------------------------------------------------------------------- */

static uint8_t method_id(const char *m, size_t len) {
#define METHOD_MATCH(name, str)                                                             \
    if (len == sizeof(str) - 1 && memcmp(m, str, len) == 0)                                   \
        return CHOPIN_METHOD_##name;
    CHOPIN_METHOD_MAP(METHOD_MATCH)
#undef METHOD_MATCH
    return CHOPIN_METHOD_OTHER;
}

static char *arena_copy(struct chopin__arena *a, const uint8_t *p, size_t n) {
    char *copy = chopin__arena_alloc(a, n + 1);
    if (copy) {
        memcpy(copy, p, n);
        copy[n] = '\0';
    }
    return copy;
}

/* The request's path and query from :path. */
static void set_target(struct chopin__head *head, const char *target, size_t len) {
    head->target = target;
    head->target_len = (uint32_t)len;
    const char *q = memchr(target, '?', len);
    head->path = target;
    head->path_len = (uint32_t)(q ? (size_t)(q - target) : len);
    if (q) {
        head->query = q + 1;
        head->query_len = (uint32_t)(len - head->path_len - 1);
    }
}

static int pseudo_header(struct h2_stream *s, const char *name, size_t nlen, const char *value,
                         size_t vlen) {
    struct chopin__head *head = &s->x->req.head;
    if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
        head->method = value;
        head->method_len = (uint16_t)(vlen > UINT16_MAX ? UINT16_MAX : vlen);
        head->method_id = method_id(value, vlen);
    } else if (nlen == 5 && memcmp(name, ":path", 5) == 0) {
        set_target(head, value, vlen);
    } else if (nlen == 10 && memcmp(name, ":authority", 10) == 0) {
        head->host = value;
        head->host_len = (uint32_t)vlen;
    }
    return 0; /* (:scheme and :protocol: nothing the API shows) */
}

/* Appends a regular field; cookie crumbs are joined with "; " into one field, as HTTP/1.1
 * carries them (RFC 9113 §8.2.3). */
static int regular_header(struct h2_stream *s, const char *name, size_t nlen, const char *value,
                          size_t vlen) {
    struct chopin__exchange *x = s->x;
    struct chopin__head *head = &x->req.head;
    if (nlen == 6 && memcmp(name, "cookie", 6) == 0) {
        for (uint32_t i = 0; i < head->nheaders; i++) {
            struct chopin__header *f = &head->headers[i];
            if (f->name_len != 6 || memcmp(f->name, "cookie", 6) != 0)
                continue;
            char *joined = chopin__arena_alloc(&x->arena, f->value_len + 2 + vlen + 1);
            if (!joined)
                return -1;
            memcpy(joined, f->value, f->value_len);
            memcpy(joined + f->value_len, "; ", 2);
            memcpy(joined + f->value_len + 2, value, vlen + 1);
            f->value = joined;
            f->value_len += (uint32_t)(2 + vlen);
            return 0;
        }
    }
    if (head->nheaders >= opts(s->h)->max_headers) {
        s->refuse = 431;
        return 0;
    }
    if (head->nheaders == s->headers_cap) {
        uint32_t cap = s->headers_cap ? s->headers_cap * 2 : 16;
        struct chopin__header *a =
            s->headers_cap ? chopin__arena_grow(&x->arena, head->headers,
                                                s->headers_cap * sizeof *a, cap * sizeof *a)
                           : chopin__arena_alloc(&x->arena, cap * sizeof *a);
        if (!a)
            return -1;
        head->headers = a;
        s->headers_cap = cap;
    }
    head->headers[head->nheaders++] = (struct chopin__header){name, value, (uint32_t)nlen,
                                                              (uint32_t)vlen};
    if (nlen == 14 && memcmp(name, "content-length", 14) == 0) {
        /* nghttp2 checked it is a number that the DATA frames will match */
        uint64_t v = 0;
        for (size_t i = 0; i < vlen; i++)
            v = v * 10 + (uint64_t)(value[i] - '0');
        head->content_length = v;
        head->body_kind = CHOPIN__BODY_LENGTH; /* (its bound: body_begins) */
    } else if (nlen == 4 && memcmp(name, "host", 4) == 0 && !head->host) {
        head->host = value;
        head->host_len = (uint32_t)vlen;
    }
    return 0;
}

/* ----- HTTP messaging (RFC 9113 §8) ---------------------------------------------------
 *
 * nghttp2's own checks of requests are off (nghttp2_option_set_no_http_messaging): they
 * were 12% of a request's instructions (callgrind, bench/micro_h2.c), most of it spent on
 * names and values of HPACK's static table, which need none. These are the same rules,
 * for what the peer sends: a request that breaks one is malformed, its stream reset with
 * PROTOCOL_ERROR (RFC 9113 §8.1.1), its handler never run. */

enum { PSEUDO_METHOD = 1, PSEUDO_SCHEME = 2, PSEUDO_PATH = 4, PSEUDO_AUTHORITY = 8 };

/* A name or a value as nghttp2 hands it over: its bytes (NUL-terminated), and whether
 * they are HPACK's static table's (valid, and valid as long as the process). */
struct field {
    nghttp2_vec v;
    int is_static;
};

static struct field field_of(nghttp2_rcbuf *rc) {
    return (struct field){nghttp2_rcbuf_get_buf(rc), nghttp2_rcbuf_is_static(rc)};
}

static int connection_specific(const char *name, size_t len);

/* The stream is reset; returned by on_header, nghttp2 then drops the rest of the block. */
static int malformed(struct h2 *h, int32_t id) {
    nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

/* A field name: lower-case token characters (RFC 9113 §8.2.1), after the colon of a
 * pseudo-header. */
static int name_valid(const uint8_t *p, size_t n) {
    size_t i = n && p[0] == ':';
    if (i == n)
        return 0;
    for (; i < n; i++)
        if (!chopin__is_tchar(p[i]) || (p[i] >= 'A' && p[i] <= 'Z'))
            return 0;
    return 1;
}

/* A field value: field bytes (no NUL, CR, LF or other controls but HTAB), neither
 * starting nor ending with whitespace (RFC 9113 §8.2.1). */
static int value_valid(const uint8_t *p, size_t n) {
    if (n && (p[0] == ' ' || p[0] == '\t' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        return 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) /* (no branch per byte: values are short) */
        ok &= chopin__is_field_byte(p[i]) != 0;
    return ok;
}

static int is_name(nghttp2_vec v, const char *name, size_t len) {
    return v.len == len && memcmp(v.base, name, len) == 0;
}

/* The pseudo-header's bit, or 0 for one a request may not carry (:status, :protocol,
 * unknown ones). */
static uint8_t pseudo_bit(nghttp2_vec n) {
    if (is_name(n, ":method", 7))
        return PSEUDO_METHOD;
    if (is_name(n, ":scheme", 7))
        return PSEUDO_SCHEME;
    if (is_name(n, ":path", 5))
        return PSEUDO_PATH;
    if (is_name(n, ":authority", 10))
        return PSEUDO_AUTHORITY;
    return 0;
}

static int token_valid(nghttp2_vec v) {
    for (size_t i = 0; i < v.len; i++)
        if (!chopin__is_tchar(v.base[i]))
            return 0;
    return v.len > 0;
}

/* A content-length: digits only (RFC 9110 §8.6), that fit. */
static int length_valid(nghttp2_vec v) {
    if (!v.len || v.len > 19)
        return 0;
    for (size_t i = 0; i < v.len; i++)
        if (v.base[i] < '0' || v.base[i] > '9')
            return 0;
    return 1;
}

/* One field of a request's header block against §8.2-8.3; returns 0 when it may stand. */
static int field_breaks_rules(struct h2_stream *s, struct field name, struct field value) {
    nghttp2_vec n = name.v, v = value.v;
    if (!name.is_static && !name_valid(n.base, n.len))
        return 1;
    if (!value.is_static && !value_valid(v.base, v.len))
        return 1;
    if (n.base[0] == ':') {
        uint8_t bit = pseudo_bit(n);
        if (!bit || s->regular || (s->pseudo & bit))
            return 1;
        s->pseudo |= bit;
        if (bit == PSEUDO_METHOD)
            return !token_valid(v);
        /* (:path: not empty, and no space, which would end an HTTP/1.1 request line) */
        return bit == PSEUDO_PATH && (!v.len || memchr(v.base, ' ', v.len));
    }
    s->regular = 1;
    switch (n.len) {
    case 2:
        return is_name(n, "te", 2) && !(v.len == 8 && memcmp(v.base, "trailers", 8) == 0);
    case 14:
        if (!is_name(n, "content-length", 14))
            return 0;
        if (!length_valid(v) || s->has_length)
            return 1;
        s->has_length = 1;
        return 0;
    default:
        return connection_specific((const char *)n.base, n.len);
    }
}

/* A trailer field: no pseudo-header, valid bytes. */
static int trailer_breaks_rules(struct field name, struct field value) {
    nghttp2_vec n = name.v, v = value.v;
    return n.base[0] == ':' || !name_valid(n.base, n.len) || !value_valid(v.base, v.len);
}

/* The request's head is whole: :method, :scheme and :path, or for CONNECT :authority and
 * neither of the other two (RFC 9113 §8.3.1, §8.5). */
static int head_incomplete(const struct h2_stream *s) {
    const struct chopin__head *head = &s->x->req.head;
    if (head->method_id == CHOPIN_METHOD_CONNECT)
        return (s->pseudo & (PSEUDO_SCHEME | PSEUDO_PATH)) || !(s->pseudo & PSEUDO_AUTHORITY);
    return (s->pseudo & (PSEUDO_METHOD | PSEUDO_SCHEME | PSEUDO_PATH)) !=
           (PSEUDO_METHOD | PSEUDO_SCHEME | PSEUDO_PATH);
}

/* The body's length against its content-length: past it (DATA), or short of it at the
 * end (END_STREAM) is malformed (RFC 9113 §8.1.1). */
static int length_broken(const struct h2_stream *s, int at_end) {
    const struct chopin__head *head = &s->x->req.head;
    if (!s->has_length || s->refuse) /* (refused: answered, the rest dropped unread) */
        return 0;
    return s->received > head->content_length || (at_end && s->received != head->content_length);
}

/* The request, now that its head or its end arrived, breaks §8.1.1 or §8.3.1. */
static int request_malformed(const struct h2_stream *s, const nghttp2_frame *frame) {
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
        head_incomplete(s))
        return 1;
    return (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && (!s->dispatched || s->streaming) &&
           length_broken(s, 1);
}

/* A field's name or value as the request keeps it: nghttp2's own when it comes from
 * HPACK's static table (most names, and values such as GET or "/"), else a copy in the
 * arena. (callgrind, bench/micro_h2.c: two arena copies per field were 9% of a request.) */
static const char *field_text(struct chopin__arena *a, struct field f) {
    return f.is_static ? (const char *)f.v.base : arena_copy(a, f.v.base, f.v.len);
}

/* Pseudo-header fields the request shows: :method, :path, :authority (not :scheme). */
static int shown_pseudo(nghttp2_vec n) { return !(n.len == 7 && n.base[1] == 's'); }

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *ud) {
    struct h2 *h = ud;
    (void)session;
    (void)flags;
    struct h2_stream *s = stream_of(h, frame->hd.stream_id);
    if (!s)
        return 0;
    struct field n = field_of(name), v = field_of(value);
    if (frame->headers.cat == NGHTTP2_HCAT_HEADERS) /* trailers: checked, then dropped */
        return trailer_breaks_rules(n, v) ? malformed(h, s->id) : 0;
    if (s->refuse)
        return 0;
    if (field_breaks_rules(s, n, v))
        return malformed(h, s->id);
    s->header_bytes += (uint32_t)(n.v.len + v.v.len + 32);
    if (s->header_bytes > opts(h)->max_header_bytes) {
        s->refuse = 431; /* the rest of the block is decoded (HPACK state) and dropped */
        return 0;
    }
    int pseudo = n.v.base[0] == ':';
    if (pseudo && !shown_pseudo(n.v))
        return 0;
    struct chopin__arena *a = &s->x->arena;
    const char *nt = field_text(a, n), *vt = field_text(a, v);
    if (!nt || !vt)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    int rc = pseudo ? pseudo_header(s, nt, n.v.len, vt, v.v.len)
                    : regular_header(s, nt, n.v.len, vt, v.v.len);
    return rc < 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

/* A HEADERS frame on a stream id below the last one the peer opened, naming no stream we
 * know: RFC 9113 §5.1.1 makes that a connection error, which nghttp2 leaves to us (it
 * drops the block). */
static int on_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd, void *ud) {
    struct h2 *h = ud;
    if (hd->type == NGHTTP2_DATA && hd->stream_id > 0) {
        /* DATA after the request's END_STREAM: a stream error (RFC 9113 §5.1, half-closed
         * (remote)), which nghttp2 leaves to us without its HTTP messaging checks */
        struct h2_stream *s = stream_of(h, hd->stream_id);
        if (s && s->body_ended)
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, hd->stream_id,
                                      NGHTTP2_STREAM_CLOSED);
        return 0;
    }
    if (hd->type == NGHTTP2_HEADERS && hd->stream_id > 0 && hd->stream_id <= h->last_id &&
        !nghttp2_session_find_stream(session, hd->stream_id))
        nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR);
    return 0;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
    struct h2 *h = ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return malformed(h, frame->hd.stream_id); /* trailers end the stream (§8.1) */
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (frame->hd.stream_id > h->last_id)
        h->last_id = frame->hd.stream_id;
    struct h2_stream *s = stream_new(h, frame->hd.stream_id);
    if (!s)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* (the stream is reset) */
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    return 0;
}

static void stream_data(struct h2 *h, struct h2_stream *s, const uint8_t *data, size_t len);

/* A piece of a request body. Flow control is ours (no automatic WINDOW_UPDATE): the
 * connection's window is given back at once, a stream's once its bytes were taken, so a
 * body read as a stream and paused holds its client back, and nothing else. A body read
 * whole is collected, up to max_body_bytes for the request and as much again for all the
 * connection's requests together, into the exchange's arena. */
static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *ud) {
    struct h2 *h = ud;
    (void)flags;
    nghttp2_session_consume_connection(session, len);
    struct h2_stream *s = stream_of(h, id);
    if (s) {
        s->received += len;
        if (length_broken(s, 0)) { /* past its content-length */
            nghttp2_session_consume_stream(session, id, len);
            s->dispatched = 1;
            s->streaming = 0;
            malformed(h, id);
            return 0;
        }
    }
    if (s && s->streaming) {
        stream_data(h, s, data, len);
        return 0;
    }
    nghttp2_session_consume_stream(session, id, len);
    if (!s || s->refuse || s->dispatched)
        return 0;
    struct chopin_req *req = &s->x->req;
    uint64_t max = opts(h)->max_body_bytes;
    if (req->body_len + len > max) {
        s->refuse = 413;
        return 0;
    }
    if (h->body_buffered + len > max + max) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_ENHANCE_YOUR_CALM);
        return 0;
    }
    if (req->body_len + len > s->body_cap) {
        uint64_t cap = s->body_cap ? s->body_cap * 2 : 1024;
        while (cap < req->body_len + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *b = s->body ? chopin__arena_grow(&s->x->arena, s->body, s->body_cap, cap)
                          : chopin__arena_alloc(&s->x->arena, cap);
        if (!b)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        s->body = b;
        s->body_cap = cap;
    }
    memcpy(s->body + req->body_len, data, len);
    req->body_len += len;
    req->body = s->body;
    h->body_buffered += len;
    if (req->head.body_kind == CHOPIN__BODY_NONE)
        req->head.body_kind = CHOPIN__BODY_LENGTH;
    return 0;
}

/* ----- the response ------------------------------------------------------------------ */

static int no_body_status(int status) { return status < 200 || status == 204 || status == 304; }

static void count_status(struct chopin__engine *e, int status) {
    if (status >= 500)
        chopin__count(&e->counters.errors_5xx, 1);
    else if (status >= 400)
        chopin__count(&e->counters.errors_4xx, 1);
}

static void set_error(struct chopin_res *res, int status) {
    chopin__res_discard(res);
    chopin__res_init(res, res->arena);
    chopin_res_error(res, status, NULL);
}

static int submit_trailers(struct h2_stream *s);

/* The last DATA frame: it ends the stream, unless trailers follow it. */
static void body_ends(struct h2_stream *s, uint32_t *flags) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (submit_trailers(s))
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
}

/* The body in frame-sized pieces, as flow control lets them go. */
static ssize_t read_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *ud) {
    struct h2_stream *s = source->ptr;
    struct chopin_res *res = &s->x->res;
    (void)session;
    (void)id;
    (void)ud;
    if (res->body_kind == CHOPIN__RES_STREAM) {
        long n = res->produce(res->stream_state, (char *)buf, length);
        if (n == CHOPIN_EAGAIN) {
            s->waiting = 1;
            return NGHTTP2_ERR_DEFERRED;
        }
        if (n < 0 || (size_t)n > length)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM INTERNAL_ERROR */
        if (n == 0)
            body_ends(s, flags);
        s->sent += (uint64_t)n;
        return n;
    }
    uint64_t left = res->body_len - s->sent;
    size_t n = left < length ? (size_t)left : length;
    if (res->body_kind == CHOPIN__RES_FILE) {
        ssize_t r;
        do
            r = pread(res->fd, buf, n, (off_t)(res->offset + s->sent));
        while (r < 0 && errno == EINTR);
        if (r <= 0 && n > 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the file shrank or failed */
        n = (size_t)r;
    } else if (n) {
        memcpy(buf, res->body + s->sent, n);
    }
    s->sent += n;
    if (s->sent == res->body_len)
        body_ends(s, flags);
    return (ssize_t)n;
}

static int ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Fields HTTP/2 forbids (RFC 9113 §8.2.2): HTTP/1.1's connection management. */
static int connection_specific(const char *name, size_t len) {
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return 1;
    return 0;
}

/* Names and values outlive the HEADERS frame (static, the engine's, or the exchange's
 * arena, which lasts until the stream closes): nghttp2 need not copy them. */
#define NO_COPY (NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE)
#define NV(n, v, vl)                                                                          \
    (nghttp2_nv) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NO_COPY }

/* Decimal digits of `v` ending at `end`; returns where they start. (snprintf cost 4% of
 * the server's CPU, perf, h2load /plaintext.) */
static char *decimal(char *end, uint64_t v) {
    do
        *--end = (char)('0' + v % 10);
    while (v /= 10);
    return end;
}

/* Appends the fields of "Name: value\r\n" lines to nv[n..] (names lowered as HTTP/2
 * requires, HTTP/1.1's connection fields left out); returns the new count, or -1 when the
 * arena is out of room. */
static int field_lines(struct chopin__arena *a, nghttp2_nv *nv, int n, const char *lines,
                       uint32_t len) {
    char *lower = len ? chopin__arena_alloc(a, len) : NULL;
    if (len && !lower)
        return -1;
    for (uint32_t at = 0; at < len;) {
        const char *line = lines + at;
        const char *eol = memchr(line, '\n', len - at);
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        size_t nlen = (size_t)(colon - line);
        for (size_t i = 0; i < nlen; i++)
            lower[at + i] = (char)ascii_lower((unsigned char)line[i]);
        if (!connection_specific(lower + at, nlen))
            nv[n++] = (nghttp2_nv){(uint8_t *)lower + at, (uint8_t *)colon + 2, nlen,
                                   (size_t)(eol - 1 - (colon + 2)), NO_COPY};
        at += (uint32_t)(eol - line) + 1;
    }
    return n;
}

/* Counts the lines of a field block. */
static size_t line_count(const char *lines, uint32_t len) {
    size_t n = 0;
    for (uint32_t i = 0; i < len; i++)
        n += lines[i] == '\n';
    return n;
}

/* The response's fields: status, type, length, date, server, then the handler's own
 * ("Name: value\r\n" lines, names lowered as HTTP/2 requires). Returns the count, or -1
 * when the arena is out of room. */
static int build_fields(struct h2_stream *s, nghttp2_nv **out, int with_length) {
    struct chopin__exchange *x = s->x;
    struct chopin__engine *e = s->h->c->engine;
    const struct chopin_res *res = &x->res;
    size_t lines = line_count(res->headers, res->headers_len);
    nghttp2_nv *nv = chopin__arena_alloc(&x->arena, (lines + 5) * sizeof *nv + 24);
    if (!nv)
        return -1;
    char *digits = (char *)(nv + lines + 5), *end = digits + 24;
    int n = 0;
    char *status = decimal(end, (uint64_t)res->status);
    nv[n++] = NV(":status", status, (size_t)(end - status));
    if (res->content_type)
        nv[n++] = NV("content-type", res->content_type, res->content_type_len);
    if (with_length) {
        uint64_t len = res->body_kind == CHOPIN__RES_EMPTY ? 0 : res->body_len;
        char *length = decimal(status, len);
        nv[n++] = NV("content-length", length, (size_t)(status - length));
    }
    nv[n++] = NV("date", e->date.text, CHOPIN__DATE_LEN);
    const struct chopin__config *cfg = e->cfg;
    if (cfg->server_header_len > 10) /* "Server: " name "\r\n" */
        nv[n++] = NV("server", cfg->server_header + 8, cfg->server_header_len - 10);
    n = field_lines(&x->arena, nv, n, res->headers, res->headers_len);
    if (n >= 0)
        *out = nv;
    return n;
}

/* The body ended: the response's trailer fields, when it has some, go as a HEADERS frame
 * that ends the stream instead of the last DATA frame (RFC 9113 §8.1). Returns nonzero
 * when they were submitted. */
static int submit_trailers(struct h2_stream *s) {
    struct chopin__exchange *x = s->x;
    const struct chopin_res *res = &x->res;
    if (!res->trailers_len)
        return 0;
    size_t lines = line_count(res->trailers, res->trailers_len);
    nghttp2_nv *nv = chopin__arena_alloc(&x->arena, lines * sizeof *nv);
    int n = nv ? field_lines(&x->arena, nv, 0, res->trailers, res->trailers_len) : -1;
    return n > 0 && nghttp2_submit_trailer(s->h->session, s->id, nv, (size_t)n) == 0;
}

/* Hands the exchange's answer to nghttp2: fields, then the body through read_body. */
static void submit(struct h2 *h, struct h2_stream *s) {
    struct chopin__exchange *x = s->x;
    struct chopin_res *res = &x->res;
    struct chopin__engine *e = h->c->engine;
    s->submitted = 1;
    if (x->sink && !x->sink->ended) /* answered before its body ended: the rest is dropped */
        x->sink->ended = 1;
    if (x->upgrade) { /* a 101 has no meaning here (RFC 9113 §8.6): WebSocket needs RFC 8441 */
        x->upgrade->discard(x->upgrade_state);
        x->upgrade = NULL;
        set_error(res, 501);
    }
    if (res->body_kind == CHOPIN__RES_UNSET || chopin__json_unfinished(res))
        set_error(res, 500);
    count_status(e, res->status);
    if (e->obs) /* the access log and the metrics (issue 19), as HTTP/1.1's send_answer */
        chopin__observe_answer(e, h->c, &x->req, res,
                               x->req.head.method_len ? x->started_ns : 0, "HTTP/2.0");
    int head_only = x->req.head.method_id == CHOPIN_METHOD_HEAD || no_body_status(res->status);
    nghttp2_nv *nv;
    int n = build_fields(s, &nv,
                         res->body_kind != CHOPIN__RES_STREAM && !no_body_status(res->status));
    if (n < 0) {
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    int empty = res->body_kind == CHOPIN__RES_EMPTY ||
                (res->body_kind != CHOPIN__RES_STREAM && res->body_len == 0);
    if (head_only || empty)
        chopin__res_discard(res); /* what the body owns goes back now */
    nghttp2_data_provider body = {.source.ptr = s, .read_callback = read_body};
    if (nghttp2_submit_response(h->session, s->id, nv, (size_t)n,
                                head_only || empty ? NULL : &body) != 0)
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
}

/* The request was refused before its handler: answered through the global middleware, as
 * HTTP/1.1 answers its refusals (chopin__router_refuse), on a request carrying nothing. */
static void refuse(struct h2 *h, struct h2_stream *s) {
    struct chopin__engine *e = h->c->engine;
    struct chopin__exchange *x = s->x;
    struct chopin_req *req = &x->req;
    struct chopin_res *res = &x->res;
    int status = s->refuse;
    h->body_buffered -= req->body_len;
    *req = (struct chopin_req){.arena = &x->arena, .engine = e, .conn = h->c};
    req->head.minor = 1;
    chopin__res_init(res, &x->arena);
    e->dispatching = x;
    chopin__router_refuse(e->router, req, res, status);
    e->dispatching = NULL;
    if (res->status < 400 || res->body_kind == CHOPIN__RES_UNSET || chopin__json_unfinished(res) ||
        x->state != CHOPIN__X_RUNNING)
        set_error(res, status);
    submit(h, s);
}

/* The request is complete: its handler runs; an answer it gave now is submitted, a
 * deferred one when it is finished (on_ready). */
static void dispatch(struct h2 *h, struct h2_stream *s) {
    struct chopin__engine *e = h->c->engine;
    struct chopin__exchange *x = s->x;
    if (s->dispatched)
        return;
    s->dispatched = 1;
    if (s->refuse) {
        refuse(h, s);
        return;
    }
    struct chopin_req *req = &x->req;
    if (!req->head.method) {
        s->refuse = 400;
        refuse(h, s);
        return;
    }
    if (e->obs)
        x->started_ns = chopin__observe_start(e);
    e->dispatching = x;
    chopin__router_dispatch(e->router, req, &x->res);
    e->dispatching = NULL;
    h->c->requests++;
    chopin__count(&e->counters.requests, 1);
    if (x->state != CHOPIN__X_OPEN)
        submit(h, s);
}

/* ----- request bodies as streams (issue 18 on HTTP/2) ------------------------------- *
 *
 * A request whose head reaches a route registered with chopin_router_stream runs its
 * handler at once; when the handler takes the body (chopin_body_read), the stream's DATA
 * go to it as they arrive. Pausing stops giving the stream's flow-control window back:
 * its client can send at most one window more (held here, counted with the buffered
 * bodies) and then waits, while the connection's other streams go on. */

/* The window the stream's taken bytes used, given back: the client may send as much. */
static void stream_consume(struct h2 *h, struct h2_stream *s, uint64_t n) {
    if (n)
        nghttp2_session_consume_stream(h->session, s->id, (size_t)n);
}

/* The body will not end (CHOPIN_EFBIG: 413, CHOPIN_ETIMEDOUT: 408): the handler hears it
 * and the stream is answered; the rest of the body is not wanted (on_frame_send). */
static void body_fail(struct h2 *h, struct h2_stream *s, int status, int err) {
    struct chopin__exchange *x = s->x;
    s->streaming = 0;
    chopin__exchange_body_fail(h->c->engine, x, status, err);
    if (x->state != CHOPIN__X_OPEN && !s->submitted)
        submit(h, s);
}

/* Hands bytes to the handler (its on_data), giving their window back unless it paused. */
static void body_deliver(struct h2 *h, struct h2_stream *s, const char *p, size_t n) {
    chopin__exchange_body_data(h->c->engine, s->x, p, n);
    if (s->paused)
        s->unconsumed += n; /* given back on resume */
    else
        stream_consume(h, s, n);
}

/* END_STREAM once everything before it has been handed over. */
static void body_end(struct h2 *h, struct h2_stream *s) {
    if (s->held_len || s->paused)
        return;
    s->streaming = 0;
    chopin__exchange_body_end(h->c->engine, s->x);
}

static int body_hold(struct h2 *h, struct h2_stream *s, const uint8_t *data, size_t len) {
    uint64_t max = opts(h)->max_body_bytes;
    if (h->body_buffered + len > max + max)
        return -1;
    if (s->held_len + len > s->held_cap) {
        size_t cap = s->held_cap ? s->held_cap * 2 : 16384;
        while (cap < s->held_len + len)
            cap *= 2;
        char *p = realloc(s->held, cap);
        if (!p)
            return -1;
        s->held = p;
        s->held_cap = cap;
    }
    memcpy(s->held + s->held_len, data, len);
    s->held_len += len;
    h->body_buffered += len;
    return 0;
}

static void stream_data(struct h2 *h, struct h2_stream *s, const uint8_t *data, size_t len) {
    struct chopin__exchange *x = s->x;
    if (x->state != CHOPIN__X_OPEN || !x->sink || x->sink->ended) {
        stream_consume(h, s, len); /* answered before its body ended: dropped */
        return;
    }
    s->data_ms = now_ms(h);
    if (s->streamed + len > s->max) {
        stream_consume(h, s, len);
        body_fail(h, s, 413, CHOPIN_EFBIG);
        return;
    }
    s->streamed += len;
    if (s->paused || s->held_len) {
        if (body_hold(h, s, data, len) < 0) {
            nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, s->id,
                                      NGHTTP2_ENHANCE_YOUR_CALM);
            s->streaming = 0;
        }
        return;
    }
    body_deliver(h, s, (const char *)data, len);
}

/* On resume (from on_ready): what was held is handed over, the window given back. */
static void body_resume_now(struct h2 *h, struct h2_stream *s) {
    s->resumed = 0;
    if (s->paused || !s->streaming)
        return;
    stream_consume(h, s, s->unconsumed);
    s->unconsumed = 0;
    if (s->held_len) {
        size_t n = s->held_len;
        h->body_buffered -= n;
        s->held_len = 0;
        body_deliver(h, s, s->held, n);
    }
    if (s->body_ended && s->streaming)
        body_end(h, s);
}

/* The request's head is whole and its body is to come: a route that streams runs now. A
 * declared length past the bound in force is answered 413 before any of the body. */
static void body_begins(struct h2 *h, struct h2_stream *s) {
    struct chopin__engine *e = h->c->engine;
    struct chopin__exchange *x = s->x;
    struct chopin_req *req = &x->req;
    const struct chopin__endpoint *ep =
        req->head.method ? chopin__router_streaming(e->router, req) : NULL;
    uint64_t max = ep ? chopin__endpoint_max_body(ep) : 0;
    if (!max)
        max = opts(h)->max_body_bytes;
    if (req->head.body_kind == CHOPIN__BODY_LENGTH && req->head.content_length > max)
        s->refuse = 413;
    if (!ep || s->refuse) {
        if (s->refuse == 413)
            dispatch(h, s); /* answered now; the rest of the body is dropped */
        return;
    }
    s->dispatched = 1;
    if (e->obs)
        x->started_ns = chopin__observe_start(e);
    x->body_to_come = 1;
    e->dispatching = x;
    chopin__router_run(e->router, ep, req, &x->res);
    e->dispatching = NULL;
    x->body_to_come = 0;
    h->c->requests++;
    chopin__count(&e->counters.requests, 1);
    if (x->sink && x->state == CHOPIN__X_OPEN) {
        x->sink->max = max;
        s->streaming = 1;
        s->max = max;
        s->data_ms = now_ms(h);
    } else if (x->state != CHOPIN__X_OPEN) {
        submit(h, s); /* answered without its body, which is dropped */
    }
}

/* The streams whose body deadline (body_timeout_ms since their last bytes) passed are
 * answered 408; returns how many. */
static int bodies_expire(struct h2 *h) {
    int n = 0;
    uint64_t now = now_ms(h);
    for (struct h2_stream *s = h->streams, *next; s; s = next) {
        next = s->next;
        if (s->streaming && s->data_ms + opts(h)->body_timeout_ms <= now) {
            body_fail(h, s, 408, CHOPIN_ETIMEDOUT);
            n++;
        }
    }
    return n;
}

static void h2_body_pause(struct chopin__conn *c, struct chopin__exchange *x, int pause) {
    struct h2 *h = c->proto_state;
    for (struct h2_stream *s = h->streams; s; s = s->next) {
        if (s->x != x || !s->streaming)
            continue;
        if (pause) {
            s->paused = 1;
        } else if (s->paused) {
            s->paused = 0;
            s->resumed = 1;
            chopin__engine_list_ready(c->engine, c);
        }
        return;
    }
}

/* ----- frames ------------------------------------------------------------------------ */

/* A client close to the end of the stream id space, or a server draining: no stream after
 * the last one seen, those in flight finish. */
static void goaway(struct h2 *h) {
    if (h->goaway)
        return;
    h->goaway = 1;
    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
    struct h2 *h = ud;
    struct h2_stream *s;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        if (frame->hd.type == NGHTTP2_DATA && frame->hd.length == 0 &&
            !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
            over_rate(h, &h->control, CONTROL_PER_SEC)) {
            calm(h);
            return 0;
        }
        s = stream_of(h, frame->hd.stream_id);
        if (!s)
            return 0;
        if (frame->hd.stream_id > INT32_MAX - LAST_STREAM_ID_MARGIN)
            goaway(h);
        if (request_malformed(s, frame)) {
            s->dispatched = 1; /* never handled (a streamed body's reader: cancelled) */
            s->streaming = 0;
            malformed(h, s->id);
            return 0;
        }
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            s->body_ended = 1;
            if (s->streaming)
                body_end(h, s);
            else
                dispatch(h, s);
        } else if (s->refuse == 413 && !s->dispatched) {
            dispatch(h, s); /* answered before the rest of the body, which is dropped */
        } else if (frame->hd.type == NGHTTP2_HEADERS &&
                   frame->headers.cat == NGHTTP2_HCAT_REQUEST && !s->dispatched) {
            body_begins(h, s);
        }
        return 0;
    case NGHTTP2_RST_STREAM:
        if (over_rate(h, &h->resets, RESETS_PER_SEC))
            calm(h);
        return 0;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            return 0;
        /* fall through */
    case NGHTTP2_PRIORITY:
        if (over_rate(h, &h->control, CONTROL_PER_SEC))
            calm(h);
        return 0;
    default:
        (void)session;
        return 0;
    }
}

/* A response that ended while its request was still arriving (413): the request's rest is
 * not wanted (RFC 9113 §8.1). */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
    struct h2 *h = ud;
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct h2_stream *s = stream_of(h, frame->hd.stream_id);
    if (s && !nghttp2_session_get_stream_remote_close(session, s->id))
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    if (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)
        h->stall_since = 0;
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error, void *ud) {
    struct h2 *h = ud;
    (void)error;
    struct h2_stream *s = stream_of(h, id);
    if (!s)
        return 0;
    nghttp2_session_set_stream_user_data(session, id, NULL);
    stream_free(h, s);
    return 0;
}

/* ----- the session ------------------------------------------------------------------- */

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

static void setup(void) {
    if (nghttp2_session_callbacks_new(&callbacks) != 0)
        return;
    nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(callbacks, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    if (nghttp2_option_new(&options) != 0) {
        nghttp2_session_callbacks_del(callbacks);
        callbacks = NULL;
        return;
    }
    nghttp2_option_set_max_continuations(options, MAX_CONTINUATIONS);
    nghttp2_option_set_max_settings(options, MAX_SETTINGS);
    nghttp2_option_set_max_outbound_ack(options, MAX_OUTBOUND_ACK);
    nghttp2_option_set_stream_reset_rate_limit(options, 4 * RESETS_PER_SEC, RESETS_PER_SEC);
    nghttp2_option_set_max_deflate_dynamic_table_size(options, 4096);
    /* request bodies read as streams pause their stream's window (on_data_chunk) */
    nghttp2_option_set_no_auto_window_update(options, 1);
    /* its request checks are ours (field_breaks_rules and the functions around it) */
    nghttp2_option_set_no_http_messaging(options, 1);
}

static struct h2 *h2_new(struct chopin__conn *c) {
    pthread_once(&setup_once, setup);
    if (!callbacks)
        return NULL;
    struct h2 *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->c = c;
    h->idle_since = c->engine->now_ms;
    if (nghttp2_session_server_new3(&h->session, callbacks, h, options, chopin__h2_mem()) != 0) {
        chopin__h2_mem_done();
        free(h);
        return NULL;
    }
    const chopin_options *o = &c->engine->cfg->opt;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, o->max_header_bytes},
        /* RFC 7540 priorities stay on (SETTINGS_NO_RFC7540_PRIORITIES 0): with them off
         * nghttp2 also stops checking PRIORITY frames (stream 0 is a connection error,
         * RFC 9113 §6.3) and forgets closed streams (DATA on one is STREAM_CLOSED, §5.1):
         * h2spec 141/146 instead of 145/146, for 1.9 % of a request's instructions
         * (bench/micro_h2.c: 10,820 -> 11,028 on /plaintext) */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 0},
    };
    if (nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0])) {
        nghttp2_session_del(h->session);
        chopin__h2_mem_done();
        free(h);
        return NULL;
    }
    return h;
}

static void h2_free(struct h2 *h) {
    while (h->streams)
        stream_free(h, h->streams);
    nghttp2_session_del(h->session);
    chopin__h2_mem_done();
    free(h);
}

/* ----- the protocol ------------------------------------------------------------------ */

static void h2_on_data(struct chopin__conn *c, char *data, size_t n) {
    struct h2 *h = c->proto_state;
    ssize_t rv = nghttp2_session_mem_recv(h->session, (const uint8_t *)data, n);
    if (rv < 0) {
        /* A connection error nghttp2 could not answer with a GOAWAY of its own (flooded,
         * a bad preface): what is queued goes out, then the connection closes. */
        if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
            nghttp2_session_terminate_session(h->session, rv == NGHTTP2_ERR_FLOODED
                                                              ? NGHTTP2_ENHANCE_YOUR_CALM
                                                              : NGHTTP2_PROTOCOL_ERROR);
        else
            chopin__conn_close(c);
    }
    pump(h);
}

static void h2_on_eof(struct chopin__conn *c) { chopin__conn_close(c); }

static void h2_on_sent(struct chopin__conn *c) { pump(c->proto_state); }

/* GOAWAY; the streams in flight are finished, but those waiting for their application
 * (an endless event stream) are reset, as HTTP/1.1 closes such a connection at once: their
 * clients reconnect elsewhere. */
static void h2_on_drain(struct chopin__conn *c) {
    struct h2 *h = c->proto_state;
    goaway(h);
    for (struct h2_stream *s = h->streams; s; s = s->next)
        if (s->waiting)
            nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    pump(h);
}

/* Answers owed, a body that is not waiting for its application, and nothing nghttp2 can
 * send: the peer's flow-control window is shut. */
static int stalled(const struct h2 *h) {
    for (const struct h2_stream *s = h->streams; s; s = s->next)
        if (s->submitted && !s->waiting)
            return 1;
    return 0;
}

/* The earliest request still arriving: its body deadline. */
static uint64_t arrival_deadline(const struct h2 *h) {
    uint64_t d = 0;
    for (const struct h2_stream *s = h->streams; s; s = s->next) {
        uint64_t since = s->streaming ? s->data_ms : !s->dispatched ? s->started_ms : 0;
        if (since && (!d || since < d))
            d = since;
    }
    return d ? d + opts(h)->body_timeout_ms : 0;
}

/* Which deadline guards the connection now (nothing is waiting in its output queue):
 * - ending: the peer's close, as HTTP/1.1 lingers;
 * - answers the window keeps in: the write deadline, from when that began (frames the
 *   peer sends meanwhile do not move it);
 * - requests arriving: the body deadline of the oldest;
 * - no stream: keep-alive, from when the last one ended;
 * - else (deferred answers, streams waiting for their application): their own bounds. */
static void h2_settle(struct chopin__conn *c) {
    struct h2 *h = c->proto_state;
    uint64_t now = now_ms(h);
    if (h->ending) {
        chopin__conn_arm(c, now + LINGER_MS);
        return;
    }
    if (stalled(h)) {
        if (!h->stall_since)
            h->stall_since = now;
        chopin__conn_arm(c, h->stall_since + opts(h)->write_timeout_ms);
        return;
    }
    h->stall_since = 0;
    uint64_t d = arrival_deadline(h);
    if (d) {
        chopin__conn_arm(c, d);
    } else if (!h->nstreams) {
        chopin__conn_arm(c, h->idle_since + opts(h)->keepalive_timeout_ms);
    } else {
        chopin__wheel_del(&c->engine->wheel, &c->timer);
    }
}

static void h2_on_timeout(struct chopin__conn *c) {
    struct h2 *h = c->proto_state;
    if (!h->ending && !stalled(h) && bodies_expire(h)) {
        pump(h); /* (a streamed body that stopped: its stream answered 408) */
        return;
    }
    if (h->ending || stalled(h) || arrival_deadline(h)) {
        chopin__conn_close(c); /* a peer that stopped reading or sending */
        return;
    }
    goaway(h); /* idle */
    pump(h);
}

/* Deferred answers that were finished and streams their application resumed. */
static void ready_scan(struct h2 *h) {
    for (struct h2_stream *s = h->streams; s; s = s->next) {
        if (s->dispatched && !s->submitted && s->x->state != CHOPIN__X_OPEN)
            submit(h, s);
        if (s->waiting) {
            s->waiting = 0;
            nghttp2_session_resume_data(h->session, s->id);
        }
        if (s->resumed)
            body_resume_now(h, s);
    }
}

static void h2_on_ready(struct chopin__conn *c) {
    struct h2 *h = c->proto_state;
    ready_scan(h);
    pump(h);
}

static void h2_release(struct chopin__conn *c) { h2_free(c->proto_state); }

static void h2_discard(void *state) { h2_free(state); }

static const struct chopin__protocol h2_protocol = {
    .name = "h2",
    .on_data = h2_on_data,
    .on_eof = h2_on_eof,
    .on_timeout = h2_on_timeout,
    .on_sent = h2_on_sent,
    .on_drain = h2_on_drain,
    .settle = h2_settle,
    .release = h2_release,
    .discard = h2_discard,
    .on_ready = h2_on_ready,
    .body_pause = h2_body_pause,
};

int chopin__h2_available(void) { return 1; }

/* ----- Upgrade: h2c (RFC 7540 §3.2) ---------------------------------------------------- */

static int ascii_ieq(const char *a, size_t n, const char *lower) {
    if (strlen(lower) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)a[i]) != lower[i])
            return 0;
    return 1;
}

/* Whether the comma-separated list `v` names `token`. */
static int has_token(chopin_str v, const char *token) {
    const char *p = v.ptr, *end = v.ptr + v.len;
    while (p && p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *t = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if (p > t && ascii_ieq(t, (size_t)(p - t), token))
            return 1;
    }
    return 0;
}

/* The 101 of an upgrade: an exchange of its own, so the request's keeps its answer for
 * stream 1. */
static struct chopin__exchange *switching_answer(struct chopin__engine *e, struct h2 *h) {
    struct chopin__exchange *y = chopin__exchange_current(e);
    if (!y)
        return NULL;
    memset(&y->req.head, 0, sizeof y->req.head);
    y->req.head.minor = 1;
    y->req.head.method_id = CHOPIN_METHOD_GET;
    chopin__res_init(&y->res, &y->arena);
    e->dispatching = y;
    int rc = chopin__exchange_upgrade(e, y, &h2_protocol, h);
    e->dispatching = NULL;
    if (rc < 0)
        return NULL;
    chopin_res_header_add(&y->res, "Upgrade", "h2c");
    return y;
}

struct chopin__exchange *chopin__h2_upgrade(struct chopin__conn *c, struct chopin__exchange *x) {
    struct chopin__engine *e = c->engine;
    const chopin_req *req = &x->req;
    uint8_t settings[256];
    /* (h2c is cleartext's: over TLS HTTP/2 is chosen by ALPN, RFC 7540 §3.3) */
    if (c->transport || !has_token(chopin_req_header(req, "upgrade"), "h2c"))
        return NULL;
    /* HTTP2-Settings: the SETTINGS payload in base64url without padding (RFC 7540 §3.2.1) */
    chopin_str v = chopin_req_header(req, "http2-settings");
    ssize_t n = chopin__base64_decode(v.ptr, v.len, settings, sizeof settings, CHOPIN__B64_URL);
    if (n < 0 || !v.ptr)
        return NULL;
    struct h2 *h = h2_new(c);
    if (!h)
        return NULL;
    int head = req->head.method_id == CHOPIN_METHOD_HEAD;
    if (nghttp2_session_upgrade2(h->session, settings, (size_t)n, head, NULL) != 0 ||
        chopin__exchange_keep(x) < 0 || chopin__exchange_detach(e, x) < 0) {
        h2_free(h);
        return NULL; /* (HTTP/1.1 answers it) */
    }
    struct h2_stream *s = stream_attach(h, x, 1);
    struct chopin__exchange *y = s ? switching_answer(e, h) : NULL;
    if (!y) { /* x is detached: it ends with the h2 state, as a stream's exchange does */
        if (!s)
            chopin__exchange_free(e, x);
        h2_free(h);
        chopin__conn_close(c);
        return NULL;
    }
    nghttp2_session_set_stream_user_data(h->session, 1, s);
    chopin__res_init(&x->res, &x->arena);
    h->last_id = 1;
    h->upgraded = 1;
    dispatch(h, s);
    return y;
}

int chopin__h2_start(struct chopin__conn *c) {
    struct h2 *h = h2_new(c);
    if (!h)
        return -ENOMEM;
    chopin__conn_set_protocol(c, &h2_protocol, h);
    pump(h);
    return 0;
}

#endif
