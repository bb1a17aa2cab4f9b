/* Hostile use of the C API (issue 12), as a C11 program under AddressSanitizer and
 * UndefinedBehaviorSanitizer: NULLs, lengths near SIZE_MAX, overlapping buffers, stale,
 * double-freed, mistyped and made-up handles, allocations no machine has, forged
 * checkpoints (one changed byte, CRC fixed), hostile schedule configs (NaN, infinities,
 * counts beyond the arrays). Every call must return a status; refusals must write
 * nothing; nothing may crash, abort or print. Prints "abuse ok" and nothing else.
 *
 * Run by frontend-ffi/tests/c_programs.rs with ASAN_OPTIONS=allocator_may_return_null=1
 * (without it ASan aborts on a 2^40-element malloc instead of returning NULL, as the
 * system allocator does).
 */
#include <math.h>
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

#define EXPECT(call, status)                                                           \
    do {                                                                               \
        gradstep_status got_ = (call);                                                 \
        if (got_ != (status))                                                          \
            FAIL("%s:%d: %s gave %u (%s), expected %s", __FILE__, __LINE__, #call,     \
                 (unsigned)got_, gradstep_status_str(got_), #status);                  \
    } while (0)

/* A status gradstep documents (its text is not "unknown status"). */
static gradstep_status known(gradstep_status s, int line) {
    if (!strcmp(gradstep_status_str(s), "unknown status"))
        FAIL("line %d: undocumented status %u", line, (unsigned)s);
    return s;
}
#define KNOWN(call) known((call), __LINE__)

static gradstep_rule rule_of(gradstep_rule_kind kind) {
    gradstep_rule r;
    EXPECT(gradstep_rule_default(kind, &r), GRADSTEP_OK);
    return r;
}

enum { N = 8 };

static void nulls_and_lengths(void) {
    gradstep_rule adam = rule_of(GRADSTEP_RULE_ADAM);
    gradstep_scalars sc = {0};
    float p[N] = {1, 2, 3, 4, 5, 6, 7, 8}, g[N] = {1, 1, 1, 1, 1, 1, 1, 1}, st[2 * N] = {0};
    EXPECT(gradstep_rule_step_f32(NULL, &sc, p, g, N, st, 2 * N), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_step_f32(&adam, NULL, p, g, N, st, 2 * N), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_step_f32(&adam, &sc, NULL, g, 0, st, 2 * N), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, NULL, N, st, 2 * N), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, N, NULL, 2 * N), GRADSTEP_NULL_POINTER);
    size_t huge[] = {SIZE_MAX, SIZE_MAX / 2, SIZE_MAX / 4, SIZE_MAX / 4 + 1, (size_t)PTRDIFF_MAX};
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, huge[i], st, 2 * N),
               GRADSTEP_LENGTH_TOO_LARGE);
        EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, N, st, huge[i]),
               GRADSTEP_LENGTH_TOO_LARGE);
        size_t len = 0;
        if (KNOWN(gradstep_rule_state_len(&adam, huge[i], &len)) == GRADSTEP_OK && len < huge[i])
            FAIL("state_len(%zu) = %zu", huge[i], len);
    }
    /* Misaligned. */
    EXPECT(gradstep_rule_step_f32(&adam, &sc, (float *)((char *)p + 1), g, N - 1, st, 2 * N),
           GRADSTEP_MISALIGNED_POINTER);
    /* Overlapping: params are grads, state over params, state over grads. */
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p, p, N, st, 2 * N), GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_rule_step_f32(&adam, &sc, p + 1, p, N - 1, st, 2 * N - 2),
           GRADSTEP_OVERLAPPING_BUFFERS);
    float big[4 * N] = {0};
    EXPECT(gradstep_rule_step_f32(&adam, &sc, big, g, N, big + N / 2, 2 * N),
           GRADSTEP_OVERLAPPING_BUFFERS);
    /* With scratch: NULL, too short, too long, over params, over grads, over state. */
    gradstep_rule lamb = rule_of(GRADSTEP_RULE_LAMB);
    float u[N + 1] = {0};
    EXPECT(gradstep_rule_step_scratch_f32(&lamb, &sc, p, g, N, st, 2 * N, NULL, N),
           GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_rule_step_scratch_f32(&lamb, &sc, p, g, N, st, 2 * N, u, N - 1),
           GRADSTEP_LENGTH_MISMATCH);
    EXPECT(gradstep_rule_step_scratch_f32(&lamb, &sc, p, g, N, st, 2 * N, u, N + 1),
           GRADSTEP_LENGTH_MISMATCH);
    EXPECT(gradstep_rule_step_scratch_f32(&lamb, &sc, p, g, N, st, 2 * N, u, SIZE_MAX),
           GRADSTEP_LENGTH_TOO_LARGE);
    EXPECT(gradstep_rule_step_scratch_f32(&lamb, &sc, p, g, N, st, 2 * N, p, N),
           GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_rule_step_scratch_f32(&lamb, &sc, p, g, N, st, 2 * N, g, N),
           GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_rule_step_scratch_f32(&lamb, &sc, p, g, N, st, 2 * N, st + N, N),
           GRADSTEP_OVERLAPPING_BUFFERS);
    if (sc.step != 0 || p[0] != 1 || p[7] != 8) FAIL("a refused step wrote");
    /* Clipping: counts near SIZE_MAX and tables no machine has. */
    float w[2] = {3, 4};
    float *ptrs[1] = {w};
    size_t lens[1] = {2};
    double total = 0;
    EXPECT(gradstep_clip_grad_norm_f32(ptrs, lens, SIZE_MAX, 1, 2, 0, &total),
           GRADSTEP_LENGTH_TOO_LARGE);
    EXPECT(gradstep_clip_grad_norm_f32(ptrs, lens, (size_t)1 << 40, 1, 2, 0, &total),
           GRADSTEP_OUT_OF_MEMORY);
    EXPECT(gradstep_clip_grad_norm_f32(NULL, lens, 1, 1, 2, 0, &total), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_clip_grad_norm_f32(ptrs, lens, 1, NAN, 2, 0, &total),
           GRADSTEP_INVALID_HYPERPARAMETER);
    lens[0] = SIZE_MAX;
    EXPECT(gradstep_clip_grad_norm_f32(ptrs, lens, 1, 1, 2, 0, &total), GRADSTEP_LENGTH_TOO_LARGE);
    if (w[0] != 3 || w[1] != 4) FAIL("a refused clip wrote");
    /* Texts and kinds. */
    gradstep_rule r;
    EXPECT(gradstep_rule_parse(NULL, &r), GRADSTEP_NULL_POINTER);
    if (KNOWN(gradstep_rule_parse("adam:lr=nan", &r)) == GRADSTEP_OK) FAIL("lr=nan parsed");
    EXPECT(gradstep_rule_default(9999, &r), GRADSTEP_UNKNOWN_KIND);
    r = adam;
    r.kind = 0xFFFFFFFFu;
    EXPECT(gradstep_rule_step_f32(&r, &sc, p, g, N, st, 2 * N), GRADSTEP_UNKNOWN_KIND);
    r = adam;
    r.params.adam.lr = -INFINITY;
    EXPECT(gradstep_rule_step_f32(&r, &sc, p, g, N, st, 2 * N), GRADSTEP_INVALID_HYPERPARAMETER);
}

static gradstep_optimizer *optimizer(float *p, const float *g, size_t n) {
    gradstep_rule adam = rule_of(GRADSTEP_RULE_ADAM);
    gradstep_optimizer *opt = NULL;
    EXPECT(gradstep_optimizer_new(&adam, GRADSTEP_F32, &opt), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_add_params_f32(opt, 0, p, g, n), GRADSTEP_OK);
    return opt;
}

static void handles(void) {
    float p[N] = {1, 2, 3, 4, 5, 6, 7, 8}, g[N] = {1, -1, 1, -1, 1, -1, 1, -1};
    float q[N] = {1, 2, 3, 4, 5, 6, 7, 8};
    gradstep_optimizer *stale = optimizer(p, g, N);
    EXPECT(gradstep_optimizer_free(stale), GRADSTEP_OK);
    /* The next handles, one of which a Box registry would have put at the same address. */
    gradstep_optimizer *fresh[16];
    for (int i = 0; i < 16; i++) fresh[i] = optimizer(q, g, i == 0 ? N : 0);
    EXPECT(gradstep_optimizer_step(stale), GRADSTEP_INVALID_HANDLE);
    if (q[0] != 1) FAIL("a stale handle stepped another handle's params");
    EXPECT(gradstep_optimizer_free(stale), GRADSTEP_INVALID_HANDLE); /* double free */
    EXPECT(gradstep_optimizer_step(fresh[0]), GRADSTEP_OK);
    if (q[0] == 1) FAIL("the live handle did not step");
    for (int i = 0; i < 16; i++) {
        if (fresh[i] == stale) FAIL("a handle value was reused");
        EXPECT(gradstep_optimizer_free(fresh[i]), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_free(fresh[i]), GRADSTEP_INVALID_HANDLE);
    }
    EXPECT(gradstep_optimizer_free(NULL), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_step(NULL), GRADSTEP_NULL_POINTER);
    /* Mistyped: a schedule as an optimizer and back; made-up values. */
    gradstep_schedule_config c = gradstep_schedule_default(GRADSTEP_SCHEDULE_EXPONENTIAL);
    c.params.exponential.gamma = 0.5;
    gradstep_schedule *s = NULL;
    EXPECT(gradstep_schedule_new(&c, 1.0, &s), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_step((gradstep_optimizer *)s), GRADSTEP_INVALID_HANDLE);
    EXPECT(gradstep_optimizer_free((gradstep_optimizer *)s), GRADSTEP_INVALID_HANDLE);
    gradstep_optimizer *o = optimizer(p, g, N);
    EXPECT(gradstep_schedule_step((gradstep_schedule *)o), GRADSTEP_INVALID_HANDLE);
    EXPECT(gradstep_schedule_free((gradstep_schedule *)o), GRADSTEP_INVALID_HANDLE);
    uintptr_t made_up[] = {1, 8, 16, 0x1000, (uintptr_t)p, (uintptr_t)&c, UINTPTR_MAX,
                           UINTPTR_MAX - 15, (uintptr_t)o + 16, (uintptr_t)s + 16};
    for (size_t i = 0; i < sizeof made_up / sizeof *made_up; i++) {
        EXPECT(gradstep_optimizer_step((gradstep_optimizer *)made_up[i]), GRADSTEP_INVALID_HANDLE);
        EXPECT(gradstep_optimizer_free((gradstep_optimizer *)made_up[i]), GRADSTEP_INVALID_HANDLE);
        EXPECT(gradstep_schedule_step((gradstep_schedule *)made_up[i]), GRADSTEP_INVALID_HANDLE);
        EXPECT(gradstep_schedule_free((gradstep_schedule *)made_up[i]), GRADSTEP_INVALID_HANDLE);
    }
    /* Allocations no machine has: 2^40 params of Adam state, a status not an abort. */
    EXPECT(gradstep_optimizer_add_params_f32(o, 0, q, g, (size_t)1 << 40), GRADSTEP_OUT_OF_MEMORY);
    EXPECT(gradstep_optimizer_add_params_f32(o, 0, q, g, SIZE_MAX / 2), GRADSTEP_LENGTH_TOO_LARGE);
    EXPECT(gradstep_optimizer_add_params_f32(o, 99, q, g, N), GRADSTEP_NO_SUCH_GROUP);
    EXPECT(gradstep_optimizer_add_params_f32(o, 0, p, g, N), GRADSTEP_OVERLAPPING_BUFFERS);
    EXPECT(gradstep_optimizer_add_params_f32(o, 0, q, q, N), GRADSTEP_OVERLAPPING_BUFFERS);
    size_t len = 0;
    EXPECT(gradstep_optimizer_checkpoint_len(o, &len), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_checkpoint_load(o, (const uint8_t *)p, SIZE_MAX),
           GRADSTEP_LENGTH_TOO_LARGE);
    EXPECT(gradstep_optimizer_free(o), GRADSTEP_OK);
    EXPECT(gradstep_schedule_free(s), GRADSTEP_OK);
    EXPECT(gradstep_schedule_free(s), GRADSTEP_INVALID_HANDLE);
}

/* zlib's CRC-32, bit by bit: what a forger would compute. */
static uint32_t crc32(const uint8_t *b, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= b[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void fix_crc(uint8_t *b, size_t len) {
    uint32_t c = crc32(b, len - 4);
    for (int k = 0; k < 4; k++) b[len - 4 + k] = (uint8_t)(c >> (8 * k));
}

static void forged_checkpoints(void) {
    gradstep_rule adam = rule_of(GRADSTEP_RULE_ADAM);
    gradstep_scalars sc = {0};
    float p[N] = {1, 2, 3, 4, 5, 6, 7, 8}, g[N] = {1, -1, 1, -1, 1, -1, 1, -1}, st[2 * N] = {0};
    for (int t = 0; t < 3; t++) EXPECT(gradstep_rule_step_f32(&adam, &sc, p, g, N, st, 2 * N), GRADSTEP_OK);
    size_t cap = 0, written = 0;
    EXPECT(gradstep_checkpoint_len(&adam, GRADSTEP_F32, N, 1, &cap), GRADSTEP_OK);
    uint8_t *good = malloc(cap), *bad = malloc(cap);
    if (!good || !bad) FAIL("out of memory");
    EXPECT(gradstep_checkpoint_save_f32(&adam, &sc, st, 2 * N, p, N, good, cap, &written), GRADSTEP_OK);
    /* Saving into the state or the params is refused. */
    EXPECT(gradstep_checkpoint_save_f32(&adam, &sc, st, 2 * N, p, N, (uint8_t *)st, sizeof st,
                                        &written),
           GRADSTEP_OVERLAPPING_BUFFERS);
    /* Every byte changed three ways, with the CRC fixed: a status each time, and a
     * refusal leaves every output as it was. */
    size_t accepted = 0;
    for (size_t i = 0; i + 4 < cap; i++) {
        static const uint8_t xors[] = {0x01, 0x80, 0xFF};
        for (size_t k = 0; k < sizeof xors; k++) {
            memcpy(bad, good, cap);
            bad[i] ^= xors[k];
            fix_crc(bad, cap);
            gradstep_rule r_out = adam;
            gradstep_scalars sc_out = {0};
            float st_out[2 * N], p_out[N];
            memset(st_out, 0x5A, sizeof st_out);
            memset(p_out, 0x5A, sizeof p_out);
            gradstep_status s = KNOWN(gradstep_checkpoint_load_f32(
                bad, cap, GRADSTEP_RULE_ADAM, &r_out, &sc_out, st_out, 2 * N, p_out, N));
            if (s == GRADSTEP_OK) {
                accepted++;
                continue;
            }
            for (size_t j = 0; j < sizeof st_out; j++)
                if (((uint8_t *)st_out)[j] != 0x5A) FAIL("byte %zu: refused load wrote state", i);
            for (size_t j = 0; j < sizeof p_out; j++)
                if (((uint8_t *)p_out)[j] != 0x5A) FAIL("byte %zu: refused load wrote params", i);
            if (sc_out.step != 0 || memcmp(&r_out, &adam, sizeof adam))
                FAIL("byte %zu: refused load wrote the rule or scalars", i);
        }
    }
    /* Changing a state or param value is a valid checkpoint of other values; the
     * header and hyperparameters are not. */
    if (accepted == 0 || accepted > 3 * cap) FAIL("accepted %zu forgeries", accepted);
    /* Lengths: beyond the buffer's object size, and shorter than the checkpoint. */
    float st_out[2 * N], p_out[N];
    gradstep_rule r_out;
    gradstep_scalars sc_out;
    EXPECT(gradstep_checkpoint_load_f32(good, SIZE_MAX, 0, &r_out, &sc_out, st_out, 2 * N, p_out, N),
           GRADSTEP_LENGTH_TOO_LARGE);
    if (KNOWN(gradstep_checkpoint_load_f32(good, cap - 1, 0, &r_out, &sc_out, st_out, 2 * N, p_out,
                                           N)) == GRADSTEP_OK)
        FAIL("a truncated checkpoint loaded");
    /* Loading over the bytes themselves. */
    EXPECT(gradstep_checkpoint_load_f32(good, cap, 0, &r_out, &sc_out, (float *)good, 2 * N, p_out, N),
           GRADSTEP_OVERLAPPING_BUFFERS);

    /* A whole optimizer's checkpoint, every byte changed with the CRC (its last four
     * bytes) fixed: each load a status; a refused load leaves the handle saving the
     * same bytes as before. */
    float q[N] = {1, 2, 3, 4, 5, 6, 7, 8};
    gradstep_optimizer *o = optimizer(q, g, N);
    EXPECT(gradstep_optimizer_step(o), GRADSTEP_OK);
    size_t olen = 0;
    EXPECT(gradstep_optimizer_checkpoint_len(o, &olen), GRADSTEP_OK);
    uint8_t *ogood = malloc(olen), *obad = malloc(olen), *after = malloc(olen);
    if (!ogood || !obad || !after) FAIL("out of memory");
    EXPECT(gradstep_optimizer_checkpoint_save(o, ogood, olen, &written), GRADSTEP_OK);
    for (size_t i = 0; i + 4 < olen; i++) {
        memcpy(obad, ogood, olen);
        obad[i] ^= 0xFF;
        fix_crc(obad, olen);
        gradstep_status s = KNOWN(gradstep_optimizer_checkpoint_load(o, obad, olen));
        EXPECT(gradstep_optimizer_checkpoint_save(o, after, olen, &written), GRADSTEP_OK);
        if (s != GRADSTEP_OK && memcmp(after, ogood, olen))
            FAIL("optimizer byte %zu: refused load (%s) changed the handle", i, gradstep_status_str(s));
        if (s == GRADSTEP_OK) EXPECT(gradstep_optimizer_checkpoint_load(o, ogood, olen), GRADSTEP_OK);
        KNOWN(gradstep_optimizer_step(o));
        EXPECT(gradstep_optimizer_checkpoint_load(o, ogood, olen), GRADSTEP_OK);
    }
    EXPECT(gradstep_optimizer_free(o), GRADSTEP_OK);
    free(good);
    free(bad);
    free(ogood);
    free(obad);
    free(after);
}

/* Steps, reads and frees a schedule that was created; every call a status. */
static void exercise(gradstep_schedule *s) {
    double lr, m;
    uint8_t has;
    for (int t = 0; t < 200; t++) {
        KNOWN(gradstep_schedule_step(s));
        KNOWN(gradstep_schedule_step_metric(s, t % 3 ? NAN : 1.0 / (t + 1)));
        KNOWN(gradstep_schedule_lr(s, &lr, &m, &has));
    }
    double epochs[] = {NAN, INFINITY, -INFINITY, -1, 1e300, 1e18, 0.5};
    for (size_t i = 0; i < sizeof epochs / sizeof *epochs; i++) KNOWN(gradstep_schedule_step_to(s, epochs[i]));
    EXPECT(gradstep_schedule_free(s), GRADSTEP_OK);
}

static void hostile_schedules(void) {
    double doubles[] = {NAN, INFINITY, -INFINITY, -1.0, 0.0, 1e300, 5e-324, 0.5};
    uint64_t words[] = {UINT64_MAX, 0x7FFFFFFFFFFFFFFFu, 0x8000000000000000u, 17, 0xFFFFFFFFu};
    size_t made = 0;
    for (uint32_t kind = 0; kind <= 20; kind++) {
        if (kind == GRADSTEP_SCHEDULE_LAMBDA || kind == GRADSTEP_SCHEDULE_MULTIPLICATIVE) continue;
        for (size_t v = 0; v < 8 + 5; v++) {
            gradstep_schedule_config c = gradstep_schedule_default(kind);
            /* Every 8-byte word of the parameters, then every word but the first. */
            for (int skip = 0; skip < 2; skip++) {
                uint64_t *w = (uint64_t *)&c.params;
                for (size_t i = (size_t)skip; i < sizeof c.params / 8; i++) {
                    if (v < 8) memcpy(&w[i], &doubles[v], 8);
                    else w[i] = words[v - 8];
                }
                c.kind = kind;
                double lrs[] = {1.0, NAN, -1.0, INFINITY};
                for (size_t l = 0; l < 4; l++) {
                    gradstep_schedule *s = NULL;
                    if (KNOWN(gradstep_schedule_new(&c, lrs[l], &s)) == GRADSTEP_OK) {
                        made++;
                        exercise(s);
                    } else if (s != NULL) {
                        FAIL("a refused schedule_new wrote its handle");
                    }
                }
            }
        }
    }
    if (made == 0) FAIL("no hostile config was accepted: the loop tests nothing");
    /* Callback kinds without a function. */
    gradstep_schedule_config lam = gradstep_schedule_default(GRADSTEP_SCHEDULE_LAMBDA);
    gradstep_schedule *s = NULL;
    if (KNOWN(gradstep_schedule_new(&lam, 1.0, &s)) == GRADSTEP_OK) FAIL("a NULL lr_lambda accepted");
    /* Composites whose count is beyond the members array (ASan sees any read past it). */
    gradstep_schedule_config two[2] = {gradstep_schedule_default(GRADSTEP_SCHEDULE_EXPONENTIAL),
                                       gradstep_schedule_default(GRADSTEP_SCHEDULE_EXPONENTIAL)};
    two[0].params.exponential.gamma = two[1].params.exponential.gamma = 0.9;
    uint64_t milestones[1] = {3};
    size_t counts[] = {0, 1, 5, 1000, SIZE_MAX};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        EXPECT(gradstep_schedule_new_chained(two, counts[i], 1.0, &s), GRADSTEP_INVALID_HYPERPARAMETER);
        EXPECT(gradstep_schedule_new_sequential(two, counts[i], milestones, 1.0, &s),
               GRADSTEP_INVALID_HYPERPARAMETER);
    }
    EXPECT(gradstep_schedule_new_chained(NULL, 2, 1.0, &s), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_schedule_new_sequential(two, 2, NULL, 1.0, &s), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_schedule_new_chained(two, 2, 1.0, NULL), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_schedule_new_chained(two, 2, 1.0, &s), GRADSTEP_OK);
    exercise(s);
}

int main(void) {
    nulls_and_lengths();
    handles();
    forged_checkpoints();
    hostile_schedules();
    printf("abuse ok\n");
    return 0;
}
