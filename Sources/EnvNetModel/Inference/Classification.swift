import Foundation

/// What a ``SoundClassifier`` heard in one recording.
public struct Classification: Sendable, Hashable, Codable {
    /// One of the most probable classes.
    public struct Candidate: Sendable, Hashable, Codable {
        /// The class name.
        public var label: String
        /// The class index.
        public var index: Int
        /// The class probability in [0, 1].
        public var probability: Float

        /// Creates a candidate.
        ///
        /// - Parameters:
        ///   - label: The class name.
        ///   - index: The class index.
        ///   - probability: The class probability.
        public init(label: String, index: Int, probability: Float) {
            self.label = label
            self.index = index
            self.probability = probability
        }
    }

    /// The probability of every class, in class order (they sum to 1 up to rounding). For a
    /// silent recording they are the loudest window's (the fallback), or all zero when no window
    /// was scored: not a decision.
    public var probabilities: [Float]
    /// The most probable classes, most probable first (ties in class order); at most `topK` of
    /// them. Empty when the recording is silent.
    public var top: [Candidate]
    /// How many windows of the recording were averaged.
    public var windowCount: Int
    /// Whether no window of the recording holds sound (its peak before normalization is at or
    /// below the detection threshold, ``SilenceDetection``). The answer is then "silent".
    public var isSilent: Bool
    /// For a silent recording, the class of its loudest window (what the papers' evaluation would
    /// answer); nil otherwise. Secondary information, never the answer.
    public var fallback: Candidate?

    /// Creates a classification from class probabilities.
    ///
    /// - Parameters:
    ///   - probabilities: One probability per class.
    ///   - classNames: One name per class.
    ///   - topK: How many candidates to keep (clamped to the class count), at least 1.
    ///   - windowCount: How many windows were averaged.
    ///   - isSilent: Whether the recording is silent: `top` is then empty, and the arg-max of
    ///     non-zero probabilities becomes ``fallback``.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` when the counts disagree, there are no classes
    ///   or `topK` is below 1.
    public init(probabilities: [Float], classNames: [String], topK: Int, windowCount: Int, isSilent: Bool = false) throws {
        guard topK >= 1 else { throw EnvNetError.invalidInput("topK must be at least 1, got \(topK)") }
        guard !probabilities.isEmpty, probabilities.count == classNames.count else {
            throw EnvNetError.invalidInput("\(probabilities.count) probabilities for \(classNames.count) class names")
        }
        let candidates = Self.ranked(probabilities, classNames: classNames, topK: topK)
        self.probabilities = probabilities
        self.windowCount = windowCount
        self.isSilent = isSilent
        if isSilent {
            top = []
            fallback = probabilities.contains { $0 > 0 } ? candidates[0] : nil
        } else {
            top = candidates
            fallback = nil
        }
    }

    /// The `topK` most probable classes, most probable first, ties in class order.
    static func ranked(_ probabilities: [Float], classNames: [String], topK: Int) -> [Candidate] {
        let order = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] || (probabilities[$0] == probabilities[$1] && $0 < $1) }
        return order.prefix(topK).map { Candidate(label: classNames[$0], index: $0, probability: probabilities[$0]) }
    }

    /// The most probable class; nil when the recording is silent.
    public var best: Candidate? { top.first }
}
