import EnvNetModel
import Foundation
import Testing

/// Issue 8's concurrency stress test: 16 tasks classify many files at once through ONE loaded
/// `SoundClassifier` and must get exactly (bit for bit) the serial results, errors included.
///
/// Also run under the thread sanitizer (see Docs/reliability.md):
/// `swift test --sanitize=thread --scratch-path .build-tsan --filter ConcurrencyStressTests`.
@Suite("Concurrency stress: one classifier, many tasks, many files")
struct ConcurrencyStressTests {
    static let taskCount = 16

    /// The kinds of input each task feeds the classifier.
    enum Input: Sendable {
        case file(URL)
        case buffer([Float], sampleRate: Int)
        case preprocessed([Float])
    }

    /// A result or the error's text, comparable.
    enum Outcome: Equatable, Sendable {
        case classified(Classification)
        case failed(String)
    }

    static func classify(_ input: Input, with classifier: SoundClassifier) -> Outcome {
        do {
            switch input {
            case let .file(url): return .classified(try classifier.classify(contentsOf: url, topK: 2))
            case let .buffer(samples, rate): return .classified(try classifier.classify(samples: samples, sampleRate: rate, topK: 3))
            case let .preprocessed(samples): return .classified(try classifier.classify(preprocessedSamples: samples, topK: 1))
            }
        } catch {
            return .failed("\(error)")
        }
    }

    /// 14 files (rates 8 to 48 kHz, mono and stereo, 16-bit and float, one to three windows long,
    /// two of them broken), plus buffers (two of them invalid) and preprocessed samples: 22 inputs.
    static func inputs(in folder: URL) throws -> [Input] {
        var generator = SeededGenerator(seed: 42)
        func tone(count: Int, rate: Int) -> [Float] {
            let frequency = Float.random(in: 100...3000, using: &generator)
            return (0..<count).map { index in
                0.4 * sinf(2 * .pi * frequency * Float(index) / Float(rate)) + 0.1 * Float.random(in: -1...1, using: &generator)
            }
        }
        var inputs: [Input] = []
        let rates = [8_000, 16_000, 22_050, 44_100, 48_000, 16_000]
        for index in 0..<12 {
            let rate = rates[index % rates.count]
            // One window below 1.5 s, three with a 0.2 s hop at 1.9 s; short files where resampling
            // (slow in debug builds) is needed.
            let seconds = rate == 16_000 ? [1.9, 1.2][index % 2] : [0.3, 0.5, 0.7][index % 3]
            let count = Int(seconds * Double(rate))
            let channels = index % 3 == 0 ? [tone(count: count, rate: rate), tone(count: count, rate: rate)] : [tone(count: count, rate: rate)]
            let url = folder.appendingPathComponent("clip\(index).wav")
            try WAVWriter.write(channels: channels, sampleRate: rate, format: index % 2 == 0 ? .pcm16 : .float32, to: url)
            inputs.append(.file(url))
        }
        let garbage = folder.appendingPathComponent("garbage.wav")
        try Data("RIFF\u{0}\u{0}\u{0}\u{0}WAVEnot really".utf8).write(to: garbage)
        inputs.append(.file(garbage))
        inputs.append(.file(folder.appendingPathComponent("missing.wav")))
        for rate in [11_025, 16_000, 32_000, 44_100] {
            inputs.append(.buffer(tone(count: Int(Double(rate) * (rate == 16_000 ? 1.7 : 0.4)), rate: rate), sampleRate: rate))
        }
        inputs.append(.buffer([], sampleRate: 16_000))  // an error
        inputs.append(.buffer([0.1, .nan, 0.2], sampleRate: 16_000))  // an error
        inputs.append(.preprocessed(tone(count: 30_000, rate: 16_000)))
        inputs.append(.preprocessed([Float](repeating: 0, count: 5_000)))  // silent
        return inputs
    }

    @Test(.timeLimit(.minutes(3)))
    func sixteenTasksThroughOneClassifierGiveExactlyTheSerialResults() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-stress-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let weights = folder.appendingPathComponent("model.safetensors")
        try EnvNet(configuration: EnvNetConfiguration(classCount: 5, hiddenUnits: 8), seed: 12)
            .save(to: weights, classNames: ["a", "b", "c", "d", "e"])
        let classifier = try SoundClassifier(contentsOf: weights)
        let inputs = try Self.inputs(in: folder)

        let serial = inputs.map { Self.classify($0, with: classifier) }
        let failures = serial.filter { if case .failed = $0 { return true } else { return false } }.count
        #expect(failures == 4, "\(serial)")
        #expect(Set(serial.compactMap { if case let .classified(c) = $0 { return c.probabilities } else { return nil } }).count == inputs.count - failures,
                "the inputs should give different results, so that a mix-up would show")

        // Every task classifies half of the inputs (every input goes through 8 tasks), each task in
        // its own seeded order.
        let outcomes = await withTaskGroup(of: [(Int, Outcome)].self) { group in
            for task in 0..<Self.taskCount {
                group.addTask {
                    var generator = SeededGenerator(seed: UInt64(task))
                    return inputs.indices.filter { ($0 + task) % 2 == 0 }.shuffled(using: &generator)
                        .map { ($0, Self.classify(inputs[$0], with: classifier)) }
                }
            }
            var collected: [(Int, Outcome)] = []
            for await results in group { collected += results }
            return collected
        }
        #expect(outcomes.count == Self.taskCount * inputs.count / 2)
        var mismatches = 0
        for (index, outcome) in outcomes where outcome != serial[index] {
            mismatches += 1
            if mismatches <= 3 { Issue.record("input \(index): \(outcome) instead of the serial \(serial[index])") }
        }
        #expect(mismatches == 0, "\(mismatches) of \(outcomes.count) concurrent classifications differ from the serial ones")
    }
}
