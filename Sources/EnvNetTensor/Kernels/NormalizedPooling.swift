/// BatchNorm with ReLU followed by max pooling over windows of `poolSize` (stride `poolSize`), in
/// training mode, as one operation: EnvNet's bn2 + pool2. The normalised activations are never
/// stored. The forward pass keeps each window's argmax; the backward pass routes the pooled
/// gradient through them and writes the input gradient over the input. That saves the largest
/// tensor of a training step (EnvNet: 40 x 24000 values per window).
///
/// Both passes give the bits of ``BatchNormalization/forwardTraining(input:output:shape:gamma:beta:epsilon:momentum:runningMean:runningVariance:saved:relu:reducer:)``
/// with `relu` followed by max pooling, and of the two layers' backward passes: the same
/// statistics, the same `x·scale + shift` and ReLU, the first maximum of each window, and the
/// backward sums added in the order the dense kernel adds them (the gradient is zero outside the
/// argmaxes, and adding a zero changes no sum).
///
/// `[N, C, L] -> [N, C, L / poolSize]` (positions past the last whole window are not pooled).
extension BatchNormalization {
    /// The training forward pass: batch statistics (running statistics updated, `saved` filled as
    /// by ``forwardTraining(input:output:shape:gamma:beta:epsilon:momentum:runningMean:runningVariance:saved:relu:reducer:)``),
    /// then each window's maximum of `max(0, x·scale + shift)` and its position.
    /// `[N, C, L] -> [N, C, L / poolSize]`
    /// - Parameters:
    ///   - input: x, `[N, C, L]`.
    ///   - shape: The sizes.
    ///   - poolSize: The window and stride, at least 1 and at most `L`.
    ///   - pooled: Receives `[N, C, L / poolSize]` maxima.
    ///   - indices: Receives the maxima's positions in their rows (`0 ..< L`), as many.
    ///   - gamma: The scale `[C]`, or nil (1).
    ///   - beta: The shift `[C]`, or nil (0).
    ///   - epsilon: Added to the variance.
    ///   - momentum: The weight of the batch statistics in the running averages.
    ///   - runningMean: `[C]`, updated.
    ///   - runningVariance: `[C]`, updated.
    ///   - saved: Receives what the backward pass needs.
    ///   - reducer: Combines the statistics across processes, or nil.
    public static func forwardTrainingPooled(
        input x: UnsafePointer<Float>, shape: Shape, poolSize: Int, pooled: UnsafeMutablePointer<Float>, indices: UnsafeMutablePointer<Int32>,
        gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, epsilon: Float, momentum: Float,
        runningMean: UnsafeMutablePointer<Float>, runningVariance: UnsafeMutablePointer<Float>,
        saved: SavedStatistics, reducer: (any StatisticsReducer)? = nil
    ) {
        precondition(saved.channels == shape.channels && poolSize >= 1 && poolSize <= shape.length,
                     "BatchNormalization.forwardTrainingPooled: \(saved.channels) saved channels for \(shape.channels), pool \(poolSize) over \(shape.length)")
        let moments = batchMoments(input: x, shape: shape, reducer: reducer)
        let cells = shape.length / poolSize
        takeStatistics(moments, shape: shape, gamma: gamma, beta: beta, epsilon: epsilon, momentum: momentum,
                       runningMean: runningMean, runningVariance: runningVariance, saved: saved) { channel, scale, shift in
            for n in 0..<shape.batch {
                let row = (n * shape.channels + channel)
                for cell in 0..<cells {
                    let (value, index) = windowMaximum(x + row * shape.length + cell * poolSize, poolSize, scale, shift)
                    pooled[row * cells + cell] = value
                    indices[row * cells + cell] = Int32(cell * poolSize + index)
                }
            }
        }
    }

    /// The maximum of `max(0, x·scale + shift)` over a window, and its first position.
    @inline(__always)
    static func windowMaximum(_ x: UnsafePointer<Float>, _ count: Int, _ scale: Float, _ shift: Float) -> (Float, Int) {
        @inline(__always) func activation(_ value: Float) -> Float {
            let y = value * scale + shift
            return y > 0 ? y : 0
        }
        var index = 0
        var best = activation(x[0]), at = 0
        if count >= 16 {
            // Per lane, the first maximum (a strictly greater value replaces it); across lanes the
            // smallest position among the lanes holding the maximum is the window's first.
            let scales = SIMD16<Float>(repeating: scale), shifts = SIMD16<Float>(repeating: shift), zero = SIMD16<Float>()
            let lanes = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
            var maxima = SIMD16<Float>(repeating: -.infinity), positions = lanes
            while index + 16 <= count {
                let v = UnsafeRawPointer(x + index).loadUnaligned(as: SIMD16<Float>.self) * scales + shifts
                let y = zero.replacing(with: v, where: v .> zero)
                let greater = y .> maxima
                maxima.replace(with: y, where: greater)
                positions.replace(with: lanes &+ Int32(index), where: greater)
                index += 16
            }
            best = maxima.max()
            at = Int(positions.replacing(with: Int32.max, where: maxima .!= best).min())
        }
        while index < count {
            let y = activation(x[index])
            if y > best { best = y; at = index }
            index += 1
        }
        return (best, at)
    }

    /// The backward pass of the last ``forwardTrainingPooled(input:shape:poolSize:pooled:indices:gamma:beta:epsilon:momentum:runningMean:runningVariance:saved:reducer:)``:
    /// adds the scale and shift gradients and writes the input gradient over the input.
    /// `[N, C, L / poolSize] -> [N, C, L]`
    /// - Parameters:
    ///   - input: The forward pass's x on entry, dx on return.
    ///   - gradientPooled: The gradient with respect to the pooled output.
    ///   - indices: The forward pass's positions.
    ///   - shape: The sizes.
    ///   - poolSize: The window.
    ///   - gamma: The scale `[C]`, or nil.
    ///   - gammaGradient: Accumulates dγ `[C]`, or nil.
    ///   - betaGradient: Accumulates dβ `[C]`, or nil.
    ///   - saved: What the forward pass kept.
    ///   - reducer: Sums the backward sums across processes, or nil.
    public static func backwardPooled(
        input x: UnsafeMutablePointer<Float>, gradientPooled dp: UnsafePointer<Float>, indices: UnsafePointer<Int32>, shape: Shape, poolSize: Int,
        gamma: UnsafePointer<Float>?, gammaGradient: UnsafeMutablePointer<Float>?, betaGradient: UnsafeMutablePointer<Float>?,
        saved: SavedStatistics, reducer: (any StatisticsReducer)? = nil
    ) {
        precondition(saved.channels == shape.channels, "BatchNormalization.backwardPooled: statistics of \(saved.channels) channels for \(shape.channels)")
        let batch = shape.batch, channels = shape.channels, length = shape.length, cells = length / poolSize
        let count = Float(saved.count)
        let means = saved.mean, scales = saved.scale, shifts = saved.shift
        // The dense kernel's sums: eight Float lanes over the row's first length / 8 * 8 values
        // (position i in lane i % 8), then the rest in Double; only the routed positions add.
        let vectorEnd = length / 8 * 8
        var sums = channelSums(batch: batch, saved: saved) { channel, n, mean, scale, shift in
            let row = n * channels + channel
            let xRow = x + row * length
            var sumLanes = SIMD8<Float>(), dotLanes = SIMD8<Float>()
            var tail: [(Float, Float)] = []
            for cell in 0..<cells {
                let position = Int(indices[row * cells + cell]), value = xRow[position]
                guard value * scale + shift > 0 else { continue }
                let g = dp[row * cells + cell]
                if position < vectorEnd {
                    sumLanes[position % 8] += g
                    dotLanes[position % 8] += g * (value - mean)
                } else {
                    tail.append((g, value))
                }
            }
            var rowSum = Double(sumLanes.sum()), rowDot = Double(dotLanes.sum())
            for (g, value) in tail {
                rowSum += Double(g)
                rowDot += Double(g) * Double(value - mean)
            }
            return (rowSum, rowDot)
        }
        addParameterGradients(&sums, saved: saved, gammaGradient: gammaGradient, betaGradient: betaGradient, reducer: reducer)
        sums.withUnsafeBufferPointer { sums in
            Parallel.forEach(count: channels) { channel in
                let mean = means[channel], scale = scales[channel], shift = shifts[channel]
                let (factor, meanGradient, slope) = inputGradientCoefficients(sums, channel: channel, saved: saved, gamma: gamma, count: count)
                for n in 0..<batch {
                    let row = n * channels + channel
                    let xRow = x + row * length
                    // The routed gradients, read before their positions are overwritten.
                    var cell = 0
                    var next = cells > 0 ? Int(indices[row * cells]) : length
                    var i = 0
                    while i < length {
                        let value = xRow[i]
                        var gradient: Float = 0
                        if i == next {
                            if value * scale + shift > 0 { gradient = dp[row * cells + cell] }
                            cell += 1
                            next = cell < cells ? Int(indices[row * cells + cell]) : length
                        }
                        xRow[i] = factor * (gradient - meanGradient - (value - mean) * slope)
                        i += 1
                    }
                }
            }
        }
    }
}
