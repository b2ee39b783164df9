/* SPDX-License-Identifier: MIT */
/*
 * Server-sent events (chopin.h, "Server-sent events"): a waiting stream (chopin_stream)
 * whose producer drains a per-stream queue of formatted events, resumed by every send.
 * The wire format is WHATWG HTML §9.2.6 (event stream interpretation): fields are lines
 * "name: value" ending in LF, an event ends with an empty line, a line starting with ':'
 * is a comment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chopin.h"
#include "config.h"
#include "engine.h"
#include "http/message.h"

struct chopin_sse {
    chopin_stream stream;
    chopin_worker *worker;
    chopin_timer heartbeat; /* 0: none (closing, or the timer could not start) */
    chopin_sse_fn on_close;
    void *arg;
    char *buf;         /* queued bytes: buf[start .. start+len) */
    size_t start, len, cap;
    uint8_t closing;   /* chopin_sse_close: end once the queue is sent */
    uint8_t ended;     /* on_close runs: nothing more is queued */
    uint8_t quiet;     /* nothing queued since the last heartbeat tick */
};

/* A buffer that grew for a burst is given back once it has drained. */
#define KEEP_BUFFER (64u << 10)

/* Room for `need` more bytes at the end of the queue. */
static int reserve(struct chopin_sse *s, size_t need) {
    if (s->start + s->len + need <= s->cap)
        return 0;
    if (s->len + need <= s->cap) {
        memmove(s->buf, s->buf + s->start, s->len);
        s->start = 0;
        return 0;
    }
    size_t cap = s->cap ? s->cap * 2 : 4096;
    while (cap < s->len + need)
        cap *= 2;
    char *b = malloc(cap);
    if (!b)
        return CHOPIN_ENOMEM;
    if (s->len)
        memcpy(b, s->buf + s->start, s->len);
    free(s->buf);
    s->buf = b;
    s->start = 0;
    s->cap = cap;
    return 0;
}

static void put(struct chopin_sse *s, const void *p, size_t n) {
    memcpy(s->buf + s->start + s->len, p, n);
    s->len += n;
}

static void put_str(struct chopin_sse *s, const char *p) { put(s, p, strlen(p)); }

/* The producer: hands the socket what is queued; CHOPIN_EAGAIN waits for the next send. */
static long produce(void *state, char *out, size_t cap) {
    struct chopin_sse *s = state;
    if (s->len == 0)
        return s->closing ? 0 : CHOPIN_EAGAIN;
    size_t n = s->len < cap ? s->len : cap;
    memcpy(out, s->buf + s->start, n);
    s->start += n;
    s->len -= n;
    if (s->len == 0) {
        s->start = 0;
        if (s->cap > KEEP_BUFFER) {
            free(s->buf);
            s->buf = NULL;
            s->cap = 0;
        }
    }
    return (long)n;
}

static void stop_heartbeat(struct chopin_sse *s) {
    if (s->heartbeat)
        chopin_timer_stop(s->worker, s->heartbeat);
    s->heartbeat = 0;
}

/* The stream ended (chopin.h: whatever ended it): once, on the worker. */
static void stream_done(void *state) {
    struct chopin_sse *s = state;
    s->ended = 1;
    stop_heartbeat(s);
    if (s->on_close)
        s->on_close(s, s->arg);
    free(s->buf);
    free(s);
}

/* Queued bytes go out at the worker's next step (chopin_stream_resume never calls back
 * into the stream: `s` stays valid through the caller's call). */
static void wake(struct chopin_sse *s) {
    s->quiet = 0;
    chopin_stream_resume(s->stream);
}

static int writable(const struct chopin_sse *s) {
    return s && !s->closing && !s->ended;
}

static int has_line_break(const char *p) { return p && strpbrk(p, "\r\n") != NULL; }

/* The length of the data line starting at p (up to end), and where the next one starts:
 * CRLF, LF and CR each end a line (§9.2.6). */
static size_t line_end(const char *p, const char *end, const char **next) {
    const char *q = p;
    while (q < end && *q != '\n' && *q != '\r')
        q++;
    *next = q;
    if (q < end)
        *next = (*q == '\r' && q + 1 < end && q[1] == '\n') ? q + 2 : q + 1;
    return (size_t)(q - p);
}

/* Bytes the data lines of `data` take on the wire ("data: " line LF each). */
static size_t data_size(const char *data, size_t len) {
    size_t size = 0;
    const char *p = data, *end = data + len, *next;
    for (;;) {
        size_t n = line_end(p, end, &next);
        size += 6 + n + 1;
        if (next == p + n) /* no line break after it: the last line */
            return size;
        p = next;
    }
}

static void put_data_lines(struct chopin_sse *s, const char *data, size_t len) {
    const char *p = data, *end = data + len, *next;
    for (;;) {
        size_t n = line_end(p, end, &next);
        put(s, "data: ", 6);
        put(s, p, n);
        put(s, "\n", 1);
        if (next == p + n) /* no line break after it: the last line */
            break;
        p = next;
    }
}

/* Queues `size` bytes within the bound; the caller then writes them. */
static int make_room(struct chopin_sse *s, size_t size) {
    if (s->len + size > CHOPIN_SSE_MAX_QUEUED)
        return CHOPIN_ENOSPC;
    return reserve(s, size);
}

int chopin_sse_send(chopin_sse *s, const char *event, const char *id, const char *data,
                    size_t len) {
    if (!writable(s))
        return CHOPIN_ESTALE;
    if (has_line_break(event) || has_line_break(id) || (!data && len))
        return CHOPIN_EINVAL;
    if (!data)
        data = "";
    size_t size = data_size(data, len) + 1; /* + the empty line that dispatches it */
    if (event)
        size += 7 + strlen(event) + 1;
    if (id)
        size += 4 + strlen(id) + 1;
    int rc = make_room(s, size);
    if (rc < 0)
        return rc;
    if (event) {
        put(s, "event: ", 7);
        put_str(s, event);
        put(s, "\n", 1);
    }
    if (id) {
        put(s, "id: ", 4);
        put_str(s, id);
        put(s, "\n", 1);
    }
    put_data_lines(s, data, len);
    put(s, "\n", 1);
    wake(s);
    return 0;
}

int chopin_sse_retry(chopin_sse *s, uint32_t ms) {
    if (!writable(s))
        return CHOPIN_ESTALE;
    char line[32];
    int n = snprintf(line, sizeof line, "retry: %u\n", (unsigned)ms);
    int rc = make_room(s, (size_t)n);
    if (rc < 0)
        return rc;
    put(s, line, (size_t)n);
    wake(s);
    return 0;
}

static int queue_comment(struct chopin_sse *s, const char *text) {
    size_t n = strlen(text);
    int rc = make_room(s, 2 + n + 1);
    if (rc < 0)
        return rc;
    put(s, ": ", 2);
    put(s, text, n);
    put(s, "\n", 1);
    return 0;
}

int chopin_sse_comment(chopin_sse *s, const char *text) {
    if (!writable(s))
        return CHOPIN_ESTALE;
    if (!text || has_line_break(text))
        return CHOPIN_EINVAL;
    int rc = queue_comment(s, text);
    if (rc == 0)
        wake(s);
    return rc;
}

/* Every sse_heartbeat_ms: a comment line when nothing else was queued meanwhile. */
static void heartbeat(chopin_worker *w, chopin_timer t, void *arg) {
    struct chopin_sse *s = arg;
    if (s->quiet && queue_comment(s, "") == 0)
        wake(s);
    s->quiet = 1;
}

void chopin_sse_close(chopin_sse *s) {
    if (!writable(s))
        return;
    s->closing = 1;
    stop_heartbeat(s);
    chopin_stream_resume(s->stream); /* an empty queue ends the stream now */
}

chopin_worker *chopin_sse_worker(const chopin_sse *s) { return s->worker; }

chopin_str chopin_sse_last_id(const chopin_req *req) {
    return chopin_req_header(req, "Last-Event-ID");
}

chopin_sse *chopin_sse_open(chopin_req *req, chopin_res *res, chopin_sse_fn on_close, void *arg) {
    if (!req || !res || !req->engine || !req->conn)
        return NULL;
    struct chopin_sse *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->worker = chopin_req_worker(req);
    s->stream = chopin_req_stream(req);
    s->on_close = on_close;
    s->arg = arg;
    uint32_t every = req->engine->cfg->opt.sse_heartbeat_ms;
    s->heartbeat = chopin_timer_start(s->worker, every, every, heartbeat, s);
    if (!s->heartbeat ||
        chopin_res_stream(res, 200, "text/event-stream", produce, stream_done, s) < 0) {
        stop_heartbeat(s);
        free(s);
        return NULL;
    }
    /* Intermediaries must neither cache the stream nor hold its events back (nginx reads
     * X-Accel-Buffering). Should these fail (no room for headers), the stream still works. */
    chopin_res_header_set(res, "Cache-Control", "no-cache");
    chopin_res_header_set(res, "X-Accel-Buffering", "no");
    return s;
}
