/* SPDX-License-Identifier: MIT */
/*
 * Opening a file named by a relative path inside a directory, with every way out
 * refused: the primitive behind chopin_res_file_at, for paths that come from a request.
 */
#ifndef CHOPIN_API_OPEN_BENEATH_H
#define CHOPIN_API_OPEN_BENEATH_H

#include <stddef.h>

/* Follow symbolic links that resolve inside the directory (openat2 only: the fallback
 * walk refuses every link, with or without this flag). */
#define CHOPIN__BENEATH_SYMLINKS 0x1u

/**
 * Checks the shape of path[0..len) and copies it, NUL-terminated, into buf[cap]. Refused
 * with -EXDEV: a NUL byte, a leading '/', a backslash (a separator on other systems, and
 * a way to hide ".." from checks that look for '/'), a ".." component. -ENOENT for an
 * empty path, -ENAMETOOLONG when it does not fit.
 */
int chopin__beneath_path(char *buf, size_t cap, const char *path, size_t len);

/**
 * Opens `path` (checked by chopin__beneath_path) under `dirfd` for reading, non-blocking,
 * close-on-exec. The kernel keeps the lookup beneath dirfd: openat2 with RESOLVE_BENEATH
 * and RESOLVE_NO_MAGICLINKS (and RESOLVE_NO_SYMLINKS without CHOPIN__BENEATH_SYMLINKS);
 * where openat2 is missing or filtered, chopin__open_beneath_walk. Returns the descriptor
 * or a negative errno (-EXDEV for an escape, -ELOOP for a refused link).
 */
int chopin__open_beneath(int dirfd, const char *path, unsigned flags);

/** The fallback: one openat per component with O_NOFOLLOW, "." skipped, ".." refused
 *  (-EXDEV), any symbolic link refused (-ELOOP). Same result as chopin__open_beneath. */
int chopin__open_beneath_walk(int dirfd, const char *path);

#endif
