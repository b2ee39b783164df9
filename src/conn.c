/* SPDX-License-Identifier: MIT */
/*
 * The connection state machine (see conn.h): parse, dispatch, serialize, keep-alive,
 * pipelining, backpressure, timeouts. No I/O here.
 *
 * Input: bytes are parsed where they arrived (the worker's scratch or a provided buffer);
 * only the tail that is not a whole request yet is copied into the connection's own
 * buffer (`in`), which is returned as soon as it empties. Output: responses are appended
 * to the output queue (`out`); all responses to the requests of one read leave in one
 * write because the backend flushes only after feeding the whole read.
 */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/exchange.h"
#include "engine.h"
#include "exchange.h"
#include "http/message.h"
#include "http/parser.h"
#include "http/serialize.h"
#include "http/status.h"
#include "listen.h"
#include "mem/large.h"
#include "ops/observe.h"
#include "outq.h"
#include "peer.h"
#include "router/router.h"

/* How long a closing connection keeps draining input after its last response, so the
 * peer reads that response instead of a reset (RFC 9112 §9.6). */
#define LINGER_MS 2000
/* Bodies up to this size are copied behind their head rather than sent as their own
 * iovec: one copy of a few KiB costs less than a longer writev and keeps pipelined
 * responses in one contiguous range. */
#define INLINE_BODY_MAX 4096

struct chopin__inbuf {
    size_t len, cap;
    int heap; /* larger than a pool buffer: chopin__large_alloc'd, sizeof + cap bytes */
    char data[];
};

static void after_progress(struct chopin__conn *c);
static uint64_t idle_deadline(const struct chopin__conn *c);
static void process_stash(struct chopin__conn *c);
static void drop_exchanges(struct chopin__conn *c);
static size_t stream_body(struct chopin__conn *c, char *p, size_t n);
static int stream_route(struct chopin__conn *c, char *p, size_t n, struct chopin__head *head,
                        size_t *used);
static void stream_answered(struct chopin__conn *c, struct chopin__exchange *x);
static void stream_timeout(struct chopin__conn *c);
static void switch_protocol(struct chopin__conn *c, struct chopin__exchange *x);

static uint64_t now_ms(const struct chopin__conn *c) { return c->engine->now_ms; }
static const chopin_options *options(const struct chopin__conn *c) { return &c->engine->cfg->opt; }

/* ----- lifecycle ------------------------------------------------------------------- */

void chopin__conn_init(struct chopin__conn *c, struct chopin__engine *e, int fd) {
    chopin__timer_init(&c->timer);
    c->engine = e;
    c->fd = fd;
    c->keep_open = 1;
    c->live = 1;
    c->phase = CHOPIN__PHASE_IDLE;
    after_progress(c);
}

static void inbuf_free(struct chopin__engine *e, struct chopin__inbuf *b) {
    if (!b)
        return;
    if (b->heap)
        chopin__large_free(b, sizeof *b + b->cap);
    else
        chopin__pool_give(&e->pool, b);
}

/* The engine's two lists share the connection's links (conn.h, enum chopin__conn_list).
 * The idle list, touched twice per keep-alive request, is spelled out on the engine's own
 * fields: through pointers to its ends (list_remove) the compiler must assume they alias
 * the links, 3 more instructions per request (callgrind, bench/micro_conn.c). */
static void idle_unlist(struct chopin__conn *c) {
    struct chopin__engine *e = c->engine;
    if (c->listed != CHOPIN__LIST_IDLE)
        return;
    if (c->list_prev)
        c->list_prev->list_next = c->list_next;
    else
        e->idle_head = c->list_next;
    if (c->list_next)
        c->list_next->list_prev = c->list_prev;
    else
        e->idle_tail = c->list_prev;
    c->list_prev = c->list_next = NULL;
    c->listed = CHOPIN__LIST_NONE;
    e->idle_count--;
}

static void idle_list(struct chopin__conn *c) {
    struct chopin__engine *e = c->engine;
    if (c->listed == CHOPIN__LIST_IDLE)
        return;
    c->list_prev = e->idle_tail;
    c->list_next = NULL;
    if (e->idle_tail)
        e->idle_tail->list_next = c;
    else
        e->idle_head = c;
    e->idle_tail = c;
    c->listed = CHOPIN__LIST_IDLE;
    e->idle_count++;
}

/* A connection whose head arrives in pieces is listed when its phase HEAD starts, and
 * unlisted when it ends (process_stash, where every such head completes: phase HEAD
 * always has its bytes in `in`), times out, or the connection closes. A request whole in
 * one read never enters phase HEAD, so it never touches the list. */
static void partial_unlist(struct chopin__conn *c) {
    struct chopin__engine *e = c->engine;
    if (c->listed != CHOPIN__LIST_PARTIAL)
        return;
    if (c->list_prev)
        c->list_prev->list_next = c->list_next;
    else
        e->partial_head = c->list_next;
    if (c->list_next)
        c->list_next->list_prev = c->list_prev;
    else
        e->partial_tail = c->list_prev;
    c->list_prev = c->list_next = NULL;
    c->listed = CHOPIN__LIST_NONE;
}

/* At the tail: the list stays ordered by when each head started. */
static void partial_list(struct chopin__conn *c) {
    struct chopin__engine *e = c->engine;
    partial_unlist(c); /* a stale entry: the head before this one completed in the same read */
    c->list_prev = e->partial_tail;
    c->list_next = NULL;
    if (e->partial_tail)
        e->partial_tail->list_next = c;
    else
        e->partial_head = c;
    e->partial_tail = c;
    c->listed = CHOPIN__LIST_PARTIAL;
}

static void unlist(struct chopin__conn *c) {
    idle_unlist(c);
    partial_unlist(c);
}

void chopin__conn_release(struct chopin__conn *c) {
    struct chopin__engine *e = c->engine;
    drop_exchanges(c);
    if (c->proto) {
        c->proto->release(c);
        c->proto = NULL;
        c->proto_state = NULL;
    }
    if (c->transport) {
        c->transport->ops->release(c);
        c->transport = NULL;
    }
    unlist(c);
    chopin__wheel_del(&e->wheel, &c->timer);
    inbuf_free(e, c->in);
    c->in = NULL;
    chopin__outq_free(c->out, &e->pool);
    c->out = NULL;
    c->live = 0;
}

/* Something is wrong with this connection beyond answering: close it now. */
static void fail(struct chopin__conn *c) {
    c->ask |= CHOPIN__CONN_CLOSE;
    c->keep_open = 0;
}

void chopin__conn_close(struct chopin__conn *c) { fail(c); }

void chopin__conn_set_transport(struct chopin__conn *c, struct chopin__transport *t) {
    c->transport = t;
    after_progress(c); /* its deadline (a handshake's) may come before keep-alive's */
}

/* The phase in which conn->proto has the connection. */
static int protocol_runs(const struct chopin__conn *c) {
    return __builtin_expect(c->phase == CHOPIN__PHASE_PROTOCOL, 0);
}

/* ----- input buffer ----------------------------------------------------------------- */

/* Makes c->in hold at least `need` bytes, moving to a heap buffer past a pool buffer. */
static int inbuf_reserve(struct chopin__conn *c, size_t need) {
    struct chopin__engine *e = c->engine;
    struct chopin__inbuf *b = c->in;
    size_t pool_cap = e->pool.buf_size - sizeof *b;
    if (b && b->cap >= need)
        return 0;
    if (!b && need <= pool_cap) {
        b = chopin__pool_take(&e->pool);
        if (!b)
            return -ENOMEM;
        b->len = 0;
        b->cap = pool_cap;
        b->heap = 0;
        c->in = b;
        return 0;
    }
    size_t cap = b ? b->cap * 2 : pool_cap * 2;
    if (cap < need)
        cap = need;
    /* A large body's buffer is mapped, so its memory goes back to the kernel when the
     * request is done (mem/large.h). */
    struct chopin__inbuf *nb = chopin__large_alloc(sizeof *nb + cap);
    if (!nb)
        return -ENOMEM;
    nb->len = 0;
    if (b) {
        memcpy(nb->data, b->data, b->len);
        nb->len = b->len;
        inbuf_free(e, b);
    }
    nb->cap = cap;
    nb->heap = 1;
    c->in = nb;
    return 0;
}

static int stash(struct chopin__conn *c, const char *p, size_t n) {
    if (inbuf_reserve(c, (c->in ? c->in->len : 0) + n) < 0)
        return -ENOMEM;
    memcpy(c->in->data + c->in->len, p, n);
    c->in->len += n;
    return 0;
}

/* ----- responses -------------------------------------------------------------------- */

static void free_heap(void *p, void *arg) {
    (void)arg;
    free(p);
}

static struct chopin__outq *output(struct chopin__conn *c) {
    if (!c->out)
        c->out = chopin__outq_new(&c->engine->pool);
    return c->out;
}

struct chopin__outq *chopin__conn_output(struct chopin__conn *c) { return output(c); }

__attribute__((always_inline)) static inline int has_room(const struct chopin__conn *c) {
    return !c->out || chopin__outq_has_room(c->out);
}

static void count_status(struct chopin__engine *e, int status) {
    if (status >= 500)
        chopin__count(&e->counters.errors_5xx, 1);
    else if (status >= 400)
        chopin__count(&e->counters.errors_4xx, 1);
}

/* Requests refused before routing, by kind, for the metrics. A 408 is counted as the
 * timeout it is (count_timeout). */
static void count_refusal(struct chopin__engine *e, int status) {
    enum chopin__refused_kind k;
    switch (status) {
    case 408:
        return;
    case 400: k = CHOPIN__REFUSED_BAD_REQUEST; break;
    case 413: k = CHOPIN__REFUSED_BODY_TOO_LARGE; break;
    case 414: k = CHOPIN__REFUSED_URI_TOO_LONG; break;
    case 431: k = CHOPIN__REFUSED_HEADERS_TOO_LARGE; break;
    case 501: k = CHOPIN__REFUSED_NOT_IMPLEMENTED; break;
    case 505: k = CHOPIN__REFUSED_VERSION; break;
    default: k = CHOPIN__REFUSED_OTHER; break;
    }
    chopin__count(&e->counters.refused[k], 1);
}

static int no_body_status(int status) { return status < 200 || status == 204 || status == 304; }

static void set_framing(struct chopin__head_ctx *ctx, const struct chopin_res *res, int minor,
                        int *keep) {
    ctx->body_len = 0;
    if (no_body_status(res->status)) {
        ctx->framing = CHOPIN__FRAME_NONE;
    } else if (res->body_kind == CHOPIN__RES_STREAM) {
        /* HTTP/1.0 has no chunked coding: the body ends when the connection does. */
        ctx->framing = minor ? CHOPIN__FRAME_CHUNKED : CHOPIN__FRAME_CLOSE;
        if (!minor)
            *keep = 0;
    } else {
        ctx->framing = CHOPIN__FRAME_LENGTH;
        if (res->body_kind != CHOPIN__RES_EMPTY)
            ctx->body_len = res->body_len;
    }
    ctx->connection = !*keep ? 1 : minor == 0 ? 2 : 0;
    if (__builtin_expect(res->status == 101, 0) && *keep)
        ctx->connection = 3;
}

/* gcc turns a memcpy whose size it can bound (an inline body is at most 4 KiB) into
 * `rep movsq`, which takes tens of cycles to start: more than copying a short body costs
 * (perf, pipelined /plaintext: 4% of the server's CPU). Hiding the bound keeps the call to
 * the C library's copy. */
static void copy_body(char *dst, const char *src, size_t n) {
    __asm__("" : "+r"(n));
    memcpy(dst, src, n);
}

/* Writes the head, plus the body when it is small enough to travel inline. Returns 0, or
 * -ENOSPC when the head could never fit (then nothing was queued). */
static int queue_head(struct chopin__conn *c, const struct chopin_res *res,
                      struct chopin__head_ctx *ctx, size_t inline_len) {
    struct chopin__outq *q = c->out;
    size_t size = chopin__serialize_head_size(res, ctx);
    if (size > q->cap)
        return -ENOSPC;
    char *dst = chopin__outq_reserve(q, size + inline_len);
    int on_heap = dst == NULL;
    if (on_heap && !(dst = malloc(size + inline_len)))
        return -ENOMEM;
    size_t n = chopin__serialize_head(dst, res, ctx);
    if (inline_len)
        copy_body(dst + n, res->body, inline_len);
    if (!on_heap) {
        chopin__outq_commit(q, n + inline_len);
        return 0;
    }
    /* Only when earlier pipelined responses fill the data area: rare, so a copy is fine. */
    if (chopin__outq_push_ext(q, dst, n + inline_len, free_heap, NULL) < 0) {
        free(dst);
        return -ENOSPC;
    }
    return 0;
}

static void free_arena_block(void *p, void *block) {
    (void)p;
    chopin__arena_free_taken(block);
}

/*
 * A copied body too large to travel inline lives in the request arena, which is reset as
 * soon as the response is queued. Copying it to the heap again cost a malloc and a second
 * copy per response (16 KiB body: callgrind, bench/micro_conn.c scenario 7). A large
 * copy has an arena block of its own, so the block leaves with the response instead;
 * failing that, the bytes go into the output queue's own buffer when they fit, and only
 * then to the heap.
 */
static int queue_copied_body(struct chopin__conn *c, struct chopin_res *res) {
    struct chopin__outq *q = c->out;
    size_t len = res->body_len;
    void *block = chopin__arena_take(res->arena, (void *)res->body, len);
    if (block) {
        if (chopin__outq_push_ext(q, res->body, len, free_arena_block, block) == 0)
            return 0;
        chopin__arena_free_taken(block);
        return -ENOSPC;
    }
    char *dst = chopin__outq_reserve(q, len);
    if (dst) {
        copy_body(dst, res->body, len);
        chopin__outq_commit(q, len);
        return 0;
    }
    char *copy = malloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, res->body, len);
    if (chopin__outq_push_ext(q, copy, len, free_heap, NULL) == 0)
        return 0;
    free(copy);
    return -ENOSPC;
}

/* Queues a body that does not travel inline. Takes ownership of what `res` owns. */
static int queue_body(struct chopin__conn *c, struct chopin_res *res, int chunked) {
    struct chopin__outq *q = c->out;
    switch (res->body_kind) {
    case CHOPIN__RES_COPY:
        return queue_copied_body(c, res);
    case CHOPIN__RES_STATIC:
        return chopin__outq_push_ext(q, res->body, res->body_len, NULL, NULL);
    case CHOPIN__RES_OWNED:
        if (chopin__outq_push_ext(q, res->body, res->body_len, res->free_fn, res->free_arg) < 0)
            break;
        res->body_kind = CHOPIN__RES_EMPTY;
        return 0;
    case CHOPIN__RES_FILE:
        if (chopin__outq_push_file(q, res->fd, res->offset, res->body_len, res->close_fd,
                                   res->free_fn, res->free_arg) < 0)
            break;
        res->body_kind = CHOPIN__RES_EMPTY;
        return 0;
    case CHOPIN__RES_STREAM:
        if (chopin__outq_push_stream(q, res->produce, res->stream_done, res->stream_state,
                                     chunked, res->trailers, res->trailers_len) < 0)
            break;
        res->body_kind = CHOPIN__RES_EMPTY;
        return 0;
    default:
        return 0;
    }
    chopin__res_discard(res);
    return -ENOSPC;
}

/* The commonest answer in one step: a 200 on a keep-alive HTTP/1.1 connection, its small
 * body inline, its head the one the worker cached last (serialize.h). Copies the two and
 * skips the framing, sizing and serializing steps of queue_response (callgrind,
 * micro_conn.c with the request bench/run.sh sends: 1,594 -> 1,472 instructions per
 * request). Returns 0, having queued nothing, when the response is not that. */
static int queue_cached(struct chopin__conn *c, const struct chopin_res *res) {
    if ((res->body_kind != CHOPIN__RES_STATIC && res->body_kind != CHOPIN__RES_COPY) ||
        res->body_len > INLINE_BODY_MAX)
        return 0;
    const struct chopin__head_cache *hc = &c->engine->heads;
    size_t head = chopin__head_cache_match(hc, res);
    char *dst = head ? chopin__outq_reserve(c->out, head + res->body_len) : NULL;
    if (!dst)
        return 0;
    memcpy(dst, hc->bytes, head);
    copy_body(dst + head, res->body, res->body_len);
    chopin__outq_commit(c->out, head + res->body_len);
    return 1;
}

static size_t inline_length(const struct chopin_res *res, int send_body) {
    if (!send_body || res->body_len > INLINE_BODY_MAX)
        return 0;
    if (res->body_kind != CHOPIN__RES_COPY && res->body_kind != CHOPIN__RES_STATIC)
        return 0;
    return res->body_len;
}

static void set_internal_error(struct chopin_res *res) {
    chopin__res_discard(res);
    chopin__res_init(res, res->arena);
    chopin_res_error(res, 500, NULL);
    res->close = 1;
}

/* The server is stopping: the worker drains, or will once its handler returned (a stop
 * that arrived while the handler ran is seen by the loop only afterwards). */
static int stopping(const struct chopin__engine *e) {
    return e->draining ||
           (e->stop_requested && atomic_load_explicit(e->stop_requested, memory_order_relaxed));
}

/* Serializes `res` into the output queue and decides whether the connection stays open. */
static void queue_response(struct chopin__conn *c, struct chopin_res *res, int minor,
                           int head_request) {
    struct chopin__engine *e = c->engine;
    int keep = c->keep_open && !res->close && !stopping(e);
    if (!output(c)) {
        chopin__res_discard(res);
        fail(c);
        return;
    }
    if (keep && minor == 1 && !head_request && queue_cached(c, res))
        return;
    struct chopin__head_ctx ctx = {
        .date = e->date.text,
        .server_line = e->cfg->server_header,
        .server_line_len = e->cfg->server_header_len,
        .cache = &e->heads,
    };
    set_framing(&ctx, res, minor, &keep);
    int send_body = !head_request && !no_body_status(res->status);
    size_t inline_len = inline_length(res, send_body);
    int rc = queue_head(c, res, &ctx, inline_len);
    if (rc == -ENOSPC && res->status != 500) {
        /* The handler's headers cannot fit any output buffer: an error, not an overflow. */
        set_internal_error(res);
        keep = 0;
        set_framing(&ctx, res, minor, &keep);
        inline_len = inline_length(res, send_body);
        rc = queue_head(c, res, &ctx, inline_len);
    }
    count_status(e, res->status);
    if (rc < 0) {
        chopin__res_discard(res);
        fail(c);
        return;
    }
    if (!send_body)
        chopin__res_discard(res); /* HEAD, 1xx, 204, 304: what the body owns goes back */
    else if (!inline_len && queue_body(c, res, ctx.framing == CHOPIN__FRAME_CHUNKED) < 0)
        fail(c); /* (an inline body, static or in the arena, owns nothing) */
    if (!keep)
        c->keep_open = 0;
}

/* Answers a request the parser or the body reader refused, then stops reading requests. */
static void answer_later(struct chopin__conn *c, struct chopin__exchange *x);
static void send_answer_queued(struct chopin__conn *c, struct chopin__exchange *x);

/* Answers a request the parser or the body reader refused, then stops reading requests. */
static void respond_error(struct chopin__conn *c, int status) {
    struct chopin__engine *e = c->engine;
    struct chopin__exchange *x = chopin__exchange_current(e);
    c->phase = CHOPIN__PHASE_LINGER;
    count_refusal(e, status);
    if (!x) {
        fail(c);
        return;
    }
    /* Through the global middleware (an access log sees it too), on a request that
     * carries none of the refused bytes: see chopin__router_refuse. */
    struct chopin_req *req = &x->req;
    struct chopin_res *res = &x->res;
    *req = (struct chopin_req){.arena = &x->arena, .engine = e, .conn = c};
    req->head.minor = 1;
    chopin__res_init(res, &x->arena);
    e->dispatching = x;
    chopin__router_refuse(e->router, req, res, status);
    e->dispatching = NULL;
    if (res->status < 400 || res->body_kind == CHOPIN__RES_UNSET ||
        chopin__json_unfinished(res)) {
        /* Middleware may restyle the refusal (headers, body, another 4xx/5xx), not make it
         * an interim or successful answer to bytes that were never a request. */
        chopin__res_discard(res);
        chopin__res_init(res, &x->arena);
        chopin_res_error(res, status, NULL);
    }
    res->close = 1; /* whatever the middleware set: the bytes after these are never read */
    if (!c->xq_head) {
        send_answer_queued(c, x);
        chopin__exchange_reset(x);
    } else {
        answer_later(c, x);
    }
}

static void send_continue(struct chopin__conn *c) {
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    /* Behind an answer still to come, a 100 would read as that earlier request's. */
    if (!c->expect_continue || c->continue_sent || c->xq_head)
        return;
    c->continue_sent = 1;
    char *dst = output(c) ? chopin__outq_reserve(c->out, sizeof line - 1) : NULL;
    if (!dst) {
        fail(c);
        return;
    }
    memcpy(dst, line, sizeof line - 1);
    chopin__outq_commit(c->out, sizeof line - 1);
}

/* ----- exchanges: answers in request order ------------------------------------------- */

/* The access log and the metrics see every answer here, refusals included (those have
 * no method, and no dispatch time). */
__attribute__((noinline)) static void observe_answer(struct chopin__conn *c,
                                                     struct chopin__exchange *x) {
    uint64_t started = x->req.head.method_len ? x->started_ns : 0;
    chopin__observe_answer(c->engine, c, &x->req, &x->res, started, NULL);
}

/* Queues the answer of `x`, which is complete (a 500 when the handler set none). Inline
 * for the plain path (answer): as a call it cost 9 instructions per request (callgrind,
 * bench/micro_conn.c); the other paths share one copy, send_answer_queued. */
__attribute__((always_inline)) static inline void send_answer(struct chopin__conn *c,
                                                              struct chopin__exchange *x) {
    struct chopin_res *res = &x->res;
    if (res->body_kind == CHOPIN__RES_UNSET || chopin__json_unfinished(res))
        set_internal_error(res); /* no answer, or half a JSON document */
    else if (res->finalize)
        chopin__res_finalize(&x->req, res); /* compression (issue 15) */
    const struct chopin__head *head = &x->req.head;
    queue_response(c, res, head->minor, head->method_id == CHOPIN_METHOD_HEAD);
    if (__builtin_expect(c->engine->obs != NULL, 0))
        observe_answer(c, x);
}

static void send_answer_queued(struct chopin__conn *c, struct chopin__exchange *x) {
    send_answer(c, x);
}

static void xq_push(struct chopin__conn *c, struct chopin__exchange *x) {
    x->next = NULL;
    if (c->xq_tail)
        c->xq_tail->next = x;
    else
        c->xq_head = x;
    c->xq_tail = x;
    c->pending++;
}

static struct chopin__exchange *xq_pop(struct chopin__conn *c) {
    struct chopin__exchange *x = c->xq_head;
    c->xq_head = x->next;
    if (!c->xq_head)
        c->xq_tail = NULL;
    c->pending--;
    return x;
}

/* Cancels what is still open and releases every queued exchange: the connection closes,
 * or an answer before them closes it. */
static void drop_exchanges(struct chopin__conn *c) {
    struct chopin__engine *e = c->engine;
    while (c->xq_head) {
        struct chopin__exchange *x = xq_pop(c);
        chopin__exchange_cancel(e, x);
        chopin__res_discard(&x->res);
        chopin__exchange_free(e, x);
    }
}

/* The answer of `x`, which asked to switch protocols, is queued: the connection switches
 * if it was the 101 on a connection that stays open (a handler may still have answered
 * otherwise, or the server started draining). The new protocol starts, with the bytes
 * that followed the request, at the end of this event (after_progress), once the caller
 * has kept them. */
static void switch_protocol(struct chopin__conn *c, struct chopin__exchange *x) {
    if (x->res.status != 101 || !c->keep_open || (c->ask & CHOPIN__CONN_CLOSE)) {
        c->keep_open = 0; /* the bytes after the request were never meant as requests */
        return;
    }
    c->proto = x->upgrade;
    c->proto_state = x->upgrade_state;
    x->upgrade = NULL;
}

/* Queues the answers at the head of the queue that are ready, in request order, while
 * output has room. An answer that closes the connection ends the queue: the requests
 * after it are never answered (their client reads up to the close). */
static void queue_ready_answers(struct chopin__conn *c) {
    while (c->xq_head && c->xq_head->state == CHOPIN__X_READY && has_room(c) &&
           !(c->ask & CHOPIN__CONN_CLOSE)) {
        struct chopin__exchange *x = xq_pop(c);
        if (__builtin_expect(x->sink != NULL, 0))
            stream_answered(c, x);
        send_answer_queued(c, x);
        int upgrade = x->upgrade != NULL;
        if (upgrade)
            switch_protocol(c, x);
        chopin__exchange_free(c->engine, x);
        if (!c->keep_open) {
            drop_exchanges(c);
            c->phase = CHOPIN__PHASE_LINGER;
        }
        if (upgrade)
            break;
    }
}

/* A deferred exchange, or an answer behind one, waits on the connection's queue. */
static void answer_later(struct chopin__conn *c, struct chopin__exchange *x) {
    struct chopin__engine *e = c->engine;
    x->conn = c;
    if (chopin__exchange_detach(e, x) < 0) { /* (a deferred one has left already) */
        chopin__res_discard(&x->res);
        chopin__exchange_reset(x);
        fail(c);
        return;
    }
    if (x->state == CHOPIN__X_RUNNING)
        x->state = CHOPIN__X_READY;
    if (x->upgrade)
        c->phase = CHOPIN__PHASE_UPGRADE; /* no request after it is read as HTTP/1.1 */
    xq_push(c, x);
    queue_ready_answers(c);
}

/* After a handler ran: the plain case sends its answer now. */
__attribute__((always_inline)) static inline void answer(struct chopin__conn *c,
                                                         struct chopin__exchange *x) {
    if (__builtin_expect(x->state == CHOPIN__X_RUNNING && !c->xq_head, 1)) {
        send_answer(c, x);
        chopin__exchange_reset(x);
        return;
    }
    answer_later(c, x);
}

void chopin__conn_flush_answers(struct chopin__conn *c) {
    if (c->ask & CHOPIN__CONN_CLOSE)
        return;
    if (protocol_runs(c)) { /* (its output was queued by the application: chopin__conn_wake) */
        if (c->proto->on_ready)
            c->proto->on_ready(c);
        after_progress(c);
        return;
    }
    queue_ready_answers(c);
    if (c->body_stream && !c->body_paused && c->in && !(c->ask & CHOPIN__CONN_CLOSE))
        process_stash(c); /* a resumed body: the bytes read before its pause */
    /* Requests that waited for the queue to shrink (max_pending) are read now. */
    if (c->backpressure && has_room(c) && c->pending < options(c)->max_pending) {
        c->backpressure = 0;
        if (c->in)
            process_stash(c);
    }
    after_progress(c);
}

void chopin__conn_answer_ready(struct chopin__conn *c) {
    struct chopin__engine *e = c->engine;
    /* Inside a handler or a cancel callback: never serve one connection inside another's. */
    if (e->dispatching || e->nested) {
        chopin__engine_list_ready(e, c);
        return;
    }
    chopin__conn_flush_answers(c);
    chopin__engine_notify(e, c);
}

/* A protocol that takes Upgrade requests before their handler runs (stack.h: h2c): the
 * switch must be the connection's next answer, on a connection that stays open. Returns 1
 * when the request was taken (or the connection must close), 0 for HTTP/1.1 to answer. */
static int upgrade_before_handler(struct chopin__conn *c, struct chopin__exchange *x) {
    if (!c->engine->stack.upgrade || !c->keep_open || c->xq_head)
        return 0;
    struct chopin__exchange *up = c->engine->stack.upgrade(c, x);
    if (up)
        answer(c, up);
    return up != NULL || (c->ask & CHOPIN__CONN_CLOSE);
}

/* Runs the handler for the request in `x`, whose head the parser filled from raw[0..
 * head_len) and whose body (decoded) follows it, and answers it. What only a deferred
 * exchange needs (its connection, its bytes' extent) is found when it defers. */
static void dispatch(struct chopin__conn *c, struct chopin__exchange *x, const char *raw,
                     size_t head_len, uint64_t body_len) {
    struct chopin__engine *e = c->engine;
    struct chopin_req *req = &x->req;
    const struct chopin__head *head = &req->head;
    req->body = body_len ? raw + head_len : NULL;
    req->body_len = body_len;
    req->arena = &x->arena;
    req->engine = e;
    req->conn = c;
    req->ndata = 0;
    if (!head->keep_alive || e->draining)
        c->keep_open = 0;
    if (__builtin_expect(head->upgrade, 0) && upgrade_before_handler(c, x))
        return;

    chopin__res_init(&x->res, &x->arena);
    if (__builtin_expect(e->obs != NULL, 0))
        x->started_ns = chopin__observe_start(e);
    e->dispatching = x;
    chopin__router_dispatch(e->router, req, &x->res);
    e->dispatching = NULL;
    c->requests++;
    chopin__count(&e->counters.requests, 1);
    answer(c, x);
}

/* ----- request processing ------------------------------------------------------------ */

static void enter_phase(struct chopin__conn *c, enum chopin__conn_phase phase, uint32_t timeout) {
    if (c->phase == phase)
        return;
    c->phase = (uint8_t)phase;
    c->deadline = now_ms(c) + timeout;
    if (phase == CHOPIN__PHASE_HEAD && !c->xq_head) /* (never evict requests in progress) */
        partial_list(c);
}

/* The head is complete and its body is not. Keeps what reading the body needs, so the
 * head is not parsed again for every piece of the body that arrives, and starts the body
 * deadline. */
static void start_body(struct chopin__conn *c, const struct chopin__head *head, size_t head_len) {
    enter_phase(c, CHOPIN__PHASE_BODY, options(c)->body_timeout_ms);
    c->head_len = (uint32_t)head_len;
    c->body_kind = head->body_kind;
    c->body_need = head->body_kind == CHOPIN__BODY_LENGTH ? head->content_length : 0;
    c->expect_continue = head->expect_continue; /* the parser leaves it 0 for HTTP/1.0 */
    c->body_in = c->body_out = 0;
    c->continue_sent = 0;
    if (head->body_kind == CHOPIN__BODY_CHUNKED)
        chopin__chunked_init(&c->chunked);
}

/* Reads the body of the request whose head is p[0..c->head_len), from what start_body
 * kept, without the head. Returns 1 when it is complete (its decoded length in *body_len,
 * the request's bytes in *used); else 0, with *used what serve_one returns: 0 while more
 * must arrive, n after an error answer. */
static int await_body(struct chopin__conn *c, char *p, size_t n, uint64_t *body_len,
                      size_t *used) {
    size_t head_len = c->head_len;
    int rc = 1;
    if (c->body_kind == CHOPIN__BODY_LENGTH) {
        rc = n - head_len >= c->body_need;
        *body_len = c->body_need;
        *used = head_len + c->body_need;
    } else {
        size_t in = c->body_in, out = c->body_out;
        rc = chopin__chunked_decode(&c->chunked, p + head_len, n - head_len, &in, &out,
                                    options(c)->max_body_bytes);
        c->body_in = in;
        c->body_out = out;
        *body_len = out;
        *used = head_len + in;
    }
    if (rc == 1)
        return 1;
    if (rc == 0) {
        send_continue(c);
        *used = 0;
    } else {
        respond_error(c, -rc);
        *used = n;
    }
    return 0;
}

/* The request read so far: where its body starts and how long it is decoded, and the
 * bytes of p it takes (what serve_one returns when it is not complete). */
struct request_span {
    size_t head_len, used;
    uint64_t body_len;
};

/* Phase BODY: the rest of a body whose head arrived in an earlier read. Returns 1 when the
 * request is complete, its head parsed again into `head` for the handler. */
static int body_arrived(struct chopin__conn *c, char *p, size_t n, struct chopin__head *head,
                        struct request_span *r) {
    if (!await_body(c, p, n, &r->body_len, &r->used))
        return 0;
    r->head_len = c->head_len;
    if (chopin__parse_request(p, r->head_len, head, &c->engine->cfg->limits) !=
        (ssize_t)r->head_len) {
        fail(c); /* cannot happen: these bytes parsed before */
        r->used = n;
        return 0;
    }
    return 1;
}

/* A new request at p: parses its head and takes its body when all of it is here; else
 * keeps what reading the rest needs (start_body) or answers the refusal. Returns 1 when
 * the request is complete. */
static int request_arrived(struct chopin__conn *c, char *p, size_t n, struct chopin__head *head,
                           struct request_span *r) {
    ssize_t len = chopin__parse_request(p, n, head, &c->engine->cfg->limits);
    if (len == CHOPIN__PARSE_INCOMPLETE) {
        enter_phase(c, CHOPIN__PHASE_HEAD, options(c)->header_timeout_ms);
        r->used = 0;
        return 0;
    }
    if (len < 0) {
        respond_error(c, (int)-len);
        r->used = n;
        return 0;
    }
    r->head_len = r->used = (size_t)len;
    r->body_len = 0;
    if (head->body_kind != CHOPIN__BODY_NONE && stream_route(c, p, n, head, &r->used))
        return 0;
    if (head->body_kind == CHOPIN__BODY_CHUNKED) {
        start_body(c, head, r->head_len);
        return await_body(c, p, n, &r->body_len, &r->used);
    }
    if (head->body_kind != CHOPIN__BODY_LENGTH)
        return 1;
    if (head->content_length > options(c)->max_body_bytes) {
        respond_error(c, 413);
        r->used = n;
        return 0;
    }
    if (n - r->head_len < head->content_length) {
        start_body(c, head, r->head_len);
        send_continue(c);
        r->used = 0;
        return 0;
    }
    r->body_len = head->content_length;
    r->used += r->body_len;
    return 1;
}

/* Serves the request at p[0..n) if it is complete. Returns the bytes it used, 0 when it
 * needs more (its progress is kept in c), or n after an error answer. The head is parsed
 * when it first arrives complete; a body that takes several reads is then read from what
 * start_body kept, and the head parsed once more (its bytes unchanged, only moved) when
 * the body is complete, to fill the request for the handler. */
static size_t serve_one(struct chopin__conn *c, char *p, size_t n) {
    if (c->body_stream)
        return stream_body(c, p, n);
    struct chopin__exchange *x = chopin__exchange_current(c->engine);
    if (!x) {
        fail(c);
        return n;
    }
    struct chopin__head *head = &x->req.head; /* the parser fills it in place: no copy */
    head->headers = c->engine->headers;
    struct request_span r;
    int complete = c->phase == CHOPIN__PHASE_BODY ? body_arrived(c, p, n, head, &r)
                                                   : request_arrived(c, p, n, head, &r);
    if (!complete)
        return r.used;
    c->phase = CHOPIN__PHASE_IDLE;
    c->head_len = 0;
    c->body_in = c->body_out = 0;
    c->body_need = 0;
    dispatch(c, x, p, r.head_len, r.body_len);
    if (!c->keep_open)
        c->phase = CHOPIN__PHASE_LINGER;
    return r.used;
}

/* Serves every complete request in buf[0..len) while output has room. Returns the bytes
 * used; sets c->backpressure when it stopped because output must drain first. */
static size_t serve(struct chopin__conn *c, char *buf, size_t len) {
    size_t pos = 0;
    while (pos < len && c->phase < CHOPIN__PHASE_LINGER && !(c->ask & CHOPIN__CONN_CLOSE)) {
        if (!has_room(c) || (c->pending && c->pending >= options(c)->max_pending)) {
            c->backpressure = 1;
            break;
        }
        size_t used = serve_one(c, buf + pos, len - pos);
        if (used == 0)
            break;
        pos += used;
    }
    return c->phase == CHOPIN__PHASE_LINGER ? len : pos;
}

/* Reserves room for the rest of a Content-Length body in one step, so a large upload is
 * copied once instead of being reallocated as it arrives. */
static void reserve_body(struct chopin__conn *c) {
    if (c->phase == CHOPIN__PHASE_BODY && c->body_need && c->in && !c->body_stream &&
        inbuf_reserve(c, c->head_len + c->body_need) < 0)
        fail(c);
}

/* A chunked body is decoded in place: its framing (sizes, extensions, CRLFs) is left as
 * dead bytes between the decoded payload and the undecoded rest. Drop them, so the buffer
 * holds what the body decodes to (bounded by max_body_bytes), not what it took on the
 * wire: one-byte chunks with 4 KiB extensions would otherwise cost 4 KiB per body byte. */
static void compact_chunked(struct chopin__conn *c) {
    struct chopin__inbuf *b = c->in;
    if (!b || c->phase != CHOPIN__PHASE_BODY || c->body_in == c->body_out)
        return;
    size_t from = c->head_len + c->body_in, to = c->head_len + c->body_out;
    memmove(b->data + to, b->data + from, b->len - from);
    b->len -= from - to;
    c->body_in = c->body_out;
}

static void process_stash(struct chopin__conn *c) {
    struct chopin__inbuf *b = c->in;
    size_t used = serve(c, b->data, b->len);
    if (c->phase != CHOPIN__PHASE_HEAD)
        partial_unlist(c);
    b = c->in; /* serve does not touch c->in, but be explicit that b is current */
    if (used >= b->len) {
        inbuf_free(c->engine, b);
        c->in = NULL;
        return;
    }
    if (used) {
        memmove(b->data, b->data + used, b->len - used);
        b->len -= used;
        c->head_lf = memchr(b->data, '\n', b->len) != NULL; /* a new request's head */
    }
    compact_chunked(c);
    reserve_body(c);
}

/* The parser starts over from the head's first byte each time, so a client sending its
 * head a byte at a time would cost quadratic work. Its verdict can only change when a
 * line ends or a size limit is crossed (a bad byte is refused at the end of its line
 * instead), so new bytes without a '\n' are only buffered until then. */
static int head_may_progress(struct chopin__conn *c, const char *data, size_t n) {
    if (c->phase != CHOPIN__PHASE_HEAD)
        return 1;
    if (memchr(data, '\n', n)) {
        c->head_lf = 1;
        return 1;
    }
    const struct chopin__limits *lim = &c->engine->cfg->limits;
    return c->in->len > (c->head_lf ? lim->max_header_bytes : lim->max_request_line);
}

/* A protocol a plain connection may open with (stack.h: HTTP/2 with prior knowledge),
 * known by its preface. Returns 1 when the bytes were taken: the preface (or the start of
 * it) is kept, or the protocol has the connection with them; 0 when this is HTTP/1.1. */
static int opens_with_preface(struct chopin__conn *c, char *data, size_t n) {
    const struct chopin__stack *st = &c->engine->stack;
    size_t have = c->in ? c->in->len : 0, want = st->preface_len;
    if (!st->start || c->transport || c->phase > CHOPIN__PHASE_HEAD)
        return 0;
    if (have && (have >= want || memcmp(c->in->data, st->preface, have) != 0))
        return 0;
    size_t cmp = have + n < want ? n : want - have;
    if (memcmp(data, st->preface + have, cmp) != 0)
        return 0;
    if (have + n < want)
        return stash(c, data, n) < 0 ? (fail(c), 1) : 1; /* the preface comes in pieces */
    struct chopin__inbuf *b = c->in;
    c->in = NULL;
    if (st->start(c) < 0) {
        c->in = b;
        fail(c);
        return 1;
    }
    if (b)
        c->proto->on_data(c, b->data, b->len);
    inbuf_free(c->engine, b);
    if (!(c->ask & CHOPIN__CONN_CLOSE))
        c->proto->on_data(c, data, n);
    return 1;
}

/* HTTP/1.1's input. */
static void h1_on_data(struct chopin__conn *c, char *data, size_t n) {
    if (c->ask & CHOPIN__CONN_CLOSE)
        return;
    idle_unlist(c);
    if (__builtin_expect(c->requests == 0, 0) && opens_with_preface(c, data, n)) {
        after_progress(c);
        return;
    }
    if (c->phase == CHOPIN__PHASE_LINGER) {
        /* Discarding: but linger only while output is still owed; the timer bounds it. */
    } else if (c->in) {
        if (stash(c, data, n) < 0)
            fail(c);
        else if (!c->backpressure && head_may_progress(c, data, n))
            process_stash(c);
    } else {
        size_t used = c->backpressure ? 0 : serve(c, data, n);
        if (used < n) {
            c->head_lf = memchr(data + used, '\n', n - used) != NULL;
            if (stash(c, data + used, n - used) < 0) {
                fail(c);
            } else {
                compact_chunked(c);
                reserve_body(c);
            }
        }
    }
    after_progress(c);
}

void chopin__conn_deliver(struct chopin__conn *c, char *data, size_t n) {
    if (protocol_runs(c)) {
        if (!(c->ask & CHOPIN__CONN_CLOSE))
            c->proto->on_data(c, data, n);
        after_progress(c);
        return;
    }
    h1_on_data(c, data, n);
}

void chopin__conn_on_data(struct chopin__conn *c, char *data, size_t n) {
    chopin__count(&c->engine->counters.bytes_in, (int64_t)n);
    /* On a ?proxy listener a PROXY header precedes everything, a TLS ClientHello
     * included (peer.h); the flag goes once it is taken. With nothing after it yet, the
     * deadline becomes the idle one (the header's was shorter). */
    if (__builtin_expect(c->listen_flags & CHOPIN__LISTEN_PROXY, 0)) {
        if (!chopin__peer_proxy_input(c, &data, &n))
            return;
        if (n == 0) {
            chopin__conn_arm(c, idle_deadline(c));
            return;
        }
    }
    if (__builtin_expect(c->transport != NULL, 0)) {
        c->transport->ops->on_input(c, data, n);
        return;
    }
    chopin__conn_deliver(c, data, n);
}

void chopin__conn_on_eof(struct chopin__conn *c) {
    /* The peer is done sending, not done reading: complete requests still waiting behind
     * backpressure are answered (a backend may see the EOF before serving them, as
     * io_uring's multishot receive does); after_progress closes once output is drained.
     * Clearing keep_open here would answer one more request, then drop the rest. */
    c->eof = 1;
    idle_unlist(c);
    if (protocol_runs(c)) {
        c->proto->on_eof(c);
        after_progress(c);
        return;
    }
    if (c->xq_head) {
        /* A client that stops sending while answers are still to come has left, as far
         * as a server can tell (nginx and Go read it so too): its open exchanges are
         * cancelled rather than computed for nobody. */
        drop_exchanges(c);
        fail(c);
    }
    after_progress(c);
}

void chopin__conn_on_error(struct chopin__conn *c) {
    fail(c);
    after_progress(c);
}

/* No request has arrived on it yet: the kernel accepted it, its client waits for an
 * answer (a drain serves it rather than reset it, see after_progress). */
static int awaits_first_request(const struct chopin__conn *c) {
    return c->requests == 0 && c->phase == CHOPIN__PHASE_IDLE && !c->in && !c->out;
}

int chopin__conn_stream_waiting(const struct chopin__conn *c) {
    return c->out && chopin__outq_waiting(c->out);
}

void chopin__conn_on_drain(struct chopin__conn *c) {
    if (protocol_runs(c)) {
        c->proto->on_drain(c);
        after_progress(c);
        return;
    }
    if (chopin__conn_stream_waiting(c)) {
        chopin__conn_on_error(c); /* an endless stream: its client reconnects elsewhere */
        return;
    }
    if (c->phase == CHOPIN__PHASE_IDLE && !awaits_first_request(c) && !c->xq_head) {
        chopin__conn_on_error(c); /* idle keep-alive: no request in flight (RFC 9112 §9.8) */
        return;
    }
    c->keep_open = 0;
    after_progress(c);
}

/* RFC 9110 §15.5.9: the request did not arrive in time; nothing more of it is read. */
static void answer_timeout(struct chopin__conn *c) {
    partial_unlist(c);
    inbuf_free(c->engine, c->in);
    c->in = NULL;
    respond_error(c, 408);
}

/* A deadline passed (chopin__conn_on_timeout decides what it means), for the metrics;
 * the end of lingering is no timeout, only the end of a goodbye. */
static void count_timeout(struct chopin__conn *c) {
    enum chopin__timeout_kind k;
    if (!c->out && protocol_runs(c))
        return; /* its protocol's own deadline (a WebSocket ping, say) */
    if (c->out)
        k = CHOPIN__TIMEOUT_WRITE;
    else if (c->phase == CHOPIN__PHASE_LINGER)
        return;
    else if (c->phase == CHOPIN__PHASE_IDLE)
        k = CHOPIN__TIMEOUT_KEEPALIVE;
    else
        k = c->phase == CHOPIN__PHASE_HEAD ? CHOPIN__TIMEOUT_HEADER : CHOPIN__TIMEOUT_BODY;
    chopin__count(&c->engine->counters.timeouts[k], 1);
}

int chopin__conn_on_timeout(struct chopin__conn *c) {
    if (c->expire > now_ms(c)) { /* a stale entry: the deadline moved later (see arm) */
        chopin__wheel_add(&c->engine->wheel, &c->timer, c->expire);
        return 0;
    }
    count_timeout(c);
    if (protocol_runs(c) && !c->out) {
        c->proto->on_timeout(c);
    } else if (c->out || c->phase == CHOPIN__PHASE_LINGER || c->phase == CHOPIN__PHASE_IDLE) {
        /* Write deadline (the peer stopped reading), end of lingering, or idle keep-alive. */
        fail(c);
    } else if (c->body_stream) {
        stream_timeout(c); /* a streamed body's idle deadline */
    } else {
        answer_timeout(c); /* head or body deadline: a slow client */
    }
    after_progress(c);
    return 1;
}

void chopin__conn_evict(struct chopin__conn *c) {
    chopin__count(&c->engine->counters.evicted, 1);
    if (c->phase == CHOPIN__PHASE_HEAD) {
        answer_timeout(c);
        c->farewell = 1;
    }
    chopin__conn_on_error(c);
}

/* ----- output ----------------------------------------------------------------------- */

size_t chopin__conn_out_plan(struct chopin__conn *c, struct chopin__plan *p) {
    if (__builtin_expect(c->transport != NULL, 0))
        return c->transport->ops->out_plan(c, p);
    return chopin__conn_plain_plan(c, p);
}

void chopin__conn_on_sent(struct chopin__conn *c, size_t n) {
    chopin__count(&c->engine->counters.bytes_sent, (int64_t)n);
    if (__builtin_expect(c->transport != NULL, 0)) {
        c->transport->ops->on_sent(c, n);
        return;
    }
    chopin__conn_plain_sent(c, n);
}

size_t chopin__conn_plain_plan(struct chopin__conn *c, struct chopin__plan *p) {
    p->iovcnt = 0;
    p->file_len = 0;
    p->bytes = 0;
    /* (expected false: keeps both common paths as short as before the farewell) */
    if (!c->out || __builtin_expect((c->ask & CHOPIN__CONN_CLOSE) && !c->farewell, 0))
        return 0;
    long n = chopin__outq_plan(c->out, p);
    if (n < 0) {
        fail(c); /* a stream's producer failed: the body cannot be completed */
        after_progress(c);
        return 0;
    }
    if (n == 0 && c->out->head == c->out->count)
        chopin__conn_plain_sent(c, 0);
    else if (n == 0 && chopin__outq_waiting(c->out))
        after_progress(c); /* its producer just said "nothing yet" */
    return (size_t)n;
}

void chopin__conn_plain_sent(struct chopin__conn *c, size_t n) {
    struct chopin__engine *e = c->engine;
    if (!c->out)
        return;
    if (chopin__outq_sent(c->out, n)) {
        chopin__outq_free(c->out, &e->pool);
        c->out = NULL;
        if (__builtin_expect(e->obs != NULL, 0))
            chopin__observe_sent_all(e, c);
        if (protocol_runs(c))
            c->proto->on_sent(c);
        else if (c->xq_head)
            queue_ready_answers(c);
        if (c->backpressure && c->pending < options(c)->max_pending && !protocol_runs(c)) {
            c->backpressure = 0; /* (a protocol clears its own: conn.h) */
            if (c->in)
                process_stash(c);
        }
    }
    after_progress(c);
}

void chopin__conn_on_file_short(struct chopin__conn *c) { chopin__conn_on_error(c); }

/* Always through the ready list, never served at once: the resume comes from the
 * application (a handler, a timer, a posted function, another stream's producer), which
 * must not find its own callbacks (this stream's done(), when the send fails) run inside
 * the call, nor one connection served inside another's events. */
void chopin__conn_stream_resume(struct chopin__conn *c) {
    if (protocol_runs(c) && c->proto->on_ready) { /* (its streams are its own: on_ready) */
        chopin__engine_list_ready(c->engine, c);
        return;
    }
    if (!c->out || (c->ask & CHOPIN__CONN_CLOSE) || !chopin__outq_resume(c->out))
        return;
    chopin__engine_list_ready(c->engine, c);
}

/* ----- streamed bodies (issue 18) ----------------------------------------------------
 *
 * A route registered with chopin_router_stream runs when its head arrives. When its
 * handler takes the body (chopin_body_read: the exchange is deferred, with a sink), the
 * exchange goes on the queue like any deferred one and the connection hands it the body's
 * bytes as they arrive, in place, from whichever buffer they were read into: nothing of
 * the body is kept, so memory stays at one read whatever the body's size. The exchange is
 * always the queue's tail: no later request is read before its body has ended. */

/* The body stops being read: ended, refused or abandoned. */
static void stream_stop(struct chopin__conn *c) {
    c->body_stream = 0;
    c->body_paused = 0;
    c->body_need = 0;
}

/* The rest of the body will not be read (its answer left first, or refused it): the
 * connection discards its input and closes after the answers owed. */
static void stream_abandon(struct chopin__conn *c) {
    stream_stop(c);
    c->keep_open = 0;
    c->phase = CHOPIN__PHASE_LINGER;
}

/* An answer of an exchange that read its body as a stream is about to leave: if it
 * leaves before the body ended, the body is abandoned and the answer says so. */
static void stream_answered(struct chopin__conn *c, struct chopin__exchange *x) {
    if (x->sink->ended)
        return;
    x->sink->ended = 1;
    x->res.close = 1;
    if (c->body_stream && x == c->xq_tail)
        stream_abandon(c);
}

/* The body cannot end: 400 (framing), 413 (too large), 408 (idle). */
static void stream_refuse(struct chopin__conn *c, int status) {
    struct chopin__exchange *x = c->xq_tail;
    int err = status == 413 ? CHOPIN_EFBIG : status == 408 ? CHOPIN_ETIMEDOUT : CHOPIN_EINVAL;
    chopin__exchange_body_fail(c->engine, x, status, err);
    stream_abandon(c);
    queue_ready_answers(c);
}

static void stream_timeout(struct chopin__conn *c) { stream_refuse(c, 408); }

/* Hands the body bytes at p[0..n) to the exchange at the queue's tail. Returns the bytes
 * used: 0 while it is paused (they wait in `in`), n once the body is abandoned. */
static size_t stream_body(struct chopin__conn *c, char *p, size_t n) {
    struct chopin__engine *e = c->engine;
    struct chopin__exchange *x = c->xq_tail;
    if (x->state != CHOPIN__X_OPEN || x->sink->ended) {
        stream_abandon(c); /* answered (or cancelled) before its body ended */
        return n;
    }
    if (c->body_paused)
        return 0;
    c->deadline = now_ms(c) + options(c)->body_timeout_ms; /* an idle deadline: see below */
    size_t used, out;
    int rc;
    if (c->body_kind == CHOPIN__BODY_LENGTH) {
        used = out = n < c->body_need ? n : (size_t)c->body_need;
        c->body_need -= used;
        rc = c->body_need == 0;
    } else {
        used = out = 0; /* decoded in place: the payload moves down to p[0..out) */
        rc = chopin__chunked_decode(&c->chunked, p, n, &used, &out, x->sink->max);
    }
    chopin__exchange_body_data(e, x, p, out);
    if (rc < 0) {
        stream_refuse(c, -rc);
        return n;
    }
    if (rc == 1) {
        stream_stop(c);
        c->phase = CHOPIN__PHASE_IDLE;
        chopin__exchange_body_end(e, x);
    }
    return used;
}

/* Starts reading the body of `x`, whose handler took it: a deadline per wait for bytes
 * (an upload of several GiB takes as long as it takes, a client that stops sending does
 * not), then the answer's place on the queue. */
static void stream_begin(struct chopin__conn *c, struct chopin__exchange *x,
                         const struct chopin__head *head, uint64_t max) {
    x->sink->max = max;
    c->body_stream = 1;
    c->body_paused = 0;
    c->body_kind = head->body_kind;
    c->body_need = head->body_kind == CHOPIN__BODY_LENGTH ? head->content_length : 0;
    c->body_in = c->body_out = 0;
    c->head_len = 0;
    if (head->body_kind == CHOPIN__BODY_CHUNKED)
        chopin__chunked_init(&c->chunked);
    partial_unlist(c);
    c->phase = CHOPIN__PHASE_BODY;
    c->deadline = now_ms(c) + options(c)->body_timeout_ms;
    c->expect_continue = head->expect_continue;
    c->continue_sent = 0;
    send_continue(c); /* before the exchange is queued: it answers this request */
    answer(c, x);
}

/* A request with a body at p (its head parsed into `head`): when it reaches a route that
 * streams, runs the handler now and returns 1 with *used the bytes taken; else 0. */
static int stream_route(struct chopin__conn *c, char *p, size_t n, struct chopin__head *head,
                        size_t *used) {
    struct chopin__engine *e = c->engine;
    struct chopin__exchange *x = e->cur;
    struct chopin_req *req = &x->req;
    req->arena = &x->arena;
    req->engine = e;
    req->conn = c;
    const struct chopin__endpoint *ep = chopin__router_streaming(e->router, req);
    if (!ep)
        return 0;
    uint64_t max = chopin__endpoint_max_body(ep);
    if (!max)
        max = options(c)->max_body_bytes;
    size_t head_len = *used;
    if (head->body_kind == CHOPIN__BODY_LENGTH && head->content_length > max) {
        respond_error(c, 413);
        *used = n;
        return 1;
    }
    req->body = NULL;
    req->body_len = 0;
    req->ndata = 0;
    if (!head->keep_alive || e->draining)
        c->keep_open = 0;
    chopin__res_init(&x->res, &x->arena);
    x->body_to_come = 1;
    e->dispatching = x;
    chopin__router_run(e->router, ep, req, &x->res);
    e->dispatching = NULL;
    x->body_to_come = 0;
    c->requests++;
    chopin__count(&e->counters.requests, 1);
    if (x->sink && x->state == CHOPIN__X_OPEN) {
        stream_begin(c, x, head, max);
        *used = head_len + stream_body(c, p + head_len, n - head_len);
        return 1;
    }
    /* Answered without its body, which is never read: the connection closes after it. */
    c->keep_open = 0;
    answer(c, x);
    c->phase = CHOPIN__PHASE_LINGER;
    *used = n;
    return 1;
}

void chopin__conn_body_pause(struct chopin__conn *c) {
    if (c->body_stream)
        c->body_paused = 1;
}

void chopin__conn_body_resume(struct chopin__conn *c) {
    if (!c->body_stream || !c->body_paused)
        return;
    c->body_paused = 0;
    chopin__engine_list_ready(c->engine, c);
}

/* ----- state after every event ---------------------------------------------------- */

/* Deadlines move on almost every event (keep-alive after each response, write after each
 * send) and nearly always later. So the wheel entry is moved only when the deadline gets
 * earlier; when a stale, earlier entry fires, chopin__conn_on_timeout re-arms it at the
 * real deadline. That turns two wheel operations per request into a store. */
static void arm(struct chopin__conn *c, uint64_t expire) {
    c->expire = expire;
    if (!chopin__timer_armed(&c->timer) || c->timer.expire > expire)
        chopin__wheel_add(&c->engine->wheel, &c->timer, expire);
}

void chopin__conn_arm(struct chopin__conn *c, uint64_t expire) { arm(c, expire); }

void chopin__conn_wake(struct chopin__conn *c) { chopin__engine_list_ready(c->engine, c); }

void chopin__conn_set_protocol(struct chopin__conn *c, const struct chopin__protocol *p,
                               void *state) {
    c->proto = p;
    c->proto_state = state;
    c->phase = CHOPIN__PHASE_PROTOCOL;
    c->backpressure = 0;
    unlist(c);
}

/* The 101 is queued: the new protocol takes the connection, starting with the bytes that
 * followed the request (kept in `in`, which it does not inherit). */
static void start_protocol(struct chopin__conn *c) {
    struct chopin__inbuf *b = c->in;
    c->in = NULL;
    chopin__conn_set_protocol(c, c->proto, c->proto_state);
    if (b && b->len && !(c->ask & CHOPIN__CONN_CLOSE))
        c->proto->on_data(c, b->data, b->len);
    inbuf_free(c->engine, b);
}

/* An idle connection's deadline: the keep-alive timeout (the PROXY header's, before it),
 * or its transport's while it has one (a handshake under way is bounded by the handshake
 * timeout, not by keep-alive: a short keep-alive cut TLS handshakes that needed a few
 * round trips on a loaded machine). */
static uint64_t idle_deadline(const struct chopin__conn *c) {
    if (__builtin_expect(c->transport != NULL, 0) && c->transport->ops->deadline) {
        uint64_t t = c->transport->ops->deadline(c);
        if (t)
            return t;
    }
    /* A ?proxy listener's connection gets proxy_timeout_ms for its PROXY header. */
    return now_ms(c) + (c->listen_flags & CHOPIN__LISTEN_PROXY ? options(c)->proxy_timeout_ms
                                                                : options(c)->keepalive_timeout_ms);
}

/* Everything queued is sent and a stream waits for its application (chopin_stream_resume).
 * The write deadline is for a peer that stops reading, and this one owes nothing: no
 * deadline guards the wait. The client leaving ends it (its EOF here, a reset at the next
 * read or send); the application ends it when it wants (its producer returns 0). A
 * vanished peer that sends nothing is found by the next bytes the application sends
 * (server-sent events: a heartbeat), which meet a reset or the write deadline. */
static void stream_waits(struct chopin__conn *c) {
    chopin__wheel_del(&c->engine->wheel, &c->timer);
    if (c->eof) { /* as with deferred answers: a client that stops sending has left */
        fail(c);
        after_progress(c);
    }
}

/* Decides what the connection asks of its backend and which deadline guards it. */
static void after_progress(struct chopin__conn *c) {
    if (c->engine->draining)
        c->keep_open = 0;
    if (__builtin_expect(c->phase == CHOPIN__PHASE_UPGRADE, 0) && c->proto)
        start_protocol(c);
    if (c->ask & CHOPIN__CONN_CLOSE) {
        unlist(c);
        chopin__wheel_del(&c->engine->wheel, &c->timer);
        return;
    }
    if (c->out) {
        if (__builtin_expect(chopin__outq_waiting(c->out), 0))
            stream_waits(c);
        else
            arm(c, now_ms(c) + options(c)->write_timeout_ms);
        return;
    }
    if (protocol_runs(c)) {
        c->proto->settle(c);
        return;
    }
    if (c->xq_head) {
        /* Answers to come: each open exchange has its own deadline. A request arriving
         * meanwhile keeps its own. */
        idle_unlist(c);
        if (c->phase == CHOPIN__PHASE_HEAD || c->phase == CHOPIN__PHASE_BODY)
            arm(c, c->deadline);
        else
            chopin__wheel_del(&c->engine->wheel, &c->timer);
        return;
    }
    if (c->eof) {
        c->ask |= CHOPIN__CONN_CLOSE; /* everything owed is sent and the peer is done */
        after_progress(c);
        return;
    }
    if (!c->keep_open && awaits_first_request(c)) {
        /* Draining: its request is usually there already (it was sent before the stop);
         * it gets as long as lingering would, then closes (chopin__conn_on_timeout). */
        idle_unlist(c);
        arm(c, now_ms(c) + LINGER_MS);
        return;
    }
    if (c->phase == CHOPIN__PHASE_LINGER || (!c->keep_open && c->phase == CHOPIN__PHASE_IDLE)) {
        c->phase = CHOPIN__PHASE_LINGER;
        if (!c->shut) {
            c->ask |= CHOPIN__CONN_SHUTDOWN;
            arm(c, now_ms(c) + LINGER_MS);
        }
        return;
    }
    if (c->phase == CHOPIN__PHASE_HEAD || c->phase == CHOPIN__PHASE_BODY) {
        arm(c, c->deadline);
        return;
    }
    idle_list(c);
    arm(c, idle_deadline(c));
}

/* ----- queries ---------------------------------------------------------------------- */

int chopin__conn_wants_read(const struct chopin__conn *c) {
    return !(c->ask & CHOPIN__CONN_CLOSE) && !c->backpressure && !c->eof && !c->body_paused;
}

int chopin__conn_has_output(const struct chopin__conn *c) {
    return c->out != NULL ||
           (__builtin_expect(c->transport != NULL, 0) && c->transport->ops->has_output(c));
}

int chopin__conn_fd(const struct chopin__conn *c) { return c->fd; }

const struct chopin__peer *chopin__conn_peer(const struct chopin__conn *c) { return c->peer; }
