/// Max pooling of `N x C x H x W` data, keeping the position of every maximum for the backward pass.
public enum MaxPooling {
    /// Forward pass. Padding counts as −∞, as in PyTorch (`padding ≤ kernel / 2`).
    /// `[N, C, H, W] -> [N, C, OH, OW]`, plus for every output the flat index `h·W + w` of its maximum within the plane.
    public static func forward(input: Tensor, geometry: ConvolutionGeometry) -> (output: Tensor, indices: [Int32]) {
        var output = Tensor.zeros([0])
        var indices: [Int32] = []
        forward(input: input, geometry: geometry, into: &output, indices: &indices)
        return (output, indices)
    }

    /// ``forward(input:geometry:)`` writing into `output` and `indices`, whose storage is reused when the sizes fit.
    public static func forward(input: Tensor, geometry g: ConvolutionGeometry, into output: inout Tensor, indices: inout [Int32]) {
        let operation = "MaxPooling.forward"
        let (outputHeight, outputWidth) = TensorError.check { () throws -> (Int, Int) in
            guard input.rank == 4 else {
                throw TensorError.shapeMismatch(operation: operation, message: "input must be [N, C, H, W], got \(input.shape)")
            }
            guard g.paddingHeight * 2 <= g.kernelHeight, g.paddingWidth * 2 <= g.kernelWidth else {
                throw TensorError.invalidArgument(operation: operation, message: "padding must be at most half the kernel: \(g)")
            }
            guard input.shape[2] * input.shape[3] <= Int(Int32.max) else {
                throw TensorError.invalidArgument(operation: operation, message: "plane \(input.shape[2])x\(input.shape[3]) too large for 32-bit indices")
            }
            return try g.outputSize(height: input.shape[2], width: input.shape[3], operation: operation)
        }
        let (batch, channels, height, width) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        Convolution.prepare(&output, shape: [batch, channels, outputHeight, outputWidth])
        let planes = batch * channels, outputPlane = outputHeight * outputWidth
        if indices.count != planes * outputPlane { indices = [Int32](repeating: 0, count: planes * outputPlane) }
        if planes == 0 || outputPlane == 0 { return }
        let input = input.contiguous()
        let inputBase = Address(input), outputBase = Address(output)
        indices.withUnsafeMutableBufferPointer { indexBuffer in
            let indexBase = IndexAddress(pointer: indexBuffer.baseAddress!)
            let simple = g.paddingHeight == 0 && g.paddingWidth == 0 && g.dilationHeight == 1 && g.dilationWidth == 1
            Parallel.forEach(count: planes) { plane in
                    let source = inputBase.pointer + plane * height * width
                    let destination = outputBase.pointer + plane * outputPlane
                    let where_ = indexBase.pointer + plane * outputPlane
                    if simple {
                        // No padding or dilation: every tap is inside the plane, so no bounds checks.
                        for oh in 0..<outputHeight {
                            for ow in 0..<outputWidth {
                                let start = oh * g.strideHeight * width + ow * g.strideWidth
                                let found = g.kernelHeight == 1 && g.kernelWidth >= 32
                                    ? maximumOfRow(source + start, count: g.kernelWidth)
                                    : maximumOfWindow(source + start, height: g.kernelHeight, width: g.kernelWidth, rowStride: width)
                                destination[oh * outputWidth + ow] = found.value
                                where_[oh * outputWidth + ow] = Int32(start + found.offsetRow * width + found.offsetColumn)
                            }
                        }
                        return
                    }
                    for oh in 0..<outputHeight {
                        let h0 = oh * g.strideHeight - g.paddingHeight
                        for ow in 0..<outputWidth {
                            let w0 = ow * g.strideWidth - g.paddingWidth
                            var best = -Float.infinity
                            var bestIndex = -1
                            for i in 0..<g.kernelHeight {
                                let h = h0 + i * g.dilationHeight
                                if h < 0 || h >= height { continue }
                                let row = source + h * width
                                for j in 0..<g.kernelWidth {
                                    let w = w0 + j * g.dilationWidth
                                    if w < 0 || w >= width { continue }
                                    let value = row[w]
                                    // NaN wins (the last one, as in PyTorch), so it propagates instead of hiding.
                                    if value > best || value.isNaN || bestIndex < 0 {
                                        best = value
                                        bestIndex = h * width + w
                                    }
                                }
                            }
                            destination[oh * outputWidth + ow] = best
                            where_[oh * outputWidth + ow] = Int32(bestIndex)
                        }
                    }
            }
        }
        withExtendedLifetime(input) {}
    }

    /// The maximum of a window of `height` rows of `width` values and its position in the window,
    /// with the generic loop's rules: the first maximum wins, and the last NaN wins over numbers.
    @inline(__always)
    static func maximumOfWindow(_ start: UnsafePointer<Float>, height: Int, width: Int, rowStride: Int) -> (value: Float, offsetRow: Int, offsetColumn: Int) {
        // One comparison per tap, so the selects become conditional moves: which tap wins is
        // data-dependent, and mispredicted branches cost more than the comparisons (pool3's 3x3
        // windows took 2.2x as long with them). NaN is rare and handled by a second, exact pass.
        var best = start[0], bestRow = 0, bestColumn = 0, unordered = 0
        for i in 0..<height {
            let row = start + i * rowStride
            for j in 0..<width {
                let value = row[j]
                unordered |= value != value ? 1 : 0
                let take = value > best
                best = take ? value : best
                bestRow = take ? i : bestRow
                bestColumn = take ? j : bestColumn
            }
        }
        if unordered != 0 {
            // NaN wins (the last one), so it propagates instead of hiding.
            for i in 0..<height {
                for j in 0..<width where start[i * rowStride + j].isNaN { (best, bestRow, bestColumn) = (start[i * rowStride + j], i, j) }
            }
        }
        return (best, bestRow, bestColumn)
    }

    /// ``maximumOfWindow(_:height:width:rowStride:)`` for one long row: a vector maximum, then
    /// the first position that holds it (the scalar loop decides when the row holds a NaN).
    @inline(__always)
    static func maximumOfRow(_ start: UnsafePointer<Float>, count: Int) -> (value: Float, offsetRow: Int, offsetColumn: Int) {
        // Compare-and-blend lanes (the generic pointwiseMax handles NaN lane by lane, far slower).
        // A NaN never wins a `>` comparison, so NaN windows are found by self-comparison instead.
        var lanes = SIMD16<Float>(repeating: -Float.infinity)
        var ordered = SIMD16<Float>(repeating: 0)
        var index = 0
        while index + 16 <= count {
            let values = UnsafeRawPointer(start + index).loadUnaligned(as: SIMD16<Float>.self)
            lanes.replace(with: values, where: values .> lanes)
            ordered += values - values  // 0 for numbers, NaN for NaN (and for ±∞)
            index += 16
        }
        var best = lanes.max()
        var unordered = ordered.sum().isNaN
        while index < count {
            let value = start[index]
            if value.isNaN { unordered = true }
            if value > best { best = value }
            index += 1
        }
        if unordered { return maximumOfWindow(start, height: 1, width: count, rowStride: count) }
        var position = 0
        while start[position] != best { position += 1 }
        return (best, 0, position)
    }

    /// Backward pass: each output gradient goes to the input position that held the maximum.
    /// `[N, C, OH, OW] -> [N, C, H, W]`
    public static func backward(gradientOutput: Tensor, indices: [Int32], inputShape: [Int]) -> Tensor {
        var gradientInput = Tensor.zeros([0])
        backward(gradientOutput: gradientOutput, indices: indices, inputShape: inputShape, into: &gradientInput)
        return gradientInput
    }

    /// ``backward(gradientOutput:indices:inputShape:)`` writing into `gradientInput` (storage reused when the shape fits).
    public static func backward(gradientOutput: Tensor, indices: [Int32], inputShape: [Int], into gradientInput: inout Tensor) {
        Convolution.prepare(&gradientInput, shape: inputShape)
        backward(gradientOutput: gradientOutput, indices: indices, inputShape: inputShape, into: Address(gradientInput).pointer)
        withExtendedLifetime(gradientInput) {}
    }

    /// ``backward(gradientOutput:indices:inputShape:)`` writing into `inputShape.reduce(1, *)`
    /// contiguous values at `gradientInput` (zeroed first), for callers that reuse a buffer they own.
    public static func backward(gradientOutput: Tensor, indices: [Int32], inputShape: [Int], into gradientInput: UnsafeMutablePointer<Float>) {
        TensorError.check {
            guard inputShape.count == 4, gradientOutput.rank == 4,
                  gradientOutput.shape[0] == inputShape[0], gradientOutput.shape[1] == inputShape[1],
                  indices.count == gradientOutput.count else {
                throw TensorError.shapeMismatch(
                    operation: "MaxPooling.backward",
                    message: "output gradient \(gradientOutput.shape) with \(indices.count) indices does not fit input \(inputShape)")
            }
        }
        scatter(gradientOutput: gradientOutput, indices: indices, inputShape: inputShape, into: Address(pointer: gradientInput))
    }

    private static func scatter(gradientOutput: Tensor, indices: [Int32], inputShape: [Int], into inputBase: Address) {
        let total = inputShape.reduce(1, *)
        _ = Parallel.forEachChunk(count: total) { _, range in
            (inputBase.pointer + range.lowerBound).update(repeating: 0, count: range.count)
        }
        let planes = inputShape[0] * inputShape[1]
        let inputPlane = inputShape[2] * inputShape[3]
        let outputPlane = gradientOutput.shape[2] * gradientOutput.shape[3]
        if planes == 0 || outputPlane == 0 { return }
        let gradientOutput = gradientOutput.contiguous()
        let gradientBase = Address(gradientOutput)
        indices.withUnsafeBufferPointer { indexBuffer in
            let indexBase = IndexAddress(pointer: UnsafeMutablePointer(mutating: indexBuffer.baseAddress!))
            Parallel.forEach(count: planes) { plane in
                let source = gradientBase.pointer + plane * outputPlane
                let destination = inputBase.pointer + plane * inputPlane
                let where_ = indexBase.pointer + plane * outputPlane
                for index in 0..<outputPlane where where_[index] >= 0 {
                    destination[Int(where_[index])] += source[index]
                }
            }
        }
        withExtendedLifetime(gradientOutput) {}
    }
}

struct IndexAddress: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>
}
