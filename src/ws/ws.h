/* SPDX-License-Identifier: MIT */
/*
 * A WebSocket connection's state (chopin_ws), shared by the protocol (src/api/ws.c) and
 * publish/subscribe (src/api/ws_pubsub.c), which builds on the protocol (never the other
 * way: see subs_end). It hangs off its connection (conn->proto_state)
 * from the upgrade to the connection's end; an idle one holds this struct and nothing
 * else (no buffer, no zlib state without context takeover).
 */
#ifndef CHOPIN_WS_WS_H
#define CHOPIN_WS_WS_H

#include <stdint.h>

#include "chopin.h"
#include "ws/deflate.h"
#include "ws/frame.h"

struct chopin__conn;
struct chopin__ws_sub;
struct chopin__ws_qnode;
struct chopin_ws_msg;

struct chopin_ws {
    struct chopin__conn *conn;
    chopin_ws_config cfg;
    void *user;
    char *protocol;                /* the agreed subprotocol (heap), NULL: none */
    struct chopin__ws_reader rx;
    struct chopin__ws_pmd pmd;     /* in force when `deflate` */
    struct chopin__ws_zout *zout;  /* our compressor, while it keeps a context */
    struct chopin__ws_sub *subs;   /* its subscriptions (ws_pubsub.c) */
    /* Set by publish/subscribe with the first subscription, run when the connection ends:
     * so the protocol (ws.c) needs nothing of it, and the dependency runs one way. */
    void (*subs_end)(chopin_ws *ws);
    /* Frames waiting for room in the connection's output queue, oldest first. */
    struct chopin__ws_qnode *q_head, *q_tail;
    uint64_t q_bytes;              /* bytes of the frames on that list */
    /* The data channel (RFC 6455 §5.4: a fragmented message's frames are not interleaved
     * with another message's): while a fragmented message is in progress (`frag`, ours on
     * the worker, or `owner`, one posted from another thread), whole messages and other
     * posted messages wait here, oldest first, and go out when it ends. */
    struct chopin_ws_msg *owner;
    struct chopin__ws_qnode *held_head, *held_tail;
    uint64_t held_bytes;           /* bytes waiting there (and in their messages' fragments) */
    uint64_t last_input_ms;
    uint64_t ping_at, close_at;    /* when our ping, our close frame went out */
    uint16_t close_code;           /* what on_close will be told */
    uint8_t deflate;
    uint8_t in_input;   /* inside on_data: the backend looks at the connection after it */
    uint8_t frag;       /* a fragmented send is in progress */
    uint8_t high;       /* the queue passed max_queued / 2: on_drain once it empties */
    uint8_t ping_out;   /* our ping waits for its pong */
    uint8_t close_sent; /* our close frame is queued: nothing more is sent */
    uint8_t close_rcvd; /* the peer's close frame came: nothing more is read */
    uint8_t failed;     /* we failed the connection: no close frame will be waited for */
    uint8_t opened;     /* on_open has run */
    uint8_t ended;      /* on_close has run */
};

/**
 * Queues a frame whose bytes are `frame[0..len)` as they stand (a publish: the same bytes
 * for every subscriber), borrowed until free_fn(frame, arg) runs, which it does once
 * whatever happens (also at once when nothing is queued). Closes a subscriber past its
 * bound (1008). Returns 0 or a chopin_ws_send error.
 */
int chopin__ws_queue_shared(chopin_ws *ws, const char *frame, size_t len, chopin_free_fn free_fn,
                            void *arg);
/** Asks the backend to look at the connection when output was queued from outside its
 *  own input handling (a posted function, a timer, a publish). */
void chopin__ws_flush(chopin_ws *ws);

#endif
