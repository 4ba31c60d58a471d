@testable import EnvNetModel
import Foundation
import Testing

/// EnvNet-v2 against PyTorch (Tools/make_envnet_v2_fixture.py): the same weights give the same
/// logits, and one training step the same gradients.
@Suite("EnvNet-v2: the authors' network, checked against PyTorch")
struct EnvNetV2Tests {
    static let fixture: SafeTensors = {
        let url = Bundle.module.url(forResource: "envnet_v2", withExtension: "safetensors", subdirectory: "Fixtures")!
        return try! SafeTensors.read(from: url)
    }()

    /// The fixture's network (fc11 and fc12 narrowed to 8, 5 classes, dropout off).
    static func network() throws -> EnvNetV2 {
        let network = EnvNetV2(configuration: EnvNetV2Configuration(classCount: 5, hiddenUnits: 8, dropoutProbability: 0), seed: 1)
        var state: [String: Tensor] = [:]
        for (key, value) in fixture.tensors where key.hasPrefix("model.") { state[String(key.dropFirst(6))] = value }
        try network.loadStateDictionary(state, strict: true)
        return network
    }

    /// The largest difference relative to the reference's largest magnitude.
    static func relativeDifference(_ value: Tensor, _ reference: Tensor) -> Float {
        let scale = reference.scalars.map(abs).max() ?? 0
        let difference = zip(value.scalars, reference.scalars).map { abs($0 - $1) }.max() ?? .infinity
        return difference / Swift.max(scale, 1e-12)
    }

    @Test("The layer sizes of the authors' code: 20480 features after pool10, names conv1 ... fc13")
    func shapes() throws {
        let network = try Self.network()
        #expect(network.layerNames.filter { $0.hasPrefix("conv") } == (1...10).map { "conv\($0)" })
        #expect(network.layerNames.last == "fc13")
        #expect(try network.outputShape(forInputShape: [3, 1, 1, 66650]) == [3, 5])
        #expect(network.blocks.allSatisfy { $0.convolution.bias == nil })
    }

    @Test("Evaluation logits equal PyTorch's within 1e-4")
    func logits() throws {
        let network = try Self.network()
        network.eval()
        let logits = network(Self.fixture.tensors["eval.input"]!)
        #expect(Self.relativeDifference(logits, Self.fixture.tensors["eval.logits"]!) < 1e-4)
    }

    /// One training step of the whole network: the loss and gradients against PyTorch's.
    /// (``blockGradients(block:)`` holds every layer to 1e-4 block by block.)
    ///
    /// Within 1e-4: the loss and the gradients of fc13 … conv10. Below, one ReLU decision of the
    /// fixture's batch differs between the two float32 implementations: in bn9, channel 145, one
    /// pre-activation is 2.9e-6 from the kink (measured in Double from our conv9 output), closer
    /// than the two implementations' conv9 outputs agree after nine layers (about 1e-6). The
    /// flipped element's gradient then reaches every layer below. Those layers are held to 5e-2,
    /// which a wrong stride, padding, transposition or BatchNorm formula far exceeds (they give
    /// differences of order 1), while the flip gives 1e-3 to 8e-3. Every fixture seed tried
    /// (2018–2022) has such a near-kink value somewhere in its 6.5 M pre-activations.
    @Test("One training step's loss and gradients equal PyTorch's (1e-4 above the first ReLU decision that differs, 5e-2 below)")
    func gradients() throws {
        let network = try Self.network()
        network.train()
        network.zeroGradients()
        let labels = Self.fixture.tensors["train.labels"]!.scalars.map { Int($0) }
        let (loss, gradient) = Losses.softmaxCrossEntropy(logits: network(Self.fixture.tensors["train.input"]!), labels: labels)
        _ = network.backward(gradient)
        let expectedLoss = Self.fixture.tensors["train.loss"]!.scalars[0]
        #expect(abs(loss - expectedLoss) <= 1e-4 * abs(expectedLoss))
        let exact: Set<String> = ["fc13", "fc12", "fc11", "bn10", "conv10"]
        var compared = 0
        for (key, parameter) in network.namedParameters() {
            let reference = try #require(Self.fixture.tensors["grad.\(key)"], "\(key)")
            let difference = Self.relativeDifference(parameter.gradient, reference)
            let tolerance: Float = exact.contains(String(key.prefix { $0 != "." })) ? 1e-4 : 5e-2
            #expect(difference < tolerance, "\(key): \(difference)")
            compared += 1
        }
        #expect(compared == 36)  // 10 convolutions, 10 BatchNorms (scale and shift), 3 linear layers (weight and bias)
    }

    /// Each block alone on PyTorch's inputs (Tools/make_envnet_v2_fixture.py, `block{k}.*`): the
    /// real kernel sizes, strides, channels and pooling on small inputs, BatchNorm on batch
    /// statistics. Every gradient starts from the same values as PyTorch's, so this holds every
    /// layer to 1e-4, where the whole-network step above cannot (one ReLU decision differs there).
    @Test("Every block's parameter and input gradients equal PyTorch's within 1e-4", arguments: 1...10)
    func blockGradients(block number: Int) throws {
        let network = try Self.network()
        network.train()
        network.zeroGradients()
        let block = network.blocks[number - 1]
        block.convolution.computesInputGradient = true
        let input = try #require(Self.fixture.tensors["block\(number).input"])
        let output = block.forward(input)
        let outputGradient = try #require(Self.fixture.tensors["block\(number).output_grad"])
        #expect(output.shape == outputGradient.shape)
        let inputGradient = block.backward(outputGradient)
        let referenceInput = try #require(Self.fixture.tensors["block\(number).input_grad"])
        #expect(Self.relativeDifference(inputGradient, referenceInput) < 1e-4, "input gradient")
        for (key, parameter) in block.namedParameters() {
            let name = key.split(separator: ".").suffix(2).joined(separator: ".")
            let reference = try #require(Self.fixture.tensors["block\(number).grad.\(name)"], "\(name)")
            let difference = Self.relativeDifference(parameter.gradient, reference)
            #expect(difference < 1e-4, "\(name): \(difference)")
        }
        #expect(block.namedParameters().count == 3)  // conv weight, bn weight and bias
    }

    @Test("PyTorch's EnvNet-v2 weights load with no flag: recognised from the names and shapes")
    func recognisedFromNames() throws {
        var state: [String: Tensor] = [:]
        for (key, value) in Self.fixture.tensors where key.hasPrefix("model.") { state[String(key.dropFirst(6))] = value }
        state["bn1.num_batches_tracked"] = Tensor([1], shape: [1])
        let (network, description) = try ModelFile.load(SafeTensors(tensors: state, metadata: ["format": "pt"]), source: "pytorch.safetensors")
        #expect(network.architecture == .envnetV2)
        #expect(description.configuration == .envnetV2(EnvNetV2Configuration(classCount: 5, hiddenUnits: 8)))
        #expect(description.sampleRate == 44_100 && description.inputLength == 66_650 && description.preprocessing.sampleRate == 44_100)
        let logits = network(Self.fixture.tensors["eval.input"]!)
        #expect(Self.relativeDifference(logits, Self.fixture.tensors["eval.logits"]!) < 1e-4)
        // EnvNet's loader names the family instead of failing on a missing fc7.
        #expect(throws: EnvNetError.self) { try EnvNet.loadModel(SafeTensors(tensors: state), source: "x") }
        // A saved model keeps its family and description through a round trip.
        let saved = network.safeTensors(description: description)
        #expect(saved.metadata[ModelDescription.Key.network] == "envnet-v2")
        let (reloaded, again) = try ModelFile.load(saved, source: "saved")
        #expect(reloaded.architecture == .envnetV2 && again.configuration == description.configuration)
        #expect(reloaded.stateDictionary() == network.stateDictionary())
        // A file whose description claims the other family is refused by name.
        var forged = saved
        forged.metadata[ModelDescription.Key.network] = "envnet"
        #expect(throws: EnvNetError.self) { try ModelFile.load(forged, source: "forged") }
    }

    @Test("Full-size weights (101 M parameters) load from a file and run")
    func fullSize() throws {
        let original = EnvNetV2(configuration: EnvNetV2Configuration(classCount: 50), seed: 9)
        let count = original.parameters().reduce(0) { $0 + $1.count }
        #expect(count > 100_000_000 && count < 102_000_000)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-v2-full-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafeTensors(tensors: original.stateDictionary()).write(to: url)
        let loaded = EnvNetV2(configuration: EnvNetV2Configuration(classCount: 50), seed: 10)
        try loaded.loadStateDictionary(SafeTensors.read(from: url).tensors, strict: true)
        original.eval()
        loaded.eval()
        var generator = SeededGenerator(seed: 3)
        let window = Tensor((0..<66650).map { _ in generator.nextUniform(in: -0.5..<0.5) }, shape: [1, 1, 1, 66650])
        let logits = loaded(window)
        #expect(logits.shape == [1, 50])
        #expect(logits == original(window))
    }
}

