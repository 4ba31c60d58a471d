import CEnvNetSupport

/// EnvNet's front end (conv1, BatchNorm, ReLU, conv2, BatchNorm, ReLU, max pooling) in evaluation
/// mode as one fused operation of the tensor core; the C kernel is
/// `Sources/CEnvNetSupport/FrontEnd.c`. The model library prepares the folded weights
/// (`FusedFrontEnd` in EnvNetModel) and calls these functions, so that only this target touches
/// the C module.
public enum FusedFrontEndKernel {
    /// Whether this machine runs the kernel (x86-64 with AVX-512).
    public static let isAvailable = envnet_winograd_available() != 0

    /// How many pooling cells of `poolSize` positions the kernel computes together.
    ///
    /// - Parameter poolSize: The pooling width.
    /// - Returns: The cells of one group.
    public static func cellsPerGroup(poolSize: Int) -> Int {
        envnet_front_end_cells_per_group(poolSize)
    }

    /// conv2's weights `[outputChannels][inputChannels][8]` in the Winograd domain the kernel reads.
    /// `[O * C * 8] -> [11 * C * O]`
    ///
    /// - Parameters:
    ///   - weights: The (BatchNorm-folded) weights, row-major.
    ///   - outputChannels: O, a multiple of 20.
    ///   - inputChannels: C.
    /// - Returns: The transformed weights.
    public static func transformWeights(_ weights: [Float], outputChannels: Int, inputChannels: Int) -> [Float] {
        precondition(weights.count == outputChannels * inputChannels * 8, "FusedFrontEndKernel: \(weights.count) weights for \(outputChannels) x \(inputChannels) x 8")
        var transformed = [Float](repeating: 0, count: 11 * inputChannels * outputChannels)
        envnet_front_end_transform_weights(weights, Int32(outputChannels), Int32(inputChannels), &transformed)
        return transformed
    }

    /// The pooled front-end output of a batch of windows, or nil when the kernel declines the
    /// sizes (or the CPU). `[N, 1, 1, L] -> [N, C2, 1, cells]`
    ///
    /// - Parameters:
    ///   - input: The audio windows, `[N, 1, 1, L]`.
    ///   - conv1Weights: conv1's weights `[C1][8]`, BatchNorm scale folded in.
    ///   - conv1Shift: bn1's shift `[C1]`.
    ///   - conv2Transformed: From ``transformWeights(_:outputChannels:inputChannels:)``.
    ///   - conv2Shift: bn2's shift `[C2]`.
    ///   - inputChannels: C1.
    ///   - outputChannels: C2.
    ///   - padding: The zero padding of both convolutions on each side.
    ///   - poolSize: The pooling width and stride.
    /// - Returns: The pooled activations, ReLU applied.
    public static func forward(_ input: Tensor, conv1Weights: [Float], conv1Shift: [Float], conv2Transformed: [Float], conv2Shift: [Float],
                               inputChannels: Int, outputChannels: Int, padding: Int, poolSize: Int) -> Tensor? {
        guard input.rank == 4, input.shape[1] == 1, input.shape[2] == 1 else { return nil }
        let batch = input.shape[0], length = input.shape[3]
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
                conv1Weights.withUnsafeBufferPointer { w1 in
                    conv1Shift.withUnsafeBufferPointer { b1 in
                        conv2Transformed.withUnsafeBufferPointer { u in
                            conv2Shift.withUnsafeBufferPointer { b2 in
                                let status = UnsafeMutableBufferPointer<Int32>.allocate(capacity: batch * piecesPerWindow)
                                defer { status.deallocate() }
                                Parallel.forEach(count: batch * piecesPerWindow) { piece in
                                    let window = piece / piecesPerWindow, first = (piece % piecesPerWindow) * cellsPerPiece
                                    status[piece] = envnet_front_end_forward(
                                        audio.baseAddress! + window * length, length, w1.baseAddress, b1.baseAddress,
                                        Int32(inputChannels), u.baseAddress, b2.baseAddress, Int32(outputChannels), padding,
                                        poolSize, first, min(cellsPerPiece, cells - first),
                                        result.baseAddress! + window * outputChannels * cells, cells)
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

/// Process facts and settings from the C support module, for the layers above.
public enum ProcessSupport {
    /// This process's peak resident memory in bytes (`getrusage`).
    public static var peakResidentBytes: Int { Int(envnet_peak_resident_bytes()) }

    /// Makes standard output line-buffered, so that lines reach a log file as they are printed.
    public static func lineBufferStandardOutput() { envnet_line_buffer_standard_output() }
}
