import EnvNetAudio
import Foundation

/// The library's version, recorded in every model file it writes (`envnet --version` prints it).
public enum EnvNetLibrary {
    /// Semantic version of the package.
    public static let version = "0.9.0"
}

/// Where a model's training data came from, recorded in the model file.
public struct DatasetRecord: Codable, Sendable, Equatable, Hashable {
    /// The layout the data was read as (`folders`, `manifest`, `esc50`, `urbansound8k`).
    public var layout: String
    /// ``AudioDataset/fingerprint()`` of the data.
    public var fingerprint: String
    /// The fold held out for testing; nil when the model was trained on every fold.
    public var heldOutFold: Int?
    /// Clips trained on.
    public var trainingClips: Int
    /// The data's credit line (for example the ESC-50 attribution), when it has one.
    public var credit: String?
    /// How many folds the data had (drawn or its own); nil in files that did not record it.
    public var foldCount: Int?
    /// Whether the folds were drawn from the seed (then `evaluate` draws them again the same way).
    public var foldsWereDrawn: Bool?

    /// Creates a record.
    ///
    /// - Parameters:
    ///   - layout: The layout name.
    ///   - fingerprint: The data fingerprint.
    ///   - heldOutFold: The test fold, or nil.
    ///   - trainingClips: Clips trained on.
    ///   - credit: A credit line.
    ///   - foldCount: The number of folds.
    ///   - foldsWereDrawn: Whether the folds were drawn rather than the data's own.
    public init(layout: String, fingerprint: String, heldOutFold: Int?, trainingClips: Int, credit: String? = nil,
                foldCount: Int? = nil, foldsWereDrawn: Bool? = nil) {
        self.foldCount = foldCount
        self.foldsWereDrawn = foldsWereDrawn
        self.layout = layout
        self.fingerprint = fingerprint
        self.heldOutFold = heldOutFold
        self.trainingClips = trainingClips
        self.credit = credit
    }
}

/// Everything needed to use a model file right, stored in its safetensors metadata: classes,
/// network, rate and input length, preprocessing, silence rule, evaluation scheme, the recipe and
/// the data it was trained on.
///
/// Metadata keys: `envnet.schema_version` and `envnet.network` (plain strings, read first, so
/// that a file of a newer schema or another network is refused by name) and `envnet.model` (this
/// structure as JSON). The older keys `envnet.configuration` and `envnet.class_names` are still
/// written, so earlier versions of the library read the file too.
///
/// Files without `envnet.model` (written before schema 1, or converted from PyTorch) load with
/// ``legacyDefaults(configuration:classNames:)``: peak normalization without zero trimming,
/// probability voting with a 0.2 s hop, the training silence rule of peak 0.2, the default
/// detection rule (``SilenceDetection/defaultThresholdDecibels``), no recipe and no dataset record.
public struct ModelDescription: Codable, Sendable, Equatable {
    /// The metadata schema this library writes and the newest it reads.
    public static let currentSchemaVersion = 1
    /// The networks this library builds.
    public static let knownNetworks = NetworkArchitecture.allCases.map(\.rawValue)

    /// Metadata keys.
    public enum Key {
        public static let schemaVersion = "envnet.schema_version"
        public static let network = "envnet.network"
        public static let description = "envnet.model"
    }

    /// The metadata schema version.
    public var schemaVersion: Int
    /// The network family (`envnet` or `envnet-v2`).
    public var network: String
    /// The network's sizes.
    public var configuration: NetworkConfiguration {
        didSet {
            network = configuration.architecture.rawValue
            sampleRate = configuration.sampleRate
            inputLength = configuration.inputLength
            preprocessing.sampleRate = configuration.sampleRate
        }
    }
    /// One name per class, in output order.
    public var classNames: [String]
    /// The rate the network's input is at, in Hz.
    public var sampleRate: Int
    /// Samples per input window.
    public var inputLength: Int
    /// How recordings are normalized (and trimmed) before windowing.
    public var preprocessing: PreprocessingSettings
    /// The training rule: a crop whose peak after normalization is at or below this is silent.
    public var trainingSilenceThreshold: Float
    /// The detection rule for prediction: a window whose peak before normalization is at or
    /// below this level in dBFS is silent (``SilenceDetection``). Nil in files written before it
    /// was recorded; ``predictionSilenceThreshold`` then gives the default.
    public var silenceThresholdDecibels: Double?
    /// How a recording is cut into windows and voted at test time.
    public var evaluation: EvaluationScheme
    /// The training recipe; nil for files that did not record it.
    public var recipe: TrainingConfiguration?
    /// The data the model was trained on; nil when unknown.
    public var dataset: DatasetRecord?
    /// The library version that wrote the file.
    public var libraryVersion: String

    /// The detection threshold in dBFS that prediction uses: the recorded one, or
    /// ``SilenceDetection/defaultThresholdDecibels`` for older files.
    public var predictionSilenceThreshold: Double { silenceThresholdDecibels ?? SilenceDetection.defaultThresholdDecibels }

    /// Creates a description.
    ///
    /// - Parameters:
    ///   - configuration: The network's sizes.
    ///   - classNames: One name per class.
    ///   - preprocessing: The preprocessing (its rate becomes the network's).
    ///   - evaluation: The evaluation scheme; nil: probability voting with the network's hop
    ///     (``EvaluationScheme/probabilityVoting(network:)``: 3200 samples for EnvNet).
    ///   - trainingSilenceThreshold: The training silence rule.
    ///   - silenceThresholdDecibels: The detection rule for prediction, in dBFS.
    ///   - recipe: The recipe.
    ///   - dataset: The data record.
    public init(configuration: NetworkConfiguration, classNames: [String], preprocessing: PreprocessingSettings = .seedArticle,
                evaluation: EvaluationScheme? = nil, trainingSilenceThreshold: Float = 0.2,
                silenceThresholdDecibels: Double? = SilenceDetection.defaultThresholdDecibels,
                recipe: TrainingConfiguration? = nil, dataset: DatasetRecord? = nil) {
        schemaVersion = Self.currentSchemaVersion
        network = configuration.architecture.rawValue
        self.configuration = configuration
        self.classNames = classNames
        sampleRate = configuration.sampleRate
        inputLength = configuration.inputLength
        // Clips are always resampled to the rate the network takes.
        var preprocessing = preprocessing
        preprocessing.sampleRate = configuration.sampleRate
        self.preprocessing = preprocessing
        self.trainingSilenceThreshold = trainingSilenceThreshold
        self.silenceThresholdDecibels = silenceThresholdDecibels
        self.evaluation = evaluation ?? .probabilityVoting(network: configuration.architecture)
        self.recipe = recipe
        self.dataset = dataset
        libraryVersion = EnvNetLibrary.version
    }

    /// Creates the description of an EnvNet (see ``init(configuration:classNames:preprocessing:evaluation:trainingSilenceThreshold:silenceThresholdDecibels:recipe:dataset:)``).
    public init(configuration: EnvNetConfiguration, classNames: [String], preprocessing: PreprocessingSettings = .seedArticle,
                evaluation: EvaluationScheme = .seedArticle, trainingSilenceThreshold: Float = 0.2,
                silenceThresholdDecibels: Double? = SilenceDetection.defaultThresholdDecibels,
                recipe: TrainingConfiguration? = nil, dataset: DatasetRecord? = nil) {
        self.init(configuration: .envnet(configuration), classNames: classNames, preprocessing: preprocessing, evaluation: evaluation,
                  trainingSilenceThreshold: trainingSilenceThreshold, silenceThresholdDecibels: silenceThresholdDecibels,
                  recipe: recipe, dataset: dataset)
    }

    /// What a file without a description is taken to be (see the type's documentation).
    ///
    /// - Parameters:
    ///   - configuration: The sizes read from the file or its tensors.
    ///   - classNames: The class names read from the file, or `class 0` ….
    /// - Returns: The description with the documented defaults.
    public static func legacyDefaults(configuration: NetworkConfiguration, classNames: [String]) -> ModelDescription {
        var description = ModelDescription(configuration: configuration, classNames: classNames)
        description.schemaVersion = 0
        description.libraryVersion = "unknown"
        description.silenceThresholdDecibels = nil
        return description
    }

    /// The metadata entries for this description.
    var metadata: [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var result = [Key.schemaVersion: String(schemaVersion), Key.network: network]
        if let json = try? encoder.encode(self) { result[Key.description] = String(decoding: json, as: UTF8.self) }
        return result
    }

    /// Reads the description from safetensors metadata.
    ///
    /// - Parameters:
    ///   - metadata: The file's metadata.
    ///   - source: Names the file in errors.
    /// - Returns: The description, or nil when the file has none (an older or converted file).
    /// - Throws: ``EnvNetError/incompatibleWeights(path:reason:)`` for a newer schema, an unknown
    ///   network, or a description that does not decode or disagrees with itself.
    static func read(from metadata: [String: String], source: String) throws -> ModelDescription? {
        func fail(_ reason: String) -> EnvNetError { .incompatibleWeights(path: source, reason: reason) }
        if let text = metadata[Key.schemaVersion] {
            guard let version = Int(text), version >= 1 else { throw fail("metadata \(Key.schemaVersion) '\(text)' is not a schema version") }
            guard version <= currentSchemaVersion else {
                throw fail("written with metadata schema \(version), newer than this library's \(currentSchemaVersion) (EnvNet \(EnvNetLibrary.version)); update the library")
            }
        }
        if let network = metadata[Key.network], !knownNetworks.contains(network) {
            throw fail("network '\(network)' is not one this library builds (\(knownNetworks.joined(separator: ", ")))")
        }
        guard let text = metadata[Key.description] else { return nil }
        guard let description = try? JSONDecoder().decode(ModelDescription.self, from: Data(text.utf8)) else {
            throw fail("metadata \(Key.description) does not decode as a model description")
        }
        guard description.schemaVersion <= currentSchemaVersion else {
            throw fail("written with metadata schema \(description.schemaVersion), newer than this library's \(currentSchemaVersion)")
        }
        guard knownNetworks.contains(description.network) else { throw fail("network '\(description.network)' is not one this library builds") }
        if let network = metadata[Key.network], network != description.network {
            throw fail("metadata \(Key.network) '\(network)' disagrees with \(Key.description), which describes '\(description.network)'")
        }
        guard description.network == description.configuration.architecture.rawValue else {
            throw fail("metadata \(Key.description) names the network '\(description.network)' but holds the sizes of \(description.configuration.architecture)")
        }
        guard description.classNames.count == description.configuration.classCount else {
            throw fail("metadata \(Key.description) lists \(description.classNames.count) class names for \(description.configuration.classCount) classes")
        }
        let expected = description.configuration
        guard description.sampleRate == expected.sampleRate, description.inputLength == expected.inputLength,
              description.preprocessing.sampleRate == expected.sampleRate else {
            throw fail("metadata \(Key.description) records \(description.sampleRate) Hz (preprocessing \(description.preprocessing.sampleRate) Hz) and \(description.inputLength) samples, but \(expected.architecture) takes \(expected.sampleRate) Hz and \(expected.inputLength)")
        }
        do {
            try description.evaluation.validate()
        } catch {
            throw fail("metadata \(Key.description): \(error)")
        }
        guard description.trainingSilenceThreshold.isFinite, description.trainingSilenceThreshold >= 0 else {
            throw fail("metadata \(Key.description): the silence threshold \(description.trainingSilenceThreshold) is not a non-negative number")
        }
        if let decibels = description.silenceThresholdDecibels {
            do {
                try SilenceDetection.validate(thresholdDecibels: decibels)
            } catch {
                throw fail("metadata \(Key.description): \(error)")
            }
        }
        return description
    }
}
