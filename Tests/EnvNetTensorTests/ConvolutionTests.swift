import CEnvNetSupport
import EnvNetTensor
import Testing

/// Direct convolution by its definition, in Double, on flat arrays.
enum NaiveConvolution {
    static func output(height: Int, width: Int, _ g: ConvolutionGeometry) -> (Int, Int) {
        ((height + 2 * g.paddingHeight - g.dilationHeight * (g.kernelHeight - 1) - 1) / g.strideHeight + 1,
         (width + 2 * g.paddingWidth - g.dilationWidth * (g.kernelWidth - 1) - 1) / g.strideWidth + 1)
    }

    /// Calls `body(n, o, oh, ow, c, i, j, inputIndex)` for every tap that lands inside the input.
    static func forEachTap(input: [Int], outputChannels: Int, _ g: ConvolutionGeometry, _ body: (Int, Int, Int, Int, Int, Int, Int, Int) -> Void) {
        let (n, c, h, w) = (input[0], input[1], input[2], input[3])
        let (oh, ow) = output(height: h, width: w, g)
        for b in 0..<n { for o in 0..<outputChannels { for y in 0..<oh { for x in 0..<ow {
            for ch in 0..<c { for i in 0..<g.kernelHeight { for j in 0..<g.kernelWidth {
                let iy = y * g.strideHeight - g.paddingHeight + i * g.dilationHeight
                let ix = x * g.strideWidth - g.paddingWidth + j * g.dilationWidth
                if iy >= 0 && iy < h && ix >= 0 && ix < w {
                    body(b, o, y, x, ch, i, j, ((b * c + ch) * h + iy) * w + ix)
                }
            } } }
        } } } }
    }

    static func forward(input: Tensor, weight: Tensor, bias: Tensor?, _ g: ConvolutionGeometry) -> Tensor {
        let x = input.scalars, wt = weight.scalars, o = weight.shape[0], c = input.shape[1]
        let (oh, ow) = output(height: input.shape[2], width: input.shape[3], g)
        var y = [Double](repeating: 0, count: input.shape[0] * o * oh * ow)
        forEachTap(input: input.shape, outputChannels: o, g) { b, oc, yy, xx, ch, i, j, inputIndex in
            y[((b * o + oc) * oh + yy) * ow + xx] += Double(x[inputIndex]) * Double(wt[((oc * c + ch) * g.kernelHeight + i) * g.kernelWidth + j])
        }
        if let bias {
            for index in y.indices { y[index] += Double(bias.scalars[(index / (oh * ow)) % o]) }
        }
        return Tensor(y.map { Float($0) }, shape: [input.shape[0], o, oh, ow])
    }

    static func backward(input: Tensor, weight: Tensor, gradient: Tensor, _ g: ConvolutionGeometry) -> (input: Tensor, weight: Tensor, bias: Tensor) {
        let x = input.scalars, wt = weight.scalars, dy = gradient.scalars, o = weight.shape[0], c = input.shape[1]
        let (oh, ow) = (gradient.shape[2], gradient.shape[3])
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: wt.count)
        forEachTap(input: input.shape, outputChannels: o, g) { b, oc, yy, xx, ch, i, j, inputIndex in
            let upstream = Double(dy[((b * o + oc) * oh + yy) * ow + xx])
            let weightIndex = ((oc * c + ch) * g.kernelHeight + i) * g.kernelWidth + j
            dx[inputIndex] += upstream * Double(wt[weightIndex])
            dw[weightIndex] += upstream * Double(x[inputIndex])
        }
        var db = [Double](repeating: 0, count: o)
        for index in dy.indices { db[(index / (oh * ow)) % o] += Double(dy[index]) }
        return (Tensor(dx.map { Float($0) }, shape: input.shape), Tensor(dw.map { Float($0) }, shape: weight.shape), Tensor(db.map { Float($0) }, shape: [o]))
    }
}

@Suite("Convolution and pooling kernels")
struct ConvolutionTests {
    static func randomGeometry(generator: inout SeededGenerator) -> ConvolutionGeometry {
        func pick(_ range: ClosedRange<Int>) -> Int { Int(generator.next() % UInt64(range.count)) + range.lowerBound }
        return ConvolutionGeometry(kernel: (pick(1...3), pick(1...4)), stride: (pick(1...2), pick(1...3)),
                                   padding: (pick(0...2), pick(0...2)), dilation: (pick(1...2), pick(1...2)))
    }

    @Test func randomGeometriesAgreeWithTheDirectConvolution() throws {
        var generator = SeededGenerator(seed: 41)
        var tested = 0
        while tested < 60 {
            let g = Self.randomGeometry(generator: &generator)
            // Every third case has enough input channels for the unit-stride transposed path of backwardInput.
            let channels = tested % 3 == 0 ? 8 + Int(generator.next() % 3) : Int(generator.next() % 3) + 1
            let shape = [Int(generator.next() % 3) + 1, channels, Int(generator.next() % 6) + 1, Int(generator.next() % 9) + 1]
            guard (try? g.outputSize(height: shape[2], width: shape[3])) != nil else { continue }
            tested += 1
            let outputChannels = Int(generator.next() % 3) + 1
            let input = Reference.randomTensor(shape, generator: &generator)
            let weight = Tensor.uniform([outputChannels, shape[1], g.kernelHeight, g.kernelWidth], in: -1..<1, generator: &generator)
            let bias = Tensor.uniform([outputChannels], in: -1..<1, generator: &generator)
            let output = Convolution.forward(input: input, weight: weight, bias: bias, geometry: g)
            Reference.expectClose(output, NaiveConvolution.forward(input: input, weight: weight, bias: bias, g), relative: 1e-4, absolute: 1e-5, "\(g) \(shape)")
            let gradient = Reference.randomTensor(output.shape, generator: &generator)
            let expected = NaiveConvolution.backward(input: input, weight: weight, gradient: gradient, g)
            let gradientInput = Convolution.backwardInput(gradientOutput: gradient, weight: weight, inputShape: shape, geometry: g)
            Reference.expectClose(gradientInput, expected.input, relative: 1e-4, absolute: 1e-5, "\(g) \(shape)")
            let (gradientWeight, gradientBias) = Convolution.backwardWeight(gradientOutput: gradient, input: input, geometry: g)
            Reference.expectClose(gradientWeight, expected.weight, relative: 1e-4, absolute: 1e-4, "\(g) \(shape)")
            Reference.expectClose(gradientBias, expected.bias, relative: 1e-4, absolute: 1e-4)
        }
    }

    @Test func manyTilesPerImageAtEnvNetLikeWidths() {
        // 40 channels x 1x8 taps = 320 column rows: the positions span several tiles.
        var generator = SeededGenerator(seed: 42)
        let g = ConvolutionGeometry(kernel: (1, 8))
        let input = Tensor.uniform([2, 40, 1, 2007], in: -1..<1, generator: &generator)
        let weight = Tensor.uniform([3, 40, 1, 8], in: -0.2..<0.2, generator: &generator)
        let output = Convolution.forward(input: input, weight: weight, geometry: g)
        Reference.expectClose(output, NaiveConvolution.forward(input: input, weight: weight, bias: nil, g), relative: 1e-4, absolute: 1e-4)
        let gradient = Tensor.uniform(output.shape, in: -1..<1, generator: &generator)
        let expected = NaiveConvolution.backward(input: input, weight: weight, gradient: gradient, g)
        Reference.expectClose(Convolution.backwardInput(gradientOutput: gradient, weight: weight, inputShape: input.shape, geometry: g),
                              expected.input, relative: 1e-4, absolute: 1e-4)
        Reference.expectClose(Convolution.backwardWeight(gradientOutput: gradient, input: input, geometry: g).weight,
                              expected.weight, relative: 1e-3, absolute: 1e-3)
    }

    @Test("1x8 convolutions with 20 or 40 output channels (Winograd F(4, 8) on AVX-512) agree with the direct convolution",
          arguments: [(8, 20, 0, 1), (40, 40, 0, 2007), (40, 40, 7, 130), (12, 20, 4, 64), (40, 20, 0, 71), (40, 40, 3, 300)])
    func winogradShapesAgreeWithTheDirectConvolution(channels: Int, outputChannels: Int, padding: Int, outputWidth: Int) {
        var generator = SeededGenerator(seed: UInt64(channels * 1000 + outputWidth))
        let g = ConvolutionGeometry(kernel: (1, 8), padding: (0, padding))
        let width = outputWidth + 7 - 2 * padding
        // ReLU-like inputs and He-scaled weights, as in EnvNet's conv2.
        let input = Tensor.uniform([3, channels, 1, width], in: 0..<2, generator: &generator)
        let weight = Tensor.normal([outputChannels, channels, 1, 8], standardDeviation: (2 / Float(channels * 8)).squareRoot(), generator: &generator)
        let bias = Tensor.uniform([outputChannels], in: -1..<1, generator: &generator)
        let output = Convolution.forward(input: input, weight: weight, bias: bias, geometry: g)
        #expect(output.shape == [3, outputChannels, 1, outputWidth])
        let expected = NaiveConvolution.forward(input: input, weight: weight, bias: bias, g)
        // Winograd's transforms round differently from a direct sum: a few 1e-6 of the outputs' scale.
        let scale = expected.scalars.map(abs).max() ?? 1
        let difference = zip(output.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(difference <= 2e-5 * scale, "largest difference \(difference) at scale \(scale)")
        // The input gradient is the same kind of convolution (padding 7 - padding, channels exchanged).
        let gradient = Tensor.uniform(output.shape, in: -1..<1, generator: &generator)
        let reference = NaiveConvolution.backward(input: input, weight: weight, gradient: gradient, g).input
        let gradientInput = Convolution.backwardInput(gradientOutput: gradient, weight: weight, inputShape: input.shape, geometry: g)
        let gradientScale = reference.scalars.map(abs).max() ?? 1
        let gradientDifference = zip(gradientInput.scalars, reference.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(gradientDifference <= 2e-5 * gradientScale, "input gradient: \(gradientDifference) at scale \(gradientScale)")
    }

    @Test("In bf16 the forward pass and both gradients equal the direct sums of the bf16-rounded operands (Winograd, im2col, strided and tall kernels)",
          arguments: [(40, 40, 1, 8, 1, 3, 300), (1, 40, 1, 8, 1, 0, 200), (1, 50, 8, 13, 1, 0, 60), (50, 50, 1, 5, 1, 0, 90), (8, 16, 1, 8, 2, 2, 75),
                      (8, 12, 1, 8, 1, 4, 4500)])
    func bfloat16AgreesWithTheRoundedDirectConvolution(channels: Int, outputChannels: Int, kernelHeight: Int, kernelWidth: Int,
                                                        stride: Int, padding: Int, width: Int) {
        var options = ExecutionOptions.current
        options.precision = .bfloat16
        let runs = options.matrixPrecision == .bfloat16
        var generator = SeededGenerator(seed: UInt64(channels * 100 + kernelHeight * 10 + width))
        let g = ConvolutionGeometry(kernel: (kernelHeight, kernelWidth), stride: (1, stride), padding: (0, padding))
        let height = kernelHeight == 1 ? 1 : kernelHeight + 5
        let input = Tensor.uniform([2, channels, height, width], in: 0..<2, generator: &generator)
        let weight = Tensor.normal([outputChannels, channels, kernelHeight, kernelWidth],
                                   standardDeviation: (2 / Float(channels * kernelHeight * kernelWidth)).squareRoot(), generator: &generator)
        let bias = Tensor.uniform([outputChannels], in: -1..<1, generator: &generator)
        let (output, gradientInput, gradientWeight, gradient) = ExecutionOptions.withOptions(options) { () -> (Tensor, Tensor, Tensor, Tensor) in
            let output = Convolution.forward(input: input, weight: weight, bias: bias, geometry: g)
            var gradientGenerator = SeededGenerator(seed: 3)
            let gradient = Tensor.uniform(output.shape, in: -1..<1, generator: &gradientGenerator)
            return (output, Convolution.backwardInput(gradientOutput: gradient, weight: weight, inputShape: input.shape, geometry: g),
                    Convolution.backwardWeight(gradientOutput: gradient, input: input, geometry: g).weight, gradient)
        }
        func rounded(_ t: Tensor) -> Tensor { runs ? BFloat16Matmul.rounded(t) : t }
        func difference(_ value: Tensor, _ reference: Tensor) -> Float {
            let scale = reference.scalars.map(abs).max() ?? 1
            return (zip(value.scalars, reference.scalars).map { abs($0 - $1) }.max() ?? 0) / scale
        }
        let expected = NaiveConvolution.forward(input: rounded(input), weight: rounded(weight), bias: bias, g)
        #expect(difference(output, expected) <= 2e-5, "forward: \(difference(output, expected))")
        let backward = NaiveConvolution.backward(input: rounded(input), weight: rounded(weight), gradient: rounded(gradient), g)
        #expect(difference(gradientInput, backward.input) <= 2e-5, "input gradient: \(difference(gradientInput, backward.input))")
        #expect(difference(gradientWeight, backward.weight) <= 2e-5, "weight gradient: \(difference(gradientWeight, backward.weight))")
        if runs {
            // Negative control: the unrounded sums are measurably different.
            let exact = NaiveConvolution.forward(input: input, weight: weight, bias: bias, g)
            #expect(difference(output, exact) > 1e-4, "forward equals fp32: the operands were not rounded")
        }
    }

    @Test func im2colMatchesItsDefinitionAndCol2imIsItsAdjoint() {
        var generator = SeededGenerator(seed: 43)
        for _ in 0..<20 {
            let g = Self.randomGeometry(generator: &generator)
            let (c, h, w) = (2, Int(generator.next() % 5) + 3, Int(generator.next() % 7) + 5)
            guard let out = try? g.outputSize(height: h, width: w) else { continue }
            let image = Reference.randomTensor([c, h, w], generator: &generator)
            let columns = Convolution.im2col(image, geometry: g)
            #expect(columns.shape == [c * g.kernelHeight * g.kernelWidth, out.height * out.width])
            for index in Reference.indices(of: columns.shape) {
                let (row, position) = (index[0], index[1])
                let ch = row / (g.kernelHeight * g.kernelWidth), i = (row / g.kernelWidth) % g.kernelHeight, j = row % g.kernelWidth
                let iy = (position / out.width) * g.strideHeight - g.paddingHeight + i * g.dilationHeight
                let ix = (position % out.width) * g.strideWidth - g.paddingWidth + j * g.dilationWidth
                let expected: Float = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? image[ch, iy, ix] : 0
                #expect(columns.element(at: index) == expected)
            }
            // <im2col(x), y> == <x, col2im(y)> for random y.
            let y = Tensor.uniform(columns.shape, in: -1..<1, generator: &generator)
            let back = Convolution.col2im(y, channels: c, height: h, width: w, geometry: g)
            let left = (columns * y).sum().scalar, right = (image * back).sum().scalar
            #expect(Reference.close(left, right, relative: 1e-4, absolute: 1e-4))
        }
    }

    @Test func pyTorchFixtures() throws {
        let fixture = try Fixture.load("convolution")
        #expect(fixture.cases.count == 7)
        for item in fixture.cases {
            let g = item.geometry
            let input = item.tensor("input"), weight = item.tensor("weight")
            let bias = item.bias == true ? item.tensor("bias") : nil
            Reference.expectClose(Convolution.forward(input: input, weight: weight, bias: bias, geometry: g), item.tensor("output"),
                                  relative: 1e-4, absolute: 1e-5, "\(item.name)")
            let gradient = item.tensor("gradient_output")
            Reference.expectClose(Convolution.backwardInput(gradientOutput: gradient, weight: weight, inputShape: input.shape, geometry: g),
                                  item.tensor("gradient_input"), relative: 1e-4, absolute: 1e-5, "\(item.name)")
            let grads = Convolution.backwardWeight(gradientOutput: gradient, input: input, geometry: g)
            Reference.expectClose(grads.weight, item.tensor("gradient_weight"), relative: 1e-4, absolute: 1e-4, "\(item.name)")
            if bias != nil { Reference.expectClose(grads.bias, item.tensor("gradient_bias"), relative: 1e-4, absolute: 1e-4, "\(item.name)") }
        }
    }

    @Test func outputBuffersAreReusedAndGradientsAccumulate() {
        var generator = SeededGenerator(seed: 44)
        let g = ConvolutionGeometry(kernel: (1, 3), padding: (0, 1))
        let input = Tensor.uniform([2, 3, 1, 10], in: -1..<1, generator: &generator)
        let weight = Tensor.uniform([4, 3, 1, 3], in: -1..<1, generator: &generator)
        var output = Tensor.zeros([2, 4, 1, 10])
        let storage = ObjectIdentifier(output.storage)
        Convolution.forward(input: input, weight: weight, bias: nil, geometry: g, into: &output)
        #expect(ObjectIdentifier(output.storage) == storage)
        Reference.expectClose(output, NaiveConvolution.forward(input: input, weight: weight, bias: nil, g), relative: 1e-4, absolute: 1e-5)
        let gradient = Tensor.uniform(output.shape, in: -1..<1, generator: &generator)
        var accumulated = Tensor.ones(weight.shape)
        Convolution.backwardWeight(gradientOutput: gradient, input: input, geometry: g, accumulatingInto: &accumulated)
        Reference.expectClose(accumulated, NaiveConvolution.backward(input: input, weight: weight, gradient: gradient, g).weight + 1, relative: 1e-4, absolute: 1e-4)
    }

    @Test func emptyBatchesAndChannels() {
        let g = ConvolutionGeometry(kernel: (1, 2))
        #expect(Convolution.forward(input: Tensor.zeros([0, 2, 1, 5]), weight: Tensor.zeros([3, 2, 1, 2]), geometry: g).shape == [0, 3, 1, 4])
        let noChannels = Convolution.forward(input: Tensor.zeros([1, 0, 1, 5]), weight: Tensor.zeros([3, 0, 1, 2]), geometry: g)
        #expect(noChannels.shape == [1, 3, 1, 4] && noChannels.scalars.allSatisfy { $0 == 0 })
    }

    // MARK: - Pooling

    static func naivePool(_ input: Tensor, _ g: ConvolutionGeometry) -> (Tensor, [Int32]) {
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (oh, ow) = NaiveConvolution.output(height: h, width: w, g)
        var values: [Float] = [], indices: [Int32] = []
        for b in 0..<n { for ch in 0..<c { for y in 0..<oh { for x in 0..<ow {
            var best = -Float.infinity, bestIndex = -1
            for i in 0..<g.kernelHeight { for j in 0..<g.kernelWidth {
                let iy = y * g.strideHeight - g.paddingHeight + i * g.dilationHeight
                let ix = x * g.strideWidth - g.paddingWidth + j * g.dilationWidth
                if iy >= 0 && iy < h && ix >= 0 && ix < w && (bestIndex < 0 || input[b, ch, iy, ix] > best) {
                    best = input[b, ch, iy, ix]
                    bestIndex = iy * w + ix
                }
            } }
            values.append(best)
            indices.append(Int32(bestIndex))
        } } } }
        return (Tensor(values, shape: [n, c, oh, ow]), indices)
    }

    @Test func maxPoolingAgreesWithLoops() {
        var generator = SeededGenerator(seed: 45)
        let geometries = [
            ConvolutionGeometry(kernel: (1, 160), stride: (1, 160)),
            ConvolutionGeometry(kernel: (3, 3), stride: (3, 3)),
            ConvolutionGeometry(kernel: (1, 3), stride: (1, 3)),
            ConvolutionGeometry(kernel: (3, 2), stride: (2, 1), padding: (1, 1)),
        ]
        for g in geometries {
            let shape = g.kernelWidth == 160 ? [2, 3, 1, 500] : [2, 3, 7, 11]
            let input = Reference.randomTensor(shape, generator: &generator)
            let (output, indices) = MaxPooling.forward(input: input, geometry: g)
            let (expected, expectedIndices) = Self.naivePool(input, g)
            #expect(output.scalars == expected.scalars && output.shape == expected.shape)
            #expect(indices == expectedIndices)
            let gradient = Tensor.uniform(output.shape, in: -1..<1, generator: &generator)
            let back = MaxPooling.backward(gradientOutput: gradient, indices: indices, inputShape: shape)
            var reference = [Float](repeating: 0, count: input.count)
            let plane = shape[2] * shape[3], outputPlane = output.shape[2] * output.shape[3]
            for (slot, value) in gradient.scalars.enumerated() { reference[(slot / outputPlane) * plane + Int(indices[slot])] += value }
            #expect(back.scalars == reference)
        }
    }

    @Test("Max pooling fast paths: ties go to the first maximum, NaN propagates, −∞ rows keep an index")
    func maxPoolingTiesAndNaN() {
        var generator = SeededGenerator(seed: 46)
        for g in [ConvolutionGeometry(kernel: (1, 160), stride: (1, 160)), ConvolutionGeometry(kernel: (3, 3), stride: (3, 3))] {
            let shape = g.kernelWidth == 160 ? [1, 2, 1, 480] : [1, 2, 6, 9]
            // Values from a handful of levels, so every window holds ties.
            var values = (0..<shape.reduce(1, *)).map { _ in Float(Int.random(in: 0..<4, using: &generator)) }
            let (tied, tiedIndices) = MaxPooling.forward(input: Tensor(values, shape: shape), geometry: g)
            let (expected, expectedIndices) = Self.naivePool(Tensor(values, shape: shape), g)
            #expect(tied.scalars == expected.scalars && tiedIndices == expectedIndices)
            let nanPosition = g.kernelWidth == 160 ? 5 : 10  // in the first window: (0, 5), or row 1, column 1
            values[nanPosition] = .nan
            for index in values.indices.suffix(g.kernelWidth == 160 ? 160 : 0) { values[index] = -.infinity }
            let (withNaN, nanIndices) = MaxPooling.forward(input: Tensor(values, shape: shape), geometry: g)
            #expect(withNaN.scalars[0].isNaN && nanIndices[0] == Int32(nanPosition))
            #expect(withNaN.scalars.dropFirst().allSatisfy { !$0.isNaN })
            if g.kernelWidth == 160 { #expect(withNaN.scalars.last == -.infinity && nanIndices.last == 320) }
        }
    }

    @Test func maxPoolingPyTorchFixtures() throws {
        let fixture = try Fixture.load("pooling")
        for item in fixture.cases {
            let (output, indices) = MaxPooling.forward(input: item.tensor("input"), geometry: item.geometry)
            #expect(output.scalars == item.tensor("output").scalars, "\(item.name)")
            #expect(indices.map(Int.init) == item.indices!, "\(item.name)")
            let back = MaxPooling.backward(gradientOutput: item.tensor("gradient_output"), indices: indices, inputShape: item.tensor("input").shape)
            Reference.expectClose(back, item.tensor("gradient_input"), relative: 1e-6, absolute: 1e-6, "\(item.name)")
        }
    }
}

/// ``RowDecomposedConvolution`` (one GEMM per kernel row, for tall kernels over many channels:
/// EnvNet-v2's conv4) and ``PolyphaseConvolution`` (strided kernels as stride-1 ones over the
/// input's phases: its conv1 and conv2; one input channel by direct sums: EnvNet's conv1), against
/// the definition, with and without the rewrites.
@Suite("Convolution by kernel rows and by phases")
struct RowDecomposedConvolutionTests {
    @Test("Forward, input and weight gradients equal the direct sums, with padding, strides, dilation and a bias",
          arguments: [
              // (N, C, H, W, O, kernel, stride, padding, dilation)
              (2, 32, 14, 20, 8, (8, 8), (1, 1), (0, 0), (1, 1)),
              (1, 16, 9, 23, 12, (3, 4), (1, 2), (2, 1), (1, 2)),
              (3, 64, 5, 7, 8, (2, 1), (1, 1), (1, 0), (1, 1)),
              (2, 8, 30, 11, 9, (7, 8), (1, 1), (6, 7), (1, 1)),  // the transposed geometry of a backward pass
              // Strided: by phases (PolyphaseConvolution), then by rows where the kernel is tall.
              (2, 16, 1, 101, 8, (1, 16), (1, 2), (0, 0), (1, 1)),
              (2, 1, 1, 300, 8, (1, 64), (1, 2), (0, 0), (1, 1)),
              (2, 4, 9, 43, 6, (3, 8), (2, 4), (1, 0), (1, 1)),
              (1, 8, 4, 50, 9, (2, 8), (1, 2), (0, 0), (1, 1)),
              // One input channel over rows (SingleChannelConvolution): EnvNet's conv1 with the seed
              // variant's padding over more than one piece of work, and other tap counts.
              (2, 1, 1, 5000, 40, (1, 8), (1, 1), (0, 4), (1, 1)),
              (3, 1, 1, 37, 7, (1, 5), (1, 1), (0, 0), (1, 1)),
              (1, 1, 1, 20, 3, (1, 16), (1, 1), (0, 2), (1, 1)),
          ])
    func matchesDefinition(n: Int, c: Int, h: Int, w: Int, o: Int, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int),
                           dilation: (Int, Int)) {
        var generator = SeededGenerator(seed: UInt64(c * 1000 + h))
        let g = ConvolutionGeometry(kernel: kernel, stride: stride, padding: padding, dilation: dilation)
        let input = Tensor.normal([n, c, h, w], standardDeviation: 1, generator: &generator)
        let weight = Tensor.normal([o, c, kernel.0, kernel.1], standardDeviation: 0.2, generator: &generator)
        let bias = Tensor.normal([o], standardDeviation: 1, generator: &generator)
        let expected = NaiveConvolution.forward(input: input, weight: weight, bias: bias, g)
        let gradient = Tensor.normal(expected.shape, standardDeviation: 1, generator: &generator)
        let reference = NaiveConvolution.backward(input: input, weight: weight, gradient: gradient, g)
        var decomposed = ExecutionOptions.automatic
        decomposed.usesConvolutionRewrites = true
        var plain = ExecutionOptions.automatic
        plain.usesConvolutionRewrites = false
        for options in [decomposed, plain] {
            ExecutionOptions.withOptions(options) {
                Reference.expectClose(Convolution.forward(input: input, weight: weight, bias: bias, geometry: g), expected, relative: 1e-4, absolute: 1e-4)
                var weightGradient = Tensor.zeros(weight.shape) + 0.5
                var biasGradient = Tensor.zeros([o]) + 0.25
                Convolution.backwardWeight(gradientOutput: gradient, input: input, geometry: g, accumulatingInto: &weightGradient, bias: &biasGradient)
                Reference.expectClose(weightGradient, reference.weight + 0.5, relative: 1e-4, absolute: 1e-4)
                Reference.expectClose(biasGradient, reference.bias + 0.25, relative: 1e-4, absolute: 1e-4)
                Reference.expectClose(Convolution.backwardInput(gradientOutput: gradient, weight: weight, inputShape: input.shape, geometry: g),
                                      reference.input, relative: 1e-4, absolute: 1e-4)
            }
        }
    }
}

/// The direct single-channel kernels run where the CPU has AVX-512 (so the definition tests above
/// exercise them there) and decline elsewhere and for sizes they do not take, writing nothing.
@Suite("Single-channel convolution kernels")
struct SingleChannelKernelTests {
    @Test("They run on AVX-512, give the definition's values, and decline bad sizes without a write")
    func runsAndDeclines() {
        let width = 40, taps = 8, padding = 1, outputWidth = width + 2 * padding - taps + 1, channels = 3
        let x = (0..<width).map { Float($0 % 7) - 3 }, w = (0..<(channels * taps)).map { Float($0 % 5) * 0.25 - 0.5 }
        var output = [Float](repeating: 7, count: channels * outputWidth)
        let runs = envnet_cpu_has_avx512() != 0
        let status = envnet_single_channel_convolution(x, width, w, Int32(channels), Int32(taps), nil, padding, 0, outputWidth,
                                                       &output, outputWidth, 0)
        #expect(status == (runs ? 1 : 0))
        if runs {
            for o in 0..<channels {
                for t in 0..<outputWidth {
                    var sum: Float = 0
                    for j in 0..<taps where t + j - padding >= 0 && t + j - padding < width { sum += w[o * taps + j] * x[t + j - padding] }
                    #expect(abs(output[o * outputWidth + t] - sum) <= 1e-5, "o \(o) t \(t)")
                }
            }
        }
        var untouched = [Float](repeating: 7, count: channels * outputWidth)
        #expect(envnet_single_channel_convolution(x, width, w, Int32(channels), 17, nil, padding, 0, outputWidth, &untouched, outputWidth, 0) == 0)
        #expect(envnet_single_channel_convolution(x, width, w, Int32(channels), Int32(taps), nil, padding, 0, outputWidth + 1, &untouched,
                                                  outputWidth, 0) == 0)
        var partial = [Float](repeating: 7, count: channels * taps)
        #expect(envnet_single_channel_weight_gradient(x, width, output, outputWidth + 1, Int32(channels), Int32(taps), padding, 0,
                                                      outputWidth, &partial, 0) == 0)
        #expect(untouched.allSatisfy { $0 == 7 } && partial.allSatisfy { $0 == 7 })
        #expect(envnet_single_channel_weight_gradient(x, width, output, outputWidth, Int32(channels), Int32(taps), padding, 0,
                                                      outputWidth, &partial, 0) == (runs ? 1 : 0))
    }
}

