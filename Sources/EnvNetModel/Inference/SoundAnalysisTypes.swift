import Foundation

/// How ``SoundClassifier/analyze(contentsOf:request:progress:)`` scales a recording's windows
/// before the network.
public enum SoundAnalysisNormalization: String, Sendable, Hashable, Codable, CaseIterable {
    /// The whole recording is divided by its peak, as in training and in
    /// ``SoundClassifier/classify(contentsOf:topK:)``: the file is read twice (once for the peak,
    /// a fast pass without the network). The default.
    case recording
    /// Each window is divided by its own peak, as a live stream must be: the file is read once.
    /// Better for long recordings in which one loud event would make the rest look quiet.
    case window
}

/// What to analyse and how: the counterpart of SoundAnalysis's `SNClassifySoundRequest`.
///
/// The window is fixed by the network (``SoundClassifier/windowDuration``, 1.5 s); the spacing
/// of windows is set by ``overlapFactor`` as in SoundAnalysis (0.5 by default: a new window every
/// 0.75 s), or by ``hopDuration`` in seconds (0.2 s is the papers' probability voting).
public struct SoundAnalysisRequest: Sendable, Hashable, Codable {
    /// The fraction by which consecutive windows overlap, in [0, 1). Ignored when ``hopDuration`` is set.
    public var overlapFactor: Double
    /// Seconds between the starts of consecutive windows; nil uses ``overlapFactor``.
    public var hopDuration: Double?
    /// The detection threshold in dBFS; nil uses the model's (``ModelDescription/predictionSilenceThreshold``).
    public var silenceThresholdDecibels: Double?
    /// How windows are scaled before the network.
    public var normalization: SoundAnalysisNormalization
    /// How many candidates each window result and the decision list, at least 1.
    public var topK: Int

    /// Creates a request.
    ///
    /// - Parameters:
    ///   - overlapFactor: The overlap of consecutive windows, in [0, 1) (0.5 by default, as in SoundAnalysis).
    ///   - hopDuration: Seconds between window starts; overrides `overlapFactor` when given.
    ///   - silenceThresholdDecibels: The detection threshold in dBFS; nil for the model's.
    ///   - normalization: How windows are scaled (the whole recording by its peak by default).
    ///   - topK: Candidates per result, at least 1.
    public init(overlapFactor: Double = 0.5, hopDuration: Double? = nil, silenceThresholdDecibels: Double? = nil,
                normalization: SoundAnalysisNormalization = .recording, topK: Int = 3) {
        self.overlapFactor = overlapFactor
        self.hopDuration = hopDuration
        self.silenceThresholdDecibels = silenceThresholdDecibels
        self.normalization = normalization
        self.topK = topK
    }

    /// The samples at the network's rate between window starts, after checking the settings.
    ///
    /// - Parameters:
    ///   - windowLength: The network's window in samples.
    ///   - sampleRate: The network's rate (16 kHz for EnvNet, 44.1 kHz for EnvNet-v2).
    /// - Returns: The hop, at least 1 sample.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` naming the setting out of range.
    public func hopSamples(windowLength: Int, sampleRate: Int = EnvNetConfiguration.sampleRate) throws -> Int {
        let rate = Double(sampleRate)
        if let hopDuration {
            guard hopDuration.isFinite, hopDuration > 0, hopDuration <= 3600, (hopDuration * rate).rounded() >= 1 else {
                throw EnvNetError.invalidInput("the hop must be between one sample at \(sampleRate) Hz and 3600 s, got \(hopDuration) s")
            }
            return Int((hopDuration * rate).rounded())
        }
        guard overlapFactor.isFinite, overlapFactor >= 0, overlapFactor < 1 else {
            throw EnvNetError.invalidInput("the overlap factor must be in [0, 1), got \(overlapFactor)")
        }
        return Swift.max(1, Int((Double(windowLength) * (1 - overlapFactor)).rounded()))
    }

    /// Checks every setting.
    ///
    /// - Parameter windowLength: The network's window in samples.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` naming the first setting out of range.
    public func validate(windowLength: Int, sampleRate: Int = EnvNetConfiguration.sampleRate) throws {
        _ = try hopSamples(windowLength: windowLength, sampleRate: sampleRate)
        if let silenceThresholdDecibels { try SilenceDetection.validate(thresholdDecibels: silenceThresholdDecibels) }
        guard topK >= 1 else { throw EnvNetError.invalidInput("topK must be at least 1, got \(topK)") }
    }
}

/// A stretch of a recording, in seconds from its start (SoundAnalysis's `CMTimeRange`).
public struct TimeRange: Sendable, Hashable, Codable {
    /// Where it starts.
    public var start: Double
    /// How long it lasts.
    public var duration: Double
    /// Where it ends.
    public var end: Double { start + duration }

    /// Creates a range.
    ///
    /// - Parameters:
    ///   - start: Its start in seconds.
    ///   - duration: Its length in seconds.
    public init(start: Double, duration: Double) {
        self.start = start
        self.duration = duration
    }
}

/// What one window of an analysed recording holds (SoundAnalysis's `SNClassificationResult`).
public struct SoundWindowResult: Sendable, Hashable, Codable {
    /// The window's number, from 0.
    public var index: Int
    /// Where the window lies in the recording. A recording shorter than a window is one window
    /// over all of it (padded with zeros on both sides for the network).
    public var timeRange: TimeRange
    /// The window's peak before normalization in dBFS; nil for digital silence (minus infinity).
    public var peakDecibels: Double?
    /// Whether the window is silent (its peak at or below the detection threshold): it was not
    /// scored.
    public var isSilent: Bool
    /// The window's class probabilities in class order; nil when silent.
    public var probabilities: [Float]?
    /// The window's most probable classes, most probable first; empty when silent.
    public var top: [Classification.Candidate]

    /// Creates a result.
    ///
    /// - Parameters:
    ///   - index: The window's number.
    ///   - timeRange: Where it lies.
    ///   - peakDecibels: Its peak in dBFS, nil for zeros.
    ///   - isSilent: Whether it is silent.
    ///   - probabilities: Its probabilities, nil when silent.
    ///   - top: Its most probable classes.
    public init(index: Int, timeRange: TimeRange, peakDecibels: Double?, isSilent: Bool, probabilities: [Float]?,
                top: [Classification.Candidate]) {
        self.index = index
        self.timeRange = timeRange
        self.peakDecibels = peakDecibels
        self.isSilent = isSilent
        self.probabilities = probabilities
        self.top = top
    }

    /// The window's most probable class; nil when silent.
    public var best: Classification.Candidate? { top.first }
}

/// How far a file analysis has come.
public struct SoundAnalysisProgress: Sendable, Hashable {
    /// Source frames decoded so far in the current pass.
    public var framesRead: Int
    /// Frames in the file, as its header says (an estimate for MP3).
    public var totalFrames: Int
    /// Windows analysed so far.
    public var windowsAnalyzed: Int
    /// 1 while the recording's peak is measured (``SoundAnalysisNormalization/recording``), 2 while
    /// windows are analysed.
    public var pass: Int
    /// The fraction of the work done, in [0, 1] (the peak pass counts for 5 %).
    public var fractionCompleted: Double
}

/// The result of analysing one recording: every window with its time range, and the decision.
public struct SoundFileAnalysis: Sendable, Hashable, Codable {
    /// The file.
    public var path: String
    /// The recording's length in seconds (as decoded).
    public var duration: Double
    /// The file's own sample rate in Hz.
    public var sampleRate: Int
    /// The window length in seconds.
    public var windowDuration: Double
    /// Seconds between window starts.
    public var hopDuration: Double
    /// The detection threshold that was applied, in dBFS.
    public var silenceThresholdDecibels: Double
    /// How the windows were scaled.
    public var normalization: SoundAnalysisNormalization
    /// Every window, in time order (empty when the analysis was asked not to keep them).
    public var windows: [SoundWindowResult]
    /// How many windows were analysed and how many of them were silent.
    public var windowCount: Int
    /// How many windows were silent.
    public var silentWindowCount: Int
    /// The peak of the loudest window before normalization, in dBFS; nil for digital silence.
    public var peakDecibels: Double?
    /// The decision: probability voting over the windows that sound and pass the training rule
    /// (peak after normalization above ``ModelDescription/trainingSilenceThreshold``), the
    /// loudest sounding window when none passes it, or ``Classification/isSilent`` when no
    /// window sounds.
    public var classification: Classification
    /// The windows in which the decided class is most probable, most probable first (at most 3;
    /// empty when silent).
    public var strongestWindows: [SoundWindowResult]

    /// Whether no window of the recording sounds.
    public var isSilent: Bool { classification.isSilent }
}
