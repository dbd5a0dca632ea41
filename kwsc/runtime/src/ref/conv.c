/* Convolution and pooling over [N, C, H, W] (a 1-D op is H = 1): the reference kernels, plain loops. */
#include "kwsc_runtime.h"

/* Weight (row m, column j) of a float or int8 matrix. */
static float weight_at(const kwsc_mat* w, int32_t m, int32_t j) {
    int64_t at = (int64_t)m * w->cols + j;
    return w->f ? w->f[at] : (float)w->q[at] * w->scale[m];
}

void kwsc_conv2d(const kwsc_conv_params* p, const float* x, float* y) {
    const int32_t cin = p->in_channels / p->group;  /* input channels per group */
    const int32_t mout = p->out_channels / p->group; /* output channels per group */
    int32_t n, m, oh, ow, c, kh, kw;
    for (n = 0; n < p->batch; ++n) {
        const float* xn = x + (int64_t)n * p->in_channels * p->in_h * p->in_w;
        float* yn = y + (int64_t)n * p->out_channels * p->out_h * p->out_w;
        for (m = 0; m < p->out_channels; ++m) {
            const int32_t c0 = (m / mout) * cin;
            float* ym = yn + (int64_t)m * p->out_h * p->out_w;
            for (oh = 0; oh < p->out_h; ++oh) {
                for (ow = 0; ow < p->out_w; ++ow) {
                    float acc = 0.0f;
                    for (c = 0; c < cin; ++c) {
                        const float* xc = xn + (int64_t)(c0 + c) * p->in_h * p->in_w;
                        for (kh = 0; kh < p->k_h; ++kh) {
                            const int32_t ih = oh * p->stride_h - p->pad_top + kh * p->dil_h;
                            if (ih < 0 || ih >= p->in_h) continue;
                            for (kw = 0; kw < p->k_w; ++kw) {
                                const int32_t iw = ow * p->stride_w - p->pad_left + kw * p->dil_w;
                                if (iw < 0 || iw >= p->in_w) continue;
                                acc += weight_at(&p->w, m, (c * p->k_h + kh) * p->k_w + kw) * xc[ih * p->in_w + iw];
                            }
                        }
                    }
                    ym[oh * p->out_w + ow] = acc + (p->bias ? p->bias[m] : 0.0f);
                }
            }
        }
    }
}

void kwsc_pool2d(const kwsc_pool_params* p, const float* x, float* y) {
    int32_t plane, oh, ow, kh, kw;
    for (plane = 0; plane < p->planes; ++plane) {
        const float* xp = x + (int64_t)plane * p->in_h * p->in_w;
        float* yp = y + (int64_t)plane * p->out_h * p->out_w;
        for (oh = 0; oh < p->out_h; ++oh) {
            for (ow = 0; ow < p->out_w; ++ow) {
                float acc = p->kind == KWSC_POOL_MAX ? -HUGE_VALF : 0.0f;
                int32_t count = 0;
                for (kh = 0; kh < p->k_h; ++kh) {
                    const int32_t ih = oh * p->stride_h - p->pad_top + kh * p->dil_h;
                    const int32_t row_in = ih >= 0 && ih < p->in_h;
                    const int32_t row_pad = ih >= -p->pad_top && ih < p->in_h + p->pad_bottom;
                    for (kw = 0; kw < p->k_w; ++kw) {
                        const int32_t iw = ow * p->stride_w - p->pad_left + kw * p->dil_w;
                        if (row_in && iw >= 0 && iw < p->in_w) {
                            const float v = xp[ih * p->in_w + iw];
                            if (p->kind == KWSC_POOL_MAX) {
                                acc = v > acc ? v : acc;
                            } else {
                                acc += v;
                            }
                            ++count;
                        } else if (p->kind == KWSC_POOL_AVG_WITH_PAD && row_pad && iw >= -p->pad_left &&
                                   iw < p->in_w + p->pad_right) {
                            ++count; /* an explicit pad position: counted, adds 0 */
                        }
                    }
                }
                yp[oh * p->out_w + ow] = p->kind == KWSC_POOL_MAX ? acc : acc / (float)(count > 0 ? count : 1);
            }
        }
    }
}
