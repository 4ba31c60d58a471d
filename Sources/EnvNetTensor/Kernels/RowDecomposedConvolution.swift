/// Convolution with tall kernels (`kh > 1`, unit vertical stride) as one GEMM per kernel row.
///
/// The plain path (``Convolution``) builds im2col columns of `C·kh·kw` rows for every output
/// position: for EnvNet-v2's conv4 (32 channels, 8x8) that is 2048 values written per position,
/// and their writing costs about as much as the multiply-adds. Here the columns cover only one
/// kernel row (`C·kw` rows) and are built once per input row; kernel row `i` then adds
/// `W_i [O, C·kw] x columns(input rows oh + i - ph)` to the output, a GEMM whose right-hand side
/// is a contiguous slice of the same column slab. The columns are `kh` times fewer, the
/// multiply-adds the same, and every output value is the same sum in another order (within
/// float rounding of the plain path).
///
/// `[N, C, H, W] x [O, C, kh, kw] -> [N, O, OH, OW]`
enum RowDecomposedConvolution {
    /// Whether the decomposition applies and pays: a kernel taller than 1 with unit vertical
    /// stride and dilation, and at least 64 column rows per kernel row (fewer make thin GEMMs).
    static func applies(to p: Convolution.Problem) -> Bool {
        let g = p.geometry
        return ExecutionOptions.current.usesConvolutionRewrites && ExecutionOptions.current.matrixPrecision == .float32 && g.kernelHeight > 1 && g.strideHeight == 1 && g.dilationHeight == 1
            && p.channels * g.kernelWidth >= 64 && p.outputChannels >= 8 && p.outputHeight >= 2
    }

    /// Output rows per work item: the column slab of `rows + kh - 1` input rows stays a few MB.
    static func rowsPerTile(_ p: Convolution.Problem) -> Int {
        let slabRow = p.channels * p.geometry.kernelWidth * p.outputWidth
        let budget = 4 * ExecutionOptions.current.convolutionTileElements
        let rows = budget / Swift.max(slabRow, 1) - (p.geometry.kernelHeight - 1)
        return Swift.min(p.outputHeight, Swift.max(2, rows))
    }

    /// The forward pass into `p.batch · p.outputPlane` contiguous values at `outputBase`.
    static func forward(input: Tensor, weight: Tensor, bias: Tensor?, problem p: Convolution.Problem, output outputBase: Address) {
        let g = p.geometry
        let kh = g.kernelHeight, columnRows = p.channels * g.kernelWidth
        // W_i[o, c·kw + j] = weight[o, c, i, j], one contiguous [O, C·kw] matrix per kernel row.
        let weight = weight.contiguous()
        var rowWeights = [Float](repeating: 0, count: weight.count)
        weight.withUnsafeBufferPointer { source in
            for i in 0..<kh {
                for o in 0..<p.outputChannels {
                    for c in 0..<p.channels {
                        for j in 0..<g.kernelWidth {
                            rowWeights[(i * p.outputChannels + o) * columnRows + c * g.kernelWidth + j] =
                                source[((o * p.channels + c) * kh + i) * g.kernelWidth + j]
                        }
                    }
                }
            }
        }
        let input = input.contiguous(), bias = bias?.contiguous()
        let inputBase = Address(input), biasBase = bias.map { Address($0) }
        let tileRows = rowsPerTile(p)
        let tilesPerImage = (p.outputHeight + tileRows - 1) / tileRows
        // One row of the kernel over the slab's rows: kw taps, the layer's horizontal geometry.
        let rowGeometry = ConvolutionGeometry(kernel: (1, g.kernelWidth), stride: (1, g.strideWidth), padding: (0, g.paddingWidth),
                                              dilation: (1, g.dilationWidth))
        rowWeights.withUnsafeBufferPointer { rowWeightBuffer in
            let weights = Address(pointer: UnsafeMutablePointer(mutating: rowWeightBuffer.baseAddress!))
            _ = Parallel.forEachChunk(count: p.batch * tilesPerImage) { _, range in
                let slabCapacity = columnRows * (tileRows + kh - 1) * p.outputWidth
                let slab = UnsafeMutablePointer<Float>.allocate(capacity: slabCapacity)
                defer { slab.deallocate() }
                for item in range {
                    let image = item / tilesPerImage
                    let firstRow = (item % tilesPerImage) * tileRows, endRow = Swift.min(p.outputHeight, firstRow + tileRows)
                    // The input rows these output rows read, clipped to the image (padding rows add nothing).
                    let firstInput = Swift.max(0, firstRow - g.paddingHeight)
                    let endInput = Swift.min(p.height, endRow - 1 - g.paddingHeight + kh)
                    let destination = outputBase.pointer + image * p.outputPlane
                    for o in 0..<p.outputChannels {
                        let row = destination + o * p.positions + firstRow * p.outputWidth
                        let value = biasBase?.pointer[o] ?? 0
                        row.update(repeating: value, count: (endRow - firstRow) * p.outputWidth)
                    }
                    guard endInput > firstInput else { continue }
                    let slabRows = endInput - firstInput
                    let source = inputBase.pointer + image * p.inputPlane + firstInput * p.width
                    // im2col of the 1 x kw convolution over input rows firstInput ..< endInput.
                    Convolution.im2col(input: source, channels: p.channels, height: slabRows, width: p.width, geometry: rowGeometry,
                                       outputWidth: p.outputWidth, positions: 0..<(slabRows * p.outputWidth), columns: slab,
                                       planeStride: p.height * p.width)
                    let slabPositions = slabRows * p.outputWidth
                    for i in 0..<kh {
                        // Output rows oh whose input row oh - ph + i lies in the slab.
                        let lower = Swift.max(firstRow, firstInput + g.paddingHeight - i)
                        let upper = Swift.min(endRow, endInput + g.paddingHeight - i)
                        guard upper > lower else { continue }
                        let slabOffset = (lower - g.paddingHeight + i - firstInput) * p.outputWidth
                        sgemm(transposeA: false, transposeB: false, m: p.outputChannels, n: (upper - lower) * p.outputWidth, k: columnRows,
                              a: weights.pointer + i * p.outputChannels * columnRows, lda: columnRows,
                              b: slab + slabOffset, ldb: slabPositions, beta: 1,
                              c: destination + lower * p.outputWidth, ldc: p.positions)
                    }
                }
            }
        }
        withExtendedLifetime((input, bias)) {}
    }

    /// The weight gradient, added to `weightGradient` (`[O, C, kh, kw]` values) and, when given,
    /// the bias gradient to `biasGradient`: per kernel row, `dW_i += G x columns^T` over the same
    /// slabs as the forward pass. `[N, O, OH, OW] x [N, C, H, W] -> [O, C, kh, kw]`
    static func backwardWeight(gradientOutput: Tensor, input: Tensor, problem p: Convolution.Problem,
                               weightGradient: UnsafeMutablePointer<Float>, biasGradient: UnsafeMutablePointer<Float>?) {
        let g = p.geometry
        let kh = g.kernelHeight, columnRows = p.channels * g.kernelWidth
        let gradientOutput = gradientOutput.contiguous(), input = input.contiguous()
        let gradientBase = Address(gradientOutput), inputBase = Address(input)
        let tileRows = rowsPerTile(p)
        let tilesPerImage = (p.outputHeight + tileRows - 1) / tileRows
        let items = p.batch * tilesPerImage
        let weightCount = p.outputChannels * p.rows
        // Each chunk accumulates privately in the per-row layout [kh][O][C·kw] (then the bias).
        let chunks = Swift.max(1, Swift.min(Parallel.workerCount, items))
        let stride = weightCount + p.outputChannels
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: chunks * stride)
        partials.initialize(repeating: 0, count: chunks * stride)
        defer { partials.deallocate() }
        let partialsBase = Address(pointer: partials)
        let rowGeometry = ConvolutionGeometry(kernel: (1, g.kernelWidth), stride: (1, g.strideWidth), padding: (0, g.paddingWidth),
                                              dilation: (1, g.dilationWidth))
        _ = Parallel.forEachChunk(count: items) { chunk, range in
            let partial = partialsBase.pointer + chunk * stride
            let slab = UnsafeMutablePointer<Float>.allocate(capacity: columnRows * (tileRows + kh - 1) * p.outputWidth)
            defer { slab.deallocate() }
            for item in range {
                let image = item / tilesPerImage
                let firstRow = (item % tilesPerImage) * tileRows, endRow = Swift.min(p.outputHeight, firstRow + tileRows)
                let gradient = gradientBase.pointer + image * p.outputPlane
                if biasGradient != nil {
                    for o in 0..<p.outputChannels {
                        let row = gradient + o * p.positions + firstRow * p.outputWidth
                        var total: Float = 0
                        for index in 0..<((endRow - firstRow) * p.outputWidth) { total += row[index] }
                        partial[weightCount + o] += total
                    }
                }
                let firstInput = Swift.max(0, firstRow - g.paddingHeight)
                let endInput = Swift.min(p.height, endRow - 1 - g.paddingHeight + kh)
                guard endInput > firstInput else { continue }
                let slabRows = endInput - firstInput, slabPositions = slabRows * p.outputWidth
                Convolution.im2col(input: inputBase.pointer + image * p.inputPlane + firstInput * p.width, channels: p.channels,
                                   height: slabRows, width: p.width, geometry: rowGeometry, outputWidth: p.outputWidth,
                                   positions: 0..<slabPositions, columns: slab, planeStride: p.height * p.width)
                for i in 0..<kh {
                    let lower = Swift.max(firstRow, firstInput + g.paddingHeight - i)
                    let upper = Swift.min(endRow, endInput + g.paddingHeight - i)
                    guard upper > lower else { continue }
                    let slabOffset = (lower - g.paddingHeight + i - firstInput) * p.outputWidth
                    sgemm(transposeA: false, transposeB: true, m: p.outputChannels, n: columnRows, k: (upper - lower) * p.outputWidth,
                          a: gradient + lower * p.outputWidth, lda: p.positions, b: slab + slabOffset, ldb: slabPositions, beta: 1,
                          c: partial + i * p.outputChannels * columnRows, ldc: columnRows)
                }
            }
        }
        for chunk in 0..<chunks {
            let partial = partials + chunk * stride
            for i in 0..<kh {
                for o in 0..<p.outputChannels {
                    for c in 0..<p.channels {
                        for j in 0..<g.kernelWidth {
                            weightGradient[((o * p.channels + c) * kh + i) * g.kernelWidth + j] +=
                                partial[(i * p.outputChannels + o) * columnRows + c * g.kernelWidth + j]
                        }
                    }
                }
            }
            if let biasGradient { for o in 0..<p.outputChannels { biasGradient[o] += partial[weightCount + o] } }
        }
        withExtendedLifetime((gradientOutput, input)) {}
    }
}
