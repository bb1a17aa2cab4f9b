/* Lookahead through the C ABI: a composite from its spec, stepped by an optimizer
 * handle, checked against values worked out by hand (exact in binary), the typed
 * setter's refusals, and a checkpoint round trip. Prints "lookahead: ok". */
#include <gradstep.h>
#include <stdio.h>
#include <stdlib.h>

static int failures = 0;

#define EXPECT(call, status)                                                         \
    do {                                                                             \
        gradstep_status got_ = (call);                                               \
        if (got_ != (status)) {                                                      \
            fprintf(stderr, "%s:%d: %s gave %d, expected %d\n", __FILE__, __LINE__, \
                    #call, (int)got_, (int)(status));                                \
            failures++;                                                              \
        }                                                                            \
    } while (0)

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                              \
        }                                                                            \
    } while (0)

/* SGD (lr 0.5, momentum 0.5), k = 2, alpha = 0.25, grad 1, param 1. Step 1: buffer 1,
 * param 0.5. Step 2: buffer 1.5, param -0.25; sync: 1 + 0.25 (-0.25 - 1) = 0.6875,
 * slow = 0.6875; pullback: buffer 0.25 * 1.5 = 0.375. Steps 3 and 4 (from the pulled
 * back buffer 0.375): buffer 1.1875, param 0.09375; buffer 1.59375, param -0.703125;
 * sync: 0.6875 + 0.25 (-0.703125 - 0.6875) = 0.33984375. */
static const double AFTER[4] = {0.5, 0.6875, 0.09375, 0.33984375};

int main(void) {
    struct gradstep_lookahead la;
    struct gradstep_optimizer *opt = NULL, *again = NULL;
    float p[3] = {1.0f, 1.0f, 1.0f};
    float g[3] = {1.0f, 1.0f, 1.0f};
    float q[3] = {1.0f, 1.0f, 1.0f};
    double d[2] = {1.0, 1.0};
    double dg[2] = {1.0, 1.0};
    size_t len = 0, written = 0;
    uint8_t *bytes;
    int t;

    EXPECT(gradstep_lookahead_parse(
               "lookahead(sgd:lr=0.5,momentum=0.5):k=2,alpha=0.25,momentum=pullback", &la),
           GRADSTEP_OK);
    CHECK(la.k == 2 && la.alpha == 0.25 && la.momentum == GRADSTEP_LOOKAHEAD_PULLBACK);
    CHECK(la.rule.kind == GRADSTEP_RULE_SGD && la.rule.params.sgd.momentum == 0.5);
    EXPECT(gradstep_lookahead_parse("lookahead(sgd):k=0", &la),
           GRADSTEP_INVALID_HYPERPARAMETER);
    EXPECT(gradstep_lookahead_parse("lookahead(nope)", &la), GRADSTEP_UNKNOWN_KIND);
    EXPECT(gradstep_lookahead_parse("lookahead(sgd):kk=1", &la), GRADSTEP_BAD_RULE_TEXT);
    EXPECT(gradstep_lookahead_parse("lookahead(sgd", &la), GRADSTEP_BAD_RULE_TEXT);
    EXPECT(gradstep_lookahead_parse(NULL, &la), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_lookahead_parse(
               "lookahead(sgd:lr=0.5,momentum=0.5):k=2,alpha=0.25,momentum=pullback", &la),
           GRADSTEP_OK);

    /* f32 handle from the parsed composite. */
    EXPECT(gradstep_optimizer_new_lookahead(&la, GRADSTEP_F32, &opt), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_add_params_f32(opt, 0, p, g, 3), GRADSTEP_OK);
    /* The options shape each tensor's state: fixed once params are added. */
    EXPECT(gradstep_optimizer_set_lookahead(opt, 3, 0.5, GRADSTEP_LOOKAHEAD_NONE),
           GRADSTEP_STATE_LAYOUT);
    for (t = 0; t < 4; t++) {
        EXPECT(gradstep_optimizer_step(opt), GRADSTEP_OK);
        CHECK(p[0] == (float)AFTER[t] && p[2] == (float)AFTER[t]);
    }

    /* Checkpoint after 4 steps; a fresh handle with the same options resumes it. */
    EXPECT(gradstep_optimizer_checkpoint_len(opt, &len), GRADSTEP_OK);
    bytes = (uint8_t *)malloc(len);
    CHECK(bytes != NULL);
    if (bytes != NULL) {
        EXPECT(gradstep_optimizer_checkpoint_save(opt, bytes, len, &written), GRADSTEP_OK);
        CHECK(written == len);
        EXPECT(gradstep_optimizer_new_lookahead(&la, GRADSTEP_F32, &again), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_add_params_f32(again, 0, q, g, 3), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_checkpoint_load(again, bytes, len), GRADSTEP_OK);
        q[0] = q[1] = q[2] = p[0];
        EXPECT(gradstep_optimizer_step(opt), GRADSTEP_OK);
        EXPECT(gradstep_optimizer_step(again), GRADSTEP_OK);
        CHECK(q[0] == p[0] && q[2] == p[2]);
        free(bytes);
    }
    EXPECT(gradstep_optimizer_free(again), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_free(opt), GRADSTEP_OK);

    /* The typed setter on a plain f64 handle, before params. */
    opt = NULL;
    EXPECT(gradstep_optimizer_new(&la.rule, GRADSTEP_F64, &opt), GRADSTEP_OK);
    EXPECT(gradstep_optimizer_set_lookahead(opt, 0, 0.5, GRADSTEP_LOOKAHEAD_NONE),
           GRADSTEP_INVALID_HYPERPARAMETER);
    EXPECT(gradstep_optimizer_set_lookahead(opt, 2, 1.5, GRADSTEP_LOOKAHEAD_NONE),
           GRADSTEP_INVALID_HYPERPARAMETER);
    EXPECT(gradstep_optimizer_set_lookahead(opt, 2, 0.25, 7), GRADSTEP_UNKNOWN_KIND);
    EXPECT(gradstep_optimizer_set_lookahead(NULL, 2, 0.25, 0), GRADSTEP_NULL_POINTER);
    EXPECT(gradstep_optimizer_set_lookahead(opt, 2, 0.25, GRADSTEP_LOOKAHEAD_RESET),
           GRADSTEP_OK);
    EXPECT(gradstep_optimizer_add_params_f64(opt, 0, d, dg, 2), GRADSTEP_OK);
    /* Reset: the buffer is 0 after the sync at step 2, so step 3 starts it afresh
     * (buffer 1, param 0.6875 - 0.5), step 4 syncs again. */
    for (t = 0; t < 3; t++) {
        EXPECT(gradstep_optimizer_step(opt), GRADSTEP_OK);
    }
    CHECK(d[0] == 0.1875 && d[1] == 0.1875);
    EXPECT(gradstep_optimizer_free(opt), GRADSTEP_OK);

    if (failures != 0) {
        fprintf(stderr, "lookahead: %d failures\n", failures);
        return 1;
    }
    printf("lookahead: ok\n");
    return 0;
}
