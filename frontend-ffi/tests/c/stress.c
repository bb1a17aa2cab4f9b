/* Two threads against the handle registry (issue 12, finding 4), as a C11 program with
 * pthreads, run by frontend-ffi/tests/c_programs.rs under ThreadSanitizer and under
 * AddressSanitizer/UndefinedBehaviorSanitizer:
 *   1. two threads step one Adam handle (n = 4096): every call is OK or GRADSTEP_BUSY,
 *      and the params equal, bit for bit, a sequential run with as many steps as OKs;
 *   2. two threads step two handles: both all OK, each equal to its sequential run;
 *   3. a free racing steps: the free succeeds, the steps are OK or BUSY until it and
 *      INVALID_HANDLE after it, never a crash;
 *   4. two threads allocate, fill, check and free gradstep buffers, each also trying
 *      to free a pointer inside its live buffer: every buffer zeroed and its own,
 *      every inner free refused;
 *   5. one handle asked for two helper threads, over a tensor large enough for its
 *      threaded step: the same bits as one thread. Under ThreadSanitizer the handle
 *      steps on the calling thread (the helper threads synchronize in code TSan cannot
 *      see, which it reported as races before session 22); elsewhere it uses them.
 * Prints "stress ok" and nothing else.
 */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradstep.h"

#define FAIL(...)                                                                  \
    do {                                                                           \
        fprintf(stdout, __VA_ARGS__);                                              \
        fprintf(stdout, "\n");                                                     \
        exit(1);                                                                   \
    } while (0)

enum { N = 4096, CALLS = 300 };

static gradstep_optimizer *make(float *p, float *g) {
    for (size_t i = 0; i < N; i++) {
        p[i] = (float)(i % 17) * 0.25f - 2.0f;
        g[i] = (float)(i % 5) * 0.5f - 1.0f;
    }
    gradstep_rule adam;
    gradstep_optimizer *opt = NULL;
    if (gradstep_rule_default(GRADSTEP_RULE_ADAM, &adam) != GRADSTEP_OK ||
        gradstep_optimizer_new(&adam, GRADSTEP_F32, &opt) != GRADSTEP_OK ||
        gradstep_optimizer_add_params_f32(opt, 0, p, g, N) != GRADSTEP_OK)
        FAIL("making an optimizer failed");
    return opt;
}

/* The params after `steps` sequential steps. */
static void sequential(float *p, size_t steps) {
    float *g = malloc(N * sizeof *g);
    if (!g) FAIL("out of memory");
    gradstep_optimizer *opt = make(p, g);
    for (size_t t = 0; t < steps; t++)
        if (gradstep_optimizer_step(opt) != GRADSTEP_OK) FAIL("sequential step failed");
    if (gradstep_optimizer_free(opt) != GRADSTEP_OK) FAIL("free failed");
    free(g);
}

typedef struct {
    gradstep_optimizer *opt;
    size_t ok, busy, invalid, other;
    pthread_barrier_t *start;
} worker;

static void *stepper(void *arg) {
    worker *w = arg;
    pthread_barrier_wait(w->start);
    for (int i = 0; i < CALLS; i++) {
        switch (gradstep_optimizer_step(w->opt)) {
        case GRADSTEP_OK:
            if (w->invalid) w->other++; /* stepped after it was refused as freed */
            w->ok++;
            break;
        case GRADSTEP_BUSY: w->busy++; break;
        case GRADSTEP_INVALID_HANDLE: w->invalid++; break;
        default: w->other++;
        }
    }
    return NULL;
}

typedef struct {
    int id;
    size_t bad;
    pthread_barrier_t *start;
} churner;

static void *churn(void *arg) {
    churner *c = arg;
    pthread_barrier_wait(c->start);
    for (int i = 0; i < CALLS; i++) {
        size_t n = 1 + (size_t)((i * 37 + c->id * 11) % 3000);
        float *b = NULL;
        if (gradstep_buffer_new_f32(n, &b) != GRADSTEP_OK) { c->bad++; continue; }
        for (size_t k = 0; k < n; k++) c->bad += b[k] != 0.0f;
        for (size_t k = 0; k < n; k++) b[k] = (float)c->id;
        if (gradstep_buffer_free(b + n / 2 + 1) != GRADSTEP_INVALID_HANDLE) c->bad++;
        for (size_t k = 0; k < n; k++) c->bad += b[k] != (float)c->id;
        if (gradstep_buffer_free(b) != GRADSTEP_OK) c->bad++;
    }
    return NULL;
}

static void same(const float *a, const float *b, const char *what) {
    if (memcmp(a, b, N * sizeof *a)) {
        size_t wrong = 0;
        for (size_t i = 0; i < N; i++) wrong += memcmp(&a[i], &b[i], sizeof *a) != 0;
        FAIL("%s: %zu params differ from the sequential run", what, wrong);
    }
}

int main(void) {
    float *p = malloc(N * sizeof *p), *g = malloc(N * sizeof *g);
    float *p2 = malloc(N * sizeof *p2), *g2 = malloc(N * sizeof *g2);
    float *want = malloc(N * sizeof *want);
    if (!p || !g || !p2 || !g2 || !want) FAIL("out of memory");
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);

    /* 1. One handle, two threads. */
    gradstep_optimizer *opt = make(p, g);
    worker w[2] = {{opt, 0, 0, 0, 0, &start}, {opt, 0, 0, 0, 0, &start}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, stepper, &w[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    size_t ok = w[0].ok + w[1].ok;
    if (w[0].other + w[1].other + w[0].invalid + w[1].invalid) FAIL("a step was neither OK nor BUSY");
    /* A BUSY means the other thread's call was inside and succeeds; how many of each
     * depends on scheduling, so only this much is certain. */
    if (ok == 0) FAIL("all %d calls were refused", 2 * CALLS);
    if (gradstep_optimizer_free(opt) != GRADSTEP_OK) FAIL("free failed");
    sequential(want, ok);
    same(p, want, "one handle on two threads");

    /* 2. Two handles, two threads. */
    gradstep_optimizer *a = make(p, g), *b = make(p2, g2);
    worker v[2] = {{a, 0, 0, 0, 0, &start}, {b, 0, 0, 0, 0, &start}};
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, stepper, &v[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    if (v[0].ok != CALLS || v[1].ok != CALLS) FAIL("two handles: %zu and %zu OK", v[0].ok, v[1].ok);
    sequential(want, CALLS);
    same(p, want, "handle a");
    same(p2, want, "handle b");
    if (gradstep_optimizer_free(a) != GRADSTEP_OK || gradstep_optimizer_free(b) != GRADSTEP_OK)
        FAIL("free failed");

    /* 3. A free racing steps. */
    for (int round = 0; round < 20; round++) {
        gradstep_optimizer *h = make(p, g);
        worker x = {h, 0, 0, 0, 0, &start};
        pthread_create(&t[0], NULL, stepper, &x);
        pthread_barrier_wait(&start);
        if (gradstep_optimizer_free(h) != GRADSTEP_OK) FAIL("racing free failed");
        pthread_join(t[0], NULL);
        if (x.other) FAIL("a step after the free succeeded, or an unexpected status");
        if (gradstep_optimizer_free(h) != GRADSTEP_INVALID_HANDLE) FAIL("double free accepted");
        if (gradstep_optimizer_step(h) != GRADSTEP_INVALID_HANDLE) FAIL("freed handle stepped");
    }

    /* 4. Buffers from two threads. */
    churner c[2] = {{1, 0, &start}, {2, 0, &start}};
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, churn, &c[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    if (c[0].bad + c[1].bad) FAIL("buffers: %zu and %zu wrong", c[0].bad, c[1].bad);
    /* 5. Helper threads. */
    enum { BIG = 1 << 18 };
    float *bp[2], *bg = malloc(BIG * sizeof *bg);
    if (!bg) FAIL("out of memory");
    for (size_t i = 0; i < BIG; i++) bg[i] = (float)(i % 7) * 0.25f - 0.75f;
    for (int k = 0; k < 2; k++) {
        gradstep_rule adam;
        gradstep_optimizer *h = NULL;
        bp[k] = malloc(BIG * sizeof *bp[k]);
        if (!bp[k]) FAIL("out of memory");
        for (size_t i = 0; i < BIG; i++) bp[k][i] = (float)(i % 11) * 0.5f - 2.5f;
        if (gradstep_rule_default(GRADSTEP_RULE_ADAM, &adam) != GRADSTEP_OK ||
            gradstep_optimizer_new(&adam, GRADSTEP_F32, &h) != GRADSTEP_OK ||
            gradstep_optimizer_add_params_f32(h, 0, bp[k], bg, BIG) != GRADSTEP_OK ||
            gradstep_optimizer_set_threads(h, k ? 2 : 1) != GRADSTEP_OK)
            FAIL("making the large optimizer failed");
        for (int t = 0; t < 3; t++)
            if (gradstep_optimizer_step(h) != GRADSTEP_OK) FAIL("large step failed");
        if (gradstep_optimizer_free(h) != GRADSTEP_OK) FAIL("free failed");
    }
    if (memcmp(bp[0], bp[1], BIG * sizeof *bp[0])) FAIL("two threads: other bits than one");
    free(bp[0]);
    free(bp[1]);
    free(bg);

    pthread_barrier_destroy(&start);
    free(p);
    free(g);
    free(p2);
    free(g2);
    free(want);
    printf("stress ok\n");
    return 0;
}
