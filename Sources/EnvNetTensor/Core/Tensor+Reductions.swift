import Foundation

/// Reductions over chosen axes, and softmax along an axis.
///
/// Sums accumulate in `Double`, so a reduction's result does not depend on the tensor's layout
/// beyond Float32 rounding of the final value.
extension Tensor {
    /// Accumulates every element into the slot of its reduced position; `combine(accumulator, x)`.
    private func reduce(
        axes: [Int]?, keepingDimensions: Bool, operation: String, initial: Double,
        _ combine: (Double, Float) -> Double
    ) -> (values: [Double], keptShape: [Int], resultShape: [Int], reducedCount: Int) {
        let resolved = TensorError.check { try Shape.normalize(axes: axes ?? Array(0..<rank), rank: rank, operation: operation) }
        let reduced = Set(resolved)
        let keptShape = shape.indices.map { reduced.contains($0) ? 1 : shape[$0] }
        let keptStrides = Shape.contiguousStrides(keptShape)
        let accumulatorStrides = shape.indices.map { reduced.contains($0) ? 0 : keptStrides[$0] }
        var accumulator = [Double](repeating: initial, count: keptShape.reduce(1, *))
        let input = storage.baseAddress
        accumulator.withUnsafeMutableBufferPointer { slots in
            StridedLoop.forEachRow(shape: shape, strides: [strides, accumulatorStrides], offsets: [offset, 0]) { length, starts, steps in
                let from = input + starts[0]
                let step = steps[0], slotStep = steps[1]
                var slot = starts[1]
                for index in 0..<length {
                    slots[slot] = combine(slots[slot], from[index * step])
                    slot += slotStep
                }
            }
        }
        let resultShape = keepingDimensions ? keptShape : shape.indices.filter { !reduced.contains($0) }.map { shape[$0] }
        let reducedCount = resolved.map { shape[$0] }.reduce(1, *)
        return (accumulator, keptShape, resultShape, reducedCount)
    }

    /// Sum over `axes` (all axes when nil).
    public func sum(alongAxes axes: [Int]? = nil, keepingDimensions: Bool = false) -> Tensor {
        let r = reduce(axes: axes, keepingDimensions: keepingDimensions, operation: "sum", initial: 0) { $0 + Double($1) }
        return Tensor(r.values.map { Float($0) }, shape: r.resultShape)
    }

    /// Arithmetic mean over `axes` (all axes when nil). The mean over zero elements is NaN.
    public func mean(alongAxes axes: [Int]? = nil, keepingDimensions: Bool = false) -> Tensor {
        let r = reduce(axes: axes, keepingDimensions: keepingDimensions, operation: "mean", initial: 0) { $0 + Double($1) }
        let divisor = Double(r.reducedCount)
        return Tensor(r.values.map { Float($0 / divisor) }, shape: r.resultShape)
    }

    /// Largest element over `axes` (all axes when nil); NaN if any reduced element is NaN.
    public func max(alongAxes axes: [Int]? = nil, keepingDimensions: Bool = false) -> Tensor {
        let r = reduce(axes: axes, keepingDimensions: keepingDimensions, operation: "max", initial: -.infinity) { accumulator, x in
            (x.isNaN || Double(x) > accumulator) ? Double(x) : accumulator
        }
        return Tensor(r.values.map { Float($0) }, shape: r.resultShape)
    }

    /// Smallest element over `axes` (all axes when nil); NaN if any reduced element is NaN.
    public func min(alongAxes axes: [Int]? = nil, keepingDimensions: Bool = false) -> Tensor {
        let r = reduce(axes: axes, keepingDimensions: keepingDimensions, operation: "min", initial: .infinity) { accumulator, x in
            (x.isNaN || Double(x) < accumulator) ? Double(x) : accumulator
        }
        return Tensor(r.values.map { Float($0) }, shape: r.resultShape)
    }

    /// Variance over `axes`: biased (divide by n) or unbiased (divide by n - 1), as PyTorch's `var(unbiased:)`.
    public func variance(alongAxes axes: [Int]? = nil, unbiased: Bool = false, keepingDimensions: Bool = false) -> Tensor {
        let means = mean(alongAxes: axes, keepingDimensions: true)
        let deviations = (self - means).squared()
        let r = deviations.reduce(axes: axes, keepingDimensions: keepingDimensions, operation: "variance", initial: 0) { $0 + Double($1) }
        let divisor = Double(unbiased ? r.reducedCount - 1 : r.reducedCount)
        return Tensor(r.values.map { Float($0 / divisor) }, shape: r.resultShape)
    }

    /// Index of the largest element along `axis` for every position of the other axes (the first on ties).
    /// The result has the other axes' shape (with `axis` kept as extent 1 when `keepingDimensions`).
    public func argmax(axis: Int, keepingDimensions: Bool = false) -> (indices: [Int], shape: [Int]) {
        let resolved = TensorError.check { try Shape.normalize(axis: axis, rank: rank, operation: "argmax") }
        TensorError.check {
            guard shape[resolved] > 0 else {
                throw TensorError.invalidAxis(operation: "argmax", message: "axis \(axis) of shape \(shape) is empty")
            }
        }
        let rows = movingAxisLast(resolved)
        let length = shape[resolved]
        let rowCount = count / length
        var indices = [Int](repeating: 0, count: rowCount)
        rows.withUnsafeBufferPointer { values in
            for row in 0..<rowCount {
                var best = 0
                var bestValue = values[row * length]
                for index in 1..<length where values[row * length + index] > bestValue || (values[row * length + index].isNaN && !bestValue.isNaN) {
                    best = index
                    bestValue = values[row * length + index]
                }
                indices[row] = best
            }
        }
        var resultShape = shape
        if keepingDimensions { resultShape[resolved] = 1 } else { resultShape.remove(at: resolved) }
        return (indices, resultShape)
    }

    /// The tensor with `axis` moved to the end, contiguous.
    private func movingAxisLast(_ axis: Int) -> Tensor {
        var order = Array(0..<rank)
        order.remove(at: axis)
        order.append(axis)
        return permuted(order).contiguous()
    }

    /// Undoes ``movingAxisLast(_:)`` and returns a contiguous tensor in this tensor's axis order.
    private func restoringAxis(_ axis: Int, from rows: Tensor) -> Tensor {
        var order = Array(0..<(rank - 1))
        order.insert(rank - 1, at: axis)
        return rows.permuted(order).contiguous()
    }

    /// exp(x - max) / Σ exp(x - max) along `axis`: stable for large values.
    public func softmax(axis: Int = -1) -> Tensor {
        softmaxRows(axis: axis, operation: "softmax", logarithmic: false)
    }

    /// x - max - log Σ exp(x - max) along `axis`: stable for large values.
    public func logSoftmax(axis: Int = -1) -> Tensor {
        softmaxRows(axis: axis, operation: "logSoftmax", logarithmic: true)
    }

    private func softmaxRows(axis: Int, operation: String, logarithmic: Bool) -> Tensor {
        let resolved = TensorError.check { try Shape.normalize(axis: axis, rank: rank, operation: operation) }
        let length = shape[resolved]
        if count == 0 || length == 0 { return self.contiguousCopy() }
        var rows = movingAxisLast(resolved)
        if rows.storage === storage { rows = rows.contiguousCopy() }
        rows.withUnsafeMutableBufferPointer { values in
            for start in stride(from: 0, to: values.count, by: length) {
                var largest = -Float.infinity
                for index in start..<(start + length) { largest = Swift.max(largest, values[index]) }
                if !largest.isFinite { largest = 0 }
                var total: Double = 0
                for index in start..<(start + length) { total += Double(Foundation.exp(values[index] - largest)) }
                if logarithmic {
                    let logTotal = Float(Foundation.log(total))
                    for index in start..<(start + length) { values[index] = values[index] - largest - logTotal }
                } else {
                    let scale = Float(1 / total)
                    for index in start..<(start + length) { values[index] = Foundation.exp(values[index] - largest) * scale }
                }
            }
        }
        return restoringAxis(resolved, from: rows)
    }
}
