/* SPDX-License-Identifier: MIT
 * The client of bench/attack.sh: each attack shape against one server on 127.0.0.1, many
 * connections driven by one poll loop. It prints "key=value" lines for the script and
 * measures nothing on the server side (the script reads /proc for that).
 *
 *   attack slowloris PORT HOLD N TIMEOUT_MS    HOLD half heads, then N clients: served, p50, p99
 *   attack reset PORT CLIENTS BYTES PATH       CLIENTS uploads cut after BYTES with SO_LINGER 0
 *   attack upload PORT COUNT SIZE PATH CONC    COUNT POSTs of SIZE bytes, CONC at a time
 *   attack burst PORT CONNS HOLD_MS            CONNS connections each send a request at once,
 *                                              all answers read, then held idle HOLD_MS
 *   attack slowread PORT CONNS PATH HOLD_MS    CONNS connections each GET PATH with a tiny
 *                                              receive window and an Ethernet segment size,
 *                                              read nothing until every answer has begun,
 *                                              say "held", wait HOLD_MS, then read every
 *                                              answer to its end: how many arrived whole
 *   attack stop PORT PID SIG KEEPALIVE NEW BODY PATH
 *                                              a slow upload of BODY bytes half sent, KEEPALIVE
 *                                              idle connections and NEW fresh ones each send a
 *                                              request, SIG goes to PID at once, the upload
 *                                              finishes: which were answered, which reset
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { OPEN, ANSWERED, RESET, CLOSED };

struct conn {
    int fd;
    enum state state;
    char head[512];            /* request head, then the body segment */
    size_t head_len, body_len, sent, send_limit;
    const char *body;
    char in[8192];             /* response head, until its end is seen */
    size_t in_len, head_end;
    long long want, got;       /* response body: Content-Length (-1: until EOF), received */
    int status;
    double t0, t1;
};

static int port;
static char *zeros;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static int open_conn(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
        die("connect");
    return fd;
}

/* conn_init C HEAD BODY_LEN LIMIT: C will send HEAD then BODY_LEN zero bytes, stopping after
 * LIMIT bytes in all (a half request for the attacks that stop early). */
static void conn_init(struct conn *c, const char *head, size_t body_len, size_t limit) {
    memset(c, 0, sizeof *c);
    c->fd = open_conn();
    c->head_len = strlen(head);
    memcpy(c->head, head, c->head_len);
    c->body = zeros;
    c->body_len = body_len;
    c->send_limit = limit;
    c->want = -1;
    c->t0 = now_ms();
}

static void conn_request(struct conn *c, const char *head, size_t body_len) {
    c->head_len = strlen(head);
    memcpy(c->head, head, c->head_len);
    c->body_len = body_len;
    c->sent = 0;
    c->send_limit = c->head_len + body_len;
    c->in_len = c->head_end = 0;
    c->got = 0;
    c->want = -1;
    c->status = 0;
    c->state = OPEN;
    c->t0 = now_ms();
}

static size_t to_send(const struct conn *c) {
    size_t total = c->head_len + c->body_len;
    return (c->send_limit < total ? c->send_limit : total) - c->sent;
}

static void conn_finish(struct conn *c, enum state s) {
    if (c->state == OPEN)
        c->state = s;
    c->t1 = now_ms();
}

static void send_some(struct conn *c) {
    while (to_send(c)) {
        size_t n = to_send(c);
        const char *p;
        if (c->sent < c->head_len) {
            p = c->head + c->sent;
            if (n > c->head_len - c->sent)
                n = c->head_len - c->sent;
        } else {
            p = c->body + (c->sent - c->head_len) % (1u << 20);
            if (n > (1u << 20) - (c->sent - c->head_len) % (1u << 20))
                n = (1u << 20) - (c->sent - c->head_len) % (1u << 20);
        }
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINPROGRESS && errno != ENOTCONN)
                conn_finish(c, RESET);
            return;
        }
        c->sent += (size_t)w;
    }
}

/* parse_head C: once the response head is whole, its status and Content-Length. */
static void parse_head(struct conn *c) {
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end)
        return;
    c->head_end = (size_t)(end - c->in) + 4;
    c->status = atoi(c->in + 9);
    char *cl = memmem(c->in, c->head_end, "\r\nContent-Length:", 17);
    if (!cl)
        cl = memmem(c->in, c->head_end, "\r\ncontent-length:", 17);
    c->want = cl ? atoll(cl + 17) : (c->status == 204 || c->status == 304) ? 0 : -1;
    c->got = (long long)(c->in_len - c->head_end);
}

static void recv_some(struct conn *c) {
    char buf[65536];
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r < 0) {
            if (errno != EAGAIN)
                conn_finish(c, c->head_end && c->want < 0 ? ANSWERED : RESET);
            return;
        }
        if (r == 0) {
            conn_finish(c, c->head_end && c->want < 0 ? ANSWERED : CLOSED);
            return;
        }
        if (!c->head_end) {
            size_t n = (size_t)r < sizeof c->in - c->in_len ? (size_t)r : sizeof c->in - c->in_len;
            memcpy(c->in + c->in_len, buf, n);
            c->in_len += n;
            parse_head(c);
            c->got += r - (ssize_t)n; /* body bytes past what the head buffer took */
        } else {
            c->got += r;
        }
        if (c->head_end && c->want >= 0 && c->got >= c->want) {
            conn_finish(c, ANSWERED);
            return;
        }
    }
}

/* pump CONNS N UNTIL_MS: polls every open connection until each is answered or gone, or
 * UNTIL_MS passes. Connections that have nothing to send and expect nothing (the held
 * halves) only show whether the server closed them. */
static void pump(struct conn *cs, int n, double until_ms) {
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    int *idx = calloc((size_t)n, sizeof *idx);
    if (!p || !idx)
        die("calloc");
    for (;;) {
        int k = 0, waiting = 0;
        for (int i = 0; i < n; i++) {
            if (cs[i].state != OPEN)
                continue;
            p[k] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN | (to_send(&cs[i]) ? POLLOUT : 0)};
            idx[k++] = i;
            waiting += cs[i].send_limit >= cs[i].head_len + cs[i].body_len;
        }
        double left = until_ms - now_ms();
        if (!waiting || left <= 0)
            break;
        if (poll(p, (nfds_t)k, left > 50 ? 50 : (int)left + 1) < 0 && errno != EINTR)
            die("poll");
        for (int j = 0; j < k; j++) {
            struct conn *c = &cs[idx[j]];
            if (p[j].revents & POLLOUT)
                send_some(c);
            if (c->state == OPEN && (p[j].revents & (POLLIN | POLLERR | POLLHUP)))
                recv_some(c);
        }
    }
    free(p);
    free(idx);
}

/* pump_sends: like pump, until every connection has sent what it may (its send_limit). */
static void pump_sends(struct conn *cs, int n, double until_ms) {
    for (;;) {
        int pending = 0;
        for (int i = 0; i < n; i++) {
            if (cs[i].state == OPEN && to_send(&cs[i]))
                send_some(&cs[i]);
            pending += cs[i].state == OPEN && to_send(&cs[i]) > 0;
        }
        if (!pending || now_ms() >= until_ms)
            return;
        usleep(1000);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, int n, double q) {
    if (!n)
        return -1;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(q * n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static int count(const struct conn *cs, int n, enum state s) {
    int k = 0;
    for (int i = 0; i < n; i++)
        k += cs[i].state == s;
    return k;
}

static void close_all(struct conn *cs, int n, int reset) {
    struct linger lg = {1, 0};
    for (int i = 0; i < n; i++) {
        if (reset)
            setsockopt(cs[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(cs[i].fd);
    }
}

static struct conn *conns(int n) {
    struct conn *cs = calloc((size_t)n, sizeof *cs);
    if (!cs)
        die("calloc");
    return cs;
}

static const char GET[] = "GET /plaintext HTTP/1.1\r\nHost: attack\r\n\r\n";
static const char GET_CLOSE[] = "GET /plaintext HTTP/1.1\r\nHost: attack\r\nConnection: close\r\n\r\n";

static void post_head(char *out, size_t cap, const char *path, size_t len) {
    snprintf(out, cap, "POST %s HTTP/1.1\r\nHost: attack\r\nContent-Type: application/octet-stream"
             "\r\nContent-Length: %zu\r\n\r\n", path, len);
}

static int slowloris(int hold, int n, int timeout_ms) {
    static const char half[] = "GET /plaintext HTTP/1.1\r\nHost: attack\r\nUser-Agent: slow";
    struct conn *h = conns(hold), *c = conns(n);
    for (int i = 0; i < hold; i++)
        conn_init(&h[i], half, 0, strlen(half));
    pump_sends(h, hold, now_ms() + 5000);
    usleep(300 * 1000); /* the server accepts what it can of them */
    for (int i = 0; i < n; i++)
        conn_init(&c[i], GET_CLOSE, 0, sizeof GET_CLOSE - 1);
    pump(c, n, now_ms() + timeout_ms);
    double *t = calloc((size_t)n + 1, sizeof *t);
    int served = 0;
    for (int i = 0; i < n; i++)
        if (c[i].state == ANSWERED && c[i].status == 200)
            t[served++] = c[i].t1 - c[i].t0;
    for (int i = 0; i < hold; i++) { /* a half the server answered (408) or closed */
        char b;
        if (recv(h[i].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0 || errno != EAGAIN)
            h[i].state = CLOSED;
    }
    printf("served=%d\nclients=%d\n", served, n);
    printf("p50_ms=%.1f\np99_ms=%.1f\n", percentile(t, served, 0.5), percentile(t, served, 0.99));
    printf("halves_closed=%d\n", hold - count(h, hold, OPEN));
    close_all(h, hold, 1);
    close_all(c, n, 0);
    return 0;
}

static int resets(int n, size_t bytes, const char *path) {
    struct conn *c = conns(n);
    char head[256];
    post_head(head, sizeof head, path, 10u << 20);
    for (int i = 0; i < n; i++)
        conn_init(&c[i], head, 10u << 20, strlen(head) + bytes);
    pump_sends(c, n, now_ms() + 10000);
    int done = 0;
    for (int i = 0; i < n; i++)
        done += c[i].state == OPEN && !to_send(&c[i]);
    close_all(c, n, 1);
    printf("cut=%d\nclients=%d\n", done, n);
    return 0;
}

static int uploads(int count_, size_t size, const char *path, int conc) {
    char head[256];
    post_head(head, sizeof head, path, size);
    int ok = 0, left = count_;
    while (left > 0) {
        int k = left < conc ? left : conc;
        struct conn *c = conns(k);
        for (int i = 0; i < k; i++)
            conn_init(&c[i], head, size, strlen(head) + size);
        pump(c, k, now_ms() + 60000);
        for (int i = 0; i < k; i++)
            ok += c[i].state == ANSWERED && c[i].status / 100 == 2;
        close_all(c, k, 0);
        free(c);
        left -= k;
    }
    printf("answered=%d\nposts=%d\n", ok, count_);
    return 0;
}

static int burst(int n, int hold_ms) {
    struct conn *c = conns(n);
    for (int i = 0; i < n; i++)
        conn_init(&c[i], GET, 0, sizeof GET - 1);
    pump(c, n, now_ms() + 30000);
    int ok = count(c, n, ANSWERED);
    printf("answered=%d\nconns=%d\nheld\n", ok, n);
    fflush(stdout);
    usleep((useconds_t)hold_ms * 1000);
    close_all(c, n, 0);
    return 0;
}

/* A slow reader: a 2 KiB receive buffer (the window it offers) and a maximum segment of
 * 1448 bytes, Ethernet's. On loopback the segment would be 64 KiB and the server's kernel
 * would start with a send buffer of megabytes, taking whole answers off the server at
 * once; across a network it takes ten segments or so and the server keeps the rest. */
static void make_slow(int fd) {
    int small = 2048, mss = 1448;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
}

/* Like conn_init, with the socket made slow before it connects. */
static void slow_conn_init(struct conn *c, const char *head) {
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket");
    make_slow(c->fd);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
        die("connect");
    c->head_len = strlen(head);
    memcpy(c->head, head, c->head_len);
    c->body = zeros;
    c->send_limit = c->head_len;
    c->want = -1;
    c->t0 = now_ms();
}

/* Whether the answer has begun to arrive (a byte waits in the socket), without reading it. */
static int answer_begun(const struct conn *c) {
    char b;
    return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static int slowread(int n, const char *path, int hold_ms) {
    struct conn *c = conns(n);
    char head[256];
    snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: attack\r\nConnection: close\r\n\r\n",
             path);
    for (int i = 0; i < n; i++)
        slow_conn_init(&c[i], head);
    pump_sends(c, n, now_ms() + 10000);
    int begun = 0;
    for (double until = now_ms() + 30000; now_ms() < until; usleep(20 * 1000)) {
        begun = 0;
        for (int i = 0; i < n; i++)
            begun += answer_begun(&c[i]);
        if (begun == n)
            break;
    }
    printf("begun=%d\nconns=%d\nheld\n", begun, n);
    fflush(stdout);
    usleep((useconds_t)hold_ms * 1000);
    pump(c, n, now_ms() + 60000);
    int whole = 0;
    long long bytes = 0; /* the longest body received */
    for (int i = 0; i < n; i++) {
        whole += c[i].state == ANSWERED && c[i].status == 200;
        if (c[i].got > bytes)
            bytes = c[i].got;
    }
    printf("whole=%d\nbody_bytes=%lld\n", whole, bytes);
    close_all(c, n, 0);
    return 0;
}

static const char *state_name(const struct conn *c) {
    switch (c->state) {
    case ANSWERED: return "answered";
    case RESET: return "reset";
    case CLOSED: return "closed";
    default: return "unanswered";
    }
}

static int stop(pid_t pid, int sig, int keepalive, int fresh, size_t body, const char *path) {
    int n = 1 + keepalive + fresh;
    struct conn *c = conns(n);
    char head[256];
    post_head(head, sizeof head, path, body);
    for (int i = 1; i <= keepalive; i++)
        conn_init(&c[i], GET, 0, sizeof GET - 1);
    pump(c + 1, keepalive, now_ms() + 5000);
    if (count(c + 1, keepalive, ANSWERED) != keepalive) {
        fprintf(stderr, "attack: keep-alive connections not answered before the stop\n");
        return 2;
    }
    conn_init(&c[0], head, body, strlen(head) + body / 2);
    pump_sends(c, 1, now_ms() + 5000);
    usleep(100 * 1000); /* the upload is in flight: head and half its body received */
    for (int i = 1; i <= keepalive; i++)
        conn_request(&c[i], GET, 0);
    for (int i = keepalive + 1; i < n; i++)
        conn_init(&c[i], GET, 0, sizeof GET - 1);
    pump_sends(c + 1, n - 1, now_ms() + 1000);
    if (kill(pid, sig) < 0)
        die("kill");
    /* The rest of the upload, in ten slices over 300 ms, while the server drains. */
    for (int s = 1; s <= 10; s++) {
        c[0].send_limit = strlen(head) + body / 2 + (body - body / 2) * (size_t)s / 10;
        pump(c, n, now_ms() + 30);
    }
    pump(c, n, now_ms() + 10000);
    printf("upload=%s\n", state_name(&c[0]));
    printf("keepalive_answered=%d\nkeepalive=%d\n", count(c + 1, keepalive, ANSWERED), keepalive);
    printf("new_answered=%d\nnew=%d\n", count(c + 1 + keepalive, fresh, ANSWERED), fresh);
    printf("reset=%d\nclosed=%d\nunanswered=%d\n", count(c, n, RESET), count(c, n, CLOSED),
           count(c, n, OPEN));
    close_all(c, n, 0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: see bench/attack.c\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    port = atoi(argv[2]);
    if (!(zeros = calloc(1, 1u << 20)))
        die("calloc");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "slowloris") && argc == 6)
        return slowloris(atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (!strcmp(cmd, "reset") && argc == 6)
        return resets(atoi(argv[3]), strtoull(argv[4], NULL, 10), argv[5]);
    if (!strcmp(cmd, "upload") && argc == 7)
        return uploads(atoi(argv[3]), strtoull(argv[4], NULL, 10), argv[5], atoi(argv[6]));
    if (!strcmp(cmd, "burst") && argc == 5)
        return burst(atoi(argv[3]), atoi(argv[4]));
    if (!strcmp(cmd, "slowread") && argc == 6)
        return slowread(atoi(argv[3]), argv[4], atoi(argv[5]));
    if (!strcmp(cmd, "stop") && argc == 9)
        return stop(atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]),
                    strtoull(argv[7], NULL, 10), argv[8]);
    fprintf(stderr, "attack: bad command or arguments (see bench/attack.c)\n");
    return 2;
}
