import CEnvNetSupport

/// 1x8 convolutions with unit stride by Winograd F(4, 8) (the kernel is
/// `Sources/CEnvNetSupport/FrontEnd.c`).
///
/// EnvNet's conv2 (40 -> 40 channels, 1x8, over 24000 positions) and its input gradient (the same
/// shape, run as a convolution with the flipped kernel) are most of a training step's arithmetic.
/// F(4, 8) computes 4 outputs of an 8-tap correlation with 11 products instead of 32, so the
/// channel GEMMs do 2.9x fewer multiply-adds; its results differ from direct float32 convolution by
/// about 1e-5 of their scale (tested against the im2col path and PyTorch fixtures).
///
/// ``Convolution`` takes this path by itself where it applies (x86-64 with AVX-512, height-1
/// images, kernel 1x8, unit stride and dilation, 8 or more input channels, a multiple of 20 output
/// channels). Set `ENVNET_WINOGRAD=0` to use im2col + GEMM everywhere.
enum WinogradConvolution {
    static let isAvailable = envnet_winograd_available() != 0 && EnvironmentSwitch.isOn("ENVNET_WINOGRAD")

    /// Whether this path computes problem `p`.
    static func applies(to p: Convolution.Problem) -> Bool {
        let g = p.geometry
        return isAvailable && p.height == 1 && g.kernelHeight == 1 && g.kernelWidth == 8 && g.strideHeight == 1 && g.strideWidth == 1
            && g.dilationHeight == 1 && g.dilationWidth == 1 && g.paddingHeight == 0 && p.channels >= 8
            && p.outputChannels >= 20 && p.outputChannels % 20 == 0 && p.outputWidth >= 1
    }

    /// `output = weight ⊛ input + bias` for a problem where ``applies(to:)`` holds.
    /// `[N, C, 1, W] x [O, C, 1, 8] (+ [O]) -> [N, O, 1, W + 2 padding - 7]`
    /// - Returns: false when the kernel declined (nothing usable written).
    static func forward(input: Tensor, weight: Tensor, bias: Tensor?, problem p: Convolution.Problem, output: Address) -> Bool {
        let input = input.contiguous()
        var transformed = [Float](repeating: 0, count: 11 * p.channels * p.outputChannels)
        weight.withUnsafeBufferPointer { w in
            envnet_front_end_transform_weights(w.baseAddress, Int32(p.outputChannels), Int32(p.channels), &transformed)
        }
        let biasValues = bias?.scalars
        let blocks = (p.outputWidth + 63) / 64
        // About 1600 output positions per piece of work: enough pieces for every core even for one image.
        let blocksPerPiece = 25
        let piecesPerImage = (blocks + blocksPerPiece - 1) / blocksPerPiece
        let inputBase = Address(input)
        var failures = 0
        transformed.withUnsafeBufferPointer { u in
            withOptionalPointer(biasValues) { biasPointer in
                let status = UnsafeMutableBufferPointer<Int32>.allocate(capacity: p.batch * piecesPerImage)
                defer { status.deallocate() }
                Parallel.forEach(count: p.batch * piecesPerImage) { piece in
                    let image = piece / piecesPerImage, first = (piece % piecesPerImage) * blocksPerPiece
                    status[piece] = envnet_winograd_convolution(
                        inputBase.pointer + image * p.inputPlane, p.width, Int32(p.channels), u.baseAddress, biasPointer,
                        Int32(p.outputChannels), p.geometry.paddingWidth, first, min(blocksPerPiece, blocks - first),
                        output.pointer + image * p.outputPlane, p.outputWidth)
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
