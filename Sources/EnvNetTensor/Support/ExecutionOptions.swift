import Foundation

/// How the library computes: how many threads its kernels use and which fast paths they may take.
///
/// One value holds every such setting, and a program or a test sets it at run time; the library
/// reads no environment variable. The process-wide value starts at ``automatic`` and is changed
/// through ``processWide``; ``withOptions(_:_:)`` overrides it for one task (and the work it runs
/// synchronously), which is how tests compare paths while other tests run beside them.
/// ``current`` is the value in effect.
///
/// ```swift
/// ExecutionOptions.processWide.threadCount = 2   // the whole process
///
/// let plain = ExecutionOptions.withOptions(.portable) { network(input) }   // one computation
/// ```
///
/// The `envnet` command sets the process-wide value from `ENVNET_THREADS`, `ENVNET_WINOGRAD` and
/// `ENVNET_FUSED_FRONT_END` once, at start (Docs/environment.md).
public struct ExecutionOptions: Sendable, Equatable, CustomStringConvertible {
    /// Pieces of work run at once by the kernels (``Parallel``), at least 1.
    public var threadCount: Int
    /// Whether 1x8 convolutions may run as Winograd F(4, 8) where the CPU has AVX-512 and the shapes
    /// fit (``WinogradConvolution``); false means im2col and GEMM everywhere.
    public var usesWinograd: Bool
    /// Whether fused operations (the EnvNet front end as one pass, ``FusedFrontEnd``) may replace the
    /// layer-by-layer evaluation where the CPU and the shapes allow.
    public var usesFusedOperations: Bool
    /// Whether convolutions may run in a cheaper GEMM layout: tall kernels as one GEMM per kernel
    /// row (``RowDecomposedConvolution``, EnvNet-v2's conv4), horizontal strides as a stride-1
    /// convolution of the input's phases (``PolyphaseConvolution``, its conv1 and conv2). False
    /// means whole-kernel im2col everywhere.
    public var usesConvolutionRewrites: Bool = true
    /// The operand precision of the convolutions' and fully connected layers' products, in training
    /// and in evaluation: fp32 (the default), or bf16 operands with fp32 accumulation, as PyTorch's
    /// bf16 autocast (``BFloat16Matmul``). Weights, BatchNorm statistics, the loss and softmax stay
    /// fp32. bf16 runs where the CPU has AVX512-BF16 and fp32 elsewhere (``matrixPrecision``).
    public var precision: Precision = .float32

    /// The precision the products actually run at on this CPU: ``precision``, except fp32 where
    /// bf16 was asked for and the CPU has no AVX512-BF16.
    public var matrixPrecision: Precision {
        precision == .bfloat16 && BFloat16Matmul.hasAVX512BF16 ? .bfloat16 : .float32
    }

    /// The operand precision of a matrix product.
    public enum Precision: String, Sendable, Equatable, CaseIterable {
        /// fp32 operands and sums.
        case float32 = "fp32"
        /// bf16 operands, fp32 sums (PyTorch's bf16 autocast).
        case bfloat16 = "bf16"
    }
    /// Output positions times rows per im2col column tile, which sets the tile width (about 1 MB
    /// of columns by default); for tuning only, at least 1024.
    public var convolutionTileElements: Int

    /// - Parameters:
    ///   - threadCount: Kernel threads; the active core count when nil.
    ///   - usesWinograd: Allow the Winograd convolution.
    ///   - usesFusedOperations: Allow fused operations.
    ///   - convolutionTileElements: The im2col tile budget.
    public init(threadCount: Int? = nil, usesWinograd: Bool = true, usesFusedOperations: Bool = true,
                convolutionTileElements: Int = 262_144) {
        self.threadCount = Swift.max(1, threadCount ?? Parallel.processorCount)
        self.usesWinograd = usesWinograd
        self.usesFusedOperations = usesFusedOperations
        self.convolutionTileElements = Swift.max(1024, convolutionTileElements)
    }

    /// Every core, every fast path this machine has.
    public static var automatic: ExecutionOptions { ExecutionOptions() }

    /// Every core, no Winograd and no fused operation: the plain kernels the fast paths are checked against.
    public static var portable: ExecutionOptions {
        var options = ExecutionOptions(usesWinograd: false, usesFusedOperations: false)
        options.usesConvolutionRewrites = false
        return options
    }

    public var description: String {
        "\(threadCount) threads, Winograd \(usesWinograd ? "on" : "off"), fused operations \(usesFusedOperations ? "on" : "off"), precision \(precision.rawValue)"
    }

    /// The options in effect here: the innermost ``withOptions(_:_:)`` of this task, else
    /// ``processWide``.
    public static var current: ExecutionOptions { scoped ?? storedProcessWide.value }

    /// The options of every task that does not override them. A change in place
    /// (`ExecutionOptions.processWide.threadCount = 2`) happens under one lock, so concurrent
    /// changes do not lose each other, and a scope of ``withOptions(_:_:)`` never leaks into it.
    public static var processWide: ExecutionOptions {
        get { storedProcessWide.value }
        set { storedProcessWide.value = newValue }
        _modify {
            storedProcessWide.lock.lock()
            defer { storedProcessWide.lock.unlock() }
            yield &storedProcessWide.unlockedValue
        }
    }

    /// Runs `body` with `options` in effect for this task and what it runs synchronously. The
    /// kernels choose their paths and thread counts on the calling thread, so their workers follow;
    /// work the library moves to threads of its own (file analysis, batch preparation) takes the
    /// options in effect where it was started.
    /// - Parameters:
    ///   - options: The options for the duration of `body`.
    ///   - body: The work.
    /// - Returns: What `body` returns.
    public static func withOptions<Result>(_ options: ExecutionOptions, _ body: () throws -> Result) rethrows -> Result {
        try $scoped.withValue(options, operation: body)
    }

    @TaskLocal private static var scoped: ExecutionOptions?
    private static let storedProcessWide = LockedValue(ExecutionOptions())
}

/// A value behind a lock. `@unchecked Sendable` is sound: the value is reached only under the lock.
final class LockedValue<Value: Sendable>: @unchecked Sendable {
    let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }

    /// The value for a caller that holds ``lock``.
    var unlockedValue: Value {
        get { stored }
        set { stored = newValue }
    }
}
