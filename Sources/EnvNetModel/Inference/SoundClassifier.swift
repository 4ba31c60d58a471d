import Foundation

/// Classifies recordings with a trained EnvNet: the API for apps.
///
/// ```swift
/// let classifier = try SoundClassifier(contentsOf: weightsURL)
/// let result = try classifier.classify(contentsOf: recordingURL, topK: 3)
/// print(result.best.label, result.best.probability)
/// ```
///
/// Audio goes through the same preprocessing as training (mix to mono, optional zero trimming,
/// band-limited resampling to 16 kHz, peak normalization by default), then through the
/// evaluation ``EvaluationScheme`` (probability voting over 1.5 s windows by default).
/// A recording whose peak before normalization is at or below ``silenceThresholdDecibels`` is
/// silent (``Classification/isSilent``): a recording of zeros or of faint hum has no class.
///
/// For results per window with time ranges, progress, cancellation and bounded memory on long
/// files, use ``analyze(contentsOf:request:progress:)`` (the counterpart of SoundAnalysis's
/// `SNAudioFileAnalyzer`); for live audio, ``makeStreamAnalyzer(sourceSampleRate:configuration:)``.
///
/// One classifier can be shared by many tasks or threads: calls are serialised by a lock around
/// the network (which is not thread-safe), while preprocessing (decoding, resampling) runs
/// outside it. The network's kernels parallelise internally, so running two classifications at
/// once would not be faster anyway.
public final class SoundClassifier: @unchecked Sendable {
    // Safety of `@unchecked Sendable`: every stored property is immutable; `network` and
    // `evaluator` (which holds the same network) are used only while holding `lock`;
    // `ClipLoader` is itself thread-safe.

    /// The network's sizes.
    public let configuration: NetworkConfiguration
    /// One name per class, in class order.
    public let classNames: [String]
    /// How recordings are cut into windows and voted.
    public let scheme: EvaluationScheme
    /// The preprocessing applied to every recording (its rate is the network's: 16 kHz for EnvNet, 44.1 kHz for EnvNet-v2).
    public let settings: PreprocessingSettings

    /// The detection rule: a recording or window whose peak before normalization is at or below
    /// this level in dBFS is silent (the model's own unless given).
    public let silenceThresholdDecibels: Double

    let lock = NSLock()
    let network: any ClassifierNetwork
    private let evaluator: ClipEvaluator
    let loader: ClipLoader

    /// How the model was made: classes, preprocessing, evaluation, recipe and data (the documented
    /// defaults for files that do not record them).
    public let modelDescription: ModelDescription

    /// Loads a classifier from a model file. The preprocessing and the evaluation scheme are the
    /// ones the file records (``ModelDescription``), unless given here.
    ///
    /// - Parameters:
    ///   - weightsURL: The safetensors file (written by this library, or PyTorch safetensors with
    ///     the interchange names).
    ///   - scheme: The windowing and voting scheme; nil uses the model's.
    ///   - settings: The preprocessing; nil uses the model's (it must match training).
    ///   - silenceThresholdDecibels: The detection threshold in dBFS; nil uses the model's.
    ///   - batchSize: The most windows per forward pass.
    /// - Throws: `SafeTensorsError` for a damaged file, ``EnvNetError/incompatibleWeights(path:reason:)``
    ///   for weights of no network this library builds (or of a newer schema), ``EnvNetError/invalidInput(_:)``
    ///   for an invalid scheme, threshold, batch size, or a preprocessing rate other than the network's.
    public convenience init(contentsOf weightsURL: URL, scheme: EvaluationScheme? = nil,
                            settings: PreprocessingSettings? = nil, silenceThresholdDecibels: Double? = nil, batchSize: Int = 32) throws {
        let (network, description) = try ModelFile.load(from: weightsURL)
        try self.init(network: network, description: description, scheme: scheme, settings: settings,
                      silenceThresholdDecibels: silenceThresholdDecibels, batchSize: batchSize)
    }

    /// Wraps a network with its description (the classifier takes the network over).
    ///
    /// - Parameters:
    ///   - network: The network.
    ///   - description: Its classes, preprocessing and scheme.
    ///   - scheme: Overrides the recorded scheme when given.
    ///   - settings: Overrides the recorded preprocessing when given.
    ///   - silenceThresholdDecibels: Overrides the recorded detection threshold (dBFS) when given.
    ///   - batchSize: The most windows per forward pass.
    /// - Throws: As ``init(network:classNames:scheme:settings:batchSize:)``.
    public convenience init(network: sending any ClassifierNetwork, description: ModelDescription, scheme: EvaluationScheme? = nil,
                            settings: PreprocessingSettings? = nil, silenceThresholdDecibels: Double? = nil, batchSize: Int = 32) throws {
        try self.init(network: network, classNames: description.classNames, scheme: scheme ?? description.evaluation,
                      settings: settings ?? description.preprocessing, batchSize: batchSize, description: description,
                      silenceThresholdDecibels: silenceThresholdDecibels ?? description.predictionSilenceThreshold)
    }

    /// Wraps a network that nobody else uses any more (it is put in evaluation mode).
    ///
    /// - Parameters:
    ///   - network: The network; the classifier takes it over.
    ///   - classNames: One name per class.
    ///   - scheme: The windowing and voting scheme; nil: probability voting with the network's hop
    ///     (``EvaluationScheme/probabilityVoting(network:)``).
    ///   - settings: The preprocessing; its rate must be the network's. Nil: peak normalization at
    ///     the network's rate.
    ///   - batchSize: The most windows per forward pass.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for a wrong number of class names, an invalid
    ///   scheme or batch size, or a preprocessing rate other than the network's.
    public convenience init(network: sending any ClassifierNetwork, classNames: [String], scheme: EvaluationScheme? = nil,
                            settings: PreprocessingSettings? = nil, batchSize: Int = 32) throws {
        let scheme = scheme ?? .probabilityVoting(network: network.architecture)
        let settings = settings ?? PreprocessingSettings(sampleRate: network.sampleRate)
        let description = ModelDescription(configuration: network.networkConfiguration, classNames: classNames, preprocessing: settings, evaluation: scheme)
        try self.init(network: network, classNames: classNames, scheme: scheme, settings: settings, batchSize: batchSize, description: description,
                      silenceThresholdDecibels: description.predictionSilenceThreshold)
    }

    private init(network: sending any ClassifierNetwork, classNames: [String], scheme: EvaluationScheme,
                 settings: PreprocessingSettings, batchSize: Int, description: ModelDescription, silenceThresholdDecibels: Double) throws {
        try SilenceDetection.validate(thresholdDecibels: silenceThresholdDecibels)
        guard classNames.count == network.classCount else {
            throw EnvNetError.invalidInput("\(classNames.count) class names for a network with \(network.classCount) classes")
        }
        guard settings.sampleRate == network.sampleRate else {
            throw EnvNetError.invalidInput("the preprocessing rate must be \(network.sampleRate) Hz for \(network.architecture), got \(settings.sampleRate)")
        }
        network.eval()
        self.evaluator = try ClipEvaluator(network: network, scheme: scheme, batchSize: batchSize)
        self.configuration = network.networkConfiguration
        self.classNames = classNames
        self.scheme = scheme
        self.settings = settings
        self.loader = ClipLoader(settings: settings)
        self.modelDescription = description
        self.network = network
        self.silenceThresholdDecibels = silenceThresholdDecibels
    }

    /// The length of the network's window in seconds (1.5 s plus 14 samples for the official sizes).
    public var windowDuration: Double { Double(configuration.inputLength) / Double(configuration.sampleRate) }

    /// Classifies an audio file in any supported format (WAV, FLAC, Ogg Vorbis, Opus, MP3, AIFF/AIFC,
    /// CAF, W64), at any rate and channel count.
    ///
    /// - Parameters:
    ///   - audioURL: The recording.
    ///   - topK: How many candidates to return (clamped to the class count), at least 1.
    /// - Returns: The class probabilities and the `topK` most probable classes, or a silent
    ///   classification when the recording's peak is at or below ``silenceThresholdDecibels``.
    /// - Throws: `AudioError` naming the file when it cannot be read or decoded;
    ///   ``EnvNetError/invalidInput(_:)`` naming the file for `topK < 1` or a file without samples.
    public func classify(contentsOf audioURL: URL, topK: Int = 5) throws -> Classification {
        guard topK >= 1 else { throw EnvNetError.invalidInput("\(audioURL.path): topK must be at least 1, got \(topK)") }
        let audio = try AudioFileReader.read(contentsOf: audioURL)
        guard !audio.mono.isEmpty else { throw EnvNetError.invalidInput("\(audioURL.path): the file holds no samples") }
        do {
            return try classify(samples: audio.mono, sampleRate: audio.sampleRate, topK: topK, name: audioURL.path)
        } catch let error as AudioError {
            throw AudioError(source: audioURL.path, problem: error.problem)
        }
    }

    /// Classifies a mono buffer recorded at any rate.
    ///
    /// The buffer is preprocessed like training clips: zero-trimmed if the settings say so,
    /// resampled to 16 kHz with the band-limited resampler, then normalized (peak 1.0 by default).
    ///
    /// - Parameters:
    ///   - samples: Mono samples, finite, at least one.
    ///   - sampleRate: Their rate in Hz, positive.
    ///   - topK: How many candidates to return (clamped to the class count), at least 1.
    /// - Returns: The class probabilities and the `topK` most probable classes, or a silent
    ///   classification when the buffer's peak (after resampling, before normalization) is at or
    ///   below ``silenceThresholdDecibels``.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for an empty buffer, a non-finite sample, a
    ///   non-positive rate or `topK < 1`; `AudioError` for a rate the resampler cannot convert.
    public func classify(samples: [Float], sampleRate: Int, topK: Int = 5) throws -> Classification {
        try classify(samples: samples, sampleRate: sampleRate, topK: topK, name: "the audio buffer")
    }

    private func classify(samples: [Float], sampleRate: Int, topK: Int, name: String) throws -> Classification {
        guard topK >= 1 else { throw EnvNetError.invalidInput("\(name): topK must be at least 1, got \(topK)") }
        guard sampleRate > 0 else { throw EnvNetError.invalidInput("\(name): the sample rate must be positive, got \(sampleRate)") }
        guard !samples.isEmpty else { throw EnvNetError.invalidInput("\(name) is empty") }
        if let index = samples.firstIndex(where: { !$0.isFinite }) {
            throw EnvNetError.invalidInput("sample \(index) of \(name) is \(samples[index]); samples must be finite")
        }
        var prepared = samples
        if settings.trimsZeros { prepared = trimmingZeros(prepared) }
        if sampleRate != settings.sampleRate { prepared = try loader.resampler(from: sampleRate).process(prepared) }
        // The detection rule judges the level before normalization: a hum normalized peaks at 1.0.
        // The recording is silent exactly when its loudest window is.
        let isSilent = SilenceDetection.isSilent(peak: peakAmplitude(prepared), thresholdDecibels: silenceThresholdDecibels)
        prepared = normalized(prepared, policy: settings.normalization)
        let score = try lock.withLock { try evaluator.score(prepared, name: name) }
        return try Classification(probabilities: score.probabilities, classNames: classNames, topK: topK,
                                  windowCount: score.windowCount, isSilent: isSilent)
    }

    /// Classifies samples that are already preprocessed (16 kHz, normalized as in training).
    ///
    /// Normalized samples no longer tell how loud the recording was, so there is no silence
    /// detection here: an empty or silent buffer gets the class of one window, as in evaluation.
    ///
    /// - Parameters:
    ///   - preprocessedSamples: 16 kHz normalized samples.
    ///   - topK: How many candidates to return (clamped to the class count), at least 1.
    ///   - name: Names the recording in errors.
    /// - Returns: The class probabilities and the `topK` most probable classes.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for a non-finite sample or `topK < 1`.
    public func classify(preprocessedSamples: [Float], topK: Int = 5, name: String = "audio buffer") throws -> Classification {
        guard topK >= 1 else { throw EnvNetError.invalidInput("\(name): topK must be at least 1, got \(topK)") }
        let score = try lock.withLock { try evaluator.score(preprocessedSamples, name: name) }
        return try Classification(probabilities: score.probabilities, classNames: classNames, topK: topK, windowCount: score.windowCount)
    }
}
