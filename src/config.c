/* Configuration: defaults < code (chopin_options) < environment (CHOPIN_*). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

chopin_options chopin_options_default(void) {
    return (chopin_options){
        .workers = 0,
        .pin = 1,
        .backend = CHOPIN_BACKEND_AUTO,
        .slab_capacity = 10000,
        .keepalive_timeout_ms = 30000,
        .header_timeout_ms = 10000,
        .body_timeout_ms = 30000,
        .write_timeout_ms = 30000,
        .shutdown_timeout_ms = 10000,
        .max_request_line = 8192,
        .max_header_bytes = 32768,
        .max_headers = 64,
        .max_body_bytes = 16u << 20,
        .buffer_size = 16384,
        .sqpoll = 0,
        .sqpoll_idle_ms = 1000,
        .ring_entries = 4096,
        .server_name = "chopin",
    };
}

/* Parses an unsigned decimal in [min, max] from the environment; 0 when unset, 1 when
 * set, -EINVAL (after a message) when malformed. */
static int env_u64(const char *name, uint64_t min, uint64_t max, uint64_t *out) {
    const char *s = getenv(name);
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || *s == '-' || v < min || v > max) {
        fprintf(stderr, "chopin: %s=%s: expected a number from %llu to %llu\n", name, s,
                (unsigned long long)min, (unsigned long long)max);
        return -EINVAL;
    }
    *out = v;
    return 1;
}

#define ENV_FIELD(name, field, min, max)                                                   \
    do {                                                                                   \
        uint64_t v_;                                                                       \
        int rc_ = env_u64(name, min, max, &v_);                                            \
        if (rc_ < 0)                                                                       \
            return rc_;                                                                    \
        if (rc_ > 0)                                                                       \
            field = (__typeof__(field))v_;                                                 \
    } while (0)

static int env_backend(chopin_backend *out) {
    const char *s = getenv("CHOPIN_BACKEND");
    if (!s || !*s)
        return 0;
    static const struct {
        const char *name;
        chopin_backend value;
    } names[] = {{"auto", CHOPIN_BACKEND_AUTO},
                 {"epoll", CHOPIN_BACKEND_EPOLL},
                 {"io_uring", CHOPIN_BACKEND_IO_URING},
                 {"uring", CHOPIN_BACKEND_IO_URING},
                 {"kqueue", CHOPIN_BACKEND_KQUEUE}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].value;
            return 0;
        }
    }
    fprintf(stderr, "chopin: CHOPIN_BACKEND=%s: expected auto, epoll, io_uring or kqueue\n", s);
    return -EINVAL;
}

static int env_simd(enum chopin__simd *out) {
    static const char *const names[] = {"auto", "scalar", "sse2", "avx2"};
    const char *s = getenv("CHOPIN_SIMD");
    *out = CHOPIN__SIMD_AUTO;
    if (!s || !*s)
        return 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum chopin__simd)i;
            return 0;
        }
    }
    fprintf(stderr, "chopin: CHOPIN_SIMD=%s: expected auto, scalar, sse2 or avx2\n", s);
    return -EINVAL;
}

static int apply_env(chopin_options *o) {
    ENV_FIELD("CHOPIN_WORKERS", o->workers, 0, 4096);
    ENV_FIELD("CHOPIN_PIN", o->pin, 0, 1);
    ENV_FIELD("CHOPIN_SLAB_CAPACITY", o->slab_capacity, 1, 10000000);
    ENV_FIELD("CHOPIN_KEEPALIVE_TIMEOUT_MS", o->keepalive_timeout_ms, 1, 86400000);
    ENV_FIELD("CHOPIN_HEADER_TIMEOUT_MS", o->header_timeout_ms, 1, 86400000);
    ENV_FIELD("CHOPIN_BODY_TIMEOUT_MS", o->body_timeout_ms, 1, 86400000);
    ENV_FIELD("CHOPIN_WRITE_TIMEOUT_MS", o->write_timeout_ms, 1, 86400000);
    ENV_FIELD("CHOPIN_SHUTDOWN_TIMEOUT_MS", o->shutdown_timeout_ms, 0, 86400000);
    ENV_FIELD("CHOPIN_MAX_REQUEST_LINE", o->max_request_line, 64, 1u << 20);
    ENV_FIELD("CHOPIN_MAX_HEADER_BYTES", o->max_header_bytes, 256, 1u << 24);
    ENV_FIELD("CHOPIN_MAX_HEADERS", o->max_headers, 1, 10000);
    ENV_FIELD("CHOPIN_MAX_BODY_BYTES", o->max_body_bytes, 0, 1ull << 40);
    ENV_FIELD("CHOPIN_BUFFER_SIZE", o->buffer_size, 4096, 1u << 24);
    ENV_FIELD("CHOPIN_SQPOLL", o->sqpoll, 0, 1);
    ENV_FIELD("CHOPIN_SQPOLL_IDLE_MS", o->sqpoll_idle_ms, 1, 600000);
    ENV_FIELD("CHOPIN_RING_ENTRIES", o->ring_entries, 8, 32768);
    ENV_FIELD("CHOPIN_QUIET", o->quiet, 0, 1);
    return env_backend(&o->backend);
}

static int validate(const chopin_options *o) {
    const char *bad = NULL;
    if (o->workers < 0)
        bad = "workers must be >= 0";
    else if (o->slab_capacity == 0)
        bad = "slab_capacity must be >= 1";
    else if (o->buffer_size < 4096)
        bad = "buffer_size must be >= 4096";
    else if (o->max_headers == 0)
        bad = "max_headers must be >= 1";
    else if (o->max_request_line > o->max_header_bytes)
        bad = "max_request_line must not exceed max_header_bytes";
    else if (!o->keepalive_timeout_ms || !o->header_timeout_ms || !o->body_timeout_ms ||
             !o->write_timeout_ms)
        bad = "timeouts must be >= 1 ms";
    if (!bad)
        return 0;
    fprintf(stderr, "chopin: invalid options: %s\n", bad);
    return -EINVAL;
}

int chopin__config_resolve(struct chopin__config *cfg, const chopin_options *in) {
    memset(cfg, 0, sizeof *cfg);
    cfg->opt = in ? *in : chopin_options_default();
    int rc = apply_env(&cfg->opt);
    if (rc < 0 || (rc = env_simd(&cfg->simd)) < 0 || (rc = validate(&cfg->opt)) < 0)
        return rc;
    const chopin_options *o = &cfg->opt;
    cfg->limits.max_request_line = o->max_request_line;
    cfg->limits.max_header_bytes = o->max_header_bytes;
    cfg->limits.max_headers = o->max_headers;
    if (o->server_name && *o->server_name) {
        int n = snprintf(cfg->server_header, sizeof cfg->server_header, "Server: %s\r\n",
                         o->server_name);
        if (n < 0 || (size_t)n >= sizeof cfg->server_header || strpbrk(o->server_name, "\r\n")) {
            fprintf(stderr, "chopin: invalid options: server_name too long or has CR/LF\n");
            return -EINVAL;
        }
        cfg->server_header_len = (uint32_t)n;
    }
    return 0;
}
