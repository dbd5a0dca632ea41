/* The keyword detector of kwsc/ir/op_detect.py (NOTE [Detector semantics] there), in the same float32 operations
 * and order as its numpy reference, so both fire on the same ticks: the window is re-summed in slot order each
 * tick (no running sum to drift), divided by the frames seen, the first largest active class is compared with its
 * threshold, and a detection holds the next `suppression` ticks quiet. No exp, no libm: bit-exact everywhere. */
#include <stddef.h>

#include "kwsc_runtime.h"

void kwsc_detector_step(const kwsc_detector_params* p, float* ring, int32_t* pos, int32_t* filled, int32_t* hold,
                        const float* x, float* out) {
    const int32_t classes = p->classes, window = p->window;
    float* slot = ring + (size_t)(*pos) * (size_t)classes;
    float best = -HUGE_VALF;
    int32_t best_class = -1, c, w, fire;
    for (c = 0; c < classes; ++c) slot[c] = x[c];
    *pos = *pos + 1 == window ? 0 : *pos + 1;
    if (*filled < window) ++*filled;
    for (c = 0; c < classes; ++c) {
        float sum, mean;
        if (!p->active[c]) continue;
        if (best_class < 0) best_class = c;
        sum = ring[c];
        for (w = 1; w < window; ++w) sum += ring[(size_t)w * (size_t)classes + (size_t)c];
        mean = sum / (float)*filled;
        if (mean > best) {  /* strict: the first largest wins; NaN never does */
            best = mean;
            best_class = c;
        }
    }
    fire = best_class >= 0 && best > p->thresholds[best_class] && *hold == 0;
    if (fire) {
        *hold = p->suppression;
    } else if (*hold > 0) {
        --*hold;
    }
    out[0] = fire ? (float)best_class : -1.0f;
    out[1] = best;
}
