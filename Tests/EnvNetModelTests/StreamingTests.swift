import EnvNetModel
import Foundation
import Testing

@Suite("StreamingClassifier: chunked audio in, one result per hop out")
struct StreamingTests {
    static let classNames = ["dog", "rain", "siren"]
    static let length = EnvNetConfiguration().inputLength

    /// A cheap deterministic scorer that depends on every sample of a window: the softmax of
    /// three fixed random projections. Each row depends only on its own window.
    static func projectionScorer(length: Int = length, seed: UInt64 = 11) -> WindowScorer {
        var generator = SeededGenerator(seed: seed)
        let weights = (0..<3).map { _ in (0..<length).map { _ in Double.random(in: -1...1, using: &generator) / 40 } }
        return { windows in
            windows.map { window in
                let logits = weights.map { row in zip(row, window).reduce(0) { $0 + $1.0 * Double($1.1) } }
                let top = logits.max()!
                let exponentials = logits.map { Foundation.exp($0 - top) }
                let sum = exponentials.reduce(0, +)
                return exponentials.map { Float($0 / sum) }
            }
        }
    }

    /// Noise bursts over a quieter background, with a silent gap (by default half the recording, long
    /// enough to hold whole windows of a 4 s recording), so that some windows are silent.
    static func recording(count: Int, rate: Int, seed: UInt64, silentFrom: Double = 0.3, silentTo: Double = 0.8) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { index in
            let position = Double(index) / Double(count)
            if position >= silentFrom && position < silentTo { return 0.001 * Float.random(in: -1...1, using: &generator) }  // -60 dBFS
            let tone = Float(sin(2 * Double.pi * 330 * Double(index) / Double(rate)))
            let envelope: Float = (index / (rate / 4)) % 3 == 0 ? 0.9 : 0.35
            return envelope * (0.6 * tone + 0.4 * Float.random(in: -1...1, using: &generator))
        }
    }

    /// Feeds `samples` in chunks of random sizes within `sizes`, then finishes.
    static func stream(_ samples: [Float], into classifier: StreamingClassifier, sizes: ClosedRange<Int>, seed: UInt64) throws -> [StreamingResult] {
        var generator = SeededGenerator(seed: seed)
        var results: [StreamingResult] = []
        var offset = 0
        while offset < samples.count {
            let size = min(Int.random(in: sizes, using: &generator), samples.count - offset)
            results += try classifier.process(Array(samples[offset..<(offset + size)]))
            offset += size
        }
        return results + (try classifier.finish())
    }

    /// The windows `0, hop, 2 hop …` of a 16 kHz signal (one centred padded window when short).
    static func expectedWindowCount(resampledCount: Int, length: Int = length, hop: Int = 3200) -> Int {
        if resampledCount == 0 { return 0 }
        return resampledCount < length ? 1 : (resampledCount - length) / hop + 1
    }

    static func expectClose(_ streamed: [StreamingResult], _ offline: [StreamingResult], tolerance: Float, _ comment: String = "") {
        #expect(streamed.count == offline.count, "\(comment)")
        for (a, b) in zip(streamed, offline) {
            #expect(a.index == b.index && a.startSample == b.startSample && a.isSilent == b.isSilent, "\(comment) window \(a.index)")
            #expect(abs(a.peak - b.peak) <= tolerance)
            #expect(a.best?.index == b.best?.index && a.smoothedBest?.index == b.smoothedBest?.index, "\(comment) window \(a.index)")
            for (x, y) in zip(a.probabilities ?? [], b.probabilities ?? []) { #expect(abs(x - y) <= tolerance, "\(comment) window \(a.index)") }
            for (x, y) in zip(a.smoothedProbabilities ?? [], b.smoothedProbabilities ?? []) { #expect(abs(x - y) <= tolerance) }
            #expect((a.probabilities == nil) == (b.probabilities == nil) && (a.smoothedProbabilities == nil) == (b.smoothedProbabilities == nil))
        }
    }

    // MARK: - Streaming equals offline

    @Test(arguments: [16_000, 44_100, 22_050])
    func streamingEqualsOfflineForAnyChunking(sourceRate: Int) throws {
        let classifier = try StreamingClassifier(windowLength: Self.length, classNames: Self.classNames, sourceSampleRate: sourceRate,
                                                 scorer: Self.projectionScorer())
        let samples = Self.recording(count: sourceRate * 4, rate: sourceRate, seed: 1)  // 4 s: 13 windows
        let offline = try classifier.offlineResults(for: samples)
        #expect(offline.count == Self.expectedWindowCount(resampledCount: (sourceRate * 4 * 16_000 + sourceRate - 1) / sourceRate))
        #expect(offline.contains { $0.isSilent } && offline.contains { !$0.isSilent })
        for (sizes, seed) in [(1...5000, UInt64(1)), (1...300, 2), (3000...20_000, 3), (0...1, 4)] where sizes != 0...1 || sourceRate == 16_000 {
            let streamed = try Self.stream(samples, into: classifier, sizes: sizes, seed: seed)
            // The resampler and the ring buffer are exact, and this scorer is per window: equal bit for bit.
            #expect(streamed == offline, "chunk sizes \(sizes) at \(sourceRate) Hz")
        }
    }

    @Test func offlineResultsAreTheWindowsOfTheOfflinePipeline() throws {
        let scorer = Self.projectionScorer()
        let classifier = try StreamingClassifier(windowLength: Self.length, classNames: Self.classNames, sourceSampleRate: 44_100,
                                                 configuration: StreamingConfiguration(smoothing: .movingAverage(windows: 3)), scorer: scorer)
        let samples = Self.recording(count: 44_100 * 3, rate: 44_100, seed: 2)
        let resampled = try Resampler(from: 44_100, to: 16_000).process(samples)
        let results = try classifier.offlineResults(for: samples)
        var scoredRows: [[Float]] = []
        for (index, result) in results.enumerated() {
            let window = Array(resampled[(index * 3200)..<(index * 3200 + Self.length)])
            #expect(result.startSample == index * 3200)
            #expect(result.peak == peakAmplitude(window))
            #expect(result.isSilent == (20 * log10(Double(peakAmplitude(window))) <= SilenceDetection.defaultThresholdDecibels))
            if result.isSilent {
                #expect(result.probabilities == nil && result.best == nil)
            } else {
                let expected = try scorer([peakNormalized(window)])[0]
                #expect(result.probabilities == expected)
                #expect(result.best?.index == ClipEvaluator.argmax(expected))
                #expect(result.best?.label == Self.classNames[ClipEvaluator.argmax(expected)])
                scoredRows.append(expected)
            }
            // The moving average of the last 3 scored windows.
            if let smoothed = result.smoothedProbabilities {
                let last = scoredRows.suffix(3)
                for label in 0..<3 {
                    let mean = last.reduce(Float(0)) { $0 + $1[label] } / Float(last.count)
                    #expect(abs(smoothed[label] - mean) < 1e-6)
                }
            } else {
                #expect(scoredRows.isEmpty)
            }
        }
        #expect(results.last.map { ($0.endTime - 3.0) < 0.2 && $0.endTime <= 3.0 } == true)
    }

    @Test func gainWithoutWindowNormalizationReproducesTheClipEvaluator() throws {
        // Offline preprocessing divides the clip by its peak; a stream given that gain and no
        // window normalization sees the same windows and drops the same silent ones.
        let scorer = Self.projectionScorer()
        let samples = Self.recording(count: 16_000 * 4, rate: 16_000, seed: 3)
        let peak = peakAmplitude(samples)
        // The evaluator's rule (normalized peak <= 0.2) is the raw peak at or below 0.2 * peak.
        let configuration = StreamingConfiguration(silenceThresholdDecibels: 20 * log10(Double(0.2 * peak)), normalization: .none,
                                                   inputGain: 1 / peak, smoothing: .none)
        let classifier = try StreamingClassifier(windowLength: Self.length, classNames: Self.classNames, sourceSampleRate: 16_000,
                                                 configuration: configuration, scorer: scorer)
        let streamed = try Self.stream(samples, into: classifier, sizes: 1...5000, seed: 5)
        let evaluator = try ClipEvaluator(windowLength: Self.length, classCount: 3, scorer: scorer)
        let clip = samples.map { $0 * (1 / peak) }
        let kept = try evaluator.windows(of: clip)
        let scored = streamed.compactMap(\.probabilities)
        #expect(scored == (try scorer(kept)))
        let score = try evaluator.score(clip)
        for label in 0..<3 {
            let mean = scored.reduce(Float(0)) { $0 + $1[label] } / Float(scored.count)
            #expect(abs(mean - score.probabilities[label]) < 1e-6)
        }
    }

    @Test func aRealNetworkStreamsA44kHzFileLikeOffline() throws {
        // Three windows of a small EnvNet: a 44.1 kHz source whose 16 kHz version holds 2.5 hops more than a window.
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: 4)
        let classifier = try StreamingClassifier(network: network, classNames: Self.classNames, sourceSampleRate: 44_100)
        let sourceCount = (Self.length + 3200 * 2 + 1600) * 441 / 160
        let samples = Self.recording(count: sourceCount, rate: 44_100, seed: 6, silentFrom: 2, silentTo: 2)
        let offline = try classifier.offlineResults(for: samples)
        #expect(offline.count == 3)
        #expect(offline.allSatisfy { !$0.isSilent })
        for (sizes, seed) in [(1...5000, UInt64(7)), (20_000...40_000, 8)] {
            let streamed = try Self.stream(samples, into: classifier, sizes: sizes, seed: seed)
            Self.expectClose(streamed, offline, tolerance: 1e-5, "chunk sizes \(sizes)")
        }
        // And the offline windows are the network's softmax of the peak-normalized resampled windows.
        let resampled = try Resampler(from: 44_100, to: 16_000).process(samples)
        let windows = (0..<3).map { peakNormalized(Array(resampled[($0 * 3200)..<($0 * 3200 + Self.length)])) }
        let direct = try ClipEvaluator.softmaxScores(of: windows, network: network)
        for (result, row) in zip(offline, direct) {
            for (x, y) in zip(result.probabilities ?? [], row) { #expect(abs(x - y) < 1e-5) }
            #expect(abs((result.probabilities ?? []).reduce(0, +) - 1) < 1e-5)
        }
    }

    // MARK: - Timing

    @Test func emitsOneResultPerHopOnceAWindowIsComplete() throws {
        let classifier = try StreamingClassifier(windowLength: Self.length, classNames: Self.classNames, sourceSampleRate: 16_000,
                                                 scorer: Self.projectionScorer())
        let samples = Self.recording(count: Self.length + 3 * 3200, rate: 16_000, seed: 8, silentFrom: 2, silentTo: 2)
        var position = 0
        func feed(_ count: Int) throws -> [StreamingResult] {
            defer { position += count }
            return try classifier.process(Array(samples[position..<(position + count)]))
        }
        #expect(try feed(Self.length - 1).isEmpty)
        let first = try feed(1)
        #expect(first.map(\.index) == [0] && first[0].startSample == 0)
        #expect(abs(first[0].endTime - 1.500875) < 1e-9)
        #expect(try feed(3199).isEmpty)
        let second = try feed(1)
        #expect(second.map(\.startSample) == [3200])
        #expect(abs(second[0].startTime - 0.2) < 1e-12)
        let rest = try feed(2 * 3200)  // two windows complete inside one chunk
        #expect(rest.map(\.index) == [2, 3])
        #expect(classifier.emittedResultCount == 4)
        #expect(try classifier.finish().isEmpty)  // no partial window at the end
        #expect(classifier.emittedResultCount == 0)  // reset for the next stream
    }

    @Test(arguments: [(16_000, 0), (16_000, 1), (16_000, 24_013), (16_000, 24_014), (16_000, 27_213), (16_000, 27_214), (16_000, 160_000),
                      (44_100, 1), (44_100, 66_190), (44_100, 441_000), (8_000, 80_000)])
    func resultCountForAKnownLength(rateAndCount: (Int, Int)) throws {
        let (rate, count) = rateAndCount
        // A constant loud signal: every window is scored by the cheap scorer.
        let classifier = try StreamingClassifier(windowLength: Self.length, classNames: Self.classNames, sourceSampleRate: rate,
                                                 scorer: { windows in windows.map { _ in [0.2, 0.5, 0.3] } })
        let results = try Self.stream([Float](repeating: 0.5, count: count), into: classifier, sizes: 1...9000, seed: 9)
        let resampled = (count * 16_000 + rate - 1) / rate
        #expect(results.count == Self.expectedWindowCount(resampledCount: resampled), "\(count) samples at \(rate) Hz")
        #expect(results.map(\.index) == Array(0..<results.count))
        #expect(results.map(\.startSample) == (resampled < Self.length ? (results.isEmpty ? [] : [0]) : results.indices.map { $0 * 3200 }))
    }

    @Test func aStreamShorterThanAWindowGetsOnePaddedWindow() throws {
        let classifier = try StreamingClassifier(windowLength: Self.length, classNames: Self.classNames, sourceSampleRate: 44_100,
                                                 scorer: Self.projectionScorer())
        let samples = Self.recording(count: 20_000, rate: 44_100, seed: 10, silentFrom: 2, silentTo: 2)
        let streamed = try Self.stream(samples, into: classifier, sizes: 1...3000, seed: 11)
        #expect(streamed.count == 1 && streamed[0].startSample == 0)
        #expect(streamed == (try classifier.offlineResults(for: samples)))
        #expect(try classifier.offlineResults(for: []).isEmpty)
    }

    // MARK: - Memory

    @Test func buffersStayBoundedOverAMinute() throws {
        // 60 s at 16 kHz with a hop of 1 s (60 windows of the cheap scorer), then 10 s at 44.1 kHz.
        let classifier = try StreamingClassifier(windowLength: Self.length, classNames: Self.classNames, sourceSampleRate: 16_000,
                                                 configuration: StreamingConfiguration(hop: 16_000), scorer: Self.projectionScorer())
        let chunk = Self.recording(count: 1234, rate: 16_000, seed: 12, silentFrom: 2, silentTo: 2)
        var largest = 0
        var emitted = 0
        var fed = 0
        while fed < 60 * 16_000 {
            emitted += try classifier.process(chunk).count
            fed += chunk.count
            largest = max(largest, classifier.bufferedSampleCount)
        }
        #expect(largest <= Self.length)
        #expect(classifier.sourceSampleCount == fed)
        #expect(emitted == (fed - Self.length) / 16_000 + 1)

        try classifier.reset(sourceSampleRate: 44_100)
        let taps = try Resampler(from: 44_100, to: 16_000).tapsPerPhase
        largest = 0
        let chunk44 = Self.recording(count: 4410, rate: 44_100, seed: 13, silentFrom: 2, silentTo: 2)
        for _ in 0..<100 {
            _ = try classifier.process(chunk44)
            largest = max(largest, classifier.bufferedSampleCount)
        }
        #expect(largest <= Self.length + taps)
        #expect(classifier.sourceSampleCount == 441_000)
        #expect(classifier.resampledSampleCount > 159_000 && classifier.resampledSampleCount <= 160_000)
    }

    // MARK: - Smoothing and silence

    @Test func smoothingHoldsDuringSilenceAndFollowsTheRule() throws {
        let rows: [[Float]] = [[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]
        let counter = Counter()
        let scorer: WindowScorer = { windows in windows.map { _ in rows[counter.next() % rows.count] } }
        // Windows of 1000 samples every 500: starts 0, 500, 1000, 1500, 2000. Samples 1000..<2000
        // are quiet, so only the window starting at 1000 is silent.
        let length = 1000
        let signal = (0..<3000).map { index -> Float in
            (1000..<2000).contains(index) ? 0.05 : (index % 2 == 0 ? 0.9 : -0.9)
        }
        let mean01 = zip(rows[0], rows[1]).map { ($0 + $1) / 2 }
        let mean12 = zip(rows[1], rows[2]).map { ($0 + $1) / 2 }
        let ema1 = zip(rows[0], rows[1]).map { 0.25 * $1 + 0.75 * $0 }
        let ema2 = zip(ema1, rows[2]).map { 0.25 * $1 + 0.75 * $0 }
        for (smoothing, expected) in [
            // With no smoothing one silent window is a silent stretch: its smoothed decision is nil.
            (StreamingSmoothing.none, [rows[0], rows[1], [], rows[2]]),
            (.movingAverage(windows: 2), [rows[0], mean01, mean01, mean12]),
            (.exponential(weight: 0.25), [rows[0], ema1, ema1, ema2]),
        ] {
            counter.value = 0
            let classifier = try StreamingClassifier(windowLength: length, classNames: Self.classNames, sourceSampleRate: 16_000,
                                                     configuration: StreamingConfiguration(hop: 500, silenceThresholdDecibels: -20, smoothing: smoothing), scorer: scorer)
            let results = try classifier.process(signal) + classifier.finish()
            #expect(results.map(\.isSilent) == [false, false, true, false, false])
            #expect(counter.value == 4)
            let silent = results[2]
            #expect(silent.probabilities == nil && silent.best == nil && abs(silent.peak - 0.05) < 1e-7)
            for (result, row) in zip(results.prefix(4), expected) {
                let smoothed = result.smoothedProbabilities ?? []
                if row.isEmpty {
                    #expect(result.smoothedProbabilities == nil && result.smoothedBest == nil)
                    continue
                }
                #expect(smoothed.count == 3)
                for (x, y) in zip(smoothed, row) { #expect(abs(x - y) < 1e-6, "\(smoothing) window \(result.index)") }
                #expect(result.smoothedBest?.index == ClipEvaluator.argmax(row))
            }
        }
    }

    // MARK: - Errors

    @Test func badRatesAndSettingsAreTypedErrors() throws {
        let scorer = Self.projectionScorer(length: 100)
        func make(rate: Int = 16_000, _ configuration: StreamingConfiguration = StreamingConfiguration()) throws -> StreamingClassifier {
            try StreamingClassifier(windowLength: 100, classNames: Self.classNames, sourceSampleRate: rate, configuration: configuration, scorer: scorer)
        }
        #expect(throws: StreamingError.invalidSampleRate(0)) { try make(rate: 0) }
        #expect(throws: StreamingError.invalidSampleRate(-44_100)) { try make(rate: -44_100) }
        do {
            _ = try make(rate: 999_983)
            Issue.record("a rate without a feasible resampler was accepted")
        } catch let error as StreamingError {
            guard case .unsupportedSampleRate(999_983, _) = error else { Issue.record("unexpected \(error)"); return }
            #expect(error.description.contains("999983"))
        }
        for configuration in [StreamingConfiguration(hop: 0), StreamingConfiguration(silenceThresholdDecibels: 1), StreamingConfiguration(silenceThresholdDecibels: .nan),
                              StreamingConfiguration(inputGain: 0), StreamingConfiguration(inputGain: .infinity), StreamingConfiguration(batchSize: 0),
                              StreamingConfiguration(smoothing: .movingAverage(windows: 0)), StreamingConfiguration(smoothing: .exponential(weight: 1.5)),
                              StreamingConfiguration(smoothing: .exponential(weight: 0))] {
            #expect(throws: StreamingError.self) { try make(configuration) }
            #expect { try configuration.validate() } throws: { error in
                guard case .invalidSetting = error as? StreamingError else { return false }
                return true
            }
        }
        #expect(throws: StreamingError.self) {
            try StreamingClassifier(windowLength: 0, classNames: Self.classNames, sourceSampleRate: 16_000, scorer: scorer)
        }
        #expect(throws: StreamingError.self) {
            try StreamingClassifier(windowLength: 100, classNames: [], sourceSampleRate: 16_000, scorer: scorer)
        }
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8))
        #expect(throws: StreamingError.self) {
            try StreamingClassifier(network: network, classNames: ["one", "two"], sourceSampleRate: 16_000)
        }
        // A failed reset leaves the classifier as it was.
        let classifier = try make(rate: 44_100)
        #expect(throws: StreamingError.invalidSampleRate(0)) { try classifier.reset(sourceSampleRate: 0) }
        #expect(classifier.sourceSampleRate == 44_100)
    }

    @Test func aNonFiniteChunkIsRejectedAndTheStreamGoesOn() throws {
        let classifier = try StreamingClassifier(windowLength: Self.length, classNames: Self.classNames, sourceSampleRate: 44_100,
                                                 scorer: Self.projectionScorer())
        let samples = Self.recording(count: 44_100 * 2, rate: 44_100, seed: 14)
        let expected = try classifier.offlineResults(for: samples)
        var results = try classifier.process(Array(samples[0..<30_000]))
        for bad in [Float.nan, .infinity, -.infinity] {
            var chunk = Array(samples[30_000..<40_000])
            chunk[123] = bad
            #expect(throws: StreamingError.self) { try classifier.process(chunk) }
            do {
                _ = try classifier.process(chunk)
            } catch let StreamingError.nonFiniteSample(position, value) {
                #expect(position == 30_123)
                #expect(value.isNaN == bad.isNaN && (value.isNaN || value == bad))
            }
        }
        #expect(classifier.sourceSampleCount == 30_000)
        results += try classifier.process(Array(samples[30_000...]))
        results += try classifier.finish()
        #expect(results == expected)
        #expect(throws: StreamingError.nonFiniteSample(position: 5, value: .infinity)) {
            try classifier.offlineResults(for: [0, 0, 0, 0, 0, .infinity])
        }
    }

    @Test func aBadScorerIsATypedError() throws {
        let length = 200
        let loud = [Float](repeating: 0.9, count: length)
        for scorer in [{ (_: [[Float]]) in [[Float]]() }, { windows in windows.map { _ in [0.5, 0.5] } },
                       { windows in windows.map { _ in [Float.nan, 0.5, 0.5] } }] as [WindowScorer] {
            let classifier = try StreamingClassifier(windowLength: length, classNames: Self.classNames, sourceSampleRate: 16_000, scorer: scorer)
            #expect { try classifier.process(loud) } throws: { error in
                guard case .invalidScores = error as? StreamingError else { return false }
                return true
            }
        }
    }
}

/// A counter a `WindowScorer` closure can advance.
private final class Counter {
    var value = 0
    func next() -> Int {
        defer { value += 1 }
        return value
    }
}
