/* Tiled dot products (NOTE [Tiled recurrent weights], kwsc/backends/c/packing.py), plain C: each column of x is
 * loaded once and multiplied into all of the tile's rows; the accumulators stay in registers (the Cortex-M4's 32
 * single-precision registers hold the 12 sums and x), and the weights are read as one sequential stream. */
#include <math.h>

#include "kwsc_runtime.h"

/* a + w * x: one fused instruction where the FPU has it (Cortex-M4: vfma.f32), a multiply and an add otherwise. */
#if defined(__ARM_FEATURE_FMA) && !defined(__aarch64__)
#define MAC(a, w, x) fmaf((w), (x), (a))
#else
#define MAC(a, w, x) ((a) + (w) * (x))
#endif

static inline __attribute__((always_inline)) void tile_dot_n(const float* w, int32_t cols, const float* x,
                                                             float* sums, const int32_t rows) {
    float a[KWSC_TILE_ROWS];
    int32_t i, c, k, n;
#pragma GCC unroll 12
    for (i = 0; i < rows; ++i) a[i] = 0.0f;
    for (k = 0; k < cols; k += KWSC_TILE_COLS, w += rows * KWSC_TILE_COLS) {
        n = cols - k < KWSC_TILE_COLS ? cols - k : KWSC_TILE_COLS;
        for (c = 0; c < n; ++c) {
            const float xc = x[k + c];
#pragma GCC unroll 12
            for (i = 0; i < rows; ++i) a[i] = MAC(a[i], w[i * KWSC_TILE_COLS + c], xc);
        }
    }
#pragma GCC unroll 12
    for (i = 0; i < rows; ++i) sums[i] = a[i];
}

void kwsc_tile_dot(const float* w, int32_t cols, const float* x, int32_t rows, float* sums) {
    switch (rows) {
    case 12: tile_dot_n(w, cols, x, sums, 12); break;
    case 8: tile_dot_n(w, cols, x, sums, 8); break;
    case 4: tile_dot_n(w, cols, x, sums, 4); break;
    default: {
        int32_t i, c, k, n;
        for (i = 0; i < rows; ++i) sums[i] = 0.0f;
        for (k = 0; k < cols; k += KWSC_TILE_COLS, w += rows * KWSC_TILE_COLS) {
            n = cols - k < KWSC_TILE_COLS ? cols - k : KWSC_TILE_COLS;
            for (c = 0; c < n; ++c) {
                for (i = 0; i < rows; ++i) sums[i] = MAC(sums[i], w[i * KWSC_TILE_COLS + c], x[k + c]);
            }
        }
    }
    }
}
