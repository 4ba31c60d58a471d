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
/// are kept until a weight or a running statistic changes. Otherwise the layers run one by one,
/// with conv2, bn1, bn2 and pool2 writing their input gradients over their inputs (each input is
/// the previous layer's output, which that layer does not read again).
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
        if FusedFrontEnd.isSupported, let weights = fusedWeights(), let pooled = FusedFrontEnd.forward(input, weights: weights) {
            return pooled
        }
        return forwardLayers(input)
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
