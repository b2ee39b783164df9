/* SPDX-License-Identifier: MIT */
/* Resolved server configuration: defaults < code (chopin_options) < environment. */
#ifndef CHOPIN_CONFIG_H
#define CHOPIN_CONFIG_H

#include "chopin.h"
#include "http/parser.h"
#include "trust.h"

struct chopin__config {
    /* The options in effect, every field resolved: no "0 means default" is left. pin is
     * 0 or 1, shutdown_timeout_ms 0 closes at once, max_body_bytes 0 refuses bodies,
     * workers 0 means one per CPU, server_name is NULL (see server_header), and
     * slab_capacity 0 is sized at start (chopin__config_slab_capacity). */
    chopin_options opt;
    struct chopin__limits limits;
    char server_header[96];      /* "Server: name\r\n", or "" */
    uint32_t server_header_len;
    enum chopin__simd simd;      /* CHOPIN_SIMD=auto|scalar|sse2|avx2 */
    int backend_from_env;        /* opt.backend came from CHOPIN_BACKEND (for messages) */
    struct chopin__trust trusted; /* opt.trusted_proxies, parsed (opt's pointer is NULL) */
    /* The access log (issue 19): the path copied from opt.access_log (opt.access_log then
     * points here), "" when off; the descriptor the server opened for it, -1 until then. */
    char access_path[1024];
    int access_fd;
};

/** Copies the fields of `in` (NULL: the defaults) that lie within in->size, applies the
 *  CHOPIN_* environment variables over them and checks every value. Returns 0, or
 *  -EINVAL after printing one line on stderr for every invalid value, naming its field
 *  and variable; cfg then holds the default in place of each invalid value. */
int chopin__config_resolve(struct chopin__config *cfg, const chopin_options *in);
/** When no capacity was asked for (0): connections per worker from the descriptor limit
 *  (RLIMIT_NOFILE's soft limit), shared among `nworkers` after a reserve for listeners and
 *  files, within sane bounds. A connection beyond the limit would only meet EMFILE. */
void chopin__config_slab_capacity(struct chopin__config *cfg, int nworkers);
/** That sizing, for a descriptor limit `nofile` (UINT64_MAX: unlimited). */
uint32_t chopin__slab_capacity_for(uint64_t nofile, int nworkers);

#endif
