/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend, one connection: a multishot receive into the worker's provided
 * buffers, one send of the output plan at a time, files, half-close and close.
 *
 * Invariants (the Rust engine's io_uring backend broke each of them: docs/io_uring.md §2):
 *   - every operation counted in conn->backend_ops holds the slot: the slot is freed only
 *     once all of them completed (U4), and every user_data carries the slot's generation;
 *   - at most one send is in flight, and the memory it reads (the output queue, and for
 *     sendmsg the msghdr and iovecs in a send context) stays put until its completion (U2);
 *   - a receive is armed exactly while the connection wants input, and re-armed when a
 *     multishot receive ends for any reason but EOF (ENOBUFS, CQ overflow), so no
 *     connection is ever left without I/O it needs (U1, U10); EOF is final (U6), and
 *     reaches the connection only once it wants input (a multishot receive can outrun
 *     the cancel that backpressure sent it);
 *   - a connection in the middle of a request (part of a head or body received) reads
 *     with single-shot receives: a multishot receive can miss a reset that arrives as it
 *     drains the socket, and the connection would wait for its body deadline (below);
 *   - an SQE that cannot be had now is retried next turn, never dropped.
 */
#ifdef CHOPIN_HAVE_URING

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/uring_loop.h"
#include "conn.h"
#include "worker.h"

/* conn->backend_flags */
#define F_RECV 0x01u        /* a receive is in flight */
#define F_RECV_CANCEL 0x02u /* ... and a cancel for it was submitted */
#define F_SEND 0x04u        /* a send (or a POLLOUT wait for a file) is in flight */
#define F_SEND_POLL 0x08u   /* ... it is the POLLOUT wait */
#define F_SEND_CANCEL 0x10u /* ... and a cancel for it was submitted */
#define F_CLOSING 0x20u     /* closing: waiting for the operations above to complete */
#define F_RETRY 0x40u       /* listed in l->retry */
#define F_EOF 0x80u         /* the peer's EOF arrived while the connection took no input */
#define F_FIXED 0x100u      /* the socket is in the registered file table at the slot's index */
#define F_UNREAD 0x200u     /* the last receive found no provided buffer: input waits unread */
#define F_RECV_MULTI 0x400u /* the receive in flight is multishot */
#define F_DRAINED 0x800u    /* its last bytes left the socket empty: it waits for more */

/* Largest file range for one synchronous sendfile (it stops at what the socket takes). */
#define SENDFILE_MAX (1u << 30)

struct chopin__uring_sendctx {
    struct msghdr msg;
    struct iovec iov[CHOPIN__PLAN_IOV];
    struct chopin__uring_sendctx *next_free;
};

static struct chopin__engine *engine(struct chopin__uring *l) { return &l->w->engine; }

static uint32_t slot_of(struct chopin__uring *l, const struct chopin__conn *c) {
    return chopin__slab_index(&engine(l)->slab, c);
}

/* ----- send contexts --------------------------------------------------------------- */

static struct chopin__uring_sendctx *sendctx_take(struct chopin__uring *l) {
    struct chopin__uring_sendctx *x = l->free_ctx;
    if (x) {
        l->free_ctx = x->next_free;
        return x;
    }
    return malloc(sizeof *x);
}

static void sendctx_release(struct chopin__uring *l, struct chopin__conn *c) {
    uint32_t slot = slot_of(l, c);
    struct chopin__uring_sendctx *x = l->sendctx[slot];
    if (!x)
        return;
    l->sendctx[slot] = NULL;
    x->next_free = l->free_ctx;
    l->free_ctx = x;
}

void chopin__uring_sendctx_free_all(struct chopin__uring *l) {
    while (l->free_ctx) {
        struct chopin__uring_sendctx *x = l->free_ctx;
        l->free_ctx = x->next_free;
        free(x);
    }
}

/* ----- the socket in SQEs ----------------------------------------------------------- */

/* Names the socket by its registered file table entry when it has one. */
static void use_socket(struct chopin__uring *l, struct chopin__conn *c, struct io_uring_sqe *sqe) {
    if (c->backend_flags & F_FIXED) {
        sqe->fd = (int)slot_of(l, c);
        sqe->flags |= IOSQE_FIXED_FILE;
    }
}

/* Ignored completion (skipped on success where the kernel can). */
static void fire_and_forget(struct chopin__uring *l, struct io_uring_sqe *sqe) {
    io_uring_sqe_set_data64(sqe, chopin__udata_make(CHOPIN__UOP_CANCEL, 0, 0));
    if (l->cqe_skip)
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

/* Puts the socket in the slot's table entry. The update runs before any operation queued
 * after it (SQEs are issued in order, and it completes inline); if it failed, those
 * operations fail with EBADF and the connection closes. */
static void register_socket(struct chopin__uring *l, struct chopin__conn *c) {
    uint32_t slot = slot_of(l, c);
    if (slot >= l->fixed_files)
        return;
    struct io_uring_sqe *sqe = chopin__uring_sqe(l);
    if (!sqe)
        return; /* plain descriptor then */
    io_uring_prep_files_update(sqe, &c->fd, 1, (int)slot); /* read when issued */
    fire_and_forget(l, sqe);
    c->backend_flags |= F_FIXED;
}

/* Drops the table's reference, so that closing the descriptor really closes the socket. */
static void unregister_socket(struct chopin__uring *l, struct chopin__conn *c) {
    if (!(c->backend_flags & F_FIXED))
        return;
    c->backend_flags &= (uint16_t)~F_FIXED;
    struct io_uring_sqe *sqe = l->exiting ? NULL : chopin__uring_sqe(l);
    if (sqe) {
        io_uring_prep_close_direct(sqe, slot_of(l, c));
        fire_and_forget(l, sqe);
        return;
    }
    int none = -1;
    io_uring_register_files_update(&l->ring, slot_of(l, c), &none, 1);
}

/* ----- receive ------------------------------------------------------------------------ */

/* Part of a request has arrived and the rest is awaited. A multishot receive can miss
 * the reset of such a connection: seen on 6.18 under concurrent uploads, the receive
 * that drained the socket as the RST came in (or one re-armed after ENOBUFS) stayed
 * armed, no completion ever followed, and the socket sat closed with its ECONNRESET
 * unread until the body deadline (30 s). A single-shot receive checks the socket's
 * state each time it is armed, as epoll does, so it sees the reset. It costs an SQE per
 * receive, only while a head or a body arrives in pieces and the socket ran dry
 * (F_DRAINED: a pipelined burst whose head straddles two buffers keeps its multishot
 * receive); a request that arrives whole never gets here. */
static int mid_request(const struct chopin__conn *c) {
    return c->phase == CHOPIN__PHASE_HEAD || c->phase == CHOPIN__PHASE_BODY;
}

static int arm_recv(struct chopin__uring *l, struct chopin__conn *c) {
    struct io_uring_sqe *sqe = chopin__uring_sqe(l);
    if (!sqe)
        return -EAGAIN;
    int multishot = l->multishot_recv && !mid_request(c);
    /* Length 0: the kernel uses the whole provided buffer (and multishot requires 0 on
     * 6.0-6.x kernels). */
    if (multishot)
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    else
        io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
    use_socket(l, c, sqe);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    io_uring_sqe_set_data64(sqe, chopin__udata_for(engine(l), CHOPIN__UOP_RECV, c));
    c->backend_flags |= (uint16_t)(F_RECV | (multishot ? F_RECV_MULTI : 0));
    c->backend_ops++;
    return 0;
}

/* Cancels by user_data. Its completion is ignored (and skipped on success where the
 * kernel can): the cancelled operation's own completion is what we wait for. */
static int cancel_op(struct chopin__uring *l, struct chopin__conn *c, unsigned op) {
    struct io_uring_sqe *sqe = chopin__uring_sqe(l);
    if (!sqe)
        return -EAGAIN;
    io_uring_prep_cancel64(sqe, chopin__udata_for(engine(l), op, c), 0);
    fire_and_forget(l, sqe);
    return 0;
}

/* Keeps a receive armed exactly while the connection takes input (backpressure), and
 * single-shot while a request is arriving (mid_request): a multishot one is cancelled
 * then, and its end re-arms a single-shot one. */
static int sync_recv(struct chopin__uring *l, struct chopin__conn *c) {
    int want = chopin__conn_wants_read(c);
    uint16_t f = c->backend_flags;
    if (want && !(f & (F_RECV | F_EOF)))
        return arm_recv(l, c);
    int multishot_mid_request = (f & F_RECV_MULTI) && (f & F_DRAINED) && mid_request(c);
    if ((!want || multishot_mid_request) && (f & F_RECV) && !(f & F_RECV_CANCEL)) {
        if (cancel_op(l, c, CHOPIN__UOP_RECV) < 0)
            return -EAGAIN;
        c->backend_flags |= F_RECV_CANCEL;
    }
    return 0;
}

static void recv_result(struct chopin__conn *c, int res) {
    switch (res) {
    case 0:
        /* A multishot receive outruns its cancel: EOF can arrive while the connection is
         * under backpressure with requests still stashed. epoll would not have read it
         * yet, and EOF ends keep-alive: hold it until the connection wants input again,
         * so the stashed requests are all answered first. */
        if (chopin__conn_wants_read(c))
            chopin__conn_on_eof(c);
        else
            c->backend_flags |= F_EOF;
        break;
    case -ENOBUFS:  /* the buffer ring ran dry: the bytes wait in the socket; re-armed */
    case -ECANCELED:
    case -EAGAIN:
    case -EINTR:
        break;
    default:
        chopin__conn_on_error(c);
    }
}

static void on_recv(struct chopin__uring *l, struct chopin__conn *c,
                    const struct io_uring_cqe *cqe) {
    int live = !(c->backend_flags & F_CLOSING) && !(c->ask & CHOPIN__CONN_CLOSE);
    if (cqe->res == -ENOBUFS) {
        /* More buffers go into circulation this turn (uring.c), and until this connection
         * has read what waits it is not idle, whatever it looks like. */
        l->buf_short = 1;
        c->backend_flags |= F_UNREAD;
    } else if (cqe->res != -ECANCELED) {
        c->backend_flags &= (uint16_t)~F_UNREAD;
    }
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (cqe->flags & IORING_CQE_F_SOCK_NONEMPTY)
            c->backend_flags &= (uint16_t)~F_DRAINED;
        else
            c->backend_flags |= F_DRAINED;
        if (cqe->res > 0 && live)
            chopin__conn_on_data(c, chopin__uring_buf(l, bid), (size_t)cqe->res);
        chopin__uring_buf_return(l, bid); /* on_data copied what it keeps */
    }
    /* Whether or not a buffer came with it: an error or EOF must never be dropped. */
    if (cqe->res <= 0 && live)
        recv_result(c, cqe->res);
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->backend_flags &= (uint16_t)~(F_RECV | F_RECV_CANCEL | F_RECV_MULTI);
        c->backend_ops--;
    }
}

/* ----- send ------------------------------------------------------------------------- */

static void send_submitted(struct chopin__conn *c, unsigned flags) {
    c->backend_flags |= (uint16_t)(F_SEND | flags);
    c->backend_ops++;
}

static int send_iov(struct chopin__uring *l, struct chopin__conn *c,
                    const struct chopin__plan *p) {
    struct io_uring_sqe *sqe = chopin__uring_sqe(l);
    if (!sqe)
        return -EAGAIN;
    int flags = MSG_NOSIGNAL | (p->more ? MSG_MORE : 0);
    if (p->iovcnt == 1) {
        /* One range: a plain send, no msghdr to keep alive. The bytes live in the
         * output queue, which nothing moves until chopin__conn_on_sent. */
        io_uring_prep_send(sqe, c->fd, p->iov[0].iov_base, p->iov[0].iov_len, flags);
    } else {
        struct chopin__uring_sendctx *x = sendctx_take(l);
        if (!x) {
            io_uring_prep_nop(sqe); /* the SQE is taken: give it a harmless job */
            io_uring_sqe_set_data64(sqe, chopin__udata_make(CHOPIN__UOP_CANCEL, 0, 0));
            return -ENOMEM;
        }
        memcpy(x->iov, p->iov, (size_t)p->iovcnt * sizeof p->iov[0]);
        x->msg = (struct msghdr){.msg_iov = x->iov, .msg_iovlen = (size_t)p->iovcnt};
        l->sendctx[slot_of(l, c)] = x;
        io_uring_prep_sendmsg(sqe, c->fd, &x->msg, (unsigned)flags);
    }
    use_socket(l, c, sqe);
    io_uring_sqe_set_data64(sqe, chopin__udata_for(engine(l), CHOPIN__UOP_SEND, c));
    send_submitted(c, 0);
    l->chunk_sends++;
    return 0;
}

static int wait_writable(struct chopin__uring *l, struct chopin__conn *c) {
    struct io_uring_sqe *sqe = chopin__uring_sqe(l);
    if (!sqe)
        return -EAGAIN;
    io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
    io_uring_sqe_set_data64(sqe, chopin__udata_for(engine(l), CHOPIN__UOP_POLLOUT, c));
    send_submitted(c, F_SEND_POLL);
    return 0;
}

/* A file range: sendfile, done synchronously on the non-blocking socket (zero-copy from
 * the page cache); when the socket is full, a POLLOUT operation waits for room. Measured
 * against io_uring splice and read+send in docs/io_uring.md. Returns 1 when bytes moved
 * (the caller sends again), 0 when waiting, -EAGAIN when no SQE was available. */
static int send_file(struct chopin__uring *l, struct chopin__conn *c,
                     const struct chopin__plan *p) {
    off_t off = (off_t)p->file_off;
    size_t len = p->file_len > SENDFILE_MAX ? SENDFILE_MAX : (size_t)p->file_len;
    ssize_t n = sendfile(c->fd, p->file_fd, &off, len);
    if (n > 0) {
        chopin__conn_on_sent(c, (size_t)n);
        return 1;
    }
    if (n == 0) {
        chopin__conn_on_file_short(c); /* the file shrank under us */
        return 1;
    }
    if (errno == EAGAIN)
        return wait_writable(l, c);
    if (errno == EINTR)
        return 1;
    chopin__conn_on_error(c);
    return 1;
}

/* Starts sending the output plan. Returns 1 when something happened synchronously (call
 * again), 0 when nothing to do or a send is in flight, -EAGAIN without an SQE. */
static int start_send(struct chopin__uring *l, struct chopin__conn *c) {
    struct chopin__plan p;
    if (chopin__conn_out_plan(c, &p) == 0)
        return 0;
    if (p.iovcnt == 0)
        return send_file(l, c, &p);
    int rc = send_iov(l, c, &p);
    if (rc == -ENOMEM) {
        chopin__conn_on_error(c);
        return 1;
    }
    return rc;
}

static void send_result(struct chopin__conn *c, unsigned op, int res) {
    if (op == CHOPIN__UOP_POLLOUT)
        return; /* writable (or hung up): the next sendfile says which */
    if (res > 0)
        chopin__conn_on_sent(c, (size_t)res);
    else if (res != -EAGAIN && res != -EINTR && res != -ECANCELED)
        chopin__conn_on_error(c); /* 0 cannot happen for a non-empty plan: do not spin */
}

static void on_send(struct chopin__uring *l, struct chopin__conn *c,
                    const struct io_uring_cqe *cqe, unsigned op) {
    c->backend_flags &= (uint16_t)~(F_SEND | F_SEND_POLL | F_SEND_CANCEL);
    c->backend_ops--;
    sendctx_release(l, c);
    if (!(c->backend_flags & F_CLOSING) && !(c->ask & CHOPIN__CONN_CLOSE))
        send_result(c, op, cqe->res);
}

/* ----- close -------------------------------------------------------------------------- */

static void finish_close(struct chopin__uring *l, struct chopin__conn *c) {
    unregister_socket(l, c);
    struct io_uring_sqe *sqe = l->exiting ? NULL : chopin__uring_sqe(l);
    if (sqe) {
        /* Saves a syscall per connection; nothing else refers to the fd any more. Its
         * completion is counted so the worker never exits with the close unsubmitted. */
        io_uring_prep_close(sqe, c->fd);
        io_uring_sqe_set_data64(sqe, chopin__udata_make(CHOPIN__UOP_CLOSE, 0, 0));
        l->closes++;
    } else {
        close(c->fd);
        chopin__uring_fd_closed(l);
    }
    l->closing--;
    chopin__engine_conn_free(engine(l), c);
    chopin__worker_slot_freed(l->w);
}

/* Cancels what is in flight; the slot is freed when the last completion arrived. A
 * pending receive holds a reference to the socket, so without the cancel the socket
 * would not even be torn down (U4). */
static int progress_close(struct chopin__uring *l, struct chopin__conn *c) {
    uint16_t f = c->backend_flags;
    if (c->backend_ops == 0) {
        finish_close(l, c);
        return 0;
    }
    if ((f & F_RECV) && !(f & F_RECV_CANCEL)) {
        if (cancel_op(l, c, CHOPIN__UOP_RECV) < 0)
            return -EAGAIN;
        c->backend_flags |= F_RECV_CANCEL;
    }
    if ((f & F_SEND) && !(f & F_SEND_CANCEL)) {
        unsigned op = f & F_SEND_POLL ? CHOPIN__UOP_POLLOUT : CHOPIN__UOP_SEND;
        if (cancel_op(l, c, op) < 0)
            return -EAGAIN;
        c->backend_flags |= F_SEND_CANCEL;
    }
    return 0;
}

static void mark_closing(struct chopin__uring *l, struct chopin__conn *c) {
    if (c->backend_flags & F_CLOSING)
        return;
    c->backend_flags |= F_CLOSING;
    l->closing++;
}

int chopin__uring_conn_unread(const struct chopin__conn *c) {
    return (c->backend_flags & F_UNREAD) != 0;
}

void chopin__uring_conn_close(struct chopin__uring *l, struct chopin__conn *c) {
    mark_closing(l, c);
    chopin__uring_service(l, c);
}

/* ----- retries -------------------------------------------------------------------------- */

/* Drops entries of connections freed since they were listed, so the list (sized to the
 * slab) always has room: each live connection is listed at most once (F_RETRY). */
static void retry_compact(struct chopin__uring *l) {
    unsigned n = 0;
    for (unsigned i = 0; i < l->nretry; i++)
        if (chopin__udata_conn(engine(l), l->retry[i]))
            l->retry[n++] = l->retry[i];
    l->nretry = n;
}

void chopin__uring_retry_later(struct chopin__uring *l, struct chopin__conn *c) {
    if (c->backend_flags & F_RETRY)
        return;
    if (l->nretry == l->retry_cap)
        retry_compact(l);
    c->backend_flags |= F_RETRY;
    l->retry[l->nretry++] = chopin__udata_for(engine(l), CHOPIN__UOP_NONE, c);
}

/* In place: servicing entry i lists at most that same connection again, at an index
 * <= i, so entries not yet read are never overwritten. */
void chopin__uring_run_retries(struct chopin__uring *l) {
    unsigned n = l->nretry;
    l->nretry = 0;
    for (unsigned i = 0; i < n; i++) {
        struct chopin__conn *c = chopin__udata_conn(engine(l), l->retry[i]);
        if (!c)
            continue;
        c->backend_flags &= (uint16_t)~F_RETRY;
        chopin__uring_service(l, c);
    }
}

/* ----- servicing ----------------------------------------------------------------------- */

static void half_close(struct chopin__conn *c) {
    /* Synchronous: rare (Connection: close, errors), and ordered after the last send,
     * which has completed (the output queue is empty when the connection asks). */
    shutdown(c->fd, SHUT_WR);
    c->shut = 1;
    c->ask &= (uint8_t)~CHOPIN__CONN_SHUTDOWN;
}

void chopin__uring_service(struct chopin__uring *l, struct chopin__conn *c) {
    int rc = 0;
    for (;;) {
        if (c->ask & CHOPIN__CONN_CLOSE)
            mark_closing(l, c);
        if (c->backend_flags & F_CLOSING) {
            rc = progress_close(l, c);
            break;
        }
        if (!(c->backend_flags & F_SEND)) {
            rc = start_send(l, c);
            if (rc == 1)
                continue;
            if (rc < 0)
                break;
        }
        if ((c->ask & CHOPIN__CONN_SHUTDOWN) && !(c->backend_flags & F_SEND))
            half_close(c);
        if (c->ask & CHOPIN__CONN_CLOSE)
            continue;
        if ((c->backend_flags & F_EOF) && chopin__conn_wants_read(c)) {
            c->backend_flags &= (uint16_t)~F_EOF;
            chopin__conn_on_eof(c);
            continue;
        }
        rc = sync_recv(l, c);
        break;
    }
    if (rc < 0)
        chopin__uring_retry_later(l, c);
}

void chopin__uring_conn_start(struct chopin__uring *l, struct chopin__conn *c) {
    c->backend_flags = 0;
    c->backend_ops = 0;
    register_socket(l, c);
    chopin__uring_service(l, c);
}

void chopin__uring_conn_cqe(struct chopin__uring *l, struct chopin__conn *c,
                            const struct io_uring_cqe *cqe, unsigned op) {
    if (!c) {
        /* Stale: cannot happen for counted operations; a buffer must still go back. */
        if (cqe->flags & IORING_CQE_F_BUFFER)
            chopin__uring_buf_return(l, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        return;
    }
    if (op == CHOPIN__UOP_RECV)
        on_recv(l, c, cqe);
    else
        on_send(l, c, cqe, op);
    chopin__uring_service(l, c);
}

#endif
