/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend: a ring per worker, completion-driven.
 *
 *   - accept: one multishot accept on each of the worker's listeners (single-shot where
 *     the kernel lacks it); sockets wait in a small queue while the slab is full, and the
 *     accepts are cancelled until a slot frees, so the rest wait in the kernel's backlog as
 *     with epoll. A Unix listener's socket is shared by the workers (each has a duplicate
 *     descriptor): each ring's accept waits on it, and the kernel gives a connection to one;
 *   - input: a multishot receive per connection into a ring of provided buffers (group 0),
 *     so an idle connection holds no buffer (uring_conn.c; the buffers: uring_ring.c);
 *   - output: one send / sendmsg of the output plan in flight per connection; files by
 *     sendfile with a POLLOUT wait (uring_conn.c);
 *   - the wake eventfd: a poll operation; the timer tick: the wait's timeout
 *     (IORING_ENTER_EXT_ARG), so an idle worker still runs its timers and drains (U7);
 *   - one io_uring_submit_and_wait_timeout per loop turn, completions drained in batches.
 *
 * Setup flags, best first: SINGLE_ISSUER|DEFER_TASKRUN (6.1: completions run only when
 * the worker waits, in its own thread, no interrupts), else COOP_TASKRUN (5.19). SQPOLL
 * (CHOPIN_SQPOLL=1) cannot combine with either (EINVAL): the SQ thread runs that work.
 */
#ifdef CHOPIN_HAVE_URING

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/uring_loop.h"
#include "config.h"
#include "conn.h"
#include "platform.h"
#include "worker.h"

/* CQ entries per SQ entry: multishot operations post many completions per submission. */
#define CQ_FACTOR 4
/* At exit, how long to wait for cancelled operations to complete. */
#define EXIT_WAIT_MS 2000
/* Completions handled before the CQ head is advanced, so the kernel can post more. */
#define CQE_BATCH 256
/* Sends queued while handling completions before they are submitted. A send holds its
 * connection's output buffer (a 16 KiB pool buffer) until its completion is handled, and
 * completions are handled in order: a burst of a thousand requests would hold a thousand
 * buffers before the first send completion is reached (16 MiB, kept by the pool and malloc
 * afterwards). So every SEND_CHUNK sends are submitted at once (a send to a socket with
 * room completes inline and posts its completion there and then), and further receive
 * completions wait in a backlog until those send completions were handled. */
#define SEND_CHUNK 64

/* ----- features, probed once -------------------------------------------------------- */

struct features {
    int err; /* 0, or why io_uring cannot serve here */
    int multishot_recv, multishot_accept, cqe_skip;
};

static struct features features;
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

static const unsigned taskrun_modes[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
    IORING_SETUP_COOP_TASKRUN,
    0,
};
static const unsigned sqpoll_modes[] = {
    IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER,
    IORING_SETUP_SQPOLL,
};

/* Creates a ring with the best flags this kernel accepts. SUBMIT_ALL (5.18) keeps
 * submitting a batch past an SQE that fails early; CLAMP caps oversized rings. */
static int ring_setup(struct io_uring *ring, unsigned entries, int sqpoll, unsigned idle_ms,
                      unsigned *flags, unsigned *feats) {
    const unsigned *modes = sqpoll ? sqpoll_modes : taskrun_modes;
    size_t nmodes = sqpoll ? sizeof sqpoll_modes / sizeof *modes
                           : sizeof taskrun_modes / sizeof *modes;
    int rc = -EINVAL;
    for (size_t i = 0; i < nmodes; i++) {
        for (int submit_all = 1; submit_all >= 0; submit_all--) {
            struct io_uring_params p;
            memset(&p, 0, sizeof p);
            p.flags = modes[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP |
                      (submit_all ? IORING_SETUP_SUBMIT_ALL : 0);
            p.cq_entries = entries * CQ_FACTOR;
            p.sq_thread_idle = idle_ms;
            rc = io_uring_queue_init_params(entries, ring, &p);
            if (rc == 0) {
                *flags = p.flags;
                *feats = p.features;
                return 0;
            }
            if (rc != -EINVAL)
                return rc; /* EPERM (sysctl, seccomp), ENOSYS, ENOMEM: no point trying less */
        }
    }
    return rc;
}

static int sysctl_disabled(void) {
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    int v = 0;
    if (!f)
        return 0; /* before 6.6 there is no such switch */
    if (fscanf(f, "%d", &v) != 1)
        v = 0;
    fclose(f);
    return v == 2; /* 1 restricts to a group: the ring setup tells (EPERM) */
}

static int opcodes_present(struct io_uring *ring) {
    static const int needed[] = {IORING_OP_ACCEPT, IORING_OP_RECV, IORING_OP_SEND,
                                 IORING_OP_SENDMSG, IORING_OP_POLL_ADD,
                                 IORING_OP_ASYNC_CANCEL, IORING_OP_CLOSE, IORING_OP_NOP};
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    if (!probe)
        return 0;
    int ok = 1;
    for (size_t i = 0; i < sizeof needed / sizeof *needed; i++)
        ok &= io_uring_opcode_supported(probe, needed[i]) != 0;
    io_uring_free_probe(probe);
    return ok;
}

/* Waits (bounded) for the completion with user_data `ud`, skipping others. Returns its
 * res and flags, or -ETIME. */
static int probe_wait(struct io_uring *ring, uint64_t ud, unsigned *flags) {
    for (int i = 0; i < 16; i++) {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        if (io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL) < 0)
            continue;
        uint64_t got = cqe->user_data;
        int res = cqe->res;
        *flags = cqe->flags;
        io_uring_cqe_seen(ring, cqe);
        if (got == ud)
            return res;
    }
    return -ETIME;
}

static void probe_cancel(struct io_uring *ring, uint64_t ud) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe)
        return;
    io_uring_prep_cancel64(sqe, ud, 0);
    io_uring_sqe_set_data64(sqe, chopin__udata_make(CHOPIN__UOP_CANCEL, 0, 0));
}

/* Multishot receive (6.0): receives one byte into a provided buffer and expects the
 * operation to stay armed (IORING_CQE_F_MORE). An older kernel fails it with EINVAL. */
static int try_multishot_recv(struct io_uring *ring, int bgid) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    uint64_t ud = chopin__udata_make(CHOPIN__UOP_PROBE, 1, 0);
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = (uint16_t)bgid;
    io_uring_sqe_set_data64(sqe, ud);
    unsigned flags = 0;
    int ok = write(sv[1], "x", 1) == 1 && probe_wait(ring, ud, &flags) == 1 &&
             (flags & IORING_CQE_F_MORE);
    if (flags & IORING_CQE_F_MORE) {
        probe_cancel(ring, ud);
        probe_wait(ring, ud, &flags);
    }
    close(sv[0]);
    close(sv[1]);
    return ok;
}

/* Multishot accept (5.19): armed on a listening socket, then cancelled: ECANCELED means
 * the kernel took it, EINVAL that it does not know the flag. */
static int try_multishot_accept(struct io_uring *ring) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (fd < 0)
        return 0;
    /* An address length of just the family autobinds an abstract name. */
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sa_family_t)) < 0 || listen(fd, 1) < 0) {
        close(fd);
        return 0;
    }
    uint64_t ud = chopin__udata_make(CHOPIN__UOP_PROBE, 2, 0);
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud);
    io_uring_submit(ring);
    probe_cancel(ring, ud);
    unsigned flags;
    int res = probe_wait(ring, ud, &flags);
    close(fd);
    return res == -ECANCELED;
}

/* Provided-buffer rings (5.19) are required: without them every idle connection would
 * pin a receive buffer. Registers a small ring as group `bgid` with one buffer. */
static int try_buf_ring(struct io_uring *ring, int bgid, void *mem, char *buf) {
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uintptr_t)mem;
    reg.ring_entries = 8;
    reg.bgid = (uint16_t)bgid;
    if (io_uring_register_buf_ring(ring, &reg, 0) < 0)
        return 0;
    struct io_uring_buf_ring *br = mem;
    io_uring_buf_ring_init(br);
    io_uring_buf_ring_add(br, buf, 64, 0, io_uring_buf_ring_mask(8), 0);
    io_uring_buf_ring_advance(br, 1);
    return 1;
}

static int check_kernel(struct io_uring *ring, unsigned feats) {
    /* Without FAST_POLL (5.7) socket operations go to worker threads: slower than epoll. */
    if (!(feats & IORING_FEAT_FAST_POLL) || !(feats & IORING_FEAT_NODROP) ||
        !opcodes_present(ring))
        return -EOPNOTSUPP;
    long page = sysconf(_SC_PAGESIZE);
    void *mem = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (mem == MAP_FAILED)
        return -ENOMEM;
    static char buf[64];
    int rc = -EOPNOTSUPP;
    if (try_buf_ring(ring, 7, mem, buf)) {
        rc = 0;
        features.multishot_recv = try_multishot_recv(ring, 7);
        features.multishot_accept = try_multishot_accept(ring);
        features.cqe_skip = (feats & IORING_FEAT_CQE_SKIP) != 0;
        io_uring_unregister_buf_ring(ring, 7);
    }
    munmap(mem, (size_t)page);
    return rc;
}

static void detect_features(void) {
    if (sysctl_disabled()) {
        features.err = -EPERM;
        return;
    }
    struct io_uring ring;
    unsigned flags = 0, feats = 0;
    int rc = ring_setup(&ring, 8, 0, 0, &flags, &feats);
    if (rc < 0) {
        features.err = rc;
        return;
    }
    features.err = check_kernel(&ring, feats);
    io_uring_queue_exit(&ring);
    /* A test switch: run the single-shot fallbacks on a kernel that has multishot. */
    const char *single = getenv("CHOPIN_URING_SINGLESHOT");
    if (single && strcmp(single, "1") == 0)
        features.multishot_recv = features.multishot_accept = 0;
}

static int probe_sqpoll(const struct chopin__config *cfg) {
    /* SQPOLL starts a kernel thread: check it is allowed (it needs no privilege since 5.11). */
    struct io_uring ring;
    unsigned flags = 0, feats = 0;
    int rc = ring_setup(&ring, 8, 1, cfg->opt.sqpoll_idle_ms, &flags, &feats);
    if (rc == 0)
        io_uring_queue_exit(&ring);
    return rc;
}

struct probe_job {
    const struct chopin__config *cfg;
    int rc;
};

static void *probe_thread(void *arg) {
    struct probe_job *job = arg;
    pthread_once(&features_once, detect_features);
    job->rc = features.err;
    if (job->rc == 0 && job->cfg->opt.sqpoll)
        job->rc = probe_sqpoll(job->cfg);
    return NULL;
}

/* Probes on a thread of its own: tearing a ring down can leave task work for the thread
 * that owned it (with SQPOLL, a notification that interrupts the owner's next blocking
 * call with a timeout, such as recv under SO_RCVTIMEO, with EINTR). The caller is the
 * application's thread: it must not get any of that. */
static int uring_probe(const struct chopin__config *cfg) {
    struct probe_job job = {.cfg = cfg};
    pthread_t t;
    if (pthread_create(&t, NULL, probe_thread, &job) != 0) {
        probe_thread(&job);
        return job.rc;
    }
    pthread_join(t, NULL);
    return job.rc;
}

/* ----- accept --------------------------------------------------------------------------- */

static int pending_push(struct chopin__uring *l, int fd, uint8_t listen_flags) {
    if (l->npending == l->pending_cap) {
        unsigned cap = l->pending_cap ? l->pending_cap * 2 : 16;
        struct chopin__uring_pending *p = realloc(l->pending, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        l->pending = p;
        l->pending_cap = cap;
    }
    l->pending[l->npending++] = (struct chopin__uring_pending){fd, listen_flags};
    return 0;
}

static struct chopin__uring_pending pending_pop(struct chopin__uring *l) {
    struct chopin__uring_pending p = l->pending[0];
    memmove(l->pending, l->pending + 1, --l->npending * sizeof *l->pending);
    return p;
}

static void pending_close_all(struct chopin__uring *l) {
    while (l->npending)
        close(l->pending[--l->npending].fd);
}

/* The accept of listener `i`: its user_data names the listener in the slot field. */
static uint64_t accept_udata(int i) { return chopin__udata_make(CHOPIN__UOP_ACCEPT, (uint32_t)i, 0); }

static void arm_accept(struct chopin__uring *l, int i) {
    struct io_uring_sqe *sqe = chopin__uring_sqe(l);
    if (!sqe)
        return; /* tried again next turn */
    /* Accepted sockets are non-blocking: files are sent with a synchronous sendfile. */
    int flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    if (l->multishot_accept)
        io_uring_prep_multishot_accept(sqe, l->w->listen[i].fd, NULL, NULL, flags);
    else
        io_uring_prep_accept(sqe, l->w->listen[i].fd, NULL, NULL, flags);
    io_uring_sqe_set_data64(sqe, accept_udata(i));
    l->accept_armed |= 1u << i;
}

static void cancel_accept(struct chopin__uring *l, int i) {
    struct io_uring_sqe *sqe = chopin__uring_sqe(l);
    if (!sqe)
        return;
    io_uring_prep_cancel64(sqe, accept_udata(i), 0);
    io_uring_sqe_set_data64(sqe, chopin__udata_make(CHOPIN__UOP_CANCEL, 0, 0));
    l->accept_cancelled |= 1u << i;
}

/* Cancels every accept armed and not cancelled yet. */
static void cancel_accepts(struct chopin__uring *l) {
    for (int i = 0; i < l->w->nlisten; i++)
        if ((l->accept_armed & ~l->accept_cancelled) & (1u << i))
            cancel_accept(l, i);
}

/* Keeps each listener's accept armed exactly while new connections can be taken. */
static void sync_accept(struct chopin__uring *l) {
    struct chopin__worker *w = l->w;
    int want = w->accept_state == CHOPIN__ACCEPT_ON && !l->npending && !l->accept_broken &&
               !l->accept_after_closes;
    for (int i = 0; i < w->nlisten; i++) {
        uint32_t bit = 1u << i;
        if (want && w->listen[i].fd >= 0 && !(l->accept_armed & bit))
            arm_accept(l, i);
        else if (!want && (l->accept_armed & bit) && !(l->accept_cancelled & bit))
            cancel_accept(l, i);
    }
}

/* Whether the oldest idle connection, the one an eviction closes, may be closed now: not
 * when its last receive found no provided buffer (ENOBUFS). Then its next request waits
 * unread in the socket until the receive, re-armed, gets a buffer: it only looks idle.
 * No idle connection at all also counts as evictable: the eviction then finds none. */
static int idle_evictable(const struct chopin__uring *l) {
    const struct chopin__conn *c = l->w->engine.idle_head;
    return !c || !chopin__uring_conn_unread(c);
}

/* Whether a queued socket may be handed to the engine now. Draining, the sockets queued
 * were accepted before the listener closed: they are served (answered, then closed) as
 * slots free, never for an eviction. */
static int may_take(struct chopin__uring *l) {
    struct chopin__worker *w = l->w;
    if (w->draining)
        return w->engine.slab.used < w->engine.slab.capacity;
    return chopin__worker_may_accept(w);
}

/* Hands queued sockets to the engine while slots are free. With the slab full, each
 * queued socket gets an idle connection evicted for it; an eviction frees its slot only
 * once its operations completed (completions later), so the socket waits for it, and
 * closes already under way (evictions or not: each frees a slot) count against the
 * sockets waiting: never more evictions than sockets. */
static void take_pending(struct chopin__uring *l) {
    struct chopin__worker *w = l->w;
    struct chopin__engine *e = &w->engine;
    while (l->npending && may_take(l)) {
        if (e->slab.used >= e->slab.capacity) {
            /* A connection started this turn has not received its first bytes yet, so it
             * looks idle; epoll would have read them already. Let it, before evicting. */
            if (l->closing >= l->npending || l->started || !idle_evictable(l))
                break;
            chopin__engine_evict_idle(e); /* may_accept saw one; closing grows, or a slot frees */
            continue;
        }
        struct chopin__uring_pending p = pending_pop(l);
        struct chopin__conn *c = chopin__engine_conn_accepted(e, p.fd, p.listen_flags);
        if (!c) {
            close(p.fd); /* unreachable: a slot is free */
            continue;
        }
        l->started++;
        chopin__uring_conn_start(l, c);
    }
}

/* Draining: a connection the kernel accepted before the listener closes is in flight (its
 * client has sent its request and waits), and closing the listener would reset it. So
 * the backlog joins the queue first (take_pending serves it as slots free). */
static void accept_backlog(struct chopin__uring *l) {
    struct chopin__worker *w = l->w;
    for (int i = 0; i < w->nlisten; i++) {
        while (w->listen[i].fd >= 0) {
            int fd = chopin__accept(w->listen[i].fd);
            if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
                continue;
            if (fd < 0)
                break;
            if (pending_push(l, fd, w->listen[i].flags) < 0) {
                close(fd);
                return;
            }
        }
    }
}

static void stop_accepting(struct chopin__uring *l) {
    struct chopin__worker *w = l->w;
    cancel_accepts(l);
    for (int i = 0; i < w->nlisten; i++) {
        if (w->listen[i].fd >= 0) {
            /* The accept operation holds its own reference until its cancel completes. */
            close(w->listen[i].fd);
            w->listen[i].fd = -1;
        }
    }
}

static void accept_error(struct chopin__uring *l, int err) {
    switch (err) {
    case ECANCELED:
        return;
    case EINVAL:
    case EBADF:
    case ENOTSOCK:
    case EOPNOTSUPP:
        if (l->multishot_accept) {
            l->multishot_accept = 0; /* a kernel that refuses the flag after all */
            return;
        }
        if (!l->accept_broken)
            chopin__worker_log(l->w, "io_uring accept: %s; not accepting", strerror(err));
        l->accept_broken = 1;
        return;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        l->accept_err = err; /* out_of_resources, once every completion of the turn was handled */
        return;
    default:
        chopin__worker_accept_failed(l->w, err);
    }
}

static void on_accept(struct chopin__uring *l, const struct io_uring_cqe *cqe) {
    uint32_t i = chopin__udata_slot(cqe->user_data);
    if (i >= (uint32_t)l->w->nlisten) {
        if (cqe->res >= 0)
            close(cqe->res); /* unreachable: no accept names another listener */
        return;
    }
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        l->accept_armed &= ~(1u << i);
        l->accept_cancelled &= ~(1u << i);
    }
    if (cqe->res < 0) {
        accept_error(l, -cqe->res);
        return;
    }
    /* A socket the kernel accepted after we stopped wanting any: keep it for later (when
     * draining too: it was accepted before the listener closed, and is served). */
    if (l->exiting || pending_push(l, cqe->res, l->w->listen[i].flags) < 0)
        close(cqe->res);
}

/* The accept ran out of descriptors or memory. An eviction (as epoll does) frees them only
 * once its close completed, asynchronous here: until a close has, the accept would fail
 * again at once and evict a second idle connection for the same waiting socket. And the
 * oldest idle connection may have a request waiting unread (idle_evictable): then
 * nothing is evicted, the accept backs off as when nothing is idle. */
static void out_of_resources(struct chopin__uring *l) {
    struct chopin__worker *w = l->w;
    int err = l->accept_err;
    l->accept_err = 0;
    if (w->accept_state != CHOPIN__ACCEPT_ON)
        return;
    if (l->closing || l->closes || !idle_evictable(l)) {
        chopin__count(&w->engine.counters.accept_errors, 1);
        if (l->closing || l->closes)
            l->accept_after_closes = 1; /* cleared by the next close (chopin__uring_fd_closed) */
        else
            chopin__worker_accept_backoff(w);
        return;
    }
    chopin__worker_accept_failed(w, err); /* evicts for a waiting client, or backs off */
    if (w->accept_state == CHOPIN__ACCEPT_ON && (l->closing || l->closes))
        l->accept_after_closes = 1;
}

static void accept_turn(struct chopin__uring *l) {
    l->started = 0;
    if (l->accept_err)
        out_of_resources(l);
    chopin__worker_accept_due(l->w); /* FULL or BACKOFF back to ON when due */
    if (l->w->accept_state == CHOPIN__ACCEPT_ON || l->w->draining)
        take_pending(l);
    sync_accept(l);
}

/* ----- wake ------------------------------------------------------------------------------ */

static void arm_wake(struct chopin__uring *l) {
    struct io_uring_sqe *sqe = chopin__uring_sqe(l);
    if (!sqe)
        return;
    /* A poll rather than a read: the eventfd is non-blocking, and chopin__worker_woken
     * reads it. One-shot: armed again each turn it fired (uring_run). */
    io_uring_prep_poll_add(sqe, l->w->wake_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, chopin__udata_make(CHOPIN__UOP_WAKE, 0, 0));
    l->wake_armed = 1;
}

static void on_wake(struct chopin__uring *l, const struct io_uring_cqe *cqe) {
    l->wake_armed = 0;
    if (cqe->res < 0 || l->exiting)
        return; /* cancelled at exit */
    if (chopin__worker_woken(l->w)) { /* a stop, not only a post */
        accept_backlog(l);
        stop_accepting(l);
    }
}

/* ----- the loop -------------------------------------------------------------------------- */

static void dispatch(struct chopin__uring *l, const struct io_uring_cqe *cqe) {
    uint64_t ud = cqe->user_data;
    unsigned op = chopin__udata_op(ud);
    switch (op) {
    case CHOPIN__UOP_RECV:
    case CHOPIN__UOP_SEND:
    case CHOPIN__UOP_POLLOUT:
        chopin__uring_conn_cqe(l, chopin__udata_conn(&l->w->engine, ud), cqe, op);
        break;
    case CHOPIN__UOP_ACCEPT:
        on_accept(l, cqe);
        break;
    case CHOPIN__UOP_WAKE:
        on_wake(l, cqe);
        break;
    case CHOPIN__UOP_WATCH:
        chopin__uring_watch_cqe(l, cqe);
        break;
    case CHOPIN__UOP_CLOSE:
        l->closes--;
        chopin__uring_fd_closed(l);
        break;
    default:
        break; /* cancels, liburing's own timeout: nothing to do */
    }
}

static int backlogged(const struct chopin__uring *l) { return l->bl_head != l->bl_tail; }

/* Moves a receive completion to the backlog (FIFO, so a connection's receives keep their
 * order). Returns -ENOMEM when the backlog cannot grow. */
static int defer_cqe(struct chopin__uring *l, const struct io_uring_cqe *cqe) {
    if (l->bl_tail == l->bl_cap) {
        unsigned cap = l->bl_cap ? l->bl_cap * 2 : 256;
        struct io_uring_cqe *b = realloc(l->backlog, cap * sizeof *b);
        if (!b)
            return -ENOMEM;
        l->backlog = b;
        l->bl_cap = cap;
    }
    l->backlog[l->bl_tail++] = *cqe;
    return 0;
}

/* Submits the sends queued so far; receive completions wait until theirs were handled. */
static void after_dispatch(struct chopin__uring *l) {
    if (l->chunk_sends < SEND_CHUNK)
        return;
    chopin__uring_buffers_publish(l);
    io_uring_submit(&l->ring);
    l->chunk_sends = 0;
    l->defer_recv = 1;
}

static void drain_backlog(struct chopin__uring *l) {
    while (backlogged(l) && !l->defer_recv) {
        struct io_uring_cqe cqe = l->backlog[l->bl_head++];
        if (l->bl_head == l->bl_tail)
            l->bl_head = l->bl_tail = 0;
        dispatch(l, &cqe);
        after_dispatch(l);
    }
}

static void handle(struct chopin__uring *l, const struct io_uring_cqe *cqe) {
    if (chopin__udata_op(cqe->user_data) == CHOPIN__UOP_RECV &&
        (l->defer_recv || backlogged(l))) {
        if (defer_cqe(l, cqe) == 0)
            return;
        l->defer_recv = 0; /* out of memory: keep the order, give up the bound */
        drain_backlog(l);
    }
    dispatch(l, cqe);
    after_dispatch(l);
}

/* Handles the completions visible now, advancing the CQ head every CQE_BATCH. */
static void reap_visible(struct chopin__uring *l) {
    for (;;) {
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&l->ring, head, cqe) {
            handle(l, cqe);
            if (++n == CQE_BATCH)
                break;
        }
        if (!n)
            break;
        io_uring_cq_advance(&l->ring, n);
    }
}

/* Handles every completion available, and the backlog: each pass handles the send
 * completions the last chunk of sends posted, then the next receives in order. */
static void reap(struct chopin__uring *l) {
    for (;;) {
        reap_visible(l);
        l->defer_recv = 0;
        if (!backlogged(l))
            break;
        drain_backlog(l);
    }
    chopin__uring_buffers_adapt(l);
    chopin__uring_buffers_publish(l);
}

/* Submits what the last turn queued and sleeps until a completion or the next timer. */
static void wait_turn(struct chopin__uring *l, int timeout_ms) {
    struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                   .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
    struct io_uring_cqe *cqe;
    chopin__uring_buffers_publish(l);
    l->chunk_sends = 0;
    int rc = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        chopin__worker_log(l->w, "io_uring_enter: %s", strerror(-rc));
}

static void on_notify(struct chopin__conn *c, void *ctx) { chopin__uring_service(ctx, c); }

static void close_one(struct chopin__worker *w, struct chopin__conn *c) {
    chopin__uring_conn_close(w->engine.notify_ctx, c);
}

static int busy(const struct chopin__uring *l) {
    return chopin__engine_conns(&l->w->engine) > 0 || l->accept_armed || l->wake_armed ||
           l->closes || l->app_polls;
}

/* Closes every connection and waits (bounded) for every operation to complete, so no
 * completion can reach memory that is about to be freed. */
static void close_everything(struct chopin__uring *l) {
    struct chopin__worker *w = l->w;
    l->exiting = 1;
    pending_close_all(l);
    stop_accepting(l);
    chopin__worker_close_all(w, close_one);
    chopin__uring_watch_cancel_all(l);
    if (l->wake_armed) {
        struct io_uring_sqe *sqe = chopin__uring_sqe(l);
        if (sqe) {
            io_uring_prep_cancel64(sqe, chopin__udata_make(CHOPIN__UOP_WAKE, 0, 0), 0);
            io_uring_sqe_set_data64(sqe, chopin__udata_make(CHOPIN__UOP_CANCEL, 0, 0));
        }
    }
    uint64_t deadline = chopin__clock_ms() + EXIT_WAIT_MS;
    while (busy(l) && chopin__clock_ms() < deadline) {
        wait_turn(l, 10);
        reap(l);
        chopin__uring_run_retries(l);
        cancel_accepts(l);
    }
    if (busy(l))
        chopin__worker_log(w, "io_uring: %u connections still had operations in flight at exit",
                           chopin__engine_conns(&w->engine));
}

/* Connections whose operations never completed (only if close_everything gave up): the
 * ring is gone, so nothing refers to them any more. */
static void free_leftovers(struct chopin__worker *w) {
    struct chopin__slab *s = &w->engine.slab;
    for (uint32_t i = 0; i < s->never_used; i++) {
        struct chopin__conn *c = chopin__slab_at(s, i);
        if (c->live) {
            close(c->fd);
            chopin__engine_conn_free(&w->engine, c);
        }
    }
}

/* A registered file table with an entry per slot (5.19 sparse registration): sends and
 * receives then name the socket by slot and skip a file lookup and two atomic reference
 * count updates each (about 2 % of the CPU per request, measured with perf). The kernel
 * caps the table at RLIMIT_NOFILE; slots beyond it use plain descriptors. */
static void files_init(struct chopin__uring *l, uint32_t capacity) {
    struct rlimit rl;
    unsigned n = capacity;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n)
        n = (unsigned)rl.rlim_cur;
    if (n && io_uring_register_files_sparse(&l->ring, n) == 0)
        l->fixed_files = n;
}

static void loop_free(struct chopin__uring *l) {
    l->buf_resident = 0; /* the mappings go: this worker holds none any more */
    chopin__uring_buffers_report(l);
    chopin__uring_buffers_free(l);
    chopin__uring_sendctx_free_all(l);
    free(l->sendctx);
    free(l->retry);
    free(l->pending);
    free(l->backlog);
    free(l);
}

static int loop_init(struct chopin__uring *l, struct chopin__worker *w) {
    const chopin_options *o = &w->engine.cfg->opt;
    uint32_t capacity = w->engine.slab.capacity;
    l->w = w;
    l->multishot_recv = features.multishot_recv;
    l->multishot_accept = features.multishot_accept;
    l->cqe_skip = features.cqe_skip;
    if (capacity > CHOPIN__UDATA_MAX_SLOTS)
        return -E2BIG; /* user_data has 24 bits of slot */
    l->sendctx = calloc(capacity, sizeof *l->sendctx);
    l->retry = calloc(capacity, sizeof *l->retry);
    l->retry_cap = capacity;
    if (!l->sendctx || !l->retry)
        return -ENOMEM;
    unsigned feats = 0;
    int rc = ring_setup(&l->ring, o->ring_entries, o->sqpoll, o->sqpoll_idle_ms,
                        &l->setup_flags, &feats);
    if (rc < 0)
        return rc;
    l->sqpoll = (l->setup_flags & IORING_SETUP_SQPOLL) != 0;
    /* 5.18: io_uring_enter skips the fd lookup. Best effort. */
    io_uring_register_ring_fd(&l->ring);
    files_init(l, capacity);
    rc = chopin__uring_buffers_init(l);
    if (rc < 0)
        io_uring_queue_exit(&l->ring);
    return rc;
}

static int uring_run(struct chopin__worker *w) {
    pthread_once(&features_once, detect_features);
    if (features.err)
        return features.err;
    struct chopin__uring *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    int rc = loop_init(l, w);
    if (rc < 0) {
        loop_free(l);
        return rc; /* the worker falls back to epoll and says so */
    }
    w->engine.notify = on_notify;
    w->engine.notify_ctx = l;
    chopin__loop_attach(&w->engine, chopin__uring_watch, l);
    chopin__worker_clock(w);
    arm_wake(l);
    sync_accept(l);
    do {
        /* Connections waiting for an SQE are retried right after this submit. */
        wait_turn(l, l->nretry ? 0 : chopin__worker_timeout(w));
        chopin__worker_clock(w);
        reap(l);
        accept_turn(l);
        chopin__uring_run_retries(l);
        chopin__uring_watch_retries(l);
        if (!l->wake_armed)
            arm_wake(l);
    } while (!chopin__worker_turn(w));
    close_everything(l);
    io_uring_queue_exit(&l->ring);
    free_leftovers(w);
    w->engine.notify = NULL;
    w->engine.notify_ctx = NULL;
    chopin__loop_attach(&w->engine, NULL, NULL);
    loop_free(l);
    return 0;
}

const struct chopin__backend chopin__uring_backend = {
    .name = "io_uring",
    .probe = uring_probe,
    .run = uring_run,
};

#endif
