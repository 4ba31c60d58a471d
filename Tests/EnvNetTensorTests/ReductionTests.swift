import EnvNetTensor
import Foundation
import Testing

@Suite("Reductions and softmax, against loops")
struct ReductionTests {
    /// Groups the elements of `t` by their position with `axes` removed, in row-major order of the rest.
    static func groups(_ t: Tensor, axes: [Int]) -> (shape: [Int], values: [[Float]]) {
        let kept = t.shape.indices.filter { !axes.contains($0) }
        let keptShape = kept.map { t.shape[$0] }
        var values = [[Float]](repeating: [], count: keptShape.reduce(1, *))
        let keptStrides = Shape.contiguousStrides(keptShape)
        for index in Reference.indices(of: t.shape) {
            let slot = kept.enumerated().reduce(0) { $0 + index[$1.element] * keptStrides[$1.offset] }
            values[slot].append(t.element(at: index))
        }
        return (keptShape, values)
    }

    @Test func reductionsOverRandomAxes() {
        var generator = SeededGenerator(seed: 21)
        for _ in 0..<40 {
            let shape = Reference.randomShape(rank: 3, extents: 1...5, generator: &generator)
            let t = Reference.randomTensor(shape, generator: &generator)
            let axes = [0, 1, 2].filter { _ in generator.next() % 2 == 0 }
            let (keptShape, groups) = Self.groups(t, axes: axes)
            let sum = t.sum(alongAxes: axes)
            #expect(sum.shape == keptShape)
            Reference.expectClose(sum, Tensor(groups.map { Float($0.reduce(0.0) { $0 + Double($1) }) }, shape: keptShape))
            Reference.expectClose(t.mean(alongAxes: axes), Tensor(groups.map { Float($0.reduce(0.0) { $0 + Double($1) } / Double($0.count)) }, shape: keptShape))
            #expect(t.max(alongAxes: axes).scalars == groups.map { $0.max()! })
            #expect(t.min(alongAxes: axes).scalars == groups.map { $0.min()! })
            let variance = groups.map { values -> Float in
                let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
                let squares = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) }
                return Float(squares / Double(values.count))
            }
            Reference.expectClose(t.variance(alongAxes: axes), Tensor(variance, shape: keptShape), relative: 1e-4)
            // Keep-dims puts extent-1 axes where the reduced ones were.
            let kept = t.sum(alongAxes: axes, keepingDimensions: true)
            #expect(kept.shape == shape.indices.map { axes.contains($0) ? 1 : shape[$0] })
            #expect(kept.scalars == sum.scalars)
        }
    }

    @Test func unbiasedVarianceDividesByNMinusOne() {
        let t = Tensor([1, 2, 3, 4], shape: [4])
        #expect(t.variance().scalar == 1.25)
        #expect(Swift.abs(t.variance(unbiased: true).scalar - 5.0 / 3.0) < 1e-6)
    }

    @Test func argmaxTakesTheFirstLargest() {
        let t = Tensor([1, 5, 5, 0, 7, 2, 3, 3, 3], shape: [3, 3])
        #expect(t.argmax(axis: 1).indices == [1, 1, 0])
        #expect(t.argmax(axis: 0).indices == [2, 1, 0])
        #expect(t.argmax(axis: -1, keepingDimensions: true).shape == [3, 1])
        var generator = SeededGenerator(seed: 22)
        let r = Reference.randomTensor([4, 6, 3], generator: &generator)
        let (indices, shape) = r.argmax(axis: 1)
        #expect(shape == [4, 3])
        for (slot, index) in Reference.indices(of: [4, 3]).enumerated() {
            let column = (0..<6).map { r[index[0], $0, index[1]] }
            #expect(indices[slot] == column.firstIndex(of: column.max()!)!)
        }
    }

    @Test func softmaxIsStableAndNormalised() {
        let logits = Tensor([1000, 1001, 1002, -1000, 0, 1000], shape: [2, 3])
        let p = logits.softmax(axis: 1)
        #expect(p.scalars.allSatisfy { $0.isFinite })
        let e: [Double] = [exp(-2), exp(-1), 1]
        let total = e.reduce(0, +)
        Reference.expectClose(p.selecting(axis: 0, index: 0), Tensor(e.map { Float($0 / total) }))
        Reference.expectClose(p.selecting(axis: 0, index: 1), Tensor([0, 0, 1]))
        let logP = logits.logSoftmax(axis: 1)
        #expect(logP.scalars.allSatisfy { $0.isFinite })
        Reference.expectClose(logP.selecting(axis: 0, index: 0), Tensor(e.map { Float(log($0 / total)) }))
        #expect(Swift.abs(logP[1, 0] - -2000) < 1e-3)
    }

    @Test func softmaxAlongAnInnerAxisOfAView() {
        var generator = SeededGenerator(seed: 23)
        let t = Reference.randomTensor([3, 4, 2], generator: &generator)
        let p = t.softmax(axis: 1)
        #expect(p.shape == [3, 4, 2])
        for i in 0..<3 {
            for k in 0..<2 {
                let column = (0..<4).map { Double(t[i, $0, k]) }
                let largest = column.max()!
                let total = column.reduce(0) { $0 + exp($1 - largest) }
                for j in 0..<4 {
                    #expect(Reference.close(p[i, j, k], Float(exp(column[j] - largest) / total)))
                    #expect(Reference.close(t.logSoftmax(axis: 1)[i, j, k], Float(column[j] - largest - log(total)), absolute: 1e-5))
                }
            }
        }
    }
}
