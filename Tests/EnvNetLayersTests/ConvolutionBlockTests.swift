import Testing
@testable import EnvNetLayers

/// ``ConvolutionBlock`` in evaluation mode runs as ``ConvolutionPooling`` (conv + BN + ReLU + max
/// pool in one pass): its outputs must equal the layers' (the same block with fused operations
/// switched off), for every geometry the operation accepts.
@Suite("Convolution blocks in evaluation mode")
struct ConvolutionBlockTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var inputShape: [Int]
        var outputChannels: Int
        var kernel: (Int, Int)
        var stride: (Int, Int) = (1, 1)
        var padding: (Int, Int) = (0, 0)
        var bias = false
        var pool: (Int, Int)?
        var poolStride: (Int, Int)?
        /// A small im2col budget, so one image's pooled rows are split over several pieces of work.
        var tileElements = 262_144
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "EnvNet's conv3 + pool3 (1 channel, 8x13, pool 3x3)", inputShape: [3, 1, 40, 150], outputChannels: 50,
             kernel: (8, 13), pool: (3, 3)),
        Case(name: "EnvNet's conv4 + pool4 (1x5, pool 1x3)", inputShape: [2, 6, 11, 46], outputChannels: 7, kernel: (1, 5), pool: (1, 3)),
        Case(name: "bias, padding, stride 2, overlapping pool 2x2 / (1, 2), rows split over pieces", inputShape: [2, 3, 17, 23],
             outputChannels: 5, kernel: (3, 4), stride: (2, 1), padding: (1, 2), bias: true, pool: (2, 2), poolStride: (1, 2),
             tileElements: 1024),
        Case(name: "no pooling", inputShape: [2, 2, 9, 12], outputChannels: 4, kernel: (2, 3), bias: true),
        Case(name: "pointwise convolution, pool stride above its window", inputShape: [2, 4, 8, 10], outputChannels: 3,
             kernel: (1, 1), pool: (2, 2), poolStride: (3, 3)),
        Case(name: "pool as large as the convolution's output", inputShape: [1, 2, 5, 7], outputChannels: 3, kernel: (2, 2), pool: (4, 6)),
    ]

    /// A block with drawn weights and BatchNorm statistics that are not the identity.
    static func block(_ c: Case, generator: inout SeededGenerator) -> ConvolutionBlock {
        let block = ConvolutionBlock(names: ("conv", "bn", "pool"), inputChannels: c.inputShape[1], outputChannels: c.outputChannels,
                                     kernelSize: c.kernel, stride: c.stride, padding: c.padding, bias: c.bias, poolSize: c.pool,
                                     poolStride: c.poolStride, biasInitializer: .uniform(lowerBound: -0.5, upperBound: 0.5), generator: &generator)
        let channels = c.outputChannels
        block.normalization.weight!.value = Tensor.uniform([channels], in: -1.5..<1.5, generator: &generator)
        block.normalization.bias!.value = Tensor.uniform([channels], in: -0.5..<0.5, generator: &generator)
        block.normalization.runningMean.value = Tensor.uniform([channels], in: -0.3..<0.3, generator: &generator)
        block.normalization.runningVariance.value = Tensor.uniform([channels], in: 0.2..<2, generator: &generator)
        block.eval()
        return block
    }

    @Test("The fused pass equals the layers' (fp32 and bf16) and runs none of them", arguments: cases)
    func fusedEqualsLayers(_ c: Case) throws {
        var generator = SeededGenerator(seed: 11)
        let block = Self.block(c, generator: &generator)
        let input = Tensor.normal(c.inputShape, generator: &generator)
        var precisions: [ExecutionOptions.Precision] = [.float32]
        if BFloat16Matmul.hasAVX512BF16 { precisions.append(.bfloat16) }
        for precision in precisions {
            var fused = ExecutionOptions(convolutionTileElements: c.tileElements)
            fused.precision = precision
            var layered = fused
            layered.usesFusedOperations = false
            let expected = ExecutionOptions.withOptions(layered) { block(input) }
            let (actual, samples) = ExecutionOptions.withOptions(fused) {
                #expect(block.runsFused(inputShape: c.inputShape), "\(c.name): the fused pass declined")
                return LayerProfiler.record { block(input) }
            }
            let leaves = Set(block.layers.map { ObjectIdentifier($0.layer) })
            #expect(!samples.contains { leaves.contains($0.layer) }, "\(c.name): a layer ran in the fused pass")
            #expect(actual.scalars.contains { $0 > 0 }, "\(c.name): all zero")
            if c.pool == nil { #expect(actual.scalars.contains { $0 == 0 }, "\(c.name): ReLU should leave zeros") }
            expectClose(actual, expected, relative: 1e-5, floor: 1e-2, "\(c.name), \(precision)")
            // The output buffer is kept from batch to batch; a caller that keeps a result keeps its own.
            let again = ExecutionOptions.withOptions(fused) { block(input) }
            #expect(actual.scalars == again.scalars, "\(c.name): a second batch changed the first's result")
        }
    }

    @Test("Training mode, a pooling with padding and disabled fusion run the layers")
    func declines() {
        var generator = SeededGenerator(seed: 3)
        let block = ConvolutionBlock(names: ("conv", "bn", "pool"), inputChannels: 2, outputChannels: 3, kernelSize: (2, 2),
                                     poolSize: (2, 2), generator: &generator)
        #expect(!block.runsFused(inputShape: [1, 2, 6, 6]), "training mode")
        block.eval()
        #expect(block.runsFused(inputShape: [1, 2, 6, 6]))
        #expect(!block.runsFused(inputShape: [1, 3, 6, 6]), "a wrong channel count is the layers' to report")
        #expect(!ExecutionOptions.withOptions(.portable) { block.runsFused(inputShape: [1, 2, 6, 6]) })
        let padded = ConvolutionBlock(names: ("conv", "bn", "pool"), inputChannels: 2, outputChannels: 3, kernelSize: (2, 2),
                                      generator: &generator)
        padded.eval()
        #expect(!ConvolutionPooling.applies(inputShape: [1, 2, 6, 6], weightShape: [3, 2, 2, 2], geometry: padded.convolution.geometry,
                                            pooling: ConvolutionGeometry(kernel: (2, 2), stride: (2, 2), padding: (1, 1))))
    }
}
