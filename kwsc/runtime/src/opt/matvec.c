/* Matrix-vector product, optimised: eight rows at a time, KWSC_VEC-wide vector accumulators (GCC vector
 * extensions, so the same source becomes AVX on x86 and NEON on ARM). Same signature and tests as ref/. */
#include "kwsc_runtime.h"
#include "kwsc_vec.h"

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

/* The four row sums of four accumulators, reduced together in registers. */
#if KWSC_VEC == 4 || KWSC_VEC == 8 || KWSC_VEC == 16
#define hsum4 KWSC_HSUM4(KWSC_VEC)
#else
static inline void hsum4(vfloat a0, vfloat a1, vfloat a2, vfloat a3, float* out) {
    out[0] = hsum(a0);
    out[1] = hsum(a1);
    out[2] = hsum(a2);
    out[3] = hsum(a3);
}
#endif

/* Eight dot products of consecutive rows of w (row length cols) with x: eight independent FMA chains keep the
 * pipes busy (four leave them half idle while each chain waits on its own latency). */
static inline __attribute__((always_inline)) void dot8(const float* w, int32_t cols, const float* x, float* out) {
    vfloat a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
    int32_t j = 0, r;
    for (; j + KWSC_VEC <= cols; j += KWSC_VEC) {
        const vfloat xv = load_f(x + j);
        a0 += load_f(w + j) * xv;
        a1 += load_f(w + cols + j) * xv;
        a2 += load_f(w + 2 * cols + j) * xv;
        a3 += load_f(w + 3 * cols + j) * xv;
        a4 += load_f(w + 4 * cols + j) * xv;
        a5 += load_f(w + 5 * cols + j) * xv;
        a6 += load_f(w + 6 * cols + j) * xv;
        a7 += load_f(w + 7 * cols + j) * xv;
    }
    hsum4(a0, a1, a2, a3, out);
    hsum4(a4, a5, a6, a7, out + 4);
    for (; j < cols; ++j) {
        for (r = 0; r < 8; ++r) out[r] += w[r * cols + j] * x[j];
    }
}

static inline __attribute__((always_inline)) void dot4(const float* w, int32_t cols, const float* x, float* out) {
    vfloat a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    int32_t j = 0, r;
    for (; j + KWSC_VEC <= cols; j += KWSC_VEC) {
        const vfloat xv = load_f(x + j);
        a0 += load_f(w + j) * xv;
        a1 += load_f(w + cols + j) * xv;
        a2 += load_f(w + 2 * cols + j) * xv;
        a3 += load_f(w + 3 * cols + j) * xv;
    }
    hsum4(a0, a1, a2, a3, out);
    for (; j < cols; ++j) {
        for (r = 0; r < 4; ++r) out[r] += w[r * cols + j] * x[j];
    }
}

static inline __attribute__((always_inline)) float dot1(const float* w, int32_t cols, const float* x) {
    vfloat a = {0};
    float s;
    int32_t j = 0;
    for (; j + KWSC_VEC <= cols; j += KWSC_VEC) a += load_f(w + j) * load_f(x + j);
    s = hsum(a);
    for (; j < cols; ++j) s += w[j] * x[j];
    return s;
}

/* y[k] (+)= acc[k]·scale[k] + bias[k] for k < count; inlined with a constant count so it unrolls. */
static inline __attribute__((always_inline)) void finish(const float* acc, int32_t count, const float* scale,
                                                         const float* bias, float* y, int32_t accumulate) {
    int32_t k;
    for (k = 0; k < count; ++k) {
        float v = scale ? acc[k] * scale[k] : acc[k];
        if (bias) v += bias[k];
        y[k] = accumulate ? y[k] + v : v;
    }
}

/* Rows [0, nrows) of a matrix stored as floats in w (per-row scales when quantized) dotted with x. */
static void matvec_rows(const float* w, const float* scale, int32_t cols, int32_t nrows, const float* x,
                        const float* bias, float* y, int32_t accumulate) {
    float acc[8];
    int32_t i = 0;
    for (; i + 8 <= nrows; i += 8) {
        dot8(w + (int64_t)i * cols, cols, x, acc);
        finish(acc, 8, scale ? scale + i : 0, bias ? bias + i : 0, y + i, accumulate);
    }
    for (; i + 4 <= nrows; i += 4) {
        dot4(w + (int64_t)i * cols, cols, x, acc);
        finish(acc, 4, scale ? scale + i : 0, bias ? bias + i : 0, y + i, accumulate);
    }
    for (; i < nrows; ++i) {
        acc[0] = dot1(w + (int64_t)i * cols, cols, x);
        finish(acc, 1, scale ? scale + i : 0, bias ? bias + i : 0, y + i, accumulate);
    }
}

void kwsc_matvec(const kwsc_mat* m, int32_t row0, int32_t nrows, const float* x, const float* bias,
                 float* y, int32_t accumulate) {
    const int32_t cols = m->cols;
    int32_t i, k, count;
    if (m->f) {
        matvec_rows(m->f + (int64_t)row0 * cols, 0, cols, nrows, x, bias, y, accumulate);
        return;
    }
    /* int8: widen 8 rows at a time (contiguous, so one loop the compiler vectorises), then the float path. */
    for (i = 0; i < nrows; i += 8) {
        float wide[8 * cols]; /* C99 VLA: opt kernels run on Linux targets with a real stack */
        const int8_t* q = m->q + (int64_t)(row0 + i) * cols;
        count = nrows - i < 8 ? nrows - i : 8;
        for (k = 0; k < count * cols; ++k) wide[k] = (float)q[k];
        matvec_rows(wide, m->scale + row0 + i, cols, count, x, bias ? bias + i : 0, y + i, accumulate);
    }
}
