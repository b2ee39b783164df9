/* SPDX-License-Identifier: MIT */
/* Base64 and base64url (src/http/base64.c): RFC 4648 §10's vectors both ways, the URL
 * alphabet, padding rules (required, optional, misplaced), room in the output. */
#include <errno.h>
#include <stdlib.h>

#include "http/base64.h"
#include "test.h"

static const struct {
    const char *plain, *enc;
} vectors[] = {
    {"", ""},         {"f", "Zg=="},        {"fo", "Zm8="},         {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

/* Decodes a copy of exactly `enc`'s length (ASan sees a read past it). */
static ssize_t decode(const char *enc, uint8_t *out, size_t cap, unsigned flags) {
    size_t n = strlen(enc);
    char *copy = malloc(n + 1);
    memcpy(copy, enc, n);
    ssize_t got = chopin__base64_decode(copy, n, out, cap, flags);
    free(copy);
    return got;
}

static void rfc4648_vectors(void) {
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char enc[16];
        size_t plen = strlen(vectors[i].plain);
        CHECK_INT(chopin__base64_encode((const uint8_t *)vectors[i].plain, plen, enc),
                  strlen(vectors[i].enc));
        CHECK_STR(enc, vectors[i].enc);
        uint8_t out[16];
        CHECK_INT(decode(vectors[i].enc, out, sizeof out, CHOPIN__B64_PADDED), plen);
        CHECK_MEM(out, plen, vectors[i].plain);
        CHECK_INT(decode(vectors[i].enc, out, sizeof out, 0), plen);
    }
}

/* Without CHOPIN__B64_PADDED the padding may be left out (HTTP2-Settings); with it, not. */
static void optional_padding(void) {
    uint8_t out[16];
    CHECK_INT(decode("Zm9vYg", out, sizeof out, 0), 4);
    CHECK_MEM(out, 4, "foob");
    CHECK_INT(decode("Zm9vYmE", out, sizeof out, 0), 5);
    CHECK_INT(decode("Zm9vYg", out, sizeof out, CHOPIN__B64_PADDED), -EINVAL);
}

static void url_alphabet(void) {
    static const uint8_t raw[] = {0xfb, 0xff, 0xbf};
    static const char want[] = "\xfb\xff\xbf";
    uint8_t out[4];
    char enc[8];
    chopin__base64_encode(raw, 3, enc);
    CHECK_STR(enc, "+/+/");
    CHECK_INT(decode("+/+/", out, sizeof out, 0), 3);
    CHECK_MEM(out, 3, want);
    CHECK_INT(decode("-_-_", out, sizeof out, CHOPIN__B64_URL), 3);
    CHECK_MEM(out, 3, want);
    CHECK_INT(decode("-_-_", out, sizeof out, 0), -EINVAL);
    CHECK_INT(decode("+/+/", out, sizeof out, CHOPIN__B64_URL), -EINVAL);
}

static void refusals(void) {
    static const char *bad[] = {
        "Z",        /* a lone last character carries 6 bits: no byte */
        "Zm9vY",    /* the same after a whole group */
        "Zg=",      /* padding that does not complete the group */
        "Zg===",    /* three '=' */
        "Z===",     /* padding after one character */
        "Zm9v====", /* a group of padding alone */
        "Zm=v",     /* '=' inside */
        "=Zm9",     /* '=' first */
        "Zm9v Zg==", /* a space */
        "Zm9\x80",  /* a byte outside ASCII */
        "Zm9v\n",   /* a line break */
    };
    uint8_t out[16];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(decode(bad[i], out, sizeof out, 0), -EINVAL);
        CHECK_INT(decode(bad[i], out, sizeof out, CHOPIN__B64_PADDED), -EINVAL);
    }
}

static void output_room(void) {
    uint8_t out[6];
    CHECK_INT(decode("Zm9vYmFy", out, 6, 0), 6);
    CHECK_INT(decode("Zm9vYmFy", out, 5, 0), -ENOSPC);
    CHECK_INT(decode("Zm9vYg==", out, 4, CHOPIN__B64_PADDED), 4);
    CHECK_INT(decode("Zm9vYg==", out, 3, CHOPIN__B64_PADDED), -ENOSPC);
}

int main(void) {
    RUN(rfc4648_vectors);
    RUN(optional_padding);
    RUN(url_alphabet);
    RUN(refusals);
    RUN(output_room);
    TEST_END();
}
