/* SPDX-License-Identifier: MIT */
/*
 * An output plan: what a connection asks its backend to send next. The output queue
 * (outq.c) fills it, the connection (conn.h) hands it out, the backends send it; it sits
 * below all three so that none of them includes another for it.
 */
#ifndef CHOPIN_PLAN_H
#define CHOPIN_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define CHOPIN__PLAN_IOV 32

/** The next thing to send: either up to CHOPIN__PLAN_IOV memory ranges, or one file
 *  range (then iovcnt == 0 and file_len > 0). Both empty: nothing to send. */
struct chopin__plan {
    struct iovec iov[CHOPIN__PLAN_IOV];
    int iovcnt;
    int file_fd;
    uint64_t file_off;
    uint64_t file_len;
    int more;     /* a file range follows these iovecs: send with MSG_MORE */
    size_t bytes; /* total of the iovecs, or file_len */
};

#endif
