/*
 * kwsc runtime, internal: kwsc_qpeak, kwsc_qround, kwsc_qdequant, kwsc_qmuladd and kwsc_qblend the plain way, each
 * forwarding to its *_ref twin in src/ref/quant.c (compiled with the reference flags, so they round like numpy).
 * Included by src/ref/qdot.c and by src/opt/qdot.c on targets without SIMD float steps; a program links exactly one
 * qdot.c (an opt file replaces its ref twin whole), so these plain definitions are never linked twice.
 */
#ifndef KWSC_QDOT_PLAIN_STEPS_H
#define KWSC_QDOT_PLAIN_STEPS_H

#include "kwsc_runtime.h"

float kwsc_qpeak(const float* x, int32_t n, const float* col) { return kwsc_qpeak_ref(x, n, col); }

void kwsc_qround(const float* x, int32_t n, const float* col, float inv, int8_t* q) {
    kwsc_qround_ref(x, n, col, inv, q);
}

void kwsc_qdequant(const int32_t* acc, int32_t n, const float* scale, float x_scale, const float* bias, float* y,
                   int32_t accumulate) {
    kwsc_qdequant_ref(acc, n, scale, x_scale, bias, y, accumulate);
}

void kwsc_qmuladd(float* a, const float* b, const float* c, int32_t n) { kwsc_qmuladd_ref(a, b, c, n); }

void kwsc_qblend(const float* z, const float* cand, float* h, float* out, int32_t n) {
    kwsc_qblend_ref(z, cand, h, out, n);
}

#endif
