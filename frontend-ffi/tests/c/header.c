/* Compiled as C89, C99, C11 and as C++17 and C++20 (tests/c_programs.rs) with
 * -Wall -Wextra -Wpedantic -Werror: the header is valid in each, and its inline
 * helpers, enums and version macros work. Written in C89 (declarations first). */
#include <stdio.h>

#include "gradstep.h"

int main(void) {
    gradstep_adam adam = gradstep_adam_default();
    gradstep_sgd sgd = gradstep_sgd_default();
    gradstep_element element = GRADSTEP_F64;
    gradstep_status status = GRADSTEP_OK;
    gradstep_rule rule;
    size_t len = 0;
    char message[64];
    memset(&rule, 0, sizeof rule);
    if (adam.lr != 1e-3 || adam.beta2 != 0.999 || sgd.momentum != 0.0) return 1;
    if (element != 2 || GRADSTEP_F32 != 1 || status != 0) return 1;
    if (strcmp(gradstep_version(), GRADSTEP_VERSION_STRING) != 0) return 1;
    status = gradstep_rule_default(GRADSTEP_RULE_KIND_END, &rule);
    if (status != GRADSTEP_UNKNOWN_KIND) return 1;
    if (gradstep_last_error(message, sizeof message) == 0) return 1;
    status = gradstep_rule_default(GRADSTEP_RULE_ADAM, &rule);
    if (status != GRADSTEP_OK || gradstep_rule_state_len(&rule, 3, &len) != GRADSTEP_OK)
        return 1;
    if (len != 6 || rule.params.adam.lr != adam.lr) return 1;
    printf("header: ok\n");
    return 0;
}
