#ifndef CENVNET_SUPPORT_H
#define CENVNET_SUPPORT_H

#include <stdint.h>

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
/// With roundsInput, the input is rounded to bfloat16 first (the bf16 precision; the weights are
/// rounded by the caller before their transform). Returns 0 when done, -1 for sizes it does not
/// handle or a CPU without AVX-512 (nothing written), -2 when out of memory.
int envnet_winograd_convolution(const float *input, long width, int inputChannels, const float *transformed,
                                const float *bias, int outputChannels, long padding, long firstBlock, long blockCount,
                                float *output, long outputWidth, int roundsInput);

/// A convolution of one input channel over a row (unit stride and dilation, SingleChannelConvolution.c):
/// output[o * outputStride + t] = bias[o] + sum_j weight[o][j] input[t + j - padding] for output
/// positions t in [first, first + count) (input zero outside [0, width); bias may be NULL; at most
/// 16 taps). With roundsInput the input is rounded to bf16 (the bf16 precision; the caller rounds
/// the weight). Returns 1 when done, 0 (nothing written) without AVX-512 or for sizes it does not
/// take, -2 when out of memory.
int envnet_single_channel_convolution(const float *input, long width, const float *weight, int outputChannels, int taps,
                                      const float *bias, long padding, long first, long count, float *output,
                                      long outputStride, int roundsInput);
/// Its weight gradient: partial[o][j] += sum over t in [first, first + count) of
/// dy[o * outputWidth + t] input[t + j - padding], outputWidth = width + 2 padding - taps + 1; with
/// roundsOperands both factors are rounded to bf16 first. Returns as envnet_single_channel_convolution.
int envnet_single_channel_weight_gradient(const float *input, long width, const float *dy, long outputWidth,
                                          int outputChannels, int taps, long padding, long first, long count,
                                          float *partial, int roundsOperands);

/// EnvNet's front end in evaluation mode, for pooling cells [firstCell, firstCell + cellCount) of
/// one window: conv1 (1 -> c1, 1x8, BatchNorm folded into conv1Weights [c1][8] and conv1Shift)
/// and ReLU; conv2 (c1 -> c2, 1x8, weights from envnet_winograd_transform_weights, BatchNorm
/// shift conv2Shift); max pooling 1 x poolSize with stride poolSize; ReLU. Both convolutions are
/// zero-padded by `padding` on each side. Writes output[o * outputChannelStride + cell]. With
/// roundsOperands, the audio and conv2's input are rounded to bfloat16 (the bf16 precision; the
/// caller rounds the weights before folding). Returns 0 when done, -1 for sizes it does not handle
/// or a CPU without AVX-512 (nothing written), -2 when out of memory.
int envnet_front_end_forward(const float *audio, long audioLength, const float *conv1Weights, const float *conv1Shift,
                             int c1, const float *conv2Transformed, const float *conv2Shift, int c2, long padding,
                             long poolSize, long firstCell, long cellCount, float *output, long outputChannelStride,
                             int roundsOperands);


// bf16 matrix products with fp32 accumulation (BFloat16GEMM.c). K is packed in pairs.
/// 1 when this CPU has AVX-512 with AVX512-BF16.
int envnet_bf16_gemm_available(void);
/// fp32 to bf16, rounded to nearest with ties to even (NaN stays NaN).
uint16_t envnet_float_to_bf16(float value);
/// bf16 to fp32 (exact).
float envnet_bf16_to_float(uint16_t value);
/// ceil(k / 2).
long envnet_bf16_pair_count(long k);
/// uint16 values of B [k, n] packed in panels of 32 columns.
long envnet_bf16_packed_b_count(long k, long n);
/// Packs rows firstRow ..< firstRow + rowCount of A [m, k] (row-major, rows rowStride apart) as
/// m x pairs uint32, or 32-column panels of B [k, n] (row-major) as 64 bf16 per pair; vectorised,
/// for a range so that callers run them in parallel. Return 0 (and do nothing) without AVX512-BF16.
int envnet_bf16_pack_a_rows(const float *a, long rowStride, long m, long k, uint32_t *packed, long firstRow, long rowCount);
int envnet_bf16_pack_b_panels(const float *b, long rowStride, long k, long n, uint16_t *packed, long firstPanel, long panelCount);
/// The panels of B = W^T for W [n, k] (row-major, rows rowStride apart): a linear layer's weight.
int envnet_bf16_pack_bt_panels(const float *w, long rowStride, long k, long n, uint16_t *packed, long firstPanel, long panelCount);
/// C[r][col] (+)= sum_j A[r][j] B[j][col] for rows firstRow ..< firstRow + rowCount and the given
/// 32-column panels; returns 0 (and does nothing) when the CPU has no AVX512-BF16.
int envnet_bf16_gemm(long m, long n, long k, const uint32_t *packedA, const uint16_t *packedB, float *c, long ldc, int accumulate,
                     long firstRow, long rowCount, long firstPanel, long panelCount);
/// The weight gradient of a 1x8 convolution with unit stride over images of height 1, in bf16 with
/// fp32 sums: partial[o][c·8 + j] += Σ_t bf16(dy[o][t]) · bf16(x[c][t + j − padding]) over output
/// positions t in [first, first + count) (x zero outside [0, width)). x is [channels][width], dy
/// [outputChannels][outputWidth] with outputWidth = width + 2 padding − 7; channels a multiple of 4.
/// Returns 1 when done, 0 (nothing done) without AVX512-BF16 or for sizes it does not take, -2 when
/// out of memory.
int envnet_bf16_conv1x8_weight_gradient(const float *x, long width, int channels, const float *dy, long outputWidth,
                                        int outputChannels, long padding, long first, long count, float *partial);
/// C (+)= op(A) op(B) on the calling thread, as sgemm with alpha 1 and beta 0 or 1 (`accumulate`):
/// A is [m, k] (or, transposed, [k, m]), B is [k, n] (or [n, k]), row-major with the given row
/// strides. Packs both operands into memory of its own. Returns 1 when done, 0 (nothing done)
/// without AVX512-BF16, -2 when out of memory.
int envnet_bf16_gemm_strided(int transposeA, int transposeB, long m, long n, long k, const float *a, long lda,
                             const float *b, long ldb, int accumulate, float *c, long ldc);

#endif
