import EnvNetLayers
import Foundation

/// The sizes of an EnvNet: which published variant, how many classes, how wide the classifier.
public struct EnvNetConfiguration: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The published variants of the network's front end.
    public enum Variant: String, Codable, Sendable, CaseIterable {
        /// The official sizes (Tokozume & Harada 2017, authors' code): input 24014 samples,
        /// conv1/conv2 without padding or bias.
        case official
        /// The seed article's PyTorch re-implementation: input 24000 samples, conv1/conv2 with
        /// padding 4 and a bias.
        case seed
    }

    /// The front-end variant.
    public var variant: Variant
    /// The number of output classes.
    public var classCount: Int
    /// The width of fc5 and fc6 (4096 in the paper; smaller values make small test models).
    public var hiddenUnits: Int
    /// The dropout probability after fc5 and fc6.
    public var dropoutProbability: Float

    /// - Parameters:
    ///   - variant: the front-end variant (official by default).
    ///   - classCount: the number of classes (50 for ESC-50).
    ///   - hiddenUnits: the width of fc5 and fc6.
    ///   - dropoutProbability: dropout after fc5 and fc6.
    public init(variant: Variant = .official, classCount: Int = 50, hiddenUnits: Int = 4096, dropoutProbability: Float = 0.5) {
        self.variant = variant
        self.classCount = classCount
        self.hiddenUnits = hiddenUnits
        self.dropoutProbability = dropoutProbability
    }

    /// The sample rate the network expects.
    public static let sampleRate = 16_000

    /// Samples per input window: 24014 (1.5 s plus 14) for the official sizes, 24000 for the seed variant.
    public var inputLength: Int { variant == .official ? 24_014 : 24_000 }

    /// The flattened size after pool4: 50 x 11 x 14.
    public static let flattenedFeatures = 7_700

    public var description: String {
        "EnvNet(\(variant.rawValue), \(classCount) classes, fc \(hiddenUnits), dropout \(dropoutProbability), input \(inputLength))"
    }

    /// Checks the values.
    /// - Throws: ``EnvNetError/invalidConfiguration(_:)``.
    public func validate() throws {
        guard classCount >= 1 else { throw EnvNetError.invalidConfiguration("class count must be at least 1, got \(classCount)") }
        guard hiddenUnits >= 1 else { throw EnvNetError.invalidConfiguration("hidden units must be at least 1, got \(hiddenUnits)") }
        guard dropoutProbability >= 0, dropoutProbability < 1 else {
            throw EnvNetError.invalidConfiguration("dropout probability must be in [0, 1), got \(dropoutProbability)")
        }
    }
}

/// What can go wrong when building, loading or running an EnvNet.
public enum EnvNetError: Error, CustomStringConvertible, Sendable, Equatable {
    case invalidConfiguration(String)
    case incompatibleWeights(path: String, reason: String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .invalidConfiguration(message): return "invalid EnvNet configuration: \(message)"
        case let .incompatibleWeights(path, reason): return "\(path): \(reason)"
        case let .invalidInput(message): return "invalid input: \(message)"
        }
    }
}

/// EnvNet (Tokozume & Harada, ICASSP 2017): a CNN that classifies environmental sounds from raw
/// 16 kHz waveforms.
///
/// ```
/// input  [N, 1, 1, 24014]
/// conv1  40 x (1x8), BatchNorm, ReLU        [N, 40, 1, 24007]
/// conv2  40 x (1x8), BatchNorm, ReLU        [N, 40, 1, 24000]
/// pool2  max 1x160 / 160                    [N, 40, 1, 150]
/// swap   axes C and H                       [N, 1, 40, 150]
/// conv3  50 x (8x13), BatchNorm, ReLU       [N, 50, 33, 138]
/// pool3  max 3x3 / 3                        [N, 50, 11, 46]
/// conv4  50 x (1x5), BatchNorm, ReLU        [N, 50, 11, 42]
/// pool4  max 1x3 / 3                        [N, 50, 11, 14]
/// fc5    7700 -> 4096, ReLU, dropout 0.5
/// fc6    4096 -> 4096, ReLU, dropout 0.5
/// fc7    4096 -> classes                    [N, classes] (logits)
/// ```
///
/// Parameter keys are those of the weight-interchange convention (`conv1.weight`,
/// `bn1.running_mean`, `fc5.weight` …), so weights move to and from PyTorch unchanged.
///
/// The network is three kinds of typed blocks, listed without a level of their own in the keys:
/// the front end (``EnvNetFrontEnd``, conv1 … pool2), which runs as one fused operation in
/// evaluation mode where the machine allows; two ``ConvolutionBlock``s (conv3 with pool3, conv4
/// with pool4); and the classifier (fc5 … fc7). Its forward and backward passes are the loops of
/// ``LayerChain``.
public final class EnvNet: Module, ClassifierNetwork {
    /// The sizes this network was built with.
    public let configuration: EnvNetConfiguration
    /// The sizes, as any network's.
    public var networkConfiguration: NetworkConfiguration { .envnet(configuration) }
    /// conv1 … pool2.
    public let frontEnd: EnvNetFrontEnd
    /// Swaps the channel and height axes: `[N, 40, 1, 150] -> [N, 1, 40, 150]`.
    public let swap: SwapAxes
    /// conv3 (50 x 8x13), bn3, pool3 (3x3).
    public let block3: ConvolutionBlock
    /// conv4 (50 x 1x5), bn4, pool4 (1x3).
    public let block4: ConvolutionBlock
    /// `[N, 50, 11, 14] -> [N, 7700]`.
    public let flatten: Flatten
    /// fc5, relu5, dropout5, fc6, relu6, dropout6, fc7.
    public let classifier: Sequential
    /// 7700 -> hidden units.
    public let fc5: Linear
    /// Hidden -> hidden.
    public let fc6: Linear
    /// Hidden -> classes (the logits).
    public let fc7: Linear
    /// Dropout after fc5 and fc6 (the trainer reseeds them every epoch).
    public let dropouts: [Dropout]

    /// Builds an EnvNet with He-normal convolution and fully connected weights, BatchNorm scale 1
    /// and shift 0, zero biases, drawn once from a generator seeded with `seed`.
    /// - Parameters:
    ///   - configuration: variant, classes and widths.
    ///   - seed: the seed of the initial weights and of dropout.
    public convenience init(configuration: EnvNetConfiguration = EnvNetConfiguration(), seed: UInt64 = 0) {
        self.init(configuration: configuration, seed: seed, drawsWeights: true)
    }

    /// Builds the network; without drawing, every weight starts as zeros (pages the kernel maps
    /// only when written), for a network whose weights are about to be loaded.
    init(configuration: EnvNetConfiguration, seed: UInt64, drawsWeights: Bool) {
        TensorError.check { try configuration.validate() }
        self.configuration = configuration
        let seedVariant = configuration.variant == .seed
        let weights: Initializer = drawsWeights ? .heNormal : .constant(0)
        // One generator, drawn in forward order: conv1, conv2, conv3, conv4, fc5, fc6, fc7.
        var generator = SeededGenerator(seed: seed)
        frontEnd = EnvNetFrontEnd(channels: 40, padding: seedVariant ? 4 : 0, bias: seedVariant, poolSize: 160,
                                  weightInitializer: weights, generator: &generator)
        swap = SwapAxes(1, 2)
        block3 = ConvolutionBlock(names: ("conv3", "bn3", "pool3"), inputChannels: 1, outputChannels: 50, kernelSize: (8, 13),
                                  poolSize: (3, 3), weightInitializer: weights, generator: &generator)
        // conv4's input is pool3's output, which pool3's backward pass does not read.
        block4 = ConvolutionBlock(names: ("conv4", "bn4", "pool4"), inputChannels: 50, outputChannels: 50, kernelSize: (1, 5),
                                  poolSize: (1, 3), weightInitializer: weights, inputIsDisposable: true, generator: &generator)
        flatten = Flatten()
        let hidden = configuration.hiddenUnits
        fc5 = Linear(inputCount: EnvNetConfiguration.flattenedFeatures, outputCount: hidden, weightInitializer: weights,
                     biasInitializer: .constant(0), generator: &generator)
        fc6 = Linear(inputCount: hidden, outputCount: hidden, weightInitializer: weights, biasInitializer: .constant(0), generator: &generator)
        fc7 = Linear(inputCount: hidden, outputCount: configuration.classCount, weightInitializer: weights,
                     biasInitializer: .constant(0), generator: &generator)
        dropouts = [Dropout(probability: configuration.dropoutProbability, seed: seed &+ 5),
                    Dropout(probability: configuration.dropoutProbability, seed: seed &+ 6)]
        classifier = Sequential(named: [
            ("fc5", fc5), ("relu5", ReLU()), ("dropout5", dropouts[0]),
            ("fc6", fc6), ("relu6", ReLU()), ("dropout6", dropouts[1]),
            ("fc7", fc7),
        ])
        super.init()
        computesInputGradient = false
    }

    /// Whether ``backward(_:)`` computes the gradient with respect to the input audio (false by
    /// default: training does not need it, and skipping it saves conv1's backward-to-input pass).
    /// Set it to true for saliency maps or adversarial examples; `backward` returns zeros otherwise.
    public var computesInputGradient: Bool {
        get { frontEnd.conv1.computesInputGradient }
        set { frontEnd.conv1.computesInputGradient = newValue }
    }

    /// The blocks in forward order; the empty names keep the layers' keys as in the interchange convention.
    public var layers: [(name: String, layer: any Layer)] {
        [("", frontEnd), ("swap", swap), ("", block3), ("", block4), ("flatten", flatten), ("", classifier)]
    }

    public override var children: [(name: String, module: Module)] { layers.map { ($0.name, $0.layer) } }

    public override var layerDescription: String { "EnvNet()" }

    /// The layers' names in forward order: `conv1`, `bn1`, … `fc7`.
    public var layerNames: [String] { namedLeaves().map(\.key) }

    /// Logits for a batch of windows. `[N, 1, 1, L] -> [N, classes]`
    public func forward(_ input: Tensor) -> Tensor {
        checkWindows(input)
        return forwardLayers(input)
    }

    /// `[N, classes] -> [N, 1, 1, L]`
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        backwardLayers(gradientOutput)
    }

    private func checkWindows(_ input: Tensor) {
        TensorError.check {
            guard input.rank == 4, input.shape[1] == 1, input.shape[2] == 1, input.shape[3] == configuration.inputLength else {
                throw LayerError.inputShape(layer: "EnvNet", expected: "[N, 1, 1, \(configuration.inputLength)]", actual: input.shape)
            }
        }
    }

    // MARK: - Weights

    /// Metadata keys of saved weights.
    public enum MetadataKey {
        public static let configuration = "envnet.configuration"
        public static let classNames = "envnet.class_names"
        public static let format = "format"
    }

    /// Loads weights saved by ``ClassifierNetwork/save(to:classNames:)`` or by PyTorch
    /// (`safetensors.torch.save_file` of a state_dict with the interchange names).
    /// - Returns: the network (in evaluation mode) and the class names (`class 0` … when absent).
    /// - Throws: As ``ModelFile/load(from:)``, and ``EnvNetError/incompatibleWeights(path:reason:)``
    ///   for the weights of another network family (load those with ``ModelFile``).
    public static func load(from url: URL) throws -> (network: EnvNet, classNames: [String]) {
        let (network, description) = try loadModel(from: url)
        return (network, description.classNames)
    }

    /// Loads a model file with its description (see ``ModelFile/load(from:)``).
    /// - Parameter url: The safetensors file.
    /// - Returns: The network (in evaluation mode) and how to use it.
    public static func loadModel(from url: URL) throws -> (network: EnvNet, description: ModelDescription) {
        let file = try SafeTensors.read(from: url)
        return try loadModel(file, source: url.path)
    }

    /// Builds a network from safetensors contents; `source` names them in errors.
    public static func load(_ file: SafeTensors, source: String) throws -> (network: EnvNet, classNames: [String]) {
        let (network, description) = try loadModel(file, source: source)
        return (network, description.classNames)
    }

    /// Builds a network and its description from safetensors contents; `source` names them in errors.
    public static func loadModel(_ file: SafeTensors, source: String) throws -> (network: EnvNet, description: ModelDescription) {
        let (network, description) = try ModelFile.load(file, source: source)
        guard let envnet = network as? EnvNet else {
            throw EnvNetError.incompatibleWeights(path: source, reason: "holds \(network.architecture) weights, not EnvNet's (load them with ModelFile.load)")
        }
        return (envnet, description)
    }

}

extension EnvNet {
    /// A network for new classes that starts from a trained EnvNet (see
    /// ``ClassifierNetwork/fineTuned(classCount:seed:)``): every layer but `fc7` keeps its weights.
    /// - Parameters:
    ///   - source: The trained network (its variant and fc width are kept).
    ///   - classCount: The new number of classes.
    ///   - seed: The seed of the new classifier and of dropout.
    /// - Returns: The new network, in training mode.
    public static func fineTuning(from source: EnvNet, classCount: Int, seed: UInt64) throws -> EnvNet {
        // fineTuned builds the network of the source's family: an EnvNet here.
        guard let network = try source.fineTuned(classCount: classCount, seed: seed) as? EnvNet else {
            preconditionFailure("fine-tuning an EnvNet built another network")
        }
        return network
    }
}
