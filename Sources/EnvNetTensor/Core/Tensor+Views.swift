/// Views: new shapes and strides over the same storage, without copying elements.
extension Tensor {
    /// The same elements with a new shape (one extent may be `-1`, inferred).
    ///
    /// A view when the layout allows it (always for contiguous tensors); otherwise a contiguous copy.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        let target = TensorError.check { try resolveReshape(newShape) }
        if let strides = Tensor.viewStrides(from: shape, strides: strides, to: target) {
            return withLayout(shape: target, strides: strides, offset: offset)
        }
        let copy = contiguousCopy()
        return copy.withLayout(shape: target, strides: Shape.contiguousStrides(target), offset: 0)
    }

    func resolveReshape(_ newShape: [Int]) throws -> [Int] {
        let operation = "reshaped"
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        guard inferred.count <= 1, newShape.allSatisfy({ $0 >= -1 }) else {
            throw TensorError.invalidArgument(operation: operation, message: "shape \(newShape) has more than one -1 or a negative extent")
        }
        var target = newShape
        if let axis = inferred.first {
            let known = newShape.filter { $0 != -1 }.reduce(1, *)
            guard known > 0, count % known == 0 else {
                throw TensorError.shapeMismatch(operation: operation, message: "cannot infer -1 in \(newShape) for \(shape) (\(count) elements)")
            }
            target[axis] = count / known
        }
        guard target.reduce(1, *) == count else {
            throw TensorError.shapeMismatch(operation: operation, message: "\(shape) (\(count) elements) cannot become \(newShape)")
        }
        return target
    }

    /// Strides that present the layout (`shape`, `strides`) as `target`, or nil when a copy is needed.
    /// Works by matching groups of old axes to groups of new axes with equal products; each old
    /// group must itself be laid out consecutively.
    static func viewStrides(from shape: [Int], strides: [Int], to target: [Int]) -> [Int]? {
        if target.contains(0) || shape.contains(0) { return Shape.contiguousStrides(target) }
        let oldAxes = shape.indices.filter { shape[$0] != 1 }
        let oldShape = oldAxes.map { shape[$0] }, oldStrides = oldAxes.map { strides[$0] }
        var result = [Int](repeating: 0, count: target.count)
        var oldIndex = 0, newIndex = 0
        while newIndex < target.count {
            if target[newIndex] == 1 {
                result[newIndex] = 1
                newIndex += 1
                continue
            }
            guard oldIndex < oldShape.count else { return nil }
            // Grow an old group and a new group until their products agree.
            var oldProduct = oldShape[oldIndex], newProduct = target[newIndex]
            var oldEnd = oldIndex, newEnd = newIndex
            while oldProduct != newProduct {
                if oldProduct < newProduct {
                    oldEnd += 1
                    guard oldEnd < oldShape.count else { return nil }
                    // Consecutive only if the outer stride spans the inner axis exactly.
                    guard oldStrides[oldEnd - 1] == oldStrides[oldEnd] * oldShape[oldEnd] else { return nil }
                    oldProduct *= oldShape[oldEnd]
                } else {
                    newEnd += 1
                    guard newEnd < target.count else { return nil }
                    newProduct *= target[newEnd]
                }
            }
            // New axes of the group take strides from the innermost old stride outwards.
            var running = oldStrides[oldEnd]
            for axis in stride(from: newEnd, through: newIndex, by: -1) {
                result[axis] = running
                running *= target[axis]
            }
            oldIndex = oldEnd + 1
            newIndex = newEnd + 1
        }
        return oldIndex == oldShape.count ? result : nil
    }

    /// The axes reordered: axis `i` of the result is axis `order[i]` of this tensor.
    public func permuted(_ order: [Int]) -> Tensor {
        let axes = TensorError.check { () throws -> [Int] in
            let resolved = try Shape.normalize(axes: order, rank: rank, operation: "permuted")
            guard resolved.count == rank else {
                throw TensorError.invalidAxis(operation: "permuted", message: "order \(order) does not name each of the \(rank) axes of \(shape) once")
            }
            return resolved
        }
        return withLayout(shape: axes.map { shape[$0] }, strides: axes.map { strides[$0] }, offset: offset)
    }

    /// The two axes exchanged.
    public func swappingAxes(_ first: Int, _ second: Int) -> Tensor {
        let (a, b) = TensorError.check {
            (try Shape.normalize(axis: first, rank: rank, operation: "swappingAxes"),
             try Shape.normalize(axis: second, rank: rank, operation: "swappingAxes"))
        }
        var order = Array(0..<rank)
        order.swapAt(a, b)
        return permuted(order)
    }

    /// The last two axes exchanged (the matrix transpose for rank 2).
    public var transposed: Tensor {
        TensorError.check {
            guard rank >= 2 else {
                throw TensorError.invalidAxis(operation: "transposed", message: "needs at least 2 axes, shape is \(shape)")
            }
        }
        return swappingAxes(rank - 2, rank - 1)
    }

    /// `length` elements along `axis` starting at `start`.
    public func narrowed(axis: Int, start: Int, length: Int) -> Tensor {
        sliced(axis: axis, from: start, to: start + length, step: 1)
    }

    /// Elements `start, start + step, …` below `end` along `axis` (a positive step), as Python's `a[start:end:step]`.
    public func sliced(axis: Int, from start: Int, to end: Int, step: Int = 1) -> Tensor {
        let resolved = TensorError.check { () throws -> Int in
            let resolved = try Shape.normalize(axis: axis, rank: rank, operation: "sliced")
            guard step > 0, start >= 0, end >= start, end <= shape[resolved] else {
                throw TensorError.invalidIndex(
                    operation: "sliced", message: "range \(start)..<\(end) step \(step) on axis \(axis) of shape \(shape)")
            }
            return resolved
        }
        var newShape = shape, newStrides = strides
        newShape[resolved] = (end - start + step - 1) / step
        newStrides[resolved] = strides[resolved] * step
        let newOffset = newShape[resolved] == 0 ? offset : offset + start * strides[resolved]
        return withLayout(shape: newShape, strides: newStrides, offset: newOffset)
    }

    /// The sub-tensor at `index` along `axis`, with that axis removed.
    public func selecting(axis: Int, index: Int) -> Tensor {
        let resolved = TensorError.check { try Shape.normalize(axis: axis, rank: rank, operation: "selecting") }
        return narrowed(axis: resolved, start: index, length: 1).squeezed(axes: [resolved])
    }

    /// Removes extent-1 axes: the given ones, or all of them when `axes` is nil.
    public func squeezed(axes: [Int]? = nil) -> Tensor {
        let remove: Set<Int> = TensorError.check {
            guard let axes else { return Set(shape.indices.filter { shape[$0] == 1 }) }
            let resolved = try Shape.normalize(axes: axes, rank: rank, operation: "squeezed")
            for axis in resolved where shape[axis] != 1 {
                throw TensorError.invalidAxis(operation: "squeezed", message: "axis \(axis) of shape \(shape) has extent \(shape[axis]), not 1")
            }
            return Set(resolved)
        }
        let keep = shape.indices.filter { !remove.contains($0) }
        return withLayout(shape: keep.map { shape[$0] }, strides: keep.map { strides[$0] }, offset: offset)
    }

    /// Inserts an extent-1 axis at `axis` (`0...rank`; negative counts from the end of the result).
    public func unsqueezed(axis: Int) -> Tensor {
        let resolved = TensorError.check { try Shape.normalize(axis: axis, rank: rank + 1, operation: "unsqueezed") }
        var newShape = shape, newStrides = strides
        let stride = resolved < rank ? strides[resolved] * shape[resolved] : 1
        newShape.insert(1, at: resolved)
        newStrides.insert(stride, at: resolved)
        return withLayout(shape: newShape, strides: newStrides, offset: offset)
    }

    /// A broadcast view with `target` shape: extent-1 axes (and missing leading axes) repeat with stride 0.
    public func expanded(to target: [Int]) -> Tensor {
        if target == shape { return self }
        TensorError.check {
            guard target.count >= rank else {
                throw TensorError.shapeMismatch(operation: "expanded", message: "\(shape) cannot expand to fewer axes \(target)")
            }
            let lead = target.count - rank
            for axis in 0..<rank where shape[axis] != target[lead + axis] && shape[axis] != 1 {
                throw TensorError.shapeMismatch(operation: "expanded", message: "\(shape) cannot expand to \(target) (axis \(axis))")
            }
        }
        let lead = target.count - rank
        var newStrides = [Int](repeating: 0, count: target.count)
        for axis in 0..<rank {
            newStrides[lead + axis] = shape[axis] == target[lead + axis] ? strides[axis] : 0
        }
        return withLayout(shape: target, strides: newStrides, offset: offset)
    }
}
