/* SPDX-License-Identifier: MIT */
/*
 * The access log and the error log over real sockets (issue 19).
 *
 * Access log: the combined and JSON lines of answered and refused requests (a refusal
 * before routing is logged too), escaping of what the client sent, the request id; off
 * by default; reopened under load (logrotate) with no line lost. Error log: the level
 * option and variable drop the messages below them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

static char dir[] = "/tmp/chopin_logs_XXXXXX";

static void hello(chopin_req *req, chopin_res *res, void *data) {
    (void)req, (void)data;
    chopin_res_static(res, 200, "text/plain", "hello", 5);
}

static void whoami(chopin_req *req, chopin_res *res, void *data) {
    (void)data;
    chopin_str id = chopin_req_id(req);
    chopin_res_copy(res, 200, "text/plain", id.ptr, id.len);
}

/* The whole file (malloc'd, NUL-terminated; "" when missing). */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 22);
    if (f && buf) {
        size_t n = fread(buf, 1, (1 << 22) - 1, f);
        buf[n] = '\0';
    }
    if (f)
        fclose(f);
    return buf;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Sends `req` on a new connection and reads one answer; returns its status. */
static int ask(int port, const char *req, struct cl_resp *r) {
    struct cl_conn *c = cl_open(port);
    int st = -1;
    if (c && cl_send(c, req, 0) == 0 && cl_read(c, r, strncmp(req, "HEAD", 4) == 0) == 0)
        st = r->status;
    else
        memset(r, 0, sizeof *r);
    cl_close(c);
    return st;
}

static chopin_server *start_logged(chopin_router *r, const char *path, uint32_t format) {
    chopin_options o = chopin_options_default();
    o.access_log = path;
    o.access_log_format = format;
    o.max_body_bytes = 100;
    return cl_start(r, &o);
}

static void test_combined(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/combined.log", dir);
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hello", hello, NULL);
    chopin_server *s = start_logged(r, path, 0);
    CHECK(s != NULL);
    if (!s)
        return;
    int port = chopin_server_port(s);
    struct cl_resp resp;
    CHECK_INT(ask(port, "GET /hello?a=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: ua \"q\"\r\n"
                        "Referer: http://r.example/\r\n\r\n", &resp), 200);
    cl_resp_free(&resp);
    CHECK_INT(ask(port, "HEAD /hello HTTP/1.0\r\n\r\n", &resp), 200);
    cl_resp_free(&resp);
    CHECK_INT(ask(port, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 404);
    cl_resp_free(&resp);
    CHECK_INT(ask(port, "GET /a b c\r\n\r\n", &resp), 400);
    cl_resp_free(&resp);
    CHECK_INT(ask(port, "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", &resp), 413);
    cl_resp_free(&resp);
    cl_stop(s);
    chopin_router_free(r);
    char *log = slurp(path);
    CHECK_INT(count_lines(log), 5);
    /* "127.0.0.1 - - [03/Dec/2026:15:14:30 +0000] ...": the time is the only free part */
    const char *want[] = {
        "\"GET /hello?a=1 HTTP/1.1\" 200 5 \"http://r.example/\" \"ua \\x22q\\x22\"\n",
        "\"HEAD /hello HTTP/1.0\" 200 - \"-\" \"-\"\n",
        "\"GET /nope HTTP/1.1\" 404 9 \"-\" \"-\"\n",   /* "Not Found" */
        "\"-\" 400 11 \"-\" \"-\"\n",                  /* "Bad Request" */
        "\"-\" 413 17 \"-\" \"-\"\n",                  /* "Content Too Large" */
    };
    const char *line = log;
    for (size_t i = 0; i < sizeof want / sizeof want[0] && *line; i++) {
        const char *end = strchr(line, '\n');
        const char *tail = end ? end + 1 - strlen(want[i]) : line;
        int ok = strncmp(line, "127.0.0.1 - - [", 15) == 0 && line[17] == '/' &&
                 strstr(line, " +0000] ") && tail >= line &&
                 strncmp(tail, want[i], strlen(want[i])) == 0;
        if (!ok) {
            fprintf(stderr, "  line %zu: %.*s\n  expected to end: %s", i, (int)(end - line),
                    line, want[i]);
            CHECK(0);
        }
        line = end ? end + 1 : line + strlen(line);
    }
    free(log);
}

static void test_json_with_request_id(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/json.log", dir);
    chopin_router *r = chopin_router_new();
    chopin_router_use(r, NULL, chopin_request_id, NULL);
    chopin_router_get(r, "/id", whoami, NULL);
    chopin_server *s = start_logged(r, path, CHOPIN_ACCESS_LOG_JSON);
    CHECK(s != NULL);
    if (!s)
        return;
    int port = chopin_server_port(s);
    struct cl_resp resp;
    CHECK_INT(ask(port, "GET /id?x=%22 HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123\r\n"
                        "User-Agent: a\\b\xe9\r\n\r\n", &resp), 200);
    CHECK_MEM(resp.body, resp.body_len, "abc-123");
    cl_resp_free(&resp);
    CHECK_INT(ask(port, "GET /a b c\r\n\r\n", &resp), 400);
    char id[64] = "";
    CHECK_INT(cl_header(&resp, "X-Request-Id", id, sizeof id), 0);
    CHECK_INT(strlen(id), 32);
    cl_resp_free(&resp);
    cl_stop(s);
    chopin_router_free(r);
    char *log = slurp(path);
    CHECK_INT(count_lines(log), 2);
    char *second = strchr(log, '\n');
    CHECK(second != NULL);
    if (second) {
        *second++ = '\0';
        CHECK(strncmp(log, "{\"time\":\"", 9) == 0 && log[13] == '-' && log[28] == 'Z');
        CHECK(strstr(log, ",\"remote\":\"127.0.0.1\",\"method\":\"GET\",\"target\":\"/id?x=%22\","
                          "\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes\":7,"
                          "\"user_agent\":\"a\\\\b\\u00e9\",\"request_id\":\"abc-123\","
                          "\"worker\":0}") != NULL);
        char want[256];
        snprintf(want, sizeof want, ",\"remote\":\"127.0.0.1\",\"status\":400,\"bytes\":11,"
                                    "\"request_id\":\"%s\",\"worker\":0}\n", id);
        CHECK(strstr(second, want) != NULL);
        if (!strstr(second, want))
            fprintf(stderr, "  got: %s  want: %s", second, want);
    }
    free(log);
}

/* Off by default: no option, no variable, no file and nothing on stderr. */
static void test_off_by_default(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hello", hello, NULL);
    capture_begin();
    chopin_server *s = cl_start(r, NULL);
    struct cl_resp resp;
    int st = s ? ask(chopin_server_port(s), "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &resp) : -1;
    if (st > 0)
        cl_resp_free(&resp);
    cl_stop(s);
    const char *err = capture_end();
    CHECK_INT(st, 200);
    CHECK_STR(err, "");
    chopin_router_free(r);
}

/* ----- reopen under load ------------------------------------------------------------ */

#define LOAD_THREADS 4
#define LOAD_REQUESTS 2000 /* per thread, on one keep-alive connection */

static int load_port;
static int load_answered;

static void *load(void *arg) {
    (void)arg;
    struct cl_conn *c = cl_open(load_port);
    for (int i = 0; c && i < LOAD_REQUESTS; i++) {
        struct cl_resp r;
        if (cl_send(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 0) < 0 || cl_read(c, &r, 0) < 0)
            break;
        cl_resp_free(&r);
        __atomic_add_fetch(&load_answered, 1, __ATOMIC_SEQ_CST);
    }
    cl_close(c);
    return NULL;
}

/* logrotate's way: rename the file, then ask for a reopen; three times while clients run.
 * Every answer has its line, whole, in exactly one of the files. */
static void test_reopen_under_load(void) {
    char path[256], moved[300];
    snprintf(path, sizeof path, "%s/rotate.log", dir);
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hello", hello, NULL);
    chopin_options o = chopin_options_default();
    o.access_log = path;
    o.workers = 2;
    chopin_server *s = cl_start(r, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    load_port = chopin_server_port(s);
    pthread_t t[LOAD_THREADS];
    for (int i = 0; i < LOAD_THREADS; i++)
        pthread_create(&t[i], NULL, load, NULL);
    int rotations = 0;
    for (int i = 1; i <= 3; i++) {
        while (__atomic_load_n(&load_answered, __ATOMIC_SEQ_CST) < i * LOAD_THREADS * LOAD_REQUESTS / 4)
            usleep(1000);
        snprintf(moved, sizeof moved, "%s.%d", path, i);
        rotations += rename(path, moved) == 0 && chopin_server_reopen_logs(s) == 0;
    }
    for (int i = 0; i < LOAD_THREADS; i++)
        pthread_join(t[i], NULL);
    cl_stop(s);
    chopin_router_free(r);
    CHECK_INT(rotations, 3);
    CHECK_INT(load_answered, LOAD_THREADS * LOAD_REQUESTS);
    int lines = 0, whole = 1;
    for (int i = 0; i <= 3; i++) {
        if (i)
            snprintf(moved, sizeof moved, "%s.%d", path, i);
        char *log = slurp(i ? moved : path);
        lines += count_lines(log);
        if (i == 0) /* the last quarter of the load, written after the last reopen */
            CHECK(count_lines(log) > 0);
        static const char tail[] = "] \"GET /hello HTTP/1.1\" 200 5 \"-\" \"-\"";
        for (const char *p = log, *end; *p; p = end + 1) {
            end = strchr(p, '\n');
            if (!end || strncmp(p, "127.0.0.1 - - [", 15) != 0 || end - p < 60 ||
                strncmp(end - (sizeof tail - 1), tail, sizeof tail - 1) != 0) {
                whole = 0;
                break;
            }
        }
        free(log);
    }
    CHECK_INT(lines, LOAD_THREADS * LOAD_REQUESTS);
    CHECK(whole);
}

/* ----- the error log ----------------------------------------------------------------- */

/* The start banner is an info line: printed at the default level, dropped at warn (by
 * the option or by CHOPIN_LOG_LEVEL); an error always passes. */
static void test_error_log_levels(void) {
    chopin_router *r = chopin_router_new();
    chopin_options o = chopin_options_default();
    struct {
        uint32_t level;
        const char *env;
        int banner;
    } cases[] = {{0, NULL, 1}, {CHOPIN_LOG_WARN, NULL, 0}, {0, "warn", 0},
                 {CHOPIN_LOG_ERROR, "debug", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        o.log_level = cases[i].level;
        o.workers = 1;
        if (cases[i].env)
            setenv("CHOPIN_LOG_LEVEL", cases[i].env, 1);
        chopin_server *s;
        capture_begin();
        int rc = chopin_server_start(r, "127.0.0.1:0", &o, &s);
        if (rc == 0) {
            chopin_server_stop(s);
            chopin_server_wait(s);
        }
        chopin_log(CHOPIN_LOG_ERROR, "an error");
        chopin_log(CHOPIN_LOG_DEBUG, "a detail");
        const char *err = capture_end();
        unsetenv("CHOPIN_LOG_LEVEL");
        CHECK_INT(rc, 0);
        CHECK_INT(strstr(err, "listening on 127.0.0.1:") != NULL, cases[i].banner);
        CHECK(strstr(err, "an error\n") != NULL);
        CHECK_INT(strstr(err, "a detail\n") != NULL, cases[i].env && !strcmp(cases[i].env, "debug"));
    }
    setenv("CHOPIN_LOG_LEVEL", "loud", 1);
    capture_begin();
    int rc = chopin_options_check(&o);
    const char *err = capture_end();
    unsetenv("CHOPIN_LOG_LEVEL");
    CHECK_INT(rc, CHOPIN_EINVAL);
    CHECK(strstr(err, "CHOPIN_LOG_LEVEL=\"loud\": expected one of error, warn, info, debug") != NULL);
    chopin_log_set_level(CHOPIN_LOG_INFO);
    chopin_router_free(r);
}

static void test_access_log_cannot_open(void) {
    chopin_router *r = chopin_router_new();
    chopin_options o = chopin_options_default();
    o.access_log = "/nonexistent-dir/x/access.log";
    o.quiet = 1;
    chopin_server *s;
    capture_begin();
    int rc = chopin_server_start(r, "127.0.0.1:0", &o, &s);
    const char *err = capture_end();
    CHECK_INT(rc, CHOPIN_ENOENT);
    CHECK(strstr(err, "cannot open the access log /nonexistent-dir/x/access.log") != NULL);
    chopin_router_free(r);
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_combined);
    RUN(test_json_with_request_id);
    RUN(test_off_by_default);
    RUN(test_reopen_under_load);
    RUN(test_error_log_levels);
    RUN(test_access_log_cannot_open);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    TEST_END();
}
