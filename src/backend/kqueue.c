/*
 * The kqueue backend (macOS and the BSDs; on Linux, over libkqueue, for `make test-kqueue`).
 * It mirrors epoll.c: readiness is edge-like (EV_CLEAR), so the backend remembers per
 * connection whether the socket may still hold input or take output (READABLE /
 * WRITABLE), reads until EAGAIN or until the connection stops wanting input
 * (backpressure), and resumes as soon as the connection wants more.
 *
 *   - EVFILT_READ is added once per connection. EVFILT_WRITE is added only while output
 *     waits for a full socket and deleted as soon as it drained: the Rust engine never
 *     removes it (reference §2.3, W24), so every ACK wakes its loop for nothing.
 *     CHOPIN_KQUEUE_CHECK builds abort on a write event that arrives after the deletion
 *     reached the kernel, which is how `make test-kqueue` shows the filter is gone.
 *   - Interest changes are queued and handed to the kevent() call that ends the turn:
 *     one system call for all of them and the wait. When the queue fills mid-turn it is
 *     flushed early with EV_RECEIPT, which applies changes without taking any event.
 *   - The wake descriptor (platform.h) is either the worker's kqueue itself, with an
 *     EVFILT_USER event (the BSDs, macOS), or an eventfd watched with EVFILT_READ (Linux).
 *   - The timer tick is the kevent() timeout.
 */
#ifdef CHOPIN_HAVE_KQUEUE

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/readiness.h"
#include "conn.h"
#include "platform.h"
#include "worker.h"

#define MAX_EVENTS 256
/* At most MAX_EVENTS, so that an error for every change of a flush fits in the event
 * list: kevent() would otherwise fail the whole call. */
#define MAX_CHANGES 256

/* Native kqueue forgets a descriptor's filters when it is closed. libkqueue cannot see a
 * close (its BUGS.md): a filter left behind would shadow the next socket that gets the
 * same number, so there the filters are deleted before the close. */
#ifdef __linux__
#define DELETE_BEFORE_CLOSE 1
#endif

/* conn->backend_flags */
/* CHOPIN__READABLE, CHOPIN__WRITABLE, CHOPIN__HUNG_UP (readiness.h), and: */
#define IN_ADDED 0x8u   /* EVFILT_READ is registered (or queued to be) */
#define OUT_ARMED 0x10u /* EVFILT_WRITE is registered (or queued to be) */
#define QUEUED 0x20u    /* a change for this connection waits in the change list */

/* kevent.udata of the two descriptors that are not connections; connections use the
 * pointer to their slot, which is never this small. */
#define TAG_LISTENER ((void *)1)
#define TAG_WAKE ((void *)2)

struct loop {
    struct chopin__worker *w;
    int kq;
    int own_kq;   /* 0 when kq is the worker's wake kqueue (closed by the server) */
    int nchanges;
    uint32_t turn; /* kevent() waits so far: dates write-filter deletions (check_write) */
    struct chopin__conn *busy; /* the connection being serviced, if any */
    struct kevent changes[MAX_CHANGES];
#ifdef CHOPIN_KQUEUE_CHECK
    uint64_t out_added, out_deleted, out_closed; /* write filter life, logged at exit */
#endif
};

static void service(struct loop *l, struct chopin__conn *c);

static struct chopin__conn *conn_of(const struct kevent *ev) {
    return (struct chopin__conn *)(uintptr_t)ev->udata;
}

/* ----- the change list -------------------------------------------------------------------- */

/* The changes are about to reach the kernel: nothing is pending for their connections. */
static int take_changes(struct loop *l) {
    int n = l->nchanges;
    for (int i = 0; i < n; i++)
        conn_of(&l->changes[i])->backend_flags &= (uint16_t)~QUEUED;
    l->nchanges = 0;
    return n;
}

/* A change for `c` failed with `err`. ENOENT is a deletion of a filter already gone: it is
 * gone either way. Anything else (ENOMEM: no memory for the filter) leaves a socket we
 * cannot watch, so the connection fails; the one being serviced is closed by service()
 * when the call returns, any other at once. */
static void change_failed(struct loop *l, struct chopin__conn *c, intptr_t err) {
    if (err == ENOENT || !c->live)
        return;
    chopin__conn_on_error(c);
    if (c != l->busy)
        service(l, c);
}

/* The change list is full in the middle of a turn: apply it now. EV_RECEIPT makes kevent
 * report one entry per change (data 0 or an errno) and take no pending event. The batch
 * is copied out first: a failure services a connection, which may queue new changes. */
static void flush_changes(struct loop *l) {
    struct kevent batch[MAX_CHANGES], receipts[MAX_CHANGES];
    const struct timespec zero = {0, 0};
    int n = l->nchanges;
    memcpy(batch, l->changes, (size_t)n * sizeof *batch);
    for (int i = 0; i < n; i++)
        batch[i].flags |= EV_RECEIPT;
    take_changes(l);
    int got = kevent(l->kq, batch, n, receipts, n, &zero);
    if (got < 0) { /* the whole batch was refused: none of these sockets is watched */
        intptr_t err = errno;
        chopin__worker_log(l->w, "kevent (changes): %s", strerror(errno));
        for (int i = 0; i < n; i++)
            change_failed(l, conn_of(&batch[i]), err);
        return;
    }
    for (int i = 0; i < got; i++)
        if ((receipts[i].flags & EV_ERROR) && receipts[i].data != 0)
            change_failed(l, conn_of(&receipts[i]), receipts[i].data);
}

static void queue_change(struct loop *l, struct chopin__conn *c, int filter, unsigned flags) {
    if (l->nchanges == MAX_CHANGES)
        flush_changes(l);
    EV_SET(&l->changes[l->nchanges++], (uintptr_t)c->fd, filter, flags, 0, 0, (void *)c);
    c->backend_flags |= QUEUED;
}

/* A closing connection's queued changes must not reach the kernel: its descriptor number
 * may belong to a new socket by then, and its slot to a new connection. */
static void drop_changes(struct loop *l, const struct chopin__conn *c) {
    int kept = 0;
    for (int i = 0; i < l->nchanges; i++)
        if (conn_of(&l->changes[i]) != c)
            l->changes[kept++] = l->changes[i];
    l->nchanges = kept;
}

/* ----- closing ------------------------------------------------------------------------ */

#ifdef DELETE_BEFORE_CLOSE
static void delete_filters(struct loop *l, int fd, int nfilters) {
    static const int filters[] = {EVFILT_READ, EVFILT_WRITE};
    struct kevent del[2], receipts[2];
    const struct timespec zero = {0, 0};
    for (int i = 0; i < nfilters; i++)
        EV_SET(&del[i], (uintptr_t)fd, filters[i], EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    /* Receipts, not errors: a filter that was only queued is not there to delete. */
    (void)kevent(l->kq, del, nfilters, receipts, nfilters, &zero);
}
#endif

static void close_conn(struct loop *l, struct chopin__conn *c) {
    if (c->backend_flags & QUEUED)
        drop_changes(l, c);
#ifdef CHOPIN_KQUEUE_CHECK
    l->out_closed += (c->backend_flags & OUT_ARMED) != 0;
#endif
#ifdef DELETE_BEFORE_CLOSE
    delete_filters(l, c->fd, 2);
#endif
    /* On native kqueue, close() removes the descriptor's filters. */
    close(c->fd);
    chopin__engine_conn_free(&l->w->engine, c);
    chopin__worker_slot_freed(l->w);
}

/* ----- reading and writing (as epoll.c) ---------------------------------------------- */

/* No read budget here: kqueue's loop has no ready list to come back with. */
static void read_input(struct loop *l, struct chopin__conn *c) {
    chopin__read_ready(c, l->w->scratch, l->w->scratch_size, -1);
}

/* Registers the read filter once, and keeps the write filter registered exactly while
 * output waits for a socket that is full. */
static void update_interest(struct loop *l, struct chopin__conn *c) {
    if (!(c->backend_flags & IN_ADDED)) {
        c->backend_flags |= IN_ADDED;
        queue_change(l, c, EVFILT_READ, EV_ADD | EV_CLEAR);
    }
    int want_out = chopin__conn_has_output(c) && !(c->backend_flags & CHOPIN__WRITABLE);
    int armed = (c->backend_flags & OUT_ARMED) != 0;
    if (want_out == armed)
        return;
    c->backend_flags ^= OUT_ARMED;
    if (want_out) {
        queue_change(l, c, EVFILT_WRITE, EV_ADD | EV_CLEAR);
    } else {
        /* The deletion reaches the kernel before the next batch is collected: a write
         * event in any later batch means the filter survived (check_write). */
        c->backend_ops = l->turn;
        queue_change(l, c, EVFILT_WRITE, EV_DELETE);
    }
#ifdef CHOPIN_KQUEUE_CHECK
    *(want_out ? &l->out_added : &l->out_deleted) += 1;
#endif
}

/* Does everything the connection can do now: read, write, half-close, close. */
static void service(struct loop *l, struct chopin__conn *c) {
    struct chopin__conn *outer = l->busy; /* a failed flush may service another */
    l->busy = c;
    for (;;) {
        read_input(l, c);
        chopin__write_ready(c);
        if (c->ask & CHOPIN__CONN_SHUTDOWN) {
            shutdown(c->fd, SHUT_WR);
            c->shut = 1;
            c->ask &= (uint8_t)~CHOPIN__CONN_SHUTDOWN;
        }
        if (c->ask & CHOPIN__CONN_CLOSE)
            break;
        /* Output drained may have lifted backpressure while input is still waiting. */
        if (!((c->backend_flags & CHOPIN__READABLE) && chopin__conn_wants_read(c)))
            break;
    }
    if (!(c->ask & CHOPIN__CONN_CLOSE))
        update_interest(l, c);
    if (c->ask & CHOPIN__CONN_CLOSE)
        close_conn(l, c);
    l->busy = outer;
}

static void on_notify(struct chopin__conn *c, void *ctx) { service(ctx, c); }

/* ----- events ---------------------------------------------------------------------------- */

/* A write event for a connection whose write filter was deleted, with the deletion in a
 * kevent() call before the one that collected this event: the filter is still armed. */
static void check_write(const struct loop *l, const struct chopin__conn *c) {
#ifdef CHOPIN_KQUEUE_CHECK
    if (!(c->backend_flags & OUT_ARMED) && (int32_t)(l->turn - c->backend_ops) > 0) {
        chopin__worker_log(l->w, "kqueue: write event on fd %d after its write filter was "
                                 "deleted (turn %u, deleted in turn %u)",
                           c->fd, l->turn, c->backend_ops);
        abort();
    }
#else
    /* Harmless in a release build: the flag only says "try to write". */
    (void)l;
    (void)c;
#endif
}

static void accept_connections(struct loop *l) {
    struct chopin__conn *c;
    while ((c = chopin__accept_next(l->w))) {
        c->backend_ops = l->turn;
        service(l, c); /* service() queues the read filter */
    }
}

static void stop_accepting(struct loop *l) {
    struct chopin__worker *w = l->w;
    if (w->listen_fd >= 0) {
#ifdef DELETE_BEFORE_CLOSE
        delete_filters(l, w->listen_fd, 1);
#endif
        close(w->listen_fd);
        w->listen_fd = -1;
    }
}

static int is_wake(const struct kevent *ev) {
#ifdef CHOPIN__WAKE_IS_KQUEUE
    if (ev->filter == EVFILT_USER)
        return 1;
#endif
    return conn_of(ev) == TAG_WAKE;
}

/* Returns 1 for a listener event: accepting waits until the batch is handled, because
 * accepting may evict an idle connection whose event is later in the same batch. */
static int handle_event(struct loop *l, const struct kevent *ev) {
    if (is_wake(ev)) {
        chopin__worker_begin_drain(l->w);
        stop_accepting(l);
        return 0;
    }
    if (conn_of(ev) == TAG_LISTENER)
        return 1;
    struct chopin__conn *c = conn_of(ev);
    /* Read and write filters report separately: the first event may have closed it. */
    if (!c->live)
        return 0;
    if (ev->flags & EV_ERROR) {
        change_failed(l, c, ev->data);
        return 0;
    }
    if (ev->filter == EVFILT_READ) {
        c->backend_flags |= CHOPIN__READABLE; /* EV_EOF too: read() then returns 0 */
        if (ev->flags & EV_EOF)
            c->backend_flags |= CHOPIN__HUNG_UP;
    } else if (ev->filter == EVFILT_WRITE) {
        check_write(l, c);
        c->backend_flags |= CHOPIN__WRITABLE; /* EV_EOF too: the send reports the error */
    }
    service(l, c);
    return 0;
}

/* One kevent() per turn: the queued changes go in, the ready events come out. Changes are
 * applied before the wait, so EINTR loses none of them. */
static int wait_events(struct loop *l, struct kevent *events, int timeout_ms) {
    struct timespec ts = {.tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1000000L};
    int n = take_changes(l);
    int got = kevent(l->kq, l->changes, n, events, MAX_EVENTS, timeout_ms < 0 ? NULL : &ts);
    if (got < 0 && errno == EINTR)
        return 0;
    return got;
}

/* ----- the loop ---------------------------------------------------------------------------- */

static void close_all(struct chopin__worker *w, struct chopin__conn *c) {
    close_conn(w->engine.notify_ctx, c);
}

static int register_fd(int kq, int fd, unsigned flags, void *tag) {
    struct kevent ev;
    EV_SET(&ev, (uintptr_t)fd, EVFILT_READ, EV_ADD | flags, 0, 0, tag);
    return kevent(kq, &ev, 1, NULL, 0, NULL) < 0 ? -errno : 0;
}

/* Opens the loop's kqueue and watches the listener (EV_CLEAR: accept until EAGAIN, as
 * with epoll's edge) and, on Linux, the wake eventfd (level: begin_drain reads it). */
static int loop_open(struct loop *l) {
#ifdef CHOPIN__WAKE_IS_KQUEUE
    l->kq = l->w->wake_fd;
    l->own_kq = 0;
#else
    l->kq = kqueue();
    if (l->kq < 0)
        return -errno;
    l->own_kq = 1;
    (void)fcntl(l->kq, F_SETFD, FD_CLOEXEC);
    int rc = register_fd(l->kq, l->w->wake_fd, 0, TAG_WAKE);
    if (rc < 0) {
        close(l->kq);
        return rc;
    }
#endif
    int err = register_fd(l->kq, l->w->listen_fd, EV_CLEAR, TAG_LISTENER);
    if (err < 0 && l->own_kq)
        close(l->kq);
    return err;
}

static void loop_close(struct loop *l) {
#ifdef CHOPIN_KQUEUE_CHECK
    chopin__worker_log(l->w, "kqueue: write filter added %llu, deleted %llu, gone with its "
                             "socket %llu",
                       (unsigned long long)l->out_added, (unsigned long long)l->out_deleted,
                       (unsigned long long)l->out_closed);
#endif
    if (l->own_kq)
        close(l->kq);
}

static int kqueue_run(struct chopin__worker *w) {
    struct loop l = {.w = w};
    int rc = loop_open(&l);
    if (rc < 0)
        return rc;
    w->engine.notify = on_notify;
    w->engine.notify_ctx = &l;

    struct kevent events[MAX_EVENTS];
    chopin__worker_clock(w);
    accept_connections(&l); /* connections may have queued before the loop started */
    do {
        int n = wait_events(&l, events, chopin__worker_timeout(w));
        if (n < 0) {
            chopin__worker_log(w, "kevent: %s", strerror(errno));
            break;
        }
        l.turn++;
        chopin__worker_clock(w);
        int accept_now = 0;
        for (int i = 0; i < n; i++)
            accept_now |= handle_event(&l, &events[i]);
        if (chopin__worker_accept_due(w) || accept_now)
            accept_connections(&l);
    } while (!chopin__worker_turn(w));
    chopin__worker_close_all(w, close_all);
    stop_accepting(&l);
    loop_close(&l);
    return 0;
}

static int kqueue_probe(const struct chopin__config *cfg) {
    (void)cfg;
    int kq = kqueue();
    if (kq < 0)
        return -errno;
    close(kq);
    return 0;
}

const struct chopin__backend chopin__kqueue_backend = {
    .name = "kqueue",
    .probe = kqueue_probe,
    .run = kqueue_run,
};

#endif
