// Convolutions of one input channel over rows (EnvNet's conv1: audio into 40 filters of 8 taps).
//
// Why: im2col + GEMM turns them into products with K = taps (8): every output costs a column of 8
// values written and read again, and a GEMM with 8 rows of K runs far below its rate; the forward
// pass took 18 ms per batch of 64 and the weight gradient 26-32 ms, though each is only 492 M
// multiply-adds. Here each block of 16 positions loads its taps' input vectors once and reuses them
// for every output channel (forward), or for three output channels' accumulators at a time (weight
// gradient). AVX-512, compiled function by function; callers check envnet_cpu_has_avx512().
#include "CEnvNetSupport.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include "BFloat16Rounding.h"
#define ENVNET_SINGLE_PATH 1
#define ENVNET_AVX512_SINGLE __attribute__((target("avx512f,avx512dq,fma")))
#else
#define ENVNET_SINGLE_PATH 0
#endif

enum { singleLanes = 16, maximumTaps = 16 };

#if ENVNET_SINGLE_PATH
// segment[i] = input[origin + i] for i < used, zero outside [0, width) and from `used` to `length`
// (the lanes past the last position then multiply zeros).
// With `rounds`, each value is rounded to bf16 (the bf16 precision's operand).
static void copy_segment(const float *input, long width, long origin, long used, long length, int rounds, float *segment) {
    for (long i = 0; i < length; i++) {
        const long at = origin + i;
        const float value = i < used && at >= 0 && at < width ? input[at] : 0;
        segment[i] = rounds ? envnet_bf16_to_float(envnet_float_to_bf16(value)) : value;
    }
}

ENVNET_AVX512_SINGLE static inline __attribute__((always_inline)) void forward(const float *segment, const float *weight, int outputChannels, int taps,
                                         const float *bias, long count, float *output, long outputStride) {
    for (long t = 0; t < count; t += singleLanes) {
        const long left = count - t;
        const __mmask16 mask = left >= singleLanes ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        __m512 x[maximumTaps];
        for (int j = 0; j < taps; j++) x[j] = _mm512_loadu_ps(segment + t + j);
        for (int o = 0; o < outputChannels; o++) {
            const float *w = weight + (long)o * taps;
            __m512 sum = _mm512_set1_ps(bias ? bias[o] : 0.0f);
            for (int j = 0; j < taps; j++) sum = _mm512_fmadd_ps(_mm512_set1_ps(w[j]), x[j], sum);
            _mm512_mask_storeu_ps(output + (long)o * outputStride + t, mask, sum);
        }
    }
}

// partial[o][j] += sum over t < count of dy[o][t] * segment[t + j], three output channels at a time.
ENVNET_AVX512_SINGLE static inline __attribute__((always_inline)) void weight_gradient(const float *segment, const float *dy, long dyStride, int outputChannels,
                                                 int taps, long count, int rounds, float *partial) {
    for (int o0 = 0; o0 < outputChannels; o0 += 3) {
        const int rows = outputChannels - o0 < 3 ? outputChannels - o0 : 3;
        __m512 sums[3][maximumTaps];
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < taps; j++) sums[r][j] = _mm512_setzero_ps();
        for (long t = 0; t < count; t += singleLanes) {
            const long left = count - t;
            const __mmask16 mask = left >= singleLanes ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
            __m512 g[3];
            for (int r = 0; r < 3; r++)
                g[r] = r < rows ? _mm512_maskz_loadu_ps(mask, dy + (long)(o0 + r) * dyStride + t) : _mm512_setzero_ps();
            if (rounds)
                for (int r = 0; r < 3; r++) g[r] = envnet_bf16_rounded(g[r]);
            for (int j = 0; j < taps; j++) {
                const __m512 x = _mm512_loadu_ps(segment + t + j);
                for (int r = 0; r < 3; r++) sums[r][j] = _mm512_fmadd_ps(g[r], x, sums[r][j]);
            }
        }
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < taps; j++) partial[(long)(o0 + r) * taps + j] += _mm512_reduce_add_ps(sums[r][j]);
    }
}
// The taps as a constant where it is EnvNet's (8), so that the loops unroll and the accumulators
// stay in registers.
ENVNET_AVX512_SINGLE static void forward_any(const float *segment, const float *weight, int outputChannels, int taps,
                                             const float *bias, long count, float *output, long outputStride) {
    if (taps == 8) forward(segment, weight, outputChannels, 8, bias, count, output, outputStride);
    else forward(segment, weight, outputChannels, taps, bias, count, output, outputStride);
}

ENVNET_AVX512_SINGLE static void weight_gradient_any(const float *segment, const float *dy, long dyStride, int outputChannels,
                                                     int taps, long count, int rounds, float *partial) {
    if (taps == 8) weight_gradient(segment, dy, dyStride, outputChannels, 8, count, rounds, partial);
    else weight_gradient(segment, dy, dyStride, outputChannels, taps, count, rounds, partial);
}
#endif

int envnet_single_channel_convolution(const float *input, long width, const float *weight, int outputChannels, int taps,
                                      const float *bias, long padding, long first, long count, float *output,
                                      long outputStride, int roundsInput) {
#if ENVNET_SINGLE_PATH
    if (!envnet_cpu_has_avx512() || taps < 1 || taps > maximumTaps || outputChannels < 1 || padding < 0 || first < 0 ||
        count < 0 || first + count > width + 2 * padding - taps + 1) return 0;
    if (count == 0) return 1;
    // The input the block reads, zero-padded, and a vector's reach past the last position.
    const long length = count + taps - 1 + singleLanes;
    float *segment = malloc((size_t)length * sizeof(float));
    if (segment == NULL) return -2;
    copy_segment(input, width, first - padding, count + taps - 1, length, roundsInput, segment);
    forward_any(segment, weight, outputChannels, taps, bias, count, output + first, outputStride);
    free(segment);
    return 1;
#else
    (void)input; (void)width; (void)weight; (void)outputChannels; (void)taps; (void)bias; (void)padding; (void)first;
    (void)count; (void)output; (void)outputStride; (void)roundsInput;
    return 0;
#endif
}

int envnet_single_channel_weight_gradient(const float *input, long width, const float *dy, long outputWidth,
                                          int outputChannels, int taps, long padding, long first, long count,
                                          float *partial, int roundsOperands) {
#if ENVNET_SINGLE_PATH
    if (!envnet_cpu_has_avx512() || taps < 1 || taps > maximumTaps || outputChannels < 1 || padding < 0 || first < 0 ||
        count < 0 || outputWidth != width + 2 * padding - taps + 1 || first + count > outputWidth) return 0;
    if (count == 0) return 1;
    const long length = count + taps - 1 + singleLanes;
    float *segment = malloc((size_t)length * sizeof(float));
    if (segment == NULL) return -2;
    copy_segment(input, width, first - padding, count + taps - 1, length, roundsOperands, segment);
    weight_gradient_any(segment, dy + first, outputWidth, outputChannels, taps, count, roundsOperands, partial);
    free(segment);
    return 1;
#else
    (void)input; (void)width; (void)dy; (void)outputWidth; (void)outputChannels; (void)taps; (void)padding; (void)first;
    (void)count; (void)partial; (void)roundsOperands;
    return 0;
#endif
}
