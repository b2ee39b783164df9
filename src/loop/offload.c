/* SPDX-License-Identifier: MIT */
/* The offload pool (see offload.h and chopin.h, "Blocking work: the offload pool"). */
#include "loop/offload.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "chopin.h"
#include "engine.h"
#include "http/message.h"
#include "platform.h"

/* A post that found the heap empty is tried again after this long: the pool thread may
 * wait, the worker must get its result. */
#define RETRY_US 1000

struct job {
    struct job *next;
    struct chopin__engine *e;
    void (*work)(void *arg);
    chopin_exchange_fn exchange_done; /* chopin_offload */
    chopin_task_fn task_done;         /* chopin_worker_offload */
    chopin_exchange x;
    void *arg;
};

struct chopin__offload {
    pthread_mutex_t lock;
    pthread_cond_t queued_cond;
    struct job *head, *tail; /* queued, oldest first */
    struct job *undelivered; /* their worker had ended */
    unsigned held;           /* queued, or reserved by a chopin_offload about to queue */
    unsigned cap;
    int stopping;
    unsigned nthreads;
    pthread_t threads[];
};

/* ----- results ---------------------------------------------------------------------- */

static void run_done(struct job *j) {
    if (j->exchange_done)
        j->exchange_done(j->x, j->arg);
    else
        j->task_done((chopin_worker *)j->e, j->arg);
    free(j);
}

/* On the worker's thread, from its post queue. */
static void deliver_posted(void *arg) { run_done(arg); }

static void deliver(struct chopin__offload *p, struct job *j) {
    int rc;
    while ((rc = chopin__engine_post(j->e, deliver_posted, j)) == -ENOMEM)
        usleep(RETRY_US);
    if (rc == 0)
        return;
    pthread_mutex_lock(&p->lock); /* the worker has ended: done runs at the pool's end */
    j->next = p->undelivered;
    p->undelivered = j;
    pthread_mutex_unlock(&p->lock);
}

/* ----- the threads ------------------------------------------------------------------ */

static struct job *take(struct chopin__offload *p) {
    pthread_mutex_lock(&p->lock);
    while (!p->head && !p->stopping)
        pthread_cond_wait(&p->queued_cond, &p->lock);
    struct job *j = p->stopping ? NULL : p->head;
    if (j) {
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->held--;
    }
    pthread_mutex_unlock(&p->lock);
    return j;
}

static void *pool_main(void *arg) {
    struct chopin__offload *p = arg;
    chopin__thread_name("chopin-offload");
    struct job *j;
    while ((j = take(p))) {
        j->work(j->arg);
        deliver(p, j);
    }
    return NULL;
}

int chopin__offload_create(struct chopin__offload **out, unsigned threads, unsigned queue) {
    struct chopin__offload *p = calloc(1, sizeof *p + threads * sizeof(pthread_t));
    if (!p)
        return -ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->queued_cond, NULL);
    p->cap = queue;
    for (; p->nthreads < threads; p->nthreads++) {
        int rc = pthread_create(&p->threads[p->nthreads], NULL, pool_main, p);
        if (rc != 0) {
            chopin__offload_destroy(p);
            return -rc;
        }
    }
    *out = p;
    return 0;
}

/* Jobs whose work never ran still get their done call: it frees what the application
 * gave with them. Their workers have ended, so the exchange is stale (its response NULL). */
static void run_all_done(struct job *j) {
    while (j) {
        struct job *next = j->next;
        run_done(j);
        j = next;
    }
}

void chopin__offload_destroy(struct chopin__offload *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->queued_cond);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    run_all_done(p->head);
    run_all_done(p->undelivered);
    pthread_cond_destroy(&p->queued_cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* ----- asking ----------------------------------------------------------------------- */

/* A place in the queue, taken before the exchange defers so that a full queue leaves the
 * request untouched. */
static int reserve(struct chopin__offload *p) {
    pthread_mutex_lock(&p->lock);
    int ok = p->held < p->cap;
    p->held += ok;
    pthread_mutex_unlock(&p->lock);
    return ok ? 0 : -EBUSY;
}

static void unreserve(struct chopin__offload *p) {
    pthread_mutex_lock(&p->lock);
    p->held--;
    pthread_mutex_unlock(&p->lock);
}

static void enqueue(struct chopin__offload *p, struct job *j) {
    j->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->queued_cond);
    pthread_mutex_unlock(&p->lock);
}

static struct chopin__offload *pool_of(struct chopin__engine *e) {
    return e ? e->offload : NULL;
}

int chopin_worker_offload(chopin_worker *w, void (*work)(void *arg), chopin_task_fn done,
                          void *arg) {
    struct chopin__engine *e = (struct chopin__engine *)w;
    struct chopin__offload *p = pool_of(e);
    if (!work || !done)
        return CHOPIN_EINVAL;
    if (!p)
        return CHOPIN_ENOTSUP;
    struct job *j = malloc(sizeof *j);
    if (!j)
        return CHOPIN_ENOMEM;
    if (reserve(p) < 0) {
        free(j);
        return CHOPIN_EBUSY;
    }
    *j = (struct job){.e = e, .work = work, .task_done = done, .arg = arg};
    enqueue(p, j);
    return 0;
}

int chopin_offload(chopin_req *req, chopin_res *res, void (*work)(void *arg),
                   chopin_exchange_fn done, void *arg) {
    struct chopin__engine *e = req ? req->engine : NULL;
    struct chopin__offload *p = pool_of(e);
    if (!res || !work || !done)
        return CHOPIN_EINVAL;
    if (!p)
        return CHOPIN_ENOTSUP;
    struct job *j = malloc(sizeof *j);
    if (!j) {
        chopin_res_error(res, 503, NULL);
        return CHOPIN_ENOMEM;
    }
    if (reserve(p) < 0) {
        free(j);
        chopin_res_error(res, 503, NULL);
        return CHOPIN_EBUSY;
    }
    *j = (struct job){.e = e, .work = work, .exchange_done = done, .arg = arg};
    int rc = chopin_defer(req, res, &j->x);
    if (rc < 0) {
        unreserve(p);
        free(j);
        return rc;
    }
    enqueue(p, j);
    return 0;
}
