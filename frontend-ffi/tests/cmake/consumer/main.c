/* One Adam step through gradstep, built by CMake against gradstep::gradstep; checks
 * the version macros against the library and a refusal's message. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <gradstep.h>

int main(void) {
    gradstep_rule rule;
    gradstep_scalars scalars;
    float params[2] = {1.0f, -2.0f}, grads[2] = {0.5f, -0.25f}, state[4];
    char message[128];
    size_t len = 0;
    memset(&scalars, 0, sizeof scalars);
    if (strcmp(gradstep_version(), GRADSTEP_VERSION_STRING) != 0) {
        fprintf(stderr, "header %s, library %s\n", GRADSTEP_VERSION_STRING, gradstep_version());
        return 1;
    }
    if (gradstep_rule_parse("adam:lr=0.1", &rule) != GRADSTEP_OK ||
        gradstep_rule_state_len(&rule, 2, &len) != GRADSTEP_OK || len != 4 ||
        gradstep_rule_step_f32(&rule, &scalars, params, grads, 2, state, 4) != GRADSTEP_OK) {
        fprintf(stderr, "adam step refused\n");
        return 1;
    }
    /* Adam's first step moves each parameter by lr against its gradient's sign. */
    if (fabsf(params[0] - 0.9f) > 1e-6f || fabsf(params[1] + 1.9f) > 1e-6f) {
        fprintf(stderr, "params %g %g\n", params[0], params[1]);
        return 1;
    }
    if (gradstep_rule_step_f32(&rule, &scalars, params, grads, 2, state, 3) !=
            GRADSTEP_STATE_LAYOUT ||
        gradstep_last_error(message, sizeof message) == 0 ||
        strstr(message, "state length 3, expected 4") == NULL) {
        fprintf(stderr, "refusal: %s\n", message);
        return 1;
    }
    printf("consumer ok\n");
    return 0;
}
