/* SPDX-License-Identifier: MIT */
/*
 * WebSocket (chopin.h, "WebSocket"): the upgrade from a handler, and the protocol that
 * runs the connection afterwards (RFC 6455), installed on it in HTTP/1.1's place (conn.h,
 * struct chopin__protocol). The framing rules live in src/ws/frame.c; this file turns
 * their events into callbacks and answers, queues what is sent, and keeps the timers.
 *
 * Output: frames go on the connection's output queue. A small one is copied into the
 * queue's data area (one write carries many); a large one is an owned segment of its own.
 * When the queue is full (segments or data space), frames wait on the connection's own
 * list and move over as the socket takes bytes. Both count against max_queued.
 *
 * The data channel: while a fragmented message is in progress, whole messages (and a
 * fragmented message posted from another thread) are held, in order, until it ends
 * (RFC 6455 §5.4); control frames pass. What is held counts against max_queued too.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "chopin.h"
#include "conn.h"
#include "engine.h"
#include "../exchange.h" /* the core's (api/exchange.h is another) */
#include "http/message.h"
#include "outq.h"
#include "ws/deflate.h"
#include "ws/frame.h"
#include "ws/handshake.h"
#include "ws/ws.h"

#define DEFAULT_MAX_MESSAGE (1u << 20)
#define DEFAULT_MAX_QUEUED (1u << 20)
#define DEFAULT_IDLE_MS 30000
#define DEFAULT_DEFLATE_BITS 12
/* Frames up to this size are copied into the output queue's data area. */
#define COPY_MAX 1024
/* Messages shorter than this are sent uncompressed even with permessage-deflate: the
 * compressed form of a few bytes is no shorter, and costs a zlib call. */
#define DEFLATE_MIN 64

static const struct chopin__protocol ws_protocol;

/* A frame waiting for room in the output queue, or for the data channel: its head, and its
 * payload (owned, released by free_fn). On the held list, a node with `msg` is instead a
 * posted fragmented message waiting for the channel. */
struct chopin__ws_qnode {
    struct chopin__ws_qnode *next;
    struct chopin_ws_msg *msg;
    const char *payload;
    size_t len;
    chopin_free_fn free_fn;
    void *free_arg;
    uint8_t head_len;
    uint8_t head[10];
};

static uint64_t now_ms(const chopin_ws *ws) { return ws->conn->engine->now_ms; }

static void free_heap(void *ptr, void *arg) {
    (void)arg;
    free(ptr);
}

/* ----- the send queue --------------------------------------------------------------- */

size_t chopin_ws_queued(const chopin_ws *ws) {
    const struct chopin__conn *c = ws->conn; /* NULL in a switch that never happened */
    return (size_t)((c && c->out ? c->out->pending : 0) + ws->q_bytes + ws->held_bytes);
}

/* Puts a frame straight on the output queue; 0, or -ENOSPC when it has no room now. */
static int outq_put(chopin_ws *ws, const uint8_t *head, size_t hlen, const char *payload,
                    size_t len, chopin_free_fn free_fn, void *arg) {
    struct chopin__outq *q = chopin__conn_output(ws->conn);
    if (!q || !chopin__outq_has_room(q))
        return -ENOSPC;
    if (hlen + len <= COPY_MAX) {
        char *dst = chopin__outq_reserve(q, hlen + len);
        if (!dst)
            return -ENOSPC;
        if (hlen)
            memcpy(dst, head, hlen);
        if (len)
            memcpy(dst + hlen, payload, len);
        chopin__outq_commit(q, hlen + len);
        if (free_fn)
            free_fn((void *)payload, arg);
        return 0;
    }
    if (hlen) {
        char *dst = chopin__outq_reserve(q, hlen);
        if (!dst)
            return -ENOSPC;
        memcpy(dst, head, hlen);
        chopin__outq_commit(q, hlen);
    }
    /* has_room keeps spare segments: the head's and this one always fit. */
    return chopin__outq_push_ext(q, payload, len, free_fn, arg);
}

/* Moves waiting frames onto the output queue while it has room, oldest first. */
static void queue_refill(chopin_ws *ws) {
    while (ws->q_head) {
        struct chopin__ws_qnode *n = ws->q_head;
        if (outq_put(ws, n->head, n->head_len, n->payload, n->len, n->free_fn, n->free_arg))
            return;
        ws->q_bytes -= n->head_len + n->len;
        ws->q_head = n->next;
        if (!ws->q_head)
            ws->q_tail = NULL;
        free(n);
    }
}

static void queue_drop_all(chopin_ws *ws) {
    while (ws->q_head) {
        struct chopin__ws_qnode *n = ws->q_head;
        ws->q_head = n->next;
        if (n->free_fn)
            n->free_fn((void *)n->payload, n->free_arg);
        free(n);
    }
    ws->q_tail = NULL;
    ws->q_bytes = 0;
}

static void fail(chopin_ws *ws, int code);

/* A list node for a frame; a small borrowed payload (free_fn NULL) is copied. On failure
 * the payload is released and NULL returned. */
static struct chopin__ws_qnode *qnode_new(const uint8_t *head, size_t hlen, const char *payload,
                                          size_t len, chopin_free_fn free_fn, void *arg) {
    struct chopin__ws_qnode *n = malloc(sizeof *n);
    if (n && !free_fn && len) {
        char *copy = malloc(len);
        if (!copy) {
            free(n);
            return NULL;
        }
        memcpy(copy, payload, len);
        payload = copy;
        free_fn = free_heap;
        arg = NULL;
    }
    if (!n) {
        if (free_fn)
            free_fn((void *)payload, arg);
        return NULL;
    }
    *n = (struct chopin__ws_qnode){.payload = payload, .len = len, .free_fn = free_fn,
                                   .free_arg = arg, .head_len = (uint8_t)hlen};
    if (hlen)
        memcpy(n->head, head, hlen);
    return n;
}

/* Queues one frame: head bytes and a payload that free_fn(payload, arg) releases (NULL:
 * borrowed for the call only: copied). Control frames pass the bound (they are small and
 * the protocol owes them); data frames past it close the connection with 1008. */
static int queue_frame(chopin_ws *ws, const uint8_t *head, size_t hlen, const char *payload,
                       size_t len, chopin_free_fn free_fn, void *arg, int control) {
    if (!control && chopin_ws_queued(ws) + hlen + len > ws->cfg.max_queued) {
        if (free_fn)
            free_fn((void *)payload, arg);
        fail(ws, CHOPIN_WS_POLICY);
        return CHOPIN_ENOSPC;
    }
    if (!free_fn && hlen + len > COPY_MAX) {
        char *copy = malloc(len);
        if (!copy)
            return CHOPIN_ENOMEM;
        memcpy(copy, payload, len);
        payload = copy;
        free_fn = free_heap;
        arg = NULL;
    }
    if (ws->q_head || outq_put(ws, head, hlen, payload, len, free_fn, arg) != 0) {
        struct chopin__ws_qnode *n = qnode_new(head, hlen, payload, len, free_fn, arg);
        if (!n)
            return CHOPIN_ENOMEM;
        if (ws->q_tail)
            ws->q_tail->next = n;
        else
            ws->q_head = n;
        ws->q_tail = n;
        ws->q_bytes += hlen + len;
    }
    if (!control && chopin_ws_queued(ws) > ws->cfg.max_queued / 2)
        ws->high = 1;
    return 0;
}

/* ----- the data channel (RFC 6455 §5.4) ----------------------------------------------- */

/* A fragmented message posted from another thread (chopin_ws_post_begin). The writing
 * thread holds a reference until its last fragment, each fragment in flight one, and the
 * connection one while the message owns its channel or waits for it. Only `refs` and
 * `stale` are shared; the rest is the worker's (ref and kind are set before any post). */
struct chopin_ws_msg {
    chopin_ws_ref ref;
    chopin_ws_kind kind;
    atomic_int refs;
    atomic_int stale;          /* the connection ended or is closing: fragments are dropped */
    chopin_ws *ws;             /* the connection it owns or waits on; NULL: not (yet, or any more) */
    struct frag *pending, *pending_tail; /* fragments that came while it waited */
    uint8_t started;           /* its first frame is queued: the next ones continue it */
};

/* One posted fragment: the post's argument, then a pending fragment, then the payload of
 * its queued frame (free_frag releases it). */
struct frag {
    struct frag *next;
    chopin_ws_msg *msg;
    size_t len;
    int last;
    char data[];
};

static void free_frag(void *ptr, void *arg) {
    (void)ptr;
    free(arg);
}

static void msg_unref(chopin_ws_msg *m) {
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

/* The message leaves its connection: ended, or dropped (`stale`: the connection closes or
 * ends; its waiting fragments go, and the writer hears CHOPIN_ESTALE from the next one). */
static void msg_detach(chopin_ws_msg *m, int stale) {
    while (m->pending) {
        struct frag *f = m->pending;
        m->pending = f->next;
        free(f);
    }
    m->pending_tail = NULL;
    m->ws = NULL;
    if (stale)
        atomic_store_explicit(&m->stale, 1, memory_order_relaxed);
    msg_unref(m);
}

static int channel_busy(const chopin_ws *ws) { return ws->frag || ws->owner; }

/* Appends a whole message's frame (or, with `m`, a posted message) to the held list. */
static int hold(chopin_ws *ws, const uint8_t *head, size_t hlen, const char *payload, size_t len,
                chopin_free_fn free_fn, void *arg, chopin_ws_msg *m) {
    if (chopin_ws_queued(ws) + hlen + len > ws->cfg.max_queued) {
        if (free_fn)
            free_fn((void *)payload, arg);
        fail(ws, CHOPIN_WS_POLICY);
        return CHOPIN_ENOSPC;
    }
    struct chopin__ws_qnode *n = qnode_new(head, hlen, payload, len, free_fn, arg);
    if (!n)
        return CHOPIN_ENOMEM;
    n->msg = m;
    if (ws->held_tail)
        ws->held_tail->next = n;
    else
        ws->held_head = n;
    ws->held_tail = n;
    ws->held_bytes += hlen + len;
    return 0;
}

/* Drops what is held and the message that owns the channel (the connection closes). */
static void held_drop_all(chopin_ws *ws) {
    if (ws->owner) {
        chopin_ws_msg *m = ws->owner;
        ws->owner = NULL;
        msg_detach(m, 1);
    }
    while (ws->held_head) {
        struct chopin__ws_qnode *n = ws->held_head;
        ws->held_head = n->next;
        if (n->msg)
            msg_detach(n->msg, 1);
        else if (n->free_fn)
            n->free_fn((void *)n->payload, n->free_arg);
        free(n);
    }
    ws->held_tail = NULL;
    ws->held_bytes = 0;
}

/* Queues a data frame of a whole message, or holds it while the channel is taken. */
static int queue_data(chopin_ws *ws, const uint8_t *head, size_t hlen, const char *payload,
                      size_t len, chopin_free_fn free_fn, void *arg) {
    if (channel_busy(ws))
        return hold(ws, head, hlen, payload, len, free_fn, arg, NULL);
    return queue_frame(ws, head, hlen, payload, len, free_fn, arg, 0);
}

/* Queues the posted message's fragment `f` (taking it). A fragment that cannot be queued
 * breaks the message: a full queue closed the connection (1008); out of memory, it is
 * failed with 1011 rather than send a message with a piece missing. */
static int msg_send(chopin_ws *ws, chopin_ws_msg *m, struct frag *f) {
    uint8_t head[10];
    size_t hlen = chopin__ws_frame_head(head, m->started ? CHOPIN__WS_CONT : (unsigned)m->kind,
                                        f->last, 0, f->len);
    m->started = 1;
    int err = queue_frame(ws, head, hlen, f->data, f->len, free_frag, f, 0);
    if (err == CHOPIN_ENOMEM)
        fail(ws, 1011);
    return err;
}

static void channel_next(chopin_ws *ws);

/* The owner `m` queues the fragments it has; its last one frees the channel. */
static void msg_flush(chopin_ws *ws, chopin_ws_msg *m) {
    while (m->pending) {
        struct frag *f = m->pending;
        m->pending = f->next;
        if (!m->pending)
            m->pending_tail = NULL;
        ws->held_bytes -= f->len;
        int last = f->last;
        if (msg_send(ws, m, f) != 0)
            return; /* the connection closes: that dropped m */
        if (last) {
            ws->owner = NULL;
            msg_detach(m, 0);
            channel_next(ws);
            return;
        }
    }
}

/* The channel is free: what was held goes out in order, until a posted message that has
 * not ended takes it again. */
static void channel_next(chopin_ws *ws) {
    while (!channel_busy(ws) && ws->held_head && !ws->close_sent) {
        struct chopin__ws_qnode *n = ws->held_head;
        ws->held_head = n->next;
        if (!ws->held_head)
            ws->held_tail = NULL;
        ws->held_bytes -= n->head_len + n->len;
        chopin_ws_msg *m = n->msg;
        if (!m)
            queue_frame(ws, n->head, n->head_len, n->payload, n->len, n->free_fn, n->free_arg, 0);
        free(n);
        if (m) {
            ws->owner = m;
            msg_flush(ws, m);
        }
    }
}

void chopin__ws_flush(chopin_ws *ws) {
    if (!ws->in_input)
        chopin__conn_wake(ws->conn);
}

int chopin__ws_queue_shared(chopin_ws *ws, const char *frame, size_t len, chopin_free_fn free_fn,
                            void *arg) {
    if (ws->close_sent) { /* a subscriber that is closing gets nothing more */
        free_fn((void *)frame, arg);
        return CHOPIN_ESTALE;
    }
    return queue_data(ws, NULL, 0, frame, len, free_fn, arg);
}

static int control_frame(chopin_ws *ws, unsigned opcode, const void *payload, size_t len) {
    uint8_t head[10];
    size_t hlen = chopin__ws_frame_head(head, opcode, 1, 0, len);
    return queue_frame(ws, head, hlen, payload, len, NULL, NULL, 1);
}

/* ----- closing ------------------------------------------------------------------------ */

/* Queues our close frame (once) and stops sending anything else. */
static void send_close(chopin_ws *ws, int code, const char *reason, size_t len) {
    if (ws->close_sent)
        return;
    queue_drop_all(ws); /* a frame not begun on the wire may go: the close comes next */
    held_drop_all(ws);
    uint8_t p[125];
    size_t n = 0;
    if (code != CHOPIN_WS_NO_STATUS) {
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)code;
        n = 2;
        if (len > sizeof p - 2)
            len = sizeof p - 2;
        if (len)
            memcpy(p + 2, reason, len);
        n += len;
    }
    control_frame(ws, CHOPIN__WS_CLOSE, p, n);
    ws->close_sent = 1;
    ws->close_at = now_ms(ws);
    ws->frag = 0;
}

/* Runs on_close once. */
static void end(chopin_ws *ws, int code, const char *reason, size_t len) {
    if (ws->ended)
        return;
    ws->ended = 1;
    if (ws->cfg.on_close)
        ws->cfg.on_close(ws, code, reason ? reason : "", len);
}

/* Fails the connection (RFC 6455 §7.1.7): a close frame with `code`, then the end. */
static void fail(chopin_ws *ws, int code) {
    if (ws->close_sent)
        return;
    send_close(ws, code, NULL, 0);
    ws->close_code = (uint16_t)code;
    ws->failed = 1;
    end(ws, code, NULL, 0);
    chopin__ws_flush(ws);
}

int chopin_ws_close(chopin_ws *ws, int code, const char *reason) {
    size_t len = reason ? strlen(reason) : 0;
    if (!chopin__ws_close_code_valid((unsigned)code) || len > 123)
        return CHOPIN_EINVAL;
    if (ws->close_sent || ws->ended)
        return CHOPIN_ESTALE;
    send_close(ws, code, reason, len);
    ws->close_code = (uint16_t)code;
    chopin__ws_flush(ws);
    return 0;
}

/* ----- sending ------------------------------------------------------------------------ */

static int send_check(const chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len) {
    if (!ws || (kind != CHOPIN_WS_TEXT && kind != CHOPIN_WS_BINARY) || (!data && len))
        return CHOPIN_EINVAL;
    if (ws->close_sent || ws->ended) /* (also from on_close: the connection is over) */
        return CHOPIN_ESTALE;
    return 0;
}

/* A whole message, sent now or held behind the fragmented message in progress. */
static int send_message(chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len) {
    int err;
    uint8_t head[10];
    if (ws->deflate && len >= DEFLATE_MIN) {
        struct chopin__ws_buf z = {0};
        if (chopin__ws_deflate(&ws->zout, &ws->pmd, data, len, &z) != 0) {
            free(z.ptr);
            return CHOPIN_ENOMEM;
        }
        size_t hlen = chopin__ws_frame_head(head, kind, 1, 1, z.len);
        err = queue_data(ws, head, hlen, z.ptr, z.len, free_heap, NULL);
    } else {
        size_t hlen = chopin__ws_frame_head(head, kind, 1, 0, len);
        err = queue_data(ws, head, hlen, data, len, NULL, NULL);
    }
    if (!err)
        chopin__ws_flush(ws);
    return err;
}

int chopin_ws_send(chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len) {
    int err = send_check(ws, kind, data, len);
    if (err)
        return err;
    if (ws->frag)
        return CHOPIN_EBUSY;
    return send_message(ws, kind, data, len);
}

int chopin_ws_send_fragment(chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len,
                            int last) {
    int err = send_check(ws, ws && ws->frag ? CHOPIN_WS_TEXT : kind, data, len);
    if (err)
        return err;
    if (ws->owner)
        return CHOPIN_EBUSY; /* a posted fragmented message is on the wire */
    uint8_t head[10];
    size_t hlen = chopin__ws_frame_head(head, ws->frag ? CHOPIN__WS_CONT : (unsigned)kind,
                                        last != 0, 0, len);
    err = queue_frame(ws, head, hlen, data, len, NULL, NULL, 0);
    if (err)
        return err;
    ws->frag = !last;
    if (last)
        channel_next(ws);
    chopin__ws_flush(ws);
    return 0;
}

/* ----- the protocol: input, timers, the end ------------------------------------------ */

static void on_event(chopin_ws *ws, const struct chopin__ws_event *ev) {
    switch (ev->opcode) {
    case CHOPIN__WS_TEXT:
    case CHOPIN__WS_BINARY:
        if (!ws->close_sent && ws->cfg.on_message)
            ws->cfg.on_message(ws, (chopin_ws_kind)ev->opcode, ev->data, ev->len);
        break;
    case CHOPIN__WS_PING: /* §5.5.2: a pong with the same payload, unless we are closing */
        if (!ws->close_sent)
            control_frame(ws, CHOPIN__WS_PONG, ev->data, ev->len);
        break;
    case CHOPIN__WS_PONG:
        ws->ping_out = 0;
        break;
    case CHOPIN__WS_CLOSE:
        /* §5.5.1: answer a close with a close (the same code), then end. If we sent ours
         * first, this is the answer to it. */
        ws->close_rcvd = 1;
        if (!ws->close_sent) {
            send_close(ws, ev->code, NULL, 0);
            ws->close_code = ev->code;
        }
        end(ws, ev->code, ev->data, ev->len);
        break;
    }
}

/* The connection switched (its 101 is queued): on_open runs before anything else of it,
 * at the first of its events (the bytes behind the request, the 101 sent, a deadline). */
static chopin_ws *opened(struct chopin__conn *c) {
    chopin_ws *ws = c->proto_state;
    if (!ws->opened) {
        ws->opened = 1;
        ws->last_input_ms = now_ms(ws);
        if (ws->cfg.on_open)
            ws->cfg.on_open(ws);
    }
    return ws;
}

static void ws_on_data(struct chopin__conn *c, char *data, size_t n) {
    chopin_ws *ws = opened(c);
    ws->in_input = 1;
    ws->last_input_ms = now_ms(ws);
    ws->ping_out = 0; /* anything that arrives shows the peer is there */
    size_t used = 0;
    while (!ws->close_rcvd && !ws->close_sent) {
        struct chopin__ws_event ev;
        int rc = chopin__ws_read(&ws->rx, data, n, &used, &ev);
        if (rc == 0)
            break;
        if (rc < 0) {
            fail(ws, -rc);
            break;
        }
        on_event(ws, &ev);
    }
    /* After our close, only the client's close matters (§7.1.1: we read until it comes). */
    while (ws->close_sent && !ws->close_rcvd) {
        struct chopin__ws_event ev;
        int rc = chopin__ws_read(&ws->rx, data, n, &used, &ev);
        if (rc <= 0)
            break;
        if (ev.opcode == CHOPIN__WS_CLOSE) {
            ws->close_rcvd = 1;
            end(ws, ws->close_code, NULL, 0); /* the handshake is complete */
        }
    }
    ws->in_input = 0;
}

static void ws_on_eof(struct chopin__conn *c) {
    chopin_ws *ws = opened(c);
    /* The peer closed without a close frame, or after the close handshake. */
    end(ws, ws->close_rcvd || ws->close_sent ? ws->close_code : CHOPIN_WS_ABNORMAL, NULL, 0);
    chopin__conn_close(c);
}

/* When the connection's timer should fire: the close handshake's bound, our ping's, or
 * the next ping of an idle connection. */
static uint64_t deadline(const chopin_ws *ws) {
    if (ws->close_sent)
        return ws->close_at + ws->cfg.idle_ms;
    if (ws->ping_out)
        return ws->ping_at + ws->cfg.idle_ms;
    return ws->last_input_ms + ws->cfg.idle_ms;
}

static void ws_on_timeout(struct chopin__conn *c) {
    chopin_ws *ws = opened(c);
    if (now_ms(ws) < deadline(ws))
        return; /* input came meanwhile: settle arms the new deadline */
    if (ws->close_sent || ws->ping_out) {
        /* The client did not finish the close handshake, or did not answer our ping. */
        end(ws, ws->close_sent ? ws->close_code : CHOPIN_WS_ABNORMAL, NULL, 0);
        chopin__conn_close(c);
        return;
    }
    /* Idle: a ping finds a peer that vanished, and keeps intermediaries from timing out. */
    control_frame(ws, CHOPIN__WS_PING, NULL, 0);
    ws->ping_out = 1;
    ws->ping_at = now_ms(ws);
}

static void ws_on_sent(struct chopin__conn *c) {
    chopin_ws *ws = opened(c);
    queue_refill(ws);
    if (ws->high && chopin_ws_queued(ws) == 0) {
        ws->high = 0;
        if (ws->cfg.on_drain && !ws->close_sent)
            ws->cfg.on_drain(ws);
    }
}

static void ws_on_drain(struct chopin__conn *c) {
    chopin_ws *ws = opened(c);
    /* The server stops: §7.4.1's 1001, and the usual close handshake, bounded by the
     * server's drain. */
    if (!ws->close_sent) {
        send_close(ws, CHOPIN_WS_GOING_AWAY, NULL, 0);
        ws->close_code = CHOPIN_WS_GOING_AWAY;
    }
}

/* Nothing is owed: once our close frame is out and the client's has come (or we failed
 * the connection), half-close (§7.1.1: the server closes TCP first) and wait for the
 * client's EOF; otherwise arm the next deadline. */
static void ws_settle(struct chopin__conn *c) {
    chopin_ws *ws = opened(c);
    if (ws->close_sent && (ws->close_rcvd || ws->failed) && !c->shut)
        c->ask |= CHOPIN__CONN_SHUTDOWN;
    chopin__conn_arm(c, deadline(ws));
}

static void ws_free(chopin_ws *ws) {
    if (ws->subs_end)
        ws->subs_end(ws);
    queue_drop_all(ws);
    held_drop_all(ws);
    chopin__ws_reader_free(&ws->rx);
    chopin__ws_zout_free(ws->zout);
    free(ws->protocol);
    free(ws);
}

static void ws_release(struct chopin__conn *c) {
    chopin_ws *ws = c->proto_state;
    end(ws, ws->close_code ? ws->close_code : CHOPIN_WS_ABNORMAL, NULL, 0);
    ws_free(ws);
    c->proto_state = NULL;
}

/* The switch never happened (the handler answered otherwise after all, or the client
 * left first): on_close still runs, once, so the application frees its data. */
static void ws_discard(void *state) {
    chopin_ws *ws = state;
    ws->conn = NULL;
    end(ws, CHOPIN_WS_ABNORMAL, NULL, 0);
    ws_free(ws);
}

static const struct chopin__protocol ws_protocol = {
    .name = "websocket",
    .on_data = ws_on_data,
    .on_eof = ws_on_eof,
    .on_timeout = ws_on_timeout,
    .on_sent = ws_on_sent,
    .on_drain = ws_on_drain,
    .settle = ws_settle,
    .release = ws_release,
    .discard = ws_discard,
};

/* ----- the upgrade --------------------------------------------------------------------- */

int chopin_ws_offers(const chopin_req *req, const char *name) {
    size_t n = chopin_req_header_count(req), len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        chopin_str k, v;
        chopin_req_header_at(req, i, &k, &v);
        if (k.len == 22 && !strncasecmp(k.ptr, "sec-websocket-protocol", 22) &&
            chopin__ws_list_has(&v, 1, name, len))
            return 1;
    }
    return 0;
}

static void refuse(chopin_res *res, int status) {
    chopin_res_error(res, status, NULL);
    if (status == 426) {
        chopin_res_header_set(res, "Sec-WebSocket-Version", "13");
        chopin_res_header_set(res, "Upgrade", "websocket");
    }
}

static void config_defaults(chopin_ws_config *c) {
    if (!c->max_message)
        c->max_message = DEFAULT_MAX_MESSAGE;
    if (!c->max_queued)
        c->max_queued = DEFAULT_MAX_QUEUED;
    if (!c->idle_ms)
        c->idle_ms = DEFAULT_IDLE_MS;
    if (!c->deflate_bits)
        c->deflate_bits = DEFAULT_DEFLATE_BITS;
}

/* The 101 (RFC 6455 §4.2.2 step 5). */
static int answer_101(chopin_res *res, const struct chopin__ws_offer *offer, const chopin_ws *ws,
                      const char *extension) {
    char accept[29];
    chopin__ws_accept_key(offer->key, accept);
    /* (Connection: Upgrade is the serializer's: it writes it on every 101) */
    int err = chopin_res_header_set(res, "Upgrade", "websocket");
    if (!err)
        err = chopin_res_header_set(res, "Sec-WebSocket-Accept", accept);
    if (!err && ws->protocol)
        err = chopin_res_header_set(res, "Sec-WebSocket-Protocol", ws->protocol);
    if (!err && extension)
        err = chopin_res_header_set(res, "Sec-WebSocket-Extensions", extension);
    return err;
}

int chopin_ws_upgrade(chopin_req *req, chopin_res *res, const chopin_ws_config *cfg, void *user) {
    if (!req || !res || !cfg || !req->conn)
        return CHOPIN_EINVAL;
    size_t n = chopin_req_header_count(req);
    chopin_str *names = chopin_req_alloc(req, 2 * (n + 1) * sizeof *names);
    if (!names) {
        chopin_res_error(res, 503, NULL);
        return CHOPIN_ENOMEM;
    }
    chopin_str *values = names + n + 1;
    for (size_t i = 0; i < n; i++)
        chopin_req_header_at(req, i, &names[i], &values[i]);
    struct chopin__ws_offer offer;
    int status = chopin__ws_handshake_check(chopin_req_method_str(req), chopin_req_http_minor(req),
                                            names, values, n, &offer);
    if (status) {
        refuse(res, status);
        return CHOPIN_EINVAL;
    }
    if (cfg->allow_origin && !cfg->allow_origin(offer.origin, user)) {
        refuse(res, 403);
        return CHOPIN_EPERM;
    }
    if (cfg->protocol &&
        !chopin__ws_list_has(offer.protocols, offer.nprotocols, cfg->protocol, strlen(cfg->protocol))) {
        refuse(res, 400);
        return CHOPIN_EINVAL;
    }
    chopin_ws *ws = calloc(1, sizeof *ws);
    if (!ws || (cfg->protocol && !(ws->protocol = strdup(cfg->protocol)))) {
        free(ws);
        chopin_res_error(res, 503, NULL);
        return CHOPIN_ENOMEM;
    }
    ws->cfg = *cfg;
    config_defaults(&ws->cfg);
    ws->user = user;
    ws->conn = req->conn;
    char ext[128];
    ws->deflate = cfg->deflate && chopin__ws_pmd_negotiate(offer.extensions, offer.nextensions,
                                                          ws->cfg.deflate_bits, &ws->pmd, ext,
                                                          sizeof ext);
    chopin__ws_reader_init(&ws->rx, ws->cfg.max_message, ws->deflate ? &ws->pmd : NULL);
    if (chopin__exchange_upgrade(req->engine, req->engine->dispatching, &ws_protocol, ws) != 0) {
        chopin__ws_reader_free(&ws->rx);
        free(ws->protocol);
        free(ws);
        chopin_res_error(res, 503, NULL);
        return CHOPIN_ENOMEM;
    }
    /* From here the state is the connection's: its discard frees it if no switch comes. */
    if (answer_101(res, &offer, ws, ws->deflate ? ext : NULL) != 0) {
        chopin_res_error(res, 500, NULL); /* no 101: no switch, the state is discarded */
        return CHOPIN_ENOMEM;
    }
    return 0;
}

/* ----- accessors, handles ---------------------------------------------------------------- */

void *chopin_ws_user(const chopin_ws *ws) { return ws->user; }
const char *chopin_ws_protocol(const chopin_ws *ws) { return ws->protocol ? ws->protocol : ""; }
chopin_worker *chopin_ws_worker(const chopin_ws *ws) { return (chopin_worker *)ws->conn->engine; }
chopin_server *chopin_ws_server(const chopin_ws *ws) { return ws->conn->engine->server; }

chopin_ws_ref chopin_ws_handle(const chopin_ws *ws) {
    struct chopin__engine *e = ws->conn->engine;
    return (chopin_ws_ref){
        .worker = (chopin_worker *)e,
        .slot = chopin__slab_index(&e->slab, ws->conn),
        .gen = ws->conn->gen,
    };
}

chopin_ws *chopin_ws_lookup(chopin_ws_ref r) {
    struct chopin__engine *e = (struct chopin__engine *)r.worker;
    if (!e || r.slot >= e->slab.capacity || e->gens[r.slot] != r.gen)
        return NULL;
    struct chopin__conn *c = chopin__slab_at(&e->slab, r.slot);
    if (!c->live || c->gen != r.gen || c->proto != &ws_protocol)
        return NULL;
    return c->proto_state;
}

/* A message posted from another thread. */
struct post {
    chopin_ws_ref ref;
    chopin_ws_kind kind;
    size_t len;
    char data[];
};

static void posted_send(chopin_worker *w, void *arg) {
    (void)w;
    struct post *p = arg;
    chopin_ws *ws = chopin_ws_lookup(p->ref);
    if (ws && !send_check(ws, p->kind, p->data, p->len))
        send_message(ws, p->kind, p->data, p->len);
    free(p);
}

int chopin_ws_post(chopin_ws_ref r, chopin_ws_kind kind, const void *data, size_t len) {
    if (!r.worker || (kind != CHOPIN_WS_TEXT && kind != CHOPIN_WS_BINARY) || (!data && len))
        return CHOPIN_EINVAL;
    struct post *p = malloc(sizeof *p + len);
    if (!p)
        return CHOPIN_ENOMEM;
    p->ref = r;
    p->kind = kind;
    p->len = len;
    if (len)
        memcpy(p->data, data, len);
    int err = chopin_worker_post(r.worker, posted_send, p);
    if (err)
        free(p);
    return err;
}

/* ----- a fragmented message from another thread ------------------------------------------ */

chopin_ws_msg *chopin_ws_post_begin(chopin_ws_ref r, chopin_ws_kind kind) {
    if (!r.worker || (kind != CHOPIN_WS_TEXT && kind != CHOPIN_WS_BINARY))
        return NULL;
    chopin_ws_msg *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->ref = r;
    m->kind = kind;
    atomic_init(&m->refs, 1);
    return m;
}

/* The message takes its connection's channel, or waits for it; 0, or nonzero when it
 * cannot go there (the connection ended or closes, or no memory to wait). */
static int msg_attach(chopin_ws_msg *m) {
    chopin_ws *ws = chopin_ws_lookup(m->ref);
    if (!ws || ws->close_sent || ws->ended)
        return -1;
    if (!channel_busy(ws))
        ws->owner = m;
    else if (hold(ws, NULL, 0, NULL, 0, NULL, NULL, m) != 0)
        return -1;
    m->ws = ws;
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return 0;
}

/* Adds `f` to the message's fragments on its connection (past max_queued: 1008), and
 * queues them when the message owns the channel. */
static void msg_add(chopin_ws_msg *m, struct frag *f) {
    chopin_ws *ws = m->ws;
    if (chopin_ws_queued(ws) + f->len > ws->cfg.max_queued) {
        free(f);
        fail(ws, CHOPIN_WS_POLICY); /* (which drops m) */
        return;
    }
    if (m->pending_tail)
        m->pending_tail->next = f;
    else
        m->pending = f;
    m->pending_tail = f;
    ws->held_bytes += f->len;
    if (ws->owner == m)
        msg_flush(ws, m);
    chopin__ws_flush(ws);
}

static void posted_fragment(chopin_worker *w, void *arg) {
    (void)w;
    struct frag *f = arg;
    chopin_ws_msg *m = f->msg;
    if (m->ws || (!atomic_load_explicit(&m->stale, memory_order_relaxed) && msg_attach(m) == 0)) {
        msg_add(m, f);
    } else {
        atomic_store_explicit(&m->stale, 1, memory_order_relaxed);
        free(f);
    }
    msg_unref(m); /* the post's */
}

int chopin_ws_post_fragment(chopin_ws_msg *m, const void *data, size_t len, int last) {
    if (!m || (!data && len))
        return CHOPIN_EINVAL;
    int err = 0;
    if (atomic_load_explicit(&m->stale, memory_order_relaxed)) {
        err = CHOPIN_ESTALE;
    } else {
        struct frag *f = malloc(sizeof *f + len);
        if (!f)
            return CHOPIN_ENOMEM; /* nothing posted: the handle stays the caller's */
        *f = (struct frag){.msg = m, .len = len, .last = last != 0};
        if (len)
            memcpy(f->data, data, len);
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
        err = chopin_worker_post(m->ref.worker, posted_fragment, f);
        if (err == CHOPIN_ENOMEM) {
            atomic_fetch_sub_explicit(&m->refs, 1, memory_order_relaxed);
            free(f);
            return err;
        }
        if (err) {
            free(f);
            msg_unref(m);
        }
    }
    if (last)
        msg_unref(m); /* the writer's */
    return err;
}
