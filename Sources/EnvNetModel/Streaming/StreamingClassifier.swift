import Foundation

/// Classifies a continuous stream of audio — from a microphone, a network socket, or a long file
/// read piece by piece — with a trained EnvNet, one result per hop.
///
/// ```swift
/// let classifier = try StreamingClassifier(contentsOf: weightsURL, sourceSampleRate: 44_100)
/// for chunk in microphoneChunks {                   // any sizes
///     for result in try classifier.process(chunk) {  // one per 0.2 s of audio
///         print(result.endTime, result.smoothedBest?.label ?? "-")
///     }
/// }
/// let tail = try classifier.finish()
/// ```
///
/// The pipeline, per stream:
/// 1. Chunks at the source rate are resampled to the network's rate (16 kHz for EnvNet) by a `StreamingResampler` (EnvNetAudio), whose
///    output equals the offline band-limited resampler's bit for bit.
/// 2. The samples are written into a ring buffer of one window (the network's input length, 1.5 s).
/// 3. Every ``StreamingConfiguration/hop`` samples (0.2 s by default) — as soon as the window
///    `[k * hop, k * hop + length)` is complete — the window is checked for silence (its peak
///    before any gain at or below ``StreamingConfiguration/silenceThresholdDecibels``: not
///    scored, flagged), multiplied by ``StreamingConfiguration/inputGain``, scaled as
///    ``StreamingConfiguration/normalization`` says (by default each window by its own peak,
///    because a stream cannot know the peak of audio still to come), and scored: the softmax of
///    the network's logits.
/// 4. The probabilities of the scored windows are smoothed (``StreamingSmoothing``; by default
///    the mean of the last 5) into a steadier decision.
///
/// The window positions are those of the offline probability voting (starts `0, hop, 2 hop …`);
/// ``offlineResults(for:)`` computes the same results from a whole buffer, and the two agree
/// (up to float rounding of batched forward passes) however the stream is chunked. A stream
/// shorter than one window gets one centred, zero-padded window from ``finish()``, as offline.
///
/// Memory is bounded however long the stream: one window of ring buffer, the resampler's filter
/// history (``bufferedSampleCount`` counts both), at most ``StreamingConfiguration/batchSize``
/// window copies while a call runs, and the smoothing state.
///
/// Thread safety: the classifier owns a network, which is not thread-safe, and mutable stream
/// state, so it is deliberately not `Sendable`: create it in, and use it from, one task or
/// thread (for example inside the actor or task that reads the microphone). Use one classifier
/// per concurrent stream; for whole recordings shared across threads use ``SoundClassifier``.
public final class StreamingClassifier {
    /// EnvNet's rate (16 kHz), the default of ``networkSampleRate``.
    public static let sampleRate = EnvNetConfiguration.sampleRate
    /// The rate the network works at, and windows are cut at (16 kHz for EnvNet, 44.1 kHz for EnvNet-v2).
    public let networkSampleRate: Int

    /// The settings.
    public let configuration: StreamingConfiguration
    /// One name per class, in class order.
    public let classNames: [String]
    /// Samples per window at the network's rate (the network's input length).
    public let windowLength: Int
    /// The rate of the audio given to ``process(_:)``, in Hz.
    public private(set) var sourceSampleRate: Int

    private let scorer: WindowScorer
    private var resampler: StreamingResampler
    /// One window of samples at the network's rate; `ring[writeIndex]` is the oldest once the ring is full.
    private var ring: [Float]
    private var writeIndex = 0
    /// Samples at the network's rate written so far, source samples accepted so far.
    private var receivedCount = 0
    private var sourceCount = 0
    private var nextWindowIndex = 0
    private var smoother: Smoother

    // MARK: - Creating

    /// Loads weights saved by `EnvNet.save(to:classNames:)` (or PyTorch safetensors with the
    /// interchange names) and prepares a stream.
    ///
    /// - Parameters:
    ///   - weightsURL: The safetensors file.
    ///   - sourceSampleRate: The rate of the audio that will be fed, in Hz.
    ///   - configuration: Hop, silence, normalization and smoothing; nil takes the model's own
    ///     detection threshold and, for a model trained on int16-scaled clips, no normalization.
    /// - Throws: `SafeTensorsError` or ``EnvNetError/incompatibleWeights(path:reason:)`` for the
    ///   weights; the errors of ``init(network:classNames:sourceSampleRate:configuration:)``.
    public convenience init(contentsOf weightsURL: URL, sourceSampleRate: Int,
                            configuration: StreamingConfiguration? = nil) throws {
        let (network, description) = try ModelFile.load(from: weightsURL)
        try self.init(network: network, classNames: description.classNames, sourceSampleRate: sourceSampleRate,
                      configuration: configuration ?? Self.configuration(for: description))
    }

    /// The streaming settings that match a model: its detection threshold, and no normalization
    /// for a model trained on int16-scaled clips (each window by its own peak otherwise), and a
    /// 0.2 s hop at the model's rate.
    ///
    /// - Parameter description: The model's description.
    /// - Returns: Settings with the other values at their defaults.
    public static func configuration(for description: ModelDescription) -> StreamingConfiguration {
        StreamingConfiguration(hop: max(1, description.sampleRate / 5), silenceThresholdDecibels: description.predictionSilenceThreshold,
                               normalization: description.preprocessing.normalization == .int16FullScale ? .none : .windowPeak)
    }

    /// Wraps a network. The classifier keeps a reference and must be its only user while it runs
    /// (the network is used in evaluation mode; a training-mode network is restored after every
    /// forward pass).
    ///
    /// - Parameters:
    ///   - network: The network.
    ///   - classNames: One name per class.
    ///   - sourceSampleRate: The rate of the audio that will be fed, in Hz.
    ///   - configuration: Hop, silence, normalization and smoothing.
    /// - Throws: ``StreamingError`` for a wrong number of class names, a bad or unsupported rate,
    ///   or invalid settings.
    public convenience init(network: any ClassifierNetwork, classNames: [String], sourceSampleRate: Int,
                            configuration: StreamingConfiguration = StreamingConfiguration()) throws {
        guard classNames.count == network.classCount else {
            throw StreamingError.invalidSetting("\(classNames.count) class names for a network with \(network.classCount) classes")
        }
        try self.init(windowLength: network.inputLength, classNames: classNames, sourceSampleRate: sourceSampleRate,
                      networkSampleRate: network.sampleRate, configuration: configuration) { windows in
            try ClipEvaluator.softmaxScores(of: windows, network: network)
        }
    }

    /// Streams with any window scorer (a custom model, or a cheap deterministic function in tests).
    ///
    /// - Parameters:
    ///   - windowLength: Samples per window at the network's rate, at least 1.
    ///   - classNames: One name per class, at least one; the scorer returns one probability per class.
    ///   - sourceSampleRate: The rate of the audio that will be fed, in Hz.
    ///   - networkSampleRate: The rate windows are cut at (EnvNet's 16 kHz by default).
    ///   - configuration: Hop, silence, normalization and smoothing.
    ///   - scorer: One row of class probabilities per window (see ``WindowScorer``).
    /// - Throws: ``StreamingError/invalidSampleRate(_:)``, ``StreamingError/unsupportedSampleRate(_:reason:)``
    ///   or ``StreamingError/invalidSetting(_:)``.
    public init(windowLength: Int, classNames: [String], sourceSampleRate: Int, networkSampleRate: Int = StreamingClassifier.sampleRate,
                configuration: StreamingConfiguration = StreamingConfiguration(), scorer: @escaping WindowScorer) throws {
        guard windowLength >= 1 else { throw StreamingError.invalidSetting("the window length must be at least 1, got \(windowLength)") }
        guard !classNames.isEmpty else { throw StreamingError.invalidSetting("at least one class name is needed") }
        try configuration.validate()
        self.configuration = configuration
        self.classNames = classNames
        self.windowLength = windowLength
        self.scorer = scorer
        guard networkSampleRate > 0 else { throw StreamingError.invalidSampleRate(networkSampleRate) }
        self.sourceSampleRate = sourceSampleRate
        self.networkSampleRate = networkSampleRate
        self.resampler = try Self.makeResampler(from: sourceSampleRate, to: networkSampleRate)
        self.ring = [Float](repeating: 0, count: windowLength)
        self.smoother = Smoother(configuration.smoothing)
    }

    private static func makeResampler(from rate: Int, to sampleRate: Int) throws -> StreamingResampler {
        guard rate > 0 else { throw StreamingError.invalidSampleRate(rate) }
        do {
            return try StreamingResampler(from: rate, to: sampleRate)
        } catch let error as AudioError {
            if case let .invalidArgument(detail) = error.problem { throw StreamingError.unsupportedSampleRate(rate, reason: detail) }
            throw StreamingError.unsupportedSampleRate(rate, reason: error.description)
        }
    }

    // MARK: - State

    /// Samples held between calls: the filled part of the window ring buffer plus the
    /// resampler's history. It never exceeds ``windowLength`` plus the resampler's
    /// `tapsPerPhase`, however long the stream.
    public var bufferedSampleCount: Int { Swift.min(receivedCount, windowLength) + resampler.bufferedSampleCount }
    /// Source samples accepted since the stream began.
    public var sourceSampleCount: Int { sourceCount }
    /// Samples at the network's rate produced since the stream began (they lag the source by the resampler's latency).
    public var resampledSampleCount: Int { receivedCount }
    /// Results emitted since the stream began.
    public var emittedResultCount: Int { nextWindowIndex }

    /// Forgets the stream and starts a new one, optionally at another source rate.
    ///
    /// - Parameter sourceSampleRate: The new stream's rate; `nil` keeps the current one.
    /// - Throws: ``StreamingError/invalidSampleRate(_:)`` or ``StreamingError/unsupportedSampleRate(_:reason:)``;
    ///   the classifier is then unchanged.
    public func reset(sourceSampleRate: Int? = nil) throws {
        if let rate = sourceSampleRate, rate != self.sourceSampleRate {
            resampler = try Self.makeResampler(from: rate, to: networkSampleRate)
            self.sourceSampleRate = rate
        } else {
            resampler.reset()
        }
        for index in ring.indices { ring[index] = 0 }
        writeIndex = 0
        receivedCount = 0
        sourceCount = 0
        nextWindowIndex = 0
        smoother = Smoother(configuration.smoothing)
    }

    // MARK: - Streaming

    /// Feeds the next chunk of audio.
    ///
    /// - Parameter chunk: Mono samples at ``sourceSampleRate``, any count (zero included).
    /// - Returns: One result per window completed by this chunk, in order (often none for a small
    ///   chunk, several for a large one).
    /// - Throws: ``StreamingError/nonFiniteSample(position:value:)`` for a NaN or infinite
    ///   sample (the chunk is rejected and the stream is unchanged);
    ///   ``StreamingError/invalidScores(_:)`` or the scorer's error when scoring fails.
    public func process(_ chunk: [Float]) throws -> [StreamingResult] {
        if let index = chunk.firstIndex(where: { !$0.isFinite }) {
            throw StreamingError.nonFiniteSample(position: sourceCount + index, value: chunk[index])
        }
        sourceCount += chunk.count
        return try ingest(resampler.process(chunk))
    }

    /// Ends the stream: resamples the tail (the input after the last sample taken as zero, as
    /// offline), emits the windows it completes — or, when the whole stream was shorter than one
    /// window, one centred zero-padded window — and resets for a new stream at the same rate.
    ///
    /// - Returns: The last results.
    /// - Throws: ``StreamingError/invalidScores(_:)`` or the scorer's error.
    public func finish() throws -> [StreamingResult] {
        defer { try? reset() }
        var results = try ingest(resampler.finish())
        if nextWindowIndex == 0, receivedCount > 0 {
            // Shorter than one window: the ring holds the whole stream, unwrapped.
            let samples = Array(ring[0..<receivedCount])
            let window = centredZeroPadded(samples, toLength: windowLength)
            results += try score([(nextWindowIndex, 0, window)], smoother: &smoother)
            nextWindowIndex += 1
        }
        return results
    }

    /// Writes resampled samples into the ring and scores the windows they complete.
    private func ingest(_ samples: [Float]) throws -> [StreamingResult] {
        var results: [StreamingResult] = []
        var completed: [(index: Int, start: Int, samples: [Float])] = []
        var offset = 0
        while offset < samples.count {
            let windowEnd = nextWindowIndex * configuration.hop + windowLength
            let count = Swift.min(windowEnd - receivedCount, samples.count - offset)
            // Copy in at most two runs (the ring wraps around once at most per run).
            var copied = 0
            while copied < count {
                let run = Swift.min(count - copied, windowLength - writeIndex)
                for position in 0..<run { ring[writeIndex + position] = samples[offset + copied + position] }
                copied += run
                writeIndex = (writeIndex + run) % windowLength
            }
            receivedCount += count
            offset += count
            if receivedCount == windowEnd {
                // The ring is full and `writeIndex` is the oldest sample.
                let window = Array(ring[writeIndex...] + ring[..<writeIndex])
                completed.append((nextWindowIndex, windowEnd - windowLength, window))
                nextWindowIndex += 1
                if completed.count == configuration.batchSize {
                    results += try score(completed, smoother: &smoother)
                    completed.removeAll(keepingCapacity: true)
                }
            }
        }
        if !completed.isEmpty { results += try score(completed, smoother: &smoother) }
        return results
    }

    // MARK: - Offline reference

    /// The results a stream of the whole buffer would give, computed offline: the buffer is
    /// resampled at once with `Resampler.process(_:)`, cut into
    /// windows at starts `0, hop, 2 hop …` (one centred zero-padded window when it is shorter
    /// than a window), and each window is normalized, checked for silence, scored and smoothed
    /// exactly as in streaming.
    ///
    /// It does not touch the stream's state. It holds the whole buffer in memory: use it for
    /// checks and for short recordings.
    ///
    /// - Parameter samples: Mono samples at ``sourceSampleRate``.
    /// - Returns: One result per window, as ``process(_:)`` and ``finish()`` would emit them.
    /// - Throws: ``StreamingError/nonFiniteSample(position:value:)`` for a NaN or infinite
    ///   sample, ``StreamingError/invalidScores(_:)`` or the scorer's error.
    public func offlineResults(for samples: [Float]) throws -> [StreamingResult] {
        if let index = samples.firstIndex(where: { !$0.isFinite }) {
            throw StreamingError.nonFiniteSample(position: index, value: samples[index])
        }
        let resampled = resampler.resampler.process(samples)
        var smoother = Smoother(configuration.smoothing)
        var windows: [(index: Int, start: Int, samples: [Float])] = []
        if resampled.isEmpty { return [] }
        if resampled.count < windowLength {
            windows = [(0, 0, centredZeroPadded(resampled, toLength: windowLength))]
        } else {
            for (index, start) in stride(from: 0, through: resampled.count - windowLength, by: configuration.hop).enumerated() {
                windows.append((index, start, Array(resampled[start..<(start + windowLength)])))
            }
        }
        var results: [StreamingResult] = []
        var first = 0
        while first < windows.count {
            let end = Swift.min(first + configuration.batchSize, windows.count)
            results += try score(Array(windows[first..<end]), smoother: &smoother)
            first = end
        }
        return results
    }

    // MARK: - Scoring

    /// Checks windows for silence, applies the gain, normalizes and scores the others in one call
    /// to the scorer, and smooths, in window order.
    private func score(_ windows: [(index: Int, start: Int, samples: [Float])], smoother: inout Smoother) throws -> [StreamingResult] {
        let peaks = windows.map { peakAmplitude($0.samples) }
        let threshold = configuration.silenceThresholdDecibels
        let scored = windows.indices.filter { !SilenceDetection.isSilent(peak: peaks[$0], thresholdDecibels: threshold) }
        let gain = configuration.inputGain
        let inputs = scored.map { index -> [Float] in
            switch configuration.normalization {
            case .windowPeak: return peakNormalized(windows[index].samples)
            case .none: return gain == 1 ? windows[index].samples : windows[index].samples.map { $0 * gain }
            }
        }
        let rows = inputs.isEmpty ? [] : try scorer(inputs)
        guard rows.count == inputs.count else {
            throw StreamingError.invalidScores("the scorer returned \(rows.count) rows for \(inputs.count) windows")
        }
        var probabilities = [[Float]?](repeating: nil, count: windows.count)
        for (row, index) in zip(rows, scored) {
            guard row.count == classNames.count else {
                throw StreamingError.invalidScores("the scorer returned \(row.count) values for window \(windows[index].index); expected \(classNames.count) classes")
            }
            if let bad = row.firstIndex(where: { !$0.isFinite }) {
                throw StreamingError.invalidScores("window \(windows[index].index) scored \(row[bad]) for class \(bad); probabilities must be finite")
            }
            probabilities[index] = row
        }
        return windows.indices.map { position in
            let row = probabilities[position]
            if let row { smoother.update(row) } else { smoother.skipSilentWindow() }
            let smoothed = smoother.current
            return StreamingResult(
                index: windows[position].index, startSample: windows[position].start, windowLength: windowLength, sampleRate: networkSampleRate,
                peak: peaks[position], isSilent: row == nil, probabilities: row, best: row.map(candidate),
                smoothedProbabilities: smoothed, smoothedBest: smoothed.map(candidate))
        }
    }

    private func candidate(_ probabilities: [Float]) -> Classification.Candidate {
        let index = ClipEvaluator.argmax(probabilities)
        return Classification.Candidate(label: classNames[index], index: index, probability: probabilities[index])
    }
}

/// The smoothing state: a ring of the last k rows (moving average) or a running average.
private struct Smoother {
    let smoothing: StreamingSmoothing
    private var rows: [[Float]] = []
    private var next = 0
    private var average: [Double]?
    private(set) var current: [Float]?
    /// Silent windows since the last scored one.
    private var silentRun = 0

    init(_ smoothing: StreamingSmoothing) {
        self.smoothing = smoothing
    }

    /// How many silent windows in a row make a silent stretch: the smoothing's memory.
    private var silentStretch: Int {
        switch smoothing {
        case .none: return 1
        case let .movingAverage(windows): return windows
        case let .exponential(weight): return Int(Swift.min(1000, (1 / Double(weight)).rounded(.up)))
        }
    }

    /// A silent window: after a whole silent stretch the decision is forgotten.
    mutating func skipSilentWindow() {
        silentRun += 1
        guard silentRun >= silentStretch else { return }
        rows.removeAll()
        next = 0
        average = nil
        current = nil
    }

    mutating func update(_ row: [Float]) {
        silentRun = 0
        switch smoothing {
        case .none:
            current = row
        case let .movingAverage(windows):
            if rows.count < windows {
                rows.append(row)
            } else {
                rows[next] = row
            }
            next = (next + 1) % windows
            var sums = [Double](repeating: 0, count: row.count)
            for stored in rows {
                for (label, value) in stored.enumerated() { sums[label] += Double(value) }
            }
            current = sums.map { Float($0 / Double(rows.count)) }
        case let .exponential(weight):
            let w = Double(weight)
            if let previous = average {
                average = zip(previous, row).map { w * Double($1) + (1 - w) * $0 }
            } else {
                average = row.map(Double.init)
            }
            current = average?.map { Float($0) }
        }
    }
}
