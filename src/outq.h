/* SPDX-License-Identifier: MIT */
/*
 * A connection's output queue: the "output plan" of the design. Response heads and small
 * bodies are appended to one contiguous data area (so pipelined responses leave in one
 * write); large, static, owned, file and streamed bodies are segments of their own that
 * point at their bytes. The queue lives in one pool buffer, taken when output appears and
 * returned when all of it is sent.
 */
#ifndef CHOPIN_OUTQ_H
#define CHOPIN_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include "chopin.h"

struct chopin__pool;
struct chopin__plan;

enum chopin__seg_kind {
    CHOPIN__SEG_DATA,   /* bytes in the queue's own data area */
    CHOPIN__SEG_EXT,    /* borrowed or owned memory */
    CHOPIN__SEG_FILE,   /* a file range, for sendfile */
    CHOPIN__SEG_STREAM, /* chunks pulled from a producer as the socket drains */
};

enum chopin__stream_state {
    CHOPIN__STREAM_RUNNING = 0, /* its producer is called as the socket drains */
    CHOPIN__STREAM_WAITING,     /* its producer said "nothing yet" (CHOPIN_EAGAIN) */
    CHOPIN__STREAM_FINISHED,    /* its producer said it is done */
};

struct chopin__seg {
    uint8_t kind;
    uint8_t close_fd;  /* FILE */
    uint8_t chunked;   /* STREAM: frame as chunks (else raw, close-delimited) */
    uint8_t stream_state; /* STREAM: enum chopin__stream_state */
    int fd;
    const char *ptr;   /* EXT */
    uint64_t off;      /* DATA: offset in the data area; FILE: file offset */
    uint64_t len;      /* bytes left to send (STREAM: of the current chunk) */
    union {
        struct {
            chopin_free_fn fn;
            void *arg;
        } owned; /* EXT; FILE without close_fd */
        struct {
            chopin_produce_fn produce;
            void (*done)(void *state);
            void *state;
            char *trailers; /* chunked: the trailer lines, on the heap (issue 20), or NULL */
            uint32_t trailers_len;
        } stream;
    } u;
};

#define CHOPIN__OUTQ_SEGS 24

struct chopin__outq {
    uint32_t head;  /* first unsent segment */
    uint32_t count; /* segments in use */
    uint32_t used;  /* bytes of data[] in use */
    uint32_t cap;   /* bytes of data[] */
    uint64_t pending; /* bytes queued and not yet sent (streams: the current chunk) */
    struct chopin__seg seg[CHOPIN__OUTQ_SEGS];
    char data[];
};

/** A new empty queue from `pool`, or NULL when out of memory. */
struct chopin__outq *chopin__outq_new(struct chopin__pool *pool);
/** Releases what unsent segments own (owned bodies, fds, streams) and gives the buffer
 *  back to `pool`. */
void chopin__outq_free(struct chopin__outq *q, struct chopin__pool *pool);

/** A new segment at the end (compacting sent ones away when the array is full), zeroed;
 *  NULL when every segment is in use. */
struct chopin__seg *chopin__outq_seg_append(struct chopin__outq *q);

/* The three calls every response makes are inline: as calls into outq.c they cost about
 * as much again as their bodies (callgrind, bench/micro_conn.c). */

/** Nonzero when another response fits comfortably (segments and data space left, and no
 *  stream queued, which must finish before the next response starts). */
static inline int chopin__outq_has_room(const struct chopin__outq *q) {
    if (q->count > q->head && q->seg[q->count - 1].kind == CHOPIN__SEG_STREAM)
        return 0;
    /* A response needs at most two segments (head, body); keep one spare. */
    return q->count - q->head + 3 <= CHOPIN__OUTQ_SEGS && q->cap - q->used >= q->cap / 4;
}

/** `n` contiguous bytes at the end of the data area, or NULL when they do not fit.
 *  chopin__outq_commit then queues the first `used` of them. */
static inline char *chopin__outq_reserve(struct chopin__outq *q, size_t n) {
    return q->cap - q->used >= n ? q->data + q->used : NULL;
}

static inline void chopin__outq_commit(struct chopin__outq *q, size_t used) {
    if (!used)
        return;
    struct chopin__seg *last = q->count > q->head ? &q->seg[q->count - 1] : NULL;
    if (last && last->kind == CHOPIN__SEG_DATA && last->off + last->len == q->used) {
        last->len += used; /* pipelined responses grow one segment */
    } else {
        /* has_room keeps a spare segment, so this cannot fail for a caller that checked. */
        struct chopin__seg *s = chopin__outq_seg_append(q);
        if (!s)
            return;
        s->kind = CHOPIN__SEG_DATA;
        s->off = q->used;
        s->len = used;
    }
    q->used += (uint32_t)used;
    q->pending += used;
}

/** Queue a segment. All return 0, or -ENOSPC when no segment is free (callers check
 *  chopin__outq_has_room first, which keeps spare segments). */
int chopin__outq_push_ext(struct chopin__outq *q, const void *ptr, uint64_t len,
                          chopin_free_fn free_fn, void *free_arg);
/* A file segment's descriptor is closed after sending with `close_fd`, else handed to
 * release_fn(NULL, release_arg) when set (a shared descriptor's reference). */
int chopin__outq_push_file(struct chopin__outq *q, int fd, uint64_t off, uint64_t len,
                           int close_fd, chopin_free_fn release_fn, void *release_arg);
/** A stream; when chunked, `trailers[0..trailers_len)` ("Name: value\r\n" lines, copied)
 *  end its last chunk. -ENOSPC (no segment), -ENOMEM (the trailers' copy). */
int chopin__outq_push_stream(struct chopin__outq *q, chopin_produce_fn produce,
                             void (*done)(void *), void *state, int chunked,
                             const char *trailers, uint32_t trailers_len);

/** Fills `p` from the head of the queue (see plan.h). Returns the bytes
 *  planned, or -1 when a stream's producer failed (the connection must abort). 0 with
 *  segments left means a stream waits (chopin__outq_waiting). */
long chopin__outq_plan(struct chopin__outq *q, struct chopin__plan *p);
/** `n` bytes of the last plan were sent; finished segments are released. Returns
 *  nonzero when the queue is now empty. */
int chopin__outq_sent(struct chopin__outq *q, size_t n);

/** Nonzero when everything queued is sent and the stream at the head waits for its
 *  application (its producer returned CHOPIN_EAGAIN): nothing to send, nothing owed to a
 *  reader. Inline: after_progress asks it whenever output exists. */
static inline int chopin__outq_waiting(const struct chopin__outq *q) {
    return q->pending == 0 && q->head < q->count &&
           q->seg[q->head].stream_state == CHOPIN__STREAM_WAITING;
}
/** A waiting stream's producer may have something now: it is called again at the next
 *  plan. Returns 1 when the queue holds a stream that was waiting, else 0 (no stream, or
 *  one running or finished: nothing changes). */
int chopin__outq_resume(struct chopin__outq *q);

#endif
