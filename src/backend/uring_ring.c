/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's ring primitives, below the connection and the loop: SQEs, and
 * the provided receive buffers (group 0) that multishot receives land in.
 */
#ifdef CHOPIN_HAVE_URING

#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "backend/uring_loop.h"
#include "worker.h"

/* Provided receive buffers per worker: up to BUF_COUNT, enough that a batch of busy
 * connections does not empty the ring (it refills as each completion is handled); 4 MiB
 * in all. Only BUF_START of them circulate at first, doubled after a turn that used more
 * than half of those circulating, or that found none (ENOBUFS). The kernel hands buffers
 * out in the order they were returned, so every circulating buffer gets used in turn and
 * its first page touched: with all 512 circulating from the start, a worker that had read
 * from 512 connections one after the other held 2 MiB of receive buffers (419 B per idle
 * connection in bench/memory.sh's 5000). Now what is touched follows the receives a turn
 * takes at once, not how many connections ever sent something.
 *
 * And it comes back: once no turn has needed more than BUF_START / 2 buffers for TRIM_MS,
 * the circulation goes back to BUF_START. A buffer returned past that is retired (out of
 * the ring, its pages released), and with DEFER_TASKRUN the pages of those still waiting
 * in the ring are released at once (buffers_release_idle). Without it, a burst of 4000
 * requests left 2 MiB touched for good (issue 13: 814 B per idle connection afterwards). */
#define BUF_COUNT CHOPIN__URING_BUFS
#define BUF_START 16 /* a power of two, at most BUF_COUNT */
#define BUF_SIZE 8192
#define TRIM_MS 1000
_Static_assert((BUF_START & (BUF_START - 1)) == 0 && BUF_START <= BUF_COUNT &&
                   (BUF_COUNT & (BUF_COUNT - 1)) == 0 && BUF_COUNT % 64 == 0,
               "buffer counts: powers of two, BUF_START <= BUF_COUNT");

/* ----- provided buffers ---------------------------------------------------------------- */

static size_t buf_ring_bytes(void) { return BUF_COUNT * sizeof(struct io_uring_buf); }

/* What every io_uring worker of the process holds, for chopin__uring_buf_stats. */
static _Atomic unsigned long resident_all, resident_peak;
static _Atomic int idle_release_seen;

void chopin__uring_buf_stats(struct chopin__uring_buf_stats *out) {
    out->resident = resident_all;
    out->peak = resident_peak;
    out->idle_release = idle_release_seen;
}

void chopin__uring_buffers_report(struct chopin__uring *l) {
    if (l->buf_resident == l->buf_reported)
        return;
    unsigned long delta = (unsigned long)l->buf_resident - l->buf_reported; /* modulo: or less */
    unsigned long now = atomic_fetch_add(&resident_all, delta) + delta;
    l->buf_reported = l->buf_resident;
    unsigned long peak = resident_peak;
    while (now > peak && !atomic_compare_exchange_weak(&resident_peak, &peak, now))
        ;
}

static void ring_add(struct chopin__uring *l, unsigned bid) {
    io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(BUF_COUNT), (int)l->buf_returned++);
}

/* Puts spare buffers in circulation (at the next publish) up to the target. */
static void buffers_fill(struct chopin__uring *l) {
    while (l->buf_count < l->buf_target && l->buf_nspare) {
        ring_add(l, l->buf_spare[--l->buf_nspare]);
        l->buf_count++;
    }
}

/* Takes buffer `bid`, just returned by a receive, out of circulation and gives its pages
 * back: nobody refers to it (the kernel picks only what is in the ring). */
static void buffer_retire(struct chopin__uring *l, unsigned bid) {
    madvise(l->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, MADV_DONTNEED);
    l->buf_touched[bid / 64] &= ~(1ull << (bid % 64));
    l->buf_resident--;
    l->buf_spare[l->buf_nspare++] = (uint16_t)bid;
    l->buf_count--;
}

/* Releases the pages of every buffer. Only between reaping the last completion and the
 * next io_uring_enter, and only with DEFER_TASKRUN: then no completion waits unread (its
 * bytes in a buffer), and the kernel writes into a provided buffer only inside our own
 * io_uring_enter, so a buffer waiting in the ring is written after this if at all, into
 * fresh zeroed pages. */
static void buffers_release_idle(struct chopin__uring *l) {
    madvise(l->bufs, (size_t)BUF_COUNT * BUF_SIZE, MADV_DONTNEED);
    memset(l->buf_touched, 0, sizeof l->buf_touched);
    l->buf_resident = 0;
}

int chopin__uring_buffers_init(struct chopin__uring *l) {
    /* mmap: the ring must be page-aligned; the buffers are touched only when used. */
    void *br = mmap(NULL, buf_ring_bytes(), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *bufs = mmap(NULL, (size_t)BUF_COUNT * BUF_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br == MAP_FAILED || bufs == MAP_FAILED) {
        if (br != MAP_FAILED)
            munmap(br, buf_ring_bytes());
        if (bufs != MAP_FAILED)
            munmap(bufs, (size_t)BUF_COUNT * BUF_SIZE);
        return -ENOMEM;
    }
    l->br = br;
    l->bufs = bufs;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uintptr_t)br;
    reg.ring_entries = BUF_COUNT;
    reg.bgid = 0;
    int rc = io_uring_register_buf_ring(&l->ring, &reg, 0);
    if (rc < 0)
        return rc;
    io_uring_buf_ring_init(l->br);
    for (unsigned bid = BUF_COUNT; bid-- > 0;)
        l->buf_spare[l->buf_nspare++] = (uint16_t)bid; /* the lowest ids first */
    l->buf_target = BUF_START;
    l->buf_idle_release = (l->setup_flags & IORING_SETUP_DEFER_TASKRUN) != 0;
    if (l->buf_idle_release)
        idle_release_seen = 1;
    buffers_fill(l);
    io_uring_buf_ring_advance(l->br, (int)l->buf_returned);
    l->buf_returned = 0;
    return 0;
}

void chopin__uring_buffers_free(struct chopin__uring *l) {
    if (l->br)
        munmap(l->br, buf_ring_bytes());
    if (l->bufs)
        munmap(l->bufs, (size_t)BUF_COUNT * BUF_SIZE);
}

char *chopin__uring_buf(struct chopin__uring *l, unsigned bid) {
    return l->bufs + (size_t)(bid & (BUF_COUNT - 1)) * BUF_SIZE;
}

void chopin__uring_buf_return(struct chopin__uring *l, unsigned bid) {
    bid &= BUF_COUNT - 1;
    uint64_t bit = 1ull << (bid % 64);
    l->buf_resident += !(l->buf_touched[bid / 64] & bit);
    l->buf_touched[bid / 64] |= bit;
    l->buf_used++;
    if (l->buf_count > l->buf_target)
        buffer_retire(l, bid);
    else
        ring_add(l, bid);
}

/* Back to BUF_START buffers once no turn needed more for TRIM_MS (see BUF_START). */
static void buffers_trim(struct chopin__uring *l) {
    uint64_t now = l->w->engine.now_ms;
    if (l->buf_used * 2 > BUF_START || l->buf_short) {
        l->buf_busy_ms = now;
        return;
    }
    int surplus = l->buf_target > BUF_START ||
                  (l->buf_idle_release && l->buf_resident > BUF_START);
    if (!surplus || now - l->buf_busy_ms < TRIM_MS)
        return;
    l->buf_target = BUF_START;
    if (l->buf_idle_release)
        buffers_release_idle(l);
}

/* Once per turn, after every completion was handled: more buffers in circulation when
 * this turn used more than half of them or a receive found none; fewer after a quiet
 * while (buffers_trim). */
void chopin__uring_buffers_adapt(struct chopin__uring *l) {
    if ((l->buf_used * 2 > l->buf_count || l->buf_short) && l->buf_target < BUF_COUNT)
        l->buf_target *= 2; /* both powers of two, so never past BUF_COUNT */
    buffers_trim(l);
    buffers_fill(l);
    chopin__uring_buffers_report(l);
    l->buf_used = 0;
    l->buf_short = 0;
}

/* Publishes the returned buffers to the kernel (one release store for a batch). */
void chopin__uring_buffers_publish(struct chopin__uring *l) {
    if (!l->buf_returned)
        return;
    io_uring_buf_ring_advance(l->br, (int)l->buf_returned);
    l->buf_returned = 0;
}

/* ----- SQEs ------------------------------------------------------------------------------ */

struct io_uring_sqe *chopin__uring_sqe(struct chopin__uring *l) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
    if (sqe)
        return sqe;
    /* The SQ is full: hand it to the kernel now (never drop an operation). */
    chopin__uring_buffers_publish(l);
    io_uring_submit(&l->ring);
    if (l->sqpoll)
        io_uring_sqring_wait(&l->ring); /* the SQ thread has not consumed them yet */
    return io_uring_get_sqe(&l->ring);
}

#endif
