/* SPDX-License-Identifier: MIT */
/*
 * The connection state machine: the sans-I/O heart of Chopin. Bytes go in
 * (chopin__conn_on_data), an output plan comes out (chopin__conn_out_plan), and the
 * backend reports what it sent (chopin__conn_on_sent). It never calls read, write or any
 * event-loop function, so every backend shares it and tests drive it without sockets.
 *
 * Layers (docs/design.md, "Transports and protocols"): the backend's bytes pass through the
 * connection's transport (NULL: plain, the bytes as they are; TLS decrypts and encrypts)
 * to its protocol (NULL: HTTP/1.1, the code in conn.c; WebSocket and HTTP/2 install a
 * table of their own, once, when a handler's 101 answer has been queued). The backend
 * calls the same functions whatever the layers: they cost the plain HTTP/1.1 path one
 * predictable branch each.
 *
 * After every call the backend looks at the connection and does what it asks:
 *   - chopin__conn_out_plan() non-empty: send it (writev / sendfile / SQEs);
 *   - chopin__conn_wants_read(): willing to take more input (false under backpressure:
 *     too much output waiting, or a request being answered by a stream);
 *   - CHOPIN__CONN_SHUTDOWN: everything is sent and no more requests will be served:
 *     half-close the write side (shutdown SHUT_WR) and keep discarding input until EOF
 *     or the linger timer, so the peer reads our last response instead of an RST;
 *   - CHOPIN__CONN_CLOSE: close the socket now, then chopin__engine_conn_free(); a backend
 *     may first send what chopin__conn_out_plan() still gives (an evicted connection's 408),
 *     without waiting for the socket to take it.
 */
#ifndef CHOPIN_CONN_H
#define CHOPIN_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "http/chunked.h"
#include "plan.h"
#include "timer/wheel.h"

struct chopin__conn;
struct chopin__engine;
struct chopin__exchange;
struct chopin__inbuf;
struct chopin__outq;
struct chopin__peer;

enum chopin__conn_phase {
    CHOPIN__PHASE_IDLE = 0, /* between requests, nothing buffered */
    CHOPIN__PHASE_HEAD,     /* part of a request head is buffered */
    CHOPIN__PHASE_BODY,     /* head parsed, body incomplete */
    CHOPIN__PHASE_LINGER,   /* no more requests: flush, half-close, drain input */
    /* (the phases from here on read no HTTP/1.1 request: conn.c tests `< LINGER`) */
    CHOPIN__PHASE_UPGRADE,  /* a request switches protocols: the bytes after it wait */
    CHOPIN__PHASE_PROTOCOL, /* conn->proto has the connection */
};

/* The engine's lists a connection may be on, at most one at a time (conn->listed): the
 * connections a full slab may close for a newcomer, each oldest first. */
enum chopin__conn_list {
    CHOPIN__LIST_NONE = 0,
    CHOPIN__LIST_IDLE,    /* idle keep-alive */
    CHOPIN__LIST_PARTIAL, /* phase HEAD: its request head arrives in pieces */
};

/* What the connection asks of its backend (conn->ask). */
#define CHOPIN__CONN_SHUTDOWN 0x01u
#define CHOPIN__CONN_CLOSE 0x02u

/*
 * A protocol other than HTTP/1.1 (WebSocket, HTTP/2): what a connection that switched to it
 * calls instead of conn.c's own HTTP/1.1 code. Its state hangs off conn->proto_state.
 * The functions around it do what every protocol shares: after each call they decide
 * what the connection asks of its backend (close, output under the write deadline), so a
 * protocol only queues output (chopin__conn_output), arms its own deadline
 * (chopin__conn_arm), pauses reading (conn->backpressure = 1; cleared by itself), or
 * closes (chopin__conn_close, or CHOPIN__CONN_SHUTDOWN in conn->ask to half-close once
 * everything is sent).
 */
struct chopin__protocol {
    const char *name;
    /** Plaintext input. `data` is writable and reused after the call: copy what is kept. */
    void (*on_data)(struct chopin__conn *c, char *data, size_t n);
    /** The peer closed its write side (conn->eof is set). */
    void (*on_eof)(struct chopin__conn *c);
    /** The deadline the protocol armed passed (nothing was waiting to be sent). */
    void (*on_timeout)(struct chopin__conn *c);
    /** Everything queued has been sent (conn->out is NULL again). */
    void (*on_sent)(struct chopin__conn *c);
    /** The server drains: end politely (a close frame, GOAWAY) and close. */
    void (*on_drain)(struct chopin__conn *c);
    /** After every event, when the connection stays open and owes no output: arm the
     *  protocol's deadline (idle timeout, ping) with chopin__conn_arm, or none. */
    void (*settle)(struct chopin__conn *c);
    /** The connection is being freed, for whatever reason: release conn->proto_state. */
    void (*release)(struct chopin__conn *c);
    /** An upgrade that never happened (the connection ended before its 101 was queued,
     *  or the answer was not a 101): release the state it would have had. */
    void (*discard)(void *state);
    /** The application has something for the protocol outside its events: one of its
     *  exchanges was finished or timed out (chopin_exchange_finish, handler_timeout_ms),
     *  or a stream was resumed (chopin_stream_resume). Runs from the engine's ready list,
     *  never inside a handler. NULL: nothing to do (the protocol has no exchanges). */
    void (*on_ready)(struct chopin__conn *c);
    /** Issue 20: chopin_body_pause (pause nonzero) or chopin_body_resume on exchange x,
     *  whose body is read as a stream. NULL: the connection's (HTTP/1.1's) own. */
    void (*body_pause)(struct chopin__conn *c, struct chopin__exchange *x, int pause);
};

/*
 * A transport (TLS): conn->transport points at its per-connection state, whose first
 * member is its table. It takes the socket's bytes (on_input) and hands the plaintext to
 * the protocol with chopin__conn_deliver; it fills the backend's plan with its own bytes
 * (out_plan), pulling the plaintext to send with chopin__conn_plain_plan and reporting
 * what it consumed with chopin__conn_plain_sent. Plain connections have none.
 */
struct chopin__transport_ops {
    const char *name;
    void (*on_input)(struct chopin__conn *c, char *data, size_t n);
    /** Fills `p` with bytes for the socket (they stay where they are until on_sent). */
    size_t (*out_plan)(struct chopin__conn *c, struct chopin__plan *p);
    /** `n` bytes of its last plan reached the socket. */
    void (*on_sent)(struct chopin__conn *c, size_t n);
    /** Nonzero when it has bytes of its own to send (handshake, records, alerts). */
    int (*has_output)(const struct chopin__conn *c);
    /** 0, or the time (engine clock, ms) by which an idle connection must have moved on
     *  (a handshake's deadline): while it is not 0 it replaces keep-alive's. */
    uint64_t (*deadline)(const struct chopin__conn *c);
    /** The connection is being freed: release the transport's state. */
    void (*release)(struct chopin__conn *c);
};
struct chopin__transport {
    const struct chopin__transport_ops *ops;
};

struct chopin__conn {
    struct chopin__timer timer;
    struct chopin__conn *list_prev, *list_next; /* the engine's list named by `listed` */
    struct chopin__engine *engine;
    struct chopin__inbuf *in;  /* unprocessed input, held only while some is pending */
    struct chopin__outq *out;  /* unsent output, held only while some is pending */
    struct chopin__peer *peer; /* ?proxy listeners: the PROXY header's state and client (peer.h) */
    /* Requests in progress (exchange.h), in request order: deferred ones, and answers
     * waiting behind them. Empty on the plain path. */
    struct chopin__exchange *xq_head, *xq_tail;
    struct chopin__transport *transport; /* NULL: plain */
    const struct chopin__protocol *proto; /* NULL: HTTP/1.1 */
    void *proto_state;                    /* the protocol's own, from its upgrade */
    struct chopin__chunked chunked;
    uint64_t deadline;   /* header or body deadline of the request in progress */
    uint64_t expire;     /* the deadline in force (the wheel entry may be earlier) */
    uint64_t body_need;  /* Content-Length of the pending request (0 when chunked) */
    uint64_t body_in;    /* chunked: raw bytes of the body consumed (after the head) */
    uint64_t body_out;   /* chunked: decoded bytes of the body so far */
    uint32_t head_len;   /* length of the pending request's head in `in` */
    uint32_t requests;
    int fd;              /* the socket (for getpeername), -1 in tests */
    uint32_t gen;        /* bumped when the slot is freed: stale completions compare it */
    uint8_t phase;       /* enum chopin__conn_phase */
    uint8_t ask;         /* CHOPIN__CONN_* */
    uint8_t keep_open;   /* zero once a response said Connection: close */
    uint8_t body_kind;   /* pending request: enum chopin__body_kind, kept from its head */
    uint8_t expect_continue; /* pending request: it asked for 100 Continue */
    uint8_t continue_sent;
    uint8_t listed;      /* enum chopin__conn_list: the engine's list it is on */
    uint8_t farewell;    /* evicted: its last answer may still go out before the close */
    uint8_t shut;        /* SHUT_WR done (set by the backend) */
    uint8_t live;        /* the slot holds a connection */
    uint8_t eof;         /* the peer closed its write side */
    uint8_t backpressure; /* stopped serving until output drains */
    uint8_t head_lf;     /* the buffered part of a head holds a line end */
    uint8_t ready_listed; /* on the engine's list of connections with answers to send */
    uint8_t listen_flags; /* CHOPIN__LISTEN_* of the listener that accepted it (listen.h) */
    uint8_t body_stream;  /* the body is handed to the exchange at xq_tail as it arrives */
    uint8_t body_paused;  /* ...which asked for no more for now (chopin_body_pause) */
    uint16_t pending;    /* exchanges on xq: at max_pending no further request is read */
    uint16_t backend_flags; /* the backend's own per-connection state */
    uint32_t backend_ops;   /* the backend's own count of operations in flight */
};

/** Prepares a fresh slot (called by chopin__engine_conn_new). */
void chopin__conn_init(struct chopin__conn *c, struct chopin__engine *e, int fd);
/** Releases buffers and whatever pending output owns (called by chopin__engine_conn_free). */
void chopin__conn_release(struct chopin__conn *c);

/** Bytes arrived. `data` is writable and may be reused after the call (the worker's
 *  scratch, or an io_uring provided buffer): anything still needed is copied. */
void chopin__conn_on_data(struct chopin__conn *c, char *data, size_t n);
/** The peer closed its write side (read returned 0). */
void chopin__conn_on_eof(struct chopin__conn *c);
/** A read or write failed (ECONNRESET, EPIPE, ...): the connection must close. */
void chopin__conn_on_error(struct chopin__conn *c);
/** The timer fired (called from the engine's wheel). Returns 1 when a deadline really
 *  passed (the backend must then look at the connection), 0 when the entry was stale and
 *  has been re-armed. */
int chopin__conn_on_timeout(struct chopin__conn *c);
/** Nonzero when all that is left to send is a stream waiting for its application. */
int chopin__conn_stream_waiting(const struct chopin__conn *c);
/** The server is draining: close now if idle after a request or a stream waiting for its
 *  application, else finish the current request (or wait a little for the first, when
 *  none arrived yet) and close. */
void chopin__conn_on_drain(struct chopin__conn *c);
/** The slab is full and a newcomer waits: close this connection, which is on one of the
 *  engine's lists and owes no output. A request head still arriving is answered 408, as
 *  its header deadline would; the answer goes out only if the backend sends the output
 *  of a closing connection before closing it (chopin__conn_out_plan still plans it). */
void chopin__conn_evict(struct chopin__conn *c);

/** An exchange queued on `c` became ready (finished or timed out) outside the handling of
 *  `c`'s own input: queues the answers now in order and asks the backend to look (notify),
 *  or, when called from inside a handler, lists `c` for chopin__engine_run_ready. */
void chopin__conn_answer_ready(struct chopin__conn *c);
/** Queues the answers at the head of `c`'s exchange queue that are ready, in order, then
 *  resumes reading requests if the queue was full (chopin__engine_run_ready). */
void chopin__conn_flush_answers(struct chopin__conn *c);

/** Fills `p` with the output pending now (may call a stream's producer). Returns p->bytes:
 *  0 once the connection asks to close, except for an evicted one's last answer. */
size_t chopin__conn_out_plan(struct chopin__conn *c, struct chopin__plan *p);
/** `n` bytes of the last plan were sent (fewer than planned on a partial write). May
 *  resume processing buffered requests that waited for output to drain. */
void chopin__conn_on_sent(struct chopin__conn *c, size_t n);
/** The application resumed the stream its output waits on (chopin_stream_resume): its
 *  producer is called again once chopin__engine_run_ready has asked the backend to look
 *  (lists `c`). Does nothing when no stream waits. */
void chopin__conn_stream_resume(struct chopin__conn *c);
/** A file range ended early (sendfile returned 0: the file shrank): abort the connection. */
void chopin__conn_on_file_short(struct chopin__conn *c);

/** Issue 18: the body streamed to the exchange at the tail of c's queue is not read for
 *  now (its bytes wait in the kernel: TCP throttles the client), or again: the bytes
 *  already here are handed over once the caller has returned (through the ready list). */
void chopin__conn_body_pause(struct chopin__conn *c);
void chopin__conn_body_resume(struct chopin__conn *c);
/* ----- for transports and protocols -------------------------------------------------- */

/** Plaintext for the protocol (a transport's output upward; chopin__conn_on_data's when
 *  the connection has no transport). */
void chopin__conn_deliver(struct chopin__conn *c, char *data, size_t n);
/** The plaintext output pending now (chopin__conn_out_plan without a transport). */
size_t chopin__conn_plain_plan(struct chopin__conn *c, struct chopin__plan *p);
/** `n` bytes of the last plaintext plan were consumed (sent, or taken by the transport). */
void chopin__conn_plain_sent(struct chopin__conn *c, size_t n);
/** The connection's output queue, created when it has none; NULL when out of memory. */
struct chopin__outq *chopin__conn_output(struct chopin__conn *c);
/** Ends the connection now (its backend closes it): the peer is gone or misbehaved. */
void chopin__conn_close(struct chopin__conn *c);
/** Arms the connection's timer for `expire` (engine clock, ms): its protocol's on_timeout
 *  runs then unless output is pending (whose write deadline comes first). */
void chopin__conn_arm(struct chopin__conn *c, uint64_t expire);
/** Output was queued, or the connection closed, outside the connection's own events (a
 *  timer of the application, a posted function): the backend looks at it before the
 *  worker next waits. */
void chopin__conn_wake(struct chopin__conn *c);
/** Switches a connection that has read no request yet to protocol `p` with `state` (HTTP/2
 *  by ALPN or by its preface): from now on its bytes go to p->on_data. */
void chopin__conn_set_protocol(struct chopin__conn *c, const struct chopin__protocol *p,
                               void *state);
/** Installs a transport on a fresh connection (before its first byte). */
void chopin__conn_set_transport(struct chopin__conn *c, struct chopin__transport *t);

/** Nonzero when the connection takes more input now. */
int chopin__conn_wants_read(const struct chopin__conn *c);
/** Nonzero when output is waiting. */
int chopin__conn_has_output(const struct chopin__conn *c);
/** The socket, or -1 (used by chopin_req_remote_addr). */
int chopin__conn_fd(const struct chopin__conn *c);
/** What a PROXY header said about the client (peer.h), or NULL (chopin_req_remote_addr). */
const struct chopin__peer *chopin__conn_peer(const struct chopin__conn *c);

#endif
