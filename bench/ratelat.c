/* SPDX-License-Identifier: MIT */
/*
 * Latency at a fixed request rate (bench/latency.sh), open loop: request k is due at
 * start + k / RATE whatever happened to the others, and its latency runs from that due
 * time to the last byte of its answer. A request that finds every connection busy waits,
 * and the wait counts: a server that stalls is charged for every request the stall
 * delayed, not only for the one it held (the "coordinated omission" of closed-loop tools:
 * wrk, and h2load, whose --rps timer skips a connection's turn while its request is in
 * flight, so a stall lowers the rate instead of showing in the latencies).
 *
 *     ratelat PORT PATH RATE SECONDS CONNECTIONS [WARMUP_SECONDS]
 *
 * One thread, one epoll set, polled without sleeping (it has a core to itself:
 * bench/latency.sh pins it), so requests leave on time to within the loop's turn, not
 * within a timer's millisecond. Keep-alive connections, one request in flight on each.
 * Prints "sent N done N errors N rate R p50 P p99 P p999 P max M" (latencies in µs, over
 * the requests due after the warm-up).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096

struct conn {
    int fd;
    int busy;
    uint64_t due; /* the due time of its request in flight, ns */
    size_t got;
    char buf[4096];
};

static struct conn conns[MAX_CONNS];
static int nconns, port, epfd;
static char request[512];
static size_t request_len;
static long errors;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int conn_open(struct conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    c->busy = 0;
    c->got = 0;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_reset(struct conn *c) {
    close(c->fd);
    errors++;
    if (conn_open(c) < 0) {
        fprintf(stderr, "ratelat: cannot reconnect: %s\n", strerror(errno));
        exit(1);
    }
}

/* Bytes of a whole answer at the start of c->buf (Content-Length bodies), else 0. */
static size_t answer_len(const struct conn *c) {
    const char *end = memmem(c->buf, c->got, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->buf) + 4, body = 0;
    for (const char *p = c->buf; p < end; p++) {
        if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
            body = strtoul(p + 15, NULL, 10);
            break;
        }
    }
    return c->got >= head + body ? head + body : 0;
}

/* The latencies (ns) of the requests due after the warm-up. */
static uint64_t *lat;
static size_t nlat, caplat;

static void record(uint64_t ns) {
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 16;
        lat = realloc(lat, caplat * sizeof *lat);
        if (!lat)
            exit(1);
    }
    lat[nlat++] = ns;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_us(double q) {
    if (nlat == 0)
        return 0;
    size_t i = (size_t)(q * (double)(nlat - 1) + 0.5);
    return (double)lat[i] / 1000.0;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: ratelat PORT PATH RATE SECONDS CONNECTIONS [WARMUP_SECONDS]\n");
        return 2;
    }
    port = atoi(argv[1]);
    double rate = atof(argv[3]), seconds = atof(argv[4]);
    nconns = atoi(argv[5]);
    double warmup = argc > 6 ? atof(argv[6]) : 1;
    if (rate <= 0 || seconds <= 0 || nconns < 1 || nconns > MAX_CONNS)
        return 2;
    request_len = (size_t)snprintf(request, sizeof request,
                                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                   "Accept: */*\r\nConnection: keep-alive\r\n\r\n",
                                   argv[2], port);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < nconns; i++)
        if (conn_open(&conns[i]) < 0) {
            fprintf(stderr, "ratelat: connect: %s\n", strerror(errno));
            return 1;
        }
    usleep(100000); /* let the connections be accepted before the clock starts */

    uint64_t interval = (uint64_t)(1e9 / rate), start = now_ns();
    uint64_t record_from = start + (uint64_t)(warmup * 1e9);
    uint64_t stop = record_from + (uint64_t)(seconds * 1e9);
    uint64_t next_due = start, sent = 0, done = 0;
    /* Requests due and not yet sent, by due time: a ring of due times. */
    size_t qcap = 1 << 20, qhead = 0, qtail = 0;
    uint64_t *queue = malloc(qcap * sizeof *queue);
    int idle_scan = 0;
    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = now_ns();
        while (next_due <= now && next_due < stop && qtail - qhead < qcap) {
            queue[qtail++ % qcap] = next_due;
            next_due += interval;
        }
        /* Send what is due on idle connections, round robin. */
        for (int tries = 0; qhead < qtail && tries < nconns; tries++) {
            struct conn *c = &conns[idle_scan];
            idle_scan = (idle_scan + 1) % nconns;
            if (c->busy)
                continue;
            c->due = queue[qhead++ % qcap];
            c->busy = 1;
            c->got = 0;
            sent++;
            if (send(c->fd, request, request_len, MSG_NOSIGNAL) != (ssize_t)request_len)
                conn_reset(c);
        }
        int n = epoll_wait(epfd, evs, 256, 0);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, c->buf + c->got, sizeof c->buf - c->got);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                conn_reset(c);
                continue;
            }
            c->got += (size_t)r;
            size_t len = answer_len(c);
            if (len == 0) {
                if (c->got == sizeof c->buf)
                    conn_reset(c);
                continue;
            }
            if (!c->busy || strncmp(c->buf, "HTTP/1.1 200", 12) != 0) {
                conn_reset(c);
                continue;
            }
            uint64_t t = now_ns();
            if (c->due >= record_from)
                record(t - c->due);
            done++;
            c->busy = 0;
            c->got = 0;
        }
        if (next_due >= stop && qhead == qtail) {
            int busy = 0;
            for (int i = 0; i < nconns; i++)
                busy |= conns[i].busy;
            if (!busy || now > stop + 5000000000u)
                break;
        }
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    double measured = (double)nlat / seconds;
    printf("sent %llu done %llu errors %ld rate %.0f p50 %.1f p99 %.1f p999 %.1f max %.1f\n",
           (unsigned long long)sent, (unsigned long long)done, errors, measured,
           percentile_us(0.50), percentile_us(0.99), percentile_us(0.999),
           nlat ? (double)lat[nlat - 1] / 1000.0 : 0.0);
    return errors ? 1 : 0;
}
