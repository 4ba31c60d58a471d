/// Matrix products through `cblas_sgemm`.
extension Tensor {
    /// How a rank-2 view can be handed to BLAS without a copy: row-major as is, or as the transpose
    /// of a row-major matrix. Nil when neither axis has unit stride (the caller copies).
    static func blasLayout(rows: Int, columns: Int, rowStride: Int, columnStride: Int) -> (transposed: Bool, leadingDimension: Int)? {
        // Extent-1 axes may carry any stride; treat them as whatever makes the layout valid.
        let columnUnit = columnStride == 1 || columns == 1
        let rowUnit = rowStride == 1 || rows == 1
        if columnUnit {
            let leading = rows == 1 ? Swift.max(columns, 1) : rowStride
            if leading >= Swift.max(columns, 1) { return (false, leading) }
        }
        if rowUnit {
            let leading = columns == 1 ? Swift.max(rows, 1) : columnStride
            if leading >= Swift.max(rows, 1) { return (true, leading) }
        }
        return nil
    }

    /// Matrix product. Rank 2: `[M, K] x [K, N] -> [M, N]`. Rank ≥ 3: batched over the leading
    /// axes, which broadcast (`[B, M, K] x [K, N]`, `[B, M, K] x [B, K, N]` …). A rank-1 operand is
    /// not promoted; reshape it explicitly.
    ///
    /// Transposed and sliced views with one unit-stride axis go to BLAS as they are (no copy).
    public func matmul(_ other: Tensor) -> Tensor {
        let operation = "matmul"
        TensorError.check {
            guard rank >= 2, other.rank >= 2 else {
                throw TensorError.shapeMismatch(operation: operation, message: "needs rank ≥ 2 operands, got \(shape) x \(other.shape)")
            }
            guard shape[rank - 1] == other.shape[other.rank - 2] else {
                throw TensorError.shapeMismatch(operation: operation, message: "inner dimensions differ: \(shape) x \(other.shape)")
            }
        }
        let m = shape[rank - 2], k = shape[rank - 1], n = other.shape[other.rank - 1]
        let batchShape = TensorError.check {
            try Shape.broadcast(Array(shape.dropLast(2)), Array(other.shape.dropLast(2)), operation: operation)
        }
        let left = expanded(to: batchShape + [m, k])
        let right = other.expanded(to: batchShape + [k, n])
        var result = Tensor.zeros(batchShape + [m, n])
        let batches = batchShape.reduce(1, *)
        if batches == 0 || m == 0 || n == 0 { return result }

        // Operands BLAS cannot read as they are become contiguous once, for all batches.
        let leftReady = Tensor.blasLayout(rows: m, columns: k, rowStride: left.strides[left.rank - 2], columnStride: left.strides[left.rank - 1]) == nil
            ? left.contiguous() : left
        let rightReady = Tensor.blasLayout(rows: k, columns: n, rowStride: right.strides[right.rank - 2], columnStride: right.strides[right.rank - 1]) == nil
            ? right.contiguous() : right
        let aLayout = Tensor.blasLayout(rows: m, columns: k, rowStride: leftReady.strides[leftReady.rank - 2], columnStride: leftReady.strides[leftReady.rank - 1])!
        let bLayout = Tensor.blasLayout(rows: k, columns: n, rowStride: rightReady.strides[rightReady.rank - 2], columnStride: rightReady.strides[rightReady.rank - 1])!

        let batchIndexStrides = Shape.contiguousStrides(batchShape)
        func batchOffset(_ tensor: Tensor, _ batch: Int) -> Int {
            var remainder = batch, position = tensor.offset
            for axis in 0..<batchShape.count {
                let index = remainder / batchIndexStrides[axis]
                remainder %= batchIndexStrides[axis]
                position += index * tensor.strides[axis]
            }
            return position
        }
        let aBase = leftReady.storage.baseAddress, bBase = rightReady.storage.baseAddress
        let cBase = result.storage.baseAddress
        let gemm = { (batch: Int, parallel: Bool) in
            let a = UnsafePointer(aBase + batchOffset(leftReady, batch))
            let b = UnsafePointer(bBase + batchOffset(rightReady, batch))
            let c = cBase + batch * m * n
            if parallel {
                parallelSgemm(transposeA: aLayout.transposed, transposeB: bLayout.transposed, m: m, n: n, k: k,
                              a: a, lda: aLayout.leadingDimension, b: b, ldb: bLayout.leadingDimension, c: c, ldc: n)
            } else {
                sgemm(transposeA: aLayout.transposed, transposeB: bLayout.transposed, m: m, n: n, k: k,
                      a: a, lda: aLayout.leadingDimension, b: b, ldb: bLayout.leadingDimension, c: c, ldc: n)
            }
        }
        if batches == 1 {
            gemm(0, true)
        } else {
            let box = UncheckedSendableBox(gemm)
            Parallel.forEach(count: batches) { batch in box.value(batch, false) }
        }
        withExtendedLifetime((leftReady, rightReady)) {}
        result.makeContiguousAndUnique()
        return result
    }
}
