/* Convolution, optimised: each weight is read once per output channel and multiplied into a whole run of outputs
 * (an axpy over the valid output columns: contiguous and vectorised when stride_w = 1), with the bounds of each
 * run computed once instead of tested per multiply; a pointwise convolution (1x1, stride 1, no pads) is one axpy
 * over the whole plane. Same signature and tests as ref/conv.c; no scratch memory. */
#include "kwsc_runtime.h"

static void axpy(float a, const float* x, int32_t sx, float* y, int32_t n) {
    int32_t i;
    if (sx == 1) {
        for (i = 0; i < n; ++i) y[i] += a * x[i];
    } else {
        for (i = 0; i < n; ++i) y[i] += a * x[(int64_t)i * sx];
    }
}

void kwsc_conv(const kwsc_conv_params* p, const float* x, float* y) {
    const int32_t cin = p->in_channels / p->group, mout = p->out_channels / p->group;
    const int64_t in_plane = (int64_t)p->in_d * p->in_h * p->in_w, out_plane = (int64_t)p->out_d * p->out_h * p->out_w;
    const int32_t pointwise = p->k_d == 1 && p->k_h == 1 && p->k_w == 1 && p->stride_d == 1 && p->stride_h == 1 &&
                              p->stride_w == 1 && p->pad_front == 0 && p->pad_top == 0 && p->pad_left == 0 &&
                              in_plane == out_plane;
    int32_t n, m, c, kd, kh, kw, od, oh;
    int64_t i;
    for (n = 0; n < p->batch; ++n) {
        const float* xn = x + (int64_t)n * p->in_channels * in_plane;
        float* yn = y + (int64_t)n * p->out_channels * out_plane;
        for (m = 0; m < p->out_channels; ++m) {
            const float* wrow_f = p->w.f ? p->w.f + (int64_t)m * p->w.cols : 0;
            const int8_t* wrow_q = p->w.f ? 0 : p->w.q + (int64_t)m * p->w.cols;
            const float scale = p->w.f ? 1.0f : p->w.scale[m];
            const int32_t c0 = (m / mout) * cin;
            float* ym = yn + (int64_t)m * out_plane;
            const float b = p->bias ? p->bias[m] : 0.0f;
            for (i = 0; i < out_plane; ++i) ym[i] = b;
            for (c = 0; c < cin; ++c) {
                const float* xc = xn + (int64_t)(c0 + c) * in_plane;
                if (pointwise) {
                    axpy(wrow_f ? wrow_f[c] : (float)wrow_q[c] * scale, xc, 1, ym, (int32_t)out_plane);
                    continue;
                }
                for (kd = 0; kd < p->k_d; ++kd) {
                    int32_t d_lo, d_hi;
                    kwsc_valid_range(p->out_d, p->stride_d, kd * p->dil_d - p->pad_front, p->in_d, &d_lo, &d_hi);
                    for (kh = 0; kh < p->k_h; ++kh) {
                        int32_t h_lo, h_hi;
                        kwsc_valid_range(p->out_h, p->stride_h, kh * p->dil_h - p->pad_top, p->in_h, &h_lo, &h_hi);
                        for (kw = 0; kw < p->k_w; ++kw) {
                            const int32_t j = ((c * p->k_d + kd) * p->k_h + kh) * p->k_w + kw;
                            const float wv = wrow_f ? wrow_f[j] : (float)wrow_q[j] * scale;
                            const int32_t start_w = kw * p->dil_w - p->pad_left;
                            int32_t w_lo, w_hi;
                            kwsc_valid_range(p->out_w, p->stride_w, start_w, p->in_w, &w_lo, &w_hi);
                            if (w_lo >= w_hi) continue;
                            for (od = d_lo; od < d_hi; ++od) {
                                const int32_t id = od * p->stride_d + kd * p->dil_d - p->pad_front;
                                for (oh = h_lo; oh < h_hi; ++oh) {
                                    const int32_t ih = oh * p->stride_h + kh * p->dil_h - p->pad_top;
                                    const float* xrow = xc + ((int64_t)id * p->in_h + ih) * p->in_w;
                                    float* yrow = ym + ((int64_t)od * p->out_h + oh) * p->out_w;
                                    axpy(wv, xrow + w_lo * p->stride_w + start_w, p->stride_w, yrow + w_lo, w_hi - w_lo);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
