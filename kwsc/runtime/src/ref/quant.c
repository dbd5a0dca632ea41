/* int8 layers: activation quantization, dequantization, Dense and the recurrent cells in int8 arithmetic.
 * Always the reference build (never src/opt): its float steps must round exactly as kwsc/ir/quantized.py's
 * (no FMA contraction, no reciprocal approximations). The integer products are kwsc_qmat_rows (per target,
 * src/opt/qdot.c). */
#include <math.h>

#include "kwsc_runtime.h"

/* One weight of a layout-1 matrix (kwsc/backends/c/quantize.py pack_row_pairs): rows in groups of four, columns
 * in groups of four, 16 bytes per (row group, column group); a word's int16 lanes hold w[r0] + 256 w[r1].
 * Layout 2 (pack_row_octets): rows in groups of eight, 32 bytes per (row group, column group), w[r, c] at byte
 * 4 (r % 8) + c % 4. */
int32_t kwsc_qpair_weight(const kwsc_qmat* m, int32_t row, int32_t col) {
    const int32_t c4 = (m->cols + 3) / 4;
    if (m->layout == 2) return m->q[((int64_t)(row / 8) * c4 + col / 4) * 32 + (row % 8) * 4 + col % 4];
    const int8_t* block = m->q + ((int64_t)(row / 4) * c4 + col / 4) * 16;
    const int8_t* lane = block + ((row & 2) ? 8 : 0) + ((col & 2) ? 4 : 0) + ((col & 1) ? 2 : 0);
    const int32_t v = (int32_t)(uint8_t)lane[0] | ((int32_t)lane[1] * 256); /* the int16 lane */
    const int32_t lo = (int32_t)(int8_t)(v & 0xff);
    return (row & 1) ? (v - lo) / 256 : lo;
}

/* kwsc_qmat_rows the plain way, for any layout: row-major rows through kwsc_qdot_rows (each target's SIMD), packed
 * layouts weight by weight. src/ref/qdot.c's kwsc_qmat_rows is this; src/opt/qdot.c's calls it for the layouts
 * its target has no kernel for (quant.c is linked wherever a qdot.c is). */
void kwsc_qmat_rows_plain(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, int32_t* acc) {
    int32_t i, j;
    if (m->layout == 0) {
        kwsc_qdot_rows(m->q + (int64_t)row0 * m->cols, m->cols, nrows, x, acc);
        return;
    }
    for (i = 0; i < nrows; ++i) {
        int32_t s = 0;
        for (j = 0; j < m->cols; ++j) s += kwsc_qpair_weight(m, row0 + i, j) * (int32_t)x[j];
        acc[i] = s;
    }
}

/* rows per kwsc_qmat_rows call (a multiple of 3, 4 and 8: the kernels' row groups); 96 (384 bytes of stack) on
 * microcontrollers, 384 elsewhere (fewer calls: a GRU 2x128's matrices in one) */
#if defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_8M_MAIN__)
#define KWSC_QCHUNK 96
#else
#define KWSC_QCHUNK 384
#endif

/* The float steps of kwsc_quantize_s8 and kwsc_qmatvec in plain C: the reference's operations in its order.
 * kwsc_qpeak, kwsc_qround and kwsc_qdequant (src/ref/qdot.c, or vectorised in src/opt/qdot.c) call these for
 * what they do not vectorise; compiled here, with the reference flags, they round like numpy on every target. */
float kwsc_qpeak_ref(const float* x, int32_t n, const float* col) {
    float peak = 0.0f;
    int32_t j;
    for (j = 0; j < n; ++j) {
        const float a = fabsf(col ? x[j] * col[j] : x[j]);
        if (a > peak) peak = a;
    }
    return peak;
}

void kwsc_qround_ref(const float* x, int32_t n, const float* col, float inv, int8_t* q) {
    int32_t j;
    for (j = 0; j < n; ++j) {
        float v = (col ? x[j] * col[j] : x[j]) * inv;
        int32_t t;
        v = v + (v >= 0.0f ? 0.5f : -0.5f);
        /* clamp before converting: a calibrated scale may put v far outside int32 */
        t = v >= 127.0f ? 127 : (v <= -127.0f ? -127 : (int32_t)v);
        q[j] = (int8_t)t;
    }
}

void kwsc_qdequant_ref(const int32_t* acc, int32_t n, const float* scale, float x_scale, const float* bias,
                       float* y, int32_t accumulate) {
    int32_t k;
    if (accumulate) { /* two loops: no per-row test of the flag */
        for (k = 0; k < n; ++k) {
            float v = (float)acc[k] * (scale[k] * x_scale);
            if (bias) v = v + bias[k];
            y[k] = y[k] + v;
        }
    } else {
        for (k = 0; k < n; ++k) {
            float v = (float)acc[k] * (scale[k] * x_scale);
            if (bias) v = v + bias[k];
            y[k] = v;
        }
    }
}

void kwsc_qmuladd_ref(float* a, const float* b, const float* c, int32_t n) {
    int32_t j;
    for (j = 0; j < n; ++j) a[j] = a[j] + b[j] * c[j];
}

void kwsc_qblend_ref(const float* z, const float* cand, float* h, float* out, int32_t n) {
    int32_t j;
    for (j = 0; j < n; ++j) {
        const float v = cand[j];
        out[j] = v + z[j] * (h[j] - v);
        h[j] = out[j];
    }
}

float kwsc_quantize_s8(const float* x, int32_t n, float fixed_scale, const float* col, int8_t* q) {
    float scale, inv;
    if (fixed_scale > 0.0f) {
        scale = fixed_scale;
        inv = 1.0f / fixed_scale;
    } else {
        const float peak = kwsc_qpeak(x, n, col);
        const int32_t live = peak >= 0x1p-60f; /* below: a zero vector, scale 0 (quantized.py _PEAK_MIN) */
        scale = live ? peak / 127.0f : 0.0f;
        inv = live ? 127.0f / peak : 0.0f;
    }
    kwsc_qround(x, n, col, inv, q);
    return scale;
}

void kwsc_qmatvec(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, float x_scale,
                  const float* bias, float* y, int32_t accumulate) {
    int32_t acc[KWSC_QCHUNK];
#if defined(__aarch64__) /* the only target that fuses (kwsc_runtime.h) */
    int32_t i = kwsc_qmatvec_fused(m, row0, nrows, x, x_scale, bias, y, accumulate);
#else
    int32_t i = 0;
#endif
    for (; i < nrows; i += KWSC_QCHUNK) {
        const int32_t count = nrows - i < KWSC_QCHUNK ? nrows - i : KWSC_QCHUNK;
        kwsc_qmat_rows(m, row0 + i, count, x, acc);
        kwsc_qdequant(acc, count, m->scale + row0 + i, x_scale, bias ? bias + i : 0, y + i, accumulate);
    }
}

void kwsc_qdense(const kwsc_qdense_params* p, const float* x, float* y, int32_t batch, float* scratch) {
    int8_t* q = (int8_t*)scratch;
    const int32_t rows = p->w.rows, cols = p->w.cols;
    int32_t b;
    for (b = 0; b < batch; ++b) {
        float* yb = y + (int64_t)b * rows;
        const float s = kwsc_quantize_s8(x + (int64_t)b * cols, cols, p->input_scale, p->w.col, q);
        kwsc_qmatvec(&p->w, 0, rows, q, s, p->bias, yb, 0);
        if (p->act == KWSC_ACT_SOFTMAX || p->act == KWSC_ACT_LOG_SOFTMAX) {
            kwsc_softmax(yb, yb, 1, rows, p->act == KWSC_ACT_LOG_SOFTMAX);
        } else {
            kwsc_activate_vec(p->act, yb, rows);
        }
    }
}

/* scratch: g [G*H] | (GRU) gh_n [H] | qx [I] | qh [H] (int8). g = W x + b_i + R h + b_h for the first
 * `summed_rows` rows (the two products' sums added in that order: the reference's gx + gh); a GRU's candidate rows
 * keep R_n h + b_n apart in gh_n (r multiplies it). */
static void qgates(const kwsc_qrnn_params* p, int32_t gates, int32_t summed_rows, const float* x, const float* h,
                   float* scratch) {
    const int32_t GH = gates * p->hidden;
    float* g = scratch;
    float* gh_n = scratch + GH;
    int8_t* qx = (int8_t*)(scratch + GH + (gates == 3 ? p->hidden : 0));
    int8_t* qh = qx + p->w.cols;
    const float sx = kwsc_quantize_s8(x, p->w.cols, p->input_scale, p->w.col, qx);
    const float sh = kwsc_quantize_s8(h, p->hidden, p->hidden_scale, p->r.col, qh);
    kwsc_qmatvec(&p->w, 0, GH, qx, sx, p->bias_input, g, 0);
    kwsc_qmatvec(&p->r, 0, summed_rows, qh, sh, p->bias_hidden, g, 1);
    if (gates == 3 && p->linear_before_reset) {
        kwsc_qmatvec(&p->r, 2 * p->hidden, p->hidden, qh, sh, p->bias_hidden + 2 * p->hidden, gh_n, 0);
    }
}

void kwsc_qgru_step(const kwsc_qrnn_params* p, const float* x, float* h, float* scratch, float* out) {
    const int32_t H = p->hidden;
    float* g = scratch;
    float* gh_n = scratch + 3 * H;
    int32_t j;
    qgates(p, 3, 2 * H, x, h, scratch);
    kwsc_activate_vec(p->rec_act, g, 2 * H); /* z, r */
    if (p->linear_before_reset) {
        kwsc_qmuladd(g + 2 * H, g + H, gh_n, H);
    } else {
        /* R_n (r * h) + b_n: r * h is its own vector, quantized by the hidden state's rule (into qh's place) */
        int8_t* qrh = (int8_t*)(scratch + 4 * H) + p->w.cols;
        float srh;
        for (j = 0; j < H; ++j) out[j] = g[H + j] * h[j];
        srh = kwsc_quantize_s8(out, H, p->hidden_scale, p->r.col, qrh);
        kwsc_qmatvec(&p->r, 2 * H, H, qrh, srh, p->bias_hidden + 2 * H, g + 2 * H, 1);
    }
    kwsc_activate_vec(p->act, g + 2 * H, H);
    kwsc_qblend(g, g + 2 * H, h, out, H);
}

void kwsc_qlstm_step(const kwsc_qrnn_params* p, const float* x, float* h, float* c, float* scratch,
                     float* out_h, float* out_c) {
    const int32_t H = p->hidden;
    float* g = scratch;
    int32_t j;
    qgates(p, 4, 4 * H, x, h, scratch);
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
    qgates(p, 1, H, x, h, scratch);
    kwsc_copy_f32(scratch, out, H);
    kwsc_activate_vec(p->act, out, H);
    kwsc_copy_f32(out, h, H);
}
