/* SPDX-License-Identifier: MIT */
/*
 * floor_uring: the least an HTTP/1.1 server can do on this machine with io_uring.
 *
 * The io_uring twin of floor_epoll.c (same canned response, same terminator
 * counting, same once-a-second Date): a multishot accept, then per connection
 * one operation in flight at a time, recv -> send -> recv, so the one 8 KiB
 * buffer of a connection serves both directions and no completion can ever
 * reach a connection that was closed and reused. All submissions of a loop
 * turn go to the kernel in the one io_uring_submit_and_wait of the next turn.
 *
 * Usage: floor_uring [port]     (default: $PORT, else 8080; binds 127.0.0.1)
 * Build: cc -O2 -o build/bench/floor_uring bench/floor_uring.c -luring
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESPONSE_HEAD "HTTP/1.1 200 OK\r\nServer: floor\r\nDate: "
#define RESPONSE_TAIL "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
#define DATE_LEN 29 /* "Thu, 01 Jan 1970 00:00:00 GMT", RFC 9110 §5.6.7 IMF-fixdate */
#define BUF_SIZE 8192
#define RING_ENTRIES 4096

static char response[] = RESPONSE_HEAD "Thu, 01 Jan 1970 00:00:00 GMT" RESPONSE_TAIL;
enum { RESPONSE_LEN = sizeof response - 1, DATE_AT = sizeof RESPONSE_HEAD - 1 };

/* The operation a completion belongs to, in the low bits of user_data; the
 * fd is in the high bits. */
enum op { OP_ACCEPT, OP_RECV, OP_SEND };

/* Per connection, indexed by fd: the partial "\r\n\r\n" match the last recv
 * ended in, how many response bytes are still to send (all responses are the
 * same bytes, so a count is enough to resume a short send), and the buffer,
 * allocated on first use of the fd and kept for the next connection on it. */
struct conn {
    uint8_t matched;
    uint64_t owed;
    char *buf;
};

static struct io_uring ring;
static struct conn *conns;
static int nconns, listen_fd;
static int accept_multishot = 1;
static time_t date_second;

static void date_refresh(void) {
    time_t now = time(NULL);
    if (now == date_second)
        return;
    date_second = now;
    struct tm tm;
    char buf[DATE_LEN + 1];
    gmtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    memcpy(response + DATE_AT, buf, DATE_LEN);
}

/* Counts "\r\n\r\n" in buf, continuing the partial match left by the last
 * read, so a terminator split across reads is counted once. memmem does the
 * bulk: a byte-at-a-time loop costs ~10% of the floor's pipelined budget. */
static unsigned terminators_count(struct conn *c, const char *buf, size_t len) {
    static const char term[4] = "\r\n\r\n";
    unsigned found = 0, m = c->matched;
    size_t i = 0;
    while (m > 0 && i < len) { /* finish the match the last read started */
        if (buf[i] == term[m]) {
            m++;
        } else {
            m = buf[i] == '\r'; /* "\r\n\r\r\n\r\n": a CR restarts the match */
        }
        i++;
        if (m == 4) {
            found++;
            m = 0;
        }
    }
    if (i == len) {
        c->matched = (uint8_t)m;
        return found;
    }
    const char *p = buf + i, *end = buf + len, *hit;
    while ((hit = memmem(p, (size_t)(end - p), term, 4)) != NULL) {
        found++;
        p = hit + 4;
    }
    /* The longest tail after the last terminator that could begin the next
     * one: "\r\n\r", "\r\n" or "\r". */
    size_t rest = (size_t)(end - p);
    if (rest >= 3 && memcmp(end - 3, term, 3) == 0)
        m = 3;
    else if (rest >= 2 && memcmp(end - 2, term, 2) == 0)
        m = 2;
    else
        m = rest >= 1 && end[-1] == '\r';
    c->matched = (uint8_t)m;
    return found;
}

/* An SQE, flushing the queue to the kernel first if it is full. */
static struct io_uring_sqe *sqe_get(void) {
    struct io_uring_sqe *sqe;
    while ((sqe = io_uring_get_sqe(&ring)) == NULL)
        io_uring_submit(&ring);
    return sqe;
}

static void sqe_tag(struct io_uring_sqe *sqe, int fd, enum op op) {
    io_uring_sqe_set_data64(sqe, (uint64_t)fd << 2 | op);
}

static void accept_arm(void) {
    struct io_uring_sqe *sqe = sqe_get();
    if (accept_multishot)
        io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, SOCK_CLOEXEC);
    else
        io_uring_prep_accept(sqe, listen_fd, NULL, NULL, SOCK_CLOEXEC);
    sqe_tag(sqe, listen_fd, OP_ACCEPT);
}

static void recv_arm(int fd) {
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_recv(sqe, fd, conns[fd].buf, BUF_SIZE, 0);
    sqe_tag(sqe, fd, OP_RECV);
}

/* Sends the next piece of what the connection owes, from its buffer. The
 * owed bytes are the tail of a run of whole responses: start at the matching
 * offset of the canned response and repeat it. */
static void send_arm(int fd) {
    struct conn *c = &conns[fd];
    size_t at = (RESPONSE_LEN - c->owed % RESPONSE_LEN) % RESPONSE_LEN, n = 0;
    while (n < BUF_SIZE && n < c->owed) {
        size_t chunk = RESPONSE_LEN - at;
        if (chunk > BUF_SIZE - n)
            chunk = BUF_SIZE - n;
        if (chunk > c->owed - n)
            chunk = c->owed - n;
        memcpy(c->buf + n, response + at, chunk);
        n += chunk;
        at = 0;
    }
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_send(sqe, fd, c->buf, n, MSG_NOSIGNAL);
    sqe_tag(sqe, fd, OP_SEND);
}

static void conn_close(int fd) {
    conns[fd].matched = 0;
    conns[fd].owed = 0;
    close(fd); /* nothing of this fd is in flight: see the header comment */
}

static void on_accept(const struct io_uring_cqe *cqe) {
    if (cqe->res == -EINVAL && accept_multishot) {
        accept_multishot = 0; /* kernel < 5.19: one accept per SQE */
        accept_arm();
        return;
    }
    if (!(cqe->flags & IORING_CQE_F_MORE))
        accept_arm();
    int fd = cqe->res;
    if (fd < 0)
        return; /* EMFILE and friends: the next connection retries */
    if (fd >= nconns || (!conns[fd].buf && !(conns[fd].buf = malloc(BUF_SIZE)))) {
        close(fd);
        return;
    }
    recv_arm(fd);
}

static void on_recv(int fd, int res) {
    if (res <= 0) {
        conn_close(fd); /* EOF or error */
        return;
    }
    struct conn *c = &conns[fd];
    c->owed += (uint64_t)terminators_count(c, c->buf, (size_t)res) * RESPONSE_LEN;
    if (c->owed > 0)
        send_arm(fd);
    else
        recv_arm(fd); /* a request split across segments: wait for the rest */
}

static void on_send(int fd, int res) {
    if (res < 0) {
        conn_close(fd);
        return;
    }
    struct conn *c = &conns[fd];
    c->owed -= (uint64_t)res;
    if (c->owed > 0)
        send_arm(fd); /* short send: the socket buffer was full */
    else
        recv_arm(fd);
}

static int listener_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Accepted sockets inherit TCP_NODELAY from the listener on Linux. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* DEFER_TASKRUN (Linux 6.1) runs completion work only inside our own
 * io_uring_enter, never by interrupting the loop; COOP_TASKRUN (5.19) is the
 * next best; plain setup works everywhere else. */
static int ring_open(void) {
    static const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int err = -EINVAL;
    for (size_t i = 0; i < sizeof flag_sets / sizeof *flag_sets; i++) {
        struct io_uring_params p = {.flags = flag_sets[i]};
        if ((err = io_uring_queue_init_params(RING_ENTRIES, &ring, &p)) == 0)
            return 0;
    }
    return err;
}

int main(int argc, char **argv) {
    const char *p = argc > 1 ? argv[1] : getenv("PORT");
    int port = p ? atoi(p) : 8080;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        rl.rlim_cur = 65536;
    nconns = (int)rl.rlim_cur;
    conns = calloc((size_t)nconns, sizeof *conns);

    listen_fd = listener_open(port);
    if (listen_fd < 0 || !conns) {
        fprintf(stderr, "floor_uring: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    int err = ring_open();
    if (err < 0) {
        fprintf(stderr, "floor_uring: io_uring unavailable: %s\n", strerror(-err));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "floor_uring: listening on 127.0.0.1:%d\n", port);

    accept_arm();
    for (;;) {
        err = io_uring_submit_and_wait(&ring, 1);
        if (err < 0 && err != -EINTR && err != -EBUSY && err != -ETIME) {
            fprintf(stderr, "floor_uring: io_uring_submit_and_wait: %s\n", strerror(-err));
            return 1;
        }
        date_refresh();
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            int fd = (int)(cqe->user_data >> 2);
            switch ((enum op)(cqe->user_data & 3)) {
            case OP_ACCEPT: on_accept(cqe); break;
            case OP_RECV: on_recv(fd, cqe->res); break;
            case OP_SEND: on_send(fd, cqe->res); break;
            }
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
    }
}
