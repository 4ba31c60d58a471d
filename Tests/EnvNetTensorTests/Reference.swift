import EnvNetTensor
import Foundation
import Testing

/// Plain reference helpers: every expected value in these tests comes from loops over indices,
/// never from the operation under test.
enum Reference {
    /// Every multi-index of `shape` in row-major order.
    static func indices(of shape: [Int]) -> [[Int]] {
        if shape.contains(0) { return [] }
        var result: [[Int]] = []
        var index = [Int](repeating: 0, count: shape.count)
        let total = shape.reduce(1, *)
        for _ in 0..<total {
            result.append(index)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return result
    }

    /// Random shape of `rank` axes with extents in `extents`.
    static func randomShape(rank: Int, extents: ClosedRange<Int>, generator: inout SeededGenerator) -> [Int] {
        (0..<rank).map { _ in Int(generator.next() % UInt64(extents.count)) + extents.lowerBound }
    }

    /// A random tensor of `shape` whose layout is made non-contiguous in a random way when `scrambled`:
    /// built transposed, sliced with a step, or with an offset inside a larger storage.
    static func randomTensor(_ shape: [Int], generator: inout SeededGenerator, scrambled: Bool = true) -> Tensor {
        let plain = Tensor.uniform(shape, in: -2..<2, generator: &generator)
        guard scrambled, shape.count >= 1 else { return plain }
        switch generator.next() % 3 {
        case 0 where shape.count >= 2:
            // Stored with the last two axes exchanged, then viewed back.
            let stored = plain.swappingAxes(-1, -2).contiguousCopy()
            return stored.swappingAxes(-1, -2)
        case 1:
            // Every second element of a buffer twice as long on axis 0, after one leading element.
            var bigShape = shape
            bigShape[0] = shape[0] * 2 + 1
            var big = Tensor.uniform(bigShape, in: -2..<2, generator: &generator)
            for index in indices(of: shape) {
                var target = index
                target[0] = 1 + 2 * index[0]
                big.setElement(plain.element(at: index), at: target)
            }
            return big.sliced(axis: 0, from: 1, to: bigShape[0], step: 2)
        default:
            return plain
        }
    }

    static func close(_ a: Float, _ b: Float, relative: Float = 1e-5, absolute: Float = 1e-5) -> Bool {
        if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
        if a.isInfinite || b.isInfinite { return a == b }
        return Swift.abs(a - b) <= absolute + relative * Swift.abs(b)
    }

    static func expectClose(_ actual: Tensor, _ expected: Tensor, relative: Float = 1e-5, absolute: Float = 1e-5,
                            _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(actual.shape == expected.shape, comment, sourceLocation: sourceLocation)
        guard actual.shape == expected.shape else { return }
        let a = actual.scalars, e = expected.scalars
        var worst = 0, worstError: Float = 0
        for index in a.indices {
            let error = Swift.abs(a[index] - e[index]) - relative * Swift.abs(e[index])
            if !close(a[index], e[index], relative: relative, absolute: absolute), error > worstError || worstError == 0 {
                worst = index
                worstError = Swift.max(error, .leastNonzeroMagnitude)
            }
        }
        #expect(worstError == 0, "element \(worst): \(a.isEmpty ? 0 : a[worst]) vs \(e.isEmpty ? 0 : e[worst]) \(comment.map { "\($0)" } ?? "")",
                sourceLocation: sourceLocation)
    }
}

/// PyTorch fixtures produced by `Tools/make_tensor_fixtures.py`.
struct Fixture: Decodable {
    struct Stored: Decodable {
        let shape: [Int]
        let data: [Float]
        var tensor: Tensor { Tensor(data, shape: shape) }
    }
    struct Case: Decodable {
        let name: String
        let kernel: [Int]
        let stride: [Int]
        let padding: [Int]
        let dilation: [Int]?
        let bias: Bool?
        let indices: [Int]?
        let tensors: [String: Stored]
        func tensor(_ name: String) -> Tensor { tensors[name]!.tensor }
        var geometry: ConvolutionGeometry {
            ConvolutionGeometry(kernel: (kernel[0], kernel[1]), stride: (stride[0], stride[1]), padding: (padding[0], padding[1]),
                                dilation: (dilation?[0] ?? 1, dilation?[1] ?? 1))
        }
    }
    let cases: [Case]

    static func load(_ name: String) throws -> Fixture {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }
}
