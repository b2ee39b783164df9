/* SPDX-License-Identifier: MIT */
/*
 * A tiny test harness. Each test binary runs its cases with RUN() and ends with
 * TEST_END(), which prints "RESULT <passed> <failed>" for tests/run.sh to total.
 */
#ifndef CHOPIN_TEST_H
#define CHOPIN_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int test_passed, test_failed, test_case_failed;
static const char *test_case_name;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "  FAIL %s (%s:%d): %s\n", test_case_name, __FILE__, __LINE__, \
                    #cond);                                                             \
            test_case_failed = 1;                                                       \
        }                                                                               \
    } while (0)

#define CHECK_INT(a, b)                                                                 \
    do {                                                                                \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                 \
        if (check_a_ != check_b_) {                                                     \
            fprintf(stderr, "  FAIL %s (%s:%d): %s == %lld, expected %lld\n",           \
                    test_case_name, __FILE__, __LINE__, #a, check_a_, check_b_);         \
            test_case_failed = 1;                                                       \
        }                                                                               \
    } while (0)

/* Compares len bytes at p with the NUL-terminated string s. */
#define CHECK_MEM(p, len, s)                                                            \
    do {                                                                                \
        const char *check_p_ = (const char *)(p);                                       \
        size_t check_l_ = (size_t)(len);                                                \
        const char *check_s_ = (s);                                                     \
        if (check_l_ != strlen(check_s_) || (check_l_ && memcmp(check_p_, check_s_, check_l_))) { \
            fprintf(stderr, "  FAIL %s (%s:%d): %s == \"%.*s\", expected \"%s\"\n",      \
                    test_case_name, __FILE__, __LINE__, #p, (int)(check_p_ ? check_l_ : 0), \
                    check_p_ ? check_p_ : "", check_s_);                                \
            test_case_failed = 1;                                                       \
        }                                                                               \
    } while (0)

/* Compares the NUL-terminated strings a and s. */
#define CHECK_STR(a, s)                                                                 \
    do {                                                                                \
        const char *check_str_ = (a);                                                   \
        CHECK_MEM(check_str_, strlen(check_str_), s);                                   \
    } while (0)

#define RUN(fn)                                                                         \
    do {                                                                                \
        test_case_name = #fn;                                                           \
        test_case_failed = 0;                                                           \
        fn();                                                                           \
        if (test_case_failed) {                                                         \
            test_failed++;                                                              \
            fprintf(stderr, "not ok %s\n", #fn);                                        \
        } else {                                                                        \
            test_passed++;                                                              \
        }                                                                               \
    } while (0)

#define TEST_END()                                                                      \
    do {                                                                                \
        printf("RESULT %d %d\n", test_passed, test_failed);                            \
        return test_failed ? 1 : 0;                                                     \
    } while (0)

/* stderr captured between capture_begin() and capture_end(), for tests whose behaviour
 * is a message (configuration errors, start failures). capture_end returns the text,
 * valid until the next capture. */
static char test_captured[8192];
static int test_saved_stderr = -1;
static FILE *test_capture_file;

static inline void capture_begin(void) {
    fflush(stderr);
    test_capture_file = tmpfile();
    test_saved_stderr = dup(2);
    dup2(fileno(test_capture_file), 2);
}

static inline const char *capture_end(void) {
    fflush(stderr);
    dup2(test_saved_stderr, 2);
    close(test_saved_stderr);
    rewind(test_capture_file);
    size_t n = fread(test_captured, 1, sizeof test_captured - 1, test_capture_file);
    test_captured[n] = '\0';
    fclose(test_capture_file);
    return test_captured;
}

#endif
