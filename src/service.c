/* SPDX-License-Identifier: MIT */
/* The server as a service: notifications, the watchdog, restarts (service.h). */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sdnotify.h"

/* How often the thread looks at the stop flag between watchdog rounds. */
#define STOP_POLL_MS 100

struct chopin__service {
    pthread_t thread;
    chopin_worker **workers; /* nworkers, to post heartbeats to */
    atomic_int *stop;
    atomic_int handed_over;
    uint64_t watchdog_ms; /* half of WATCHDOG_USEC; 0: none */
    int nworkers;
    _Atomic uint64_t *beats; /* heartbeats answered, per worker */
};

/* ----- readiness, stop, watchdog ------------------------------------------------------------ */

static void heartbeat(chopin_worker *w, void *arg) {
    (void)w;
    atomic_fetch_add((_Atomic uint64_t *)arg, 1);
}

static void sleep_ms(uint64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One watchdog round: WATCHDOG=1 when every worker ran the heartbeat posted last round
 * (a worker stuck in a handler runs none), then a new heartbeat for each. */
static void watchdog_round(struct chopin__service *svc, uint64_t round) {
    int all = 1;
    for (int i = 0; i < svc->nworkers; i++)
        all &= atomic_load(&svc->beats[i]) >= round;
    if (all)
        chopin__sd_notify("WATCHDOG=1");
    for (int i = 0; i < svc->nworkers; i++)
        chopin_worker_post(svc->workers[i], heartbeat, &svc->beats[i]);
}

static void *service_main(void *arg) {
    struct chopin__service *svc = arg;
    uint64_t round = 0, waited = 0;
    while (!atomic_load(svc->stop)) {
        if (svc->watchdog_ms && waited >= svc->watchdog_ms) {
            watchdog_round(svc, round++);
            waited = 0;
        }
        uint64_t step = svc->watchdog_ms && svc->watchdog_ms - waited < STOP_POLL_MS
                            ? svc->watchdog_ms - waited
                            : STOP_POLL_MS;
        sleep_ms(step);
        waited += step;
    }
    if (!atomic_load(&svc->handed_over))
        chopin__sd_notify("STOPPING=1");
    return NULL;
}

/* The process that started this one by a restart waits for a byte on CHOPIN_READY_FD. */
static void tell_restarter(void) {
    const char *v = getenv("CHOPIN_READY_FD");
    if (!v)
        return;
    int fd = atoi(v);
    unsetenv("CHOPIN_READY_FD");
    if (fd > 2) {
        (void)!write(fd, "1", 1);
        close(fd);
    }
}

static int start_thread(struct chopin__service *svc) {
    sigset_t block, old;
    sigfillset(&block); /* signals are the application's and chopin_serve's */
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&svc->thread, NULL, service_main, svc);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

static void service_free(struct chopin__service *svc) {
    if (svc) {
        free(svc->beats);
        free(svc->workers);
        free(svc);
    }
}

int chopin__service_start(struct chopin__service **out, chopin_worker *const *workers, int n,
                          atomic_int *stop, const char *status) {
    *out = NULL;
    char state[512];
    snprintf(state, sizeof state, "READY=1\nMAINPID=%ld\nSTATUS=%s", (long)getpid(), status);
    int notify = chopin__sd_notify(state) == 0;
    tell_restarter();
    if (!notify)
        return 0;
    struct chopin__service *svc = calloc(1, sizeof *svc);
    if (!svc || !(svc->beats = calloc((size_t)n, sizeof *svc->beats)) ||
        !(svc->workers = malloc((size_t)n * sizeof *svc->workers))) {
        service_free(svc);
        return -ENOMEM;
    }
    memcpy(svc->workers, workers, (size_t)n * sizeof *workers);
    svc->stop = stop;
    svc->nworkers = n;
    svc->watchdog_ms = chopin__sd_watchdog_usec() / 2000;
    if (chopin__sd_watchdog_usec() && svc->watchdog_ms == 0)
        svc->watchdog_ms = 1;
    int rc = start_thread(svc);
    if (rc < 0) {
        service_free(svc);
        return rc;
    }
    *out = svc;
    return 0;
}

void chopin__service_handed_over(struct chopin__service *svc) {
    if (svc)
        atomic_store(&svc->handed_over, 1);
}

void chopin__service_end(struct chopin__service *svc) {
    if (!svc)
        return;
    pthread_join(svc->thread, NULL);
    service_free(svc);
}

/* ----- restarts --------------------------------------------------------------------------- */

#ifdef __linux__

/* What the child needs, all of it made before the fork: after it, only async-signal-safe
 * calls until exec (another thread may have held malloc's lock at the fork). */
struct exec_plan {
    char path[4096];
    char *cmdline; /* /proc/self/cmdline */
    char **argv;
    char **envp;
    char *pid_vars[2]; /* "LISTEN_PID=" and "WATCHDOG_PID=" with room for the digits */
    int npid_vars;
};

static void plan_free(struct exec_plan *p) {
    free(p->cmdline);
    free(p->argv);
    if (p->envp)
        for (char **e = p->envp; *e; e++)
            if (strncmp(*e, "LISTEN_", 7) == 0 || strncmp(*e, "CHOPIN_READY_FD=", 16) == 0 ||
                strncmp(*e, "WATCHDOG_PID=", 13) == 0)
                free(*e);
    free(p->envp);
}

/* The program file: /proc/self/exe, without the " (deleted)" a replaced file gets, so a
 * build installed over the old one (rename) is the one that starts. */
static int plan_path(struct exec_plan *p) {
    ssize_t n = readlink("/proc/self/exe", p->path, sizeof p->path - 1);
    if (n <= 0)
        return -errno;
    p->path[n] = '\0';
    static const char deleted[] = " (deleted)";
    size_t len = (size_t)n, dl = sizeof deleted - 1;
    if (len > dl && strcmp(p->path + len - dl, deleted) == 0)
        p->path[len - dl] = '\0';
    return 0;
}

static int plan_argv(struct exec_plan *p) {
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 4096, len = 0;
    p->cmdline = malloc(cap + 1);
    ssize_t n;
    while (p->cmdline && (n = read(fd, p->cmdline + len, cap - len)) > 0) {
        len += (size_t)n;
        if (len == cap) {
            char *more = realloc(p->cmdline, (cap *= 2) + 1);
            if (!more)
                break;
            p->cmdline = more;
        }
    }
    close(fd);
    if (!p->cmdline || len == 0)
        return -ENOMEM;
    p->cmdline[len] = '\0';
    size_t argc = 0;
    for (size_t i = 0; i < len; i++)
        argc += p->cmdline[i] == '\0';
    if (!(p->argv = calloc(argc + 1, sizeof *p->argv)))
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < len && k < argc; i += strlen(p->cmdline + i) + 1)
        p->argv[k++] = p->cmdline + i;
    return 0;
}

static char *env_entry(const char *fmt, const char *a, int b) {
    char *e = malloc(48 + (a ? strlen(a) : 0)); /* the longest name, and 20 digits */
    if (e)
        sprintf(e, fmt, a ? a : "", b);
    return e;
}

/* The environment without the inherited hand-over variables, with ours. */
static int plan_env(struct exec_plan *p, const char *names, int nfds, int ready_fd) {
    size_t n = 0;
    for (char **e = environ; *e; e++)
        n++;
    if (!(p->envp = calloc(n + 6, sizeof *p->envp)))
        return -ENOMEM;
    size_t k = 0;
    int watchdog_pid = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "LISTEN_", 7) == 0 || strncmp(*e, "CHOPIN_READY_FD=", 16) == 0)
            continue;
        if (strncmp(*e, "WATCHDOG_PID=", 13) == 0) {
            watchdog_pid = 1; /* systemd's watchdog follows MAINPID: the new process pings */
            continue;
        }
        p->envp[k++] = *e;
    }
    char *listen_fds = env_entry("LISTEN_FDS=%s%d", NULL, nfds);
    char *fdnames = malloc(strlen(names) + 16);
    char *ready = env_entry("CHOPIN_READY_FD=%s%d", NULL, ready_fd);
    p->pid_vars[p->npid_vars++] = env_entry("LISTEN_PID=%s%.0d", "", 0);
    if (watchdog_pid)
        p->pid_vars[p->npid_vars++] = env_entry("WATCHDOG_PID=%s%.0d", "", 0);
    if (!listen_fds || !fdnames || !ready || !p->pid_vars[0] || (watchdog_pid && !p->pid_vars[1])) {
        free(listen_fds);
        free(fdnames);
        free(ready);
        for (int i = 0; i < p->npid_vars; i++)
            free(p->pid_vars[i]);
        return -ENOMEM;
    }
    sprintf(fdnames, "LISTEN_FDNAMES=%s", names);
    p->envp[k++] = listen_fds;
    p->envp[k++] = fdnames;
    p->envp[k++] = ready;
    for (int i = 0; i < p->npid_vars; i++)
        p->envp[k++] = p->pid_vars[i];
    p->envp[k] = NULL;
    return 0;
}

/* Appends the decimal `v` to the string at s (room was made for it): no stdio after fork. */
static void put_pid(char *s, long v) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    s += strlen(s);
    while (n)
        *s++ = digits[--n];
    *s = '\0';
}

/* In the child: the sockets to 3.., the ready pipe after them, then exec. Each first goes
 * above every target (close-on-exec), so no dup2 overwrites a socket not yet moved. */
static void child_exec(struct exec_plan *p, const struct chopin__handover *fds, int n,
                       int ready_fd, const sigset_t *mask) {
    int base = 3 + n + 1, tmp[CHOPIN__HANDOVER_MAX + 1];
    for (int i = 0; i <= n; i++)
        if ((tmp[i] = fcntl(i < n ? fds[i].fd : ready_fd, F_DUPFD_CLOEXEC, base)) < 0)
            _exit(127);
    for (int i = 0; i <= n; i++)
        if (dup2(tmp[i], 3 + i) < 0) /* dup2's descriptor is not close-on-exec */
            _exit(127);
    for (int i = 0; i < p->npid_vars; i++)
        put_pid(p->pid_vars[i], (long)getpid());
    sigprocmask(SIG_SETMASK, mask, NULL);
    execve(p->path, p->argv, p->envp);
    _exit(127);
}

/* Waits for the new process's byte; 0 when it came, else -ETIMEDOUT or -ECHILD (it ended). */
static int wait_ready(int fd, int wait_ms) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc;
    do
        rc = poll(&pfd, 1, wait_ms);
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return -ETIMEDOUT;
    char b;
    return read(fd, &b, 1) == 1 ? 0 : -ECHILD;
}

static int names_of(const struct chopin__handover *fds, int n, char **out) {
    char *names = malloc((size_t)n * 16 + 1);
    if (!names)
        return -ENOMEM;
    size_t used = 0;
    names[0] = '\0';
    for (int i = 0; i < n; i++)
        used += (size_t)sprintf(names + used, "%schopin-%d", i ? ":" : "", fds[i].listener);
    *out = names;
    return 0;
}

int chopin__restart_exec(const struct chopin__handover *fds, int n, const sigset_t *mask,
                         int wait_ms, pid_t *child) {
    struct exec_plan plan = {.npid_vars = 0};
    char *names = NULL;
    int pipefd[2] = {-1, -1};
    int rc = n > CHOPIN__HANDOVER_MAX ? -E2BIG : 0;
    if (rc == 0 && pipe2(pipefd, O_CLOEXEC) < 0)
        rc = -errno;
    if (rc == 0)
        rc = plan_path(&plan);
    if (rc == 0)
        rc = plan_argv(&plan);
    if (rc == 0)
        rc = names_of(fds, n, &names);
    if (rc == 0)
        rc = plan_env(&plan, names, n, 3 + n);
    pid_t pid = -1;
    if (rc == 0 && (pid = fork()) < 0)
        rc = -errno;
    if (pid == 0)
        child_exec(&plan, fds, n, pipefd[1], mask);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    if (rc == 0 && (rc = wait_ready(pipefd[0], wait_ms)) < 0) {
        kill(pid, SIGKILL); /* never two servers: this one goes on */
        waitpid(pid, NULL, 0);
    }
    if (rc < 0)
        chopin_log(CHOPIN_LOG_ERROR, "chopin: restart failed (%s): %s; still serving", plan.path,
                rc == -ETIMEDOUT ? "the new process did not listen in time"
                : rc == -ECHILD  ? "the new process ended before it listened"
                                 : strerror(-rc));
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    free(names);
    plan_free(&plan);
    *child = pid;
    return rc;
}

#else

int chopin__restart_exec(const struct chopin__handover *fds, int n, const sigset_t *mask,
                         int wait_ms, pid_t *child) {
    (void)fds, (void)n, (void)mask, (void)wait_ms;
    *child = -1;
    chopin_log(CHOPIN_LOG_ERROR, "chopin: restart: only on Linux (it reads /proc/self)");
    return -ENOTSUP;
}

#endif
