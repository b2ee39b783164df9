/* Resolved server configuration: defaults < code (chopin_options) < environment. */
#ifndef CHOPIN_CONFIG_H
#define CHOPIN_CONFIG_H

#include "chopin.h"
#include "http/parser.h"

struct chopin__config {
    chopin_options opt;          /* after environment overrides and validation */
    struct chopin__limits limits;
    char server_header[96];      /* "Server: name\r\n", or "" */
    uint32_t server_header_len;
    enum chopin__simd simd;      /* CHOPIN_SIMD=auto|scalar|sse2|avx2 */
};

/** Applies CHOPIN_* environment variables over `in` and validates. Returns 0, or -EINVAL
 *  after printing which variable or field is wrong. */
int chopin__config_resolve(struct chopin__config *cfg, const chopin_options *in);

#endif
