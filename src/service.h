/* SPDX-License-Identifier: MIT */
/*
 * The server as a service (docs/operations.md, "systemd" and "Restarts"): the readiness
 * and stop notifications and the watchdog (sdnotify.h), and the restart that hands the
 * listening sockets to a new copy of the program, the way systemd hands them at socket
 * activation (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES).
 */
#ifndef CHOPIN_SERVICE_H
#define CHOPIN_SERVICE_H

#include <signal.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "chopin.h"

struct chopin__service;

/**
 * The server listens: says READY=1 (with MAINPID, and `status`) to NOTIFY_SOCKET, tells
 * the process that started this one by a restart (CHOPIN_READY_FD), and, with
 * NOTIFY_SOCKET, starts a thread that sends WATCHDOG=1 while every worker answers its
 * heartbeat (when WATCHDOG_USEC asks for it; `workers`, n of them, copied) and
 * STOPPING=1 once *stop is set. *out is
 * NULL when no thread was needed. 0 or -errno (the thread could not start).
 */
int chopin__service_start(struct chopin__service **out, chopin_worker *const *workers, int n,
                          atomic_int *stop, const char *status);
/** The sockets went to a new process: the stop that follows is no service stop. */
void chopin__service_handed_over(struct chopin__service *svc);
/** Ends the thread (after *stop was set) and frees. NULL: nothing. */
void chopin__service_end(struct chopin__service *svc);

/* A listening socket handed to the new process, with the index of its listener (its
 * name there: "chopin-<listener>"). At most CHOPIN__HANDOVER_MAX. */
#define CHOPIN__HANDOVER_MAX 1024
struct chopin__handover {
    int fd;
    int listener;
};

/**
 * Starts the program again (the file /proc/self/exe names now: a new build installed over
 * it runs), with the same arguments and environment, the sockets `fds` as descriptors
 * 3.. (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES), `mask` as its signal mask, and waits (at
 * most `wait_ms`) for it to say that it listens. 0 with *child set: the caller may drain
 * and leave. -errno otherwise (after saying why on stderr): the new process is gone and
 * this one goes on serving. Linux only (-ENOTSUP elsewhere).
 */
int chopin__restart_exec(const struct chopin__handover *fds, int n, const sigset_t *mask,
                         int wait_ms, pid_t *child);

#endif
