import Foundation

/// Batch normalisation over the channel axis (axis 1), with PyTorch's semantics; the shared
/// implementation of ``BatchNorm1d`` and ``BatchNorm2d``.
///
/// - Training mode: each channel is normalised with the mean and the biased variance of the batch
///   (over the batch axis and all axes after the channel), then scaled by `weight` and shifted by
///   `bias`; the running statistics move towards the batch's:
///   `running = (1 − momentum) · running + momentum · batch`, using the *unbiased* variance.
/// - Evaluation mode: the running statistics are used instead and nothing is updated.
///
/// - Fused ReLU (`fusedReLU: true`): the layer outputs `max(0, y)` and its backward pass applies
///   ReLU's mask itself, recomputing it from the cached input, the same way PyTorch's
///   `BatchNorm` followed by `ReLU` computes, bit for bit. It saves the separate ReLU layer's
///   output and gradient buffers and one pass over each: on EnvNet's front end, four buffers of
///   `N x 40 x 24000` values (a quarter of a gigabyte each at batch 64).
///
/// Keys: `weight`, `bias` (parameters, when affine), `running_mean`, `running_var` (buffers).
/// `num_batches_tracked` is not kept (it only matters for PyTorch's cumulative-average mode).
///
/// The arithmetic is the tensor core's ``BatchNormalization``: one training and one inference
/// forward pass around a shared per-channel kernel, and the backward pass.
public class BatchNorm: Module, Layer {
    /// Number of channels `C`.
    public let featureCount: Int
    /// Added to the variance before the square root.
    public let epsilon: Float
    /// Weight of the batch statistics in the running-average update.
    public let momentum: Float
    /// Per-channel scale `[C]` (initialised to 1), or nil when not affine.
    public let weight: Parameter?
    /// Per-channel shift `[C]` (initialised to 0), or nil when not affine.
    public let bias: Parameter?
    /// Running mean `[C]` (initialised to 0).
    public let runningMean: Buffer
    /// Running unbiased variance `[C]` (initialised to 1).
    public let runningVariance: Buffer
    /// Whether the layer applies ReLU to its output (and ReLU's mask in backward).
    public let fusedReLU: Bool
    /// Whether ``backward(_:)`` writes the input gradient over the storage of the input of the last
    /// training forward (false by default).
    ///
    /// Each value of the input gradient depends only on the same position's input and output
    /// gradient once the per-channel sums are known, so it can replace the input in place and save
    /// an activation-sized buffer. Only the block that owns the layer sets it, when it knows the
    /// layer before (its own convolution) does not read that tensor after the forward pass.
    package var reusesInputStorageForGradient = false

    /// Combines the batch statistics across the processes of a data-parallel job (synchronised
    /// BatchNorm), in the forward and the backward pass; nil (the default) uses this batch alone.
    public var statisticsReducer: (any BatchNormalization.StatisticsReducer)?

    private var output = Tensor.zeros([0])
    private var gradientInput = Tensor.zeros([0])
    private var cachedInput: Tensor?
    // The statistics of the last training forward, which its backward pass reads.
    private let saved: BatchNormalization.SavedStatistics

    init(featureCount: Int, epsilon: Float, momentum: Float, affine: Bool, fusedReLU: Bool) {
        precondition(featureCount > 0, "BatchNorm: featureCount must be positive, got \(featureCount)")
        precondition(epsilon >= 0 && momentum >= 0 && momentum <= 1, "BatchNorm: invalid epsilon \(epsilon) or momentum \(momentum)")
        self.featureCount = featureCount
        self.epsilon = epsilon
        self.momentum = momentum
        self.fusedReLU = fusedReLU
        weight = affine ? Parameter(Tensor.ones([featureCount])) : nil
        bias = affine ? Parameter(Tensor.zeros([featureCount])) : nil
        runningMean = Buffer(Tensor.zeros([featureCount]))
        runningVariance = Buffer(Tensor.ones([featureCount]))
        saved = BatchNormalization.SavedStatistics(channels: featureCount)
        super.init()
    }

    /// The evaluation-mode parameters, for folding this layer into the convolution before it.
    public var statistics: BatchNormalization.Statistics {
        BatchNormalization.Statistics(weight: weight?.value, bias: bias?.value, runningMean: runningMean.value,
                                      runningVariance: runningVariance.value, epsilon: epsilon)
    }

    /// A number that changes whenever a parameter or a running statistic does, for caches of
    /// values folded from them.
    public var version: UInt64 {
        (weight?.version ?? 0) &+ (bias?.version ?? 0) &* 31 &+ runningMean.version &* 961 &+ runningVariance.version &* 29_791
    }

    /// Resets the scale to 1, the shift to 0 and the running statistics to 0 and 1 (no randomness used).
    /// - Parameter generator: unused; present for the common signature.
    public override func resetParameters(generator: inout SeededGenerator) {
        weight?.value = Tensor.ones([featureCount])
        bias?.value = Tensor.zeros([featureCount])
        runningMean.value = Tensor.zeros([featureCount])
        runningVariance.value = Tensor.ones([featureCount])
        super.resetParameters(generator: &generator)
    }

    /// `weight` and `bias` when affine, else none.
    public override var localParameters: [(name: String, parameter: Parameter)] {
        guard let weight, let bias else { return [] }
        return [("weight", weight), ("bias", bias)]
    }

    /// `running_mean` and `running_var`.
    public override var localBuffers: [(name: String, buffer: Buffer)] {
        [("running_mean", runningMean), ("running_var", runningVariance)]
    }

    /// The input ranks the concrete layer accepts.
    var acceptedRanks: [Int] { [2, 3, 4] }
    /// The expected input, for messages.
    var expectedText: String { "[N, \(featureCount), ...]" }

    /// The layer in one line, with its configuration.
    public override var layerDescription: String {
        let name = String(describing: type(of: self))
        return "\(name)(\(featureCount), epsilon: \(epsilon), momentum: \(momentum)\(weight == nil ? ", affine: false" : "")\(fusedReLU ? ", fusedReLU: true" : ""))"
    }

    /// The output has the shape of the input.
    /// - Parameter inputShape: the shape of an input batch.
    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        guard acceptedRanks.contains(inputShape.count), inputShape[1] == featureCount else {
            throw LayerError.inputShape(layer: layerDescription, expected: expectedText, actual: inputShape)
        }
        return inputShape
    }

    /// Normalises `input` per channel: batch statistics in training mode, running statistics in
    /// evaluation mode, both through the tensor core's ``BatchNormalization``. Same shape in and out.
    /// - Parameter input: a batch with channels on axis 1.
    public func forward(_ input: Tensor) -> Tensor {
        checkInput(input.shape)
        let input = input.contiguous()
        let shape = BatchNormalization.Shape(batch: input.shape[0], channels: featureCount, length: input.shape.dropFirst(2).reduce(1, *))
        prepare(&output, shape: input.shape)
        let gammaTensor = weight?.value.contiguous(), betaTensor = bias?.value.contiguous()
        if isTraining {
            precondition(shape.batch * shape.length > 1, "\(layerDescription): expected more than 1 value per channel when training, got input \(shapeText(input.shape))")
            runningMean.value.makeContiguousAndUnique()
            runningVariance.value.makeContiguousAndUnique()
            BatchNormalization.forwardTraining(
                input: input.readPointer, output: output.writePointer, shape: shape, gamma: gammaTensor?.readPointer,
                beta: betaTensor?.readPointer, epsilon: epsilon, momentum: momentum, runningMean: runningMean.value.writePointer,
                runningVariance: runningVariance.value.writePointer, saved: saved, relu: fusedReLU, reducer: statisticsReducer)
            cachedInput = input
        } else {
            let mean = runningMean.value.contiguous(), variance = runningVariance.value.contiguous()
            BatchNormalization.forwardInference(
                input: input.readPointer, output: output.writePointer, shape: shape, gamma: gammaTensor?.readPointer,
                beta: betaTensor?.readPointer, runningMean: mean.readPointer, runningVariance: variance.readPointer,
                epsilon: epsilon, relu: fusedReLU)
            withExtendedLifetime((mean, variance)) {}
            cachedInput = nil
        }
        withExtendedLifetime((input, gammaTensor, betaTensor)) {}
        return output
    }

    /// Adds the scale and shift gradients and returns the input gradient (training mode: through the
    /// batch statistics). Same shape in and out.
    /// - Parameter gradientOutput: the gradient with respect to the last training-mode output.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard let input = cachedInput else { missingCache() }
        cachedInput = nil
        precondition(gradientOutput.shape == input.shape,
                     "\(layerDescription).backward: expected output gradient \(shapeText(input.shape)), got \(shapeText(gradientOutput.shape))")
        let gradientOutput = gradientOutput.contiguous()
        let shape = BatchNormalization.Shape(batch: input.shape[0], channels: featureCount, length: input.shape.dropFirst(2).reduce(1, *))
        let inPlace = reusesInputStorageForGradient
        if inPlace {
            gradientInput = Tensor.zeros([0])
        } else {
            prepare(&gradientInput, shape: input.shape)
        }
        if let weight, let bias {
            weight.gradient.makeContiguousAndUnique()
            bias.gradient.makeContiguousAndUnique()
        }
        let gammaTensor = weight?.value.contiguous()
        BatchNormalization.backward(
            input: input.readPointer, gradientOutput: gradientOutput.readPointer,
            gradientInput: inPlace ? input.writePointer : gradientInput.writePointer, shape: shape, gamma: gammaTensor?.readPointer,
            gammaGradient: weight.map { $0.gradient.writePointer }, betaGradient: bias.map { $0.gradient.writePointer },
            saved: saved, relu: fusedReLU, reducer: statisticsReducer)
        withExtendedLifetime((input, gradientOutput, gammaTensor, weight, bias)) {}
        return inPlace ? input : gradientInput
    }

    // MARK: - Passes for a block that keeps the tensors itself

    /// The training forward pass into `output` (`input`'s size, not aliasing it), keeping nothing
    /// of `input`: the caller gives it back to ``backwardTraining(input:gradientOutput:into:)``.
    /// Same results as ``forward(_:)``. `[N, C, ...] -> [N, C, ...]`
    package func forwardTraining(_ input: Tensor, into output: UnsafeMutablePointer<Float>) {
        let input = input.contiguous()
        let gammaTensor = weight?.value.contiguous(), betaTensor = bias?.value.contiguous()
        runningMean.value.makeContiguousAndUnique()
        runningVariance.value.makeContiguousAndUnique()
        BatchNormalization.forwardTraining(
            input: input.readPointer, output: output, shape: channelShape(input.shape), gamma: gammaTensor?.readPointer,
            beta: betaTensor?.readPointer, epsilon: epsilon, momentum: momentum, runningMean: runningMean.value.writePointer,
            runningVariance: runningVariance.value.writePointer, saved: saved, relu: fusedReLU, reducer: statisticsReducer)
        withExtendedLifetime((input, gammaTensor, betaTensor)) {}
    }

    /// The backward pass of ``forwardTraining(_:into:)`` for its `input` (contiguous), the input
    /// gradient into `gradientInput` (which may be `input`'s storage). Same results as ``backward(_:)``.
    package func backwardTraining(input: Tensor, gradientOutput: Tensor, into gradientInput: UnsafeMutablePointer<Float>) {
        let gradientOutput = gradientOutput.contiguous()
        weight?.gradient.makeContiguousAndUnique()
        bias?.gradient.makeContiguousAndUnique()
        let gammaTensor = weight?.value.contiguous()
        BatchNormalization.backward(
            input: input.readPointer, gradientOutput: gradientOutput.readPointer, gradientInput: gradientInput,
            shape: channelShape(input.shape), gamma: gammaTensor?.readPointer,
            gammaGradient: weight.map { $0.gradient.writePointer }, betaGradient: bias.map { $0.gradient.writePointer },
            saved: saved, relu: fusedReLU, reducer: statisticsReducer)
        withExtendedLifetime((input, gradientOutput, gammaTensor, weight, bias)) {}
    }

    /// The training forward pass followed by max pooling of `1 x poolSize` windows with stride
    /// `poolSize`, without storing the normalised tensor (``BatchNormalization/forwardTrainingPooled(input:shape:poolSize:pooled:indices:gamma:beta:epsilon:momentum:runningMean:runningVariance:saved:reducer:)``);
    /// for a layer with ReLU fused. `[N, C, 1, W] -> [N, C, 1, W / poolSize]` and the windows' argmaxes.
    package func forwardTrainingPooled(_ input: Tensor, poolSize: Int) -> (pooled: Tensor, indices: [Int32]) {
        precondition(fusedReLU && input.rank == 4 && input.shape[2] == 1, "\(layerDescription): pooled training needs ReLU and [N, C, 1, W]")
        let input = input.contiguous()
        let shape = channelShape(input.shape), cells = shape.length / poolSize
        let pooled = Tensor.zeros([input.shape[0], featureCount, 1, cells])
        var indices = [Int32](repeating: 0, count: shape.batch * featureCount * cells)
        let gammaTensor = weight?.value.contiguous(), betaTensor = bias?.value.contiguous()
        runningMean.value.makeContiguousAndUnique()
        runningVariance.value.makeContiguousAndUnique()
        indices.withUnsafeMutableBufferPointer { positions in
            BatchNormalization.forwardTrainingPooled(
                input: input.readPointer, shape: shape, poolSize: poolSize, pooled: pooled.writePointer, indices: positions.baseAddress!,
                gamma: gammaTensor?.readPointer, beta: betaTensor?.readPointer, epsilon: epsilon, momentum: momentum,
                runningMean: runningMean.value.writePointer, runningVariance: runningVariance.value.writePointer,
                saved: saved, reducer: statisticsReducer)
        }
        withExtendedLifetime((input, gammaTensor, betaTensor, pooled)) {}
        return (pooled, indices)
    }

    /// The backward pass of ``forwardTrainingPooled(_:poolSize:)``: the input gradient replaces
    /// `input` (contiguous and not shared).
    package func backwardPooled(input: Tensor, gradientPooled: Tensor, indices: [Int32], poolSize: Int) {
        let gradientPooled = gradientPooled.contiguous()
        weight?.gradient.makeContiguousAndUnique()
        bias?.gradient.makeContiguousAndUnique()
        let gammaTensor = weight?.value.contiguous()
        indices.withUnsafeBufferPointer { positions in
            BatchNormalization.backwardPooled(
                input: input.writePointer, gradientPooled: gradientPooled.readPointer, indices: positions.baseAddress!,
                shape: channelShape(input.shape), poolSize: poolSize, gamma: gammaTensor?.readPointer,
                gammaGradient: weight.map { $0.gradient.writePointer }, betaGradient: bias.map { $0.gradient.writePointer },
                saved: saved, reducer: statisticsReducer)
        }
        withExtendedLifetime((input, gradientPooled, gammaTensor, weight, bias)) {}
    }

    private func channelShape(_ shape: [Int]) -> BatchNormalization.Shape {
        BatchNormalization.Shape(batch: shape[0], channels: featureCount, length: shape.dropFirst(2).reduce(1, *))
    }
}
/// Batch normalisation of `[N, C]` or `[N, C, L]` data (PyTorch's `BatchNorm1d`): statistics per
/// channel over the batch (and length) axes. See ``BatchNorm`` for the semantics.
///
/// `[N, C] -> [N, C]`, `[N, C, L] -> [N, C, L]`
public final class BatchNorm1d: BatchNorm {
    /// - Parameters:
    ///   - featureCount: the number of channels `C`.
    ///   - epsilon: added to the variance before the square root (PyTorch's 1e-5).
    ///   - momentum: weight of the batch statistics in the running averages (PyTorch's 0.1).
    ///   - affine: whether the layer has a learned per-channel scale and shift.
    ///   - fusedReLU: whether the layer also applies ReLU (one pass and no extra buffers instead of
    ///     a separate ``ReLU`` layer; same results).
    public override init(featureCount: Int, epsilon: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true, fusedReLU: Bool = false) {
        super.init(featureCount: featureCount, epsilon: epsilon, momentum: momentum, affine: affine, fusedReLU: fusedReLU)
    }

    override var acceptedRanks: [Int] { [2, 3] }
    override var expectedText: String { "[N, \(featureCount)] or [N, \(featureCount), L]" }
}

/// Batch normalisation of `[N, C, H, W]` data (PyTorch's `BatchNorm2d`): statistics per channel over
/// the batch, height and width axes. See ``BatchNorm`` for the semantics.
///
/// `[N, C, H, W] -> [N, C, H, W]`
public final class BatchNorm2d: BatchNorm {
    /// - Parameters:
    ///   - featureCount: the number of channels `C`.
    ///   - epsilon: added to the variance before the square root (PyTorch's 1e-5).
    ///   - momentum: weight of the batch statistics in the running averages (PyTorch's 0.1).
    ///   - affine: whether the layer has a learned per-channel scale and shift.
    ///   - fusedReLU: whether the layer also applies ReLU (one pass and no extra buffers instead of
    ///     a separate ``ReLU`` layer; same results).
    public override init(featureCount: Int, epsilon: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true, fusedReLU: Bool = false) {
        super.init(featureCount: featureCount, epsilon: epsilon, momentum: momentum, affine: affine, fusedReLU: fusedReLU)
    }

    override var acceptedRanks: [Int] { [4] }
    override var expectedText: String { "[N, \(featureCount), H, W]" }
}
