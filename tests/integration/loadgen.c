/* SPDX-License-Identifier: MIT */
/*
 * A load generator that counts what a restart must not cause (tests/integration/restart.sh):
 * requests that fail and connections that are refused.
 *
 *     loadgen PORT SECONDS THREADS [PATH]
 *
 * Half the threads open a connection per request (Connection: close): every one of them
 * must be accepted and answered 200. The other half keep connections alive, as browsers
 * and proxies do, and resend a request once on a new connection when a connection they
 * reused was closed before any byte of the answer came back (RFC 9112 §9.3.1: a server
 * may close an idle connection at any time, and a client retries an idempotent request
 * then); such retries are counted apart, and are not failures. Prints
 * "requests N failed F refused R retried K"; exits 0 only when F and R are 0 and N > 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int port;
static const char *path = "/plaintext";
static atomic_long requests, failed, refused, retried;
static atomic_int done;

static int open_conn(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    /* No TIME_WAIT left behind by thousands of short connections (RST on close). */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/* Reads one answer; its status, 0 when the connection ended before any byte, -1 on an
 * error after some bytes or a malformed answer. *closes: the answer said Connection: close. */
static int read_answer(int fd, int *closes) {
    char buf[4096];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            return got == 0 && (n == 0 || errno == ECONNRESET) ? 0 : -1;
        got += (size_t)n;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strcasestr(buf, "\r\ncontent-length:");
        if (!cl || cl > end)
            return -1;
        size_t need = (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10);
        while (got < need) {
            if (need >= sizeof buf || (n = read(fd, buf + got, sizeof buf - 1 - got)) <= 0)
                return -1;
            got += (size_t)n;
        }
        buf[got] = '\0';
        *closes = strcasestr(buf, "\r\nconnection: close") != NULL;
        return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : -1;
    }
}

static int send_request(int fd, int close_after) {
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: loadgen\r\n%s\r\n", path,
                     close_after ? "Connection: close\r\n" : "");
    return send(fd, req, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

/* A fresh connection for one request: it must be accepted and answered. */
static void one_per_connection(void) {
    int fd = open_conn();
    if (fd < 0) {
        atomic_fetch_add(fd == -ECONNREFUSED ? &refused : &failed, 1);
        return;
    }
    int closes;
    int status = send_request(fd, 1) < 0 ? -1 : read_answer(fd, &closes);
    atomic_fetch_add(status == 200 ? &requests : &failed, 1);
    if (status != 200)
        fprintf(stderr, "loadgen: new connection: %s\n",
                status == 0 ? "closed before an answer" : status < 0 ? strerror(errno) : "not 200");
    close(fd);
}

static void *close_thread(void *arg) {
    (void)arg;
    while (!atomic_load(&done))
        one_per_connection();
    return NULL;
}

static void *keepalive_thread(void *arg) {
    (void)arg;
    int fd = -1, reused = 0;
    while (!atomic_load(&done)) {
        if (fd < 0) {
            fd = open_conn();
            reused = 0;
            if (fd < 0) {
                atomic_fetch_add(fd == -ECONNREFUSED ? &refused : &failed, 1);
                continue;
            }
        }
        int closes = 0;
        int status = send_request(fd, 0) < 0 ? 0 : read_answer(fd, &closes);
        if (status == 0 && reused) { /* closed while idle: resend on a new connection */
            atomic_fetch_add(&retried, 1);
            close(fd);
            fd = -1;
            continue;
        }
        atomic_fetch_add(status == 200 ? &requests : &failed, 1);
        if (status != 200)
            fprintf(stderr, "loadgen: keep-alive: %s\n", status == 0 ? "closed before an answer"
                                                                    : "bad answer");
        reused = 1;
        if (status != 200 || closes) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: loadgen PORT SECONDS THREADS [PATH]\n");
        return 2;
    }
    port = atoi(argv[1]);
    int seconds = atoi(argv[2]), nthreads = atoi(argv[3]);
    if (argc > 4)
        path = argv[4];
    pthread_t t[64];
    if (nthreads < 2 || nthreads > 64)
        nthreads = 2;
    for (int i = 0; i < nthreads; i++)
        pthread_create(&t[i], NULL, i % 2 ? keepalive_thread : close_thread, NULL);
    sleep((unsigned)seconds);
    atomic_store(&done, 1);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    printf("requests %ld failed %ld refused %ld retried %ld\n", atomic_load(&requests),
           atomic_load(&failed), atomic_load(&refused), atomic_load(&retried));
    return atomic_load(&failed) || atomic_load(&refused) || !atomic_load(&requests) ? 1 : 0;
}
