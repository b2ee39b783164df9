/* SPDX-License-Identifier: MIT */
/*
 * Prometheus metrics (text exposition format 0.0.4): the sums of every worker's counters
 * (engine.h counters and metrics), read with relaxed atomic loads while the workers
 * serve: each worker is the only writer of its own, so no lock is taken anywhere, and a
 * scrape sees each counter as it was a moment ago (a series may lag another by the
 * requests answered meanwhile). Here beside the counters rather than in api/: registering
 * the route also tells the router that its workers must time requests.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "http/message.h"
#include "ops/observe.h"
#include "router/router.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The text grows in a heap buffer handed to the response (chopin_res_owned). */
struct text {
    char *buf;
    size_t len, cap;
    int failed;
};

__attribute__((format(printf, 2, 3))) static void out(struct text *t, const char *fmt, ...) {
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->failed = 1;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
}

static uint64_t load(const uint64_t *v) { return __atomic_load_n(v, __ATOMIC_RELAXED); }

/* Every worker's engine; the server outlives its workers' engines' memory. */
struct sums {
    struct chopin__counters c;
    struct chopin__metrics m;
};

static void add_hist(struct chopin__hist *to, const struct chopin__hist *from) {
    for (int i = 0; i <= CHOPIN__HIST_BOUNDS; i++)
        to->bucket[i] += load(&from->bucket[i]);
    to->sum_ns += load(&from->sum_ns);
}

/* `self`: the worker serving the scrape, whose idle count is read as it is now (its
 * connection has just left the idle list); the others' as their last loop turn left it
 * (chopin__observe_turn), the same when they are quiet. */
static void add_worker(struct sums *s, const struct chopin__engine *e, int self) {
    const struct chopin__counters *c = &e->counters;
    s->c.requests += load(&c->requests);
    s->c.accepted += load(&c->accepted);
    s->c.open += load(&c->open);
    s->c.bytes_sent += load(&c->bytes_sent);
    s->c.bytes_in += load(&c->bytes_in);
    s->c.slab_full += load(&c->slab_full);
    s->c.accept_errors += load(&c->accept_errors);
    s->c.idle += self ? e->idle_count : load(&c->idle);
    s->c.evicted += load(&c->evicted);
    for (int k = 0; k < CHOPIN__TIMEOUT_KINDS; k++)
        s->c.timeouts[k] += load(&c->timeouts[k]);
    for (int k = 0; k < CHOPIN__REFUSED_KINDS; k++)
        s->c.refused[k] += load(&c->refused[k]);
    const struct chopin__metrics *m = &e->metrics;
    for (int i = 0; i <= CHOPIN_METHOD_COUNT; i++)
        for (int k = 0; k < CHOPIN__CLASSES; k++)
            s->m.answers[i][k] += load(&m->answers[i][k]);
    add_hist(&s->m.handler, &m->handler);
    add_hist(&s->m.ttlb, &m->ttlb);
}

static void family(struct text *t, const char *name, const char *type, const char *help) {
    out(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(struct text *t, const char *name, const char *type, const char *help,
                uint64_t v) {
    family(t, name, type, help);
    out(t, "%s %llu\n", name, (unsigned long long)v);
}

static const char *method_label(int i) {
    static const char *const names[] = {
#define CHOPIN_METRICS_METHOD(name, str) str,
        CHOPIN_METHOD_MAP(CHOPIN_METRICS_METHOD)
#undef CHOPIN_METRICS_METHOD
    };
    if (i < (int)(sizeof names / sizeof names[0]))
        return names[i];
    return i == CHOPIN_METHOD_OTHER ? "other" : "none";
}

static void answers(struct text *t, const struct chopin__metrics *m) {
    family(t, "chopin_http_requests_total", "counter",
           "Answers sent, by request method (none: refused before it was a request) and "
           "status class.");
    for (int i = 0; i <= CHOPIN_METHOD_COUNT; i++)
        for (int k = 0; k < CHOPIN__CLASSES; k++)
            if (m->answers[i][k] || (i == CHOPIN_METHOD_GET && k == 1))
                out(t, "chopin_http_requests_total{method=\"%s\",code=\"%dxx\"} %llu\n",
                    method_label(i), k + 1, (unsigned long long)m->answers[i][k]);
}

static void labelled(struct text *t, const char *name, const char *help, const char *label,
                     const char *const *kinds, const uint64_t *v, int n) {
    family(t, name, "counter", help);
    for (int k = 0; k < n; k++)
        out(t, "%s{%s=\"%s\"} %llu\n", name, label, kinds[k], (unsigned long long)v[k]);
}

static void histogram(struct text *t, const char *name, const char *help,
                      const struct chopin__hist *h) {
    family(t, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < CHOPIN__HIST_BOUNDS; i++) {
        cum += h->bucket[i];
        out(t, "%s_bucket{le=\"%g\"} %llu\n", name, (double)chopin__hist_bounds_ns[i] / 1e9,
            (unsigned long long)cum);
    }
    cum += h->bucket[CHOPIN__HIST_BOUNDS];
    out(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    out(t, "%s_sum %.9f\n", name, (double)h->sum_ns / 1e9);
    out(t, "%s_count %llu\n", name, (unsigned long long)cum);
}

static void render(struct text *t, const struct sums *s) {
    static const char *const timeouts[CHOPIN__TIMEOUT_KINDS] = {"header", "body", "write",
                                                                "keepalive", "handler"};
    static const char *const refused[CHOPIN__REFUSED_KINDS] = {
        "bad_request", "body_too_large", "uri_too_long", "headers_too_large",
        "not_implemented", "version", "other"};
    answers(t, &s->m);
    one(t, "chopin_bytes_received_total", "counter", "Bytes read from clients.", s->c.bytes_in);
    one(t, "chopin_bytes_sent_total", "counter", "Bytes the kernel took for clients.",
        s->c.bytes_sent);
    one(t, "chopin_connections_accepted_total", "counter", "Connections accepted.",
        s->c.accepted);
    one(t, "chopin_connections_open", "gauge", "Connections open now.", s->c.open);
    one(t, "chopin_connections_idle", "gauge", "Keep-alive connections waiting for a request.",
        s->c.idle);
    one(t, "chopin_connections_evicted_total", "counter",
        "Connections closed to make room for a newcomer (a full slab, out of descriptors).",
        s->c.evicted);
    one(t, "chopin_slab_full_total", "counter",
        "Times a worker found no slot for a new connection.", s->c.slab_full);
    one(t, "chopin_accept_errors_total", "counter", "accept() failures.", s->c.accept_errors);
    labelled(t, "chopin_parse_errors_total", "Requests refused before routing, by kind.", "kind",
             refused, s->c.refused, CHOPIN__REFUSED_KINDS);
    labelled(t, "chopin_timeouts_total", "Deadlines that passed, by kind.", "kind", timeouts,
             s->c.timeouts, CHOPIN__TIMEOUT_KINDS);
    histogram(t, "chopin_handler_seconds",
              "From a request's dispatch to its answer being queued (a deferral included).",
              &s->m.handler);
    histogram(t, "chopin_time_to_last_byte_seconds",
              "From a request's dispatch to the last byte of its answer taken by the kernel.",
              &s->m.ttlb);
}

static void free_text(void *p, void *arg) {
    (void)arg;
    free(p);
}

static void serve_metrics(chopin_req *req, chopin_res *res, void *data) {
    (void)data;
    chopin_server *srv = chopin_req_server(req);
    struct sums *s = calloc(1, sizeof *s);
    struct text t = {.buf = malloc(16384), .cap = 16384};
    if (!s || !t.buf || !srv) {
        free(s);
        free(t.buf);
        chopin_res_error(res, srv ? 503 : 500, NULL);
        return;
    }
    int n = chopin_server_workers(srv);
    for (int i = 0; i < n; i++) {
        const struct chopin__engine *e = (const struct chopin__engine *)chopin_server_worker(srv, i);
        add_worker(s, e, e == req->engine);
    }
    render(&t, s);
    free(s);
    if (t.failed || chopin_res_owned(res, 200, CONTENT_TYPE, t.buf, t.len, free_text, NULL) < 0) {
        free(t.buf);
        chopin_res_error(res, 503, NULL);
    }
}

int chopin_metrics_route(chopin_router *r, const char *path) {
    int rc = chopin_router_get(r, path, serve_metrics, NULL);
    if (rc == 0)
        chopin__router_want_metrics(r);
    return rc;
}
