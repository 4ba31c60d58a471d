@testable import EnvNetModel
import Foundation
import Testing

@Suite("The front-end block's fused evaluation path (conv1 … pool2 in one pass, conv2 by Winograd F(4, 8))")
struct FusedFrontEndTests {
    /// A network in evaluation mode whose BatchNorms have running statistics, scales (some
    /// negative) and shifts far from their initial values, so that folding them is really tested.
    static func network(_ variant: EnvNetConfiguration.Variant, seed: UInt64) -> EnvNet {
        let net = EnvNet(configuration: EnvNetConfiguration(variant: variant, classCount: 5, hiddenUnits: 16), seed: seed)
        var generator = SeededGenerator(seed: seed &+ 100)
        for norm in [net.frontEnd.bn1, net.frontEnd.bn2, net.block3.normalization, net.block4.normalization] {
            let count = norm.featureCount
            norm.runningMean.value = Tensor.normal([count], standardDeviation: 0.3, generator: &generator)
            norm.runningVariance.value = Tensor.uniform([count], in: 0.2..<2, generator: &generator)
            norm.weight!.value = Tensor.uniform([count], in: -0.5..<1.5, generator: &generator)
            norm.bias!.value = Tensor.normal([count], standardDeviation: 0.2, generator: &generator)
        }
        for convolution in [net.frontEnd.conv1, net.frontEnd.conv2] {
            if let bias = convolution.bias { bias.value = Tensor.normal(bias.shape, standardDeviation: 0.1, generator: &generator) }
        }
        net.eval()
        return net
    }

    /// The layers one by one up to pool2, with every fast path off: the reference.
    static func layeredPool2(_ net: EnvNet, _ input: Tensor) -> Tensor {
        ExecutionOptions.withOptions(.portable) { net.features(input, upTo: "pool2") }
    }

    static func maximumDifference(_ a: Tensor, _ b: Tensor) -> (difference: Float, scale: Float) {
        var difference: Float = 0, scale: Float = 0
        for (x, y) in zip(a.scalars, b.scalars) {
            difference = max(difference, abs(x - y))
            scale = max(scale, abs(y))
        }
        return (difference, scale)
    }

    @Test("The fused kernel runs on a CPU with AVX-512, and the options switch it off at run time")
    func availability() {
        #expect(FusedFrontEnd.isSupported == BLASRuntime.cpuHasAVX512)
        let net = Self.network(.official, seed: 1)
        #expect(net.frontEnd.runsFused == FusedFrontEnd.isSupported)
        ExecutionOptions.withOptions(.portable) { #expect(!net.frontEnd.runsFused) }
        var noFusion = ExecutionOptions.current
        noFusion.usesFusedOperations = false
        ExecutionOptions.withOptions(noFusion) { #expect(!net.frontEnd.runsFused) }
    }

    @Test("pool2's output equals the layers' to float rounding", .enabled(if: FusedFrontEnd.isSupported, "needs AVX-512"),
          arguments: [EnvNetConfiguration.Variant.official, .seed], [1, 3])
    func equalsTheLayers(variant: EnvNetConfiguration.Variant, batch: Int) throws {
        let net = Self.network(variant, seed: 11)
        var generator = SeededGenerator(seed: 12)
        let input = Tensor.normal([batch, 1, 1, net.configuration.inputLength], standardDeviation: 0.3, generator: &generator)
        #expect(net.frontEnd.runsFused)
        let fused = net.frontEnd(input)
        let layered = Self.layeredPool2(net, input)
        #expect(fused.shape == layered.shape)
        let (difference, scale) = Self.maximumDifference(fused, layered)
        #expect(scale > 0.1)
        // Direct float32 convolution differs from exact by about 1e-6 of the scale here; the
        // Winograd transforms add about ten times that.
        #expect(difference <= 1e-4 * scale, "largest difference \(difference) at scale \(scale)")
        // Some pooled values are clipped by ReLU and some are not: both branches are exercised.
        #expect(layered.scalars.contains(0) && layered.scalars.contains { $0 > 0 })
    }

    @Test("The network's logits and features take the fused path and equal the layers'", .enabled(if: FusedFrontEnd.isSupported, "needs AVX-512"))
    func logitsAndFeaturesEqualTheLayers() throws {
        let net = Self.network(.official, seed: 21)
        var generator = SeededGenerator(seed: 22)
        let input = Tensor.normal([2, 1, 1, 24014], standardDeviation: 0.3, generator: &generator)
        let logits = net(input), layered = ExecutionOptions.withOptions(.portable) { net(input) }
        let (difference, scale) = Self.maximumDifference(logits, layered)
        #expect(difference <= 1e-4 * max(scale, 1), "\(difference) at scale \(scale)")
        // Different arithmetic, so not bit-identical: proof that the fused path ran.
        #expect(logits.scalars != layered.scalars)
        let pool2 = net.features(input, upTo: "pool2"), embedding = net.features(input, upTo: "relu6")
        #expect(Self.maximumDifference(pool2, Self.layeredPool2(net, input)).difference <= 1e-4 * max(scale, 1))
        #expect(embedding.shape == [2, 16])
        // Layers before pool2 still come from the layers themselves.
        #expect(net.features(input, upTo: "bn1").shape == [2, 40, 1, 24007])
    }

    @Test("Inputs other than [N, 1, 1, L] are left to the layers")
    func otherShapesGoToTheLayers() throws {
        let net = Self.network(.official, seed: 41)
        var generator = SeededGenerator(seed: 42)
        // Two rows per item: the layers treat them as height 2; the fused kernel must not run.
        let tall = Tensor.normal([2, 1, 2, 24014], standardDeviation: 0.3, generator: &generator)
        let features = net.features(tall, upTo: "pool2")
        #expect(features.shape == [2, 40, 2, 150])
        #expect(features.scalars == Self.layeredPool2(net, tall).scalars)
    }

    @Test("Training mode never takes the fused path; a front end frozen in evaluation mode may")
    func trainingUsesTheLayers() throws {
        let net = Self.network(.official, seed: 31)
        net.train()
        #expect(!net.frontEnd.runsFused)
        for layer in net.frontEnd.layers { layer.layer.eval() }
        #expect(net.frontEnd.runsFused == FusedFrontEnd.isSupported)
        net.frontEnd.bn2.train()
        #expect(!net.frontEnd.runsFused)
    }

    /// The folded weights a fresh fold of the front end's current tensors gives.
    static func freshFold(_ frontEnd: EnvNetFrontEnd) -> FusedFrontEnd.Weights? {
        FusedFrontEnd.Weights(conv1Weight: frontEnd.conv1.weight.value, conv1Bias: frontEnd.conv1.bias?.value, norm1: frontEnd.bn1.statistics,
                              conv2Weight: frontEnd.conv2.weight.value, conv2Bias: frontEnd.conv2.bias?.value, norm2: frontEnd.bn2.statistics,
                              padding: frontEnd.conv1.geometry.paddingWidth, poolSize: frontEnd.pool2.geometry.kernelWidth)
    }

    @Test("Folded weights are kept between batches and rebuilt when a weight or a statistic changes")
    func foldedWeightsAreCachedAndInvalidated() throws {
        // The cache is kept on every machine (folding is portable); the fused kernel itself runs
        // only with AVX-512, where the logits below also go through it.
        let net = Self.network(.official, seed: 51)
        var generator = SeededGenerator(seed: 52)
        let input = Tensor.normal([2, 1, 1, 24014], standardDeviation: 0.3, generator: &generator)
        let frontEnd = net.frontEnd
        let before = frontEnd.derivedWeightBuildCount
        let first = net(input)
        let folded = try #require(frontEnd.fusedWeights())
        _ = net(input)
        _ = frontEnd.fusedWeights()
        #expect(frontEnd.derivedWeightBuildCount == before + 1, "batches and calls reuse one fold")
        #expect(folded == Self.freshFold(frontEnd))

        // A load changes the weights: the next pass must use them, as a fresh network does.
        let other = Self.network(.official, seed: 53)
        try net.loadStateDictionary(other.stateDictionary())
        let afterLoad = net(input), fresh = other(input)
        #expect(afterLoad == fresh)
        #expect(afterLoad != first)
        #expect(frontEnd.fusedWeights() == Self.freshFold(frontEnd))
        #expect(frontEnd.fusedWeights() != folded)
        #expect(frontEnd.derivedWeightBuildCount == before + 2)

        // An optimizer step changes them in place.
        net.train()
        net.zeroGradients()
        let logits = net(Tensor.normal([4, 1, 1, 24014], standardDeviation: 0.3, generator: &generator))
        var gradient = Tensor.zeros([0])
        _ = Losses.softmaxCrossEntropy(logits: logits, labels: [0, 1, 2, 3], gradient: &gradient)
        _ = net.backward(gradient)
        var optimizer = SGD(learningRate: 0.5, momentum: 0)
        optimizer.step(net)
        net.eval()
        let afterStep = net(input)
        let reference = ExecutionOptions.withOptions(.portable) { net(input) }
        let (difference, scale) = Self.maximumDifference(afterStep, reference)
        #expect(difference <= 1e-4 * max(scale, 1), "a stale fold differs by \(difference) at scale \(scale)")
        #expect(afterStep != afterLoad)
        #expect(frontEnd.fusedWeights() == Self.freshFold(frontEnd), "the fold after an optimizer step is the step's weights'")
        // A running statistic alone also rebuilds it.
        let count = frontEnd.derivedWeightBuildCount
        frontEnd.bn1.runningMean.value = frontEnd.bn1.runningMean.value + 0.01
        _ = net(input)
        _ = frontEnd.fusedWeights()
        #expect(frontEnd.derivedWeightBuildCount == count + 1)
        #expect(frontEnd.fusedWeights() == Self.freshFold(frontEnd))
    }

    @Test("The lean training pass (bn2 + pool2 as one operation, conv1 recomputed) gives the layers' outputs, gradients and running statistics bit for bit, in fp32 and bf16, both variants",
          arguments: [(EnvNetConfiguration.Variant.official, ExecutionOptions.Precision.float32), (.seed, .float32), (.official, .bfloat16)])
    func leanTrainingPassEqualsTheLayers(variant: EnvNetConfiguration.Variant, precision: ExecutionOptions.Precision) throws {
        var lean = ExecutionOptions.current
        lean.precision = precision
        var layered = lean
        layered.usesFusedOperations = false
        let a = Self.network(variant, seed: 21), b = Self.network(variant, seed: 21)
        var generator = SeededGenerator(seed: 22)
        for step in 0..<2 {  // the second step runs on the kept buffers
            let input = Tensor.normal([3, 1, 1, a.inputLength], standardDeviation: 0.3, generator: &generator)
            let upstream = Tensor.normal([3, 40, 1, (a.inputLength + (variant == .seed ? 16 : 0) - 14) / 160], generator: &generator)
            for net in [a, b] { net.train(); net.zeroGradients() }
            a.frontEnd.conv1.computesInputGradient = step == 0
            b.frontEnd.conv1.computesInputGradient = step == 0
            let leanOutput = ExecutionOptions.withOptions(lean) { a.frontEnd(input) }
            let layeredOutput = ExecutionOptions.withOptions(layered) { b.frontEnd(input) }
            #expect(ExecutionOptions.withOptions(lean) { a.frontEnd.runsLeanTraining })
            #expect(!ExecutionOptions.withOptions(layered) { b.frontEnd.runsLeanTraining })
            #expect(leanOutput.shape == layeredOutput.shape && leanOutput == layeredOutput, "step \(step): pooled outputs differ")
            let leanGradient = ExecutionOptions.withOptions(lean) { a.frontEnd.backward(upstream) }
            let layeredGradient = ExecutionOptions.withOptions(layered) { b.frontEnd.backward(upstream) }
            #expect(leanGradient.shape == layeredGradient.shape && leanGradient == layeredGradient, "step \(step): input gradients differ")
            let gradients = Dictionary(uniqueKeysWithValues: b.frontEnd.namedParameters().map { ($0.key, $0.parameter.gradient) })
            for (name, parameter) in a.frontEnd.namedParameters() {
                #expect(gradients[name] == parameter.gradient, "\(name) at step \(step)")
                #expect(parameter.gradient.scalars.contains { $0 != 0 }, "\(name) has no gradient")
            }
            let buffers = Dictionary(uniqueKeysWithValues: b.frontEnd.namedBuffers().map { ($0.key, $0.buffer.value) })
            for (name, buffer) in a.frontEnd.namedBuffers() { #expect(buffers[name] == buffer.value, "\(name) at step \(step)") }
        }
        // Evaluation mode leaves the lean pass.
        a.eval()
        #expect(!a.frontEnd.runsLeanTraining)
    }
}
