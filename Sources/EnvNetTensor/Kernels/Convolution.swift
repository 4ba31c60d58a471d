import CEnvNetSupport

/// Kernel size, stride, padding and dilation of a 2-D convolution (1-D convolutions use height 1).
public struct ConvolutionGeometry: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var kernelHeight: Int, kernelWidth: Int
    public var strideHeight: Int, strideWidth: Int
    public var paddingHeight: Int, paddingWidth: Int
    public var dilationHeight: Int, dilationWidth: Int

    /// - Parameters:
    ///   - kernel: (height, width) of the kernel.
    ///   - stride: step between output positions, (height, width).
    ///   - padding: zeros added on both sides, (height, width).
    ///   - dilation: spacing between kernel taps, (height, width).
    public init(kernel: (Int, Int), stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1)) {
        (kernelHeight, kernelWidth) = kernel
        (strideHeight, strideWidth) = stride
        (paddingHeight, paddingWidth) = padding
        (dilationHeight, dilationWidth) = dilation
    }

    public var description: String {
        "kernel \(kernelHeight)x\(kernelWidth), stride \(strideHeight)x\(strideWidth), padding \(paddingHeight)x\(paddingWidth), dilation \(dilationHeight)x\(dilationWidth)"
    }

    /// Output height and width for an input of `height` x `width`, as PyTorch computes them.
    /// - Throws: ``TensorError`` for non-positive kernel, stride or dilation, negative padding, or an input smaller than the dilated kernel.
    public func outputSize(height: Int, width: Int, operation: String = "convolution") throws -> (height: Int, width: Int) {
        guard kernelHeight > 0, kernelWidth > 0, strideHeight > 0, strideWidth > 0, dilationHeight > 0, dilationWidth > 0,
              paddingHeight >= 0, paddingWidth >= 0 else {
            throw TensorError.invalidArgument(operation: operation, message: "invalid geometry: \(self)")
        }
        let spanHeight = dilationHeight * (kernelHeight - 1) + 1, spanWidth = dilationWidth * (kernelWidth - 1) + 1
        let paddedHeight = height + 2 * paddingHeight, paddedWidth = width + 2 * paddingWidth
        guard paddedHeight >= spanHeight, paddedWidth >= spanWidth else {
            throw TensorError.shapeMismatch(
                operation: operation, message: "input \(height)x\(width) (padded \(paddedHeight)x\(paddedWidth)) is smaller than the kernel span \(spanHeight)x\(spanWidth)")
        }
        return ((paddedHeight - spanHeight) / strideHeight + 1, (paddedWidth - spanWidth) / strideWidth + 1)
    }

    /// For unit stride: the geometry whose forward convolution of the output gradient (with the
    /// kernel flipped) yields the input gradient. Nil when the stride is not 1 or the padding
    /// exceeds the dilated kernel span (then col2im is used).
    var transposedForUnitStride: ConvolutionGeometry? {
        let spanHeight = dilationHeight * (kernelHeight - 1), spanWidth = dilationWidth * (kernelWidth - 1)
        guard strideHeight == 1, strideWidth == 1, paddingHeight <= spanHeight, paddingWidth <= spanWidth else { return nil }
        return ConvolutionGeometry(kernel: (kernelHeight, kernelWidth), padding: (spanHeight - paddingHeight, spanWidth - paddingWidth),
                                   dilation: (dilationHeight, dilationWidth))
    }

    /// True for a 1x1 kernel with unit stride and no padding: the input already is its column matrix.
    var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideHeight == 1 && strideWidth == 1 && paddingHeight == 0 && paddingWidth == 0
    }
}

/// Convolution of `N x C x H x W` data by im2col and GEMM, and its two backward passes.
///
/// The column matrix is never built whole: output positions are processed in tiles small enough
/// for the columns to stay in cache while BLAS reads them, and the tiles of all batch items are
/// spread over the cores (BLAS itself runs single-threaded, see ``BLASRuntime``).
///
/// Shapes: input `[N, C, H, W]`, weight `[O, C, kh, kw]`, bias `[O]`, output `[N, O, OH, OW]`.
///
/// On CPUs with AVX-512, 1x8 convolutions with unit stride over height-1 images, 8 or more input
/// and a multiple of 20 output channels (EnvNet's conv2, and its input gradient) run as Winograd
/// F(4, 8) instead: 2.9x fewer multiply-adds, results within about 1e-5 of their scale of the
/// direct sum (im2col is within about 1e-6). Such results, and a training run that uses them,
/// therefore differ in the last bits between machines with and without AVX-512; set
/// ``ExecutionOptions/usesWinograd`` to false for im2col everywhere.
public enum Convolution {
    /// Output positions per tile: the column tile (`C·kh·kw` rows) stays near
    /// ``ExecutionOptions/convolutionTileElements`` (1 MB by default).
    static func tileWidth(rows: Int, positions: Int) -> Int {
        let budget = ExecutionOptions.current.convolutionTileElements
        let width = Swift.max(64, Swift.min(8192, budget / Swift.max(rows, 1)))
        return Swift.min(positions, (width + 15) / 16 * 16)
    }

    // MARK: - im2col / col2im on raw memory

    /// Writes the columns of output positions `positions` (flattened `oh * OW + ow`) of one image:
    /// `columns[(c·kh + i)·kw + j, p - positions.lowerBound] = input[c, oh·sh − ph + i·dh, ow·sw − pw + j·dw]` (0 outside).
    /// `[C, H, W] -> [C·kh·kw, positions.count]`
    /// - Parameter planeStride: Values between channel planes (`height · width` unless the image
    ///   is a band of rows of a taller one).
    public static func im2col(
        input: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
        geometry g: ConvolutionGeometry, outputWidth: Int, positions: Range<Int>,
        columns: UnsafeMutablePointer<Float>, planeStride: Int? = nil
    ) {
        let tile = positions.count
        for channel in 0..<channels {
            let plane = input + channel * (planeStride ?? height * width)
            for i in 0..<g.kernelHeight {
                for j in 0..<g.kernelWidth {
                    let row = columns + ((channel * g.kernelHeight + i) * g.kernelWidth + j) * tile
                    var position = positions.lowerBound
                    while position < positions.upperBound {
                        let oh = position / outputWidth, ow0 = position - oh * outputWidth
                        let segment = Swift.min(outputWidth - ow0, positions.upperBound - position)
                        let destination = row + (position - positions.lowerBound)
                        let ih = oh * g.strideHeight - g.paddingHeight + i * g.dilationHeight
                        if ih < 0 || ih >= height {
                            destination.update(repeating: 0, count: segment)
                        } else {
                            let source = plane + ih * width
                            let shift = j * g.dilationWidth - g.paddingWidth
                            // Valid ow: 0 <= ow·sw + shift < width.
                            let first = Swift.min(Swift.max(ow0, ceilDivide(-shift, g.strideWidth)), ow0 + segment)
                            let last = Swift.max(first, Swift.min(ow0 + segment, ceilDivide(width - shift, g.strideWidth)))
                            if first > ow0 { destination.update(repeating: 0, count: first - ow0) }
                            if g.strideWidth == 1 {
                                (destination + (first - ow0)).update(from: source + first + shift, count: last - first)
                            } else {
                                let step = g.strideWidth
                                for ow in first..<last { destination[ow - ow0] = source[ow * step + shift] }
                            }
                            if last < ow0 + segment { (destination + (last - ow0)).update(repeating: 0, count: ow0 + segment - last) }
                        }
                        position += segment
                    }
                }
            }
        }
    }

    /// Adds the columns of `positions` back into the image they came from (the adjoint of ``im2col(input:channels:height:width:geometry:outputWidth:positions:columns:)``).
    /// `[C·kh·kw, positions.count] -> [C, H, W]` (accumulating)
    public static func col2im(
        columns: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
        geometry g: ConvolutionGeometry, outputWidth: Int, positions: Range<Int>,
        input: UnsafeMutablePointer<Float>
    ) {
        let tile = positions.count
        for channel in 0..<channels {
            let plane = input + channel * height * width
            for i in 0..<g.kernelHeight {
                for j in 0..<g.kernelWidth {
                    let row = columns + ((channel * g.kernelHeight + i) * g.kernelWidth + j) * tile
                    var position = positions.lowerBound
                    while position < positions.upperBound {
                        let oh = position / outputWidth, ow0 = position - oh * outputWidth
                        let segment = Swift.min(outputWidth - ow0, positions.upperBound - position)
                        let ih = oh * g.strideHeight - g.paddingHeight + i * g.dilationHeight
                        if ih >= 0 && ih < height {
                            let source = row + (position - positions.lowerBound)
                            let destination = plane + ih * width
                            let shift = j * g.dilationWidth - g.paddingWidth
                            let first = Swift.min(Swift.max(ow0, ceilDivide(-shift, g.strideWidth)), ow0 + segment)
                            let last = Swift.max(first, Swift.min(ow0 + segment, ceilDivide(width - shift, g.strideWidth)))
                            let step = g.strideWidth
                            for ow in first..<last { destination[ow * step + shift] += source[ow - ow0] }
                        }
                        position += segment
                    }
                }
            }
        }
    }

    @inline(__always)
    static func ceilDivide(_ numerator: Int, _ denominator: Int) -> Int {
        numerator >= 0 ? (numerator + denominator - 1) / denominator : -((-numerator) / denominator)
    }

    // MARK: - Tensor-level im2col / col2im (for tests and small work)

    /// The full column matrix of one image. `[C, H, W] -> [C·kh·kw, OH·OW]`
    public static func im2col(_ image: Tensor, geometry: ConvolutionGeometry) -> Tensor {
        TensorError.check {
            guard image.rank == 3 else {
                throw TensorError.shapeMismatch(operation: "im2col", message: "expects [C, H, W], got \(image.shape)")
            }
        }
        let (channels, height, width) = (image.shape[0], image.shape[1], image.shape[2])
        let output = TensorError.check { try geometry.outputSize(height: height, width: width, operation: "im2col") }
        let positions = output.height * output.width
        let rows = channels * geometry.kernelHeight * geometry.kernelWidth
        var columns = Tensor.zeros([rows, positions])
        image.withUnsafeBufferPointer { source in
            columns.withUnsafeMutableBufferPointer { destination in
                if rows > 0 && positions > 0 {
                    im2col(input: source.baseAddress!, channels: channels, height: height, width: width, geometry: geometry,
                           outputWidth: output.width, positions: 0..<positions, columns: destination.baseAddress!)
                }
            }
        }
        return columns
    }

    /// The image whose every pixel sums the column entries that came from it. `[C·kh·kw, OH·OW] -> [C, H, W]`
    public static func col2im(_ columns: Tensor, channels: Int, height: Int, width: Int, geometry: ConvolutionGeometry) -> Tensor {
        let output = TensorError.check { try geometry.outputSize(height: height, width: width, operation: "col2im") }
        let positions = output.height * output.width
        let rows = channels * geometry.kernelHeight * geometry.kernelWidth
        TensorError.check {
            guard columns.shape == [rows, positions] else {
                throw TensorError.shapeMismatch(operation: "col2im", message: "expects columns [\(rows), \(positions)], got \(columns.shape)")
            }
        }
        var image = Tensor.zeros([channels, height, width])
        columns.withUnsafeBufferPointer { source in
            image.withUnsafeMutableBufferPointer { destination in
                if rows > 0 && positions > 0 {
                    col2im(columns: source.baseAddress!, channels: channels, height: height, width: width, geometry: geometry,
                           outputWidth: output.width, positions: 0..<positions, input: destination.baseAddress!)
                }
            }
        }
        return image
    }

    // MARK: - Shape checks

    struct Problem {
        var batch, channels, height, width, outputChannels, outputHeight, outputWidth: Int
        var geometry: ConvolutionGeometry
        var rows: Int { channels * geometry.kernelHeight * geometry.kernelWidth }
        var positions: Int { outputHeight * outputWidth }
        var inputPlane: Int { channels * height * width }
        var outputPlane: Int { outputChannels * positions }
    }

    static func problem(input: [Int], weight: [Int], geometry: ConvolutionGeometry, operation: String) throws -> Problem {
        guard input.count == 4 else {
            throw TensorError.shapeMismatch(operation: operation, message: "input must be [N, C, H, W], got \(input)")
        }
        guard weight.count == 4, weight[1] == input[1], weight[2] == geometry.kernelHeight, weight[3] == geometry.kernelWidth else {
            throw TensorError.shapeMismatch(
                operation: operation,
                message: "weight \(weight) does not fit input \(input) with kernel \(geometry.kernelHeight)x\(geometry.kernelWidth) (expects [O, \(input[1]), \(geometry.kernelHeight), \(geometry.kernelWidth)])")
        }
        let output = try geometry.outputSize(height: input[2], width: input[3], operation: operation)
        return Problem(batch: input[0], channels: input[1], height: input[2], width: input[3], outputChannels: weight[0],
                       outputHeight: output.height, outputWidth: output.width, geometry: geometry)
    }

    // MARK: - Forward

    /// `output = weight ⊛ input + bias`. `[N, C, H, W] x [O, C, kh, kw] (+ [O]) -> [N, O, OH, OW]`
    public static func forward(input: Tensor, weight: Tensor, bias: Tensor? = nil, geometry: ConvolutionGeometry) -> Tensor {
        var output = Tensor.zeros([0])
        forward(input: input, weight: weight, bias: bias, geometry: geometry, into: &output)
        return output
    }

    /// ``forward(input:weight:bias:geometry:)`` writing into `output`, whose storage is reused when it already has the right shape.
    /// - Parameter winogradWeights: `weight` already transformed, for a caller that runs the same
    ///   weights many times (used only where ``WinogradConvolution`` applies).
    public static func forward(input: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvolutionGeometry, into output: inout Tensor,
                               winogradWeights: WinogradConvolution.TransformedWeights? = nil) {
        let p = TensorError.check { () throws -> Problem in
            let p = try problem(input: input.shape, weight: weight.shape, geometry: geometry, operation: "Convolution.forward")
            if let bias, bias.shape != [p.outputChannels] {
                throw TensorError.shapeMismatch(operation: "Convolution.forward", message: "bias \(bias.shape) does not match \(p.outputChannels) output channels")
            }
            return p
        }
        prepare(&output, shape: [p.batch, p.outputChannels, p.outputHeight, p.outputWidth])
        forwardCore(input: input, weight: weight, bias: bias, problem: p, output: Address(output), winogradWeights: winogradWeights)
        withExtendedLifetime(output) {}
    }

    /// ``forward(input:weight:bias:geometry:)`` writing `N · O · OH · OW` contiguous values at
    /// `output`, for a caller that owns the buffer (and reuses it for tensors of other shapes).
    /// - Parameter winogradWeights: `weight` already transformed, as in ``forward(input:weight:bias:geometry:into:winogradWeights:)``.
    public static func forward(input: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvolutionGeometry,
                               into output: UnsafeMutablePointer<Float>, winogradWeights: WinogradConvolution.TransformedWeights? = nil) {
        let p = TensorError.check { () throws -> Problem in
            let p = try problem(input: input.shape, weight: weight.shape, geometry: geometry, operation: "Convolution.forward")
            if let bias, bias.shape != [p.outputChannels] {
                throw TensorError.shapeMismatch(operation: "Convolution.forward", message: "bias \(bias.shape) does not match \(p.outputChannels) output channels")
            }
            return p
        }
        forwardCore(input: input, weight: weight, bias: bias, problem: p, output: Address(pointer: output), winogradWeights: winogradWeights)
    }

    /// The column matrix of output positions `positions` of one image and its row stride: im2col
    /// into `workspace`, or the image itself for a pointwise kernel (no workspace).
    @inline(__always)
    static func tileColumns(of source: UnsafePointer<Float>, problem p: Problem, positions: Range<Int>,
                            workspace: UnsafeMutablePointer<Float>?) -> (columns: UnsafePointer<Float>, rowStride: Int) {
        guard let workspace else { return (source + positions.lowerBound, p.positions) }
        im2col(input: source, channels: p.channels, height: p.height, width: p.width, geometry: p.geometry,
               outputWidth: p.outputWidth, positions: positions, columns: workspace)
        return (UnsafePointer(workspace), positions.count)
    }

    /// Whether ``forwardCore(input:weight:bias:problem:output:winogradWeights:)`` takes the plain
    /// im2col path for `p` (no rewrite applies).
    static func takesIm2colPath(_ p: Problem) -> Bool {
        !WinogradConvolution.applies(to: p) && !PolyphaseConvolution.applies(to: p) && !RowDecomposedConvolution.applies(to: p)
            && !SingleChannelConvolution.applies(to: p)
    }

    /// The forward pass into `p.batch · p.outputChannels · p.outputPlane` contiguous values at `outputBase`.
    static func forwardCore(input: Tensor, weight: Tensor, bias: Tensor?, problem p: Problem, output outputBase: Address,
                            winogradWeights: WinogradConvolution.TransformedWeights? = nil) {
        if p.batch == 0 || p.outputPlane == 0 { return }
        if WinogradConvolution.applies(to: p),
           WinogradConvolution.forward(input: input, weight: weight, transformed: winogradWeights, bias: bias, problem: p, output: outputBase) {
            return
        }
        if PolyphaseConvolution.applies(to: p) {
            PolyphaseConvolution.forward(input: input, weight: weight, bias: bias, problem: p, output: outputBase)
            return
        }
        if RowDecomposedConvolution.applies(to: p) {
            RowDecomposedConvolution.forward(input: input, weight: weight, bias: bias, problem: p, output: outputBase)
            return
        }
        if SingleChannelConvolution.applies(to: p),
           SingleChannelConvolution.forward(input: input, weight: weight, bias: bias, problem: p, output: outputBase) {
            return
        }
        let precision = ExecutionOptions.current.matrixPrecision
        let input = input.contiguous(), weight = weight.contiguous(), bias = bias?.contiguous()
        let inputBase = Address(input), weightBase = Address(weight)
        let biasBase = bias.map { Address($0) }
        let tile = tileWidth(rows: p.rows, positions: p.positions)
        let tilesPerImage = (p.positions + tile - 1) / tile
        let items = p.batch * tilesPerImage
        if p.rows == 0 {
            outputBase.pointer.update(repeating: 0, count: p.batch * p.outputPlane)
        } else {
            _ = Parallel.forEachChunk(count: items) { _, range in
                let workspace = p.geometry.isPointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: p.rows * tile)
                defer { workspace?.deallocate() }
                for item in range {
                    let image = item / tilesPerImage
                    let start = (item % tilesPerImage) * tile
                    let positions = start..<Swift.min(p.positions, start + tile)
                    let source = inputBase.pointer + image * p.inputPlane
                    let (columns, ldb) = tileColumns(of: source, problem: p, positions: positions, workspace: workspace)
                    let destination = outputBase.pointer + image * p.outputPlane + start
                    gemm(precision: precision, transposeA: false, transposeB: false, m: p.outputChannels, n: positions.count, k: p.rows,
                         a: weightBase.pointer, lda: p.rows, b: columns, ldb: ldb, c: destination, ldc: p.positions)
                    if let biasBase {
                        for channel in 0..<p.outputChannels {
                            let value = biasBase.pointer[channel]
                            let row = destination + channel * p.positions
                            for index in 0..<positions.count { row[index] += value }
                        }
                    }
                }
            }
        }
        withExtendedLifetime((input, weight, bias)) {}
    }

    // MARK: - Backward

    /// Gradient of the loss with respect to the input. `[N, O, OH, OW] x [O, C, kh, kw] -> [N, C, H, W]`
    public static func backwardInput(gradientOutput: Tensor, weight: Tensor, inputShape: [Int], geometry: ConvolutionGeometry) -> Tensor {
        var gradientInput = Tensor.zeros([0])
        backwardInput(gradientOutput: gradientOutput, weight: weight, inputShape: inputShape, geometry: geometry, into: &gradientInput)
        return gradientInput
    }

    /// ``backwardInput(gradientOutput:weight:inputShape:geometry:)`` writing into `gradientInput` (storage reused when the shape fits).
    public static func backwardInput(
        gradientOutput: Tensor, weight: Tensor, inputShape: [Int], geometry: ConvolutionGeometry, into gradientInput: inout Tensor
    ) {
        prepare(&gradientInput, shape: inputShape)
        backwardInput(gradientOutput: gradientOutput, weight: weight, inputShape: inputShape, geometry: geometry,
                      into: Address(gradientInput).pointer)
        withExtendedLifetime(gradientInput) {}
    }

    /// ``backwardInput(gradientOutput:weight:inputShape:geometry:)`` writing into
    /// `inputShape.reduce(1, *)` contiguous values at `gradientInput`, for callers that reuse a buffer
    /// they own (such as the layer input that the weight gradient has finished reading).
    public static func backwardInput(
        gradientOutput: Tensor, weight: Tensor, inputShape: [Int], geometry: ConvolutionGeometry, into gradientInput: UnsafeMutablePointer<Float>
    ) {
        let p = TensorError.check { () throws -> Problem in
            let p = try problem(input: inputShape, weight: weight.shape, geometry: geometry, operation: "Convolution.backwardInput")
            let expected = [p.batch, p.outputChannels, p.outputHeight, p.outputWidth]
            guard gradientOutput.shape == expected else {
                throw TensorError.shapeMismatch(operation: "Convolution.backwardInput", message: "output gradient \(gradientOutput.shape) should be \(expected)")
            }
            return p
        }
        if p.batch > 0, p.inputPlane > 0, p.outputChannels > 0, p.positions > 0, PolyphaseConvolution.applies(to: p) {
            PolyphaseConvolution.backwardInput(gradientOutput: gradientOutput, weight: weight, problem: p, into: gradientInput)
            return
        }
        if p.batch > 0, p.inputPlane > 0, p.outputChannels > 0, p.channels >= 8, let transposed = p.geometry.transposedForUnitStride {
            // With unit stride the input gradient is itself a convolution: the output gradient,
            // padded, convolved with the kernel flipped and its channel axes exchanged. That runs
            // through the forward path (tiled im2col + GEMM) instead of a memory-bound col2im.
            // With few input channels that GEMM would have almost no rows, so col2im stays.
            let flipped = flippedTransposedKernel(weight)
            let q = TensorError.check {
                try problem(input: gradientOutput.shape, weight: flipped.shape, geometry: transposed, operation: "Convolution.backwardInput")
            }
            precondition([q.batch, q.outputChannels, q.outputHeight, q.outputWidth] == inputShape,
                         "Convolution.backwardInput: the transposed convolution gives \([q.batch, q.outputChannels, q.outputHeight, q.outputWidth]), not \(inputShape)")
            forwardCore(input: gradientOutput, weight: flipped, bias: nil, problem: q, output: Address(pointer: gradientInput))
            return
        }
        gradientInput.update(repeating: 0, count: inputShape.reduce(1, *))
        if p.batch == 0 || p.inputPlane == 0 || p.positions == 0 || p.outputChannels == 0 { return }
        let precision = ExecutionOptions.current.matrixPrecision
        let gradientOutput = gradientOutput.contiguous(), weight = weight.contiguous()
        let gradientBase = Address(gradientOutput), weightBase = Address(weight), inputBase = Address(pointer: gradientInput)
        let tile = tileWidth(rows: p.rows, positions: p.positions)
        // Tiles of one image overlap in the input, so images (not tiles) are the unit of parallel work.
        Parallel.forEach(count: p.batch) { image in
            let destination = inputBase.pointer + image * p.inputPlane
            let gradient = gradientBase.pointer + image * p.outputPlane
            if p.geometry.isPointwise {
                gemm(precision: precision, transposeA: true, transposeB: false, m: p.rows, n: p.positions, k: p.outputChannels,
                     a: weightBase.pointer, lda: p.rows, b: gradient, ldb: p.positions, c: destination, ldc: p.positions)
                return
            }
            let workspace = UnsafeMutablePointer<Float>.allocate(capacity: p.rows * tile)
            defer { workspace.deallocate() }
            for start in stride(from: 0, to: p.positions, by: tile) {
                let positions = start..<Swift.min(p.positions, start + tile)
                gemm(precision: precision, transposeA: true, transposeB: false, m: p.rows, n: positions.count, k: p.outputChannels,
                     a: weightBase.pointer, lda: p.rows, b: gradient + start, ldb: p.positions, c: workspace, ldc: positions.count)
                col2im(columns: workspace, channels: p.channels, height: p.height, width: p.width, geometry: p.geometry,
                       outputWidth: p.outputWidth, positions: positions, input: destination)
            }
        }
        withExtendedLifetime((gradientOutput, weight)) {}
    }

    /// Gradients of the loss with respect to the weight and the bias.
    /// `[N, O, OH, OW] x [N, C, H, W] -> [O, C, kh, kw], [O]`
    public static func backwardWeight(gradientOutput: Tensor, input: Tensor, geometry: ConvolutionGeometry) -> (weight: Tensor, bias: Tensor) {
        TensorError.check {
            guard gradientOutput.rank == 4, input.rank == 4 else {
                throw TensorError.shapeMismatch(operation: "Convolution.backwardWeight", message: "expects 4-D gradient and input, got \(gradientOutput.shape) and \(input.shape)")
            }
        }
        let weightShape = [gradientOutput.shape[1], input.shape[1], geometry.kernelHeight, geometry.kernelWidth]
        var weight = Tensor.zeros(weightShape), bias = Tensor.zeros([weightShape[0]])
        backwardWeight(gradientOutput: gradientOutput, input: input, geometry: geometry, accumulatingInto: &weight, bias: &bias)
        return (weight, bias)
    }

    /// Adds the weight gradient to `weightGradient` `[O, C, kh, kw]` and the bias gradient to `biasGradient` `[O]` (when given).
    public static func backwardWeight(
        gradientOutput: Tensor, input: Tensor, geometry: ConvolutionGeometry,
        accumulatingInto weightGradient: inout Tensor, bias biasGradient: inout Tensor
    ) {
        backwardWeightCore(gradientOutput: gradientOutput, input: input, geometry: geometry, weightGradient: &weightGradient, biasGradient: &biasGradient, withBias: true)
    }

    /// Adds the weight gradient to `weightGradient` `[O, C, kh, kw]` (for convolutions without bias).
    public static func backwardWeight(
        gradientOutput: Tensor, input: Tensor, geometry: ConvolutionGeometry, accumulatingInto weightGradient: inout Tensor
    ) {
        var unused = Tensor.zeros([0])
        backwardWeightCore(gradientOutput: gradientOutput, input: input, geometry: geometry, weightGradient: &weightGradient, biasGradient: &unused, withBias: false)
    }

    static func backwardWeightCore(
        gradientOutput: Tensor, input: Tensor, geometry: ConvolutionGeometry,
        weightGradient: inout Tensor, biasGradient: inout Tensor, withBias: Bool
    ) {
        let operation = "Convolution.backwardWeight"
        let p = TensorError.check { () throws -> Problem in
            let p = try problem(input: input.shape, weight: weightGradient.shape, geometry: geometry, operation: operation)
            let expected = [p.batch, p.outputChannels, p.outputHeight, p.outputWidth]
            guard gradientOutput.shape == expected else {
                throw TensorError.shapeMismatch(operation: operation, message: "output gradient \(gradientOutput.shape) should be \(expected) for input \(input.shape)")
            }
            if withBias && biasGradient.shape != [p.outputChannels] {
                throw TensorError.shapeMismatch(operation: operation, message: "bias gradient \(biasGradient.shape) should be [\(p.outputChannels)]")
            }
            return p
        }
        if p.batch == 0 || p.positions == 0 || p.rows == 0 || p.outputChannels == 0 { return }
        if PolyphaseConvolution.applies(to: p) {
            PolyphaseConvolution.backwardWeight(gradientOutput: gradientOutput, input: input, problem: p, weightGradient: &weightGradient,
                                                biasGradient: &biasGradient, withBias: withBias)
            return
        }
        if RowDecomposedConvolution.applies(to: p) {
            weightGradient.withUnsafeMutableBufferPointer { weights in
                if withBias {
                    biasGradient.withUnsafeMutableBufferPointer { bias in
                        RowDecomposedConvolution.backwardWeight(gradientOutput: gradientOutput, input: input, problem: p,
                                                                weightGradient: weights.baseAddress!, biasGradient: bias.baseAddress!)
                    }
                } else {
                    RowDecomposedConvolution.backwardWeight(gradientOutput: gradientOutput, input: input, problem: p,
                                                            weightGradient: weights.baseAddress!, biasGradient: nil)
                }
            }
            return
        }
        let precision = ExecutionOptions.current.matrixPrecision
        let gradientOutput = gradientOutput.contiguous(), input = input.contiguous()
        let gradientBase = Address(gradientOutput), inputBase = Address(input)
        // bf16, 1x8 kernels over rows (EnvNet's conv2): columns packed straight from the input.
        let g = p.geometry
        let packsFromInput = precision == .bfloat16 && BFloat16Matmul.hasAVX512BF16 && p.height == 1 && g.kernelHeight == 1
            && g.kernelWidth == 8 && g.strideWidth == 1 && g.dilationWidth == 1 && g.paddingHeight == 0 && p.channels % 4 == 0
        // One input channel over rows (EnvNet's conv1): direct sums, no columns.
        let singleChannel = SingleChannelConvolution.applies(to: p)
        let tile = packsFromInput || singleChannel ? Swift.min(p.positions, 4096) : tileWidth(rows: p.rows, positions: p.positions)
        let tilesPerImage = (p.positions + tile - 1) / tile
        let items = p.batch * tilesPerImage
        let weightCount = p.outputChannels * p.rows
        // Each chunk of work accumulates privately; the partial sums are added at the end.
        let chunks = Swift.max(1, Swift.min(Parallel.workerCount, items))
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: chunks * (weightCount + p.outputChannels))
        partials.initialize(repeating: 0, count: chunks * (weightCount + p.outputChannels))
        defer { partials.deallocate() }
        let partialsBase = Address(pointer: partials)
        _ = Parallel.forEachChunk(count: items) { chunk, range in
            let weightPartial = partialsBase.pointer + chunk * (weightCount + p.outputChannels)
            let biasPartial = weightPartial + weightCount
            // (Not needed where the columns are packed from the input, unless that kernel declines.)
            var workspace = p.geometry.isPointwise || packsFromInput || singleChannel ? nil : UnsafeMutablePointer<Float>.allocate(capacity: p.rows * tile)
            defer { workspace?.deallocate() }
            for item in range {
                let image = item / tilesPerImage
                let start = (item % tilesPerImage) * tile
                let positions = start..<Swift.min(p.positions, start + tile)
                let source = inputBase.pointer + image * p.inputPlane
                let gradient = gradientBase.pointer + image * p.outputPlane + start
                let packed = packsFromInput
                    && envnet_bf16_conv1x8_weight_gradient(source, p.width, Int32(p.channels), gradient - start, p.outputWidth,
                                                           Int32(p.outputChannels), g.paddingWidth, start, positions.count, weightPartial) == 1
                    || singleChannel
                    && SingleChannelConvolution.accumulateWeightGradient(image: source, gradientOutput: gradient - start, problem: p,
                                                                         positions: positions, precision: precision, into: weightPartial)
                if !packed {
                    if workspace == nil && !p.geometry.isPointwise { workspace = UnsafeMutablePointer<Float>.allocate(capacity: p.rows * tile) }
                    let (columns, ldb) = tileColumns(of: source, problem: p, positions: positions, workspace: workspace)
                    gemm(precision: precision, transposeA: false, transposeB: true, m: p.outputChannels, n: p.rows, k: positions.count,
                         a: gradient, lda: p.positions, b: columns, ldb: ldb, beta: 1, c: weightPartial, ldc: p.rows)
                }
                if withBias {
                    for channel in 0..<p.outputChannels {
                        let row = gradient + channel * p.positions
                        var total: Float = 0
                        for index in 0..<positions.count { total += row[index] }
                        biasPartial[channel] += total
                    }
                }
            }
        }
        weightGradient.withUnsafeMutableBufferPointer { destination in
            for chunk in 0..<chunks {
                let partial = partials + chunk * (weightCount + p.outputChannels)
                for index in 0..<weightCount { destination[index] += partial[index] }
            }
        }
        if withBias {
            biasGradient.withUnsafeMutableBufferPointer { destination in
                for chunk in 0..<chunks {
                    let partial = partials + chunk * (weightCount + p.outputChannels) + weightCount
                    for index in 0..<p.outputChannels { destination[index] += partial[index] }
                }
            }
        }
        withExtendedLifetime((gradientOutput, input)) {}
    }

    /// `[O, C, kh, kw] -> [C, O, kh, kw]` with both kernel axes reversed.
    static func flippedTransposedKernel(_ weight: Tensor) -> Tensor {
        let (o, c, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let source = weight.contiguous()
        var result = Tensor(uninitializedShape: [c, o, kh, kw])
        source.withUnsafeBufferPointer { from in
            result.withUnsafeMutableBufferPointer { to in
                for oc in 0..<o { for ic in 0..<c { for i in 0..<kh { for j in 0..<kw {
                    to[((ic * o + oc) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)] = from[((oc * c + ic) * kh + i) * kw + j]
                } } } }
            }
        }
        return result
    }

    /// Makes `tensor` a contiguous, exclusively owned tensor of `shape`, reusing its storage when it fits.
    static func prepare(_ tensor: inout Tensor, shape: [Int]) {
        if tensor.shape == shape {
            tensor.makeContiguousAndUnique()
        } else {
            tensor = Tensor(uninitializedShape: shape)
        }
    }
}

/// A raw address that may cross into parallel work; the caller keeps the memory alive and the writes disjoint.
struct Address: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
    init(_ tensor: Tensor) { pointer = tensor.storage.baseAddress + tensor.offset }
}
