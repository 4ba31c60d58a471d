import EnvNetTensor
import Foundation
import Testing

@Suite("Element-wise arithmetic with broadcasting, against loops")
struct ElementwiseTests {
    /// Right-aligned broadcast of an index into an operand's shape.
    static func project(_ index: [Int], onto shape: [Int]) -> [Int] {
        let lead = index.count - shape.count
        return shape.indices.map { shape[$0] == 1 ? 0 : index[lead + $0] }
    }

    static func randomBroadcastPair(generator: inout SeededGenerator) -> ([Int], [Int]) {
        let rank = Int(generator.next() % 4) + 1
        let full = Reference.randomShape(rank: rank, extents: 0...4, generator: &generator)
        var left = full, right = full
        for axis in 0..<rank {
            switch generator.next() % 4 {
            case 0: left[axis] = 1
            case 1: right[axis] = 1
            default: break
            }
        }
        let dropped = Int(generator.next() % UInt64(rank))
        return (left, Array(right.dropFirst(dropped)))
    }

    @Test(arguments: ["+", "-", "*", "/", "max", "min"])
    func binaryOperationsBroadcastOnRandomLayouts(_ name: String) throws {
        let reference: (Float, Float) -> Float = switch name {
        case "+": { $0 + $1 }
        case "-": { $0 - $1 }
        case "*": { $0 * $1 }
        case "/": { $0 / $1 }
        case "max": { Swift.max($0, $1) }
        default: { Swift.min($0, $1) }
        }
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<60 {
            let (leftShape, rightShape) = Self.randomBroadcastPair(generator: &generator)
            let a = Reference.randomTensor(leftShape, generator: &generator)
            let b = Reference.randomTensor(rightShape, generator: &generator)
            let result: Tensor = switch name {
            case "+": a + b
            case "-": a - b
            case "*": a * b
            case "/": a / b
            case "max": a.maximum(b)
            default: a.minimum(b)
            }
            let shape = try Shape.broadcast(leftShape, rightShape)
            #expect(result.shape == shape)
            let expected = Reference.indices(of: shape).map {
                reference(a.element(at: Self.project($0, onto: leftShape)), b.element(at: Self.project($0, onto: rightShape)))
            }
            #expect(result.scalars == expected, "\(leftShape) \(name) \(rightShape)")
        }
    }

    @Test func inPlaceOperationsBroadcastTheRightOperand() {
        var generator = SeededGenerator(seed: 12)
        for _ in 0..<40 {
            let shape = Reference.randomShape(rank: 3, extents: 1...4, generator: &generator)
            var rightShape = shape
            rightShape[Int(generator.next() % 3)] = 1
            let original = Reference.randomTensor(shape, generator: &generator)
            let b = Reference.randomTensor(rightShape, generator: &generator)
            var a = original
            a += b
            a *= b
            a -= 0.5
            a /= 2
            let expected = Reference.indices(of: shape).map { index -> Float in
                let y = b.element(at: Self.project(index, onto: rightShape))
                return ((original.element(at: index) + y) * y - 0.5) / 2
            }
            #expect(a.scalars == expected)
            #expect(original.scalars == Reference.indices(of: shape).map { original.element(at: $0) })
        }
    }

    @Test func inPlaceUpdateOfAViewWithItself() {
        var t = Tensor([1, 2, 3, 4], shape: [2, 2])
        t += t.transposed
        #expect(t.scalars == [2, 5, 5, 8])
    }

    @Test func scalarFormsAndUnaryFunctions() {
        var generator = SeededGenerator(seed: 13)
        let t = Reference.randomTensor([3, 5], generator: &generator)
        let values = Reference.indices(of: [3, 5]).map { t.element(at: $0) }
        #expect((t + 1).scalars == values.map { $0 + 1 })
        #expect((2 - t).scalars == values.map { 2 - $0 })
        #expect((t * 3).scalars == values.map { $0 * 3 })
        #expect((1 / t).scalars == values.map { 1 / $0 })
        #expect((-t).scalars == values.map { -$0 })
        #expect(t.relu().scalars == values.map { Swift.max($0, 0) })
        #expect(t.exp().scalars == values.map { Foundation.exp($0) })
        #expect(t.abs().log().scalars == values.map { Foundation.log(Swift.abs($0)) })
        #expect(t.abs().sqrt().scalars == values.map { Swift.abs($0).squareRoot() })
        #expect(t.clamped(to: -0.5...0.5).scalars == values.map { Swift.min(Swift.max($0, -0.5), 0.5) })
        #expect(t.squared().scalars == values.map { $0 * $0 })
    }

    @Test func emptyOperandsGiveEmptyResults() {
        let empty = Tensor.zeros([0, 3])
        #expect((empty + Tensor.ones([3])).shape == [0, 3])
        #expect(empty.relu().shape == [0, 3])
        var e = empty
        e += 1
        #expect(e.shape == [0, 3])
    }
}
