/* History: the ring buffer the stream pass puts before every op that looks back in time. */
#include <string.h>

#include "kwsc_runtime.h"

void kwsc_history(const kwsc_history_params* p, float* ring, int32_t* pos, int32_t* count, const float* in,
                  float* out) {
    const int32_t frame = p->outer * p->inner;
    int32_t i, o;
    /* the new frame overwrites the oldest; nothing else in the ring moves */
    memcpy(ring + (size_t)(*pos) * (size_t)frame, in, (size_t)frame * sizeof(float));
    if (*count < p->capacity) *count += 1;
    for (i = 0; i < p->frames; ++i) {
        const int32_t age = p->delay + p->step * (p->frames - 1 - i);
        const float* src = 0;
        if (age < *count) src = ring + (size_t)((*pos - age + p->capacity) % p->capacity) * (size_t)frame;
        else if (p->fill) src = p->fill;
        for (o = 0; o < p->outer; ++o) {
            float* dst = out + ((size_t)o * (size_t)p->frames + (size_t)i) * (size_t)p->inner;
            if (src) memcpy(dst, src + (size_t)o * (size_t)p->inner, (size_t)p->inner * sizeof(float));
            else memset(dst, 0, (size_t)p->inner * sizeof(float));
        }
    }
    *pos = (*pos + 1) % p->capacity;
}

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
