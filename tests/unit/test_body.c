/* SPDX-License-Identifier: MIT */
/*
 * Streamed request bodies on the sans-I/O core (issue 18), through the fake backend: a
 * body cut into two reads at every byte arrives whole and in order (Content-Length and
 * chunked, with a request pipelined behind it), "100 Continue" only once the handler took
 * the body, a paused reader gets nothing more and the connection reads nothing until it
 * resumes, an early answer closes the connection, an idle body is answered 408.
 */
#include <errno.h>
#include <stdio.h>

#include "test.h"
#include "fake.h"

static char got[4096];
static size_t got_len;
static int ends, errors, last_err, pause_next, answer_early;
static chopin_exchange current;

static void on_data(chopin_exchange x, const char *p, size_t n, void *arg) {
    if (got_len + n < sizeof got) {
        memcpy(got + got_len, p, n);
        got_len += n;
    }
    current = x;
    if (pause_next) {
        pause_next = 0;
        chopin_body_pause(x);
    }
    if (answer_early) {
        chopin_res_text(chopin_exchange_res(x), 422, "no");
        chopin_exchange_finish(x);
    }
}

static void on_end(chopin_exchange x, void *arg) {
    ends++;
    char text[64];
    snprintf(text, sizeof text, "got %zu", got_len);
    chopin_res_text(chopin_exchange_res(x), 200, text);
    chopin_exchange_finish(x);
}

static void on_error(chopin_exchange x, int err, void *arg) {
    errors++;
    last_err = err;
}

static void take_body(chopin_req *req, chopin_res *res, void *data) {
    static const chopin_body_handler h = {on_data, on_end, on_error};
    chopin_exchange x;
    if (chopin_req_header(req, "x-refuse").ptr)
        chopin_res_text(res, 401, "no");
    else
        chopin_body_read(req, res, &h, NULL, &x);
}

static void hello(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "hi", 2);
}

static struct fake f;

static struct chopin__conn *start(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_stream(r, CHOPIN_METHOD_POST, "/up", take_body, NULL, 1000);
    chopin_router_get(r, "/hi", hello, NULL);
    chopin_options o = chopin_options_default();
    o.body_timeout_ms = 5000;
    o.slab_capacity = 4;
    fake_start(&f, r, &o);
    got_len = 0;
    ends = errors = last_err = pause_next = answer_early = 0;
    return chopin__engine_conn_new(&f.engine, -1);
}

static void feed_n(struct chopin__conn *c, const char *p, size_t n) {
    char *buf = malloc(n ? n : 1);
    memcpy(buf, p, n);
    chopin__conn_on_data(c, buf, n);
    memset(buf, '#', n);
    free(buf);
}

static const char *LENGTH_REQ = "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 26\r\n\r\n"
                                "abcdefghijklmnopqrstuvwxyz"
                                "GET /hi HTTP/1.1\r\nHost: a\r\n\r\n";
static const char *CHUNKED_REQ = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "3\r\nabc\r\n17;ext=1\r\ndefghijklmnopqrstuvwxyz\r\n0\r\n\r\n"
                                 "GET /hi HTTP/1.1\r\nHost: a\r\n\r\n";

static void every_split(void) {
    const char *reqs[] = {LENGTH_REQ, CHUNKED_REQ};
    for (int k = 0; k < 2; k++) {
        size_t len = strlen(reqs[k]);
        for (size_t cut = 0; cut <= len; cut++) {
            struct chopin__conn *c = start();
            static char out[2 * 16384];
            feed_n(c, reqs[k], cut);
            strcpy(out, fake_output(c));
            chopin__engine_run_ready(&f.engine);
            feed_n(c, reqs[k] + cut, len - cut);
            chopin__engine_run_ready(&f.engine);
            strcat(out, fake_output(c));
            int ok = got_len == 26 && !memcmp(got, "abcdefghijklmnopqrstuvwxyz", 26) && ends == 1 &&
                     strstr(out, "got 26") && strstr(out, "\r\n\r\nhi") &&
                     strstr(out, "got 26") < strstr(out, "\r\n\r\nhi");
            if (!ok) {
                fprintf(stderr, "  %s cut at %zu: got \"%.*s\", ends %d, output:\n%s\n",
                        k ? "chunked" : "length", cut, (int)got_len, got, ends, out);
                test_case_failed = 1;
            }
            fake_stop(&f);
        }
    }
}

static void continue_only_when_taken(void) {
    struct chopin__conn *c = start();
    fake_feed(c, "POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    CHECK_STR(fake_output(c), "HTTP/1.1 100 Continue\r\n\r\n");
    fake_feed(c, "xyz");
    chopin__engine_run_ready(&f.engine);
    CHECK(strstr(fake_output(c), "got 3") != NULL);
    fake_stop(&f);

    c = start();
    fake_feed(c, "POST /up HTTP/1.1\r\nHost: a\r\nX-Refuse: 1\r\nExpect: 100-continue\r\n"
                 "Content-Length: 3\r\n\r\n");
    const char *out = fake_output(c);
    CHECK(strncmp(out, "HTTP/1.1 401", 12) == 0);
    CHECK(strstr(out, "100 Continue") == NULL);
    CHECK(strstr(out, "Connection: close") != NULL);
    fake_stop(&f);

    /* Past the route's 1000 bytes: 413 before the handler, no 100. */
    c = start();
    fake_feed(c, "POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1001\r\n\r\n");
    out = fake_output(c);
    CHECK(strncmp(out, "HTTP/1.1 413", 12) == 0);
    CHECK_INT(got_len + (size_t)ends + (size_t)errors, 0);
    fake_stop(&f);
}

static void pause_and_resume(void) {
    struct chopin__conn *c = start();
    pause_next = 1;
    fake_feed(c, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    CHECK_INT(got_len, 3);
    CHECK(!chopin__conn_wants_read(c));
    fake_feed(c, "defg"); /* a read already under way when it paused */
    CHECK_INT(got_len, 3);
    CHECK_INT(chopin_body_resume(current), 0);
    CHECK_INT(got_len, 3); /* not inside the call */
    chopin__engine_run_ready(&f.engine);
    CHECK_INT(got_len, 7);
    CHECK(chopin__conn_wants_read(c));
    fake_feed(c, "hij");
    chopin__engine_run_ready(&f.engine);
    CHECK_MEM(got, got_len, "abcdefghij");
    CHECK(strstr(fake_output(c), "got 10") != NULL);
    CHECK_INT(chopin_body_pause(current), CHOPIN_ESTALE);
    fake_stop(&f);
}

static void early_answer_closes(void) {
    struct chopin__conn *c = start();
    answer_early = 1;
    fake_feed(c, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    chopin__engine_run_ready(&f.engine);
    const char *out = fake_output(c);
    CHECK(strncmp(out, "HTTP/1.1 422", 12) == 0);
    CHECK(strstr(out, "Connection: close") != NULL);
    CHECK_INT(ends + errors, 0);
    fake_stop(&f);
}

static void idle_body_times_out(void) {
    struct chopin__conn *c = start();
    fake_feed(c, "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab");
    chopin__engine_set_clock(&f.engine, FAKE_T0 + 4000, FAKE_WALL);
    chopin__engine_run_timers(&f.engine);
    fake_feed(c, "\r\n"); /* a byte moves the idle deadline */
    chopin__engine_set_clock(&f.engine, FAKE_T0 + 8000, FAKE_WALL);
    chopin__engine_run_timers(&f.engine);
    CHECK_INT(errors, 0);
    chopin__engine_set_clock(&f.engine, FAKE_T0 + 10000, FAKE_WALL);
    chopin__engine_run_timers(&f.engine);
    CHECK_INT(errors, 1);
    CHECK_INT(last_err, CHOPIN_ETIMEDOUT);
    CHECK(strncmp(fake_output(c), "HTTP/1.1 408", 12) == 0);
    fake_stop(&f);
}

int main(void) {
    RUN(every_split);
    RUN(continue_only_when_taken);
    RUN(pause_and_resume);
    RUN(early_answer_closes);
    RUN(idle_body_times_out);
    TEST_END();
}
