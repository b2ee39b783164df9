/* SPDX-License-Identifier: MIT */
/* Timer wheel: targeted cases, then a randomized comparison with a brute-force model. */
#include "timer/wheel.h"

#include <stdlib.h>
#include <time.h>

#include "test.h"

#define HOUR_MS (3600ull * 1000)

/* A deterministic generator (splitmix64) so every run exercises the same sequence. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t n) { return n ? rng_next() % n : 0; }

/* ---- simple recorder used by the targeted cases ---------------------------------------- */

struct recorder {
    struct chopin__wheel *w;
    uint64_t fired;
    uint64_t last_expire;
};

static void record_fire(struct chopin__timer *t, void *arg)
{
    struct recorder *r = arg;
    r->fired++;
    r->last_expire = t->expire;
}

static void test_empty_wheel(void)
{
    struct chopin__wheel w;
    struct recorder r = {&w, 0, 0};
    chopin__wheel_init(&w, 1000);
    CHECK(chopin__wheel_timeout(&w, 1000) == UINT64_MAX);
    CHECK_INT(chopin__wheel_run(&w, 5000, record_fire, &r), 0);
    CHECK(chopin__wheel_timeout(&w, 5000) == UINT64_MAX);
    CHECK(w.now == 5000);
}

static void test_fires_exactly_at_expiry(void)
{
    static const uint64_t delays[] = {0, 1, 2, 63, 64, 65, 127, 4095, 4096, 4097, 262143,
                                      262144, 999999, 16777216, 1073741823, 1073741824};
    for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
        struct chopin__wheel w;
        struct chopin__timer t;
        struct recorder r = {&w, 0, 0};
        uint64_t start = 12345678, expire = start + delays[i];
        chopin__wheel_init(&w, start);
        chopin__timer_init(&t);
        chopin__wheel_add(&w, &t, expire);
        CHECK(chopin__timer_armed(&t));
        if (expire > start) {
            CHECK_INT(chopin__wheel_run(&w, expire - 1, record_fire, &r), 0);
            CHECK(chopin__timer_armed(&t));
        }
        CHECK_INT(chopin__wheel_run(&w, expire, record_fire, &r), 1);
        CHECK(!chopin__timer_armed(&t));
        CHECK_INT(w.count, 0);
    }
}

static void test_past_expiry_is_clamped(void)
{
    struct chopin__wheel w;
    struct chopin__timer t;
    struct recorder r = {&w, 0, 0};
    chopin__wheel_init(&w, 500);
    chopin__timer_init(&t);
    chopin__wheel_add(&w, &t, 100);
    CHECK_INT(t.expire, 500);
    CHECK_INT(chopin__wheel_timeout(&w, 500), 0);
    CHECK_INT(chopin__wheel_run(&w, 500, record_fire, &r), 1);
}

static void test_delete_and_rearm(void)
{
    struct chopin__wheel w;
    struct chopin__timer t;
    struct recorder r = {&w, 0, 0};
    chopin__wheel_init(&w, 0);
    chopin__timer_init(&t);
    chopin__wheel_del(&w, &t); /* not armed: no-op */
    chopin__wheel_add(&w, &t, 100);
    chopin__wheel_add(&w, &t, 5000); /* re-arm moves it */
    CHECK_INT(w.count, 1);
    CHECK_INT(chopin__wheel_run(&w, 4999, record_fire, &r), 0);
    chopin__wheel_del(&w, &t);
    chopin__wheel_del(&w, &t);
    CHECK_INT(w.count, 0);
    CHECK_INT(chopin__wheel_run(&w, 10000, record_fire, &r), 0);
    CHECK(chopin__wheel_timeout(&w, 10000) == UINT64_MAX);
}

static void test_clock_going_back_is_ignored(void)
{
    struct chopin__wheel w;
    struct chopin__timer t;
    struct recorder r = {&w, 0, 0};
    chopin__wheel_init(&w, 1000);
    chopin__timer_init(&t);
    chopin__wheel_add(&w, &t, 1010);
    CHECK_INT(chopin__wheel_run(&w, 10, record_fire, &r), 0);
    CHECK_INT(w.now, 1000);
    CHECK_INT(chopin__wheel_run(&w, 1010, record_fire, &r), 1);
}

/* Far timers (beyond the 2^36 ms the levels cover) must still wait for their time. */
static void test_far_future_timer(void)
{
    struct chopin__wheel w;
    struct chopin__timer t;
    struct recorder r = {&w, 0, 0};
    uint64_t start = 77, expire = start + (1ull << 40) + 12345;
    chopin__wheel_init(&w, start);
    chopin__timer_init(&t);
    chopin__wheel_add(&w, &t, expire);
    uint64_t now = start;
    while (now < expire - 1) {
        uint64_t d = chopin__wheel_timeout(&w, now);
        CHECK(d > 0 && d <= expire - now);
        now += d < expire - 1 - now ? d : expire - 1 - now;
        CHECK_INT(chopin__wheel_run(&w, now, record_fire, &r), 0);
    }
    CHECK_INT(chopin__wheel_run(&w, expire, record_fire, &r), 1);
    CHECK_INT(r.last_expire, expire);

    chopin__wheel_add(&w, &t, UINT64_MAX);
    CHECK(chopin__wheel_timeout(&w, w.now) > 0);
    CHECK_INT(chopin__wheel_run(&w, UINT64_MAX - 1, record_fire, &r), 0);
    CHECK_INT(chopin__wheel_run(&w, UINT64_MAX, record_fire, &r), 1);
}

/* A jump of years must not walk every millisecond: 200 such jumps would take hours. */
static void test_large_jumps_are_cheap(void)
{
    enum { N = 1000 };
    static struct chopin__timer timers[N];
    struct chopin__wheel w;
    struct recorder r = {&w, 0, 0};
    struct timespec a, b;
    chopin__wheel_init(&w, 0);
    for (int i = 0; i < N; i++) {
        chopin__timer_init(&timers[i]);
        chopin__wheel_add(&w, &timers[i], (uint64_t)(i + 1) * 1000 * HOUR_MS);
    }
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t now = 0;
    for (int i = 0; i < 200; i++) {
        now += 5 * 1000 * HOUR_MS + 17;
        chopin__wheel_run(&w, now, record_fire, &r);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    CHECK_INT(r.fired, N);
    CHECK(ms < 500);
}

/* Drives the wheel like an event loop would: sleep for timeout(), then run. Since the
 * timeout is a lower bound and timers fire on the first run at or past their expiry,
 * every timer must fire with now == expire exactly, after a few wake-ups at most. */
struct loop_check {
    uint64_t now;
    uint64_t fired, late;
};

static void loop_fire(struct chopin__timer *t, void *arg)
{
    struct loop_check *c = arg;
    c->fired++;
    if (t->expire != c->now)
        c->late++;
}

static void test_sleeping_loop_fires_on_time(void)
{
    enum { N = 3000 };
    static struct chopin__timer timers[N];
    struct chopin__wheel w;
    struct loop_check c = {1u << 20, 0, 0};
    uint64_t wakeups = 0;
    rng_state = 42;
    chopin__wheel_init(&w, c.now);
    for (int i = 0; i < N; i++) {
        chopin__timer_init(&timers[i]);
        uint64_t span = (uint64_t)1 << rng_below(40);
        chopin__wheel_add(&w, &timers[i], c.now + rng_below(span));
    }
    for (;;) {
        uint64_t d = chopin__wheel_timeout(&w, c.now);
        if (d == UINT64_MAX)
            break;
        c.now += d;
        chopin__wheel_run(&w, c.now, loop_fire, &c);
        wakeups++;
    }
    CHECK_INT(c.fired, N);
    CHECK_INT(c.late, 0);
    CHECK(wakeups <= (uint64_t)N * (CHOPIN__WHEEL_LEVELS + 1));
}

/* ---- callbacks that change the wheel ---------------------------------------------------- */

struct periodic {
    struct chopin__timer t; /* first member: the callback casts back */
    struct chopin__wheel *w;
    uint64_t period, fired, last;
};

static void periodic_fire(struct chopin__timer *t, void *arg)
{
    struct periodic *p = (struct periodic *)t;
    (void)arg;
    p->fired++;
    p->last = p->w->now;
    chopin__wheel_add(p->w, t, p->w->now + p->period);
}

static void test_rearm_inside_callback(void)
{
    struct chopin__wheel w;
    struct periodic p = {.w = &w, .period = 100};
    chopin__wheel_init(&w, 0);
    chopin__timer_init(&p.t);
    chopin__wheel_add(&w, &p.t, 100);
    for (uint64_t now = 1; now <= 1000; now++)
        chopin__wheel_run(&w, now, periodic_fire, NULL);
    CHECK_INT(p.fired, 10);
    CHECK_INT(p.last, 1000);
    CHECK(chopin__timer_armed(&p.t));
    CHECK_INT(p.t.expire, 1100);
}

/* Re-arming for "now" from the callback must not loop inside one run. */
static void test_rearm_for_now_waits_for_next_run(void)
{
    struct chopin__wheel w;
    struct periodic p = {.w = &w, .period = 0};
    chopin__wheel_init(&w, 0);
    chopin__timer_init(&p.t);
    chopin__wheel_add(&w, &p.t, 10);
    CHECK_INT(chopin__wheel_run(&w, 10, periodic_fire, NULL), 1);
    CHECK_INT(chopin__wheel_timeout(&w, 10), 0);
    CHECK_INT(chopin__wheel_run(&w, 10, periodic_fire, NULL), 1);
    CHECK_INT(p.fired, 2);
}

struct killer {
    struct chopin__wheel *w;
    struct chopin__timer *all;
    int n;
    int fired[8];
};

/* The first timer to fire deletes every other one, all due in the same run. */
static void kill_others(struct chopin__timer *t, void *arg)
{
    struct killer *k = arg;
    k->fired[t - k->all]++;
    for (int i = 0; i < k->n; i++)
        if (&k->all[i] != t)
            chopin__wheel_del(k->w, &k->all[i]);
}

static void test_delete_others_inside_callback(void)
{
    struct chopin__wheel w;
    struct chopin__timer timers[8];
    struct killer k = {&w, timers, 8, {0}};
    chopin__wheel_init(&w, 0);
    for (int i = 0; i < 8; i++) {
        chopin__timer_init(&timers[i]);
        /* Spread over several levels; all due by the run at 70000. */
        chopin__wheel_add(&w, &timers[i], (uint64_t)(i * 9000 + 1));
    }
    CHECK_INT(chopin__wheel_run(&w, 70000, kill_others, &k), 1);
    int total = 0;
    for (int i = 0; i < 8; i++)
        total += k.fired[i];
    CHECK_INT(total, 1);
    CHECK_INT(w.count, 0);
    CHECK(chopin__wheel_timeout(&w, 70000) == UINT64_MAX);
}

/* ---- randomized comparison with a brute-force model ------------------------------------ */

enum { MODEL_TIMERS = 4000 };

struct model_timer {
    struct chopin__timer t; /* first member */
    int armed;
    uint64_t expire;
    uint64_t armed_in_run; /* run number during whose callbacks it was last armed */
};

struct model {
    struct chopin__wheel w;
    struct model_timer timers[MODEL_TIMERS];
    uint64_t run_number;
    uint64_t fired, early, unarmed_fired, rearms_in_cb, dels_in_cb;
    int in_callback;
};

static uint64_t random_delay(void)
{
    switch (rng_below(10)) {
    case 0: return 0;
    case 1: return rng_below(64);
    case 2: case 3: case 4: return rng_below(5000);
    case 5: case 6: return rng_below(120000);
    case 7: return rng_below(10 * HOUR_MS);
    case 8: return rng_below(1ull << 37); /* beyond the top level */
    default: return rng_below(300000);
    }
}

static void model_arm(struct model *m, struct model_timer *mt, uint64_t expire)
{
    chopin__wheel_add(&m->w, &mt->t, expire);
    mt->armed = 1;
    mt->expire = expire < m->w.now ? m->w.now : expire;
    mt->armed_in_run = m->in_callback ? m->run_number : 0;
}

static void model_disarm(struct model *m, struct model_timer *mt)
{
    chopin__wheel_del(&m->w, &mt->t);
    mt->armed = 0;
}

static void model_fire(struct chopin__timer *t, void *arg)
{
    struct model *m = arg;
    struct model_timer *mt = (struct model_timer *)t;
    m->fired++;
    if (!mt->armed || mt->armed_in_run == m->run_number)
        m->unarmed_fired++;
    if (mt->expire > m->w.now || t->expire != mt->expire)
        m->early++;
    mt->armed = 0;
    /* Mess with the wheel from inside the callback. */
    uint64_t roll = rng_below(8);
    if (roll == 0) {
        model_arm(m, mt, m->w.now + random_delay());
        m->rearms_in_cb++;
    } else if (roll == 1) {
        model_disarm(m, &m->timers[rng_below(MODEL_TIMERS)]);
        m->dels_in_cb++;
    } else if (roll == 2) {
        model_arm(m, &m->timers[rng_below(MODEL_TIMERS)], m->w.now + random_delay());
        m->rearms_in_cb++;
    }
}

static void model_random_ops(struct model *m, int ops)
{
    for (int i = 0; i < ops; i++) {
        struct model_timer *mt = &m->timers[rng_below(MODEL_TIMERS)];
        if (rng_below(4) == 0) {
            model_disarm(m, mt);
        } else {
            uint64_t delay = random_delay();
            /* Sometimes ask for a time already past; the wheel clamps it to now. */
            uint64_t base = rng_below(16) == 0 && m->w.now > 1000 ? m->w.now - 1000 : m->w.now;
            model_arm(m, mt, base + delay);
        }
    }
}

static uint64_t random_step(void)
{
    switch (rng_below(12)) {
    case 0: return 0;
    case 1: case 2: case 3: case 4: return rng_below(10);
    case 5: case 6: return rng_below(1000);
    case 7: return rng_below(70000);
    case 8: return HOUR_MS + rng_below(5 * HOUR_MS); /* hours at once */
    case 9: return rng_below(1ull << 33);
    case 10: return rng_below(16) == 0 ? (1ull << 36) + rng_below(1ull << 37) : 1;
    default: return rng_below(200);
    }
}

/* Checks the wheel's bookkeeping against the model. With `after_run`, also counts the
 * timers that were due (expire <= now) yet did not fire; returns the number of problems. */
static uint64_t model_check_state(struct model *m, int after_run, uint64_t *min_expire_out)
{
    uint64_t armed = 0, missed = 0, min_expire = UINT64_MAX;
    for (int i = 0; i < MODEL_TIMERS; i++) {
        struct model_timer *mt = &m->timers[i];
        if (!mt->armed)
            continue;
        armed++;
        if (mt->expire < min_expire)
            min_expire = mt->expire;
        if (after_run && mt->expire <= m->w.now && mt->armed_in_run != m->run_number)
            missed++;
        if (!chopin__timer_armed(&mt->t) || mt->t.expire != mt->expire)
            missed++;
    }
    CHECK_INT(m->w.count, armed);
    *min_expire_out = min_expire;
    return missed;
}

static void check_timeout_bound(struct model *m, uint64_t min_expire)
{
    uint64_t now = m->w.now, d = chopin__wheel_timeout(&m->w, now);
    if (min_expire == UINT64_MAX) {
        CHECK(d == UINT64_MAX);
        return;
    }
    CHECK(d != UINT64_MAX);
    CHECK(now + d <= min_expire);           /* never later than the true expiry */
    CHECK((d == 0) == (min_expire <= now)); /* never 0 (a busy loop) when nothing is due */
}

static void test_random_against_model(void)
{
    static struct model m;
    uint64_t missed = 0;
    memset(&m, 0, sizeof m);
    rng_state = 0x5eed;
    chopin__wheel_init(&m.w, rng_next() >> 30);
    for (int i = 0; i < MODEL_TIMERS; i++)
        chopin__timer_init(&m.timers[i].t);
    model_random_ops(&m, MODEL_TIMERS);

    for (int step = 0; step < 20000; step++) {
        uint64_t min_expire;
        model_random_ops(&m, (int)rng_below(20));
        missed += model_check_state(&m, 0, &min_expire);
        check_timeout_bound(&m, min_expire);
        /* Jump straight to the earliest expiry now and then, as a sleeping loop would. */
        uint64_t next = m.w.now + random_step();
        if (rng_below(4) == 0 && min_expire != UINT64_MAX)
            next = m.w.now + chopin__wheel_timeout(&m.w, m.w.now);
        m.run_number++;
        m.in_callback = 1;
        chopin__wheel_run(&m.w, next, model_fire, &m);
        m.in_callback = 0;
        missed += model_check_state(&m, 1, &min_expire);
    }
    CHECK_INT(missed, 0);
    CHECK_INT(m.early, 0);
    CHECK_INT(m.unarmed_fired, 0);
    CHECK(m.fired > 10000);
    CHECK(m.rearms_in_cb > 1000 && m.dels_in_cb > 500);
}

int main(void)
{
    RUN(test_empty_wheel);
    RUN(test_fires_exactly_at_expiry);
    RUN(test_past_expiry_is_clamped);
    RUN(test_delete_and_rearm);
    RUN(test_clock_going_back_is_ignored);
    RUN(test_far_future_timer);
    RUN(test_large_jumps_are_cheap);
    RUN(test_sleeping_loop_fires_on_time);
    RUN(test_rearm_inside_callback);
    RUN(test_rearm_for_now_waits_for_next_run);
    RUN(test_delete_others_inside_callback);
    RUN(test_random_against_model);
    TEST_END();
}
