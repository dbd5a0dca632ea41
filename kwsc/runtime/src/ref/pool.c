/* Max and average pooling over [N, C, D, H, W] (2-D: D = 1; 1-D: D = H = 1): the reference kernel. */
#include "kwsc_runtime.h"

/* Whether a position lies on the input (1), on an explicit pad (2) or outside both (0) along one axis. */
static int32_t where_on_axis(int32_t i, int32_t size, int32_t pad_begin, int32_t pad_end) {
    if (i >= 0 && i < size) return 1;
    return i >= -pad_begin && i < size + pad_end ? 2 : 0;
}

void kwsc_pool(const kwsc_pool_params* p, const float* x, float* y) {
    const int64_t in_plane = (int64_t)p->in_d * p->in_h * p->in_w, out_plane = (int64_t)p->out_d * p->out_h * p->out_w;
    int32_t plane, od, oh, ow, kd, kh, kw;
    for (plane = 0; plane < p->planes; ++plane) {
        const float* xp = x + (int64_t)plane * in_plane;
        float* yp = y + (int64_t)plane * out_plane;
        for (od = 0; od < p->out_d; ++od) {
            for (oh = 0; oh < p->out_h; ++oh) {
                for (ow = 0; ow < p->out_w; ++ow) {
                    float acc = p->kind == KWSC_POOL_MAX ? -HUGE_VALF : 0.0f;
                    int32_t count = 0;
                    for (kd = 0; kd < p->k_d; ++kd) {
                        const int32_t id = od * p->stride_d - p->pad_front + kd * p->dil_d;
                        const int32_t on_d = where_on_axis(id, p->in_d, p->pad_front, p->pad_back);
                        if (!on_d) continue;
                        for (kh = 0; kh < p->k_h; ++kh) {
                            const int32_t ih = oh * p->stride_h - p->pad_top + kh * p->dil_h;
                            const int32_t on_h = where_on_axis(ih, p->in_h, p->pad_top, p->pad_bottom);
                            if (!on_h) continue;
                            for (kw = 0; kw < p->k_w; ++kw) {
                                const int32_t iw = ow * p->stride_w - p->pad_left + kw * p->dil_w;
                                const int32_t on_w = where_on_axis(iw, p->in_w, p->pad_left, p->pad_right);
                                if (on_d == 1 && on_h == 1 && on_w == 1) {
                                    const float v = xp[((int64_t)id * p->in_h + ih) * p->in_w + iw];
                                    if (p->kind == KWSC_POOL_MAX) {
                                        acc = v > acc ? v : acc;
                                    } else {
                                        acc += v;
                                    }
                                    ++count;
                                } else if (on_w && p->kind == KWSC_POOL_AVG_WITH_PAD) {
                                    ++count; /* an explicit pad position: counted, adds 0 */
                                }
                            }
                        }
                    }
                    yp[((int64_t)od * p->out_h + oh) * p->out_w + ow] =
                        p->kind == KWSC_POOL_MAX ? acc : acc / (float)(count > 0 ? count : 1);
                }
            }
        }
    }
}
