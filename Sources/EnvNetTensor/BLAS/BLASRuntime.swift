import CEnvNetSupport
import COpenBLAS
import Foundation

/// How this library drives OpenBLAS: which kernels, how many threads.
///
/// - Kernel family: on CPUs with AVX-512, OpenBLAS 0.3.21 may pick its AVX2 (Haswell) kernels
///   (it does on AMD Zen 4). On first use the library re-runs OpenBLAS's selection with the
///   SkylakeX (AVX-512) family, unless `OPENBLAS_CORETYPE` is set, in which case the user's choice
///   stands. This doubles sgemm throughput on such machines.
/// - Threads: OpenBLAS runs single-threaded; the library parallelises over independent GEMMs
///   (batch items, column tiles) itself with ``Parallel``, so the two kinds of threads never
///   oversubscribe the cores.
public enum BLASRuntime {
    private static let configuration: (switched: Bool, family: String) = {
        let switched = envnet_select_blas_kernels() != 0
        openblas_set_num_threads(1)
        return (switched, String(cString: envnet_blas_core_name()))
    }()

    /// Applies the kernel and thread policy; every BLAS call in the library goes through it first.
    @inline(__always)
    public static func ensureConfigured() {
        _ = configuration
    }

    /// OpenBLAS's name for the kernel family in use ("SkylakeX", "Haswell", …).
    public static var kernelFamily: String {
        ensureConfigured()
        return configuration.family
    }

    /// True when the library switched OpenBLAS to its AVX-512 kernels.
    public static var switchedToAVX512: Bool {
        ensureConfigured()
        return configuration.switched
    }

    /// True when the CPU supports the AVX-512 subsets OpenBLAS's SkylakeX kernels need.
    public static var cpuHasAVX512: Bool { envnet_cpu_has_avx512() != 0 }

    /// The kernel family `OPENBLAS_CORETYPE` forces, or nil. The user's choice wins over the
    /// AVX-512 correction, so `OPENBLAS_CORETYPE=Haswell` on an AVX-512 CPU keeps the AVX2 kernels
    /// (seen in one workplace's environment: fp32 sgemm at half the rate). Reports show it.
    public static var forcedKernelFamily: String? {
        guard let value = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"], !value.isEmpty else { return nil }
        return value
    }

    /// The kernel family with how it was chosen, for reports: `Haswell (forced by OPENBLAS_CORETYPE)`.
    public static var kernelFamilyDescription: String {
        let family = kernelFamily
        if forcedKernelFamily != nil { return family + " (forced by OPENBLAS_CORETYPE)" }
        return switchedToAVX512 ? family + " (switched by EnvNet)" : family
    }

    /// Peak resident memory of this process, in bytes.
    public static var peakResidentBytes: Int { Int(envnet_peak_resident_bytes()) }
}

/// Single-precision GEMM on raw memory: `C = alpha * op(A) * op(B) + beta * C`, row-major.
///
/// `[M, K] x [K, N] -> [M, N]`; `op` transposes when the flag is set. Runs on the calling thread.
@inline(__always)
public func sgemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        // BLAS leaves C untouched only when beta == 1; make the k = 0 case explicit.
        for row in 0..<m { for column in 0..<n { c[row * ldc + column] = beta == 0 ? 0 : beta * c[row * ldc + column] } }
        return
    }
    BLASRuntime.ensureConfigured()
    cblas_sgemm(
        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// GEMM on raw memory in the given operand precision: ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``
/// for fp32; for bf16 the operands are rounded to bfloat16 and every product and sum is fp32
/// (`envnet_bf16_gemm_strided`, AVX512-BF16). Runs on the calling thread.
///
/// `[M, K] x [K, N] -> [M, N]`, `C = op(A) · op(B) + beta · C`.
/// - Parameter precision: the operand precision; bf16 on a CPU without AVX512-BF16 (or when the
///   kernel's scratch memory cannot be had) computes in fp32.
@inline(__always)
public func gemm(
    precision: ExecutionOptions.Precision, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    if precision == .bfloat16 && (beta == 0 || beta == 1) && BFloat16Matmul.hasAVX512BF16,
       envnet_bf16_gemm_strided(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, a, lda, b, ldb, beta == 1 ? 1 : 0, c, ldc) == 1 {
        return
    }
    sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
}

/// The same GEMM split into column (or row) blocks run in parallel, one single-threaded GEMM each.
public func parallelSgemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    parallelGemm(precision: .float32, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                 a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
}

/// ``gemm(precision:transposeA:transposeB:m:n:k:a:lda:b:ldb:beta:c:ldc:)`` split into column (or
/// row) blocks run in parallel; each block packs its own slice of the split operand and all of
/// the other one.
public func parallelGemm(
    precision: ExecutionOptions.Precision, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let workers = Parallel.workerCount
    // Below ~8 MFLOP the threads cost more than they give.
    if workers == 1 || 2 * m * n * k < 8_000_000 {
        gemm(precision: precision, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
             a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    let aAddress = Int(bitPattern: a), bAddress = Int(bitPattern: b), cAddress = Int(bitPattern: c)
    // Blocks in multiples of 16 keep vector kernels full (of 32, bf16's column panels).
    let multiple = precision == .bfloat16 ? 32 : 16
    if n >= m {
        // Column blocks: each takes all of A and a slice of B's columns.
        let block = ((n + workers - 1) / workers + multiple - 1) / multiple * multiple
        Parallel.forEach(count: (n + block - 1) / block) { part in
            let start = part * block, width = Swift.min(block, n - start)
            let a = UnsafePointer<Float>(bitPattern: aAddress)!, b = UnsafePointer<Float>(bitPattern: bAddress)!
            let c = UnsafeMutablePointer<Float>(bitPattern: cAddress)!
            let bSlice = transposeB ? b + start * ldb : b + start
            gemm(precision: precision, transposeA: transposeA, transposeB: transposeB, m: m, n: width, k: k, a: a, lda: lda,
                 b: bSlice, ldb: ldb, beta: beta, c: c + start, ldc: ldc)
        }
    } else {
        let block = ((m + workers - 1) / workers + multiple - 1) / multiple * multiple
        Parallel.forEach(count: (m + block - 1) / block) { part in
            let start = part * block, height = Swift.min(block, m - start)
            let a = UnsafePointer<Float>(bitPattern: aAddress)!, b = UnsafePointer<Float>(bitPattern: bAddress)!
            let c = UnsafeMutablePointer<Float>(bitPattern: cAddress)!
            let aSlice = transposeA ? a + start : a + start * lda
            gemm(precision: precision, transposeA: transposeA, transposeB: transposeB, m: height, n: n, k: k, a: aSlice, lda: lda,
                 b: b, ldb: ldb, beta: beta, c: c + start * ldc, ldc: ldc)
        }
    }
}
