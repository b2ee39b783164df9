/* SPDX-License-Identifier: MIT */
/*
 * Chunked body decoder tests. Bodies end right before a PROT_NONE page; every body is
 * decoded whole, cut at every point into two calls, and fed one byte per call, and all
 * three must agree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http/chunked.h"
#include "test.h"

#define GUARD_CAP (64 * 1024)
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

static char *place(const char *s, size_t n)
{
    memcpy(guard_end - n, s, n);
    return guard_end - n;
}

struct ccase {
    const char *in;
    size_t len;
    int want;          /* 1 complete, 0 incomplete, -400, -413 */
    const char *body;  /* decoded payload when want is 1 or 0 */
    size_t consumed;   /* *in after the call when want is 1 (0: the whole input) */
    uint64_t max_body; /* 0: 1 MiB */
};
#define C(in, want, body) {in, sizeof(in) - 1, want, body, 0, 0}
#define CM(in, want, body, max) {in, sizeof(in) - 1, want, body, 0, max}
#define CN(in, want, body, consumed) {in, sizeof(in) - 1, want, body, consumed, 0}

static const struct ccase cases[] = {
    C("0\r\n\r\n", 1, ""),
    C("5\r\nhello\r\n0\r\n\r\n", 1, "hello"),
    C("3\r\nabc\r\n4\r\ndefg\r\n1\r\nh\r\n0\r\n\r\n", 1, "abcdefgh"),
    C("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", 1, "0123456789abcdefghij"),
    C("1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n", 1, "abcdefghijklmnopqrstuvwxyz"),
    C("0005\r\nhello\r\n0000\r\n\r\n", 1, "hello"),
    C("00000000000000000000000000000005\r\nhello\r\n0\r\n\r\n", 1, "hello"),
    C("5;a\r\nhello\r\n0\r\n\r\n", 1, "hello"),
    C("5;a=b\r\nhello\r\n0;last\r\n\r\n", 1, "hello"),
    C("5 ; a = b ; c\t;d=\"x y\"\r\nhello\r\n0\r\n\r\n", 1, "hello"),
    C("5;a=\"q\\\"\\\\x;=\"\r\nhello\r\n0\r\n\r\n", 1, "hello"),
    C("5;a=\"\x80\xff\t\"\r\nhello\r\n0\r\n\r\n", 1, "hello"),
    C("5;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n", 1, "hello"),
    C("5\r\nhello\r\n0\r\nX-Sum: abc\r\n\r\n", 1, "hello"),
    C("5\r\nhello\r\n0\r\nA:1\r\nB: \t\x80 two words \r\nC:\r\n\r\n", 1, "hello"),
    C("2\r\n\r\n\r\n0\r\n\r\n", 1, "\r\n"),
    CN("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 1, "hello", 15),
    CN("0\r\n\r\n0\r\n\r\n", 1, "", 5),
    /* incomplete at the end of the input */
    C("5\r\nhel", 0, "hel"),
    C("5\r\nhello\r\n", 0, "hello"),
    C("5\r\nhello\r\n0\r\nX: y\r\n", 0, "hello"),
    CM("ffffffffffffffff\r\nabc", 0, "abc", UINT64_MAX),
    /* size line */
    C("\r\n", -400, ""),
    C("x\r\n", -400, ""),
    C(";a\r\n", -400, ""),
    C(" 5\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("-5\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("+5\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("0x5\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5 \r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5\t\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5 5\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5\nhello\r\n0\r\n\r\n", -400, ""),
    C("5\rhello\r\n0\r\n\r\n", -400, ""),
    C("5\r\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("10000000000000000\r\n", -400, ""),
    C("fffffffffffffffff\r\n", -400, ""),
    C("5;\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;;a\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;a=\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;a =\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;a \r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;a=b \r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;a=b=c\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;a=(b)\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;a=\"b\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;a\x7f\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;\x80\r\nhello\r\n0\r\n\r\n", -400, ""),
    C("5;a=b\nhello\r\n0\r\n\r\n", -400, ""),
    /* data and its CRLF */
    C("5\r\nhelloX\r\n0\r\n\r\n", -400, "hello"),
    C("5\r\nhello\n0\r\n\r\n", -400, "hello"),
    C("5\r\nhello\r\r\n0\r\n\r\n", -400, "hello"),
    C("5\r\nhello0\r\n\r\n", -400, "hello"),
    C("3\r\nhello\r\n0\r\n\r\n", -400, "hel"),
    /* trailers */
    C("0\r\nX\r\n\r\n", -400, ""),
    C("0\r\n X: a\r\n\r\n", -400, ""),
    C("0\r\n\tX: a\r\n\r\n", -400, ""),
    C("0\r\n: a\r\n\r\n", -400, ""),
    C("0\r\nX : a\r\n\r\n", -400, ""),
    C("0\r\nX: a\r\r\n\r\n", -400, ""),
    C("0\r\nX: a\n\r\n", -400, ""),
    C("0\r\nX: a\x01\r\n\r\n", -400, ""),
    C("0\r\nX: a\x7f\r\n\r\n", -400, ""),
    C("0\r\nX: a\r\n b\r\n\r\n", -400, ""),
    C("0\r\n\n", -400, ""),
    C("0\r\n\r\r", -400, ""),
    /* 413 */
    CM("a\r\n0123456789\r\n0\r\n\r\n", 1, "0123456789", 10),
    CM("b\r\n0123456789a\r\n0\r\n\r\n", -413, "", 10),
    CM("6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n", -413, "abcdef", 10),
    CM("ffffffffffffffff\r\n", -413, "", UINT64_MAX - 1),
};

static const size_t ncases = sizeof cases / sizeof cases[0];
static size_t cur;
static char case_name[256];

static const char *visible(const char *s, size_t n)
{
    static char out[200];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < sizeof out; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", c);
    }
    out[o] = 0;
    return out;
}

struct run {
    int ret;
    size_t in, out;
    char body[256];
};

/* Decodes `s` offering the bytes in steps: the first call sees `first` bytes, later
 * calls `step` more each (step 0: all the rest at once). Stops at the first nonzero
 * result. */
static void decode(const struct ccase *c, size_t first, size_t step, struct run *r)
{
    char *b = place(c->in, c->len);
    struct chopin__chunked st;
    uint64_t max = c->max_body ? c->max_body : 1u << 20;
    chopin__chunked_init(&st);
    size_t in = 0, out = 0, avail = first;
    int ret;
    for (;;) {
        size_t before = in;
        ret = chopin__chunked_decode(&st, b, avail, &in, &out, max);
        CHECK(out <= in);
        CHECK(in <= avail);
        CHECK(in >= before);
        CHECK(st.total == out);
        if (ret != 0 || avail == c->len) break;
        avail = step == 0 || c->len - avail < step ? c->len : avail + step;
    }
    r->ret = ret;
    r->in = in;
    r->out = out;
    memcpy(r->body, b, out < sizeof r->body ? out : sizeof r->body);
    if (ret != 0) { /* a finished or failed decoder stays so, and consumes nothing more */
        size_t in2 = in, out2 = out;
        CHECK_INT(chopin__chunked_decode(&st, b, c->len, &in2, &out2, max), ret);
        CHECK_INT(in2, in);
        CHECK_INT(out2, out);
    }
}

static void test_case(void)
{
    const struct ccase *c = &cases[cur];
    snprintf(case_name, sizeof case_name, "case %zu \"%s\"", cur, visible(c->in, c->len));
    test_case_name = case_name;

    struct run whole, r;
    decode(c, c->len, 0, &whole);
    int want = c->want;
    CHECK_INT(whole.ret, want);
    if (want >= 0) {
        CHECK_MEM(whole.body, whole.out, c->body);
        if (want == 1) CHECK_INT(whole.in, c->consumed ? c->consumed : c->len);
        if (want == 0) CHECK_INT(whole.in, c->len);
    } else if (want == -400 || want == -413) {
        /* the payload before the fault was delivered */
        CHECK(whole.out >= strlen(c->body));
    }
    /* every split into two calls, and one byte per call, give the same result */
    for (size_t k = 0; k <= c->len; k++) {
        decode(c, k, 0, &r);
        if (r.ret != whole.ret || r.in != whole.in || r.out != whole.out ||
            memcmp(r.body, whole.body, r.out < sizeof r.body ? r.out : sizeof r.body)) {
            fprintf(stderr, "  split at %zu: ret %d in %zu out %zu (whole: %d %zu %zu)\n", k,
                    r.ret, r.in, r.out, whole.ret, whole.in, whole.out);
            CHECK(0);
            break;
        }
    }
    decode(c, 0, 1, &r);
    CHECK_INT(r.ret, whole.ret);
    CHECK_INT(r.in, whole.in);
    CHECK_INT(r.out, whole.out);
    CHECK(memcmp(r.body, whole.body, r.out < sizeof r.body ? r.out : sizeof r.body) == 0);
}

/* A bare CR after the final CRLF belongs to the next message: the decoder stops before it. */
static void test_stops_at_end(void)
{
    test_case_name = "stops_at_end";
    char *b = place("0\r\n\r\n\r", 6);
    struct chopin__chunked st;
    size_t in = 0, out = 0;
    chopin__chunked_init(&st);
    CHECK_INT(chopin__chunked_decode(&st, b, 6, &in, &out, 100), 1);
    CHECK_INT(in, 5);
    CHECK_INT(out, 0);
}

static void test_limits(void)
{
    test_case_name = "line_limits";
    static char body[16384];
    struct chopin__chunked st;
    size_t in, out;

    /* a size line of 4093 digits, CR, LF (4095 bytes) is fine; 4097 bytes of digits
     * without an end are not */
    memset(body, '0', sizeof body);
    memcpy(body + 4092, "5\r\n", 3);
    memcpy(body + 4095, "hello\r\n0\r\n\r\n", 12);
    chopin__chunked_init(&st);
    in = out = 0;
    CHECK_INT(chopin__chunked_decode(&st, place(body, 4095 + 12), 4095 + 12, &in, &out, 100), 1);
    CHECK_INT(out, 5);

    memset(body, '0', 5000);
    chopin__chunked_init(&st);
    in = out = 0;
    CHECK_INT(chopin__chunked_decode(&st, place(body, 4096), 4096, &in, &out, 100), 0);
    chopin__chunked_init(&st);
    in = out = 0;
    CHECK_INT(chopin__chunked_decode(&st, place(body, 4097), 4097, &in, &out, 100), -400);

    memset(body, 'a', 5000);
    memcpy(body, "5;x=", 4);
    chopin__chunked_init(&st);
    in = out = 0;
    CHECK_INT(chopin__chunked_decode(&st, place(body, 5000), 5000, &in, &out, 100), -400);
    CHECK(in <= 4097);

    /* many short trailer lines: the section as a whole is bounded */
    size_t n = 0;
    memcpy(body, "0\r\n", 3);
    n = 3;
    while (n + 8 < 6000) {
        memcpy(body + n, "X: abc\r\n", 8);
        n += 8;
    }
    chopin__chunked_init(&st);
    in = out = 0;
    CHECK_INT(chopin__chunked_decode(&st, place(body, n), n, &in, &out, 100), -400);

    /* the sum of chunks is what max_body bounds */
    size_t m = 0;
    for (int i = 0; i < 100; i++) {
        memcpy(body + m, "1\r\nx\r\n", 6);
        m += 6;
    }
    memcpy(body + m, "0\r\n\r\n", 5);
    m += 5;
    chopin__chunked_init(&st);
    in = out = 0;
    CHECK_INT(chopin__chunked_decode(&st, place(body, m), m, &in, &out, 100), 1);
    CHECK_INT(out, 100);
    chopin__chunked_init(&st);
    in = out = 0;
    CHECK_INT(chopin__chunked_decode(&st, place(body, m), m, &in, &out, 99), -413);
    CHECK_INT(out, 99);
}

/* The body may start after other bytes in the buffer (the request head). */
static void test_offsets(void)
{
    test_case_name = "offsets";
    const char msg[] = "HEAD4\r\nabcd\r\n0\r\n\r\nNEXT";
    char *b = place(msg, sizeof msg - 1);
    struct chopin__chunked st;
    size_t in = 4, out = 4;
    chopin__chunked_init(&st);
    CHECK_INT(chopin__chunked_decode(&st, b, sizeof msg - 1, &in, &out, 100), 1);
    CHECK_INT(out, 8);
    CHECK_MEM(b, 8, "HEADabcd");
    CHECK_MEM(b + in, 4, "NEXT");
    /* nothing to read: no progress, no verdict */
    chopin__chunked_init(&st);
    in = out = 0;
    CHECK_INT(chopin__chunked_decode(&st, b, 0, &in, &out, 100), 0);
    CHECK_INT(in, 0);
}

/* A large body in many chunks of every size from 1 to 300 bytes. */
static void test_many_chunks(void)
{
    test_case_name = "many_chunks";
    static char enc[60000], want[50000];
    size_t e = 0, w = 0;
    for (size_t sz = 1; sz <= 300 && e + sz + 16 < sizeof enc; sz += 7) {
        e += (size_t)snprintf(enc + e, sizeof enc - e, "%zx\r\n", sz);
        for (size_t i = 0; i < sz; i++) {
            char ch = (char)('a' + (w + i) % 26);
            enc[e + i] = ch;
            want[w + i] = ch;
        }
        e += sz;
        w += sz;
        memcpy(enc + e, "\r\n", 2);
        e += 2;
    }
    memcpy(enc + e, "0\r\n\r\n", 5);
    e += 5;
    for (size_t step = 1; step < 2000; step = step * 3 + 1) {
        char *b = place(enc, e);
        struct chopin__chunked st;
        size_t in = 0, out = 0, avail = 0;
        int r = 0;
        chopin__chunked_init(&st);
        while (r == 0 && avail < e) {
            avail = avail + step < e ? avail + step : e;
            r = chopin__chunked_decode(&st, b, avail, &in, &out, sizeof want);
        }
        CHECK_INT(r, 1);
        CHECK_INT(in, e);
        CHECK_INT(out, w);
        CHECK(memcmp(b, want, w) == 0);
    }
}

int main(void)
{
    guard_init();
    for (cur = 0; cur < ncases; cur++) RUN(test_case);
    RUN(test_stops_at_end);
    RUN(test_limits);
    RUN(test_offsets);
    RUN(test_many_chunks);
    TEST_END();
}
