/* SPDX-License-Identifier: MIT */
/*
 * A fake backend for the unit tests that drive connections on a bare engine: no sockets,
 * a clock the test sets, a socket that takes every byte at once, and a count of the
 * engine's requests for attention (notify). Include after test.h.
 */
#ifndef CHOPIN_TEST_FAKE_H
#define CHOPIN_TEST_FAKE_H

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "outq.h"
#include "router/router.h"

#define FAKE_T0 1000000     /* monotonic ms at start */
#define FAKE_WALL 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */

struct fake {
    chopin_router *router;
    struct chopin__config cfg;
    struct chopin__engine engine;
    int notified;
};

static void fake_count_notify(struct chopin__conn *c, void *ctx) {
    (void)c;
    ((struct fake *)ctx)->notified++;
}

/* An engine for `router` (frozen here) with options `o`, at FAKE_T0. */
static inline void fake_start(struct fake *f, chopin_router *router, const chopin_options *o) {
    f->router = router;
    chopin__router_freeze(router);
    chopin__config_resolve(&f->cfg, o);
    chopin__engine_init(&f->engine, &f->cfg, router, 0, FAKE_T0);
    chopin__stack_choose(&f->engine.stack, &f->cfg.opt, NULL);
    chopin__engine_set_clock(&f->engine, FAKE_T0, FAKE_WALL);
    f->notified = 0;
    f->engine.notify = fake_count_notify;
    f->engine.notify_ctx = f;
}

/* Closes what is still open, checks that every pooled buffer came back, frees it all. */
static inline void fake_stop(struct fake *f) {
    struct chopin__slab *s = &f->engine.slab;
    for (uint32_t i = 0; i < s->never_used; i++) {
        struct chopin__conn *c = chopin__slab_at(s, i);
        if (c->live)
            chopin__engine_conn_free(&f->engine, c);
    }
    CHECK_INT(f->engine.pool.outstanding, 0);
    chopin__engine_destroy(&f->engine);
    chopin_router_free(f->router);
}

/* Everything the connection has to send now, as a string (the fake socket takes it all). */
static inline const char *fake_output(struct chopin__conn *c) {
    static char out[16384];
    size_t total = 0;
    struct chopin__plan p;
    while (chopin__conn_out_plan(c, &p) > 0) {
        size_t n = 0;
        for (int i = 0; i < p.iovcnt; i++) {
            if (total + n + p.iov[i].iov_len < sizeof out)
                memcpy(out + total + n, p.iov[i].iov_base, p.iov[i].iov_len);
            n += p.iov[i].iov_len;
        }
        total += n;
        chopin__conn_on_sent(c, n);
    }
    out[total < sizeof out ? total : sizeof out - 1] = '\0';
    return out;
}

/* Feeds `text` from a buffer that is then scribbled over, as the worker's scratch is. */
static inline void fake_feed(struct chopin__conn *c, const char *text) {
    size_t n = strlen(text);
    char *buf = malloc(n);
    memcpy(buf, text, n);
    chopin__conn_on_data(c, buf, n);
    memset(buf, '#', n);
    free(buf);
}

#endif
