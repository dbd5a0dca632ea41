/* Matrix-vector product, float or int8-per-row weights (reference C99: one row, one accumulator). */
#include "kwsc_runtime.h"

void kwsc_matvec(const kwsc_mat* m, int32_t row0, int32_t nrows, const float* x, const float* bias,
                 float* y, int32_t accumulate) {
    int32_t i, j;
    const int32_t cols = m->cols;
    for (i = 0; i < nrows; ++i) {
        const int32_t row = row0 + i;
        float acc = 0.0f;
        if (m->f) {
            const float* w = m->f + (int64_t)row * cols;
            for (j = 0; j < cols; ++j) acc += w[j] * x[j];
        } else {
            const int8_t* q = m->q + (int64_t)row * cols;
            for (j = 0; j < cols; ++j) acc += (float)q[j] * x[j];
            acc *= m->scale[row];
        }
        if (bias) acc += bias[i];
        y[i] = accumulate ? y[i] + acc : acc;
    }
}
