/* SPDX-License-Identifier: MIT */
/*
 * The server: address resolution, listener sockets and their options, worker threads and
 * their CPUs, backend choice, signals and graceful shutdown.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backend.h"
#include "config.h"
#include "http/message.h"
#include "loop/offload.h"
#include "ops/observe.h"
#include "platform.h"
#include "router/router.h"
#include "worker.h"

/* Read scratch per worker: a read larger than this is split in several reads, each
 * parsed as it lands. */
#define SCRATCH_SIZE 65536
/* Pending TCP Fast Open requests per listener. */
#define FASTOPEN_QUEUE 256

struct chopin_server {
    struct chopin__config cfg;
    chopin_router *router;
    const struct chopin__backend *backend;
    struct chopin__worker *workers;
    int nworkers;
    struct chopin__offload *offload; /* blocking work: chopin_offload */
    int port;
    atomic_int stop_requested;
    atomic_int workers_running;
    char address[128];
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

/* ----- addresses and listeners -------------------------------------------------------- */

static void bad_address(const char *address, const char *why) {
    chopin_log(CHOPIN_LOG_ERROR, "chopin: bad address '%s': %s\n", address, why);
}

/* Splits "host:port", "[v6]:port", ":port" or "port" into host (NULL: any) and port,
 * after printing what is wrong when it cannot. */
static int split_address(const char *address, char *host, size_t host_cap, char *port,
                         size_t port_cap) {
    static const char form[] = "expected host:port, [ipv6]:port or :port";
    const char *colon;
    host[0] = '\0';
    if (address[0] == '[') {
        const char *close = strchr(address, ']');
        if (!close || close[1] != ':' || (size_t)(close - address - 1) >= host_cap) {
            bad_address(address, form);
            return -EINVAL;
        }
        memcpy(host, address + 1, (size_t)(close - address - 1));
        host[close - address - 1] = '\0';
        colon = close + 1;
    } else if ((colon = strrchr(address, ':'))) {
        if ((size_t)(colon - address) >= host_cap) {
            bad_address(address, "host name too long");
            return -EINVAL;
        }
        memcpy(host, address, (size_t)(colon - address));
        host[colon - address] = '\0';
    } else {
        colon = address - 1; /* just a port */
    }
    const char *p = colon + 1;
    if (!*p || strspn(p, "0123456789") != strlen(p)) {
        bad_address(address, form);
        return -EINVAL;
    }
    p += strspn(p, "0") == strlen(p) ? strlen(p) - 1 : strspn(p, "0"); /* "08080" is 8080 */
    if (strlen(p) >= port_cap || strtoul(p, NULL, 10) > 65535) {
        bad_address(address, "the port is out of range (0 to 65535)");
        return -EINVAL;
    }
    strcpy(port, p);
    return 0;
}

static int somaxconn(void) {
    int v = 4096;
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    if (f) {
        if (fscanf(f, "%d", &v) != 1 || v <= 0)
            v = 4096;
        fclose(f);
    }
    return v;
}

static void set_opt(int fd, int level, int name, int value) {
    /* Best effort: an option the kernel lacks costs performance, not correctness. */
    (void)setsockopt(fd, level, name, &value, sizeof value);
}

/* One SO_REUSEPORT listener; returns the fd or -errno. */
static int open_listener(const struct sockaddr *sa, socklen_t len) {
    int fd = chopin__socket_stream(sa->sa_family);
    if (fd < 0)
        return fd;
    set_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (setsockopt(fd, SOL_SOCKET, CHOPIN__SO_REUSEPORT, &(int){1}, sizeof(int)) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    /* Accepted sockets inherit TCP_NODELAY: no setsockopt per connection. */
    set_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    /* TCP_DEFER_ACCEPT (Linux), TCP_FASTOPEN, SO_NOSIGPIPE where the platform has them. */
    chopin__listener_options(fd, FASTOPEN_QUEUE);
    if (bind(fd, sa, len) < 0 || listen(fd, somaxconn()) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    chopin__listener_listening(fd); /* FreeBSD's accept filter needs a listening socket */
    return fd;
}

static int bound_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void set_port(struct sockaddr *sa, int port) {
    if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
}

/* SO_REUSEPORT gives every worker its own listener, but it would also let this server
 * join the listeners another process (another chopin server of the same user) has on the
 * address and silently split its traffic. A socket bound without SO_REUSEPORT conflicts
 * with every other socket bound to the address, listening or not, SO_REUSEPORT or not
 * (Linux inet_bind_conflict; the BSDs alike): binding one first tells whether anything
 * else holds it. SO_REUSEADDR keeps an earlier run's connections in TIME_WAIT from
 * counting, as for any server. Returns 0 or -errno (-EADDRINUSE). */
static int address_free(const struct sockaddr *sa, socklen_t len) {
    int fd = chopin__socket_stream(sa->sa_family);
    if (fd < 0)
        return fd;
    set_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    int rc = bind(fd, sa, len) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Port 0 needs no check: the kernel picks a port nothing holds, SO_REUSEPORT or not. */
static int wants_own_port(const struct chopin_server *s, const struct sockaddr *sa) {
    in_port_t port = sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                               : ((const struct sockaddr_in *)sa)->sin_port;
    return !s->cfg.opt.share_port && port != 0;
}

static void listen_failed(const char *address, int err) {
    if (err == -EADDRINUSE)
        chopin_log(CHOPIN_LOG_ERROR, "chopin: cannot listen on %s: address in use by another "
                   "socket (to join SO_REUSEPORT listeners there on purpose: share_port, "
                   "CHOPIN_SHARE_PORT=1)", address);
    else
        chopin_log(CHOPIN_LOG_ERROR, "chopin: cannot listen on %s: %s", address, strerror(-err));
}

/* Opens one listener per worker on the first address of `address` that binds. */
static int open_listeners(struct chopin_server *s, const char *address) {
    char host[256], port[8];
    if (split_address(address, host, sizeof host, port, sizeof port) < 0)
        return -EINVAL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0) {
        chopin_log(CHOPIN_LOG_ERROR, "chopin: cannot resolve '%s': %s", address, gai_strerror(gai));
        return -EINVAL;
    }
    int err = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (wants_own_port(s, ai->ai_addr) && (err = address_free(ai->ai_addr, ai->ai_addrlen)) < 0)
            continue;
        int i = 0;
        for (; i < s->nworkers; i++) {
            int fd = open_listener(ai->ai_addr, ai->ai_addrlen);
            if (fd < 0) {
                err = fd;
                break;
            }
            s->workers[i].listen_fd = fd;
            if (i == 0) { /* port 0: the others share the port the kernel chose */
                s->port = bound_port(fd);
                set_port(ai->ai_addr, s->port);
            }
        }
        if (i == s->nworkers) {
            snprintf(s->address, sizeof s->address, ai->ai_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
                     host[0] ? host : (ai->ai_family == AF_INET6 ? "::" : "0.0.0.0"), s->port);
            freeaddrinfo(res);
            return 0;
        }
        while (i-- > 0) {
            close(s->workers[i].listen_fd);
            s->workers[i].listen_fd = -1;
        }
    }
    freeaddrinfo(res);
    listen_failed(address, err);
    return err;
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
    if (w->listen_fd >= 0)
        close(w->listen_fd);
    w->listen_fd = -1;
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
        w->listen_fd = -1;
        w->cpu = s->cfg.opt.pin && ncpus > 0 ? cpus[i % ncpus] : -1;
        w->wake_fd = chopin__wake_open();
        if (w->wake_fd < 0)
            return w->wake_fd;
    }
    return 0;
}

static void free_server(struct chopin_server *s) {
    for (int i = 0; s->workers && i < s->nworkers; i++) {
        if (s->workers[i].listen_fd >= 0)
            close(s->workers[i].listen_fd);
        if (s->workers[i].wake_fd >= 0)
            close(s->workers[i].wake_fd);
    }
    /* After the workers: a result that could not reach its ended worker is delivered here. */
    chopin__offload_destroy(s->offload);
    chopin__access_close(&s->cfg); /* after the workers: each wrote its last lines */
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
        (rc = start_offload(s)) < 0 || (rc = chopin__access_open(&s->cfg)) < 0) {
        free_server(s);
        return rc;
    }
    if ((rc = spawn_workers(s)) < 0) {
        chopin_server_stop(s); /* those that started (maybe none) */
        chopin_server_wait(s);
        return rc;
    }
    if (!s->cfg.opt.quiet)
        chopin_log(CHOPIN_LOG_INFO, "chopin %s: %d worker%s, %s, %u connections per worker, "
                   "listening on %s", CHOPIN_VERSION, s->nworkers, s->nworkers == 1 ? "" : "s", s->backend->name,
                s->cfg.opt.slab_capacity, s->address);
    *out = s;
    return 0;
}

int chopin_options_check(const chopin_options *opt) {
    struct chopin__config cfg;
    const struct chopin__backend *backend;
    return resolve_options(&cfg, opt, &backend);
}

int chopin_server_port(const chopin_server *s) { return s->port; }

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

int chopin_serve(chopin_router *router, const char *address, const chopin_options *opt) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1); /* logrotate: reopen the access log */
    pthread_sigmask(SIG_BLOCK, &set, &old);
    chopin_server *s;
    int rc = chopin_server_start(router, address, opt, &s);
    if (rc < 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    while (!atomic_load(&s->stop_requested)) {
        int sig = chopin__signal_wait(&set, 200), err;
        if (sig == SIGUSR1 && (err = chopin_server_reopen_logs(s)) < 0)
            chopin_log(CHOPIN_LOG_ERROR, "chopin: cannot reopen the access log %s: %s",
                       s->cfg.access_path, strerror(-err));
        if (sig == SIGINT || sig == SIGTERM) {
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
