/*
 * kwsc runtime, internal: the scalar activations kwsc_sigmoid and kwsc_activate, defined once for both
 * src/ref/activation.c and its optimised twin src/opt/activation.c, which include this file. A program links exactly
 * one of the two (an opt file replaces its ref twin whole), so these definitions are never linked twice. They are
 * plain definitions, not static inline wrappers, so that each twin compiles them exactly as when they were written
 * out in it (same inlining, same machine code on every target).
 */
#ifndef KWSC_ACTIVATION_SCALAR_H
#define KWSC_ACTIVATION_SCALAR_H

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

#endif /* KWSC_ACTIVATION_SCALAR_H */
