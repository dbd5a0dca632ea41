/* Recurrent layers over a whole window (apart from stream.c, which models without recurrent layers link). */
#include <string.h>

#include "kwsc_runtime.h"

/* A recurrent layer over a whole window (GRUSequence, LSTMSequence, RNNSequence: the stream pass's rnn=window):
 * `steps` steps of the cell from a zero state; every step's h to seq [steps, H], the last h (and c) to last_h
 * (last_c, may be 0). work: h, c and the gates: (2 + 4) * H floats at most. */
void kwsc_rnn_sequence(int32_t cell, const kwsc_rnn_params* p, const float* x, int32_t steps, int32_t in_size,
                       float* work, float* seq, float* last_h, float* last_c) {
    const int32_t H = p->hidden;
    float* h = work;
    float* c = work + H;
    float* gates = work + 2 * H;
    int32_t t;
    memset(h, 0, (size_t)(2 * H) * sizeof(float));
    for (t = 0; t < steps; ++t) {
        const float* xt = x + (size_t)t * (size_t)in_size;
        float* out = seq + (size_t)t * (size_t)H;
        if (cell == KWSC_CELL_GRU) kwsc_gru_step(p, xt, h, gates, out);
        else if (cell == KWSC_CELL_LSTM) kwsc_lstm_step(p, xt, h, c, gates, out, 0);
        else kwsc_rnn_step(p, xt, h, out);
    }
    memcpy(last_h, h, (size_t)H * sizeof(float));
    if (last_c) memcpy(last_c, c, (size_t)H * sizeof(float));
}
