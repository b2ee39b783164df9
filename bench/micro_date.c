/* SPDX-License-Identifier: MIT */
/*
 * Cost of the Date header cache: chopin__date_update when the second has not changed (the
 * per-loop-turn case), the same with time(NULL) read each call (vDSO), and a full
 * chopin__date_format (once a second per worker). Best of several rounds, in ns per call.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "http/date.h"

#define ROUNDS 5

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* `volatile` keeps the compiler from proving the argument constant across iterations. */
static volatile time_t fixed_second = 1700000000;
static volatile int sink;

static double bench_update_same_second(long iters)
{
    struct chopin__date d = {0};
    chopin__date_update(&d, fixed_second);
    double start = now_ns();
    int changed = 0;
    for (long i = 0; i < iters; i++)
        changed += chopin__date_update(&d, fixed_second);
    double elapsed = now_ns() - start;
    sink = changed + d.text[0];
    return elapsed / (double)iters;
}

static double bench_update_with_time(long iters)
{
    struct chopin__date d = {0};
    double start = now_ns();
    int changed = 0;
    for (long i = 0; i < iters; i++)
        changed += chopin__date_update(&d, time(NULL));
    double elapsed = now_ns() - start;
    sink = changed + d.text[0];
    return elapsed / (double)iters;
}

static double bench_format(long iters)
{
    char out[CHOPIN__DATE_LEN + 1];
    time_t t = fixed_second;
    double start = now_ns();
    for (long i = 0; i < iters; i++)
        chopin__date_format(t + i * 86401, out); /* a different day each call */
    double elapsed = now_ns() - start;
    sink = out[0];
    return elapsed / (double)iters;
}

static double best_of(double (*fn)(long), long iters)
{
    double best = fn(iters / 10); /* warm-up */
    for (int r = 0; r < ROUNDS; r++) {
        double ns = fn(iters);
        if (ns < best)
            best = ns;
    }
    return best;
}

int main(void)
{
    printf("date_update (same second)      %8.2f ns/call\n",
           best_of(bench_update_same_second, 100000000));
    printf("date_update + time(NULL)       %8.2f ns/call\n",
           best_of(bench_update_with_time, 20000000));
    printf("date_format (full)             %8.2f ns/call\n", best_of(bench_format, 10000000));
    return 0;
}
