/* SPDX-License-Identifier: MIT */
/*
 * Slowloris against a full slab (issue 13, point 1): one worker, 64 slots, twice as many
 * connections each holding half a request head under a long header deadline. Clients
 * that then send a whole request must still be served: a full slab closes the connection
 * that has made the least progress (the oldest half head, answered 408) for a newcomer,
 * instead of leaving the newcomer in the backlog until a header deadline expires.
 * Runs once per backend (CHOPIN_BACKEND).
 *
 * No timing assertion: the 20 s bound only tells "never served" (the header deadline is
 * 60 s) from "served", however slow the machine.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

#define GET_PLAIN "GET /plaintext HTTP/1.1\r\nHost: h\r\n\r\n"
#define HALF_HEAD "GET /plaintext HTTP/1.1\r\nHost: h\r\n"
#define SERVED_WITHIN_MS 20000

enum { CAPACITY = 64, SLOW = 2 * CAPACITY, NORMAL = 8 };

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* What a connection received: its first bytes, and whether the server closed it (EOF or
 * reset) after them. */
struct outcome {
    char first[512];
    size_t got;
    int closed;
};

/* Reads what arrives on fd until `deadline` (at least once, without waiting), a whole
 * answer to GET /plaintext, or the close. */
static void await(int fd, uint64_t deadline, struct outcome *o) {
    while (!o->closed) {
        uint64_t now = now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, deadline > now ? (int)(deadline - now) : 0) <= 0)
            return;
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            o->closed = 1;
            return;
        }
        if (n < 0)
            return;
        size_t room = sizeof o->first - 1 - o->got;
        size_t k = (size_t)n < room ? (size_t)n : room;
        memcpy(o->first + o->got, buf, k);
        o->got += k;
        if (strstr(o->first, "Hello, World!")) /* a whole answer to GET /plaintext */
            return;
    }
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_slowloris_does_not_starve_newcomers(void) {
    const char *workers = getenv("CHOPIN_WORKERS");
    if (workers && atoi(workers) != 1) {
        printf("skipped with CHOPIN_WORKERS=%s: it fills one worker's slab\n", workers);
        return;
    }
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/plaintext", plaintext, NULL);
    chopin_options o = chopin_options_default();
    o.workers = 1;
    o.slab_capacity = CAPACITY;
    o.header_timeout_ms = 60000;
    chopin_server *s = cl_start(r, &o);
    CHECK(s != NULL);
    if (!s) {
        chopin_router_free(r);
        return;
    }
    int port = chopin_server_port(s);
    static int slow[SLOW];
    int ready = 0;
    for (int i = 0; i < SLOW; i++) {
        slow[i] = cl_connect_fd(port);
        ready += cl_send_fd(slow[i], HALF_HEAD);
    }
    CHECK_INT(ready, SLOW);

    int normal[NORMAL];
    for (int i = 0; i < NORMAL; i++) {
        normal[i] = cl_connect_fd(port);
        CHECK(cl_send_fd(normal[i], GET_PLAIN));
    }
    uint64_t deadline = now_ms() + SERVED_WITHIN_MS;
    int served = 0;
    for (int i = 0; i < NORMAL; i++) {
        struct outcome out = {0};
        await(normal[i], deadline, &out);
        served += starts_with(out.first, "HTTP/1.1 200 ") && strstr(out.first, "Hello, World!");
        close(normal[i]);
    }
    CHECK_INT(served, NORMAL);

    /* Each newcomer took a half head's slot: those were answered 408 and closed (a backend
     * that cancels a closing connection's operations, io_uring, closes without the 408). */
    static struct outcome seen[SLOW];
    int answered_408 = 0, closed = 0;
    deadline = now_ms() + SERVED_WITHIN_MS;
    while (closed < NORMAL && now_ms() < deadline) {
        answered_408 = closed = 0;
        for (int i = 0; i < SLOW; i++) {
            await(slow[i], 0, &seen[i]);
            answered_408 += seen[i].closed && starts_with(seen[i].first, "HTTP/1.1 408 ");
            closed += seen[i].closed;
        }
        if (closed < NORMAL)
            sleep_ms(50);
    }
    printf("slowloris connections closed: %d, %d of them after a 408\n", closed, answered_408);
    CHECK(closed >= NORMAL);
    if (strcmp(chopin_server_backend(s), "io_uring") != 0)
        CHECK_INT(answered_408, closed);
    for (int i = 0; i < SLOW; i++)
        close(slow[i]);
    cl_stop(s);
    chopin_router_free(r);
}

int main(void) {
    RUN(test_slowloris_does_not_starve_newcomers);
    TEST_END();
}
