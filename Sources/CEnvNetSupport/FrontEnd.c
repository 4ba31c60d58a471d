// EnvNet's front end in evaluation mode, fused into one pass that stays in cache:
// conv1 (1 -> C1, 1x8) + BatchNorm + ReLU, conv2 (C1 -> C2, 1x8) + BatchNorm, max pool 1xP/P, ReLU.
//
// Why: run layer by layer, these five layers write and re-read four activations of 40 x 24000
// floats per window (250 MB per batch of 64), and conv2 (40 x 40 x 8 multiply-adds per position)
// is 60 % of an inference. Here BatchNorm is folded into the convolutions, conv2 runs as a
// Winograd F(4, 8) correlation (11 products per 4 outputs instead of 32, so 2.9x fewer
// multiply-adds in its channel GEMMs), and each group of pooling cells goes from audio to pooled
// values through buffers of a few tens of KB. The kernels use AVX-512 and are compiled for it
// function by function, so the package needs no compiler flags; callers check
// envnet_winograd_available() and use the layer-by-layer path elsewhere.
#include "CEnvNetSupport.h"

#include <stdlib.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define ENVNET_HAS_AVX512_PATH 1
#include <immintrin.h>
#define ENVNET_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#include "WinogradF4x8.h"
#else
#define ENVNET_HAS_AVX512_PATH 0
#endif

enum { lanes = 16, points = 11, taps = 8, outputBlock = 20 };

int envnet_winograd_available(void) {
#if ENVNET_HAS_AVX512_PATH
    return envnet_cpu_has_avx512();
#else
    return 0;
#endif
}

long envnet_front_end_cells_per_group(long poolSize) {
    const long tilesPerCell = poolSize / 4;
    long cells = 1;
    while (tilesPerCell > 0 && (cells * tilesPerCell) % lanes != 0) cells++;
    return cells;
}

void envnet_front_end_transform_weights(const float *weights, int outputChannels, int inputChannels, float *transformed) {
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

static long round_up(long value, long multiple) { return (value + multiple - 1) / multiple * multiple; }

// A row in 4 phases: destination[phase * stride + u] = row[start + 4u + phase] for u < count
// (a multiple of 16), zero outside [0, width). Inside the row, 64 inputs at a time are split by
// two-source permutes: lane u of phase p is element 4u + p of a0..a3.
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

// One Winograd block as each tile's maximum over its 4 outputs (pooling does not care about order).
// [c1][4][xu] -> [c2] x 16 tile maxima
ENVNET_AVX512 static void winograd_block(const float *x4, long xu, int c1, int c2, long firstTile,
                                         const float *transformed, float *v, float *m,
                                         float *tileMax, long tileMaxStride) {
    winograd_products(x4, xu, c1, c2, firstTile, transformed, v, m);
    for (int o = 0; o < c2; o++) {
        __m512 y[4];
        tile_outputs(m, c2, o, y);
        const __m512 maximum = _mm512_max_ps(_mm512_max_ps(y[0], y[1]), _mm512_max_ps(y[2], y[3]));
        _mm512_storeu_ps(tileMax + (long)o * tileMaxStride + firstTile, maximum);
    }
}

ENVNET_AVX512 static int front_end_forward(const float *audio, long audioLength, const float *conv1Weights,
                                           const float *conv1Shift, int c1, const float *conv2Transformed,
                                           const float *conv2Shift, int c2, long padding, long poolSize,
                                           long firstCell, long cellCount, float *output, long outputChannelStride) {
    const long tilesPerCell = poolSize / 4;
    const long cellsPerGroup = envnet_front_end_cells_per_group(poolSize);
    const long tiles = cellsPerGroup * tilesPerCell;
    const long xu = round_up(tiles + 2, lanes);          // conv2 input entries per phase
    const long audioPerPhase = xu + lanes;               // + the taps' reach past the last vector
    const long conv1Length = audioLength + 2 * padding - taps + 1;

    const size_t floats = (size_t)(4 * audioPerPhase + (long)c1 * 4 * xu + (long)points * c1 * lanes +
                                   (long)points * c2 * lanes + (long)c2 * tiles);
    float *scratch = aligned_alloc(64, round_up((long)(floats * sizeof(float)), 64));
    if (scratch == NULL) return -2;
    float *a4 = scratch;
    float *x4 = a4 + 4 * audioPerPhase;
    float *v = x4 + (long)c1 * 4 * xu;
    float *m = v + (long)points * c1 * lanes;
    float *tileMax = m + (long)points * c2 * lanes;

    for (long group = firstCell; group < firstCell + cellCount; group += cellsPerGroup) {
        // conv2 input index j (in its padded coordinates) of the group's first position.
        const long base = group * poolSize;
        // Audio in 4 phases: a4[r][w] = audio[base - 2 padding + 4w + r], zero outside the clip.
        split_phases(audio, audioLength, base - 2 * padding, audioPerPhase, a4, audioPerPhase);
        // conv1 + BatchNorm + ReLU into x4[c][phase][u] = x[base + 4u + phase].
        const int touchesEdge = base < padding || base + 4 * xu > padding + conv1Length;
        for (int c = 0; c < c1; c++) {
            __m512 w[taps];
            for (int k = 0; k < taps; k++) w[k] = _mm512_set1_ps(conv1Weights[c * taps + k]);
            const __m512 shift = _mm512_set1_ps(conv1Shift[c]);
            for (int phase = 0; phase < 4; phase++) {
                float *row = x4 + ((long)c * 4 + phase) * xu;
                for (long u = 0; u < xu; u += lanes) {
                    __m512 acc = shift;
                    for (int k = 0; k < taps; k++) {
                        const int s = phase + k;
                        acc = _mm512_fmadd_ps(w[k], _mm512_loadu_ps(a4 + (s & 3) * audioPerPhase + u + (s >> 2)), acc);
                    }
                    _mm512_store_ps(row + u, _mm512_max_ps(acc, _mm512_setzero_ps()));
                }
                if (touchesEdge) {
                    // conv2's zero padding lies outside conv1's output.
                    for (long u = 0; u < xu; u++) {
                        const long j = base + 4 * u + phase;
                        if (j < padding || j >= padding + conv1Length) row[u] = 0;
                    }
                }
            }
        }
        for (long block = 0; block < tiles; block += lanes)
            winograd_block(x4, xu, c1, c2, block, conv2Transformed, v, m, tileMax, tiles);
        // Pool the tile maxima per cell, add the folded BatchNorm shift, ReLU.
        for (long cell = 0; cell < cellsPerGroup && group + cell < firstCell + cellCount; cell++) {
            for (int o = 0; o < c2; o++) {
                const float *row = tileMax + (long)o * tiles + cell * tilesPerCell;
                __m512 maximum = _mm512_set1_ps(-__builtin_inff());
                long t = 0;
                for (; t + lanes <= tilesPerCell; t += lanes) maximum = _mm512_max_ps(maximum, _mm512_loadu_ps(row + t));
                float value = _mm512_reduce_max_ps(maximum);
                for (; t < tilesPerCell; t++) value = row[t] > value ? row[t] : value;
                value += conv2Shift[o];
                output[(long)o * outputChannelStride + group + cell] = value > 0 ? value : 0;
            }
        }
    }
    free(scratch);
    return 0;
}

// A 1x8 convolution with unit stride by Winograd F(4, 8), for blocks of 64 output positions of
// one image. [C][width] -> [O][outputWidth]
ENVNET_AVX512 static int winograd_convolution(const float *input, long width, int c1, const float *transformed,
                                              const float *bias, int c2, long padding, long firstBlock,
                                              long blockCount, float *output, long outputWidth) {
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
                                float *output, long outputWidth) {
#if ENVNET_HAS_AVX512_PATH
    if (!envnet_winograd_available()) return -1;
    if (inputChannels < 1 || outputChannels < outputBlock || outputChannels % outputBlock != 0 || padding < 0 ||
        outputWidth != width + 2 * padding - taps + 1 || outputWidth < 1 || firstBlock < 0 || blockCount < 0 ||
        (firstBlock + blockCount - 1) * 4 * lanes >= outputWidth)
        return -1;
    return winograd_convolution(input, width, inputChannels, transformed, bias, outputChannels, padding, firstBlock,
                                blockCount, output, outputWidth);
#else
    (void)input; (void)width; (void)inputChannels; (void)transformed; (void)bias; (void)outputChannels; (void)padding;
    (void)firstBlock; (void)blockCount; (void)output; (void)outputWidth;
    return -1;
#endif
}

int envnet_front_end_forward(const float *audio, long audioLength, const float *conv1Weights, const float *conv1Shift,
                             int c1, const float *conv2Transformed, const float *conv2Shift, int c2, long padding,
                             long poolSize, long firstCell, long cellCount, float *output, long outputChannelStride) {
#if ENVNET_HAS_AVX512_PATH
    if (!envnet_winograd_available()) return -1;
    if (c1 < 1 || c2 < outputBlock || c2 % outputBlock != 0 || poolSize < 4 || poolSize % 4 != 0 || padding < 0)
        return -1;
    const long conv2Length = audioLength + 4 * padding - 2 * (taps - 1);
    if (firstCell < 0 || cellCount < 0 || (firstCell + cellCount) * poolSize > conv2Length) return -1;
    return front_end_forward(audio, audioLength, conv1Weights, conv1Shift, c1, conv2Transformed, conv2Shift, c2, padding,
                             poolSize, firstCell, cellCount, output, outputChannelStride);
#else
    (void)audio; (void)audioLength; (void)conv1Weights; (void)conv1Shift; (void)c1; (void)conv2Transformed;
    (void)conv2Shift; (void)c2; (void)padding; (void)poolSize; (void)firstCell; (void)cellCount; (void)output;
    (void)outputChannelStride;
    return -1;
#endif
}
