import COpenBLAS

/// Matrix decompositions through LAPACKE (used for PCA of embeddings).
extension Tensor {
    /// Eigen-decomposition of a symmetric matrix `[n, n]` (LAPACK `ssyevd`; only the lower triangle is read).
    ///
    /// - Returns: the eigenvalues in ascending order `[n]` and the eigenvectors as the columns of `[n, n]`.
    /// - Throws: ``TensorError`` when the matrix is not square or LAPACK fails to converge.
    public func symmetricEigendecomposition() throws -> (eigenvalues: Tensor, eigenvectors: Tensor) {
        let operation = "symmetricEigendecomposition"
        guard rank == 2, shape[0] == shape[1] else {
            throw TensorError.shapeMismatch(operation: operation, message: "needs a square matrix, got \(shape)")
        }
        let n = shape[0]
        if n == 0 { return (Tensor.zeros([0]), Tensor.zeros([0, 0])) }
        var vectors = contiguousCopy()
        var values = Tensor.zeros([n])
        let info = vectors.withUnsafeMutableBufferPointer { a in
            values.withUnsafeMutableBufferPointer { w in
                LAPACKE_ssyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "L")), Int32(n), a.baseAddress, Int32(n), w.baseAddress)
            }
        }
        guard info == 0 else {
            throw TensorError.linearAlgebra(operation: operation, message: "LAPACKE_ssyevd returned \(info) for a \(n)x\(n) matrix")
        }
        return (values, vectors)
    }

    /// Thin singular value decomposition `A = U diag(S) Vᵀ` of `[m, n]` (LAPACK `sgesdd`).
    ///
    /// - Returns: `U [m, r]`, singular values `S [r]` in descending order and `Vᵀ [r, n]`, with r = min(m, n).
    /// - Throws: ``TensorError`` when the input is not a matrix or LAPACK fails.
    public func singularValueDecomposition() throws -> (u: Tensor, singularValues: Tensor, vTransposed: Tensor) {
        let operation = "singularValueDecomposition"
        guard rank == 2 else {
            throw TensorError.shapeMismatch(operation: operation, message: "needs a matrix, got \(shape)")
        }
        let m = shape[0], n = shape[1], r = Swift.min(m, n)
        if r == 0 { return (Tensor.zeros([m, 0]), Tensor.zeros([0]), Tensor.zeros([0, n])) }
        var a = contiguousCopy()
        var u = Tensor.zeros([m, r]), s = Tensor.zeros([r]), vt = Tensor.zeros([r, n])
        let info = a.withUnsafeMutableBufferPointer { a in
            u.withUnsafeMutableBufferPointer { u in
                s.withUnsafeMutableBufferPointer { s in
                    vt.withUnsafeMutableBufferPointer { vt in
                        LAPACKE_sgesdd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "S")), Int32(m), Int32(n), a.baseAddress, Int32(n),
                                       s.baseAddress, u.baseAddress, Int32(r), vt.baseAddress, Int32(n))
                    }
                }
            }
        }
        guard info == 0 else {
            throw TensorError.linearAlgebra(operation: operation, message: "LAPACKE_sgesdd returned \(info) for a \(m)x\(n) matrix")
        }
        return (u, s, vt)
    }
}
