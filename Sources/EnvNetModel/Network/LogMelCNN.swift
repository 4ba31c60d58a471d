import EnvNetAudio
import EnvNetLayers
import Foundation

/// The sizes of a log-mel CNN.
public struct LogMelCNNConfiguration: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The number of output classes.
    public var classCount: Int
    /// The width of fc3 (5000 in Piczak's network; smaller values make small test models).
    public var hiddenUnits: Int
    /// The dropout probability after fc3: 0, as the seed code lists the network (Piczak's own drops half of its hidden units: 0.5).
    public var dropoutProbability: Float
    /// The widest training-time frequency mask, in mel bands (0: none).
    public var frequencyMaskBands: Int
    /// The widest training-time time mask, in frames (0: none).
    public var timeMaskFrames: Int

    /// - Parameters:
    ///   - classCount: the number of classes (50 for ESC-50).
    ///   - hiddenUnits: the width of fc3.
    ///   - dropoutProbability: dropout after fc3.
    ///   - frequencyMaskBands: the widest frequency mask in training.
    ///   - timeMaskFrames: the widest time mask in training.
    public init(classCount: Int = 50, hiddenUnits: Int = 5000, dropoutProbability: Float = 0,
                frequencyMaskBands: Int = 8, timeMaskFrames: Int = 6) {
        self.classCount = classCount
        self.hiddenUnits = hiddenUnits
        self.dropoutProbability = dropoutProbability
        self.frequencyMaskBands = frequencyMaskBands
        self.timeMaskFrames = timeMaskFrames
    }

    /// The features: torchaudio's settings of the seed article's code.
    public static let features = LogMelSettings()
    /// The sample rate the network expects.
    public static let sampleRate = features.sampleRate
    /// Samples per input segment: 20991 (41 frames, about 0.95 s at 22.05 kHz).
    public static let inputLength = features.segmentLength
    /// The flattened size after pool2: 80 x 1 x 3.
    public static let flattenedFeatures = 240

    public var description: String {
        "log-mel CNN(\(classCount) classes, fc \(hiddenUnits), dropout \(dropoutProbability), masks \(frequencyMaskBands) bands / \(timeMaskFrames) frames)"
    }

    /// Checks the values.
    /// - Throws: ``EnvNetError/invalidConfiguration(_:)``.
    public func validate() throws {
        guard classCount >= 1 else { throw EnvNetError.invalidConfiguration("class count must be at least 1, got \(classCount)") }
        guard hiddenUnits >= 1 else { throw EnvNetError.invalidConfiguration("hidden units must be at least 1, got \(hiddenUnits)") }
        guard dropoutProbability >= 0, dropoutProbability < 1 else {
            throw EnvNetError.invalidConfiguration("dropout probability must be in [0, 1), got \(dropoutProbability)")
        }
        guard (0...Self.features.melBands).contains(frequencyMaskBands), (0...Self.features.segmentFrames).contains(timeMaskFrames) else {
            throw EnvNetError.invalidConfiguration("masks must be 0...\(Self.features.melBands) bands and 0...\(Self.features.segmentFrames) frames wide")
        }
    }
}

/// The log-mel CNN (Piczak, "Environmental sound classification with convolutional neural
/// networks", MLSP 2015), as the seed article's code builds it: two convolutions over a
/// two-channel log-mel image (the features and their deltas), then one wide hidden layer.
///
/// ```
/// input    [N, 1, 1, 20991]   raw segment at 22050 Hz
/// logmel   [N, 2, 60, 41]     normalised log-mel dB and deltas (LogMelFrontEnd)
/// masking  [N, 2, 60, 41]     one frequency and one time mask per sample, training only
/// conv1    80 x (57x6)        [N, 80, 4, 36], bn1, ReLU
/// pool1    max 4x3 / (1,3)    [N, 80, 1, 12]
/// conv2    80 x (1x3)         [N, 80, 1, 10], bn2, ReLU
/// pool2    max 1x3 / (1,3)    [N, 80, 1, 3]
/// fc3      240 -> 5000, bn3, ReLU (dropout3: none by default)
/// fc4      5000 -> classes    [N, classes] (logits)
/// ```
///
/// The network takes raw audio like EnvNet, so training, probability voting, the ensemble and the
/// app API treat it as any other network: a window is one 20991-sample segment, and voting uses a
/// hop of 10240 samples (half a segment). Convolutions have no bias (BatchNorm's shift replaces
/// it); weights are He-normal; BatchNorm is PyTorch's. Keys: `logmel.mean`, `logmel.std`,
/// `logmel.segment_count`, `conv1.weight`, `bn1.*`, `conv2.weight`, `bn2.*`, `fc3.*`, `bn3.*`, `fc4.*`.
public final class LogMelCNN: Module, ClassifierNetwork {
    /// The sizes this network was built with.
    public let configuration: LogMelCNNConfiguration
    /// The sizes, as any network's.
    public var networkConfiguration: NetworkConfiguration { .logMelCNN(configuration) }
    /// Audio to features.
    public let frontEnd: LogMelFrontEnd
    /// The training-time masks.
    public let masking: SpectrogramMasking
    /// conv1 … pool1 and conv2 … pool2.
    public let blocks: [ConvolutionBlock]
    /// `[N, 80, 1, 3] -> [N, 240]`.
    public let flatten: Flatten
    /// fc3, bn3 (ReLU fused), dropout3, fc4.
    public let classifier: Sequential
    /// 240 -> hidden.
    public let fc3: Linear
    /// Hidden -> classes (the logits).
    public let fc4: Linear
    /// Dropout after fc3.
    public let dropouts: [Dropout]

    /// Builds a log-mel CNN with He-normal weights drawn once in forward order from `seed`.
    /// - Parameters:
    ///   - configuration: classes, width and masks.
    ///   - seed: the seed of the initial weights, of dropout and of the masks.
    public convenience init(configuration: LogMelCNNConfiguration = LogMelCNNConfiguration(), seed: UInt64 = 0) {
        self.init(configuration: configuration, seed: seed, drawsWeights: true)
    }

    init(configuration: LogMelCNNConfiguration, seed: UInt64, drawsWeights: Bool) {
        TensorError.check { try configuration.validate() }
        self.configuration = configuration
        let weights: Initializer = drawsWeights ? .heNormal : .constant(0)
        var generator = SeededGenerator(seed: seed)
        let features = LogMelCNNConfiguration.features
        frontEnd = LogMelFrontEnd(settings: features)
        masking = SpectrogramMasking(maximumBands: configuration.frequencyMaskBands, maximumFrames: configuration.timeMaskFrames,
                                     generator: &generator)
        blocks = [
            ConvolutionBlock(names: ("conv1", "bn1", "pool1"), inputChannels: 2, outputChannels: 80, kernelSize: (57, 6),
                             poolSize: (4, 3), poolStride: (1, 3), weightInitializer: weights, generator: &generator),
            ConvolutionBlock(names: ("conv2", "bn2", "pool2"), inputChannels: 80, outputChannels: 80, kernelSize: (1, 3),
                             poolSize: (1, 3), poolStride: (1, 3), weightInitializer: weights, inputIsDisposable: true,
                             generator: &generator),
        ]
        flatten = Flatten()
        fc3 = Linear(inputCount: LogMelCNNConfiguration.flattenedFeatures, outputCount: configuration.hiddenUnits,
                     weightInitializer: weights, biasInitializer: .constant(0), generator: &generator)
        fc4 = Linear(inputCount: configuration.hiddenUnits, outputCount: configuration.classCount, weightInitializer: weights,
                     biasInitializer: .constant(0), generator: &generator)
        dropouts = [Dropout(probability: configuration.dropoutProbability, generator: &generator)]
        classifier = Sequential(named: [
            ("fc3", fc3), ("bn3", BatchNorm1d(featureCount: configuration.hiddenUnits, fusedReLU: true)),
            ("dropout3", dropouts[0]), ("fc4", fc4),
        ])
        super.init()
        // Nothing trains through the features: conv1's input gradient would be thrown away.
        blocks[0].convolution.computesInputGradient = false
    }

    /// Always false: the features are not trained through, so there is no audio gradient to compute.
    public var computesInputGradient: Bool {
        get { false }
        set {}
    }

    public var layers: [(name: String, layer: any Layer)] {
        [("logmel", frontEnd), ("masking", masking)] + blocks.map { ("", $0 as any Layer) }
            + [("flatten", flatten), ("", classifier)]
    }

    public override var children: [(name: String, module: Module)] { layers.map { ($0.name, $0.layer) } }

    public override var layerDescription: String { "LogMelCNN()" }

    /// `logmel`, `masking`, `conv1`, `bn1`, `pool1`, `conv2`, `bn2`, `pool2`, `flatten`, `fc3`, `bn3`, `dropout3`, `fc4`.
    public var layerNames: [String] { namedLeaves().map(\.key) }

    /// Dropout and the masks.
    public var randomLayers: [any SampleKeyedRandomness] { dropouts + [masking] }

    /// Logits for a batch of segments. `[N, 1, 1, 20991] -> [N, classes]`
    public func forward(_ input: Tensor) -> Tensor {
        TensorError.check {
            guard input.rank == 4, input.shape[1] == 1, input.shape[2] == 1, input.shape[3] == LogMelCNNConfiguration.inputLength else {
                throw LayerError.inputShape(layer: "LogMelCNN", expected: "[N, 1, 1, \(LogMelCNNConfiguration.inputLength)]", actual: input.shape)
            }
        }
        return forwardLayers(input)
    }

    /// `[N, classes] -> [N, 1, 1, 20991]` (zeros)
    public func backward(_ gradientOutput: Tensor) -> Tensor { backwardLayers(gradientOutput) }

    /// Segments whose mean log-mel level is below -70 dB are silent.
    public func silenceRule(peakThreshold: Float) -> SilenceRule { .meanLogMel(frontEnd.spectrogram) }

    /// Fits the feature statistics to the clips when the network has none yet.
    public func prepareForTraining(on clips: [LabeledClip]) {
        if !frontEnd.isFitted { frontEnd.fit(to: clips.map(\.samples)) }
    }
}
