import EnvNetModel
import Foundation
import Testing

@Suite("SoundClassifier: the inference API for apps")
struct InferenceTests {
    static let classNames = ["dog", "rain", "siren"]

    /// A small network (3 classes, fc width 8) saved to a temporary file.
    static func weightsFile(seed: UInt64 = 7) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-inference-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("model.safetensors")
        try EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: seed).save(to: url, classNames: classNames)
        return url
    }

    /// A short tone with some noise (shorter than one window, so each classification is one forward pass).
    static func buffer(frequency: Float, count: Int, sampleRate: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { index in
            0.3 * sinf(2 * .pi * frequency * Float(index) / Float(sampleRate)) + 0.05 * Float.random(in: -1...1, using: &generator)
        }
    }

    @Test func loadsWeightsAndClassifiesIntoADistribution() throws {
        let classifier = try SoundClassifier(contentsOf: Self.weightsFile())
        #expect(classifier.classNames == Self.classNames)
        #expect(classifier.configuration == .envnet(EnvNetConfiguration(classCount: 3, hiddenUnits: 8)))
        #expect(classifier.scheme == .probabilityVoting(hop: 3200))
        let samples = Self.buffer(frequency: 440, count: 20_000, sampleRate: 16_000, seed: 1)
        let result = try classifier.classify(samples: samples, sampleRate: 16_000, topK: 10)
        #expect(result.probabilities.count == 3)
        #expect(abs(result.probabilities.reduce(0, +) - 1) < 1e-5)
        #expect(result.windowCount == 1)
        #expect(result.top.count == 3)  // clamped to the class count
        #expect(zip(result.top, result.top.dropFirst()).allSatisfy { $0.probability >= $1.probability })
        #expect(result.top.map(\.label) == result.top.map { Self.classNames[$0.index] })
        #expect(result.best?.probability == result.probabilities.max())
        #expect(result.best?.index == ClipEvaluator.argmax(result.probabilities))
        #expect(!result.isSilent && result.fallback == nil)
        let top1 = try classifier.classify(samples: samples, sampleRate: 16_000, topK: 1)
        #expect(top1.top == [try #require(result.best)] && top1.probabilities == result.probabilities)
        // The buffer is peak-normalized first, so its gain does not matter.
        let louder = try classifier.classify(samples: samples.map { $0 * 2 }, sampleRate: 16_000, topK: 1)
        #expect(louder.probabilities == result.probabilities)
        // The same as preprocessing by hand.
        let manual = try classifier.classify(preprocessedSamples: peakNormalized(samples), topK: 1)
        #expect(manual.probabilities == result.probabilities)
    }

    @Test func concurrentCallsGiveExactlyTheSerialResults() async throws {
        let classifier = try SoundClassifier(contentsOf: Self.weightsFile())
        let buffers = [(220, 1), (1000, 2), (3000, 3)].map { Self.buffer(frequency: Float($0.0), count: 18_000, sampleRate: 16_000, seed: UInt64($0.1)) }
        let serial = try buffers.map { try classifier.classify(samples: $0, sampleRate: 16_000, topK: 2) }
        #expect(serial[0].probabilities != serial[1].probabilities)
        let results = try await withThrowingTaskGroup(of: (Int, Classification).self) { group in
            for task in 0..<8 {
                group.addTask {
                    (task, try classifier.classify(samples: buffers[task % 3], sampleRate: 16_000, topK: 2))
                }
            }
            var collected: [(Int, Classification)] = []
            for try await result in group { collected.append(result) }
            return collected
        }
        #expect(results.count == 8)
        for (task, classification) in results { #expect(classification == serial[task % 3], "task \(task)") }
    }

    @Test func buffersAtOtherRatesAreResampledTo16kHz() throws {
        let classifier = try SoundClassifier(contentsOf: Self.weightsFile())
        let samples = Self.buffer(frequency: 500, count: 11_000, sampleRate: 8_000, seed: 4)
        let result = try classifier.classify(samples: samples, sampleRate: 8_000, topK: 3)
        let resampled = try Resampler(from: 8_000, to: 16_000).process(samples)
        #expect(resampled.count == 22_000)
        let manual = try classifier.classify(preprocessedSamples: peakNormalized(resampled), topK: 3)
        #expect(result == manual)
        #expect(result != (try classifier.classify(samples: samples, sampleRate: 16_000, topK: 3)))
    }

    @Test func filesAreDecodedResampledAndClassified() throws {
        let classifier = try SoundClassifier(contentsOf: Self.weightsFile())
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-inference-audio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("tone.wav")
        let samples = Self.buffer(frequency: 700, count: 30_000, sampleRate: 44_100, seed: 5)
        try WAVWriter.write(samples, sampleRate: 44_100, format: .float32, to: url)
        let fromFile = try classifier.classify(contentsOf: url, topK: 2)
        let fromBuffer = try classifier.classify(samples: samples, sampleRate: 44_100, topK: 2)
        #expect(fromFile == fromBuffer)
        #expect(fromFile.windowCount == 1)

        // Bad files propagate the decoder's error, naming the file.
        let missing = folder.appendingPathComponent("missing.wav")
        #expect(throws: AudioError.self) { try classifier.classify(contentsOf: missing) }
        let garbage = folder.appendingPathComponent("garbage.wav")
        try Data("this is not a WAV file".utf8).write(to: garbage)
        do {
            _ = try classifier.classify(contentsOf: garbage)
            Issue.record("a garbage file was classified")
        } catch let error as AudioError {
            #expect(error.source == garbage.path)
        }
        let empty = folder.appendingPathComponent("empty.wav")
        try WAVWriter.write([], sampleRate: 16_000, format: .pcm16, to: empty)
        #expect(throws: EnvNetError.invalidInput("\(empty.path): the file holds no samples")) { try classifier.classify(contentsOf: empty) }
        #expect(throws: EnvNetError.self) { try classifier.classify(contentsOf: url, topK: 0) }
    }

    @Test func badInputIsATypedError() throws {
        let classifier = try SoundClassifier(contentsOf: Self.weightsFile())
        #expect(throws: EnvNetError.invalidInput("the audio buffer is empty")) { try classifier.classify(samples: [], sampleRate: 16_000) }
        #expect(throws: EnvNetError.invalidInput("the audio buffer: the sample rate must be positive, got 0")) { try classifier.classify(samples: [0.1], sampleRate: 0) }
        #expect(throws: EnvNetError.self) { try classifier.classify(samples: [0.1], sampleRate: -8_000) }
        #expect(throws: EnvNetError.invalidInput("the audio buffer: topK must be at least 1, got 0")) { try classifier.classify(samples: [0.1], sampleRate: 16_000, topK: 0) }
        #expect(throws: EnvNetError.self) { try classifier.classify(samples: [0.1, .infinity], sampleRate: 16_000) }
        #expect(throws: EnvNetError.self) { try classifier.classify(preprocessedSamples: [.nan]) }
        // A rate pair the resampler cannot build a table for is the resampler's error.
        #expect(throws: AudioError.self) { try classifier.classify(samples: [0.1, 0.2], sampleRate: 999_983) }
        // Silence still gets a classification.
        #expect(try classifier.classify(samples: [Float](repeating: 0, count: 100), sampleRate: 16_000).windowCount == 1)

        let weights = try Self.weightsFile()
        #expect(throws: EnvNetError.self) { try SoundClassifier(contentsOf: weights, scheme: .probabilityVoting(hop: 0)) }
        #expect(throws: EnvNetError.self) { try SoundClassifier(contentsOf: weights, settings: PreprocessingSettings(sampleRate: 8_000)) }
        #expect(throws: EnvNetError.self) { try SoundClassifier(contentsOf: weights, batchSize: 0) }
        #expect(throws: EnvNetError.self) {
            try SoundClassifier(network: EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8)), classNames: ["a"])
        }
        let damaged = weights.deletingLastPathComponent().appendingPathComponent("damaged.safetensors")
        try Data([1, 2, 3]).write(to: damaged)
        #expect(throws: SafeTensorsError.self) { try SoundClassifier(contentsOf: damaged) }
    }

    @Test func classificationRanksCandidates() throws {
        let result = try Classification(probabilities: [0.2, 0.5, 0.2, 0.1], classNames: ["a", "b", "c", "d"], topK: 3, windowCount: 4)
        #expect(result.top.map(\.index) == [1, 0, 2])  // the tie 0.2/0.2 in class order
        #expect(result.best == Classification.Candidate(label: "b", index: 1, probability: 0.5))
        // A silent recording has no answer; its loudest window's class is only a fallback.
        let silent = try Classification(probabilities: [0.2, 0.5, 0.2, 0.1], classNames: ["a", "b", "c", "d"], topK: 3, windowCount: 1, isSilent: true)
        #expect(silent.isSilent && silent.top.isEmpty && silent.best == nil)
        #expect(silent.fallback == Classification.Candidate(label: "b", index: 1, probability: 0.5))
        let unscored = try Classification(probabilities: [0, 0, 0, 0], classNames: ["a", "b", "c", "d"], topK: 3, windowCount: 0, isSilent: true)
        #expect(unscored.fallback == nil && unscored.best == nil)
        #expect(throws: EnvNetError.self) { try Classification(probabilities: [1], classNames: ["a", "b"], topK: 1, windowCount: 1) }
        #expect(throws: EnvNetError.self) { try Classification(probabilities: [], classNames: [], topK: 1, windowCount: 1) }
        #expect(throws: EnvNetError.self) { try Classification(probabilities: [1], classNames: ["a"], topK: 0, windowCount: 1) }
    }
}
