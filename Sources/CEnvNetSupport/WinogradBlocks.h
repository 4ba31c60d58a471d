// The Winograd F(4, 8) machinery that the general convolution (WinogradConvolution.c) and the
// fused EnvNet front end (FusedFrontEnd.c) share: the phase split of an input row, the channel
// products of one block of 16 tiles, and the output transform. Static functions, included by
// both files; not part of the module's interface.
#ifndef ENVNET_WINOGRAD_BLOCKS_H
#define ENVNET_WINOGRAD_BLOCKS_H

#include "CEnvNetSupport.h"

#include <stdlib.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define ENVNET_HAS_AVX512_PATH 1
#include <immintrin.h>
#include <string.h>
#include <stdint.h>
#define ENVNET_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#include "WinogradF4x8.h"
#include "BFloat16Rounding.h"
#else
#define ENVNET_HAS_AVX512_PATH 0
#endif

enum { lanes = 16, points = 11, taps = 8, outputBlock = 20 };

#if ENVNET_HAS_AVX512_PATH

static long round_up(long value, long multiple) { return (value + multiple - 1) / multiple * multiple; }

// A row in 4 phases: destination[phase * stride + u] = row[start + 4u + phase] for u < count
// (a multiple of 16), zero outside [0, width). Inside the row, 64 inputs at a time are split by
// two-source permutes: lane u of phase p is element 4u + p of a0..a3.
// Rounds `count` floats to the nearest bfloat16 (ties to even) and back, in place: the operands of
// the bf16 precision, which the fp32 Winograd arithmetic then multiplies exactly as a bf16 kernel
// with fp32 sums would (up to the order of the sums). A NaN stays a quiet NaN, as in
// envnet_float_to_bf16.
ENVNET_AVX512 static void round_to_bf16(float *values, long count) {
    long i = 0;
    for (; i + 16 <= count; i += 16) _mm512_storeu_ps(values + i, envnet_bf16_rounded(_mm512_loadu_ps(values + i)));
    for (; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, values + i, sizeof bits);
        if ((bits & 0x7fffffffu) > 0x7f800000u) bits = (bits | 0x00400000u) & 0xffff0000u;
        else bits = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
        memcpy(values + i, &bits, sizeof bits);
    }
}

ENVNET_AVX512 static void split_phases(const float *row, long width, long start, long count, float *destination,
                                       long stride) {
    const __m512i phaseIndex[4] = {
        _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0),
        _mm512_setr_epi32(1, 5, 9, 13, 17, 21, 25, 29, 0, 0, 0, 0, 0, 0, 0, 0),
        _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 0, 0, 0, 0, 0, 0, 0, 0),
        _mm512_setr_epi32(3, 7, 11, 15, 19, 23, 27, 31, 0, 0, 0, 0, 0, 0, 0, 0),
    };
    for (long u0 = 0; u0 < count; u0 += lanes) {
        const long first = start + 4 * u0;
        if (first >= 0 && first + 4 * lanes <= width) {
            const __m512 a0 = _mm512_loadu_ps(row + first), a1 = _mm512_loadu_ps(row + first + 16);
            const __m512 a2 = _mm512_loadu_ps(row + first + 32), a3 = _mm512_loadu_ps(row + first + 48);
            for (int phase = 0; phase < 4; phase++) {
                const __m512 low = _mm512_permutex2var_ps(a0, phaseIndex[phase], a1);
                const __m512 high = _mm512_permutex2var_ps(a2, phaseIndex[phase], a3);
                _mm512_storeu_ps(destination + phase * stride + u0, _mm512_shuffle_f32x4(low, high, _MM_SHUFFLE(1, 0, 1, 0)));
            }
        } else {
            // Near the row's ends: the padding's zeros.
            for (int phase = 0; phase < 4; phase++)
                for (long u = u0; u < u0 + lanes; u++) {
                    const long index = start + 4 * u + phase;
                    destination[phase * stride + u] = index >= 0 && index < width ? row[index] : 0;
                }
        }
    }
}

// The 4 outputs of output channel o for the 16 tiles of a block: y = A^T m.
ENVNET_AVX512 static void tile_outputs(const float *m, int c2, int o, __m512 y[4]) {
    __m512 products[points];
    for (int xi = 0; xi < points; xi++) products[xi] = _mm512_load_ps(m + ((long)xi * c2 + o) * lanes);
    envnet_winograd_output_transform(products, y);
}

// The products of one Winograd block: 16 tiles (64 conv2 outputs) for every output channel.
// x4[c][phase][u] holds the (padded) input at 4u + phase; m[xi][o][16] receives the products.
// [c1][4][xu] -> [11][c2][16]
ENVNET_AVX512 static void winograd_products(const float *x4, long xu, int c1, int c2, long firstTile,
                                            const float *transformed, float *v, float *m) {
    // v[xi][c][16] = B^T d, where d[j] of tile t is x[4 (firstTile + t) + j].
    for (int c = 0; c < c1; c++) {
        const float *channel = x4 + (long)c * 4 * xu + firstTile;
        __m512 d[points], transformedInput[points];
        for (int j = 0; j < points; j++) d[j] = _mm512_loadu_ps(channel + (long)(j & 3) * xu + (j >> 2));
        envnet_winograd_input_transform(d, transformedInput);
        for (int xi = 0; xi < points; xi++) _mm512_store_ps(v + ((long)xi * c1 + c) * lanes, transformedInput[xi]);
    }
    // m[xi][o][16] = sum over c of U[xi][c][o] v[xi][c]: one small GEMM per point, 20 output
    // channels in registers at a time.
    for (int xi = 0; xi < points; xi++) {
        const float *u = transformed + (long)xi * c1 * c2;
        const float *vp = v + (long)xi * c1 * lanes;
        for (int o0 = 0; o0 < c2; o0 += outputBlock) {
            // Written out so that the 20 accumulators stay in registers (a loop over them
            // made the compiler keep them on the stack).
#define ENVNET_ACCUMULATORS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) \
                               X(10) X(11) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19)
#define ENVNET_DECLARE(i) __m512 acc##i = _mm512_setzero_ps();
#define ENVNET_ACCUMULATE(i) acc##i = _mm512_fmadd_ps(_mm512_set1_ps(weights[i]), value, acc##i);
#define ENVNET_STORE(i) _mm512_store_ps(m + ((long)xi * c2 + o0 + i) * lanes, acc##i);
            ENVNET_ACCUMULATORS(ENVNET_DECLARE)
            const float *weights = u + o0;
            for (int c = 0; c < c1; c++, weights += c2) {
                const __m512 value = _mm512_load_ps(vp + (long)c * lanes);
                ENVNET_ACCUMULATORS(ENVNET_ACCUMULATE)
            }
            ENVNET_ACCUMULATORS(ENVNET_STORE)
#undef ENVNET_STORE
#undef ENVNET_ACCUMULATE
#undef ENVNET_DECLARE
#undef ENVNET_ACCUMULATORS
        }
    }
}
#endif

#endif
