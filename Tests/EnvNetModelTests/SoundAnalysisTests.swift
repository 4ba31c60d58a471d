import EnvNetModel
import Foundation
import Testing

/// A value several tasks or threads update (the progress callback runs on the analysis thread).
private final class Box<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
    func update(_ change: (inout Value) -> Void) { lock.withLock { change(&stored) } }
}

@Suite("File analysis like SNAudioFileAnalyzer: windows with time ranges, silence, async, cancellation")
struct SoundAnalysisTests {
    static let classNames = ["dog", "rain", "siren"]
    static let window = EnvNetConfiguration(classCount: 3).inputLength

    static func classifier() throws -> SoundClassifier {
        try SoundClassifier(network: EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: 5), classNames: classNames)
    }

    /// Noisy tones with a quiet stretch, at `rate`, written as 16-bit WAV.
    static func recording(seconds: Double, rate: Int, quietFrom: Double = .infinity, quietTo: Double = .infinity,
                          level: Float = 0.6, seed: UInt64 = 1) throws -> URL {
        var generator = SeededGenerator(seed: seed)
        let count = Int(seconds * Double(rate))
        let samples = (0..<count).map { index -> Float in
            let time = Double(index) / Double(rate)
            if time >= quietFrom && time < quietTo { return 0 }
            let tone = sinf(2 * .pi * Float(300 + 200 * (Int(time) % 4)) * Float(time))
            return level * (0.7 * tone + 0.3 * Float.random(in: -1...1, using: &generator))
        }
        return try write(samples, rate: rate)
    }

    static func write(_ samples: [Float], rate: Int) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-analysis-\(UUID().uuidString).wav")
        try WAVWriter.write(samples, sampleRate: rate, format: .pcm16, to: url)
        return url
    }

    @Test func windowsCarryTimeRangesAtTheRequestedSpacing() throws {
        let classifier = try Self.classifier()
        let file = try Self.recording(seconds: 6, rate: 44_100)
        defer { try? FileManager.default.removeItem(at: file) }
        // SoundAnalysis's default overlap of 0.5: a window every half window.
        let half = try classifier.analyze(contentsOf: file)
        let hop = (Double(Self.window) * 0.5).rounded() / 16_000
        #expect(abs(half.hopDuration - hop) < 1e-9)
        #expect(abs(half.windowDuration - Double(Self.window) / 16_000) < 1e-12)
        #expect(half.windows.count == (6 * 16_000 - Self.window) / Int(hop * 16_000) + 1)
        for (index, window) in half.windows.enumerated() {
            #expect(window.index == index)
            #expect(abs(window.timeRange.start - Double(index) * hop) < 1e-9)
            #expect(abs(window.timeRange.duration - half.windowDuration) < 1e-12)
            #expect(window.timeRange.end <= 6 + 1e-9)
            #expect(!window.isSilent && window.top.count == 3 && window.probabilities?.count == 3)
            #expect(abs((window.probabilities ?? []).reduce(0, +) - 1) < 1e-5)
        }
        #expect(abs(half.duration - 6) < 1e-9 && half.sampleRate == 44_100)
        // A hop in seconds.
        let fine = try classifier.analyze(contentsOf: file, request: SoundAnalysisRequest(hopDuration: 0.5))
        #expect(fine.windows.map(\.timeRange.start) == (0..<fine.windows.count).map { Double($0) * 0.5 })
        #expect(fine.windowCount == (6 * 16_000 - Self.window) / 8000 + 1)
        // The strongest windows of the decided class, strongest first.
        let best = try #require(fine.classification.best)
        let strongest = fine.strongestWindows.map { $0.probabilities![best.index] }
        #expect(strongest.count == 3 && strongest == strongest.sorted(by: >))
        #expect(strongest[0] == fine.windows.map { $0.probabilities![best.index] }.max())
    }

    @Test func atTheVotingHopTheDecisionIsClassifys() throws {
        let classifier = try Self.classifier()
        let file = try Self.recording(seconds: 5, rate: 44_100, quietFrom: 2, quietTo: 2.6, seed: 2)
        defer { try? FileManager.default.removeItem(at: file) }
        let analysis = try classifier.analyze(contentsOf: file, request: SoundAnalysisRequest(hopDuration: 0.2))
        let whole = try classifier.classify(contentsOf: file, topK: 3)
        #expect(analysis.classification.windowCount == whole.windowCount)
        #expect(analysis.classification.best?.index == whole.best?.index)
        for (a, b) in zip(analysis.classification.probabilities, whole.probabilities) { #expect(abs(a - b) < 1e-5) }
        // Each window as the network sees it after dividing the whole recording by its peak.
        #expect(analysis.windows.allSatisfy { !$0.isSilent })
        // Normalizing each window instead reads the file once and still gives a decision.
        let perWindow = try classifier.analyze(contentsOf: file, request: SoundAnalysisRequest(hopDuration: 0.2, normalization: .window))
        #expect(perWindow.windowCount == analysis.windowCount && perWindow.classification.best != nil)
    }

    @Test func aShortRecordingIsOneWindowOverAllOfIt() throws {
        let classifier = try Self.classifier()
        let file = try Self.recording(seconds: 1, rate: 22_050)
        defer { try? FileManager.default.removeItem(at: file) }
        let analysis = try classifier.analyze(contentsOf: file)
        #expect(analysis.windows.count == 1)
        #expect(analysis.windows[0].timeRange == TimeRange(start: 0, duration: 1))
        #expect(analysis.classification.best != nil && analysis.classification.windowCount == 1)
    }

    @Test func zerosAndAFaintHumAreSilentAndAQuietSoundIsNot() throws {
        let classifier = try Self.classifier()
        #expect(classifier.silenceThresholdDecibels == SilenceDetection.defaultThresholdDecibels)
        let zeros = try Self.write([Float](repeating: 0, count: 3 * 16_000), rate: 16_000)
        // A 50 Hz hum peaking at -60 dBFS (0.001), as an idle input picks up.
        let hum = try Self.write((0..<(3 * 48_000)).map { 0.001 * sinf(2 * .pi * 50 * Float($0) / 48_000) }, rate: 48_000)
        // A quiet but real sound: clicks peaking at -20 dBFS over near-silence.
        let ticks = try Self.write((0..<(3 * 16_000)).map { $0 % 8000 < 40 ? 0.1 * sinf(Float($0)) : 0.0001 * sinf(Float($0) * 0.37) }, rate: 16_000)
        defer { for url in [zeros, hum, ticks] { try? FileManager.default.removeItem(at: url) } }
        for file in [zeros, hum] {
            let analysis = try classifier.analyze(contentsOf: file)
            #expect(analysis.isSilent && analysis.classification.best == nil && analysis.classification.top.isEmpty, "\(file.lastPathComponent)")
            #expect(analysis.windows.allSatisfy { $0.isSilent && $0.probabilities == nil && $0.top.isEmpty })
            #expect(analysis.silentWindowCount == analysis.windowCount && analysis.strongestWindows.isEmpty)
            let whole = try classifier.classify(contentsOf: file)
            #expect(whole.isSilent && whole.best == nil)
            #expect(whole.fallback != nil)  // the loudest window's class, secondary
        }
        #expect(try classifier.analyze(contentsOf: zeros).windows.allSatisfy { $0.peakDecibels == nil })
        let humAnalysis = try classifier.analyze(contentsOf: hum, keepingWindows: false)
        #expect(humAnalysis.windows.isEmpty && humAnalysis.windowCount > 0)
        let humPeak = try #require(humAnalysis.peakDecibels)
        #expect(abs(humPeak + 60) < 0.5)
        #expect(try classifier.analyze(contentsOf: zeros).peakDecibels == nil)
        let quiet = try classifier.analyze(contentsOf: ticks)
        #expect(!quiet.isSilent && quiet.classification.best != nil)
        #expect(try classifier.classify(contentsOf: ticks).best != nil)
        // A stricter threshold makes the ticks silent too: the rule is the one given.
        let strict = try classifier.analyze(contentsOf: ticks, request: SoundAnalysisRequest(silenceThresholdDecibels: -10))
        #expect(strict.isSilent && strict.silenceThresholdDecibels == -10)
        // And the stream analyser over the same model applies the same rule.
        let stream = try classifier.makeStreamAnalyzer(sourceSampleRate: 48_000)
        let humSamples = (0..<(3 * 48_000)).map { 0.001 * sinf(2 * .pi * 50 * Float($0) / 48_000) }
        let results = try stream.process(humSamples) + stream.finish()
        #expect(!results.isEmpty && results.allSatisfy { $0.isSilent && $0.smoothedBest == nil })
    }

    @Test func badRequestsAreTypedErrors() throws {
        let classifier = try Self.classifier()
        let file = try Self.recording(seconds: 2, rate: 16_000)
        defer { try? FileManager.default.removeItem(at: file) }
        for request in [SoundAnalysisRequest(overlapFactor: 1), SoundAnalysisRequest(overlapFactor: -0.1), SoundAnalysisRequest(overlapFactor: .nan),
                        SoundAnalysisRequest(hopDuration: 0), SoundAnalysisRequest(hopDuration: .infinity),
                        SoundAnalysisRequest(silenceThresholdDecibels: 3), SoundAnalysisRequest(topK: 0)] {
            #expect(throws: EnvNetError.self) { try classifier.analyze(contentsOf: file, request: request) }
        }
        let missing = file.deletingLastPathComponent().appendingPathComponent("no-such-\(UUID().uuidString).wav")
        #expect(throws: AudioError.self) { try classifier.analyze(contentsOf: missing) }
    }

    @Test func asyncAnalysisReportsProgressAndMatchesTheSynchronousOne() async throws {
        let classifier = try Self.classifier()
        let file = try Self.recording(seconds: 8, rate: 16_000, seed: 3)
        defer { try? FileManager.default.removeItem(at: file) }
        let steps = Box<[SoundAnalysisProgress]>([])
        let analysis = try await classifier.analyze(contentsOf: file, request: SoundAnalysisRequest(hopDuration: 0.5)) { step in
            steps.update { $0.append(step) }
        }
        let recorded = steps.value
        #expect(recorded.count > 10)
        #expect(zip(recorded, recorded.dropFirst()).allSatisfy { $0.fractionCompleted <= $1.fractionCompleted })
        #expect(recorded.last?.fractionCompleted == 1 && recorded.last?.pass == 2)
        #expect(recorded.contains { $0.pass == 1 })  // the peak pass of recording normalization
        // In an async context the async overload is chosen; a synchronous closure calls the other.
        let synchronous = try { try classifier.analyze(contentsOf: file, request: SoundAnalysisRequest(hopDuration: 0.5)) }()
        #expect(analysis == synchronous)
        // The same windows as an AsyncSequence.
        var streamed: [SoundWindowResult] = []
        for try await window in classifier.windowResults(contentsOf: file, request: SoundAnalysisRequest(hopDuration: 0.5)) {
            streamed.append(window)
        }
        #expect(streamed == synchronous.windows)
    }

    @Test func cancellingTheTaskStopsWithinOneWindow() async throws {
        let classifier = try Self.classifier()
        let file = try Self.recording(seconds: 60, rate: 16_000, seed: 4)
        defer { try? FileManager.default.removeItem(at: file) }
        let request = SoundAnalysisRequest(hopDuration: 0.75)
        let total = (60 * 16_000 - Self.window) / 12_000 + 1
        let windowsAtCancel = Box<Int?>(nil), lastSeen = Box(0)
        let task = Box<Task<SoundFileAnalysis, Error>?>(nil)
        task.value = Task {
            try await classifier.analyze(contentsOf: file, request: request, keepingWindows: false) { step in
                lastSeen.value = step.windowsAnalyzed
                if step.windowsAnalyzed >= 5, windowsAtCancel.value == nil, let running = task.value {
                    windowsAtCancel.value = step.windowsAnalyzed
                    running.cancel()
                }
            }
        }
        // The task handle is stored before the first window is done (a window takes milliseconds).
        let result = await task.value!.result
        guard case let .failure(error) = result else { Issue.record("the analysis ran to the end"); return }
        #expect(error is CancellationError)
        let atCancel = try #require(windowsAtCancel.value)
        #expect(lastSeen.value <= atCancel + 1, "\(lastSeen.value) windows after cancelling at \(atCancel)")
        #expect(atCancel < total)

        // Ending an AsyncSequence loop early stops the analysis too (no error: the loop just ends).
        var seen = 0
        for try await _ in classifier.windowResults(contentsOf: file, request: request) {
            seen += 1
            if seen == 3 { break }
        }
        #expect(seen == 3)
    }

    @Test func streamChunksAsAnAsyncSequenceGiveTheStreamsResults() async throws {
        let classifier = try Self.classifier()
        var generator = SeededGenerator(seed: 9)
        let samples = (0..<(3 * 16_000)).map { _ in 0.5 * Float.random(in: -1...1, using: &generator) }
        let chunks = AsyncStream<[Float]> { continuation in
            for start in stride(from: 0, to: samples.count, by: 4000) { continuation.yield(Array(samples[start..<min(start + 4000, samples.count)])) }
            continuation.finish()
        }
        let stream = try classifier.makeStreamAnalyzer(sourceSampleRate: 16_000)
        var results: [StreamingResult] = []
        for try await result in stream.results(for: chunks) { results.append(result) }
        let reference = try classifier.makeStreamAnalyzer(sourceSampleRate: 16_000)
        let expected = try reference.process(samples) + reference.finish()
        #expect(results.count == expected.count && results.count == (3 * 16_000 - Self.window) / 3200 + 1)
        #expect(results.map(\.startSample) == expected.map(\.startSample))
        for (a, b) in zip(results, expected) {
            for (x, y) in zip(a.probabilities ?? [], b.probabilities ?? []) { #expect(abs(x - y) < 1e-5) }
        }
    }
}
