/* Fits y = 3x - 1 with gradstep's Adam from C: the smallest complete program using the
 * allocation-free API and a checkpoint. The rule is chosen by name, as a config file
 * would give it. Build and run with `make` in this directory (see the Makefile), or
 * link against an installed gradstep with pkg-config. */
#include <stdio.h>
#include <stdlib.h>

#include "gradstep.h"

static int fail(gradstep_status s) {
    fprintf(stderr, "gradstep: %s\n", gradstep_status_str(s));
    return 1;
}

int main(void) {
    double w[2] = {0.0, 0.0}; /* slope, intercept */
    double g[2];
    gradstep_rule adam;
    gradstep_status s = gradstep_rule_parse("adam:lr=0.05", &adam);
    if (s != GRADSTEP_OK) return fail(s);
    size_t len = 0;
    s = gradstep_rule_state_len(&adam, 2, &len);
    if (s != GRADSTEP_OK) return fail(s);
    double *state = calloc(len, sizeof *state);
    if (!state) return 1;
    gradstep_scalars scalars = {0};

    for (int step = 0; step < 2000; step++) {
        /* Mean squared error over x = -1, -0.5, ..., 1 and its gradient. */
        double loss = 0.0;
        g[0] = g[1] = 0.0;
        for (int i = 0; i <= 4; i++) {
            double x = -1.0 + 0.5 * i, err = w[0] * x + w[1] - (3.0 * x - 1.0);
            loss += err * err / 5.0;
            g[0] += 2.0 * err * x / 5.0;
            g[1] += 2.0 * err / 5.0;
        }
        s = gradstep_rule_step_f64(&adam, &scalars, w, g, 2, state, len);
        if (s != GRADSTEP_OK) return fail(s);
        if (step % 500 == 0) printf("step %4d  loss %.6f\n", step, loss);
    }

    /* Save everything, restore it into fresh buffers, and check that it came back. */
    size_t cap = 0, written = 0;
    s = gradstep_checkpoint_len(&adam, GRADSTEP_F64, 2, 1, &cap);
    if (s != GRADSTEP_OK) return fail(s);
    unsigned char *buf = malloc(cap);
    double w2[2], *state2 = calloc(len, sizeof *state2);
    gradstep_rule adam2;
    gradstep_scalars scalars2 = {0};
    if (!buf || !state2) return 1;
    s = gradstep_checkpoint_save_f64(&adam, &scalars, state, len, w, 2, buf, cap, &written);
    if (s == GRADSTEP_OK)
        s = gradstep_checkpoint_load_f64(buf, written, GRADSTEP_RULE_ADAM, &adam2, &scalars2,
                                         state2, len, w2, 2);
    if (s != GRADSTEP_OK) return fail(s);

    printf("fitted y = %.4f x %+.4f after %llu steps with %s (checkpoint: %zu bytes)\n", w2[0],
           w2[1], (unsigned long long)scalars2.step, gradstep_rule_name(adam2.kind), written);
    int ok = w2[0] > 2.999 && w2[0] < 3.001 && w2[1] > -1.001 && w2[1] < -0.999 &&
             adam2.params.adam.lr == 0.05;
    free(buf), free(state), free(state2);
    return ok ? 0 : 1;
}
