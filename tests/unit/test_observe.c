/* SPDX-License-Identifier: MIT */
/*
 * What a worker observes of its answers (issue 19), on the sans-I/O core: the counts by
 * method and status class, the histograms (handler time at the answer, time to last byte
 * once the output is drained), refusals and timeouts by kind, the idle gauge, and the
 * access log's lines for pipelined, deferred and refused requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "fake.h"
#include "ops/observe.h"

static chopin_exchange deferred;

static void hello(chopin_req *req, chopin_res *res, void *data) {
    (void)req, (void)data;
    chopin_res_static(res, 200, "text/plain", "hi", 2);
}

static void later(chopin_req *req, chopin_res *res, void *data) {
    (void)data;
    chopin_defer(req, res, &deferred);
}

static chopin_router *router(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hi", hello, NULL);
    chopin_router_get(r, "/later", later, NULL);
    chopin_metrics_route(r, "/metrics");
    return r;
}

static uint64_t hist_count(const struct chopin__hist *h) {
    uint64_t n = 0;
    for (int i = 0; i <= CHOPIN__HIST_BOUNDS; i++)
        n += h->bucket[i];
    return n;
}

/* The idle gauge as the metrics read it from another worker: published at the turn. */
static uint64_t idle_gauge(struct chopin__engine *e) {
    chopin__observe_turn(e);
    return e->counters.idle;
}

static void test_counts_and_histograms(void) {
    struct fake f;
    chopin_options o = chopin_options_default();
    o.slab_capacity = 16;
    fake_start(&f, router(), &o);
    struct chopin__engine *e = &f.engine;
    CHECK(e->obs != NULL);
    struct chopin__conn *c = chopin__engine_conn_new(e, -1);
    /* three pipelined in one read: counted as answered, their last bytes not sent yet */
    static const char three[] = "GET /hi HTTP/1.1\r\nHost: x\r\n\r\nGET /hi HTTP/1.1\r\nHost: x\r\n\r\n"
                                "POST /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    fake_feed(c, three);
    CHECK_INT(e->metrics.answers[CHOPIN_METHOD_GET][1], 2);
    CHECK_INT(e->metrics.answers[CHOPIN_METHOD_POST][3], 1);
    CHECK_INT(hist_count(&e->metrics.handler), 3);
    CHECK_INT(hist_count(&e->metrics.ttlb), 0);
    fake_output(c);
    CHECK_INT(hist_count(&e->metrics.ttlb), 3);
    CHECK_INT(idle_gauge(e), 1);
    CHECK_INT(e->counters.bytes_in, sizeof three - 1);
    /* a deferred answer: its handler time runs until it is finished */
    fake_feed(c, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(hist_count(&e->metrics.handler), 3);
    CHECK_INT(idle_gauge(e), 0);
    usleep(2000);
    chopin_res_static(chopin_exchange_res(deferred), 200, "text/plain", "later", 5);
    chopin_exchange_finish(deferred);
    chopin__engine_run_ready(e);
    CHECK_INT(hist_count(&e->metrics.handler), 4);
    CHECK(e->metrics.handler.sum_ns >= 2000000);
    CHECK_INT(e->metrics.answers[CHOPIN_METHOD_GET][1], 3);
    fake_output(c);
    CHECK_INT(hist_count(&e->metrics.ttlb), 4);
    /* refused before routing: no method, no dispatch, counted by kind */
    fake_feed(c, "GET /a b c\r\n\r\n");
    CHECK_INT(e->metrics.answers[CHOPIN__METHOD_NONE][3], 1);
    CHECK_INT(e->counters.refused[CHOPIN__REFUSED_BAD_REQUEST], 1);
    CHECK_INT(hist_count(&e->metrics.handler), 4);
    chopin__engine_conn_free(e, c);
    CHECK_INT(idle_gauge(e), 0);
    fake_stop(&f);
}

static void test_timeouts(void) {
    struct fake f;
    chopin_options o = chopin_options_default();
    o.slab_capacity = 16;
    o.header_timeout_ms = 1000;
    o.keepalive_timeout_ms = 5000;
    fake_start(&f, router(), &o);
    struct chopin__engine *e = &f.engine;
    struct chopin__conn *slow = chopin__engine_conn_new(e, -1);
    struct chopin__conn *idle = chopin__engine_conn_new(e, -1);
    fake_feed(slow, "GET /hi HTTP/1.1\r\nHost: x\r\n");
    fake_feed(idle, "GET /hi HTTP/1.1\r\nHost: x\r\n\r\n");
    fake_output(idle);
    chopin__engine_set_clock(e, FAKE_T0 + 1500, FAKE_WALL + 1);
    chopin__engine_run_timers(e);
    CHECK_INT(e->counters.timeouts[CHOPIN__TIMEOUT_HEADER], 1);
    CHECK_INT(e->metrics.answers[CHOPIN__METHOD_NONE][3], 1); /* its 408 */
    CHECK_INT(e->counters.refused[CHOPIN__REFUSED_OTHER], 0); /* a timeout, not a refusal */
    chopin__engine_set_clock(e, FAKE_T0 + 6000, FAKE_WALL + 6);
    chopin__engine_run_timers(e);
    CHECK_INT(e->counters.timeouts[CHOPIN__TIMEOUT_KEEPALIVE], 1);
    fake_stop(&f);
}

/* Without the metrics route and the access log there is no observer: nothing is timed. */
static void test_off(void) {
    struct fake f;
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hi", hello, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 16;
    fake_start(&f, r, &o);
    CHECK(f.engine.obs == NULL);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /hi HTTP/1.1\r\nHost: x\r\n\r\n");
    fake_output(c);
    CHECK_INT(hist_count(&f.engine.metrics.handler), 0);
    CHECK_INT(f.engine.counters.requests, 1);
    fake_stop(&f);
}

/* The access log: one line per answer, pipelined and refused ones included, written at
 * the turn (or when the engine ends). */
static void test_access_lines(void) {
    char path[] = "/tmp/chopin_observe_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    struct fake f;
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hi", hello, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 16;
    f.router = r;
    chopin__router_freeze(r);
    chopin__config_resolve(&f.cfg, &o);
    f.cfg.access_fd = fd;
    chopin__engine_init(&f.engine, &f.cfg, r, 0, FAKE_T0);
    chopin__engine_set_clock(&f.engine, FAKE_T0, FAKE_WALL);
    CHECK(f.engine.obs != NULL && f.engine.obs->access != NULL);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /hi HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\nHEAD /hi HTTP/1.1\r\nHost: x\r\n\r\nGET /x\x01 HTTP/1.1\r\n\r\n");
    fake_output(c);
    CHECK_INT(lseek(fd, 0, SEEK_END), 0); /* not yet: written per turn, in batches */
    chopin__engine_set_clock(&f.engine, FAKE_T0 + 200, FAKE_WALL);
    chopin__observe_turn(&f.engine);
    char buf[1024] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    CHECK_STR(buf, "unknown - - [06/Nov/1994:08:49:37 +0000] \"GET /hi HTTP/1.1\" 200 2 \"-\" \"t\"\n"
                   "unknown - - [06/Nov/1994:08:49:37 +0000] \"HEAD /hi HTTP/1.1\" 200 - \"-\" \"-\"\n"
                   "unknown - - [06/Nov/1994:08:49:37 +0000] \"-\" 400 11 \"-\" \"-\"\n");
    fake_stop(&f);
    close(fd);
    unlink(path);
}

/* Escaping across the 16-byte blocks the scan takes at once: bytes to escape at the
 * start, inside and at the end of a block, and in the tail after the last whole block. */
static void test_access_escaping(void) {
    char path[] = "/tmp/chopin_observe_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    struct fake f;
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hi", hello, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 16;
    o.access_log_format = CHOPIN_ACCESS_LOG_JSON;
    f.router = r;
    chopin__router_freeze(r);
    chopin__config_resolve(&f.cfg, &o);
    f.cfg.access_fd = fd;
    chopin__engine_init(&f.engine, &f.cfg, r, 0, FAKE_T0);
    chopin__engine_set_clock(&f.engine, FAKE_T0, FAKE_WALL);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    /* 0123456789abcdef0123456789abcdef0123456789 */
    fake_feed(c, "GET /hi HTTP/1.1\r\nHost: x\r\n"
                 "User-Agent: \"bcdefghijklmnop0123456789abcde\\\xff" "123456789abcdef0123456789\x80\r\n"
                 "Referer: 0123456789abcdef0123456789abcdef\r\n\r\n");
    fake_output(c);
    chopin__engine_conn_free(&f.engine, c);
    chopin__engine_destroy(&f.engine);
    char buf[1024] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    CHECK(strstr(buf, ",\"referer\":\"0123456789abcdef0123456789abcdef\",\"user_agent\":\"\\\"bcdefghijklmnop"
                      "0123456789abcde\\\\\\u00ff123456789abcdef0123456789\\u0080\",") != NULL);
    if (!strstr(buf, "\\u00ff123456789abcdef0123456789\\u0080\","))
        fprintf(stderr, "  got: %s", buf);
    chopin_router_free(r);
    close(fd);
    unlink(path);
}

/* A body of as many bytes as the path says: the log's byte counts of every length. */
static void sized(chopin_req *req, chopin_res *res, void *data) {
    (void)data;
    chopin_str n = chopin_req_param(req, "n");
    size_t len = (size_t)strtoul(n.ptr, NULL, 10);
    char *body = calloc(1, len + 1);
    chopin_res_copy(res, 200, "text/plain", body, len);
    free(body);
}

static void test_access_byte_counts(void) {
    char path[] = "/tmp/chopin_observe_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    struct fake f;
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/len/:n", sized, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 16;
    f.router = r;
    chopin__router_freeze(r);
    chopin__config_resolve(&f.cfg, &o);
    f.cfg.access_fd = fd;
    chopin__engine_init(&f.engine, &f.cfg, r, 0, FAKE_T0);
    chopin__engine_set_clock(&f.engine, FAKE_T0, FAKE_WALL);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    static const unsigned sizes[] = {1, 9, 10, 99, 100, 101, 999, 1000, 4096, 10000, 65535, 100000, 123456};
    char want[4096] = "", req[64];
    size_t w = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        snprintf(req, sizeof req, "GET /len/%u HTTP/1.1\r\nHost: x\r\n\r\n", sizes[i]);
        fake_feed(c, req);
        fake_output(c);
        w += (size_t)snprintf(want + w, sizeof want - w,
                              "unknown - - [06/Nov/1994:08:49:37 +0000] \"GET /len/%u HTTP/1.1\" 200 %u \"-\" \"-\"\n",
                              sizes[i], sizes[i]);
    }
    chopin__engine_conn_free(&f.engine, c);
    chopin__engine_destroy(&f.engine);
    char buf[4096] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    CHECK_STR(buf, want);
    chopin_router_free(r);
    close(fd);
    unlink(path);
}

/* What a field should look like in a line, a byte at a time. */
static size_t reference_escape(char *out, const char *s, size_t n, int json) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            out[o++] = (char)ch;
        else if (json && (ch == '"' || ch == '\\'))
            o += (size_t)sprintf(out + o, "\\%c", ch);
        else
            o += (size_t)sprintf(out + o, json ? "\\u%04x" : "\\x%02x", ch);
    }
    out[o] = '\0';
    return o;
}

/* A User-Agent of every length from 0 to 40 bytes (short fields are copied and scanned in
 * one block, longer ones in blocks whose last overlaps the one before) with a byte to
 * escape at every position, or none; each line written before the next, so that a short
 * field lands where a longer line's quotes still lie past it, which must not count. */
static void check_escaping_at_every_position(uint32_t format) {
    char path[] = "/tmp/chopin_observe_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    struct fake f;
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hi", hello, NULL);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 16;
    o.access_log_format = format;
    f.router = r;
    chopin__router_freeze(r);
    chopin__config_resolve(&f.cfg, &o);
    f.cfg.access_fd = fd;
    chopin__engine_init(&f.engine, &f.cfg, r, 0, FAKE_T0);
    chopin__engine_set_clock(&f.engine, FAKE_T0, FAKE_WALL);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    static const char special[] = {'"', '\\', (char)0xff};
    off_t at = 0;
    int bad = 0;
    for (int len = 0; len <= 40 && !bad; len++) {
        for (int k = -1; k < len && !bad; k++) {
            char ua[48], req[160], want[256], line[1024];
            for (int i = 0; i < len; i++)
                ua[i] = (char)('a' + i % 26);
            if (k >= 0)
                ua[k] = special[k % 3];
            snprintf(req, sizeof req, "GET /hi HTTP/1.1\r\nHost: x\r\nUser-Agent: %.*s\r\n\r\n",
                     len, ua);
            fake_feed(c, req);
            fake_output(c);
            chopin__access_flush(f.engine.obs->access, 0, 1);
            ssize_t n = pread(fd, line, sizeof line - 1, at);
            line[n > 0 ? n : 0] = '\0';
            at += n > 0 ? n : 0;
            char esc[200];
            reference_escape(esc, ua, (size_t)len, format == CHOPIN_ACCESS_LOG_JSON);
            if (format == CHOPIN_ACCESS_LOG_JSON)
                snprintf(want, sizeof want, ",\"user_agent\":\"%s\",", esc);
            else
                snprintf(want, sizeof want, "\"-\" \"%s\"\n", esc);
            size_t wl = strlen(want), ll = strlen(line);
            int ok = format == CHOPIN_ACCESS_LOG_JSON ? strstr(line, want) != NULL
                                                      : ll >= wl && !strcmp(line + ll - wl, want);
            if (!ok) {
                fprintf(stderr, "  length %d, escape at %d: %s", len, k, line);
                bad = 1;
            }
        }
    }
    CHECK(!bad);
    chopin__engine_conn_free(&f.engine, c);
    chopin__engine_destroy(&f.engine);
    chopin_router_free(r);
    close(fd);
    unlink(path);
}

static void test_access_escaping_every_position(void) {
    check_escaping_at_every_position(CHOPIN_ACCESS_LOG_COMBINED);
    check_escaping_at_every_position(CHOPIN_ACCESS_LOG_JSON);
}

int main(void) {
    RUN(test_counts_and_histograms);
    RUN(test_timeouts);
    RUN(test_off);
    RUN(test_access_lines);
    RUN(test_access_escaping);
    RUN(test_access_escaping_every_position);
    RUN(test_access_byte_counts);
    TEST_END();
}
