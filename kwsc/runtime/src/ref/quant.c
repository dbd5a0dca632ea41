/* int8 layers: activation quantization, dequantization, Dense and the recurrent cells in int8 arithmetic.
 * Always the reference build (never src/opt): its float steps must round exactly as kwsc/ir/quantized.py's
 * (no FMA contraction, no reciprocal approximations). The integer products are kwsc_qdot_rows (per target). */
#include <math.h>

#include "kwsc_runtime.h"

#define KWSC_QCHUNK 96 /* rows per kwsc_qdot_rows call (a multiple of 3 and 4: the kernels' row groups) */

float kwsc_quantize_s8(const float* x, int32_t n, float fixed_scale, const float* col, int8_t* q) {
    int32_t j;
    float scale, inv;
    if (fixed_scale > 0.0f) {
        scale = fixed_scale;
        inv = 1.0f / fixed_scale;
    } else {
        float peak = 0.0f;
        for (j = 0; j < n; ++j) {
            const float a = fabsf(col ? x[j] * col[j] : x[j]);
            if (a > peak) peak = a;
        }
        scale = peak / 127.0f;
        inv = peak > 0.0f ? 127.0f / peak : 0.0f;
    }
    for (j = 0; j < n; ++j) {
        float v = (col ? x[j] * col[j] : x[j]) * inv;
        int32_t t;
        v = v + (v >= 0.0f ? 0.5f : -0.5f);
        /* clamp before converting: a calibrated scale may put v far outside int32 */
        t = v >= 127.0f ? 127 : (v <= -127.0f ? -127 : (int32_t)v);
        q[j] = (int8_t)t;
    }
    return scale;
}

void kwsc_qmatvec(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, float x_scale,
                  const float* bias, float* y) {
    int32_t acc[KWSC_QCHUNK];
    int32_t i, k;
    for (i = 0; i < nrows; i += KWSC_QCHUNK) {
        const int32_t count = nrows - i < KWSC_QCHUNK ? nrows - i : KWSC_QCHUNK;
        kwsc_qdot_rows(m->q + (int64_t)(row0 + i) * m->cols, m->cols, count, x, acc);
        for (k = 0; k < count; ++k) {
            const float s = m->scale[row0 + i + k] * x_scale;
            float v = (float)acc[k] * s;
            if (bias) v = v + bias[i + k];
            y[i + k] = v;
        }
    }
}

void kwsc_qdense(const kwsc_qdense_params* p, const float* x, float* y, int32_t batch, float* scratch) {
    int8_t* q = (int8_t*)scratch;
    const int32_t rows = p->w.rows, cols = p->w.cols;
    int32_t b;
    for (b = 0; b < batch; ++b) {
        float* yb = y + (int64_t)b * rows;
        const float s = kwsc_quantize_s8(x + (int64_t)b * cols, cols, p->input_scale, p->w.col, q);
        kwsc_qmatvec(&p->w, 0, rows, q, s, p->bias, yb);
        if (p->act == KWSC_ACT_SOFTMAX || p->act == KWSC_ACT_LOG_SOFTMAX) {
            kwsc_softmax(yb, yb, 1, rows, p->act == KWSC_ACT_LOG_SOFTMAX);
        } else {
            kwsc_activate_vec(p->act, yb, rows);
        }
    }
}

/* scratch: gx [G*H] | gh [G*H] | qx [I] | qh [H] (int8). Returns gx; gh = gx + G*H. */
static float* qgates(const kwsc_qrnn_params* p, int32_t gates, int32_t hidden_rows, const float* x,
                     const float* h, float* scratch) {
    const int32_t GH = gates * p->hidden;
    float* gx = scratch;
    float* gh = scratch + GH;
    int8_t* qx = (int8_t*)(scratch + 2 * GH);
    int8_t* qh = qx + p->w.cols;
    const float sx = kwsc_quantize_s8(x, p->w.cols, p->input_scale, p->w.col, qx);
    const float sh = kwsc_quantize_s8(h, p->hidden, p->hidden_scale, p->r.col, qh);
    kwsc_qmatvec(&p->w, 0, GH, qx, sx, p->bias_input, gx);
    kwsc_qmatvec(&p->r, 0, hidden_rows, qh, sh, p->bias_hidden, gh);
    return gx;
}

void kwsc_qgru_step(const kwsc_qrnn_params* p, const float* x, float* h, float* scratch, float* out) {
    const int32_t H = p->hidden;
    float* gx = qgates(p, 3, p->linear_before_reset ? 3 * H : 2 * H, x, h, scratch);
    float* gh = gx + 3 * H;
    int32_t j;
    for (j = 0; j < 2 * H; ++j) gx[j] = gx[j] + gh[j]; /* z, r pre-activations */
    kwsc_activate_vec(p->rec_act, gx, 2 * H);
    if (p->linear_before_reset) {
        for (j = 0; j < H; ++j) gx[2 * H + j] = gx[2 * H + j] + gx[H + j] * gh[2 * H + j];
    } else {
        /* R_n (r * h) + b_n: r * h is its own vector, quantized by the hidden state's rule */
        int8_t* qrh = (int8_t*)(scratch + 6 * H) + p->w.cols;
        float srh;
        for (j = 0; j < H; ++j) out[j] = gx[H + j] * h[j];
        srh = kwsc_quantize_s8(out, H, p->hidden_scale, p->r.col, qrh);
        kwsc_qmatvec(&p->r, 2 * H, H, qrh, srh, p->bias_hidden + 2 * H, gh);
        for (j = 0; j < H; ++j) gx[2 * H + j] = gx[2 * H + j] + gh[j];
    }
    kwsc_activate_vec(p->act, gx + 2 * H, H);
    for (j = 0; j < H; ++j) {
        const float n = gx[2 * H + j];
        out[j] = n + gx[j] * (h[j] - n);
    }
    kwsc_copy_f32(out, h, H);
}

void kwsc_qlstm_step(const kwsc_qrnn_params* p, const float* x, float* h, float* c, float* scratch,
                     float* out_h, float* out_c) {
    const int32_t H = p->hidden;
    float* g = qgates(p, 4, 4 * H, x, h, scratch);
    const float* gh = g + 4 * H;
    int32_t j;
    for (j = 0; j < 4 * H; ++j) g[j] = g[j] + gh[j];
    kwsc_activate_vec(p->rec_act, g, 2 * H);
    kwsc_activate_vec(p->act, g + 2 * H, H);
    kwsc_activate_vec(p->rec_act, g + 3 * H, H);
    for (j = 0; j < H; ++j) {
        c[j] = g[H + j] * c[j] + g[j] * g[2 * H + j];
        out_h[j] = c[j];
    }
    kwsc_activate_vec(p->act, out_h, H);
    for (j = 0; j < H; ++j) out_h[j] = g[3 * H + j] * out_h[j];
    kwsc_copy_f32(out_h, h, H);
    if (out_c) kwsc_copy_f32(c, out_c, H);
}

void kwsc_qrnn_step(const kwsc_qrnn_params* p, const float* x, float* h, float* scratch, float* out) {
    const int32_t H = p->hidden;
    float* g = qgates(p, 1, H, x, h, scratch);
    int32_t j;
    for (j = 0; j < H; ++j) out[j] = g[j] + g[H + j];
    kwsc_activate_vec(p->act, out, H);
    kwsc_copy_f32(out, h, H);
}
