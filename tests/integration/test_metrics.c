/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus metrics route over real sockets (issue 19): after a known set of
 * requests (answered, refused before routing, timed out) on two workers, every series
 * says exactly what happened, and `promtool check metrics` (Debian prometheus) accepts
 * the text; skipped, saying so, when promtool is not installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

static int skipped;
static int port;
static long long sent_bytes; /* every byte the client sent the server */
static int connections;

static void hello(chopin_req *req, chopin_res *res, void *data) {
    (void)req, (void)data;
    chopin_res_static(res, 200, "text/plain", "hello", 5);
}

static void echo(chopin_req *req, chopin_res *res, void *data) {
    (void)data;
    chopin_str b = chopin_req_body(req);
    chopin_res_copy(res, 200, "text/plain", b.ptr, b.len);
}

static struct cl_conn *open_counted(void) {
    connections++;
    return cl_open(port);
}

/* Sends `req` on `c` and reads the answer; returns its status. */
static int send_read(struct cl_conn *c, const char *req) {
    struct cl_resp r;
    if (!c || cl_send(c, req, 0) < 0)
        return -1;
    sent_bytes += (long long)strlen(req);
    if (cl_read(c, &r, 0) < 0)
        return -1;
    int st = r.status;
    cl_resp_free(&r);
    return st;
}

/* The value of the sample `series` (name and labels exactly as printed); -1 when absent. */
static double sample(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return atof(p + n + 1);
    }
    return -1;
}

/* Scrapes /metrics into *body (malloc'd). */
static int scrape(char **body) {
    struct cl_conn *c = open_counted();
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    struct cl_resp r;
    int st = -1;
    if (c && cl_send(c, req, 0) == 0 && cl_read(c, &r, 0) == 0) {
        sent_bytes += (long long)sizeof req - 1;
        st = r.status;
        *body = r.body;
        char type[128] = "";
        cl_header(&r, "Content-Type", type, sizeof type);
        CHECK_STR(type, "text/plain; version=0.0.4; charset=utf-8");
    }
    cl_close(c);
    return st;
}

static void promtool_accepts(const char *text) {
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        printf("skipped promtool check metrics: promtool is not installed (Debian package "
               "prometheus, scripts/deps.sh test)\n");
        skipped++;
        return;
    }
    char path[] = "/tmp/chopin_metrics_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_INT(write(fd, text, strlen(text)), (long long)strlen(text));
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "  promtool refused the text (exit %d):\n%s\n", rc, text);
    CHECK_INT(rc, 0);
    unlink(path);
}

static void test_metrics_match_requests(void) {
    /* 50 GETs on 5 keep-alive connections, 3 POSTs, a 404 */
    for (int i = 0; i < 5; i++) {
        struct cl_conn *c = open_counted();
        for (int k = 0; k < 10; k++)
            CHECK_INT(send_read(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
        cl_close(c);
    }
    struct cl_conn *c = open_counted();
    for (int k = 0; k < 3; k++)
        CHECK_INT(send_read(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"), 200);
    CHECK_INT(send_read(c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
    cl_close(c);
    /* refused before routing: malformed, and a head that never ends (header timeout) */
    c = open_counted();
    CHECK_INT(send_read(c, "GET /a b c\r\n\r\n"), 400);
    cl_close(c);
    c = open_counted();
    CHECK_INT(send_read(c, "GET /hello HTTP/1.1\r\nHost: x\r\n"), 408);
    cl_close(c);

    char *text = NULL;
    CHECK_INT(scrape(&text), 200);
    if (!text)
        return;
    CHECK_INT(sample(text, "chopin_http_requests_total{method=\"GET\",code=\"2xx\"}"), 50);
    CHECK_INT(sample(text, "chopin_http_requests_total{method=\"POST\",code=\"2xx\"}"), 3);
    CHECK_INT(sample(text, "chopin_http_requests_total{method=\"GET\",code=\"4xx\"}"), 1);
    CHECK_INT(sample(text, "chopin_http_requests_total{method=\"none\",code=\"4xx\"}"), 2);
    CHECK_INT(sample(text, "chopin_parse_errors_total{kind=\"bad_request\"}"), 1);
    CHECK_INT(sample(text, "chopin_parse_errors_total{kind=\"headers_too_large\"}"), 0);
    CHECK_INT(sample(text, "chopin_timeouts_total{kind=\"header\"}"), 1);
    CHECK_INT(sample(text, "chopin_timeouts_total{kind=\"write\"}"), 0);
    CHECK_INT(sample(text, "chopin_handler_seconds_count"), 54);
    CHECK_INT(sample(text, "chopin_handler_seconds_bucket{le=\"+Inf\"}"), 54);
    CHECK(sample(text, "chopin_handler_seconds_sum") > 0);
    CHECK_INT(sample(text, "chopin_bytes_received_total"), sent_bytes);
    CHECK_INT(sample(text, "chopin_connections_accepted_total"), connections);
    CHECK(sample(text, "chopin_connections_open") >= 1);
    CHECK(sample(text, "chopin_bytes_sent_total") > 50 * 5);
    CHECK_INT(sample(text, "chopin_accept_errors_total"), 0);
    promtool_accepts(text);
    free(text);

    /* Time to last byte: counted when the kernel took an answer's last byte, which a
     * completion-based backend may learn after the client read it: scraped until it has
     * caught up (bounded). Each scrape is one more answer. */
    int scrapes = 1;
    double ttlb = -1;
    for (int tries = 0; tries < 50 && ttlb < 54 + scrapes - 1; tries++) {
        if (tries)
            usleep(20000);
        text = NULL;
        CHECK_INT(scrape(&text), 200);
        if (!text)
            return;
        ttlb = sample(text, "chopin_time_to_last_byte_seconds_count");
        scrapes++;
        free(text);
    }
    CHECK(ttlb >= 54 + scrapes - 2 && ttlb <= 54 + scrapes - 1);
}

/* The idle gauge until it reads `want` (the server learns of the client's closes a little
 * later: bounded), scraped over `over` (NULL: a new connection each time). */
static double idle_gauge(struct cl_conn *over, double want) {
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    double v = -1;
    for (int tries = 0; tries < 100 && v != want; tries++) {
        if (tries)
            usleep(20000);
        struct cl_conn *c = over ? over : cl_open(port);
        struct cl_resp r;
        if (!c || cl_send(c, req, 0) < 0 || cl_read(c, &r, 0) < 0) {
            if (!over)
                cl_close(c);
            return -1;
        }
        v = sample(r.body, "chopin_connections_idle");
        cl_resp_free(&r);
        if (!over)
            cl_close(c);
    }
    return v;
}

/* Keep-alive connections waiting for their next request, on both workers: the gauge
 * counts them all, but not the connection the scrape comes over (busy with it, though it
 * was idle when its worker's loop last turned), and none once they are closed. */
static void test_idle_gauge(void) {
    enum { K = 6 };
    struct cl_conn *c[K];
    for (int i = 0; i < K; i++) {
        c[i] = cl_open(port);
        CHECK_INT(send_read(c[i], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    }
    CHECK_INT(idle_gauge(NULL, K), K);
    CHECK_INT(idle_gauge(c[0], K - 1), K - 1);
    for (int i = 0; i < K; i++)
        cl_close(c[i]);
    CHECK_INT(idle_gauge(NULL, 0), 0);
}

int main(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hello", hello, NULL);
    chopin_router_post(r, "/echo", echo, NULL);
    CHECK_INT(chopin_metrics_route(r, "/metrics"), 0);
    chopin_options o = chopin_options_default();
    o.workers = 2;
    o.header_timeout_ms = 1000;
    chopin_server *s = cl_start(r, &o);
    if (!s)
        return 1;
    port = chopin_server_port(s);
    RUN(test_metrics_match_requests);
    RUN(test_idle_gauge);
    cl_stop(s);
    chopin_router_free(r);
    printf("RESULT %d %d %d\n", test_passed, test_failed, skipped);
    return test_failed ? 1 : 0;
}
