/* Real FFT magnitudes (reference C99): an n/2-point complex radix-2 FFT of the packed real signal, untangled. */
#include <math.h>

#include "kwsc_runtime.h"

/* In-place iterative radix-2 complex FFT of m points (interleaved re, im), input in bit-reversed order.
 * Twiddles of the half-size transform are every second entry of the real transform's table. */
static void complex_fft_inplace(float* z, int32_t m, const float* tw) {
    int32_t len, start, k;
    for (len = 2; len <= m; len <<= 1) {
        const int32_t half = len >> 1;
        const int32_t stride = 2 * (m / len); /* index step into the nfft-point table */
        for (start = 0; start < m; start += len) {
            for (k = 0; k < half; ++k) {
                const float wr = tw[2 * (k * stride)];
                const float wi = tw[2 * (k * stride) + 1];
                float* a = z + 2 * (start + k);
                float* b = z + 2 * (start + k + half);
                const float tr = b[0] * wr - b[1] * wi;
                const float ti = b[0] * wi + b[1] * wr;
                b[0] = a[0] - tr;
                b[1] = a[1] - ti;
                a[0] += tr;
                a[1] += ti;
            }
        }
    }
}

void kwsc_rfft_mag(const kwsc_fft_plan* plan, const float* in, int32_t n_in, float* work, float* out) {
    const int32_t nfft = plan->nfft;
    const int32_t m = nfft / 2;
    const float* tw = plan->twiddles;
    int32_t i, k;
    /* Pack the real signal as m complex points z[j] = x[2j] + i x[2j+1], zero-padded, in bit-reversed order. */
    if (work != in) {
        for (i = 0; i < nfft; ++i) work[i] = i < n_in ? in[i] : 0.0f;
    } else {
        for (i = n_in; i < nfft; ++i) work[i] = 0.0f;
    }
    for (i = 0; i < m; ++i) {
        const int32_t r = plan->bitrev[i];
        if (r > i) {
            float t0 = work[2 * i], t1 = work[2 * i + 1];
            work[2 * i] = work[2 * r];
            work[2 * i + 1] = work[2 * r + 1];
            work[2 * r] = t0;
            work[2 * r + 1] = t1;
        }
    }
    complex_fft_inplace(work, m, tw);
    /* Untangle: X[k] = E[k] + W^k O[k], E = (Z[k] + conj Z[m-k]) / 2, O = (Z[k] - conj Z[m-k]) / 2i. */
    out[0] = fabsf(work[0] + work[1]);
    out[m] = fabsf(work[0] - work[1]);
    for (k = 1; k < m; ++k) {
        const float zr = work[2 * k], zi = work[2 * k + 1];
        const float cr = work[2 * (m - k)], ci = -work[2 * (m - k) + 1];
        const float er = 0.5f * (zr + cr), ei = 0.5f * (zi + ci);
        const float dr = 0.5f * (zr - cr), di = 0.5f * (zi - ci);
        /* O = D / i = (di, -dr) */
        const float or_ = di, oi = -dr;
        const float wr = tw[2 * k], wi = tw[2 * k + 1];
        const float xr = er + (or_ * wr - oi * wi);
        const float xi = ei + (or_ * wi + oi * wr);
        out[k] = sqrtf(xr * xr + xi * xi);
    }
}
