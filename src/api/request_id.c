/* SPDX-License-Identifier: MIT */
/* Request ids: passed through from X-Request-Id, or made here (chopin.h). */
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "chopin.h"
#include "ops/observe.h"

#define ID_MAX 128
#define ID_LEN 32

/* A worker thread's generator: a random 64-bit prefix, then a counter scrambled by a
 * keyed bijection (splitmix64's finalizer over counter ^ key): the ids of one thread never
 * repeat, those of two threads differ by their prefixes, and none can be guessed from
 * another. No lock, no atomic: each thread has its own. */
static _Thread_local struct {
    uint64_t prefix, key, counter;
    int seeded;
} gen;

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void seed(void) {
    uint64_t r[2];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts; /* no entropy yet (early boot): unique still, less secret */
        clock_gettime(CLOCK_REALTIME, &ts);
        r[0] = mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uintptr_t)&gen);
        r[1] = mix(r[0] + 0x9e3779b97f4a7c15ull);
    }
    gen.prefix = r[0];
    gen.key = r[1];
    gen.seeded = 1;
}

static void hex64(char *out, uint64_t v) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
}

/* An id a client sent is kept only if it cannot break a header, a log line or a JSON
 * string: visible ASCII, no quote, no backslash. */
static int acceptable(chopin_str id) {
    if (!id.ptr || id.len == 0 || id.len > ID_MAX)
        return 0;
    for (size_t i = 0; i < id.len; i++) {
        unsigned char c = (unsigned char)id.ptr[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

void chopin_request_id(chopin_req *req, chopin_res *res, chopin_next *next, void *unused) {
    (void)unused;
    chopin_str given = chopin_req_header(req, "x-request-id");
    int keep = acceptable(given);
    size_t len = keep ? given.len : ID_LEN;
    chopin_str *s = chopin_req_alloc(req, sizeof *s + len + 1);
    if (!s) {
        chopin_next_run(next);
        return;
    }
    char *text = (char *)(s + 1);
    if (keep) {
        memcpy(text, given.ptr, len);
    } else {
        if (!gen.seeded)
            seed();
        hex64(text, gen.prefix);
        hex64(text + 16, mix(gen.counter++ ^ gen.key));
    }
    text[len] = '\0';
    *s = (chopin_str){text, len};
    chopin_req_set_data(req, &chopin__request_id_key, s);
    chopin_res_header_set(res, "X-Request-Id", text);
    chopin_next_run(next);
}

chopin_str chopin_req_id(const chopin_req *req) {
    const chopin_str *s = chopin_req_data(req, &chopin__request_id_key);
    return s ? *s : (chopin_str){NULL, 0};
}
