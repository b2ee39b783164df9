/* SPDX-License-Identifier: MIT */
/*
 * Hierarchical timer wheel with intrusive entries and `now` passed in, so tests are
 * deterministic. Time unit: milliseconds (any monotonic origin). Add, delete and re-arm
 * are O(1); firing costs O(1) amortized per timer plus O(levels) per slot crossed.
 */
#ifndef CHOPIN_TIMER_WHEEL_H
#define CHOPIN_TIMER_WHEEL_H

#include <stdint.h>

#define CHOPIN__WHEEL_BITS 6
#define CHOPIN__WHEEL_SLOTS (1u << CHOPIN__WHEEL_BITS)
#define CHOPIN__WHEEL_LEVELS 6 /* 36 bits of ms: about 2 years */

struct chopin__timer {
    struct chopin__timer *next, *prev; /* prev == NULL: not armed */
    uint64_t expire;
};

struct chopin__wheel {
    uint64_t now;    /* last time chopin__wheel_run was given */
    uint64_t count;  /* armed timers */
    /* Bit s of level l: slot s may hold timers (set on insert, cleared when time passes
     * the slot), so the earliest deadline takes a few ctz instead of up to 64 probes. */
    uint64_t occupied[CHOPIN__WHEEL_LEVELS];
    struct chopin__timer slots[CHOPIN__WHEEL_LEVELS][CHOPIN__WHEEL_SLOTS]; /* list heads */
};

/** The slot heads point at themselves: a wheel must not be moved or copied after init. */
void chopin__wheel_init(struct chopin__wheel *w, uint64_t now);
/** Zeroes an entry so it can be armed and disarmed; an entry must be initialized once. */
void chopin__timer_init(struct chopin__timer *t);
static inline int chopin__timer_armed(const struct chopin__timer *t) { return t->prev != 0; }
/** Arms (or re-arms) `t` to fire at `expire` (clamped to now when in the past). */
void chopin__wheel_add(struct chopin__wheel *w, struct chopin__timer *t, uint64_t expire);
/** Disarms `t` (no-op when not armed). */
void chopin__wheel_del(struct chopin__wheel *w, struct chopin__timer *t);
/**
 * Advances to `now` and calls fire(t, arg) for every timer with expire <= now, each
 * disarmed before its call (the callback may re-arm it, or arm/disarm others). Returns
 * the number fired.
 *
 * Timers due in the same run fire in no particular order. A timer armed from a callback
 * for a time <= now fires on the next run, not this one (so re-arming for "now" cannot
 * loop). A `now` earlier than the previous one is taken as the previous one. The cost is
 * bounded by LEVELS * SLOTS list splices plus the timers moved, however far `now` jumps.
 * Not reentrant: a callback must not call chopin__wheel_run.
 */
uint64_t chopin__wheel_run(struct chopin__wheel *w, uint64_t now,
                           void (*fire)(struct chopin__timer *t, void *arg), void *arg);
/** Milliseconds from `now` until the earliest timer could fire (a lower bound, never
 *  later than the real expiry), or UINT64_MAX when none is armed. With `now` equal to
 *  the last run's, it is 0 only when a timer is due (no busy loop). For a timer above level
 *  0 it may be early by up to that level's slot width; the run at that time moves the timer
 *  down a level, so a sleeping loop wakes about LEVELS times at most before it fires.
 *  Walks slot heads only, never the timer lists. */
uint64_t chopin__wheel_timeout(const struct chopin__wheel *w, uint64_t now);

#endif
