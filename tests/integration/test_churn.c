/* SPDX-License-Identifier: MIT */
/*
 * Slot reuse under churn: clients that abort mid-response (RST while the server is still
 * sending), half-send requests or hang up without reading, run beside clients that check
 * every byte of every response. A completion of an aborted connection that reached the
 * connection now in its slot (the Rust engine's io_uring bug U4) would show up as a wrong,
 * missing or misordered response here, or as a slot never freed. Runs once per backend.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

#define BIG_LEN 100000   /* larger than an inline body and than one socket buffer */
#define FILE_LEN 1000000
#define GOOD_CLIENTS 3
#define BAD_CLIENTS 3
#define GOOD_ROUNDS 120
#define BAD_ROUNDS 300
#define ZOMBIES 8         /* idle connections a zombie client holds at once */
#define KEEPALIVE_MS 100

static int port;
static char file_path[64];
static int mismatches, good_done;

static char fill_byte(unsigned id, size_t i) { return (char)('a' + (id + i / 97) % 26); }

static void small(chopin_req *req, chopin_res *res, void *data) {
    chopin_str n = chopin_req_param(req, "n");
    char body[64];
    int len = snprintf(body, sizeof body, "id=%.*s", (int)n.len, n.ptr);
    chopin_res_copy(res, 200, "text/plain", body, (size_t)len);
}

/* A body unique to its request: a copied (owned) segment sent with its head by sendmsg. */
static void big(chopin_req *req, chopin_res *res, void *data) {
    chopin_str n = chopin_req_param(req, "n");
    unsigned id = (unsigned)strtoul(n.ptr, NULL, 10);
    char *body = chopin_req_alloc(req, BIG_LEN);
    for (size_t i = 0; i < BIG_LEN; i++)
        body[i] = fill_byte(id, i);
    chopin_res_copy(res, 200, "application/octet-stream", body, BIG_LEN);
}

static void file(chopin_req *req, chopin_res *res, void *data) {
    int fd = open(file_path, O_RDONLY | O_CLOEXEC);
    chopin_res_fd(res, 200, "application/octet-stream", fd, 0, FILE_LEN, 1);
}

static int check_small(struct cl_conn *c, unsigned id) {
    struct cl_resp r;
    char want[32];
    snprintf(want, sizeof want, "id=%u", id);
    int ok = cl_read(c, &r, 0) == 0 && r.status == 200 && r.body_len == strlen(want) &&
             memcmp(r.body, want, r.body_len) == 0;
    cl_resp_free(&r);
    return ok;
}

static int check_big(struct cl_conn *c, unsigned id) {
    struct cl_resp r;
    int ok = cl_read(c, &r, 0) == 0 && r.status == 200 && r.body_len == BIG_LEN;
    for (size_t i = 0; ok && i < BIG_LEN; i++)
        ok = r.body[i] == fill_byte(id, i);
    cl_resp_free(&r);
    return ok;
}

static int check_file(struct cl_conn *c) {
    struct cl_resp r;
    int ok = cl_read(c, &r, 0) == 0 && r.status == 200 && r.body_len == FILE_LEN;
    for (size_t i = 0; ok && i < FILE_LEN; i++)
        ok = r.body[i] == (char)(i * 13 + 1);
    cl_resp_free(&r);
    return ok;
}

/* Pipelines small, big and (sometimes) file requests and checks each answer in order. */
static void *good_client(void *arg) {
    unsigned base = (unsigned)(uintptr_t)arg * 1000000u;
    for (unsigned round = 0; round < GOOD_ROUNDS; round++) {
        struct cl_conn *c = cl_open(port);
        if (!c) {
            __atomic_add_fetch(&mismatches, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        unsigned id = base + round * 10;
        char req[512];
        int with_file = round % 8 == 0;
        snprintf(req, sizeof req,
                 "GET /small/%u HTTP/1.1\r\nHost: a\r\n\r\nGET /big/%u HTTP/1.1\r\nHost: a\r\n\r\n"
                 "GET /small/%u HTTP/1.1\r\nHost: a\r\n\r\n%s",
                 id, id + 1, id + 2, with_file ? "GET /file HTTP/1.1\r\nHost: a\r\n\r\n" : "");
        int ok = cl_send(c, req, 0) == 0 && check_small(c, id) && check_big(c, id + 1) &&
                 check_small(c, id + 2) && (!with_file || check_file(c));
        if (!ok)
            __atomic_add_fetch(&mismatches, 1, __ATOMIC_SEQ_CST);
        cl_close(c);
    }
    __atomic_add_fetch(&good_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int raw_connect(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void abort_conn(int fd) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close sends RST */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static void send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

/* Misbehaves in four ways in turn, while the good clients share the server's slots. */
static void *bad_client(void *arg) {
    static const char bigs[] = "GET /big/7 HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char files[] = "GET /file HTTP/1.1\r\nHost: a\r\n\r\n";
    char buf[4096], batch[16 * 64];
    for (unsigned round = 0; round < BAD_ROUNDS && __atomic_load_n(&good_done, __ATOMIC_SEQ_CST) < GOOD_CLIENTS; round++) {
        int fd = raw_connect();
        if (fd < 0)
            continue;
        size_t n = 0;
        switch ((round + (unsigned)(uintptr_t)arg) % 4) {
        case 0: /* RST while the server is in the middle of sending big bodies */
            for (int i = 0; i < 16; i++)
                n += (size_t)sprintf(batch + n, "%s", bigs);
            send_all(fd, batch, n);
            (void)!recv(fd, buf, sizeof buf, 0);
            abort_conn(fd);
            break;
        case 1: /* RST while a file is on its way */
            for (int i = 0; i < 4; i++)
                n += (size_t)sprintf(batch + n, "%s", files);
            send_all(fd, batch, n);
            abort_conn(fd);
            break;
        case 2: /* half a request, then FIN */
            send_all(fd, "GET /small/1 HTTP/1.1\r\nHo", 25);
            close(fd);
            break;
        default: /* requests, then FIN without reading the answers */
            for (int i = 0; i < 8; i++)
                n += (size_t)sprintf(batch + n, "GET /small/%d HTTP/1.1\r\nHost: a\r\n\r\n", i);
            send_all(fd, batch, n);
            shutdown(fd, SHUT_WR);
            close(fd);
        }
    }
    return NULL;
}

/* Keeps connections idle past the keep-alive timeout, so the server closes them while
 * their receive is pending, then sends a request on them anyway. A receive that was not
 * cancelled would still hold the old socket open, take these bytes, and hand them to
 * whichever connection took its slot since: the good clients would read "id=666666". */
static void *zombie_client(void *arg) {
    static const char req[] = "GET /small/666666 HTTP/1.1\r\nHost: z\r\n\r\n";
    while (__atomic_load_n(&good_done, __ATOMIC_SEQ_CST) < GOOD_CLIENTS) {
        int fds[ZOMBIES];
        for (int i = 0; i < ZOMBIES; i++) {
            struct cl_conn *c = cl_open(port);
            fds[i] = -1;
            if (!c)
                continue;
            if (cl_send(c, "GET /small/1 HTTP/1.1\r\nHost: z\r\n\r\n", 0) == 0 &&
                check_small(c, 1))
                fds[i] = dup(c->fd);
            cl_close(c);
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (KEEPALIVE_MS + 60) * 1000000L};
        nanosleep(&ts, NULL);
        for (int i = 0; i < ZOMBIES; i++) {
            if (fds[i] < 0)
                continue;
            send_all(fds[i], req, sizeof req - 1);
            close(fds[i]);
        }
    }
    return NULL;
}

static int write_file(void) {
    snprintf(file_path, sizeof file_path, "/tmp/chopin-churn-%d", (int)getpid());
    int fd = open(file_path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    char *data = malloc(FILE_LEN);
    for (size_t i = 0; i < FILE_LEN; i++)
        data[i] = (char)(i * 13 + 1);
    int ok = fd >= 0 && write(fd, data, FILE_LEN) == FILE_LEN;
    free(data);
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Every slot the churn used is free again: no operation was lost, none is still
 * holding a connection. */
static int wait_all_closed(chopin_server *s) {
    for (int i = 0; i < 100; i++) {
        chopin_stats st;
        chopin_server_stats(s, &st);
        if (st.connections_open == 0)
            return 1;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void test_churn(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/small/:n", small, NULL);
    chopin_router_get(r, "/big/:n", big, NULL);
    chopin_router_get(r, "/file", file, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 32; /* few slots: each is reused hundreds of times */
    o.keepalive_timeout_ms = KEEPALIVE_MS;
    chopin_server *s = cl_start(r, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    port = chopin_server_port(s);
    pthread_t good[GOOD_CLIENTS], bad[BAD_CLIENTS], zombie;
    for (uintptr_t i = 0; i < GOOD_CLIENTS; i++)
        pthread_create(&good[i], NULL, good_client, (void *)(i + 1));
    for (uintptr_t i = 0; i < BAD_CLIENTS; i++)
        pthread_create(&bad[i], NULL, bad_client, (void *)i);
    pthread_create(&zombie, NULL, zombie_client, NULL);
    for (int i = 0; i < GOOD_CLIENTS; i++)
        pthread_join(good[i], NULL);
    for (int i = 0; i < BAD_CLIENTS; i++)
        pthread_join(bad[i], NULL);
    pthread_join(zombie, NULL);
    CHECK_INT(mismatches, 0);
    CHECK(wait_all_closed(s));
    struct cl_resp resp;
    CHECK_INT(cl_get(port, "/small/42", &resp), 200);
    CHECK_MEM(resp.body, resp.body_len, "id=42");
    cl_resp_free(&resp);
    cl_stop(s);
    chopin_router_free(r);
}

/* Deterministic form of the zombie. Z goes idle and the server closes it at the
 * keep-alive timeout, with its receive pending; G connects and takes Z's slot (the slab
 * reuses the last freed slot first); then Z sends a request. Z must really have been
 * closed (a receive left pending keeps the socket open: no FIN), and G must see only its
 * own answers. */
static void test_closed_idle_zombie(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/small/:n", small, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 2;
    o.keepalive_timeout_ms = 300;
    chopin_server *s = cl_start(r, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    port = chopin_server_port(s);
    struct cl_conn *z = cl_open(port);
    CHECK(cl_send(z, "GET /small/1 HTTP/1.1\r\nHost: z\r\n\r\n", 0) == 0 && check_small(z, 1));
    CHECK(cl_closed(z));
    struct cl_conn *g = cl_open(port);
    CHECK(cl_send(g, "GET /small/2 HTTP/1.1\r\nHost: g\r\n\r\n", 0) == 0 && check_small(g, 2));
    static const char zombie_req[] = "GET /small/666666 HTTP/1.1\r\nHost: z\r\n\r\n";
    send_all(z->fd, zombie_req, sizeof zombie_req - 1);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(cl_send(g, "GET /small/3 HTTP/1.1\r\nHost: g\r\n\r\n", 0) == 0 && check_small(g, 3));
    cl_close(z);
    cl_close(g);
    cl_stop(s);
    chopin_router_free(r);
}

int main(void) {
    if (!write_file())
        return 1;
    RUN(test_closed_idle_zombie);
    RUN(test_churn);
    unlink(file_path);
    TEST_END();
}
