import EnvNetAudio
import Foundation

/// The named training recipes: the seed article's, and the authors' repository's
/// (bc_learning_sound), for each pair of dataset and network.
///
/// | recipe | network | data | epochs | learning rate | ×0.1 at | warm-up |
/// |---|---|---|---|---|---|---|
/// | seed | any | any | 150 | 0.01 | epochs 80, 100, 120 | none |
/// | authors | EnvNet | ESC-50, ESC-10, own data | 600 | 0.01 | 50 %, 75 % | none |
/// | authors | EnvNet | UrbanSound8K | 400 | 0.01 | 50 %, 75 % | none |
/// | authors | EnvNet-v2 | ESC-50, own data | 1000 | 0.1 | 30 %, 60 %, 90 % | 10 epochs |
/// | authors | EnvNet-v2 | ESC-10 | 600 | 0.01 | 50 %, 75 % | none |
/// | authors | EnvNet-v2 | UrbanSound8K | 600 | 0.1 | 30 %, 60 %, 90 % | 10 epochs |
///
/// Both use batch 64, weight decay 5e-4 and Nesterov momentum 0.9. The seed recipe normalizes
/// each clip by its peak and votes over 1.5 s windows with a 0.2 s hop; the authors' divides int16
/// samples by 32768, trims leading and trailing zeros and averages 10 crops. With BC learning the
/// preset's epochs (and its milestones with them) are doubled; the warm-up is not. The authors'
/// warm-up trains at a tenth of the learning rate for its epochs (their `lr_schedule`), where
/// ``TrainingConfiguration/warmupEpochs`` alone ramps linearly from a tenth.
///
/// The seed article trains EnvNet only; `seed` with EnvNet-v2 runs the same schedule at 44.1 kHz.
/// Own data (folders or a manifest) takes the ESC-50 numbers.
public struct RecipePreset: Sendable, Equatable, CustomStringConvertible {
    /// The recipes by name.
    public enum Name: String, Sendable, CaseIterable, Codable {
        /// The seed article's PyTorch re-implementation of the paper (150 epochs).
        case seed
        /// The authors' repository, bc_learning_sound.
        case authors
    }

    /// The datasets the authors name recipes for.
    public enum DatasetKind: String, Sendable, CaseIterable, Codable {
        case esc50 = "ESC-50"
        case esc10 = "ESC-10"
        case urbanSound8K = "UrbanSound8K"
        /// A folder per class or a manifest: the ESC-50 numbers.
        case other = "own data"

        /// The kind of a loaded dataset.
        public init(layout: DatasetLayout, subset: ESC50Subset) {
            switch layout {
            case .esc50: self = subset == .esc10 ? .esc10 : .esc50
            case .urbanSound8K: self = .urbanSound8K
            case .folderPerClass, .manifest: self = .other
            }
        }
    }

    /// The recipe's name.
    public var name: Name
    /// The network it is for.
    public var network: NetworkArchitecture
    /// The data it is for.
    public var dataset: DatasetKind
    /// Epochs before BC doubling.
    public var epochs: Int
    /// The base learning rate.
    public var learningRate: Float
    /// Where the learning rate drops ×0.1: fixed epochs (seed) or fractions of the epochs (authors).
    public var milestones: Milestones
    /// Epochs at a tenth of the learning rate before the schedule starts (0: none).
    public var warmupEpochs: Double
    /// How clips are normalized (at the network's rate).
    public var preprocessing: PreprocessingSettings
    /// How clips are evaluated.
    public var evaluation: EvaluationScheme

    /// Where a preset's learning rate drops.
    public enum Milestones: Sendable, Equatable {
        /// At these epochs (doubled with BC).
        case epochs([Int])
        /// At these fractions of the epochs run.
        case fractions([Double])

        /// The milestone epochs of a run of `epochs` epochs (already doubled when BC doubles them).
        public func epochs(of epochs: Int, doubled: Bool) -> [Int] {
            switch self {
            case let .epochs(values): return doubled ? values.map { 2 * $0 } : values
            case let .fractions(values): return values.map { Int((Double(epochs) * $0).rounded()) }
            }
        }
    }

    /// The preset for a recipe, network and dataset.
    public static func named(_ name: Name, network: NetworkArchitecture, dataset: DatasetKind) -> RecipePreset {
        let rate = network.sampleRate
        if network == .logMelCNN {
            // Neither source gives the log-mel CNN a recipe of its own: it takes the seed schedule,
            // peak normalization at 22.05 kHz, and voting over its segments with half a segment's hop.
            var preprocessing = PreprocessingSettings.seedArticle
            preprocessing.sampleRate = rate
            return RecipePreset(name: name, network: network, dataset: dataset, epochs: 150, learningRate: 0.01,
                                milestones: .epochs([80, 100, 120]), warmupEpochs: 0, preprocessing: preprocessing,
                                evaluation: .probabilityVoting(network: .logMelCNN))
        }
        switch name {
        case .seed:
            var preprocessing = PreprocessingSettings.seedArticle
            preprocessing.sampleRate = rate
            return RecipePreset(name: name, network: network, dataset: dataset, epochs: 150, learningRate: 0.01,
                                milestones: .epochs([80, 100, 120]), warmupEpochs: 0, preprocessing: preprocessing,
                                evaluation: .probabilityVoting(sampleRate: rate))
        case .authors:
            var preprocessing = PreprocessingSettings.authorsRepository
            preprocessing.sampleRate = rate
            let (epochs, learningRate, fractions, warmup): (Int, Float, [Double], Double)
            switch (network, dataset) {
            case (.envnet, .urbanSound8K): (epochs, learningRate, fractions, warmup) = (400, 0.01, [0.5, 0.75], 0)
            case (.envnet, _): (epochs, learningRate, fractions, warmup) = (600, 0.01, [0.5, 0.75], 0)
            case (.envnetV2, .esc10): (epochs, learningRate, fractions, warmup) = (600, 0.01, [0.5, 0.75], 0)
            case (.envnetV2, .urbanSound8K): (epochs, learningRate, fractions, warmup) = (600, 0.1, [0.3, 0.6, 0.9], 10)
            case (.envnetV2, _), (.logMelCNN, _): (epochs, learningRate, fractions, warmup) = (1000, 0.1, [0.3, 0.6, 0.9], 10)
            }
            return RecipePreset(name: name, network: network, dataset: dataset, epochs: epochs, learningRate: learningRate,
                                milestones: .fractions(fractions), warmupEpochs: warmup, preprocessing: preprocessing,
                                evaluation: .tenCrop())
        }
    }

    /// The training configuration of this preset, for BC learning or not: epochs and milestones
    /// final (doubled with BC), the warm-up at a constant tenth, batch 64, weight decay 5e-4,
    /// Nesterov momentum 0.9.
    public func configuration(betweenClassLearning: Bool, strongAugmentation: Bool, seed: UInt64) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.epochs = betweenClassLearning ? 2 * epochs : epochs
        // Recorded only where it matters, so that a run without BC resumes a checkpoint of 0.7.
        configuration.betweenClassDoublesEpochs = betweenClassLearning ? false : nil
        configuration.milestones = milestones.epochs(of: configuration.epochs, doubled: betweenClassLearning)
        configuration.learningRate = learningRate
        configuration.warmupEpochs = warmupEpochs
        configuration.warmupStyle = warmupEpochs > 0 ? .constant : nil
        configuration.batchSize = 64
        configuration.weightDecay = 5e-4
        configuration.momentum = 0.9
        configuration.nesterov = true
        configuration.betweenClassLearning = betweenClassLearning
        configuration.strongAugmentation = strongAugmentation
        configuration.seed = seed
        return configuration
    }

    public var description: String {
        let schedule: String
        switch milestones {
        case let .epochs(values): schedule = "x0.1 at epochs \(values.map(String.init).joined(separator: ", "))"
        case let .fractions(values): schedule = "x0.1 at \(values.map { String(format: "%g %%", $0 * 100) }.joined(separator: ", ")) of the epochs"
        }
        let warmup = warmupEpochs > 0 ? String(format: ", %g warm-up epochs at lr x0.1", warmupEpochs) : ", no warm-up"
        let normalization = preprocessing.normalization == .int16FullScale ? "int16 normalization with zero trimming" : "peak normalization"
        return "\(name.rawValue) recipe for \(network) on \(dataset.rawValue): \(epochs) epochs (doubled with BC), lr \(learningRate), \(schedule)\(warmup), "
            + "batch 64, weight decay 5e-4, Nesterov momentum 0.9, \(normalization) at \(preprocessing.sampleRate) Hz, \(evaluation)"
    }
}
