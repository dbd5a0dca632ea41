/* Matrix-vector product, optimised: four rows at a time, KWSC_VEC-wide vector accumulators (GCC vector
 * extensions, so the same source becomes AVX on x86 and NEON on ARM). Same signature and tests as ref/. */
#include "kwsc_runtime.h"

/* Vector types only cross static inline functions here; the ABI note about passing them does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#ifndef KWSC_VEC
#define KWSC_VEC 8
#endif

typedef float vfloat __attribute__((vector_size(KWSC_VEC * 4)));

static inline vfloat load_f(const float* p) {
    vfloat v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

/* Horizontal sum by halving (depth log2(KWSC_VEC), not a KWSC_VEC-long chain of dependent adds). */
static inline float hsum(vfloat v) {
    float t[KWSC_VEC];
    int w, i;
    __builtin_memcpy(t, &v, sizeof v);
    for (w = KWSC_VEC / 2; w >= 1; w /= 2) {
        for (i = 0; i < w; ++i) t[i] += t[i + w];
    }
    return t[0];
}

/* The four row sums of four accumulators, reduced together in registers (transpose-and-add). */
static inline void hsum4(vfloat a0, vfloat a1, vfloat a2, vfloat a3, float* out) {
#if KWSC_VEC == 16
    const vfloat p01 = __builtin_shufflevector(a0, a1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
                       __builtin_shufflevector(a0, a1, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    const vfloat p23 = __builtin_shufflevector(a2, a3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
                       __builtin_shufflevector(a2, a3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    /* lanes: [a0 x4][a2 x4][a1 x4][a3 x4] */
    const vfloat q = __builtin_shufflevector(p01, p23, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27) +
                     __builtin_shufflevector(p01, p23, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    const vfloat r = q + __builtin_shufflevector(q, q, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    out[0] = r[0] + r[1];
    out[1] = r[8] + r[9];
    out[2] = r[4] + r[5];
    out[3] = r[12] + r[13];
#elif KWSC_VEC == 4
    const vfloat p01 = __builtin_shufflevector(a0, a1, 0, 1, 4, 5) + __builtin_shufflevector(a0, a1, 2, 3, 6, 7);
    const vfloat p23 = __builtin_shufflevector(a2, a3, 0, 1, 4, 5) + __builtin_shufflevector(a2, a3, 2, 3, 6, 7);
    const vfloat s = __builtin_shufflevector(p01, p23, 0, 2, 4, 6) + __builtin_shufflevector(p01, p23, 1, 3, 5, 7);
    out[0] = s[0];
    out[1] = s[1];
    out[2] = s[2];
    out[3] = s[3];
#else
    out[0] = hsum(a0);
    out[1] = hsum(a1);
    out[2] = hsum(a2);
    out[3] = hsum(a3);
#endif
}

/* Four dot products of consecutive rows of w (row length cols) with x. */
static void dot4_float(const float* w, int32_t cols, const float* x, float* out) {
    const float* w0 = w;
    const float* w1 = w + cols;
    const float* w2 = w + 2 * cols;
    const float* w3 = w + 3 * cols;
    vfloat a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    int32_t j = 0;
    for (; j + KWSC_VEC <= cols; j += KWSC_VEC) {
        const vfloat xv = load_f(x + j);
        a0 += load_f(w0 + j) * xv;
        a1 += load_f(w1 + j) * xv;
        a2 += load_f(w2 + j) * xv;
        a3 += load_f(w3 + j) * xv;
    }
    hsum4(a0, a1, a2, a3, out);
    for (; j < cols; ++j) {
        out[0] += w0[j] * x[j];
        out[1] += w1[j] * x[j];
        out[2] += w2[j] * x[j];
        out[3] += w3[j] * x[j];
    }
}

static float dot1_float(const float* w, int32_t cols, const float* x) {
    vfloat a = {0};
    float s;
    int32_t j = 0;
    for (; j + KWSC_VEC <= cols; j += KWSC_VEC) a += load_f(w + j) * load_f(x + j);
    s = hsum(a);
    for (; j < cols; ++j) s += w[j] * x[j];
    return s;
}

void kwsc_matvec(const kwsc_mat* m, int32_t row0, int32_t nrows, const float* x, const float* bias,
                 float* y, int32_t accumulate) {
    const int32_t cols = m->cols;
    float acc[4];
    float wide[m->q ? 4 * cols : 1]; /* C99 VLA: int8 rows widened to float (opt kernels run on Linux targets) */
    int32_t i = 0, k;
    for (; i + 4 <= nrows; i += 4) {
        const int32_t row = row0 + i;
        if (m->f) {
            dot4_float(m->f + (int64_t)row * cols, cols, x, acc);
        } else {
            /* Four consecutive int8 rows are contiguous: widen them in one vectorisable loop, then dot as float. */
            const int8_t* q = m->q + (int64_t)row * cols;
            for (k = 0; k < 4 * cols; ++k) wide[k] = (float)q[k];
            dot4_float(wide, cols, x, acc);
            for (k = 0; k < 4; ++k) acc[k] *= m->scale[row + k];
        }
        for (k = 0; k < 4; ++k) {
            float v = bias ? acc[k] + bias[i + k] : acc[k];
            y[i + k] = accumulate ? y[i + k] + v : v;
        }
    }
    for (; i < nrows; ++i) {
        const int32_t row = row0 + i;
        float v;
        if (m->f) {
            v = dot1_float(m->f + (int64_t)row * cols, cols, x);
        } else {
            const int8_t* q = m->q + (int64_t)row * cols;
            for (k = 0; k < cols; ++k) wide[k] = (float)q[k];
            v = dot1_float(wide, cols, x) * m->scale[row];
        }
        if (bias) v += bias[i];
        y[i] = accumulate ? y[i] + v : v;
    }
}
