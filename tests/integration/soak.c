/* SPDX-License-Identifier: MIT */
/*
 * Soak test (`make soak`, not part of `make test`): a few million requests over tens of
 * thousands of short and long connections from several client threads, mixed with
 * malformed requests, aborted connections and uploads, against an in-process server with
 * two workers. Afterwards:
 *   - no valid request got an error, a wrong body or a premature close;
 *   - once the server has closed its idle connections, the open descriptors are exactly
 *     what they were before the run, and the resident memory is back to its starting
 *     level (measured after a warm-up, so caches that are meant to stay are counted in
 *     both, and after malloc_trim, so memory the allocator merely keeps is not).
 *
 * SOAK_REQUESTS (default 3000000) sets the size, SOAK_THREADS (default 4) the clients.
 * CHOPIN_BACKEND picks the backend as usual. Prints its figures and "RESULT p f".
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define BLOB_LEN 20000
static char blob[BLOB_LEN];

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

static void blob_handler(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "application/octet-stream", blob, BLOB_LEN);
}

static void echo(chopin_req *req, chopin_res *res, void *data) {
    chopin_str b = chopin_req_body(req);
    chopin_res_copy(res, 200, "application/octet-stream", b.ptr, b.len);
}

static void json(chopin_req *req, chopin_res *res, void *data) {
    chopin_json *j = chopin_res_json(res, 200);
    chopin_json_obj_begin(j);
    chopin_json_key(j, "message");
    chopin_json_str(j, "Hello, World!");
    chopin_json_obj_end(j);
    chopin_json_end(j);
}

/* ----- totals ----------------------------------------------------------------------- */

static int port;
static long target_requests;
static long requests_done;  /* valid requests answered correctly */
static long valid_errors;   /* valid requests answered wrongly (or not at all) */
static long malformed_sent, malformed_refused;
static long connections, aborted;

static void add(long *counter, long n) { __atomic_add_fetch(counter, n, __ATOMIC_RELAXED); }
static long get(long *counter) { return __atomic_load_n(counter, __ATOMIC_RELAXED); }

/* ----- a lean client ---------------------------------------------------------------- */

struct client {
    unsigned long long rng;
    int fd;
    size_t len;
    size_t used; /* bytes of buf the last response took: dropped at the next read */
    char buf[1 << 17];
    char out[1 << 17];
    unsigned source; /* 127.0.0.x source address: more four-tuples than one port range */
};

static unsigned rnd(struct client *c, unsigned n) {
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return (unsigned)(c->rng % n);
}

static int dial(struct client *c) {
    c->len = c->used = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &(int){1}, sizeof(int));
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000001u + (c->source++ % 200));
    bind(c->fd, (struct sockaddr *)&src, sizeof src);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    add(&connections, 1);
    return 0;
}

/* Closes gracefully (FIN) or with a reset (SO_LINGER 0), as real clients do. */
static void hang_up(struct client *c, int reset) {
    if (c->fd < 0)
        return;
    if (reset) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(c->fd);
    c->fd = -1;
}

static int send_all(struct client *c, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int fill(struct client *c) {
    if (c->len == sizeof c->buf)
        return -1;
    ssize_t n;
    do
        n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 0;
}

struct resp {
    int status;
    int close;
    size_t body_len;
    const char *body; /* into c->buf, valid until the next read_resp */
};

/* Reads one Content-Length response (the only kind this server sends here). */
static int read_resp(struct client *c, struct resp *r) {
    if (c->used) {
        memmove(c->buf, c->buf + c->used, c->len - c->used);
        c->len -= c->used;
        c->used = 0;
    }
    char *end;
    while (!(end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL))
        if (fill(c) < 0)
            return -1;
    size_t head = (size_t)(end + 4 - c->buf);
    c->buf[head - 1] = '\0';
    if (sscanf(c->buf, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    const char *cl = strcasestr(c->buf, "\r\nContent-Length: ");
    r->body_len = cl ? strtoull(cl + 18, NULL, 10) : 0;
    r->close = strcasestr(c->buf, "\r\nConnection: close") != NULL;
    c->buf[head - 1] = '\n';
    while (c->len < head + r->body_len)
        if (fill(c) < 0)
            return -1;
    r->body = c->buf + head;
    c->used = head + r->body_len;
    return 0;
}

/* ----- request kinds ---------------------------------------------------------------- */

enum kind { PLAIN, JSON, BLOB, ECHO_CL, ECHO_CHUNKED, NKINDS };

/* Appends a request of `kind` to c->out at *n; returns its expected body length. */
static size_t put_request(struct client *c, size_t *n, enum kind kind, int close) {
    const char *conn = close ? "Connection: close\r\n" : "";
    char *o = c->out + *n;
    size_t cap = sizeof c->out - *n;
    int k = 0;
    size_t body = 0;
    switch (kind) {
    case PLAIN:
        k = snprintf(o, cap, "GET /plaintext HTTP/1.1\r\nHost: s\r\n%s\r\n", conn);
        body = 13;
        break;
    case JSON:
        k = snprintf(o, cap, "GET /json HTTP/1.1\r\nHost: s\r\n%s\r\n", conn);
        body = 27;
        break;
    case BLOB:
        k = snprintf(o, cap, "GET /blob HTTP/1.1\r\nHost: s\r\n%s\r\n", conn);
        body = BLOB_LEN;
        break;
    case ECHO_CL:
        body = 1 + rnd(c, 2000);
        k = snprintf(o, cap, "POST /echo HTTP/1.1\r\nHost: s\r\n%sContent-Length: %zu\r\n\r\n", conn, body);
        memset(o + k, 'e', body);
        k += (int)body;
        break;
    case ECHO_CHUNKED:
        body = 10 + rnd(c, 100);
        k = snprintf(o, cap, "POST /echo HTTP/1.1\r\nHost: s\r\n%sTransfer-Encoding: chunked\r\n\r\n"
                             "5;x=y\r\nhello\r\n%zx\r\n", conn, body - 5);
        memset(o + k, 'c', body - 5);
        k += (int)(body - 5);
        k += snprintf(o + k, cap - (size_t)k, "\r\n0\r\nT: t\r\n\r\n");
        break;
    default:
        break;
    }
    *n += (size_t)k;
    return body;
}

static enum kind pick_kind(struct client *c) {
    unsigned x = rnd(c, 100);
    return x < 70 ? PLAIN : x < 80 ? JSON : x < 85 ? BLOB : x < 95 ? ECHO_CL : ECHO_CHUNKED;
}

/* Sends `count` requests, pipelined `depth` at a time, and checks every answer. The last
 * one asks to close when `close_last`. Returns the requests answered correctly. */
static long exchange(struct client *c, long count, unsigned depth, int close_last) {
    long ok = 0;
    for (long done = 0; done < count;) {
        unsigned batch = depth;
        if (batch > count - done)
            batch = (unsigned)(count - done);
        size_t n = 0, want[64];
        for (unsigned i = 0; i < batch; i++) {
            int last = close_last && done + i + 1 == count;
            want[i] = put_request(c, &n, pick_kind(c), last);
        }
        if (send_all(c, c->out, n) < 0)
            break;
        for (unsigned i = 0; i < batch; i++) {
            struct resp r;
            if (read_resp(c, &r) < 0 || r.status != 200 || r.body_len != want[i]) {
                add(&valid_errors, (long)(batch - i));
                return ok;
            }
            ok++;
        }
        done += batch;
    }
    return ok;
}

static const char *const malformed[] = {
    "POST /echo HTTP/1.1\r\nHost: s\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET /plaintext HTTP/1.1\nHost: s\n\n",
    "POST /echo HTTP/1.1\r\nHost: s\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "POST /echo HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "GET /plaintext HTTP/1.1\r\nHost: s\r\nX: a\r\n b\r\n\r\n",
    "GET /plaintext HTTP/1.1\r\n\r\n",
    "GET /plain\x01text HTTP/1.1\r\nHost: s\r\n\r\n",
    "GET /plaintext HTTP/3.0\r\nHost: s\r\n\r\n", /* 505: the server's only 5xx here */
    "POST /echo HTTP/1.1\r\nHost: s\r\nExpect: nothing\r\nContent-Length: 1\r\n\r\nx",
};

/* One connection of a random shape. */
static void one_connection(struct client *c) {
    unsigned shape = rnd(c, 100);
    if (dial(c) < 0) {
        add(&valid_errors, 1);
        return;
    }
    if (shape < 60) {
        /* Short: one to four requests, one at a time; then the server or the client
         * closes, gracefully or not. */
        long n = 1 + rnd(c, 4);
        int server_closes = rnd(c, 2);
        add(&requests_done, exchange(c, n, 1, server_closes));
        if (server_closes) {
            char b;
            if (recv(c->fd, &b, 1, 0) != 0)
                add(&valid_errors, 1); /* Connection: close must be followed by EOF */
        }
        hang_up(c, rnd(c, 4) == 0);
    } else if (shape < 80) {
        /* Long: hundreds of requests, pipelined up to 32 deep. */
        long n = 50 + rnd(c, 450);
        add(&requests_done, exchange(c, n, 1 + rnd(c, 32), 0));
        hang_up(c, rnd(c, 8) == 0);
    } else if (shape < 90) {
        /* A good request, then a malformed one: 200, then 4xx/5xx with close, then EOF. */
        add(&requests_done, exchange(c, 1, 1, 0));
        const char *m = malformed[rnd(c, sizeof malformed / sizeof malformed[0])];
        add(&malformed_sent, 1);
        struct resp r;
        if (send_all(c, m, strlen(m)) == 0 && read_resp(c, &r) == 0 && r.status >= 400 &&
            r.close) {
            char b;
            if (c->len == c->used && recv(c->fd, &b, 1, 0) == 0)
                add(&malformed_refused, 1);
        }
        hang_up(c, 0);
    } else {
        /* Aborted: part of a request, or a whole one never read, then gone. */
        size_t n = 0;
        put_request(c, &n, pick_kind(c), 0);
        size_t part = rnd(c, 2) ? n : rnd(c, (unsigned)n);
        send_all(c, c->out, part);
        add(&aborted, 1);
        hang_up(c, rnd(c, 2));
    }
}

static void *client_main(void *arg) {
    struct client *c = arg;
    while (get(&requests_done) < target_requests && get(&valid_errors) < 100)
        one_connection(c);
    return NULL;
}

static void run_clients(int threads, long requests) {
    target_requests = get(&requests_done) + requests;
    pthread_t t[64];
    struct client *cs[64];
    for (int i = 0; i < threads; i++) {
        cs[i] = malloc(sizeof *cs[i]);
        cs[i]->rng = 0x9e3779b97f4a7c15ull * (unsigned long long)(i + 1) + (unsigned long long)time(NULL);
        cs[i]->fd = -1;
        cs[i]->source = (unsigned)i * 50;
        pthread_create(&t[i], NULL, client_main, cs[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        free(cs[i]);
    }
}

/* ----- measurements ----------------------------------------------------------------- */

static int fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until the server has closed every connection (idle ones time out). */
static int drained(chopin_server *s, int seconds) {
    for (int i = 0; i < seconds * 10; i++) {
        chopin_stats st;
        chopin_server_stats(s, &st);
        if (st.connections_open == 0)
            return 1;
        struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void test_soak(void) {
    long requests = getenv("SOAK_REQUESTS") ? atol(getenv("SOAK_REQUESTS")) : 3000000;
    int threads = getenv("SOAK_THREADS") ? atoi(getenv("SOAK_THREADS")) : 4;
    if (threads < 1 || threads > 64)
        threads = 4;
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/plaintext", plaintext, NULL);
    chopin_router_get(r, "/json", json, NULL);
    chopin_router_get(r, "/blob", blob_handler, NULL);
    chopin_router_post(r, "/echo", echo, NULL);
    chopin_options o = chopin_options_default();
    o.workers = 2;
    o.pin = -1; /* off: the clients share the CPUs */
    o.keepalive_timeout_ms = 1000;
    o.header_timeout_ms = 2000;
    o.body_timeout_ms = 2000;
    o.write_timeout_ms = 5000;
    chopin_server *s = cl_start(r, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    port = chopin_server_port(s);
    printf("soak: backend %s, %d client threads, %ld requests\n", chopin_server_backend(s),
           threads, requests);

    /* Warm-up (a tenth of the load): pools, arenas and the allocator reach the sizes
     * they are meant to keep; then the baseline. */
    run_clients(threads, requests / 10 > 1000 ? requests / 10 : 1000);
    CHECK(drained(s, 30));
    malloc_trim(0);
    int fd0 = fd_count();
    long rss0 = rss_kib();
    long warm_requests = get(&requests_done), warm_conns = get(&connections);
    printf("soak: baseline after warm-up (%ld requests, %ld connections): %d fds, rss %ld KiB\n",
           warm_requests, warm_conns, fd0, rss0);

    double t0 = now_s();
    run_clients(threads, requests);
    double secs = now_s() - t0;
    long rss_peak = rss_kib();
    int fd_busy = fd_count();
    CHECK(drained(s, 30));
    long rss_after = rss_kib();
    malloc_trim(0);
    long rss_trim = rss_kib();
    int fd1 = fd_count();
    chopin_stats st;
    chopin_server_stats(s, &st);

    long done = get(&requests_done) - warm_requests;
    long conns = get(&connections) - warm_conns;
    printf("soak: %ld valid requests in %.1f s (%.0f/s) over %ld connections; "
           "%ld malformed (%ld refused with 4xx/5xx and close), %ld aborted\n",
           done, secs, (double)done / secs, conns, get(&malformed_sent),
           get(&malformed_refused), get(&aborted));
    printf("soak: server counted %llu requests, %llu accepted, %llu 4xx, %llu 5xx\n",
           (unsigned long long)st.requests, (unsigned long long)st.connections_accepted,
           (unsigned long long)st.errors_4xx, (unsigned long long)st.errors_5xx);
    printf("soak: errors on valid requests: %ld\n", get(&valid_errors));
    printf("soak: fds %d before, %d at the end of the load, %d after drain\n", fd0, fd_busy, fd1);
    printf("soak: rss %ld KiB before, %ld at the end of the load, %ld after drain, %ld after "
           "malloc_trim (%+ld)\n",
           rss0, rss_peak, rss_after, rss_trim, rss_trim - rss0);

    CHECK_INT(get(&valid_errors), 0);
    CHECK(done >= requests);
    CHECK(conns >= 10000 || requests < 1000000);
    CHECK_INT(get(&malformed_refused), get(&malformed_sent));
    CHECK_INT(fd1, fd0);
    /* Back to the starting level: within 4 MiB or 5 %, whichever is larger. (Not under a
     * sanitizer: its allocator quarantines freed memory and its shadow grows with use.) */
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
    long slack = rss0 / 20 > 4096 ? rss0 / 20 : 4096;
    CHECK(rss_trim <= rss0 + slack);
#endif
    cl_stop(s);
    chopin_router_free(r);
}

int main(void) {
    memset(blob, 'b', sizeof blob);
    RUN(test_soak);
    TEST_END();
}
