/* SPDX-License-Identifier: MIT */
/*
 * Accept-Encoding negotiation (RFC 9110 §12.5.3): a table of field values and the coding
 * chosen for a server offering br, zstd, gzip and identity (in that order of preference),
 * and for narrower offers. Every value ends right before a PROT_NONE page, so a read past its
 * end faults.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http/accept_encoding.h"
#include "test.h"

#define NONE CHOPIN__CODING_NONE
#define ID CHOPIN__CODING_IDENTITY
#define GZ CHOPIN__CODING_GZIP
#define BR CHOPIN__CODING_BR
#define ZS CHOPIN__CODING_ZSTD

#define GUARD_CAP 4096
static char *guard_end;

static void guard_init(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, GUARD_CAP + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED || mprotect(m + GUARD_CAP, page, PROT_NONE)) {
        perror("guard page");
        exit(2);
    }
    guard_end = m + GUARD_CAP;
}

static const char *place(const char *s)
{
    size_t n = strlen(s);
    memcpy(guard_end - n, s, n);
    return guard_end - n;
}

static const uint8_t all[] = {BR, ZS, GZ, ID};
static const uint8_t gzip_id[] = {GZ, ID};
static const uint8_t zstd_first[] = {ZS, BR, GZ, ID};
static const uint8_t compressed_only[] = {BR, GZ};

struct ncase {
    const char *value;
    const uint8_t *prefer;
    size_t n;
    int want;
};

#define OFFER(a) a, sizeof a

static const struct ncase table[] = {
    /* the browsers' fields */
    {"gzip, deflate, br, zstd", OFFER(all), BR},
    {"gzip, deflate, br, zstd", OFFER(zstd_first), ZS},
    {"gzip, deflate, br", OFFER(gzip_id), GZ},
    {"gzip, deflate", OFFER(all), GZ},
    {"deflate", OFFER(all), ID},
    {"deflate", OFFER(compressed_only), NONE},
    /* q-values decide before the server's order */
    {"br;q=0.5, gzip", OFFER(all), GZ},
    {"br;q=0.5, gzip;q=0.8, zstd;q=0.9", OFFER(all), ZS},
    {"br;q=1.0, gzip;q=1", OFFER(all), BR},
    {"gzip;q=0.001, br;q=0", OFFER(all), GZ},
    {"br;Q=0.2,gzip;q=0.1", OFFER(all), BR},
    {"br ; q = 0.2 , gzip;q=0.1", OFFER(all), BR},
    {"gzip;q=0.5", OFFER(all), GZ},   /* unlisted identity ranks below any listed coding */
    {"gzip;q=0.5, identity", OFFER(all), ID},
    {"gzip;q=0.5, identity;q=0.6", OFFER(all), ID},
    {"gzip, identity;q=0.999", OFFER(all), GZ},
    /* a coding refused */
    {"gzip;q=0", OFFER(all), ID},
    {"gzip;q=0.000", OFFER(gzip_id), ID},
    {"br;q=0, gzip;q=0", OFFER(compressed_only), NONE},
    /* identity refused */
    {"identity;q=0", OFFER(all), NONE},
    {"identity;q=0", OFFER(gzip_id), NONE},
    {"gzip, identity;q=0", OFFER(all), GZ},
    {"*;q=0", OFFER(all), NONE},
    {"*;q=0, identity", OFFER(all), ID},
    {"*;q=0, gzip;q=0.1", OFFER(all), GZ},
    /* the wildcard */
    {"*", OFFER(all), BR},
    {"*", OFFER(gzip_id), GZ},
    {"*", OFFER(zstd_first), ZS},
    {"*;q=0.5, gzip", OFFER(all), GZ},
    {"*;q=0.5, br;q=0", OFFER(all), ZS},
    {"*;q=0.5, br;q=0, zstd;q=0", OFFER(all), GZ},
    {"*, identity;q=0.5", OFFER(all), BR},
    /* tokens are case-insensitive; x-gzip is gzip (RFC 9110 §8.4.1.3) */
    {"GZIP", OFFER(all), GZ},
    {"Br", OFFER(all), BR},
    {"ZStd", OFFER(all), ZS},
    {"x-gzip", OFFER(gzip_id), GZ},
    {"X-GZIP;q=0.3, identity;q=0.2", OFFER(gzip_id), GZ},
    {"IDENTITY;Q=0", OFFER(all), NONE},
    /* the empty field: identity only; empty elements are accepted */
    {"", OFFER(all), ID},
    {"", OFFER(compressed_only), NONE},
    {" ", OFFER(all), ID},
    {",,, ,", OFFER(all), ID},
    {", gzip ,,", OFFER(all), GZ},
    {"\tgzip\t", OFFER(all), GZ},
    /* listed twice: the highest q counts */
    {"gzip;q=0, gzip;q=0.5", OFFER(compressed_only), GZ},
    {"gzip;q=0.5, gzip;q=0", OFFER(compressed_only), GZ},
    /* malformed elements are ignored, alone */
    {"gzip;q=1.5", OFFER(compressed_only), NONE},
    {"gzip;q=1.001, br", OFFER(all), BR},
    {"gzip;q=0.5000", OFFER(compressed_only), NONE},
    {"gzip;q=", OFFER(compressed_only), NONE},
    {"gzip;q=.5", OFFER(compressed_only), NONE},
    {"gzip;q=-0", OFFER(compressed_only), NONE},
    {"gzip;q=0.5x", OFFER(compressed_only), NONE},
    {"gzip;q=0. 5", OFFER(compressed_only), NONE},
    {"gzip;level=1", OFFER(compressed_only), NONE},
    {"gzip;", OFFER(compressed_only), NONE},
    {"gzip;;q=1", OFFER(compressed_only), NONE},
    {"gzip q=1", OFFER(compressed_only), NONE},
    {"gzip br", OFFER(all), ID},
    {"identity;q=bad", OFFER(all), ID}, /* an ignored identity;q=0 does not refuse identity */
    {"\"gzip\"", OFFER(all), ID},
    {"gzip\x01, br", OFFER(all), BR},
    {"gzi\xffp, zstd", OFFER(all), ZS},
    {";q=1, gzip", OFFER(all), GZ},
    {"gzipx, brr, zstd2", OFFER(all), ID},
    /* no offer, nothing to choose */
    {"gzip", NULL, 0, NONE},
};

static void test_negotiation_table(void)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const struct ncase *c = &table[i];
        const char *v = place(c->value);
        int got = chopin__accept_encoding_pick(v, strlen(c->value), c->prefer, c->n);
        if (got != c->want)
            fprintf(stderr, "  case %zu \"%s\": got %d, expected %d\n", i, c->value, got, c->want);
        CHECK_INT(got, c->want);
    }
}

/* No field at all: identity, never a coding the client did not ask for. */
static void test_no_field_means_identity(void)
{
    CHECK_INT(chopin__accept_encoding_pick(NULL, 0, all, sizeof all), ID);
    CHECK_INT(chopin__accept_encoding_pick(NULL, 0, compressed_only, sizeof compressed_only), NONE);
}

/* Several field lines are one list (RFC 9110 §5.3). */
static void test_field_lines_combine(void)
{
    struct chopin__accept_encoding ae;
    chopin__accept_encoding_init(&ae);
    chopin__accept_encoding_add(&ae, "gzip;q=0.5", 10);
    chopin__accept_encoding_add(&ae, "br;q=0.7", 8);
    CHECK_INT(chopin__accept_encoding_choose(&ae, all, sizeof all), BR);
    chopin__accept_encoding_add(&ae, "identity;q=0, zstd;q=0.9", 24);
    CHECK_INT(chopin__accept_encoding_choose(&ae, all, sizeof all), ZS);
    CHECK_INT(chopin__accept_encoding_choose(&ae, gzip_id, sizeof gzip_id), GZ);
    static const uint8_t id_only[] = {ID};
    CHECK_INT(chopin__accept_encoding_choose(&ae, id_only, 1), NONE);
}

static void test_qvalues_kept_in_thousandths(void)
{
    struct chopin__accept_encoding ae;
    chopin__accept_encoding_init(&ae);
    const char *v = "gzip;q=0.125, br;q=1.000, zstd;q=0.07, *;q=0";
    chopin__accept_encoding_add(&ae, v, strlen(v));
    CHECK_INT(ae.q[GZ], 125);
    CHECK_INT(ae.q[BR], 1000);
    CHECK_INT(ae.q[ZS], 70);
    CHECK_INT(ae.q[ID], CHOPIN__Q_UNLISTED);
    CHECK_INT(ae.star, 0);
}

/* Codings outside the enum in the offer are skipped, not indexed. */
static void test_bad_offer_ignored(void)
{
    static const uint8_t odd[] = {0, 200, (uint8_t)CHOPIN__CODING_COUNT_, GZ};
    CHECK_INT(chopin__accept_encoding_pick("gzip", 4, odd, sizeof odd), GZ);
}

static void test_coding_names(void)
{
    CHECK_STR(chopin__coding_name(GZ), "gzip");
    CHECK_STR(chopin__coding_name(BR), "br");
    CHECK_STR(chopin__coding_name(ZS), "zstd");
    CHECK_STR(chopin__coding_name(ID), "identity");
    CHECK(chopin__coding_name(NONE) == NULL);
    CHECK(chopin__coding_name((enum chopin__coding)CHOPIN__CODING_COUNT_) == NULL);
}

/* Every prefix of a long field parses without reading past its end. */
static void test_every_prefix_in_bounds(void)
{
    const char *v = "gzip;q=0.5, br ; q = 1.0 ,zstd;q=0.001, *;q=0, identity;Q=0.3,,x-gzip";
    size_t len = strlen(v);
    for (size_t n = 0; n <= len; n++) {
        memcpy(guard_end - n, v, n);
        struct chopin__accept_encoding ae;
        chopin__accept_encoding_init(&ae);
        chopin__accept_encoding_add(&ae, guard_end - n, n);
        CHECK(chopin__accept_encoding_choose(&ae, all, sizeof all) != NONE);
    }
}

int main(void)
{
    guard_init();
    RUN(test_negotiation_table);
    RUN(test_no_field_means_identity);
    RUN(test_field_lines_combine);
    RUN(test_qvalues_kept_in_thousandths);
    RUN(test_bad_offer_ignored);
    RUN(test_coding_names);
    RUN(test_every_prefix_in_bounds);
    TEST_END();
}
