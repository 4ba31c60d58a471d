// A 1x8 convolution with unit stride over height-1 images by Winograd F(4, 8): 11 products per 4
// outputs instead of 32, so the channel GEMMs do 2.9x fewer multiply-adds. General over the
// channel counts it fits (any input channels, output channels a multiple of 20) and the padding;
// the tensor core's Convolution takes it for such problems, forward and input gradient. The
// kernels use AVX-512 and are compiled for it function by function, so the package needs no
// compiler flags; callers check envnet_winograd_available() and use im2col elsewhere.
#include "WinogradBlocks.h"

int envnet_winograd_available(void) {
#if ENVNET_HAS_AVX512_PATH
    return envnet_cpu_has_avx512();
#else
    return 0;
#endif
}

void envnet_winograd_transform_weights(const float *weights, int outputChannels, int inputChannels, float *transformed) {
#if ENVNET_HAS_AVX512_PATH
    for (int xi = 0; xi < points; xi++)
        for (int c = 0; c < inputChannels; c++)
            for (int o = 0; o < outputChannels; o++) {
                const float *w = weights + ((long)o * inputChannels + c) * taps;
                double sum = 0;
                for (int k = 0; k < taps; k++) sum += envnet_winograd_g[xi][k] * (double)w[k];
                transformed[((long)xi * inputChannels + c) * outputChannels + o] = (float)sum;
            }
#else
    (void)weights; (void)outputChannels; (void)inputChannels; (void)transformed;
#endif
}

#if ENVNET_HAS_AVX512_PATH
// A 1x8 convolution with unit stride by Winograd F(4, 8), for blocks of 64 output positions of
// one image. [C][width] -> [O][outputWidth]
ENVNET_AVX512 static int winograd_convolution(const float *input, long width, int c1, const float *transformed,
                                              const float *bias, int c2, long padding, long firstBlock,
                                              long blockCount, float *output, long outputWidth, int roundsInput) {
    // The input of all the blocks in phase layout, x4[c][phase][u] = input[start + 4u + phase].
    const long xu = round_up(blockCount * lanes + 2, lanes);
    const size_t floats = (size_t)((long)c1 * 4 * xu + (long)points * c1 * lanes + (long)points * c2 * lanes);
    float *scratch = aligned_alloc(64, round_up((long)(floats * sizeof(float)), 64));
    if (scratch == NULL) return -2;
    float *x4 = scratch;
    float *v = x4 + (long)c1 * 4 * xu;
    float *m = v + (long)points * c1 * lanes;
    const long start = firstBlock * 4 * lanes - padding;
    for (int c = 0; c < c1; c++) split_phases(input + (long)c * width, width, start, xu, x4 + (long)c * 4 * xu, xu);
    if (roundsInput) round_to_bf16(x4, (long)c1 * 4 * xu);
    // Tile t's output i is position 4t + i: two rounds of two-source permutes interleave them.
    const __m512i pairLow = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i pairHigh = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i quadLow = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i quadHigh = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    for (long block = 0; block < blockCount; block++) {
        winograd_products(x4, xu, c1, c2, block * lanes, transformed, v, m);
        const long first = (firstBlock + block) * 4 * lanes;  // the block's first output position
        const long valid = outputWidth - first < 4 * lanes ? outputWidth - first : 4 * lanes;
        for (int o = 0; o < c2; o++) {
            __m512 y[4];
            tile_outputs(m, c2, o, y);
            const __m512 shift = _mm512_set1_ps(bias != NULL ? bias[o] : 0);
            const __m512 y01Low = _mm512_permutex2var_ps(y[0], pairLow, y[1]), y01High = _mm512_permutex2var_ps(y[0], pairHigh, y[1]);
            const __m512 y23Low = _mm512_permutex2var_ps(y[2], pairLow, y[3]), y23High = _mm512_permutex2var_ps(y[2], pairHigh, y[3]);
            const __m512 out[4] = {
                _mm512_add_ps(_mm512_permutex2var_ps(y01Low, quadLow, y23Low), shift),
                _mm512_add_ps(_mm512_permutex2var_ps(y01Low, quadHigh, y23Low), shift),
                _mm512_add_ps(_mm512_permutex2var_ps(y01High, quadLow, y23High), shift),
                _mm512_add_ps(_mm512_permutex2var_ps(y01High, quadHigh, y23High), shift),
            };
            float *destination = output + (long)o * outputWidth + first;
            for (int k = 0; k < 4; k++) {
                const long count = valid - 16 * k;
                if (count >= 16) _mm512_storeu_ps(destination + 16 * k, out[k]);
                else if (count > 0) _mm512_mask_storeu_ps(destination + 16 * k, (__mmask16)((1u << count) - 1), out[k]);
            }
        }
    }
    free(scratch);
    return 0;
}
#endif

int envnet_winograd_convolution(const float *input, long width, int inputChannels, const float *transformed,
                                const float *bias, int outputChannels, long padding, long firstBlock, long blockCount,
                                float *output, long outputWidth, int roundsInput) {
#if ENVNET_HAS_AVX512_PATH
    if (!envnet_winograd_available()) return -1;
    if (inputChannels < 1 || outputChannels < outputBlock || outputChannels % outputBlock != 0 || padding < 0 ||
        outputWidth != width + 2 * padding - taps + 1 || outputWidth < 1 || firstBlock < 0 || blockCount < 0 ||
        (firstBlock + blockCount - 1) * 4 * lanes >= outputWidth)
        return -1;
    return winograd_convolution(input, width, inputChannels, transformed, bias, outputChannels, padding, firstBlock,
                                blockCount, output, outputWidth, roundsInput);
#else
    (void)input; (void)width; (void)inputChannels; (void)transformed; (void)bias; (void)outputChannels; (void)padding;
    (void)firstBlock; (void)blockCount; (void)output; (void)outputWidth; (void)roundsInput;
    return -1;
#endif
}
