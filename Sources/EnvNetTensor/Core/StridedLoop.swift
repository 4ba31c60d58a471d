/// The iteration engine behind element-wise operations over arbitrary strided layouts.
///
/// Axes that are laid out consecutively in every operand are merged first, so a contiguous
/// tensor is walked as one row and a transposed one as rows of its inner axis; the body then runs
/// once per row with the row's length, each operand's row start and each operand's inner stride.
enum StridedLoop {
    /// Merges axes that are consecutive in every operand and drops extent-1 axes.
    static func collapse(shape: [Int], strides: [[Int]]) -> (shape: [Int], strides: [[Int]]) {
        var outShape: [Int] = []
        var outStrides: [[Int]] = Array(repeating: [], count: strides.count)
        for axis in 0..<shape.count where shape[axis] != 1 {
            if let last = outShape.indices.last,
               strides.indices.allSatisfy({ outStrides[$0][last] == strides[$0][axis] * shape[axis] }) {
                outShape[last] *= shape[axis]
                for operand in strides.indices { outStrides[operand][last] = strides[operand][axis] }
            } else {
                outShape.append(shape[axis])
                for operand in strides.indices { outStrides[operand].append(strides[operand][axis]) }
            }
        }
        if outShape.isEmpty {
            outShape = [1]
            for operand in strides.indices { outStrides[operand] = [0] }
        }
        return (outShape, outStrides)
    }

    /// Calls `body(rowLength, rowStarts, innerStrides)` once per row of `shape`.
    /// `rowStarts[k]` is operand k's storage position of the row's first element.
    static func forEachRow(
        shape: [Int], strides: [[Int]], offsets: [Int],
        _ body: (_ length: Int, _ starts: UnsafeMutableBufferPointer<Int>, _ innerStrides: UnsafeBufferPointer<Int>) -> Void
    ) {
        if shape.contains(0) { return }
        let (dims, layout) = collapse(shape: shape, strides: strides)
        let operands = offsets.count
        let rank = dims.count
        let inner = dims[rank - 1]
        let starts = UnsafeMutableBufferPointer<Int>.allocate(capacity: operands)
        let innerStrides = UnsafeMutableBufferPointer<Int>.allocate(capacity: operands)
        let counter = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(rank, 1))
        defer { starts.deallocate(); innerStrides.deallocate(); counter.deallocate() }
        for operand in 0..<operands {
            starts[operand] = offsets[operand]
            innerStrides[operand] = layout[operand][rank - 1]
        }
        counter.initialize(repeating: 0)
        let rows = dims.dropLast().reduce(1, *)
        for _ in 0..<rows {
            body(inner, starts, UnsafeBufferPointer(innerStrides))
            // Advance the odometer over the outer axes.
            var axis = rank - 2
            while axis >= 0 {
                counter[axis] += 1
                for operand in 0..<operands { starts[operand] += layout[operand][axis] }
                if counter[axis] < dims[axis] { break }
                for operand in 0..<operands { starts[operand] -= layout[operand][axis] * dims[axis] }
                counter[axis] = 0
                axis -= 1
            }
        }
    }

    /// Copies `source`'s elements in row-major order into contiguous memory at `destination`.
    static func copy(from source: Tensor, into destination: UnsafeMutablePointer<Float>) {
        let sourceBase = source.storage.baseAddress
        let destinationStrides = Shape.contiguousStrides(source.shape)
        forEachRow(shape: source.shape, strides: [source.strides, destinationStrides], offsets: [source.offset, 0]) { length, starts, steps in
            let from = sourceBase + starts[0], to = destination + starts[1]
            let step = steps[0]
            if step == 1 {
                to.update(from: from, count: length)
            } else {
                for index in 0..<length { to[index] = from[index * step] }
            }
        }
        withExtendedLifetime(source) {}
    }

    /// `result[i] = transform(source[i])` into a new contiguous tensor.
    @inline(__always)
    static func map(_ source: Tensor, _ transform: (Float) -> Float) -> Tensor {
        let result = Tensor(uninitializedShape: source.shape)
        let output = result.storage.baseAddress
        let input = source.storage.baseAddress
        let outputStrides = Shape.contiguousStrides(source.shape)
        forEachRow(shape: source.shape, strides: [source.strides, outputStrides], offsets: [source.offset, 0]) { length, starts, steps in
            let from = input + starts[0], to = output + starts[1]
            let step = steps[0]
            if step == 1 {
                for index in 0..<length { to[index] = transform(from[index]) }
            } else {
                for index in 0..<length { to[index] = transform(from[index * step]) }
            }
        }
        withExtendedLifetime(source) {}
        return result
    }

    /// `result = combine(lhs, rhs)` with NumPy broadcasting, into a new contiguous tensor.
    @inline(__always)
    static func zip(_ lhs: Tensor, _ rhs: Tensor, operation: String, _ combine: (Float, Float) -> Float) -> Tensor {
        let shape = TensorError.check { try Shape.broadcast(lhs.shape, rhs.shape, operation: operation) }
        let left = lhs.expanded(to: shape), right = rhs.expanded(to: shape)
        let result = Tensor(uninitializedShape: shape)
        let output = result.storage.baseAddress
        let a = left.storage.baseAddress, b = right.storage.baseAddress
        forEachRow(
            shape: shape, strides: [left.strides, right.strides, Shape.contiguousStrides(shape)],
            offsets: [left.offset, right.offset, 0]
        ) { length, starts, steps in
            let x = a + starts[0], y = b + starts[1], to = output + starts[2]
            let xs = steps[0], ys = steps[1]
            if xs == 1 && ys == 1 {
                for index in 0..<length { to[index] = combine(x[index], y[index]) }
            } else if xs == 1 && ys == 0 {
                let scalar = y[0]
                for index in 0..<length { to[index] = combine(x[index], scalar) }
            } else if xs == 0 && ys == 1 {
                let scalar = x[0]
                for index in 0..<length { to[index] = combine(scalar, y[index]) }
            } else {
                for index in 0..<length { to[index] = combine(x[index * xs], y[index * ys]) }
            }
        }
        withExtendedLifetime((left, right)) {}
        return result
    }

    /// `target = combine(target, source)` in place, with `source` broadcast to `target`'s shape.
    @inline(__always)
    static func update(_ target: inout Tensor, with source: Tensor, operation: String, _ combine: (Float, Float) -> Float) {
        let shape = TensorError.check { try Shape.broadcast(target.shape, source.shape, operation: operation) }
        TensorError.check {
            guard shape == target.shape else {
                throw TensorError.shapeMismatch(
                    operation: operation, message: "in-place result \(shape) would not keep the target's shape \(target.shape) (source \(source.shape))")
            }
        }
        // Reading `source` while writing `target` is safe only if they do not share storage.
        let right = source.storage === target.storage ? source.contiguousCopy().expanded(to: shape) : source.expanded(to: shape)
        target.makeUniqueAndWritable()
        let output = target.storage.baseAddress
        let b = right.storage.baseAddress
        forEachRow(shape: shape, strides: [target.strides, right.strides], offsets: [target.offset, right.offset]) { length, starts, steps in
            let to = output + starts[0], y = b + starts[1]
            let ts = steps[0], ys = steps[1]
            if ts == 1 && ys == 1 {
                for index in 0..<length { to[index] = combine(to[index], y[index]) }
            } else if ts == 1 && ys == 0 {
                let scalar = y[0]
                for index in 0..<length { to[index] = combine(to[index], scalar) }
            } else {
                for index in 0..<length { to[index * ts] = combine(to[index * ts], y[index * ys]) }
            }
        }
        withExtendedLifetime(right) {}
    }

    /// `target = transform(target)` in place.
    @inline(__always)
    static func apply(_ target: inout Tensor, _ transform: (Float) -> Float) {
        target.makeUniqueAndWritable()
        let output = target.storage.baseAddress
        forEachRow(shape: target.shape, strides: [target.strides], offsets: [target.offset]) { length, starts, steps in
            let to = output + starts[0]
            let step = steps[0]
            if step == 1 {
                for index in 0..<length { to[index] = transform(to[index]) }
            } else {
                for index in 0..<length { to[index * step] = transform(to[index * step]) }
            }
        }
    }
}
