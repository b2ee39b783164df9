/* SPDX-License-Identifier: MIT */
/*
 * The multipart/form-data parser (src/http/multipart.c) over RFC 7578 / RFC 2046 edge
 * cases. Every case is fed whole, cut in two at every byte, and a byte at a time: the
 * transcript of callbacks (part headers, data joined, part ends) must be the same each
 * time, and each piece is a heap copy of exactly its size, so ASan sees any over-read.
 */
#include <errno.h>
#include <stdlib.h>

#include "http/multipart.h"
#include "test.h"

/* What the callbacks saw: "[name|filename|type]data<" per part; data pieces joined. */
struct transcript {
    char text[4096];
    size_t len;
    int fail_at_part; /* nonzero: the part callback of that part fails with -EIO */
};

static void put(struct transcript *t, const char *p, size_t n) {
    if (t->len + n < sizeof t->text) {
        memcpy(t->text + t->len, p, n);
        t->len += n;
        t->text[t->len] = '\0';
    }
}

static void put_opt(struct transcript *t, const char *p, size_t n) {
    if (p)
        put(t, p, n);
    else
        put(t, "-", 1);
}

static int on_part(void *arg, const struct chopin__mp_part *part) {
    struct transcript *t = arg;
    put(t, "[", 1);
    put_opt(t, part->name, part->name_len);
    put(t, "|", 1);
    put_opt(t, part->filename, part->filename_len);
    put(t, "|", 1);
    put_opt(t, part->content_type, part->content_type_len);
    put(t, "]", 1);
    if (t->fail_at_part && --t->fail_at_part == 0)
        return -EIO;
    return 0;
}

static int on_data(void *arg, const char *p, size_t n) {
    put(arg, p, n);
    return 0;
}

static int on_end(void *arg) {
    put(arg, "<", 1);
    return 0;
}

static const struct chopin__mp_callbacks cbs = {on_part, on_data, on_end};

/* Feeds `body` cut at the offsets in cuts[0..ncuts); returns the transcript's result:
 * the feed's error, else chopin__mp_finish's. */
static int run_cut(const char *boundary, const char *body, size_t len, const size_t *cuts,
                   size_t ncuts, struct transcript *t, uint32_t hcap, uint32_t max_parts) {
    struct chopin__multipart mp;
    char *hbuf = malloc(hcap);
    int rc = chopin__mp_init(&mp, boundary, strlen(boundary), hbuf, hcap, max_parts, &cbs, t);
    size_t at = 0;
    for (size_t i = 0; rc == 0 && i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        char *piece = malloc(to - at + 1);
        memcpy(piece, body + at, to - at);
        if (to > at)
            rc = chopin__mp_feed(&mp, piece, to - at);
        free(piece);
        at = to;
    }
    if (rc == 0)
        rc = chopin__mp_finish(&mp);
    free(hbuf);
    return rc;
}

struct mcase {
    const char *what, *boundary, *body, *expect;
    int rc;
};

#define CRLF "\r\n"
static const struct mcase cases[] = {
    {"two fields", "XyZ",
     "--XyZ" CRLF "Content-Disposition: form-data; name=\"a\"" CRLF CRLF "one" CRLF
     "--XyZ" CRLF "Content-Disposition: form-data; name=\"b\"" CRLF CRLF "two" CRLF "--XyZ--" CRLF,
     "[a|-|-]one<[b|-|-]two<", 0},
    {"preamble and epilogue", "b",
     "this is a preamble" CRLF "--b" CRLF "Content-Disposition: form-data; name=x" CRLF CRLF "v" CRLF
     "--b--" CRLF "epilogue --b" CRLF "junk",
     "[x|-|-]v<", 0},
    {"preamble that ends in a CRLF before the first delimiter", "b",
     CRLF "--b" CRLF "Content-Disposition: form-data; name=x" CRLF CRLF "v" CRLF "--b--",
     "[x|-|-]v<", 0},
    {"file with type", "----WebKitFormBoundary7MA4YWxkTrZu0gW",
     "------WebKitFormBoundary7MA4YWxkTrZu0gW" CRLF
     "Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"" CRLF
     "Content-Type: text/plain" CRLF CRLF "hello" CRLF "world" CRLF
     "------WebKitFormBoundary7MA4YWxkTrZu0gW--" CRLF,
     "[file|a.txt|text/plain]hello" CRLF "world<", 0},
    {"boundary text inside data, not at a line start", "abc",
     "--abc" CRLF "Content-Disposition: form-data; name=f" CRLF CRLF "x--abc y" CRLF "-abc" CRLF "--ab" CRLF
     "--abc--",
     "[f|-|-]x--abc y" CRLF "-abc" CRLF "--ab<", 0},
    {"CR and LF runs in data", "q",
     "--q" CRLF "Content-Disposition: form-data; name=f" CRLF CRLF "\r\r\n\n\r\n-\r\n--\r" CRLF "--q--",
     "[f|-|-]\r\r\n\n\r\n-\r\n--\r<", 0},
    {"empty parts", "q",
     "--q" CRLF "Content-Disposition: form-data; name=a" CRLF CRLF CRLF "--q" CRLF
     "Content-Disposition: form-data; name=b" CRLF CRLF CRLF "--q--",
     "[a|-|-]<[b|-|-]<", 0},
    {"transport padding after delimiters", "q",
     "--q \t " CRLF "Content-Disposition: form-data; name=a" CRLF CRLF "1" CRLF "--q\t" CRLF
     "Content-Disposition: form-data; name=b" CRLF CRLF "2" CRLF "--q--  " CRLF,
     "[a|-|-]1<[b|-|-]2<", 0},
    {"filename does not fool name", "q",
     "--q" CRLF "Content-Disposition: form-data; filename=\"name=evil\"; name=\"real\"" CRLF CRLF "d" CRLF "--q--",
     "[real|name=evil|-]d<", 0},
    {"quoted-pairs and semicolons in quotes", "q",
     "--q" CRLF "Content-Disposition: form-data; name=\"a;b\\\"c\"; filename=\"x\\\\y.txt\"" CRLF CRLF "d" CRLF "--q--",
     "[a;b\"c|x\\y.txt|-]d<", 0},
    {"filename* (RFC 8187) wins", "q",
     "--q" CRLF "content-disposition: FORM-DATA; Name=f; filename=\"fallback.txt\"; "
     "filename*=UTF-8''%e2%82%ac%20rates.txt" CRLF CRLF "d" CRLF "--q--",
     "[f|\xe2\x82\xac rates.txt|-]d<", 0},
    {"filename* first, then filename", "q",
     "--q" CRLF "Content-Disposition: form-data; name=f; filename*=utf-8'en'%41.txt; filename=b.txt" CRLF CRLF
     "d" CRLF "--q--",
     "[f|A.txt|-]d<", 0},
    {"filename* in another charset is ignored", "q",
     "--q" CRLF "Content-Disposition: form-data; name=f; filename=b.txt; filename*=iso-8859-1''%e9.txt" CRLF CRLF
     "d" CRLF "--q--",
     "[f|b.txt|-]d<", 0},
    {"empty filename", "q",
     "--q" CRLF "Content-Disposition: form-data; name=f; filename=\"\"" CRLF CRLF CRLF "--q--",
     "[f||-]<", 0},
    {"UTF-8 raw in quotes", "q",
     "--q" CRLF "Content-Disposition: form-data; name=\"\xc3\xa9t\xc3\xa9\"" CRLF CRLF "d" CRLF "--q--",
     "[\xc3\xa9t\xc3\xa9|-|-]d<", 0},
    {"body is only the close delimiter", "q", "--q--", "", 0},
    {"missing closing delimiter", "q",
     "--q" CRLF "Content-Disposition: form-data; name=a" CRLF CRLF "abc", "[a|-|-]abc", -EINVAL},
    {"truncated inside the closing delimiter", "q",
     "--q" CRLF "Content-Disposition: form-data; name=a" CRLF CRLF "abc" CRLF "--q-", "[a|-|-]abc<", -EINVAL},
    {"empty body", "q", "", "", -EINVAL},
    {"no delimiter at all", "q", "just text" CRLF "--qq", "", -EINVAL},
    {"junk after a delimiter", "q",
     "--q" CRLF "Content-Disposition: form-data; name=a" CRLF CRLF "x" CRLF "--qz" CRLF, "[a|-|-]x<", -EINVAL},
    {"a single dash after a delimiter", "q", "--q-x", "", -EINVAL},
    {"bare LF after a delimiter", "q", "--q\nContent-Disposition: form-data; name=a" CRLF CRLF, "", -EINVAL},
    {"no Content-Disposition", "q", "--q" CRLF "Content-Type: text/plain" CRLF CRLF "x" CRLF "--q--", "", -EINVAL},
    {"not form-data", "q", "--q" CRLF "Content-Disposition: attachment; name=a" CRLF CRLF "x" CRLF "--q--", "",
     -EINVAL},
    {"no name", "q", "--q" CRLF "Content-Disposition: form-data; filename=a" CRLF CRLF "x" CRLF "--q--", "",
     -EINVAL},
    {"name twice", "q", "--q" CRLF "Content-Disposition: form-data; name=a; name=b" CRLF CRLF "x" CRLF "--q--",
     "", -EINVAL},
    {"two Content-Disposition lines", "q",
     "--q" CRLF "Content-Disposition: form-data; name=a" CRLF "Content-Disposition: form-data; name=b" CRLF CRLF
     "x" CRLF "--q--", "", -EINVAL},
    {"unclosed quote", "q", "--q" CRLF "Content-Disposition: form-data; name=\"a" CRLF CRLF "x" CRLF "--q--", "",
     -EINVAL},
    {"folded header line", "q",
     "--q" CRLF "Content-Disposition: form-data;" CRLF " name=a" CRLF CRLF "x" CRLF "--q--", "", -EINVAL},
    {"bare LF ending a header line", "q", "--q" CRLF "Content-Disposition: form-data; name=a\n" CRLF "x" CRLF "--q--",
     "", -EINVAL},
    {"stray CR in a header", "q", "--q" CRLF "Content-Disposition: form-data;\r name=a" CRLF CRLF "x" CRLF "--q--",
     "", -EINVAL},
    {"part without headers", "q", "--q" CRLF CRLF "x" CRLF "--q--", "", -EINVAL},
};

static void run_case(const struct mcase *c, const size_t *cuts, size_t ncuts, const char *how) {
    struct transcript t = {.len = 0};
    t.text[0] = '\0';
    int rc = run_cut(c->boundary, c->body, strlen(c->body), cuts, ncuts, &t, 1024, 100);
    if (rc != c->rc || strcmp(t.text, c->expect) != 0) {
        fprintf(stderr, "  case \"%s\" (%s): rc %d (want %d), got \"%s\"\n", c->what, how, rc, c->rc,
                t.text);
        test_case_failed = 1;
    }
}

static void corpus_every_split(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct mcase *c = &cases[i];
        size_t len = strlen(c->body);
        run_case(c, NULL, 0, "whole");
        for (size_t cut = 0; cut <= len; cut++)
            run_case(c, &cut, 1, "two pieces");
        for (size_t a = 0; a <= len && len < 200; a++)
            for (size_t b = a; b <= len; b++) {
                size_t cuts[2] = {a, b};
                run_case(c, cuts, 2, "three pieces");
            }
        size_t *bytes = malloc((len + 1) * sizeof *bytes);
        for (size_t k = 0; k < len; k++)
            bytes[k] = k;
        run_case(c, bytes, len, "byte at a time");
        free(bytes);
    }
}

static void limits(void) {
    const char *body = "--q" CRLF "Content-Disposition: form-data; name=a" CRLF CRLF "1" CRLF "--q" CRLF
                       "Content-Disposition: form-data; name=b" CRLF CRLF "2" CRLF "--q--";
    struct transcript t = {.len = 0};
    CHECK_INT(run_cut("q", body, strlen(body), NULL, 0, &t, 1024, 1), -EFBIG);
    CHECK_STR(t.text, "[a|-|-]1<");
    t.len = 0;
    t.text[0] = '\0';
    CHECK_INT(run_cut("q", body, strlen(body), NULL, 0, &t, 1024, 2), 0);
    /* The header block "Content-Disposition: form-data; name=a\r\n\r\n" is 42 bytes. */
    t.len = 0;
    CHECK_INT(run_cut("q", body, strlen(body), NULL, 0, &t, 41, 10), -EFBIG);
    t.len = 0;
    CHECK_INT(run_cut("q", body, strlen(body), NULL, 0, &t, 42, 10), 0);
}

static void callback_error_sticks(void) {
    const char *body = "--q" CRLF "Content-Disposition: form-data; name=a" CRLF CRLF "1" CRLF "--q--";
    struct transcript t = {.fail_at_part = 1};
    CHECK_INT(run_cut("q", body, strlen(body), NULL, 0, &t, 1024, 10), -EIO);
    CHECK_STR(t.text, "[a|-|-]");
}

static void boundary_from_content_type(void) {
    const char *b;
    size_t n;
    const char *ct = "multipart/form-data; boundary=----WebKitFormBoundaryABC";
    CHECK_INT(chopin__mp_boundary(ct, strlen(ct), &b, &n), 0);
    CHECK_MEM(b, n, "----WebKitFormBoundaryABC");
    ct = "Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b:c\"";
    CHECK_INT(chopin__mp_boundary(ct, strlen(ct), &b, &n), 0);
    CHECK_MEM(b, n, "a b:c");
    static const char *bad[] = {
        "multipart/mixed; boundary=x",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\"ends in space \"",
        "multipart/form-data; boundary=x; boundary=y",
        "multipart/form-data; boundary=\"a\\b\"",
        "multipart/form-data; boundary=\"unclosed",
        "multipart/form-data; boundary=12345678901234567890123456789012345678901234567890123456789012345678901",
        "text/plain; boundary=x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (chopin__mp_boundary(bad[i], strlen(bad[i]), &b, &n) != -EINVAL) {
            fprintf(stderr, "  accepted: %s\n", bad[i]);
            test_case_failed = 1;
        }
    struct chopin__multipart mp;
    char h[8];
    CHECK_INT(chopin__mp_init(&mp, "a\r", 2, h, sizeof h, 1, &cbs, NULL), -EINVAL);
}

/* A 1 MiB part of every byte value in turn, CRLFs and near-delimiters included, fed in
 * pieces of awkward sizes: the data comes out unchanged. */
static int collect(void *arg, const char *p, size_t n) {
    struct transcript *t = arg;
    for (size_t i = 0; i < n; i++)
        t->len = t->len * 31 + (unsigned char)p[i];
    return 0;
}
static int ignore_part(void *arg, const struct chopin__mp_part *part) { return 0; }
static int ignore_end(void *arg) { return 0; }

static void large_part_in_pieces(void) {
    const char *head = "--bnd" CRLF "Content-Disposition: form-data; name=f; filename=x" CRLF CRLF;
    size_t dlen = 1 << 20, hl = strlen(head);
    char *body = malloc(hl + dlen + 16);
    memcpy(body, head, hl);
    size_t want = 0;
    for (size_t i = 0; i < dlen; i++) {
        static const char near[] = "\r\n--bn\r\n-";
        char c = i % 7 == 0 ? near[(i / 7) % 9] : (char)(i * 131);
        body[hl + i] = c;
        want = want * 31 + (unsigned char)c;
    }
    memcpy(body + hl + dlen, CRLF "--bnd--", 9);
    size_t len = hl + dlen + 9;
    struct chopin__mp_callbacks c = {ignore_part, collect, ignore_end};
    static const size_t steps[] = {1, 3, 7, 4096, 65536, 100003};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        struct transcript t = {.len = 0};
        struct chopin__multipart mp;
        char h[256];
        chopin__mp_init(&mp, "bnd", 3, h, sizeof h, 10, &c, &t);
        int rc = 0;
        for (size_t at = 0; at < len && rc == 0; at += steps[s])
            rc = chopin__mp_feed(&mp, body + at, at + steps[s] < len ? steps[s] : len - at);
        CHECK_INT(rc, 0);
        CHECK_INT(chopin__mp_finish(&mp), 0);
        CHECK(t.len == want);
    }
    free(body);
}

int main(void) {
    RUN(corpus_every_split);
    RUN(limits);
    RUN(callback_error_sticks);
    RUN(boundary_from_content_type);
    RUN(large_part_in_pieces);
    TEST_END();
}
