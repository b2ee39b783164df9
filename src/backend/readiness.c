/* SPDX-License-Identifier: MIT */
/* The readiness loop shared by epoll and kqueue (see readiness.h). */
#include "backend/readiness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "engine.h"
#include "platform.h"
#include "worker.h"

/* Reads per connection per turn. A client that keeps its socket full (an upload, or
 * pipelined requests without end, on loopback) would otherwise hold the worker in its read
 * loop while others wait; past the budget it goes to the ready list and is served again
 * after the next (non-blocking) wait, behind the events that wait brings. */
#define READ_BUDGET 16

typedef struct chopin__readiness_loop loop;

static void clear_flag(struct chopin__conn *c, unsigned flag) {
    c->backend_flags &= (uint16_t)~flag;
}

/* Reads into the worker's scratch and feeds the connection while `*budget` reads are
 * left. Returns nonzero when the budget ran out with input still waiting. */
static int read_input(struct chopin__worker *w, struct chopin__conn *c, int *budget) {
    while ((c->backend_flags & CHOPIN__READABLE) && chopin__conn_wants_read(c)) {
        if (*budget == 0)
            return 1;
        --*budget;
        ssize_t n = chopin__sys_read(c->fd, w->scratch, w->scratch_size);
        if (n > 0) {
            /* A short read is taken to drain the socket (the edge comes again for later
             * input) unless the peer hung up, whose event does not come again. Skipping
             * the read that would only say EAGAIN saves a system call per request. */
            if ((size_t)n < w->scratch_size && !(c->backend_flags & CHOPIN__HUNG_UP))
                clear_flag(c, CHOPIN__READABLE);
            chopin__conn_on_data(c, w->scratch, (size_t)n);
        } else if (n == 0) {
            clear_flag(c, CHOPIN__READABLE);
            chopin__conn_on_eof(c);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            clear_flag(c, CHOPIN__READABLE);
        } else if (errno != EINTR) {
            clear_flag(c, CHOPIN__READABLE);
            chopin__conn_on_error(c);
        }
    }
    return 0;
}

static ssize_t send_plan(int fd, const struct chopin__plan *p) {
    /* No SIGPIPE from a peer that went away (EPIPE instead); MSG_MORE lets the kernel
     * merge a head with the file range that follows it. */
    int flags = CHOPIN__MSG_NOSIGNAL | (p->more ? CHOPIN__MSG_MORE : 0);
    if (p->iovcnt == 1) /* (the usual small answer: send skips sendmsg's iovec import) */
        return chopin__sys_send(fd, p->iov[0].iov_base, p->iov[0].iov_len, flags);
    if (p->iovcnt) {
        struct msghdr msg = {.msg_iov = (struct iovec *)p->iov, .msg_iovlen = (size_t)p->iovcnt};
        return chopin__sys_sendmsg(fd, &msg, flags);
    }
    size_t len = p->file_len > (1u << 30) ? (1u << 30) : (size_t)p->file_len;
    return chopin__sendfile(fd, p->file_fd, p->file_off, len);
}

/* Sends the connection's output plan until it is empty or the socket is full. */
static void write_output(struct chopin__conn *c) {
    struct chopin__plan plan;
    while ((c->backend_flags & CHOPIN__WRITABLE) && chopin__conn_out_plan(c, &plan) > 0) {
        ssize_t n = send_plan(c->fd, &plan);
        if (n > 0) {
            chopin__conn_on_sent(c, (size_t)n);
        } else if (n == 0) {
            chopin__conn_on_file_short(c); /* sendfile at end of file: it shrank */
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            clear_flag(c, CHOPIN__WRITABLE);
        } else if (errno != EINTR) {
            chopin__conn_on_error(c);
        }
    }
}

static void queue_ready(loop *l, struct chopin__conn *c) {
    if (c->backend_flags & CHOPIN__READY_QUEUED)
        return;
    if (l->nready == l->ready_cap) {
        uint32_t cap = l->ready_cap ? l->ready_cap * 2 : 64;
        struct chopin__ready *r = realloc(l->ready, cap * sizeof *r);
        if (!r)
            return; /* served at its next event or timer instead: late, not lost */
        l->ready = r;
        l->ready_cap = cap;
    }
    l->ready[l->nready++] = (struct chopin__ready){c, c->gen};
    c->backend_flags |= CHOPIN__READY_QUEUED;
}

static void close_conn(loop *l, struct chopin__conn *c) {
    if (l->poller->forget)
        l->poller->forget(l, c);
    close(c->fd);
    chopin__engine_conn_free(&l->w->engine, c);
    chopin__worker_slot_freed(l->w);
}

/* Keeps output interest registered exactly while output waits for a full socket. */
static void update_interest(loop *l, struct chopin__conn *c) {
    int want_out = chopin__conn_has_output(c) && !(c->backend_flags & CHOPIN__WRITABLE);
    int armed = (c->backend_flags & CHOPIN__OUT_ARMED) != 0;
    if (want_out == armed)
        return;
    if (l->poller->watch_output(l, c, want_out) < 0) {
        chopin__conn_on_error(c);
        return;
    }
    c->backend_flags ^= CHOPIN__OUT_ARMED;
}

/* Does everything the connection can do now: read, write, half-close, close. The read
 * budget is for the whole call: writing lifts backpressure, and a flood whose answers
 * are read at once would otherwise get a new budget after every write. */
static void service(loop *l, struct chopin__conn *c) {
    int budget = READ_BUDGET;
    for (;;) {
        if (read_input(l->w, c, &budget))
            queue_ready(l, c);
        write_output(c);
        if (c->ask & CHOPIN__CONN_SHUTDOWN) {
            shutdown(c->fd, SHUT_WR);
            c->shut = 1;
            c->ask &= (uint8_t)~CHOPIN__CONN_SHUTDOWN;
        }
        if (c->ask & CHOPIN__CONN_CLOSE)
            break;
        /* Output drained may have lifted backpressure while input is still waiting
         * (unless the read budget is spent: then the ready list brings it back). */
        if (!((c->backend_flags & CHOPIN__READABLE) && chopin__conn_wants_read(c)) ||
            (c->backend_flags & CHOPIN__READY_QUEUED))
            break;
    }
    if (!(c->ask & CHOPIN__CONN_CLOSE))
        update_interest(l, c);
    if (c->ask & CHOPIN__CONN_CLOSE)
        close_conn(l, c);
}

static void on_notify(struct chopin__conn *c, void *ctx) { service(ctx, c); }

void chopin__readiness_conn_failed(loop *l, struct chopin__conn *c) {
    if (!c->live)
        return;
    chopin__conn_on_error(c);
    queue_ready(l, c);
}

/* Serves the connections queued before this call. Those queued while it runs (a budget
 * spent again) wait for the next turn, after the events of the next wait. */
static void serve_ready(loop *l) {
    uint32_t n = l->nready;
    if (n == 0)
        return;
    for (uint32_t i = 0; i < n; i++) {
        struct chopin__ready r = l->ready[i];
        if (!r.c->live || r.c->gen != r.gen)
            continue; /* closed since it was queued */
        clear_flag(r.c, CHOPIN__READY_QUEUED);
        service(l, r.c);
    }
    l->nready -= n;
    memmove(l->ready, l->ready + n, l->nready * sizeof *l->ready);
}

/* The next waiting socket of listener `i` in a connection slot, as the worker's accept
 * policy allows (an idle connection evicted when the slab is full, a back-off on EMFILE);
 * NULL when none waits or accepting must pause. It is marked readable and writable: with
 * a deferred accept (TCP_DEFER_ACCEPT, accf_data) its request is usually there already,
 * so the loop serves it at once instead of after another wait. */
static struct chopin__conn *accept_next(struct chopin__worker *w, int i) {
    while (w->listen[i].fd >= 0 && chopin__worker_may_accept(w)) {
        int fd = chopin__accept(w->listen[i].fd);
        if (fd < 0) {
            if (errno == EAGAIN || !chopin__worker_accept_failed(w, errno))
                return NULL;
            continue;
        }
        struct chopin__conn *c = chopin__engine_conn_accepted(&w->engine, fd, w->listen[i].flags);
        if (c) {
            c->backend_flags = CHOPIN__READABLE | CHOPIN__WRITABLE;
            return c;
        }
        close(fd); /* unreachable: a slot was free or an idle connection evictable */
    }
    return NULL;
}

static void start_conn(loop *l, struct chopin__conn *c) {
    if (l->poller->watch(l, c) < 0) {
        close_conn(l, c);
        return;
    }
    service(l, c);
}

/* Each listener of `which` (a bit per listener) until its backlog is empty or accepting
 * must pause. */
static void accept_connections(loop *l, uint32_t which) {
    struct chopin__conn *c;
    for (int i = 0; i < l->w->nlisten; i++)
        if (which & (1u << i))
            while ((c = accept_next(l->w, i)))
                start_conn(l, c);
}

/* Draining: a connection the kernel accepted before the listener closes is in flight (its
 * client has sent its request and waits), and closing the listener would reset it. So
 * the backlog is taken first, while slots last, and served as the drain serves the rest:
 * answered with Connection: close. */
static void accept_backlog(loop *l) {
    struct chopin__worker *w = l->w;
    for (int i = 0; i < w->nlisten; i++) {
        while (w->listen[i].fd >= 0 && w->engine.slab.used < w->engine.slab.capacity) {
            int fd = chopin__accept(w->listen[i].fd);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED)
                    continue;
                break;
            }
            struct chopin__conn *c = chopin__engine_conn_accepted(&w->engine, fd, w->listen[i].flags);
            if (!c) {
                close(fd); /* unreachable: a slot is free */
                return;
            }
            c->backend_flags = CHOPIN__READABLE | CHOPIN__WRITABLE;
            start_conn(l, c);
        }
    }
}

static void stop_accepting(loop *l) {
    struct chopin__worker *w = l->w;
    for (int i = 0; i < w->nlisten; i++) {
        if (w->listen[i].fd < 0)
            continue;
        if (l->poller->forget_listener)
            l->poller->forget_listener(l, w->listen[i].fd);
        close(w->listen[i].fd);
        w->listen[i].fd = -1;
    }
}

/* Accepting waits until the whole batch is served, because it may evict an idle
 * connection whose event is later in the same batch. Read and write events of one
 * connection may come separately (kqueue): the first may have closed it. */
static void serve_events(loop *l, int n) {
    for (int i = 0; i < n; i++) {
        struct chopin__conn *c = l->fired[i];
        if (c->live)
            service(l, c);
    }
    /* After the connections: a callback may close one whose event is in this batch. */
    for (int i = 0; i < l->napp; i++)
        chopin__loop_watch_fire(&l->w->engine, l->app[i].fd, l->app[i].gen, l->app[i].ready);
    l->napp = 0;
    if (l->woken) {
        l->woken = 0;
        if (chopin__worker_woken(l->w)) {
            accept_backlog(l);
            stop_accepting(l);
        }
    }
    serve_ready(l);
    uint32_t which = chopin__worker_accept_due(l->w) ? ~0u : l->accept_now;
    if (which) {
        l->accept_now = 0;
        accept_connections(l, which);
    }
}

static int watch_app(void *ctx, int fd, unsigned events, uint32_t gen, unsigned old_events,
                     uint32_t old_gen) {
    loop *l = ctx;
    (void)old_gen; /* the kernel keeps one registration per descriptor: it is replaced */
    return l->poller->watch_app(l, fd, events, old_events, chopin__readiness_app_tag(fd, gen));
}

static void close_all(struct chopin__worker *w, struct chopin__conn *c) {
    close_conn(w->engine.notify_ctx, c);
}

int chopin__readiness_run(loop *l) {
    struct chopin__worker *w = l->w;
    w->engine.notify = on_notify;
    w->engine.notify_ctx = l;
    chopin__loop_attach(&w->engine, watch_app, l);
    chopin__worker_clock(w);
    accept_connections(l, ~0u); /* connections may have queued before the loop started */
    do {
        int n = l->poller->wait(l, l->nready ? 0 : chopin__worker_timeout(w));
        if (n < 0) {
            chopin__worker_log(w, "%s: %s", l->poller->wait_name, strerror(-n));
            break;
        }
        chopin__worker_clock(w);
        serve_events(l, n);
    } while (!chopin__worker_turn(w));
    chopin__worker_close_all(w, close_all);
    chopin__loop_attach(&w->engine, NULL, NULL);
    stop_accepting(l);
    free(l->ready);
    l->ready = NULL;
    l->nready = l->ready_cap = 0;
    return 0;
}
