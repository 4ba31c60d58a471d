import CEnvNetSupport
import Foundation

/// Matrix products with bf16 operands and fp32 accumulation, as PyTorch's bf16 autocast computes
/// linear layers: both operands are rounded to bfloat16 (8 bits of mantissa, round to nearest
/// even), every product and sum is fp32.
///
/// Two paths with the same operand rounding:
/// - ``Path/avx512BF16``: our kernel on AVX512-BF16 (`vdpbf16ps`), where the CPU has it
///   (`Sources/CEnvNetSupport/BFloat16GEMM.c`). Like the instruction, it flushes denormal operands
///   (below 1.2e-38) to zero.
/// - ``Path/roundedSGEMM``: the portable reference, the rounded operands multiplied by fp32 sgemm.
///   It is what the fast path is tested against, and what runs elsewhere.
///
/// The two differ only in the order of the fp32 sums. The layers reach the kernel through
/// `gemm(precision:...)` and `parallelGemm(precision:...)` (BLAS/BLASRuntime.swift), which pack
/// operands of any layout, under ``ExecutionOptions/precision``.
public enum BFloat16Matmul {
    /// How the product is computed.
    public enum Path: String, Sendable, CaseIterable {
        /// Our AVX512-BF16 kernel.
        case avx512BF16 = "avx512-bf16"
        /// bf16-rounded operands through fp32 sgemm.
        case roundedSGEMM = "rounded-sgemm"
    }

    /// Whether this CPU runs ``Path/avx512BF16``.
    public static let hasAVX512BF16 = envnet_bf16_gemm_available() != 0

    /// The fastest path this CPU has.
    public static var bestPath: Path { hasAVX512BF16 ? .avx512BF16 : .roundedSGEMM }

    /// `x` rounded to the nearest bfloat16 (ties to even), as a Float.
    public static func rounded(_ x: Float) -> Float { envnet_bf16_to_float(envnet_float_to_bf16(x)) }

    /// The tensor with every element rounded to bfloat16.
    public static func rounded(_ tensor: Tensor) -> Tensor {
        let source = tensor.contiguous()
        var result = Tensor.zeros(source.shape)
        source.withUnsafeBufferPointer { values in
            result.withUnsafeMutableBufferPointer { out in
                for index in values.indices { out[index] = rounded(values[index]) }
            }
        }
        return result
    }

    static func checkMatrices(_ a: Tensor, rows: Int, operation: String) {
        TensorError.check {
            guard a.rank == 2, a.shape[1] == rows else {
                throw TensorError.invalidArgument(operation: operation, message: "needs [M, \(rows)], got \(a.shape)")
            }
        }
    }

    /// `[M, K] · [K, N] -> [M, N]` with bf16 operands and fp32 accumulation.
    ///
    /// - Parameters:
    ///   - a: `[M, K]`.
    ///   - b: `[K, N]`.
    ///   - path: The kernel (``bestPath`` by default); ``Path/avx512BF16`` on a CPU without it falls
    ///     back to ``Path/roundedSGEMM``.
    /// - Returns: The product, fp32.
    public static func multiply(_ a: Tensor, _ b: Tensor, path: Path = bestPath) -> Tensor {
        TensorError.check {
            guard b.rank == 2 else { throw TensorError.invalidArgument(operation: "BFloat16Matmul.multiply", message: "needs [K, N], got \(b.shape)") }
        }
        checkMatrices(a, rows: b.shape[0], operation: "BFloat16Matmul.multiply")
        guard path == .avx512BF16, let packed = PackedBFloat16Matrix(b) else { return rounded(a).matmul(rounded(b)) }
        return multiply(a, packed)
    }

    /// `[M, K] · B -> [M, N]` for a B packed once (a weight used by many products).
    ///
    /// - Parameters:
    ///   - a: `[M, K]`, fp32 (rounded to bf16 as it is packed).
    ///   - b: B `[K, N]`, packed.
    /// - Returns: The product, fp32.
    public static func multiply(_ a: Tensor, _ b: PackedBFloat16Matrix) -> Tensor {
        checkMatrices(a, rows: b.rows, operation: "BFloat16Matmul.multiply")
        let (m, k, n) = (a.shape[0], b.rows, b.columns)
        var output = Tensor.zeros([m, n])
        if m == 0 || n == 0 { return output }
        let pairs = envnet_bf16_pair_count(k)
        let packedA = UnsafeMutablePointer<UInt32>.allocate(capacity: Swift.max(1, m * pairs))
        defer { packedA.deallocate() }
        let workers = Parallel.workerCount
        a.contiguous().withUnsafeBufferPointer { source in
            let from = UncheckedSendableBox(source.baseAddress!), into = UncheckedSendableBox(packedA)
            let count = Swift.min(workers, m)
            Parallel.forEach(count: count) { worker in
                let first = m * worker / count, last = m * (worker + 1) / count
                _ = envnet_bf16_pack_a_rows(from.value, k, m, k, into.value, first, last - first)
            }
        }
        let panels = (n + 31) / 32
        let shared = (a: UncheckedSendableBox(UnsafePointer(packedA)), b: UncheckedSendableBox(UnsafePointer(b.storage)))
        output.withUnsafeMutableBufferPointer { values in
            let c = UncheckedSendableBox(values.baseAddress!)
            // The panels over the workers when there are enough of them, else the rows (in 8s).
            if panels >= workers {
                Parallel.forEach(count: workers) { worker in
                    let first = panels * worker / workers, last = panels * (worker + 1) / workers
                    _ = envnet_bf16_gemm(m, n, k, shared.a.value, shared.b.value, c.value, n, 0, 0, m, first, last - first)
                }
            } else {
                let blocks = (m + 7) / 8, count = Swift.min(workers, (m + 7) / 8)
                Parallel.forEach(count: count) { worker in
                    let first = blocks * worker / count * 8, last = Swift.min(m, blocks * (worker + 1) / count * 8)
                    _ = envnet_bf16_gemm(m, n, k, shared.a.value, shared.b.value, c.value, n, 0, first, last - first, 0, panels)
                }
            }
        }
        withExtendedLifetime(b) {}
        return output
    }
}

/// The right operand B `[K, N]` of ``BFloat16Matmul`` converted to bf16 once, in the kernel's
/// layout (32-column panels, K in pairs), so that a weight is packed once per optimizer step
/// rather than once per product. Only on a CPU with AVX512-BF16.
public final class PackedBFloat16Matrix: @unchecked Sendable {
    // @unchecked: the storage is written once, in init, and only read afterwards.
    /// K.
    public let rows: Int
    /// N.
    public let columns: Int
    let storage: UnsafeMutablePointer<UInt16>

    private init?(rows: Int, columns: Int, pack: (UnsafeMutablePointer<UInt16>, _ firstPanel: Int, _ panelCount: Int) -> Int32) {
        guard BFloat16Matmul.hasAVX512BF16 else { return nil }
        self.rows = rows
        self.columns = columns
        storage = .allocate(capacity: Swift.max(1, envnet_bf16_packed_b_count(rows, columns)))
        let panels = (columns + 31) / 32, count = Swift.min(Parallel.workerCount, panels)
        let into = UncheckedSendableBox(storage)
        let failures = UncheckedSendableBox(UnsafeMutablePointer<Int32>.allocate(capacity: Swift.max(1, count)))
        defer { failures.value.deallocate() }
        Parallel.forEach(count: count) { worker in
            let first = panels * worker / count, last = panels * (worker + 1) / count
            failures.value[worker] = pack(into.value, first, last - first) == 0 ? 1 : 0
        }
        if (0..<count).contains(where: { failures.value[$0] != 0 }) {
            storage.deallocate()
            return nil
        }
    }

    /// Packs B `[K, N]`; nil on a CPU without AVX512-BF16.
    public convenience init?(_ b: Tensor) { self.init(b, transposed: false) }

    /// Packs B = Wᵀ for W `[N, K]` (a linear layer's weight `[out, in]`: `x · Wᵀ`); nil on a CPU
    /// without AVX512-BF16.
    public convenience init?(transposing w: Tensor) { self.init(w, transposed: true) }

    private convenience init?(_ matrix: Tensor, transposed: Bool) {
        TensorError.check {
            guard matrix.rank == 2 else {
                throw TensorError.invalidArgument(operation: "PackedBFloat16Matrix", message: "needs a matrix, got \(matrix.shape)")
            }
        }
        let source = matrix.contiguous()
        let (first, second) = (matrix.shape[0], matrix.shape[1])
        let (k, n) = transposed ? (second, first) : (first, second)
        // The storage of a contiguous tensor stays put while `source` holds it.
        let base = UncheckedSendableBox(UnsafePointer(source.storage.baseAddress + source.offset))
        self.init(rows: k, columns: n) { storage, firstPanel, count in
            transposed ? envnet_bf16_pack_bt_panels(base.value, k, k, n, storage, firstPanel, count)
                : envnet_bf16_pack_b_panels(base.value, n, k, n, storage, firstPanel, count)
        }
        withExtendedLifetime(source) {}
    }

    deinit { storage.deallocate() }
}
