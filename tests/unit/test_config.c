/* SPDX-License-Identifier: MIT */
/*
 * Configuration: zero means default for every field, the named zeros, the size rule that
 * lets chopin_options grow, and the environment: strict numbers, every invalid value
 * reported with its name, an explicit backend that is not available stops.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "test.h"

static int resolve_quietly(struct chopin__config *cfg, const chopin_options *o) {
    capture_begin();
    int rc = chopin__config_resolve(cfg, o);
    capture_end();
    return rc;
}

/* The variables a developer may have set would change what these tests see. */
static void clear_chopin_environment(void) {
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "CHOPIN_", 7) == 0) {
                char name[128];
                size_t len = strcspn(*e, "=");
                snprintf(name, sizeof name, "%.*s", (int)len, *e);
                unsetenv(name);
                again = 1;
                break;
            }
        }
    }
}

/* ----- zero means default ----------------------------------------------------------------- */

static void zero_initialised_options_are_the_defaults(void) {
    struct chopin__config zero, defaults, none;
    chopin_options z = {.size = sizeof z};
    chopin_options d = chopin_options_default();
    chopin_options i = CHOPIN_OPTIONS_INIT;
    CHECK_INT(chopin__config_resolve(&zero, &z), 0);
    CHECK_INT(chopin__config_resolve(&defaults, &d), 0);
    CHECK_INT(chopin__config_resolve(&none, NULL), 0);
    CHECK(memcmp(&zero, &defaults, sizeof zero) == 0);
    CHECK(memcmp(&none, &defaults, sizeof none) == 0);
    CHECK_INT(chopin__config_resolve(&zero, &i), 0);
    CHECK(memcmp(&zero, &defaults, sizeof zero) == 0);
    /* and the defaults are what chopin.h says */
    CHECK_INT(zero.opt.pin, 1);
    CHECK_INT(zero.opt.slab_capacity, 0); /* sized at start from the descriptor limit */
    CHECK_INT(zero.opt.shutdown_timeout_ms, 10000);
    CHECK_INT(zero.opt.max_body_bytes, 16u << 20);
    CHECK_INT(zero.opt.max_request_line, 8192);
    CHECK_INT(zero.opt.keepalive_timeout_ms, 30000);
    CHECK_INT(zero.opt.share_port, 0);
    CHECK_MEM(zero.server_header, zero.server_header_len, "Server: chopin\r\n");
}

static void init_fills_readable_defaults(void) {
    chopin_options o;
    memset(&o, 0x5a, sizeof o);
    chopin_options_init(&o, sizeof o);
    CHECK_INT(o.size, sizeof o);
    CHECK_INT(o.pin, 1);
    CHECK_INT(o.max_body_bytes, 16u << 20);
    CHECK_INT(o.buffer_size, 16384);
    CHECK(o.server_name && strcmp(o.server_name, "chopin") == 0);
    CHECK(o.worker_init == NULL && o.worker_arg == NULL);
    CHECK_INT(o.quiet, 0);
}

static void named_zeros_ask_for_a_real_zero(void) {
    struct chopin__config cfg;
    chopin_options o = CHOPIN_OPTIONS_INIT;
    o.pin = -1;
    o.shutdown_timeout_ms = CHOPIN_SHUTDOWN_NOW;
    o.max_body_bytes = CHOPIN_NO_BODY;
    o.server_name = "";
    CHECK_INT(chopin__config_resolve(&cfg, &o), 0);
    CHECK_INT(cfg.opt.pin, 0);
    CHECK_INT(cfg.opt.shutdown_timeout_ms, 0);
    CHECK_INT(cfg.opt.max_body_bytes, 0);
    CHECK_INT(cfg.server_header_len, 0);
    o.pin = 1;
    o.server_name = "mine";
    CHECK_INT(chopin__config_resolve(&cfg, &o), 0);
    CHECK_INT(cfg.opt.pin, 1);
    CHECK_MEM(cfg.server_header, cfg.server_header_len, "Server: mine\r\n");
}

/* ----- size: how the struct grows ------------------------------------------------------- */

static void *never_called(int worker_id, void *arg) { return arg; }

/* An older program's struct ends at `server_name`: whatever lies past its size (here
 * values that would fail if read) belongs to someone else and must be defaulted. */
static void shorter_size_defaults_the_fields_past_it(void) {
    struct chopin__config cfg;
    chopin_options o = chopin_options_default();
    o.max_headers = 100;
    o.server_name = "bad\r\nname";
    o.worker_init = never_called;
    o.quiet = 77;
    o.share_port = 9;
    o.size = offsetof(chopin_options, server_name);
    CHECK_INT(resolve_quietly(&cfg, &o), 0);
    CHECK_INT(cfg.opt.max_headers, 100); /* within the size: read */
    CHECK_MEM(cfg.server_header, cfg.server_header_len, "Server: chopin\r\n");
    CHECK(cfg.opt.worker_init == NULL);
    CHECK_INT(cfg.opt.quiet, 0);
    CHECK_INT(cfg.opt.share_port, 0);
    /* a field cut in half by the size is not read either */
    o = chopin_options_default();
    o.max_body_bytes = 1ull << 50; /* out of range if read */
    o.size = offsetof(chopin_options, max_body_bytes) + 4;
    CHECK_INT(resolve_quietly(&cfg, &o), 0);
    CHECK_INT(cfg.opt.max_body_bytes, 16u << 20);
}

static void init_writes_only_within_the_size(void) {
    chopin_options o;
    memset(&o, 0, sizeof o);
    o.quiet = 5;
    chopin_options_init(&o, offsetof(chopin_options, server_name));
    CHECK_INT(o.size, offsetof(chopin_options, server_name));
    CHECK_INT(o.slab_capacity, 0);
    CHECK(o.server_name == NULL);
    CHECK_INT(o.quiet, 5);
}

static void size_zero_is_an_error(void) {
    struct chopin__config cfg;
    chopin_options o = chopin_options_default();
    o.size = 0;
    capture_begin();
    int rc = chopin__config_resolve(&cfg, &o);
    const char *err = capture_end();
    CHECK_INT(rc, CHOPIN_EINVAL);
    CHECK(strstr(err, "options.size = 0") != NULL);
    CHECK(strstr(err, "chopin_options_init") != NULL);
    capture_begin();
    rc = chopin_options_check(&o);
    capture_end();
    CHECK_INT(rc, CHOPIN_EINVAL);
    o.size = (size_t)1 << 40; /* an uninitialised size */
    CHECK_INT(resolve_quietly(&cfg, &o), CHOPIN_EINVAL);
}

/* A program built against a newer header: unknown fields left at 0 are their defaults;
 * an unknown field set is an error, never silently ignored. */
static void larger_size_needs_unknown_fields_zero(void) {
    struct chopin__config cfg;
    struct {
        chopin_options o;
        uint64_t newer_field;
    } w;
    memset(&w, 0, sizeof w);
    chopin_options_init(&w.o, sizeof w);
    CHECK_INT(w.o.size, sizeof w);
    CHECK_INT(w.newer_field, 0);
    CHECK_INT(resolve_quietly(&cfg, &w.o), 0);
    w.newer_field = 1;
    capture_begin();
    int rc = chopin__config_resolve(&cfg, &w.o);
    const char *err = capture_end();
    CHECK_INT(rc, CHOPIN_EINVAL);
    CHECK(strstr(err, "newer chopin.h") != NULL);
}

/* ----- values and the environment ------------------------------------------------------- */

static void code_values_out_of_range_are_named(void) {
    struct chopin__config cfg;
    chopin_options o = chopin_options_default();
    o.max_headers = 20000;
    o.buffer_size = 100;
    o.pin = 2;
    o.workers = -3;
    capture_begin();
    int rc = chopin__config_resolve(&cfg, &o);
    const char *err = capture_end();
    CHECK_INT(rc, CHOPIN_EINVAL);
    CHECK(strstr(err, "options.max_headers = 20000") != NULL);
    CHECK(strstr(err, "options.buffer_size = 100") != NULL);
    CHECK(strstr(err, "options.pin = 2") != NULL);
    CHECK(strstr(err, "options.workers = -3") != NULL);
    CHECK(strstr(err, "CHOPIN_MAX_HEADERS") != NULL);
}

static void every_bad_variable_is_reported(void) {
    struct chopin__config cfg;
    setenv("CHOPIN_WORKERS", " 2", 1);
    setenv("CHOPIN_MAX_HEADERS", "+2", 1);
    setenv("CHOPIN_BUFFER_SIZE", "4096 ", 1);
    setenv("CHOPIN_SLAB_CAPACITY", "99999999999999999999999", 1);
    setenv("CHOPIN_PIN", "2", 1);
    setenv("CHOPIN_SIMD", "mmx", 1);
    setenv("CHOPIN_BACKEND", "poll", 1);
    capture_begin();
    int rc = chopin__config_resolve(&cfg, NULL);
    const char *err = capture_end();
    CHECK_INT(rc, CHOPIN_EINVAL);
    CHECK(strstr(err, "CHOPIN_WORKERS=\" 2\"") != NULL);
    CHECK(strstr(err, "CHOPIN_MAX_HEADERS=\"+2\"") != NULL);
    CHECK(strstr(err, "CHOPIN_BUFFER_SIZE=\"4096 \"") != NULL);
    CHECK(strstr(err, "CHOPIN_SLAB_CAPACITY=") != NULL);
    CHECK(strstr(err, "CHOPIN_PIN=\"2\"") != NULL);
    CHECK(strstr(err, "CHOPIN_SIMD=\"mmx\"") != NULL);
    CHECK(strstr(err, "CHOPIN_BACKEND=\"poll\"") != NULL);
    clear_chopin_environment();
}

static void variables_override_code_and_mean_what_they_say(void) {
    struct chopin__config cfg;
    chopin_options o = chopin_options_default();
    o.workers = 7;
    setenv("CHOPIN_WORKERS", "3", 1);
    setenv("CHOPIN_PIN", "0", 1);
    setenv("CHOPIN_SHUTDOWN_TIMEOUT_MS", "0", 1);
    setenv("CHOPIN_MAX_BODY_BYTES", "0", 1);
    setenv("CHOPIN_SHARE_PORT", "1", 1);
    CHECK_INT(chopin__config_resolve(&cfg, &o), 0);
    CHECK_INT(cfg.opt.workers, 3);
    CHECK_INT(cfg.opt.pin, 0);
    CHECK_INT(cfg.opt.shutdown_timeout_ms, 0);
    CHECK_INT(cfg.opt.max_body_bytes, 0);
    CHECK_INT(cfg.opt.share_port, 1);
    clear_chopin_environment();
}

static void rule_between_two_fields_names_both(void) {
    struct chopin__config cfg;
    chopin_options o = chopin_options_default();
    o.max_request_line = 9000;
    setenv("CHOPIN_MAX_HEADER_BYTES", "4096", 1);
    capture_begin();
    int rc = chopin__config_resolve(&cfg, &o);
    const char *err = capture_end();
    CHECK_INT(rc, CHOPIN_EINVAL);
    CHECK(strstr(err, "CHOPIN_MAX_REQUEST_LINE") != NULL);
    CHECK(strstr(err, "CHOPIN_MAX_HEADER_BYTES") != NULL);
    CHECK(strstr(err, "= 9000") != NULL && strstr(err, "= 4096") != NULL);
    clear_chopin_environment();
}

/* Only auto may fall back: an explicit backend missing from the build stops the start. */
static void explicit_backend_not_compiled_in_stops(void) {
#ifndef CHOPIN_HAVE_KQUEUE
    setenv("CHOPIN_BACKEND", "kqueue", 1);
    setenv("CHOPIN_WORKERS", "x", 1); /* reported too, in the same run */
    capture_begin();
    int rc = chopin_options_check(NULL);
    const char *err = capture_end();
    CHECK(rc < 0);
    CHECK(strstr(err, "CHOPIN_BACKEND=kqueue") != NULL);
    CHECK(strstr(err, "CHOPIN_WORKERS=\"x\"") != NULL);
    unsetenv("CHOPIN_WORKERS");
    capture_begin();
    rc = chopin_options_check(NULL);
    capture_end();
    CHECK_INT(rc, CHOPIN_ENOTSUP);
    chopin_options o = chopin_options_default();
    unsetenv("CHOPIN_BACKEND");
    o.backend = CHOPIN_BACKEND_KQUEUE;
    capture_begin();
    rc = chopin_options_check(&o);
    err = capture_end();
    CHECK_INT(rc, CHOPIN_ENOTSUP);
    CHECK(strstr(err, "options.backend = kqueue") != NULL);
    clear_chopin_environment();
#endif
    CHECK_INT(chopin_options_check(NULL), 0);
}

/* slab_capacity 0: the descriptor limit shared among the workers after a reserve, within
 * bounds; a capacity asked for (code or CHOPIN_SLAB_CAPACITY) is kept. */
static void slab_capacity_follows_the_descriptor_limit(void) {
    CHECK_INT(chopin__slab_capacity_for(20000, 2), (20000 - 128) / 2);
    CHECK_INT(chopin__slab_capacity_for(1024, 1), 1024 - 128);
    CHECK_INT(chopin__slab_capacity_for(1024, 64), 64);    /* at least the minimum */
    CHECK_INT(chopin__slab_capacity_for(48, 1), 64);       /* even below the reserve */
    CHECK_INT(chopin__slab_capacity_for(UINT64_MAX, 1), 100000); /* unlimited: capped */
    struct chopin__config cfg;
    CHECK_INT(chopin__config_resolve(&cfg, NULL), 0);
    chopin__config_slab_capacity(&cfg, 1);
    CHECK(cfg.opt.slab_capacity >= 64 && cfg.opt.slab_capacity <= 100000);
    chopin_options o = chopin_options_default();
    o.slab_capacity = 7;
    CHECK_INT(chopin__config_resolve(&cfg, &o), 0);
    chopin__config_slab_capacity(&cfg, 1);
    CHECK_INT(cfg.opt.slab_capacity, 7);
    setenv("CHOPIN_SLAB_CAPACITY", "9", 1);
    CHECK_INT(chopin__config_resolve(&cfg, &o), 0);
    chopin__config_slab_capacity(&cfg, 1);
    CHECK_INT(cfg.opt.slab_capacity, 9);
    unsetenv("CHOPIN_SLAB_CAPACITY");
}

int main(void) {
    clear_chopin_environment();
    RUN(zero_initialised_options_are_the_defaults);
    RUN(init_fills_readable_defaults);
    RUN(named_zeros_ask_for_a_real_zero);
    RUN(shorter_size_defaults_the_fields_past_it);
    RUN(init_writes_only_within_the_size);
    RUN(size_zero_is_an_error);
    RUN(larger_size_needs_unknown_fields_zero);
    RUN(code_values_out_of_range_are_named);
    RUN(every_bad_variable_is_reported);
    RUN(variables_override_code_and_mean_what_they_say);
    RUN(rule_between_two_fields_names_both);
    RUN(explicit_backend_not_compiled_in_stops);
    RUN(slab_capacity_follows_the_descriptor_limit);
    TEST_END();
}
