import Foundation

/// Max pooling over the last two axes of `[N, C, H, W]` batches (PyTorch's `MaxPool2d`).
///
/// Padding counts as −∞ and may be at most half the kernel; the output size is rounded down
/// (`ceil_mode=False`). The position of every maximum is kept for the backward pass, which sends
/// each output gradient to that position.
///
/// `[N, C, H, W] -> [N, C, OH, OW]`
public final class MaxPool2d: Module, Layer {
    /// Kernel size, stride, padding and dilation.
    public let geometry: ConvolutionGeometry

    private var output = Tensor.zeros([0])
    private var gradientInput = Tensor.zeros([0])
    private var indices: [Int32] = []
    private var cachedInputShape: [Int]?
    private var cachedInput: Tensor?

    /// Whether ``backward(_:)`` writes the input gradient over the storage of the input of the last
    /// training forward (false by default), saving an input-sized buffer. Set it only when nothing
    /// reads that input after the forward pass: in EnvNet the input is the output of a BatchNorm
    /// with fused ReLU, whose backward pass recomputes what it needs from its own input.
    package var reusesInputStorageForGradient = false

    /// - Parameters:
    ///   - kernelSize: (height, width) of the window.
    ///   - stride: step between windows, (height, width); the kernel size when nil (PyTorch's default).
    ///   - padding: −∞ padding on both sides, (height, width), at most half the kernel.
    ///   - dilation: spacing between window taps, (height, width).
    public init(kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1)) {
        geometry = ConvolutionGeometry(kernel: kernelSize, stride: stride ?? kernelSize, padding: padding, dilation: dilation)
        precondition((try? geometry.outputSize(height: Int.max / 4, width: Int.max / 4)) != nil
                     && 2 * padding.0 <= kernelSize.0 && 2 * padding.1 <= kernelSize.1, "MaxPool2d: invalid geometry \(geometry)")
        super.init()
    }

    /// A square window.
    /// - Parameters:
    ///   - kernelSize: height and width of the window.
    ///   - stride: step between windows; the kernel size when nil.
    ///   - padding: −∞ padding on all sides.
    ///   - dilation: spacing between window taps.
    public convenience init(kernelSize: Int, stride: Int? = nil, padding: Int = 0, dilation: Int = 1) {
        self.init(kernelSize: (kernelSize, kernelSize), stride: stride.map { ($0, $0) }, padding: (padding, padding),
                  dilation: (dilation, dilation))
    }

    /// The layer in one line, with its configuration.
    public override var layerDescription: String {
        let g = geometry
        var text = "MaxPool2d(kernelSize: \(pairText((g.kernelHeight, g.kernelWidth))), stride: \(pairText((g.strideHeight, g.strideWidth)))"
        if g.paddingHeight != 0 || g.paddingWidth != 0 { text += ", padding: \(pairText((g.paddingHeight, g.paddingWidth)))" }
        if g.dilationHeight != 1 || g.dilationWidth != 1 { text += ", dilation: \(pairText((g.dilationHeight, g.dilationWidth)))" }
        return text + ")"
    }

    /// `[N, C, H, W] -> [N, C, OH, OW]`.
    /// - Parameter inputShape: the shape of an input batch.
    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 4, let size = try? geometry.outputSize(height: inputShape[2], width: inputShape[3]) else {
            throw LayerError.inputShape(layer: layerDescription, expected: "[N, C, H, W] with H, W at least the window span", actual: inputShape)
        }
        return [inputShape[0], inputShape[1], size.height, size.width]
    }

    /// The maximum of every window. `[N, C, H, W] -> [N, C, OH, OW]`
    /// - Parameter input: a batch `[N, C, H, W]`.
    public func forward(_ input: Tensor) -> Tensor {
        checkInput(input.shape)
        let shape = (try? outputShape(forInputShape: input.shape)) ?? []
        prepare(&output, shape: shape)
        MaxPooling.forward(input: input, geometry: geometry, into: &output, indices: &indices)
        cachedInputShape = isTraining ? input.shape : nil
        cachedInput = isTraining && reusesInputStorageForGradient && input.isContiguous ? input : nil
        return output
    }

    /// Routes each output gradient to the position of its maximum. `[N, C, OH, OW] -> [N, C, H, W]`
    /// - Parameter gradientOutput: the gradient with respect to the last training-mode output.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard let inputShape = cachedInputShape else { missingCache() }
        cachedInputShape = nil
        let expected = (try? outputShape(forInputShape: inputShape)) ?? []
        precondition(gradientOutput.shape == expected,
                     "\(layerDescription).backward: expected output gradient \(shapeText(expected)), got \(shapeText(gradientOutput.shape))")
        if let input = cachedInput {
            cachedInput = nil
            gradientInput = Tensor.zeros([0])
            MaxPooling.backward(gradientOutput: gradientOutput, indices: indices, inputShape: inputShape, into: input.writePointer)
            return input
        }
        prepare(&gradientInput, shape: inputShape)
        MaxPooling.backward(gradientOutput: gradientOutput, indices: indices, inputShape: inputShape, into: &gradientInput)
        return gradientInput
    }
}

/// Max pooling over the last axis of `[N, C, W]` batches (PyTorch's `MaxPool1d`), run by the 2-D
/// kernel with height 1.
///
/// `[N, C, W] -> [N, C, OW]`
public final class MaxPool1d: Module, Layer {
    /// The 2-D geometry used by the kernel (height 1 throughout).
    public let geometry: ConvolutionGeometry

    private var output = Tensor.zeros([0])
    private var gradientInput = Tensor.zeros([0])
    private var indices: [Int32] = []
    private var cachedInputShape: [Int]?

    /// - Parameters:
    ///   - kernelSize: width of the window.
    ///   - stride: step between windows; the kernel size when nil (PyTorch's default).
    ///   - padding: −∞ padding on both ends, at most half the kernel.
    ///   - dilation: spacing between window taps.
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0, dilation: Int = 1) {
        geometry = ConvolutionGeometry(kernel: (1, kernelSize), stride: (1, stride ?? kernelSize), padding: (0, padding), dilation: (1, dilation))
        precondition((try? geometry.outputSize(height: 1, width: Int.max / 4)) != nil && 2 * padding <= kernelSize,
                     "MaxPool1d: invalid geometry \(geometry)")
        super.init()
    }

    /// The layer in one line, with its configuration.
    public override var layerDescription: String {
        let g = geometry
        var text = "MaxPool1d(kernelSize: \(g.kernelWidth), stride: \(g.strideWidth)"
        if g.paddingWidth != 0 { text += ", padding: \(g.paddingWidth)" }
        if g.dilationWidth != 1 { text += ", dilation: \(g.dilationWidth)" }
        return text + ")"
    }

    /// `[N, C, W] -> [N, C, OW]`.
    /// - Parameter inputShape: the shape of an input batch.
    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 3, let size = try? geometry.outputSize(height: 1, width: inputShape[2]) else {
            throw LayerError.inputShape(layer: layerDescription, expected: "[N, C, W] with W at least the window span", actual: inputShape)
        }
        return [inputShape[0], inputShape[1], size.width]
    }

    /// The maximum of every window. `[N, C, W] -> [N, C, OW]`
    /// - Parameter input: a batch `[N, C, W]`.
    public func forward(_ input: Tensor) -> Tensor {
        checkInput(input.shape)
        let shape = (try? outputShape(forInputShape: input.shape)) ?? []
        prepare(&output, shape: [shape[0], shape[1], 1, shape[2]])
        MaxPooling.forward(input: input.reshaped([shape[0], shape[1], 1, input.shape[2]]), geometry: geometry,
                           into: &output, indices: &indices)
        cachedInputShape = isTraining ? input.shape : nil
        return output.reshaped(shape)
    }

    /// Routes each output gradient to the position of its maximum. `[N, C, OW] -> [N, C, W]`
    /// - Parameter gradientOutput: the gradient with respect to the last training-mode output.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard let inputShape = cachedInputShape else { missingCache() }
        cachedInputShape = nil
        let expected = (try? outputShape(forInputShape: inputShape)) ?? []
        precondition(gradientOutput.shape == expected,
                     "\(layerDescription).backward: expected output gradient \(shapeText(expected)), got \(shapeText(gradientOutput.shape))")
        let input4 = [inputShape[0], inputShape[1], 1, inputShape[2]]
        prepare(&gradientInput, shape: input4)
        MaxPooling.backward(gradientOutput: gradientOutput.reshaped([expected[0], expected[1], 1, expected[2]]), indices: indices,
                            inputShape: input4, into: &gradientInput)
        return gradientInput.reshaped(inputShape)
    }
}
