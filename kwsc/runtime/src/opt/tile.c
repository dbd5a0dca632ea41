/* Tiled dot products (NOTE [Tiled recurrent weights], kwsc/backends/c/packing.py), vectorised with GCC vector
 * extensions: AVX2/FMA on x86 (8 floats), NEON on armv7 and aarch64 (4 floats; a piece of KWSC_TILE_COLS = 8
 * columns is two vectors into the same accumulator). A tile's rows get one vector accumulator each (12 at most: with
 * the piece of x and a weight vector, 14 of the 16 AVX2 / armv7 NEON registers), the weights stream in order, and
 * each piece of x is loaded once for all rows. Same signature and tests as ref/tile.c. */
#include <string.h>

#include "kwsc_runtime.h"

/* Vector types only cross static inline functions here; the ABI note about passing them does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#ifndef KWSC_VEC
#define KWSC_VEC 8
#endif
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

/* The sums of four accumulators, reduced together (transpose-and-add). */
static inline void hsum4(tvec a0, tvec a1, tvec a2, tvec a3, float* out) {
#if TV == 8
    const tvec p01 = __builtin_shufflevector(a0, a1, 0, 1, 2, 3, 8, 9, 10, 11) +
                     __builtin_shufflevector(a0, a1, 4, 5, 6, 7, 12, 13, 14, 15);  /* a0 x4, a1 x4 */
    const tvec p23 = __builtin_shufflevector(a2, a3, 0, 1, 2, 3, 8, 9, 10, 11) +
                     __builtin_shufflevector(a2, a3, 4, 5, 6, 7, 12, 13, 14, 15);  /* a2 x4, a3 x4 */
    const tvec q = __builtin_shufflevector(p01, p23, 0, 1, 4, 5, 8, 9, 12, 13) +
                   __builtin_shufflevector(p01, p23, 2, 3, 6, 7, 10, 11, 14, 15);  /* a0 a0 a1 a1 a2 a2 a3 a3 */
    out[0] = q[0] + q[1];
    out[1] = q[2] + q[3];
    out[2] = q[4] + q[5];
    out[3] = q[6] + q[7];
#else
    const tvec p01 = __builtin_shufflevector(a0, a1, 0, 1, 4, 5) + __builtin_shufflevector(a0, a1, 2, 3, 6, 7);
    const tvec p23 = __builtin_shufflevector(a2, a3, 0, 1, 4, 5) + __builtin_shufflevector(a2, a3, 2, 3, 6, 7);
    const tvec s = __builtin_shufflevector(p01, p23, 0, 2, 4, 6) + __builtin_shufflevector(p01, p23, 1, 3, 5, 7);
    out[0] = s[0];
    out[1] = s[1];
    out[2] = s[2];
    out[3] = s[3];
#endif
}

/* One piece of KWSC_TILE_COLS columns: every row's accumulator += its weights * the piece of x. */
static inline __attribute__((always_inline)) void piece(const float* w, const float* x, tvec* a, const int32_t rows) {
    int32_t i, part;
#pragma GCC unroll 2
    for (part = 0; part < PARTS; ++part) {
        const tvec xv = load_v(x + part * TV);
#pragma GCC unroll 12
        for (i = 0; i < rows; ++i) a[i] += load_v(w + i * KWSC_TILE_COLS + part * TV) * xv;
    }
}

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

void kwsc_tile_dot(const float* w, int32_t cols, const float* x, int32_t rows, float* sums) {
    switch (rows) {
    case 12: tile_dot_n(w, cols, x, sums, 12); break;
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
