/* Activations and the logarithm over vectors (reference C99: one libm call per element). */
#include <math.h>

#include "kwsc_runtime.h"
#include "../activation_scalar.h" /* kwsc_sigmoid, kwsc_activate: shared with src/opt/activation.c */

void kwsc_activate_vec(int32_t act, float* x, int32_t n) {
    int32_t i;
    if (act == KWSC_ACT_NONE) return;
    for (i = 0; i < n; ++i) x[i] = kwsc_activate(act, x[i]);
}

void kwsc_log_vec(const float* x, float* y, int32_t n) {
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = logf(x[i]);
}
