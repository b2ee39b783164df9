/* SPDX-License-Identifier: MIT */
/*
 * idle_conns: opens N keep-alive connections to 127.0.0.1:PORT, has each served one
 * request, then holds them all open, idle, for bench/memory.sh to read the server's RSS.
 *
 * It prints "ready N" on stdout once every connection has had its 200 response, then
 * waits for SIGTERM or SIGINT. Then it prints "open K of N": how many connections the
 * server still held at that moment (so a server that closed idle connections early is
 * not credited with memory it never kept), and exits.
 *
 * With -b (a burst), every connection is opened and sends its request before any answer
 * is read, so the server has N requests in hand at once; then the answers are read.
 *
 * Usage: idle_conns [-b] PORT N [PATH]      (PATH defaults to /plaintext)
 * Build: cc -O2 -o build/bench/idle_conns bench/idle_conns.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

/* Reads one response: the header block, then Content-Length bytes of body.
 * Returns the status code, or -1. */
static int response_read(int fd) {
    char buf[4096];
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        if (have == sizeof buf - 1)
            return -1;
        ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    const char *cl = strcasestr(buf, "\r\ncontent-length:");
    long body = cl ? strtol(cl + 17, NULL, 10) : 0;
    long got = (long)(buf + have - (end + 4));
    while (got < body) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0)
            return -1;
        got += r;
    }
    return status;
}

static int conn_send(int port, const char *req) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads the answer on fd: fd when it is a 200, else -1 (and fd closed). */
static int conn_answered(int fd) {
    int status = response_read(fd);
    if (status != 200) {
        fprintf(stderr, "idle_conns: answered %d\n", status);
        close(fd);
        return -1;
    }
    return fd;
}

/* A connection is still open if a non-blocking peek finds nothing to read (EAGAIN);
 * EOF or an error means the server closed it. */
static int conn_still_open(int fd) {
    char c;
    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

int main(int argc, char **argv) {
    int burst = argc > 1 && strcmp(argv[1], "-b") == 0;
    argc -= burst;
    argv += burst;
    if (argc < 3) {
        fprintf(stderr, "usage: idle_conns [-b] PORT N [PATH]\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]);
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", argc > 3 ? argv[3] : "/plaintext");

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int *fds = calloc((size_t)n, sizeof *fds);
    if (!fds)
        return 1;

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);

    for (int i = 0; i < n; i++) {
        fds[i] = conn_send(port, req);
        if (fds[i] >= 0 && !burst)
            fds[i] = conn_answered(fds[i]);
        if (fds[i] < 0) {
            fprintf(stderr, "idle_conns: connection %d of %d failed: %s\n", i + 1, n, strerror(errno));
            return 1;
        }
    }
    for (int i = 0; burst && i < n; i++) {
        if (conn_answered(fds[i]) < 0) {
            fprintf(stderr, "idle_conns: connection %d of %d not answered\n", i + 1, n);
            return 1;
        }
    }
    printf("ready %d\n", n);
    fflush(stdout);

    while (!stop)
        sigsuspend(&old); /* signals are blocked outside it: none can be missed */
    int open = 0;
    for (int i = 0; i < n; i++)
        open += conn_still_open(fds[i]);
    printf("open %d of %d\n", open, n);
    return 0;
}
