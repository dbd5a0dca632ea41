/* Recurrent cells (GRU, LSTM, RNN) with ELL's gate orders and reset-trigger rule (ell-behaviour.md §3).
 * The weights are tiled (NOTE [Tiled recurrent weights] in kwsc/backends/c/packing.py): one pass over p->tiles
 * yields every gate's W x and R h for a block of units (kwsc_tile_dot, vectorised in src/opt/tile.c); the gate
 * math then runs over whole vectors (kwsc_activate_vec). */
#include "kwsc_runtime.h"

int32_t kwsc_trigger_fired(int32_t* prev, int32_t now) {
    int32_t fired = (*prev != 0) && (now == 0);
    *prev = now;
    return fired;
}

/* Floats of one tile of `rows` rows over `cols` columns. */
static int32_t tile_size(int32_t rows, int32_t cols) {
    return rows * ((cols + KWSC_TILE_COLS - 1) / KWSC_TILE_COLS) * KWSC_TILE_COLS;
}

/* pre[g*H + j] = W_g x + b_g (+ R_g h + rb_g for the first `hidden_gates` gates) for every unit j, gates
 * g < `gates`; the gates past hidden_gates put R_g h + rb_g in rest[(g - hidden_gates)*H + j] instead (a GRU with
 * linear_before_reset: the candidate's two parts stay apart). The blocks' R tiles hold `r_gates` gates' rows.
 * Returns the end of the blocks in p->tiles. */
static const float* gate_sums(const kwsc_rnn_params* p, int32_t gates, int32_t r_gates, int32_t hidden_gates,
                              const float* x, const float* h, float* pre, float* rest) {
    const int32_t H = p->hidden, I = p->w.cols, U = KWSC_TILE_ROWS / gates;
    const int32_t w_size = tile_size(gates * U, I), r_size = tile_size(r_gates * U, H);
    const float* t = p->tiles;
    float ws[KWSC_TILE_ROWS], rs[KWSC_TILE_ROWS];
    int32_t j0, u, g;
    for (j0 = 0; j0 < H; j0 += U, t += w_size + r_size) {
        const int32_t n = H - j0 < U ? H - j0 : U;
        kwsc_tile_dot(t, I, x, gates * U, ws);
        kwsc_tile_dot(t + w_size, H, h, r_gates * U, rs);
        for (g = 0; g < gates; ++g) {
            for (u = 0; u < n; ++u) {
                const int32_t j = g * H + j0 + u;
                const float wx = ws[g * U + u] + p->bias_input[j];
                if (g < hidden_gates) pre[j] = wx + (rs[g * U + u] + p->bias_hidden[j]);
                else {
                    pre[j] = wx;
                    if (g < r_gates) rest[j - hidden_gates * H] = rs[g * U + u] + p->bias_hidden[j];
                }
            }
        }
    }
    return t;
}

void kwsc_gru_step(const kwsc_rnn_params* p, const float* x, float* h, float* scratch, float* out) {
    const int32_t H = p->hidden, U = KWSC_TILE_ROWS / 3;
    float* az = scratch;          /* update gate pre-activation, then z */
    float* ar = scratch + H;      /* reset gate pre-activation, then r */
    float* an = scratch + 2 * H;  /* candidate: input part W_n x + b_n, then n */
    int32_t j, j0, u;
    if (p->linear_before_reset) {
        /* n = act(W_n x + b_n + r * (R_n h + rb_n)): R_n h + rb_n goes to out */
        gate_sums(p, 3, 3, 2, x, h, scratch, out);
        kwsc_activate_vec(p->rec_act, scratch, 2 * H);
        for (j = 0; j < H; ++j) an[j] += ar[j] * out[j];
    } else {
        /* n = act(W_n x + b_n + R_n (r * h) + rb_n): the R_n tiles follow the blocks, read once r * h is known */
        const float* t = gate_sums(p, 3, 2, 2, x, h, scratch, 0);
        const int32_t r_size = tile_size(U, H);
        float rs[KWSC_TILE_ROWS];
        kwsc_activate_vec(p->rec_act, scratch, 2 * H);
        for (j = 0; j < H; ++j) out[j] = ar[j] * h[j];
        for (j0 = 0; j0 < H; j0 += U, t += r_size) {
            const int32_t n = H - j0 < U ? H - j0 : U;
            kwsc_tile_dot(t, H, out, U, rs);
            for (u = 0; u < n; ++u) an[j0 + u] += rs[u] + p->bias_hidden[2 * H + j0 + u];
        }
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
    gate_sums(p, 4, 4, 4, x, h, scratch, 0);
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
    gate_sums(p, 1, 1, 1, x, h, out, 0);
    kwsc_activate_vec(p->act, out, H);
    kwsc_copy_f32(out, h, H);
}
