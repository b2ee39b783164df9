/* SPDX-License-Identifier: MIT */
/* The output queue (see outq.h). */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem/pool.h"
#include "plan.h"

/* Room kept in front of a stream chunk for its size line ("ffffffff\r\n"), and behind it
 * for the CRLF that ends it plus a possible last-chunk "0\r\n\r\n". */
#define CHUNK_PREFIX 10
#define CHUNK_SUFFIX 7

struct chopin__outq *chopin__outq_new(struct chopin__pool *pool) {
    struct chopin__outq *q = chopin__pool_take(pool);
    if (!q)
        return NULL;
    q->head = q->count = q->used = 0;
    q->pending = 0;
    q->cap = (uint32_t)(pool->buf_size - sizeof *q);
    return q;
}

static void seg_release(struct chopin__seg *s) {
    switch (s->kind) {
    case CHOPIN__SEG_EXT:
        if (s->u.owned.fn)
            s->u.owned.fn((void *)s->ptr, s->u.owned.arg);
        break;
    case CHOPIN__SEG_FILE:
        if (s->close_fd)
            close(s->fd);
        else if (s->u.owned.fn)
            s->u.owned.fn(NULL, s->u.owned.arg);
        break;
    case CHOPIN__SEG_STREAM:
        free(s->u.stream.trailers);
        if (s->u.stream.done)
            s->u.stream.done(s->u.stream.state);
        break;
    default:
        break;
    }
}

void chopin__outq_free(struct chopin__outq *q, struct chopin__pool *pool) {
    if (!q)
        return;
    for (uint32_t i = q->head; i < q->count; i++)
        seg_release(&q->seg[i]);
    chopin__pool_give(pool, q);
}

struct chopin__seg *chopin__outq_seg_append(struct chopin__outq *q) {
    if (q->count == CHOPIN__OUTQ_SEGS) {
        if (q->head == 0)
            return NULL;
        memmove(q->seg, q->seg + q->head, (q->count - q->head) * sizeof q->seg[0]);
        q->count -= q->head;
        q->head = 0;
    }
    struct chopin__seg *s = &q->seg[q->count++];
    memset(s, 0, sizeof *s);
    return s;
}

int chopin__outq_push_ext(struct chopin__outq *q, const void *ptr, uint64_t len,
                          chopin_free_fn free_fn, void *free_arg) {
    struct chopin__seg *s = chopin__outq_seg_append(q);
    if (!s)
        return -ENOSPC;
    s->kind = CHOPIN__SEG_EXT;
    s->ptr = ptr;
    s->len = len;
    s->u.owned.fn = free_fn;
    s->u.owned.arg = free_arg;
    q->pending += len;
    return 0;
}

int chopin__outq_push_file(struct chopin__outq *q, int fd, uint64_t off, uint64_t len,
                           int close_fd, chopin_free_fn release_fn, void *release_arg) {
    struct chopin__seg *s = chopin__outq_seg_append(q);
    if (!s)
        return -ENOSPC;
    s->kind = CHOPIN__SEG_FILE;
    s->fd = fd;
    s->off = off;
    s->len = len;
    s->close_fd = (uint8_t)!!close_fd;
    s->u.owned.fn = release_fn;
    s->u.owned.arg = release_arg;
    q->pending += len;
    return 0;
}

int chopin__outq_push_stream(struct chopin__outq *q, chopin_produce_fn produce,
                             void (*done)(void *), void *state, int chunked,
                             const char *trailers, uint32_t trailers_len) {
    char *copy = NULL;
    /* (the last chunk must fit the data area, which is then unused) */
    if (chunked && trailers_len && trailers_len + 5 <= q->cap) {
        copy = malloc(trailers_len);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, trailers, trailers_len);
    }
    struct chopin__seg *s = chopin__outq_seg_append(q);
    if (!s) {
        free(copy);
        return -ENOSPC;
    }
    s->u.stream.trailers = copy;
    s->u.stream.trailers_len = copy ? trailers_len : 0;
    s->kind = CHOPIN__SEG_STREAM;
    s->chunked = (uint8_t)!!chunked;
    s->u.stream.produce = produce;
    s->u.stream.done = done;
    s->u.stream.state = state;
    return 0;
}

/* The last chunk: "0\r\n", the trailer lines, "\r\n" (RFC 9112 §7.1.2). */
static void last_chunk(struct chopin__outq *q, struct chopin__seg *s) {
    uint32_t n = s->u.stream.trailers_len;
    memcpy(q->data, "0\r\n", 3);
    if (n)
        memcpy(q->data + 3, s->u.stream.trailers, n);
    memcpy(q->data + 3 + n, "\r\n", 2);
    s->off = 0;
    s->len = 5 + n;
    free(s->u.stream.trailers);
    s->u.stream.trailers = NULL;
}

/* Pulls the next chunk of a stream that heads the queue into the (then unused) data area,
 * framed as "<hex>\r\n<data>\r\n", or the last chunk; or nothing, when the producer has
 * nothing yet (the stream then waits). */
static int stream_fill(struct chopin__outq *q, struct chopin__seg *s) {
    q->used = 0;
    char *body = q->data + CHUNK_PREFIX;
    long n = s->u.stream.produce(s->u.stream.state, body, q->cap - CHUNK_PREFIX - CHUNK_SUFFIX);
    if (n == CHOPIN_EAGAIN) {
        s->stream_state = CHOPIN__STREAM_WAITING; /* until chopin__outq_resume */
        return 0;
    }
    if (n < 0 || (size_t)n > q->cap - CHUNK_PREFIX - CHUNK_SUFFIX)
        return -1;
    if (n == 0) {
        s->stream_state = CHOPIN__STREAM_FINISHED;
        if (s->chunked)
            last_chunk(q, s);
    } else if (!s->chunked) {
        s->off = CHUNK_PREFIX;
        s->len = (uint64_t)n;
    } else {
        static const char hex[] = "0123456789abcdef";
        char *p = body - 2;
        memcpy(p, "\r\n", 2);
        for (unsigned long v = (unsigned long)n; v; v >>= 4)
            *--p = hex[v & 15];
        memcpy(body + n, "\r\n", 2);
        s->off = (uint64_t)(p - q->data);
        s->len = (uint64_t)(body + n + 2 - p);
    }
    q->pending += s->len;
    return 0;
}

long chopin__outq_plan(struct chopin__outq *q, struct chopin__plan *p) {
    p->iovcnt = 0;
    p->file_len = 0;
    p->more = 0;
    p->bytes = 0;
    for (uint32_t i = q->head; i < q->count && p->iovcnt < CHOPIN__PLAN_IOV; i++) {
        struct chopin__seg *s = &q->seg[i];
        if (s->kind == CHOPIN__SEG_FILE) {
            if (p->iovcnt == 0) {
                p->file_fd = s->fd;
                p->file_off = s->off;
                p->file_len = s->len;
                p->bytes = s->len;
            } else {
                p->more = 1;
            }
            break;
        }
        if (s->kind == CHOPIN__SEG_STREAM) {
            /* Only as the head: its chunk reuses the data area earlier segments use. */
            if (p->iovcnt > 0)
                break;
            if (s->len == 0 && s->stream_state == CHOPIN__STREAM_RUNNING && stream_fill(q, s) < 0)
                return -1;
            if (s->stream_state == CHOPIN__STREAM_WAITING)
                return 0; /* a waiting stream is never called until resumed: no busy loop */
            if (s->len == 0) { /* a raw stream ended: nothing more to send */
                chopin__outq_sent(q, 0);
                return 0;
            }
        }
        if (s->len == 0)
            continue;
        const char *base = s->kind == CHOPIN__SEG_EXT ? s->ptr : q->data;
        p->iov[p->iovcnt].iov_base = (void *)(base + s->off);
        p->iov[p->iovcnt].iov_len = s->len;
        p->iovcnt++;
        p->bytes += s->len;
        if (s->kind == CHOPIN__SEG_STREAM)
            break;
    }
    return (long)p->bytes;
}

int chopin__outq_sent(struct chopin__outq *q, size_t n) {
    while (q->head < q->count) {
        struct chopin__seg *s = &q->seg[q->head];
        uint64_t k = n < s->len ? n : s->len;
        s->off += k;
        s->len -= k;
        q->pending -= k;
        n -= k;
        if (s->len > 0 ||
            (s->kind == CHOPIN__SEG_STREAM && s->stream_state != CHOPIN__STREAM_FINISHED))
            break;
        seg_release(s);
        q->head++;
    }
    if (q->head < q->count)
        return 0;
    q->head = q->count = q->used = 0;
    return 1;
}

int chopin__outq_resume(struct chopin__outq *q) {
    /* A stream is always the last segment (chopin__outq_has_room queues nothing after it). */
    struct chopin__seg *s = q->count > q->head ? &q->seg[q->count - 1] : NULL;
    if (!s || s->kind != CHOPIN__SEG_STREAM || s->stream_state != CHOPIN__STREAM_WAITING)
        return 0;
    s->stream_state = CHOPIN__STREAM_RUNNING;
    return 1;
}
