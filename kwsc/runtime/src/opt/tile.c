/* Tiled dot products (NOTE [Tiled recurrent weights], kwsc/backends/c/packing.py), vectorised with GCC vector
 * extensions: AVX2/FMA on x86 (8 floats), NEON on armv7 and aarch64 (4 floats; a piece of KWSC_TILE_COLS = 8
 * columns is two vectors into the same accumulator). A tile's rows get one vector accumulator each (12 at most: with
 * the piece of x and a weight vector, 14 of the 16 AVX2 / armv7 NEON registers), the weights stream in order, and
 * each piece of x is loaded once for all rows. Same signature and tests as ref/tile.c. */
#include <string.h>

#include "kwsc_runtime.h"
#include "kwsc_vec.h"

#if KWSC_VEC >= 8
#define TV 8
#else
#define TV 4
#endif
#define PARTS (KWSC_TILE_COLS / TV)

typedef float tvec __attribute__((vector_size(TV * 4)));

static inline tvec load_v(const float* p) {
    tvec v;
    memcpy(&v, p, sizeof v);
    return v;
}

#define hsum4 KWSC_HSUM4(TV) /* the sums of four accumulators, reduced together */

/* One piece of KWSC_TILE_COLS columns: every row's accumulator += its weights * the piece of x. */
#if defined(__ARM_NEON) && TV == 4
/* NEON intrinsics: each product stays one vfma/fmla (with armv7's -funsafe-math-optimizations GCC reassociated the
 * vector-extension form into vmul + vfma + vadd and spilled). */
#include <arm_neon.h>
#if defined(__ARM_FEATURE_FMA)
#define NEON_MAC(a, w, x) vfmaq_f32((a), (w), (x))
#else
#define NEON_MAC(a, w, x) vmlaq_f32((a), (w), (x))
#endif
static inline __attribute__((always_inline)) void piece(const float* w, const float* x, tvec* a, const int32_t rows) {
    const float32x4_t x0 = vld1q_f32(x), x1 = vld1q_f32(x + 4);
    int32_t i;
#pragma GCC unroll 12
    for (i = 0; i < rows; ++i) {
        float32x4_t acc = (float32x4_t)a[i];
        acc = NEON_MAC(acc, vld1q_f32(w + i * KWSC_TILE_COLS), x0);
        acc = NEON_MAC(acc, vld1q_f32(w + i * KWSC_TILE_COLS + 4), x1);
        a[i] = (tvec)acc;
    }
}
#else
static inline __attribute__((always_inline)) void piece(const float* w, const float* x, tvec* a, const int32_t rows) {
    int32_t i, part;
#pragma GCC unroll 2
    for (part = 0; part < PARTS; ++part) {
        const tvec xv = load_v(x + part * TV);
#pragma GCC unroll 12
        for (i = 0; i < rows; ++i) a[i] += load_v(w + i * KWSC_TILE_COLS + part * TV) * xv;
    }
}
#endif

static inline __attribute__((always_inline)) void tile_dot_n(const float* w, int32_t cols, const float* x,
                                                             float* sums, const int32_t rows) {
    tvec a[KWSC_TILE_ROWS];
    int32_t i, k = 0;
#pragma GCC unroll 12
    for (i = 0; i < rows; ++i) a[i] = (tvec){0};
    for (; k + KWSC_TILE_COLS <= cols; k += KWSC_TILE_COLS, w += rows * KWSC_TILE_COLS) piece(w, x + k, a, rows);
    if (k < cols) {  /* the last, partial piece: x's tail beside zeros (the padded weights are zero too) */
        float tail[KWSC_TILE_COLS] = {0};
        memcpy(tail, x + k, (size_t)(cols - k) * sizeof(float));
        piece(w, tail, a, rows);
    }
#pragma GCC unroll 3
    for (i = 0; i < rows; i += 4) hsum4(a[i], a[i + 1], a[i + 2], a[i + 3], sums + i);
}

#if (defined(__arm__) && defined(__ARM_NEON) && defined(__ARM_FEATURE_FMA)) || defined(__aarch64__)
/* ARM, 12 rows: GCC's schedule of the piece above spends one address register per row (armv7's vld1 has no offset
 * form) and spills on armv7; on aarch64 it mixes single and paired loads. Written out, a piece is one load of x,
 * then per row one load of its 8 weights in stream order (post-incremented) and two fused multiply-adds into its
 * accumulator: 39 instructions for 96 products. acc: 12 x 4 floats, in and out; n >= 1 pieces. */
static void pieces12(const float* w, const float* x, int32_t n, float* acc) {
    float* a = acc;
#if defined(__aarch64__)
    /* x in v0-v1, weights in v2-v7 (three rows in flight), accumulators v16-v27 (not callee-saved) */
    __asm__ volatile(
        "ld1 {v16.4s-v19.4s}, [%[a]], #64\n\tld1 {v20.4s-v23.4s}, [%[a]], #64\n\tld1 {v24.4s-v27.4s}, [%[a]]\n\t"
        "1:\n\t"
        "ldp q0, q1, [%[x]], #32\n\t"
        "ldp q2, q3, [%[w]], #32\n\tfmla v16.4s, v2.4s, v0.4s\n\tfmla v16.4s, v3.4s, v1.4s\n\t"
        "ldp q4, q5, [%[w]], #32\n\tfmla v17.4s, v4.4s, v0.4s\n\tfmla v17.4s, v5.4s, v1.4s\n\t"
        "ldp q6, q7, [%[w]], #32\n\tfmla v18.4s, v6.4s, v0.4s\n\tfmla v18.4s, v7.4s, v1.4s\n\t"
        "ldp q2, q3, [%[w]], #32\n\tfmla v19.4s, v2.4s, v0.4s\n\tfmla v19.4s, v3.4s, v1.4s\n\t"
        "ldp q4, q5, [%[w]], #32\n\tfmla v20.4s, v4.4s, v0.4s\n\tfmla v20.4s, v5.4s, v1.4s\n\t"
        "ldp q6, q7, [%[w]], #32\n\tfmla v21.4s, v6.4s, v0.4s\n\tfmla v21.4s, v7.4s, v1.4s\n\t"
        "ldp q2, q3, [%[w]], #32\n\tfmla v22.4s, v2.4s, v0.4s\n\tfmla v22.4s, v3.4s, v1.4s\n\t"
        "ldp q4, q5, [%[w]], #32\n\tfmla v23.4s, v4.4s, v0.4s\n\tfmla v23.4s, v5.4s, v1.4s\n\t"
        "ldp q6, q7, [%[w]], #32\n\tfmla v24.4s, v6.4s, v0.4s\n\tfmla v24.4s, v7.4s, v1.4s\n\t"
        "ldp q2, q3, [%[w]], #32\n\tfmla v25.4s, v2.4s, v0.4s\n\tfmla v25.4s, v3.4s, v1.4s\n\t"
        "ldp q4, q5, [%[w]], #32\n\tfmla v26.4s, v4.4s, v0.4s\n\tfmla v26.4s, v5.4s, v1.4s\n\t"
        "ldp q6, q7, [%[w]], #32\n\tfmla v27.4s, v6.4s, v0.4s\n\tfmla v27.4s, v7.4s, v1.4s\n\t"
        "subs %w[n], %w[n], #1\n\t"
        "b.ne 1b\n\t"
        "st1 {v16.4s-v19.4s}, [%[acc]], #64\n\tst1 {v20.4s-v23.4s}, [%[acc]], #64\n\tst1 {v24.4s-v27.4s}, [%[acc]]\n\t"
        : [w] "+r"(w), [x] "+r"(x), [n] "+r"(n), [a] "+r"(a), [acc] "+r"(acc)
        :
        : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v18", "v19", "v20", "v21",
          "v22", "v23", "v24", "v25", "v26", "v27");
#else
    /* armv7: x in q0-q1, a row's weights in q2-q3, accumulators q4-q15 */
#define ROW(q) "vld1.32 {d4-d7}, [%[w]]!\n\tvfma.f32 " q ", q2, q0\n\tvfma.f32 " q ", q3, q1\n\t"
    __asm__ volatile(
        "vld1.32 {d8-d11}, [%[a]]!\n\tvld1.32 {d12-d15}, [%[a]]!\n\tvld1.32 {d16-d19}, [%[a]]!\n\t"
        "vld1.32 {d20-d23}, [%[a]]!\n\tvld1.32 {d24-d27}, [%[a]]!\n\tvld1.32 {d28-d31}, [%[a]]\n\t"
        "1:\n\t"
        "vld1.32 {d0-d3}, [%[x]]!\n\t"
        ROW("q4") ROW("q5") ROW("q6") ROW("q7") ROW("q8") ROW("q9")
        ROW("q10") ROW("q11") ROW("q12") ROW("q13") ROW("q14") ROW("q15")
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "vst1.32 {d8-d11}, [%[acc]]!\n\tvst1.32 {d12-d15}, [%[acc]]!\n\tvst1.32 {d16-d19}, [%[acc]]!\n\t"
        "vst1.32 {d20-d23}, [%[acc]]!\n\tvst1.32 {d24-d27}, [%[acc]]!\n\tvst1.32 {d28-d31}, [%[acc]]\n\t"
        : [w] "+r"(w), [x] "+r"(x), [n] "+r"(n), [a] "+r"(a), [acc] "+r"(acc)
        :
        : "cc", "memory", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "d11", "d12", "d13",
          "d14", "d15", "d16", "d17", "d18", "d19", "d20", "d21", "d22", "d23", "d24", "d25", "d26", "d27", "d28",
          "d29", "d30", "d31");
#undef ROW
#endif
}

static void tile_dot12_asm(const float* w, int32_t cols, const float* x, float* sums) {
    float acc[KWSC_TILE_ROWS * 4] __attribute__((aligned(16))) = {0};
    const int32_t full = cols / KWSC_TILE_COLS;
    int32_t i;
    if (full > 0) pieces12(w, x, full, acc);
    if (full * KWSC_TILE_COLS < cols) {  /* the last, partial piece: x's tail beside zeros */
        float tail[KWSC_TILE_COLS] __attribute__((aligned(16))) = {0};
        memcpy(tail, x + full * KWSC_TILE_COLS, (size_t)(cols - full * KWSC_TILE_COLS) * sizeof(float));
        pieces12(w + full * KWSC_TILE_ROWS * KWSC_TILE_COLS, tail, 1, acc);
    }
    for (i = 0; i < KWSC_TILE_ROWS; ++i) sums[i] = (acc[4 * i] + acc[4 * i + 1]) + (acc[4 * i + 2] + acc[4 * i + 3]);
}
#define TILE_DOT12(w, cols, x, sums) tile_dot12_asm(w, cols, x, sums)
#else
#define TILE_DOT12(w, cols, x, sums) tile_dot_n(w, cols, x, sums, 12)
#endif

void kwsc_tile_dot(const float* w, int32_t cols, const float* x, int32_t rows, float* sums) {
    switch (rows) {
    case 12: TILE_DOT12(w, cols, x, sums); break;
    case 8: tile_dot_n(w, cols, x, sums, 8); break;
    case 4: tile_dot_n(w, cols, x, sums, 4); break;
    default: {  /* any other count (not used by the cells): row by row */
        int32_t i, c, k;
        for (i = 0; i < rows; ++i) sums[i] = 0.0f;
        for (k = 0; k < cols; k += KWSC_TILE_COLS, w += rows * KWSC_TILE_COLS) {
            for (i = 0; i < rows; ++i) {
                for (c = 0; c < KWSC_TILE_COLS && k + c < cols; ++c) sums[i] += w[i * KWSC_TILE_COLS + c] * x[k + c];
            }
        }
    }
    }
}
