/* The allocation-free C API as a C11 program uses it.
 *
 *   rules RULE DTYPE [field=value ...] < input     run a trajectory
 *   rules --errors                                 exercise every error path
 *
 * Trajectory input (whitespace-separated decimal numbers): n, steps, the n initial
 * params, then steps × n gradients. Output: the n params after each step, one step per
 * line, printed so that they read back exactly (%.17g / %.9g). The Rust harness
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

/* One hyperparameter field, by name, for every rule's struct. */
typedef struct {
    const char *name;
    size_t offset;
    int is_flag;
} field;

#define F(T, f) {#f, offsetof(T, f), 0}
#define G(T, f) {#f, offsetof(T, f), 1}

typedef union {
    gradstep_sgd sgd;
    gradstep_adam adam;
    gradstep_adamw adamw;
    gradstep_adamax adamax;
    gradstep_nadam nadam;
    gradstep_radam radam;
    gradstep_adagrad adagrad;
    gradstep_adadelta adadelta;
    gradstep_rmsprop rmsprop;
    gradstep_rprop rprop;
    gradstep_asgd asgd;
} any_hyper;

static const field sgd_fields[] = {F(gradstep_sgd, lr), F(gradstep_sgd, momentum),
                                   F(gradstep_sgd, dampening), F(gradstep_sgd, weight_decay),
                                   G(gradstep_sgd, nesterov), G(gradstep_sgd, maximize),
                                   {NULL, 0, 0}};
static const field adam_fields[] = {
    F(gradstep_adam, lr), F(gradstep_adam, beta1), F(gradstep_adam, beta2),
    F(gradstep_adam, eps), F(gradstep_adam, weight_decay),
    G(gradstep_adam, decoupled_weight_decay), G(gradstep_adam, amsgrad),
    G(gradstep_adam, maximize), {NULL, 0, 0}};
static const field rmsprop_fields[] = {
    F(gradstep_rmsprop, lr), F(gradstep_rmsprop, alpha), F(gradstep_rmsprop, eps),
    F(gradstep_rmsprop, weight_decay), F(gradstep_rmsprop, momentum),
    G(gradstep_rmsprop, centered), G(gradstep_rmsprop, maximize), {NULL, 0, 0}};
static const field nadam_fields[] = {
    F(gradstep_nadam, lr), F(gradstep_nadam, beta1), F(gradstep_nadam, beta2),
    F(gradstep_nadam, eps), F(gradstep_nadam, weight_decay), F(gradstep_nadam, momentum_decay),
    G(gradstep_nadam, decoupled_weight_decay), G(gradstep_nadam, maximize), {NULL, 0, 0}};
static const field asgd_fields[] = {
    F(gradstep_asgd, lr), F(gradstep_asgd, lambd), F(gradstep_asgd, alpha),
    F(gradstep_asgd, t0), F(gradstep_asgd, weight_decay), G(gradstep_asgd, maximize),
    {NULL, 0, 0}};

typedef gradstep_status (*len_fn)(const void *, size_t, size_t *);
typedef gradstep_status (*f32_fn)(const void *, gradstep_scalars *, float *, const float *,
                                  size_t, float *, size_t);
typedef gradstep_status (*f64_fn)(const void *, gradstep_scalars *, double *, const double *,
                                  size_t, double *, size_t);

typedef struct {
    const char *name;
    const field *fields;
    len_fn state_len;
    f32_fn step_f32;
    f64_fn step_f64;
} rule;

/* The exported functions take typed pointers; calling them through `const void *`
 * wrappers keeps the table uniform without casting function pointers. */
#define WRAP(R, H)                                                                       \
    static gradstep_status R##_len(const void *h, size_t n, size_t *out) {             \
        return gradstep_##R##_state_len((const H *)h, n, out);                          \
    }                                                                                    \
    static gradstep_status R##_f32(const void *h, gradstep_scalars *s, float *p,       \
                                   const float *g, size_t n, float *st, size_t sl) {    \
        return gradstep_##R##_step_f32((const H *)h, s, p, g, n, st, sl);               \
    }                                                                                    \
    static gradstep_status R##_f64(const void *h, gradstep_scalars *s, double *p,      \
                                   const double *g, size_t n, double *st, size_t sl) {  \
        return gradstep_##R##_step_f64((const H *)h, s, p, g, n, st, sl);               \
    }

WRAP(sgd, gradstep_sgd)
WRAP(adam, gradstep_adam)
WRAP(rmsprop, gradstep_rmsprop)
WRAP(nadam, gradstep_nadam)
WRAP(asgd, gradstep_asgd)

static const rule rules[] = {
    {"sgd", sgd_fields, sgd_len, sgd_f32, sgd_f64},
    {"adam", adam_fields, adam_len, adam_f32, adam_f64},
    {"rmsprop", rmsprop_fields, rmsprop_len, rmsprop_f32, rmsprop_f64},
    {"nadam", nadam_fields, nadam_len, nadam_f32, nadam_f64},
    {"asgd", asgd_fields, asgd_len, asgd_f32, asgd_f64},
};

static any_hyper defaults(const char *name) {
    any_hyper h;
    memset(&h, 0, sizeof h);
    if (!strcmp(name, "sgd")) h.sgd = gradstep_sgd_default();
    else if (!strcmp(name, "adam")) h.adam = gradstep_adam_default();
    else if (!strcmp(name, "rmsprop")) h.rmsprop = gradstep_rmsprop_default();
    else if (!strcmp(name, "nadam")) h.nadam = gradstep_nadam_default();
    else if (!strcmp(name, "asgd")) h.asgd = gradstep_asgd_default();
    return h;
}

static void set_field(any_hyper *h, const field *fields, const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq) FAIL("expected field=value, got %s", arg);
    for (const field *f = fields; f->name; f++) {
        if (strlen(f->name) == (size_t)(eq - arg) && !strncmp(f->name, arg, (size_t)(eq - arg))) {
            char *at = (char *)h + f->offset;
            double v = strtod(eq + 1, NULL);
            if (f->is_flag) {
                uint8_t b = (uint8_t)(v != 0.0);
                memcpy(at, &b, 1);
            } else {
                memcpy(at, &v, sizeof v);
            }
            return;
        }
    }
    FAIL("unknown field %s", arg);
}

static double read_number(void) {
    double v;
    if (scanf("%lf", &v) != 1) FAIL("input ended early");
    return v;
}

static int trajectory(int argc, char **argv) {
    const rule *r = NULL;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (!strcmp(rules[i].name, argv[1])) r = &rules[i];
    if (!r) FAIL("unknown rule %s", argv[1]);
    int is_f32 = !strcmp(argv[2], "f32");
    any_hyper h = defaults(r->name);
    for (int i = 3; i < argc; i++) set_field(&h, r->fields, argv[i]);

    size_t n = (size_t)read_number(), steps = (size_t)read_number(), len = 0;
    gradstep_status s = r->state_len(&h, n, &len);
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
        s = is_f32 ? r->step_f32(&h, &sc, pf, gf, n, stf, len)
                   : r->step_f64(&h, &sc, p, g, n, st, len);
        if (s != GRADSTEP_OK) FAIL("step %zu: %s", t, gradstep_status_str(s));
        for (size_t i = 0; i < n; i++) {
            if (is_f32) printf(i ? " %.9g" : "%.9g", (double)pf[i]);
            else printf(i ? " %.17g" : "%.17g", p[i]);
        }
        printf("\n");
    }
    if (sc.step != steps) FAIL("step count %llu", (unsigned long long)sc.step);
    free(p), free(g), free(st), free(pf), free(gf), free(stf);
    return 0;
}

#define EXPECT(call, status)                                                           \
    do {                                                                               \
        gradstep_status got_ = (call);                                                 \
        if (got_ != (status))                                                          \
            FAIL("%s:%d: %s gave %u (%s), expected %s", __FILE__, __LINE__, #call,     \
                 (unsigned)got_, gradstep_status_str(got_), #status);                  \
    } while (0)

/* The powers cache in gradstep_scalars never changes a result: steps with the cache
 * kept, cleared, or overwritten with garbage before every step give the same bits. */
static int cache_is_invisible(void) {
    enum { N = 5, STEPS = 40 };
    gradstep_adam adam = gradstep_adam_default();
    adam.lr = 0.01;
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
            gradstep_status s = gradstep_adam_step_f32(&adam, &sc[k], p[k], g, N, st[k], 2 * N);
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
    gradstep_adam adam = gradstep_adam_default();
    gradstep_scalars sc = {0};
    float p[8] = {1, 2, 3, 4, 5, 6, 7, 8}, g[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    float st[17] = {0};
    size_t len = 0;
    EXPECT(gradstep_adam_state_len(&adam, 8, &len), GRADSTEP_OK);
    if (len != 16) FAIL("adam state_len %zu", len);
    EXPECT(gradstep_adam_state_len(NULL, 8, &len), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_adam_state_len(&adam, 8, NULL), GRADSTEP_NULL_POINTER);
    /* NULL pointers are refused even for zero-length buffers. */
    EXPECT(gradstep_adam_step_f32(&adam, &sc, NULL, g, 0, st, 0), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_adam_step_f32(&adam, &sc, p, NULL, 0, st, 0), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_adam_step_f32(&adam, &sc, p, g, 0, NULL, 0), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_adam_step_f32(&adam, NULL, p, g, 8, st, 16), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_adam_step_f32(NULL, &sc, p, g, 8, st, 16), GRADSTEP_NULL_POINTER);
    /* Wrong state length, overlapping buffers, misaligned pointers. */
    EXPECT(gradstep_adam_step_f32(&adam, &sc, p, g, 8, st, 15), GRADSTEP_STATE_LAYOUT);
    EXPECT(gradstep_adam_step_f32(&adam, &sc, p, p, 8, st, 16), GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_adam_step_f32(&adam, &sc, p, g, 4, p + 2, 8),
           GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_adam_step_f32(&adam, &sc, (float *)((char *)p + 1), g, 4, st, 8),
           GRADSTEP_MISALIGNED_POINTER);
    /* Invalid hyperparameters, including NaN. */
    gradstep_adam bad = adam;
    bad.beta1 = 1.5;
    EXPECT(gradstep_adam_step_f32(&bad, &sc, p, g, 8, st, 16), GRADSTEP_INVALID_HYPERPARAMETER);
    bad = adam;
    bad.lr = NAN;
    EXPECT(gradstep_adam_step_f32(&bad, &sc, p, g, 8, st, 16), GRADSTEP_INVALID_HYPERPARAMETER);
    EXPECT(gradstep_adam_state_len(&bad, 8, &len), GRADSTEP_INVALID_HYPERPARAMETER);
    /* None of the refused calls wrote anything. */
    for (int i = 0; i < 8; i++)
        if (p[i] != (float)(i + 1)) FAIL("params changed by a refused call");
    if (sc.step != 0) FAIL("scalars changed by a refused call");
    /* A flag byte other than 0/1 is just "true". */
    adam.amsgrad = 200;
    EXPECT(gradstep_adam_state_len(&adam, 8, &len), GRADSTEP_OK);
    if (len != 24) FAIL("amsgrad state_len %zu", len);
    /* Zero-length steps with valid pointers are fine. */
    adam.amsgrad = 0;
    EXPECT(gradstep_adam_step_f32(&adam, &sc, p, g, 0, st, 0), GRADSTEP_OK);
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
    gradstep_adam adam = gradstep_adam_default();
    adam.lr = 0.05;
    adam.amsgrad = 1;
    size_t len = 0, cap = 0, written = 0;
    EXPECT(gradstep_adam_state_len(&adam, N, &len), GRADSTEP_OK);
    EXPECT(gradstep_adam_checkpoint_len(&adam, 1, N, 1, &cap), GRADSTEP_OK);
    float p[N], g[N], st[3 * N], p2[N], st2[3 * N];
    unsigned char *buf = malloc(cap);
    if (!buf || len != 3 * N) FAIL("setup");
    for (int i = 0; i < N; i++) p[i] = (float)i / 7.0f - 2.0f;
    gradstep_scalars sc = {0}, sc2;
    for (int t = 0; t < K + M; t++) {
        if (t == K) {
            EXPECT(gradstep_adam_checkpoint_save_f32(&adam, &sc, st, len, p, N, buf, cap - 1,
                                                     &written),
                   GRADSTEP_BUFFER_TOO_SMALL);
            EXPECT(gradstep_adam_checkpoint_save_f32(&adam, &sc, st, len, p, N, buf, cap,
                                                     &written),
                   GRADSTEP_OK);
            if (written != cap) FAIL("written %zu of %zu", written, cap);
        }
        for (int i = 0; i < N; i++) g[i] = (float)((i * 7 + t * 3) % 11) - 5.0f;
        EXPECT(gradstep_adam_step_f32(&adam, &sc, p, g, N, st, len), GRADSTEP_OK);
    }

    gradstep_checkpoint_info info;
    EXPECT(gradstep_checkpoint_peek(buf, written, &info), GRADSTEP_OK);
    if (info.rule != 2 || info.element != 1 || info.n != N || info.slots != 3 ||
        !info.has_params || info.len != written)
        FAIL("peek");

    /* Refusals leave every output untouched. */
    gradstep_adam restored;
    gradstep_sgd sgd;
    memset(&restored, 0x5a, sizeof restored);
    memset(&sc2, 0x5a, sizeof sc2);
    memset(p2, 0x5a, sizeof p2);
    memset(st2, 0x5a, sizeof st2);
    unsigned char *bad = malloc(written);
    double st64[3 * N], p64[N];
    if (!bad) FAIL("oom");
    EXPECT(gradstep_adam_checkpoint_load_f32(buf, written - 1, &restored, &sc2, st2, len, p2, N),
           GRADSTEP_BAD_CHECKPOINT);
    memcpy(bad, buf, written);
    bad[written / 2] ^= 0x10;
    EXPECT(gradstep_adam_checkpoint_load_f32(bad, written, &restored, &sc2, st2, len, p2, N),
           GRADSTEP_BAD_CHECKPOINT);
    memcpy(bad, buf, written);
    bad[4] = 99; /* the format version */
    EXPECT(gradstep_adam_checkpoint_load_f32(bad, written, &restored, &sc2, st2, len, p2, N),
           GRADSTEP_CHECKPOINT_VERSION);
    EXPECT(gradstep_sgd_checkpoint_load_f32(buf, written, &sgd, &sc2, st2, len, p2, N),
           GRADSTEP_CHECKPOINT_WRONG_RULE);
    EXPECT(gradstep_adam_checkpoint_load_f64(buf, written, &restored, &sc2, st64, len, p64, N),
           GRADSTEP_CHECKPOINT_WRONG_TYPE);
    EXPECT(gradstep_adam_checkpoint_load_f32(buf, written, &restored, &sc2, st2, len - 1, p2, N),
           GRADSTEP_STATE_LAYOUT);
    EXPECT(gradstep_adam_checkpoint_load_f32(NULL, 0, &restored, &sc2, st2, len, p2, N),
           GRADSTEP_NULL_POINTER);
    const unsigned char *sentinel = (const unsigned char *)p2;
    for (size_t i = 0; i < sizeof p2; i++)
        if (sentinel[i] != 0x5a) FAIL("a refused load wrote the params");
    if (restored.lr == adam.lr) FAIL("a refused load wrote the hyperparameters");

    /* Restore and continue: bit-identical to the uninterrupted run. */
    EXPECT(gradstep_adam_checkpoint_load_f32(buf, written, &restored, &sc2, st2, len, p2, N),
           GRADSTEP_OK);
    if (restored.lr != adam.lr || !restored.amsgrad || sc2.step != K) FAIL("restored values");
    for (int t = K; t < K + M; t++) {
        for (int i = 0; i < N; i++) g[i] = (float)((i * 7 + t * 3) % 11) - 5.0f;
        EXPECT(gradstep_adam_step_f32(&restored, &sc2, p2, g, N, st2, len), GRADSTEP_OK);
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
    gradstep_adam h0 = gradstep_adam_default(), h1 = gradstep_adam_default();
    h0.lr = 0.1;
    h1.lr = 0.01;
    h1.weight_decay = 0.1;
    gradstep_optimizer *opt = NULL;
    size_t g1 = 0;
    EXPECT(gradstep_optimizer_new_adam(&h0, GRADSTEP_F32, &opt), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_add_group_adam(opt, &h1, &g1), GRADSTEP_OK);
    if (g1 != 1) FAIL("group index");
    EXPECT(gradstep_optimizer_add_params_f32(opt, 0, w, gw, N1), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_add_params_f32(opt, g1, b, gb, N2), GRADSTEP_OK);
    /* Refusals. */
    gradstep_sgd sgd = gradstep_sgd_default();
    double dw[2];
    EXPECT(gradstep_optimizer_add_group_sgd(opt, &sgd, &g1), GRADSTEP_WRONG_RULE);
    EXPECT(gradstep_optimizer_add_params_f32(opt, 0, rw, rw, 1), GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_optimizer_add_params_f64(opt, 0, dw, dw + 1, 1), GRADSTEP_WRONG_ELEMENT_TYPE);
    EXPECT(gradstep_optimizer_add_params_f32(opt, 0, w + 1, gw, 2), GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_optimizer_add_params_f32(opt, 7, rw, gw, 2), GRADSTEP_LENGTH_MISMATCH);
    EXPECT(gradstep_optimizer_set_lr(opt, 0, -1.0), GRADSTEP_INVALID_HYPERPARAMETER);
    EXPECT(gradstep_optimizer_new_adam(&h0, 7, &opt), GRADSTEP_UNKNOWN_KIND);

    /* A StepLR on group 0, stepped after each optimizer step. */
    gradstep_schedule_config c = gradstep_schedule_default(GRADSTEP_SCHEDULE_STEP);
    c.params.step.step_size = 2;
    c.params.step.gamma = 0.5;
    EXPECT(gradstep_optimizer_attach_schedule(opt, 0, &c), GRADSTEP_OK);

    /* The same run through the allocation-free API. */
    float s0[2 * N1] = {0}, s1[2 * N2] = {0};
    gradstep_scalars sc0 = {0}, sc1 = {0};
    gradstep_adam r0 = h0;
    for (int t = 0; t < 6; t++) {
        for (int i = 0; i < N1; i++) gw[i] = (float)((i + t) % 3) - 1.0f;
        for (int i = 0; i < N2; i++) gb[i] = 0.25f * (float)(i - t);
        EXPECT(gradstep_optimizer_step(opt), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_schedule_step(opt), GRADSTEP_OK);
        EXPECT(gradstep_adam_step_f32(&r0, &sc0, rw, gw, N1, s0, 2 * N1), GRADSTEP_OK);
        EXPECT(gradstep_adam_step_f32(&h1, &sc1, rb, gb, N2, s1, 2 * N2), GRADSTEP_OK);
        r0.lr = 0.1 * (t + 1 >= 2 ? 0.5 : 1.0) * (t + 1 >= 4 ? 0.5 : 1.0) * (t + 1 >= 6 ? 0.5 : 1.0);
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
    gradstep_adam fresh = gradstep_adam_default();
    EXPECT(gradstep_optimizer_new_adam(&fresh, GRADSTEP_F32, &opt2), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_add_group_adam(opt2, &fresh, &g2), GRADSTEP_OK);
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

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--handles")) return handles();
    if (argc == 4 && !strcmp(argv[1], "--schedule")) return schedule(argv[2], atoi(argv[3]));
    if (argc == 2 && !strcmp(argv[1], "--training")) return training();
    if (argc == 2 && !strcmp(argv[1], "--checkpoints")) return checkpoints();
    if (argc == 2 && !strcmp(argv[1], "--errors")) return errors();
    if (argc == 2 && !strcmp(argv[1], "--cache")) return cache_is_invisible();
    if (argc < 3) FAIL("usage: rules RULE f32|f64 [field=value ...] < input | rules --errors");
    return trajectory(argc, argv);
}
