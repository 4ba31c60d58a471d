import EnvNetTensor
import Testing

@Suite("Views without copies, against index arithmetic")
struct ViewTests {
    @Test func reshapeIsAViewWhenTheLayoutAllows() {
        var generator = SeededGenerator(seed: 1)
        let t = Tensor.uniform([2, 3, 4], in: 0..<1, generator: &generator)
        let r = t.reshaped([6, -1])
        #expect(r.shape == [6, 4] && r.storage === t.storage)
        #expect(r.scalars == t.scalars)
        // A slice along the outer axis stays viewable; a transposed tensor needs a copy.
        let sliced = t.narrowed(axis: 0, start: 1, length: 1).reshaped([3, 4])
        #expect(sliced.storage === t.storage && sliced.scalars == Array(t.scalars[12..<24]))
        let transposed = t.transposed.reshaped([24])
        #expect(transposed.storage !== t.storage)
        #expect(transposed.scalars == Reference.indices(of: [2, 4, 3]).map { t[$0[0], $0[2], $0[1]] })
        // Extent-1 axes and merges of consecutive axes inside a permuted tensor.
        let permuted = t.permuted([0, 2, 1]).unsqueezed(axis: 1)
        let merged = permuted.reshaped([2, 1, 4, 3, 1])
        #expect(merged.storage === t.storage)
        #expect(merged.scalars == permuted.scalars)
    }

    @Test func reshapeMatchesRowMajorOrderOnRandomLayouts() {
        var generator = SeededGenerator(seed: 2)
        for _ in 0..<50 {
            let shape = Reference.randomShape(rank: 3, extents: 1...4, generator: &generator)
            let t = Reference.randomTensor(shape, generator: &generator)
            let flat = t.reshaped([-1])
            #expect(flat.scalars == Reference.indices(of: shape).map { t.element(at: $0) })
            let split = t.reshaped([shape[0] * shape[1], shape[2]])
            #expect(split.scalars == flat.scalars)
        }
    }

    @Test func permuteTransposeAndSwapMoveIndices() {
        var generator = SeededGenerator(seed: 3)
        let t = Reference.randomTensor([2, 3, 4, 5], generator: &generator)
        let p = t.permuted([3, 1, 0, 2])
        #expect(p.shape == [5, 3, 2, 4] && p.storage === t.storage)
        for index in Reference.indices(of: p.shape) {
            #expect(p.element(at: index) == t[index[2], index[1], index[3], index[0]])
        }
        let s = t.swappingAxes(0, -1)
        for index in Reference.indices(of: s.shape) {
            #expect(s.element(at: index) == t[index[3], index[1], index[2], index[0]])
        }
        let m = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]).transposed
        #expect(m.shape == [3, 2] && m.scalars == [1, 4, 2, 5, 3, 6])
    }

    @Test func slicesWithStepsAndNarrowing() {
        var generator = SeededGenerator(seed: 4)
        let t = Reference.randomTensor([7, 5], generator: &generator)
        let s = t.sliced(axis: 0, from: 1, to: 7, step: 3)
        #expect(s.shape == [2, 5])
        for index in Reference.indices(of: s.shape) { #expect(s.element(at: index) == t[1 + 3 * index[0], index[1]]) }
        let n = t.narrowed(axis: 1, start: 2, length: 3)
        for index in Reference.indices(of: n.shape) { #expect(n.element(at: index) == t[index[0], index[1] + 2]) }
        let empty = t.sliced(axis: 1, from: 5, to: 5)
        #expect(empty.shape == [7, 0] && empty.scalars.isEmpty)
        let row = t.selecting(axis: 0, index: 4)
        #expect(row.shape == [5] && row.scalars == (0..<5).map { t[4, $0] })
        // Slices of slices compose.
        let twice = s.sliced(axis: 1, from: 0, to: 5, step: 2)
        for index in Reference.indices(of: twice.shape) { #expect(twice.element(at: index) == t[1 + 3 * index[0], 2 * index[1]]) }
    }

    @Test func squeezeAndUnsqueeze() {
        let t = Tensor.range(to: 6).reshaped([1, 2, 1, 3])
        #expect(t.squeezed().shape == [2, 3])
        #expect(t.squeezed(axes: [2]).shape == [1, 2, 3])
        #expect(t.squeezed(axes: [-4]).shape == [2, 1, 3])
        let u = t.squeezed().unsqueezed(axis: 1)
        #expect(u.shape == [2, 1, 3] && u.scalars == t.scalars)
        #expect(t.squeezed().unsqueezed(axis: -1).shape == [2, 3, 1])
    }

    @Test func expansionRepeatsWithStrideZero() {
        let column = Tensor([1, 2, 3], shape: [3, 1])
        let e = column.expanded(to: [2, 3, 4])
        #expect(e.strides[0] == 0 && e.strides[2] == 0 && e.storage === column.storage)
        for index in Reference.indices(of: e.shape) { #expect(e.element(at: index) == Float(index[1] + 1)) }
        #expect(e.contiguous().isContiguous && e.contiguous().scalars == e.scalars)
    }

    @Test func contiguousCopiesOnlyWhenNeeded() {
        var generator = SeededGenerator(seed: 5)
        let t = Tensor.uniform([3, 4], in: 0..<1, generator: &generator)
        #expect(t.contiguous().storage === t.storage)
        let c = t.transposed.contiguous()
        #expect(c.storage !== t.storage && c.isContiguous && c.strides == [3, 1])
        #expect(c.scalars == t.transposed.scalars)
    }
}
