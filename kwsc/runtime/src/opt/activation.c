/* Activations and the logarithm over vectors, optimised: branch-free Cephes-style expf/logf polynomials on
 * KWSC_VEC-wide GCC vectors, so whole gate vectors go through SIMD instead of one libm call per element.
 * Accurate to a few float ulps (tanh: 1e-7 absolute near 0); same signatures and tests as ref/activation.c. */
#include <math.h>

#include "kwsc_runtime.h"
#include "../activation_scalar.h" /* kwsc_sigmoid, kwsc_activate: shared with src/ref/activation.c */
#include "kwsc_vec.h"

/* Always inlined: at -Os (the Cortex-M4's int8 builds use these gates) GCC would otherwise call each helper. */
#define KWSC_INLINE static inline __attribute__((always_inline))

typedef float vfloat __attribute__((vector_size(KWSC_VEC * 4)));
typedef int32_t vint __attribute__((vector_size(KWSC_VEC * 4)));

KWSC_INLINE vfloat splat(float v) {
    vfloat r;
    int i;
    for (i = 0; i < KWSC_VEC; ++i) r[i] = v;
    return r;
}

KWSC_INLINE vfloat select_f(vint mask, vfloat a, vfloat b) { /* mask ? a : b, lane by lane */
    return (vfloat)(((vint)a & mask) | ((vint)b & ~mask));
}

KWSC_INLINE vfloat load(const float* p) {
    vfloat v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

KWSC_INLINE void store(float* p, vfloat v) { __builtin_memcpy(p, &v, sizeof v); }

/* e^x for x in [-87.3, 88] (clamped): 2^n · p(g), x = n ln2 + g, |g| <= ln2 / 2. */
KWSC_INLINE vfloat vexp(vfloat x) {
    const vfloat lo = splat(-87.3f), hi = splat(88.0f);
    vfloat fx, nf, g, p;
    vint n;
    x = select_f(x < lo, lo, x);
    x = select_f(x > hi, hi, x);
    fx = x * splat(1.44269504088896341f) + splat(0.5f);
    n = __builtin_convertvector(fx, vint);                 /* truncation toward 0 ... */
    n += (vint)(__builtin_convertvector(n, vfloat) > fx);  /* ... corrected to floor */
    nf = __builtin_convertvector(n, vfloat);
    g = x - nf * splat(0.693359375f) + nf * splat(2.12194440e-4f);
    p = splat(1.9875691500e-4f);
    p = p * g + splat(1.3981999507e-3f);
    p = p * g + splat(8.3334519073e-3f);
    p = p * g + splat(4.1665795894e-2f);
    p = p * g + splat(1.6666665459e-1f);
    p = p * g + splat(5.0000001201e-1f);
    p = p * g * g + g + splat(1.0f);
    return p * (vfloat)((n + 127) << 23);
}

KWSC_INLINE vfloat vsigmoid(vfloat x) { return splat(1.0f) / (splat(1.0f) + vexp(-x)); }

KWSC_INLINE vfloat vtanh(vfloat x) { return splat(2.0f) / (splat(1.0f) + vexp(splat(-2.0f) * x)) - splat(1.0f); }

void kwsc_activate_vec(int32_t act, float* x, int32_t n) {
    int32_t i = 0;
    if (act == KWSC_ACT_TANH) {
        for (; i + KWSC_VEC <= n; i += KWSC_VEC) store(x + i, vtanh(load(x + i)));
    } else if (act == KWSC_ACT_SIGMOID) {
        for (; i + KWSC_VEC <= n; i += KWSC_VEC) store(x + i, vsigmoid(load(x + i)));
    } else if (act == KWSC_ACT_NONE) {
        return;
    }
    for (; i < n; ++i) x[i] = kwsc_activate(act, x[i]);
}

/* ln x for positive normal x: x = m 2^e, m in [sqrt(1/2), sqrt 2), ln x = e ln2 + log1p(m - 1) by polynomial. */
KWSC_INLINE vfloat vlog(vfloat x) {
    vint bits = (vint)x;
    vint e = ((bits >> 23) & 0xff) - 126;
    vfloat m = (vfloat)((bits & 0x007fffff) | 0x3f000000); /* [0.5, 1) */
    vint small = m < splat(0.707106781186547524f);
    vfloat z, y, ef;
    e += small;                                  /* small lanes: e - 1 (mask is -1) */
    m = select_f(small, m + m, m) - splat(1.0f);
    z = m * m;
    y = splat(7.0376836292e-2f);
    y = y * m + splat(-1.1514610310e-1f);
    y = y * m + splat(1.1676998740e-1f);
    y = y * m + splat(-1.2420140846e-1f);
    y = y * m + splat(1.4249322787e-1f);
    y = y * m + splat(-1.6668057665e-1f);
    y = y * m + splat(2.0000714765e-1f);
    y = y * m + splat(-2.4999993993e-1f);
    y = y * m + splat(3.3333331174e-1f);
    y = y * m * z;
    ef = __builtin_convertvector(e, vfloat);
    y += ef * splat(-2.12194440e-4f);
    y += splat(-0.5f) * z;
    return m + y + ef * splat(0.693359375f);
}

void kwsc_log_vec(const float* x, float* y, int32_t n) {
    int32_t i = 0, k;
    for (; i + KWSC_VEC <= n; i += KWSC_VEC) {
        const vfloat xv = load(x + i);
        /* zero, negative, subnormal, inf and NaN lanes get libm's answer (-inf, NaN, ...) */
        const vint odd = (xv < splat(1.17549435e-38f)) | (xv > splat(3.40282347e+38f)) | (xv != xv);
        vfloat r = vlog(xv);
        for (k = 0; k < KWSC_VEC; ++k) {
            if (odd[k]) r[k] = logf(xv[k]);
        }
        store(y + i, r);
    }
    for (; i < n; ++i) y[i] = logf(x[i]);
}
