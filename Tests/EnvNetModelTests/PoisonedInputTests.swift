import Foundation
import Testing

@testable import EnvNetModel

/// Issue 14, points 1 and 2: a near-silent clip must not make a NaN model, training never saves
/// non-finite weights, and weights with NaN, infinities or negative variances are refused on load.
@Suite("Poisoned inputs: denormal clips, non-finite weights")
struct PoisonedInputTests {
    static let configuration = EnvNetConfiguration(classCount: 3, hiddenUnits: 8)
    /// 1e-39, a denormal float (the smallest normal is about 1.2e-38).
    static let denormal = Float.leastNormalMagnitude / 12

    @Test func aDenormalPeakIsSilenceNotInfinity() throws {
        let tiny = [Float](repeating: Self.denormal, count: 100) + [-Self.denormal]
        #expect(tiny[0] < Float.leastNormalMagnitude && tiny[0] > 0)
        let normalized = peakNormalized(tiny)
        #expect(normalized == tiny && normalized.allSatisfy(\.isFinite))
        #expect(peakNormalized([Float.leastNormalMagnitude, 0]) == [1, 0])
        // Through the classifier: finite input, no "sample 0 is nan", and silent.
        let classifier = try SoundClassifier(network: EnvNet(configuration: Self.configuration, seed: 1), classNames: ["a", "b", "c"])
        let result = try classifier.classify(samples: [Float](repeating: Self.denormal, count: 30_000), sampleRate: 16_000)
        #expect(result.isSilent && result.probabilities.allSatisfy(\.isFinite))
    }

    @Test func trainingWithADenormalClipKeepsFiniteWeights() throws {
        var generator = SeededGenerator(seed: 2)
        var clips = (0..<5).map { index in
            LabeledClip(samples: (0..<26_000).map { _ in Float(0.5 * generator.nextGaussian()) }, label: index % 3, name: "noise\(index)")
        }
        clips.append(LabeledClip(samples: peakNormalized([Float](repeating: Self.denormal, count: 26_000)), label: 0, name: "denormal"))
        var recipe = TrainingConfiguration()
        recipe.epochs = 1
        recipe.batchSize = 6
        let network = EnvNet(configuration: Self.configuration, seed: 3)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-denormal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Trainer(network: network, training: clips, classNames: ["a", "b", "c"], configuration: recipe, runFolder: folder).run()
        #expect(Trainer.firstNonFiniteTensor(in: network) == nil)
    }

    @Test func theStepCheckNamesTheFirstNonFiniteTensor() throws {
        let network = EnvNet(configuration: Self.configuration, seed: 4)
        #expect(Trainer.firstNonFiniteTensor(in: network) == nil)
        let (key, parameter) = try #require(network.namedParameters().first { $0.key == "bn1.weight" })
        parameter.value.withUnsafeMutableBufferPointer { $0[3] = .nan }
        #expect(Trainer.firstNonFiniteTensor(in: network) == key)
        let other = EnvNet(configuration: Self.configuration, seed: 4)
        let buffer = try #require(other.namedBuffers().first { $0.key == "bn2.running_var" })
        buffer.buffer.value.withUnsafeMutableBufferPointer { $0[0] = .infinity }
        #expect(Trainer.firstNonFiniteTensor(in: other) == "bn2.running_var")
        #expect(TrainingError.nonFiniteWeights(epoch: 2, step: 3, tensor: "bn1.weight", checkpoint: nil).description
                == "training diverged: bn1.weight became NaN or infinite at epoch 2, step 3; no model was saved")
    }

    @Test(arguments: [("fc5.weight", Float.nan), ("conv1.weight", Float.infinity), ("bn3.running_var", Float(-1)), ("bn2.running_mean", -Float.infinity)])
    func poisonedWeightsAreRefusedByName(key: String, value: Float) throws {
        let network = EnvNet(configuration: Self.configuration, seed: 5)
        let tensor = try #require(network.namedParameters().first { $0.key == key }?.parameter.value
                                  ?? network.namedBuffers().first { $0.key == key }?.buffer.value)
        var poisoned = tensor
        poisoned.withUnsafeMutableBufferPointer { $0[1] = value }
        if let parameter = network.namedParameters().first(where: { $0.key == key })?.parameter { parameter.value = poisoned }
        if let buffer = network.namedBuffers().first(where: { $0.key == key })?.buffer { buffer.value = poisoned }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-poisoned-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try network.save(to: url, classNames: ["a", "b", "c"])
        #expect { try EnvNet.loadModel(from: url) } throws: { error in
            guard case let .incompatibleWeights(path, reason) = error as? EnvNetError else { return false }
            return path == url.path && reason.hasPrefix("\(key): element 1 is")
        }
        #expect(throws: EnvNetError.self) { try SoundClassifier(contentsOf: url) }
    }
}
