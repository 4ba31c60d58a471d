import EnvNetModel
import Foundation
import Testing

/// The network of Docs/building-your-own-network.md, built from the public blocks only (this file
/// imports EnvNetModel without `@testable`), trained as the guide trains it.
@Suite("Building your own network from the public blocks")
struct CustomNetworkTests {
    /// `[N, 1, 1, 4000] -> [N, classes]`
    final class ToneNet: Module, LayerChain {
        let block1: ConvolutionBlock
        let block2: ConvolutionBlock
        let flatten = Flatten()
        let classifier: Linear

        init(classCount: Int, seed: UInt64) {
            var generator = SeededGenerator(seed: seed)
            block1 = ConvolutionBlock(names: ("conv1", "bn1", "pool1"), inputChannels: 1, outputChannels: 8,
                                      kernelSize: (1, 16), poolSize: (1, 8), generator: &generator)
            block2 = ConvolutionBlock(names: ("conv2", "bn2", "pool2"), inputChannels: 8, outputChannels: 16,
                                      kernelSize: (1, 8), poolSize: (1, 8), inputIsDisposable: true, generator: &generator)
            classifier = Linear(inputCount: 16 * 61, outputCount: classCount, generator: &generator)
            super.init()
        }

        var layers: [(name: String, layer: any Layer)] {
            [("", block1), ("", block2), ("flatten", flatten), ("fc", classifier)]
        }

        override var children: [(name: String, module: Module)] { layers.map { ($0.name, $0.layer) } }
    }

    static func toneBatch(count: Int, generator: inout SeededGenerator) -> (input: Tensor, labels: [Int]) {
        var samples = [Float](), labels = [Int]()
        for index in 0..<count {
            let label = index % 2
            let frequency = label == 0 ? generator.nextDouble(in: 200...400) : generator.nextDouble(in: 2000...4000)
            let phase = generator.nextDouble(in: 0...(2 * Double.pi)), amplitude = generator.nextDouble(in: 0.2...1)
            samples += (0..<4000).map { Float(amplitude * sin(2 * Double.pi * frequency * Double($0) / 16_000 + phase)) }
            labels.append(label)
        }
        return (Tensor(samples, shape: [count, 1, 1, 4000]), labels)
    }

    @Test("The guide's network has the keys it promises, registers everything, and learns")
    func theGuidesNetworkLearns() throws {
        let network = ToneNet(classCount: 2, seed: 1)
        #expect(network.unregisteredMembers().isEmpty)
        #expect(network.namedParameters().map(\.key) == ["conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias",
                                                         "fc.weight", "fc.bias"])
        #expect(try network.outputShape(forInputShape: [3, 1, 1, 4000]) == [3, 2])
        var optimizer = SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true)
        var generator = SeededGenerator(seed: 2)
        network.eval()
        let (test, truth) = Self.toneBatch(count: 64, generator: &generator)
        func accuracy() -> Double {
            let predicted = network(test).argmax(axis: 1).indices
            return Double(zip(predicted, truth).filter { $0 == $1 }.count) / Double(truth.count)
        }
        let before = accuracy()
        network.train()
        var losses: [Float] = []
        for _ in 1...40 {
            let (input, labels) = Self.toneBatch(count: 16, generator: &generator)
            network.zeroGradients()
            let (loss, gradient) = Losses.softmaxCrossEntropy(logits: network(input), labels: labels)
            _ = network.backward(gradient)
            optimizer.step(network)
            losses.append(loss)
        }
        network.eval()
        let after = accuracy()
        #expect(after >= 0.95, "accuracy \(before) before training, \(after) after; losses \(losses)")
        let early: Float = losses.prefix(5).reduce(0, +), late: Float = losses.suffix(5).reduce(0, +)
        #expect(late < early / 2, "\(losses)")
        // A second network from the same seed is the same network.
        #expect(ToneNet(classCount: 2, seed: 1).block1.convolution.weight.value == ToneNet(classCount: 2, seed: 1).block1.convolution.weight.value)
    }
}
