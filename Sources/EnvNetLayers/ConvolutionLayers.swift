import Foundation

/// Buffers of a convolution layer, all 4-D: the output, the input gradient, the cached input, and
/// an empty tensor used to move a gradient out of its parameter without a copy.
struct ConvolutionWorkspace {
    var output = Tensor.zeros([0])
    var gradientInput = Tensor.zeros([0])
    var input: Tensor?
    var spare = Tensor.zeros([0])
}

func pairText(_ pair: (Int, Int)) -> String { "(\(pair.0), \(pair.1))" }

func convolutionDescription(
    name: String, inputChannels: Int, outputChannels: Int, geometry g: ConvolutionGeometry, oneDimensional: Bool, bias: Bool
) -> String {
    func text(_ height: Int, _ width: Int) -> String { oneDimensional ? "\(width)" : pairText((height, width)) }
    var parts = ["\(inputChannels)", "\(outputChannels)", "kernelSize: \(text(g.kernelHeight, g.kernelWidth))",
                 "stride: \(text(g.strideHeight, g.strideWidth))"]
    if g.paddingHeight != 0 || g.paddingWidth != 0 { parts.append("padding: \(text(g.paddingHeight, g.paddingWidth))") }
    if g.dilationHeight != 1 || g.dilationWidth != 1 { parts.append("dilation: \(text(g.dilationHeight, g.dilationWidth))") }
    if !bias { parts.append("bias: false") }
    return "\(name)(" + parts.joined(separator: ", ") + ")"
}

/// A 2-D convolution (cross-correlation, as PyTorch's `Conv2d`) over `[N, C, H, W]` batches.
///
/// Parameters: `weight` `[outputChannels, inputChannels, kernelHeight, kernelWidth]` and, when
/// enabled, `bias` `[outputChannels]`. Forward and backward run on the tensor core's im2col + GEMM
/// kernels (`Convolution` in EnvNetTensor) and write into buffers the layer keeps between steps.
///
/// `[N, C, H, W] -> [N, O, OH, OW]`
public final class Conv2d: Module, Layer {
    /// Channels of the input (`C`).
    public let inputChannels: Int
    /// Channels of the output (`O`), the number of filters.
    public let outputChannels: Int
    /// Kernel size, stride, padding and dilation.
    public let geometry: ConvolutionGeometry
    /// The filters, `[O, C, kh, kw]`.
    public let weight: Parameter
    /// The per-filter offset `[O]`, or nil for a convolution without bias.
    public let bias: Parameter?
    /// How ``weight`` is initialised.
    public let weightInitializer: Initializer
    /// How ``bias`` is initialised.
    public let biasInitializer: Initializer

    /// Whether ``backward(_:)`` computes the gradient with respect to the input (true by default).
    ///
    /// The first layer of a network (EnvNet's conv1, fed with audio) has no use for it; setting this
    /// to false skips that work, and `backward` then returns zeros of the input's shape.
    public var computesInputGradient = true

    /// Whether ``backward(_:)`` writes the input gradient over the storage of the input of the last
    /// training forward (false by default), saving an input-sized buffer: the weight gradient is
    /// computed first, and the input is not needed after it. Set it only when nothing reads that
    /// input after `backward` (in EnvNet, conv2's input is bn1's output, which bn1's backward pass
    /// does not read). A non-contiguous input falls back to a separate buffer.
    package var reusesInputStorageForGradient = false

    private var workspace = ConvolutionWorkspace()

    /// Creates a 2-D convolution, drawing its parameters from `generator`.
    /// - Parameters:
    ///   - inputChannels: channels of the input.
    ///   - outputChannels: channels of the output (number of filters).
    ///   - kernelSize: (height, width) of the kernel.
    ///   - stride: step between output positions, (height, width).
    ///   - padding: zeros added on both sides, (height, width).
    ///   - dilation: spacing between kernel taps, (height, width).
    ///   - bias: whether the layer adds a learned per-channel offset.
    ///   - weightInitializer: how the weight is drawn (PyTorch's default unless given).
    ///   - biasInitializer: how the bias is drawn (PyTorch's default unless given), using the weight's fans.
    ///   - generator: the source of the initial parameters (weight first, then bias).
    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
        padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), bias: Bool = true,
        weightInitializer: Initializer = .pytorchDefault, biasInitializer: Initializer = .pytorchDefault,
        generator: inout SeededGenerator
    ) {
        let geometry = ConvolutionGeometry(kernel: kernelSize, stride: stride, padding: padding, dilation: dilation)
        precondition(inputChannels > 0 && outputChannels > 0, "Conv2d: channel counts must be positive, got \(inputChannels) -> \(outputChannels)")
        precondition((try? geometry.outputSize(height: Int.max / 4, width: Int.max / 4)) != nil, "Conv2d: invalid geometry \(geometry)")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.geometry = geometry
        self.weightInitializer = weightInitializer
        self.biasInitializer = biasInitializer
        let weightShape = [outputChannels, inputChannels, kernelSize.0, kernelSize.1]
        let fans = Initializer.fans(forWeightShape: weightShape)
        weight = Parameter(weightInitializer.makeTensor(shape: weightShape, fans: fans, generator: &generator))
        self.bias = bias ? Parameter(biasInitializer.makeTensor(shape: [outputChannels], fans: fans, generator: &generator)) : nil
        super.init()
    }

    /// Creates a 2-D convolution with square kernel, stride, padding and dilation.
    /// - Parameters:
    ///   - inputChannels: channels of the input.
    ///   - outputChannels: channels of the output (number of filters).
    ///   - kernelSize: height and width of the kernel.
    ///   - stride: step between output positions along both axes.
    ///   - padding: zeros added on all sides.
    ///   - dilation: spacing between kernel taps along both axes.
    ///   - bias: whether the layer adds a learned per-channel offset.
    ///   - weightInitializer: how the weight is drawn.
    ///   - biasInitializer: how the bias is drawn.
    ///   - generator: the source of the initial parameters.
    public convenience init(
        inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
        bias: Bool = true, weightInitializer: Initializer = .pytorchDefault, biasInitializer: Initializer = .pytorchDefault,
        generator: inout SeededGenerator
    ) {
        self.init(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: (kernelSize, kernelSize),
                  stride: (stride, stride), padding: (padding, padding), dilation: (dilation, dilation), bias: bias,
                  weightInitializer: weightInitializer, biasInitializer: biasInitializer, generator: &generator)
    }

    private func resetOwnParameters(generator: inout SeededGenerator) {
        let fans = Initializer.fans(forWeightShape: weight.shape)
        weight.value = weightInitializer.makeTensor(shape: weight.shape, fans: fans, generator: &generator)
        bias?.value = biasInitializer.makeTensor(shape: [outputChannels], fans: fans, generator: &generator)
    }

    /// Re-draws the weight and bias from `generator`.
    /// - Parameter generator: the source of randomness.
    public override func resetParameters(generator: inout SeededGenerator) {
        resetOwnParameters(generator: &generator)
        super.resetParameters(generator: &generator)
    }

    /// `weight` and, when present, `bias`.
    public override var localParameters: [(name: String, parameter: Parameter)] {
        bias.map { [("weight", weight), ("bias", $0)] } ?? [("weight", weight)]
    }

    /// The layer in one line, with its configuration.
    public override var layerDescription: String {
        convolutionDescription(name: "Conv2d", inputChannels: inputChannels, outputChannels: outputChannels,
                               geometry: geometry, oneDimensional: false, bias: bias != nil)
    }

    /// `[N, C, H, W] -> [N, O, OH, OW]`.
    /// - Parameter inputShape: the shape of an input batch.
    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        let expected = "[N, \(inputChannels), H, W] with H, W at least the kernel span (\(geometry))"
        guard inputShape.count == 4, inputShape[1] == inputChannels,
              let size = try? geometry.outputSize(height: inputShape[2], width: inputShape[3]) else {
            throw LayerError.inputShape(layer: layerDescription, expected: expected, actual: inputShape)
        }
        return [inputShape[0], outputChannels, size.height, size.width]
    }

    /// Convolves `input`. `[N, C, H, W] -> [N, O, OH, OW]`
    /// - Parameter input: a batch `[N, C, H, W]`.
    public func forward(_ input: Tensor) -> Tensor {
        checkInput(input.shape)
        let shape = (try? outputShape(forInputShape: input.shape)) ?? []
        prepare(&workspace.output, shape: shape)
        Convolution.forward(input: input, weight: weight.value, bias: bias?.value, geometry: geometry, into: &workspace.output,
                            winogradWeights: winogradWeights())
        workspace.input = isTraining ? input : nil
        return workspace.output
    }

    /// The weight in the Winograd domain, kept until the weight changes (in evaluation the same
    /// weights run for every batch), or nil when the options or the shapes rule that path out.
    /// Kept whatever the CPU (the transform is portable and costs little), so that the cache is
    /// the same, and tested, everywhere; ``Convolution`` uses it only where the kernel runs.
    package func winogradWeights() -> WinogradConvolution.TransformedWeights? {
        guard ExecutionOptions.current.usesWinograd,
              WinogradConvolution.fits(weightShape: weight.shape, geometry: geometry) else { return nil }
        let rounds = ExecutionOptions.current.matrixPrecision == .bfloat16
        if let cached = winogradCache, cached.version == weight.version, cached.weights.isRoundedToBFloat16 == rounds {
            return cached.weights
        }
        let transformed = WinogradConvolution.TransformedWeights(weight.value, roundingToBFloat16: rounds)
        winogradCache = (weight.version, transformed)
        derivedWeightBuildCount += 1
        return transformed
    }

    private var winogradCache: (version: UInt64, weights: WinogradConvolution.TransformedWeights)?

    /// How many times the layer transformed its weight for the Winograd path (once per weight
    /// change, not per batch), for the cache's tests.
    package private(set) var derivedWeightBuildCount = 0

    /// Adds the weight (and bias) gradient and returns the input gradient. `[N, O, OH, OW] -> [N, C, H, W]`
    /// - Parameter gradientOutput: the gradient with respect to the last training-mode output.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard let input = workspace.input else { missingCache() }
        workspace.input = nil
        let expected = (try? outputShape(forInputShape: input.shape)) ?? []
        precondition(gradientOutput.shape == expected,
                     "\(layerDescription).backward: expected output gradient \(shapeText(expected)), got \(shapeText(gradientOutput.shape))")
        if computesInputGradient && reusesInputStorageForGradient && input.isContiguous {
            // The weight gradient reads the input; once it has, the input's storage takes the input gradient.
            accumulateWeightGradient(gradientOutput: gradientOutput, input: input)
            workspace.gradientInput = Tensor.zeros([0])
            Convolution.backwardInput(gradientOutput: gradientOutput, weight: weight.value, inputShape: input.shape,
                                      geometry: geometry, into: input.writePointer)
            return input
        }
        prepare(&workspace.gradientInput, shape: input.shape)
        if computesInputGradient {
            Convolution.backwardInput(gradientOutput: gradientOutput, weight: weight.value, inputShape: input.shape,
                                      geometry: geometry, into: &workspace.gradientInput)
        } else {
            workspace.gradientInput.fill(with: 0)
        }
        accumulateWeightGradient(gradientOutput: gradientOutput, input: input)
        return workspace.gradientInput
    }

    /// Adds the weight (and bias) gradient of `gradientOutput` for `input`; for a block that keeps
    /// the layer's tensors itself too.
    package func accumulateWeightGradient(gradientOutput: Tensor, input: Tensor) {
        if let bias {
            Convolution.backwardWeight(gradientOutput: gradientOutput, input: input, geometry: geometry,
                                       accumulatingInto: &weight.gradient, bias: &bias.gradient)
        } else {
            Convolution.backwardWeight(gradientOutput: gradientOutput, input: input, geometry: geometry,
                                       accumulatingInto: &weight.gradient)
        }
    }
}

/// A 1-D convolution (as PyTorch's `Conv1d`) over `[N, C, W]` batches, run by the 2-D kernels with
/// height 1.
///
/// Parameters: `weight` `[outputChannels, inputChannels, kernelSize]` and, when enabled, `bias`
/// `[outputChannels]`.
///
/// `[N, C, W] -> [N, O, OW]`
public final class Conv1d: Module, Layer {
    /// Channels of the input (`C`).
    public let inputChannels: Int
    /// Channels of the output (`O`), the number of filters.
    public let outputChannels: Int
    /// The 2-D geometry used by the kernels (height 1 throughout).
    public let geometry: ConvolutionGeometry
    /// The filters, `[O, C, k]`.
    public let weight: Parameter
    /// The per-filter offset `[O]`, or nil for a convolution without bias.
    public let bias: Parameter?
    /// How ``weight`` is initialised.
    public let weightInitializer: Initializer
    /// How ``bias`` is initialised.
    public let biasInitializer: Initializer

    private var workspace = ConvolutionWorkspace()

    /// Creates a 1-D convolution, drawing its parameters from `generator`.
    /// - Parameters:
    ///   - inputChannels: channels of the input.
    ///   - outputChannels: channels of the output (number of filters).
    ///   - kernelSize: width of the kernel.
    ///   - stride: step between output positions.
    ///   - padding: zeros added on both ends.
    ///   - dilation: spacing between kernel taps.
    ///   - bias: whether the layer adds a learned per-channel offset.
    ///   - weightInitializer: how the weight is drawn (PyTorch's default unless given).
    ///   - biasInitializer: how the bias is drawn (PyTorch's default unless given), using the weight's fans.
    ///   - generator: the source of the initial parameters (weight first, then bias).
    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
        bias: Bool = true, weightInitializer: Initializer = .pytorchDefault, biasInitializer: Initializer = .pytorchDefault,
        generator: inout SeededGenerator
    ) {
        let geometry = ConvolutionGeometry(kernel: (1, kernelSize), stride: (1, stride), padding: (0, padding), dilation: (1, dilation))
        precondition(inputChannels > 0 && outputChannels > 0, "Conv1d: channel counts must be positive, got \(inputChannels) -> \(outputChannels)")
        precondition((try? geometry.outputSize(height: 1, width: Int.max / 4)) != nil, "Conv1d: invalid geometry \(geometry)")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.geometry = geometry
        self.weightInitializer = weightInitializer
        self.biasInitializer = biasInitializer
        let weightShape = [outputChannels, inputChannels, kernelSize]
        let fans = Initializer.fans(forWeightShape: weightShape)
        weight = Parameter(weightInitializer.makeTensor(shape: weightShape, fans: fans, generator: &generator))
        self.bias = bias ? Parameter(biasInitializer.makeTensor(shape: [outputChannels], fans: fans, generator: &generator)) : nil
        super.init()
    }

    private func resetOwnParameters(generator: inout SeededGenerator) {
        let fans = Initializer.fans(forWeightShape: weight.shape)
        weight.value = weightInitializer.makeTensor(shape: weight.shape, fans: fans, generator: &generator)
        bias?.value = biasInitializer.makeTensor(shape: [outputChannels], fans: fans, generator: &generator)
    }

    /// Re-draws the weight and bias from `generator`.
    /// - Parameter generator: the source of randomness.
    public override func resetParameters(generator: inout SeededGenerator) {
        resetOwnParameters(generator: &generator)
        super.resetParameters(generator: &generator)
    }

    /// `weight` and, when present, `bias`.
    public override var localParameters: [(name: String, parameter: Parameter)] {
        bias.map { [("weight", weight), ("bias", $0)] } ?? [("weight", weight)]
    }

    /// The layer in one line, with its configuration.
    public override var layerDescription: String {
        convolutionDescription(name: "Conv1d", inputChannels: inputChannels, outputChannels: outputChannels,
                               geometry: geometry, oneDimensional: true, bias: bias != nil)
    }

    /// `[N, C, W] -> [N, O, OW]`.
    /// - Parameter inputShape: the shape of an input batch.
    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        let expected = "[N, \(inputChannels), W] with W at least the kernel span (\(geometry))"
        guard inputShape.count == 3, inputShape[1] == inputChannels,
              let size = try? geometry.outputSize(height: 1, width: inputShape[2]) else {
            throw LayerError.inputShape(layer: layerDescription, expected: expected, actual: inputShape)
        }
        return [inputShape[0], outputChannels, size.width]
    }

    private var weight4: [Int] { [outputChannels, inputChannels, 1, geometry.kernelWidth] }

    /// Convolves `input`. `[N, C, W] -> [N, O, OW]`
    /// - Parameter input: a batch `[N, C, W]`.
    public func forward(_ input: Tensor) -> Tensor {
        checkInput(input.shape)
        let shape = (try? outputShape(forInputShape: input.shape)) ?? []
        let input4 = input.reshaped([shape[0], inputChannels, 1, input.shape[2]])
        prepare(&workspace.output, shape: [shape[0], outputChannels, 1, shape[2]])
        Convolution.forward(input: input4, weight: weight.value.reshaped(weight4), bias: bias?.value, geometry: geometry,
                            into: &workspace.output)
        workspace.input = isTraining ? input4 : nil
        return workspace.output.reshaped(shape)
    }

    /// Adds the weight (and bias) gradient and returns the input gradient. `[N, O, OW] -> [N, C, W]`
    /// - Parameter gradientOutput: the gradient with respect to the last training-mode output.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard let input4 = workspace.input else { missingCache() }
        workspace.input = nil
        let inputShape = [input4.shape[0], inputChannels, input4.shape[3]]
        let expected = (try? outputShape(forInputShape: inputShape)) ?? []
        precondition(gradientOutput.shape == expected,
                     "\(layerDescription).backward: expected output gradient \(shapeText(expected)), got \(shapeText(gradientOutput.shape))")
        let gradient4 = gradientOutput.reshaped([expected[0], outputChannels, 1, expected[2]])
        prepare(&workspace.gradientInput, shape: input4.shape)
        Convolution.backwardInput(gradientOutput: gradient4, weight: weight.value.reshaped(weight4), inputShape: input4.shape,
                                  geometry: geometry, into: &workspace.gradientInput)
        // Move the 3-D weight gradient out of its parameter (no copy), view it as 4-D, accumulate, move back.
        swap(&workspace.spare, &weight.gradient)
        workspace.spare = workspace.spare.reshaped(weight4)
        if let bias {
            Convolution.backwardWeight(gradientOutput: gradient4, input: input4, geometry: geometry,
                                       accumulatingInto: &workspace.spare, bias: &bias.gradient)
        } else {
            Convolution.backwardWeight(gradientOutput: gradient4, input: input4, geometry: geometry,
                                       accumulatingInto: &workspace.spare)
        }
        workspace.spare = workspace.spare.reshaped(weight.shape)
        swap(&workspace.spare, &weight.gradient)
        return workspace.gradientInput.reshaped(inputShape)
    }
}
