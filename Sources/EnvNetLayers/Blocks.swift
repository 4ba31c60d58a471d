import Foundation

/// A convolution, BatchNorm with ReLU fused into it, and an optional max pooling: the unit that
/// EnvNet's 2-D part (conv3, conv4) is made of, and networks of your own can be
/// (Docs/building-your-own-network.md).
///
/// `[N, C, H, W] -> [N, O, OH, OW]` (pooled when the block pools)
///
/// Its layers keep the names given (`conv3`, `bn3`, `pool3`), so their keys are the
/// weight-interchange names when the block is listed under an empty name. The block decides its
/// own buffer reuse: BatchNorm's and the pooling's input gradients take their inputs' storage (the
/// block's own convolution and BatchNorm produced those tensors and do not read them again), and
/// the convolution's does when the block is told that nothing reads its input after the forward
/// pass.
public final class ConvolutionBlock: Module, LayerChain {
    /// The convolution (no bias by default: BatchNorm's shift replaces it).
    public let convolution: Conv2d
    /// BatchNorm with ReLU fused.
    public let normalization: BatchNorm2d
    /// The max pooling, or nil.
    public let pooling: MaxPool2d?
    private let names: (convolution: String, normalization: String, pooling: String)

    /// - Parameters:
    ///   - names: The layers' names, for example `("conv3", "bn3", "pool3")`.
    ///   - inputChannels: C.
    ///   - outputChannels: O.
    ///   - kernelSize: (height, width).
    ///   - stride: (height, width).
    ///   - padding: (height, width).
    ///   - bias: Whether the convolution has a bias.
    ///   - poolSize: The pooling window (its stride too), or nil for no pooling.
    ///   - poolStride: The pooling stride when it differs from the window.
    ///   - weightInitializer: How the convolution's weight is drawn.
    ///   - biasInitializer: How its bias is drawn.
    ///   - inputIsDisposable: True when nothing reads the block's input after the forward pass (it
    ///     is another block's output: a pooling's or a BatchNorm's, whose backward passes do not read
    ///     it), so the convolution's input gradient may take its storage. False for a network's input.
    ///   - generator: The source of the initial weights.
    public init(
        names: (convolution: String, normalization: String, pooling: String), inputChannels: Int, outputChannels: Int,
        kernelSize: (Int, Int), stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), bias: Bool = false,
        poolSize: (Int, Int)? = nil, poolStride: (Int, Int)? = nil,
        weightInitializer: Initializer = .heNormal, biasInitializer: Initializer = .constant(0),
        inputIsDisposable: Bool = false, generator: inout SeededGenerator
    ) {
        self.names = names
        convolution = Conv2d(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernelSize, stride: stride,
                             padding: padding, bias: bias, weightInitializer: weightInitializer, biasInitializer: biasInitializer,
                             generator: &generator)
        normalization = BatchNorm2d(featureCount: outputChannels, fusedReLU: true)
        pooling = poolSize.map { MaxPool2d(kernelSize: $0, stride: poolStride ?? $0) }
        super.init()
        convolution.reusesInputStorageForGradient = inputIsDisposable
        normalization.reusesInputStorageForGradient = true
        pooling?.reusesInputStorageForGradient = true
    }

    /// The block's output. In evaluation mode, where ``ExecutionOptions/usesFusedOperations`` allows
    /// and the shapes fit, the three layers run as the tensor core's ``ConvolutionPooling`` (the
    /// convolution's output is never stored; results equal the layers' to float rounding); otherwise
    /// they run one by one. `[N, C, H, W] -> [N, O, OH, OW]` (pooled when the block pools)
    /// - Parameter input: The block's input.
    public func forward(_ input: Tensor) -> Tensor {
        // The operation itself declines shapes it does not take.
        if modesAllowFusion,
           ConvolutionPooling.forward(input: input, weight: convolution.weight.value, bias: convolution.bias?.value,
                                      geometry: convolution.geometry, normalization: normalization.statistics,
                                      pooling: pooling?.geometry, into: &fusedOutput) {
            return fusedOutput
        }
        fusedOutput = Tensor.zeros([0])
        return forwardLayers(input)
    }

    /// Whether ``forward(_:)`` takes the fused operation for an input of `inputShape`: every layer in
    /// evaluation mode, BatchNorm with its ReLU, the options allowing fused operations, and
    /// ``ConvolutionPooling/applies(inputShape:weightShape:geometry:pooling:)``.
    public func runsFused(inputShape: [Int]) -> Bool {
        modesAllowFusion
            && ConvolutionPooling.applies(inputShape: inputShape, weightShape: convolution.weight.value.shape,
                                          geometry: convolution.geometry, pooling: pooling?.geometry)
    }

    /// Every layer in evaluation mode, BatchNorm with its ReLU, and the options allowing fused operations.
    private var modesAllowFusion: Bool {
        ExecutionOptions.current.usesFusedOperations && !convolution.isTraining && !normalization.isTraining
            && !(pooling?.isTraining ?? false) && normalization.fusedReLU
    }

    /// The fused operation's output, reused from batch to batch when the caller has let it go.
    private var fusedOutput = Tensor.zeros([0])

    /// The convolution, the BatchNorm and the pooling, under their names.
    public var layers: [(name: String, layer: any Layer)] {
        var result: [(name: String, layer: any Layer)] = [(names.convolution, convolution), (names.normalization, normalization)]
        if let pooling { result.append((names.pooling, pooling)) }
        return result
    }

    public override var children: [(name: String, module: Module)] { layers.map { ($0.name, $0.layer) } }

    public override var layerDescription: String { "ConvolutionBlock()" }
}
