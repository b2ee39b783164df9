/*
 * The epoll backend: edge-triggered readiness. A connection is registered once for
 * EPOLLIN|EPOLLRDHUP; EPOLLOUT is added only while output waits for the socket to drain.
 * Because edges are not repeated, the backend remembers per connection whether the
 * socket may still hold input or take output (READABLE / WRITABLE) and reads until
 * EAGAIN, or until the connection stops wanting input (backpressure): then the flag
 * stays set and reading resumes as soon as the connection wants more.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/readiness.h"
#include "conn.h"
#include "worker.h"

#define MAX_EVENTS 256
/* Reads per connection per turn. A client that keeps its socket full (an upload on
 * loopback) would otherwise hold the worker in its read loop while others wait; past the
 * budget it is queued and served again after the next (non-blocking) epoll_wait. */
#define READ_BUDGET 16

/* conn->backend_flags: CHOPIN__READABLE, CHOPIN__WRITABLE, CHOPIN__HUNG_UP, and */
#define OUT_ARMED 0x8u /* EPOLLOUT is in the registered interest */
#define QUEUED 0x10u   /* in the loop's ready list */

/* epoll_event.data.u64 for the two non-connection descriptors; connections use the
 * pointer to their slot, which is never this small. */
#define TAG_LISTENER 1u
#define TAG_WAKE 2u

/* A connection that used up its read budget, with its generation: it may be closed and
 * its slot reused before the list is served. */
struct ready {
    struct chopin__conn *c;
    uint32_t gen;
};

struct loop {
    struct chopin__worker *w;
    int epfd;
    struct ready *ready;
    uint32_t nready, ready_cap;
};

static void service(struct loop *l, struct chopin__conn *c);

static int interest(struct loop *l, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data.u64 = data};
    return epoll_ctl(l->epfd, op, fd, &ev);
}

static void close_conn(struct chopin__worker *w, struct chopin__conn *c) {
    /* close() removes the descriptor from the epoll set: no EPOLL_CTL_DEL needed. */
    close(c->fd);
    chopin__engine_conn_free(&w->engine, c);
    chopin__worker_slot_freed(w);
}

static void queue_ready(struct loop *l, struct chopin__conn *c) {
    if (c->backend_flags & QUEUED)
        return;
    if (l->nready == l->ready_cap) {
        uint32_t cap = l->ready_cap ? l->ready_cap * 2 : 64;
        struct ready *r = realloc(l->ready, cap * sizeof *r);
        if (!r)
            return; /* served at its next event instead: late, not lost */
        l->ready = r;
        l->ready_cap = cap;
    }
    l->ready[l->nready++] = (struct ready){c, c->gen};
    c->backend_flags |= QUEUED;
}

static void read_input(struct loop *l, struct chopin__conn *c) {
    if (chopin__read_ready(c, l->w->scratch, l->w->scratch_size, READ_BUDGET))
        queue_ready(l, c);
}

/* Keeps EPOLLOUT registered exactly while output waits for a non-writable socket. */
static void update_interest(struct loop *l, struct chopin__conn *c) {
    int want_out = chopin__conn_has_output(c) && !(c->backend_flags & CHOPIN__WRITABLE);
    int armed = (c->backend_flags & OUT_ARMED) != 0;
    if (want_out == armed)
        return;
    uint32_t ev = EPOLLIN | EPOLLRDHUP | EPOLLET | (want_out ? EPOLLOUT : 0);
    if (interest(l, EPOLL_CTL_MOD, c->fd, ev, (uint64_t)(uintptr_t)c) < 0) {
        chopin__conn_on_error(c);
        return;
    }
    c->backend_flags ^= OUT_ARMED;
}

/* Does everything the connection can do now: read, write, half-close, close. */
static void service(struct loop *l, struct chopin__conn *c) {
    for (;;) {
        read_input(l, c);
        chopin__write_ready(c);
        if (c->ask & CHOPIN__CONN_SHUTDOWN) {
            shutdown(c->fd, SHUT_WR);
            c->shut = 1;
            c->ask &= (uint8_t)~CHOPIN__CONN_SHUTDOWN;
        }
        if (c->ask & CHOPIN__CONN_CLOSE) {
            close_conn(l->w, c);
            return;
        }
        /* Output drained may have lifted backpressure while input is still waiting
         * (unless the read budget is spent: then the ready list brings it back). */
        if (!((c->backend_flags & CHOPIN__READABLE) && chopin__conn_wants_read(c)) ||
            (c->backend_flags & QUEUED))
            break;
    }
    update_interest(l, c);
    if (c->ask & CHOPIN__CONN_CLOSE)
        close_conn(l->w, c);
}

static void on_notify(struct chopin__conn *c, void *ctx) { service(ctx, c); }

static void serve_ready(struct loop *l) {
    uint32_t n = l->nready;
    l->nready = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct chopin__conn *c = l->ready[i].c;
        if (!c->live || c->gen != l->ready[i].gen)
            continue; /* closed since it was queued */
        c->backend_flags &= ~QUEUED;
        service(l, c);
    }
}

static void accept_connections(struct loop *l) {
    struct chopin__conn *c;
    while ((c = chopin__accept_next(l->w))) {
        if (interest(l, EPOLL_CTL_ADD, c->fd, EPOLLIN | EPOLLRDHUP | EPOLLET, (uint64_t)(uintptr_t)c) < 0) {
            close_conn(l->w, c);
            continue;
        }
        service(l, c);
    }
}

static void stop_accepting(struct loop *l) {
    struct chopin__worker *w = l->w;
    if (w->listen_fd >= 0) {
        close(w->listen_fd);
        w->listen_fd = -1;
    }
}

/* Returns 1 for a listener event: accepting waits until the batch is handled, because
 * accepting may evict an idle connection whose event is later in the same batch. */
static int handle_event(struct loop *l, const struct epoll_event *ev) {
    if (ev->data.u64 == TAG_LISTENER)
        return 1;
    if (ev->data.u64 == TAG_WAKE) {
        chopin__worker_begin_drain(l->w);
        stop_accepting(l);
        return 0;
    }
    struct chopin__conn *c = (struct chopin__conn *)(uintptr_t)ev->data.u64;
    if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->backend_flags |= CHOPIN__READABLE;
    if (ev->events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->backend_flags |= CHOPIN__HUNG_UP;
    if (ev->events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        c->backend_flags |= CHOPIN__WRITABLE;
    service(l, c);
    return 0;
}

static void close_all(struct chopin__worker *w, struct chopin__conn *c) { close_conn(w, c); }

static int epoll_run(struct chopin__worker *w) {
    struct loop l = {.w = w, .epfd = epoll_create1(EPOLL_CLOEXEC)};
    if (l.epfd < 0)
        return -errno;
    if (interest(&l, EPOLL_CTL_ADD, w->listen_fd, EPOLLIN | EPOLLET, TAG_LISTENER) < 0 ||
        interest(&l, EPOLL_CTL_ADD, w->wake_fd, EPOLLIN, TAG_WAKE) < 0) {
        int err = -errno;
        close(l.epfd);
        return err;
    }
    w->engine.notify = on_notify;
    w->engine.notify_ctx = &l;

    struct epoll_event events[MAX_EVENTS];
    chopin__worker_clock(w);
    accept_connections(&l); /* connections may have queued before the loop started */
    do {
        int n = epoll_wait(l.epfd, events, MAX_EVENTS, l.nready ? 0 : chopin__worker_timeout(w));
        if (n < 0 && errno != EINTR) {
            chopin__worker_log(w, "epoll_wait: %s", strerror(errno));
            break;
        }
        chopin__worker_clock(w);
        int accept_now = 0;
        for (int i = 0; i < n; i++)
            accept_now |= handle_event(&l, &events[i]);
        serve_ready(&l);
        if (chopin__worker_accept_due(w) || accept_now)
            accept_connections(&l);
    } while (!chopin__worker_turn(w));
    chopin__worker_close_all(w, close_all);
    stop_accepting(&l);
    close(l.epfd);
    free(l.ready);
    return 0;
}

static int epoll_probe(const struct chopin__config *cfg) {
    (void)cfg;
    return 0;
}

const struct chopin__backend chopin__epoll_backend = {
    .name = "epoll",
    .probe = epoll_probe,
    .run = epoll_run,
};
