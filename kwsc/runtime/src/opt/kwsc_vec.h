/*
 * kwsc runtime, internal to the optimised kernels (src/opt): what several of them share. GCC vector extensions, so
 * the same source becomes AVX on x86 and NEON on ARM; KWSC_VEC (floats per vector) comes from the target's flags.
 */
#ifndef KWSC_VEC_H
#define KWSC_VEC_H

/* Vector types only cross static inline functions in these kernels; the ABI note about passing them does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#ifndef KWSC_VEC
#define KWSC_VEC 8
#endif

typedef float kwsc_v4f __attribute__((vector_size(16)));
typedef float kwsc_v8f __attribute__((vector_size(32)));
typedef float kwsc_v16f __attribute__((vector_size(64)));

/* KWSC_HSUM4(W)(a0, a1, a2, a3, out): out[i] = the sum of the W lanes of accumulator ai. The four are reduced
 * together in registers (transpose-and-add), not one horizontal sum at a time. W is 4, 8 or 16. */
#define KWSC_HSUM4(w) KWSC_HSUM4_(w)
#define KWSC_HSUM4_(w) kwsc_hsum4_##w

static inline void kwsc_hsum4_4(kwsc_v4f a0, kwsc_v4f a1, kwsc_v4f a2, kwsc_v4f a3, float* out) {
    const kwsc_v4f p01 = __builtin_shufflevector(a0, a1, 0, 1, 4, 5) + __builtin_shufflevector(a0, a1, 2, 3, 6, 7);
    const kwsc_v4f p23 = __builtin_shufflevector(a2, a3, 0, 1, 4, 5) + __builtin_shufflevector(a2, a3, 2, 3, 6, 7);
    const kwsc_v4f s = __builtin_shufflevector(p01, p23, 0, 2, 4, 6) + __builtin_shufflevector(p01, p23, 1, 3, 5, 7);
    out[0] = s[0];
    out[1] = s[1];
    out[2] = s[2];
    out[3] = s[3];
}

static inline void kwsc_hsum4_8(kwsc_v8f a0, kwsc_v8f a1, kwsc_v8f a2, kwsc_v8f a3, float* out) {
    const kwsc_v8f p01 = __builtin_shufflevector(a0, a1, 0, 1, 2, 3, 8, 9, 10, 11) +
                         __builtin_shufflevector(a0, a1, 4, 5, 6, 7, 12, 13, 14, 15);  /* a0 x4, a1 x4 */
    const kwsc_v8f p23 = __builtin_shufflevector(a2, a3, 0, 1, 2, 3, 8, 9, 10, 11) +
                         __builtin_shufflevector(a2, a3, 4, 5, 6, 7, 12, 13, 14, 15);  /* a2 x4, a3 x4 */
    const kwsc_v8f q = __builtin_shufflevector(p01, p23, 0, 1, 4, 5, 8, 9, 12, 13) +
                       __builtin_shufflevector(p01, p23, 2, 3, 6, 7, 10, 11, 14, 15);  /* a0 a0 a1 a1 a2 a2 a3 a3 */
    out[0] = q[0] + q[1];
    out[1] = q[2] + q[3];
    out[2] = q[4] + q[5];
    out[3] = q[6] + q[7];
}

static inline void kwsc_hsum4_16(kwsc_v16f a0, kwsc_v16f a1, kwsc_v16f a2, kwsc_v16f a3, float* out) {
    const kwsc_v16f p01 =
        __builtin_shufflevector(a0, a1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
        __builtin_shufflevector(a0, a1, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    const kwsc_v16f p23 =
        __builtin_shufflevector(a2, a3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
        __builtin_shufflevector(a2, a3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    /* lanes: [a0 x4][a2 x4][a1 x4][a3 x4] */
    const kwsc_v16f q = __builtin_shufflevector(p01, p23, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27) +
                        __builtin_shufflevector(p01, p23, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    const kwsc_v16f r = q + __builtin_shufflevector(q, q, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    out[0] = r[0] + r[1];
    out[1] = r[8] + r[9];
    out[2] = r[4] + r[5];
    out[3] = r[12] + r[13];
}

#endif /* KWSC_VEC_H */
