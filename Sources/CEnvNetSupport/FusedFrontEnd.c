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
#include "WinogradBlocks.h"

long envnet_front_end_cells_per_group(long poolSize) {
    const long tilesPerCell = poolSize / 4;
    long cells = 1;
    while (tilesPerCell > 0 && (cells * tilesPerCell) % lanes != 0) cells++;
    return cells;
}

#if ENVNET_HAS_AVX512_PATH
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
                                           long firstCell, long cellCount, float *output, long outputChannelStride,
                                           int roundsOperands) {
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
        if (roundsOperands) round_to_bf16(a4, 4 * audioPerPhase);
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
        // conv2's operand: conv1's output after BatchNorm and ReLU.
        if (roundsOperands) round_to_bf16(x4, (long)c1 * 4 * xu);
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
#endif

int envnet_front_end_forward(const float *audio, long audioLength, const float *conv1Weights, const float *conv1Shift,
                             int c1, const float *conv2Transformed, const float *conv2Shift, int c2, long padding,
                             long poolSize, long firstCell, long cellCount, float *output, long outputChannelStride,
                             int roundsOperands) {
#if ENVNET_HAS_AVX512_PATH
    if (!envnet_winograd_available()) return -1;
    if (c1 < 1 || c2 < outputBlock || c2 % outputBlock != 0 || poolSize < 4 || poolSize % 4 != 0 || padding < 0)
        return -1;
    const long conv2Length = audioLength + 4 * padding - 2 * (taps - 1);
    if (firstCell < 0 || cellCount < 0 || (firstCell + cellCount) * poolSize > conv2Length) return -1;
    return front_end_forward(audio, audioLength, conv1Weights, conv1Shift, c1, conv2Transformed, conv2Shift, c2, padding,
                             poolSize, firstCell, cellCount, output, outputChannelStride, roundsOperands);
#else
    (void)audio; (void)audioLength; (void)conv1Weights; (void)conv1Shift; (void)c1; (void)conv2Transformed;
    (void)conv2Shift; (void)c2; (void)padding; (void)poolSize; (void)firstCell; (void)cellCount; (void)output; (void)roundsOperands;
    (void)outputChannelStride;
    return -1;
#endif
}
