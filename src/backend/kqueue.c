/* SPDX-License-Identifier: MIT */
/*
 * The kqueue poller for the readiness loop (readiness.h), for macOS and the BSDs (on
 * Linux, over libkqueue, for `make test-kqueue`). Readiness is edge-like (EV_CLEAR).
 *
 *   - EVFILT_READ is added once per connection. EVFILT_WRITE is added only while output
 *     waits for a full socket and deleted as soon as it drained: the Rust engine never
 *     removes it (reference §2.3, W24), so every ACK wakes its loop for nothing.
 *     CHOPIN_KQUEUE_CHECK builds abort on a write event that arrives after the deletion
 *     reached the kernel, which is how `make test-kqueue` shows the filter is gone.
 *   - Interest changes are queued and handed to the kevent() call of the next wait: one
 *     system call for all of them and the wait. When the queue fills mid-turn it is
 *     flushed early with EV_RECEIPT, which applies changes without taking any event.
 *   - The wake descriptor (platform.h) is either the worker's kqueue itself, with an
 *     EVFILT_USER event (the BSDs, macOS), or an eventfd watched with EVFILT_READ (Linux).
 *   - The application's descriptors (chopin_worker_watch) are level-triggered (no
 *     EV_CLEAR) and their changes are applied at once, outside the change list: they are
 *     rare, and the application hears of a failure.
 */
#ifdef CHOPIN_HAVE_KQUEUE

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/readiness.h"
#include "chopin.h"
#include "conn.h"
#include "platform.h"
#include "worker.h"

/* At most CHOPIN__LOOP_EVENTS, so that an error for every change of a flush fits in the
 * event list: kevent() would otherwise fail the whole call. */
#define MAX_CHANGES 256

/* Native kqueue forgets a descriptor's filters when it is closed. libkqueue cannot see a
 * close (its BUGS.md): a filter left behind would shadow the next socket that gets the
 * same number, so there the filters are deleted before the close. */
#ifdef __linux__
#define DELETE_BEFORE_CLOSE 1
#endif

/* conn->backend_flags: the loop's (readiness.h), and: */
#define CHANGE_QUEUED 0x20u /* a change for this connection waits in the change list */

/* kevent.udata of the wake descriptor; listeners have theirs
 * (chopin__readiness_listener_tag), connections the pointer to their slot, which is never
 * this small. */
#define TAG_WAKE ((void *)2)

struct kqueue_loop {
    struct chopin__readiness_loop base;
    int kq;
    int own_kq;   /* 0 when kq is the worker's wake kqueue (closed by the server) */
    int nchanges;
    uint32_t turn; /* kevent() waits so far: dates write-filter deletions (check_write) */
    struct kevent changes[MAX_CHANGES];
    struct kevent events[CHOPIN__LOOP_EVENTS];
#ifdef CHOPIN_KQUEUE_CHECK
    uint64_t out_added, out_deleted, out_closed; /* write filter life, logged at exit */
#endif
};

static struct kqueue_loop *kqueue_of(struct chopin__readiness_loop *l) {
    return (struct kqueue_loop *)l;
}

static struct chopin__conn *conn_of(const struct kevent *ev) {
    return (struct chopin__conn *)(uintptr_t)ev->udata;
}

/* ----- the change list -------------------------------------------------------------------- */

/* The changes are about to reach the kernel: nothing is pending for their connections. */
static int take_changes(struct kqueue_loop *k) {
    int n = k->nchanges;
    for (int i = 0; i < n; i++)
        conn_of(&k->changes[i])->backend_flags &= (uint16_t)~CHANGE_QUEUED;
    k->nchanges = 0;
    return n;
}

/* A change for `c` failed with `err`. ENOENT is a deletion of a filter already gone: it is
 * gone either way. Anything else (ENOMEM: no memory for the filter) leaves a socket we
 * cannot watch, so the connection fails. */
static void change_failed(struct kqueue_loop *k, struct chopin__conn *c, intptr_t err) {
    if (err != ENOENT)
        chopin__readiness_conn_failed(&k->base, c);
}

/* The change list is full in the middle of a turn: apply it now. EV_RECEIPT makes kevent
 * report one entry per change (data 0 or an errno) and take no pending event. */
static void flush_changes(struct kqueue_loop *k) {
    struct kevent receipts[MAX_CHANGES];
    const struct timespec zero = {0, 0};
    int n = take_changes(k);
    for (int i = 0; i < n; i++)
        k->changes[i].flags |= EV_RECEIPT;
    int got = kevent(k->kq, k->changes, n, receipts, n, &zero);
    if (got < 0) { /* the whole batch was refused: none of these sockets is watched */
        intptr_t err = errno;
        chopin__worker_log(k->base.w, "kevent (changes): %s", strerror(errno));
        for (int i = 0; i < n; i++)
            change_failed(k, conn_of(&k->changes[i]), err);
        return;
    }
    for (int i = 0; i < got; i++)
        if ((receipts[i].flags & EV_ERROR) && receipts[i].data != 0)
            change_failed(k, conn_of(&receipts[i]), receipts[i].data);
}

static void queue_change(struct kqueue_loop *k, struct chopin__conn *c, int filter, unsigned flags) {
    if (k->nchanges == MAX_CHANGES)
        flush_changes(k);
    EV_SET(&k->changes[k->nchanges++], (uintptr_t)c->fd, filter, flags, 0, 0, (void *)c);
    c->backend_flags |= CHANGE_QUEUED;
}

/* A closing connection's queued changes must not reach the kernel: its descriptor number
 * may belong to a new socket by then, and its slot to a new connection. */
static void drop_changes(struct kqueue_loop *k, const struct chopin__conn *c) {
    int kept = 0;
    for (int i = 0; i < k->nchanges; i++)
        if (conn_of(&k->changes[i]) != c)
            k->changes[kept++] = k->changes[i];
    k->nchanges = kept;
}

/* ----- interest ----------------------------------------------------------------------------- */

static int kqueue_watch(struct chopin__readiness_loop *l, struct chopin__conn *c) {
    struct kqueue_loop *k = kqueue_of(l);
    c->backend_ops = k->turn;
    queue_change(k, c, EVFILT_READ, EV_ADD | EV_CLEAR);
    return 0;
}

static int kqueue_watch_output(struct chopin__readiness_loop *l, struct chopin__conn *c, int on) {
    struct kqueue_loop *k = kqueue_of(l);
    if (on) {
        queue_change(k, c, EVFILT_WRITE, EV_ADD | EV_CLEAR);
    } else {
        /* The deletion reaches the kernel before the next batch is collected: a write
         * event in any later batch means the filter survived (check_write). */
        c->backend_ops = k->turn;
        queue_change(k, c, EVFILT_WRITE, EV_DELETE);
    }
#ifdef CHOPIN_KQUEUE_CHECK
    *(on ? &k->out_added : &k->out_deleted) += 1;
#endif
    return 0;
}

#ifdef DELETE_BEFORE_CLOSE
static void delete_filters(struct kqueue_loop *k, int fd, int nfilters) {
    static const int filters[] = {EVFILT_READ, EVFILT_WRITE};
    struct kevent del[2], receipts[2];
    const struct timespec zero = {0, 0};
    for (int i = 0; i < nfilters; i++)
        EV_SET(&del[i], (uintptr_t)fd, filters[i], EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    /* Receipts, not errors: a filter that was only queued is not there to delete. */
    (void)kevent(k->kq, del, nfilters, receipts, nfilters, &zero);
}

static void kqueue_forget_listener(struct chopin__readiness_loop *l, int fd) {
    delete_filters(kqueue_of(l), fd, 1);
}
#endif

static void kqueue_forget(struct chopin__readiness_loop *l, struct chopin__conn *c) {
    struct kqueue_loop *k = kqueue_of(l);
    if (c->backend_flags & CHANGE_QUEUED)
        drop_changes(k, c);
#ifdef CHOPIN_KQUEUE_CHECK
    k->out_closed += (c->backend_flags & CHOPIN__OUT_ARMED) != 0;
#endif
#ifdef DELETE_BEFORE_CLOSE
    delete_filters(k, c->fd, 2);
#endif
    /* On native kqueue, close() removes the descriptor's filters. */
}

/* Each filter wanted is added (again: the tag names the new watch), each dropped deleted. */
static int kqueue_watch_app(struct chopin__readiness_loop *l, int fd, unsigned events,
                            unsigned old_events, uint64_t tag) {
    static const struct {
        unsigned event;
        int filter;
    } filters[] = {{CHOPIN_READABLE, EVFILT_READ}, {CHOPIN_WRITABLE, EVFILT_WRITE}};
    struct kevent ch[2], receipts[2];
    int n = 0;
    for (int i = 0; i < 2; i++) {
        if (events & filters[i].event)
            EV_SET(&ch[n++], (uintptr_t)fd, filters[i].filter, EV_ADD | EV_RECEIPT, 0, 0,
                   (void *)(uintptr_t)tag);
        else if (old_events & filters[i].event)
            EV_SET(&ch[n++], (uintptr_t)fd, filters[i].filter, EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    }
    const struct timespec zero = {0, 0};
    int got = kevent(kqueue_of(l)->kq, ch, n, receipts, n, &zero);
    if (got < 0)
        return -errno;
    for (int i = 0; i < got; i++)
        if ((receipts[i].flags & EV_ERROR) && receipts[i].data != 0 && receipts[i].data != ENOENT)
            return -(int)receipts[i].data;
    return 0;
}

/* ----- the wait ----------------------------------------------------------------------------- */

/* A write event for a connection whose write filter was deleted, with the deletion in a
 * kevent() call before the one that collected this event: the filter is still armed. */
static void check_write(const struct kqueue_loop *k, const struct chopin__conn *c) {
#ifdef CHOPIN_KQUEUE_CHECK
    if (!(c->backend_flags & CHOPIN__OUT_ARMED) && (int32_t)(k->turn - c->backend_ops) > 0) {
        chopin__worker_log(k->base.w, "kqueue: write event on fd %d after its write filter "
                                      "was deleted (turn %u, deleted in turn %u)",
                           c->fd, k->turn, c->backend_ops);
        abort();
    }
#else
    /* Harmless in a release build: the flag only says "try to write". */
    (void)k;
    (void)c;
#endif
}

static int is_wake(const struct kevent *ev) {
#ifdef CHOPIN__WAKE_IS_KQUEUE
    if (ev->filter == EVFILT_USER)
        return 1;
#endif
    return conn_of(ev) == TAG_WAKE;
}

/* Marks the connection of one event ready as it says and reports it; the listener and the
 * wake only set their flag. Read and write filters report separately, so a connection may
 * be reported twice. */
static int take_event(struct kqueue_loop *k, const struct kevent *ev, int fired) {
    struct chopin__readiness_loop *l = &k->base;
    if (is_wake(ev)) {
        l->woken = 1;
        return fired;
    }
    if (chopin__readiness_is_listener((uintptr_t)ev->udata)) {
        chopin__readiness_listener_event(l, (uintptr_t)ev->udata);
        return fired;
    }
    if (chopin__readiness_is_app((uintptr_t)ev->udata)) {
        unsigned ready = ev->filter == EVFILT_READ ? CHOPIN_READABLE : CHOPIN_WRITABLE;
        if (ev->flags & (EV_EOF | EV_ERROR))
            ready |= CHOPIN__WATCH_ERR;
        chopin__readiness_app_event(l, (uintptr_t)ev->udata, ready);
        return fired;
    }
    struct chopin__conn *c = conn_of(ev);
    if (ev->flags & EV_ERROR) { /* a change of this turn was refused */
        change_failed(k, c, ev->data);
        return fired;
    }
    if (ev->filter == EVFILT_READ) {
        c->backend_flags |= CHOPIN__READABLE; /* EV_EOF too: read() then returns 0 */
        if (ev->flags & EV_EOF)
            c->backend_flags |= CHOPIN__HUNG_UP;
    } else if (ev->filter == EVFILT_WRITE) {
        check_write(k, c);
        c->backend_flags |= CHOPIN__WRITABLE; /* EV_EOF too: the send reports the error */
    }
    l->fired[fired] = c;
    return fired + 1;
}

/* One kevent() per turn: the queued changes go in, the ready events come out. Changes are
 * applied before the wait, so EINTR loses none of them. */
static int kqueue_wait(struct chopin__readiness_loop *l, int timeout_ms) {
    struct kqueue_loop *k = kqueue_of(l);
    struct timespec ts = {.tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1000000L};
    int n = take_changes(k);
    int got = kevent(k->kq, k->changes, n, k->events, CHOPIN__LOOP_EVENTS,
                     timeout_ms < 0 ? NULL : &ts);
    if (got < 0 && errno != EINTR)
        return -errno;
    k->turn++; /* the changes reached the kernel, EINTR or not */
    int fired = 0;
    for (int i = 0; i < got; i++)
        fired = take_event(k, &k->events[i], fired);
    return fired;
}

static const struct chopin__poller kqueue_poller = {
    .wait_name = "kevent",
    .wait = kqueue_wait,
    .watch = kqueue_watch,
    .watch_output = kqueue_watch_output,
    .forget = kqueue_forget,
    .watch_app = kqueue_watch_app,
#ifdef DELETE_BEFORE_CLOSE
    .forget_listener = kqueue_forget_listener,
#endif
};

/* ----- the loop's kqueue ---------------------------------------------------------------------- */

static int register_fd(int kq, int fd, unsigned flags, void *tag) {
    struct kevent ev;
    EV_SET(&ev, (uintptr_t)fd, EVFILT_READ, EV_ADD | flags, 0, 0, tag);
    return kevent(kq, &ev, 1, NULL, 0, NULL) < 0 ? -errno : 0;
}

/* Opens the loop's kqueue and watches the listeners (EV_CLEAR: accept until EAGAIN, as
 * with epoll's edge) and, on Linux, the wake eventfd (level: chopin__worker_woken reads
 * it). */
static int loop_open(struct kqueue_loop *k) {
    struct chopin__worker *w = k->base.w;
#ifdef CHOPIN__WAKE_IS_KQUEUE
    k->kq = w->wake_fd;
    k->own_kq = 0;
#else
    k->kq = kqueue();
    if (k->kq < 0)
        return -errno;
    k->own_kq = 1;
    (void)fcntl(k->kq, F_SETFD, FD_CLOEXEC);
    int rc = register_fd(k->kq, w->wake_fd, 0, TAG_WAKE);
    if (rc < 0) {
        close(k->kq);
        return rc;
    }
#endif
    int err = 0;
    for (int i = 0; err == 0 && i < w->nlisten; i++)
        err = register_fd(k->kq, w->listen[i].fd, EV_CLEAR,
                          (void *)(uintptr_t)chopin__readiness_listener_tag(i));
    if (err < 0 && k->own_kq)
        close(k->kq);
    return err;
}

static void loop_close(struct kqueue_loop *k) {
#ifdef CHOPIN_KQUEUE_CHECK
    chopin__worker_log(k->base.w, "kqueue: write filter added %llu, deleted %llu, gone with "
                                  "its socket %llu",
                       (unsigned long long)k->out_added, (unsigned long long)k->out_deleted,
                       (unsigned long long)k->out_closed);
#endif
    if (k->own_kq)
        close(k->kq);
}

static int kqueue_run(struct chopin__worker *w) {
    struct kqueue_loop k = {.base = {.poller = &kqueue_poller, .w = w}};
    int rc = loop_open(&k);
    if (rc < 0)
        return rc;
    rc = chopin__readiness_run(&k.base);
    loop_close(&k);
    return rc;
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
