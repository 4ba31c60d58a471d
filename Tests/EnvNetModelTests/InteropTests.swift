import EnvNetModel
import Foundation
import Testing

/// PyTorch interop, both directions (Docs/pytorch-interop.md).
///
/// - PyTorch -> Swift: `interop_seed.pt` (a seed-layout PyTorch state_dict made by
///   Tools/make_interop_fixture.py) converted by Tools/pytorch_to_safetensors.py into
///   `interop_seed.safetensors` must give PyTorch's logits (`interop_io.safetensors`).
/// - Swift -> PyTorch: `interop_swift.safetensors` is written by `EnvNet.save` (by this suite's
///   generator, see ``writeSwiftFixture()``) with the logits Swift computes in
///   `interop_swift_io.safetensors`; Tools/check_interop.py converts it to a PyTorch state_dict
///   and checks that PyTorch computes the same logits.
@Suite("PyTorch interop")
struct InteropTests {
    static let classNames = ["dog", "rooster", "pig", "cow", "frog"]

    static func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
    }

    /// `|a − b| ≤ 1e-4 · max(|b|, 1e-2)` for every logit.
    static func expectClose(_ actual: Tensor, _ expected: Tensor, _ comment: String) {
        #expect(actual.shape == expected.shape, "\(comment): shape \(actual.shape) vs \(expected.shape)")
        for (a, b) in zip(actual.scalars, expected.scalars) {
            #expect(Swift.abs(a - b) <= 1e-4 * Swift.max(Swift.abs(b), 1e-2), "\(comment): \(a) vs \(b)")
        }
    }

    @Test func seedStateDictConvertedByTheScriptGivesPyTorchLogits() throws {
        let (net, names) = try EnvNet.load(from: Self.fixture("interop_seed"))
        #expect(net.configuration == EnvNetConfiguration(variant: .seed, classCount: 5, hiddenUnits: 16, dropoutProbability: 0.5))
        #expect(names == Self.classNames)
        let io = try SafeTensors.read(from: Self.fixture("interop_io"))
        let input = try #require(io.tensors["input"]), expected = try #require(io.tensors["logits"])
        #expect(input.shape == [2, 1, 1, 24000])
        Self.expectClose(net(input), expected, "PyTorch logits")

        // The app-facing API reads the converted file too.
        let classifier = try SoundClassifier(contentsOf: Self.fixture("interop_seed"))
        #expect(classifier.classNames == Self.classNames && classifier.configuration.envnet?.variant == .seed)
    }

    @Test func theScriptWritesWhatEnvNetSaveWrites() throws {
        let converted = try SafeTensors.read(from: Self.fixture("interop_seed"))
        let (net, names) = try EnvNet.load(converted, source: "interop_seed.safetensors")
        let saved = net.safeTensors(classNames: names)
        #expect(Set(saved.tensors.keys) == Set(converted.tensors.keys))
        for (key, tensor) in saved.tensors {
            #expect(converted.tensors[key] == tensor, "\(key)")
        }
        // The script writes the keys older versions read; the library adds its model description.
        #expect(Set(converted.metadata.keys) == [EnvNet.MetadataKey.format, EnvNet.MetadataKey.configuration, EnvNet.MetadataKey.classNames])
        #expect(Set(saved.metadata.keys) == Set(converted.metadata.keys).union(
            [ModelDescription.Key.description, ModelDescription.Key.schemaVersion, ModelDescription.Key.network]))
        #expect(saved.metadata[EnvNet.MetadataKey.format] == converted.metadata[EnvNet.MetadataKey.format])
        for key in [EnvNet.MetadataKey.configuration, EnvNet.MetadataKey.classNames] {
            let a = try JSONSerialization.jsonObject(with: Data(try #require(saved.metadata[key]).utf8)) as? NSObject
            let b = try JSONSerialization.jsonObject(with: Data(try #require(converted.metadata[key]).utf8)) as? NSObject
            #expect(a != nil && a == b, "\(key)")
        }
    }

    @Test func swiftWrittenWeightsKeepTheirLogits() throws {
        let file = try SafeTensors.read(from: Self.fixture("interop_swift"))
        #expect(file.metadata[EnvNet.MetadataKey.configuration] != nil && file.metadata[EnvNet.MetadataKey.classNames] != nil)
        let (net, names) = try EnvNet.load(file, source: "interop_swift.safetensors")
        #expect(net.configuration == Self.swiftConfiguration && names == Self.classNames)
        let io = try SafeTensors.read(from: Self.fixture("interop_swift_io"))
        let input = try #require(io.tensors["input"]), expected = try #require(io.tensors["logits"])
        Self.expectClose(net(input), expected, "Swift logits")
    }

    // MARK: - The Swift -> PyTorch fixture

    static let swiftConfiguration = EnvNetConfiguration(variant: .official, classCount: 5, hiddenUnits: 16)

    /// A small official-variant EnvNet with every tensor randomised (BatchNorm statistics and
    /// biases too, so that a mix-up of any two tensors changes the logits).
    static func swiftNetwork() throws -> EnvNet {
        let net = EnvNet(configuration: swiftConfiguration, seed: 2018)
        var generator = SeededGenerator(seed: 2018)
        var state = net.stateDictionary()
        for key in state.keys.sorted() {
            let shape = try #require(state[key]).shape
            if key.hasPrefix("bn") {
                if key.hasSuffix(".weight") { state[key] = 1 + 0.5 * Tensor.normal(shape, generator: &generator) }
                if key.hasSuffix(".bias") { state[key] = 0.5 * Tensor.normal(shape, generator: &generator) }
                if key.hasSuffix(".running_mean") { state[key] = 0.1 * Tensor.normal(shape, generator: &generator) }
                if key.hasSuffix(".running_var") { state[key] = 0.5 + Tensor.uniform(shape, generator: &generator) }
            } else if key.hasSuffix(".bias") {
                state[key] = 0.1 * Tensor.normal(shape, generator: &generator)
            }
        }
        try net.loadStateDictionary(state)
        net.eval()
        return net
    }

    /// Writes `interop_swift.safetensors` (by `EnvNet.save`) and `interop_swift_io.safetensors`
    /// (input and Swift's logits) into the folder named by `ENVNET_WRITE_INTEROP_FIXTURES`:
    ///
    ///     ENVNET_WRITE_INTEROP_FIXTURES=Tests/EnvNetModelTests/Fixtures swift test --filter InteropTests
    @Test(.enabled(if: ProcessInfo.processInfo.environment["ENVNET_WRITE_INTEROP_FIXTURES"] != nil))
    func writeSwiftFixture() throws {
        let folder = URL(fileURLWithPath: try #require(ProcessInfo.processInfo.environment["ENVNET_WRITE_INTEROP_FIXTURES"]))
        let net = try Self.swiftNetwork()
        var generator = SeededGenerator(seed: 2019)
        let loud = Tensor.normal([1, 1, 1, 24014], generator: &generator).scalars
        let quiet = Tensor.normal([1, 1, 1, 24014], standardDeviation: 0.05, generator: &generator).scalars
        let input = Tensor(loud + quiet, shape: [2, 1, 1, 24014])
        let logits = net(input)
        try net.save(to: folder.appendingPathComponent("interop_swift.safetensors"), classNames: Self.classNames)
        try SafeTensors(tensors: ["input": input, "logits": logits]).write(to: folder.appendingPathComponent("interop_swift_io.safetensors"))
    }
}
