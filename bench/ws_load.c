/* SPDX-License-Identifier: MIT */
/*
 * ws_load: the WebSocket load generator of bench/ws.sh (issue 17). One thread, epoll, so it
 * costs little next to the server it measures; it does the least a client can: every
 * message it sends is the same masked frame built once, and an echo is recognised by its
 * length (the server's frames are unmasked, their head's size known), not parsed.
 *
 *   ws_load echo PORT PATH CONNS SIZE SECONDS
 *       CONNS connections, each with one message of SIZE bytes in flight (binary): sent,
 *       echoed, sent again. Prints "messages N seconds S rate R".
 *   ws_load idle PORT PATH CONNS [deflate|message]
 *       Opens CONNS WebSocket connections (offering permessage-deflate with "deflate";
 *       "message" offers it too and has one 256-byte message echoed on each), prints
 *       "ready CONNS", holds them until SIGTERM, then prints "open K of CONNS".
 *   ws_load broadcast PORT CONNS SIZE ROUNDS
 *       CONNS subscribers on /sub (each told "ok" once subscribed), then ROUNDS times: one
 *       message of SIZE bytes sent to /pub, which publishes it to every subscriber; prints
 *       the time from the send to the last subscriber's delivery, per round, and the
 *       median: "round I us T" ... "median_us T".
 *
 * Build: cc -O2 -o build/bench/ws_load bench/ws_load.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int port;

/* Connects and upgrades (blocking); returns the socket, or -1. */
static int ws_connect(const char *path, int deflate) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     path, deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                     "client_max_window_bits\r\n" : "");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    /* Read the 101's head byte by byte: nothing after it may be swallowed. */
    char head[1024];
    size_t len = 0;
    while (len < sizeof head - 1) {
        if (read(fd, head + len, 1) != 1)
            break;
        len++;
        if (len >= 4 && !memcmp(head + len - 4, "\r\n\r\n", 4))
            break;
    }
    head[len] = '\0';
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void nonblock(int fd) {
    int one = 1;
    ioctl(fd, FIONBIO, &one);
}

/* A client frame (masked) of `size` bytes of binary payload. */
static char *client_frame(size_t size, size_t *len) {
    char *f = malloc(size + 14);
    size_t h = 0;
    f[h++] = (char)0x82;
    if (size < 126) {
        f[h++] = (char)(0x80 | size);
    } else if (size < 65536) {
        f[h++] = (char)(0x80 | 126);
        f[h++] = (char)(size >> 8);
        f[h++] = (char)size;
    } else {
        f[h++] = (char)(0x80 | 127);
        for (int i = 7; i >= 0; i--)
            f[h++] = (char)((uint64_t)size >> (8 * i));
    }
    memcpy(f + h, "\x12\x34\x56\x78", 4);
    h += 4;
    for (size_t i = 0; i < size; i++)
        f[h + i] = (char)(('a' + i % 26) ^ "\x12\x34\x56\x78"[i & 3]);
    *len = h + size;
    return f;
}

/* The size of the server's (unmasked) frame carrying `size` bytes. */
static size_t server_frame_len(size_t size) {
    return size + (size < 126 ? 2 : size < 65536 ? 4 : 10);
}

static void send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            poll(&pf, 1, 1000);
            continue;
        }
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* ----- echo ---------------------------------------------------------------------------- */

static int run_echo(const char *path, int conns, size_t size, int seconds) {
    size_t flen, want = server_frame_len(size);
    char *frame = client_frame(size, &flen);
    int ep = epoll_create1(0);
    size_t *got = calloc((size_t)conns, sizeof *got);
    int *fds = calloc((size_t)conns, sizeof *fds);
    for (int i = 0; i < conns; i++) {
        fds[i] = ws_connect(path, 0);
        if (fds[i] < 0) {
            fprintf(stderr, "ws_load: connection %d failed\n", i);
            return 1;
        }
        nonblock(fds[i]);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    for (int i = 0; i < conns; i++)
        send_all(fds[i], frame, flen);
    static char buf[1 << 16];
    struct epoll_event evs[256];
    uint64_t count = 0, start = now_us(), warm = start + 1000000, end = warm + (uint64_t)seconds * 1000000;
    uint64_t counted_from = 0;
    for (;;) {
        uint64_t t = now_us();
        if (!counted_from && t >= warm) {
            counted_from = t;
            count = 0;
        }
        if (t >= end)
            break;
        int n = epoll_wait(ep, evs, 256, 100);
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            for (;;) {
                ssize_t r = read(fds[i], buf, sizeof buf);
                if (r <= 0) {
                    if (r == 0 || errno != EAGAIN) {
                        fprintf(stderr, "ws_load: connection %d ended\n", i);
                        return 1;
                    }
                    break;
                }
                got[i] += (size_t)r;
                while (got[i] >= want) {
                    got[i] -= want;
                    count++;
                    send_all(fds[i], frame, flen);
                }
            }
        }
    }
    double secs = (double)(now_us() - counted_from) / 1e6;
    printf("messages %llu seconds %.3f rate %.0f\n", (unsigned long long)count, secs,
           (double)count / secs);
    return 0;
}

/* ----- idle ------------------------------------------------------------------------------ */

static int run_idle(const char *path, int conns, int deflate) {
    int *fds = calloc((size_t)conns, sizeof *fds);
    size_t flen;
    char *frame = client_frame(256, &flen);
    char reply[512];
    for (int i = 0; i < conns; i++) {
        fds[i] = ws_connect(path, deflate);
        if (fds[i] < 0) {
            fprintf(stderr, "ws_load: connection %d failed\n", i);
            return 1;
        }
        /* "message": one echoed message first, so the server's compressor (context
         * takeover) exists, as on a connection that has talked */
        if (deflate > 1) {
            send_all(fds[i], frame, flen);
            if (read(fds[i], reply, sizeof reply) <= 0)
                return 1;
        }
    }
    printf("ready %d\n", conns);
    fflush(stdout);
    while (!stop)
        pause();
    int open = 0;
    for (int i = 0; i < conns; i++) {
        char b;
        ssize_t r = recv(fds[i], &b, 1, MSG_DONTWAIT | MSG_PEEK);
        open += r < 0 && errno == EAGAIN;
    }
    printf("open %d of %d\n", open, conns);
    return 0;
}

/* ----- broadcast ------------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Reads until every subscriber has `want` bytes more; returns when the last one has. */
static void await_all(int ep, int *fds, size_t *got, int conns, size_t want) {
    static char buf[1 << 16];
    struct epoll_event evs[512];
    int done = 0;
    for (int i = 0; i < conns; i++)
        done += got[i] >= want;
    while (done < conns) {
        int n = epoll_wait(ep, evs, 512, 5000);
        if (n <= 0) {
            fprintf(stderr, "ws_load: %d of %d subscribers got nothing in 5 s\n", conns - done, conns);
            exit(1);
        }
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            ssize_t r;
            while ((r = read(fds[i], buf, sizeof buf)) > 0) {
                int before = got[i] >= want;
                got[i] += (size_t)r;
                done += !before && got[i] >= want;
            }
        }
    }
}

static int run_broadcast(int conns, size_t size, int rounds) {
    int ep = epoll_create1(0);
    int *fds = calloc((size_t)conns, sizeof *fds);
    size_t *got = calloc((size_t)conns, sizeof *got);
    for (int i = 0; i < conns; i++) {
        fds[i] = ws_connect("/sub", 0);
        if (fds[i] < 0) {
            fprintf(stderr, "ws_load: subscriber %d failed\n", i);
            return 1;
        }
        nonblock(fds[i]);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    await_all(ep, fds, got, conns, server_frame_len(2)); /* every "ok": all subscribed */
    int pub = ws_connect("/pub", 0);
    if (pub < 0)
        return 1;
    size_t flen, want = server_frame_len(size);
    char *frame = client_frame(size, &flen);
    uint64_t *us = calloc((size_t)rounds, sizeof *us);
    for (int r = 0; r < rounds; r++) {
        memset(got, 0, (size_t)conns * sizeof *got);
        uint64_t t0 = now_us();
        send_all(pub, frame, flen);
        await_all(ep, fds, got, conns, want);
        us[r] = now_us() - t0;
        printf("round %d us %llu\n", r, (unsigned long long)us[r]);
        fflush(stdout); /* bench/ws.sh starts its CPU count at round 0 */
    }
    qsort(us, (size_t)rounds, sizeof *us, cmp_u64);
    printf("median_us %llu\n", (unsigned long long)us[rounds / 2]);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 7 && !strcmp(argv[1], "echo")) {
        port = atoi(argv[2]);
        return run_echo(argv[3], atoi(argv[4]), (size_t)atol(argv[5]), atoi(argv[6]));
    }
    if (argc >= 5 && !strcmp(argv[1], "idle")) {
        port = atoi(argv[2]);
        int deflate = argc > 5 && !strcmp(argv[5], "deflate") ? 1
                    : argc > 5 && !strcmp(argv[5], "message") ? 2 : 0;
        return run_idle(argv[3], atoi(argv[4]), deflate);
    }
    if (argc >= 6 && !strcmp(argv[1], "broadcast")) {
        port = atoi(argv[2]);
        return run_broadcast(atoi(argv[3]), (size_t)atol(argv[4]), atoi(argv[5]));
    }
    fprintf(stderr, "usage: ws_load echo PORT PATH CONNS SIZE SECONDS\n"
                    "       ws_load idle PORT PATH CONNS [deflate|message]\n"
                    "       ws_load broadcast PORT CONNS SIZE ROUNDS\n");
    return 2;
}
