/* Elementwise kernels: unary and binary math, softmax, copies and casts (reference C99). */
#include <math.h>

#include "kwsc_runtime.h"

void kwsc_unary(int32_t op, float alpha, float beta, const float* x, float* y, int32_t n) {
    int32_t i;
    if (op == KWSC_UN_LOG) { /* the featurizer's log: a vector kernel (see activation.c) */
        kwsc_log_vec(x, y, n);
        return;
    }
    for (i = 0; i < n; ++i) {
        float v = x[i];
        switch (op) {
        case KWSC_UN_EXP: v = expf(v); break;
        case KWSC_UN_SQRT: v = sqrtf(v); break;
        case KWSC_UN_ABS: v = fabsf(v); break;
        case KWSC_UN_NEG: v = -v; break;
        case KWSC_UN_SQUARE: v = v * v; break;
        case KWSC_UN_TANH: v = tanhf(v); break;
        case KWSC_UN_SIGMOID: v = kwsc_sigmoid(v); break;
        case KWSC_UN_RELU: v = v > 0.0f ? v : 0.0f; break;
        case KWSC_UN_HARD_SIGMOID:
            v = alpha * v + beta;
            v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
            break;
        case KWSC_UN_LEAKY_RELU: v = v >= 0.0f ? v : alpha * v; break;
        case KWSC_UN_CLIP: /* ONNX: min > max gives max */
            v = v < alpha ? alpha : v;
            v = v > beta ? beta : v;
            break;
        case KWSC_UN_HARD_SWISH: {
            float gate = v / 6.0f + 0.5f;
            v = v * (gate < 0.0f ? 0.0f : (gate > 1.0f ? 1.0f : gate));
            break;
        }
        default: break;
        }
        y[i] = v;
    }
}

/* One loop per operation and broadcast case, so each is a plain loop the compiler can vectorise. */
#define KWSC_BINARY_LOOPS(EXPR)                                          \
    if (na == n && nb == n) {                                            \
        for (i = 0; i < n; ++i) { const float u = a[i], v = b[i]; y[i] = EXPR; } \
    } else if (nb == 1) {                                                \
        const float v = b[0];                                            \
        for (i = 0; i < n; ++i) { const float u = a[i]; y[i] = EXPR; }   \
    } else {                                                             \
        const float u = a[0];                                            \
        for (i = 0; i < n; ++i) { const float v = b[i]; y[i] = EXPR; }   \
    }

/* The binary operations, each as LOOP(expression of u and v): one list for every loop shape below. */
#define KWSC_BINARY_SWITCH(LOOP)                    \
    switch (op) {                                   \
    case KWSC_BIN_ADD: LOOP(u + v) break;           \
    case KWSC_BIN_SUB: LOOP(u - v) break;           \
    case KWSC_BIN_MUL: LOOP(u * v) break;           \
    case KWSC_BIN_DIV: LOOP(u / v) break;           \
    case KWSC_BIN_MAX: LOOP(u > v ? u : v) break;   \
    case KWSC_BIN_MIN: LOOP(u < v ? u : v) break;   \
    default: LOOP(powf(u, v)) break;                \
    }

void kwsc_binary(int32_t op, const float* a, int32_t na, const float* b, int32_t nb, float* y, int32_t n) {
    int32_t i;
    KWSC_BINARY_SWITCH(KWSC_BINARY_LOOPS)
}

/* One run of n outputs with strides sa, sb (0: broadcast), the operation chosen once outside the loop. */
static void binary_run(int32_t op, const float* a, int32_t sa, const float* b, int32_t sb, float* y, int32_t n) {
    int32_t i;
#define KWSC_BINARY_RUN(EXPR) for (i = 0; i < n; ++i) { const float u = a[i * sa], v = b[i * sb]; y[i] = EXPR; }
    KWSC_BINARY_SWITCH(KWSC_BINARY_RUN)
#undef KWSC_BINARY_RUN
}

void kwsc_binary_bcast(int32_t op, const float* a, const int32_t* a_strides, const float* b, const int32_t* b_strides,
                       float* y, int32_t rank, const int32_t* dims) {
    int32_t idx[KWSC_MAX_RANK], k;
    int64_t oa = 0, ob = 0, rows = 1, r;
    const int32_t last = rank - 1, n = dims[last];
    for (k = 0; k < last; ++k) {
        rows *= dims[k];
        idx[k] = 0;
    }
    for (r = 0; r < rows; ++r) { /* one run along the last axis per index of the others */
        binary_run(op, a + oa, a_strides[last], b + ob, b_strides[last], y + r * n, n);
        for (k = last - 1; k >= 0; --k) {
            oa += a_strides[k];
            ob += b_strides[k];
            if (++idx[k] < dims[k]) break;
            oa -= (int64_t)a_strides[k] * dims[k];
            ob -= (int64_t)b_strides[k] * dims[k];
            idx[k] = 0;
        }
    }
}

void kwsc_softmax_axis(const float* x, float* y, int32_t outer, int32_t n, int32_t inner, int32_t log_form) {
    int32_t o, j, i;
    if (inner == 1) {
        kwsc_softmax(x, y, outer, n, log_form);
        return;
    }
    for (o = 0; o < outer; ++o) {
        for (j = 0; j < inner; ++j) { /* the n values x[base + i·inner] */
            const float* xr = x + (int64_t)o * n * inner + j;
            float* yr = y + (int64_t)o * n * inner + j;
            float m = xr[0], sum = 0.0f;
            for (i = 1; i < n; ++i) m = xr[i * inner] > m ? xr[i * inner] : m;
            for (i = 0; i < n; ++i) sum += expf(xr[i * inner] - m);
            if (log_form) {
                const float ls = logf(sum);
                for (i = 0; i < n; ++i) yr[i * inner] = xr[i * inner] - m - ls;
            } else {
                for (i = 0; i < n; ++i) yr[i * inner] = expf(xr[i * inner] - m) / sum;
            }
        }
    }
}

void kwsc_softmax(const float* x, float* y, int32_t rows, int32_t cols, int32_t log_form) {
    int32_t r, i;
    for (r = 0; r < rows; ++r) {
        const float* xr = x + (int64_t)r * cols;
        float* yr = y + (int64_t)r * cols;
        float m = xr[0], sum = 0.0f;
        for (i = 1; i < cols; ++i) m = xr[i] > m ? xr[i] : m;
        for (i = 0; i < cols; ++i) sum += expf(xr[i] - m);
        if (log_form) {
            float ls = logf(sum);
            for (i = 0; i < cols; ++i) yr[i] = xr[i] - m - ls;
        } else {
            for (i = 0; i < cols; ++i) yr[i] = expf(xr[i] - m) / sum;
        }
    }
}

void kwsc_copy_f32(const float* x, float* y, int32_t n) {
    int32_t i;
    if (x == y) return;
    for (i = 0; i < n; ++i) y[i] = x[i];
}

void kwsc_copy_i32(const int32_t* x, int32_t* y, int32_t n) {
    int32_t i;
    if (x == y) return;
    for (i = 0; i < n; ++i) y[i] = x[i];
}

void kwsc_zero_f32(float* x, int32_t n) {
    int32_t i;
    for (i = 0; i < n; ++i) x[i] = 0.0f;
}

void kwsc_i32_to_f32(const int32_t* x, float* y, int32_t n) {
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = (float)x[i];
}

void kwsc_f32_to_i32(const float* x, int32_t* y, int32_t n) {
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = (int32_t)x[i];
}

int32_t kwsc_streq(const char* a, const char* b) {
    while (*a && *a == *b) {
        ++a;
        ++b;
    }
    return *a == *b;
}

void kwsc_valid_range(int32_t out, int32_t stride, int32_t start, int32_t size, int32_t* lo, int32_t* hi) {
    int32_t a = start >= 0 ? 0 : (-start + stride - 1) / stride;
    int32_t b = size - start <= 0 ? 0 : (size - start + stride - 1) / stride;
    *lo = a;
    *hi = b < out ? b : out;
}
