/* The C API as a C11 program uses it: rules as data (gradstep_rule), chosen by kind or
 * by name.
 *
 *   rules SPEC DTYPE < input     run a trajectory of the rule SPEC ("adam:lr=1e-3,...")
 *   rules --kinds                run every rule the library has, by iterating the kinds
 *   rules --errors | --cache | --checkpoints | --training | --handles | --buffers
 *   rules --schedule NAME STEPS
 *
 * Trajectory input (whitespace-separated decimal numbers): n, steps, the n initial
 * params, then steps × n gradients. Output: the n params after each step, one step per
 * line, printed so that they read back exactly (%.17g, floats widened to double). The Rust harness
 * (frontend-ffi/tests/c_programs.rs) feeds recorded PyTorch cases and compares.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "gradstep.h"

#define FAIL(...)                                                                  \
    do {                                                                           \
        fprintf(stderr, __VA_ARGS__);                                              \
        fprintf(stderr, "\n");                                                     \
        exit(1);                                                                   \
    } while (0)

#define EXPECT(call, status)                                                           \
    do {                                                                               \
        gradstep_status got_ = (call);                                                 \
        if (got_ != (status))                                                          \
            FAIL("%s:%d: %s gave %u (%s), expected %s", __FILE__, __LINE__, #call,     \
                 (unsigned)got_, gradstep_status_str(got_), #status);                  \
    } while (0)

static double read_number(void) {
    double v;
    if (scanf("%lf", &v) != 1) FAIL("input ended early");
    return v;
}

/* One recorded trajectory: the rule by name, as a config file would give it. */
static int trajectory(const char *spec, const char *dtype) {
    gradstep_rule rule;
    gradstep_status s = gradstep_rule_parse(spec, &rule);
    if (s != GRADSTEP_OK) FAIL("parse %s: %s", spec, gradstep_status_str(s));
    int is_f32 = !strcmp(dtype, "f32");
    size_t n = (size_t)read_number(), steps = (size_t)read_number(), len = 0;
    s = gradstep_rule_state_len(&rule, n, &len);
    if (s != GRADSTEP_OK) FAIL("state_len: %s", gradstep_status_str(s));
    double *p = calloc(n + 1, sizeof *p), *g = calloc(n + 1, sizeof *g);
    double *st = calloc(len + 1, sizeof *st);
    float *pf = calloc(n + 1, sizeof *pf), *gf = calloc(n + 1, sizeof *gf);
    float *stf = calloc(len + 1, sizeof *stf);
    if (!p || !g || !st || !pf || !gf || !stf) FAIL("out of memory");
    for (size_t i = 0; i < n; i++) pf[i] = (float)(p[i] = read_number());
    gradstep_scalars sc = {0};
    for (size_t t = 0; t < steps; t++) {
        for (size_t i = 0; i < n; i++) gf[i] = (float)(g[i] = read_number());
        s = is_f32 ? gradstep_rule_step_f32(&rule, &sc, pf, gf, n, stf, len)
                   : gradstep_rule_step_f64(&rule, &sc, p, g, n, st, len);
        if (s != GRADSTEP_OK) FAIL("step %zu: %s", t, gradstep_status_str(s));
        for (size_t i = 0; i < n; i++) {
            /* A float widened to double prints exactly with 17 digits. */
            printf(i ? " %.17g" : "%.17g", is_f32 ? (double)pf[i] : p[i]);
        }
        printf("\n");
    }
    if (sc.step != steps) FAIL("step count %llu", (unsigned long long)sc.step);
    free(p), free(g), free(st), free(pf), free(gf), free(stf);
    return 0;
}

/* Every rule the library knows, found by iterating the kinds (a rule added to the
 * registry is a case here without any change): its defaults by kind and by name agree,
 * it steps f32 and f64 over data that moves every parameter, and a checkpoint taken
 * mid-run restores into fresh buffers and continues with the same bits. Prints the name
 * of every rule it ran, for the harness to compare with the registry. */
static int kinds(void) {
    enum { N = 7, K = 4, M = 3, S = 4 /* the most state slices a rule has (Adan) */ };
    int ran = 0;
    for (gradstep_rule_kind kind = 0; kind <= GRADSTEP_RULE_KIND_END; kind++) {
        const char *name = gradstep_rule_name(kind);
        gradstep_rule rule, by_name;
        if (!name) {
            EXPECT(gradstep_rule_default(kind, &rule), GRADSTEP_UNKNOWN_KIND);
            continue;
        }
        EXPECT(gradstep_rule_default(kind, &rule), GRADSTEP_OK);
        EXPECT(gradstep_rule_parse(name, &by_name), GRADSTEP_OK);
        if (rule.kind != kind || by_name.kind != kind) FAIL("%s: kind", name);
        size_t len = 0, cap = 0, written = 0;
        EXPECT(gradstep_rule_state_len(&rule, N, &len), GRADSTEP_OK);
        if (len % N || len > S * N) FAIL("%s: state_len %zu", name, len);
        EXPECT(gradstep_checkpoint_len(&rule, GRADSTEP_F64, N, 1, &cap), GRADSTEP_OK);
        float pf[N], gf[N], sf[S * N + 1];
        double pd[N], gd[N], sd[S * N + 1], pd2[N], sd2[S * N + 1], pn[N], sn[S * N + 1];
        gradstep_scalars scf = {0}, scd = {0}, scn = {0}, sc2;
        gradstep_rule back;
        unsigned char *buf = malloc(cap);
        if (!buf) FAIL("oom");
        for (int i = 0; i < N; i++) pf[i] = (float)(pd[i] = pn[i] = 0.25 * i - 0.6);
        for (int t = 0; t < K + M; t++) {
            if (t == K) {
                EXPECT(gradstep_checkpoint_save_f64(&rule, &scd, sd, len, pd, N, buf, cap,
                                                    &written),
                       GRADSTEP_OK);
                if (written != cap) FAIL("%s: checkpoint %zu of %zu bytes", name, written, cap);
                memset(&back, 0, sizeof back);
                memset(&sc2, 0, sizeof sc2);
                EXPECT(gradstep_checkpoint_load_f64(buf, written, kind, &back, &sc2, sd2, len,
                                                    pd2, N),
                       GRADSTEP_OK);
                if (back.kind != kind || sc2.step != K) FAIL("%s: restored", name);
            }
            for (int i = 0; i < N; i++) gf[i] = (float)(gd[i] = (double)((i * 3 + t) % 5) - 1.5);
            EXPECT(gradstep_rule_step_f32(&rule, &scf, pf, gf, N, sf, len), GRADSTEP_OK);
            EXPECT(gradstep_rule_step_f64(&rule, &scd, pd, gd, N, sd, len), GRADSTEP_OK);
            /* The rule read back by name steps the same. */
            EXPECT(gradstep_rule_step_f64(&by_name, &scn, pn, gd, N, sn, len), GRADSTEP_OK);
            if (t >= K)
                EXPECT(gradstep_rule_step_f64(&back, &sc2, pd2, gd, N, sd2, len), GRADSTEP_OK);
        }
        for (int i = 0; i < N; i++) {
            if (!isfinite(pd[i]) || pd[i] == 0.25 * i - 0.6) FAIL("%s: param %d stuck", name, i);
            if (fabs((double)pf[i] - pd[i]) > 1e-3 * (1.0 + fabs(pd[i])))
                FAIL("%s: f32 %g and f64 %g differ", name, (double)pf[i], pd[i]);
        }
        if (memcmp(pd, pn, sizeof pd)) FAIL("%s: the rule by name steps differently", name);
        if (memcmp(pd, pd2, sizeof pd) || memcmp(sd, sd2, len * sizeof *sd) || scd.step != sc2.step)
            FAIL("%s: the restored run differs", name);
        free(buf);
        printf("ran %s\n", name);
        ran++;
    }
    if (!ran) FAIL("no rule ran");
    printf("kinds: ok\n");
    return 0;
}

/* The powers cache in gradstep_scalars never changes a result: steps with the cache
 * kept, cleared, or overwritten with garbage before every step give the same bits. */
static int cache_is_invisible(void) {
    enum { N = 5, STEPS = 40 };
    gradstep_rule adam;
    EXPECT(gradstep_rule_parse("adam:lr=0.01", &adam), GRADSTEP_OK);
    float p[3][N], st[3][2 * N], g[N];
    gradstep_scalars sc[3] = {{0}, {0}, {0}};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < N; i++) p[k][i] = (float)i * 0.3f - 0.7f;
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < N; i++) g[i] = (float)((i * 5 + t * 3) % 7) - 3.0f;
        memset(sc[1].cache, 0, sizeof sc[1].cache);
        memset(sc[2].cache, 0x5a + t, sizeof sc[2].cache);
        sc[2].cache[t % 14] = sc[0].cache[t % 14];
        for (int k = 0; k < 3; k++) {
            gradstep_status s = gradstep_rule_step_f32(&adam, &sc[k], p[k], g, N, st[k], 2 * N);
            if (s != GRADSTEP_OK) FAIL("cache: step %d: %s", t, gradstep_status_str(s));
        }
    }
    if (memcmp(p[0], p[1], sizeof p[0]) || memcmp(p[0], p[2], sizeof p[0]))
        FAIL("cache: params depend on the cache");
    /* A cleared cache is rebuilt: the same bases (words 0, 7) and steps (1, 8). */
    for (int w = 0; w < 14; w += 7)
        if (sc[1].cache[w] != sc[0].cache[w] || sc[1].cache[w + 1] != STEPS ||
            sc[0].cache[w + 1] != STEPS)
            FAIL("cache: a cleared cache was not rebuilt");
    printf("cache: ok\n");
    return 0;
}

static int errors(void) {
    gradstep_rule adam, bad, rule;
    EXPECT(gradstep_rule_default(GRADSTEP_RULE_ADAM, &adam), GRADSTEP_OK);
    gradstep_scalars sc = {0};
    float p[8] = {1, 2, 3, 4, 5, 6, 7, 8}, g[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    float st[17] = {0};
    size_t len = 0;
    EXPECT(gradstep_rule_state_len(&adam, 8, &len), GRADSTEP_OK);
    if (len != 16) FAIL("adam state_len %zu", len);
    EXPECT(gradstep_rule_state_len(NULL, 8, &len), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_state_len(&adam, 8, NULL), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_state_len(&adam, SIZE_MAX / 2 + 1, &len), GRADSTEP_LENGTH_TOO_LARGE);
    /* NULL pointers are refused even for zero-length buffers. */
    EXPECT(gradstep_rule_step_f32(&adam, &sc, NULL, g, 0, st, 0), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, NULL, 0, st, 0), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, 0, NULL, 0), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_step_f32(&adam, NULL, p, g, 8, st, 16), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_step_f32(NULL, &sc, p, g, 8, st, 16), GRADSTEP_NULL_POINTER);
    /* Wrong state length, overlapping buffers, misaligned pointers, lengths no object
     * can have (refused before any slice is made of them). */
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, 8, st, 15), GRADSTEP_STATE_LAYOUT);
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, p, 8, st, 16), GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, 4, p + 2, 8), GRADSTEP_OVERLAPPING_BUFFERS);
    gradstep_scalars two[2] = {{0}, {0}}; /* the scalars inside the state buffer */
    EXPECT(gradstep_rule_step_f32(&adam, &two[0], p, g, 4, (float *)(void *)two, 8),
           GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_rule_step_f32(&adam, &sc, (float *)((char *)p + 1), g, 4, st, 8),
           GRADSTEP_MISALIGNED_POINTER);
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, SIZE_MAX / 4, st, 16),
           GRADSTEP_LENGTH_TOO_LARGE);
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, 8, st, SIZE_MAX), GRADSTEP_LENGTH_TOO_LARGE);
    /* Invalid hyperparameters, including NaN; unknown kinds. */
    bad = adam;
    bad.params.adam.beta1 = 1.5;
    EXPECT(gradstep_rule_step_f32(&bad, &sc, p, g, 8, st, 16), GRADSTEP_INVALID_HYPERPARAMETER);
    bad = adam;
    bad.params.adam.lr = NAN;
    EXPECT(gradstep_rule_step_f32(&bad, &sc, p, g, 8, st, 16), GRADSTEP_INVALID_HYPERPARAMETER);
    EXPECT(gradstep_rule_state_len(&bad, 8, &len), GRADSTEP_INVALID_HYPERPARAMETER);
    bad = adam;
    bad.kind = 0;
    EXPECT(gradstep_rule_step_f32(&bad, &sc, p, g, 8, st, 16), GRADSTEP_UNKNOWN_KIND);
    bad.kind = GRADSTEP_RULE_KIND_END;
    EXPECT(gradstep_rule_state_len(&bad, 8, &len), GRADSTEP_UNKNOWN_KIND);
    bad.kind = 0xffffffffu;
    EXPECT(gradstep_rule_state_len(&bad, 8, &len), GRADSTEP_UNKNOWN_KIND);
    /* None of the refused calls wrote anything. */
    for (int i = 0; i < 8; i++)
        if (p[i] != (float)(i + 1)) FAIL("params changed by a refused call");
    if (sc.step != 0) FAIL("scalars changed by a refused call");
    /* A flag byte other than 0/1 is just "true". */
    adam.params.adam.amsgrad = 200;
    EXPECT(gradstep_rule_state_len(&adam, 8, &len), GRADSTEP_OK);
    if (len != 24) FAIL("amsgrad state_len %zu", len);
    /* Zero-length steps with valid pointers are fine. */
    adam.params.adam.amsgrad = 0;
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, 0, st, 0), GRADSTEP_OK);

    /* Rules by kind and by name. */
    memset(&rule, 0x5a, sizeof rule);
    EXPECT(gradstep_rule_default(0, &rule), GRADSTEP_UNKNOWN_KIND);
    EXPECT(gradstep_rule_default(GRADSTEP_RULE_ADAM, NULL), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_parse("adma", &rule), GRADSTEP_UNKNOWN_KIND);
    EXPECT(gradstep_rule_parse("", &rule), GRADSTEP_BAD_RULE_TEXT);
    EXPECT(gradstep_rule_parse("adam:lr=fast", &rule), GRADSTEP_BAD_RULE_TEXT);
    EXPECT(gradstep_rule_parse("adam:momentum=0.9", &rule), GRADSTEP_BAD_RULE_TEXT);
    EXPECT(gradstep_rule_parse("adam:lr=1e-3,lr=2e-3", &rule), GRADSTEP_BAD_RULE_TEXT);
    EXPECT(gradstep_rule_parse("adam:amsgrad=maybe", &rule), GRADSTEP_BAD_RULE_TEXT);
    EXPECT(gradstep_rule_parse("adam:beta1=1.5", &rule), GRADSTEP_INVALID_HYPERPARAMETER);
    EXPECT(gradstep_rule_parse("adam:\xff", &rule), GRADSTEP_BAD_RULE_TEXT);
    EXPECT(gradstep_rule_parse(NULL, &rule), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_parse("adam", NULL), GRADSTEP_NULL_POINTER);
    if (rule.kind != 0x5a5a5a5au) FAIL("a refused parse wrote the rule");
    /* Text without a NUL within GRADSTEP_RULE_TEXT_MAX bytes: refused without reading
     * past the bound (the buffer ends right there: AddressSanitizer would see it). */
    char *text = malloc(GRADSTEP_RULE_TEXT_MAX + 1);
    if (!text) FAIL("oom");
    memset(text, 'a', GRADSTEP_RULE_TEXT_MAX + 1);
    EXPECT(gradstep_rule_parse(text, &rule), GRADSTEP_LENGTH_TOO_LARGE);
    text[GRADSTEP_RULE_TEXT_MAX] = '\0';
    EXPECT(gradstep_rule_parse(text, &rule), GRADSTEP_UNKNOWN_KIND);
    memcpy(text, "AdamW: lr = 3e-4 , amsgrad", 27);
    EXPECT(gradstep_rule_parse(text, &rule), GRADSTEP_OK);
    if (rule.kind != GRADSTEP_RULE_ADAMW || rule.params.adamw.lr != 3e-4 ||
        rule.params.adamw.amsgrad != 1 || rule.params.adamw.weight_decay != 1e-2)
        FAIL("parsed AdamW");
    free(text);
    gradstep_adamw typed = gradstep_adamw_default();
    if (typed.weight_decay != 1e-2 || typed.lr != 1e-3) FAIL("gradstep_adamw_default");
    if (strcmp(gradstep_rule_name(GRADSTEP_RULE_RMSPROP), "rmsprop") || gradstep_rule_name(0))
        FAIL("rule names");

    /* Status strings. */
    if (strcmp(gradstep_status_str(GRADSTEP_OK), "ok")) FAIL("status_str(OK)");
    if (strcmp(gradstep_status_str(12345), "unknown status")) FAIL("status_str(12345)");
    if (strcmp(gradstep_version(), GRADSTEP_VERSION_STRING)) FAIL("header/library mismatch");
    printf("errors: ok\n");
    return 0;
}

/* Checkpoints: save mid-run, restore into fresh buffers, continue: the same bits as an
 * uninterrupted run; every damaged or mismatched checkpoint refused, nothing written. */
static int checkpoints(void) {
    enum { N = 37, K = 5, M = 6 };
    gradstep_rule adam;
    EXPECT(gradstep_rule_parse("adam:lr=0.05,amsgrad", &adam), GRADSTEP_OK);
    size_t len = 0, cap = 0, written = 0;
    EXPECT(gradstep_rule_state_len(&adam, N, &len), GRADSTEP_OK);
    EXPECT(gradstep_checkpoint_len(&adam, GRADSTEP_F32, N, 1, &cap), GRADSTEP_OK);
    EXPECT(gradstep_checkpoint_len(&adam, 7, N, 1, &cap), GRADSTEP_UNKNOWN_KIND);
    float p[N], g[N], st[3 * N], p2[N], st2[3 * N];
    unsigned char *buf = malloc(cap);
    if (!buf || len != 3 * N) FAIL("setup");
    for (int i = 0; i < N; i++) p[i] = (float)i / 7.0f - 2.0f;
    gradstep_scalars sc = {0}, sc2;
    for (int t = 0; t < K + M; t++) {
        if (t == K) {
            EXPECT(gradstep_checkpoint_save_f32(&adam, &sc, st, len, p, N, buf, cap - 1,
                                                &written),
                   GRADSTEP_BUFFER_TOO_SMALL);
            /* An output that overlaps the state or params it encodes is refused. */
            EXPECT(gradstep_checkpoint_save_f32(&adam, &sc, st, len, p, N,
                                                (unsigned char *)st, sizeof st, &written),
                   GRADSTEP_OVERLAPPING_BUFFERS);
            EXPECT(gradstep_checkpoint_save_f32(&adam, &sc, st, len, p, N, buf, cap,
                                                (size_t *)(void *)buf),
                   GRADSTEP_OVERLAPPING_BUFFERS);
            EXPECT(gradstep_checkpoint_save_f32(&adam, &sc, st, len, p, N, buf, cap,
                                                &written),
                   GRADSTEP_OK);
            if (written != cap) FAIL("written %zu of %zu", written, cap);
        }
        for (int i = 0; i < N; i++) g[i] = (float)((i * 7 + t * 3) % 11) - 5.0f;
        EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, N, st, len), GRADSTEP_OK);
    }

    gradstep_checkpoint_info info;
    EXPECT(gradstep_checkpoint_peek(buf, written, &info), GRADSTEP_OK);
    if (info.rule != GRADSTEP_RULE_ADAM || info.element != GRADSTEP_F32 || info.n != N ||
        info.slots != 3 || !info.has_params || info.len != written)
        FAIL("peek");

    /* Refusals leave every output untouched. */
    gradstep_rule restored;
    memset(&restored, 0x5a, sizeof restored);
    memset(&sc2, 0x5a, sizeof sc2);
    memset(p2, 0x5a, sizeof p2);
    memset(st2, 0x5a, sizeof st2);
    unsigned char *bad = malloc(written);
    double st64[3 * N], p64[N];
    if (!bad) FAIL("oom");
    EXPECT(gradstep_checkpoint_load_f32(buf, written - 1, 0, &restored, &sc2, st2, len, p2, N),
           GRADSTEP_BAD_CHECKPOINT);
    memcpy(bad, buf, written);
    bad[written / 2] ^= 0x10;
    EXPECT(gradstep_checkpoint_load_f32(bad, written, 0, &restored, &sc2, st2, len, p2, N),
           GRADSTEP_BAD_CHECKPOINT);
    memcpy(bad, buf, written);
    bad[4] = 99; /* the format version */
    EXPECT(gradstep_checkpoint_load_f32(bad, written, 0, &restored, &sc2, st2, len, p2, N),
           GRADSTEP_CHECKPOINT_VERSION);
    EXPECT(gradstep_checkpoint_load_f32(buf, written, GRADSTEP_RULE_SGD, &restored, &sc2, st2,
                                        len, p2, N),
           GRADSTEP_CHECKPOINT_WRONG_RULE);
    EXPECT(gradstep_checkpoint_load_f64(buf, written, 0, &restored, &sc2, st64, len, p64, N),
           GRADSTEP_CHECKPOINT_WRONG_TYPE);
    EXPECT(gradstep_checkpoint_load_f32(buf, written, 0, &restored, &sc2, st2, len - 1, p2, N),
           GRADSTEP_STATE_LAYOUT);
    EXPECT(gradstep_checkpoint_load_f32(NULL, 0, 0, &restored, &sc2, st2, len, p2, N),
           GRADSTEP_NULL_POINTER);
    /* Outputs that overlap each other or the checkpoint are refused. */
    EXPECT(gradstep_checkpoint_load_f32(buf, written, 0, &restored, &sc2, st2, len, st2 + 1, N),
           GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_checkpoint_load_f32(buf, written, 0, &restored, &sc2, (float *)(void *)buf,
                                        len, p2, N),
           GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_checkpoint_load_f32(buf, written, 0, (gradstep_rule *)(void *)st64, &sc2,
                                        (float *)(void *)st64, len, p2, N),
           GRADSTEP_OVERLAPPING_BUFFERS);
    const unsigned char *sentinel = (const unsigned char *)p2;
    for (size_t i = 0; i < sizeof p2; i++)
        if (sentinel[i] != 0x5a) FAIL("a refused load wrote the params");
    if (restored.kind != 0x5a5a5a5au) FAIL("a refused load wrote the rule");

    /* Restore and continue: bit-identical to the uninterrupted run. */
    EXPECT(gradstep_checkpoint_load_f32(buf, written, GRADSTEP_RULE_ADAM, &restored, &sc2, st2,
                                        len, p2, N),
           GRADSTEP_OK);
    if (restored.kind != GRADSTEP_RULE_ADAM || restored.params.adam.lr != 0.05 ||
        !restored.params.adam.amsgrad || sc2.step != K)
        FAIL("restored values");
    for (int t = K; t < K + M; t++) {
        for (int i = 0; i < N; i++) g[i] = (float)((i * 7 + t * 3) % 11) - 5.0f;
        EXPECT(gradstep_rule_step_f32(&restored, &sc2, p2, g, N, st2, len), GRADSTEP_OK);
    }
    if (memcmp(p, p2, sizeof p) || memcmp(st, st2, sizeof st) || sc.step != sc2.step)
        FAIL("resumed run differs from the uninterrupted one");
    free(buf);
    free(bad);
    printf("checkpoints: ok\n");
    return 0;
}

/* Clipping, the finite check, loss scaling and accumulation over a two-tensor model. */
static int training(void) {
    float w[2] = {3.0f, 0.0f}, b[1] = {4.0f};
    float *grads[2] = {w, b};
    const float *cgrads[2] = {w, b};
    size_t lens[2] = {2, 1};
    double total = 0.0;
    uint8_t flag = 9;
    /* Global 2-norm 5, clipped to 1: scaled by 1/(5 + 1e-6). */
    EXPECT(gradstep_clip_grad_norm_f32(grads, lens, 2, 1.0, 2.0, 0, &total), GRADSTEP_OK);
    if (total != 5.0 || fabsf(w[0] - 0.6f) > 1e-6f || fabsf(b[0] - 0.8f) > 1e-6f)
        FAIL("clip_grad_norm: total %g, w0 %g, b0 %g", total, (double)w[0], (double)b[0]);
    EXPECT(gradstep_clip_grad_norm_f32(grads, lens, 2, 1.0, INFINITY, 0, &total), GRADSTEP_OK);
    if (fabs(total - 0.8) > 1e-6) FAIL("inf-norm %g", total);
    EXPECT(gradstep_clip_grad_norm_f32(grads, lens, 2, -1.0, 2.0, 0, &total),
           GRADSTEP_INVALID_HYPERPARAMETER);
    EXPECT(gradstep_clip_grad_norm_f32(grads, lens, 2, 1.0, 0.0, 0, &total),
           GRADSTEP_INVALID_HYPERPARAMETER);
    EXPECT(gradstep_clip_grad_norm_f32(NULL, lens, 0, 1.0, 2.0, 0, &total), GRADSTEP_NULL_POINTER);
    float *same[2] = {w, w};
    EXPECT(gradstep_clip_grad_norm_f32(same, lens, 2, 1.0, 2.0, 0, &total),
           GRADSTEP_OVERLAPPING_BUFFERS);
    b[0] = NAN;
    EXPECT(gradstep_clip_grad_norm_f32(grads, lens, 2, 1.0, 2.0, 1, &total),
           GRADSTEP_NON_FINITE_NORM);
    if (fabsf(w[0] - 0.6f) > 1e-6f) FAIL("a refused clip changed the gradients");
    EXPECT(gradstep_all_finite_f32(cgrads, lens, 2, &flag), GRADSTEP_OK);
    if (flag != 0) FAIL("all_finite with a NaN");
    b[0] = 7.0f;
    EXPECT(gradstep_all_finite_f32(cgrads, lens, 2, &flag), GRADSTEP_OK);
    if (flag != 1) FAIL("all_finite");
    EXPECT(gradstep_total_norm_f32(cgrads, lens, 2, 1.0, &total), GRADSTEP_OK);
    if (fabs(total - (0.6 + 7.0)) > 1e-6) FAIL("total_norm %g", total);
    /* Per slice: w (norm 0.6) is left alone, b (norm 7) is clipped to 1. */
    EXPECT(gradstep_clip_grad_norm_per_slice_f32(grads, lens, 2, 1.0, 2.0, 1, 0), GRADSTEP_OK);
    if (fabsf(w[0] - 0.6f) > 1e-6f || b[0] != 1.0f) FAIL("per-slice clip %g", (double)b[0]);
    b[0] = 7.0f;
    EXPECT(gradstep_clip_grad_value_f32(grads, lens, 2, 0.5), GRADSTEP_OK);
    if (w[0] != 0.5f || b[0] != 0.5f) FAIL("clip_grad_value");

    /* Loss scaling: unscale, skip on inf, back off, grow. */
    gradstep_grad_scaler cfg = gradstep_grad_scaler_default();
    cfg.growth_interval = 2;
    gradstep_scaler_state st;
    EXPECT(gradstep_grad_scaler_init(&cfg, &st), GRADSTEP_OK);
    if (st.scale != 65536.0f) FAIL("init scale %g", (double)st.scale);
    w[0] = 131072.0f, w[1] = -65536.0f, b[0] = 32768.0f;
    EXPECT(gradstep_grad_scaler_unscale_f32(&st, grads, lens, 2, &flag), GRADSTEP_OK);
    if (flag || w[0] != 2.0f || w[1] != -1.0f || b[0] != 0.5f) FAIL("unscale");
    b[0] = INFINITY;
    EXPECT(gradstep_grad_scaler_unscale_f32(&st, grads, lens, 2, &flag), GRADSTEP_OK);
    if (!flag) FAIL("unscale did not find the inf");
    EXPECT(gradstep_grad_scaler_update(&cfg, &st, 1), GRADSTEP_OK);
    if (st.scale != 32768.0f) FAIL("backoff %g", (double)st.scale);
    EXPECT(gradstep_grad_scaler_update(&cfg, &st, 0), GRADSTEP_OK);
    EXPECT(gradstep_grad_scaler_update(&cfg, &st, 0), GRADSTEP_OK);
    if (st.scale != 65536.0f) FAIL("growth %g", (double)st.scale);
    cfg.backoff_factor = 2.0;
    EXPECT(gradstep_grad_scaler_update(&cfg, &st, 1), GRADSTEP_INVALID_HYPERPARAMETER);

    /* Accumulation: two micro-batches into buffers that start as garbage, then mean. */
    float aw[2] = {NAN, NAN}, ab[1] = {NAN};
    float *bufs[2] = {aw, ab};
    const float g1w[2] = {1.0f, 2.0f}, g1b[1] = {3.0f}, g2w[2] = {3.0f, 4.0f}, g2b[1] = {5.0f};
    const float *mb1[2] = {g1w, g1b}, *mb2[2] = {g2w, g2b};
    gradstep_accumulator acc = {0};
    EXPECT(gradstep_accumulate_f32(&acc, bufs, mb1, lens, 2), GRADSTEP_OK);
    EXPECT(gradstep_accumulate_f32(&acc, bufs, mb2, lens, 2), GRADSTEP_OK);
    if (acc.count != 2) FAIL("accumulated count");
    const float *alias[2] = {aw, ab};
    EXPECT(gradstep_accumulate_f32(&acc, bufs, alias, lens, 2), GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_accumulate_finish_f32(&acc, bufs, lens, 2, 7), GRADSTEP_UNKNOWN_KIND);
    EXPECT(gradstep_accumulate_finish_f32(&acc, bufs, lens, 2, 1), GRADSTEP_OK);
    if (aw[0] != 2.0f || aw[1] != 3.0f || ab[0] != 4.0f || acc.count != 0) FAIL("mean");
    printf("training: ok\n");
    return 0;
}

static double pow095(uint64_t t, void *user) {
    (void)user;
    return pow(0.95, (double)t);
}

static double alternate(uint64_t t, void *user) {
    int *calls = user;
    ++*calls;
    return t % 2 ? 0.9 : 1.05;
}

/* Schedules by fixture name: prints the learning rate (and momentum) at epoch 0 and
 * after each of `steps` steps, for the harness to compare with torch's recording. */
static int schedule(const char *name, int steps) {
    gradstep_schedule *s = NULL;
    gradstep_schedule_config c;
    double lr0 = 0.1;
    const double *metrics = NULL;
    static const double loss[] = {1.0,  0.9,  0.85, 0.85, 0.86, 0.84, 0.84, 0.84, 0.84, 0.9,
                                  0.83, 0.83, 0.83, 0.83, 0.83, 0.83, 0.82, 0.5,  0.5,  0.5};
    if (!strcmp(name, "step_3_05")) {
        c = gradstep_schedule_default(GRADSTEP_SCHEDULE_STEP);
        c.params.step.step_size = 3;
        c.params.step.gamma = 0.5;
        EXPECT(gradstep_schedule_new(&c, lr0, &s), GRADSTEP_OK);
    } else if (!strcmp(name, "cosine_10_min")) {
        c = gradstep_schedule_default(GRADSTEP_SCHEDULE_COSINE);
        c.params.cosine.t_max = 10;
        c.params.cosine.eta_min = 0.01;
        EXPECT(gradstep_schedule_new(&c, lr0, &s), GRADSTEP_OK);
    } else if (!strcmp(name, "cyclic_triangular")) {
        c = gradstep_schedule_default(GRADSTEP_SCHEDULE_CYCLIC);
        c.params.cyclic.base_lr = 0.01;
        c.params.cyclic.max_lr = 0.1;
        c.params.cyclic.step_size_up = 5;
        EXPECT(gradstep_schedule_new(&c, lr0, &s), GRADSTEP_OK);
    } else if (!strcmp(name, "one_cycle_three_phase")) {
        c = gradstep_schedule_default(GRADSTEP_SCHEDULE_ONE_CYCLE);
        c.params.one_cycle.max_lr = 0.2;
        c.params.one_cycle.total_steps = 60;
        c.params.one_cycle.three_phase = 1;
        c.params.one_cycle.pct_start = 0.25;
        EXPECT(gradstep_schedule_new(&c, lr0, &s), GRADSTEP_OK);
    } else if (!strcmp(name, "sequential_warmup_cosine")) {
        gradstep_schedule_config m[2] = {gradstep_schedule_default(GRADSTEP_SCHEDULE_LINEAR),
                                         gradstep_schedule_default(GRADSTEP_SCHEDULE_COSINE)};
        uint64_t milestones[1] = {5};
        m[0].params.linear.start_factor = 0.1;
        m[0].params.linear.total_iters = 5;
        m[1].params.cosine.t_max = 30;
        EXPECT(gradstep_schedule_new_sequential(m, 2, milestones, lr0, &s), GRADSTEP_OK);
    } else if (!strcmp(name, "chained_constant_exponential")) {
        gradstep_schedule_config m[2] = {gradstep_schedule_default(GRADSTEP_SCHEDULE_CONSTANT),
                                         gradstep_schedule_default(GRADSTEP_SCHEDULE_EXPONENTIAL)};
        m[0].params.constant.factor = 0.1;
        m[0].params.constant.total_iters = 2;
        m[1].params.exponential.gamma = 0.9;
        EXPECT(gradstep_schedule_new_chained(m, 2, lr0, &s), GRADSTEP_OK);
    } else if (!strcmp(name, "lambda_pow")) {
        c = gradstep_schedule_default(GRADSTEP_SCHEDULE_LAMBDA);
        c.params.lambda.lr_lambda = pow095;
        EXPECT(gradstep_schedule_new(&c, lr0, &s), GRADSTEP_OK);
    } else if (!strcmp(name, "multiplicative_alternate")) {
        static int calls = 0;
        c = gradstep_schedule_default(GRADSTEP_SCHEDULE_MULTIPLICATIVE);
        c.params.lambda.lr_lambda = alternate;
        c.params.lambda.user = &calls;
        EXPECT(gradstep_schedule_new(&c, lr0, &s), GRADSTEP_OK);
    } else if (!strcmp(name, "warm_restarts_fractional")) {
        c = gradstep_schedule_default(GRADSTEP_SCHEDULE_COSINE_WARM_RESTARTS);
        c.params.cosine_warm_restarts.t_0 = 3;
        c.params.cosine_warm_restarts.t_mult = 2;
        c.params.cosine_warm_restarts.eta_min = 0.001;
        EXPECT(gradstep_schedule_new(&c, lr0, &s), GRADSTEP_OK);
        for (int t = 0; t <= steps; t++) {
            if (t > 0) {
                int e = (t - 1) / 4, i = (t - 1) % 4;
                EXPECT(gradstep_schedule_step_to(s, (double)e + (double)i / 4.0), GRADSTEP_OK);
            }
            double lr = -1.0;
            EXPECT(gradstep_schedule_lr(s, &lr, NULL, NULL), GRADSTEP_OK);
            printf("%.17g\n", lr);
        }
        EXPECT(gradstep_schedule_step_to(s, -1.0), GRADSTEP_INVALID_HYPERPARAMETER);
        EXPECT(gradstep_schedule_free(s), GRADSTEP_OK);
        return 0;
    } else if (!strcmp(name, "plateau_patience2_cooldown3")) {
        c = gradstep_schedule_default(GRADSTEP_SCHEDULE_PLATEAU);
        c.params.plateau.factor = 0.5;
        c.params.plateau.patience = 2;
        c.params.plateau.cooldown = 3;
        EXPECT(gradstep_schedule_new(&c, lr0, &s), GRADSTEP_OK);
        metrics = loss;
        if (steps > 20) steps = 20;
    } else {
        FAIL("unknown schedule case %s", name);
    }
    for (int t = 0; t <= steps; t++) {
        if (t > 0) {
            if (metrics) EXPECT(gradstep_schedule_step_metric(s, metrics[t - 1]), GRADSTEP_OK);
            else EXPECT(gradstep_schedule_step(s), GRADSTEP_OK);
        }
        double lr = -1.0, momentum = -1.0;
        uint8_t has = 9;
        EXPECT(gradstep_schedule_lr(s, &lr, &momentum, &has), GRADSTEP_OK);
        if (has) printf("%.17g %.17g\n", lr, momentum);
        else printf("%.17g\n", lr);
    }
    EXPECT(gradstep_schedule_free(s), GRADSTEP_OK);
    return 0;
}

/* The optimizer handle: two param groups, two tensors, a schedule; every step equals
 * the allocation-free API's; freed, foreign and mistyped handles are refused. */
static int handles(void) {
    enum { N1 = 5, N2 = 3 };
    float w[N1], b[N2], gw[N1], gb[N2], rw[N1], rb[N2];
    for (int i = 0; i < N1; i++) w[i] = rw[i] = (float)i - 2.0f;
    for (int i = 0; i < N2; i++) b[i] = rb[i] = 0.5f * (float)i;
    gradstep_rule h0, h1;
    EXPECT(gradstep_rule_parse("adam:lr=0.1", &h0), GRADSTEP_OK);
    EXPECT(gradstep_rule_parse("adam:lr=0.01,weight_decay=0.1", &h1), GRADSTEP_OK);
    gradstep_optimizer *opt = NULL;
    size_t g1 = 0;
    EXPECT(gradstep_optimizer_new(&h0, GRADSTEP_F32, &opt), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_add_group(opt, &h1, &g1), GRADSTEP_OK);
    if (g1 != 1) FAIL("group index");
    EXPECT(gradstep_optimizer_add_params_f32(opt, 0, w, gw, N1), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_add_params_f32(opt, g1, b, gb, N2), GRADSTEP_OK);
    /* Refusals. */
    gradstep_rule sgd, unknown;
    EXPECT(gradstep_rule_default(GRADSTEP_RULE_SGD, &sgd), GRADSTEP_OK);
    double dw[2];
    EXPECT(gradstep_optimizer_add_group(opt, &sgd, &g1), GRADSTEP_WRONG_RULE);
    unknown = sgd;
    unknown.kind = 0;
    EXPECT(gradstep_optimizer_add_group(opt, &unknown, &g1), GRADSTEP_UNKNOWN_KIND);
    EXPECT(gradstep_optimizer_add_group(opt, NULL, &g1), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_optimizer_add_params_f32(opt, 0, rw, rw, 1), GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_optimizer_add_params_f64(opt, 0, dw, dw + 1, 1), GRADSTEP_WRONG_ELEMENT_TYPE);
    EXPECT(gradstep_optimizer_add_params_f32(opt, 0, w + 1, gw, 2), GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_optimizer_add_params_f32(opt, 7, rw, gw, 2), GRADSTEP_NO_SUCH_GROUP);
    EXPECT(gradstep_optimizer_set_lr(opt, 0, -1.0), GRADSTEP_INVALID_HYPERPARAMETER);
    gradstep_optimizer *none = NULL;
    EXPECT(gradstep_optimizer_new(&h0, 7, &none), GRADSTEP_UNKNOWN_KIND);
    EXPECT(gradstep_optimizer_new(&unknown, GRADSTEP_F32, &none), GRADSTEP_UNKNOWN_KIND);
    EXPECT(gradstep_optimizer_new(NULL, GRADSTEP_F32, &none), GRADSTEP_NULL_POINTER);
    if (none) FAIL("a refused constructor wrote a handle");

    /* A StepLR on group 0, stepped after each optimizer step. */
    gradstep_schedule_config c = gradstep_schedule_default(GRADSTEP_SCHEDULE_STEP);
    c.params.step.step_size = 2;
    c.params.step.gamma = 0.5;
    EXPECT(gradstep_optimizer_attach_schedule(opt, 0, &c), GRADSTEP_OK);

    /* The same run through the allocation-free API. */
    float s0[2 * N1] = {0}, s1[2 * N2] = {0};
    gradstep_scalars sc0 = {0}, sc1 = {0};
    gradstep_rule r0 = h0;
    for (int t = 0; t < 6; t++) {
        for (int i = 0; i < N1; i++) gw[i] = (float)((i + t) % 3) - 1.0f;
        for (int i = 0; i < N2; i++) gb[i] = 0.25f * (float)(i - t);
        EXPECT(gradstep_optimizer_step(opt), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_schedule_step(opt), GRADSTEP_OK);
        EXPECT(gradstep_rule_step_f32(&r0, &sc0, rw, gw, N1, s0, 2 * N1), GRADSTEP_OK);
        EXPECT(gradstep_rule_step_f32(&h1, &sc1, rb, gb, N2, s1, 2 * N2), GRADSTEP_OK);
        r0.params.adam.lr = 0.1 * (t + 1 >= 2 ? 0.5 : 1.0) * (t + 1 >= 4 ? 0.5 : 1.0) * (t + 1 >= 6 ? 0.5 : 1.0);
    }
    if (memcmp(w, rw, sizeof w) || memcmp(b, rb, sizeof b)) FAIL("handle and flat API differ");
    double lr = 0.0;
    EXPECT(gradstep_optimizer_lr(opt, 0, &lr), GRADSTEP_OK);
    if (lr != 0.0125) FAIL("scheduled lr %g", lr);

    /* Checkpoint the whole handle; restore into a second handle of the same shape. */
    size_t cap = 0, written = 0, g2 = 0;
    EXPECT(gradstep_optimizer_checkpoint_len(opt, &cap), GRADSTEP_OK);
    unsigned char *ck = malloc(cap), *damaged = malloc(cap);
    if (!ck || !damaged) FAIL("oom");
    EXPECT(gradstep_optimizer_checkpoint_save(opt, ck, cap - 1, &written), GRADSTEP_BUFFER_TOO_SMALL);
    EXPECT(gradstep_optimizer_checkpoint_save(opt, ck, cap, &written), GRADSTEP_OK);
    if (written != cap) FAIL("handle checkpoint %zu of %zu bytes", written, cap);
    float w2[N1] = {0}, b2[N2] = {0};
    gradstep_optimizer *opt2 = NULL;
    gradstep_rule fresh;
    EXPECT(gradstep_rule_default(GRADSTEP_RULE_ADAM, &fresh), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_new(&fresh, GRADSTEP_F32, &opt2), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_add_group(opt2, &fresh, &g2), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_add_params_f32(opt2, 0, w2, gw, N1), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_checkpoint_load(opt2, ck, written), GRADSTEP_CHECKPOINT_MISMATCH);
    EXPECT(gradstep_optimizer_add_params_f32(opt2, g2, b2, gb, N2), GRADSTEP_OK);
    /* The saved group 0 had a schedule: it must be attached again first. */
    EXPECT(gradstep_optimizer_checkpoint_load(opt2, ck, written), GRADSTEP_CHECKPOINT_MISMATCH);
    EXPECT(gradstep_optimizer_attach_schedule(opt2, 0, &c), GRADSTEP_OK);
    memcpy(damaged, ck, written);
    damaged[written / 2] ^= 1;
    EXPECT(gradstep_optimizer_checkpoint_load(opt2, damaged, written), GRADSTEP_BAD_CHECKPOINT);
    EXPECT(gradstep_optimizer_checkpoint_load(opt2, ck, written - 1), GRADSTEP_BAD_CHECKPOINT);
    if (w2[0] != 0.0f) FAIL("a refused load wrote params");
    EXPECT(gradstep_optimizer_checkpoint_load(opt2, ck, written), GRADSTEP_OK);
    if (memcmp(w, w2, sizeof w) || memcmp(b, b2, sizeof b)) FAIL("restored params differ");
    for (int t = 6; t < 10; t++) {
        for (int i = 0; i < N1; i++) gw[i] = (float)((i * t) % 5) - 2.0f;
        for (int i = 0; i < N2; i++) gb[i] = 0.5f * (float)(t - i);
        float keep_w[N1], keep_b[N2];
        memcpy(keep_w, w, sizeof w), memcpy(keep_b, b, sizeof b);
        EXPECT(gradstep_optimizer_step(opt), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_schedule_step(opt), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_step(opt2), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_schedule_step(opt2), GRADSTEP_OK);
        if (!memcmp(keep_w, w, sizeof w)) FAIL("no progress");
    }
    if (memcmp(w, w2, sizeof w) || memcmp(b, b2, sizeof b)) FAIL("resumed handle differs");
    double lr2 = 0.0;
    EXPECT(gradstep_optimizer_lr(opt, 0, &lr), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_lr(opt2, 0, &lr2), GRADSTEP_OK);
    if (lr != lr2) FAIL("resumed schedule differs: %g vs %g", lr, lr2);
    EXPECT(gradstep_optimizer_free(opt2), GRADSTEP_OK);
    free(ck), free(damaged);

    /* A composite schedule handle attached to an optimizer group: the group's rate
     * follows the standalone handle's exactly (the optimizer starts its own copy). */
    {
        gradstep_schedule_config m[2] = {gradstep_schedule_default(GRADSTEP_SCHEDULE_CONSTANT),
                                         gradstep_schedule_default(GRADSTEP_SCHEDULE_EXPONENTIAL)};
        m[0].params.constant.factor = 0.1;
        m[0].params.constant.total_iters = 2;
        m[1].params.exponential.gamma = 0.9;
        gradstep_schedule *chain = NULL;
        gradstep_optimizer *o3 = NULL;
        float w3[N1] = {0}, g3[N1] = {0};
        EXPECT(gradstep_schedule_new_chained(m, 2, 0.1, &chain), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_new(&h0, GRADSTEP_F32, &o3), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_add_params_f32(o3, 0, w3, g3, N1), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_attach_schedule_handle(o3, 0, chain), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_attach_schedule_handle(o3, 1, chain), GRADSTEP_NO_SUCH_GROUP);
        EXPECT(gradstep_optimizer_attach_schedule_handle(o3, 0, (gradstep_schedule *)o3),
               GRADSTEP_INVALID_HANDLE);
        EXPECT(gradstep_optimizer_attach_schedule_handle(o3, 0, NULL), GRADSTEP_NULL_POINTER);
        for (int t = 0; t < 5; t++) {
            double a = 0.0, want = 0.0;
            EXPECT(gradstep_optimizer_lr(o3, 0, &a), GRADSTEP_OK);
            EXPECT(gradstep_schedule_lr(chain, &want, NULL, NULL), GRADSTEP_OK);
            if (a != want) FAIL("attached chain at epoch %d: %g, standalone %g", t, a, want);
            EXPECT(gradstep_optimizer_step(o3), GRADSTEP_OK);
            EXPECT(gradstep_optimizer_schedule_step(o3), GRADSTEP_OK);
            EXPECT(gradstep_schedule_step(chain), GRADSTEP_OK);
        }
        EXPECT(gradstep_schedule_free(chain), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_free(o3), GRADSTEP_OK);
    }

    /* Handles: NULL frees are no-ops; freed, foreign and mistyped handles are refused. */
    gradstep_schedule *sched = NULL;
    EXPECT(gradstep_schedule_new(&c, 0.1, &sched), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_step((gradstep_optimizer *)sched), GRADSTEP_INVALID_HANDLE);
    EXPECT(gradstep_schedule_step((gradstep_schedule *)opt), GRADSTEP_INVALID_HANDLE);
    EXPECT(gradstep_optimizer_step((gradstep_optimizer *)&lr), GRADSTEP_INVALID_HANDLE);
    EXPECT(gradstep_schedule_step_metric(sched, 1.0), GRADSTEP_UNKNOWN_KIND);
    EXPECT(gradstep_optimizer_free(opt), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_step(opt), GRADSTEP_INVALID_HANDLE);
    EXPECT(gradstep_optimizer_free(opt), GRADSTEP_INVALID_HANDLE);
    EXPECT(gradstep_optimizer_free(NULL), GRADSTEP_OK);
    EXPECT(gradstep_schedule_free(sched), GRADSTEP_OK);
    EXPECT(gradstep_schedule_free(sched), GRADSTEP_INVALID_HANDLE);
    EXPECT(gradstep_schedule_free(NULL), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_step(NULL), GRADSTEP_NULL_POINTER);

    /* Bad schedule configs. */
    c = gradstep_schedule_default(GRADSTEP_SCHEDULE_LAMBDA); /* NULL function */
    EXPECT(gradstep_schedule_new(&c, 0.1, &sched), GRADSTEP_NULL_POINTER);
    c = gradstep_schedule_default(GRADSTEP_SCHEDULE_COSINE); /* t_max = 0 */
    EXPECT(gradstep_schedule_new(&c, 0.1, &sched), GRADSTEP_INVALID_HYPERPARAMETER);
    c = gradstep_schedule_default(12345);
    EXPECT(gradstep_schedule_new(&c, 0.1, &sched), GRADSTEP_UNKNOWN_KIND);
    c = gradstep_schedule_default(GRADSTEP_SCHEDULE_MULTISTEP);
    c.params.multistep.count = 99;
    EXPECT(gradstep_schedule_new(&c, 0.1, &sched), GRADSTEP_INVALID_HYPERPARAMETER);
    c.params.multistep.count = 2;
    c.params.multistep.milestones[0] = 9;
    c.params.multistep.milestones[1] = 3;
    EXPECT(gradstep_schedule_new(&c, 0.1, &sched), GRADSTEP_INVALID_HYPERPARAMETER);
    printf("handles: ok\n");
    return 0;
}

/* Expects the thread's last error to be `expected`, read as a C caller would: the
 * length first, then into a buffer of that size plus one. */
static void expect_last_error(int line, const char *expected) {
    size_t len = gradstep_last_error(NULL, 0);
    char *buf = malloc(len + 1);
    if (!buf) FAIL("malloc");
    if (gradstep_last_error(buf, len + 1) != len || buf[len] != '\0')
        FAIL("line %d: last error not NUL-terminated at its length %zu", line, len);
    if (strcmp(buf, expected))
        FAIL("line %d: last error \"%s\", expected \"%s\"", line, buf, expected);
    free(buf);
}

/* gradstep_last_error: the Rust message of the last refusal on this thread, copied
 * as snprintf copies; emptied by a success. */
static int last_error(void) {
    gradstep_rule adam, parsed;
    gradstep_scalars sc = {0};
    float p[4] = {1, 2, 3, 4}, g[4] = {1, 1, 1, 1}, st[12] = {0};
    char small[8];
    size_t k;
    EXPECT(gradstep_rule_default(GRADSTEP_RULE_ADAM, &adam), GRADSTEP_OK);
    expect_last_error(__LINE__, "");
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, 4, st, 7), GRADSTEP_STATE_LAYOUT);
    expect_last_error(__LINE__, "state length 7, expected 8 (2 slots \xc3\x97 4)");
    /* snprintf's contract: never past the length, always NUL-terminated, the full
     * length returned. */
    memset(small, 'x', sizeof small);
    if (gradstep_last_error(small, 6) != strlen("state length 7, expected 8 (2 slots \xc3\x97 4)"))
        FAIL("length of a cut message");
    if (memcmp(small, "state\0xx", 8)) FAIL("cut message: \"%.8s\"", small);
    memset(small, 'x', sizeof small);
    if (gradstep_last_error(small, 0) == 0 || small[0] != 'x') FAIL("wrote with length 0");
    adam.params.adam.lr = -1;
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, 4, st, 8), GRADSTEP_INVALID_HYPERPARAMETER);
    expect_last_error(__LINE__, "invalid hyperparameter lr = -1: must be finite and >= 0");
    EXPECT(gradstep_rule_step_f32(&adam, NULL, p, g, 4, st, 8), GRADSTEP_NULL_POINTER);
    expect_last_error(__LINE__, "null pointer");
    /* gradstep_status_str and gradstep_version do not touch it. */
    (void)gradstep_status_str(GRADSTEP_OK);
    (void)gradstep_version();
    expect_last_error(__LINE__, "null pointer");
    EXPECT(gradstep_rule_parse("adam:betas=0.9", &parsed), GRADSTEP_BAD_RULE_TEXT);
    k = gradstep_last_error(NULL, 0);
    {
        char *msg = malloc(k + 1);
        if (!msg) FAIL("malloc");
        gradstep_last_error(msg, k + 1);
        if (!strstr(msg, "betas") || !strstr(msg, "beta1"))
            FAIL("parse message lacks the field and the choices: %s", msg);
        free(msg);
    }
    EXPECT(gradstep_rule_parse("adam:lr=-1", &parsed), GRADSTEP_INVALID_HYPERPARAMETER);
    if (!gradstep_last_error(NULL, 0)) FAIL("no message for a refused value");
    adam.params.adam.lr = 1e-3;
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, 4, st, 8), GRADSTEP_OK);
    expect_last_error(__LINE__, "");
    printf("last-error: ok\n");
    return 0;
}

/* Memory from gradstep_buffer_new_*: zeroed, page-aligned (2 MiB-aligned from 2 MiB),
 * the same steps as over malloc'd memory to the bit, also through a handle, and freed
 * once: a second free, a pointer inside one, malloc's memory and a stack address are
 * refused (AddressSanitizer would report a wrong free). */
static int buffers(void) {
    enum { N = 1000, BIG = 1 << 20, STEPS = 5 };
    gradstep_rule adam;
    EXPECT(gradstep_rule_parse("adam:lr=0.01,weight_decay=0.1", &adam), GRADSTEP_OK);
    float *p, *g, *st, *big;
    double *d;
    EXPECT(gradstep_buffer_new_f32(N, &p), GRADSTEP_OK);
    EXPECT(gradstep_buffer_new_f32(N, &g), GRADSTEP_OK);
    EXPECT(gradstep_buffer_new_f32(2 * N, &st), GRADSTEP_OK);
    EXPECT(gradstep_buffer_new_f32(BIG, &big), GRADSTEP_OK);
    EXPECT(gradstep_buffer_new_f64(3, &d), GRADSTEP_OK);
    if ((uintptr_t)p % 4096 || (uintptr_t)g % 4096 || (uintptr_t)st % 4096 ||
        (uintptr_t)d % 4096 || (uintptr_t)big % (2u << 20))
        FAIL("buffers: misplaced");
    for (int i = 0; i < 2 * N; i++)
        if (st[i] != 0.0f) FAIL("buffers: state not zeroed");
    for (int i = 0; i < BIG; i += 1021)
        if (big[i] != 0.0f) FAIL("buffers: big buffer not zeroed");
    if (d[0] != 0.0 || d[2] != 0.0) FAIL("buffers: doubles not zeroed");
    float *mp = malloc(N * sizeof *mp), *mg = malloc(N * sizeof *mg);
    float *ms = calloc(2 * N, sizeof *ms);
    if (!mp || !mg || !ms) FAIL("buffers: malloc");
    for (int i = 0; i < N; i++) p[i] = mp[i] = (float)i * 0.01f - 3.0f;
    gradstep_scalars a = {0}, b = {0};
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < N; i++) g[i] = mg[i] = (float)((i * 7 + t * 3) % 11) - 5.0f;
        EXPECT(gradstep_rule_step_f32(&adam, &a, p, g, N, st, 2 * N), GRADSTEP_OK);
        EXPECT(gradstep_rule_step_f32(&adam, &b, mp, mg, N, ms, 2 * N), GRADSTEP_OK);
    }
    if (memcmp(p, mp, N * sizeof *p) || memcmp(st, ms, 2 * N * sizeof *st))
        FAIL("buffers: steps differ from malloc'd memory");
    if (p[0] == -3.0f) FAIL("buffers: nothing stepped");
    /* A handle over buffer params and grads. */
    gradstep_optimizer *opt;
    EXPECT(gradstep_optimizer_new(&adam, GRADSTEP_F32, &opt), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_add_params_f32(opt, 0, p, g, N), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_step(opt), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_free(opt), GRADSTEP_OK);
    /* Refusals: *out untouched. */
    float *keep = p;
    EXPECT(gradstep_buffer_new_f32(1, NULL), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_buffer_new_f32(SIZE_MAX, &keep), GRADSTEP_LENGTH_TOO_LARGE);
    double *keep_d = d;
    EXPECT(gradstep_buffer_new_f64((size_t)PTRDIFF_MAX / 8, &d), GRADSTEP_OUT_OF_MEMORY);
    if (keep != p || d != keep_d) FAIL("buffers: a refusal wrote *out");
    float local = 1.0f;
    EXPECT(gradstep_buffer_free(NULL), GRADSTEP_OK);
    EXPECT(gradstep_buffer_free(mp), GRADSTEP_INVALID_HANDLE);
    EXPECT(gradstep_buffer_free(&local), GRADSTEP_INVALID_HANDLE);
    EXPECT(gradstep_buffer_free(p + 1), GRADSTEP_INVALID_HANDLE);
    float *all[] = {p, g, st, big};
    for (int k = 0; k < 4; k++) EXPECT(gradstep_buffer_free(all[k]), GRADSTEP_OK);
    EXPECT(gradstep_buffer_free(d), GRADSTEP_OK);
    EXPECT(gradstep_buffer_free(g), GRADSTEP_INVALID_HANDLE);
    free(mp);
    free(mg);
    free(ms);
    printf("buffers: ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--kinds")) return kinds();
    if (argc == 2 && !strcmp(argv[1], "--handles")) return handles();
    if (argc == 4 && !strcmp(argv[1], "--schedule")) return schedule(argv[2], atoi(argv[3]));
    if (argc == 2 && !strcmp(argv[1], "--training")) return training();
    if (argc == 2 && !strcmp(argv[1], "--checkpoints")) return checkpoints();
    if (argc == 2 && !strcmp(argv[1], "--errors")) return errors();
    if (argc == 2 && !strcmp(argv[1], "--cache")) return cache_is_invisible();
    if (argc == 2 && !strcmp(argv[1], "--buffers")) return buffers();
    if (argc == 2 && !strcmp(argv[1], "--last-error")) return last_error();
    if (argc != 3) FAIL("usage: rules SPEC f32|f64 < input | rules --kinds | rules --errors");
    return trajectory(argv[1], argv[2]);
}
