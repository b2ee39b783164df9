/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's user_data (src/backend/uring_udata.h): operation, slot and
 * generation survive the round trip, and a completion submitted for a connection that
 * has since been freed never resolves to the connection that took its slot.
 */
#include <stdint.h>

#include "backend/uring_udata.h"
#include "config.h"
#include "conn.h"
#include "engine.h"
#include "router/router.h"
#include "test.h"

struct fixture {
    chopin_router *router;
    struct chopin__config cfg;
    struct chopin__engine engine;
};

static void setup(struct fixture *f, uint32_t capacity) {
    f->router = chopin_router_new();
    chopin__router_freeze(f->router);
    chopin_options o = chopin_options_default();
    o.slab_capacity = capacity;
    chopin__config_resolve(&f->cfg, &o);
    chopin__engine_init(&f->engine, &f->cfg, f->router, 0, 1000);
}

static void teardown(struct fixture *f) {
    struct chopin__slab *s = &f->engine.slab;
    for (uint32_t i = 0; i < s->never_used; i++) {
        struct chopin__conn *c = chopin__slab_at(s, i);
        if (c->live)
            chopin__engine_conn_free(&f->engine, c);
    }
    chopin__engine_destroy(&f->engine);
    chopin_router_free(f->router);
}

static void test_round_trip(void) {
    static const struct {
        unsigned op;
        uint32_t slot, gen;
    } cases[] = {
        {CHOPIN__UOP_RECV, 0, 0},
        {CHOPIN__UOP_SEND, 1, 1},
        {CHOPIN__UOP_POLLOUT, CHOPIN__UDATA_MAX_SLOTS - 1, UINT32_MAX},
        {CHOPIN__UOP_ACCEPT, 12345, 0x80000000u},
        {CHOPIN__UOP_CLOSE, 9999999, 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t ud = chopin__udata_make(cases[i].op, cases[i].slot, cases[i].gen);
        CHECK_INT(chopin__udata_op(ud), cases[i].op);
        CHECK_INT(chopin__udata_slot(ud), cases[i].slot);
        CHECK_INT(chopin__udata_gen(ud), cases[i].gen);
    }
    /* Fields never bleed into each other. */
    uint64_t ud = chopin__udata_make(CHOPIN__UOP_RECV, UINT32_MAX, UINT32_MAX);
    CHECK_INT(chopin__udata_op(ud), CHOPIN__UOP_RECV);
    CHECK_INT(chopin__udata_slot(ud), CHOPIN__UDATA_MAX_SLOTS - 1);
    /* liburing's internal timeout (LIBURING_UDATA_TIMEOUT, all ones) is none of ours. */
    CHECK_INT(chopin__udata_op(UINT64_MAX), 0xff);
}

/* The scenario of the Rust engine's bug U4: a receive is pending on a connection, the
 * connection closes, another takes the same slot, then the old receive completes. */
static void test_stale_completion_misses_reused_slot(void) {
    struct fixture f;
    setup(&f, 2);
    struct chopin__engine *e = &f.engine;
    struct chopin__conn *a = chopin__engine_conn_new(e, -1);
    CHECK(a != NULL);
    uint64_t recv_a = chopin__udata_for(e, CHOPIN__UOP_RECV, a);
    uint64_t send_a = chopin__udata_for(e, CHOPIN__UOP_SEND, a);
    CHECK(chopin__udata_conn(e, recv_a) == a);
    CHECK(chopin__udata_conn(e, send_a) == a);

    uint32_t slot = chopin__slab_index(&e->slab, a);
    chopin__engine_conn_free(e, a);
    /* Freed and not yet reused: the old completions belong to nobody. */
    CHECK(chopin__udata_conn(e, recv_a) == NULL);

    struct chopin__conn *b = chopin__engine_conn_new(e, -1);
    CHECK(b != NULL);
    CHECK_INT(chopin__slab_index(&e->slab, b), slot); /* LIFO: the same slot, hot in cache */
    CHECK(b->gen != chopin__udata_gen(recv_a));
    CHECK(chopin__udata_conn(e, recv_a) == NULL);
    CHECK(chopin__udata_conn(e, send_a) == NULL);
    uint64_t recv_b = chopin__udata_for(e, CHOPIN__UOP_RECV, b);
    CHECK(chopin__udata_conn(e, recv_b) == b);

    /* Many reuses later, no older generation ever matches again. */
    uint64_t old[64];
    for (int i = 0; i < 64; i++) {
        old[i] = chopin__udata_for(e, CHOPIN__UOP_RECV, b);
        chopin__engine_conn_free(e, b);
        b = chopin__engine_conn_new(e, -1);
        CHECK_INT(chopin__slab_index(&e->slab, b), slot);
    }
    int matched = 0;
    for (int i = 0; i < 64; i++)
        matched += chopin__udata_conn(e, old[i]) != NULL;
    CHECK_INT(matched, 0);
    CHECK(chopin__udata_conn(e, chopin__udata_for(e, CHOPIN__UOP_SEND, b)) == b);
    teardown(&f);
}

/* Two live connections: each completion resolves to its own, never the neighbour. */
static void test_neighbours_and_bounds(void) {
    struct fixture f;
    setup(&f, 2);
    struct chopin__engine *e = &f.engine;
    struct chopin__conn *a = chopin__engine_conn_new(e, -1);
    struct chopin__conn *b = chopin__engine_conn_new(e, -1);
    uint64_t ua = chopin__udata_for(e, CHOPIN__UOP_RECV, a);
    uint64_t ub = chopin__udata_for(e, CHOPIN__UOP_RECV, b);
    CHECK(chopin__udata_conn(e, ua) == a);
    CHECK(chopin__udata_conn(e, ub) == b);
    /* A slot past the slab's capacity (corrupt or foreign user_data) is rejected. */
    CHECK(chopin__udata_conn(e, chopin__udata_make(CHOPIN__UOP_RECV, 2, a->gen)) == NULL);
    /* The right slot with another generation is rejected. */
    uint32_t sa = chopin__slab_index(&e->slab, a);
    CHECK(chopin__udata_conn(e, chopin__udata_make(CHOPIN__UOP_RECV, sa, a->gen + 1)) == NULL);
    CHECK(chopin__udata_conn(e, chopin__udata_make(CHOPIN__UOP_RECV, sa, a->gen - 1)) == NULL);
    teardown(&f);
}

int main(void) {
    RUN(test_round_trip);
    RUN(test_stale_completion_misses_reused_slot);
    RUN(test_neighbours_and_bounds);
    TEST_END();
}
