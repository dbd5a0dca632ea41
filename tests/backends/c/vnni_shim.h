/* TEST ONLY (tests/backends/c/test_qdot_vnni.py): lets runtime/src/opt/qdot.c's VNNI branch build and run on a CPU
 * without VNNI. Force-included before qdot.c (gcc -include) in an AVX2 build (-march=x86-64-v3), it announces the
 * VNNI feature macros that select the branch and replaces the vpdpbusd intrinsics it calls with portable C that
 * computes what Intel's manual specifies: per 32-bit lane i,
 *     dst[i] = acc[i] + Σ_{k<4} ZeroExtend(a.byte[4i+k]) · SignExtend(b.byte[4i+k])
 * (a unsigned, b signed; the sum wraps modulo 2^32, no saturation: vpdpbusd, not vpdpbusds). What runs is then
 * qdot.c's own VNNI code (its operand order, the |x| / sign(x) trick, the row octets, tails and row slices) with
 * the instruction's semantics emulated — not the hardware. Generated projects never see this file.
 *   -DKWSC_VNNI_SHIM_AVX512   the AVX-512 VNNI + VL names (_mm256_dpbusd_epi32, _mm_dpbusd_epi32; icelake, znver4)
 *   (default)                 the AVX-VNNI names (_mm256_dpbusd_avx_epi32, _mm_dpbusd_avx_epi32; alderlake)
 *   -DKWSC_VNNI_SHIM_BROKEN   a deliberately wrong instruction, the operand-order mistake (a read as signed, b as
 *                             unsigned): the test's proof that the shim is what runs and that a wrong product is
 *                             caught. */
#ifndef KWSC_VNNI_SHIM_H
#define KWSC_VNNI_SHIM_H

#if defined(__AVX512VNNI__) || defined(__AVXVNNI__) || !defined(__AVX2__)
#error "vnni_shim.h: build with AVX2 and without VNNI (e.g. -march=x86-64-v3)"
#endif

#include <immintrin.h> /* first: its include guard keeps qdot.c's include from bringing the real names back */
#include <stdint.h>
#include <string.h>

static inline void kwsc_vnni_shim_lanes(uint32_t* s, const uint8_t* a, const int8_t* b, int lanes) {
    int i, k;
    for (i = 0; i < lanes; ++i) {
        uint32_t t = s[i]; /* unsigned: the wrap-around of the instruction, without signed overflow in C */
        for (k = 0; k < 4; ++k) {
#if defined(KWSC_VNNI_SHIM_BROKEN)
            t += (uint32_t)((int32_t)(int8_t)a[4 * i + k] * (int32_t)(uint8_t)b[4 * i + k]);
#else
            t += (uint32_t)((int32_t)a[4 * i + k] * (int32_t)b[4 * i + k]);
#endif
        }
        s[i] = t;
    }
}

static __attribute__((noinline, unused)) __m256i kwsc_vnni_shim_dp256(__m256i acc, __m256i a, __m256i b) {
    uint32_t s[8];
    uint8_t ua[32];
    int8_t sb[32];
    _mm256_storeu_si256((__m256i*)s, acc);
    _mm256_storeu_si256((__m256i*)ua, a);
    _mm256_storeu_si256((__m256i*)sb, b);
    kwsc_vnni_shim_lanes(s, ua, sb, 8);
    return _mm256_loadu_si256((const __m256i*)s);
}

static __attribute__((noinline, unused)) __m128i kwsc_vnni_shim_dp128(__m128i acc, __m128i a, __m128i b) {
    uint32_t s[4];
    uint8_t ua[16];
    int8_t sb[16];
    _mm_storeu_si128((__m128i*)s, acc);
    _mm_storeu_si128((__m128i*)ua, a);
    _mm_storeu_si128((__m128i*)sb, b);
    kwsc_vnni_shim_lanes(s, ua, sb, 4);
    return _mm_loadu_si128((const __m128i*)s);
}

#if defined(KWSC_VNNI_SHIM_AVX512)
#define __AVX512VNNI__ 1
#define __AVX512VL__ 1
#undef _mm256_dpbusd_epi32 /* macros in GCC's avx512vnnivlintrin.h */
#undef _mm_dpbusd_epi32
#define _mm256_dpbusd_epi32(acc, a, b) kwsc_vnni_shim_dp256((acc), (a), (b))
#define _mm_dpbusd_epi32(acc, a, b) kwsc_vnni_shim_dp128((acc), (a), (b))
#else
#define __AVXVNNI__ 1
#define _mm256_dpbusd_avx_epi32(acc, a, b) kwsc_vnni_shim_dp256((acc), (a), (b))
#define _mm_dpbusd_avx_epi32(acc, a, b) kwsc_vnni_shim_dp128((acc), (a), (b))
#endif

#endif
