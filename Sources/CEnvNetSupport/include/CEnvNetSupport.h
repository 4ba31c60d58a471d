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

#endif
