/* Convolution over [N, C, D, H, W] (2-D: D = 1; 1-D: D = H = 1): the reference kernel, plain loops. */
#include "kwsc_runtime.h"

/* Weight (row m, column j) of a float or int8 matrix. */
static float weight_at(const kwsc_mat* w, int32_t m, int32_t j) {
    int64_t at = (int64_t)m * w->cols + j;
    return w->f ? w->f[at] : (float)w->q[at] * w->scale[m];
}

void kwsc_conv(const kwsc_conv_params* p, const float* x, float* y) {
    const int32_t cin = p->in_channels / p->group;  /* input channels per group */
    const int32_t mout = p->out_channels / p->group; /* output channels per group */
    const int64_t in_plane = (int64_t)p->in_d * p->in_h * p->in_w, out_plane = (int64_t)p->out_d * p->out_h * p->out_w;
    int32_t n, m, od, oh, ow, c, kd, kh, kw;
    for (n = 0; n < p->batch; ++n) {
        const float* xn = x + (int64_t)n * p->in_channels * in_plane;
        float* yn = y + (int64_t)n * p->out_channels * out_plane;
        for (m = 0; m < p->out_channels; ++m) {
            const int32_t c0 = (m / mout) * cin;
            float* ym = yn + (int64_t)m * out_plane;
            for (od = 0; od < p->out_d; ++od) {
                for (oh = 0; oh < p->out_h; ++oh) {
                    for (ow = 0; ow < p->out_w; ++ow) {
                        float acc = 0.0f;
                        for (c = 0; c < cin; ++c) {
                            const float* xc = xn + (int64_t)(c0 + c) * in_plane;
                            for (kd = 0; kd < p->k_d; ++kd) {
                                const int32_t id = od * p->stride_d - p->pad_front + kd * p->dil_d;
                                if (id < 0 || id >= p->in_d) continue;
                                for (kh = 0; kh < p->k_h; ++kh) {
                                    const int32_t ih = oh * p->stride_h - p->pad_top + kh * p->dil_h;
                                    if (ih < 0 || ih >= p->in_h) continue;
                                    for (kw = 0; kw < p->k_w; ++kw) {
                                        const int32_t iw = ow * p->stride_w - p->pad_left + kw * p->dil_w;
                                        const int32_t j = ((c * p->k_d + kd) * p->k_h + kh) * p->k_w + kw;
                                        if (iw < 0 || iw >= p->in_w) continue;
                                        acc += weight_at(&p->w, m, j) * xc[((int64_t)id * p->in_h + ih) * p->in_w + iw];
                                    }
                                }
                            }
                        }
                        ym[((int64_t)od * p->out_h + oh) * p->out_w + ow] = acc + (p->bias ? p->bias[m] : 0.0f);
                    }
                }
            }
        }
    }
}
