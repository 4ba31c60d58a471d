import CEnvNetSupport

/// A convolution, BatchNorm in evaluation mode with ReLU, and max pooling as one operation of the
/// tensor core: EnvNet's conv3 + bn3 + pool3 and conv4 + bn4 + pool4 (and any such block of other
/// networks) in inference.
///
/// Layer by layer, the block writes the convolution's output, reads and writes it again for
/// BatchNorm, and reads it a third time to pool it: for conv3 that is 33 x 138 x 50 values per
/// window, nine times pool3's output, and the passes over it cost as much as the convolution's
/// multiply-adds. Here the convolution runs as the plain path does (im2col tiles and one GEMM per
/// tile, in the precision ``ExecutionOptions/matrixPrecision`` gives, so bf16 rounds the same
/// operands), but each tile covers whole pooling rows; BatchNorm's `x·scale + shift` and ReLU are
/// applied to the tile while it is in the cache and only the pooled values are written.
///
/// BatchNorm is applied after the product, not folded into the weights, so the operands of the
/// product are the layers' own (bf16 rounds the weight, not the weight times a scale), and the
/// results equal the layers' to float rounding: the convolution's bias is moved into BatchNorm's
/// shift, nothing else changes. ReLU maps NaN to 0 as the layers' ReLU does, so the pooling sees
/// numbers only.
///
/// In bf16 the weight is packed to bf16 once per call, and each tile's columns once, for the whole
/// tile: the general `gemm(precision:)` would pack the weight again for every 256 columns.
///
/// `[N, C, H, W] x [O, C, kh, kw] -> [N, O, PH, PW]`
/// (`OH x OW` the convolution's output, `PH = (OH − ph) / sh + 1`, `PW = (OW − pw) / sw + 1`)
public enum ConvolutionPooling {
    /// Whether the operation handles this convolution and pooling: the convolution takes the plain
    /// im2col path (no Winograd, polyphase or row-decomposed rewrite, which are faster where they
    /// apply), and the pooling has no padding or dilation and fits in the convolution's output.
    /// - Parameters:
    ///   - inputShape: `[N, C, H, W]`.
    ///   - weightShape: `[O, C, kh, kw]`.
    ///   - geometry: The convolution's.
    ///   - pooling: The max pooling's, or nil for none.
    public static func applies(inputShape: [Int], weightShape: [Int], geometry: ConvolutionGeometry, pooling: ConvolutionGeometry?) -> Bool {
        problem(inputShape: inputShape, weightShape: weightShape, geometry: geometry, pooling: pooling) != nil
    }

    /// The convolution's problem when ``applies(inputShape:weightShape:geometry:pooling:)`` holds, else nil.
    private static func problem(inputShape: [Int], weightShape: [Int], geometry: ConvolutionGeometry,
                                pooling: ConvolutionGeometry?) -> Convolution.Problem? {
        guard let p = try? Convolution.problem(input: inputShape, weight: weightShape, geometry: geometry, operation: "ConvolutionPooling"),
              Convolution.takesIm2colPath(p), p.batch > 0, p.rows > 0, p.outputChannels > 0 else { return nil }
        guard let pool = pooling else { return p }
        let fits = pool.paddingHeight == 0 && pool.paddingWidth == 0 && pool.dilationHeight == 1 && pool.dilationWidth == 1
            && pool.kernelHeight >= 1 && pool.kernelWidth >= 1 && pool.strideHeight >= 1 && pool.strideWidth >= 1
            && pool.kernelHeight <= p.outputHeight && pool.kernelWidth <= p.outputWidth
        return fits ? p : nil
    }

    /// The pooled activations `max(0, BN(weight ⊛ input + bias))`, or nil when ``applies(inputShape:weightShape:geometry:pooling:)``
    /// is false (the caller then runs the layers, which report any shape error).
    /// `[N, C, H, W] x [O, C, kh, kw] (+ [O]) -> [N, O, PH, PW]`
    /// - Parameters:
    ///   - input: `[N, C, H, W]`.
    ///   - weight: `[O, C, kh, kw]`.
    ///   - bias: The convolution's bias `[O]`, or nil.
    ///   - geometry: The convolution's geometry.
    ///   - normalization: The BatchNorm layer's evaluation-mode statistics (`O` channels).
    ///   - pooling: The max pooling's geometry, or nil for none.
    ///   - output: Receives the result; its storage is reused when it already has the shape and is not shared.
    /// - Returns: Whether it ran.
    public static func forward(input: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvolutionGeometry,
                               normalization: BatchNormalization.Statistics, pooling: ConvolutionGeometry?,
                               into output: inout Tensor) -> Bool {
        guard let p = problem(inputShape: input.shape, weightShape: weight.shape, geometry: geometry, pooling: pooling),
              normalization.featureCount == p.outputChannels, bias.map({ $0.shape == [p.outputChannels] }) ?? true
        else { return false }
        let pool = pooling ?? ConvolutionGeometry(kernel: (1, 1))
        let (ph, pw, sh, sw) = (pool.kernelHeight, pool.kernelWidth, pool.strideHeight, pool.strideWidth)
        let pooledHeight = (p.outputHeight - ph) / sh + 1, pooledWidth = (p.outputWidth - pw) / sw + 1
        Convolution.prepare(&output, shape: [p.batch, p.outputChannels, pooledHeight, pooledWidth])
        let precision = ExecutionOptions.current.matrixPrecision
        let input = input.contiguous(), weight = weight.contiguous()
        let inputBase = Address(input), weightBase = Address(weight), outputBase = Address(output)
        let (scale, shift) = normalization.folded(withBias: bias)
        // In bf16 the weight's rows as bf16 pairs, packed once for every tile.
        var packedWeight: [UInt32]?
        if precision == .bfloat16 && BFloat16Matmul.hasAVX512BF16 {
            var packed = [UInt32](repeating: 0, count: p.outputChannels * envnet_bf16_pair_count(p.rows))
            if envnet_bf16_pack_a_rows(weightBase.pointer, p.rows, p.outputChannels, p.rows, &packed, 0, p.outputChannels) == 1 {
                packedWeight = packed
            }
        }
        // Pooled rows per piece of work: their convolution rows fill about one plain-path tile.
        let tile = Convolution.tileWidth(rows: p.rows, positions: p.positions)
        let rowsPerGroup = Swift.max(1, Swift.min(pooledHeight, (tile / p.outputWidth - ph) / sh + 1))
        let convolutionRowsPerGroup = (rowsPerGroup - 1) * sh + ph
        let groupPositions = convolutionRowsPerGroup * p.outputWidth
        let groups = (pooledHeight + rowsPerGroup - 1) / rowsPerGroup
        _ = Parallel.forEachChunk(count: p.batch * groups) { _, range in
            let columns = p.geometry.isPointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: p.rows * groupPositions)
            let products = UnsafeMutablePointer<Float>.allocate(capacity: p.outputChannels * groupPositions)
            let rowMaxima = UnsafeMutablePointer<Float>.allocate(capacity: p.outputWidth)
            let packedColumns = packedWeight == nil ? nil
                : UnsafeMutablePointer<UInt16>.allocate(capacity: envnet_bf16_packed_b_count(p.rows, groupPositions))
            defer { columns?.deallocate(); products.deallocate(); rowMaxima.deallocate(); packedColumns?.deallocate() }
            for item in range {
                let image = item / groups, firstPooledRow = (item % groups) * rowsPerGroup
                let pooledRows = Swift.min(rowsPerGroup, pooledHeight - firstPooledRow)
                let firstRow = firstPooledRow * sh, rows = (pooledRows - 1) * sh + ph
                let positions = firstRow * p.outputWidth ..< (firstRow + rows) * p.outputWidth
                let source = inputBase.pointer + image * p.inputPlane
                let (b, ldb) = Convolution.tileColumns(of: source, problem: p, positions: positions, workspace: columns)
                if let packedWeight, let packedColumns {
                    let panels = (positions.count + 31) / 32
                    _ = envnet_bf16_pack_b_panels(b, ldb, p.rows, positions.count, packedColumns, 0, panels)
                    _ = envnet_bf16_gemm(p.outputChannels, positions.count, p.rows, packedWeight, packedColumns, products,
                                         positions.count, 0, 0, p.outputChannels, 0, panels)
                } else {
                    gemm(precision: precision, transposeA: false, transposeB: false, m: p.outputChannels, n: positions.count, k: p.rows,
                         a: weightBase.pointer, lda: p.rows, b: b, ldb: ldb, c: products, ldc: positions.count)
                }
                for channel in 0..<p.outputChannels {
                    let plane = products + channel * positions.count
                    activate(plane, count: positions.count, scale: scale[channel], shift: shift[channel])
                    let destination = outputBase.pointer + ((image * p.outputChannels + channel) * pooledHeight + firstPooledRow) * pooledWidth
                    for pooledRow in 0..<pooledRows {
                        let top = plane + pooledRow * sh * p.outputWidth
                        maximumOverRows(top, rows: ph, width: p.outputWidth, into: rowMaxima)
                        let row = destination + pooledRow * pooledWidth
                        for column in 0..<pooledWidth {
                            let window = rowMaxima + column * sw
                            var best = window[0]
                            for j in 1..<Swift.max(pw, 1) { best = window[j] > best ? window[j] : best }
                            row[column] = best
                        }
                    }
                }
            }
        }
        withExtendedLifetime((input, weight, output)) {}
        return true
    }

    /// `x = max(0, x·scale + shift)` in place: BatchNorm's evaluation kernel with ReLU.
    @inline(__always)
    static func activate(_ x: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float) {
        for index in 0..<count { let value = x[index] * scale + shift; x[index] = value > 0 ? value : 0 }
    }

    /// The elementwise maximum of `rows` rows of `width` values, `width` apart.
    @inline(__always)
    static func maximumOverRows(_ top: UnsafePointer<Float>, rows: Int, width: Int, into result: UnsafeMutablePointer<Float>) {
        result.update(from: top, count: width)
        for row in 1..<Swift.max(rows, 1) {
            let next = top + row * width
            for index in 0..<width { result[index] = next[index] > result[index] ? next[index] : result[index] }
        }
    }
}
