import EnvNetTensor
import Testing

@Suite("Tensor creation, storage and copy-on-write")
struct TensorCoreTests {
    @Test func creationFillsEveryElement() {
        #expect(Tensor.zeros([2, 3]).scalars == [Float](repeating: 0, count: 6))
        #expect(Tensor.ones([4]).scalars == [1, 1, 1, 1])
        #expect(Tensor.filled(2.5, shape: [1, 2]).scalars == [2.5, 2.5])
        let t = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        #expect(t.shape == [2, 3] && t.strides == [3, 1] && t.count == 6 && t.rank == 2)
        #expect(t[1, 2] == 6 && t[0, 1] == 2)
        #expect(Tensor(scalar: 3).scalar == 3 && Tensor(scalar: 3).rank == 0)
        #expect(Tensor.zeros([0, 3]).count == 0 && Tensor.zeros([0, 3]).scalars.isEmpty)
    }

    @Test func rangesFollowNumPy() {
        #expect(Tensor.range(to: 5).scalars == [0, 1, 2, 3, 4])
        #expect(Tensor.range(from: 1, to: 2, step: 0.25).scalars == [1, 1.25, 1.5, 1.75])
        #expect(Tensor.range(from: 3, to: 0, step: -1).scalars == [3, 2, 1])
        #expect(Tensor.range(from: 3, to: 3).count == 0)
    }

    @Test func wrongValueCountIsATypedError() {
        #expect(throws: TensorError.self) { try Tensor(validating: [1, 2, 3], shape: [2, 2]) }
        do {
            _ = try Tensor(validating: [1, 2, 3], shape: [2, 2])
        } catch {
            #expect("\(error)".contains("[2, 2]") && "\(error)".contains("3 values"))
        }
    }

    @Test func copiesNeverSeeEachOthersWrites() {
        var a = Tensor([1, 2, 3, 4], shape: [2, 2])
        var b = a
        b[0, 0] = 10
        #expect(a[0, 0] == 1 && b[0, 0] == 10)
        a[1, 1] = 20
        #expect(b[1, 1] == 4 && a[1, 1] == 20)
        // A view shares storage until written.
        var view = a.transposed
        #expect(view.storage === a.storage)
        view[0, 1] = 99
        #expect(a[1, 0] == 3 && view[0, 1] == 99)
        // In-place arithmetic on a copy leaves the original alone.
        var c = a
        c += Tensor.ones([2, 2])
        #expect(a.scalars == [1, 2, 3, 20] && c.scalars == [2, 3, 4, 21])
    }

    @Test func uniqueStorageIsWrittenInPlace() {
        var a = Tensor.zeros([3])
        // ObjectIdentifier holds no reference, so it does not itself make the storage shared.
        let before = ObjectIdentifier(a.storage)
        a[1] = 5
        a += 1
        #expect(ObjectIdentifier(a.storage) == before)
        #expect(a.scalars == [1, 6, 1])
    }

    @Test func writingThroughABroadcastViewMaterialisesIt() {
        var view = Tensor([1, 2], shape: [1, 2]).expanded(to: [3, 2])
        view[0, 0] = 7
        #expect(view.scalars == [7, 2, 1, 2, 1, 2])
    }

    @Test func seededGeneratorMatchesAnIndependentImplementation() {
        // xoshiro256** seeded by SplitMix64(42), computed by a Python implementation of the published algorithm.
        var generator = SeededGenerator(seed: 42)
        let expected: [UInt64] = [1546998764402558742, 6990951692964543102, 12544586762248559009, 17057574109182124193]
        #expect((0..<4).map { _ in generator.next() } == expected)
    }

    @Test func randomTensorsAreReproducibleAndDistributedAsAsked() {
        var g1 = SeededGenerator(seed: 7), g2 = SeededGenerator(seed: 7), g3 = SeededGenerator(seed: 8)
        let a = Tensor.normal([10_000], mean: 1, standardDeviation: 2, generator: &g1)
        let b = Tensor.normal([10_000], mean: 1, standardDeviation: 2, generator: &g2)
        let c = Tensor.normal([10_000], mean: 1, standardDeviation: 2, generator: &g3)
        #expect(a == b && a != c)
        #expect(Swift.abs(a.mean().scalar - 1) < 0.06)
        #expect(Swift.abs(a.variance().scalar.squareRoot() - 2) < 0.06)
        let u = Tensor.uniform([10_000], in: -3..<5, generator: &g1)
        #expect(u.min().scalar >= -3 && u.max().scalar < 5)
        #expect(Swift.abs(u.mean().scalar - 1) < 0.1)
    }

    @Test func generatorStateRoundTrips() {
        var generator = SeededGenerator(seed: 3)
        _ = generator.next()
        var restored = SeededGenerator(seed: 0)
        restored.stateWords = generator.stateWords
        #expect(restored.next() == generator.next())
    }

    @Test func misuseMessagesNameTheShapesAndAxes() {
        #expect(throws: TensorError.shapeMismatch(operation: "+", message: "shapes [2, 3] and [4] do not broadcast")) {
            try Shape.broadcast([2, 3], [4], operation: "+")
        }
        #expect(throws: TensorError.invalidAxis(operation: "sum", message: "axis 3 is out of range for rank 2")) {
            try Shape.normalize(axis: 3, rank: 2, operation: "sum")
        }
        #expect(throws: TensorError.self) { try ConvolutionGeometry(kernel: (1, 8)).outputSize(height: 1, width: 5) }
    }

    @Test func broadcastShapesFollowNumPy() throws {
        #expect(try Shape.broadcast([2, 1, 3], [4, 1]) == [2, 4, 3])
        #expect(try Shape.broadcast([], [3]) == [3])
        #expect(try Shape.broadcast([0, 1], [1, 5]) == [0, 5])
    }
}
