/*
 * kwsc runtime: the portable C99 kernels that generated models call.
 *
 * Every kernel has one signature and two implementations that pass the same tests:
 *   src/ref/  plain, readable C99 (the meaning; never optimised);
 *   src/opt/  faster variants (multiple accumulators, GCC vector extensions) selected per target.
 * Kernels never allocate and never print; all buffers come from the caller (the model's static plan).
 * Element types: activations are float32, signals (VAD output, reset triggers) int32.
 */
#ifndef KWSC_RUNTIME_H
#define KWSC_RUNTIME_H

#include <math.h> /* HUGE_VALF: an unbounded Clip */
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ activations */
enum {
    KWSC_ACT_NONE = 0,
    KWSC_ACT_TANH = 1,
    KWSC_ACT_SIGMOID = 2,
    KWSC_ACT_RELU = 3,
    KWSC_ACT_HARD_SIGMOID = 4,
    KWSC_ACT_HARD_TANH = 5,
    KWSC_ACT_SOFTMAX = 6,     /* Dense only: over the whole output row */
    KWSC_ACT_LOG_SOFTMAX = 7  /* Dense only */
};

/* Unary elementwise ops. */
enum {
    KWSC_UN_LOG = 0, KWSC_UN_EXP, KWSC_UN_SQRT, KWSC_UN_ABS, KWSC_UN_NEG, KWSC_UN_SQUARE,
    KWSC_UN_TANH, KWSC_UN_SIGMOID, KWSC_UN_RELU, KWSC_UN_HARD_SIGMOID, KWSC_UN_LEAKY_RELU, KWSC_UN_HARD_SWISH,
    KWSC_UN_CLIP /* alpha = min, beta = max */
};

/* Binary elementwise ops. */
enum { KWSC_BIN_ADD = 0, KWSC_BIN_SUB, KWSC_BIN_MUL, KWSC_BIN_DIV, KWSC_BIN_MAX, KWSC_BIN_MIN, KWSC_BIN_POW };

float kwsc_activate(int32_t act, float x);
float kwsc_sigmoid(float x);
void kwsc_activate_vec(int32_t act, float* x, int32_t n); /* in place */
void kwsc_log_vec(const float* x, float* y, int32_t n);     /* y may be x */
void kwsc_unary(int32_t op, float alpha, float beta, const float* x, float* y, int32_t n);
/* y = a op b; na and nb are n or 1 (broadcast a scalar). */
void kwsc_binary(int32_t op, const float* a, int32_t na, const float* b, int32_t nb, float* y, int32_t n);
void kwsc_softmax(const float* x, float* y, int32_t rows, int32_t cols, int32_t log_form);
/* Softmax over the middle axis of [outer, n, inner] (y may be x). */
void kwsc_softmax_axis(const float* x, float* y, int32_t outer, int32_t n, int32_t inner, int32_t log_form);

void kwsc_copy_f32(const float* x, float* y, int32_t n);
void kwsc_copy_i32(const int32_t* x, int32_t* y, int32_t n);
void kwsc_zero_f32(float* x, int32_t n);
void kwsc_i32_to_f32(const int32_t* x, float* y, int32_t n);
void kwsc_f32_to_i32(const float* x, int32_t* y, int32_t n); /* truncates toward zero, as C casts */
int32_t kwsc_streq(const char* a, const char* b);

/* ------------------------------------------------------------------ tensors of up to KWSC_MAX_RANK axes */
#define KWSC_MAX_RANK 8
/* y = a op b with numpy broadcasting: y is dims[rank] (row-major), a and b are read at their strides per output
 * axis (0 on a broadcast axis). */
/* The outputs o in [*lo, *hi) (at most out) whose input position o*stride + start lies in [0, size): the
 * convolution kernels' bounds along one axis, computed once per run instead of tested per multiply. */
void kwsc_valid_range(int32_t out, int32_t stride, int32_t start, int32_t size, int32_t* lo, int32_t* hi);
void kwsc_binary_bcast(int32_t op, const float* a, const int32_t* a_strides, const float* b, const int32_t* b_strides,
                       float* y, int32_t rank, const int32_t* dims);
enum { KWSC_REDUCE_MEAN = 0, KWSC_REDUCE_MAX };
/* y = the mean or maximum of x (dims[rank]) over the axes with reduced[axis] != 0; y keeps the other axes. */
void kwsc_reduce(int32_t op, const float* x, float* y, int32_t rank, const int32_t* dims, const int32_t* reduced);
enum { KWSC_PAD_CONSTANT = 0, KWSC_PAD_REFLECT, KWSC_PAD_EDGE, KWSC_PAD_WRAP };
/* y = x (dims[rank]) padded by pads[begin_0 .. begin_{r-1}, end_0 .. end_{r-1}] (negative pads crop). */
void kwsc_pad(const float* x, float* y, int32_t rank, const int32_t* dims, const int32_t* pads, int32_t mode,
              float value);
/* y (dims[rank], row-major) = x read from `offset` at `strides` (elements, may be 0 or negative) per axis:
 * Transpose, Slice and Expand of computed tensors. */
void kwsc_copy_strided(const float* x, int64_t offset, const int32_t* strides, float* y, int32_t rank,
                       const int32_t* dims);
/* y[n, c, i] = x[n, c, i] * scale[c] + shift[c] (inference batch normalization). */
void kwsc_channel_affine(const float* x, float* y, const float* scale, const float* shift, int32_t outer,
                         int32_t channels, int32_t inner);

/* ------------------------------------------------------------------ matrices */
/* A row-major [rows, cols] matrix: float weights, or int8 weights with one float scale per row. */
typedef struct kwsc_mat {
    const float* f;      /* float weights, or 0 when quantized */
    const int8_t* q;     /* int8 weights (w = q * scale[row]) when f is 0 */
    const float* scale;  /* per-row scales of q */
    int32_t rows;
    int32_t cols;
} kwsc_mat;

/* y[i] = (accumulate ? y[i] : 0) + (bias ? bias[i] : 0) + row(row0 + i) . x, for i < nrows. */
void kwsc_matvec(const kwsc_mat* m, int32_t row0, int32_t nrows, const float* x, const float* bias,
                 float* y, int32_t accumulate);
/* Dense layer over `batch` rows of input: y = act(W x + b). */
void kwsc_dense(const kwsc_mat* w, const float* bias, int32_t act, const float* x, float* y, int32_t batch);

/* Conv over [N, C, D, H, W] (2-D: D = 1; 1-D: D = H = 1) with weights [M, C/group · KD · KH · KW] as rows (float, or
 * int8 with a scale per row: per output channel). */
typedef struct kwsc_conv_params {
    kwsc_mat w;
    const float* bias; /* [M] or 0 */
    int32_t batch, in_channels, in_d, in_h, in_w, out_channels, out_d, out_h, out_w;
    int32_t k_d, k_h, k_w, stride_d, stride_h, stride_w, dil_d, dil_h, dil_w, pad_front, pad_top, pad_left;
    int32_t group;
} kwsc_conv_params;
void kwsc_conv(const kwsc_conv_params* p, const float* x, float* y);
enum { KWSC_POOL_MAX = 0, KWSC_POOL_AVG, KWSC_POOL_AVG_WITH_PAD };
/* Max or average pooling of `planes` (N·C) [D, H, W] volumes; the average divides by the positions on the input
 * (KWSC_POOL_AVG) or on the input and its explicit pads (KWSC_POOL_AVG_WITH_PAD, ONNX count_include_pad). */
typedef struct kwsc_pool_params {
    int32_t planes, in_d, in_h, in_w, out_d, out_h, out_w;
    int32_t k_d, k_h, k_w, stride_d, stride_h, stride_w, dil_d, dil_h, dil_w;
    int32_t pad_front, pad_top, pad_left, pad_back, pad_bottom, pad_right;
    int32_t kind;
} kwsc_pool_params;
void kwsc_pool(const kwsc_pool_params* p, const float* x, float* y);

/* ------------------------------------------------------------------ int8 arithmetic (issue 18)
 * Weights int8 per row with a float scale per row; activations quantized per step and tensor (symmetric int8);
 * int32 accumulation; float gate math. The exact meaning (rounding, operation order) is kwsc/ir/quantized.py's
 * NOTE [int8 arithmetic]; quant.c is compiled without FMA contraction so its float steps round like numpy's. */
typedef struct kwsc_qmat {
    const int8_t* q;     /* layout 0: [rows, cols] row-major; layout 1: row pairs (see kwsc_qmat_rows) */
    const float* scale;  /* [rows]: w = q * scale[row] / col[column] */
    const float* col;    /* [cols] column equalization (the vector is multiplied by it before rounding), or 0 */
    int32_t rows;
    int32_t cols;
    int32_t layout;      /* 0 row-major; 1 the Cortex-M4's row pairs (word aligned; kwsc/backends/c/quantize.py
                            pack_row_pairs, NOTE [Row pairs in one SMLAD] in src/opt/qdot.c); 2 x86 row octets
                            (pack_row_octets, NOTE [Row octets] in src/opt/qdot.c) */
} kwsc_qmat;
/* acc[i] = sum_j w[i * cols + j] * x[j] for i < nrows, in int32 (exact). Per-target variants (src/opt/qdot.c):
 * AVX2 vpmaddubsw/vpmaddwd, AVX-512 VNNI / AVX-VNNI vpdpbusd, NEON sdot, NEON smlal/vmlal.s8, Cortex-M4 SMLAD. */
void kwsc_qdot_rows(const int8_t* w, int32_t cols, int32_t nrows, const int8_t* x, int32_t* acc);
/* acc[i] = row (row0 + i) of m . x for i < nrows, int32 (exact), in either layout (layout 0: kwsc_qdot_rows). */
void kwsc_qmat_rows(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, int32_t* acc);
/* The int8 weight at (row, col) of a layout-1 or layout-2 matrix (plain C; the kernels' fallback and tests). */
int32_t kwsc_qpair_weight(const kwsc_qmat* m, int32_t row, int32_t col);
/* kwsc_qmat_rows the plain way (src/ref/quant.c): layout 0 through kwsc_qdot_rows, packed layouts weight by weight. */
void kwsc_qmat_rows_plain(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, int32_t* acc);
/* q = round(x' / s) clamped to +-127 (half away from zero), x' = x * col (col 0: x' = x); s = fixed_scale when
 * > 0, else max|x'| / 127. Returns s. */
float kwsc_quantize_s8(const float* x, int32_t n, float fixed_scale, const float* col, int8_t* q);
/* The float steps, per target (src/ref/qdot.c plain; src/opt/qdot.c vectorised where the vector unit rounds as
 * float32 scalar code does): peak = max_j |x'_j|; q_j = round(x'_j * inv) as kwsc_quantize_s8; and
 * y[k] (+)= float(acc[k]) * (scale[k] * x_scale) + (bias ? bias[k] : 0). The _ref versions (src/ref/quant.c) are
 * the plain reference code the others fall back to. */
float kwsc_qpeak(const float* x, int32_t n, const float* col);
void kwsc_qround(const float* x, int32_t n, const float* col, float inv, int8_t* q);
void kwsc_qdequant(const int32_t* acc, int32_t n, const float* scale, float x_scale, const float* bias, float* y,
                   int32_t accumulate);
/* The GRU's element-wise steps: a[j] = a[j] + b[j] * c[j]; out[j] = cand[j] + z[j] * (h[j] - cand[j]), h = out. */
void kwsc_qmuladd(float* a, const float* b, const float* c, int32_t n);
void kwsc_qblend(const float* z, const float* cand, float* h, float* out, int32_t n);
void kwsc_qmuladd_ref(float* a, const float* b, const float* c, int32_t n);
void kwsc_qblend_ref(const float* z, const float* cand, float* h, float* out, int32_t n);
float kwsc_qpeak_ref(const float* x, int32_t n, const float* col);
void kwsc_qround_ref(const float* x, int32_t n, const float* col, float inv, int8_t* q);
void kwsc_qdequant_ref(const int32_t* acc, int32_t n, const float* scale, float x_scale, const float* bias,
                       float* y, int32_t accumulate);
/* v = float(acc_i) * (scale[row0 + i] * x_scale) + (bias ? bias[i] : 0), acc_i = row (row0 + i) . x;
 * y[i] = accumulate ? y[i] + v : v. */
void kwsc_qmatvec(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, float x_scale,
                  const float* bias, float* y, int32_t accumulate);
#if defined(__aarch64__)
/* kwsc_qmatvec's first rows, products and dequantization fused (eight-row groups, src/opt/qdot.c NOTE
 * [Dequantizing in the row loop]; src/ref/qdot.c's does none); returns how many rows it did. AArch64 only: the
 * other targets' vector units flush denormals (ARMv7) or have no such loop. */
int32_t kwsc_qmatvec_fused(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, float x_scale,
                           const float* bias, float* y, int32_t accumulate);
#endif
typedef struct kwsc_qdense_params {
    kwsc_qmat w;
    const float* bias;   /* [rows] or 0 */
    int32_t act;
    float input_scale;   /* 0: per step at run time */
} kwsc_qdense_params;
/* scratch: (cols + 3) / 4 floats (the quantized input). */
void kwsc_qdense(const kwsc_qdense_params* p, const float* x, float* y, int32_t batch, float* scratch);
typedef struct kwsc_qrnn_params {
    kwsc_qmat w;              /* input weights [G*H, I] (gate order as kwsc_rnn_params) */
    kwsc_qmat r;              /* hidden weights [G*H, H] */
    const float* bias_input;  /* [G*H] */
    const float* bias_hidden; /* [G*H] */
    int32_t hidden;
    int32_t act;
    int32_t rec_act;
    int32_t linear_before_reset;
    float input_scale;        /* 0: per step at run time */
    float hidden_scale;       /* 0: per step at run time */
} kwsc_qrnn_params;
/* scratch: G*H (+ H for a GRU) + (I + H + 3) / 4 floats. */
void kwsc_qgru_step(const kwsc_qrnn_params* p, const float* x, float* h, float* scratch, float* out);
void kwsc_qlstm_step(const kwsc_qrnn_params* p, const float* x, float* h, float* c, float* scratch,
                     float* out_h, float* out_c);
void kwsc_qrnn_step(const kwsc_qrnn_params* p, const float* x, float* h, float* scratch, float* out);
/* Conv in int8 arithmetic (QConv, src/ref/qconv.c): the input tensor rounded with one scale per call (after the
 * input channel equalization ch), int8 weight rows per output channel, exact int32 window sums,
 * y = float(acc) * (scale[m] * s) + bias[m] (float32, or float16 widened exactly). Geometry as kwsc_conv_params. */
typedef struct kwsc_qconv_params {
    const int8_t* q;     /* [M, C/group * KD*KH*KW]: columns in (tap, channel) order */
    const float* scale;  /* [M] */
    const float* ch;     /* [C] input channel equalization (x' = x * ch[c]), or 0 */
    const float* bias;   /* [M] or 0 */
    const uint16_t* bias_half; /* [M] IEEE float16 bits (when bias is 0), or 0 */
    int32_t batch, in_channels, in_d, in_h, in_w, out_channels, out_d, out_h, out_w;
    int32_t k_d, k_h, k_w, stride_d, stride_h, stride_w, dil_d, dil_h, dil_w, pad_front, pad_top, pad_left;
    int32_t group;
    float input_scale;   /* 0: per call at run time */
} kwsc_qconv_params;
/* scratch: (N*C*D*H*W + 3) / 4 floats (the int8 input), then depthwise (C/group = 1): out plane int32; else
 * (C/group*KD*KH*KW + 3) / 4 + M/group. */
void kwsc_qconv(const kwsc_qconv_params* p, const float* x, float* y, float* scratch);

/* ------------------------------------------------------------------ recurrent cells */
typedef struct kwsc_rnn_params {
    kwsc_mat w;               /* input weights [G*H, I], ELL gate order: GRU z,r,n; LSTM i,f,g,o (only its
                               * sizes when tiles is set: the weights are there) */
    kwsc_mat r;               /* hidden weights [G*H, H] (sizes only when tiles is set) */
    const float* bias_input;  /* [G*H] */
    const float* bias_hidden; /* [G*H] */
    int32_t hidden;
    int32_t act;              /* candidate / output activation (tanh) */
    int32_t rec_act;          /* gate activation (sigmoid) */
    int32_t linear_before_reset;
    const float* tiles;       /* W and R tiled (below): what the cells read */
} kwsc_rnn_params;

/* Tiled recurrent weights (NOTE [Tiled recurrent weights] in kwsc/backends/c/packing.py): the hidden units in
 * blocks of KWSC_TILE_ROWS / G; per block a tile of its G gates' W rows (gate by gate, then unit), then a tile of
 * its R rows (a GRU without linear_before_reset: z and r only; the n rows follow all blocks, a tile of
 * KWSC_TILE_ROWS / 3 rows per block). A tile of n rows over c columns stores KWSC_TILE_COLS columns of each row in
 * turn, then the next KWSC_TILE_COLS: ceil(c / KWSC_TILE_COLS) * n * KWSC_TILE_COLS floats, zero-padded. */
#define KWSC_TILE_ROWS 12
#define KWSC_TILE_COLS 8
/* sums[i] = row i of the tile at w (rows of cols columns, rows <= KWSC_TILE_ROWS) . x, for i < rows. */
void kwsc_tile_dot(const float* w, int32_t cols, const float* x, int32_t rows, float* sums);

/* One step; h is the state (updated); out receives h'. scratch: 3H (GRU) / 4H (LSTM) floats. */
void kwsc_gru_step(const kwsc_rnn_params* p, const float* x, float* h, float* scratch, float* out);
void kwsc_lstm_step(const kwsc_rnn_params* p, const float* x, float* h, float* c, float* scratch,
                    float* out_h, float* out_c);
void kwsc_rnn_step(const kwsc_rnn_params* p, const float* x, float* h, float* out);
/* A recurrent layer over a whole window [steps, in_size] from a zero state (the stream pass's rnn=window): every
 * step's h to seq [steps, H]; the last h and c to last_h and last_c (0: not wanted). work: 6H floats. */
enum { KWSC_CELL_GRU = 0, KWSC_CELL_LSTM = 1, KWSC_CELL_RNN = 2 };
void kwsc_rnn_sequence(int32_t cell, const kwsc_rnn_params* p, const float* x, int32_t steps, int32_t in_size,
                       float* work, float* seq, float* last_h, float* last_c);
/* ELL's reset trigger: 1 when the trigger goes non-zero -> 0; remembers `now` in *prev. */
int32_t kwsc_trigger_fired(int32_t* prev, int32_t now);

/* ------------------------------------------------------------------ streaming (the stream pass) */
/* History: a ring of `capacity` frames of outer*inner floats (a frame is [outer, 1, inner] around the time
 * axis). Each call stores `in` as the newest frame and writes `frames` frames to out ([outer, frames, inner]),
 * oldest first: frame i is delay + step*(frames-1-i) calls old; frames older than the calls since the reset
 * (`count`) are `fill` (zeros when fill is 0). ring, pos and count are the state (zero after reset). */
typedef struct kwsc_history_params {
    int32_t capacity, outer, inner, frames, step, delay;
    const float* fill;
} kwsc_history_params;
void kwsc_history(const kwsc_history_params* p, float* ring, int32_t* pos, int32_t* count, const float* in,
                  float* out);

/* ------------------------------------------------------------------ featurizer */
/* Sliding window: shift left by n, append x (n <= size). */
void kwsc_buffer(float* window, int32_t size, const float* x, int32_t n);
/* Real FFT magnitudes |X[k]|, k = 0..nfft/2. */
typedef struct kwsc_fft_plan {
    int32_t nfft;              /* power of 2, >= 4 */
    const float* twiddles;     /* nfft/2 complex (cos, -sin) pairs: exp(-2 pi i k / nfft) */
    const uint16_t* bitrev;    /* nfft/2 bit-reversal permutation of the half-size complex FFT */
} kwsc_fft_plan;
/* work: nfft floats (may be `in` itself when the caller no longer needs it and n_in >= nfft). */
void kwsc_rfft_mag(const kwsc_fft_plan* plan, const float* in, int32_t n_in, float* work, float* out);
/* Sparse filter bank: y[f] = sum_j weights[off_f + j] * x[start[f] + j], j < length[f]. */
void kwsc_filterbank(const int16_t* start, const int16_t* length, const float* weights, int32_t nfilters,
                     const float* x, float* y);
/* IIR over the sample stream (at most KWSC_IIR_MAX taps each side); histories: most recent last. */
#define KWSC_IIR_MAX 8
void kwsc_iir(const double* b, int32_t nb, const double* a, int32_t na, float* x_hist, float* y_hist,
              const float* x, float* y, int32_t n);

/* ------------------------------------------------------------------ voice activity detector */
typedef struct kwsc_vad_params {
    const float* weights;  /* C-message weights, one per input */
    int32_t size;
    float frame_duration, tau_up, tau_down, large_input, gain_att;
    float threshold_up, threshold_down, level_threshold;
} kwsc_vad_params;
typedef struct kwsc_vad_state {
    int64_t frame;
    float floor;
    float last_time;
    int32_t signal;
} kwsc_vad_state;
void kwsc_vad_reset(kwsc_vad_state* s);
void kwsc_vad_step(const kwsc_vad_params* p, kwsc_vad_state* s, const float* x, int32_t* out);

/* ------------------------------------------------------------------ keyword detector (kwsc/ir/op_detect.py) */
typedef struct kwsc_detector_params {
    const float* thresholds;  /* per class */
    const uint8_t* active;    /* per class: 0 = ignored (never fires) */
    int32_t classes, window, suppression;
} kwsc_detector_params;
/* One tick: ring[window][classes] smoothing window, pos/filled/hold counters (all zero after reset);
 * out[0] = class that fired or -1, out[1] = its smoothed posterior. */
void kwsc_detector_step(const kwsc_detector_params* p, float* ring, int32_t* pos, int32_t* filled, int32_t* hold,
                        const float* x, float* out);

#ifdef __cplusplus
}
#endif
#endif /* KWSC_RUNTIME_H */
