/* SPDX-License-Identifier: MIT */
/*
 * The error log. A line is formatted whole and leaves in one write(2) on stderr: stdio's
 * stderr is unbuffered, so fprintf could split one message into several writes, which
 * another thread's line may land between.
 */
#include "chopin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024

static int level_in_force = CHOPIN_LOG_INFO;

void chopin_log_set_level(chopin_log_level level) {
    if (level >= CHOPIN_LOG_ERROR && level <= CHOPIN_LOG_DEBUG)
        __atomic_store_n(&level_in_force, (int)level, __ATOMIC_RELAXED);
}

static void vlog(chopin_log_level level, const char *fmt, va_list ap) {
    if ((int)level > __atomic_load_n(&level_in_force, __ATOMIC_RELAXED))
        return;
    char line[LINE_MAX_BYTES];
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2; /* cut, but still one line */
    line[n++] = '\n';
    int saved = errno; /* a caller may print errno's text after this */
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = write(STDERR_FILENO, line + off, (size_t)n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    errno = saved;
}

void chopin_log(chopin_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}
