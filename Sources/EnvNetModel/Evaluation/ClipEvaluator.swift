import Foundation

/// Scores a batch of windows: one row of class probabilities per window, in window order.
///
/// ``ClipEvaluator`` calls it with at most ``ClipEvaluator/batchSize`` windows at a time, each of
/// exactly ``ClipEvaluator/windowLength`` samples. The EnvNet scorer (see
/// ``ClipEvaluator/init(network:scheme:batchSize:silenceThreshold:)``) returns the softmax of the
/// logits; tests can substitute any deterministic function.
public typealias WindowScorer = (_ windows: [[Float]]) throws -> [[Float]]

/// How far an evaluation of many clips has come.
public struct EvaluationProgress: Sendable, Hashable {
    /// Clips evaluated so far.
    public var completed: Int
    /// Clips to evaluate in total.
    public var total: Int
    /// Correct predictions so far.
    public var correct: Int
    /// The name of the clip that was just evaluated.
    public var clipName: String

    /// The running clip accuracy, 0 before the first clip.
    public var accuracy: Double { completed > 0 ? Double(correct) / Double(completed) : 0 }
}

/// The probabilities of one clip before a label is attached.
public struct ClipScore: Sendable, Hashable {
    /// The mean of the window probabilities, in class order.
    public var probabilities: [Float]
    /// How many windows were scored.
    public var windowCount: Int
    /// The arg-max of ``probabilities``; ties go to the lowest class index.
    public var predictedLabel: Int
}

/// Turns clips into predictions: cuts each clip into windows according to an
/// ``EvaluationScheme``, scores the windows in bounded batches and averages their probabilities.
///
/// The evaluator is generic over a ``WindowScorer``, so window selection, voting and reporting
/// can be tested with a fake scorer; ``init(network:scheme:batchSize:silenceThreshold:)`` builds
/// the real one around an ``EnvNet``.
///
/// An evaluator that wraps a network is not `Sendable`: use it from one task at a time (see
/// ``SoundClassifier`` for a thread-safe wrapper). The network's kernels parallelise internally.
public struct ClipEvaluator {
    /// Samples per window (the network's input length).
    public let windowLength: Int
    /// The number of classes the scorer returns per window.
    public let classCount: Int
    /// The windowing and voting scheme.
    public let scheme: EvaluationScheme
    /// The most windows passed to the scorer at once (bounds memory).
    public let batchSize: Int
    /// Windows with `max |x| <=` this value are silent (probability voting only).
    public let silenceThreshold: Float
    /// The rule that tells silent windows in probability voting; nil: the peak threshold.
    public let silenceRule: SilenceRule?
    private let scorer: WindowScorer

    /// Creates an evaluator around any window scorer.
    ///
    /// - Parameters:
    ///   - windowLength: Samples per window, at least 1.
    ///   - classCount: Probabilities per window the scorer returns, at least 1.
    ///   - scheme: The windowing and voting scheme.
    ///   - batchSize: The most windows per scorer call, at least 1.
    ///   - silenceThreshold: The silence threshold of probability voting (0.2 in the paper's recipe).
    ///   - silenceRule: Another rule than the peak threshold (the log-mel CNN's mean level).
    ///   - scorer: Returns one row of `classCount` probabilities per window.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for a non-positive length, class count or batch
    ///   size, an invalid scheme or a non-finite or negative threshold.
    public init(windowLength: Int, classCount: Int, scheme: EvaluationScheme = .seedArticle, batchSize: Int = 32,
                silenceThreshold: Float = 0.2, silenceRule: SilenceRule? = nil, scorer: @escaping WindowScorer) throws {
        guard windowLength >= 1 else { throw EnvNetError.invalidInput("window length must be at least 1, got \(windowLength)") }
        guard classCount >= 1 else { throw EnvNetError.invalidInput("class count must be at least 1, got \(classCount)") }
        guard batchSize >= 1 else { throw EnvNetError.invalidInput("evaluation batch size must be at least 1, got \(batchSize)") }
        guard silenceThreshold.isFinite, silenceThreshold >= 0 else {
            throw EnvNetError.invalidInput("silence threshold must be finite and non-negative, got \(silenceThreshold)")
        }
        try scheme.validate()
        self.windowLength = windowLength
        self.classCount = classCount
        self.scheme = scheme
        self.batchSize = batchSize
        self.silenceThreshold = silenceThreshold
        self.silenceRule = silenceRule
        self.scorer = scorer
    }

    /// Creates an evaluator that scores windows with an EnvNet: each batch becomes one
    /// `[n, 1, 1, inputLength]` forward pass in evaluation mode, followed by a softmax per window.
    ///
    /// The network is switched to evaluation mode for every batch and back to training mode
    /// afterwards if it was training, so the training loop can evaluate between epochs.
    ///
    /// - Parameters:
    ///   - network: The network; the evaluator keeps a reference and must be the only user while it runs.
    ///   - scheme: The windowing and voting scheme; nil: probability voting with the network's hop
    ///     (``EvaluationScheme/probabilityVoting(network:)``: 3200 samples for EnvNet).
    ///   - batchSize: The most windows per forward pass (32 by default: about 3 MB of input and a
    ///     few hundred MB of activations for the official sizes).
    ///   - silenceThreshold: The silence threshold of probability voting (the network's own rule
    ///     replaces it for the log-mel CNN: see ``ClassifierNetwork/silenceRule(peakThreshold:)``).
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for an invalid scheme, batch size or threshold.
    public init(network: any ClassifierNetwork, scheme: EvaluationScheme? = nil, batchSize: Int = 32,
                silenceThreshold: Float = 0.2) throws {
        let length = network.inputLength
        let scheme = scheme ?? .probabilityVoting(network: network.architecture)
        try self.init(windowLength: length, classCount: network.classCount, scheme: scheme,
                      batchSize: batchSize, silenceThreshold: silenceThreshold,
                      silenceRule: network.silenceRule(peakThreshold: silenceThreshold)) { windows in
            try Self.softmaxScores(of: windows, network: network)
        }
    }

    /// The softmax outputs of an EnvNet for a batch of windows, in evaluation mode.
    ///
    /// - Parameters:
    ///   - windows: Windows of exactly `network.inputLength` samples each.
    ///   - network: The network (restored to training mode afterwards if it was training).
    /// - Returns: One row of class probabilities per window.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` when a window has the wrong length.
    public static func softmaxScores(of windows: [[Float]], network: any ClassifierNetwork) throws -> [[Float]] {
        if windows.isEmpty { return [] }
        let length = network.inputLength
        var flat = [Float]()
        flat.reserveCapacity(windows.count * length)
        for (index, window) in windows.enumerated() {
            guard window.count == length else {
                throw EnvNetError.invalidInput("window \(index) has \(window.count) samples; the network takes \(length)")
            }
            flat.append(contentsOf: window)
        }
        let wasTraining = network.isTraining
        network.eval()
        defer { if wasTraining { network.train() } }
        let logits = network(Tensor(flat, shape: [windows.count, 1, 1, length]))
        let classes = network.classCount
        let probabilities = logits.softmax(axis: 1).scalars
        return (0..<windows.count).map { Array(probabilities[($0 * classes)..<(($0 + 1) * classes)]) }
    }

    // MARK: - Windows

    /// Where a clip's windows come from; windows are cut batch by batch so that a long recording
    /// never holds all its windows in memory at once.
    private enum WindowPlan {
        /// Windows already cut (short clips, crops).
        case cut([[Float]])
        /// Start offsets into the clip.
        case starts([Int])

        var count: Int {
            switch self {
            case let .cut(windows): return windows.count
            case let .starts(starts): return starts.count
            }
        }
    }

    private var sampler: SegmentSampler { SegmentSampler(length: windowLength, silenceThreshold: silenceThreshold, silenceRule: silenceRule) }

    private func plan(for samples: [Float]) -> WindowPlan {
        switch scheme {
        case let .tenCrop(count):
            return .cut(sampler.evenlySpacedCrops(of: samples, count: count))
        case let .probabilityVoting(hop):
            let sampler = self.sampler
            // A clip no longer than one window is one centred, zero-padded window.
            if samples.count <= windowLength { return .cut(sampler.evaluationWindows(of: samples, hop: hop)) }
            var kept: [Int] = []
            var loudest = (start: 0, peak: -Float.infinity)
            let rule = sampler.rule
            for start in sampler.windowStarts(sampleCount: samples.count, hop: hop) {
                let window = samples[start..<(start + windowLength)]
                let peak = rule.loudness(of: window)
                if !rule.isSilent(loudness: peak) { kept.append(start) }
                if peak > loudest.peak { loudest = (start, peak) }
            }
            // Every clip gets a prediction: an all-silent clip keeps its loudest window.
            return .starts(kept.isEmpty ? [loudest.start] : kept)
        }
    }

    private func checkSamples(_ samples: [Float], name: String) throws {
        if let index = samples.firstIndex(where: { !$0.isFinite }) {
            throw EnvNetError.invalidInput("\(name): sample \(index) is \(samples[index]); samples must be finite")
        }
    }

    /// The windows the scheme takes from a clip, in order — the same windows
    /// ``score(_:name:)`` scores. Meant for inspection and tests; it holds all windows in memory.
    ///
    /// - Parameters:
    ///   - samples: The preprocessed clip (may be empty: it then gives one silent window).
    ///   - name: Names the clip in errors.
    /// - Returns: One or more windows of ``windowLength`` samples.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for non-finite samples.
    public func windows(of samples: [Float], name: String = "clip") throws -> [[Float]] {
        try checkSamples(samples, name: name)
        switch plan(for: samples) {
        case let .cut(windows): return windows
        case let .starts(starts): return starts.map { Array(samples[$0..<($0 + windowLength)]) }
        }
    }

    // MARK: - One clip

    /// Scores one clip: its windows in batches of at most ``batchSize``, the mean of their
    /// probabilities, and the arg-max.
    ///
    /// - Parameters:
    ///   - samples: The preprocessed clip (may be empty or silent: it still gets a prediction).
    ///   - name: Names the clip in errors.
    /// - Returns: The mean probabilities, the window count and the predicted label.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for non-finite samples, or when the scorer
    ///   returns the wrong number of rows or columns or a non-finite value; any error the scorer throws.
    public func score(_ samples: [Float], name: String = "clip") throws -> ClipScore {
        try checkSamples(samples, name: name)
        let plan = plan(for: samples)
        let windowCount = plan.count
        var sums = [Double](repeating: 0, count: classCount)
        var first = 0
        while first < windowCount {
            let end = Swift.min(first + batchSize, windowCount)
            let batch: [[Float]]
            switch plan {
            case let .cut(windows): batch = Array(windows[first..<end])
            case let .starts(starts): batch = starts[first..<end].map { Array(samples[$0..<($0 + windowLength)]) }
            }
            let rows = try scorer(batch)
            guard rows.count == batch.count else {
                throw EnvNetError.invalidInput("\(name): the window scorer returned \(rows.count) rows for \(batch.count) windows")
            }
            for (offset, row) in rows.enumerated() {
                guard row.count == classCount else {
                    throw EnvNetError.invalidInput("\(name): the window scorer returned \(row.count) values for window \(first + offset); expected \(classCount) classes")
                }
                for (label, value) in row.enumerated() {
                    guard value.isFinite else {
                        throw EnvNetError.invalidInput("\(name): window \(first + offset) scored \(value) for class \(label); probabilities must be finite")
                    }
                    sums[label] += Double(value)
                }
            }
            first = end
        }
        let probabilities = sums.map { Float($0 / Double(windowCount)) }
        return ClipScore(probabilities: probabilities, windowCount: windowCount, predictedLabel: Self.argmax(probabilities))
    }

    /// Predicts one labelled clip.
    ///
    /// - Parameter clip: The clip with its true label.
    /// - Returns: The clip's prediction.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for a label outside `0..<classCount` and for the
    ///   problems ``score(_:name:)`` reports.
    public func predict(_ clip: LabeledClip) throws -> ClipPrediction {
        guard (0..<classCount).contains(clip.label) else {
            throw EnvNetError.invalidInput("\(clip.name): label \(clip.label) is outside 0..<\(classCount)")
        }
        let score = try score(clip.samples, name: clip.name)
        return ClipPrediction(name: clip.name, trueLabel: clip.label, probabilities: score.probabilities,
                              predictedLabel: score.predictedLabel, windowCount: score.windowCount)
    }

    /// The index of the largest value; ties go to the lowest index (0 for an empty array).
    ///
    /// - Parameter values: The values.
    /// - Returns: The index of the first maximum.
    public static func argmax(_ values: [Float]) -> Int {
        var best = 0
        for index in values.indices where values[index] > values[best] { best = index }
        return best
    }

    // MARK: - Many clips

    /// Evaluates clips one after the other and builds the report.
    ///
    /// Only one clip's windows are in memory at a time (besides the clips themselves).
    ///
    /// - Parameters:
    ///   - clips: The clips, each with its true label.
    ///   - classNames: One name per class (`classCount` names).
    ///   - progress: Called after every clip.
    /// - Returns: The report over all clips.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for a wrong number of class names, an empty clip
    ///   list, a bad label or the problems ``score(_:name:)`` reports.
    public func evaluate(_ clips: [LabeledClip], classNames: [String],
                         progress: ((EvaluationProgress) -> Void)? = nil) throws -> EvaluationReport {
        try evaluate(count: clips.count, classNames: classNames, progress: progress) { clips[$0] }
    }

    /// Evaluates clips of a preprocessed dataset (for example one test fold).
    ///
    /// - Parameters:
    ///   - dataset: The preprocessed dataset (from the preprocessing cache).
    ///   - folds: The folds to evaluate; `nil` for every clip.
    ///   - classNames: One name per class (`classCount` names).
    ///   - progress: Called after every clip.
    /// - Returns: The report over the selected clips, named by file name.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` when no clip is selected and for the problems
    ///   ``evaluate(_:classNames:progress:)`` reports.
    public func evaluate(_ dataset: PreprocessedDataset, folds: Set<Int>? = nil, classNames: [String],
                         progress: ((EvaluationProgress) -> Void)? = nil) throws -> EvaluationReport {
        let indices = dataset.clips.indices.filter { folds?.contains(dataset.clips[$0].fold) ?? true }
        return try evaluate(count: indices.count, classNames: classNames, progress: progress) { position in
            let index = indices[position]
            return LabeledClip(samples: dataset.samples[index], label: dataset.clips[index].label, name: dataset.clips[index].path)
        }
    }

    /// Evaluates clips of a dataset, loading and preprocessing one file at a time.
    ///
    /// - Parameters:
    ///   - dataset: The dataset (its class names label the report).
    ///   - clips: The clips to evaluate (for example `dataset.clips(inFolds: [5])`).
    ///   - loader: The preprocessing, the same as in training.
    ///   - progress: Called after every clip.
    /// - Returns: The report, named by relative path.
    /// - Throws: `AudioError` naming a file that cannot be read, and the problems
    ///   ``evaluate(_:classNames:progress:)`` reports.
    public func evaluate(_ dataset: AudioDataset, clips: [AudioClip], loader: ClipLoader,
                         progress: ((EvaluationProgress) -> Void)? = nil) throws -> EvaluationReport {
        try evaluate(count: clips.count, classNames: dataset.classNames, progress: progress) { position in
            let clip = clips[position]
            return LabeledClip(samples: try loader.load(contentsOf: dataset.url(for: clip)), label: clip.label, name: clip.path)
        }
    }

    /// Evaluates clips of an ESC-50-layout dataset, loading and preprocessing one file at a time.
    ///
    /// - Parameters:
    ///   - dataset: The dataset (its class names label the report).
    ///   - clips: The clips to evaluate (for example `dataset.split(testFold: 5).test`).
    ///   - loader: The preprocessing, the same as in training.
    ///   - progress: Called after every clip.
    /// - Returns: The report, named by file name.
    /// - Throws: As ``evaluate(_:clips:loader:progress:)``.
    public func evaluate(_ dataset: ESC50Dataset, clips: [ESC50Clip], loader: ClipLoader,
                         progress: ((EvaluationProgress) -> Void)? = nil) throws -> EvaluationReport {
        try evaluate(count: clips.count, classNames: dataset.classNames, progress: progress) { position in
            let clip = clips[position]
            return LabeledClip(samples: try dataset.loadClip(clip, using: loader), label: clip.label, name: clip.filename)
        }
    }

    /// The clip accuracy over clips, without building a report (for validation during training).
    ///
    /// - Parameters:
    ///   - clips: The clips, each with its true label.
    ///   - progress: Called after every clip.
    /// - Returns: The fraction of clips predicted correctly, in [0, 1].
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for an empty clip list, a bad label or the
    ///   problems ``score(_:name:)`` reports.
    public func accuracy(on clips: [LabeledClip], progress: ((EvaluationProgress) -> Void)? = nil) throws -> Double {
        guard !clips.isEmpty else { throw EnvNetError.invalidInput("no clips to evaluate") }
        var correct = 0
        for (position, clip) in clips.enumerated() {
            let prediction = try predict(clip)
            if prediction.isCorrect { correct += 1 }
            progress?(EvaluationProgress(completed: position + 1, total: clips.count, correct: correct, clipName: clip.name))
        }
        return Double(correct) / Double(clips.count)
    }

    /// A validation function for the training loop (`Trainer.validation`): the clip accuracy of
    /// the given network on `clips` under `scheme`.
    ///
    /// - Parameters:
    ///   - clips: The validation clips (at the network's rate, normalized).
    ///   - scheme: The windowing and voting scheme; nil: probability voting with the network's hop.
    ///   - batchSize: The most windows per forward pass.
    /// - Returns: A function from a network to its clip accuracy; it restores the network's
    ///   training mode and throws as ``accuracy(on:progress:)``.
    public static func validation(on clips: [LabeledClip], scheme: EvaluationScheme? = nil,
                                  batchSize: Int = 32) -> (any ClassifierNetwork) throws -> Double {
        { network in try ClipEvaluator(network: network, scheme: scheme, batchSize: batchSize).accuracy(on: clips) }
    }

    private func evaluate(count: Int, classNames: [String], progress: ((EvaluationProgress) -> Void)?,
                          clip: (Int) throws -> LabeledClip) throws -> EvaluationReport {
        guard classNames.count == classCount else {
            throw EnvNetError.invalidInput("\(classNames.count) class names for \(classCount) classes")
        }
        guard count > 0 else { throw EnvNetError.invalidInput("no clips to evaluate") }
        var predictions: [ClipPrediction] = []
        predictions.reserveCapacity(count)
        var correct = 0
        for position in 0..<count {
            let prediction = try predict(clip(position))
            predictions.append(prediction)
            if prediction.isCorrect { correct += 1 }
            progress?(EvaluationProgress(completed: position + 1, total: count, correct: correct, clipName: prediction.name))
        }
        return try EvaluationReport(predictions: predictions, classNames: classNames, scheme: scheme)
    }
}
