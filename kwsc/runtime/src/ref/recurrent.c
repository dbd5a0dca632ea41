/* Recurrent cells (GRU, LSTM, RNN) with ELL's gate orders and reset-trigger rule (ell-behaviour.md §3). */
#include "kwsc_runtime.h"

int32_t kwsc_trigger_fired(int32_t* prev, int32_t now) {
    int32_t fired = (*prev != 0) && (now == 0);
    *prev = now;
    return fired;
}

void kwsc_gru_step(const kwsc_rnn_params* p, const float* x, float* h, float* scratch, float* out) {
    const int32_t H = p->hidden;
    float* az = scratch;          /* update gate pre-activation, then z */
    float* ar = scratch + H;      /* reset gate pre-activation, then r */
    float* an = scratch + 2 * H;  /* candidate: input part W_n x + b_n, then n */
    int32_t j;
    kwsc_matvec(&p->w, 0, 3 * H, x, p->bias_input, scratch, 0);
    kwsc_matvec(&p->r, 0, 2 * H, h, p->bias_hidden, scratch, 1);
    kwsc_activate_vec(p->rec_act, scratch, 2 * H);
    if (p->linear_before_reset) {
        /* n = act(W_n x + b_n + r * (R_n h + rb_n)) */
        kwsc_matvec(&p->r, 2 * H, H, h, p->bias_hidden + 2 * H, out, 0);
        for (j = 0; j < H; ++j) an[j] += ar[j] * out[j];
    } else {
        /* n = act(W_n x + b_n + R_n (r * h) + rb_n); r is dead once r*h is formed, so its slot takes R_n(r*h) */
        for (j = 0; j < H; ++j) out[j] = ar[j] * h[j];
        kwsc_matvec(&p->r, 2 * H, H, out, p->bias_hidden + 2 * H, ar, 0);
        for (j = 0; j < H; ++j) an[j] += ar[j];
    }
    kwsc_activate_vec(p->act, an, H);
    for (j = 0; j < H; ++j) {
        out[j] = an[j] + az[j] * (h[j] - an[j]);
    }
    kwsc_copy_f32(out, h, H);
}

void kwsc_lstm_step(const kwsc_rnn_params* p, const float* x, float* h, float* c, float* scratch,
                    float* out_h, float* out_c) {
    const int32_t H = p->hidden;
    const float* i_gate = scratch;
    const float* f_gate = scratch + H;
    const float* g_cand = scratch + 2 * H;
    const float* o_gate = scratch + 3 * H;
    int32_t j;
    kwsc_matvec(&p->w, 0, 4 * H, x, p->bias_input, scratch, 0);
    kwsc_matvec(&p->r, 0, 4 * H, h, p->bias_hidden, scratch, 1);
    kwsc_activate_vec(p->rec_act, scratch, 2 * H);
    kwsc_activate_vec(p->act, scratch + 2 * H, H);
    kwsc_activate_vec(p->rec_act, scratch + 3 * H, H);
    for (j = 0; j < H; ++j) {
        c[j] = f_gate[j] * c[j] + i_gate[j] * g_cand[j];
        out_h[j] = c[j];
    }
    kwsc_activate_vec(p->act, out_h, H);
    for (j = 0; j < H; ++j) out_h[j] *= o_gate[j];
    kwsc_copy_f32(out_h, h, H);
    if (out_c) kwsc_copy_f32(c, out_c, H);
}

void kwsc_rnn_step(const kwsc_rnn_params* p, const float* x, float* h, float* out) {
    const int32_t H = p->hidden;
    kwsc_matvec(&p->w, 0, H, x, p->bias_input, out, 0);
    kwsc_matvec(&p->r, 0, H, h, p->bias_hidden, out, 1);
    kwsc_activate_vec(p->act, out, H);
    kwsc_copy_f32(out, h, H);
}
