import Foundation

/// A flag one thread sets and another polls: how Task cancellation reaches analysis work that
/// runs on its own thread.
final class CancellationFlag: @unchecked Sendable {
    // Safety of `@unchecked Sendable`: `value` is only touched while holding `lock`.
    private let lock = NSLock()
    private var value = false

    func cancel() { lock.withLock { value = true } }
    var isCancelled: Bool { lock.withLock { value } }
}

extension SoundClassifier {
    // MARK: - Files, like SNAudioFileAnalyzer

    /// Analyses an audio file window by window, reading it from disk as it goes: the counterpart
    /// of SoundAnalysis's `SNAudioFileAnalyzer.analyze()`.
    ///
    /// Memory stays bounded however long the file: a chunk of the file, one window, the
    /// resampler's history, and one small result per window (about 200 bytes; pass
    /// `keepingWindows: false` to keep none).
    ///
    /// ```swift
    /// let analysis = try classifier.analyze(contentsOf: url)
    /// for window in analysis.windows where !window.isSilent {
    ///     print(window.timeRange.start, window.best!.label)
    /// }
    /// print(analysis.isSilent ? "silent" : analysis.classification.best!.label)
    /// ```
    ///
    /// - Parameters:
    ///   - audioURL: The recording, in any supported format and rate.
    ///   - request: Window spacing, silence threshold, normalization, candidates.
    ///   - keepingWindows: Whether the result lists every window (the decision is the same either way).
    ///   - progress: Called after every chunk of the file.
    /// - Returns: Every window with its time range, and the decision.
    /// - Throws: `AudioError` naming the file, ``EnvNetError/invalidInput(_:)`` for a request out
    ///   of range.
    public func analyze(contentsOf audioURL: URL, request: SoundAnalysisRequest = SoundAnalysisRequest(), keepingWindows: Bool = true,
                        progress: ((SoundAnalysisProgress) -> Void)? = nil) throws -> SoundFileAnalysis {
        try analyze(contentsOf: audioURL, request: request, keepingWindows: keepingWindows, progress: progress, onWindow: nil) { false }
    }

    /// Analyses an audio file without blocking the caller, on a thread of its own. Cancelling the
    /// calling task stops the analysis before its next window, with `CancellationError`.
    ///
    /// - Parameters:
    ///   - audioURL: The recording.
    ///   - request: Window spacing, silence threshold, normalization, candidates.
    ///   - keepingWindows: Whether the result lists every window.
    ///   - progress: Called after every chunk of the file, on the analysis thread.
    /// - Returns: Every window with its time range, and the decision.
    /// - Throws: As ``analyze(contentsOf:request:keepingWindows:progress:)``, and `CancellationError`.
    public func analyze(contentsOf audioURL: URL, request: SoundAnalysisRequest = SoundAnalysisRequest(), keepingWindows: Bool = true,
                        progress: (@Sendable (SoundAnalysisProgress) -> Void)? = nil) async throws -> SoundFileAnalysis {
        let flag = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let options = ExecutionOptions.current  // the caller's, on the analysis thread too
                Thread.detachNewThread {
                    continuation.resume(with: ExecutionOptions.withOptions(options) { Result {
                        try self.analyze(contentsOf: audioURL, request: request, keepingWindows: keepingWindows, progress: progress,
                                         onWindow: nil) { flag.isCancelled }
                    } })
                }
            }
        } onCancel: {
            flag.cancel()
        }
    }

    /// The windows of an audio file as an asynchronous sequence, each as soon as it is analysed
    /// (SoundAnalysis's results observer, as an `AsyncSequence`).
    ///
    /// ```swift
    /// for try await window in classifier.windowResults(contentsOf: url) {
    ///     print(window.timeRange.start, window.isSilent ? "silent" : window.best!.label)
    /// }
    /// ```
    ///
    /// The analysis runs on a thread of its own; ending the loop early (or cancelling its task)
    /// stops it before its next window.
    ///
    /// - Parameters:
    ///   - audioURL: The recording.
    ///   - request: Window spacing, silence threshold, normalization, candidates.
    /// - Returns: The windows in time order; the sequence throws the errors of
    ///   ``analyze(contentsOf:request:keepingWindows:progress:)``.
    public func windowResults(contentsOf audioURL: URL,
                              request: SoundAnalysisRequest = SoundAnalysisRequest()) -> AsyncThrowingStream<SoundWindowResult, Error> {
        AsyncThrowingStream { continuation in
            let flag = CancellationFlag()
            continuation.onTermination = { _ in flag.cancel() }
            let options = ExecutionOptions.current
            Thread.detachNewThread {
                ExecutionOptions.withOptions(options) {
                    do {
                        _ = try self.analyze(contentsOf: audioURL, request: request, keepingWindows: false, progress: nil,
                                             onWindow: { continuation.yield($0) }) { flag.isCancelled }
                        continuation.finish()
                    } catch {
                        continuation.finish(throwing: error)
                    }
                }
            }
        }
    }

    /// The analysis itself; `isCancelled` is polled before every window.
    func analyze(contentsOf audioURL: URL, request: SoundAnalysisRequest, keepingWindows: Bool,
                 progress: ((SoundAnalysisProgress) -> Void)?, onWindow: ((SoundWindowResult) -> Void)?,
                 isCancelled: () -> Bool) throws -> SoundFileAnalysis {
        let windowLength = configuration.inputLength
        try request.validate(windowLength: windowLength, sampleRate: configuration.sampleRate)
        let hop = try request.hopSamples(windowLength: windowLength, sampleRate: configuration.sampleRate)
        let threshold = request.silenceThresholdDecibels ?? silenceThresholdDecibels
        let info = try AudioFileStream(contentsOf: audioURL).info
        let rate = info.sampleRate
        let path = audioURL.path

        // A chunk of about one hop, so that each chunk completes at most a window or two and
        // cancellation is seen before every window.
        let chunkFrames = Swift.max(256, Int((Double(hop) * Double(rate) / Double(configuration.sampleRate)).rounded(.up)))
        let peakPass = request.normalization == .recording && settings.normalization == .peak
        let passWeight = peakPass ? 0.05 : 0
        func report(_ framesRead: Int, windows: Int, pass: Int) {
            guard let progress else { return }
            let total = Swift.max(info.frameCount, framesRead, 1)
            let fraction = pass == 1 ? passWeight * Double(framesRead) / Double(total)
                : passWeight + (1 - passWeight) * Double(framesRead) / Double(total)
            progress(SoundAnalysisProgress(framesRead: framesRead, totalFrames: info.frameCount, windowsAnalyzed: windows,
                                           pass: pass, fractionCompleted: Swift.min(1, fraction)))
        }
        /// Reads the file once, chunk by chunk, handing each chunk with its first frame's index.
        func readAll(pass: Int, windows: () -> Int, _ body: (_ chunk: [Float], _ firstFrame: Int) throws -> Void) throws -> Int {
            let stream = try AudioFileStream(contentsOf: audioURL)
            var frames = 0
            while true {
                if isCancelled() { throw CancellationError() }
                guard let chunk = try stream.next(maximumFrames: chunkFrames) else { break }
                try body(chunk, frames)
                frames += chunk.count
                report(frames, windows: windows(), pass: pass)
            }
            return frames
        }
        func checked(_ chunk: [Float], at first: Int) throws {
            if let index = chunk.firstIndex(where: { !$0.isFinite }) {
                throw AudioError(source: path, problem: .invalidArgument("sample \(first + index) is \(chunk[index]); samples must be finite"))
            }
        }

        // The span analysed: all of it, or from the first to the last non-zero sample when the
        // model was trained on zero-trimmed clips (the authors' recipe).
        var span = 0..<Int.max
        var totalFrames = 0
        if settings.trimsZeros {
            var first: Int?, last = -1
            totalFrames = try readAll(pass: 1, windows: { 0 }) { chunk, start in
                try checked(chunk, at: start)
                if first == nil, let index = chunk.firstIndex(where: { $0 != 0 }) { first = start + index }
                if let index = chunk.lastIndex(where: { $0 != 0 }) { last = start + index }
            }
            span = first.map { $0..<(last + 1) } ?? 0..<0
        }
        /// The part of a chunk inside the span.
        func clipped(_ chunk: [Float], _ start: Int) -> ArraySlice<Float> {
            let lower = Swift.max(span.lowerBound, start), upper = Swift.min(span.upperBound, start + chunk.count)
            return lower < upper ? chunk[(lower - start)..<(upper - start)] : []
        }

        // The recording's peak at 16 kHz, as `normalized(_:policy:)` divides by it.
        var gain: Float = 1
        if peakPass {
            var resampler = try StreamingResampler(from: rate, to: configuration.sampleRate)
            var peak: Float = 0
            totalFrames = try readAll(pass: 1, windows: { 0 }) { chunk, start in
                try checked(chunk, at: start)
                peak = Swift.max(peak, peakAmplitude(resampler.process(Array(clipped(chunk, start)))))
            }
            peak = Swift.max(peak, peakAmplitude(resampler.finish()))
            if peak > 0 { gain = 1 / peak }
        }

        // Windows: the streaming classifier's ring buffer and resampler, scored under the lock.
        let normalization: StreamingNormalization = request.normalization == .window && settings.normalization == .peak ? .windowPeak : .none
        let streaming = try StreamingClassifier(
            windowLength: windowLength, classNames: classNames, sourceSampleRate: rate,
            configuration: StreamingConfiguration(hop: hop, silenceThresholdDecibels: threshold, normalization: normalization,
                                                  inputGain: gain, smoothing: .none, batchSize: 2), scorer: lockedScorer)
        let offset = span.isEmpty ? 0 : Double(span.lowerBound) / Double(rate)
        let windowSeconds = Double(windowLength) / Double(configuration.sampleRate)
        var voting = Voting(classCount: classNames.count, topK: request.topK, classNames: classNames)
        var kept: [SoundWindowResult] = []
        var emitted = 0, silent = 0
        var loudestPeak: Float = 0
        var spanFrames = 0
        func accept(_ results: [StreamingResult], shortRecording: Bool) throws {
            for result in results {
                if isCancelled() { throw CancellationError() }
                let range = shortRecording
                    ? TimeRange(start: offset, duration: Double(spanFrames) / Double(rate))
                    : TimeRange(start: offset + result.startTime, duration: windowSeconds)
                let decibels = result.peakDecibels
                let window = SoundWindowResult(
                    index: result.index, timeRange: range, peakDecibels: decibels.isFinite ? decibels : nil, isSilent: result.isSilent,
                    probabilities: result.probabilities, top: result.probabilities.map { voting.candidates($0) } ?? [])
                // The training rule on the window as the network saw it decides whether it votes.
                let normalizedPeak = normalization == .windowPeak ? (result.peak > 0 ? 1 : 0) : result.peak * gain
                voting.add(window, voting: normalizedPeak > modelDescription.trainingSilenceThreshold, peak: result.peak)
                if result.isSilent { silent += 1 }
                loudestPeak = Swift.max(loudestPeak, result.peak)
                emitted += 1
                if keepingWindows { kept.append(window) }
                onWindow?(window)
            }
        }
        let read = try readAll(pass: 2, windows: { emitted }) { chunk, start in
            try checked(chunk, at: start)
            let part = clipped(chunk, start)
            spanFrames += part.count
            if !part.isEmpty { try accept(streaming.process(Array(part)), shortRecording: false) }
        }
        if totalFrames == 0 { totalFrames = read }
        let resampledLength = (spanFrames * configuration.sampleRate + rate - 1) / rate
        try accept(streaming.finish(), shortRecording: resampledLength < windowLength)
        guard totalFrames > 0 else { throw EnvNetError.invalidInput("\(path): the file holds no samples") }

        let classification = try voting.decision(classNames: classNames, topK: request.topK)
        return SoundFileAnalysis(
            path: path, duration: Double(totalFrames) / Double(rate), sampleRate: rate, windowDuration: windowSeconds,
            hopDuration: Double(hop) / Double(configuration.sampleRate), silenceThresholdDecibels: threshold,
            normalization: request.normalization, windows: kept, windowCount: emitted, silentWindowCount: silent,
            peakDecibels: loudestPeak > 0 ? SilenceDetection.decibels(ofPeak: loudestPeak) : nil,
            classification: classification, strongestWindows: classification.best.map { voting.strongest(for: $0.index) } ?? [])
    }

    // MARK: - Streams, like SNAudioStreamAnalyzer

    /// A stream analyser over this classifier's model (SoundAnalysis's `SNAudioStreamAnalyzer`):
    /// feed it chunks as they arrive, or turn an `AsyncSequence` of chunks into results with
    /// ``StreamingClassifier/results(for:)``.
    ///
    /// The stream shares this classifier's network, under its lock.
    ///
    /// - Parameters:
    ///   - sourceSampleRate: The rate of the audio that will be fed, in Hz.
    ///   - configuration: Hop, silence, normalization and smoothing; nil matches the model (its
    ///     detection threshold, this classifier's, and its normalization).
    /// - Returns: A new stream.
    /// - Throws: ``StreamingError`` for a bad rate or settings.
    public func makeStreamAnalyzer(sourceSampleRate: Int, configuration: StreamingConfiguration? = nil) throws -> StreamingClassifier {
        var settings = configuration ?? StreamingClassifier.configuration(for: modelDescription)
        if configuration == nil { settings.silenceThresholdDecibels = silenceThresholdDecibels }
        return try StreamingClassifier(windowLength: self.configuration.inputLength, classNames: classNames,
                                       sourceSampleRate: sourceSampleRate, configuration: settings, scorer: lockedScorer)
    }

    /// The network's softmax for a batch of windows, under the classifier's lock.
    private var lockedScorer: WindowScorer {
        { [self] windows in try lock.withLock { try ClipEvaluator.softmaxScores(of: windows, network: network) } }
    }
}

/// The running decision of a file analysis: sums of the voting windows' probabilities, the
/// loudest sounding window (the fallback when none votes), and the three strongest windows of
/// every class.
private struct Voting {
    let classCount: Int
    let topK: Int
    let classNames: [String]
    var sums: [Double]
    var votes = 0
    var loudest: (peak: Float, probabilities: [Float])?
    var strongestByClass: [[SoundWindowResult]]

    init(classCount: Int, topK: Int, classNames: [String]) {
        self.classCount = classCount
        self.topK = topK
        self.classNames = classNames
        sums = [Double](repeating: 0, count: classCount)
        strongestByClass = [[SoundWindowResult]](repeating: [], count: classCount)
    }

    func candidates(_ probabilities: [Float]) -> [Classification.Candidate] {
        Classification.ranked(probabilities, classNames: classNames, topK: topK)
    }

    mutating func add(_ window: SoundWindowResult, voting: Bool, peak: Float) {
        guard let probabilities = window.probabilities else { return }
        if voting {
            for (label, value) in probabilities.enumerated() { sums[label] += Double(value) }
            votes += 1
        }
        if loudest == nil || peak > loudest!.peak { loudest = (peak, probabilities) }
        for label in 0..<classCount {
            var list = strongestByClass[label]
            guard list.count < 3 || probabilities[label] > list[list.count - 1].probabilities![label] else { continue }
            list.append(window)
            list.sort { $0.probabilities![label] > $1.probabilities![label] }
            if list.count > 3 { list.removeLast() }
            strongestByClass[label] = list
        }
    }

    func strongest(for label: Int) -> [SoundWindowResult] { strongestByClass[label] }

    func decision(classNames: [String], topK: Int) throws -> Classification {
        if votes > 0 {
            return try Classification(probabilities: sums.map { Float($0 / Double(votes)) }, classNames: classNames, topK: topK, windowCount: votes)
        }
        if let loudest {
            return try Classification(probabilities: loudest.probabilities, classNames: classNames, topK: topK, windowCount: 1)
        }
        return try Classification(probabilities: [Float](repeating: 0, count: classCount), classNames: classNames, topK: topK,
                                  windowCount: 0, isSilent: true)
    }
}
