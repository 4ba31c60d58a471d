import Foundation

/// What can go wrong when setting up or feeding a ``StreamingClassifier``.
public enum StreamingError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The source sample rate is zero or negative.
    case invalidSampleRate(Int)
    /// No resampler can convert this source rate to 16 kHz (for example a rate pair whose
    /// polyphase table would be too large); `reason` is the resampler's message.
    case unsupportedSampleRate(Int, reason: String)
    /// A sample of a chunk is NaN or infinite. `position` counts source samples from the start of
    /// the stream (or of the buffer, for ``StreamingClassifier/offlineResults(for:)``). The chunk
    /// was rejected as a whole: the stream is as it was before the call and can go on.
    case nonFiniteSample(position: Int, value: Float)
    /// A setting of ``StreamingConfiguration`` or an argument is out of range; the message names it.
    case invalidSetting(String)
    /// The window scorer returned something other than one row of finite class probabilities
    /// per window.
    case invalidScores(String)

    public var description: String {
        switch self {
        case let .invalidSampleRate(rate):
            return "invalid sample rate \(rate) Hz: the source rate must be positive"
        case let .unsupportedSampleRate(rate, reason):
            return "cannot resample \(rate) Hz to the network's rate: \(reason)"
        case let .nonFiniteSample(position, value):
            return "sample \(position) of the stream is \(value); samples must be finite (the chunk was rejected)"
        case let .invalidSetting(message):
            return "invalid streaming setting: \(message)"
        case let .invalidScores(message):
            return "invalid window scores: \(message)"
        }
    }
}

/// How a ``StreamingClassifier`` scales windows before the network.
///
/// Offline preprocessing divides a whole clip by its peak, which a stream cannot do: the loudest
/// sample may still be to come. The streaming classifier therefore offers:
public enum StreamingNormalization: String, Sendable, Hashable, Codable, CaseIterable {
    /// Every window is divided by its own peak `max |x|` (a window of zeros stays zeros), so the
    /// network sees a peak of 1.0 as in training. The default for live audio.
    case windowPeak
    /// Windows go to the network as they are (after ``StreamingConfiguration/inputGain``): for
    /// audio that is already normalized, or with `inputGain = 1 / clipPeak` to reproduce the
    /// offline ``ClipEvaluator`` windows exactly.
    case none
}

/// How a ``StreamingClassifier`` smooths the window probabilities into a steadier decision.
///
/// Only non-silent (scored) windows enter the smoothing. Through a short silence the smoothed
/// decision keeps its last value; once a stretch of silent windows as long as the smoothing's
/// memory has passed (1 window for ``none``, `windows` for ``movingAverage(windows:)``,
/// `1 / weight` rounded up for ``exponential(weight:)``), the smoothed decision becomes nil —
/// that stretch of the stream is silent — and the smoothing starts afresh at the next sound.
public enum StreamingSmoothing: Sendable, Hashable, Codable {
    /// No smoothing: the smoothed decision is that of the last scored window.
    case none
    /// The mean of the probabilities of the last `windows` scored windows (fewer at the start).
    /// With the default 5 windows and a 0.2 s hop, a decision covers about 2.3 s of audio,
    /// like the offline probability voting over a short clip.
    case movingAverage(windows: Int)
    /// An exponential moving average `s = weight * p + (1 - weight) * s_previous`, started at
    /// the first scored window's probabilities; `weight` is in (0, 1].
    case exponential(weight: Float)

    /// Checks the numbers.
    ///
    /// - Throws: ``StreamingError/invalidSetting(_:)`` for a window count below 1 or a weight
    ///   outside (0, 1].
    public func validate() throws {
        switch self {
        case .none: return
        case let .movingAverage(windows):
            guard windows >= 1 else { throw StreamingError.invalidSetting("the moving average needs at least 1 window, got \(windows)") }
        case let .exponential(weight):
            guard weight.isFinite, weight > 0, weight <= 1 else {
                throw StreamingError.invalidSetting("the exponential smoothing weight must be in (0, 1], got \(weight)")
            }
        }
    }
}

/// The settings of a ``StreamingClassifier``.
public struct StreamingConfiguration: Sendable, Hashable, Codable {
    /// Samples at 16 kHz between the starts of consecutive windows (3200 = 0.2 s, the seed
    /// article's evaluation hop): a result is emitted every `hop` samples.
    public var hop: Int
    /// A window whose peak before ``inputGain`` and normalization is at or below this level in
    /// dBFS (0 dBFS = amplitude 1.0) is silent: it is not scored and does not enter the smoothing
    /// (``SilenceDetection``; -50 dBFS by default, a model's own with
    /// ``StreamingClassifier/init(contentsOf:sourceSampleRate:configuration:)``).
    public var silenceThresholdDecibels: Double
    /// How windows are scaled before the network.
    public var normalization: StreamingNormalization
    /// A gain applied to every window that is not silent before it goes to the network with
    /// ``StreamingNormalization/none`` (with ``StreamingNormalization/windowPeak`` it cancels
    /// out); finite and positive. Silence is judged before it.
    public var inputGain: Float
    /// How the window probabilities are smoothed.
    public var smoothing: StreamingSmoothing
    /// The most windows scored in one forward pass (a large chunk completes several windows).
    public var batchSize: Int

    /// Creates settings.
    ///
    /// - Parameters:
    ///   - hop: Samples at 16 kHz between windows, at least 1 (3200 = 0.2 s).
    ///   - silenceThresholdDecibels: The level in dBFS at or below which a window's peak (before
    ///     gain and normalization) is silent, in [-200, 0].
    ///   - normalization: How windows are scaled (each by its own peak by default).
    ///   - inputGain: A gain for every sample, finite and positive.
    ///   - smoothing: The smoothing of the decision (mean of the last 5 scored windows by default).
    ///   - batchSize: The most windows per forward pass, at least 1.
    public init(hop: Int = 3200, silenceThresholdDecibels: Double = SilenceDetection.defaultThresholdDecibels, normalization: StreamingNormalization = .windowPeak,
                inputGain: Float = 1, smoothing: StreamingSmoothing = .movingAverage(windows: 5), batchSize: Int = 8) {
        self.hop = hop
        self.silenceThresholdDecibels = silenceThresholdDecibels
        self.normalization = normalization
        self.inputGain = inputGain
        self.smoothing = smoothing
        self.batchSize = batchSize
    }

    /// Checks the settings.
    ///
    /// - Throws: ``StreamingError/invalidSetting(_:)`` naming the first value out of range.
    public func validate() throws {
        guard hop >= 1 else { throw StreamingError.invalidSetting("the hop must be at least 1 sample, got \(hop)") }
        guard silenceThresholdDecibels.isFinite, silenceThresholdDecibels <= 0, silenceThresholdDecibels >= -200 else {
            throw StreamingError.invalidSetting("the silence threshold must be a level in dBFS between -200 and 0, got \(silenceThresholdDecibels)")
        }
        guard inputGain.isFinite, inputGain > 0 else {
            throw StreamingError.invalidSetting("the input gain must be finite and positive, got \(inputGain)")
        }
        guard batchSize >= 1 else { throw StreamingError.invalidSetting("the batch size must be at least 1, got \(batchSize)") }
        try smoothing.validate()
    }
}

/// What a ``StreamingClassifier`` reports for one window of the stream.
public struct StreamingResult: Sendable, Hashable {
    /// The window's number, from 0.
    public var index: Int
    /// The window's first sample in the stream at the network's rate (`index * hop`; 0 for the
    /// single padded window of a stream shorter than one window).
    public var startSample: Int
    /// The window's length in samples at the network's rate (the network's input length).
    public var windowLength: Int
    /// The network's rate, which ``startSample`` and ``windowLength`` count at (16 kHz for EnvNet).
    public var sampleRate: Int
    /// The window's peak `max |x|` before the input gain and normalization (1.0 = full scale).
    public var peak: Float
    /// Whether the window was silent (peak at or below the threshold in dBFS) and therefore not scored.
    public var isSilent: Bool
    /// The window's class probabilities (softmax), in class order; `nil` for a silent window.
    public var probabilities: [Float]?
    /// The window's most probable class; `nil` for a silent window.
    public var best: Classification.Candidate?
    /// The smoothed probabilities after this window; `nil` until the first scored window and
    /// through a silent stretch (see ``StreamingSmoothing``).
    public var smoothedProbabilities: [Float]?
    /// The most probable class of the smoothed probabilities; `nil` until the first scored window.
    public var smoothedBest: Classification.Candidate?

    /// Creates a result (the classifier builds them; public for tests and custom pipelines).
    ///
    /// - Parameters:
    ///   - index: The window's number.
    ///   - startSample: Its first sample at the network's rate.
    ///   - windowLength: Its length at the network's rate.
    ///   - sampleRate: The network's rate (16 kHz by default).
    ///   - peak: Its peak before gain and normalization.
    ///   - isSilent: Whether it was skipped as silent.
    ///   - probabilities: Its class probabilities, `nil` when silent.
    ///   - best: Its most probable class, `nil` when silent.
    ///   - smoothedProbabilities: The smoothed probabilities, `nil` before the first scored window.
    ///   - smoothedBest: The smoothed decision, `nil` before the first scored window.
    public init(index: Int, startSample: Int, windowLength: Int, sampleRate: Int = EnvNetConfiguration.sampleRate, peak: Float, isSilent: Bool, probabilities: [Float]?,
                best: Classification.Candidate?, smoothedProbabilities: [Float]?, smoothedBest: Classification.Candidate?) {
        self.index = index
        self.startSample = startSample
        self.windowLength = windowLength
        self.sampleRate = sampleRate
        self.peak = peak
        self.isSilent = isSilent
        self.probabilities = probabilities
        self.best = best
        self.smoothedProbabilities = smoothedProbabilities
        self.smoothedBest = smoothedBest
    }

    /// The window's start in seconds from the start of the stream.
    public var startTime: Double { Double(startSample) / Double(sampleRate) }
    /// The window's end in seconds: the moment of the stream its result describes up to.
    public var endTime: Double { Double(startSample + windowLength) / Double(sampleRate) }
    /// The window's peak in dBFS (`-infinity` for digital silence).
    public var peakDecibels: Double { SilenceDetection.decibels(ofPeak: peak) }
}
