/* Dense layer: y = act(W x + b) over `batch` rows of input. */
#include "kwsc_runtime.h"

void kwsc_dense(const kwsc_mat* w, const float* bias, int32_t act, const float* x, float* y, int32_t batch) {
    int32_t b;
    for (b = 0; b < batch; ++b) {
        const float* xb = x + (int64_t)b * w->cols;
        float* yb = y + (int64_t)b * w->rows;
        kwsc_matvec(w, 0, w->rows, xb, bias, yb, 0);
        if (act == KWSC_ACT_SOFTMAX || act == KWSC_ACT_LOG_SOFTMAX) {
            kwsc_softmax(yb, yb, 1, w->rows, act == KWSC_ACT_LOG_SOFTMAX);
        } else {
            kwsc_activate_vec(act, yb, w->rows);
        }
    }
}
