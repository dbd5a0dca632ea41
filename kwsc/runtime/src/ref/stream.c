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
