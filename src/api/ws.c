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
 */
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

/* A frame waiting for room in the output queue: its head, and its payload (owned or
 * borrowed, released by free_fn). */
struct chopin__ws_qnode {
    struct chopin__ws_qnode *next;
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
    return (size_t)((c && c->out ? c->out->pending : 0) + ws->q_bytes);
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
        struct chopin__ws_qnode *n = malloc(sizeof *n);
        if (n && !free_fn && len) { /* a small borrowed payload: copy it now */
            char *copy = malloc(len);
            if (!copy) {
                free(n);
                n = NULL;
            } else {
                memcpy(copy, payload, len);
                payload = copy;
                free_fn = free_heap;
                arg = NULL;
            }
        }
        if (!n) {
            if (free_fn)
                free_fn((void *)payload, arg);
            return CHOPIN_ENOMEM;
        }
        *n = (struct chopin__ws_qnode){.payload = payload, .len = len, .free_fn = free_fn,
                                       .free_arg = arg, .head_len = (uint8_t)hlen};
        if (hlen)
            memcpy(n->head, head, hlen);
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

void chopin__ws_flush(chopin_ws *ws) {
    if (!ws->in_input)
        chopin__conn_wake(ws->conn);
}

int chopin__ws_queue_shared(chopin_ws *ws, const char *frame, size_t len, chopin_free_fn free_fn,
                            void *arg) {
    if (ws->close_sent || ws->frag) {
        /* A subscriber that is closing gets nothing more; one in the middle of a
         * fragmented message of its own would get the frame inside it: it misses this
         * one rather than break the framing. */
        free_fn((void *)frame, arg);
        return CHOPIN_ESTALE;
    }
    return queue_frame(ws, NULL, 0, frame, len, free_fn, arg, 0);
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

int chopin_ws_send(chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len) {
    int err = send_check(ws, kind, data, len);
    if (err)
        return err;
    if (ws->frag)
        return CHOPIN_EBUSY;
    uint8_t head[10];
    if (ws->deflate && len >= DEFLATE_MIN) {
        struct chopin__ws_buf z = {0};
        if (chopin__ws_deflate(&ws->zout, &ws->pmd, data, len, &z) != 0) {
            free(z.ptr);
            return CHOPIN_ENOMEM;
        }
        size_t hlen = chopin__ws_frame_head(head, kind, 1, 1, z.len);
        err = queue_frame(ws, head, hlen, z.ptr, z.len, free_heap, NULL, 0);
    } else {
        size_t hlen = chopin__ws_frame_head(head, kind, 1, 0, len);
        err = queue_frame(ws, head, hlen, data, len, NULL, NULL, 0);
    }
    if (!err)
        chopin__ws_flush(ws);
    return err;
}

int chopin_ws_send_fragment(chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len,
                            int last) {
    int err = send_check(ws, ws && ws->frag ? CHOPIN_WS_TEXT : kind, data, len);
    if (err)
        return err;
    uint8_t head[10];
    size_t hlen = chopin__ws_frame_head(head, ws->frag ? CHOPIN__WS_CONT : (unsigned)kind,
                                        last != 0, 0, len);
    err = queue_frame(ws, head, hlen, data, len, NULL, NULL, 0);
    if (err)
        return err;
    ws->frag = !last;
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
    chopin__ws_unsubscribe_all(ws);
    queue_drop_all(ws);
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
    if (ws)
        chopin_ws_send(ws, p->kind, p->data, p->len);
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
