/* SPDX-License-Identifier: MIT */
/*
 * Hierarchical timer wheel: CHOPIN__WHEEL_LEVELS levels of CHOPIN__WHEEL_SLOTS slots, one
 * millisecond per level-0 slot. Time is viewed as base-64 digits: digit L of a time is
 * (time >> (6 * L)) & 63.
 *
 * Placement invariant, relative to w->now (the time of the last run):
 *   a timer sits at the level L of the most significant digit where its expiry differs from
 *   w->now (level 0 when they are equal), in the slot given by its own digit L. So its
 *   expiry agrees with w->now on every digit above L, and its digit L is greater than
 *   w->now's (or equal, at level 0, for a timer due exactly now).
 * A "far" timer, whose expiry differs from w->now above the top level (more than ~2 years
 * ahead), is parked at the top level in the slot of w->now's own top digit, where no
 * regular timer can be. It is looked at again only when w->now crosses a multiple of
 * 2^36 ms, which is necessarily before it is due.
 *
 * Advancing from n0 to n1, let H be the most significant digit where they differ. Every
 * timer at a level below H agrees with n0 above its level, so it is earlier than n1: due.
 * At level H, the slots after n0's digit up to n1's digit hold timers that are due or that
 * now belong at a lower level. Levels above H are untouched. So a run empties at most
 * LEVELS * SLOTS lists whatever the jump, and each timer it takes out is either fired or
 * re-placed one level lower (or more). Nothing is fired without checking expire <= now,
 * so a timer can never fire early even if the reasoning above had a hole.
 *
 * Lists are circular with the slot heads as sentinels, so unlinking an entry needs no
 * knowledge of where it sits; that is what lets a callback delete any timer, including
 * ones already collected as due in the same run.
 */
#include "timer/wheel.h"

#include <stddef.h>

#define DIGIT_MASK (CHOPIN__WHEEL_SLOTS - 1)
#define FAR_SHIFT (CHOPIN__WHEEL_BITS * CHOPIN__WHEEL_LEVELS)

static void list_init(struct chopin__timer *head) { head->next = head->prev = head; }

static int list_empty(const struct chopin__timer *head) { return head->next == head; }

static void list_push(struct chopin__timer *head, struct chopin__timer *t)
{
    t->prev = head->prev;
    t->next = head;
    head->prev->next = t;
    head->prev = t;
}

static void list_unlink(struct chopin__timer *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

/* Moves every entry of `from` to the end of `to` in O(1); `from` ends up empty. */
static void list_splice(struct chopin__timer *to, struct chopin__timer *from)
{
    if (list_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    list_init(from);
}

static unsigned digit(uint64_t time, unsigned level)
{
    return (unsigned)(time >> (CHOPIN__WHEEL_BITS * level)) & DIGIT_MASK;
}

/* The most significant base-64 digit where a and b differ (0 when equal); may exceed the
 * top level. */
static unsigned highest_differing_digit(uint64_t a, uint64_t b)
{
    uint64_t diff = a ^ b;
    if (diff == 0)
        return 0;
    return (unsigned)(63 - __builtin_clzll(diff)) / CHOPIN__WHEEL_BITS;
}

_Static_assert(CHOPIN__WHEEL_SLOTS == 64, "one 64-bit occupancy word per level");

/* Files `t` in the slot its expiry belongs to, relative to w->now. */
static void slot_push(struct chopin__wheel *w, struct chopin__timer *t)
{
    unsigned level = highest_differing_digit(t->expire, w->now), slot;
    if (level >= CHOPIN__WHEEL_LEVELS) {
        level = CHOPIN__WHEEL_LEVELS - 1;
        slot = digit(w->now, level);
    } else {
        slot = digit(t->expire, level);
    }
    list_push(&w->slots[level][slot], t);
    w->occupied[level] |= 1ull << slot;
}

void chopin__wheel_init(struct chopin__wheel *w, uint64_t now)
{
    w->now = now;
    w->count = 0;
    for (unsigned level = 0; level < CHOPIN__WHEEL_LEVELS; level++)
        w->occupied[level] = 0;
    for (unsigned level = 0; level < CHOPIN__WHEEL_LEVELS; level++)
        for (unsigned slot = 0; slot < CHOPIN__WHEEL_SLOTS; slot++)
            list_init(&w->slots[level][slot]);
}

void chopin__timer_init(struct chopin__timer *t)
{
    t->next = t->prev = NULL;
    t->expire = 0;
}

void chopin__wheel_add(struct chopin__wheel *w, struct chopin__timer *t, uint64_t expire)
{
    chopin__wheel_del(w, t);
    t->expire = expire < w->now ? w->now : expire;
    slot_push(w, t);
    w->count++;
}

void chopin__wheel_del(struct chopin__wheel *w, struct chopin__timer *t)
{
    if (!chopin__timer_armed(t))
        return;
    list_unlink(t);
    w->count--;
}

/* Moves into `out` every timer whose slot may no longer satisfy the placement invariant
 * once w->now goes from n0 to n1 (see the top of the file). */
static void collect_passed(struct chopin__wheel *w, uint64_t n0, uint64_t n1,
                           struct chopin__timer *out)
{
    unsigned high = highest_differing_digit(n0, n1);
    for (unsigned level = 0; level < CHOPIN__WHEEL_LEVELS; level++) {
        unsigned from = 0, to = DIGIT_MASK;
        if (level == high) {
            /* At level 0 the slot of n0 itself holds timers due exactly at n0 that were
             * armed after the last run; above it, n0's own slot holds only far timers. */
            from = digit(n0, level) + (level != 0);
            to = digit(n1, level);
        } else if (level > high) {
            break;
        }
        for (unsigned slot = from; slot <= to; slot++) {
            list_splice(out, &w->slots[level][slot]);
            w->occupied[level] &= ~(1ull << slot);
        }
    }
}

/* Fires `due` entries one at a time from the head: a callback may unlink any entry of the
 * list (by deleting or re-arming it), so no pointer into the list is kept across a call. */
static uint64_t fire_all(struct chopin__wheel *w, struct chopin__timer *due,
                         void (*fire)(struct chopin__timer *t, void *arg), void *arg)
{
    uint64_t fired = 0;
    while (!list_empty(due)) {
        struct chopin__timer *t = due->next;
        list_unlink(t);
        w->count--;
        fired++;
        fire(t, arg);
    }
    return fired;
}

uint64_t chopin__wheel_run(struct chopin__wheel *w, uint64_t now,
                           void (*fire)(struct chopin__timer *t, void *arg), void *arg)
{
    struct chopin__timer passed, due;
    list_init(&passed);
    list_init(&due);

    /* A clock that steps back is treated as standing still: timers only move forward. */
    if (now < w->now)
        now = w->now;
    if (w->count != 0)
        collect_passed(w, w->now, now, &passed);
    w->now = now;

    while (!list_empty(&passed)) {
        struct chopin__timer *t = passed.next;
        list_unlink(t);
        if (t->expire <= now)
            list_push(&due, t);
        else
            slot_push(w, t);
    }
    /* Timers armed by callbacks land in the wheel, never in `due`: one due at or before
     * `now` fires on the next run, so a callback that re-arms for "now" cannot loop. */
    return fire_all(w, &due, fire, arg);
}

/* Earliest possible expiry of a timer in a non-empty slot at `level`: the slot's start. */
static uint64_t slot_start(uint64_t now, unsigned level, unsigned slot)
{
    unsigned shift = CHOPIN__WHEEL_BITS * (level + 1);
    uint64_t above = shift >= 64 ? 0 : (now >> shift) << shift;
    return above | ((uint64_t)slot << (CHOPIN__WHEEL_BITS * level));
}

/* Lower bound of the earliest expiry, from slot positions alone (no list is walked, so the
 * cost does not grow with the number of timers). A timer at a lower level always expires
 * before any timer at a higher one, so the first non-empty slot found bounds them all.
 * A slot marked occupied may have emptied since (its timers deleted): it is skipped here,
 * and unmarked when the wheel's time passes it. */
static uint64_t earliest_expiry_bound(const struct chopin__wheel *w)
{
    for (unsigned level = 0; level < CHOPIN__WHEEL_LEVELS; level++) {
        unsigned first = digit(w->now, level) + (level != 0);
        uint64_t later = first >= 64 ? 0 : w->occupied[level] & (~0ull << first);
        for (; later; later &= later - 1) {
            unsigned slot = (unsigned)__builtin_ctzll(later);
            if (!list_empty(&w->slots[level][slot]))
                return slot_start(w->now, level, slot);
        }
    }
    /* Only far timers (or, inside a callback, timers collected as due) are left. The
     * former are due no earlier than the next multiple of 2^36 ms. */
    uint64_t far = ((w->now >> FAR_SHIFT) + 1) << FAR_SHIFT;
    return far < w->now ? UINT64_MAX : far;
}

uint64_t chopin__wheel_timeout(const struct chopin__wheel *w, uint64_t now)
{
    if (w->count == 0)
        return UINT64_MAX;
    uint64_t at = earliest_expiry_bound(w);
    return at <= now ? 0 : at - now;
}
