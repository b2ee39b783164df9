/* SPDX-License-Identifier: MIT */
/*
 * floor_epoll: the least an HTTP/1.1 server can do on this machine with epoll.
 *
 * It does not parse. It counts request terminators ("\r\n\r\n") in whatever
 * arrives and answers each with the same canned 200 response, all answers to
 * one read leaving in one write. The Date header is reformatted at most once a
 * second, as a real server's cache would be, so the bytes on the wire match
 * what the servers it is compared with send. Every path gets the plaintext
 * body: /json is not special here.
 *
 * Usage: floor_epoll [port]     (default: $PORT, else 8080; binds 127.0.0.1)
 * Build: cc -O2 -o build/bench/floor_epoll bench/floor_epoll.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESPONSE_HEAD "HTTP/1.1 200 OK\r\nServer: floor\r\nDate: "
#define RESPONSE_TAIL "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
#define DATE_LEN 29 /* "Thu, 01 Jan 1970 00:00:00 GMT", RFC 9110 §5.6.7 IMF-fixdate */

static char response[] = RESPONSE_HEAD "Thu, 01 Jan 1970 00:00:00 GMT" RESPONSE_TAIL;
enum { RESPONSE_LEN = sizeof response - 1, DATE_AT = sizeof RESPONSE_HEAD - 1 };

/* Per connection, indexed by fd: how far into "\r\n\r\n" the last read ended
 * (so a terminator split across reads is still counted) and how many response
 * bytes the socket has not taken yet (all responses are the same bytes, so a
 * byte count is enough to resume a partial write). */
struct conn {
    uint8_t matched;
    uint64_t owed;
};

static struct conn *conns;
static int nconns;
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

/* Writes as much of what the connection owes as the socket takes.
 * Returns -1 if the connection failed. */
static int conn_flush(int fd, struct conn *c) {
    static char out[64 * 1024];
    while (c->owed > 0) {
        /* The owed bytes are the tail of a run of whole responses: start at
         * the matching offset of the canned response and repeat it. */
        size_t at = (RESPONSE_LEN - c->owed % RESPONSE_LEN) % RESPONSE_LEN, n = 0;
        while (n < sizeof out && n < c->owed) {
            size_t chunk = RESPONSE_LEN - at;
            if (chunk > sizeof out - n)
                chunk = sizeof out - n;
            if (chunk > c->owed - n)
                chunk = c->owed - n;
            memcpy(out + n, response + at, chunk);
            n += chunk;
            at = 0;
        }
        ssize_t w = send(fd, out, n, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN ? 0 : -1; /* EPOLLOUT (edge) resumes us */
        c->owed -= (uint64_t)w;
    }
    return 0;
}

static void conn_close(int fd) {
    conns[fd] = (struct conn){0};
    close(fd); /* also removes fd from the epoll set */
}

static void conn_readable(int fd) {
    static char in[64 * 1024];
    struct conn *c = &conns[fd];
    for (;;) {
        ssize_t r = recv(fd, in, sizeof in, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(fd);
            return;
        }
        if (r < 0) {
            if (errno == EAGAIN)
                break;
            continue;
        }
        c->owed += (uint64_t)terminators_count(c, in, (size_t)r) * RESPONSE_LEN;
        /* A short read drained the socket; more data raises a new edge. */
        if ((size_t)r < sizeof in)
            break;
    }
    if (conn_flush(fd, c) < 0)
        conn_close(fd);
}

static void listener_accept(int ep, int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN; or EMFILE: the next connection retries */
        }
        if (fd >= nconns) {
            close(fd);
            continue;
        }
        /* EPOLLOUT is registered once with the edge trigger: it only fires
         * when a full socket buffer drains, so it costs no epoll_ctl later. */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            close(fd);
    }
}

static int listener_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
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

int main(int argc, char **argv) {
    const char *p = argc > 1 ? argv[1] : getenv("PORT");
    int port = p ? atoi(p) : 8080;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        rl.rlim_cur = 65536;
    nconns = (int)rl.rlim_cur;
    conns = calloc((size_t)nconns, sizeof *conns);

    int lfd = listener_open(port), ep = epoll_create1(EPOLL_CLOEXEC);
    if (lfd < 0 || ep < 0 || !conns) {
        fprintf(stderr, "floor_epoll: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "floor_epoll: listening on 127.0.0.1:%d\n", port);

    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, 1000);
        date_refresh();
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            uint32_t e = evs[i].events;
            if (fd == lfd)
                listener_accept(ep, lfd);
            else if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                conn_readable(fd); /* reads EOF or the error, then closes */
            else if ((e & EPOLLOUT) && conn_flush(fd, &conns[fd]) < 0)
                conn_close(fd);
        }
    }
}
