import CEnvNetSupport

/// 1x8 convolutions with unit stride by Winograd F(4, 8), an operation of the tensor core (the
/// kernel is `Sources/CEnvNetSupport/WinogradConvolution.c`).
///
/// F(4, 8) computes 4 outputs of an 8-tap correlation with 11 products instead of 32, so the
/// channel GEMMs do 2.9x fewer multiply-adds; its results differ from direct float32 convolution by
/// about 1e-5 of their scale (tested against the im2col path and PyTorch fixtures). EnvNet's conv2
/// and its input gradient are the convolutions of this shape that matter most, but any problem
/// that ``applies(to:)`` accepts takes it.
///
/// ``Convolution`` takes this path by itself where it applies: x86-64 with AVX-512, height-1
/// images, kernel 1x8, unit stride and dilation, no height padding, 8 or more input channels, a
/// multiple of 20 output channels, and ``ExecutionOptions/usesWinograd``. A layer that runs the
/// same weights many times passes ``TransformedWeights`` it keeps, so the transform is not redone
/// on every call.
public enum WinogradConvolution {
    /// Whether this machine runs the kernel (x86-64 with AVX-512).
    public static let isSupported = envnet_winograd_available() != 0

    /// Whether a convolution of `weightShape` (`[O, C, kh, kw]`) with `geometry` has the shape the
    /// kernel handles, whatever the machine and the options.
    /// - Parameters:
    ///   - weightShape: The filters' shape.
    ///   - geometry: Kernel, stride, padding and dilation.
    public static func fits(weightShape: [Int], geometry g: ConvolutionGeometry) -> Bool {
        weightShape.count == 4 && weightShape[2] == 1 && weightShape[3] == 8
            && g.kernelHeight == 1 && g.kernelWidth == 8 && g.strideHeight == 1 && g.strideWidth == 1
            && g.dilationHeight == 1 && g.dilationWidth == 1 && g.paddingHeight == 0
            && weightShape[1] >= 8 && weightShape[0] >= 20 && weightShape[0] % 20 == 0
    }

    /// Whether this path computes problem `p` here and now (machine, options and shapes).
    static func applies(to p: Convolution.Problem) -> Bool {
        isSupported && ExecutionOptions.current.usesWinograd && p.height == 1 && p.outputWidth >= 1
            && fits(weightShape: [p.outputChannels, p.channels, p.geometry.kernelHeight, p.geometry.kernelWidth], geometry: p.geometry)
    }

    /// Filters `[O, C, 1, 8]` in the Winograd domain the kernel reads, `[11][C][O]`.
    public struct TransformedWeights: Sendable, Equatable {
        /// Output channels.
        public let outputChannels: Int
        /// Input channels.
        public let inputChannels: Int
        /// Whether the filters were rounded to bfloat16 before the transform (the bf16 precision,
        /// whose convolution then rounds its input too).
        public let isRoundedToBFloat16: Bool
        let values: [Float]

        /// Transforms `weight` (`[O, C, 1, 8]` or `[O, C, 8]`).
        /// - Parameters:
        ///   - weight: The filters.
        ///   - roundingToBFloat16: Round the filters to bfloat16 first (the bf16 precision).
        public init(_ weight: Tensor, roundingToBFloat16: Bool = false) {
            let shape = weight.shape
            precondition(shape.count >= 3 && shape.last == 8 && weight.count == shape[0] * shape[1] * 8,
                         "WinogradConvolution.TransformedWeights: expected [O, C, 1, 8] filters, got \(shape)")
            outputChannels = shape[0]
            inputChannels = shape[1]
            isRoundedToBFloat16 = roundingToBFloat16
            var transformed = [Float](repeating: 0, count: 11 * shape[0] * shape[1])
            (roundingToBFloat16 ? BFloat16Matmul.rounded(weight) : weight.contiguous()).withUnsafeBufferPointer { w in
                envnet_winograd_transform_weights(w.baseAddress, Int32(shape[0]), Int32(shape[1]), &transformed)
            }
            values = transformed
        }
    }

    /// `output = weight ⊛ input + bias` for a problem where ``applies(to:)`` holds.
    /// `[N, C, 1, W] x [O, C, 1, 8] (+ [O]) -> [N, O, 1, W + 2 padding - 7]`
    /// - Parameter transformed: The weights' transform, when the caller keeps one; computed here otherwise.
    /// - Returns: false when the kernel declined (nothing usable written).
    static func forward(input: Tensor, weight: Tensor, transformed given: TransformedWeights?, bias: Tensor?,
                        problem p: Convolution.Problem, output: Address) -> Bool {
        let input = input.contiguous()
        // In bf16 both operands are rounded: the weights before their transform, the input by the kernel.
        let rounds = ExecutionOptions.current.matrixPrecision == .bfloat16
        let transformed = given.flatMap {
            $0.outputChannels == p.outputChannels && $0.inputChannels == p.channels && $0.isRoundedToBFloat16 == rounds ? $0 : nil
        } ?? TransformedWeights(weight, roundingToBFloat16: rounds)
        let biasValues = bias?.scalars
        let blocks = (p.outputWidth + 63) / 64
        // About 1600 output positions per piece of work: enough pieces for every core even for one image.
        let blocksPerPiece = 25
        let piecesPerImage = (blocks + blocksPerPiece - 1) / blocksPerPiece
        let inputBase = Address(input)
        var failures = 0
        transformed.values.withUnsafeBufferPointer { u in
            withOptionalPointer(biasValues) { biasPointer in
                let status = UnsafeMutableBufferPointer<Int32>.allocate(capacity: p.batch * piecesPerImage)
                defer { status.deallocate() }
                Parallel.forEach(count: p.batch * piecesPerImage) { piece in
                    let image = piece / piecesPerImage, first = (piece % piecesPerImage) * blocksPerPiece
                    status[piece] = envnet_winograd_convolution(
                        inputBase.pointer + image * p.inputPlane, p.width, Int32(p.channels), u.baseAddress, biasPointer,
                        Int32(p.outputChannels), p.geometry.paddingWidth, first, min(blocksPerPiece, blocks - first),
                        output.pointer + image * p.outputPlane, p.outputWidth, rounds ? 1 : 0)
                }
                failures = status.filter { $0 != 0 }.count
            }
        }
        withExtendedLifetime(input) {}
        return failures == 0
    }

    private static func withOptionalPointer<Result>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> Result) -> Result {
        guard let values else { return body(nil) }
        return values.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
