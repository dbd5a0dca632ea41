/* Kernels over whole row-major tensors of up to KWSC_MAX_RANK axes: reductions, padding, per-channel affine maps
 * (reference C99; each walks its output or input once with an index counter). */
#include "kwsc_runtime.h"

void kwsc_reduce(int32_t op, const float* x, float* y, int32_t rank, const int32_t* dims, const int32_t* reduced) {
    int32_t idx[KWSC_MAX_RANK], out_stride[KWSC_MAX_RANK];
    int64_t in_size = 1, out_size = 1, i, o = 0;
    int32_t a;
    for (a = rank - 1; a >= 0; --a) {
        out_stride[a] = reduced[a] ? 0 : (int32_t)out_size;
        out_size *= reduced[a] ? 1 : dims[a];
        in_size *= dims[a];
        idx[a] = 0;
    }
    for (i = 0; i < out_size; ++i) y[i] = op == KWSC_REDUCE_MAX ? -HUGE_VALF : 0.0f;
    for (i = 0; i < in_size; ++i) {
        const float v = x[i];
        if (op == KWSC_REDUCE_MAX) {
            y[o] = v > y[o] ? v : y[o];
        } else {
            y[o] += v;
        }
        for (a = rank - 1; a >= 0; --a) { /* next input index; the output offset follows */
            o += out_stride[a];
            if (++idx[a] < dims[a]) break;
            o -= (int64_t)out_stride[a] * dims[a];
            idx[a] = 0;
        }
    }
    if (op == KWSC_REDUCE_MEAN) {
        const float count = (float)(in_size / (out_size > 0 ? out_size : 1));
        for (i = 0; i < out_size; ++i) y[i] /= count;
    }
}

/* The source index of output index `o` on an axis of `size` input elements that starts `begin` pads in. */
static int32_t pad_source(int32_t o, int32_t begin, int32_t size, int32_t mode) {
    int32_t i = o - begin;
    if (i >= 0 && i < size) return i;
    switch (mode) {
    case KWSC_PAD_REFLECT:
        i = i < 0 ? -i : 2 * (size - 1) - i;
        return i;
    case KWSC_PAD_EDGE: return i < 0 ? 0 : size - 1;
    case KWSC_PAD_WRAP: return ((i % size) + size) % size;
    default: return -1; /* constant */
    }
}

void kwsc_pad(const float* x, float* y, int32_t rank, const int32_t* dims, const int32_t* pads, int32_t mode,
              float value) {
    int32_t idx[KWSC_MAX_RANK], out_dims[KWSC_MAX_RANK], in_stride[KWSC_MAX_RANK];
    int64_t out_size = 1, stride = 1, i;
    int32_t a;
    for (a = rank - 1; a >= 0; --a) {
        out_dims[a] = dims[a] + pads[a] + pads[rank + a];
        in_stride[a] = (int32_t)stride;
        stride *= dims[a];
        out_size *= out_dims[a];
        idx[a] = 0;
    }
    for (i = 0; i < out_size; ++i) {
        int64_t at = 0;
        for (a = 0; a < rank; ++a) {
            const int32_t s = pad_source(idx[a], pads[a], dims[a], mode);
            if (s < 0) {
                at = -1;
                break;
            }
            at += (int64_t)s * in_stride[a];
        }
        y[i] = at < 0 ? value : x[at];
        for (a = rank - 1; a >= 0; --a) {
            if (++idx[a] < out_dims[a]) break;
            idx[a] = 0;
        }
    }
}

void kwsc_channel_affine(const float* x, float* y, const float* scale, const float* shift, int32_t outer,
                         int32_t channels, int32_t inner) {
    int32_t n, c, i;
    for (n = 0; n < outer; ++n) {
        for (c = 0; c < channels; ++c) {
            const float* xc = x + ((int64_t)n * channels + c) * inner;
            float* yc = y + ((int64_t)n * channels + c) * inner;
            for (i = 0; i < inner; ++i) yc[i] = xc[i] * scale[c] + shift[c];
        }
    }
}

void kwsc_copy_strided(const float* x, int64_t offset, const int32_t* strides, float* y, int32_t rank,
                       const int32_t* dims) {
    int32_t idx[KWSC_MAX_RANK], a;
    int64_t size = 1, i, at = offset;
    for (a = 0; a < rank; ++a) {
        size *= dims[a];
        idx[a] = 0;
    }
    for (i = 0; i < size; ++i) {
        y[i] = x[at];
        for (a = rank - 1; a >= 0; --a) {
            at += strides[a];
            if (++idx[a] < dims[a]) break;
            at -= (int64_t)strides[a] * dims[a];
            idx[a] = 0;
        }
    }
}
