/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the PROXY protocol parser (src/http/proxy.c). Checks what the
 * connection step relies on: the result is "invalid", "more" or a length within the input
 * and CHOPIN__PROXY_MAX (v1 within 107 bytes); a header is self-delimiting (the same
 * length from exactly its bytes, "more" from one byte fewer); the relayed family is one
 * the server formats; the TLVs it hands out lie inside the header.
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE
 *     fuzz/fuzz_proxy.c src/http/proxy.c -o fuzz_proxy
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An exact-size heap copy, so ASan sees a read past the end. */
static long parse_copy(const uint8_t *data, size_t size, struct chopin__proxy_info *info) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    long r = chopin__proxy_parse(copy, size, info);
    if (r > 0 && info->tlv) {
        if (info->tlv < copy || info->tlv + info->tlv_len > copy + r)
            abort();
        size_t len;
        const uint8_t *v = chopin__proxy_tlv(info, CHOPIN__PP2_TYPE_SSL, &len);
        if (v && (v < info->tlv || v + len > info->tlv + info->tlv_len))
            abort();
    }
    free(copy);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct chopin__proxy_info info;
    long r = parse_copy(data, size, &info);
    if (r < CHOPIN__PROXY_INVALID || (size_t)(r > 0 ? r : 0) > size || r > CHOPIN__PROXY_MAX)
        abort();
    if (r <= 0)
        return 0;
    if (info.version != 1 && info.version != 2)
        abort();
    if (info.version == 1 && r > 107)
        abort();
    if (info.family != 0 && info.family != AF_INET && info.family != AF_INET6)
        abort();
    if (info.local && info.family)
        abort();
    struct chopin__proxy_info again;
    if (parse_copy(data, (size_t)r, &again) != r || again.family != info.family ||
        again.src_port != info.src_port || memcmp(again.src, info.src, sizeof info.src) != 0)
        abort();
    if (parse_copy(data, (size_t)r - 1, &again) != CHOPIN__PROXY_MORE)
        abort();
    return 0;
}
