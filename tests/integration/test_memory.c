/* SPDX-License-Identifier: MIT */
/*
 * Memory comes back after large bodies (issue 13, point 4): one worker serves a run of
 * 16 MiB uploads, half of them echoed (chopin_res_copy) and half only read, one at a
 * time; once no connection is open, the process's resident set must be back within
 * twice what it was after start-up and one warm-up request (plus SLACK_KIB). Freed
 * memory the allocator keeps for itself counts against it: that is the bug (a worker
 * with no connection held 385 MB after such a run).
 *
 * The client side reads and writes through static buffers, so what grows is the
 * server's. Under AddressSanitizer the resident set says nothing about the allocator
 * (freed memory sits in its quarantine), so that check is skipped there, and says so.
 *
 * Slow readers (issue 13, point 4): many connections each ask for a 106 KB answer (the
 * size of the demo's fullest todo page) and read none of it. An answer built per request
 * (chopin_res_copy) is held once per reader while they wait, and must go back once they
 * leave (1,000 of them left 65 MB on epoll, 37 MB on io_uring, of freed heap before the
 * worker trimmed when idle); an answer every client shares (chopin_res_static) must cost
 * each reader far less than its size (6 to 8 KiB measured, its connection's buffers).
 * Runs once per backend (CHOPIN_BACKEND).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define MIB (1u << 20)
#define BODY (16u * MIB)
#define UPLOADS 20
/* Noise on top of twice the start: a quarter of one body. Thread stacks, the worker's
 * cached pool buffers and the allocator's own bookkeeping move the resident set by a
 * few hundred KiB between runs; a body the allocator kept is 16 MiB at least. */
#define SLACK_KIB 4096
#define IDLE_WAIT_MS 10000

static int skipped;
static char pattern[MIB]; /* the body, sent BODY / MIB times */
static char rbuf[1 << 16];

static void echo(chopin_req *req, chopin_res *res, void *data) {
    (void)data;
    chopin_str b = chopin_req_body(req);
    chopin_res_copy(res, 200, "application/octet-stream", b.ptr, b.len);
}

/* Reads the body (every byte, as a handler that stores it would) and answers its length. */
static void upload(chopin_req *req, chopin_res *res, void *data) {
    (void)data;
    chopin_str b = chopin_req_body(req);
    unsigned sum = 0;
    for (size_t i = 0; i < b.len; i += 4096)
        sum += (unsigned char)b.ptr[i];
    char text[64];
    int n = snprintf(text, sizeof text, "%zu %u", b.len, sum);
    chopin_res_copy(res, 200, "text/plain", text, (size_t)n);
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = -1;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads a response with a Content-Length head (the server closes after it: the request
 * said Connection: close) and returns its body length when the answer is a 200 whose
 * body, when `echoed`, is the pattern repeated; else -1. */
static long read_answer(int fd, int echoed) {
    size_t got = 0, body = 0;
    char *end = NULL;
    int ok = 1;
    for (;;) {
        ssize_t n = recv(fd, rbuf + got, sizeof rbuf - 1 - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t)n;
        rbuf[got] = '\0';
        if ((end = strstr(rbuf, "\r\n\r\n")) != NULL)
            break;
        if (got == sizeof rbuf - 1)
            return -1;
    }
    if (strncmp(rbuf, "HTTP/1.1 200 ", 13) != 0)
        return -1;
    const char *cl = strstr(rbuf, "Content-Length: ");
    size_t want = cl ? strtoul(cl + 16, NULL, 10) : 0;
    size_t off = (size_t)(end + 4 - rbuf);
    for (;;) {
        for (size_t i = off; i < got; i++, body++)
            ok &= !echoed || rbuf[i] == pattern[body % MIB];
        if (body >= want)
            break;
        ssize_t n = recv(fd, rbuf, sizeof rbuf, 0);
        if (n <= 0)
            return -1;
        got = (size_t)n;
        off = 0;
    }
    return ok && body == want ? (long)body : -1;
}

/* One request on a new connection: a POST of `len` bytes of the pattern. */
static long post(int port, const char *path, size_t len) {
    int fd = connect_to(port);
    if (fd < 0)
        return -1;
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     path, len);
    int rc = send_all(fd, head, (size_t)n);
    for (size_t sent = 0; rc == 0 && sent < len; sent += MIB)
        rc = send_all(fd, pattern, len - sent < MIB ? len - sent : MIB);
    long got = rc == 0 ? read_answer(fd, strcmp(path, "/echo") == 0) : -1;
    close(fd);
    return got;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Bounded: a connection still open after IDLE_WAIT_MS is a failure of its own. */
static int await_no_connection(chopin_server *s) {
    for (int waited = 0; waited < IDLE_WAIT_MS; waited += 20) {
        chopin_stats st;
        chopin_server_stats(s, &st);
        if (st.connections_open == 0)
            return 1;
        sleep_ms(20);
    }
    return 0;
}

static void test_rss_returns_after_large_bodies(void) {
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (char)('a' + i % 23);
    chopin_router *r = chopin_router_new();
    chopin_router_post(r, "/echo", echo, NULL);
    chopin_router_post(r, "/upload", upload, NULL);
    chopin_options o = chopin_options_default();
    o.workers = 1;
    o.max_body_bytes = BODY;
    chopin_server *s = cl_start(r, &o);
    CHECK(s != NULL);
    if (!s) {
        chopin_router_free(r);
        return;
    }
    int port = chopin_server_port(s);
    CHECK_INT(post(port, "/echo", 1000), 1000); /* warm-up: a small body */
    CHECK(await_no_connection(s));
    long start = rss_kib();

    int served = 0;
    for (int i = 0; i < UPLOADS; i++) {
        const char *path = i % 2 ? "/upload" : "/echo";
        long got = post(port, path, BODY);
        served += i % 2 ? got > 0 : got == (long)BODY;
    }
    CHECK_INT(served, UPLOADS);
    CHECK(await_no_connection(s));
    long idle = rss_kib();
    printf("RSS after start-up and one request: %ld KiB; idle after %d uploads of %u MiB: "
           "%ld KiB (limit %ld KiB)\n",
           start, UPLOADS, BODY / MIB, idle, 2 * start + SLACK_KIB);
    if (UNDER_ASAN) {
        printf("skipped the RSS check under AddressSanitizer: its quarantine holds freed "
               "memory, so the resident set does not show what the allocator returned\n");
        skipped++;
    } else {
        CHECK(start > 0 && idle > 0);
        CHECK(idle <= 2 * start + SLACK_KIB);
    }
    cl_stop(s);
    chopin_router_free(r);
}

/* ----- slow readers ------------------------------------------------------------------ */

#define PAGE_LEN (106u * 1000u)
#define READERS 1000
static char page[PAGE_LEN];
static atomic_int pages_asked;

/* Built per request, as the todo list is: each reader's answer is its own copy. */
static void page_copied(chopin_req *req, chopin_res *res, void *data) {
    (void)req, (void)data;
    atomic_fetch_add(&pages_asked, 1);
    chopin_res_copy(res, 200, "text/plain", page, PAGE_LEN);
}

/* The same bytes for every client. */
static void page_shared(chopin_req *req, chopin_res *res, void *data) {
    (void)req, (void)data;
    atomic_fetch_add(&pages_asked, 1);
    chopin_res_static(res, 200, "text/plain", page, PAGE_LEN);
}

/* A reader that reads nothing: a small receive window, and the segment size of an Ethernet
 * path rather than loopback's 64 KiB (the server's send buffer starts at ten segments),
 * so the kernel takes a few tens of KiB of its answer and the rest stays with the server,
 * as it does for a client across a network. */
static int slow_reader(int port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 2048, mss = 1448;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 || send_all(fd, req, (size_t)n) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Waits (bounded) until the handler ran `n` times, then a moment for the worker to queue
 * the answers and the kernel to take what it will. */
static int await_asked(int n) {
    for (int waited = 0; waited < IDLE_WAIT_MS; waited += 20) {
        if (atomic_load(&pages_asked) >= n) {
            sleep_ms(300);
            return 1;
        }
        sleep_ms(20);
    }
    return 0;
}

/* The resident set once it is at most `limit` KiB, or after IDLE_WAIT_MS (memory is given
 * back when the worker's loop turns with no connection, within a second or two). */
static long await_rss_at_most(long limit) {
    long rss = rss_kib();
    for (int waited = 0; rss > limit && waited < IDLE_WAIT_MS; waited += 50) {
        sleep_ms(50);
        rss = rss_kib();
    }
    return rss;
}

/* READERS slow readers of `path`; returns the server's RSS growth per reader while they
 * hold their answers (bytes), and sets *idle_ok to whether RSS came back within twice the
 * start (plus SLACK_KIB) once they left. */
static long slow_readers(const char *path, int *idle_ok) {
    for (size_t i = 0; i < sizeof page; i++)
        page[i] = (char)('a' + i % 23);
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/copied", page_copied, NULL);
    chopin_router_get(r, "/shared", page_shared, NULL);
    chopin_options o = chopin_options_default();
    o.workers = 1;
    o.write_timeout_ms = 60000; /* they are slow, not gone: nothing is cut here */
    chopin_server *s = cl_start(r, &o);
    long per_reader = -1;
    *idle_ok = 0;
    CHECK(s != NULL);
    if (!s) {
        chopin_router_free(r);
        return -1;
    }
    int port = chopin_server_port(s);
    static int fds[READERS];
    /* Warm-up: one slow reader that leaves, so the start counts the worker's steady
     * buffers. */
    int fd = slow_reader(port, path);
    CHECK(fd >= 0 && await_asked(1));
    close(fd);
    CHECK(await_no_connection(s));
    long start = rss_kib();
    atomic_store(&pages_asked, 0);
    int opened = 0;
    for (int i = 0; i < READERS; i++)
        opened += (fds[i] = slow_reader(port, path)) >= 0;
    CHECK_INT(opened, READERS);
    CHECK(await_asked(READERS));
    long held = rss_kib();
    for (int i = 0; i < READERS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    CHECK(await_no_connection(s));
    long limit = 2 * start + SLACK_KIB, idle = await_rss_at_most(limit);
    per_reader = (held - start) * 1024 / READERS;
    printf("%s: RSS at the start %ld KiB, with %d slow readers of %u bytes %ld KiB (%ld B per "
           "reader), idle after they left %ld KiB (limit %ld KiB)\n",
           path, start, READERS, PAGE_LEN, held, per_reader, idle, limit);
    *idle_ok = start > 0 && idle > 0 && idle <= limit;
    cl_stop(s);
    chopin_router_free(r);
    atomic_store(&pages_asked, 0);
    return per_reader;
}

static void test_rss_returns_after_slow_readers_of_copies(void) {
    int idle_ok;
    long per_reader = slow_readers("/copied", &idle_ok);
    if (UNDER_ASAN) {
        printf("skipped the RSS check under AddressSanitizer (see above)\n");
        skipped++;
        return;
    }
    /* The premise: the server kept most of each answer (the kernel did not take it all),
     * so there was memory to give back. */
    CHECK(per_reader > (long)PAGE_LEN / 2);
    CHECK(idle_ok);
}

static void test_slow_readers_share_a_static_answer(void) {
    int idle_ok;
    long per_reader = slow_readers("/shared", &idle_ok);
    if (UNDER_ASAN) {
        printf("skipped the RSS check under AddressSanitizer (see above)\n");
        skipped++;
        return;
    }
    CHECK(per_reader >= 0 && per_reader < (long)PAGE_LEN / 4);
    CHECK(idle_ok);
}

int main(void) {
    RUN(test_rss_returns_after_large_bodies);
    RUN(test_rss_returns_after_slow_readers_of_copies);
    RUN(test_slow_readers_share_a_static_answer);
    printf("RESULT %d %d %d\n", test_passed - skipped, test_failed, skipped);
    return test_failed ? 1 : 0;
}
