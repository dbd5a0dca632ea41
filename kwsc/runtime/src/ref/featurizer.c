/* Featurizer kernels: sliding buffer, sparse filter banks, IIR (ell-behaviour.md §1); the FFT is in fft.c. */
#include "kwsc_runtime.h"

void kwsc_buffer(float* window, int32_t size, const float* x, int32_t n) {
    int32_t i;
    for (i = 0; i + n < size; ++i) window[i] = window[i + n];
    for (i = 0; i < n; ++i) window[size - n + i] = x[i];
}

void kwsc_filterbank(const int16_t* start, const int16_t* length, const float* weights, int32_t nfilters,
                     const float* x, float* y) {
    int32_t f, j, off = 0;
    for (f = 0; f < nfilters; ++f) {
        const float* xs = x + start[f];
        float acc = 0.0f;
        for (j = 0; j < length[f]; ++j) acc += weights[off + j] * xs[j];
        off += length[f];
        y[f] = acc;
    }
}

void kwsc_iir(const double* b, int32_t nb, const double* a, int32_t na, float* x_hist, float* y_hist,
              const float* x, float* y, int32_t n) {
    /* Computed in double like the reference; histories are stored as float between ticks. */
    double xh[KWSC_IIR_MAX], yh[KWSC_IIR_MAX];
    int32_t i, k;
    const int32_t nxh = nb > 0 ? nb - 1 : 0;
    for (k = 0; k < nxh; ++k) xh[k] = x_hist[k];
    for (k = 0; k < na; ++k) yh[k] = y_hist[k];
    for (i = 0; i < n; ++i) {
        double xn = x[i];
        double acc = b[0] * xn;
        for (k = 1; k < nb; ++k) acc += b[k] * xh[nxh - k];
        for (k = 1; k <= na; ++k) acc -= a[k - 1] * yh[na - k];
        y[i] = (float)acc;
        for (k = 0; k + 1 < nxh; ++k) xh[k] = xh[k + 1];
        if (nxh > 0) xh[nxh - 1] = xn;
        for (k = 0; k + 1 < na; ++k) yh[k] = yh[k + 1];
        if (na > 0) yh[na - 1] = acc;
    }
    for (k = 0; k < nxh; ++k) x_hist[k] = (float)xh[k];
    for (k = 0; k < na; ++k) y_hist[k] = (float)yh[k];
}
