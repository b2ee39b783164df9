/* SPDX-License-Identifier: MIT */
/*
 * Request bodies as streams over real sockets (issue 18): a hashing handler fed as the
 * body arrives (Content-Length and chunked, pieces of every size, pipelined requests
 * after it), "100 Continue" only when the route takes the body, the route's own limit
 * (413 before the handler, and mid-way for chunked), a refusal that never reads the
 * body, malformed framing (400), a paused reader throttling its client through TCP, the
 * spooling reader (memory, then an unnamed file; a client that leaves mid-way leaves no
 * file), and a 1 GiB upload with the server's peak RSS measured. Once per backend.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

#define ROUTE_MAX (64u << 20)

/* ----- the server's routes ---------------------------------------------------------------- */

struct hashing {
    uint64_t len, hash, pieces;
    int pause_each; /* pause after every piece, resume from a timer */
    chopin_worker *w;
    chopin_exchange x;
    chopin_timer timer;
};

static atomic_int errors_seen, last_error, paused_now;
static atomic_ullong received_total;

static uint64_t fnv(uint64_t h, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static void resume_later(chopin_worker *w, chopin_timer t, void *arg) {
    struct hashing *hs = arg;
    hs->timer = 0;
    atomic_store(&paused_now, 0);
    chopin_body_resume(hs->x);
}

static void hash_data(chopin_exchange x, const char *p, size_t n, void *arg) {
    struct hashing *hs = arg;
    hs->len += n;
    hs->hash = fnv(hs->hash, p, n);
    hs->pieces++;
    atomic_fetch_add(&received_total, n);
    if (hs->pause_each) {
        hs->x = x;
        chopin_body_pause(x);
        atomic_store(&paused_now, 1);
        hs->timer = chopin_timer_start(hs->w, (uint64_t)hs->pause_each, 0, resume_later, hs);
    }
}

static void hash_end(chopin_exchange x, void *arg) {
    struct hashing *hs = arg;
    char text[64];
    snprintf(text, sizeof text, "%llu %016llx", (unsigned long long)hs->len,
             (unsigned long long)hs->hash);
    chopin_res_text(chopin_exchange_res(x), 200, text);
    chopin_exchange_finish(x);
    free(hs);
}

static void hash_error(chopin_exchange x, int err, void *arg) {
    struct hashing *hs = arg;
    if (hs->timer)
        chopin_timer_stop(hs->w, hs->timer);
    atomic_store(&last_error, err);
    atomic_fetch_add(&errors_seen, 1);
    free(hs);
}

static const chopin_body_handler hashing_reader = {hash_data, hash_end, hash_error};

/* /hash: takes the body, unless the request carries "X-Refuse" (401, body unread).
 * /slow, /slowbig: the same, pausing 20 or 50 ms after every piece. /big: up to 2 GiB. */
static void hash_route(chopin_req *req, chopin_res *res, void *data) {
    if (chopin_req_header(req, "x-refuse").ptr) {
        chopin_res_text(res, 401, "no");
        return;
    }
    struct hashing *hs = calloc(1, sizeof *hs);
    hs->hash = 14695981039346656037ull;
    hs->pause_each = (int)(intptr_t)data;
    hs->w = chopin_req_worker(req);
    chopin_exchange x;
    if (chopin_body_read(req, res, &hashing_reader, hs, &x) < 0)
        free(hs);
}

static void buffered_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_text(res, 200, "buffered");
}

/* /spool: the spooling reader, 4 KiB in memory; answers "<mem|file> len hash". */
static char spool_dir[64];
static atomic_int spool_done, spool_failed;

static void spooled(chopin_exchange x, const chopin_spooled *body, int err, void *arg) {
    if (err) {
        atomic_fetch_add(&spool_failed, 1);
        return;
    }
    uint64_t h = 14695981039346656037ull;
    if (body->data) {
        h = fnv(h, body->data, body->len);
    } else {
        char buf[65536];
        for (uint64_t off = 0; off < body->len;) {
            ssize_t n = pread(body->fd, buf, sizeof buf, (off_t)off);
            if (n <= 0)
                break;
            h = fnv(h, buf, (size_t)n);
            off += (uint64_t)n;
        }
    }
    char text[80];
    snprintf(text, sizeof text, "%s %llu %016llx", body->data ? "mem" : "file",
             (unsigned long long)body->len, (unsigned long long)h);
    chopin_res_text(chopin_exchange_res(x), 200, text);
    chopin_exchange_finish(x);
    atomic_fetch_add(&spool_done, 1);
}

static void spool_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_exchange x;
    chopin_body_spool(req, res, 4096, spool_dir, spooled, NULL, &x);
}

static chopin_server *server;
static chopin_router *router;
static int port;

static int start(void) {
    chopin_router *r = router = chopin_router_new();
    chopin_router_stream(r, CHOPIN_METHOD_POST, "/hash", hash_route, NULL, ROUTE_MAX);
    chopin_router_stream(r, CHOPIN_METHOD_POST, "/slow", hash_route, (void *)20, 0);
    chopin_router_stream(r, CHOPIN_METHOD_POST, "/slowbig", hash_route, (void *)50, 1ull << 31);
    chopin_router_stream(r, CHOPIN_METHOD_POST, "/big", hash_route, NULL, 1ull << 31);
    chopin_router_stream(r, CHOPIN_METHOD_POST, "/spool", spool_route, NULL, 1ull << 30);
    chopin_router_post(r, "/buffered", buffered_route, NULL);
    chopin_options o = chopin_options_default();
    o.max_body_bytes = 1u << 10; /* the routes' own limits override it */
    o.body_timeout_ms = 2000;
    server = cl_start(r, &o);
    if (!server)
        return -1;
    port = chopin_server_port(server);
    return 0;
}

/* ----- the client's side ------------------------------------------------------------------ */

static void pattern(char *buf, size_t n, uint64_t offset) {
    for (size_t i = 0; i < n; i++) {
        uint64_t k = offset + i;
        buf[i] = (char)(k * 2654435761u >> 13);
        if (k % 97 == 0)
            buf[i] = '\r';
    }
}

static uint64_t pattern_hash(uint64_t len) {
    char buf[8192];
    uint64_t h = 14695981039346656037ull;
    for (uint64_t off = 0; off < len; off += sizeof buf) {
        size_t n = len - off < sizeof buf ? (size_t)(len - off) : sizeof buf;
        pattern(buf, n, off);
        h = fnv(h, buf, n);
    }
    return h;
}

static void expect_hash(const struct cl_resp *r, uint64_t len) {
    char want[64];
    snprintf(want, sizeof want, "%llu %016llx", (unsigned long long)len,
             (unsigned long long)pattern_hash(len));
    CHECK_INT(r->status, 200);
    CHECK_STR(r->body ? r->body : "", want);
}

/* Sends `len` bytes of the pattern in pieces of `step`, chunked when asked. */
static int send_body(struct cl_conn *c, uint64_t len, size_t step, int chunked) {
    char *buf = malloc(step + 32);
    int rc = 0;
    for (uint64_t off = 0; off < len && rc == 0; off += step) {
        size_t n = len - off < step ? (size_t)(len - off) : step;
        size_t h = chunked ? (size_t)sprintf(buf, "%zx\r\n", n) : 0;
        pattern(buf + h, n, off);
        if (chunked)
            memcpy(buf + h + n, "\r\n", 2);
        rc = cl_send(c, buf, h + n + (chunked ? 2 : 0));
    }
    if (chunked && rc == 0)
        rc = cl_send(c, "0\r\n\r\n", 0);
    free(buf);
    return rc;
}

static void post_head(struct cl_conn *c, const char *path, uint64_t len, int chunked,
                      const char *extra) {
    char head[512];
    if (chunked)
        snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n\r\n",
                 path, extra);
    else
        snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %llu\r\n\r\n",
                 path, extra, (unsigned long long)len);
    cl_send(c, head, 0);
}

/* ----- cases ------------------------------------------------------------------------------ */

static void streams_length_and_chunked_bodies(void) {
    static const size_t steps[] = {1, 7, 1000, 65536, 1u << 20};
    static const uint64_t lens[] = {1, 97, 300000, 3u << 20};
    for (int chunked = 0; chunked < 2; chunked++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            size_t step = steps[(i + (size_t)chunked) % (sizeof steps / sizeof steps[0])];
            if (lens[i] > 1000 && step < 1000)
                step = 4096;
            struct cl_conn *c = cl_open(port);
            post_head(c, "/hash", lens[i], chunked, "");
            CHECK_INT(send_body(c, lens[i], step, chunked), 0);
            struct cl_resp r;
            CHECK_INT(cl_read(c, &r, 0), 0);
            expect_hash(&r, lens[i]);
            cl_resp_free(&r);
            cl_close(c);
        }
}

/* A request pipelined right behind a streamed body, in the same write, is served after. */
static void pipelined_after_the_body(void) {
    struct cl_conn *c = cl_open(port);
    char req[256];
    int n = snprintf(req, sizeof req, "POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
    char body[5];
    pattern(body, 5, 0);
    memcpy(req + n, body, 5);
    n += 5;
    n += snprintf(req + n, sizeof req - (size_t)n,
                  "POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    cl_send(c, req, (size_t)n);
    struct cl_resp r;
    CHECK_INT(cl_read(c, &r, 0), 0);
    expect_hash(&r, 5);
    cl_resp_free(&r);
    CHECK_INT(cl_read(c, &r, 0), 0);
    expect_hash(&r, 0);
    cl_resp_free(&r);
    cl_close(c);
}

/* Reads what the server sent within 300 ms (poll), NUL-terminated. */
static size_t read_some(struct cl_conn *c, char *buf, size_t cap) {
    size_t len = 0;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    while (len + 1 < cap && poll(&p, 1, 300) == 1) {
        ssize_t n = recv(c->fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return len;
}

static void continue_only_when_taken(void) {
    struct cl_conn *c = cl_open(port);
    post_head(c, "/hash", 1000, 0, "Expect: 100-continue\r\n");
    char buf[256];
    read_some(c, buf, sizeof buf);
    CHECK_STR(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    send_body(c, 1000, 1000, 0);
    struct cl_resp r;
    CHECK_INT(cl_read(c, &r, 0), 0);
    expect_hash(&r, 1000);
    cl_resp_free(&r);
    cl_close(c);

    /* Refused by the handler: no 100, its answer, and the connection closes. */
    c = cl_open(port);
    post_head(c, "/hash", 1000, 0, "Expect: 100-continue\r\nX-Refuse: 1\r\n");
    CHECK_INT(cl_read(c, &r, 0), 0);
    CHECK_INT(r.status, 401);
    CHECK(strstr(r.head, "100 Continue") == NULL);
    cl_resp_free(&r);
    CHECK(cl_closed(c));
    cl_close(c);
}

static void limits_answered(void) {
    struct cl_resp r;
    /* Past the route's limit: 413 before the handler runs, and no 100. */
    int before = atomic_load(&errors_seen);
    struct cl_conn *c = cl_open(port);
    post_head(c, "/hash", (uint64_t)ROUTE_MAX + 1, 0, "Expect: 100-continue\r\n");
    CHECK_INT(cl_read(c, &r, 0), 0);
    CHECK_INT(r.status, 413);
    cl_resp_free(&r);
    CHECK(cl_closed(c));
    cl_close(c);
    CHECK_INT(atomic_load(&errors_seen), before);

    /* The route's limit overrides the server's 1 KiB: 100 KiB passes there, not on a
     * buffered route. */
    c = cl_open(port);
    post_head(c, "/hash", 100000, 0, "");
    send_body(c, 100000, 65536, 0);
    CHECK_INT(cl_read(c, &r, 0), 0);
    expect_hash(&r, 100000);
    cl_resp_free(&r);
    cl_close(c);
    c = cl_open(port);
    post_head(c, "/buffered", 100000, 0, "");
    CHECK_INT(cl_read(c, &r, 0), 0);
    CHECK_INT(r.status, 413);
    cl_resp_free(&r);
    cl_close(c);

    /* /slow has no limit of its own: the server's 1 KiB. */
    c = cl_open(port);
    post_head(c, "/slow", 2000, 0, "");
    CHECK_INT(cl_read(c, &r, 0), 0);
    CHECK_INT(r.status, 413);
    cl_resp_free(&r);
    cl_close(c);

    /* Chunked past the limit: cut mid-way with 413, the reader told CHOPIN_EFBIG. */
    c = cl_open(port);
    post_head(c, "/slow", 0, 1, "");
    send_body(c, 1500, 500, 1);
    CHECK_INT(cl_read(c, &r, 0), 0);
    CHECK_INT(r.status, 413);
    cl_resp_free(&r);
    cl_close(c);
    CHECK_INT(atomic_load(&errors_seen), before + 1);
    CHECK_INT(atomic_load(&last_error), CHOPIN_EFBIG);

    /* Malformed framing: 400, CHOPIN_EINVAL. */
    c = cl_open(port);
    post_head(c, "/hash", 0, 1, "");
    cl_send(c, "5\r\nabcde\r\nzz\r\n", 0);
    CHECK_INT(cl_read(c, &r, 0), 0);
    CHECK_INT(r.status, 400);
    cl_resp_free(&r);
    cl_close(c);
    CHECK_INT(atomic_load(&errors_seen), before + 2);
    CHECK_INT(atomic_load(&last_error), CHOPIN_EINVAL);

    /* A client that stops sending: 408 after body_timeout_ms, CHOPIN_ETIMEDOUT. */
    c = cl_open(port);
    post_head(c, "/hash", 1000, 0, "");
    send_body(c, 10, 10, 0);
    CHECK_INT(cl_read(c, &r, 0), 0);
    CHECK_INT(r.status, 408);
    cl_resp_free(&r);
    cl_close(c);
    CHECK_INT(atomic_load(&errors_seen), before + 3);
    CHECK_INT(atomic_load(&last_error), CHOPIN_ETIMEDOUT);
}

/* A client that leaves mid-body: the reader hears CHOPIN_ECANCELED. */
static void client_leaves_mid_body(void) {
    int before = atomic_load(&errors_seen);
    struct cl_conn *c = cl_open(port);
    post_head(c, "/hash", 1u << 20, 0, "");
    send_body(c, 5000, 5000, 0);
    usleep(50000);
    cl_close(c);
    for (int i = 0; i < 1500 && atomic_load(&errors_seen) == before; i++)
        usleep(10000);
    CHECK_INT(atomic_load(&errors_seen), before + 1);
    CHECK_INT(atomic_load(&last_error), CHOPIN_ECANCELED);
}

/*
 * /slowbig pauses 50 ms after every piece: the client, sending as fast as the socket
 * takes, finds it full (no progress for 300 ms) long before it has sent the 256 MiB,
 * since the server stops reading while paused. Without the pause reaching the socket, the
 * server would read on into memory and the client would send it all. What the client got
 * out is at most the kernel's socket buffers plus what the handler took.
 */
static void paused_reader_throttles_client(void) {
    const uint64_t len = 256u << 20;
    struct cl_conn *c = cl_open(port);
    post_head(c, "/slowbig", len, 0, "");
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    char *buf = malloc(1 << 16);
    pattern(buf, 1 << 16, 0);
    uint64_t sent = 0;
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    while (sent < len) {
        ssize_t n = send(c->fd, buf, 1 << 16, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN)
            break;
        if (poll(&p, 1, 300) == 0)
            break; /* the socket stayed full */
    }
    uint64_t taken = atomic_load(&received_total);
    fprintf(stderr, "  throttled: client sent %llu KiB of %llu before the socket stayed full\n",
            (unsigned long long)(sent >> 10), (unsigned long long)(len >> 10));
    CHECK(sent < len / 8);
    CHECK(atomic_load(&paused_now) == 1 || taken > 0);
    free(buf);
    /* A reset, not a FIN: a paused reader reads nothing, so it would see a FIN only after
     * the bytes queued before it; a reset is reported whatever the connection waits for. */
    int before = atomic_load(&errors_seen);
    struct linger hard = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    cl_close(c);
    for (int i = 0; i < 1500 && atomic_load(&errors_seen) == before; i++)
        usleep(10000);
    CHECK_INT(atomic_load(&errors_seen), before + 1);
}

/* The spooling reader: small bodies stay in memory, larger ones go to an unnamed file; a
 * client that leaves mid-way leaves no file and no descriptor behind. */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void spools_to_memory_then_file(void) {
    static const uint64_t lens[] = {100, 4096, 4097, 5u << 20};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        struct cl_conn *c = cl_open(port);
        post_head(c, "/spool", lens[i], i & 1, "");
        send_body(c, lens[i], 65536, i & 1);
        struct cl_resp r;
        CHECK_INT(cl_read(c, &r, 0), 0);
        char want[96];
        snprintf(want, sizeof want, "%s %llu %016llx", lens[i] > 4096 ? "file" : "mem",
                 (unsigned long long)lens[i], (unsigned long long)pattern_hash(lens[i]));
        CHECK_INT(r.status, 200);
        CHECK_STR(r.body ? r.body : "", want);
        cl_resp_free(&r);
        cl_close(c);
    }
    int fds = count_entries("/proc/self/fd");
    int failed = atomic_load(&spool_failed);
    struct cl_conn *c = cl_open(port);
    post_head(c, "/spool", 1u << 20, 0, "");
    send_body(c, 300000, 65536, 0);
    usleep(50000);
    CHECK_INT(count_entries(spool_dir), 0); /* O_TMPFILE: the file never had a name */
    cl_close(c);
    for (int i = 0; i < 300 && atomic_load(&spool_failed) == failed; i++)
        usleep(10000);
    CHECK_INT(atomic_load(&spool_failed), failed + 1);
    CHECK_INT(count_entries(spool_dir), 0);
    /* The error callback runs before the worker closes the connection's socket and the
     * spool file, so their descriptors may still be open for a moment: wait for them. */
    for (int i = 0; i < 300 && count_entries("/proc/self/fd") > fds; i++)
        usleep(10000);
    CHECK(count_entries("/proc/self/fd") <= fds); /* (other tests' sockets may close meanwhile) */
}

static int status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = atoi(line + n + 1);
    if (f)
        fclose(f);
    return v;
}

/*
 * 1 GiB through the hashing handler, sent by a child process (so the measure is the
 * server's alone): the peak RSS of the server's process grows by a bounded amount, not by
 * the body. The peak is reset first (clear_refs 5, Linux 4.0) where the kernel allows.
 */
static void one_gib_in_bounded_memory(void) {
    const uint64_t len = 1ull << 30;
    int reset = 0;
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        reset = fputs("5", f) >= 0;
        reset = fclose(f) == 0 && reset;
    }
    int hwm0 = status_kib("VmHWM"), rss0 = status_kib("VmRSS");
    int pipefd[2];
    if (pipe(pipefd) < 0) {
        CHECK(0);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        struct cl_conn *c = cl_open(port);
        post_head(c, "/big", len, 0, "");
        int ok = send_body(c, len, 1 << 18, 0) == 0;
        struct cl_resp r;
        char want[64];
        snprintf(want, sizeof want, "%llu %016llx", (unsigned long long)len,
                 (unsigned long long)pattern_hash(len));
        ok = ok && cl_read(c, &r, 0) == 0 && r.status == 200 && r.body && !strcmp(r.body, want);
        if (write(pipefd[1], &ok, sizeof ok) != sizeof ok)
            _exit(1);
        _exit(0);
    }
    close(pipefd[1]);
    int ok = 0;
    CHECK(read(pipefd[0], &ok, sizeof ok) == sizeof ok);
    close(pipefd[0]);
    waitpid(pid, NULL, 0);
    CHECK(ok);
    int hwm1 = status_kib("VmHWM");
    int grew = hwm1 - (reset ? rss0 : hwm0);
    fprintf(stderr, "  1 GiB upload: server process RSS %d KiB before, peak %d KiB after%s: +%d KiB\n",
            rss0, hwm1, reset ? " (peak reset)" : "", grew);
    CHECK(grew < 64 * 1024);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    snprintf(spool_dir, sizeof spool_dir, "/tmp/chopin-upload-XXXXXX");
    if (!mkdtemp(spool_dir) || start() < 0) {
        printf("RESULT 0 1\n");
        return 1;
    }
    RUN(one_gib_in_bounded_memory);
    RUN(streams_length_and_chunked_bodies);
    RUN(pipelined_after_the_body);
    RUN(continue_only_when_taken);
    RUN(limits_answered);
    RUN(client_leaves_mid_body);
    RUN(paused_reader_throttles_client);
    RUN(spools_to_memory_then_file);
    cl_stop(server);
    chopin_router_free(router);
    rmdir(spool_dir);
    TEST_END();
}
