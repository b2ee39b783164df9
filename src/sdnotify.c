/* SPDX-License-Identifier: MIT */
/* sd_notify without libsystemd (sdnotify.h). */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

int chopin__sd_notify(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = path ? strlen(path) : 0;
    if (len == 0)
        return -ENOENT;
    if (len >= sizeof sun.sun_path || (path[0] != '/' && path[0] != '@'))
        return -EINVAL;
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@')
        sun.sun_path[0] = '\0'; /* the abstract namespace (Linux) */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                                 (path[0] == '@' ? 0 : 1));
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, alen);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    return rc;
}

uint64_t chopin__sd_watchdog_usec(void) {
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    char *end;
    if (!usec || !*usec)
        return 0;
    if (pid && *pid && strtol(pid, &end, 10) != (long)getpid())
        return 0;
    unsigned long long v = strtoull(usec, &end, 10);
    return *end ? 0 : (uint64_t)v;
}
