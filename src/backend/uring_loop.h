/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's per-worker loop state, shared by uring.c (accept, wake, the
 * loop), uring_conn.c (a connection's receive, send, file, close), uring_watch.c (the
 * application's descriptors) and, below them all, uring_ring.c (SQEs, provided buffers).
 */
#ifndef CHOPIN_BACKEND_URING_LOOP_H
#define CHOPIN_BACKEND_URING_LOOP_H

#include <liburing.h>
#include <stdint.h>

#include "backend/uring_udata.h"

/* Provided receive buffers per worker, at most (a power of two: the buffer ring). */
#define CHOPIN__URING_BUFS 512

struct chopin__worker;
struct chopin__conn;
struct chopin__uring_sendctx;

/* An accepted socket waiting for a slot, with its listener's CHOPIN__LISTEN_* flags. */
struct chopin__uring_pending {
    int fd;
    uint8_t listen_flags;
};

struct chopin__uring {
    struct io_uring ring;
    struct chopin__worker *w;
    unsigned setup_flags;   /* what io_uring_queue_init_params accepted */
    int sqpoll;
    int multishot_recv;     /* IORING_RECV_MULTISHOT (6.0) */
    int multishot_accept;   /* IORING_ACCEPT_MULTISHOT (5.19) */
    int cqe_skip;           /* IOSQE_CQE_SKIP_SUCCESS (5.17) */
    unsigned fixed_files;   /* registered file table size: slots below it use it */
    int exiting;            /* closing everything: no more async closes */
    unsigned closing;       /* connections waiting for their operations before the free */
    unsigned closes;        /* IORING_OP_CLOSE in flight */
    unsigned started;       /* connections started this turn (their first receive pending) */

    /* Provided-buffer ring (group 0): receives land here, so an idle connection holds
     * no buffer. A buffer goes back right after its bytes were fed to the connection.
     * How many circulate follows the load both ways (uring.c, "provided buffers"). */
    struct io_uring_buf_ring *br;
    char *bufs;
    unsigned buf_count;    /* buffers in circulation: in the ring, or being read */
    unsigned buf_target;   /* circulation wanted: a buffer returned past it is retired */
    unsigned buf_returned; /* added since the last advance */
    unsigned buf_used;     /* buffers received into this turn */
    int buf_short;         /* a receive found no buffer (ENOBUFS) this turn */
    int buf_idle_release;  /* DEFER_TASKRUN: the kernel fills buffers only while we wait */
    uint64_t buf_busy_ms;  /* the last turn that needed more than the starting circulation */
    uint16_t buf_spare[CHOPIN__URING_BUFS]; /* ids out of circulation (a stack), released */
    unsigned buf_nspare;
    uint64_t buf_touched[CHOPIN__URING_BUFS / 64]; /* written since their pages were released */
    unsigned buf_resident; /* bits set in buf_touched */
    unsigned buf_reported; /* buf_resident as last added to the process-wide count */

    /* Accept: a multishot accept per listener (bit i: w->listen[i]), and sockets they
     * delivered that wait for a slot. */
    uint32_t accept_armed, accept_cancelled;
    int accept_broken;
    int accept_after_closes; /* out of descriptors: re-armed after the next close */
    int accept_err;          /* EMFILE and the like, handled after the turn's completions */
    struct chopin__uring_pending *pending;
    unsigned npending, pending_cap;
    int wake_armed;

    /* Stable msghdr + iovecs of in-flight sendmsg operations, by slot (NULL when none). */
    struct chopin__uring_sendctx **sendctx;
    struct chopin__uring_sendctx *free_ctx;

    /* Receive completions waiting for the send completions of the last chunk of sends
     * (see SEND_CHUNK in uring.c), in arrival order. */
    struct io_uring_cqe *backlog;
    unsigned bl_head, bl_tail, bl_cap;
    unsigned chunk_sends; /* sends queued since the last submit */
    int defer_recv;       /* receive completions go to the backlog for now */

    /* Connections that could not get an SQE (queue full and not drainable): serviced
     * again after the next submit. Entries are user_data, so stale ones are skipped. */
    uint64_t *retry;
    unsigned nretry, retry_cap;

    /* The application's descriptors (uring_watch.c): one-shot polls in flight, and
     * watches whose poll could not get an SQE (user_data), armed after the next submit. */
    unsigned app_polls;
    uint64_t *watch_retry;
    unsigned nwatch_retry, watch_retry_cap;
};

/** An SQE, submitting what is queued when the SQ is full; NULL only when the kernel
 *  cannot take more now (the caller must retry later, never drop the operation). */
struct io_uring_sqe *chopin__uring_sqe(struct chopin__uring *l);
/** Remembers that `c` must be serviced again next turn (no SQE was available). */
void chopin__uring_retry_later(struct chopin__uring *l, struct chopin__conn *c);
/** Services the connections chopin__uring_retry_later remembered. */
void chopin__uring_run_retries(struct chopin__uring *l);
/** Receive buffer `bid` and its return to the ring. */
char *chopin__uring_buf(struct chopin__uring *l, unsigned bid);
void chopin__uring_buf_return(struct chopin__uring *l, unsigned bid);

/** Provided buffers whose pages may be resident (written since released), summed over
 *  the process's io_uring workers, and the most there ever were; for tests. `idle_release`
 *  is 1 once a worker could release the pages of the buffers waiting in its ring (its
 *  ring runs DEFER_TASKRUN); without it, only buffers leaving circulation are. */
struct chopin__uring_buf_stats {
    unsigned long resident, peak;
    int idle_release;
};
void chopin__uring_buf_stats(struct chopin__uring_buf_stats *out);

/** Provided buffers (uring_ring.c): set up on the ring (0 or -errno) and freed; once
 *  per turn, the circulation adapted to what the turn used and reported; the returned
 *  ones published to the kernel (before every submit). */
int chopin__uring_buffers_init(struct chopin__uring *l);
void chopin__uring_buffers_free(struct chopin__uring *l);
void chopin__uring_buffers_adapt(struct chopin__uring *l);
void chopin__uring_buffers_report(struct chopin__uring *l);
void chopin__uring_buffers_publish(struct chopin__uring *l);

/** A connection's descriptor was closed: an accept that ran out of descriptors may retry. */
static inline void chopin__uring_fd_closed(struct chopin__uring *l) { l->accept_after_closes = 0; }

/** A connection was accepted: start receiving (and serve what TCP_DEFER_ACCEPT brought). */
void chopin__uring_conn_start(struct chopin__uring *l, struct chopin__conn *c);
/** Does whatever the connection asks now: send, half-close, close, (re)arm or cancel the
 *  receive. Idempotent: it derives everything from the connection's state. */
void chopin__uring_service(struct chopin__uring *l, struct chopin__conn *c);
/** A completion of RECV, SEND or POLLOUT (`c` may be NULL: stale). */
void chopin__uring_conn_cqe(struct chopin__uring *l, struct chopin__conn *c,
                            const struct io_uring_cqe *cqe, unsigned op);
/** Nonzero when `c`'s last receive found no provided buffer (ENOBUFS): input waits in
 *  its socket, unread, until its re-armed receive gets one. */
int chopin__uring_conn_unread(const struct chopin__conn *c);
/** Starts closing `c` (cancels its operations; the slot is freed once they completed). */
void chopin__uring_conn_close(struct chopin__uring *l, struct chopin__conn *c);
/** The watch hook (loop/loop.h) of an io_uring worker. */
int chopin__uring_watch(void *ctx, int fd, unsigned events, uint32_t gen, unsigned old_events,
                        uint32_t old_gen);
/** A completion of a watch's poll. */
void chopin__uring_watch_cqe(struct chopin__uring *l, const struct io_uring_cqe *cqe);
/** Arms the polls that found no SQE. */
void chopin__uring_watch_retries(struct chopin__uring *l);
/** At exit: cancels every watch's poll (the loop waits for app_polls to reach 0). */
void chopin__uring_watch_cancel_all(struct chopin__uring *l);
/** Frees the send contexts. */
void chopin__uring_sendctx_free_all(struct chopin__uring *l);

#endif
