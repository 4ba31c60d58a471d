import Foundation

/// How a clip is cut into network-sized windows at test time, and how their softmax outputs are
/// combined into one prediction per clip.
///
/// Both schemes average the per-window softmax probabilities; the clip's prediction is the
/// arg-max of that average.
public enum EvaluationScheme: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The seed article's probability voting: a window of the network's input length slides over
    /// the clip with a hop of `hop` samples (3200 = 0.2 s at 16 kHz), silent windows
    /// (`max |x| <= 0.2`) are dropped — keeping the loudest one when all are silent — and the
    /// softmax outputs of the kept windows are averaged. (The article sums them; the arg-max is
    /// the same, and the mean is a probability distribution.) A clip shorter than one window is
    /// zero-padded on both sides into a single window.
    case probabilityVoting(hop: Int = 3200)
    /// The authors' repository's test: the clip is padded by half a window on both sides and
    /// `count` evenly spaced crops are averaged (10 by default). No window is dropped.
    case tenCrop(count: Int = 10)

    /// The seed article's scheme with its 0.2 s hop.
    public static let seedArticle = EvaluationScheme.probabilityVoting()
    /// The authors' repository's 10-crop scheme.
    public static let authorsRepository = EvaluationScheme.tenCrop()

    /// Probability voting with a 0.2 s hop at `sampleRate` (3200 samples at 16 kHz, 8820 at 44.1 kHz).
    public static func probabilityVoting(sampleRate: Int) -> EvaluationScheme {
        .probabilityVoting(hop: max(1, sampleRate / 5))
    }

    /// Probability voting as a network family votes: half a segment's hop (10240 samples) for the
    /// log-mel CNN, 0.2 s at the network's rate for EnvNet and EnvNet-v2.
    public static func probabilityVoting(network: NetworkArchitecture) -> EvaluationScheme {
        network == .logMelCNN ? .probabilityVoting(hop: LogMelCNNConfiguration.features.segmentHop)
            : .probabilityVoting(sampleRate: network.sampleRate)
    }

    /// A short human-readable name, such as `probability voting (hop 3200)`.
    public var description: String {
        switch self {
        case let .probabilityVoting(hop): return "probability voting (hop \(hop))"
        case let .tenCrop(count): return "\(count)-crop averaging"
        }
    }

    /// Checks the scheme's numbers.
    ///
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for a hop or crop count below 1.
    public func validate() throws {
        switch self {
        case let .probabilityVoting(hop):
            guard hop >= 1 else { throw EnvNetError.invalidInput("evaluation hop must be at least 1 sample, got \(hop)") }
        case let .tenCrop(count):
            guard count >= 1 else { throw EnvNetError.invalidInput("evaluation crop count must be at least 1, got \(count)") }
        }
    }
}
