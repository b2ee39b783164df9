/* SPDX-License-Identifier: MIT */
/*
 * The epoll poller for the readiness loop (readiness.h): edge-triggered. A connection is
 * registered once for EPOLLIN|EPOLLRDHUP; EPOLLOUT is added only while output waits for
 * the socket to drain, and removed once it did, so an idle connection's ACKs never wake
 * the loop. The listeners are edge-triggered too (accept until EAGAIN); the wake eventfd is
 * level-triggered (chopin__worker_woken reads it empty), and so are the application's
 * descriptors (chopin_worker_watch promises level-triggered readiness).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/readiness.h"
#include "chopin.h"
#include "conn.h"
#include "worker.h"

/* epoll_event.data.u64 of the wake descriptor; listeners have theirs
 * (chopin__readiness_listener_tag), connections the pointer to their slot, which is never
 * this small. */
#define TAG_WAKE 2u

#define CONN_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)

struct epoll_loop {
    struct chopin__readiness_loop base;
    int epfd;
    struct epoll_event events[CHOPIN__LOOP_EVENTS];
};

static struct epoll_loop *epoll_of(struct chopin__readiness_loop *l) {
    return (struct epoll_loop *)l;
}

static int interest(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data.u64 = data};
    return epoll_ctl(epfd, op, fd, &ev) < 0 ? -errno : 0;
}

static int epoll_watch(struct chopin__readiness_loop *l, struct chopin__conn *c) {
    return interest(epoll_of(l)->epfd, EPOLL_CTL_ADD, c->fd, CONN_EVENTS, (uint64_t)(uintptr_t)c);
}

static int epoll_watch_output(struct chopin__readiness_loop *l, struct chopin__conn *c, int on) {
    return interest(epoll_of(l)->epfd, EPOLL_CTL_MOD, c->fd, CONN_EVENTS | (on ? EPOLLOUT : 0),
                    (uint64_t)(uintptr_t)c);
}

static int epoll_watch_app(struct chopin__readiness_loop *l, int fd, unsigned events,
                           unsigned old_events, uint64_t tag) {
    int epfd = epoll_of(l)->epfd;
    uint32_t ev = (events & CHOPIN_READABLE ? EPOLLIN : 0) | (events & CHOPIN_WRITABLE ? EPOLLOUT : 0);
    if (!events)
        return interest(epfd, EPOLL_CTL_DEL, fd, 0, 0);
    int rc = -ENOENT;
    if (old_events)
        rc = interest(epfd, EPOLL_CTL_MOD, fd, ev, tag);
    /* ENOENT: a descriptor closed while watched left the set; this is a new one. */
    if (rc == -ENOENT)
        rc = interest(epfd, EPOLL_CTL_ADD, fd, ev, tag);
    return rc;
}

static unsigned app_ready(uint32_t e) {
    return (e & EPOLLIN ? CHOPIN_READABLE : 0) | (e & EPOLLOUT ? CHOPIN_WRITABLE : 0) |
           (e & (EPOLLERR | EPOLLHUP) ? CHOPIN__WATCH_ERR : 0);
}

/* Marks the connection of one event ready as it says and reports it; the listener and the
 * wake only set their flag, an application descriptor goes to its own list. */
static int take_event(struct chopin__readiness_loop *l, const struct epoll_event *ev, int fired) {
    if (chopin__readiness_is_listener(ev->data.u64)) {
        chopin__readiness_listener_event(l, ev->data.u64);
        return fired;
    }
    if (ev->data.u64 == TAG_WAKE) {
        l->woken = 1;
        return fired;
    }
    if (chopin__readiness_is_app(ev->data.u64)) {
        chopin__readiness_app_event(l, ev->data.u64, app_ready(ev->events));
        return fired;
    }
    struct chopin__conn *c = (struct chopin__conn *)(uintptr_t)ev->data.u64;
    uint32_t e = ev->events;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->backend_flags |= CHOPIN__READABLE;
    if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->backend_flags |= CHOPIN__HUNG_UP;
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        c->backend_flags |= CHOPIN__WRITABLE;
    l->fired[fired] = c;
    return fired + 1;
}

static int epoll_wait_events(struct chopin__readiness_loop *l, int timeout_ms) {
    struct epoll_loop *el = epoll_of(l);
    int n = epoll_wait(el->epfd, el->events, CHOPIN__LOOP_EVENTS, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    int fired = 0;
    for (int i = 0; i < n; i++)
        fired = take_event(l, &el->events[i], fired);
    return fired;
}

/* close() removes a descriptor from the epoll set only once no other descriptor refers to
 * its file: a Unix listener's socket is shared by every worker (each has a duplicate), so
 * a draining worker would still hear of its connections. */
static void epoll_forget_listener(struct chopin__readiness_loop *l, int fd) {
    (void)interest(epoll_of(l)->epfd, EPOLL_CTL_DEL, fd, 0, 0);
}

/* close() removes a connection's socket from the epoll set (its only descriptor). */
static const struct chopin__poller epoll_poller = {
    .wait_name = "epoll_wait",
    .wait = epoll_wait_events,
    .watch = epoll_watch,
    .watch_output = epoll_watch_output,
    .forget_listener = epoll_forget_listener,
    .watch_app = epoll_watch_app,
};

static int watch_listeners(int epfd, const struct chopin__worker *w) {
    int rc = 0;
    for (int i = 0; rc == 0 && i < w->nlisten; i++)
        rc = interest(epfd, EPOLL_CTL_ADD, w->listen[i].fd, EPOLLIN | EPOLLET,
                      chopin__readiness_listener_tag(i));
    return rc;
}

static int epoll_run(struct chopin__worker *w) {
    struct epoll_loop el = {.base = {.poller = &epoll_poller, .w = w}};
    el.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (el.epfd < 0)
        return -errno;
    int rc = watch_listeners(el.epfd, w);
    if (rc == 0)
        rc = interest(el.epfd, EPOLL_CTL_ADD, w->wake_fd, EPOLLIN, TAG_WAKE);
    if (rc == 0)
        rc = chopin__readiness_run(&el.base);
    close(el.epfd);
    return rc;
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
