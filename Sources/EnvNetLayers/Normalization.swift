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
/// The kernels are pointer loops over the contiguous input, parallel over channels; sums are
/// accumulated per row in `Float` vectors and across rows in `Double`.
public class BatchNorm: Module {
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
    /// an activation-sized buffer. Set it only when nothing reads that input tensor after
    /// `backward`, as inside ``Sequential`` containers whose previous layer keeps only its output
    /// buffer (EnvNet sets it on its BatchNorm layers).
    public var reusesInputStorageForGradient = false

    private var output = Tensor.zeros([0])
    private var gradientInput = Tensor.zeros([0])
    private var cachedInput: Tensor?
    private var savedMean: [Float]
    private var savedInverseStandardDeviation: [Float]
    // The per-channel affine map of the last training forward, y = x·scale + shift; the fused
    // backward recomputes ReLU's mask from it with the same arithmetic as the forward.
    // Owned by the layer (allocated in init, freed in deinit), so Parallel workers can write them.
    private let savedScale: UnsafeMutablePointer<Float>
    private let savedShift: UnsafeMutablePointer<Float>

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
        savedMean = [Float](repeating: 0, count: featureCount)
        savedInverseStandardDeviation = [Float](repeating: 1, count: featureCount)
        savedScale = .allocate(capacity: featureCount)
        savedScale.initialize(repeating: 1, count: featureCount)
        savedShift = .allocate(capacity: featureCount)
        savedShift.initialize(repeating: 0, count: featureCount)
        super.init()
    }

    deinit {
        savedScale.deallocate()
        savedShift.deallocate()
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
    public override func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        guard acceptedRanks.contains(inputShape.count), inputShape[1] == featureCount else {
            throw LayerError.inputShape(layer: layerDescription, expected: expectedText, actual: inputShape)
        }
        return inputShape
    }

    /// Normalises `input` per channel. Same shape in and out.
    /// - Parameter input: a batch with channels on axis 1.
    public override func forward(_ input: Tensor) -> Tensor {
        checkInput(input.shape)
        let input = input.contiguous()
        let batch = input.shape[0], channels = featureCount
        let length = input.shape.dropFirst(2).reduce(1, *)
        let perChannel = batch * length
        prepare(&output, shape: input.shape)
        let x = input.readPointer, y = output.writePointer
        let epsilon = self.epsilon, momentum = self.momentum, fusedReLU = self.fusedReLU
        let gammaTensor = weight?.value.contiguous(), betaTensor = bias?.value.contiguous()
        let gamma = gammaTensor?.readPointer, beta = betaTensor?.readPointer
        if isTraining {
            precondition(perChannel > 1, "\(layerDescription): expected more than 1 value per channel when training, got input \(shapeText(input.shape))")
            runningMean.value.makeContiguousAndUnique()
            runningVariance.value.makeContiguousAndUnique()
            let runMean = runningMean.value.writePointer, runVar = runningVariance.value.writePointer
            let scales = savedScale, shifts = savedShift
            savedMean.withUnsafeMutableBufferPointer { meanBuffer in
                savedInverseStandardDeviation.withUnsafeMutableBufferPointer { invBuffer in
                    let means = meanBuffer.baseAddress!, inverses = invBuffer.baseAddress!
                    Parallel.forEach(count: channels) { channel in
                        // One pass over the data: each row's moments about a shift close to its values
                        // (the mean so far; for the first row, the mean of its first values), so little
                        // cancellation, merged across rows in Double with Chan's formula. A second pass
                        // over an activation-sized tensor cost more.
                        var count: Double = 0, runningMean: Double = 0, squares: Double = 0
                        for n in 0..<batch {
                            let start = x + (n * channels + channel) * length
                            let shift = n == 0 ? Float(rowSum(start, Swift.min(length, 64)) / Double(Swift.max(Swift.min(length, 64), 1)))
                                               : Float(runningMean)
                            let row = rowMoments(start, length, shift: shift)
                            let merged = count + row.count
                            let delta = row.mean - runningMean
                            runningMean += delta * row.count / merged
                            squares += row.squares + delta * delta * count * row.count / merged
                            count = merged
                        }
                        let mean = Float(runningMean)
                        let variance = squares / Double(perChannel)
                        let inverse = Float(1 / (variance + Double(epsilon)).squareRoot())
                        means[channel] = mean
                        inverses[channel] = inverse
                        let scale = (gamma?[channel] ?? 1) * inverse
                        let shift = (beta?[channel] ?? 0) - mean * scale
                        scales[channel] = scale
                        shifts[channel] = shift
                        for n in 0..<batch {
                            let offset = (n * channels + channel) * length
                            affineRow(x + offset, y + offset, length, scale, shift, relu: fusedReLU)
                        }
                        let unbiased = Float(squares / Double(perChannel - 1))
                        runMean[channel] = (1 - momentum) * runMean[channel] + momentum * mean
                        runVar[channel] = (1 - momentum) * runVar[channel] + momentum * unbiased
                    }
                }
            }
            cachedInput = input
        } else {
            let runMean = runningMean.value.contiguous(), runVar = runningVariance.value.contiguous()
            let meanPointer = runMean.readPointer, varPointer = runVar.readPointer
            Parallel.forEach(count: channels) { channel in
                let scale = (gamma?[channel] ?? 1) / (varPointer[channel] + epsilon).squareRoot()
                let shift = (beta?[channel] ?? 0) - meanPointer[channel] * scale
                for n in 0..<batch {
                    let offset = (n * channels + channel) * length
                    affineRow(x + offset, y + offset, length, scale, shift, relu: fusedReLU)
                }
            }
            withExtendedLifetime((runMean, runVar)) {}
            cachedInput = nil
        }
        withExtendedLifetime((input, gammaTensor, betaTensor)) {}
        return output
    }

    /// Adds the scale and shift gradients and returns the input gradient (training mode: through the
    /// batch statistics). Same shape in and out.
    /// - Parameter gradientOutput: the gradient with respect to the last training-mode output.
    public override func backward(_ gradientOutput: Tensor) -> Tensor {
        guard let input = cachedInput else { missingCache() }
        cachedInput = nil
        precondition(gradientOutput.shape == input.shape,
                     "\(layerDescription).backward: expected output gradient \(shapeText(input.shape)), got \(shapeText(gradientOutput.shape))")
        let gradientOutput = gradientOutput.contiguous()
        let batch = input.shape[0], channels = featureCount
        let length = input.shape.dropFirst(2).reduce(1, *)
        let count = Float(batch * length)
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
        // In place, dx[i] is written after the channel's sums have read every x, and only x[i] is read for it.
        let x = input.readPointer, dy = gradientOutput.readPointer, dx = inPlace ? input.writePointer : gradientInput.writePointer
        let gammaTensor = weight?.value.contiguous()
        let gamma = gammaTensor?.readPointer
        let gammaGradient = weight.map { $0.gradient.writePointer }, betaGradient = bias.map { $0.gradient.writePointer }
        let fusedReLU = self.fusedReLU
        let scales = savedScale, shifts = savedShift
        savedMean.withUnsafeBufferPointer { meanBuffer in
            savedInverseStandardDeviation.withUnsafeBufferPointer { invBuffer in
                let means = meanBuffer.baseAddress!, inverses = invBuffer.baseAddress!
                Parallel.forEach(count: channels) { channel in
                    let mean = means[channel], inverse = inverses[channel]
                    let scale = scales[channel], shift = shifts[channel]
                    var sumGradient: Double = 0, sumGradientCentered: Double = 0
                    for n in 0..<batch {
                        let offset = (n * channels + channel) * length
                        let sums = fusedReLU
                            ? maskedRowSumAndCenteredDot(dy + offset, x + offset, length, mean, scale, shift)
                            : rowSumAndCenteredDot(dy + offset, x + offset, length, mean)
                        sumGradient += sums.sum
                        sumGradientCentered += sums.dot
                    }
                    // Σ dy·x̂ = inverse · Σ dy·(x − mean)
                    let sumGradientNormalized = Float(sumGradientCentered) * inverse
                    gammaGradient?[channel] += sumGradientNormalized
                    betaGradient?[channel] += Float(sumGradient)
                    // dx = γ·inv/M · (M·dy − Σdy − x̂·Σ(dy·x̂))
                    let factor = (gamma?[channel] ?? 1) * inverse
                    let meanGradient = Float(sumGradient) / count
                    let slope = sumGradientNormalized * inverse / count  // multiplies (x − mean)
                    for n in 0..<batch {
                        let offset = (n * channels + channel) * length
                        let dyRow = dy + offset, xRow = x + offset, dxRow = dx + offset
                        if fusedReLU {
                            for i in 0..<length {
                                let value = xRow[i], upstream = dyRow[i]
                                let gradient: Float = value * scale + shift > 0 ? upstream : 0
                                dxRow[i] = factor * (gradient - meanGradient - (value - mean) * slope)
                            }
                        } else {
                            for i in 0..<length {
                                dxRow[i] = factor * (dyRow[i] - meanGradient - (xRow[i] - mean) * slope)
                            }
                        }
                    }
                }
            }
        }
        withExtendedLifetime((input, gradientOutput, gammaTensor, weight, bias)) {}
        return inPlace ? input : gradientInput
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

// MARK: - Row kernels

/// Σ x over a row, in eight Float lanes, returned as Double.
@inline(__always)
func rowSum(_ x: UnsafePointer<Float>, _ count: Int) -> Double {
    var lanes = SIMD8<Float>()
    var index = 0
    while index + 8 <= count {
        lanes += UnsafeRawPointer(x + index).loadUnaligned(as: SIMD8<Float>.self)
        index += 8
    }
    var total = Double(lanes.sum())
    while index < count { total += Double(x[index]); index += 1 }
    return total
}

/// A row's mean and sum of squared deviations from it, in one pass: sums of `d = x − shift` and
/// `d²` in eight Float lanes, then `Σd² − (Σd)²/n` in Double (exact when `shift` is near the mean).
@inline(__always)
func rowMoments(_ x: UnsafePointer<Float>, _ count: Int, shift: Float) -> (count: Double, mean: Double, squares: Double) {
    guard count > 0 else { return (0, 0, 0) }
    let shifts = SIMD8<Float>(repeating: shift)
    var sumLanes = SIMD8<Float>(), squareLanes = SIMD8<Float>()
    var index = 0
    while index + 8 <= count {
        let d = UnsafeRawPointer(x + index).loadUnaligned(as: SIMD8<Float>.self) - shifts
        sumLanes += d
        squareLanes += d * d
        index += 8
    }
    var sum = Double(sumLanes.sum()), squares = Double(squareLanes.sum())
    while index < count { let d = Double(x[index] - shift); sum += d; squares += d * d; index += 1 }
    let n = Double(count)
    return (n, Double(shift) + sum / n, Swift.max(0, squares - sum * sum / n))
}

/// Σ (x − mean)² over a row.
@inline(__always)
func rowCenteredSquares(_ x: UnsafePointer<Float>, _ count: Int, _ mean: Float) -> Double {
    var lanes = SIMD8<Float>()
    let center = SIMD8<Float>(repeating: mean)
    var index = 0
    while index + 8 <= count {
        let d = UnsafeRawPointer(x + index).loadUnaligned(as: SIMD8<Float>.self) - center
        lanes += d * d
        index += 8
    }
    var total = Double(lanes.sum())
    while index < count { let d = Double(x[index] - mean); total += d * d; index += 1 }
    return total
}

/// Σ g and Σ g·(x − mean) over a row.
@inline(__always)
func rowSumAndCenteredDot(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, _ mean: Float) -> (sum: Double, dot: Double) {
    var sumLanes = SIMD8<Float>(), dotLanes = SIMD8<Float>()
    let center = SIMD8<Float>(repeating: mean)
    var index = 0
    while index + 8 <= count {
        let gv = UnsafeRawPointer(g + index).loadUnaligned(as: SIMD8<Float>.self)
        let xv = UnsafeRawPointer(x + index).loadUnaligned(as: SIMD8<Float>.self) - center
        sumLanes += gv
        dotLanes += gv * xv
        index += 8
    }
    var sum = Double(sumLanes.sum()), dot = Double(dotLanes.sum())
    while index < count {
        sum += Double(g[index])
        dot += Double(g[index]) * Double(x[index] - mean)
        index += 1
    }
    return (sum, dot)
}

/// Σ g·m and Σ g·m·(x − mean) over a row, where m = (x·scale + shift > 0): the sums of
/// ``rowSumAndCenteredDot(_:_:_:_:)`` for the gradient after a fused ReLU.
@inline(__always)
func maskedRowSumAndCenteredDot(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, _ mean: Float,
                                _ scale: Float, _ shift: Float) -> (sum: Double, dot: Double) {
    var sumLanes = SIMD8<Float>(), dotLanes = SIMD8<Float>()
    let center = SIMD8<Float>(repeating: mean), scales = SIMD8<Float>(repeating: scale), shifts = SIMD8<Float>(repeating: shift)
    let zero = SIMD8<Float>()
    var index = 0
    while index + 8 <= count {
        let xv = UnsafeRawPointer(x + index).loadUnaligned(as: SIMD8<Float>.self)
        let gv = zero.replacing(with: UnsafeRawPointer(g + index).loadUnaligned(as: SIMD8<Float>.self), where: xv * scales + shifts .> zero)
        sumLanes += gv
        dotLanes += gv * (xv - center)
        index += 8
    }
    var sum = Double(sumLanes.sum()), dot = Double(dotLanes.sum())
    while index < count {
        if x[index] * scale + shift > 0 {
            sum += Double(g[index])
            dot += Double(g[index]) * Double(x[index] - mean)
        }
        index += 1
    }
    return (sum, dot)
}

/// y = x·scale + shift over a row, or max(0, x·scale + shift) with `relu`.
@inline(__always)
func affineRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int, _ scale: Float, _ shift: Float, relu: Bool) {
    if relu {
        for index in 0..<count { let value = x[index] * scale + shift; y[index] = value > 0 ? value : 0 }
    } else {
        for index in 0..<count { y[index] = x[index] * scale + shift }
    }
}
