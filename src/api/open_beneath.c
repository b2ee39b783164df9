/* SPDX-License-Identifier: MIT */
/*
 * Opening beneath a directory (see open_beneath.h). Checking a path's text alone is not
 * enough: a symbolic link inside the root can point anywhere, and a rename can race a
 * check. So the kernel resolves the path under rules that make escapes fail.
 */
#include "api/open_beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#include <sys/syscall.h>
#ifdef SYS_openat2
#define HAVE_OPENAT2 1
#endif
#endif
#endif

/* Read-only, never blocking on a FIFO, never becoming the controlling terminal. */
#define READ_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

/* A directory opened only to look up names in it (no read permission needed). */
#ifdef O_PATH
#define LOOKUP_FLAGS (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#else
#define LOOKUP_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#endif

static int is_dotdot(const char *c, size_t n)
{
    return n == 2 && c[0] == '.' && c[1] == '.';
}

int chopin__beneath_path(char *buf, size_t cap, const char *path, size_t len)
{
    if (!path || len == 0)
        return -ENOENT;
    if (len >= cap)
        return -ENAMETOOLONG;
    if (path[0] == '/' || memchr(path, '\0', len) || memchr(path, '\\', len))
        return -EXDEV;
    for (size_t i = 0; i < len;) {
        const char *slash = memchr(path + i, '/', len - i);
        size_t n = slash ? (size_t)(slash - (path + i)) : len - i;
        if (is_dotdot(path + i, n))
            return -EXDEV;
        i += n + 1;
    }
    memcpy(buf, path, len);
    buf[len] = '\0';
    return 0;
}

/* O_NOFOLLOW on a link fails with ELOOP on Linux and EMLINK on FreeBSD. */
static int open_error(int err)
{
    return err == EMLINK ? -ELOOP : -err;
}

int chopin__open_beneath_walk(int dirfd, const char *path)
{
    char name[PATH_MAX];
    int cur = dirfd;
    const char *p = path;
    for (;;) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        const char *rest = p + n;
        while (*rest == '/')
            rest++;
        int last = *rest == '\0';
        int fd;
        if (n == 0 || (n == 1 && p[0] == '.')) {
            if (!last) {
                p = rest;
                continue;
            }
            fd = openat(cur, ".", READ_FLAGS); /* "", "." or "a/.": the directory itself */
        } else if (is_dotdot(p, n) || n >= sizeof name) {
            fd = -1;
            errno = n >= sizeof name ? ENAMETOOLONG : EXDEV;
        } else {
            memcpy(name, p, n);
            name[n] = '\0';
            fd = openat(cur, name, last ? READ_FLAGS | O_NOFOLLOW : LOOKUP_FLAGS);
        }
        int err = errno;
        if (cur != dirfd)
            close(cur);
        if (fd < 0)
            return open_error(err);
        if (last)
            return fd;
        cur = fd;
        p = rest;
    }
}

#ifdef HAVE_OPENAT2
/* Set once openat2 proved missing (ENOSYS before Linux 5.6, E2BIG for an older struct)
 * or filtered (container seccomp profiles answer EPERM): then every call walks. */
static int openat2_unusable;

static int open_openat2(int dirfd, const char *path, unsigned flags)
{
    struct open_how how = {
        .flags = READ_FLAGS,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
                   (flags & CHOPIN__BENEATH_SYMLINKS ? 0 : RESOLVE_NO_SYMLINKS),
    };
    /* EAGAIN: a rename or mount raced the lookup, which the kernel refuses to guess
     * about under RESOLVE_BENEATH; a few retries, then the error stands. */
    for (int tries = 0;; tries++) {
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN || tries == 3)
            return -errno;
    }
}
#endif

int chopin__open_beneath(int dirfd, const char *path, unsigned flags)
{
#ifdef HAVE_OPENAT2
    if (!__atomic_load_n(&openat2_unusable, __ATOMIC_RELAXED)) {
        int fd = open_openat2(dirfd, path, flags);
        if (fd != -ENOSYS && fd != -EPERM && fd != -E2BIG)
            return fd;
        __atomic_store_n(&openat2_unusable, 1, __ATOMIC_RELAXED);
    }
#endif
    (void)flags;
    return chopin__open_beneath_walk(dirfd, path);
}
