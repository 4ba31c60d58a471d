// Rounding 16 floats to bf16 in a register, for the kernels that round their operands and keep fp32
// arithmetic (Winograd, the fused front end, the single-channel convolution). Not part of the
// module's interface; include only where x86-64 intrinsics are available.
#ifndef ENVNET_BFLOAT16_ROUNDING_H
#define ENVNET_BFLOAT16_ROUNDING_H

#include <immintrin.h>

// The nearest bf16 (ties to even) of each lane, as a float: envnet_float_to_bf16 and back, lane by
// lane. A NaN stays a quiet NaN.
__attribute__((target("avx512f"))) static inline __m512 envnet_bf16_rounded(__m512 value) {
    const __m512i bits = _mm512_castps_si512(value), high = _mm512_set1_epi32((int)0xffff0000u);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_and_si512(_mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), high);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    const __m512i quieted = _mm512_and_si512(_mm512_or_si512(bits, _mm512_set1_epi32(0x00400000)), high);
    return _mm512_castsi512_ps(_mm512_mask_mov_epi32(rounded, nan, quieted));
}

#endif
