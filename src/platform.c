/* SPDX-License-Identifier: MIT */
/* Portability helpers (see platform.h): one section per concern, one branch per platform. */
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#endif
#if defined(__FreeBSD__)
#include <sys/param.h>
#include <sys/cpuset.h>
#endif
#if defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
#include <pthread_np.h>
#endif
#ifdef CHOPIN__WAKE_IS_KQUEUE
#include <sys/event.h>
#endif

/* ----- waking a worker ------------------------------------------------------------------ */

#ifdef CHOPIN__WAKE_EVENTFD
int chopin__wake_open(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void chopin__wake_signal(int fd) {
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof one);
    (void)n; /* EAGAIN: the counter is already nonzero, the worker will wake */
}

void chopin__wake_clear(int fd) {
    uint64_t v;
    while (read(fd, &v, sizeof v) > 0)
        ;
}
#else
int chopin__wake_open(void) {
    int kq = kqueue();
    if (kq < 0)
        return -errno;
    /* fork does not pass a kqueue on, but exec would keep the descriptor open. */
    (void)fcntl(kq, F_SETFD, FD_CLOEXEC);
    struct kevent ev;
    EV_SET(&ev, CHOPIN__WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
    if (kevent(kq, &ev, 1, NULL, 0, NULL) < 0) {
        int err = -errno;
        close(kq);
        return err;
    }
    return kq;
}

void chopin__wake_signal(int fd) {
    struct kevent ev;
    EV_SET(&ev, CHOPIN__WAKE_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
    (void)kevent(fd, &ev, 1, NULL, 0, NULL);
}

void chopin__wake_clear(int fd) { (void)fd; }
#endif

/* ----- sockets -------------------------------------------------------------------------- */

static void set_int_opt(int fd, int level, int name, int value) {
    (void)setsockopt(fd, level, name, &value, sizeof value);
}

/* Where socket() and accept4() cannot take the flags (macOS), two fcntl calls do it. */
#ifndef SOCK_NONBLOCK
static int make_nonblocking_cloexec(int fd) {
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}
#endif

int chopin__socket_stream(int family) {
#ifdef SOCK_NONBLOCK
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
#else
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    int rc = make_nonblocking_cloexec(fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
#endif
}

int chopin__accept(int listen_fd) {
#ifdef SOCK_NONBLOCK
    return accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0)
        return -1;
    int rc = make_nonblocking_cloexec(fd);
    if (rc < 0) {
        close(fd);
        errno = -rc;
        return -1;
    }
#if defined(SO_NOSIGPIPE)
    /* macOS may not carry SO_NOSIGPIPE over from the listener, and its sendfile has no
     * flag for it: without this a peer that vanished raises SIGPIPE in the
     * application's handler, if it installed one. */
    set_int_opt(fd, SOL_SOCKET, SO_NOSIGPIPE, 1);
#endif
    return fd;
#endif
}

void chopin__listener_options(int fd, int fastopen_queue) {
#ifdef TCP_DEFER_ACCEPT
    /* Linux: wake us only when the request bytes are there (seconds to wait for them). */
    set_int_opt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, 1);
#endif
#if defined(TCP_FASTOPEN) && defined(__linux__)
    set_int_opt(fd, IPPROTO_TCP, TCP_FASTOPEN, fastopen_queue);
#elif defined(TCP_FASTOPEN)
    /* FreeBSD and macOS take an on/off switch (the queue is a sysctl). */
    (void)fastopen_queue;
    set_int_opt(fd, IPPROTO_TCP, TCP_FASTOPEN, 1);
#else
    (void)fastopen_queue;
#endif
#ifdef SO_NOSIGPIPE
    /* The BSDs copy socket options to accepted sockets: no SIGPIPE on any of them. */
    set_int_opt(fd, SOL_SOCKET, SO_NOSIGPIPE, 1);
#endif
}

void chopin__listener_listening(int fd) {
#ifdef SO_ACCEPTFILTER
    /* FreeBSD's TCP_DEFER_ACCEPT: accept() returns a connection only once data has
     * arrived, so the worker reads the request at once. Needs accf_data (kldload). */
    struct accept_filter_arg afa;
    memset(&afa, 0, sizeof afa);
    snprintf(afa.af_name, sizeof afa.af_name, "%s", "dataready");
    (void)setsockopt(fd, SOL_SOCKET, SO_ACCEPTFILTER, &afa, sizeof afa);
#else
    (void)fd;
#endif
}

/* ----- sendfile ------------------------------------------------------------------------- */

#if defined(__linux__)
ssize_t chopin__sendfile(int sock, int file_fd, uint64_t off, size_t len) {
    off_t o = (off_t)off;
    return sendfile(sock, file_fd, &o, len);
}
#elif defined(__FreeBSD__) || defined(__DragonFly__)
ssize_t chopin__sendfile(int sock, int file_fd, uint64_t off, size_t len) {
    off_t sent = 0;
    /* nbytes 0 would mean "to the end of the file": never pass it. */
    if (len == 0)
        return 0;
    if (sendfile(file_fd, sock, (off_t)off, len, NULL, &sent, 0) == 0)
        return (ssize_t)sent; /* 0: the file ended at `off` */
    /* A non-blocking socket that filled up reports EAGAIN (EBUSY: pages being read in)
     * with what it managed in `sent`: that part is sent. */
    if (sent > 0 && (errno == EAGAIN || errno == EBUSY || errno == EINTR))
        return (ssize_t)sent;
    return -1;
}
#elif defined(__APPLE__)
ssize_t chopin__sendfile(int sock, int file_fd, uint64_t off, size_t len) {
    off_t n = (off_t)len; /* in: how much to send; out: how much was sent (0 = to EOF) */
    if (len == 0)
        return 0;
    if (sendfile(file_fd, sock, (off_t)off, &n, NULL, 0) == 0)
        return (ssize_t)n;
    if (n > 0 && (errno == EAGAIN || errno == EINTR))
        return (ssize_t)n;
    return -1;
}
#else
/* No sendfile (OpenBSD, NetBSD): a bounded copy through user space. Bytes read but not
 * sent are read again next time, from the offset the engine advances. */
ssize_t chopin__sendfile(int sock, int file_fd, uint64_t off, size_t len) {
    char buf[16384];
    ssize_t got = pread(file_fd, buf, len < sizeof buf ? len : sizeof buf, (off_t)off);
    if (got <= 0)
        return got;
    return send(sock, buf, (size_t)got, CHOPIN__MSG_NOSIGNAL);
}
#endif

/* ----- threads and CPUs ----------------------------------------------------------------- */

#if defined(__linux__)
int chopin__cpus_allowed(int *cpus, int cap) {
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < cap; cpu++)
        if (CPU_ISSET(cpu, &set))
            cpus[n++] = cpu;
    return n;
}

int chopin__thread_pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
#elif defined(__FreeBSD__)
int chopin__cpus_allowed(int *cpus, int cap) {
    cpuset_t set;
    int n = 0;
    if (cpuset_getaffinity(CPU_LEVEL_WHICH, CPU_WHICH_PID, -1, sizeof set, &set) != 0)
        return 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < cap; cpu++)
        if (CPU_ISSET(cpu, &set))
            cpus[n++] = cpu;
    return n;
}

int chopin__thread_pin(int cpu) {
    cpuset_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    /* id -1 with CPU_WHICH_TID: the calling thread. */
    if (cpuset_setaffinity(CPU_LEVEL_WHICH, CPU_WHICH_TID, -1, sizeof set, &set) != 0)
        return -errno;
    return 0;
}
#else
int chopin__cpus_allowed(int *cpus, int cap) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = 0;
    for (long cpu = 0; cpu < online && n < cap; cpu++)
        cpus[n++] = (int)cpu;
    return n;
}

int chopin__thread_pin(int cpu) {
    (void)cpu;
    return -ENOTSUP;
}
#endif

void chopin__thread_name(const char *name) {
#if defined(__APPLE__)
    pthread_setname_np(name); /* macOS names only the calling thread */
#elif defined(__NetBSD__)
    pthread_setname_np(pthread_self(), "%s", (void *)(uintptr_t)name);
#elif defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
    pthread_set_name_np(pthread_self(), name);
#else
    pthread_setname_np(pthread_self(), name);
#endif
}

/* ----- signals -------------------------------------------------------------------------- */

#if defined(__APPLE__) || defined(__OpenBSD__)
/* No sigtimedwait: look at the pending set every few milliseconds, and take a signal
 * that is pending with sigwait, which then returns at once. */
#define SIGNAL_POLL_MS 10
static int take_pending(const sigset_t *set) {
    sigset_t pending;
    if (sigpending(&pending) < 0)
        return 0;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sigismember(set, sig) == 1 && sigismember(&pending, sig) == 1) {
            sigset_t one;
            int got = 0;
            sigemptyset(&one);
            sigaddset(&one, sig);
            return sigwait(&one, &got) == 0 ? got : 0;
        }
    }
    return 0;
}

int chopin__signal_wait(const sigset_t *set, unsigned ms) {
    const struct timespec slice = {.tv_sec = 0, .tv_nsec = SIGNAL_POLL_MS * 1000000L};
    for (unsigned waited = 0;; waited += SIGNAL_POLL_MS) {
        int sig = take_pending(set);
        if (sig || waited >= ms)
            return sig;
        nanosleep(&slice, NULL);
    }
}
#else
int chopin__signal_wait(const sigset_t *set, unsigned ms) {
    const struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}
#endif

#if defined(__linux__)
/* See platform.h: syscall(2) is not a cancellation point. */
ssize_t chopin__sys_read(int fd, void *buf, size_t n) {
    return syscall(SYS_read, fd, buf, n);
}

ssize_t chopin__sys_sendmsg(int fd, const struct msghdr *msg, int flags) {
    return syscall(SYS_sendmsg, fd, msg, flags);
}

ssize_t chopin__sys_send(int fd, const void *buf, size_t n, int flags) {
    return syscall(SYS_sendto, fd, buf, n, flags, NULL, 0);
}
#endif
