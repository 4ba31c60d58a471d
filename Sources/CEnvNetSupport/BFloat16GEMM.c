// Matrix products with bf16 operands and fp32 accumulation (what PyTorch's bf16 autocast does for
// linear layers), by AVX512-BF16's vdpbf16ps: each instruction multiplies 16 pairs of bf16 values
// and adds both products of a pair to one fp32 lane, twice the multiply-adds of an fp32 FMA.
// Debian's OpenBLAS 0.3.21 exports no cblas_sbgemm, so the kernel is ours. It is compiled for
// AVX512-BF16 function by function (no package flags); callers check envnet_bf16_gemm_available().
//
// Layouts. K is taken in pairs (an odd K gets a zero partner). A is packed as one uint32 per row and
// pair: (bf16(A[r][2p]) | bf16(A[r][2p+1]) << 16), rows of ceil(K/2). B is packed in panels of 32
// columns: for each pair p, 64 bf16 values, column j's two at 2j and 2j+1; columns past N are zero.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "CEnvNetSupport.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define ENVNET_HAS_BF16_PATH 1
#include <immintrin.h>
#define ENVNET_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))
#else
#define ENVNET_HAS_BF16_PATH 0
#endif

enum { panelWidth = 32, rowBlock = 8 };

int envnet_bf16_gemm_available(void) {
#if ENVNET_HAS_BF16_PATH
    __builtin_cpu_init();
    return envnet_cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

uint16_t envnet_float_to_bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    // A NaN stays a (quiet) NaN; everything else rounds to nearest, ties to even.
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

float envnet_bf16_to_float(uint16_t value) {
    uint32_t bits = (uint32_t)value << 16;
    float result;
    memcpy(&result, &bits, sizeof result);
    return result;
}

long envnet_bf16_pair_count(long k) { return (k + 1) / 2; }

long envnet_bf16_packed_b_count(long k, long n) {
    return ((n + panelWidth - 1) / panelWidth) * envnet_bf16_pair_count(k) * 2 * panelWidth;
}

#if ENVNET_HAS_BF16_PATH

// `rows` rows (at most 8) of one 32-column panel: 2 x rows accumulators stay in registers.
ENVNET_BF16 static inline __attribute__((always_inline)) void
block(int rows, long pairs, const uint32_t *a, const uint16_t *panel, float *c, long ldc, int columns, int accumulate) {
    __m512 sums[rowBlock][2];
    for (int r = 0; r < rowBlock; r++) sums[r][0] = sums[r][1] = _mm512_setzero_ps();
    for (long p = 0; p < pairs; p++) {
        __m512bh left = (__m512bh)_mm512_loadu_si512((const void *)(panel + p * 2 * panelWidth));
        __m512bh right = (__m512bh)_mm512_loadu_si512((const void *)(panel + p * 2 * panelWidth + panelWidth));
        for (int r = 0; r < rows; r++) {
            __m512bh pair = (__m512bh)_mm512_set1_epi32((int)a[r * pairs + p]);
            sums[r][0] = _mm512_dpbf16_ps(sums[r][0], pair, left);
            sums[r][1] = _mm512_dpbf16_ps(sums[r][1], pair, right);
        }
    }
    __mmask16 first = columns >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << columns) - 1u);
    __mmask16 second = columns >= 32 ? (__mmask16)0xffff : columns <= 16 ? (__mmask16)0 : (__mmask16)((1u << (columns - 16)) - 1u);
    for (int r = 0; r < rows; r++) {
        float *row = c + r * ldc;
        __m512 low = sums[r][0], high = sums[r][1];
        if (accumulate) {
            low = _mm512_add_ps(low, _mm512_maskz_loadu_ps(first, row));
            high = _mm512_add_ps(high, _mm512_maskz_loadu_ps(second, row + 16));
        }
        _mm512_mask_storeu_ps(row, first, low);
        _mm512_mask_storeu_ps(row + 16, second, high);
    }
}

ENVNET_BF16 static void run(long m, long n, long k, const uint32_t *packedA, const uint16_t *packedB, float *c, long ldc,
                            int accumulate, long firstRow, long rowCount, long firstPanel, long panelCount) {
    long pairs = envnet_bf16_pair_count(k);
    for (long panel = firstPanel; panel < firstPanel + panelCount; panel++) {
        const uint16_t *b = packedB + panel * pairs * 2 * panelWidth;
        long column = panel * panelWidth;
        int columns = (int)(n - column < panelWidth ? n - column : panelWidth);
        for (long r = firstRow; r < firstRow + rowCount && r < m; r += rowBlock) {
            long left = firstRow + rowCount - r < m - r ? firstRow + rowCount - r : m - r;
            int rows = (int)(left < rowBlock ? left : rowBlock);
            const uint32_t *a = packedA + r * pairs;
            float *out = c + r * ldc + column;
            // Constant row counts let the compiler keep every accumulator in a register.
            switch (rows) {
            case 8: block(8, pairs, a, b, out, ldc, columns, accumulate); break;
            case 7: block(7, pairs, a, b, out, ldc, columns, accumulate); break;
            case 6: block(6, pairs, a, b, out, ldc, columns, accumulate); break;
            case 5: block(5, pairs, a, b, out, ldc, columns, accumulate); break;
            case 4: block(4, pairs, a, b, out, ldc, columns, accumulate); break;
            case 3: block(3, pairs, a, b, out, ldc, columns, accumulate); break;
            case 2: block(2, pairs, a, b, out, ldc, columns, accumulate); break;
            default: block(1, pairs, a, b, out, ldc, columns, accumulate); break;
            }
        }
    }
}

// Packing with the conversion instruction (VCVTNE2PS2BF16: round to nearest even, as
// envnet_float_to_bf16, except that it flushes denormal inputs to zero, as VDPBF16PS does anyway).
ENVNET_BF16 static void pack_a_fast(const float *a, long rowStride, long m, long k, uint32_t *packed, long firstRow, long rowCount) {
    long pairs = envnet_bf16_pair_count(k);
    for (long r = firstRow; r < firstRow + rowCount && r < m; r++) {
        const float *row = a + r * rowStride;
        uint16_t *out = (uint16_t *)(packed + r * pairs);
        long j = 0;
        for (; j + 32 <= k; j += 32) {
            __m512bh values = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(row + j + 16), _mm512_loadu_ps(row + j));
            _mm512_storeu_si512((void *)(out + j), (__m512i)values);
        }
        for (; j < k; j++) out[j] = envnet_float_to_bf16(row[j]);
        if (k % 2) out[k] = 0;
    }
}

ENVNET_BF16 static void pack_b_fast(const float *b, long rowStride, long k, long n, uint16_t *packed, long firstPanel, long panelCount) {
    long pairs = envnet_bf16_pair_count(k);
    // Interleaves row 2p (values 0-31) with row 2p+1 (32-63): column j's pair at 2j, 2j+1.
    __m512i lowIndex, highIndex;
    {
        short low[32], high[32];
        for (int j = 0; j < 16; j++) {
            low[2 * j] = (short)j; low[2 * j + 1] = (short)(32 + j);
            high[2 * j] = (short)(16 + j); high[2 * j + 1] = (short)(48 + j);
        }
        lowIndex = _mm512_loadu_si512((const void *)low);
        highIndex = _mm512_loadu_si512((const void *)high);
    }
    for (long panel = firstPanel; panel < firstPanel + panelCount; panel++) {
        long column = panel * panelWidth;
        long columns = n - column < panelWidth ? n - column : panelWidth;
        __mmask16 first = columns >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << columns) - 1u);
        __mmask16 second = columns >= 32 ? (__mmask16)0xffff : columns <= 16 ? (__mmask16)0 : (__mmask16)((1u << (columns - 16)) - 1u);
        uint16_t *destination = packed + panel * pairs * 2 * panelWidth;
        for (long p = 0; p < pairs; p++) {
            const float *even = b + (2 * p) * rowStride + column;
            __m512bh top = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(second, even + 16), _mm512_maskz_loadu_ps(first, even));
            __m512bh bottom = (__m512bh)_mm512_setzero_si512();
            if (2 * p + 1 < k) {
                const float *odd = even + rowStride;
                bottom = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(second, odd + 16), _mm512_maskz_loadu_ps(first, odd));
            }
            _mm512_storeu_si512((void *)(destination + p * 2 * panelWidth),
                                _mm512_permutex2var_epi16((__m512i)top, lowIndex, (__m512i)bottom));
            _mm512_storeu_si512((void *)(destination + p * 2 * panelWidth + panelWidth),
                                _mm512_permutex2var_epi16((__m512i)top, highIndex, (__m512i)bottom));
        }
    }
}

// B given transposed, as W [n, k] with B = W^T (a linear layer's weight, or the im2col columns of a
// convolution's weight gradient): column j of B is row j of W, whose pairs are adjacent. Each of a
// panel's 32 rows converts as A's rows do into scratch; the pairs then go to the panel pair by pair,
// 16 rows at a time by a gather.
ENVNET_BF16 static int pack_bt_fast(const float *w, long rowStride, long k, long n, uint16_t *packed, long firstPanel, long panelCount) {
    long pairs = envnet_bf16_pair_count(k);
    uint32_t *rows = malloc((size_t)(panelWidth * pairs + 16) * sizeof *rows);
    if (!rows) return 0;
    int offsets[16];
    for (int i = 0; i < 16; i++) offsets[i] = (int)(i * pairs);
    const __m512i rowOffsets = _mm512_loadu_si512((const void *)offsets);
    const int gathers = panelWidth * pairs < 0x7fffffffL;
    for (long panel = firstPanel; panel < firstPanel + panelCount; panel++) {
        uint32_t *destination = (uint32_t *)(packed + panel * pairs * 2 * panelWidth);
        for (long jj = 0; jj < panelWidth; jj++) {
            long column = panel * panelWidth + jj;
            uint16_t *row = (uint16_t *)(rows + jj * pairs);
            if (column >= n) {
                memset(row, 0, (size_t)pairs * sizeof(uint32_t));
                continue;
            }
            const float *source = w + column * rowStride;
            long j = 0;
            for (; j + 32 <= k; j += 32) {
                __m512bh values = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(source + j + 16), _mm512_loadu_ps(source + j));
                _mm512_storeu_si512((void *)(row + j), (__m512i)values);
            }
            for (; j < k; j++) row[j] = envnet_float_to_bf16(source[j]);
            if (k % 2) row[k] = 0;
        }
        for (long p = 0; p < pairs; p++) {
            if (gathers) {
                _mm512_storeu_si512((void *)(destination + p * panelWidth), _mm512_i32gather_epi32(rowOffsets, (const void *)(rows + p), 4));
                _mm512_storeu_si512((void *)(destination + p * panelWidth + 16),
                                    _mm512_i32gather_epi32(rowOffsets, (const void *)(rows + 16 * pairs + p), 4));
            } else {
                for (long jj = 0; jj < panelWidth; jj++) destination[p * panelWidth + jj] = rows[jj * pairs + p];
            }
        }
    }
    free(rows);
    return 1;
}

// A given transposed, as a [k, m] with A[r][j] = a[j * rowStride + r] (the output gradient of a
// linear layer in its weight gradient): 16 rows at a time, rows 2p and 2p+1 of the source give
// the pairs of 16 rows, each stored to its row of the packed A.
ENVNET_BF16 static void pack_at_fast(const float *a, long rowStride, long m, long k, uint32_t *packed, long firstRow, long rowCount) {
    long pairs = envnet_bf16_pair_count(k);
    long last = firstRow + rowCount < m ? firstRow + rowCount : m;
    __m512i interleave, rowOffsets;
    {
        short index[32];
        int offsets[16];
        for (int i = 0; i < 16; i++) { index[2 * i] = (short)i; index[2 * i + 1] = (short)(16 + i); offsets[i] = (int)(i * pairs); }
        interleave = _mm512_loadu_si512((const void *)index);
        rowOffsets = _mm512_loadu_si512((const void *)offsets);
    }
    long r = firstRow;
    // The scatter's offsets are 32-bit: rows of 16 x pairs words must fit.
    if (16 * pairs < 0x7fffffffL) {
        for (; r + 16 <= last; r += 16) {
            uint32_t *rows = packed + r * pairs;
            for (long p = 0; p < pairs; p++) {
                __m512 even = _mm512_loadu_ps(a + (2 * p) * rowStride + r);
                __m512 odd = 2 * p + 1 < k ? _mm512_loadu_ps(a + (2 * p + 1) * rowStride + r) : _mm512_setzero_ps();
                __m512i both = (__m512i)_mm512_cvtne2ps_pbh(odd, even);
                _mm512_i32scatter_epi32((void *)(rows + p), rowOffsets, _mm512_permutexvar_epi16(interleave, both), 4);
            }
        }
    }
    for (; r < last; r++) {
        uint16_t *out = (uint16_t *)(packed + r * pairs);
        for (long j = 0; j < k; j++) out[j] = envnet_float_to_bf16(a[j * rowStride + r]);
        if (k % 2) out[k] = 0;
    }
}

// The whole product on the calling thread, in blocks: B in slices of blockColumns columns, A in
// slices of blockRows rows, each packed into scratch memory just before the kernel reads it. The
// scratch stays a few MB whatever the sizes (packing whole operands took up to 60 MB per thread for
// a linear layer's weight), and a slice is still in cache when the kernel reads it.
enum { blockColumns = 256, blockRows = 128 };

ENVNET_BF16 static int gemm_strided(int transposeA, int transposeB, long m, long n, long k, const float *a, long lda,
                                    const float *b, long ldb, int accumulate, float *c, long ldc) {
    long pairs = envnet_bf16_pair_count(k);
    long columnsPerBlock = n < blockColumns ? n : blockColumns, rowsPerBlock = m < blockRows ? m : blockRows;
    uint32_t *packedA = malloc((size_t)(rowsPerBlock * pairs) * sizeof *packedA);
    uint16_t *packedB = malloc((size_t)envnet_bf16_packed_b_count(k, columnsPerBlock) * sizeof *packedB);
    if (!packedA || !packedB) { free(packedA); free(packedB); return -2; }
    int packed = 1;
    for (long column = 0; column < n && packed; column += blockColumns) {
        long columns = n - column < blockColumns ? n - column : blockColumns;
        long panels = (columns + panelWidth - 1) / panelWidth;
        // B[:, column ..< column + columns]: row-major B starts at the column, transposed B at its row.
        if (transposeB) packed = pack_bt_fast(b + column * ldb, ldb, k, columns, packedB, 0, panels);
        else pack_b_fast(b + column, ldb, k, columns, packedB, 0, panels);
        if (!packed) break;
        for (long row = 0; row < m; row += blockRows) {
            long rows = m - row < blockRows ? m - row : blockRows;
            if (transposeA) pack_at_fast(a + row, lda, rows, k, packedA, 0, rows);
            else pack_a_fast(a + row * lda, lda, rows, k, packedA, 0, rows);
            run(rows, columns, k, packedA, packedB, c + row * ldc + column, ldc, accumulate, 0, rows, 0, panels);
        }
    }
    free(packedA);
    free(packedB);
    return packed ? 1 : -2;
}

// The weight gradient of a 1x8 convolution (unit stride and dilation, images of height 1) as
// dW [O, C·8] += dY [O, T] · colsᵀ, with T the output positions of a tile. The general path writes
// the im2col columns in fp32 (C·8 rows of T values) and packs them again, transposed, for
// every product: with O = 40 that packing cost as much as the multiply-adds. Here the input row
// of each channel is converted to bf16 once per tile, and each packed pair of column values is two
// neighbours of it: (x[t + j], x[t + j + 1]) for tap j. A panel of 32 columns is 4 channels x 8
// taps; two channels' 16 columns come out of one two-source permute of their bf16 rows.
enum { gradientTile = 1024, gradientRowLength = gradientTile + 64 };

#define ENVNET_BF16_VL __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
ENVNET_BF16_VL static int conv1x8_weight_gradient(const float *x, long width, int channels, const float *dy, long outputWidth,
                                                  int outputChannels, long padding, long first, long count, float *partial) {
    const long maxPairs = gradientTile / 2, panels = channels / 4;
    uint32_t *packedA = aligned_alloc(64, (size_t)outputChannels * maxPairs * sizeof(uint32_t));
    uint16_t *rows = aligned_alloc(64, (size_t)channels * gradientRowLength * sizeof(uint16_t));
    uint16_t *packedB = aligned_alloc(64, (size_t)panels * maxPairs * 2 * panelWidth * sizeof(uint16_t));
    if (!packedA || !rows || !packedB) { free(packedA); free(rows); free(packedB); return -2; }
    // Output element e of the permute: column e / 2 (channel (e / 2) / 8 of the two, tap (e / 2) % 8),
    // value e % 2 of its pair.
    short indices[32];
    for (int e = 0; e < 32; e++) indices[e] = (short)((e / 16) * 32 + (e / 2) % 8 + e % 2);
    const __m512i interleave = _mm512_loadu_si512((const void *)indices);
    for (long start = first; start < first + count; start += gradientTile) {
        const long tile = first + count - start < gradientTile ? first + count - start : gradientTile;
        const long pairs = envnet_bf16_pair_count(tile);
        pack_a_fast(dy + start, outputWidth, outputChannels, tile, packedA, 0, outputChannels);
        // rows[c][i] = bf16(x[c][start - padding + i]), zero outside the image.
        const long origin = start - padding, length = 2 * pairs + 8;
        for (int c = 0; c < channels; c++) {
            const float *source = x + (long)c * width;
            uint16_t *row = rows + (long)c * gradientRowLength;
            long i = 0;
            for (; i + 16 <= length; i += 16) {
                const long index = origin + i;
                if (index >= 0 && index + 16 <= width) {
                    _mm256_storeu_si256((__m256i *)(row + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(source + index)));
                } else {
                    for (long q = i; q < i + 16; q++) {
                        const long at = origin + q;
                        row[q] = at >= 0 && at < width ? envnet_float_to_bf16(source[at]) : 0;
                    }
                }
            }
            for (; i < gradientRowLength; i++) {
                const long at = origin + i;
                row[i] = i < length && at >= 0 && at < width ? envnet_float_to_bf16(source[at]) : 0;
            }
        }
        // Panel q, pair p: columns (c, j) for the channels 4q ..< 4q + 4, two channels per permute.
        for (long q = 0; q < panels; q++) {
            const uint16_t *row0 = rows + (4 * q) * gradientRowLength;
            uint16_t *panel = packedB + q * pairs * 2 * panelWidth;
            for (long p = 0; p < pairs; p++) {
                for (int half = 0; half < 2; half++) {
                    const uint16_t *a = row0 + (2 * half) * gradientRowLength + 2 * p;
                    const __m512i values = _mm512_permutex2var_epi16(_mm512_loadu_si512((const void *)a), interleave,
                                                                     _mm512_loadu_si512((const void *)(a + gradientRowLength)));
                    _mm512_storeu_si512((void *)(panel + p * 2 * panelWidth + half * 32), values);
                }
            }
        }
        run(outputChannels, (long)channels * 8, tile, packedA, packedB, partial, (long)channels * 8, 1, 0, outputChannels, 0, panels);
    }
    free(packedA);
    free(rows);
    free(packedB);
    return 1;
}

#endif

int envnet_bf16_pack_bt_panels(const float *w, long rowStride, long k, long n, uint16_t *packed, long firstPanel, long panelCount) {
#if ENVNET_HAS_BF16_PATH
    if (!envnet_bf16_gemm_available()) return 0;
    return pack_bt_fast(w, rowStride, k, n, packed, firstPanel, panelCount);
#else
    (void)w; (void)rowStride; (void)k; (void)n; (void)packed; (void)firstPanel; (void)panelCount;
    return 0;
#endif
}

int envnet_bf16_pack_a_rows(const float *a, long rowStride, long m, long k, uint32_t *packed, long firstRow, long rowCount) {
#if ENVNET_HAS_BF16_PATH
    if (!envnet_bf16_gemm_available()) return 0;
    pack_a_fast(a, rowStride, m, k, packed, firstRow, rowCount);
    return 1;
#else
    (void)a; (void)rowStride; (void)m; (void)k; (void)packed; (void)firstRow; (void)rowCount;
    return 0;
#endif
}

int envnet_bf16_pack_b_panels(const float *b, long rowStride, long k, long n, uint16_t *packed, long firstPanel, long panelCount) {
#if ENVNET_HAS_BF16_PATH
    if (!envnet_bf16_gemm_available()) return 0;
    pack_b_fast(b, rowStride, k, n, packed, firstPanel, panelCount);
    return 1;
#else
    (void)b; (void)rowStride; (void)k; (void)n; (void)packed; (void)firstPanel; (void)panelCount;
    return 0;
#endif
}

int envnet_bf16_gemm(long m, long n, long k, const uint32_t *packedA, const uint16_t *packedB, float *c, long ldc, int accumulate,
                     long firstRow, long rowCount, long firstPanel, long panelCount) {
#if ENVNET_HAS_BF16_PATH
    if (!envnet_bf16_gemm_available()) return 0;
    run(m, n, k, packedA, packedB, c, ldc, accumulate, firstRow, rowCount, firstPanel, panelCount);
    return 1;
#else
    (void)m; (void)n; (void)k; (void)packedA; (void)packedB; (void)c; (void)ldc; (void)accumulate;
    (void)firstRow; (void)rowCount; (void)firstPanel; (void)panelCount;
    return 0;
#endif
}

int envnet_bf16_gemm_strided(int transposeA, int transposeB, long m, long n, long k, const float *a, long lda,
                             const float *b, long ldb, int accumulate, float *c, long ldc) {
#if ENVNET_HAS_BF16_PATH
    if (!envnet_bf16_gemm_available()) return 0;
    if (m <= 0 || n <= 0) return 1;
    if (k <= 0) {
        if (!accumulate) for (long r = 0; r < m; r++) memset(c + r * ldc, 0, (size_t)n * sizeof *c);
        return 1;
    }
    return gemm_strided(transposeA, transposeB, m, n, k, a, lda, b, ldb, accumulate, c, ldc);
#else
    (void)transposeA; (void)transposeB; (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb;
    (void)accumulate; (void)c; (void)ldc;
    return 0;
#endif
}

int envnet_bf16_conv1x8_weight_gradient(const float *x, long width, int channels, const float *dy, long outputWidth,
                                        int outputChannels, long padding, long first, long count, float *partial) {
#if ENVNET_HAS_BF16_PATH
    if (!envnet_bf16_gemm_available()) return 0;
    if (channels < 4 || channels % 4 != 0 || outputChannels < 1 || padding < 0 || first < 0 || count < 0 ||
        first + count > outputWidth || outputWidth != width + 2 * padding - 7) return 0;
    if (count == 0) return 1;
    return conv1x8_weight_gradient(x, width, channels, dy, outputWidth, outputChannels, padding, first, count, partial);
#else
    (void)x; (void)width; (void)channels; (void)dy; (void)outputWidth; (void)outputChannels; (void)padding; (void)first;
    (void)count; (void)partial;
    return 0;
#endif
}
