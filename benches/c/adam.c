/* The plain C loop of f32 Adam (torch's formulas, lr 1e-3, default betas and eps): the
 * compute limit that benches/speed.rs compares gradstep against. Build it the way the
 * issue states the comparison: `cc -O3 -march=native -fno-math-errno` (the compiler may
 * vectorize and fuse multiply-adds as it likes).
 *
 * Usage: adam cpu|wall|calls MS FIRST N... ; for each N: allocates, runs one warm-up step
 * (step number FIRST: 1 from fresh state, T + 1 to resume after T steps, where the bias
 * corrections of a long run have rounded to 1; the loop divides by them all the same),
 * then steps for MS milliseconds (at least twice) of the thread's CPU time or of wall
 * time, and prints "N Gparam/s" (params updated per second / 1e9), one line per N.
 * `calls` (x86-64) times each step alone between fenced readings of the time-stamp
 * counter, for MS milliseconds of CPU time, and reports the median step, as
 * benches/common/clock.rs does for the Rust columns.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

/* Not inlined: a step is a call, as a library's would be (inlined into the batch loop of
 * main, gcc vectorized it worse and 4K ran 3.5x slower). */
__attribute__((noinline)) static void adam(float *restrict p, const float *restrict g, float *restrict m,
                 float *restrict v, size_t n, long t) {
    const double beta1 = 0.9, beta2 = 0.999, lr = 1e-3;
    const double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    const float w = (float)(1.0 - beta1), b2 = (float)beta2, omb2 = (float)(1.0 - beta2);
    const float bc2_sqrt = (float)sqrt(bc2), eps = 1e-8f;
    const float neg_step = (float)(-(lr / bc1));
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = m[i] + w * (gi - m[i]);
        float vi = v[i] * b2 + omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] + neg_step * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

/* n zeroed floats from a 4096-byte boundary, or NULL. */
static float *page_alloc(size_t n) {
    size_t bytes = (n * sizeof(float) + 4095) / 4096 * 4096;
    float *x = aligned_alloc(4096, bytes);
    if (x) {
        memset(x, 0, bytes);
    }
    return x;
}
static clockid_t clock_id = CLOCK_THREAD_CPUTIME_ID;

static double now(void) {
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(__x86_64__)
/* The time-stamp counter, fenced: the step between two readings neither starts before
 * the first nor ends after the second. */
static unsigned long long ticks(void) {
    _mm_lfence();
    unsigned long long t = __rdtsc();
    _mm_lfence();
    return t;
}

static int by_value(const void *a, const void *b) {
    unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
    return (x > y) - (x < y);
}

/* Ticks per second (measured against the monotonic clock for 50 ms) and the median ticks
 * between two readings with nothing between them, as clock.rs measures them. */
static double tick_rate;
static unsigned long long timer_ticks;

static int calibrate(void) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    unsigned long long t0 = ticks();
    double secs;
    do {
        clock_gettime(CLOCK_MONOTONIC, &b);
        secs = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    } while (secs < 0.05);
    tick_rate = (double)(ticks() - t0) / secs;
    enum { PAIRS = 100001 };
    unsigned long long *d = malloc(PAIRS * sizeof *d);
    if (!d) {
        return 0;
    }
    for (int i = 0; i < PAIRS; i++) {
        unsigned long long t = ticks();
        d[i] = ticks() - t;
    }
    qsort(d, PAIRS, sizeof *d, by_value);
    timer_ticks = d[PAIRS / 2];
    free(d);
    return 1;
}
#endif

/* Gparam/s of steps t, t + 1, ... over `budget` seconds of the clock (at least two steps).
 * The clock is read once per batch of about 64K params (a system call for the thread's
 * CPU time, as long as a small step), as benches/speed.rs does. */
static double batched_gps(float *p, const float *g, float *m, float *v, size_t n, long t,
                          double budget) {
    long batch = (long)((65536 + n - 1) / n);
    long reps = 0;
    double start = now(), secs;
    do {
        for (long b = 0; b < batch; b++) {
            adam(p, g, m, v, n, t++);
        }
        reps += batch;
        secs = now() - start;
    } while (reps < 2 || secs < budget);
    return (double)n * (double)reps / secs / 1e9;
}

/* Gparam/s of the median step, each timed alone by the time-stamp counter, steps made for
 * `budget` seconds of CPU time (at least three); -1 if out of memory or not x86-64. */
static double per_call_gps(float *p, const float *g, float *m, float *v, size_t n, long t,
                           double budget) {
#if defined(__x86_64__)
    size_t cap = 1 << 16, len = 0;
    unsigned long long *times = malloc(cap * sizeof *times);
    if (!times) {
        return -1;
    }
    long calls = (long)((65536 + n - 1) / n);
    if (calls > 256) {
        calls = 256;
    }
    double start = now();
    do {
        for (long b = 0; b < calls; b++) {
            if (len == cap) {
                unsigned long long *more = realloc(times, 2 * cap * sizeof *times);
                if (!more) {
                    free(times);
                    return -1;
                }
                times = more;
                cap *= 2;
            }
            unsigned long long t0 = ticks();
            adam(p, g, m, v, n, t++);
            times[len++] = ticks() - t0;
        }
    } while (len < 3 || now() - start < budget);
    qsort(times, len, sizeof *times, by_value);
    unsigned long long median = times[len / 2];
    median = median > timer_ticks ? median - timer_ticks : 1;
    free(times);
    return (double)n / ((double)median / tick_rate) / 1e9;
#else
    (void)p, (void)g, (void)m, (void)v, (void)n, (void)t, (void)budget;
    return -1;
#endif
}

int main(int argc, char **argv) {
    if (argc < 4) {
        return 2;
    }
    int per_call = 0;
    if (strcmp(argv[1], "wall") == 0) {
        clock_id = CLOCK_MONOTONIC;
    } else if (strcmp(argv[1], "calls") == 0) {
#if defined(__x86_64__)
        per_call = 1;
        if (!calibrate()) {
            return 1;
        }
#else
        return 2;
#endif
    }
    double budget = strtod(argv[2], NULL) * 1e-3;
    long first = strtol(argv[3], NULL, 10);
    if (first < 1) {
        return 2;
    }
    for (int a = 4; a < argc; a++) {
        size_t n = (size_t)strtoull(argv[a], NULL, 10);
        if (n == 0) {
            return 2;
        }
        /* Page-aligned, as benches/speed.rs places gradstep's buffers, so that the two
         * differ only by what they do (malloc alone leaves the four streams at unrelated
         * offsets within a cache line for sizes it serves from its heap). */
        float *p = page_alloc(n), *g = page_alloc(n), *m = page_alloc(n), *v = page_alloc(n);
        if (!p || !g || !m || !v) {
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            g[i] = (float)((int)(i % 97) - 48) * 1e-3f;
            p[i] = (float)(i % 89) * 1e-2f;
        }
        long t = first;
        adam(p, g, m, v, n, t++);
        double gps = per_call ? per_call_gps(p, g, m, v, n, t, budget)
                              : batched_gps(p, g, m, v, n, t, budget);
        /* Keep the result observable. */
        volatile float sink = p[n / 2];
        (void)sink;
        free(p);
        free(g);
        free(m);
        free(v);
        if (gps < 0) {
            return 1;
        }
        printf("%zu %.6f\n", n, gps);
    }
    return 0;
}
