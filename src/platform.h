/* SPDX-License-Identifier: MIT */
/*
 * Portability: every place where Linux, FreeBSD and macOS disagree, behind one helper or
 * macro each, so the engine and the backends need no #ifdef of their own for them.
 * Linux-only headers (sys/eventfd.h, sys/sendfile.h) appear only in platform.c, under
 * __linux__; sys/epoll.h and liburing.h only in the Linux backends, which the Makefile
 * builds on Linux alone. docs/kqueue.md has the table of what each platform gets.
 */
#ifndef CHOPIN_PLATFORM_H
#define CHOPIN_PLATFORM_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

/* ----- send flags ----------------------------------------------------------------------- */

/* Linux and the BSDs have MSG_NOSIGNAL; where it is missing (older macOS), accepted
 * sockets get SO_NOSIGPIPE instead (chopin__accept). */
#ifdef MSG_NOSIGNAL
#define CHOPIN__MSG_NOSIGNAL MSG_NOSIGNAL
#else
#define CHOPIN__MSG_NOSIGNAL 0
#endif
/* Linux only: lets the kernel merge a response head with the file range that follows. */
#ifdef MSG_MORE
#define CHOPIN__MSG_MORE MSG_MORE
#else
#define CHOPIN__MSG_MORE 0
#endif

/* ----- socket I/O on the hot path -------------------------------------------------------- */

/* glibc's read and sendmsg are thread-cancellation points: around the system call each
 * switches asynchronous cancellation on and off, two atomic read-modify-writes. Workers
 * are never cancelled, so on Linux the hot path enters the kernel through syscall(2)
 * instead (perf, /plaintext at 256 connections: the two wrappers took 4.8% of the
 * server's CPU, 1.7% of it in the cancellation switch). */
#if defined(__linux__)
ssize_t chopin__sys_read(int fd, void *buf, size_t n);
ssize_t chopin__sys_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t chopin__sys_send(int fd, const void *buf, size_t n, int flags);
#else
#define chopin__sys_read read
#define chopin__sys_sendmsg sendmsg
#define chopin__sys_send send
#endif

/* ----- clocks --------------------------------------------------------------------------- */

/* The wall clock for the Date header: one-second precision is plenty, so take the cheap
 * tick-granular clock where there is one (Linux _COARSE, FreeBSD _FAST). */
#if defined(CLOCK_REALTIME_COARSE)
#define CHOPIN__CLOCK_WALL_COARSE CLOCK_REALTIME_COARSE
#elif defined(CLOCK_REALTIME_FAST)
#define CHOPIN__CLOCK_WALL_COARSE CLOCK_REALTIME_FAST
#else
#define CHOPIN__CLOCK_WALL_COARSE CLOCK_REALTIME
#endif

/* ----- backends ------------------------------------------------------------------------- */

/* The backend every build of a platform has: "auto" picks it when nothing better is
 * available, and a backend that cannot start falls back to it. */
#if defined(__linux__)
#define CHOPIN__BASE_BACKEND chopin__epoll_backend
#elif defined(CHOPIN_HAVE_KQUEUE)
#define CHOPIN__BASE_BACKEND chopin__kqueue_backend
#else
#error "Chopin needs epoll (Linux) or kqueue (macOS, the BSDs: build with CHOPIN_HAVE_KQUEUE)"
#endif

/* ----- waking a worker ------------------------------------------------------------------ */

/*
 * chopin_server_stop wakes each worker through its wake descriptor (worker->wake_fd):
 *   - Linux: an eventfd. Backends watch it for input; chopin__wake_clear reads it empty.
 *   - kqueue platforms: the worker's kqueue itself, created with an EVFILT_USER event
 *     (EV_CLEAR) that chopin__wake_signal triggers. The kqueue backend runs its loop on
 *     this kqueue, so a wake costs no descriptor and no read. A trigger sent before the
 *     worker started waits in the kqueue, so no wake is lost.
 * CHOPIN_WAKE_EVFILT_USER selects the kqueue form on Linux too (over libkqueue), so that
 * `make test-kqueue` runs the BSD path; only the kqueue backend can serve such a build.
 */
#if defined(__linux__) && !defined(CHOPIN_WAKE_EVFILT_USER)
#define CHOPIN__WAKE_EVENTFD 1
#elif defined(CHOPIN_HAVE_KQUEUE)
#define CHOPIN__WAKE_IS_KQUEUE 1
#define CHOPIN__WAKE_IDENT 1 /* ident of the EVFILT_USER event */
#else
#error "no way to wake a worker on this platform: needs eventfd or kqueue"
#endif

/** A new wake descriptor (close-on-exec), or -errno. */
int chopin__wake_open(void);
/** Wakes the worker owning `fd`; any thread may call it. Async-signal-safe as
 *  chopin_server_stop promises: a write(2) on Linux, a kevent(2) system call on the BSDs
 *  (but not over libkqueue, which takes a mutex: a test-only setup). */
void chopin__wake_signal(int fd);
/** Consumes pending wakes (an eventfd's counter; nothing to do for EVFILT_USER, whose
 *  EV_CLEAR resets it when the event is delivered). */
void chopin__wake_clear(int fd);

/* ----- sockets -------------------------------------------------------------------------- */

/* The option that lets every worker bind its own listener to the port *and* spreads new
 * connections across them: SO_REUSEPORT on Linux (3.9), SO_REUSEPORT_LB on FreeBSD (12),
 * where plain SO_REUSEPORT hands every connection to one listener. macOS has only that
 * plain kind (docs/kqueue.md). */
#ifdef SO_REUSEPORT_LB
#define CHOPIN__SO_REUSEPORT SO_REUSEPORT_LB
#else
#define CHOPIN__SO_REUSEPORT SO_REUSEPORT
#endif

/** A non-blocking, close-on-exec stream socket of `family`, or -errno. */
int chopin__socket_stream(int family);
/** Accepts a connection as a non-blocking, close-on-exec socket (accept4 where it
 *  exists, accept + fcntl on macOS) with SIGPIPE suppressed where sends cannot say
 *  MSG_NOSIGNAL. Returns the fd, or -1 with errno as accept(2) sets it. */
int chopin__accept(int listen_fd);
/** Listener options to set before bind, all best effort (a missing one costs speed, not
 *  correctness): TCP_DEFER_ACCEPT (Linux), TCP_FASTOPEN (a queue of `fastopen_queue` on
 *  Linux, on/off elsewhere), SO_NOSIGPIPE (inherited by accepted sockets on the BSDs). */
void chopin__listener_options(int fd, int fastopen_queue);
/** Listener options that need a listening socket: the "dataready" accept filter on
 *  FreeBSD and NetBSD (needs the accf_data module; best effort). */
void chopin__listener_listening(int fd);

/** Sends up to `len` (> 0) bytes of `file_fd` from offset `off` to socket `sock` with
 *  each platform's sendfile (pread + send where there is none). Returns the bytes sent
 *  (> 0; a partial send before EAGAIN counts), 0 when the file ended before `off` (it
 *  shrank), or -1 with errno (EAGAIN: the socket is full and nothing was sent). */
ssize_t chopin__sendfile(int sock, int file_fd, uint64_t off, size_t len);

/* ----- threads and CPUs ----------------------------------------------------------------- */

#define CHOPIN__MAX_CPUS 1024

/** The CPUs this process may run on (taskset, cgroups, cpuset), in order, at most `cap`;
 *  returns how many (0 when unknown). Where the platform cannot say (macOS), the online
 *  CPUs 0..n-1. */
int chopin__cpus_allowed(int *cpus, int cap);
/** Pins the calling thread to `cpu`: 0, or -errno; -ENOTSUP where the platform has no
 *  pinning (macOS: thread affinity there is a hint between threads, not a CPU). */
int chopin__thread_pin(int cpu);
/** Names the calling thread for top and debuggers (best effort, at most 15 bytes). */
void chopin__thread_name(const char *name);

/** Waits at most `ms` for one of the signals in `set` (blocked by the caller) and takes
 *  it: the signal number, or 0 when none came. sigtimedwait where it exists; polling
 *  sigpending where it does not (macOS, OpenBSD). */
int chopin__signal_wait(const sigset_t *set, unsigned ms);

#endif
