/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for Forwarded and X-Forwarded-For (src/http/forwarded.c): the first
 * byte chooses the parser, the rest is a header value. Checks that every hop returned lies
 * inside the value, holds no byte a header value may not (CTL, and no quote or space in a
 * node), and that a refused value leaves the count within bounds.
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE
 *     fuzz/fuzz_forwarded.c src/http/forwarded.c -o fuzz_forwarded
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/forwarded.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_span(const char *v, size_t len, const char *p, size_t plen) {
    if (!p)
        return;
    if (p < v || p + plen > v + len || plen == 0)
        abort();
    for (size_t i = 0; i < plen; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == '"' || p[i] == ' ' || p[i] == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t len = size - 1;
    char *v = malloc(len ? len : 1); /* exact size: ASan sees a read past the end */
    if (!v)
        abort();
    memcpy(v, data + 1, len);
    struct chopin__fwd_hop hops[CHOPIN__FWD_MAX];
    int n = 0;
    int rc = data[0] & 1 ? chopin__xff_parse(v, len, hops, &n)
                         : chopin__forwarded_parse(v, len, hops, &n);
    if (n < 0 || n > CHOPIN__FWD_MAX)
        abort();
    if (rc == 0)
        for (int i = 0; i < n; i++) {
            check_span(v, len, hops[i].node, hops[i].node_len);
            check_span(v, len, hops[i].proto, hops[i].proto_len);
        }
    free(v);
    return 0;
}
