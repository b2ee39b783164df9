/* SPDX-License-Identifier: MIT */
/*
 * A worker's post queue: functions any thread hands to the worker, run on the worker's
 * thread. Lock-free, many producers, one consumer: a stack (Treiber) that producers push
 * onto with a compare-and-swap and that the worker takes whole with one exchange,
 * reversing it so each producer's functions run in the order it posted them.
 *
 * Closing swaps in a sentinel with the same exchange: a push that lands before it is in
 * the list the close takes (and runs), one that comes after sees the sentinel and fails.
 * So a post either runs or is refused, never lost.
 *
 * The queue itself costs the worker one relaxed load per loop turn (chopin__postq_busy),
 * which is a plain load on the machines we run on: no atomic instruction, no system call
 * on a turn where nothing was posted.
 */
#ifndef CHOPIN_LOOP_POSTQ_H
#define CHOPIN_LOOP_POSTQ_H

#include <stdatomic.h>
#include <stddef.h>

struct chopin__task;

struct chopin__postq {
    /* On a line of its own: producers write it, the worker's other fields stay quiet. */
    _Atomic(struct chopin__task *) head __attribute__((aligned(64)));
};

/* A posted function. `run` receives the node (and frees it). */
struct chopin__task {
    struct chopin__task *next;
    void (*run)(struct chopin__task *t, void *ctx);
};

/** Pushes `t`. Returns 1 when the queue was empty (the caller wakes the consumer: one
 *  wake per batch), 0 when it was not, -ESHUTDOWN when it is closed (`t` stays the
 *  caller's). Any thread. */
int chopin__postq_push(struct chopin__postq *q, struct chopin__task *t);
/** Nonzero when something may be waiting (a relaxed load: the consumer's cheap check). */
static inline int chopin__postq_busy(struct chopin__postq *q) {
    return atomic_load_explicit(&q->head, memory_order_relaxed) != NULL;
}
/** The consumer: takes every task posted so far and runs each, oldest first per
 *  producer, as t->run(t, ctx). Tasks posted meanwhile wait for the next call. Returns
 *  how many ran. Nothing happens on a closed queue. */
unsigned chopin__postq_run(struct chopin__postq *q, void *ctx);
/** The consumer, at its end: closes the queue (every later push fails) and runs what was
 *  posted before. Idempotent. Returns how many ran. */
unsigned chopin__postq_close(struct chopin__postq *q, void *ctx);

#endif
