/* Real FFT magnitudes, optimised: the same n/2-point complex radix-2 FFT as ref/fft.c, but on split real and
 * imaginary arrays with each stage's twiddles gathered into contiguous arrays, so every butterfly loop is a plain
 * unit-stride loop the compiler vectorises; the first two stages need no multiplications. Same signature and tests.
 * Uses C99 variable-length arrays (2·nfft floats of stack): meant for targets with a real stack (not Cortex-M). */
#include <math.h>

#include "kwsc_runtime.h"

static void butterflies(float* restrict lo_re, float* restrict lo_im, float* restrict hi_re, float* restrict hi_im,
                        const float* restrict wr, const float* restrict wi, int32_t half) {
    int32_t k;
    for (k = 0; k < half; ++k) {
        const float tr = hi_re[k] * wr[k] - hi_im[k] * wi[k];
        const float ti = hi_re[k] * wi[k] + hi_im[k] * wr[k];
        hi_re[k] = lo_re[k] - tr;
        hi_im[k] = lo_im[k] - ti;
        lo_re[k] += tr;
        lo_im[k] += ti;
    }
}

void kwsc_rfft_mag(const kwsc_fft_plan* plan, const float* in, int32_t n_in, float* work, float* out) {
    const int32_t nfft = plan->nfft;
    const int32_t m = nfft / 2;
    const float* tw = plan->twiddles;
    const float* src = in;
    float re[m], im[m], wr[m / 2 + 1], wi[m / 2 + 1];
    int32_t i, k, len, start;
    if (n_in < nfft) { /* zero-pad (the caller never shares `work` with a short input) */
        for (i = 0; i < nfft; ++i) work[i] = i < n_in ? in[i] : 0.0f;
        src = work;
    }
    /* Pack z[j] = x[2j] + i x[2j+1] in bit-reversed order, fused with the first stage (len 2: no twiddle). */
    for (i = 0; i < m; i += 2) {
        const int32_t r0 = plan->bitrev[i], r1 = plan->bitrev[i + 1];
        const float ar = src[2 * r0], ai = src[2 * r0 + 1], br = src[2 * r1], bi = src[2 * r1 + 1];
        re[i] = ar + br;
        im[i] = ai + bi;
        re[i + 1] = ar - br;
        im[i + 1] = ai - bi;
    }
    /* len 4: twiddles 1 and -i */
    for (start = 0; start + 4 <= m; start += 4) {
        float tr = re[start + 2], ti = im[start + 2];
        re[start + 2] = re[start] - tr;
        im[start + 2] = im[start] - ti;
        re[start] += tr;
        im[start] += ti;
        tr = im[start + 3];  /* (br + i bi)(-i) = bi - i br */
        ti = -re[start + 3];
        re[start + 3] = re[start + 1] - tr;
        im[start + 3] = im[start + 1] - ti;
        re[start + 1] += tr;
        im[start + 1] += ti;
    }
    for (len = 8; len <= m; len <<= 1) {
        const int32_t half = len >> 1, stride = nfft / len;
        for (k = 0; k < half; ++k) {
            wr[k] = tw[2 * k * stride];
            wi[k] = tw[2 * k * stride + 1];
        }
        for (start = 0; start < m; start += len) {
            butterflies(re + start, im + start, re + start + half, im + start + half, wr, wi, half);
        }
    }
    /* Untangle: X[k] = E[k] + W^k O[k], E = (Z[k] + conj Z[m-k]) / 2, O = (Z[k] - conj Z[m-k]) / 2i. */
    out[0] = fabsf(re[0] + im[0]);
    out[m] = fabsf(re[0] - im[0]);
    for (k = 1; k < m; ++k) {
        const float zr = re[k], zi = im[k], cr = re[m - k], ci = -im[m - k];
        const float er = 0.5f * (zr + cr), ei = 0.5f * (zi + ci);
        const float or_ = 0.5f * (zi - ci), oi = -0.5f * (zr - cr);
        const float twr = tw[2 * k], twi = tw[2 * k + 1];
        const float xr = er + (or_ * twr - oi * twi);
        const float xi = ei + (or_ * twi + oi * twr);
        out[k] = sqrtf(xr * xr + xi * xi);
    }
}
