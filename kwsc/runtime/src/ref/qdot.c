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
