/* SPDX-License-Identifier: MIT */
/* The worker's post queue (see postq.h). */
#include "loop/postq.h"

#include <errno.h>
#include <stdint.h>

/* The closed queue's head: no task lives at this address. */
static struct chopin__task closed_mark;
#define CLOSED (&closed_mark)

int chopin__postq_push(struct chopin__postq *q, struct chopin__task *t) {
    struct chopin__task *old = atomic_load_explicit(&q->head, memory_order_relaxed);
    do {
        if (old == CLOSED)
            return -ESHUTDOWN;
        t->next = old;
        /* release: the task's fields are visible to the consumer that takes it */
    } while (!atomic_compare_exchange_weak_explicit(&q->head, &old, t, memory_order_release,
                                                    memory_order_relaxed));
    return old == NULL;
}

/* Runs a list taken from the stack (newest first) in posting order. */
static unsigned run_list(struct chopin__task *t, void *ctx) {
    struct chopin__task *fifo = NULL;
    while (t) {
        struct chopin__task *next = t->next;
        t->next = fifo;
        fifo = t;
        t = next;
    }
    unsigned n = 0;
    while (fifo) {
        struct chopin__task *next = fifo->next;
        fifo->run(fifo, ctx);
        fifo = next;
        n++;
    }
    return n;
}

unsigned chopin__postq_run(struct chopin__postq *q, void *ctx) {
    struct chopin__task *t = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (t == NULL || t == CLOSED)
        return 0;
    return run_list(atomic_exchange_explicit(&q->head, NULL, memory_order_acquire), ctx);
}

unsigned chopin__postq_close(struct chopin__postq *q, void *ctx) {
    struct chopin__task *t = atomic_exchange_explicit(&q->head, CLOSED, memory_order_acquire);
    return t == CLOSED ? 0 : run_list(t, ctx);
}
