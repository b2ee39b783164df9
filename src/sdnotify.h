/* SPDX-License-Identifier: MIT */
/*
 * systemd's notification protocol without libsystemd (sd_notify(3)): a datagram of
 * "KEY=value" lines to the AF_UNIX socket named by NOTIFY_SOCKET (a path, or an abstract
 * name after '@'). The server says READY=1 once every worker listens, STOPPING=1 when it
 * starts to drain, and WATCHDOG=1 every WATCHDOG_USEC / 2 while every worker answers a
 * posted heartbeat (a stuck worker lets systemd's watchdog fire). Nothing happens without
 * NOTIFY_SOCKET.
 */
#ifndef CHOPIN_SDNOTIFY_H
#define CHOPIN_SDNOTIFY_H

#include <stdint.h>

/** Sends `state` ("READY=1\nSTATUS=...") to NOTIFY_SOCKET. 0, -ENOENT without one, or
 *  -errno. Async-signal-safe apart from getenv. */
int chopin__sd_notify(const char *state);

/** The watchdog interval asked for (WATCHDOG_USEC, for this process when WATCHDOG_PID
 *  names one), in microseconds; 0 for none. */
uint64_t chopin__sd_watchdog_usec(void);

#endif
