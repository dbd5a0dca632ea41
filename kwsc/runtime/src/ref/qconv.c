/* Conv in int8 arithmetic (QConv; kwsc/ir/quantized.py NOTE [int8 arithmetic]). Always the reference build: its
 * float steps (the input's rounding, the dequantization) must round exactly as numpy's (no FMA contraction); the
 * integer products are kwsc_qdot_rows, per target (src/opt/qdot.c: AVX2/VNNI, NEON sdot/smlal, SMLAD).
 *
 * The input tensor is rounded once per call with one scale. A convolution with several input channels per group
 * keeps it channels last ([N, D, H, W, C] int8) so that a window is KD*KH*KW runs of C/group bytes: copied into a
 * patch (zero where the window hangs over a pad), or read in place when the window is one contiguous run (a 1-D
 * window inside the input, one group); the weight rows are stored in the same (tap, channel) column order, and
 * kwsc_qdot_rows gives all the group's output channels of a window in one call. A depthwise convolution (one
 * input channel per group) keeps the planes ([N, C, D, H, W] int8) and sums each tap into a row of int32 outputs
 * (one multiply-add per output and tap, no patch, no call per output). Integer sums are exact in any order, so
 * both equal the reference's. */
#include <string.h>

#include "kwsc_runtime.h"

/* q = round(x * ch[c] / s) clamped to +-127 over the whole tensor, planar or channels last; returns s.
 * (int32 counters and walking pointers: 64-bit index arithmetic costs several instructions on 32-bit cores.) */
static float quantize_tensor(const kwsc_qconv_params* p, const float* x, int8_t* q, int32_t channels_last) {
    const int32_t C = p->in_channels, planes = p->batch * C;
    const int32_t plane = p->in_d * p->in_h * p->in_w;
    const int32_t step = channels_last ? C : 1;
    int32_t k, i;
    float scale, inv;
    if (p->input_scale > 0.0f) {
        scale = p->input_scale;
        inv = 1.0f / p->input_scale;
    } else {
        float peak = 0.0f;
        for (k = 0; k < planes; ++k) {
            const float* xc = x + (int64_t)k * plane;
            if (p->ch) {
                const float e = p->ch[k % C];
                for (i = 0; i < plane; ++i) {
                    const float v = xc[i] * e;
                    const float a = v < 0.0f ? -v : v;
                    if (a > peak) peak = a;
                }
            } else {
                for (i = 0; i < plane; ++i) {
                    const float a = xc[i] < 0.0f ? -xc[i] : xc[i];
                    if (a > peak) peak = a;
                }
            }
        }
        /* a peak below 2^-60 is a zero tensor with scale 0, as quantize_activations (127/peak would overflow) */
        scale = peak >= 0x1p-60f ? peak / 127.0f : 0.0f;
        inv = peak >= 0x1p-60f ? 127.0f / peak : 0.0f;
    }
    for (k = 0; k < planes; ++k) {
        const int32_t n = k / C, c = k % C;
        const float* xc = x + (int64_t)k * plane;
        const float e = p->ch ? p->ch[c] : 1.0f;
        int8_t* qc = channels_last ? q + (int64_t)n * C * plane + c : q + (int64_t)k * plane;
        for (i = 0; i < plane; ++i, qc += step) {
            float v = (p->ch ? xc[i] * e : xc[i]) * inv;
            v = v + (v >= 0.0f ? 0.5f : -0.5f);
            /* clamp before converting: a calibrated scale may put v far outside int32 */
            *qc = (int8_t)(v >= 127.0f ? 127 : (v <= -127.0f ? -127 : (int32_t)v));
        }
    }
    return scale;
}

/* An IEEE float16 as float32, exactly (finite values only: the emitter stores no inf or NaN). */
static float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    uint32_t bits;
    float f;
    if (exponent == 0) { /* zero or subnormal: mantissa * 2^-24 */
        f = (float)mantissa * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void store(const kwsc_qconv_params* p, int32_t m, float s, int32_t acc, float* y) {
    const float v = (float)acc * (p->scale[m] * s);
    *y = p->bias ? v + p->bias[m] : (p->bias_half ? v + half_to_float(p->bias_half[m]) : v);
}

#if defined(__GNUC__)
#define KWSC_NOINLINE __attribute__((noinline))
#else
#define KWSC_NOINLINE
#endif

/* a[i] += wv * x[i * step] over [a, end): a function of its own, kept out of line, so that every operand stays in a
 * register (inlined into the depthwise loop nest, GCC at -Os spilled them and reloaded per element: 12 Cortex-M4
 * instructions per multiply-add instead of 6). */
static KWSC_NOINLINE void tap_row(int32_t* a, int32_t* end, const int8_t* x, int32_t step, int32_t wv) {
    for (; a < end; ++a, x += step) *a += wv * *x;
}

/* One input channel per group: planar int8 input, int32 rows of outputs (scratch: acc [out plane]). */
static void depthwise(const kwsc_qconv_params* p, const int8_t* qx, float s, float* y, int32_t* acc) {
    const int32_t mout = p->out_channels / p->group, taps = p->k_d * p->k_h * p->k_w;
    const int32_t in_plane = p->in_d * p->in_h * p->in_w, out_plane = p->out_d * p->out_h * p->out_w;
    int32_t n, m, kd, kh, kw, od, oh, i;
    for (n = 0; n < p->batch; ++n) {
        for (m = 0; m < p->out_channels; ++m) {
            const int8_t* xc = qx + ((int64_t)n * p->in_channels + m / mout) * in_plane;
            const int8_t* wm = p->q + (int64_t)m * taps;
            float* ym = y + ((int64_t)n * p->out_channels + m) * out_plane;
            memset(acc, 0, (size_t)out_plane * sizeof(int32_t));
            for (kd = 0; kd < p->k_d; ++kd) {
                int32_t d_lo, d_hi;
                kwsc_valid_range(p->out_d, p->stride_d, kd * p->dil_d - p->pad_front, p->in_d, &d_lo, &d_hi);
                for (kh = 0; kh < p->k_h; ++kh) {
                    int32_t h_lo, h_hi;
                    kwsc_valid_range(p->out_h, p->stride_h, kh * p->dil_h - p->pad_top, p->in_h, &h_lo, &h_hi);
                    for (kw = 0; kw < p->k_w; ++kw) {
                        const int32_t wv = wm[(kd * p->k_h + kh) * p->k_w + kw];
                        const int32_t start_w = kw * p->dil_w - p->pad_left;
                        int32_t w_lo, w_hi;
                        kwsc_valid_range(p->out_w, p->stride_w, start_w, p->in_w, &w_lo, &w_hi);
                        if (w_lo >= w_hi || wv == 0) continue;
                        for (od = d_lo; od < d_hi; ++od) {
                            const int32_t id = od * p->stride_d + kd * p->dil_d - p->pad_front;
                            for (oh = h_lo; oh < h_hi; ++oh) {
                                const int32_t ih = oh * p->stride_h + kh * p->dil_h - p->pad_top;
                                const int8_t* xrow = xc + (id * p->in_h + ih) * p->in_w + start_w;
                                int32_t* arow = acc + (od * p->out_h + oh) * p->out_w;
                                tap_row(arow + w_lo, arow + w_hi, xrow + w_lo * p->stride_w, p->stride_w, wv);
                            }
                        }
                    }
                }
            }
            for (i = 0; i < out_plane; ++i) store(p, m, s, acc[i], ym + i);
        }
    }
}

/* The window at (id0, ih0, iw0) of group g's channels, tap after tap, zeros where it hangs over a pad. */
static void gather(const kwsc_qconv_params* p, const int8_t* xn, int32_t g, int32_t id0, int32_t ih0, int32_t iw0,
                   int8_t* patch) {
    const int32_t C = p->in_channels, cin = C / p->group;
    int32_t kd, kh, kw;
    for (kd = 0; kd < p->k_d; ++kd) {
        const int32_t id = id0 + kd * p->dil_d;
        for (kh = 0; kh < p->k_h; ++kh) {
            const int32_t ih = ih0 + kh * p->dil_h;
            for (kw = 0; kw < p->k_w; ++kw, patch += cin) {
                const int32_t iw = iw0 + kw * p->dil_w;
                if (id < 0 || id >= p->in_d || ih < 0 || ih >= p->in_h || iw < 0 || iw >= p->in_w) {
                    memset(patch, 0, (size_t)cin);
                } else {
                    memcpy(patch, xn + ((id * p->in_h + ih) * p->in_w + iw) * C + g * cin, (size_t)cin);
                }
            }
        }
    }
}

/* Several input channels per group: channels-last int8 input, a patch per window, kwsc_qdot_rows over the
 * group's rows (scratch: patch [cols] bytes, then acc [M/group] int32). */
static void windows(const kwsc_qconv_params* p, const int8_t* qx, float s, float* y, int8_t* patch, int32_t* acc) {
    const int32_t C = p->in_channels, cin = C / p->group, mout = p->out_channels / p->group;
    const int32_t cols = cin * p->k_d * p->k_h * p->k_w;
    const int32_t in_plane = p->in_d * p->in_h * p->in_w, out_plane = p->out_d * p->out_h * p->out_w;
    /* a window is one contiguous run when it is a single row of taps next to each other over all channels */
    const int32_t runs_in_place = p->group == 1 && p->k_d == 1 && p->k_h == 1 && (p->dil_w == 1 || p->k_w == 1);
    int32_t n, g, od, oh, ow, m;
    for (n = 0; n < p->batch; ++n) {
        const int8_t* xn = qx + (int64_t)n * C * in_plane;
        for (od = 0; od < p->out_d; ++od) {
            const int32_t id0 = od * p->stride_d - p->pad_front;
            for (oh = 0; oh < p->out_h; ++oh) {
                const int32_t ih0 = oh * p->stride_h - p->pad_top;
                for (ow = 0; ow < p->out_w; ++ow) {
                    const int32_t iw0 = ow * p->stride_w - p->pad_left;
                    float* yo = y + ((int64_t)n * p->out_channels * out_plane + (od * p->out_h + oh) * p->out_w + ow);
                    const int32_t inside = id0 >= 0 && id0 < p->in_d && ih0 >= 0 && ih0 < p->in_h && iw0 >= 0 &&
                                           iw0 + (p->k_w - 1) * p->dil_w < p->in_w;
                    for (g = 0; g < p->group; ++g) {
                        const int8_t* v = patch;
                        if (runs_in_place && inside) {
                            v = xn + ((id0 * p->in_h + ih0) * p->in_w + iw0) * C;
                        } else {
                            gather(p, xn, g, id0, ih0, iw0, patch);
                        }
                        kwsc_qdot_rows(p->q + (int64_t)g * mout * cols, cols, mout, v, acc);
                        for (m = 0; m < mout; ++m) {
                            const int32_t mm = g * mout + m;
                            store(p, mm, s, acc[m], yo + mm * out_plane);
                        }
                    }
                }
            }
        }
    }
}

void kwsc_qconv(const kwsc_qconv_params* p, const float* x, float* y, float* scratch) {
    const int32_t cin = p->in_channels / p->group;
    const int64_t qbytes = (int64_t)p->batch * p->in_channels * p->in_d * p->in_h * p->in_w;
    int8_t* qx = (int8_t*)scratch;
    float* rest = scratch + (qbytes + 3) / 4;
    const float s = quantize_tensor(p, x, qx, cin > 1);
    if (cin == 1) {
        depthwise(p, qx, s, y, (int32_t*)rest);
    } else {
        const int32_t cols = cin * p->k_d * p->k_h * p->k_w;
        windows(p, qx, s, y, (int8_t*)rest, (int32_t*)(rest + (cols + 3) / 4));
    }
}
