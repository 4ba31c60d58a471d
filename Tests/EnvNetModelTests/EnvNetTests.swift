import EnvNetModel
import Foundation
import Testing

@Suite("The EnvNet network and its weights")
struct EnvNetTests {
    static func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
    }

    @Test func officialSizesAndInterchangeNames() throws {
        let net = EnvNet(configuration: EnvNetConfiguration(classCount: 50))
        let shapes = Dictionary(uniqueKeysWithValues: net.stateDictionary().map { ($0.key, $0.value.shape) })
        let expected: [String: [Int]] = [
            "conv1.weight": [40, 1, 1, 8], "conv2.weight": [40, 40, 1, 8], "conv3.weight": [50, 1, 8, 13], "conv4.weight": [50, 50, 1, 5],
            "fc5.weight": [4096, 7700], "fc5.bias": [4096], "fc6.weight": [4096, 4096], "fc6.bias": [4096],
            "fc7.weight": [50, 4096], "fc7.bias": [50],
        ]
        for (key, shape) in expected { #expect(shapes[key] == shape, "\(key)") }
        for (bn, width) in [("bn1", 40), ("bn2", 40), ("bn3", 50), ("bn4", 50)] {
            for suffix in ["weight", "bias", "running_mean", "running_var"] { #expect(shapes["\(bn).\(suffix)"] == [width]) }
        }
        #expect(shapes.count == expected.count + 16)
        let parameters = net.namedParameters().reduce(0) { $0 + $1.parameter.count }
        // conv 30,820 + BatchNorm 360 + fc5 31,543,296 + fc6 16,781,312 + fc7 204,850: "about 48.6 M".
        #expect(parameters == 48_560_638, "\(parameters)")
        #expect(try net.outputShape(forInputShape: [3, 1, 1, 24014]) == [3, 50])
        let seed = EnvNet(configuration: EnvNetConfiguration(variant: .seed, classCount: 10))
        #expect(try seed.outputShape(forInputShape: [1, 1, 1, 24000]) == [1, 10])
        #expect(seed.stateDictionary()["conv1.bias"]?.shape == [40])
    }

    @Test(arguments: ["official", "seed"])
    func pyTorchWeightsGiveThePyTorchLogits(variant: String) throws {
        let (net, classNames) = try EnvNet.load(from: Self.fixture("envnet_\(variant)"))
        #expect(net.configuration.variant.rawValue == variant && net.configuration.classCount == 5 && net.configuration.hiddenUnits == 16)
        #expect(classNames == (0..<5).map { "class \($0)" })
        let io = try SafeTensors.read(from: Self.fixture("envnet_io"))
        let input = try #require(io.tensors["\(variant).input"]), expected = try #require(io.tensors["\(variant).logits"])
        let logits = net(input)
        #expect(logits.shape == expected.shape)
        for (a, b) in zip(logits.scalars, expected.scalars) {
            #expect(Swift.abs(a - b) <= 1e-4 * Swift.max(Swift.abs(b), 1e-2), "\(a) vs \(b)")
        }
    }

    @Test("Gradients written over the inputs' storage (EnvNet's default) equal those in separate buffers, bit for bit")
    func inPlaceGradientsEqualSeparateBuffers() throws {
        let configuration = EnvNetConfiguration(classCount: 3, hiddenUnits: 8)
        let inPlace = EnvNet(configuration: configuration, seed: 4), separate = EnvNet(configuration: configuration, seed: 4)
        // Each block decides its own reuse; here the reference network's is switched off layer by layer.
        let separateLayers = Dictionary(uniqueKeysWithValues: separate.namedLeaves().map { ($0.key, $0.module) })
        let inPlaceLayers = Dictionary(uniqueKeysWithValues: inPlace.namedLeaves().map { ($0.key, $0.module) })
        for name in ["bn1", "bn2", "bn3", "bn4"] {
            let layer = try #require(separateLayers[name] as? BatchNorm)
            #expect((inPlaceLayers[name] as? BatchNorm)?.reusesInputStorageForGradient == true)
            layer.reusesInputStorageForGradient = false
        }
        for name in ["pool2", "pool3", "pool4"] {
            let layer = try #require(separateLayers[name] as? MaxPool2d)
            #expect((inPlaceLayers[name] as? MaxPool2d)?.reusesInputStorageForGradient == true)
            layer.reusesInputStorageForGradient = false
        }
        for name in ["conv2", "conv4"] {
            let layer = try #require(separateLayers[name] as? Conv2d)
            #expect((inPlaceLayers[name] as? Conv2d)?.reusesInputStorageForGradient == true)
            layer.reusesInputStorageForGradient = false
        }
        #expect((inPlaceLayers["conv1"] as? Conv2d)?.reusesInputStorageForGradient == false)
        #expect((inPlaceLayers["conv3"] as? Conv2d)?.reusesInputStorageForGradient == false)
        var generator = SeededGenerator(seed: 5)
        for step in 0..<2 {  // the second step runs on reused buffers
            let input = Tensor.normal([3, 1, 1, 24014], standardDeviation: 0.3, generator: &generator)
            let upstream = Tensor.normal([3, 3], generator: &generator)
            for net in [inPlace, separate] { net.train(); net.zeroGradients() }
            let a = inPlace(input), b = separate(input)
            #expect(a == b, "step \(step)")
            _ = inPlace.backward(upstream)
            _ = separate.backward(upstream)
            let gradientsA = Dictionary(uniqueKeysWithValues: inPlace.namedParameters().map { ($0.key, $0.parameter.gradient) })
            for (name, parameter) in separate.namedParameters() {
                #expect(gradientsA[name] == parameter.gradient, "\(name) at step \(step)")
            }
        }
    }

    @Test func saveAndLoadKeepConfigurationClassesAndLogits() throws {
        let configuration = EnvNetConfiguration(classCount: 3, hiddenUnits: 8)
        let net = EnvNet(configuration: configuration, seed: 9)
        net.eval()
        var generator = SeededGenerator(seed: 1)
        let input = Tensor.normal([2, 1, 1, 24014], generator: &generator)
        let before = net(input)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try net.save(to: url, classNames: ["dog", "rain", "siren"])
        let (loaded, names) = try EnvNet.load(from: url)
        #expect(names == ["dog", "rain", "siren"] && loaded.configuration == configuration)
        #expect(loaded(input) == before)
    }

    @Test func incompatibleWeightsNameTheTensor() throws {
        var file = try SafeTensors.read(from: Self.fixture("envnet_official"))
        file.tensors["bn3.running_var"] = Tensor.ones([49])
        #expect { try EnvNet.load(file, source: "w.safetensors") } throws: { "\($0)".contains("bn3.running_var") && "\($0)".contains("w.safetensors") }
        file = try SafeTensors.read(from: Self.fixture("envnet_official"))
        file.tensors["conv4.weight"] = nil
        #expect { try EnvNet.load(file, source: "w.safetensors") } throws: { "\($0)".contains("conv4.weight") }
        file = try SafeTensors.read(from: Self.fixture("envnet_official"))
        file.tensors["extra.weight"] = Tensor.ones([1])
        #expect { try EnvNet.load(file, source: "w.safetensors") } throws: { "\($0)".contains("extra.weight") }
    }
}
