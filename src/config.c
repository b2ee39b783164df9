/* SPDX-License-Identifier: MIT */
/*
 * Configuration: defaults < code (chopin_options) < environment (CHOPIN_*).
 *
 * A zero in code means "the default" for every field; the all-ones value of a field
 * (pin = -1, CHOPIN_SHUTDOWN_NOW, CHOPIN_NO_BODY) asks for a real zero where zero is a
 * setting. The resolved options (struct chopin__config) hold what is in effect: no field
 * there means "default" any more.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>


/* No chopin.h will ever have a chopin_options this large: a bigger `size` is a field that
 * was never set (an uninitialised struct), not a newer program. */
#define OPTIONS_SIZE_MAX 4096

/* The library takes a field when it lies wholly within the caller's `size`. A field
 * appended into the tail padding of an older struct would lie within an older program's
 * size and be read from its padding bytes: keep the struct free of tail padding. Whoever
 * appends a field names it here. */
_Static_assert(sizeof(chopin_options) == offsetof(chopin_options, restart) + sizeof(int),
               "chopin_options must end without padding: append fields so that it does");

#define FIELD_SPAN(f) offsetof(chopin_options, f), sizeof(((chopin_options *)0)->f)

/* A numeric field: its variable, what 0 in code means, and the range of what may be in
 * effect. `zero_ok`: the field's all-ones value in code asks for a real 0. */
struct numeric {
    const char *field, *env;
    size_t offset, size;
    uint64_t def, min, max;
    bool zero_ok, is_signed;
};

#define NUM(f, env, def, min, max, zero_ok, is_signed) \
    {#f, env, FIELD_SPAN(f), def, min, max, zero_ok, is_signed}

static const struct numeric numerics[] = {
    NUM(workers, "CHOPIN_WORKERS", 0, 0, 4096, false, true), /* 0 in effect: one per CPU */
    NUM(pin, "CHOPIN_PIN", 1, 0, 1, true, true),
    /* 0 in effect: sized from the descriptor limit at start (chopin__config_slab_capacity) */
    NUM(slab_capacity, "CHOPIN_SLAB_CAPACITY", 0, 1, 10000000, false, false),
    NUM(keepalive_timeout_ms, "CHOPIN_KEEPALIVE_TIMEOUT_MS", 30000, 1, 86400000, false, false),
    NUM(header_timeout_ms, "CHOPIN_HEADER_TIMEOUT_MS", 10000, 1, 86400000, false, false),
    NUM(body_timeout_ms, "CHOPIN_BODY_TIMEOUT_MS", 30000, 1, 86400000, false, false),
    NUM(write_timeout_ms, "CHOPIN_WRITE_TIMEOUT_MS", 30000, 1, 86400000, false, false),
    NUM(shutdown_timeout_ms, "CHOPIN_SHUTDOWN_TIMEOUT_MS", 10000, 0, 86400000, true, false),
    NUM(max_request_line, "CHOPIN_MAX_REQUEST_LINE", 8192, 64, 1u << 20, false, false),
    NUM(max_header_bytes, "CHOPIN_MAX_HEADER_BYTES", 32768, 256, 1u << 24, false, false),
    NUM(max_headers, "CHOPIN_MAX_HEADERS", 64, 1, 10000, false, false),
    NUM(max_body_bytes, "CHOPIN_MAX_BODY_BYTES", 16u << 20, 0, 1ull << 40, true, false),
    NUM(buffer_size, "CHOPIN_BUFFER_SIZE", 16384, 4096, 1u << 24, false, false),
    NUM(sqpoll, "CHOPIN_SQPOLL", 0, 0, 1, false, true),
    NUM(sqpoll_idle_ms, "CHOPIN_SQPOLL_IDLE_MS", 1000, 1, 600000, false, false),
    NUM(ring_entries, "CHOPIN_RING_ENTRIES", 4096, 8, 32768, false, false),
    NUM(quiet, "CHOPIN_QUIET", 0, 0, 1, false, true),
    NUM(share_port, "CHOPIN_SHARE_PORT", 0, 0, 1, false, true),
    NUM(handler_timeout_ms, "CHOPIN_HANDLER_TIMEOUT_MS", 30000, 1, 86400000, false, false),
    NUM(max_deferred, "CHOPIN_MAX_DEFERRED", 16384, 1, 1u << 24, false, false),
    NUM(max_pending, "CHOPIN_MAX_PENDING", 16, 1, 1024, false, false),
    /* 0 in effect: one thread per worker (the pool is sized when the server starts) */
    NUM(offload_threads, "CHOPIN_OFFLOAD_THREADS", 0, 0, 1024, false, false),
    NUM(offload_queue, "CHOPIN_OFFLOAD_QUEUE", 1024, 1, 1u << 20, false, false),
    NUM(sse_heartbeat_ms, "CHOPIN_SSE_HEARTBEAT_MS", 15000, 100, 86400000, false, false),
    /* HTTP/2 (issue 20) */
    NUM(h2c, "CHOPIN_H2C", 0, 0, 1, false, false),
    NUM(h2c_upgrade, "CHOPIN_H2C_UPGRADE", 0, 0, 1, false, false),
    /* Behind a load balancer, restarts (issue 19) */
    NUM(proxy_timeout_ms, "CHOPIN_PROXY_TIMEOUT_MS", 5000, 1, 86400000, false, false),
    NUM(restart, "CHOPIN_RESTART", 1, 0, 1, true, true),
};

/* The fields that are not numbers, for the size rule. */
static const struct {
    size_t offset, size;
} others[] = {
    {FIELD_SPAN(backend)},     {FIELD_SPAN(server_name)}, {FIELD_SPAN(worker_init)},
    {FIELD_SPAN(worker_fini)}, {FIELD_SPAN(worker_arg)},
    /* logs (issue 19): named values and a path */
    {FIELD_SPAN(log_level)},   {FIELD_SPAN(access_log_format)}, {FIELD_SPAN(access_log)},
    /* behind a load balancer (issue 19) */
    {FIELD_SPAN(trusted_proxies)},
};

static const char *const backend_names[] = {"auto", "epoll", "io_uring", "kqueue"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

__attribute__((format(printf, 2, 3))) static void report(int *errors, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    chopin_log(CHOPIN_LOG_ERROR, "chopin: %s", line);
    (*errors)++;
}

static uint64_t field_get(const chopin_options *o, const struct numeric *f) {
    const char *p = (const char *)o + f->offset;
    if (f->size == sizeof(uint64_t)) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void field_set(chopin_options *o, const struct numeric *f, uint64_t v) {
    char *p = (char *)o + f->offset;
    if (f->size == sizeof(uint64_t)) {
        memcpy(p, &v, sizeof v);
    } else {
        uint32_t v32 = (uint32_t)v;
        memcpy(p, &v32, sizeof v32);
    }
}

static uint64_t all_ones(size_t size) { return size == sizeof(uint64_t) ? UINT64_MAX : UINT32_MAX; }

/* The value as the user wrote it, for messages: a signed field prints -1, not 4294967295. */
static long long as_written(const struct numeric *f, uint64_t v) {
    return f->is_signed ? (long long)(int32_t)(uint32_t)v : (long long)v;
}

void chopin_options_init(chopin_options *o, size_t size) {
    if (!o || size < sizeof o->size || size > OPTIONS_SIZE_MAX)
        return; /* nothing to write safely; the size check at start reports it */
    chopin_options d = {.size = size, .backend = CHOPIN_BACKEND_AUTO, .server_name = "chopin"};
    for (size_t i = 0; i < NELEM(numerics); i++)
        field_set(&d, &numerics[i], numerics[i].def);
    size_t known = size < sizeof d ? size : sizeof d;
    memcpy(o, &d, known);
    if (size > known) /* a newer program's fields this library does not know: their default */
        memset((char *)o + known, 0, size - known);
}

static bool all_zero(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void forget_field(chopin_options *o, size_t offset, size_t size, size_t given) {
    if (offset + size > given)
        memset((char *)o + offset, 0, size);
}

/* Copies the fields of `in` that lie within in->size; the others stay 0 (default). */
static int copy_options(chopin_options *out, const chopin_options *in) {
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    if (!in)
        return 0;
    size_t size = in->size;
    int errors = 0;
    if (size < sizeof in->size || size > OPTIONS_SIZE_MAX) {
        report(&errors, "options.size = %zu: not the size of a chopin_options; set it with "
                        "chopin_options_init(&o, sizeof o), chopin_options_default() or "
                        "CHOPIN_OPTIONS_INIT", size);
        return -EINVAL;
    }
    if (size > sizeof *out && !all_zero((const char *)in + sizeof *out, size - sizeof *out)) {
        report(&errors, "options.size = %zu: the program sets options this library (%zu "
                        "bytes of options) does not know; it was built against a newer "
                        "chopin.h", size, sizeof *out);
        return -EINVAL;
    }
    memcpy(out, in, size < sizeof *out ? size : sizeof *out);
    for (size_t i = 0; i < NELEM(numerics); i++)
        forget_field(out, numerics[i].offset, numerics[i].size, size);
    for (size_t i = 0; i < NELEM(others); i++)
        forget_field(out, others[i].offset, others[i].size, size);
    out->size = sizeof *out;
    return 0;
}

/* A plain unsigned decimal: digits only (no sign, no space), no overflow. */
static int parse_decimal(const char *s, uint64_t *out) {
    uint64_t v = 0;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

static const char *env_value(const char *name) {
    const char *s = getenv(name);
    return s && *s ? s : NULL;
}

/* The environment's value when set, else the code's (0: default; all-ones: a real 0). */
static void resolve_numeric(chopin_options *o, const struct numeric *f, int *errors) {
    uint64_t v = field_get(o, f);
    const char *s = env_value(f->env);
    if (s) {
        if (parse_decimal(s, &v) < 0 || v < f->min || v > f->max) {
            report(errors, "%s=\"%s\": expected a whole number from %llu to %llu", f->env, s,
                   (unsigned long long)f->min, (unsigned long long)f->max);
            v = f->def; /* so that the rules between fields still see a sane value */
        }
    } else if (v == 0) {
        v = f->def;
    } else if (f->zero_ok && v == all_ones(f->size)) {
        v = 0;
    } else if (v < f->min || v > f->max) {
        report(errors, "options.%s = %lld: expected %llu to %llu%s, or 0 for the default (%s "
                       "overrides it)", f->field, as_written(f, v),
               (unsigned long long)f->min, (unsigned long long)f->max,
               f->zero_ok ? " (all ones, as chopin.h names it, for a real 0)" : "", f->env);
        v = f->def;
    }
    field_set(o, f, v);
}

static void resolve_backend(struct chopin__config *cfg, int *errors) {
    const char *s = env_value("CHOPIN_BACKEND");
    if (!s) {
        if ((unsigned)cfg->opt.backend >= NELEM(backend_names)) {
            report(errors, "options.backend = %d: not a chopin_backend", (int)cfg->opt.backend);
            cfg->opt.backend = CHOPIN_BACKEND_AUTO;
        }
        return;
    }
    if (strcmp(s, "uring") == 0)
        s = "io_uring";
    for (size_t i = 0; i < NELEM(backend_names); i++) {
        if (strcmp(s, backend_names[i]) == 0) {
            cfg->opt.backend = (chopin_backend)i;
            cfg->backend_from_env = 1;
            return;
        }
    }
    report(errors, "CHOPIN_BACKEND=\"%s\": expected auto, epoll, io_uring or kqueue", s);
    cfg->opt.backend = CHOPIN_BACKEND_AUTO;
}

static void resolve_simd(enum chopin__simd *out, int *errors) {
    static const char *const names[] = {"auto", "scalar", "sse2", "avx2"};
    const char *s = env_value("CHOPIN_SIMD");
    *out = CHOPIN__SIMD_AUTO;
    if (!s)
        return;
    for (size_t i = 0; i < NELEM(names); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum chopin__simd)i;
            return;
        }
    }
    report(errors, "CHOPIN_SIMD=\"%s\": expected auto, scalar, sse2 or avx2", s);
}

/* NULL: "Server: chopin"; "": no Server header. The name is copied: the options need not
 * outlive the start. */
static void resolve_server_name(struct chopin__config *cfg, int *errors) {
    const char *name = cfg->opt.server_name ? cfg->opt.server_name : "chopin";
    cfg->opt.server_name = NULL;
    if (!*name)
        return;
    int n = snprintf(cfg->server_header, sizeof cfg->server_header, "Server: %s\r\n", name);
    if (n < 0 || (size_t)n >= sizeof cfg->server_header || strpbrk(name, "\r\n")) {
        cfg->server_header[0] = '\0';
        report(errors, "options.server_name: longer than %zu bytes or holds CR/LF",
               sizeof cfg->server_header - sizeof "Server: \r\n");
        return;
    }
    cfg->server_header_len = (uint32_t)n;
}

/* A field spelled as one of `names` (index 1.. in code; 0: `def`) or by `env`. */
static void resolve_named(uint32_t *field, const char *env, const char *what,
                          const char *const *names, uint32_t count, uint32_t def, int *errors) {
    const char *s = env_value(env);
    if (!s) {
        if (*field == 0)
            *field = def;
        else if (*field >= count) {
            report(errors, "options.%s = %u: expected 1 to %u, or 0 for the default (%s "
                           "overrides it)", what, *field, count - 1, env);
            *field = def;
        }
        return;
    }
    for (uint32_t i = 1; i < count; i++) {
        if (strcmp(s, names[i]) == 0) {
            *field = i;
            return;
        }
    }
    char list[128] = "";
    for (uint32_t i = 1; i < count; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i > 1 ? ", " : "",
                 names[i]);
    report(errors, "%s=\"%s\": expected one of %s", env, s, list);
    *field = def;
}

/* Levels and formats (chopin.h numbers them from 1; 0 in code is the default). */
static void resolve_logs(struct chopin__config *cfg, int *errors) {
    static const char *const levels[] = {"", "error", "warn", "info", "debug"};
    static const char *const formats[] = {"", "combined", "json"};
    resolve_named(&cfg->opt.log_level, "CHOPIN_LOG_LEVEL", "log_level", levels, NELEM(levels),
                  CHOPIN_LOG_INFO, errors);
    resolve_named(&cfg->opt.access_log_format, "CHOPIN_ACCESS_LOG_FORMAT", "access_log_format",
                  formats, NELEM(formats), CHOPIN_ACCESS_LOG_COMBINED, errors);
    const char *path = env_value("CHOPIN_ACCESS_LOG");
    if (!path)
        path = cfg->opt.access_log ? cfg->opt.access_log : "";
    if (strlen(path) >= sizeof cfg->access_path) {
        report(errors, "access log path (CHOPIN_ACCESS_LOG, options.access_log): longer than "
                       "%zu bytes", sizeof cfg->access_path - 1);
        path = "";
    }
    strcpy(cfg->access_path, path);
    cfg->opt.access_log = cfg->access_path[0] ? cfg->access_path : NULL;
}

/* The trusted proxies, from CHOPIN_TRUSTED_PROXIES or the code; copied at start. */
static void resolve_trusted_proxies(struct chopin__config *cfg, int *errors) {
    const char *env = env_value("CHOPIN_TRUSTED_PROXIES");
    const char *list = env ? env : cfg->opt.trusted_proxies;
    char why[64];
    cfg->opt.trusted_proxies = NULL;
    if (chopin__trust_parse(&cfg->trusted, list, why, sizeof why) < 0)
        report(errors, "%s: \"%s\" is not an address or CIDR block (10.0.0.0/8, ::1; at "
                       "most %d)", env ? "CHOPIN_TRUSTED_PROXIES" : "options.trusted_proxies",
               why, CHOPIN__TRUST_MAX);
}

/* Rules between fields (a field that was invalid on its own holds its default here). */
static void check_relations(const chopin_options *o, int *errors) {
    if (o->max_request_line > o->max_header_bytes)
        report(errors, "max_request_line (CHOPIN_MAX_REQUEST_LINE, options.max_request_line) "
                       "= %u must not exceed max_header_bytes (CHOPIN_MAX_HEADER_BYTES, "
                       "options.max_header_bytes) = %u: the request line is part of the head",
               o->max_request_line, o->max_header_bytes);
}

int chopin__config_resolve(struct chopin__config *cfg, const chopin_options *in) {
    memset(cfg, 0, sizeof *cfg);
    cfg->access_fd = -1;
    int rc = copy_options(&cfg->opt, in);
    if (rc < 0)
        return rc;
    int errors = 0;
    for (size_t i = 0; i < NELEM(numerics); i++)
        resolve_numeric(&cfg->opt, &numerics[i], &errors);
    resolve_backend(cfg, &errors);
    resolve_simd(&cfg->simd, &errors);
    resolve_server_name(cfg, &errors);
    resolve_logs(cfg, &errors);
    resolve_trusted_proxies(cfg, &errors);
    check_relations(&cfg->opt, &errors);
    if (errors)
        return -EINVAL;
    cfg->limits.max_request_line = cfg->opt.max_request_line;
    cfg->limits.max_header_bytes = cfg->opt.max_header_bytes;
    cfg->limits.max_headers = cfg->opt.max_headers;
    return 0;
}

/* Descriptors left to everything but connections: listeners, wake-ups and pollers, stdio,
 * files being sent, whatever the handlers open. */
#define SLAB_FD_RESERVE 128
/* Bounds on a capacity sized from the descriptor limit: a tiny limit still serves a few
 * clients (accept's EMFILE handling takes over), a huge one does not map slots for more
 * connections than a worker can usefully hold. */
#define SLAB_AUTO_MIN 64
#define SLAB_AUTO_MAX 100000

uint32_t chopin__slab_capacity_for(uint64_t nofile, int nworkers) {
    uint64_t share = nofile > SLAB_FD_RESERVE ? (nofile - SLAB_FD_RESERVE) / (uint64_t)nworkers : 0;
    if (share < SLAB_AUTO_MIN)
        return SLAB_AUTO_MIN;
    return share > SLAB_AUTO_MAX ? SLAB_AUTO_MAX : (uint32_t)share;
}

void chopin__config_slab_capacity(struct chopin__config *cfg, int nworkers) {
    if (cfg->opt.slab_capacity)
        return;
    struct rlimit lim;
    uint64_t nofile = getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY
                          ? (uint64_t)lim.rlim_cur
                          : UINT64_MAX;
    cfg->opt.slab_capacity = chopin__slab_capacity_for(nofile, nworkers > 0 ? nworkers : 1);
}
