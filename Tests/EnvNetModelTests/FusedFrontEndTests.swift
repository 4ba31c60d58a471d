@testable import EnvNetModel
import Foundation
import Testing

@Suite("The fused evaluation front end (conv1 … pool2 in one pass, conv2 by Winograd F(4, 8))")
struct FusedFrontEndTests {
    /// A network in evaluation mode whose BatchNorms have running statistics, scales (some
    /// negative) and shifts far from their initial values, so that folding them is really tested.
    static func network(_ variant: EnvNetConfiguration.Variant, seed: UInt64) -> EnvNet {
        let net = EnvNet(configuration: EnvNetConfiguration(variant: variant, classCount: 5, hiddenUnits: 16), seed: seed)
        var generator = SeededGenerator(seed: seed &+ 100)
        for name in ["bn1", "bn2", "bn3", "bn4"] {
            let norm = net.layers[name] as! BatchNorm
            let count = norm.featureCount
            norm.runningMean.value = Tensor.normal([count], standardDeviation: 0.3, generator: &generator)
            norm.runningVariance.value = Tensor.uniform([count], in: 0.2..<2, generator: &generator)
            norm.weight!.value = Tensor.uniform([count], in: -0.5..<1.5, generator: &generator)
            norm.bias!.value = Tensor.normal([count], standardDeviation: 0.2, generator: &generator)
        }
        for name in ["conv1", "conv2"] {
            if let bias = (net.layers[name] as! Conv2d).bias { bias.value = Tensor.normal(bias.shape, standardDeviation: 0.1, generator: &generator) }
        }
        net.eval()
        return net
    }

    /// The layers one by one up to pool2 (the reference the fused pass must equal).
    static func layeredPool2(_ net: EnvNet, _ input: Tensor) -> Tensor {
        var value = input
        for child in net.layers.children {
            value = child.module.forward(value)
            if child.name == "pool2" { break }
        }
        return value
    }

    static func maximumDifference(_ a: Tensor, _ b: Tensor) -> (difference: Float, scale: Float) {
        var difference: Float = 0, scale: Float = 0
        for (x, y) in zip(a.scalars, b.scalars) {
            difference = max(difference, abs(x - y))
            scale = max(scale, abs(y))
        }
        return (difference, scale)
    }

    @Test("The fused kernel runs on a CPU with AVX-512")
    func availability() {
        #expect(FusedFrontEnd.isAvailable == BLASRuntime.cpuHasAVX512)
    }

    @Test("pool2's output equals the layers' to float rounding", .enabled(if: FusedFrontEnd.isAvailable, "needs AVX-512"),
          arguments: [EnvNetConfiguration.Variant.official, .seed], [1, 3])
    func equalsTheLayers(variant: EnvNetConfiguration.Variant, batch: Int) throws {
        let net = Self.network(variant, seed: 11)
        var generator = SeededGenerator(seed: 12)
        let input = Tensor.normal([batch, 1, 1, net.configuration.inputLength], standardDeviation: 0.3, generator: &generator)
        let frontEnd = try #require(FusedFrontEnd(network: net))
        let fused = try #require(frontEnd.forward(input))
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

    @Test("The network's logits and features take the fused path and equal the layers'", .enabled(if: FusedFrontEnd.isAvailable, "needs AVX-512"))
    func logitsAndFeaturesEqualTheLayers() throws {
        let net = Self.network(.official, seed: 21)
        var generator = SeededGenerator(seed: 22)
        let input = Tensor.normal([2, 1, 1, 24014], standardDeviation: 0.3, generator: &generator)
        let logits = net(input), layered = net.layers.forward(input)
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

    @Test("Inputs other than [N, 1, 1, L] are left to the layers", .enabled(if: FusedFrontEnd.isAvailable, "needs AVX-512"))
    func otherShapesGoToTheLayers() throws {
        let net = Self.network(.official, seed: 41)
        let frontEnd = try #require(FusedFrontEnd(network: net))
        var generator = SeededGenerator(seed: 42)
        // Two rows per item: the layers treat them as height 2; the fused kernel must not run.
        let tall = Tensor.normal([2, 1, 2, 24014], standardDeviation: 0.3, generator: &generator)
        #expect(frontEnd.forward(tall) == nil)
        #expect(frontEnd.forward(Tensor.zeros([24014])) == nil)
        let features = net.features(tall, upTo: "pool2")
        #expect(features.shape == [2, 40, 2, 150])
        #expect(features.scalars == Self.layeredPool2(net, tall).scalars)
    }

    @Test("Training mode never takes the fused path")
    func trainingUsesTheLayers() throws {
        let net = Self.network(.official, seed: 31)
        net.train()
        #expect(FusedFrontEnd(network: net) == nil)
    }
}
