/* SPDX-License-Identifier: MIT */
/*
 * The server: its listeners (listen.h) handed to the workers, worker threads and their
 * CPUs, backend choice, signals and graceful shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "config.h"
#include "http/message.h"
#include "listen.h"
#include "loop/offload.h"
#include "ops/observe.h"
#ifdef CHOPIN_HAVE_TLS
#include "tls/tls.h"
#include "tls/transport.h"
#endif
#include "platform.h"
#include "router/router.h"
#include "service.h"
#include "worker.h"

/* Read scratch per worker: a read larger than this is split in several reads, each
 * parsed as it lands. */
#define SCRATCH_SIZE 65536

struct chopin_server {
    struct chopin__config cfg;
    chopin_router *router;
    const struct chopin__backend *backend;
    struct chopin__worker *workers;
    int nworkers;
    struct chopin__offload *offload; /* blocking work: chopin_offload */
    struct chopin__tls_ctx *tls;     /* https:// listeners' certificates and policy (issue 16) */
    atomic_int stop_requested;
    atomic_int workers_running;
    int nlisteners;
    struct chopin__listener listeners[CHOPIN__MAX_LISTENERS];
    struct chopin__service *service; /* systemd notifications (service.h); NULL: none */
    atomic_int restarting;           /* chopin_server_restart under way */
    int handed_over;                 /* the listeners went to a new process */
    sigset_t exec_mask;              /* the signal mask a restarted program starts with */
};

/* ----- errors ------------------------------------------------------------------------ */

const char *chopin_strerror(int err) {
    if (err == 0)
        return "success";
    if (err == -EEXIST)
        return "route conflicts with an existing route";
    if (err == -EBUSY)
        return "router is frozen: the server is running";
    if (err < 0)
        return strerror(-err);
    return "unknown error";
}

/* ----- listeners ------------------------------------------------------------------------ */

/* Sockets inherited by this process (LISTEN_FDS) go to the first server that starts: the
 * variables are gone afterwards (chopin__listen_inherited). */
static pthread_mutex_t inherited_lock = PTHREAD_MUTEX_INITIALIZER;

static int take_inherited(struct chopin__inherited *in, int cap) {
    pthread_mutex_lock(&inherited_lock);
    int n = chopin__listen_inherited(in, cap);
    pthread_mutex_unlock(&inherited_lock);
    return n;
}

static struct chopin__listener *listener_add(struct chopin_server *s) {
    if (s->nlisteners == CHOPIN__MAX_LISTENERS) {
        chopin_log(CHOPIN_LOG_ERROR, "chopin: too many listeners (at most %d)", CHOPIN__MAX_LISTENERS);
        return NULL;
    }
    return &s->listeners[s->nlisteners++];
}

/* The listeners of the inherited sockets an item of the address claims (as many entries
 * as it takes to keep every inherited socket, one per worker each), and those of the
 * inherited sockets no item claims: a service manager's are taken over as given (plain
 * HTTP); a restart's, named for an item that is no longer in the list, are closed. */
static int adopt_inherited(struct chopin_server *s, const struct chopin__listen_spec *specs,
                           int nspecs, int *claimed, struct chopin__inherited *in, int n) {
    for (int i = 0; i < nspecs; i++) {
        struct chopin__listener ln;
        while (chopin__listener_adopt(&ln, &specs[i], i, in, n, s->nworkers)) {
            struct chopin__listener *slot = listener_add(s);
            if (!slot) {
                chopin__listener_close(&ln);
                return -EINVAL;
            }
            *slot = ln;
            claimed[i] = 1;
        }
    }
    for (int i = 0; i < n; i++) {
        if (in[i].fd < 0 || in[i].listener >= 0)
            continue;
        struct chopin__listener *slot = listener_add(s);
        if (!slot)
            return -EINVAL;
        chopin__listener_adopt_any(slot, in[i].fd);
        in[i].fd = -1;
    }
    return 0;
}

/* Opens every listener of `address` (CHOPIN_LISTEN replaces it), after taking over the
 * sockets this process inherited. */
static int open_listeners(struct chopin_server *s, const char *address) {
    const char *env = getenv("CHOPIN_LISTEN");
    if (env && *env)
        address = env;
    struct chopin__listen_spec specs[CHOPIN__MAX_LISTENERS];
    int nspecs = chopin__listen_parse(address, specs, CHOPIN__MAX_LISTENERS);
    if (nspecs < 0)
        return nspecs;
    for (int i = 0; i < nspecs; i++) {
        if ((specs[i].flags & (CHOPIN__LISTEN_PROXY | CHOPIN__LISTEN_UNIX)) ==
                CHOPIN__LISTEN_PROXY && s->cfg.trusted.n == 0) {
            chopin_log(CHOPIN_LOG_ERROR, "chopin: %s: a ?proxy listener believes only the proxies named in "
                            "trusted_proxies (CHOPIN_TRUSTED_PROXIES), and none is",
                    specs[i].text);
            return -EINVAL;
        }
    }
    struct chopin__inherited in[CHOPIN__HANDOVER_MAX];
    int n = take_inherited(in, CHOPIN__HANDOVER_MAX);
    int claimed[CHOPIN__MAX_LISTENERS] = {0};
    int rc = adopt_inherited(s, specs, nspecs, claimed, in, n);
    for (int i = 0; rc == 0 && i < nspecs; i++) {
        if (claimed[i])
            continue;
        struct chopin__listener *ln = listener_add(s);
        if (!ln)
            return -EINVAL;
        rc = chopin__listener_open(ln, &specs[i], s->nworkers, s->cfg.opt.share_port);
        if (rc < 0)
            s->nlisteners--;
    }
    for (int i = 0; i < n; i++)
        if (in[i].fd >= 0)
            close(in[i].fd);
    return rc;
}

/* Worker i takes socket i of each listener, or a duplicate of one when the listener has
 * fewer (a Unix socket, an inherited one): each worker closes its own when it drains, and
 * the socket stops listening once the last worker closed its descriptor. */
static int hand_out_listeners(struct chopin_server *s) {
    for (int l = 0; l < s->nlisteners; l++) {
        struct chopin__listener *ln = &s->listeners[l];
        for (int i = s->nworkers - 1; i >= 0; i--) {
            struct chopin__worker *w = &s->workers[i];
            int fd = i < ln->nfds ? ln->fds[i] : fcntl(ln->fds[i % ln->nfds], F_DUPFD_CLOEXEC, 0);
            if (fd < 0)
                return -errno;
            if (i < ln->nfds)
                ln->fds[i] = -1;
            w->listen[l] = (struct chopin__worker_listen){.fd = fd, .flags = ln->flags};
            w->nlisten = l + 1;
        }
        ln->nfds = 0;
    }
    return 0;
}

static void describe_listeners(const struct chopin_server *s, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (int l = 0; l < s->nlisteners && used < cap; l++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", l ? ", " : "",
                                 s->listeners[l].name);
}

/* ----- backend choice ------------------------------------------------------------------ */

static const struct chopin__backend *backend_named(chopin_backend b) {
    switch (b) {
#ifdef CHOPIN_HAVE_URING
    case CHOPIN_BACKEND_IO_URING:
        return &chopin__uring_backend;
#endif
#ifdef CHOPIN_HAVE_KQUEUE
    case CHOPIN_BACKEND_KQUEUE:
        return &chopin__kqueue_backend;
#endif
    case CHOPIN_BACKEND_EPOLL:
        return &chopin__epoll_backend;
    default:
        return NULL;
    }
}

/* Where the backend was asked for, for messages: "CHOPIN_BACKEND=kqueue". */
static void backend_source(const struct chopin__config *cfg, char *buf, size_t cap) {
    static const char *const names[] = {"auto", "epoll", "io_uring", "kqueue"};
    snprintf(buf, cap, cfg->backend_from_env ? "CHOPIN_BACKEND=%s" : "options.backend = %s",
             names[cfg->opt.backend]);
}

/* AUTO takes io_uring when the kernel allows it, else the base backend. An explicit
 * backend is what the user asked for: when it is missing or refused, the start stops
 * (NULL, after saying why) rather than run something else. */
static const struct chopin__backend *choose_backend(const struct chopin__config *cfg) {
    chopin_backend want = cfg->opt.backend;
    if (want == CHOPIN_BACKEND_AUTO) {
#ifdef CHOPIN_HAVE_URING
        if (chopin__uring_backend.probe(cfg) == 0)
            return &chopin__uring_backend;
#endif
        return &CHOPIN__BASE_BACKEND;
    }
    char asked[64];
    backend_source(cfg, asked, sizeof asked);
    const struct chopin__backend *b = backend_named(want);
    if (!b) {
        chopin_log(CHOPIN_LOG_ERROR, "chopin: %s: this backend is not compiled into this build "
                   "(only auto chooses another)", asked);
        return NULL;
    }
    int rc = b->probe(cfg);
    if (rc < 0) {
        chopin_log(CHOPIN_LOG_ERROR, "chopin: %s: %s is not available here: %s (only auto "
                   "chooses another)", asked, b->name, strerror(-rc));
        return NULL;
    }
    return b;
}

/* The configuration and the backend, each problem printed: the backend is checked even
 * when a field is invalid (it then holds its default), so that one run reports all. */
static int resolve_options(struct chopin__config *cfg, const chopin_options *opt,
                           const struct chopin__backend **backend) {
    int rc = chopin__config_resolve(cfg, opt);
    *backend = choose_backend(cfg);
    if (rc == 0 && !*backend)
        rc = -ENOTSUP;
    return rc;
}

/* ----- workers ---------------------------------------------------------------------- */

static void pin_to_cpu(struct chopin__worker *w) {
    if (w->cpu < 0)
        return;
    int rc = chopin__thread_pin(w->cpu);
    if (rc == -ENOTSUP) {
        if (w->id == 0) /* once, not once per worker */
            chopin__worker_log(w, "this platform cannot pin threads to CPUs (macOS has only "
                                  "affinity hints): workers run unpinned");
    } else if (rc < 0) {
        chopin__worker_log(w, "cannot pin to CPU %d: %s", w->cpu, strerror(-rc));
    }
}

static int run_backend(struct chopin__worker *w) {
    int rc = w->backend->run(w);
    /* Only AUTO may run something else than what was asked for. */
    if (rc < 0 && w->backend != &CHOPIN__BASE_BACKEND &&
        w->server->cfg.opt.backend == CHOPIN_BACKEND_AUTO) {
        chopin__worker_log(w, "%s failed to start (%s); falling back to %s", w->backend->name,
                           strerror(-rc), CHOPIN__BASE_BACKEND.name);
        w->backend = &CHOPIN__BASE_BACKEND;
        rc = w->backend->run(w);
    }
    return rc;
}

static void *worker_main(void *arg) {
    struct chopin__worker *w = arg;
    struct chopin_server *s = w->server;
    const chopin_options *o = &s->cfg.opt;
    char name[16];
    snprintf(name, sizeof name, "chopin-w%d", w->id);
    chopin__thread_name(name);
    pin_to_cpu(w);
    w->result = chopin__engine_init(&w->engine, &s->cfg, s->router, w->id, chopin__clock_ms());
    w->engine.server = s;
    w->engine.offload = s->offload;
    chopin__stack_choose(&w->engine.stack, o, s->tls);
    w->engine.stop_requested = &s->stop_requested;
    chopin__worker_wake_on_post(w);
    /* engine_init wrote the whole engine, counters included; from here on they change only
     * through atomic stores, which chopin_server_stats may read from another thread. */
    __atomic_store_n(&w->ready, 1, __ATOMIC_RELEASE);
    w->scratch = malloc(SCRATCH_SIZE);
    w->scratch_size = SCRATCH_SIZE;
    if (w->result == 0 && !w->scratch)
        w->result = -ENOMEM;
    if (w->result == 0) {
        chopin__loop_enter(&w->engine);
        if (o->worker_init)
            w->engine.worker_data = o->worker_init(w->id, o->worker_arg);
        w->result = run_backend(w);
        /* What was posted before the end runs before it (and before worker_fini, which
         * may free what those functions use); later posts fail. */
        chopin__loop_close(&w->engine);
        if (o->worker_fini)
            o->worker_fini(w->id, w->engine.worker_data, o->worker_arg);
        chopin__loop_enter(NULL);
    } else {
        chopin_log(CHOPIN_LOG_ERROR, "chopin: worker %d: cannot start: %s", w->id,
                   strerror(-w->result));
    }
    for (int l = 0; l < w->nlisten; l++)
        if (w->listen[l].fd >= 0)
            close(w->listen[l].fd);
    w->nlisten = 0;
    free(w->scratch);
    chopin__engine_destroy(&w->engine);
    w->done = 1;
    if (atomic_fetch_sub(&s->workers_running, 1) == 1)
        chopin_server_stop(s); /* the last one out makes chopin_serve return */
    return NULL;
}

static int create_workers(struct chopin_server *s) {
    int cpus[CHOPIN__MAX_CPUS];
    int ncpus = chopin__cpus_allowed(cpus, CHOPIN__MAX_CPUS);
    s->nworkers = s->cfg.opt.workers > 0 ? s->cfg.opt.workers : (ncpus > 0 ? ncpus : 1);
    chopin__config_slab_capacity(&s->cfg, s->nworkers);
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->workers)
        return -ENOMEM;
    for (int i = 0; i < s->nworkers; i++) {
        struct chopin__worker *w = &s->workers[i];
        w->id = i;
        w->server = s;
        w->backend = s->backend;
        w->cpu = s->cfg.opt.pin && ncpus > 0 ? cpus[i % ncpus] : -1;
        w->wake_fd = chopin__wake_open();
        if (w->wake_fd < 0)
            return w->wake_fd;
    }
    return 0;
}

static void free_server(struct chopin_server *s) {
    for (int i = 0; s->workers && i < s->nworkers; i++) {
        for (int l = 0; l < s->workers[i].nlisten; l++)
            if (s->workers[i].listen[l].fd >= 0)
                close(s->workers[i].listen[l].fd);
        if (s->workers[i].wake_fd >= 0)
            close(s->workers[i].wake_fd);
    }
    chopin__service_end(s->service);
    for (int l = 0; l < s->nlisteners; l++) {
        if (s->handed_over) /* the new process serves the socket file now */
            s->listeners[l].unlink_path[0] = '\0';
        chopin__listener_close(&s->listeners[l]);
    }
    /* After the workers: a result that could not reach its ended worker is delivered here. */
    chopin__offload_destroy(s->offload);
    chopin__access_close(&s->cfg); /* after the workers: each wrote its last lines */
#ifdef CHOPIN_HAVE_TLS
    chopin__tls_ctx_free(s->tls);
#endif
    free(s->workers);
    free(s);
}

/* The offload pool's threads (offload_threads, 0: one per worker), with SIGINT and SIGTERM
 * blocked like the workers. */
static int start_offload(struct chopin_server *s) {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    unsigned n = s->cfg.opt.offload_threads ? s->cfg.opt.offload_threads : (unsigned)s->nworkers;
    int rc = chopin__offload_create(&s->offload, n, s->cfg.opt.offload_queue);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* The TLS context, when a listener is https:// (issue 16): certificates that do not load
 * stop the start, as a bad address does. */
static int start_tls(struct chopin_server *s) {
    int tls = 0;
    for (int l = 0; l < s->nlisteners; l++)
        tls |= s->listeners[l].flags & CHOPIN__LISTEN_TLS;
    if (!tls)
        return 0;
#ifdef CHOPIN_HAVE_TLS
    return chopin__tls_server_ctx(&s->cfg.opt, &s->tls);
#else
    chopin_log(CHOPIN_LOG_ERROR, "chopin: https:// listeners need TLS, and this build has none (OpenSSL 3 "
                    "was not found when it was built)");
    return -ENOTSUP;
#endif
}

void chopin_server_tls_stats(const chopin_server *s, chopin_tls_stats *out, size_t size) {
    chopin_tls_stats all;
    memset(&all, 0, sizeof all);
#ifdef CHOPIN_HAVE_TLS
    if (s->tls)
        chopin__tls_ctx_stats(s->tls, &all);
#endif
    memcpy(out, &all, size < sizeof all ? size : sizeof all);
}

int chopin_server_tls_reload(chopin_server *s) {
#ifdef CHOPIN_HAVE_TLS
    if (s->tls)
        return chopin__tls_server_reload(s->tls);
#endif
    (void)s;
    return -ENOTSUP;
}

/* Workers run with SIGINT and SIGTERM blocked, so those reach chopin_serve's sigwait
 * and never interrupt a worker in the middle of a request. */
static int spawn_workers(struct chopin_server *s) {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = 0;
    atomic_store(&s->workers_running, s->nworkers);
    for (int i = 0; i < s->nworkers; i++) {
        rc = pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
        if (rc != 0) {
            atomic_fetch_sub(&s->workers_running, s->nworkers - i);
            s->nworkers = i; /* stop and join those that started */
            rc = -rc;
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* systemd's notifications and watchdog (service.h), which posts to every worker. */
static int start_service(struct chopin_server *s, const char *names) {
    chopin_worker **workers = malloc((size_t)s->nworkers * sizeof *workers);
    if (!workers)
        return -ENOMEM;
    for (int i = 0; i < s->nworkers; i++)
        workers[i] = chopin_server_worker(s, i);
    int rc = chopin__service_start(&s->service, workers, s->nworkers, &s->stop_requested, names);
    free(workers);
    return rc;
}

int chopin_server_start(chopin_router *router, const char *address, const chopin_options *opt,
                        chopin_server **out) {
    *out = NULL;
    if (!router || !address)
        return -EINVAL;
    struct chopin_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int rc = resolve_options(&s->cfg, opt, &s->backend);
    if (rc == 0)
        rc = chopin__router_freeze(router);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->router = router;
    chopin_log_set_level((chopin_log_level)s->cfg.opt.log_level);
    chopin__parser_set_simd(s->cfg.simd);
    /* A peer that vanished must be an EPIPE, never a process-killing SIGPIPE (sendfile
     * has no MSG_NOSIGNAL). Only the default action is replaced. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    if ((rc = create_workers(s)) < 0 || (rc = open_listeners(s, address)) < 0 ||
        (rc = start_tls(s)) < 0 || (rc = hand_out_listeners(s)) < 0 ||
        (rc = start_offload(s)) < 0 || (rc = chopin__access_open(&s->cfg)) < 0) {
        free_server(s);
        return rc;
    }
    if ((rc = spawn_workers(s)) < 0) {
        chopin_server_stop(s); /* those that started (maybe none) */
        chopin_server_wait(s);
        return rc;
    }
    char names[1024];
    describe_listeners(s, names, sizeof names);
    if (!s->cfg.opt.quiet)
        chopin_log(CHOPIN_LOG_INFO, "chopin %s: %d worker%s, %s, %u connections per worker, "
                   "listening on %s",
                CHOPIN_VERSION, s->nworkers, s->nworkers == 1 ? "" : "s", s->backend->name,
                s->cfg.opt.slab_capacity, names);
    pthread_sigmask(SIG_SETMASK, NULL, &s->exec_mask);
    if ((rc = start_service(s, names)) < 0)
        chopin_log(CHOPIN_LOG_ERROR, "chopin: systemd notifications: %s", strerror(-rc));
    *out = s;
    return 0;
}

int chopin_options_check(const chopin_options *opt) {
    struct chopin__config cfg;
    const struct chopin__backend *backend;
    return resolve_options(&cfg, opt, &backend);
}

int chopin_server_port(const chopin_server *s) {
    for (int l = 0; l < s->nlisteners; l++)
        if (!(s->listeners[l].flags & CHOPIN__LISTEN_UNIX))
            return s->listeners[l].port;
    return 0;
}

int chopin_server_listeners(const chopin_server *s) { return s->nlisteners; }

int chopin_server_listener_port(const chopin_server *s, int i) {
    if (i < 0 || i >= s->nlisteners)
        return CHOPIN_EINVAL;
    return s->listeners[i].port;
}

int chopin_server_reopen_logs(chopin_server *s) { return chopin__access_reopen(&s->cfg); }

const char *chopin_server_backend(const chopin_server *s) { return s->backend->name; }

void chopin_server_stop(chopin_server *s) {
    atomic_store(&s->stop_requested, 1);
    for (int i = 0; i < s->nworkers; i++)
        chopin__wake_signal(s->workers[i].wake_fd);
}

int chopin_server_wait(chopin_server *s) {
    int rc = 0;
    for (int i = 0; i < s->nworkers; i++) {
        pthread_join(s->workers[i].thread, NULL);
        if (s->workers[i].result < 0 && rc == 0)
            rc = s->workers[i].result;
    }
    free_server(s);
    return rc;
}

void chopin_server_stats(const chopin_server *s, chopin_stats *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < s->nworkers; i++) {
        if (!__atomic_load_n(&s->workers[i].ready, __ATOMIC_ACQUIRE))
            continue; /* not started yet: its counters are zero */
        const struct chopin__counters *c = &s->workers[i].engine.counters;
        /* Relaxed atomic loads: each worker stores its counters atomically (chopin__count). */
        out->requests += __atomic_load_n(&c->requests, __ATOMIC_RELAXED);
        out->connections_accepted += __atomic_load_n(&c->accepted, __ATOMIC_RELAXED);
        out->connections_open += __atomic_load_n(&c->open, __ATOMIC_RELAXED);
        out->bytes_sent += __atomic_load_n(&c->bytes_sent, __ATOMIC_RELAXED);
        out->errors_4xx += __atomic_load_n(&c->errors_4xx, __ATOMIC_RELAXED);
        out->errors_5xx += __atomic_load_n(&c->errors_5xx, __ATOMIC_RELAXED);
        out->slab_full += __atomic_load_n(&c->slab_full, __ATOMIC_RELAXED);
        out->accept_errors += __atomic_load_n(&c->accept_errors, __ATOMIC_RELAXED);
    }
}

chopin_server *chopin_req_server(const chopin_req *req) { return req->engine->server; }

/* Every listening socket the workers hold, once each (a Unix socket's duplicates are one
 * socket), with its listener's index. */
static int handover_fds(const chopin_server *s, struct chopin__handover *out, int cap) {
    int n = 0;
    ino_t seen[CHOPIN__HANDOVER_MAX];
    for (int l = 0; l < s->nlisteners; l++) {
        for (int i = 0; i < s->nworkers && n < cap; i++) {
            int fd = s->workers[i].listen[l].fd;
            struct stat st;
            if (fd < 0 || fstat(fd, &st) < 0)
                continue;
            int dup = 0;
            for (int k = 0; k < n && !dup; k++)
                dup = seen[k] == st.st_ino;
            if (!dup) {
                seen[n] = st.st_ino;
                out[n++] = (struct chopin__handover){fd, l};
            }
        }
    }
    return n;
}

/* How long a restarted program may take to listen before this one gives up on it. */
#define RESTART_WAIT_MS 30000

int chopin_server_restart(chopin_server *s) {
    if (atomic_load(&s->stop_requested) || atomic_exchange(&s->restarting, 1))
        return CHOPIN_EBUSY;
    struct chopin__handover fds[CHOPIN__HANDOVER_MAX];
    int n = handover_fds(s, fds, CHOPIN__HANDOVER_MAX);
    pid_t child;
    if (!s->cfg.opt.quiet)
        chopin_log(CHOPIN_LOG_INFO, "chopin: restart: starting a new process with %d listening socket%s",
                n, n == 1 ? "" : "s");
    int rc = chopin__restart_exec(fds, n, &s->exec_mask, RESTART_WAIT_MS, &child);
    if (rc == 0) {
        s->handed_over = 1;
        chopin__service_handed_over(s->service);
        if (!s->cfg.opt.quiet)
            chopin_log(CHOPIN_LOG_INFO, "chopin: restart: pid %ld listens; draining (at most %u ms)",
                    (long)child, s->cfg.opt.shutdown_timeout_ms);
        chopin_server_stop(s);
    }
    atomic_store(&s->restarting, 0);
    return rc;
}

int chopin_server_workers(const chopin_server *s) { return s->nworkers; }

chopin_worker *chopin_server_worker(chopin_server *s, int i) {
    if (!s || i < 0 || i >= s->nworkers)
        return NULL;
    struct chopin__worker *w = &s->workers[i];
    /* Its engine (and post queue) is initialized by its own thread: a post before then
     * would race with that. Started workers get there within microseconds. */
    while (!__atomic_load_n(&w->ready, __ATOMIC_ACQUIRE))
        sched_yield();
    return (chopin_worker *)&w->engine;
}

int chopin_server_post_all(chopin_server *s, chopin_task_fn fn, void *arg) {
    int took = 0;
    for (int i = 0; i < s->nworkers; i++)
        took += chopin_worker_post(chopin_server_worker(s, i), fn, arg) == 0;
    return took;
}

/* With restarts on, SIGUSR2 stays blocked (workers included: they inherit the mask) and
 * chopin_serve waits for it; off, it is unblocked again and keeps its default action. */
static void restart_signal(chopin_server *s, sigset_t *set, const sigset_t *old) {
    s->exec_mask = *old;
    if (s->cfg.opt.restart) {
        sigaddset(set, SIGUSR2);
        return;
    }
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    if (!sigismember(old, SIGUSR2))
        pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
}

int chopin_serve(chopin_router *router, const char *address, const chopin_options *opt) {
    sigset_t set, old, block;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1); /* logrotate: reopen the access log */
    block = set;
    sigaddset(&block, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    chopin_server *s;
    int rc = chopin_server_start(router, address, opt, &s);
    if (rc < 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    restart_signal(s, &set, &old);
    while (!atomic_load(&s->stop_requested)) {
        int sig = chopin__signal_wait(&set, 200), err;
        if (sig == SIGUSR1 && (err = chopin_server_reopen_logs(s)) < 0)
            chopin_log(CHOPIN_LOG_ERROR, "chopin: cannot reopen the access log %s: %s",
                       s->cfg.access_path, strerror(-err));
        if (sig == SIGUSR2) {
            chopin_server_restart(s);
        } else if (sig == SIGINT || sig == SIGTERM) {
            if (!s->cfg.opt.quiet)
                chopin_log(CHOPIN_LOG_INFO, "chopin: %s: draining (at most %u ms)", strsignal(sig),
                           s->cfg.opt.shutdown_timeout_ms);
            chopin_server_stop(s);
        }
    }
    rc = chopin_server_wait(s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
