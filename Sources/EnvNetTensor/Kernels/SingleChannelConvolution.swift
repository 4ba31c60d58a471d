import CEnvNetSupport

/// Convolutions of one input channel over rows (EnvNet's conv1: audio into 40 filters of 8 taps),
/// forward and weight gradient, by the direct sums of `Sources/CEnvNetSupport/SingleChannelConvolution.c`.
///
/// im2col + GEMM makes them products whose inner dimension is the kernel width: each output costs
/// a column of 8 values written and read back, and a GEMM 8 deep runs far below its rate (conv1's
/// forward pass took 18 ms per batch of 64, its weight gradient 26-32 ms, for 492 M multiply-adds
/// each). Here each block of 16 positions loads its taps' input vectors once for every output
/// channel. In bf16 the operands are rounded to bf16 and multiplied in fp32, which gives each
/// product exactly (a product of two bf16 values fits in a float), as a bf16 kernel with fp32 sums
/// does up to the order of the sums. Every value is the definition's sum in another order (within
/// float rounding of the plain path).
///
/// `[N, 1, 1, W] x [O, 1, 1, k] -> [N, O, 1, W + 2p − k + 1]`
enum SingleChannelConvolution {
    /// Whether it applies: one input channel, height-1 images and kernels, unit stride and
    /// dilation, at most 16 taps, on a CPU with AVX-512, with the rewrites allowed.
    static func applies(to p: Convolution.Problem) -> Bool {
        let g = p.geometry
        return ExecutionOptions.current.usesConvolutionRewrites && envnet_cpu_has_avx512() != 0
            && p.channels == 1 && p.height == 1 && g.kernelHeight == 1 && g.strideWidth == 1 && g.dilationWidth == 1
            && g.paddingHeight == 0 && g.kernelWidth <= 16 && p.outputChannels >= 1 && p.outputWidth >= 1
    }

    /// Output positions per piece of work.
    static let piece = 4096

    /// The forward pass into `p.batch · p.outputPlane` contiguous values at `outputBase`; false
    /// (nothing written) when the kernel declines.
    static func forward(input: Tensor, weight: Tensor, bias: Tensor?, problem p: Convolution.Problem, output outputBase: Address) -> Bool {
        let rounds = ExecutionOptions.current.matrixPrecision == .bfloat16
        let input = input.contiguous()
        let weight = (rounds ? BFloat16Matmul.rounded(weight) : weight).contiguous(), bias = bias?.contiguous()
        let inputBase = Address(input), weightBase = Address(weight), biasBase = bias.map { Address($0) }
        let pieces = (p.outputWidth + piece - 1) / piece
        let status = UnsafeMutableBufferPointer<Int32>.allocate(capacity: p.batch * pieces)
        defer { status.deallocate() }
        let statusBase = StatusAddress(pointer: status.baseAddress!)
        Parallel.forEach(count: p.batch * pieces) { item in
            let image = item / pieces, first = (item % pieces) * piece
            statusBase.pointer[item] = envnet_single_channel_convolution(
                inputBase.pointer + image * p.inputPlane, p.width, weightBase.pointer, Int32(p.outputChannels),
                Int32(p.geometry.kernelWidth), biasBase?.pointer, p.geometry.paddingWidth, first, Swift.min(piece, p.outputWidth - first),
                outputBase.pointer + image * p.outputPlane, p.outputWidth, rounds ? 1 : 0)
        }
        withExtendedLifetime((input, weight, bias)) {}
        return !status.contains { $0 != 1 }
    }

    /// Adds the weight gradient of output positions `positions` of one image to `partial` (`[O, k]`);
    /// false (nothing added) when the kernel declines. Called on the workers, so the precision is
    /// the caller's: the options are task-local and the workers do not see them.
    /// - Parameter precision: The caller's ``ExecutionOptions/matrixPrecision``; bf16 rounds both factors.
    static func accumulateWeightGradient(image: UnsafePointer<Float>, gradientOutput: UnsafePointer<Float>, problem p: Convolution.Problem,
                                         positions: Range<Int>, precision: ExecutionOptions.Precision,
                                         into partial: UnsafeMutablePointer<Float>) -> Bool {
        let rounds = precision == .bfloat16
        return envnet_single_channel_weight_gradient(image, p.width, gradientOutput, p.outputWidth, Int32(p.outputChannels),
                                                     Int32(p.geometry.kernelWidth), p.geometry.paddingWidth, positions.lowerBound,
                                                     positions.count, partial, rounds ? 1 : 0) == 1
    }

    /// A status array's address, written by the workers at distinct indices.
    private struct StatusAddress: @unchecked Sendable { let pointer: UnsafeMutablePointer<Int32> }
}
