/* Activations and the logarithm over vectors (reference C99: one libm call per element). */
#include <math.h>

#include "kwsc_runtime.h"

float kwsc_sigmoid(float x) {
    /* ELL's numerically stable split form: never exponentiates a large positive number. */
    float e = expf(-fabsf(x));
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

float kwsc_activate(int32_t act, float x) {
    switch (act) {
    case KWSC_ACT_TANH: return tanhf(x);
    case KWSC_ACT_SIGMOID: return kwsc_sigmoid(x);
    case KWSC_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case KWSC_ACT_HARD_SIGMOID: {
        float y = 0.2f * x + 0.5f;
        return y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
    }
    case KWSC_ACT_HARD_TANH: return x < -1.0f ? -1.0f : (x > 1.0f ? 1.0f : x);
    default: return x;
    }
}

void kwsc_activate_vec(int32_t act, float* x, int32_t n) {
    int32_t i;
    if (act == KWSC_ACT_NONE) return;
    for (i = 0; i < n; ++i) x[i] = kwsc_activate(act, x[i]);
}

void kwsc_log_vec(const float* x, float* y, int32_t n) {
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = logf(x[i]);
}
