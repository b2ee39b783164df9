/* SPDX-License-Identifier: MIT */
/* Forwarded (RFC 7239) and X-Forwarded-For parsing (src/http/forwarded.c), table-driven. */
#include <stdlib.h>

#include "http/forwarded.h"
#include "test.h"

/* The hops as "node/proto node/proto ...", "-" for an absent part; "ERR" when refused. */
static const char *render(int rc, const struct chopin__fwd_hop *hops, int n) {
    static char out[1024];
    size_t used = 0;
    if (rc < 0)
        return "ERR";
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        used += (size_t)snprintf(out + used, sizeof out - used, "%s%.*s/%.*s", i ? " " : "",
                                 hops[i].node ? (int)hops[i].node_len : 1,
                                 hops[i].node ? hops[i].node : "-",
                                 hops[i].proto ? (int)hops[i].proto_len : 1,
                                 hops[i].proto ? hops[i].proto : "-");
    return out;
}

static const struct {
    const char *in, *want;
} forwarded_cases[] = {
    {"for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60/http"},
    {"For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17/-"},
    {"for=192.0.2.43, for=198.51.100.17", "192.0.2.43/- 198.51.100.17/-"},
    {"for=\"192.0.2.43:47011\";proto=https", "192.0.2.43/https"},
    {"for=unknown", "unknown/-"},
    {"for=_hidden, for=_SEVKISEK", "_hidden/- _SEVKISEK/-"},
    {"proto=https", "-/https"},
    {"  for=1.2.3.4 ;  proto=http ,for=5.6.7.8  ", "1.2.3.4/http 5.6.7.8/-"},
    {"for=1.2.3.4;;proto=http", "1.2.3.4/http"},
    {"for=1.2.3.4;ext=\"x y\"", "1.2.3.4/-"},
    {"host=example.com;for=10.0.0.1", "10.0.0.1/-"},
    {"", "ERR"},
    {",", "ERR"},
    {"for=1.2.3.4,,for=5.6.7.8", "ERR"},
    {"for=1.2.3.4;for=5.6.7.8", "ERR"},       /* a parameter twice */
    {"for=\"1.2.3.4", "ERR"},                 /* unterminated */
    {"for=\"1.2\\.3.4\"", "ERR"},             /* an escape */
    {"for=[2001:db8::1", "ERR"},
    {"for=\"[2001:db8::1\"", "ERR"},
    {"for=\"[]\"", "ERR"},
    {"for", "ERR"},
    {"for=", "ERR"},
    {"=1.2.3.4", "ERR"},
    {"for=1.2.3.4 proto=http", "ERR"},
    {"for=a b", "ERR"},
    {"for=\"17 :4711\"", "ERR"},         /* a space in a quoted node */
    {"for=\"1.2.3.4/8\"", "ERR"},
    {"proto=\"17 :4711\"", "ERR"},       /* proto= is a URI scheme (fuzz_forwarded) */
    {"proto=1http", "ERR"},
    {"for=1.2.3.4;proto=\"\"", "ERR"},
    {"proto=\"svn+ssh\"", "-/svn+ssh"},
};

static const struct {
    const char *in, *want;
} xff_cases[] = {
    {"192.0.2.1", "192.0.2.1/-"},
    {"192.0.2.1, 10.0.0.2", "192.0.2.1/- 10.0.0.2/-"},
    {"192.0.2.1:5000,10.0.0.2", "192.0.2.1/- 10.0.0.2/-"},
    {"2001:db8::1, [2001:db8::2]:80, [::1]", "2001:db8::1/- 2001:db8::2/- ::1/-"},
    {"  unknown ,  10.0.0.1  ", "unknown/- 10.0.0.1/-"},
    {"", "ERR"},
    {"1.2.3.4,", "ERR"},
    {",1.2.3.4", "ERR"},
    {"1.2.3.4 5.6.7.8", "ERR"},
    {"\"1.2.3.4\"", "ERR"},
    {"[::1", "ERR"},
    {"1.2.3.4\x01", "ERR"},
};

static void forwarded(void) {
    for (size_t i = 0; i < sizeof forwarded_cases / sizeof *forwarded_cases; i++) {
        struct chopin__fwd_hop hops[CHOPIN__FWD_MAX];
        int n = 0;
        const char *in = forwarded_cases[i].in;
        int rc = chopin__forwarded_parse(in, strlen(in), hops, &n);
        const char *got = render(rc, hops, n);
        if (strcmp(got, forwarded_cases[i].want))
            fprintf(stderr, "  Forwarded: %s\n", in);
        CHECK_STR(got, forwarded_cases[i].want);
    }
}

static void x_forwarded_for(void) {
    for (size_t i = 0; i < sizeof xff_cases / sizeof *xff_cases; i++) {
        struct chopin__fwd_hop hops[CHOPIN__FWD_MAX];
        int n = 0;
        const char *in = xff_cases[i].in;
        int rc = chopin__xff_parse(in, strlen(in), hops, &n);
        const char *got = render(rc, hops, n);
        if (strcmp(got, xff_cases[i].want))
            fprintf(stderr, "  X-Forwarded-For: %s\n", in);
        CHECK_STR(got, xff_cases[i].want);
    }
}

/* Several header lines add up; past CHOPIN__FWD_MAX hops the whole is refused. */
static void lines_add_up_to_a_bound(void) {
    struct chopin__fwd_hop hops[CHOPIN__FWD_MAX];
    int n = 0;
    CHECK_INT(chopin__xff_parse("1.1.1.1, 2.2.2.2", 16, hops, &n), 0);
    CHECK_INT(chopin__forwarded_parse("for=3.3.3.3", 11, hops, &n), 0);
    CHECK_INT(n, 3);
    char many[CHOPIN__FWD_MAX * 10];
    size_t used = 0;
    for (int i = 0; i < CHOPIN__FWD_MAX - 3; i++)
        used += (size_t)snprintf(many + used, sizeof many - used, "%s10.0.0.%d", i ? "," : "", i);
    CHECK_INT(chopin__xff_parse(many, used, hops, &n), 0);
    CHECK_INT(n, CHOPIN__FWD_MAX);
    CHECK_INT(chopin__xff_parse("9.9.9.9", 7, hops, &n), -1);
}

int main(void) {
    RUN(forwarded);
    RUN(x_forwarded_for);
    RUN(lines_add_up_to_a_bound);
    TEST_END();
}
