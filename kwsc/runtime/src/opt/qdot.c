/* int8 row dot products per target, chosen at build time by the compiler's flags (-march): the same results as
 * src/ref/qdot.c (integer arithmetic is exact); and the float steps of the int8 layers, vectorised bit-exactly
 * (NOTE [Exact float steps in vectors] below).
 *   x86-64:  AVX-512 VNNI or AVX-VNNI vpdpbusd; else AVX2 vpmaddubsw + vpmaddwd (|x| times w·sign(x): both
 *            instructions want unsigned × signed bytes; pairs stay below 2·127² < 2^15, no saturation); the
 *            emitter's layout-2 matrices (NOTE [Row octets]) with eight rows per vector and 64 rows per broadcast
 *            of x; row-major rows (kwsc_qdot_rows: QConv) four at a time
 *   aarch64: NEON sdot with +dotprod (-march=armv8.2-a+dotprod); else smull/smlal2 + sadalp; eight rows share
 *            each load of x, the whole matrix in one assembly loop; kwsc_qmatvec_fused dequantizes in it too
 *   armv7:   NEON vmull.s8/vmlal.s8 + vpadal.s16, the same loop (without the dequantization)
 *   Cortex-M4 (DSP extension): row-major rows with SXTB16 + SMLAD (kwsc_qdot_rows, three rows per pass), and the
 *            layout-1 matrices the emitter packs for it with two rows per SMLAD lane (kwsc_qmat_rows, NOTE [Row
 *            pairs in one SMLAD])
 *   anything else: plain C, four rows at a time. */
#include <string.h>

#include "kwsc_runtime.h"

/* The float steps below (kwsc_qpeak, kwsc_qround, kwsc_qdequant) must round exactly as the reference's float32
 * operations: no FMA contraction and no value-changing float optimisations, whatever KERNEL_CFLAGS say. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off", "no-unsafe-math-optimizations")
#endif

/* The row tails (cols not a multiple of the vector) and leftover rows, in plain C. */
static void tail_rows(const int8_t* w, int32_t cols, int32_t row_begin, int32_t row_end, int32_t col0,
                      const int8_t* x, int32_t* acc, int32_t add) {
    int32_t i, j;
    for (i = row_begin; i < row_end; ++i) {
        const int8_t* row = w + (int64_t)i * cols;
        int32_t s = add ? acc[i] : 0;
        for (j = col0; j < cols; ++j) s += (int32_t)row[j] * (int32_t)x[j];
        acc[i] = s;
    }
}

#if defined(__AVX2__)
#include <immintrin.h>

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define KWSC_DP256(acc, a, b) _mm256_dpbusd_epi32((acc), (a), (b))
#define KWSC_DP128(acc, a, b) _mm_dpbusd_epi32((acc), (a), (b))
#elif defined(__AVXVNNI__)
#define KWSC_DP256(acc, a, b) _mm256_dpbusd_avx_epi32((acc), (a), (b))
#define KWSC_DP128(acc, a, b) _mm_dpbusd_avx_epi32((acc), (a), (b))
#else
#define KWSC_DP256(acc, a, b) \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((a), (b)), _mm256_set1_epi16(1)))
#define KWSC_DP128(acc, a, b) _mm_add_epi32((acc), _mm_madd_epi16(_mm_maddubs_epi16((a), (b)), _mm_set1_epi16(1)))
#endif

void kwsc_qdot_rows(const int8_t* w, int32_t cols, int32_t nrows, const int8_t* x, int32_t* acc) {
    int32_t i = 0, j;
    for (; i + 4 <= nrows; i += 4) {
        const int8_t* w0 = w + (int64_t)i * cols;
        const int8_t* w1 = w0 + cols;
        const int8_t* w2 = w1 + cols;
        const int8_t* w3 = w2 + cols;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        __m128i b0 = _mm_setzero_si128(), b1 = b0, b2 = b0, b3 = b0, r;
        for (j = 0; j + 32 <= cols; j += 32) {
            const __m256i xv = _mm256_loadu_si256((const __m256i*)(x + j));
            const __m256i ax = _mm256_abs_epi8(xv);
            a0 = KWSC_DP256(a0, ax, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)(w0 + j)), xv));
            a1 = KWSC_DP256(a1, ax, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)(w1 + j)), xv));
            a2 = KWSC_DP256(a2, ax, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)(w2 + j)), xv));
            a3 = KWSC_DP256(a3, ax, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)(w3 + j)), xv));
        }
        for (; j + 16 <= cols; j += 16) {
            const __m128i xv = _mm_loadu_si128((const __m128i*)(x + j));
            const __m128i ax = _mm_abs_epi8(xv);
            b0 = KWSC_DP128(b0, ax, _mm_sign_epi8(_mm_loadu_si128((const __m128i*)(w0 + j)), xv));
            b1 = KWSC_DP128(b1, ax, _mm_sign_epi8(_mm_loadu_si128((const __m128i*)(w1 + j)), xv));
            b2 = KWSC_DP128(b2, ax, _mm_sign_epi8(_mm_loadu_si128((const __m128i*)(w2 + j)), xv));
            b3 = KWSC_DP128(b3, ax, _mm_sign_epi8(_mm_loadu_si128((const __m128i*)(w3 + j)), xv));
        }
        {
            /* four horizontal sums at once: [row0, row1, row2, row3] */
            const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
            const __m128i t = _mm_hadd_epi32(_mm_hadd_epi32(b0, b1), _mm_hadd_epi32(b2, b3));
            r = _mm_add_epi32(_mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)), t);
            _mm_storeu_si128((__m128i*)(acc + i), r);
        }
        if (j < cols) tail_rows(w, cols, i, i + 4, j, x, acc, 1);
    }
    tail_rows(w, cols, i, nrows, 0, x, acc, 0);
}

/* NOTE: [Row octets]
 * kwsc_qmat layout 2 (kwsc/backends/c/quantize.py pack_row_octets), the host's: rows in groups of eight, each group
 * a run of 32-byte blocks, one per four columns, byte 4r + c of block k = w[8g + r][4k + c]. One broadcast of
 * x[4k .. 4k+3] (and of its |x|) meets all eight rows of a block: vpsignb, vpmaddubsw, vpmaddwd leave row r's four
 * products summed in int32 lane r, so a group's accumulator holds its eight results — no horizontal sums — and
 * eight groups per pass read each broadcast of x once per 64 rows (row-major rows needed a load and an abs of x per
 * 32 columns of every four rows, and three vphaddd per four rows). Zero padding (rows to 8, columns to 4) adds
 * zero products. Per 32 multiply-accumulates: one 32-byte load and four vector operations, two of them on the
 * multiply pipes (Zen 3: vpmaddubsw and vpmaddwd each issue on two pipes) — and the 32 weight bytes from L2,
 * which feeds one 32-byte line part per cycle: both floors are one cycle per 32 products. */
#define KWSC_OCT_K 128 /* column groups of x prepared per block: 512 columns, 2 × 512 B of stack */
#define KWSC_OCT_STEP(a, off) a = KWSC_DP256(a, bax, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)(p + (off))), bx))

/* G row groups (a constant after inlining) over kn column groups; the eight sums of group i go to dst + 8 i, added
 * to what is there when `add` (the column blocks after the first). Stores straight from the registers: GCC made
 * a copy through an array into memcpy calls. */
static inline __attribute__((always_inline)) void oct_pass(const int8_t* p, int64_t gs, int32_t kn, const int32_t* xs,
                                                           const int32_t* xa, const int32_t G, int32_t* dst,
                                                           int32_t add) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    int32_t k;
#pragma GCC unroll 2
    for (k = 0; k < kn; ++k, p += 32) {
        const __m256i bx = _mm256_set1_epi32(xs[k]), bax = _mm256_set1_epi32(xa[k]);
        KWSC_OCT_STEP(a0, 0);
        if (G > 1) KWSC_OCT_STEP(a1, gs);
        if (G > 2) KWSC_OCT_STEP(a2, 2 * gs);
        if (G > 3) KWSC_OCT_STEP(a3, 3 * gs);
        if (G > 4) KWSC_OCT_STEP(a4, 4 * gs);
        if (G > 5) KWSC_OCT_STEP(a5, 5 * gs);
        if (G > 6) KWSC_OCT_STEP(a6, 6 * gs);
        if (G > 7) KWSC_OCT_STEP(a7, 7 * gs);
    }
#define KWSC_OCT_OUT(i, a)                                                                                   \
    if (G > i) {                                                                                             \
        __m256i* d = (__m256i*)(dst + 8 * i);                                                                \
        _mm256_storeu_si256(d, add ? _mm256_add_epi32(a, _mm256_loadu_si256(d)) : a);                        \
    }
    KWSC_OCT_OUT(0, a0) KWSC_OCT_OUT(1, a1) KWSC_OCT_OUT(2, a2) KWSC_OCT_OUT(3, a3)
    KWSC_OCT_OUT(4, a4) KWSC_OCT_OUT(5, a5) KWSC_OCT_OUT(6, a6) KWSC_OCT_OUT(7, a7)
#undef KWSC_OCT_OUT
}

/* The short copies below stay loops: as memcpy calls each cost a vzeroupper and a call. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static void qmat_octets(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, int32_t* acc) {
    const int32_t cols = m->cols, c4 = (cols + 3) / 4, end = row0 + nrows;
    const int64_t gs = (int64_t)c4 * 32;
    int32_t xs[KWSC_OCT_K] __attribute__((aligned(32)));
    int32_t xa[KWSC_OCT_K] __attribute__((aligned(32)));
    int32_t tmp[64] __attribute__((aligned(32)));
    int32_t g, i, kb;
    for (g = row0 / 8; 8 * g < end;) {
        const int32_t G = (end - 8 * g + 7) / 8 < 8 ? (end - 8 * g + 7) / 8 : 8;
        const int32_t whole = 8 * g >= row0 && 8 * (g + G) <= end; /* else a group cut by row0 or the end */
        int32_t* dst = whole ? acc + 8 * g - row0 : tmp;
        for (kb = 0; kb < c4 || kb == 0; kb += KWSC_OCT_K) { /* (no columns: one empty pass stores zeros) */
            const int32_t kn = c4 - kb < KWSC_OCT_K ? c4 - kb : KWSC_OCT_K;
            const int32_t bytes = (cols - 4 * kb < 4 * kn ? cols - 4 * kb : 4 * kn), padded = (4 * kn + 31) & ~31;
            const int8_t* p = m->q + (int64_t)g * gs + (int64_t)kb * 32;
            if (c4 > KWSC_OCT_K || g == row0 / 8) { /* x for this column block: as int32 words, and |x| */
                const int8_t* xb = x + 4 * kb;
                for (i = 0; 32 * i + 32 <= bytes; ++i) { /* whole vectors, then the bytes left, zero padded */
                    const __m256i v = _mm256_loadu_si256((const __m256i*)(xb + 32 * i));
                    _mm256_store_si256((__m256i*)xs + i, v);
                    _mm256_store_si256((__m256i*)xa + i, _mm256_abs_epi8(v));
                }
                if (32 * i < padded) {
                    int8_t last[32] __attribute__((aligned(32))) = {0};
                    const int8_t* src = xb + 32 * i;
                    int32_t left = bytes - 32 * i, at = 0; /* < 32: fixed-size copies (no libc call) */
                    __m256i v;
                    if (left & 16) memcpy(last, src, 16), at = 16;
                    if (left & 8) memcpy(last + at, src + at, 8), at += 8;
                    if (left & 4) memcpy(last + at, src + at, 4), at += 4;
                    for (; at < left; ++at) last[at] = src[at];
                    v = _mm256_load_si256((const __m256i*)last);
                    _mm256_store_si256((__m256i*)xs + i, v);
                    _mm256_store_si256((__m256i*)xa + i, _mm256_abs_epi8(v));
                }
            }
            switch (G) {
            case 8: oct_pass(p, gs, kn, xs, xa, 8, dst, kb > 0); break;
            case 7: oct_pass(p, gs, kn, xs, xa, 7, dst, kb > 0); break;
            case 6: oct_pass(p, gs, kn, xs, xa, 6, dst, kb > 0); break;
            case 5: oct_pass(p, gs, kn, xs, xa, 5, dst, kb > 0); break;
            case 4: oct_pass(p, gs, kn, xs, xa, 4, dst, kb > 0); break;
            case 3: oct_pass(p, gs, kn, xs, xa, 3, dst, kb > 0); break;
            case 2: oct_pass(p, gs, kn, xs, xa, 2, dst, kb > 0); break;
            default: oct_pass(p, gs, kn, xs, xa, 1, dst, kb > 0); break;
            }
        }
        if (!whole) {
            const int32_t lo = 8 * g > row0 ? 8 * g : row0, hi = 8 * (g + G) < end ? 8 * (g + G) : end;
            for (i = lo; i < hi; ++i) acc[i - row0] = tmp[i - 8 * g];
        }
        g += G;
    }
}

void kwsc_qmat_rows(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, int32_t* acc) {
    if (nrows <= 0) return;
    if (m->layout == 2) {
        qmat_octets(m, row0, nrows, x, acc);
        return;
    }
    kwsc_qmat_rows_plain(m, row0, nrows, x, acc);
}

#elif defined(__ARM_NEON)
#include <arm_neon.h>

#if defined(__aarch64__)
#define KWSC_HSUM(v) vaddvq_s32(v)
#else
static inline int32_t kwsc_hsum_s32(int32x4_t v) {
    int32x2_t t = vadd_s32(vget_low_s32(v), vget_high_s32(v));
    return vget_lane_s32(vpadd_s32(t, t), 0);
}
#define KWSC_HSUM(v) kwsc_hsum_s32(v)
#endif

#if defined(__ARM_FEATURE_DOTPROD)
#define KWSC_DOT16(acc, wv, xv) vdotq_s32((acc), (wv), (xv))
#else
/* two int8 products per int16 lane (|sum| <= 2·127² < 2^15), then pairwise into int32 */
#define KWSC_DOT16(acc, wv, xv) \
    vpadalq_s16((acc), vmlal_s8(vmull_s8(vget_low_s8(wv), vget_low_s8(xv)), vget_high_s8(wv), vget_high_s8(xv)))
#endif

/* The columns in assembly: GCC loaded the vectors one by one (LD1 of four registers made it spill the structure),
 * copied the int16 products between registers and spent ~30-45 instructions per group of rows on pointers and
 * sums. Per turn and row: AArch64 64 columns (LD1 of four registers): 4 SDOT, or 4 × (SMULL, SMLAL2, SADALP);
 * ARMv7 32 columns (VLD1 of four D registers): 2 × (VMULL.S8, VMLAL.S8, VPADAL.S16). The rows go in groups of
 * eight, the whole matrix in one assembly loop (groups8, qdot_groups8 below); leftover rows four at a time
 * (KWSC_TURNS_ASM, at least one turn), then one by one. */
#if defined(__aarch64__)
#define KWSC_TURN 64
/* one row's sixteen columns: sum a += w · x (t: a scratch register for the int16 pairs); op SADALP adds to a,
 * SADDLP (the first turn of a group) starts it */
#if defined(__ARM_FEATURE_DOTPROD)
#define KWSC_G1(a, w, xr, t, op) "sdot   " a ".4s, " w ".16b, " xr ".16b\n\t"
#define KWSC_GZERO \
    "movi   v0.4s, #0\n\t" "movi   v1.4s, #0\n\t" "movi   v2.4s, #0\n\t" "movi   v3.4s, #0\n\t" \
    "movi   v4.4s, #0\n\t" "movi   v5.4s, #0\n\t" "movi   v6.4s, #0\n\t" "movi   v7.4s, #0\n\t"
#define KWSC_GFIRST "" /* unused */
#else
#define KWSC_G1(a, w, xr, t, op) \
    "smull  " t ".8h, " w ".8b, " xr ".8b\n\t" \
    "smlal2 " t ".8h, " w ".16b, " xr ".16b\n\t" \
    op "  " a ".4s, " t ".8h\n\t"
#define KWSC_GZERO ""
#define KWSC_GFIRST "saddlp"
#endif
/* one row's 64 columns (weights in w0-w3, x in v16-v19) */
#define KWSC_G4(a, w0, w1, w2, w3, op) \
    KWSC_G1(a, w0, "v16", "v28", op) KWSC_G1(a, w1, "v17", "v29", "sadalp") \
    KWSC_G1(a, w2, "v18", "v30", "sadalp") KWSC_G1(a, w3, "v19", "v31", "sadalp")
#define KWSC_ROW4(a, w0, w1, w2, w3) KWSC_G4("%[" a "]", w0, w1, w2, w3, "sadalp")
#define KWSC_TURN_CLOBBERS "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", \
    "v29", "v30", "v31"
#define KWSC_TURNS_ASM \
        "1:\n\t" \
        "ld1    {v16.16b-v19.16b}, [%[x]], #64\n\t" \
        "ld1    {v20.16b-v23.16b}, [%[w0]], #64\n\t" \
        "ld1    {v24.16b-v27.16b}, [%[w1]], #64\n\t" \
        KWSC_ROW4("a0", "v20", "v21", "v22", "v23") \
        KWSC_ROW4("a1", "v24", "v25", "v26", "v27") \
        "ld1    {v20.16b-v23.16b}, [%[w2]], #64\n\t" \
        "ld1    {v24.16b-v27.16b}, [%[w3]], #64\n\t" \
        KWSC_ROW4("a2", "v20", "v21", "v22", "v23") \
        KWSC_ROW4("a3", "v24", "v25", "v26", "v27") \
        "subs   %[n], %[n], #1\n\t" \
        "b.ne   1b\n\t"
#else
#define KWSC_TURN 32
#define KWSC_ROW4(a, p) \
    "vld1.8     {d20-d23}, [%[" p "]]!\n\t" \
    "vmull.s8   q12, d20, d16\n\t" \
    "vmlal.s8   q12, d21, d17\n\t" \
    "vpadal.s16 %q[" a "], q12\n\t" \
    "vmull.s8   q13, d22, d18\n\t" \
    "vmlal.s8   q13, d23, d19\n\t" \
    "vpadal.s16 %q[" a "], q13\n\t"
#define KWSC_TURN_CLOBBERS "d16", "d17", "d18", "d19", "d20", "d21", "d22", "d23", "d24", "d25", "d26", "d27"
#define KWSC_TURNS_ASM \
        "1:\n\t" \
        "vld1.8     {d16-d19}, [%[x]]!\n\t" \
        KWSC_ROW4("a0", "w0") \
        KWSC_ROW4("a1", "w1") \
        KWSC_ROW4("a2", "w2") \
        KWSC_ROW4("a3", "w3") \
        "subs       %[n], %[n], #1\n\t" \
        "bne        1b\n\t"
#endif

#if defined(__aarch64__)
/* AArch64: all eight-row groups of a matrix in one assembly loop (cols ≥ 64): per group the turns of 64 columns,
 * then up to three halves of 16, the horizontal sums and the stores, or the dequantization (kwsc_qmatvec_fused,
 * NOTE [Dequantizing in the row loop]). Registers fixed: sums v0-v7 (row r in v<r>), x v16-v19, weights v20-v27,
 * products v28-v31 (all caller-saved). One pointer p walks the weights: `stride` (cols) from row to row, `back`
 * (64 - 7 cols) from the group's last row to its first row's next 64 columns, `back16` (16 - 7 cols) likewise
 * after a half, `next` to the next group's first row. */
#define KWSC_GTURN(op) \
    "ld1    {v16.16b-v19.16b}, [%[px]], #64\n\t" \
    "ld1    {v20.16b-v23.16b}, [%[p]], %[stride]\n\t" \
    "ld1    {v24.16b-v27.16b}, [%[p]], %[stride]\n\t" \
    KWSC_G4("v0", "v20", "v21", "v22", "v23", op) \
    KWSC_G4("v1", "v24", "v25", "v26", "v27", op) \
    "ld1    {v20.16b-v23.16b}, [%[p]], %[stride]\n\t" \
    "ld1    {v24.16b-v27.16b}, [%[p]], %[stride]\n\t" \
    KWSC_G4("v2", "v20", "v21", "v22", "v23", op) \
    KWSC_G4("v3", "v24", "v25", "v26", "v27", op) \
    "ld1    {v20.16b-v23.16b}, [%[p]], %[stride]\n\t" \
    "ld1    {v24.16b-v27.16b}, [%[p]], %[stride]\n\t" \
    KWSC_G4("v4", "v20", "v21", "v22", "v23", op) \
    KWSC_G4("v5", "v24", "v25", "v26", "v27", op) \
    "ld1    {v20.16b-v23.16b}, [%[p]], %[stride]\n\t" \
    "ld1    {v24.16b-v27.16b}, [%[p]], %[back]\n\t" \
    KWSC_G4("v6", "v20", "v21", "v22", "v23", op) \
    KWSC_G4("v7", "v24", "v25", "v26", "v27", op)
/* the turns after the first: none, one, or a loop of turns - 1 */
#define KWSC_GTWO KWSC_GTURN("sadalp")
#define KWSC_GLOOP \
    "subs   %[n], %[turns], #1\n\t" \
    "b.eq   2f\n\t" \
    "1:\n\t" \
    KWSC_GTURN("sadalp") \
    "subs   %[n], %[n], #1\n\t" \
    "b.ne   1b\n\t" \
    "2:\n\t"
#define KWSC_GH1(a, step) \
    "ld1    {v20.16b}, [%[p]], %[" step "]\n\t" \
    KWSC_G1(a, "v20", "v16", "v28", "sadalp")
#define KWSC_GHALF8 \
    "ld1    {v16.16b}, [%[px]], #16\n\t" \
    KWSC_GH1("v0", "stride") KWSC_GH1("v1", "stride") KWSC_GH1("v2", "stride") KWSC_GH1("v3", "stride") \
    KWSC_GH1("v4", "stride") KWSC_GH1("v5", "stride") KWSC_GH1("v6", "stride") KWSC_GH1("v7", "back16")
/* the halves: none or one (KWSC_GHALF1), or a loop of up to three */
#define KWSC_GHALF1 \
    "cbz    %[half], 4f\n\t" \
    KWSC_GHALF8 \
    "4:\n\t"
#define KWSC_GHALFN \
    "cbz    %[half], 4f\n\t" \
    "mov    %[n], %[half]\n\t" \
    "5:\n\t" \
    KWSC_GHALF8 \
    "subs   %[n], %[n], #1\n\t" \
    "b.ne   5b\n\t" \
    "4:\n\t"
/* After the columns: [Σ v0 .. Σ v3] in v0, [Σ v4 .. Σ v7] in v4; then either stored to acc (int32) or, with
 * acc = 0, dequantized: y = yin + (float(sum) * (scale * x_scale) + b), b from `bias` (or -0.0: see the note),
 * yin from y (accumulating) or -0.0. */
#define KWSC_GROUPS(rest, halves) \
    __asm__ volatile("3:\n\t" \
                     "mov    %[px], %[x]\n\t" \
                     KWSC_GZERO \
                     KWSC_GTURN(KWSC_GFIRST) \
                     rest \
                     halves \
                     "addp   v0.4s, v0.4s, v1.4s\n\t" \
                     "addp   v2.4s, v2.4s, v3.4s\n\t" \
                     "addp   v4.4s, v4.4s, v5.4s\n\t" \
                     "addp   v6.4s, v6.4s, v7.4s\n\t" \
                     "addp   v0.4s, v0.4s, v2.4s\n\t" \
                     "addp   v4.4s, v4.4s, v6.4s\n\t" \
                     "add    %[p], %[p], %[next]\n\t" \
                     "cbz    %[acc], 5f\n\t" \
                     "stp    q0, q4, [%[acc]], #32\n\t" \
                     "subs   %[g], %[g], #1\n\t" \
                     "b.ne   3b\n\t" \
                     "b      6f\n\t" \
                     "5:\n\t" \
                     "ld1    {v20.4s, v21.4s}, [%[scale]], #32\n\t" \
                     "scvtf  v0.4s, v0.4s\n\t" \
                     "scvtf  v4.4s, v4.4s\n\t" \
                     "fmul   v20.4s, v20.4s, %[vs].4s\n\t" \
                     "fmul   v21.4s, v21.4s, %[vs].4s\n\t" \
                     "ld1    {v22.4s, v23.4s}, [%[bias]], %[bstep]\n\t" \
                     "fmul   v0.4s, v0.4s, v20.4s\n\t" \
                     "fmul   v4.4s, v4.4s, v21.4s\n\t" \
                     "ld1    {v24.4s, v25.4s}, [%[yin]], %[ystep]\n\t" \
                     "fadd   v0.4s, v0.4s, v22.4s\n\t" \
                     "fadd   v4.4s, v4.4s, v23.4s\n\t" \
                     "fadd   v0.4s, v24.4s, v0.4s\n\t" \
                     "fadd   v4.4s, v25.4s, v4.4s\n\t" \
                     "stp    q0, q4, [%[y]], #32\n\t" \
                     "subs   %[g], %[g], #1\n\t" \
                     "b.ne   3b\n\t" \
                     "6:\n\t" \
                     : [p] "+r"(p), [acc] "+r"(acc), [g] "+r"(groups), [px] "=&r"(px), [n] "=&r"(n), \
                       [scale] "+r"(scale), [bias] "+r"(bias), [yin] "+r"(yin), [y] "+r"(y) \
                     : [x] "r"(x), [turns] "r"(turns), [half] "r"(half), [stride] "r"(stride), [back] "r"(back), \
                       [back16] "r"(back16), [next] "r"(next), [bstep] "r"(bstep), [ystep] "r"(ystep), \
                       [vs] "w"(vs) \
                     : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", KWSC_TURN_CLOBBERS)

/* ---------------------------------------------------------------------------------------------------------------
 * NOTE: [Dequantizing in the row loop]
 * kwsc_qmatvec_fused (AArch64) turns each group's eight int32 sums straight into kwsc_qdequant's floats instead of
 * storing them and reading them back: the same float32 operations in the same order (AArch64 NEON is IEEE, see
 * [Exact float steps in vectors]), so the same bits. To stay branch-free in the loop, a missing bias and a
 * non-accumulating y are an addition of -0.0, read from kwsc_negzero with a step of 0: x + (-0.0) is x for every
 * float32 x, -0.0 and +0.0 included (+0.0 would turn a -0.0 into +0.0), and the sum y + v is commutative. Only
 * matrices whose column count is a multiple of 16 are fused: otherwise the last columns' products are added to the
 * int32 sums after the loop (tail_rows), and the rows go through kwsc_qmat_rows and kwsc_qdequant. */
static const float kwsc_negzero[8] __attribute__((aligned(16))) = {-0.0f, -0.0f, -0.0f, -0.0f,
                                                                    -0.0f, -0.0f, -0.0f, -0.0f};

/* Eight-row groups [0, 8 · groups) of w (cols ≥ 64): int32 sums to acc (without the columns past
 * cols & ~15), or with acc = 0 dequantized into y as kwsc_qdequant does. */
static void groups8(const int8_t* w, int32_t cols, intptr_t groups, const int8_t* x, int32_t* acc,
                    const float* scale, float x_scale, const float* bias, float* y, int32_t accumulate) {
    const int8_t* p = w;
    const int8_t* px;
    const intptr_t turns = cols / 64, half = cols % 64 / 16, stride = cols;
    const intptr_t back = 64 - 7 * (intptr_t)cols, back16 = 16 - 7 * (intptr_t)cols;
    const intptr_t next = 7 * (intptr_t)cols + cols % 16;
    const intptr_t bstep = bias ? 32 : 0, ystep = accumulate ? 32 : 0;
    const float* yin = accumulate ? y : kwsc_negzero;
    const float32x4_t vs = vdupq_n_f32(x_scale);
    intptr_t n;
    if (!bias) bias = kwsc_negzero;
    if (turns == 1 && half <= 1) KWSC_GROUPS("", KWSC_GHALF1);
    else if (turns == 2 && half <= 1) KWSC_GROUPS(KWSC_GTWO, KWSC_GHALF1);
    else KWSC_GROUPS(KWSC_GLOOP, KWSC_GHALFN);
    (void)n;
}

/* rows [0, 8 · (nrows / 8)); returns the rows done (0: fewer than 64 columns or 8 rows) */
static int32_t qdot_groups8(const int8_t* w, int32_t cols, int32_t nrows, const int8_t* x, int32_t* acc) {
    const int32_t rows = nrows / 8 * 8;
    if (cols < 64 || rows == 0) return 0;
    groups8(w, cols, rows / 8, x, acc, 0, 0.0f, 0, 0, 0);
    if (cols % 16) tail_rows(w, cols, 0, rows, cols & ~15, x, acc, 1);
    return rows;
}

int32_t kwsc_qmatvec_fused(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, float x_scale,
                           const float* bias, float* y, int32_t accumulate) {
    const int32_t rows = nrows / 8 * 8, cols = m->cols;
    if (m->layout != 0 || cols < 64 || cols % 16 || rows == 0) return 0;
    groups8(m->q + (int64_t)row0 * cols, cols, rows / 8, x, 0, m->scale + row0, x_scale, bias, y, accumulate);
    return rows;
}
#else
/* ARMv7: the same group loop (see the AArch64 variant above), 32 columns per turn and a 16-column half: sums
 * q0-q7 (row r in q<r>; d8-d15 are callee-saved, GCC saves them), x d16-d19, weights d20-d23, products q12, q13.
 * The half's last row loads without writeback, so `next` takes p from (row 7, column 32 · turns) or (row 0,
 * column 32 · turns) to the next group's first row. */
#define KWSC7_ROW(a, step, op) \
    "vld1.8     {d20-d23}, [%[p]], %[" step "]\n\t" \
    "vmull.s8   q12, d20, d16\n\t" \
    "vmlal.s8   q12, d21, d17\n\t" \
    op "  " a ", q12\n\t" \
    "vmull.s8   q13, d22, d18\n\t" \
    "vmlal.s8   q13, d23, d19\n\t" \
    "vpadal.s16 " a ", q13\n\t"
#define KWSC7_TURN(op) \
    "vld1.8     {d16-d19}, [%[px]]!\n\t" \
    KWSC7_ROW("q0", "stride", op) KWSC7_ROW("q1", "stride", op) KWSC7_ROW("q2", "stride", op) \
    KWSC7_ROW("q3", "stride", op) KWSC7_ROW("q4", "stride", op) KWSC7_ROW("q5", "stride", op) \
    KWSC7_ROW("q6", "stride", op) KWSC7_ROW("q7", "back", op)
#define KWSC7_HROW(a, post) \
    "vld1.8     {d20-d21}, [%[p]]" post "\n\t" \
    "vmull.s8   q12, d20, d16\n\t" \
    "vmlal.s8   q12, d21, d17\n\t" \
    "vpadal.s16 " a ", q12\n\t"
#define KWSC7_HALF \
    "vld1.8     {d16-d17}, [%[px]]\n\t" \
    KWSC7_HROW("q0", ", %[stride]") KWSC7_HROW("q1", ", %[stride]") KWSC7_HROW("q2", ", %[stride]") \
    KWSC7_HROW("q3", ", %[stride]") KWSC7_HROW("q4", ", %[stride]") KWSC7_HROW("q5", ", %[stride]") \
    KWSC7_HROW("q6", ", %[stride]") KWSC7_HROW("q7", "")
#define KWSC7_GROUPS(half) \
    __asm__ volatile("3:\n\t" \
                     "mov        %[px], %[x]\n\t" \
                     KWSC7_TURN("vpaddl.s16") \
                     "subs       %[n], %[turns], #1\n\t" \
                     "beq        2f\n\t" \
                     "1:\n\t" \
                     KWSC7_TURN("vpadal.s16") \
                     "subs       %[n], %[n], #1\n\t" \
                     "bne        1b\n\t" \
                     "2:\n\t" \
                     half \
                     "vpadd.i32  d0, d0, d1\n\t" \
                     "vpadd.i32  d1, d2, d3\n\t" \
                     "vpadd.i32  d2, d4, d5\n\t" \
                     "vpadd.i32  d3, d6, d7\n\t" \
                     "vpadd.i32  d8, d8, d9\n\t" \
                     "vpadd.i32  d9, d10, d11\n\t" \
                     "vpadd.i32  d10, d12, d13\n\t" \
                     "vpadd.i32  d11, d14, d15\n\t" \
                     "vpadd.i32  d0, d0, d1\n\t" \
                     "vpadd.i32  d1, d2, d3\n\t" \
                     "vpadd.i32  d2, d8, d9\n\t" \
                     "vpadd.i32  d3, d10, d11\n\t" \
                     "vst1.32    {d0-d3}, [%[acc]]!\n\t" \
                     "add        %[p], %[p], %[next]\n\t" \
                     "subs       %[g], %[g], #1\n\t" \
                     "bne        3b\n\t" \
                     : [p] "+r"(p), [acc] "+r"(acc), [g] "+r"(groups), [px] "=&r"(px), [n] "=&r"(n) \
                     : [x] "r"(x), [turns] "r"(turns), [stride] "r"(stride), [back] "r"(back), [next] "r"(next) \
                     : "cc", "memory", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "d11", \
                       "d12", "d13", "d14", "d15", KWSC_TURN_CLOBBERS)

/* rows [0, 8 · (nrows / 8)); returns the rows done (0: fewer than 32 columns or 8 rows) */
static int32_t qdot_groups8(const int8_t* w, int32_t cols, int32_t nrows, const int8_t* x, int32_t* acc) {
    const int8_t* p = w;
    const int8_t* px;
    int32_t* out = acc;
    const int32_t turns = cols / 32, half = cols % 32 / 16, stride = cols, back = 32 - 7 * cols;
    const int32_t next = half ? cols - 32 * turns : 8 * cols - 32 * turns;
    const int32_t rows = nrows / 8 * 8;
    int32_t groups = rows / 8, n;
    if (cols < 32 || rows == 0) return 0;
    if (half) KWSC7_GROUPS(KWSC7_HALF);
    else KWSC7_GROUPS("");
    (void)n;
    if (cols % 16) tail_rows(w, cols, 0, rows, cols & ~15, x, out, 1);
    return rows;
}
#endif

/* [Σ a0, Σ a1, Σ a2, Σ a3] */
static inline int32x4_t kwsc_hsum4(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3) {
#if defined(__aarch64__)
    return vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
#else
    const int32x2_t s0 = vadd_s32(vget_low_s32(a0), vget_high_s32(a0));
    const int32x2_t s1 = vadd_s32(vget_low_s32(a1), vget_high_s32(a1));
    const int32x2_t s2 = vadd_s32(vget_low_s32(a2), vget_high_s32(a2));
    const int32x2_t s3 = vadd_s32(vget_low_s32(a3), vget_high_s32(a3));
    return vcombine_s32(vpadd_s32(s0, s1), vpadd_s32(s2, s3));
#endif
}

void kwsc_qdot_rows(const int8_t* w, int32_t cols, int32_t nrows, const int8_t* x, int32_t* acc) {
    int32_t i = qdot_groups8(w, cols, nrows, x, acc), j; /* the groups of eight rows, then four, then one */
    for (; i + 4 <= nrows; i += 4) {
        const int8_t* w0 = w + (int64_t)i * cols;
        const int8_t* w1 = w0 + cols;
        const int8_t* w2 = w1 + cols;
        const int8_t* w3 = w2 + cols;
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        j = 0;
        if (cols >= KWSC_TURN) {
            const int8_t *px = x, *p0 = w0, *p1 = w1, *p2 = w2, *p3 = w3;
            intptr_t turns = cols / KWSC_TURN;
            __asm__ volatile(KWSC_TURNS_ASM
                             : [a0] "+w"(a0), [a1] "+w"(a1), [a2] "+w"(a2), [a3] "+w"(a3), [x] "+r"(px),
                               [w0] "+r"(p0), [w1] "+r"(p1), [w2] "+r"(p2), [w3] "+r"(p3), [n] "+r"(turns)
                             :
                             : "cc", "memory", KWSC_TURN_CLOBBERS);
            j = cols / KWSC_TURN * KWSC_TURN;
        }
        for (; j + 16 <= cols; j += 16) {
            const int8x16_t xv = vld1q_s8(x + j);
            a0 = KWSC_DOT16(a0, vld1q_s8(w0 + j), xv);
            a1 = KWSC_DOT16(a1, vld1q_s8(w1 + j), xv);
            a2 = KWSC_DOT16(a2, vld1q_s8(w2 + j), xv);
            a3 = KWSC_DOT16(a3, vld1q_s8(w3 + j), xv);
        }
        vst1q_s32(acc + i, kwsc_hsum4(a0, a1, a2, a3));
        if (j < cols) tail_rows(w, cols, i, i + 4, j, x, acc, 1);
    }
    for (; i < nrows; ++i) { /* leftover rows one by one */
        const int8_t* row = w + (int64_t)i * cols;
        int32x4_t a = vdupq_n_s32(0);
        for (j = 0; j + 16 <= cols; j += 16) a = KWSC_DOT16(a, vld1q_s8(row + j), vld1q_s8(x + j));
        acc[i] = KWSC_HSUM(a);
        if (j < cols) tail_rows(w, cols, i, i + 1, j, x, acc, 1);
    }
}

#elif defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

static inline uint32_t load4(const int8_t* p) {
    uint32_t v;
    memcpy(&v, p, 4); /* one LDR: the M4 loads unaligned words */
    return v;
}

/* bytes 1 and 3 sign-extended to two int16 lanes (SXTB16 with its rotate, one instruction) */
static inline uint32_t sxtb16_odd(uint32_t v) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

#define KWSC_XBLOCK 256 /* columns of x expanded per block: 128 words (512 B) of stack */

/* One group of four columns for three rows: x (four int16 in two words) loaded once, each row's four int8
   weights sign-extended in pairs (SXTB16) and multiplied-accumulated (SMLAD). */
#define KWSC_SMLAD_GROUP4 \
    "ldrd   %[xe], %[xo], [%[px]], #8\n\t" \
    "ldr    %[wv], [%[p0]], #4\n\t" \
    "sxtb16 %[t], %[wv]\n\t" \
    "smlad  %[s0], %[t], %[xe], %[s0]\n\t" \
    "sxtb16 %[t], %[wv], ror #8\n\t" \
    "smlad  %[s0], %[t], %[xo], %[s0]\n\t" \
    "ldr    %[wv], [%[p1]], #4\n\t" \
    "sxtb16 %[t], %[wv]\n\t" \
    "smlad  %[s1], %[t], %[xe], %[s1]\n\t" \
    "sxtb16 %[t], %[wv], ror #8\n\t" \
    "smlad  %[s1], %[t], %[xo], %[s1]\n\t" \
    "ldr    %[wv], [%[p2]], #4\n\t" \
    "sxtb16 %[t], %[wv]\n\t" \
    "smlad  %[s2], %[t], %[xe], %[s2]\n\t" \
    "sxtb16 %[t], %[wv], ror #8\n\t" \
    "smlad  %[s2], %[t], %[xo], %[s2]\n\t"

/* rows [i, i+3) · x for the columns [0, n4) (n4 a multiple of 4) of rows starting at p0 (stride cols), x given
 * as word pairs [x0, x2], [x1, x3] (int16 pairs). Three rows share each pair load (LDRD); per 4 columns and row:
 * LDR, SXTB16, SMLAD, SXTB16 ROR #8, SMLAD; eight columns per turn: 1.42 instructions per multiply-accumulate
 * with the loop. Written in
 * assembly because GCC spills the sums to the stack at -Os and -O2 (twelve live registers). */
static inline void dot3_dsp(const int8_t* p0, int32_t cols, const uint32_t* xw, int32_t n4, int32_t* s) {
    const int8_t* p1 = p0 + cols;
    const int8_t* p2 = p1 + cols;
    const uint32_t* const xend = xw + n4 / 2;
    int32_t s0 = s[0], s1 = s[1], s2 = s[2];
    uint32_t xe, xo, wv, t;
    if (n4 <= 0) return;
    __asm__ volatile(
        "tst    %[n4], #4\n\t"       /* an odd group of four columns first */
        "beq    2f\n\t"
        KWSC_SMLAD_GROUP4
        "cmp    %[px], %[xend]\n\t"
        "beq    3f\n\t"
        "2:\n\t"
        KWSC_SMLAD_GROUP4
        KWSC_SMLAD_GROUP4
        "cmp    %[px], %[xend]\n\t"
        "bne    2b\n\t"
        "3:\n\t"
        : [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [px] "+r"(xw), [s0] "+r"(s0), [s1] "+r"(s1),
          [s2] "+r"(s2), [xe] "=&r"(xe), [xo] "=&r"(xo), [wv] "=&r"(wv), [t] "=&r"(t)
        : [xend] "r"(xend), [n4] "r"(n4)
        : "cc", "memory");
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
}

void kwsc_qdot_rows(const int8_t* w, int32_t cols, int32_t nrows, const int8_t* x, int32_t* acc) {
    uint32_t xw[KWSC_XBLOCK / 2]; /* x's block as int16 pairs [x0, x2], [x1, x3], ... */
    const int32_t whole = cols & ~3;
    int32_t c0, i, j;
    for (i = 0; i < nrows; ++i) acc[i] = 0;
    for (c0 = 0; c0 < whole; c0 += KWSC_XBLOCK) {
        const int32_t n4 = whole - c0 < KWSC_XBLOCK ? whole - c0 : KWSC_XBLOCK;
        for (j = 0; j < n4; j += 4) {
            const uint32_t v = load4(x + c0 + j);
            xw[j / 2] = __sxtb16(v);
            xw[j / 2 + 1] = sxtb16_odd(v);
        }
        for (i = 0; i + 3 <= nrows; i += 3) dot3_dsp(w + (int64_t)i * cols + c0, cols, xw, n4, acc + i);
        for (; i < nrows; ++i) {
            const int8_t* row = w + (int64_t)i * cols + c0;
            int32_t s = acc[i];
            for (j = 0; j < n4; j += 4) {
                const uint32_t wv = load4(row + j);
                s = __smlad(__sxtb16(wv), xw[j / 2], s);
                s = __smlad(sxtb16_odd(wv), xw[j / 2 + 1], s);
            }
            acc[i] = s;
        }
    }
    if (whole < cols) tail_rows(w, cols, 0, nrows, whole, x, acc, 1);
}

/* NOTE: [Row pairs in one SMLAD]
 * SMLAD multiplies two int16 lanes by two int16 lanes and adds both products to an int32. A layout-1 matrix
 * (kwsc/backends/c/quantize.py pack_row_pairs) holds two rows r0, r1 in one lane, v = w[r0, j] + 256 · w[r1, j]
 * (|v| ≤ 32,639), with the columns j, j+1 in the two lanes of a word. Against x as int16 pairs [x_j, x_j+1]:
 *   A = Σ SMLAD(word, x)          = d0 + 256 · d1       (d = the two rows' dot products)
 *   B = Σ SMLAD(SXTB16(word), x)  = d0                  (the low bytes of the lanes are w[r0, j], w[r0, j+1])
 * so d0 = B and d1 = (A − B) >> 8: four multiply-accumulates per SMLAD on the raw word, 1.0 instruction per
 * multiply-accumulate with the loads (was 1.5: LDR, SXTB16, SMLAD, SXTB16 ROR, SMLAD per four), and no extra
 * flash (one byte per weight). SMLAD wraps modulo 2^32 and A − B = 256 · d1 is exact while |256 · d1| < 2^31,
 * i.e. up to 520 columns of ±127 · ±127: the kernel runs over column blocks of KWSC_XBLOCK (256). Exact integer
 * arithmetic, so the results equal the reference's. */

/* rows of `groups` consecutive groups of four (p: their first column group, each group `chunks` column groups
 * long) · x (xw: int16 pairs [x0, x1], [x2, x3], ... of chunks · 4 columns): acc[4g + k] += row k of group g.
 * Per column group: LDRD (x), LDM (16 weight bytes), four SMLAD on raw words, four SXTB16, four SMLAD. An assembly
 * function with fixed registers: the loop needs thirteen (four weight words in ascending registers for LDM). */
#define KWSC_PAIR4_CHUNK \
    "ldrd   r8, r9, [r1], #8\n\t" \
    "ldmia  r0!, {r4-r7}\n\t" \
    "smlad  r10, r4, r8, r10\n\t" \
    "sxtb16 r4, r4\n\t" \
    "smlad  r11, r4, r8, r11\n\t" \
    "smlad  r10, r5, r9, r10\n\t" \
    "sxtb16 r5, r5\n\t" \
    "smlad  r11, r5, r9, r11\n\t" \
    "smlad  r12, r6, r8, r12\n\t" \
    "sxtb16 r6, r6\n\t" \
    "smlad  lr, r6, r8, lr\n\t" \
    "smlad  r12, r7, r9, r12\n\t" \
    "sxtb16 r7, r7\n\t" \
    "smlad  lr, r7, r9, lr\n\t"

__attribute__((naked, noinline)) static void pair4_groups(const int8_t* p, const uint32_t* xw, int32_t chunks,
                                                           int32_t* acc, int32_t groups) {
    (void)p; (void)xw; (void)chunks; (void)acc; (void)groups;
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t"
        "ldr    r4, [sp, #36]\n\t"         /* groups (the fifth argument) */
        "and    r5, r2, #1\n\t"            /* an odd column group first */
        "add    r2, r1, r2, lsl #3\n\t"    /* end of x */
        "push   {r1, r2, r4, r5}\n\t"      /* [sp]: x, end of x, groups left, odd */
        "1:\n\t"
        "movs   r10, #0\n\t"
        "movs   r11, #0\n\t"
        "mov    r12, #0\n\t"
        "mov    lr, #0\n\t"
        "ldrd   r1, r2, [sp]\n\t"
        "ldr    r4, [sp, #12]\n\t"
        "cbz    r4, 2f\n\t"
        KWSC_PAIR4_CHUNK
        "cmp    r1, r2\n\t"
        "beq    3f\n\t"
        "2:\n\t"
        KWSC_PAIR4_CHUNK
        KWSC_PAIR4_CHUNK
        "cmp    r1, r2\n\t"
        "bne    2b\n\t"
        "3:\n\t"                          /* acc = d0, (A01 - d0) >> 8, d2, (A23 - d2) >> 8 */
        "sub    r10, r10, r11\n\t"
        "asr    r5, r10, #8\n\t"
        "sub    r12, r12, lr\n\t"
        "asr    r7, r12, #8\n\t"
        "str    r11, [r3], #4\n\t"
        "str    r5, [r3], #4\n\t"
        "str    lr, [r3], #4\n\t"
        "str    r7, [r3], #4\n\t"
        "ldr    r4, [sp, #8]\n\t"
        "subs   r4, r4, #1\n\t"
        "str    r4, [sp, #8]\n\t"
        "bne    1b\n\t"
        "add    sp, sp, #16\n\t"
        "pop    {r4-r11, pc}\n\t");
}

/* acc[i] (+)= rows [row0, row0 + nrows) of group g · x for the rows of group g in that range */
static void pair4_part(const int8_t* p, const uint32_t* xw, int32_t chunks, int32_t g, int32_t row0, int32_t end,
                       int32_t* acc, int32_t add) {
    int32_t part[4], i;
    pair4_groups(p, xw, chunks, part, 1);
    for (i = 0; i < 4; ++i) {
        const int32_t row = g * 4 + i;
        if (row >= row0 && row < end) acc[row - row0] = (add ? acc[row - row0] : 0) + part[i];
    }
}

void kwsc_qmat_rows(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, int32_t* acc) {
    uint32_t xw[KWSC_XBLOCK / 2]; /* a block of x as int16 pairs [x0, x1], [x2, x3], ... (zero padded) */
    const int32_t cols = m->cols, c4 = (cols + 3) / 4, end = row0 + nrows;
    const int32_t first = (row0 + 3) / 4, last = end / 4; /* the whole groups */
    int32_t c0, g, i, j;
    if (m->layout == 0) {
        kwsc_qdot_rows(m->q + (int64_t)row0 * cols, cols, nrows, x, acc);
        return;
    }
    if (nrows <= 0) return;
    for (c0 = 0; c0 < cols; c0 += KWSC_XBLOCK) {
        const int32_t n = cols - c0 < KWSC_XBLOCK ? cols - c0 : KWSC_XBLOCK;
        const int32_t chunks = (n + 3) / 4, add = c0 > 0;
        const int8_t* base = m->q + (int64_t)(c0 / 4) * 16;
        for (j = 0; j + 4 <= n; j += 4) {
            const uint32_t v = load4(x + c0 + j);
            const uint32_t e = __sxtb16(v), o = sxtb16_odd(v); /* [x0, x2], [x1, x3] */
            xw[j / 2] = (e & 0xffffu) | (o << 16);
            xw[j / 2 + 1] = (e >> 16) | (o & 0xffff0000u);
        }
        if (j < n) {
            int16_t t[4] = {0, 0, 0, 0};
            for (i = 0; j + i < n; ++i) t[i] = x[c0 + j + i];
            xw[j / 2] = (uint16_t)t[0] | ((uint32_t)(uint16_t)t[1] << 16);
            xw[j / 2 + 1] = (uint16_t)t[2] | ((uint32_t)(uint16_t)t[3] << 16);
        }
        if (first > last) { /* all rows inside one group */
            pair4_part(base + (int64_t)last * c4 * 16, xw, chunks, last, row0, end, acc, add);
            continue;
        }
        if (row0 < first * 4) {
            pair4_part(base + (int64_t)(first - 1) * c4 * 16, xw, chunks, first - 1, row0, end, acc, add);
        }
        if (end > last * 4) pair4_part(base + (int64_t)last * c4 * 16, xw, chunks, last, row0, end, acc, add);
        if (first == last) continue;
        if (chunks == c4) { /* one block: the groups are consecutive */
            pair4_groups(base + (int64_t)first * c4 * 16, xw, chunks, acc + (first * 4 - row0), last - first);
        } else {
            for (g = first; g < last; ++g) pair4_part(base + (int64_t)g * c4 * 16, xw, chunks, g, row0, end, acc, add);
        }
    }
}

#else

void kwsc_qdot_rows(const int8_t* w, int32_t cols, int32_t nrows, const int8_t* x, int32_t* acc) {
    int32_t i = 0, j;
    for (; i + 4 <= nrows; i += 4) {
        const int8_t* w0 = w + (int64_t)i * cols;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (j = 0; j < cols; ++j) {
            const int32_t xj = x[j];
            s0 += w0[j] * xj;
            s1 += w0[cols + j] * xj;
            s2 += w0[2 * cols + j] * xj;
            s3 += w0[3 * cols + j] * xj;
        }
        acc[i] = s0;
        acc[i + 1] = s1;
        acc[i + 2] = s2;
        acc[i + 3] = s3;
    }
    tail_rows(w, cols, i, nrows, 0, x, acc, 0);
}
#endif

#if !defined(__AVX2__) && !(defined(__ARM_FEATURE_DSP) && !defined(__ARM_NEON))
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
/* layout 1 exists for the Cortex-M4 only, layout 2 for x86 AVX2; other targets read them weight by weight (tests) */
void kwsc_qmat_rows(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, int32_t* acc) {
    int32_t j;
    if (m->layout == 2) { /* the host's row octets built without AVX2 (no -march=native): SSE2 or plain C */
        const int32_t c4 = (m->cols + 3) / 4, end = row0 + nrows;
        int32_t g, k, r;
        for (g = row0 / 8; 8 * g < end; ++g) {
            const int8_t* b = m->q + (int64_t)g * c4 * 32;
            int32_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#if defined(__SSE2__) /* rows sign-extended to int16, pmaddwd with x[4k..4k+3] twice: two int32 per row */
            const __m128i zero = _mm_setzero_si128();
            __m128i a01 = zero, a23 = zero, a45 = zero, a67 = zero;
            for (k = 0; k < c4; ++k, b += 32) {
                int16_t xk[4] = {0, 0, 0, 0};
                const __m128i v0 = _mm_loadu_si128((const __m128i*)b), v1 = _mm_loadu_si128((const __m128i*)(b + 16));
                const __m128i s0 = _mm_cmpgt_epi8(zero, v0), s1 = _mm_cmpgt_epi8(zero, v1);
                __m128i xv;
                int64_t xbits;
                for (j = 0; j < 4 && 4 * k + j < m->cols; ++j) xk[j] = x[4 * k + j];
                memcpy(&xbits, xk, sizeof xbits);
                xv = _mm_set1_epi64x(xbits);
                a01 = _mm_add_epi32(a01, _mm_madd_epi16(_mm_unpacklo_epi8(v0, s0), xv));
                a23 = _mm_add_epi32(a23, _mm_madd_epi16(_mm_unpackhi_epi8(v0, s0), xv));
                a45 = _mm_add_epi32(a45, _mm_madd_epi16(_mm_unpacklo_epi8(v1, s1), xv));
                a67 = _mm_add_epi32(a67, _mm_madd_epi16(_mm_unpackhi_epi8(v1, s1), xv));
            }
            { /* [r0 r0' r1 r1'] [r2 r2' r3 r3'] -> [r0 r1 r2 r3] */
                const __m128 f01 = _mm_castsi128_ps(a01), f23 = _mm_castsi128_ps(a23);
                const __m128 f45 = _mm_castsi128_ps(a45), f67 = _mm_castsi128_ps(a67);
                _mm_storeu_si128((__m128i*)s, _mm_add_epi32(_mm_castps_si128(_mm_shuffle_ps(f01, f23, 0x88)),
                                                            _mm_castps_si128(_mm_shuffle_ps(f01, f23, 0xdd))));
                _mm_storeu_si128((__m128i*)(s + 4), _mm_add_epi32(_mm_castps_si128(_mm_shuffle_ps(f45, f67, 0x88)),
                                                                  _mm_castps_si128(_mm_shuffle_ps(f45, f67, 0xdd))));
            }
#else
            for (k = 0; k < c4; ++k, b += 32) {
                int32_t xk[4] = {0, 0, 0, 0};
                for (j = 0; j < 4 && 4 * k + j < m->cols; ++j) xk[j] = x[4 * k + j];
                for (r = 0; r < 8; ++r) {
                    s[r] += b[4 * r] * xk[0] + b[4 * r + 1] * xk[1] + b[4 * r + 2] * xk[2] + b[4 * r + 3] * xk[3];
                }
            }
#endif
            for (r = 0; r < 8; ++r) {
                if (8 * g + r >= row0 && 8 * g + r < end) acc[8 * g + r - row0] = s[r];
            }
        }
        return;
    }
    kwsc_qmat_rows_plain(m, row0, nrows, x, acc);
}
#endif

/* ---------------------------------------------------------------------------------------------------------------
 * NOTE: [Exact float steps in vectors]
 * The quantization (peak, x * col * inv, ±0.5, truncation, clamp) and the dequantization
 * (float(acc) * (scale * s) + bias, + y) are float32 multiplies, adds, compares and conversions, each of which a
 * vector unit rounds exactly as scalar IEEE code does — so the vectors give the reference's bits, lane by lane,
 * as long as the operations and their order are the reference's (no contraction: the pragma at the top).
 * x86 SSE and AArch64 NEON are IEEE (denormals included). ARMv7 NEON flushes denormal inputs and results to
 * zero, so there the vector results are used only where that cannot matter, else the lanes fall back to the
 * plain code (kwsc_*_ref, exact). The peak: a peak ≥ 2^-60 is normal and flushed lanes are below it; a smaller
 * one means a zero vector either way (quantized.py _PEAK_MIN). The rounding, when inv ≤ 2^67 (a run-time inv is
 * at most 127 · 2^60; a calibrated one may not be): a flushed x' < 2^-126 then rounds to 0 either way, as column
 * scales are normal or 1 (quantized.column_scales) and below 2^58 (they are weights' magnitudes). The
 * dequantization of a block of rows, when scale * s ≥ 2^-126 and |v| ≥ 2^-100 throughout: then no operand or
 * result was flushed, or a flushed bias was below half an ulp of the sum. A sum u + m with |m| ≥ 2^-100 needs no
 * check at all: a denormal u is below half an ulp of m; |u| < 2^-101 leaves |u + m| ≥ 2^-101; else u and m are
 * multiples of 2^-124 and so is the sum: zero or normal (y + v above, a + b * c and v + z * d below). */
#if defined(__ARM_NEON)
#include <arm_neon.h>

#if defined(__aarch64__)
#define KWSC_NEON_IEEE 1
static inline float kwsc_hmax_f32(float32x4_t v) { return vmaxvq_f32(v); }
static inline int kwsc_all_u32(uint32x4_t m) { return vminvq_u32(m) != 0; }
#else
#define KWSC_NEON_IEEE 0
static inline float kwsc_hmax_f32(float32x4_t v) {
    float32x2_t t = vpmax_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(vpmax_f32(t, t), 0);
}
static inline int kwsc_all_u32(uint32x4_t m) {
    uint32x2_t t = vpmin_u32(vget_low_u32(m), vget_high_u32(m));
    return vget_lane_u32(vpmin_u32(t, t), 0) != 0;
}
#endif

/* sixteen floats (AArch64: one LD1 of four registers; GCC 12 has no vld1q_f32_x4 for ARMv7) */
#if defined(__aarch64__)
#define kwsc_load16(p) vld1q_f32_x4(p)
#else
static inline float32x4x4_t kwsc_load16(const float* p) {
    float32x4x4_t v;
    v.val[0] = vld1q_f32(p);
    v.val[1] = vld1q_f32(p + 4);
    v.val[2] = vld1q_f32(p + 8);
    v.val[3] = vld1q_f32(p + 12);
    return v;
}
#endif

/* x' = x * col, sixteen at a time */
static inline float32x4x4_t kwsc_mul16(float32x4x4_t v, const float* col) {
    const float32x4x4_t c = kwsc_load16(col);
    v.val[0] = vmulq_f32(v.val[0], c.val[0]);
    v.val[1] = vmulq_f32(v.val[1], c.val[1]);
    v.val[2] = vmulq_f32(v.val[2], c.val[2]);
    v.val[3] = vmulq_f32(v.val[3], c.val[3]);
    return v;
}

/* max |x'| over sixteen floats into four lanes of running maxima */
#define KWSC_PEAK16(v) \
    do { \
        m0 = vmaxq_f32(m0, vabsq_f32((v).val[0])); \
        m1 = vmaxq_f32(m1, vabsq_f32((v).val[1])); \
        m2 = vmaxq_f32(m2, vabsq_f32((v).val[2])); \
        m3 = vmaxq_f32(m3, vabsq_f32((v).val[3])); \
    } while (0)

float kwsc_qpeak(const float* x, int32_t n, const float* col) {
    float32x4_t m0 = vdupq_n_f32(0.0f), m1 = m0, m2 = m0, m3 = m0;
    float peak, tail;
    int32_t j = 0;
    if (col) {
        for (; j + 16 <= n; j += 16) KWSC_PEAK16(kwsc_mul16(kwsc_load16(x + j), col + j));
        for (; j + 4 <= n; j += 4) m0 = vmaxq_f32(m0, vabsq_f32(vmulq_f32(vld1q_f32(x + j), vld1q_f32(col + j))));
    } else {
        for (; j + 16 <= n; j += 16) KWSC_PEAK16(kwsc_load16(x + j));
        for (; j + 4 <= n; j += 4) m0 = vmaxq_f32(m0, vabsq_f32(vld1q_f32(x + j)));
    }
    peak = kwsc_hmax_f32(vmaxq_f32(vmaxq_f32(m0, m1), vmaxq_f32(m2, m3)));
    tail = kwsc_qpeak_ref(x + j, n - j, col ? col + j : 0);
    return tail > peak ? tail : peak;
}

/* v + (v >= 0 ? 0.5 : -0.5) as v + copysign(0.5, v) (the same q: -0 ± 0.5 truncates to 0 either way; no float
 * compare, which GCC scalarises on ARMv7 without -funsafe-math-optimizations), truncated (VCVT saturates out of
 * range); the caller narrows with saturation and raises -128 to -127: clamp(trunc(v), -127, 127) */
static inline int32x4_t kwsc_round_trunc(float32x4_t v) {
    /* copysign(0.5, v) as (v & sign) | 0.5: AND and ORR-immediate, where BSL wanted a copy of its mask */
    const uint32x4_t half = vorrq_u32(vandq_u32(vreinterpretq_u32_f32(v), vdupq_n_u32(0x80000000u)),
                                      vdupq_n_u32(0x3f000000u));
    return vcvtq_s32_f32(vaddq_f32(v, vreinterpretq_f32_u32(half)));
}

/* q[0..15] from sixteen x' (kwsc_qround's vector step) */
static inline __attribute__((always_inline)) void kwsc_round16(float32x4x4_t v, float32x4_t vi, int8_t* q) {
    const int16x8_t t0 = vcombine_s16(vqmovn_s32(kwsc_round_trunc(vmulq_f32(v.val[0], vi))),
                                      vqmovn_s32(kwsc_round_trunc(vmulq_f32(v.val[1], vi))));
    const int16x8_t t1 = vcombine_s16(vqmovn_s32(kwsc_round_trunc(vmulq_f32(v.val[2], vi))),
                                      vqmovn_s32(kwsc_round_trunc(vmulq_f32(v.val[3], vi))));
    vst1q_s8(q, vmaxq_s8(vcombine_s8(vqmovn_s16(t0), vqmovn_s16(t1)), vdupq_n_s8(-127)));
}

void kwsc_qround(const float* x, int32_t n, const float* col, float inv, int8_t* q) {
    const float32x4_t vi = vdupq_n_f32(inv);
    int32_t j = 0;
    if (!KWSC_NEON_IEEE && !(inv <= 0x1p67f)) {
        kwsc_qround_ref(x, n, col, inv, q);
        return;
    }
    if (col) {
        for (; j + 16 <= n; j += 16) kwsc_round16(kwsc_mul16(kwsc_load16(x + j), col + j), vi, q + j);
    } else {
        for (; j + 16 <= n; j += 16) kwsc_round16(kwsc_load16(x + j), vi, q + j);
    }
    for (; j + 8 <= n; j += 8) {
        float32x4_t a = vld1q_f32(x + j), b = vld1q_f32(x + j + 4);
        if (col) {
            a = vmulq_f32(a, vld1q_f32(col + j));
            b = vmulq_f32(b, vld1q_f32(col + j + 4));
        }
        {
            const int16x8_t t = vcombine_s16(vqmovn_s32(kwsc_round_trunc(vmulq_f32(a, vi))),
                                             vqmovn_s32(kwsc_round_trunc(vmulq_f32(b, vi))));
            vst1_s8(q + j, vmax_s8(vqmovn_s16(t), vdup_n_s8(-127)));
        }
    }
    if (j < n) kwsc_qround_ref(x + j, n - j, col ? col + j : 0, inv, q + j);
}

/* Four rows at a time; on ARMv7 the guard of the note's last case is the minimum over the block of |v|, |y| and
 * scale * s * 2^26 (≥ 2^-100 unless something may have been flushed), checked once after the block: if it fails,
 * the block is computed again by the plain code (from the y it started with: kept in `old` when accumulating). */
static inline __attribute__((always_inline)) void dequant4(const int32_t* acc, int32_t n4, const float* scale,
                                                           float32x4_t vs, const float* bias, float* y,
                                                           int32_t accumulate, float* old, float32x4_t* tmin,
                                                           float32x4_t* smin) {
    float32x4_t tm = *tmin, sm = *smin;
    int32_t k;
#pragma GCC unroll 1 /* fully peeled (n4 ≤ KWSC_DQ_BLOCK), every load needed its own address arithmetic */
    for (k = 0; k < n4; k += 4) {
        const float32x4_t p = vmulq_f32(vld1q_f32(scale + k), vs);
        float32x4_t v = vmulq_f32(vcvtq_f32_s32(vld1q_s32(acc + k)), p);
        if (bias) v = vaddq_f32(v, vld1q_f32(bias + k));
        if (!KWSC_NEON_IEEE) {
            tm = vminq_f32(tm, vabsq_f32(v));
            sm = vminq_f32(sm, p);
        }
        if (accumulate) {
            const float32x4_t y0 = vld1q_f32(y + k);
            if (!KWSC_NEON_IEEE) vst1q_f32(old + k, y0);
            v = vaddq_f32(y0, v); /* no check: see the note */
        }
        vst1q_f32(y + k, v);
    }
    *tmin = tm;
    *smin = sm;
}

#define KWSC_DQ_BLOCK 64 /* rows per guard check (ARMv7) */

void kwsc_qdequant(const int32_t* acc, int32_t n, const float* scale, float x_scale, const float* bias, float* y,
                   int32_t accumulate) {
    float old[KWSC_NEON_IEEE ? 1 : KWSC_DQ_BLOCK];
    const float32x4_t vs = vdupq_n_f32(x_scale);
    int32_t k;
    for (k = 0; k + 4 <= n; k += KWSC_DQ_BLOCK) {
        const int32_t n4 = (n - k < KWSC_DQ_BLOCK ? n - k : KWSC_DQ_BLOCK) & ~3;
        const float* b = bias ? bias + k : 0;
        float32x4_t tmin = vdupq_n_f32(1.0f), smin = tmin;
        if (accumulate) {
            if (b) dequant4(acc + k, n4, scale + k, vs, b, y + k, 1, old, &tmin, &smin);
            else dequant4(acc + k, n4, scale + k, vs, 0, y + k, 1, old, &tmin, &smin);
        } else {
            if (b) dequant4(acc + k, n4, scale + k, vs, b, y + k, 0, old, &tmin, &smin);
            else dequant4(acc + k, n4, scale + k, vs, 0, y + k, 0, old, &tmin, &smin);
        }
        /* tmin ≥ 0: its bits order as integers (no float compare: see kwsc_round_trunc) */
        tmin = vminq_f32(tmin, vmulq_f32(smin, vdupq_n_f32(0x1p26f))); /* scale * s ≥ 2^-126 */
        if (!KWSC_NEON_IEEE && !kwsc_all_u32(vcgeq_u32(vreinterpretq_u32_f32(tmin), vdupq_n_u32(0x0d800000u)))) {
            if (accumulate) memcpy(y + k, old, sizeof(float) * (size_t)n4);
            kwsc_qdequant_ref(acc + k, n4, scale + k, x_scale, b, y + k, accumulate);
        }
        if (n4 < KWSC_DQ_BLOCK) {
            k += n4;
            break;
        }
    }
    if (k < n) kwsc_qdequant_ref(acc + k, n - k, scale + k, x_scale, bias ? bias + k : 0, y + k, accumulate);
}

/* The GRU's element-wise steps (kwsc_qmuladd, kwsc_qblend) in blocks of KWSC_DQ_BLOCK; on ARMv7 a block whose
 * operands and results are not all ≥ 2^-100 in magnitude (a zero, or a value a flush could touch) is redone by the
 * plain code from the values it started with. */
void kwsc_qmuladd(float* a, const float* b, const float* c, int32_t n) {
    float old[KWSC_NEON_IEEE ? 1 : KWSC_DQ_BLOCK];
    int32_t k, j;
#if defined(__aarch64__) /* IEEE, nothing to check: sixteen per turn, the rest below */
    for (k = 0; k + 16 <= n; k += 16) {
        const float32x4x4_t a0 = vld1q_f32_x4(a + k), b0 = vld1q_f32_x4(b + k), c0 = vld1q_f32_x4(c + k);
        float32x4x4_t r;
        r.val[0] = vaddq_f32(a0.val[0], vmulq_f32(b0.val[0], c0.val[0]));
        r.val[1] = vaddq_f32(a0.val[1], vmulq_f32(b0.val[1], c0.val[1]));
        r.val[2] = vaddq_f32(a0.val[2], vmulq_f32(b0.val[2], c0.val[2]));
        r.val[3] = vaddq_f32(a0.val[3], vmulq_f32(b0.val[3], c0.val[3]));
        vst1q_f32_x4(a + k, r);
    }
    a += k, b += k, c += k, n -= k;
#endif
    for (k = 0; k + 4 <= n; k += KWSC_DQ_BLOCK) {
        const int32_t n4 = (n - k < KWSC_DQ_BLOCK ? n - k : KWSC_DQ_BLOCK) & ~3;
        float32x4_t tmin = vdupq_n_f32(1.0f);
#pragma GCC unroll 1
        for (j = 0; j < n4; j += 4) {
            const float32x4_t a0 = vld1q_f32(a + k + j), m = vmulq_f32(vld1q_f32(b + k + j), vld1q_f32(c + k + j));
            const float32x4_t r = vaddq_f32(a0, m);
            if (!KWSC_NEON_IEEE) {
                vst1q_f32(old + j, a0);
                tmin = vminq_f32(tmin, vabsq_f32(m));
            }
            vst1q_f32(a + k + j, r);
        }
        /* m ≥ 2^-100 is all: a flushed b or c makes m 0, and a + m then needs no check (the note) */
        if (!KWSC_NEON_IEEE && !kwsc_all_u32(vcgeq_u32(vreinterpretq_u32_f32(tmin), vdupq_n_u32(0x0d800000u)))) {
            memcpy(a + k, old, sizeof(float) * (size_t)n4);
            kwsc_qmuladd_ref(a + k, b + k, c + k, n4);
        }
        if (n4 < KWSC_DQ_BLOCK) {
            k += n4;
            break;
        }
    }
    if (k < n) kwsc_qmuladd_ref(a + k, b + k, c + k, n - k);
}

void kwsc_qblend(const float* z, const float* cand, float* h, float* out, int32_t n) {
    float old[KWSC_NEON_IEEE ? 1 : KWSC_DQ_BLOCK];
    int32_t k, j;
#if defined(__aarch64__) /* IEEE, nothing to check: sixteen per turn, the rest below */
    for (k = 0; k + 16 <= n; k += 16) {
        const float32x4x4_t v = vld1q_f32_x4(cand + k), h0 = vld1q_f32_x4(h + k), zv = vld1q_f32_x4(z + k);
        int32_t i;
        for (i = 0; i < 4; ++i) { /* stored one by one: GCC copied a four-register result for each ST1 */
            const float32x4_t r = vaddq_f32(v.val[i], vmulq_f32(zv.val[i], vsubq_f32(h0.val[i], v.val[i])));
            vst1q_f32(out + k + 4 * i, r);
            vst1q_f32(h + k + 4 * i, r);
        }
    }
    z += k, cand += k, h += k, out += k, n -= k;
#endif
    for (k = 0; k + 4 <= n; k += KWSC_DQ_BLOCK) {
        const int32_t n4 = (n - k < KWSC_DQ_BLOCK ? n - k : KWSC_DQ_BLOCK) & ~3;
        float32x4_t tmin = vdupq_n_f32(1.0f);
#pragma GCC unroll 1
        for (j = 0; j < n4; j += 4) {
            const float32x4_t v = vld1q_f32(cand + k + j), h0 = vld1q_f32(h + k + j);
            const float32x4_t d = vsubq_f32(h0, v), zv = vld1q_f32(z + k + j), m = vmulq_f32(zv, d);
            const float32x4_t r = vaddq_f32(v, m);
            if (!KWSC_NEON_IEEE) {
                vst1q_f32(old + j, h0);
                /* |d| ≥ 2^-100: exact, or a flushed h or v was below half its ulp; |m| ≥ 2^-100: z was not flushed
                 * and v + m needs no check (the note) */
                tmin = vminq_f32(tmin, vminq_f32(vabsq_f32(d), vabsq_f32(m)));
            }
            vst1q_f32(out + k + j, r);
            vst1q_f32(h + k + j, r);
        }
        if (!KWSC_NEON_IEEE && !kwsc_all_u32(vcgeq_u32(vreinterpretq_u32_f32(tmin), vdupq_n_u32(0x0d800000u)))) {
            memcpy(h + k, old, sizeof(float) * (size_t)n4);
            kwsc_qblend_ref(z + k, cand + k, h + k, out + k, n4);
        }
        if (n4 < KWSC_DQ_BLOCK) {
            k += n4;
            break;
        }
    }
    if (k < n) kwsc_qblend_ref(z + k, cand + k, h + k, out + k, n - k);
}

#elif defined(__SSE2__)
#include <emmintrin.h>
#if defined(__AVX2__)
#include <immintrin.h> /* eight-lane loops first; the same operations in the same order per lane */
#endif

float kwsc_qpeak(const float* x, int32_t n, const float* col) {
    const __m128 sign = _mm_set1_ps(-0.0f);
    __m128 m = _mm_setzero_ps();
    float lanes[4], peak, tail;
    int32_t j = 0, k;
#if defined(__AVX2__) /* eight lanes, then the four-lane loop: max is exact in any order */
    {
        const __m256 sign8 = _mm256_set1_ps(-0.0f);
        __m256 m8 = _mm256_setzero_ps();
        for (; j + 8 <= n; j += 8) {
            __m256 v = _mm256_loadu_ps(x + j);
            if (col) v = _mm256_mul_ps(v, _mm256_loadu_ps(col + j));
            m8 = _mm256_max_ps(_mm256_andnot_ps(sign8, v), m8); /* NaN lanes keep m8, as the reference's a > peak */
        }
        m = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    }
#endif
    for (; j + 4 <= n; j += 4) {
        __m128 v = _mm_loadu_ps(x + j);
        if (col) v = _mm_mul_ps(v, _mm_loadu_ps(col + j));
        m = _mm_max_ps(m, _mm_andnot_ps(sign, v));
    }
    _mm_storeu_ps(lanes, m);
    peak = lanes[0];
    for (k = 1; k < 4; ++k) peak = lanes[k] > peak ? lanes[k] : peak;
    tail = kwsc_qpeak_ref(x + j, n - j, col ? col + j : 0);
    return tail > peak ? tail : peak;
}

static inline __m128i kwsc_round_clamp(__m128 v) {
    const __m128 ge = _mm_cmpge_ps(v, _mm_setzero_ps());
    v = _mm_add_ps(v, _mm_or_ps(_mm_and_ps(ge, _mm_set1_ps(0.5f)), _mm_andnot_ps(ge, _mm_set1_ps(-0.5f))));
    v = _mm_min_ps(_mm_max_ps(v, _mm_set1_ps(-127.0f)), _mm_set1_ps(127.0f));
    return _mm_cvttps_epi32(v);
}

void kwsc_qround(const float* x, int32_t n, const float* col, float inv, int8_t* q) {
    const __m128 vi = _mm_set1_ps(inv);
    int32_t j = 0;
#if defined(__AVX2__)
    {
        const __m256 vi8 = _mm256_set1_ps(inv), zero = _mm256_setzero_ps(), half = _mm256_set1_ps(0.5f);
        const __m256 mhalf = _mm256_set1_ps(-0.5f), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
        for (; j + 16 <= n; j += 16) {
            __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + 8);
            __m256i ia, ib, h;
            if (col) {
                a = _mm256_mul_ps(a, _mm256_loadu_ps(col + j));
                b = _mm256_mul_ps(b, _mm256_loadu_ps(col + j + 8));
            }
            a = _mm256_mul_ps(a, vi8);
            b = _mm256_mul_ps(b, vi8);
            a = _mm256_add_ps(a, _mm256_blendv_ps(mhalf, half, _mm256_cmp_ps(a, zero, _CMP_GE_OQ)));
            b = _mm256_add_ps(b, _mm256_blendv_ps(mhalf, half, _mm256_cmp_ps(b, zero, _CMP_GE_OQ)));
            ia = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(a, lo), hi));
            ib = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(b, lo), hi));
            h = _mm256_packs_epi32(ia, ib); /* per 128-bit lane: a0-3 b0-3 | a4-7 b4-7 */
            h = _mm256_permute4x64_epi64(h, 0xd8);
            _mm_storeu_si128((__m128i*)(q + j),
                             _mm_packs_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
        }
    }
#endif
    for (; j + 8 <= n; j += 8) {
        __m128 a = _mm_loadu_ps(x + j), b = _mm_loadu_ps(x + j + 4);
        __m128i h;
        if (col) {
            a = _mm_mul_ps(a, _mm_loadu_ps(col + j));
            b = _mm_mul_ps(b, _mm_loadu_ps(col + j + 4));
        }
        h = _mm_packs_epi32(kwsc_round_clamp(_mm_mul_ps(a, vi)), kwsc_round_clamp(_mm_mul_ps(b, vi)));
        _mm_storel_epi64((__m128i*)(q + j), _mm_packs_epi16(h, h));
    }
    if (j < n) kwsc_qround_ref(x + j, n - j, col ? col + j : 0, inv, q + j);
}

void kwsc_qdequant(const int32_t* acc, int32_t n, const float* scale, float x_scale, const float* bias, float* y,
                   int32_t accumulate) {
    const __m128 vs = _mm_set1_ps(x_scale);
    int32_t k = 0;
#if defined(__AVX2__)
    {
        const __m256 vs8 = _mm256_set1_ps(x_scale);
        for (; k + 8 <= n; k += 8) {
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i*)(acc + k))),
                                     _mm256_mul_ps(_mm256_loadu_ps(scale + k), vs8));
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + k));
            if (accumulate) v = _mm256_add_ps(_mm256_loadu_ps(y + k), v);
            _mm256_storeu_ps(y + k, v);
        }
    }
#endif
    for (; k + 4 <= n; k += 4) {
        __m128 v = _mm_mul_ps(_mm_cvtepi32_ps(_mm_loadu_si128((const __m128i*)(acc + k))),
                              _mm_mul_ps(_mm_loadu_ps(scale + k), vs));
        if (bias) v = _mm_add_ps(v, _mm_loadu_ps(bias + k));
        if (accumulate) v = _mm_add_ps(_mm_loadu_ps(y + k), v);
        _mm_storeu_ps(y + k, v);
    }
    if (k < n) kwsc_qdequant_ref(acc + k, n - k, scale + k, x_scale, bias ? bias + k : 0, y + k, accumulate);
}

void kwsc_qmuladd(float* a, const float* b, const float* c, int32_t n) {
    int32_t k = 0;
#if defined(__AVX2__)
    for (; k + 8 <= n; k += 8) {
        _mm256_storeu_ps(a + k, _mm256_add_ps(_mm256_loadu_ps(a + k),
                                              _mm256_mul_ps(_mm256_loadu_ps(b + k), _mm256_loadu_ps(c + k))));
    }
#endif
    for (; k + 4 <= n; k += 4) {
        _mm_storeu_ps(a + k, _mm_add_ps(_mm_loadu_ps(a + k), _mm_mul_ps(_mm_loadu_ps(b + k), _mm_loadu_ps(c + k))));
    }
    if (k < n) kwsc_qmuladd_ref(a + k, b + k, c + k, n - k);
}

void kwsc_qblend(const float* z, const float* cand, float* h, float* out, int32_t n) {
    int32_t k = 0;
#if defined(__AVX2__)
    for (; k + 8 <= n; k += 8) {
        const __m256 v = _mm256_loadu_ps(cand + k);
        const __m256 r = _mm256_add_ps(v, _mm256_mul_ps(_mm256_loadu_ps(z + k), _mm256_sub_ps(_mm256_loadu_ps(h + k), v)));
        _mm256_storeu_ps(out + k, r);
        _mm256_storeu_ps(h + k, r);
    }
#endif
    for (; k + 4 <= n; k += 4) {
        const __m128 v = _mm_loadu_ps(cand + k);
        const __m128 r = _mm_add_ps(v, _mm_mul_ps(_mm_loadu_ps(z + k), _mm_sub_ps(_mm_loadu_ps(h + k), v)));
        _mm_storeu_ps(out + k, r);
        _mm_storeu_ps(h + k, r);
    }
    if (k < n) kwsc_qblend_ref(z + k, cand + k, h + k, out + k, n - k);
}

#else

#include "../qdot_plain_steps.h" /* no SIMD here: the plain float steps */
#endif
