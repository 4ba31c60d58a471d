import Foundation

/// Batch normalisation over the channel axis of `[N, C, L]` data (L the product of the axes after
/// the channel), PyTorch's semantics, as operations of the tensor core: the training forward pass
/// (batch statistics, running averages updated), the inference forward pass (running statistics)
/// and the backward pass of the training forward. Both forward passes end in one shared kernel,
/// `y = x·scale + shift` per channel (ReLU fused when asked), so that they and the fused operations
/// that fold BatchNorm into a convolution (``FusedFrontEnd``) compute the same arithmetic.
///
/// Pointer loops over contiguous memory, parallel over channels; sums are accumulated per row in
/// `Float` vectors and across rows in `Double`. The caller keeps every pointer valid for the call.
public enum BatchNormalization {
    /// The sizes of one call: `[batch, channels, length]`.
    public struct Shape: Sendable, Equatable {
        public var batch: Int
        public var channels: Int
        public var length: Int

        /// - Parameters:
        ///   - batch: N.
        ///   - channels: C.
        ///   - length: The product of the axes after the channel.
        public init(batch: Int, channels: Int, length: Int) {
            self.batch = batch
            self.channels = channels
            self.length = length
        }
    }

    /// What the training forward pass keeps for the backward pass, per channel: the batch mean,
    /// the inverse standard deviation, and the affine map `y = x·scale + shift` it applied.
    /// Not `Sendable`: the layer that owns it uses it from one thread at a time.
    public final class SavedStatistics {
        /// C.
        public let channels: Int
        /// The values per channel the statistics were taken over (of every process's batch when
        /// a reducer combined them).
        var count: Double = 0
        let mean: UnsafeMutablePointer<Float>
        let inverseStandardDeviation: UnsafeMutablePointer<Float>
        let scale: UnsafeMutablePointer<Float>
        let shift: UnsafeMutablePointer<Float>

        /// - Parameter channels: C.
        public init(channels: Int) {
            self.channels = channels
            mean = .allocate(capacity: channels)
            mean.initialize(repeating: 0, count: channels)
            inverseStandardDeviation = .allocate(capacity: channels)
            inverseStandardDeviation.initialize(repeating: 1, count: channels)
            scale = .allocate(capacity: channels)
            scale.initialize(repeating: 1, count: channels)
            shift = .allocate(capacity: channels)
            shift.initialize(repeating: 0, count: channels)
        }

        deinit {
            mean.deallocate()
            inverseStandardDeviation.deallocate()
            scale.deallocate()
            shift.deallocate()
        }
    }

    /// A BatchNorm layer's evaluation-mode parameters, for folding it into a convolution.
    public struct Statistics: Sendable {
        /// C.
        public let featureCount: Int
        let gamma: [Float]?
        let beta: [Float]?
        let mean: [Float]
        let variance: [Float]
        let epsilon: Float

        /// - Parameters:
        ///   - weight: The scale `[C]`, or nil (not affine).
        ///   - bias: The shift `[C]`, or nil.
        ///   - runningMean: `[C]`.
        ///   - runningVariance: `[C]`.
        ///   - epsilon: Added to the variance.
        public init(weight: Tensor?, bias: Tensor?, runningMean: Tensor, runningVariance: Tensor, epsilon: Float) {
            featureCount = runningMean.count
            gamma = weight?.scalars
            beta = bias?.scalars
            mean = runningMean.scalars
            variance = runningVariance.scalars
            self.epsilon = epsilon
        }

        /// BatchNorm in evaluation mode as `scale·x + shift` per channel, with a preceding
        /// convolution's bias (if any) moved into the shift: `BN(conv + b) = s·conv + (β + s·(b − mean))`.
        /// - Parameter bias: The convolution's bias `[C]`, or nil.
        public func folded(withBias bias: Tensor?) -> (scale: [Float], shift: [Float]) {
            let offsets = bias?.scalars
            var scale = [Float](repeating: 1, count: featureCount), shift = [Float](repeating: 0, count: featureCount)
            for channel in 0..<featureCount {
                let s = inferenceScale(gamma: gamma?[channel], variance: variance[channel], epsilon: epsilon)
                scale[channel] = s
                shift[channel] = (beta?[channel] ?? 0) + ((offsets?[channel] ?? 0) - mean[channel]) * s
            }
            return (scale, shift)
        }
    }

    /// The evaluation-mode scale of one channel; every path computes it this way.
    @inline(__always)
    static func inferenceScale(gamma: Float?, variance: Float, epsilon: Float) -> Float {
        (gamma ?? 1) / (variance + epsilon).squareRoot()
    }

    /// One channel's batch statistics: the number of values, their mean, and the sum of squared
    /// deviations from it.
    public struct Moments: Sendable, Equatable {
        /// The number of values.
        public var count: Double
        /// Their mean.
        public var mean: Double
        /// Σ (x − mean)².
        public var squares: Double

        /// - Parameters:
        ///   - count: The number of values.
        ///   - mean: Their mean.
        ///   - squares: Σ (x − mean)².
        public init(count: Double, mean: Double, squares: Double) {
            self.count = count
            self.mean = mean
            self.squares = squares
        }

        /// The statistics of both sets of values together (Chan's formula), as the kernel merges
        /// rows: a reducer that merges the processes' statistics in rank order gets those of the
        /// whole batch up to the order of summation.
        /// - Parameter other: The statistics of the other values.
        public func merged(with other: Moments) -> Moments {
            let total = count + other.count
            guard total > 0 else { return self }
            let delta = other.mean - mean
            return Moments(count: total, mean: mean + delta * other.count / total,
                           squares: squares + other.squares + delta * delta * count * other.count / total)
        }
    }

    /// Combines BatchNorm's per-channel sums across the processes of a data-parallel job
    /// (synchronised BatchNorm): with it, N processes that each hold 1/N of a batch normalise with
    /// the statistics of the whole batch, as one process holding all of it would.
    public protocol StatisticsReducer: AnyObject {
        /// Replaces each channel's local statistics by those of every process's values together.
        /// - Parameter moments: One entry per channel.
        func combine(_ moments: inout [Moments])
        /// Replaces `values` by their sums over the processes (the backward pass's Σdy and
        /// Σdy·(x − mean), two per channel).
        /// - Parameter values: The local sums.
        func sum(_ values: inout [Double])
        /// The share of the summed Σdy and Σdy·x̂ each process adds to its scale and shift
        /// gradients (1/N): the processes' gradient sum then adds N equal shares of the global
        /// sums. Summing the local sums instead would round each before the sum, and these sums
        /// cancel strongly (bn1's shift gradient lost three digits that way).
        var parameterGradientShare: Double { get }
    }

    // MARK: - Forward

    /// The training forward pass. `[N, C, L] -> [N, C, L]`
    ///
    /// Normalises each channel with the batch mean and biased variance, applies `gamma`, `beta`
    /// (and ReLU with `relu`), moves the running statistics towards the batch's with the unbiased
    /// variance, and fills `saved` for ``backward(input:gradientOutput:gradientInput:shape:gamma:gammaGradient:betaGradient:saved:relu:reducer:)``.
    /// - Parameters:
    ///   - input: x, `[N, C, L]`, more than one value per channel.
    ///   - output: y, same size (may not alias `input`).
    ///   - shape: The sizes.
    ///   - gamma: The scale `[C]`, or nil (1).
    ///   - beta: The shift `[C]`, or nil (0).
    ///   - epsilon: Added to the variance.
    ///   - momentum: The weight of the batch statistics in the running averages.
    ///   - runningMean: `[C]`, updated.
    ///   - runningVariance: `[C]`, updated.
    ///   - saved: Receives what the backward pass needs.
    ///   - relu: Whether to apply ReLU.
    ///   - reducer: Combines the statistics across processes (synchronised BatchNorm); nil for
    ///     this batch alone.
    public static func forwardTraining(
        input x: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>, shape: Shape,
        gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, epsilon: Float, momentum: Float,
        runningMean runMean: UnsafeMutablePointer<Float>, runningVariance runVar: UnsafeMutablePointer<Float>,
        saved: SavedStatistics, relu: Bool, reducer: (any StatisticsReducer)? = nil
    ) {
        precondition(saved.channels == shape.channels, "BatchNormalization.forwardTraining: statistics of \(saved.channels) channels for \(shape.channels)")
        let moments = batchMoments(input: x, shape: shape, reducer: reducer)
        takeStatistics(moments, shape: shape, gamma: gamma, beta: beta, epsilon: epsilon, momentum: momentum,
                       runningMean: runMean, runningVariance: runVar, saved: saved) { channel, scale, shift in
            applyAffine(x, y, shape: shape, channel: channel, scale: scale, shift: shift, relu: relu)
        }
    }

    /// The batch's moments per channel (combined across processes by `reducer`).
    static func batchMoments(input x: UnsafePointer<Float>, shape: Shape, reducer: (any StatisticsReducer)?) -> [Moments] {
        let batch = shape.batch, channels = shape.channels, length = shape.length
        var moments = [Moments](repeating: Moments(count: 0, mean: 0, squares: 0), count: channels)
        moments.withUnsafeMutableBufferPointer { moments in
            Parallel.forEach(count: channels) { channel in
                // One pass over the data: each row's moments about a shift close to its values
                // (the mean of its first values), so little cancellation, merged across rows in
                // Double with Chan's formula. A second pass over an activation-sized tensor cost
                // more. The shift depends on the row alone, so a row's Float sums are the same
                // bits however the batch is split over processes: synchronised BatchNorm then
                // matches one process to Double rounding instead of Float rounding.
                var count: Double = 0, runningMean: Double = 0, squares: Double = 0
                let head = Swift.max(Swift.min(length, 64), 1)
                for n in 0..<batch {
                    let start = x + (n * channels + channel) * length
                    let shift = Float(rowSum(start, Swift.min(length, 64)) / Double(head))
                    let row = rowMoments(start, length, shift: shift)
                    let merged = count + row.count
                    let delta = row.mean - runningMean
                    runningMean += delta * row.count / merged
                    squares += row.squares + delta * delta * count * row.count / merged
                    count = merged
                }
                moments[channel] = Moments(count: count, mean: runningMean, squares: squares)
            }
        }
        reducer?.combine(&moments)
        precondition(moments.count == channels && moments.allSatisfy { $0.count > 1 },
                     "BatchNormalization.forwardTraining: the reducer returned statistics of \(moments.count) channels or of one value")
        return moments
    }

    /// Fills `saved` and moves the running statistics from the batch's moments; `apply` then
    /// normalises each channel with its scale and shift (in parallel over the channels).
    static func takeStatistics(
        _ moments: [Moments], shape: Shape, gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, epsilon: Float, momentum: Float,
        runningMean runMean: UnsafeMutablePointer<Float>, runningVariance runVar: UnsafeMutablePointer<Float>, saved: SavedStatistics,
        apply: (_ channel: Int, _ scale: Float, _ shift: Float) -> Void
    ) {
        saved.count = moments.first?.count ?? 0
        let means = saved.mean, inverses = saved.inverseStandardDeviation, scales = saved.scale, shifts = saved.shift
        moments.withUnsafeBufferPointer { moments in
            Parallel.forEach(count: shape.channels) { channel in
                let channelMoments = moments[channel]
                let mean = Float(channelMoments.mean)
                let variance = channelMoments.squares / channelMoments.count
                let inverse = Float(1 / (variance + Double(epsilon)).squareRoot())
                means[channel] = mean
                inverses[channel] = inverse
                let scale = (gamma?[channel] ?? 1) * inverse
                let shift = (beta?[channel] ?? 0) - mean * scale
                scales[channel] = scale
                shifts[channel] = shift
                apply(channel, scale, shift)
                let unbiased = Float(channelMoments.squares / (channelMoments.count - 1))
                runMean[channel] = (1 - momentum) * runMean[channel] + momentum * mean
                runVar[channel] = (1 - momentum) * runVar[channel] + momentum * unbiased
            }
        }
    }

    /// The inference forward pass with the running statistics. `[N, C, L] -> [N, C, L]`
    /// - Parameters:
    ///   - input: x.
    ///   - output: y, same size (may alias `input`).
    ///   - shape: The sizes.
    ///   - gamma: The scale `[C]`, or nil.
    ///   - beta: The shift `[C]`, or nil.
    ///   - runningMean: `[C]`.
    ///   - runningVariance: `[C]`.
    ///   - epsilon: Added to the variance.
    ///   - relu: Whether to apply ReLU.
    public static func forwardInference(
        input x: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>, shape: Shape,
        gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?,
        runningMean: UnsafePointer<Float>, runningVariance: UnsafePointer<Float>, epsilon: Float, relu: Bool
    ) {
        Parallel.forEach(count: shape.channels) { channel in
            let scale = inferenceScale(gamma: gamma?[channel], variance: runningVariance[channel], epsilon: epsilon)
            let shift = (beta?[channel] ?? 0) - runningMean[channel] * scale
            applyAffine(x, y, shape: shape, channel: channel, scale: scale, shift: shift, relu: relu)
        }
    }

    /// The kernel both forward passes share: `y = x·scale + shift` (or its ReLU) over one channel.
    @inline(__always)
    static func applyAffine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, shape: Shape, channel: Int,
                            scale: Float, shift: Float, relu: Bool) {
        for n in 0..<shape.batch {
            let offset = (n * shape.channels + channel) * shape.length
            affineRow(x + offset, y + offset, shape.length, scale, shift, relu: relu)
        }
    }

    // MARK: - Backward

    /// The backward pass of the last ``forwardTraining(input:output:shape:gamma:beta:epsilon:momentum:runningMean:runningVariance:saved:relu:reducer:)``.
    /// `[N, C, L] -> [N, C, L]`
    ///
    /// Adds the scale and shift gradients and writes the input gradient through the batch
    /// statistics. `gradientInput` may be `input` itself: each value is written after the
    /// channel's sums have read every input, and only the same position's input is read for it.
    /// - Parameters:
    ///   - input: The forward pass's x.
    ///   - gradientOutput: dy.
    ///   - gradientInput: dx (may alias `input`).
    ///   - shape: The sizes.
    ///   - gamma: The scale `[C]`, or nil.
    ///   - gammaGradient: Accumulates dγ `[C]`, or nil.
    ///   - betaGradient: Accumulates dβ `[C]`, or nil.
    ///   - saved: What the forward pass kept.
    ///   - relu: Whether the forward pass applied ReLU (its mask is recomputed from x).
    ///   - reducer: Sums Σdy and Σdy·(x − mean) across processes, as in the forward pass; the
    ///     scale and shift gradients stay this process's share.
    public static func backward(
        input x: UnsafePointer<Float>, gradientOutput dy: UnsafePointer<Float>, gradientInput dx: UnsafeMutablePointer<Float>,
        shape: Shape, gamma: UnsafePointer<Float>?, gammaGradient: UnsafeMutablePointer<Float>?,
        betaGradient: UnsafeMutablePointer<Float>?, saved: SavedStatistics, relu fusedReLU: Bool,
        reducer: (any StatisticsReducer)? = nil
    ) {
        precondition(saved.channels == shape.channels, "BatchNormalization.backward: statistics of \(saved.channels) channels for \(shape.channels)")
        let batch = shape.batch, channels = shape.channels, length = shape.length
        // The statistics' count: this batch's, or every process's when a reducer combined them.
        let count = Float(saved.count)
        let means = saved.mean, scales = saved.scale, shifts = saved.shift
        // Σdy and Σdy·(x − mean) per channel, side by side.
        var sums = channelSums(batch: batch, saved: saved) { channel, n, mean, scale, shift in
            let offset = (n * channels + channel) * length
            return fusedReLU
                ? maskedRowSumAndCenteredDot(dy + offset, x + offset, length, mean, scale, shift)
                : rowSumAndCenteredDot(dy + offset, x + offset, length, mean)
        }
        addParameterGradients(&sums, saved: saved, gammaGradient: gammaGradient, betaGradient: betaGradient, reducer: reducer)
        sums.withUnsafeBufferPointer { sums in
            Parallel.forEach(count: channels) { channel in
                let mean = means[channel]
                let scale = scales[channel], shift = shifts[channel]
                let (factor, meanGradient, slope) = inputGradientCoefficients(sums, channel: channel, saved: saved, gamma: gamma, count: count)
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

    /// The backward pass's Σdy and Σdy·(x − mean) per channel, side by side: `row` gives them for
    /// one row (channel, item, and the channel's mean, scale and shift), added over the items in order.
    static func channelSums(batch: Int, saved: SavedStatistics,
                            _ row: (_ channel: Int, _ item: Int, _ mean: Float, _ scale: Float, _ shift: Float) -> (sum: Double, dot: Double)) -> [Double] {
        let means = saved.mean, scales = saved.scale, shifts = saved.shift
        var sums = [Double](repeating: 0, count: 2 * saved.channels)
        sums.withUnsafeMutableBufferPointer { sums in
            Parallel.forEach(count: saved.channels) { channel in
                var sumGradient: Double = 0, sumGradientCentered: Double = 0
                for n in 0..<batch {
                    let sums = row(channel, n, means[channel], scales[channel], shifts[channel])
                    sumGradient += sums.sum
                    sumGradientCentered += sums.dot
                }
                sums[2 * channel] = sumGradient
                sums[2 * channel + 1] = sumGradientCentered
            }
        }
        return sums
    }

    /// Sums the backward pass's Σdy and Σdy·(x − mean) (side by side per channel) across the
    /// processes, and adds the scale and shift gradients from them.
    static func addParameterGradients(_ sums: inout [Double], saved: SavedStatistics, gammaGradient: UnsafeMutablePointer<Float>?,
                                      betaGradient: UnsafeMutablePointer<Float>?, reducer: (any StatisticsReducer)?) {
        let channels = saved.channels
        reducer?.sum(&sums)
        precondition(sums.count == 2 * channels, "BatchNormalization.backward: the reducer returned \(sums.count) sums for \(channels) channels")
        // With a reducer the sums are every process's, and each adds its share of them.
        let share = reducer?.parameterGradientShare ?? 1
        for channel in 0..<channels {
            gammaGradient?[channel] += Float(sums[2 * channel + 1] * share) * saved.inverseStandardDeviation[channel]
            betaGradient?[channel] += Float(sums[2 * channel] * share)
        }
    }

    /// The input gradient of one channel is `factor · (dy − meanGradient − (x − mean) · slope)`.
    @inline(__always)
    static func inputGradientCoefficients(_ sums: UnsafeBufferPointer<Double>, channel: Int, saved: SavedStatistics, gamma: UnsafePointer<Float>?,
                                          count: Float) -> (factor: Float, meanGradient: Float, slope: Float) {
        let inverse = saved.inverseStandardDeviation[channel]
        // Σ dy·x̂ = inverse · Σ dy·(x − mean)
        let sumGradientNormalized = Float(sums[2 * channel + 1]) * inverse
        // dx = γ·inv/M · (M·dy − Σdy − x̂·Σ(dy·x̂))
        return ((gamma?[channel] ?? 1) * inverse, Float(sums[2 * channel]) / count, sumGradientNormalized * inverse / count)
    }
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

/// Σ g and Σ g·(x − mean) over a row.
@inline(__always)
private func rowSumAndCenteredDot(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, _ mean: Float) -> (sum: Double, dot: Double) {
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
private func maskedRowSumAndCenteredDot(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, _ mean: Float,
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
private func affineRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int, _ scale: Float, _ shift: Float, relu: Bool) {
    if relu {
        for index in 0..<count { let value = x[index] * scale + shift; y[index] = value > 0 ? value : 0 }
    } else {
        for index in 0..<count { y[index] = x[index] * scale + shift }
    }
}
