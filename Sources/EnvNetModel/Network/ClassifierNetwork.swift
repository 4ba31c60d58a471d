import EnvNetAudio
import EnvNetLayers
import Foundation

/// The network families this library builds, by the names used on the command line and in
/// model files (`envnet.network`).
public enum NetworkArchitecture: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    /// EnvNet (ICASSP 2017): 16 kHz input, five learned layers before the classifier.
    case envnet
    /// EnvNet-v2 (ICLR 2018): 44.1 kHz input, ten convolutions.
    case envnetV2 = "envnet-v2"
    /// Piczak's log-mel CNN (MLSP 2015): 22.05 kHz input turned into log-mel features.
    case logMelCNN = "logmel-cnn"

    public var description: String {
        switch self {
        case .envnet: return "EnvNet"
        case .envnetV2: return "EnvNet-v2"
        case .logMelCNN: return "log-mel CNN"
        }
    }

    /// The rate the network's input is at, in Hz.
    public var sampleRate: Int {
        switch self {
        case .envnet: return EnvNetConfiguration.sampleRate
        case .envnetV2: return EnvNetV2Configuration.sampleRate
        case .logMelCNN: return LogMelCNNConfiguration.sampleRate
        }
    }

    /// The name of the classifier's last layer (the logits), which fine-tuning rebuilds.
    public var outputLayerName: String {
        switch self {
        case .envnet: return "fc7"
        case .envnetV2: return "fc13"
        case .logMelCNN: return "fc4"
        }
    }

    /// The layer whose output is a clip's embedding by default (the last hidden layer after its ReLU).
    public var embeddingLayerName: String {
        switch self {
        case .envnet: return "relu6"
        case .envnetV2: return "relu12"
        case .logMelCNN: return "bn3"
        }
    }
}

/// The sizes of any network this library builds.
///
/// In JSON it is the family's own configuration; an EnvNet-v2 configuration adds
/// `"architecture": "envnet-v2"`, so EnvNet files read as before.
public enum NetworkConfiguration: Codable, Sendable, Hashable, CustomStringConvertible {
    case envnet(EnvNetConfiguration)
    case envnetV2(EnvNetV2Configuration)
    case logMelCNN(LogMelCNNConfiguration)

    /// The family.
    public var architecture: NetworkArchitecture {
        switch self {
        case .envnet: return .envnet
        case .envnetV2: return .envnetV2
        case .logMelCNN: return .logMelCNN
        }
    }

    /// The EnvNet sizes, or nil for another family.
    public var envnet: EnvNetConfiguration? {
        if case let .envnet(configuration) = self { return configuration }
        return nil
    }

    /// The number of output classes.
    public var classCount: Int {
        get {
            switch self {
            case let .envnet(configuration): return configuration.classCount
            case let .envnetV2(configuration): return configuration.classCount
            case let .logMelCNN(configuration): return configuration.classCount
            }
        }
        set {
            switch self {
            case var .envnet(configuration): configuration.classCount = newValue; self = .envnet(configuration)
            case var .envnetV2(configuration): configuration.classCount = newValue; self = .envnetV2(configuration)
            case var .logMelCNN(configuration): configuration.classCount = newValue; self = .logMelCNN(configuration)
            }
        }
    }

    /// The width of the hidden fully connected layers.
    public var hiddenUnits: Int {
        get {
            switch self {
            case let .envnet(configuration): return configuration.hiddenUnits
            case let .envnetV2(configuration): return configuration.hiddenUnits
            case let .logMelCNN(configuration): return configuration.hiddenUnits
            }
        }
        set {
            switch self {
            case var .envnet(configuration): configuration.hiddenUnits = newValue; self = .envnet(configuration)
            case var .envnetV2(configuration): configuration.hiddenUnits = newValue; self = .envnetV2(configuration)
            case var .logMelCNN(configuration): configuration.hiddenUnits = newValue; self = .logMelCNN(configuration)
            }
        }
    }

    /// The rate the network's input is at, in Hz.
    public var sampleRate: Int { architecture.sampleRate }

    /// Samples per input window.
    public var inputLength: Int {
        switch self {
        case let .envnet(configuration): return configuration.inputLength
        case .envnetV2: return EnvNetV2Configuration.inputLength
        case .logMelCNN: return LogMelCNNConfiguration.inputLength
        }
    }

    /// The input size of the first fully connected layer.
    public var flattenedFeatures: Int {
        switch architecture {
        case .envnet: return EnvNetConfiguration.flattenedFeatures
        case .envnetV2: return EnvNetV2Configuration.flattenedFeatures
        case .logMelCNN: return LogMelCNNConfiguration.flattenedFeatures
        }
    }

    /// The fully connected layers' weight names and shapes, in forward order (they hold almost all
    /// of a network's parameters, and their sizes come from the file when one is loaded).
    public var fullyConnectedWeights: [(name: String, shape: [Int])] {
        let hidden = hiddenUnits, classes = classCount, flattened = flattenedFeatures
        switch architecture {
        case .envnet: return [("fc5", [hidden, flattened]), ("fc6", [hidden, hidden]), ("fc7", [classes, hidden])]
        case .envnetV2: return [("fc11", [hidden, flattened]), ("fc12", [hidden, hidden]), ("fc13", [classes, hidden])]
        case .logMelCNN: return [("fc3", [hidden, flattened]), ("fc4", [classes, hidden])]
        }
    }

    public var description: String {
        switch self {
        case let .envnet(configuration): return configuration.description
        case let .envnetV2(configuration): return configuration.description
        case let .logMelCNN(configuration): return configuration.description
        }
    }

    /// Checks the values.
    /// - Throws: ``EnvNetError/invalidConfiguration(_:)``.
    public func validate() throws {
        switch self {
        case let .envnet(configuration): try configuration.validate()
        case let .envnetV2(configuration): try configuration.validate()
        case let .logMelCNN(configuration): try configuration.validate()
        }
    }

    /// A new network of these sizes, with weights drawn from `seed` (He-normal, as documented by
    /// each family's initializer).
    public func makeNetwork(seed: UInt64) -> any ClassifierNetwork {
        makeNetwork(seed: seed, drawsWeights: true)
    }

    func makeNetwork(seed: UInt64, drawsWeights: Bool) -> any ClassifierNetwork {
        switch self {
        case let .envnet(configuration): return EnvNet(configuration: configuration, seed: seed, drawsWeights: drawsWeights)
        case let .envnetV2(configuration): return EnvNetV2(configuration: configuration, seed: seed, drawsWeights: drawsWeights)
        case let .logMelCNN(configuration): return LogMelCNN(configuration: configuration, seed: seed, drawsWeights: drawsWeights)
        }
    }

    private enum CodingKeys: String, CodingKey { case architecture }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let architecture = try container.decodeIfPresent(NetworkArchitecture.self, forKey: .architecture) ?? .envnet
        switch architecture {
        case .envnet: self = .envnet(try EnvNetConfiguration(from: decoder))
        case .envnetV2: self = .envnetV2(try EnvNetV2Configuration(from: decoder))
        case .logMelCNN: self = .logMelCNN(try LogMelCNNConfiguration(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case let .envnet(configuration):
            try configuration.encode(to: encoder)
        case let .envnetV2(configuration):
            try configuration.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(NetworkArchitecture.envnetV2, forKey: .architecture)
        case let .logMelCNN(configuration):
            try configuration.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(NetworkArchitecture.logMelCNN, forKey: .architecture)
        }
    }
}

/// A network that classifies fixed-length windows of raw audio: ``EnvNet``, ``EnvNetV2`` or
/// ``LogMelCNN`` (which computes its features itself).
///
/// Training, evaluation, inference, embeddings and the weight files take any of them. Each is a
/// ``LayerChain`` whose keys are the interchange names, ending in three fully connected layers.
public protocol ClassifierNetwork: Module, LayerChain {
    /// The sizes the network was built with.
    var networkConfiguration: NetworkConfiguration { get }
    /// The layers' names in forward order (`conv1`, `bn1`, … the last fully connected layer).
    var layerNames: [String] { get }
    /// The dropout layers of the classifier, in forward order (the trainer keys their masks).
    var dropouts: [Dropout] { get }
    /// Whether ``LayerChain/backward(_:)`` computes the gradient with respect to the input audio.
    var computesInputGradient: Bool { get set }
    /// Runs the layers up to and including the one named `layerName`. `[N, 1, 1, L] -> that layer's output`
    func features(_ input: Tensor, upTo layerName: String) -> Tensor
    /// Runs the backward pass only through the layers after `layerName` (nil: all of them).
    /// `[N, classes] -> gradient at the output of layerName`
    func backward(_ gradientOutput: Tensor, stoppingAfter layerName: String?) -> Tensor
    /// Every layer that draws training-mode randomness (dropout, masks), in forward order; the
    /// trainer keys their streams per sample. ``dropouts`` by default.
    var randomLayers: [any SampleKeyedRandomness] { get }
    /// The rule that tells silent windows, in training crops and in probability voting: the peak
    /// rule with `peakThreshold` by default, the mean log-mel level for the log-mel CNN.
    func silenceRule(peakThreshold: Float) -> SilenceRule
    /// Fits what the network derives from its training data before the first step (the log-mel
    /// CNN's feature mean and standard deviation, when it has none yet); nothing by default.
    func prepareForTraining(on clips: [LabeledClip])
}

extension ClassifierNetwork {
    /// Runs the layers up to and including the one named `layerName` (for example `pool2` for the
    /// learned-filter analysis, ``NetworkArchitecture/embeddingLayerName`` for embeddings, `logmel`
    /// for the log-mel CNN's features). `[N, 1, 1, L] -> that layer's output`
    public func features(_ input: Tensor, upTo layerName: String) -> Tensor {
        TensorError.check {
            guard layerNames.contains(layerName) else {
                throw TensorError.invalidArgument(operation: "\(type(of: self)).features", message: "no layer named \(layerName)")
            }
        }
        return forwardLayers(input, through: layerName)
    }

    /// Runs the backward pass only through the layers after `layerName`, for fine-tuning with a
    /// frozen front: those layers run in evaluation mode and keep nothing for a backward pass.
    /// `[N, classes] -> gradient at the output of layerName`
    /// - Parameters:
    ///   - gradientOutput: The gradient of the loss with respect to the logits.
    ///   - layerName: The last frozen layer; nil runs the whole backward pass.
    public func backward(_ gradientOutput: Tensor, stoppingAfter layerName: String?) -> Tensor {
        guard let layerName, layerNames.contains(layerName) else { return backward(gradientOutput) }
        return backwardLayers(gradientOutput, stoppingAfter: layerName)
    }

    public var randomLayers: [any SampleKeyedRandomness] { dropouts }
    public func silenceRule(peakThreshold: Float) -> SilenceRule { .peak(threshold: peakThreshold) }
    public func prepareForTraining(on clips: [LabeledClip]) {}
}

extension ClassifierNetwork {
    /// The family.
    public var architecture: NetworkArchitecture { networkConfiguration.architecture }
    /// The number of output classes.
    public var classCount: Int { networkConfiguration.classCount }
    /// Samples per input window.
    public var inputLength: Int { networkConfiguration.inputLength }
    /// The rate the input is at, in Hz.
    public var sampleRate: Int { networkConfiguration.sampleRate }

    /// Makes every BatchNorm of the network normalise with the statistics of the whole group's
    /// batch (nil: this member's batch alone).
    /// - Parameter reducer: The group's statistics.
    public func synchronizeBatchStatistics(_ reducer: (any BatchNormalization.StatisticsReducer)?) {
        for leaf in namedLeaves() {
            if let norm = leaf.module as? BatchNorm { norm.statisticsReducer = reducer }
        }
    }

    /// A checksum of every parameter and running statistic, bit for bit (FNV-1a over the values'
    /// bits, in key order): members that applied the same steps have the same checksum.
    public func parameterChecksum() -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        let tensors = namedParameters().map { ($0.key, $0.parameter.value) } + namedBuffers().map { ($0.key, $0.buffer.value) }
        for (_, tensor) in tensors.sorted(by: { $0.0 < $1.0 }) {
            tensor.withUnsafeBufferPointer { buffer in
                for value in buffer {
                    hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01B3
                }
            }
        }
        return hash
    }

    // MARK: - Weights

    /// The weights (parameters and running statistics) under their interchange names, with the
    /// configuration and class names in the metadata (and a ``ModelDescription`` with the documented
    /// defaults for everything else).
    public func safeTensors(classNames: [String]) -> SafeTensors {
        safeTensors(description: ModelDescription(configuration: networkConfiguration, classNames: classNames))
    }

    /// The weights under their interchange names, with the model description in the metadata.
    public func safeTensors(description: ModelDescription) -> SafeTensors {
        var metadata: [String: String] = [EnvNet.MetadataKey.format: "pt"]
        let configuration = networkConfiguration
        if let json = try? JSONEncoder.sorted.encode(configuration) { metadata[EnvNet.MetadataKey.configuration] = String(decoding: json, as: UTF8.self) }
        if let json = try? JSONEncoder().encode(description.classNames) { metadata[EnvNet.MetadataKey.classNames] = String(decoding: json, as: UTF8.self) }
        var described = description
        described.configuration = configuration
        // This library writes the file, whatever wrote the one the description came from.
        described.schemaVersion = ModelDescription.currentSchemaVersion
        described.libraryVersion = EnvNetLibrary.version
        metadata.merge(described.metadata) { $1 }
        return SafeTensors(tensors: stateDictionary(), metadata: metadata)
    }

    /// Saves the weights as safetensors, atomically.
    public func save(to url: URL, classNames: [String]) throws {
        try safeTensors(classNames: classNames).write(to: url)
    }

    /// Saves the weights with their model description, atomically.
    /// - Parameters:
    ///   - url: The file to write.
    ///   - description: How the model is used: classes, preprocessing, evaluation, recipe, data.
    ///   - storage: F32 (exact, the default) or F16 (half the size; loading widens it to F32).
    public func save(to url: URL, description: ModelDescription, storage: SafeTensors.StorageType = .float32) throws {
        guard description.classNames.count == classCount else {
            throw EnvNetError.invalidConfiguration("\(description.classNames.count) class names for a network of \(classCount) classes")
        }
        try safeTensors(description: description).write(to: url, storage: storage)
    }

    /// A network for new classes that starts from this one: every layer keeps its weights and
    /// BatchNorm statistics except the last fully connected layer (`fc7` or `fc13`), rebuilt for
    /// `classCount` classes with fresh He-normal weights drawn from `seed`.
    ///
    /// Freeze the front with ``Trainer/freeze(through:)`` to keep it fixed while the rest learns.
    /// - Parameters:
    ///   - classCount: The new number of classes.
    ///   - seed: The seed of the new classifier and of dropout.
    /// - Returns: The new network, in training mode.
    /// - Throws: ``EnvNetError/invalidConfiguration(_:)`` for a class count below 1.
    public func fineTuned(classCount: Int, seed: UInt64) throws -> any ClassifierNetwork {
        var configuration = networkConfiguration
        configuration.classCount = classCount
        try configuration.validate()
        let network = configuration.makeNetwork(seed: seed)
        let output = architecture.outputLayerName + "."
        var state = stateDictionary()
        for (key, value) in network.stateDictionary() where key.hasPrefix(output) { state[key] = value }
        try network.loadStateDictionary(state, strict: true)
        network.train()
        return network
    }
}

/// Reads and writes model files of any network this library builds.
public enum ModelFile {
    /// Loads a model file with its description: what the file records, or
    /// ``ModelDescription/legacyDefaults(configuration:classNames:)`` for older and PyTorch files.
    ///
    /// PyTorch weights with the interchange names load with no flag: the network is recognised
    /// from the names and shapes (`fc13.weight` and `conv10.weight` for EnvNet-v2, `fc7.weight`
    /// for EnvNet, `conv1.bias` for its seed variant).
    /// - Parameter url: The safetensors file.
    /// - Returns: The network (in evaluation mode) and how to use it.
    /// - Throws: ``SafeTensorsError`` for a damaged file, ``EnvNetError/incompatibleWeights(path:reason:)``
    ///   naming the tensor for a missing, extra, wrongly shaped or non-finite weight, a file of a
    ///   newer metadata schema or of a network this library does not build.
    public static func load(from url: URL) throws -> (network: any ClassifierNetwork, description: ModelDescription) {
        let file = try SafeTensors.read(from: url)
        return try load(file, source: url.path)
    }

    /// Builds a network and its description from safetensors contents; `source` names them in errors.
    public static func load(_ file: SafeTensors, source: String) throws -> (network: any ClassifierNetwork, description: ModelDescription) {
        func fail(_ reason: String) -> EnvNetError { .incompatibleWeights(path: source, reason: reason) }
        let recorded = try ModelDescription.read(from: file.metadata, source: source)
        var configuration: NetworkConfiguration
        let legacy = file.metadata[EnvNet.MetadataKey.configuration]
        if let recorded {
            configuration = recorded.configuration
            // A file whose two records of the sizes disagree was edited by hand or damaged.
            if let legacy, (try? JSONDecoder().decode(NetworkConfiguration.self, from: Data(legacy.utf8))) != configuration {
                throw fail("metadata \(EnvNet.MetadataKey.configuration) disagrees with \(ModelDescription.Key.description)")
            }
        } else if let legacy {
            do {
                configuration = try JSONDecoder().decode(NetworkConfiguration.self, from: Data(legacy.utf8))
            } catch {
                throw fail("metadata \(EnvNet.MetadataKey.configuration) is not a valid configuration")
            }
        } else {
            configuration = try inferConfiguration(from: file.tensors, source: source)
        }
        do {
            try configuration.validate()
        } catch {
            throw fail("\(error)")
        }
        // The fully connected layers are the network's bulk, and their sizes come from the file:
        // check their shapes before allocating anything, so that a few bytes of metadata claiming
        // a huge network cannot make this allocate without bound (found by Fuzz/FuzzSafeTensors).
        let classes = configuration.classCount
        for (name, shape) in configuration.fullyConnectedWeights {
            let key = name + ".weight"
            guard let tensor = file.tensors[key] else { throw fail("missing \(key) (the network \(configuration) needs shape \(shape))") }
            guard tensor.shape == shape else { throw fail("\(key) has shape \(tensor.shape); the network \(configuration) needs \(shape)") }
        }
        var classNames = (0..<classes).map { "class \($0)" }
        if let recorded {
            classNames = recorded.classNames
        } else if let text = file.metadata[EnvNet.MetadataKey.classNames] {
            guard let names = try? JSONDecoder().decode([String].self, from: Data(text.utf8)), names.count == classes else {
                throw fail("metadata \(EnvNet.MetadataKey.classNames) does not list \(classes) class names")
            }
            classNames = names
        }
        let network = configuration.makeNetwork(seed: 0, drawsWeights: false)
        var state = file.tensors
        // PyTorch's 1-D convolutions store [O, C, k]; ours are 2-D with height 1.
        for key in ["conv1.weight", "conv2.weight"] {
            if let tensor = state[key], tensor.rank == 3 { state[key] = tensor.unsqueezed(axis: 2) }
        }
        // PyTorch saves a batch counter the network does not use.
        for key in state.keys where key.hasSuffix(".num_batches_tracked") { state[key] = nil }
        // Poisoned weights would load and give one output for every input: refuse them by name.
        for key in state.keys.sorted() {
            let problem: String? = state[key]!.withUnsafeBufferPointer { values in
                if let index = values.firstIndex(where: { !$0.isFinite }) { return "element \(index) is \(values[index])" }
                if key.hasSuffix("running_var"), let index = values.firstIndex(where: { $0 < 0 }) {
                    return "element \(index) is \(values[index]), and a variance cannot be negative"
                }
                // Features are dB within about ±200: a spread far below 1e-3 dB or a mean beyond
                // 1000 dB would turn every input into saturated, confident garbage.
                if key == "logmel.std", let index = values.firstIndex(where: { !($0 >= 1e-3 && $0 <= 1e3) }) {
                    return "element \(index) is \(values[index]); a standard deviation of dB values must be in [0.001, 1000]"
                }
                if key == "logmel.mean", let index = values.firstIndex(where: { abs($0) > 1e3 }) {
                    return "element \(index) is \(values[index]); a mean of dB values must be within ±1000"
                }
                if key == "logmel.segment_count", let index = values.firstIndex(where: { $0 < 0 }) {
                    return "element \(index) is \(values[index]), and a count cannot be negative"
                }
                return nil
            }
            if let problem { throw fail("\(key): \(problem)") }
        }
        do {
            try network.loadStateDictionary(state, strict: true)
        } catch let error as LayerError {
            throw fail("\(error)")
        }
        network.eval()
        return (network, recorded ?? .legacyDefaults(configuration: configuration, classNames: classNames))
    }

    /// The sizes of a file without metadata, from its tensors' names and shapes.
    static func inferConfiguration(from tensors: [String: Tensor], source: String) throws -> NetworkConfiguration {
        if let fc4 = tensors["fc4.weight"], fc4.rank == 2, let fc3 = tensors["fc3.weight"], fc3.rank == 2, tensors["logmel.std"] != nil {
            return .logMelCNN(LogMelCNNConfiguration(classCount: fc4.shape[0], hiddenUnits: fc3.shape[0]))
        }
        if let fc13 = tensors["fc13.weight"], fc13.rank == 2, let fc11 = tensors["fc11.weight"], fc11.rank == 2, tensors["conv10.weight"] != nil {
            return .envnetV2(EnvNetV2Configuration(classCount: fc13.shape[0], hiddenUnits: fc11.shape[0]))
        }
        guard let fc7 = tensors["fc7.weight"], fc7.rank == 2, let fc5 = tensors["fc5.weight"], fc5.rank == 2 else {
            throw EnvNetError.incompatibleWeights(path: source, reason: "neither EnvNet (fc5.weight, fc7.weight) nor EnvNet-v2 (conv10.weight, fc11.weight, fc13.weight) nor log-mel CNN (logmel.std, fc3.weight, fc4.weight) weights")
        }
        let variant: EnvNetConfiguration.Variant = tensors["conv1.bias"] != nil ? .seed : .official
        return .envnet(EnvNetConfiguration(variant: variant, classCount: fc7.shape[0], hiddenUnits: fc5.shape[0]))
    }
}
