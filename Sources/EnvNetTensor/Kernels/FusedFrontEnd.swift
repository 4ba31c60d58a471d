import CEnvNetSupport

/// EnvNet's front end in evaluation mode as one fused operation of the tensor core: conv1 (1 -> C1,
/// 1x8), BatchNorm, ReLU, conv2 (C1 -> C2, 1x8), BatchNorm, ReLU, max pooling 1xP with stride P.
/// The C kernel is `Sources/CEnvNetSupport/FusedFrontEnd.c`.
///
/// Layer by layer, these five layers write and re-read four activations of 40 x 24000 floats per
/// window, and conv2 is most of an inference's arithmetic. The fused pass folds BatchNorm's running
/// statistics into the convolutions, runs conv2 as a Winograd F(4, 8) correlation and takes each
/// group of pooling cells from audio to pooled values inside the cache. Its results equal the
/// layers' to float rounding (the tests compare both paths and the PyTorch fixtures).
///
/// ``Weights`` holds the folded and transformed weights; a caller that runs the same weights many
/// times keeps it (EnvNet's front-end block does, and rebuilds it when a weight changes).
public enum FusedFrontEnd {
    /// Whether this machine runs the kernel (x86-64 with AVX-512).
    public static let isSupported = envnet_winograd_available() != 0

    /// The front end's weights with BatchNorm folded in and conv2 in the Winograd domain.
    public struct Weights: Sendable, Equatable {
        let conv1Weights: [Float]
        let conv1Shift: [Float]
        let conv2Transformed: [Float]
        let conv2Shift: [Float]
        /// conv1's output channels (conv2's input channels).
        public let hiddenChannels: Int
        /// conv2's output channels.
        public let outputChannels: Int
        /// The zero padding of both convolutions on each side.
        public let padding: Int
        /// The pooling width and stride.
        public let poolSize: Int
        /// Whether the operands are rounded to bfloat16 (the bf16 precision): the filters here,
        /// before BatchNorm is folded into them, and the audio and conv2's input by the kernel.
        public let isRoundedToBFloat16: Bool

        /// Folds the layers' tensors, or nil when they are not the shapes the kernel handles: two
        /// 1x8 convolutions (1 -> C1 -> C2, C2 a multiple of 20) with equal width padding, and
        /// pooling cells of a multiple of 4 positions.
        /// - Parameters:
        ///   - conv1Weight: `[C1, 1, 1, 8]`.
        ///   - conv1Bias: `[C1]`, or nil.
        ///   - norm1: bn1's evaluation-mode statistics.
        ///   - conv2Weight: `[C2, C1, 1, 8]`.
        ///   - conv2Bias: `[C2]`, or nil.
        ///   - norm2: bn2's evaluation-mode statistics.
        ///   - padding: The width padding of both convolutions.
        ///   - poolSize: The pooling width, equal to its stride.
        ///   - roundingToBFloat16: Round the operands to bfloat16 (the bf16 precision).
        public init?(conv1Weight: Tensor, conv1Bias: Tensor?, norm1: BatchNormalization.Statistics,
                     conv2Weight: Tensor, conv2Bias: Tensor?, norm2: BatchNormalization.Statistics,
                     padding: Int, poolSize: Int, roundingToBFloat16: Bool = false) {
            let c1 = conv1Weight.shape.first ?? 0, c2 = conv2Weight.shape.first ?? 0
            guard conv1Weight.shape == [c1, 1, 1, 8], conv2Weight.shape == [c2, c1, 1, 8], c1 >= 1, c2 >= 20, c2 % 20 == 0,
                  norm1.featureCount == c1, norm2.featureCount == c2, conv1Bias.map({ $0.shape == [c1] }) ?? true,
                  conv2Bias.map({ $0.shape == [c2] }) ?? true, padding >= 0, poolSize >= 4, poolSize % 4 == 0
            else { return nil }
            let (scale1, shift1) = norm1.folded(withBias: conv1Bias)
            let (scale2, shift2) = norm2.folded(withBias: conv2Bias)
            // Weights are [O, C, 1, 8]: output channel o's C·8 taps are scaled by its BatchNorm scale.
            let w1 = (roundingToBFloat16 ? BFloat16Matmul.rounded(conv1Weight) : conv1Weight).scalars
            let w2 = (roundingToBFloat16 ? BFloat16Matmul.rounded(conv2Weight) : conv2Weight).scalars
            isRoundedToBFloat16 = roundingToBFloat16
            conv1Weights = (0..<w1.count).map { w1[$0] * scale1[$0 / 8] }
            let taps = c1 * 8
            let folded2 = (0..<w2.count).map { w2[$0] * scale2[$0 / taps] }
            var transformed = [Float](repeating: 0, count: 11 * c1 * c2)
            envnet_winograd_transform_weights(folded2, Int32(c2), Int32(c1), &transformed)
            conv2Transformed = transformed
            conv1Shift = shift1
            conv2Shift = shift2
            hiddenChannels = c1
            outputChannels = c2
            self.padding = padding
            self.poolSize = poolSize
        }
    }

    /// How many pooling cells of `poolSize` positions the kernel computes together.
    static func cellsPerGroup(poolSize: Int) -> Int { envnet_front_end_cells_per_group(poolSize) }

    /// The pooled front-end output of a batch of windows, or nil when the kernel declines the
    /// sizes or the machine (the caller then runs the layers). `[N, 1, 1, L] -> [N, C2, 1, cells]`
    ///
    /// - Parameters:
    ///   - input: The audio windows, `[N, 1, 1, L]`.
    ///   - weights: The folded weights.
    /// - Returns: The pooled activations, ReLU applied.
    public static func forward(_ input: Tensor, weights: Weights) -> Tensor? {
        guard isSupported, input.rank == 4, input.shape[1] == 1, input.shape[2] == 1 else { return nil }
        let batch = input.shape[0], length = input.shape[3]
        let padding = weights.padding, poolSize = weights.poolSize
        let inputChannels = weights.hiddenChannels, outputChannels = weights.outputChannels
        let conv2Length = length + 4 * padding - 14
        let cells = conv2Length / poolSize
        guard cells >= 1 else { return nil }
        var output = Tensor.zeros([batch, outputChannels, 1, cells])
        // Enough pieces of work to keep every core busy even for one window, each of whole
        // groups of cells (the fewest cells whose positions fill 16-tile blocks, as the kernel
        // groups them) so no group is computed twice.
        let groupCells = Self.cellsPerGroup(poolSize: poolSize)
        let cellsPerPiece = groupCells * max(1, 10 / groupCells)
        let piecesPerWindow = (cells + cellsPerPiece - 1) / cellsPerPiece
        var failed = false
        let source = input.contiguous()
        source.withUnsafeBufferPointer { audio in
            output.withUnsafeMutableBufferPointer { result in
                weights.conv1Weights.withUnsafeBufferPointer { w1 in
                    weights.conv1Shift.withUnsafeBufferPointer { b1 in
                        weights.conv2Transformed.withUnsafeBufferPointer { u in
                            weights.conv2Shift.withUnsafeBufferPointer { b2 in
                                let status = UnsafeMutableBufferPointer<Int32>.allocate(capacity: batch * piecesPerWindow)
                                defer { status.deallocate() }
                                Parallel.forEach(count: batch * piecesPerWindow) { piece in
                                    let window = piece / piecesPerWindow, first = (piece % piecesPerWindow) * cellsPerPiece
                                    status[piece] = envnet_front_end_forward(
                                        audio.baseAddress! + window * length, length, w1.baseAddress, b1.baseAddress,
                                        Int32(inputChannels), u.baseAddress, b2.baseAddress, Int32(outputChannels), padding,
                                        poolSize, first, min(cellsPerPiece, cells - first),
                                        result.baseAddress! + window * outputChannels * cells, cells,
                                        weights.isRoundedToBFloat16 ? 1 : 0)
                                }
                                failed = status.contains { $0 != 0 }
                            }
                        }
                    }
                }
            }
        }
        return failed ? nil : output
    }
}
