/* Socket I/O shared by the readiness backends (see readiness.h). */
#include "backend/readiness.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "engine.h"
#include "platform.h"
#include "worker.h"

int chopin__read_ready(struct chopin__conn *c, char *scratch, size_t size, int budget) {
    while ((c->backend_flags & CHOPIN__READABLE) && chopin__conn_wants_read(c)) {
        if (budget == 0)
            return 1;
        if (budget > 0)
            budget--;
        ssize_t n = chopin__sys_read(c->fd, scratch, size);
        if (n > 0) {
            /* Skipping the read that would only say EAGAIN saves a system call per
             * request. */
            if ((size_t)n < size && !(c->backend_flags & CHOPIN__HUNG_UP))
                c->backend_flags &= (uint16_t)~CHOPIN__READABLE;
            chopin__conn_on_data(c, scratch, (size_t)n);
        } else if (n == 0) {
            c->backend_flags &= (uint16_t)~CHOPIN__READABLE;
            chopin__conn_on_eof(c);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->backend_flags &= (uint16_t)~CHOPIN__READABLE;
        } else if (errno != EINTR) {
            c->backend_flags &= (uint16_t)~CHOPIN__READABLE;
            chopin__conn_on_error(c);
        }
    }
    return 0;
}

static ssize_t send_plan(int fd, const struct chopin__plan *p) {
    if (p->iovcnt) {
        struct msghdr msg = {.msg_iov = (struct iovec *)p->iov, .msg_iovlen = (size_t)p->iovcnt};
        /* No SIGPIPE from a peer that went away (EPIPE instead); MSG_MORE lets the kernel
         * merge a head with the file range that follows it. */
        return chopin__sys_sendmsg(fd, &msg, CHOPIN__MSG_NOSIGNAL | (p->more ? CHOPIN__MSG_MORE : 0));
    }
    size_t len = p->file_len > (1u << 30) ? (1u << 30) : (size_t)p->file_len;
    return chopin__sendfile(fd, p->file_fd, p->file_off, len);
}

void chopin__write_ready(struct chopin__conn *c) {
    struct chopin__plan plan;
    while ((c->backend_flags & CHOPIN__WRITABLE) && chopin__conn_out_plan(c, &plan) > 0) {
        ssize_t n = send_plan(c->fd, &plan);
        if (n > 0) {
            chopin__conn_on_sent(c, (size_t)n);
        } else if (n == 0) {
            chopin__conn_on_file_short(c); /* sendfile at end of file: it shrank */
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->backend_flags &= (uint16_t)~CHOPIN__WRITABLE;
        } else if (errno != EINTR) {
            chopin__conn_on_error(c);
        }
    }
}

struct chopin__conn *chopin__accept_next(struct chopin__worker *w) {
    while (chopin__worker_may_accept(w)) {
        int fd = chopin__accept(w->listen_fd);
        if (fd < 0) {
            if (errno == EAGAIN || !chopin__worker_accept_failed(w, errno))
                return NULL;
            continue;
        }
        struct chopin__conn *c = chopin__engine_conn_new(&w->engine, fd);
        if (c) {
            c->backend_flags = CHOPIN__READABLE | CHOPIN__WRITABLE;
            return c;
        }
        close(fd); /* unreachable: a slot was free or an idle connection evictable */
    }
    return NULL;
}
