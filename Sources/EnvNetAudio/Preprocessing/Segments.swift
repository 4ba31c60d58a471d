import EnvNetTensor
import Logging

/// What makes a window silent: its peak amplitude (EnvNet's rule) or the mean of its log-mel
/// spectrogram (the log-mel CNN's).
public enum SilenceRule: Sendable {
    /// Silent when `max |x| <= threshold`.
    case peak(threshold: Float)
    /// Silent when the mean of the window's log-mel values is below
    /// ``LogMelSettings/silenceDecibels`` (-70 dB).
    case meanLogMel(LogMelSpectrogram)

    /// How loud a window is under this rule: its peak, or its mean log-mel level in dB.
    public func loudness(of window: some Collection<Float>) -> Float {
        switch self {
        case .peak: return window.reduce(Float(0)) { max($0, abs($1)) }
        case let .meanLogMel(spectrogram): return Float(spectrogram.meanDecibels(of: window))
        }
    }

    /// Whether a window of this loudness is silent.
    public func isSilent(loudness: Float) -> Bool {
        switch self {
        case let .peak(threshold): return loudness <= threshold
        case let .meanLogMel(spectrogram): return Double(loudness) < spectrogram.settings.silenceDecibels
        }
    }
}

/// Cuts clips into the fixed-length segments the network consumes.
///
/// Training draws one random crop per clip per epoch and re-draws crops that are silent;
/// evaluation either slides a window with a fixed hop and keeps the non-silent windows (the
/// seed article), or takes evenly spaced crops of a half-window-padded clip (the authors'
/// repository).
public struct SegmentSampler: Sendable {
    /// Samples per segment (24000 = 1.5 s at 16 kHz in the seed, 24014 for the official net).
    public var length: Int
    /// A segment is silent when `max |x| <= silenceThreshold`.
    public var silenceThreshold: Float
    /// How many random crops to draw before giving up on finding a non-silent one.
    public var maximumAttempts: Int
    /// Where the warning goes when no non-silent crop is found.
    public var logger: Logger
    /// The rule that tells silent segments; nil: the peak rule with ``silenceThreshold``.
    public var silenceRule: SilenceRule?

    /// The rule in force.
    public var rule: SilenceRule { silenceRule ?? .peak(threshold: silenceThreshold) }

    /// Creates a sampler.
    ///
    /// - Parameters:
    ///   - length: Samples per segment, positive.
    ///   - silenceThreshold: Peak amplitude at or below which a segment counts as silent.
    ///   - maximumAttempts: Random crops drawn before settling for the loudest one, positive.
    ///   - logger: Receives the warning when every attempt was silent.
    ///   - silenceRule: Another rule than the peak threshold (the log-mel CNN's mean level).
    public init(
        length: Int, silenceThreshold: Float = 0.2, maximumAttempts: Int = 50,
        logger: Logger = Logger(label: "EnvNetAudio.SegmentSampler"), silenceRule: SilenceRule? = nil
    ) {
        precondition(length > 0, "segment length must be positive")
        precondition(maximumAttempts > 0, "at least one attempt is needed")
        self.length = length
        self.silenceThreshold = silenceThreshold
        self.maximumAttempts = maximumAttempts
        self.logger = logger
        self.silenceRule = silenceRule
    }

    /// Whether a segment is silent under this sampler's rule.
    ///
    /// - Parameter segment: The samples.
    /// - Returns: `true` when `max |x| <= silenceThreshold` (or the log-mel rule says so).
    public func isSilent(_ segment: some Collection<Float>) -> Bool {
        rule.isSilent(loudness: rule.loudness(of: segment))
    }

    /// Draws a random non-silent crop of `length` samples.
    ///
    /// Clips shorter than `length` are zero-padded equally on both sides and returned whole
    /// (there is only one crop to draw). Otherwise up to `maximumAttempts` uniformly placed
    /// crops are drawn; the first non-silent one is returned. When all are silent, the loudest
    /// of them is returned and a warning is logged, so an all-silent clip cannot stall
    /// training.
    ///
    /// - Parameters:
    ///   - samples: The clip.
    ///   - generator: The source of randomness.
    ///   - clipName: Names the clip in the warning.
    /// - Returns: Exactly `length` samples.
    public func randomCrop(
        of samples: [Float], using generator: inout some RandomNumberGenerator,
        clipName: String = "clip"
    ) -> [Float] {
        if samples.count <= length {
            let padded = centredPadding(samples)
            if isSilent(padded) {
                logger.warning("\(clipName): shorter than one segment and silent; using it anyway")
            }
            return padded
        }
        let startCount = samples.count - length + 1
        var loudestStart = 0
        var loudestPeak = -Float.infinity
        let rule = self.rule
        for _ in 0..<maximumAttempts {
            let start = generator.nextInt(below: startCount)
            let segment = samples[start..<(start + length)]
            let peak = rule.loudness(of: segment)
            if !rule.isSilent(loudness: peak) { return Array(segment) }
            if peak > loudestPeak { (loudestStart, loudestPeak) = (start, peak) }
        }
        logger.warning("""
            \(clipName): no non-silent segment in \(maximumAttempts) random crops; \
            using the loudest one (peak \(loudestPeak))
            """)
        return Array(samples[loudestStart..<(loudestStart + length)])
    }

    /// The start offsets of the sliding evaluation windows, before silence filtering.
    ///
    /// A clip of `length + k * hop` samples (plus less than a hop) has `k + 1` windows; a clip
    /// shorter than `length` has one window at 0 (it is padded when cut).
    ///
    /// - Parameters:
    ///   - sampleCount: Samples in the clip.
    ///   - hop: Samples between window starts (3200 = 0.2 s at 16 kHz).
    /// - Returns: The window start offsets.
    public func windowStarts(sampleCount: Int, hop: Int = 3200) -> [Int] {
        precondition(hop > 0, "hop must be positive")
        guard sampleCount > length else { return [0] }
        return Array(stride(from: 0, through: sampleCount - length, by: hop))
    }

    /// Sliding evaluation windows with silent windows dropped (the seed article).
    ///
    /// Every clip yields at least one window: when all windows are silent, the loudest one is
    /// kept, so that every clip still gets a prediction. Clips shorter than `length` give one
    /// window, zero-padded on both sides.
    ///
    /// - Parameters:
    ///   - samples: The clip.
    ///   - hop: Samples between window starts (3200 = 0.2 s at 16 kHz).
    /// - Returns: One or more windows of exactly `length` samples.
    public func evaluationWindows(of samples: [Float], hop: Int = 3200) -> [[Float]] {
        if samples.count <= length { return [centredPadding(samples)] }
        var kept: [[Float]] = []
        var loudest = (start: 0, peak: -Float.infinity)
        let rule = self.rule
        for start in windowStarts(sampleCount: samples.count, hop: hop) {
            let window = samples[start..<(start + length)]
            let peak = rule.loudness(of: window)
            if !rule.isSilent(loudness: peak) { kept.append(Array(window)) }
            if peak > loudest.peak { loudest = (start, peak) }
        }
        if kept.isEmpty {
            kept.append(Array(samples[loudest.start..<(loudest.start + length)]))
        }
        return kept
    }

    /// Evenly spaced crops of the clip padded by half a window on both sides (the authors'
    /// repository's 10-crop test).
    ///
    /// The stride is `(paddedCount - length) / (count - 1)` rounded down, as in the reference,
    /// so the first crop starts at the padded clip's start and the last ends at or just before
    /// its end.
    ///
    /// - Parameters:
    ///   - samples: The clip.
    ///   - count: The number of crops, positive (10 by default).
    /// - Returns: `count` crops of exactly `length` samples.
    public func evenlySpacedCrops(of samples: [Float], count: Int = 10) -> [[Float]] {
        precondition(count > 0, "crop count must be positive")
        let half = length / 2
        var padded = zeroPadded(samples, leading: half, trailing: half)
        if padded.count < length {
            padded += [Float](repeating: 0, count: length - padded.count)
        }
        let stride = count > 1 ? (padded.count - length) / (count - 1) : 0
        return (0..<count).map { index in
            Array(padded[(index * stride)..<(index * stride + length)])
        }
    }

    private func centredPadding(_ samples: [Float]) -> [Float] { centredZeroPadded(samples, toLength: length) }
}
