/* int8 row dot products (reference C99: one row, one int32 accumulator). */
#include "kwsc_runtime.h"

void kwsc_qdot_rows(const int8_t* w, int32_t cols, int32_t nrows, const int8_t* x, int32_t* acc) {
    int32_t i, j;
    for (i = 0; i < nrows; ++i) {
        const int8_t* row = w + (int64_t)i * cols;
        int32_t s = 0;
        for (j = 0; j < cols; ++j) s += (int32_t)row[j] * (int32_t)x[j];
        acc[i] = s;
    }
}

void kwsc_qmat_rows(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, int32_t* acc) {
    kwsc_qmat_rows_plain(m, row0, nrows, x, acc);
}

#if defined(__aarch64__)
int32_t kwsc_qmatvec_fused(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, float x_scale,
                           const float* bias, float* y, int32_t accumulate) {
    (void)m, (void)row0, (void)nrows, (void)x, (void)x_scale, (void)bias, (void)y, (void)accumulate;
    return 0; /* nothing fused: kwsc_qmatvec does every row */
}
#endif

#include "../qdot_plain_steps.h" /* the float steps, plain: forwarders to src/ref/quant.c */
