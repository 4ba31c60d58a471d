import EnvNetTensor
import Testing

@Suite("Matrix multiply and LAPACK decompositions")
struct MatrixTests {
    static func naiveProduct(_ a: Tensor, _ b: Tensor) -> Tensor {
        let m = a.shape[0], k = a.shape[1], n = b.shape[1]
        var values = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var total: Double = 0
            for p in 0..<k { total += Double(a[i, p]) * Double(b[p, j]) }
            values[i * n + j] = Float(total)
        } }
        return Tensor(values, shape: [m, n])
    }

    @Test func twoDimensionalProductsOfViews() {
        var generator = SeededGenerator(seed: 31)
        for (m, k, n) in [(3, 4, 5), (1, 7, 1), (17, 33, 9), (64, 200, 300), (5, 1, 6)] {
            let a = Tensor.uniform([m, k], in: -1..<1, generator: &generator)
            let b = Tensor.uniform([k, n], in: -1..<1, generator: &generator)
            let expected = Self.naiveProduct(a, b)
            Reference.expectClose(a.matmul(b), expected, relative: 1e-4, absolute: 1e-4)
            // Transposed operands (stored the other way round) and a column-sliced operand.
            let aT = a.transposed.contiguousCopy().transposed
            let bT = b.transposed.contiguousCopy().transposed
            Reference.expectClose(aT.matmul(bT), expected, relative: 1e-4, absolute: 1e-4)
            let wide = Tensor.uniform([k, 2 * n + 1], in: -1..<1, generator: &generator)
            let bSliced = wide.narrowed(axis: 1, start: 1, length: n)
            Reference.expectClose(a.matmul(bSliced), Self.naiveProduct(a, bSliced.contiguous()), relative: 1e-4, absolute: 1e-4)
            // A stepped slice has no unit stride: it is copied, still correct.
            let stepped = wide.sliced(axis: 1, from: 0, to: 2 * n, step: 2)
            Reference.expectClose(a.matmul(stepped), Self.naiveProduct(a, stepped.contiguous()), relative: 1e-4, absolute: 1e-4)
        }
    }

    @Test func batchedProductsBroadcast() {
        var generator = SeededGenerator(seed: 32)
        let a = Reference.randomTensor([3, 4, 5], generator: &generator)
        let b = Reference.randomTensor([5, 2], generator: &generator)
        let c = a.matmul(b)
        #expect(c.shape == [3, 4, 2])
        for batch in 0..<3 {
            Reference.expectClose(c.selecting(axis: 0, index: batch), Self.naiveProduct(a.selecting(axis: 0, index: batch), b), relative: 1e-4, absolute: 1e-5)
        }
        let d = Reference.randomTensor([2, 1, 3, 4], generator: &generator)
        let e = Reference.randomTensor([3, 4, 6], generator: &generator)
        let f = d.matmul(e)
        #expect(f.shape == [2, 3, 3, 6])
        for i in 0..<2 { for j in 0..<3 {
            Reference.expectClose(f.selecting(axis: 0, index: i).selecting(axis: 0, index: j),
                                  Self.naiveProduct(d.selecting(axis: 0, index: i).selecting(axis: 0, index: 0), e.selecting(axis: 0, index: j)),
                                  relative: 1e-4, absolute: 1e-5)
        } }
    }

    @Test func emptyInnerDimensionGivesZeros() {
        let c = Tensor.zeros([3, 0]).matmul(Tensor.zeros([0, 2]))
        #expect(c.shape == [3, 2] && c.scalars == [Float](repeating: 0, count: 6))
    }

    @Test func symmetricEigendecompositionReconstructs() throws {
        var generator = SeededGenerator(seed: 33)
        let x = Tensor.normal([20, 6], generator: &generator)
        let covariance = x.transposed.matmul(x) / 20
        let (values, vectors) = try covariance.symmetricEigendecomposition()
        #expect(values.shape == [6] && vectors.shape == [6, 6])
        #expect(zip(values.scalars, values.scalars.dropFirst()).allSatisfy { $0 <= $1 })
        // A v = λ v for every column, and the columns are orthonormal.
        Reference.expectClose(covariance.matmul(vectors), vectors * values.reshaped([1, 6]), relative: 1e-3, absolute: 1e-4)
        Reference.expectClose(vectors.transposed.matmul(vectors), Self.identity(6), relative: 0, absolute: 1e-4)
        #expect(throws: TensorError.self) { try Tensor.zeros([2, 3]).symmetricEigendecomposition() }
    }

    @Test func singularValueDecompositionReconstructs() throws {
        var generator = SeededGenerator(seed: 34)
        let a = Tensor.normal([7, 4], generator: &generator)
        let (u, s, vt) = try a.singularValueDecomposition()
        #expect(u.shape == [7, 4] && s.shape == [4] && vt.shape == [4, 4])
        #expect(zip(s.scalars, s.scalars.dropFirst()).allSatisfy { $0 >= $1 })
        Reference.expectClose((u * s.reshaped([1, 4])).matmul(vt), a, relative: 1e-3, absolute: 1e-4)
        Reference.expectClose(u.transposed.matmul(u), Self.identity(4), relative: 0, absolute: 1e-4)
    }

    static func identity(_ n: Int) -> Tensor {
        var t = Tensor.zeros([n, n])
        for i in 0..<n { t[i, i] = 1 }
        return t
    }
}
