import EnvNetLayers

/// EnvNet's front end, conv1 … pool2, as one block: `[N, 1, 1, L] -> [N, 40, 1, cells]`
///
/// ```
/// conv1  40 x (1x8), BatchNorm, ReLU    [N, 40, 1, L - 7]
/// conv2  40 x (1x8), BatchNorm, ReLU    [N, 40, 1, L - 14]
/// pool2  max 1x160 / 160                [N, 40, 1, (L - 14) / 160]
/// ```
///
/// The block chooses its own path. In evaluation mode, where the CPU has AVX-512 and
/// ``ExecutionOptions/usesFusedOperations`` allows, it runs as the tensor core's fused operation
/// (``FusedFrontEnd``: BatchNorm folded into the convolutions, conv2 by Winograd F(4, 8), pooling
/// in the cache), whose results equal the layers' within 1e-4 of their scale; the folded weights
/// are kept until a weight or a running statistic changes.
///
/// In training mode, where ``ExecutionOptions/usesFusedOperations`` allows, it runs a lean pass
/// that keeps two window-sized tensors instead of four (EnvNet's training step then needs about a
/// quarter less memory) and gives the layers' results bit for bit: bn2, its ReLU and pool2 run as one
/// operation that never stores bn2's output (``BatchNormalization/forwardTrainingPooled(input:shape:poolSize:pooled:indices:gamma:beta:epsilon:momentum:runningMean:runningVariance:saved:reducer:)``),
/// and conv1's output, which only bn1's backward pass reads again, is computed anew for it (conv1 is
/// 2 % of the step's work). Otherwise the layers run one by one, with conv2, bn1, bn2 and pool2
/// writing their input gradients over their inputs (each input is the previous layer's output,
/// which that layer does not read again).
public final class EnvNetFrontEnd: Module, LayerChain {
    /// 1 -> 40, 1x8.
    public let conv1: Conv2d
    /// BatchNorm with ReLU fused.
    public let bn1: BatchNorm2d
    /// 40 -> 40, 1x8.
    public let conv2: Conv2d
    /// BatchNorm with ReLU fused.
    public let bn2: BatchNorm2d
    /// Max pooling 1x160 with stride 160.
    public let pool2: MaxPool2d

    private var fusedCache: (versions: [UInt64], weights: FusedFrontEnd.Weights?)?

    /// How many times the block folded its weights for the fused path (once per weight change, not
    /// per batch), for the cache's tests.
    package private(set) var derivedWeightBuildCount = 0

    /// - Parameters:
    ///   - channels: Filters of conv1 and conv2 (40).
    ///   - padding: Zero padding of both convolutions on each side (0 official, 4 seed variant).
    ///   - bias: Whether the convolutions have a bias (the seed variant's do).
    ///   - poolSize: pool2's window and stride (160).
    ///   - weightInitializer: How the convolutions' weights are drawn.
    ///   - generator: The source of the initial weights (conv1's, then conv2's).
    public init(channels: Int = 40, padding: Int = 0, bias: Bool = false, poolSize: Int = 160,
                weightInitializer: Initializer = .heNormal, generator: inout SeededGenerator) {
        conv1 = Conv2d(inputChannels: 1, outputChannels: channels, kernelSize: (1, 8), padding: (0, padding), bias: bias,
                       weightInitializer: weightInitializer, biasInitializer: .constant(0), generator: &generator)
        bn1 = BatchNorm2d(featureCount: channels, fusedReLU: true)
        conv2 = Conv2d(inputChannels: channels, outputChannels: channels, kernelSize: (1, 8), padding: (0, padding), bias: bias,
                       weightInitializer: weightInitializer, biasInitializer: .constant(0), generator: &generator)
        bn2 = BatchNorm2d(featureCount: channels, fusedReLU: true)
        pool2 = MaxPool2d(kernelSize: (1, poolSize), stride: (1, poolSize))
        super.init()
        // conv1's input is the caller's audio and is never overwritten.
        bn1.reusesInputStorageForGradient = true
        conv2.reusesInputStorageForGradient = true
        bn2.reusesInputStorageForGradient = true
        pool2.reusesInputStorageForGradient = true
    }

    /// conv1, bn1, conv2, bn2, pool2.
    public var layers: [(name: String, layer: any Layer)] {
        [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2), ("pool2", pool2)]
    }

    public override var children: [(name: String, module: Module)] { layers.map { ($0.name, $0.layer) } }

    public override var layerDescription: String { "EnvNetFrontEnd()" }

    /// pool2's output: the fused operation where it applies, else the layers. `[N, 1, 1, L] -> [N, 40, 1, cells]`
    /// - Parameter input: Audio windows.
    public func forward(_ input: Tensor) -> Tensor {
        leanState = nil
        if runsLeanTraining { return forwardLean(input) }
        // Outside the lean pass its buffers are given back (evaluation between epochs would
        // otherwise hold two window-sized tensors it does not use).
        leanBuffers = nil
        if FusedFrontEnd.isSupported, let weights = fusedWeights(), let pooled = FusedFrontEnd.forward(input, weights: weights) {
            return pooled
        }
        return forwardLayers(input)
    }

    /// The gradient with respect to the audio: the lean pass's own when the last forward pass was
    /// lean, else the layers'. `[N, 40, 1, cells] -> [N, 1, 1, L]`
    /// - Parameter gradientOutput: The gradient with respect to pool2's output.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard let state = leanState else { return backwardLayers(gradientOutput) }
        leanState = nil
        return backwardLean(gradientOutput, state)
    }

    // MARK: - The lean training pass

    /// Whether ``forward(_:)`` takes the lean training pass: every layer training, the options
    /// allowing fused operations, and pool2 a plain 1 x k window with stride k.
    package var runsLeanTraining: Bool {
        let pool = pool2.geometry
        return ExecutionOptions.current.usesFusedOperations
            && conv1.isTraining && bn1.isTraining && conv2.isTraining && bn2.isTraining && pool2.isTraining
            && bn1.fusedReLU && bn2.fusedReLU
            && pool.kernelHeight == 1 && pool.strideHeight == 1 && pool.paddingHeight == 0 && pool.paddingWidth == 0
            && pool.dilationHeight == 1 && pool.dilationWidth == 1 && pool.kernelWidth == pool.strideWidth
    }

    /// What the lean pass keeps for its backward pass.
    private struct LeanState {
        /// The audio `[N, 1, 1, L]`.
        var audio: Tensor
        /// bn1's output (conv2's input) in ``leanBuffers``' second buffer.
        var hidden: Tensor
        /// conv2's output (bn2's input) in the first buffer.
        var convolved: Tensor
        /// pool2's argmaxes.
        var indices: [Int32]
        /// conv1's output shape.
        var firstShape: [Int]
    }

    private var leanState: LeanState?
    /// Two buffers of the larger convolution output's size, kept between steps (fresh pages would cost a page fault
    /// each); conv1's output and then conv2's use the first, bn1's output the second.
    private var leanBuffers: (TensorStorage, TensorStorage)?

    /// A contiguous tensor of `shape` over the start of `storage`.
    private static func view(_ storage: TensorStorage, _ shape: [Int]) -> Tensor {
        Tensor(storage: storage, shape: shape, strides: Shape.contiguousStrides(shape))
    }

    private func forwardLean(_ input: Tensor) -> Tensor {
        let audio = input.contiguous()
        let firstShape = (try? conv1.outputShape(forInputShape: audio.shape)) ?? []
        let secondShape = (try? conv2.outputShape(forInputShape: firstShape)) ?? []
        precondition(!firstShape.isEmpty && !secondShape.isEmpty, "\(layerDescription): input \(audio.shape) does not fit its convolutions")
        // With padding (the seed variant) conv2's output is the longer one.
        let capacity = Swift.max(firstShape.reduce(1, *), secondShape.reduce(1, *))
        if leanBuffers == nil || leanBuffers!.0.capacity < capacity {
            leanBuffers = nil
            leanBuffers = (TensorStorage(capacity: capacity), TensorStorage(capacity: capacity))
        }
        let (first, second) = leanBuffers!
        let x1 = Self.view(first, firstShape), y1 = Self.view(second, firstShape)
        LayerProfiler.measure(conv1, .forward) {
            Convolution.forward(input: audio, weight: conv1.weight.value, bias: conv1.bias?.value, geometry: conv1.geometry,
                                into: first.baseAddress)
        }
        LayerProfiler.measure(bn1, .forward) { bn1.forwardTraining(x1, into: second.baseAddress) }
        // conv1's output is not needed again before bn1's backward pass, which computes it anew.
        let x2 = Self.view(first, secondShape)
        LayerProfiler.measure(conv2, .forward) {
            Convolution.forward(input: y1, weight: conv2.weight.value, bias: conv2.bias?.value, geometry: conv2.geometry,
                                into: first.baseAddress, winogradWeights: conv2.winogradWeights())
        }
        let (pooled, indices) = LayerProfiler.measure(bn2, .forward) { bn2.forwardTrainingPooled(x2, poolSize: pool2.geometry.kernelWidth) }
        // pool2 ran inside bn2's operation, whose time includes it: the profiler hears of it with none.
        LayerProfiler.measure(pool2, .forward) {}
        leanState = LeanState(audio: audio, hidden: y1, convolved: x2, indices: indices, firstShape: firstShape)
        return pooled
    }

    private func backwardLean(_ gradientOutput: Tensor, _ state: LeanState) -> Tensor {
        let (first, second) = leanBuffers!
        precondition(gradientOutput.shape == [state.convolved.shape[0], state.convolved.shape[1], 1, state.indices.count / Swift.max(1, state.convolved.shape[0] * state.convolved.shape[1])],
                     "\(layerDescription).backward: output gradient \(gradientOutput.shape) does not fit the last forward pass")
        // bn2 and pool2: the gradient replaces conv2's output.
        LayerProfiler.measure(pool2, .backward) {}
        LayerProfiler.measure(bn2, .backward) {
            bn2.backwardPooled(input: state.convolved, gradientPooled: gradientOutput, indices: state.indices, poolSize: pool2.geometry.kernelWidth)
        }
        // conv2: the weight gradient reads bn1's output, whose storage then takes the input gradient.
        LayerProfiler.measure(conv2, .backward) {
            conv2.accumulateWeightGradient(gradientOutput: state.convolved, input: state.hidden)
            Convolution.backwardInput(gradientOutput: state.convolved, weight: conv2.weight.value, inputShape: state.firstShape,
                                      geometry: conv2.geometry, into: second.baseAddress)
        }
        // bn1 needs conv1's output: computed again into the first buffer, then replaced by its gradient.
        let x1 = Self.view(first, state.firstShape)
        LayerProfiler.measure(bn1, .backward) {
            Convolution.forward(input: state.audio, weight: conv1.weight.value, bias: conv1.bias?.value, geometry: conv1.geometry,
                                into: first.baseAddress)
            bn1.backwardTraining(input: x1, gradientOutput: Self.view(second, state.firstShape), into: first.baseAddress)
        }
        return LayerProfiler.measure(conv1, .backward) {
            conv1.accumulateWeightGradient(gradientOutput: x1, input: state.audio)
            guard conv1.computesInputGradient else { return Tensor.zeros(state.audio.shape) }
            return Convolution.backwardInput(gradientOutput: x1, weight: conv1.weight.value, inputShape: state.audio.shape, geometry: conv1.geometry)
        }
    }

    /// Whether the fused operation would run now: every layer in evaluation mode (the whole block,
    /// or the layers of a front end frozen for fine-tuning), a CPU that has the kernel, and the
    /// options in effect allowing it.
    public var runsFused: Bool { FusedFrontEnd.isSupported && fusedWeights() != nil }

    /// The folded weights, rebuilt only when a weight or statistic changed; nil when the modes,
    /// the options or the shapes rule the fused path out. Kept whatever the CPU (folding is
    /// portable), so the cache behaves, and is tested, the same everywhere.
    package func fusedWeights() -> FusedFrontEnd.Weights? {
        guard ExecutionOptions.current.usesFusedOperations,
              !conv1.isTraining, !bn1.isTraining, !conv2.isTraining, !bn2.isTraining, !pool2.isTraining else { return nil }
        let rounds = ExecutionOptions.current.matrixPrecision == .bfloat16
        let versions = [conv1.weight.version, conv1.bias?.version ?? 0, conv2.weight.version, conv2.bias?.version ?? 0,
                        bn1.version, bn2.version, rounds ? 1 : 0]
        if let cached = fusedCache, cached.versions == versions { return cached.weights }
        let pool = pool2.geometry
        let poolFits = pool.kernelHeight == 1 && pool.strideHeight == 1 && pool.paddingHeight == 0 && pool.paddingWidth == 0
            && pool.dilationHeight == 1 && pool.dilationWidth == 1 && pool.kernelWidth == pool.strideWidth
        let paddingFits = conv1.geometry.paddingWidth == conv2.geometry.paddingWidth
        let weights = poolFits && paddingFits
            ? FusedFrontEnd.Weights(conv1Weight: conv1.weight.value, conv1Bias: conv1.bias?.value, norm1: bn1.statistics,
                                    conv2Weight: conv2.weight.value, conv2Bias: conv2.bias?.value, norm2: bn2.statistics,
                                    padding: conv1.geometry.paddingWidth, poolSize: pool.kernelWidth, roundingToBFloat16: rounds)
            : nil
        fusedCache = (versions, weights)
        derivedWeightBuildCount += 1
        return weights
    }
}
