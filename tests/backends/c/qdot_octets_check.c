/* kwsc_qmat_rows on layout-2 matrices (the host's row octets), and kwsc_qdot_rows on the same rows row-major (QConv's),
 * against plain sums: many shapes, random row slices; built by tests/backends/c/test_qdot_octets.py with and without
 * AVX2, and by test_qdot_vnni.py with the VNNI branch on emulated vpdpbusd (vnni_shim.h, checked first here). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kwsc_runtime.h"
int32_t kwsc_qpair_weight(const kwsc_qmat* m, int32_t row, int32_t col) { (void)m; (void)row; (void)col; return 0; }
void kwsc_qmat_rows_plain(const kwsc_qmat* m, int32_t row0, int32_t nrows, const int8_t* x, int32_t* acc) {
    (void)m; (void)row0; (void)nrows; (void)x; (void)acc;
}
static void pack(const int8_t* w, int rows, int cols, int8_t* out) {
    int rp = (rows + 7) / 8 * 8, c4 = (cols + 3) / 4; memset(out, 0, (size_t)rp * c4 * 4 + 1);
    for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) out[(((r / 8) * c4 + c / 4) * 8 + r % 8) * 4 + c % 4] = w[r * cols + c];
}
#if defined(KWSC_VNNI_SHIM_H) && !defined(KWSC_VNNI_SHIM_BROKEN) /* the broken one must fail in the kernels */
/* the emulated instruction on hand-computed lanes: unsigned × signed bytes (255 · -128), four per lane, wrapping */
static int shim_selftest(void) {
    int8_t b[32];
    uint8_t a[32];
    int32_t acc[8] = {0, 0, 7, -7, INT32_MAX, INT32_MIN, 100, 0}, out[8], want[8], i;
    for (i = 0; i < 32; i++) { a[i] = (uint8_t)(i * 37 + 11); b[i] = (int8_t)(i * 53 - 90); }
    a[0] = a[1] = a[2] = a[3] = 255; b[0] = b[1] = b[2] = b[3] = -128;         /* 4 · (255 · -128) = -130560 */
    a[4] = a[5] = a[6] = a[7] = 255; b[4] = b[5] = b[6] = b[7] = 127;          /* 4 · 32385 = 129540 */
    a[16] = a[17] = a[18] = a[19] = 255; b[16] = b[17] = b[18] = b[19] = 127;  /* INT32_MAX + 129540 wraps */
    for (i = 0; i < 8; i++) {
        int64_t s = acc[i];
        for (int k = 0; k < 4; k++) s += (int64_t)a[4 * i + k] * b[4 * i + k];
        want[i] = (int32_t)(uint32_t)(uint64_t)s;
    }
    if (want[0] != -130560 || want[1] != 129540 || want[4] != (int32_t)((uint32_t)INT32_MAX + 129540u)) return 1;
    _mm256_storeu_si256((__m256i*)out, kwsc_vnni_shim_dp256(_mm256_loadu_si256((const __m256i*)acc),
                                                             _mm256_loadu_si256((const __m256i*)a),
                                                             _mm256_loadu_si256((const __m256i*)b)));
    for (i = 0; i < 8; i++) if (out[i] != want[i]) { printf("BAD shim lane %d: %d vs %d\n", i, out[i], want[i]); return 1; }
    _mm_storeu_si128((__m128i*)out, kwsc_vnni_shim_dp128(_mm_loadu_si128((const __m128i*)acc),
                                                         _mm_loadu_si128((const __m128i*)a),
                                                         _mm_loadu_si128((const __m128i*)b)));
    for (i = 0; i < 4; i++) if (out[i] != want[i]) { printf("BAD shim lane %d (128): %d vs %d\n", i, out[i], want[i]); return 1; }
    return 0;
}
#endif
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0); /* a BAD line must show even when LeakSanitizer ends the run (early return) */
#if defined(KWSC_VNNI_SHIM_H) && !defined(KWSC_VNNI_SHIM_BROKEN) /* the broken one must fail in the kernels */
    if (shim_selftest()) return 1;
#endif
    int colsv[] = {0, 1, 3, 4, 5, 31, 32, 33, 80, 127, 128, 511, 512, 513, 600, 1030};
    srand(3); long checks = 0;
    for (unsigned ci = 0; ci < sizeof colsv / sizeof colsv[0]; ci++) for (int rows = 1; rows <= 70; rows += (rows < 20 ? 1 : 7)) {
        int cols = colsv[ci];
        int8_t* w = malloc((size_t)rows * cols + 1); int8_t* p = malloc((size_t)(rows + 8) * (cols + 4) + 1);
        int8_t* x = malloc((size_t)cols + 1); int32_t* acc = malloc(sizeof(int32_t) * (rows + 1));
        for (int i = 0; i < rows * cols; i++) w[i] = (int8_t)(rand() % 255 - 127);
        for (int j = 0; j < cols; j++) x[j] = (int8_t)(rand() % 255 - 127);
        if (cols) { x[0] = -127; w[0] = -127; }
        pack(w, rows, cols, p);
        kwsc_qmat m = {p, 0, 0, rows, cols, 2};
        for (int t = 0; t < 20; t++) {
            int row0 = rand() % rows, n = 1 + rand() % (rows - row0);
            if (t == 0) { row0 = 0; n = rows; }
            for (int i = 0; i < n; i++) acc[i] = 0x5a5a5a5a;
            kwsc_qmat_rows(&m, row0, n, x, acc);
            for (int i = 0; i < n; i++) { int32_t s = 0; for (int j = 0; j < cols; j++) s += w[(row0 + i) * cols + j] * x[j];
                if (s != acc[i]) { printf("BAD rows %d cols %d row0 %d n %d i %d: %d vs %d\n", rows, cols, row0, n, i, acc[i], s); return 1; } checks++; }
            for (int i = 0; i < n; i++) acc[i] = 0x5a5a5a5a; /* the same rows row-major */
            kwsc_qdot_rows(w + (int64_t)row0 * cols, cols, n, x, acc);
            for (int i = 0; i < n; i++) { int32_t s = 0; for (int j = 0; j < cols; j++) s += w[(row0 + i) * cols + j] * x[j];
                if (s != acc[i]) { printf("BAD row-major rows %d cols %d row0 %d n %d i %d: %d vs %d\n", rows, cols, row0, n, i, acc[i], s); return 1; } checks++; }
        }
        free(w); free(p); free(x); free(acc);
    }
    printf("ok %ld rows checked\n", checks); return 0;
}
float kwsc_qpeak_ref(const float* x, int32_t n, const float* col) { (void)x; (void)n; (void)col; return 0; }
void kwsc_qround_ref(const float* x, int32_t n, const float* col, float inv, int8_t* q) { (void)x; (void)n; (void)col; (void)inv; (void)q; }
void kwsc_qdequant_ref(const int32_t* acc, int32_t n, const float* scale, float x_scale, const float* bias, float* y, int32_t accumulate) { (void)acc; (void)n; (void)scale; (void)x_scale; (void)bias; (void)y; (void)accumulate; }
void kwsc_qmuladd_ref(float* a, const float* b, const float* c, int32_t n) { (void)a; (void)b; (void)c; (void)n; }
void kwsc_qblend_ref(const float* z, const float* cand, float* h, float* out, int32_t n) { (void)z; (void)cand; (void)h; (void)out; (void)n; }
