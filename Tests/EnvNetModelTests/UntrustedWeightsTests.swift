import EnvNetModel
import Foundation
import Testing

/// Regressions from fuzzing `EnvNet.load` (Fuzz/FuzzSafeTensors): the configuration a file claims
/// is checked against the tensors it holds before anything is allocated.
@Suite("Untrusted weights: the claimed network must fit the file")
struct UntrustedWeightsTests {
    /// A small model as written before the model description existed (configuration and class names only).
    static func smallFile() -> SafeTensors {
        var file = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: 1).safeTensors(classNames: ["a", "b", "c"])
        for key in [ModelDescription.Key.description, ModelDescription.Key.schemaVersion, ModelDescription.Key.network] { file.metadata[key] = nil }
        return file
    }

    @Test func aHugeWidthClaimedByTheModelDescriptionIsRefusedWithoutAllocating() throws {
        var description = ModelDescription(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), classNames: ["a", "b", "c"])
        description.configuration.hiddenUnits = 1_000_000_000_000
        var file = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: 1).safeTensors(classNames: ["a", "b", "c"])
        file.metadata[ModelDescription.Key.description] = String(decoding: try JSONEncoder().encode(description), as: UTF8.self)
        file.metadata[EnvNet.MetadataKey.configuration] = nil
        let message = Self.failure(file)
        #expect(message.contains("fc5.weight") && message.contains("[8, 7700]"), "\(message)")
    }

    @Test func aDescriptionThatDisagreesWithTheOlderKeysIsRefused() throws {
        var file = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: 1).safeTensors(classNames: ["a", "b", "c"])
        file.metadata[EnvNet.MetadataKey.configuration] = try Self.configurationText(classCount: 3, hiddenUnits: 16)
        let message = Self.failure(file)
        #expect(message.contains("disagrees"), "\(message)")
    }

    static func configurationText(classCount: Int, hiddenUnits: Int) throws -> String {
        String(decoding: try JSONEncoder().encode(EnvNetConfiguration(classCount: classCount, hiddenUnits: hiddenUnits)), as: UTF8.self)
    }

    /// Loads and returns the error's text (the test fails when it loads).
    static func failure(_ file: SafeTensors, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        do {
            _ = try EnvNet.load(file, source: "bad.safetensors")
            Issue.record("the file loaded", sourceLocation: sourceLocation)
            return ""
        } catch {
            #expect(error is EnvNetError, sourceLocation: sourceLocation)
            #expect("\(error)".contains("bad.safetensors"), sourceLocation: sourceLocation)
            return "\(error)"
        }
    }

    @Test func aHugeClaimedWidthIsRefusedWithoutAllocating() throws {
        // 100 bytes of metadata used to make load build fc5/fc6 of 10^12 units (terabytes).
        var file = Self.smallFile()
        file.metadata[EnvNet.MetadataKey.configuration] = try Self.configurationText(classCount: 3, hiddenUnits: 1_000_000_000_000)
        let message = Self.failure(file)
        #expect(message.contains("fc5.weight") && message.contains("[8, 7700]"), "\(message)")
    }

    @Test func aHugeClaimedClassCountIsRefusedWithoutAllocating() throws {
        // Also the class-name list (10^12 strings) must not be built first.
        var file = Self.smallFile()
        file.metadata[EnvNet.MetadataKey.configuration] = try Self.configurationText(classCount: 1_000_000_000_000, hiddenUnits: 8)
        file.metadata[EnvNet.MetadataKey.classNames] = nil
        let message = Self.failure(file)
        #expect(message.contains("fc7.weight"), "\(message)")
    }

    @Test func missingOrMisshapenFullyConnectedWeightsAreNamed() throws {
        for (key, replacement) in [("fc6.weight", nil), ("fc6.weight", Tensor.zeros([8, 9])), ("fc7.weight", Tensor.zeros([3, 9])),
                                   ("fc5.weight", Tensor.zeros([8, 7699]))] as [(String, Tensor?)] {
            var file = Self.smallFile()
            file.tensors[key] = replacement
            let message = Self.failure(file)
            #expect(message.contains(key), "\(key): \(message)")
        }
        // Without metadata the configuration is inferred from fc5 and fc7, and fc6 must agree.
        var inferred = Self.smallFile()
        inferred.metadata = [:]
        inferred.tensors["fc6.weight"] = Tensor.zeros([8, 16])
        #expect(Self.failure(inferred).contains("fc6.weight"))
        // The intact file still loads.
        let (network, names) = try EnvNet.load(Self.smallFile(), source: "good.safetensors")
        #expect(network.configuration == EnvNetConfiguration(classCount: 3, hiddenUnits: 8) && names == ["a", "b", "c"])
    }
}
