/* ELL's voice-activity detector in float32 (ell-behaviour.md §2.3).
 * The level is summed in numpy's pairwise order so the thresholds flip on exactly the reference's frames. */
#include "kwsc_runtime.h"

static float pairwise_sum(const float* a, int32_t n) {
    int32_t i, j;
    if (n < 8) {
        float r = 0.0f;
        for (i = 0; i < n; ++i) r += a[i];
        return r;
    }
    if (n <= 128) {
        float r[8], res;
        for (j = 0; j < 8; ++j) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8) {
            for (j = 0; j < 8; ++j) r[j] += a[i + j];
        }
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += a[i];
        return res;
    } else {
        int32_t n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
    }
}

void kwsc_vad_reset(kwsc_vad_state* s) {
    s->frame = 0;
    s->floor = 0.1f;
    s->last_time = 0.0f;
    s->signal = 0;
}

void kwsc_vad_step(const kwsc_vad_params* p, kwsc_vad_state* s, const float* x, int32_t* out) {
    float weighted[128];
    float level = 0.0f, t, dt, d, floor_new;
    int32_t i;
    /* numpy sums up to 128 products with 8 accumulators; longer inputs are summed in order (thresholds are
     * far from rounding there). */
    if (p->size <= 128) {
        for (i = 0; i < p->size; ++i) weighted[i] = x[i] * p->weights[i];
        level = pairwise_sum(weighted, p->size);
    } else {
        for (i = 0; i < p->size; ++i) level += x[i] * p->weights[i];
    }
    level = level / (float)p->size;
    t = (float)s->frame * p->frame_duration;
    s->frame += 1;
    dt = t - s->last_time;
    d = level - s->floor;
    if (level < s->floor) {
        floor_new = s->floor + (dt / p->tau_down) * d;
        floor_new = floor_new > level ? floor_new : level;
    } else if (level > p->large_input * s->floor) {
        floor_new = s->floor + p->gain_att * (dt / p->tau_up) * d;
        floor_new = floor_new < level ? floor_new : level;
    } else {
        floor_new = s->floor + (dt / p->tau_up) * d;
        floor_new = floor_new < level ? floor_new : level;
    }
    s->floor = floor_new;
    if (level > p->threshold_up * floor_new && level > p->level_threshold) s->signal = 1;
    if (level < p->threshold_down * floor_new) s->signal = 0;
    s->last_time = t;
    out[0] = s->signal;
}
