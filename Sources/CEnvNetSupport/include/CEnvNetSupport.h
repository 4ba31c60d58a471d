#ifndef CENVNET_SUPPORT_H
#define CENVNET_SUPPORT_H

/// Chooses OpenBLAS's fastest kernel family for this CPU, once, before any BLAS call.
///
/// OpenBLAS 0.3.21 (Debian 12) does not recognise AVX-512 on AMD Zen 4 and falls back to its
/// Haswell (AVX2) kernels, which halves sgemm throughput there. When the user has not forced a
/// family with OPENBLAS_CORETYPE and the CPU has the AVX-512 subsets that OpenBLAS's SkylakeX
/// kernels use, this re-runs OpenBLAS's own dynamic selection with SkylakeX forced.
/// Returns 1 if the family was switched, 0 otherwise. Safe to call more than once.
int envnet_select_blas_kernels(void);

/// 1 when the CPU and OS support AVX-512 F, BW, DQ and VL; 0 otherwise.
int envnet_cpu_has_avx512(void);

/// OpenBLAS's name for the kernel family in use (for example "SkylakeX" or "Haswell").
const char *envnet_blas_core_name(void);

/// Peak resident set size of this process in bytes (from getrusage), 0 if unknown.
long long envnet_peak_resident_bytes(void);

/// Makes standard output line-buffered, so lines reach a log file or pipe as they are printed.
void envnet_line_buffer_standard_output(void);

/// 1 when the Winograd kernels (envnet_front_end_forward, envnet_winograd_convolution) run on
/// this machine (x86-64 with AVX-512), 0 otherwise.
int envnet_winograd_available(void);

/// How many pooling cells of `poolSize` positions envnet_front_end_forward computes together (the
/// fewest whose positions fill whole blocks of 64); pieces of work of a multiple of it compute no
/// block twice.
long envnet_front_end_cells_per_group(long poolSize);

/// Transforms conv2's weights for the fused front end's Winograd F(4, 8) correlation.
/// weights: [outputChannels][inputChannels][8] (BatchNorm's scale already multiplied in);
/// transformed: [11][inputChannels][outputChannels].
void envnet_winograd_transform_weights(const float *weights, int outputChannels, int inputChannels, float *transformed);

/// A 1x8 convolution with unit stride of one image of height 1 by Winograd F(4, 8): output
/// positions [64 firstBlock, 64 (firstBlock + blockCount)) (clipped to outputWidth) of
/// output [outputChannels][outputWidth] from input [inputChannels][width], zero-padded by `padding`
/// on both sides; outputWidth = width + 2 padding - 7. `transformed` comes from
/// envnet_winograd_transform_weights; `bias` may be NULL. outputChannels must be a multiple of 20.
/// Returns 0 when done, -1 for sizes it does not handle or a CPU without AVX-512 (nothing
/// written), -2 when out of memory.
int envnet_winograd_convolution(const float *input, long width, int inputChannels, const float *transformed,
                                const float *bias, int outputChannels, long padding, long firstBlock, long blockCount,
                                float *output, long outputWidth);

/// EnvNet's front end in evaluation mode, for pooling cells [firstCell, firstCell + cellCount) of
/// one window: conv1 (1 -> c1, 1x8, BatchNorm folded into conv1Weights [c1][8] and conv1Shift)
/// and ReLU; conv2 (c1 -> c2, 1x8, weights from envnet_winograd_transform_weights, BatchNorm
/// shift conv2Shift); max pooling 1 x poolSize with stride poolSize; ReLU. Both convolutions are
/// zero-padded by `padding` on each side. Writes output[o * outputChannelStride + cell].
/// Returns 0 when done, -1 for sizes it does not handle or a CPU without AVX-512 (nothing
/// written), -2 when out of memory.
int envnet_front_end_forward(const float *audio, long audioLength, const float *conv1Weights, const float *conv1Shift,
                             int c1, const float *conv2Transformed, const float *conv2Shift, int c2, long padding,
                             long poolSize, long firstCell, long cellCount, float *output, long outputChannelStride);

#endif
