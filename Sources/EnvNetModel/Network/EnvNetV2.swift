import EnvNetLayers
import Foundation

/// The sizes of an EnvNet-v2: how many classes, how wide the classifier.
public struct EnvNetV2Configuration: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The number of output classes.
    public var classCount: Int
    /// The width of fc11 and fc12 (4096 in the authors' code; smaller values make small test models).
    public var hiddenUnits: Int
    /// The dropout probability after fc11 and fc12.
    public var dropoutProbability: Float

    /// - Parameters:
    ///   - classCount: the number of classes (50 for ESC-50).
    ///   - hiddenUnits: the width of fc11 and fc12.
    ///   - dropoutProbability: dropout after fc11 and fc12.
    public init(classCount: Int = 50, hiddenUnits: Int = 4096, dropoutProbability: Float = 0.5) {
        self.classCount = classCount
        self.hiddenUnits = hiddenUnits
        self.dropoutProbability = dropoutProbability
    }

    /// The sample rate the network expects.
    public static let sampleRate = 44_100
    /// Samples per input window: 66650 (about 1.51 s at 44.1 kHz), as in the authors' code.
    public static let inputLength = 66_650
    /// The flattened size after pool10: 256 x 10 x 8.
    public static let flattenedFeatures = 20_480

    public var description: String {
        "EnvNet-v2(\(classCount) classes, fc \(hiddenUnits), dropout \(dropoutProbability), input \(Self.inputLength))"
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

/// EnvNet-v2 (Tokozume, Ushiku & Harada, ICLR 2018, "Learning from Between-class Examples"), as
/// the authors' code (bc_learning_sound, `envnetv2.py`) builds it: raw 44.1 kHz waveforms, ten
/// convolutions, each without a bias and followed by BatchNorm and ReLU.
///
/// ```
/// input   [N, 1, 1, 66650]
/// conv1   32 x (1x64) / (1,2)                [N, 32, 1, 33294]
/// conv2   64 x (1x16) / (1,2)                [N, 64, 1, 16640]
/// pool2   max 1x64                           [N, 64, 1, 260]
/// swap    axes C and H                       [N, 1, 64, 260]
/// conv3   32 x (8x8)                         [N, 32, 57, 253]
/// conv4   32 x (8x8)                         [N, 32, 50, 246]
/// pool4   max 5x3                            [N, 32, 10, 82]
/// conv5   64 x (1x4)                         [N, 64, 10, 79]
/// conv6   64 x (1x4)                         [N, 64, 10, 76]
/// pool6   max 1x2                            [N, 64, 10, 38]
/// conv7   128 x (1x2)                        [N, 128, 10, 37]
/// conv8   128 x (1x2)                        [N, 128, 10, 36]
/// pool8   max 1x2                            [N, 128, 10, 18]
/// conv9   256 x (1x2)                        [N, 256, 10, 17]
/// conv10  256 x (1x2)                        [N, 256, 10, 16]
/// pool10  max 1x2                            [N, 256, 10, 8]
/// fc11    20480 -> 4096, ReLU, dropout 0.5
/// fc12    4096 -> 4096, ReLU, dropout 0.5
/// fc13    4096 -> classes                    [N, classes] (logits)
/// ```
///
/// Where Chainer's conventions differ, this network uses the project's (as EnvNet does):
/// PyTorch's BatchNorm (epsilon 1e-5, momentum 0.1 for the running statistics, where Chainer's
/// BatchNormalization uses 2e-5 and a decay of 0.9), and He-normal initial weights for the
/// convolutions and fully connected layers (Chainer's default is LeCun-normal for the
/// convolutions). Parameter keys are the interchange names (`conv1.weight`, `bn1.running_mean`
/// … `conv10`, `bn10`, `fc11` … `fc13`).
public final class EnvNetV2: Module, ClassifierNetwork {
    /// The sizes this network was built with.
    public let configuration: EnvNetV2Configuration
    /// The sizes, as any network's.
    public var networkConfiguration: NetworkConfiguration { .envnetV2(configuration) }
    /// conv1 … pool2, then the 2-D blocks conv3 … pool10, in forward order.
    public let blocks: [ConvolutionBlock]
    /// Swaps the channel and height axes: `[N, 64, 1, 260] -> [N, 1, 64, 260]`.
    public let swap: SwapAxes
    /// `[N, 256, 10, 8] -> [N, 20480]`.
    public let flatten: Flatten
    /// fc11, relu11, dropout11, fc12, relu12, dropout12, fc13.
    public let classifier: Sequential
    /// 20480 -> hidden units.
    public let fc11: Linear
    /// Hidden -> hidden.
    public let fc12: Linear
    /// Hidden -> classes (the logits).
    public let fc13: Linear
    /// Dropout after fc11 and fc12.
    public let dropouts: [Dropout]

    /// Builds an EnvNet-v2 with He-normal convolution and fully connected weights, BatchNorm scale 1
    /// and shift 0, zero biases, drawn once in forward order from a generator seeded with `seed`.
    /// - Parameters:
    ///   - configuration: classes and widths.
    ///   - seed: the seed of the initial weights and of dropout.
    public convenience init(configuration: EnvNetV2Configuration = EnvNetV2Configuration(), seed: UInt64 = 0) {
        self.init(configuration: configuration, seed: seed, drawsWeights: true)
    }

    /// Builds the network; without drawing, every weight starts as zeros (pages the kernel maps
    /// only when written), for a network whose weights are about to be loaded.
    init(configuration: EnvNetV2Configuration, seed: UInt64, drawsWeights: Bool) {
        TensorError.check { try configuration.validate() }
        self.configuration = configuration
        let weights: Initializer = drawsWeights ? .heNormal : .constant(0)
        var generator = SeededGenerator(seed: seed)
        // (channels in, channels out, kernel, stride, pool) of conv1 … conv10.
        let plan: [(Int, Int, (Int, Int), (Int, Int), (Int, Int)?)] = [
            (1, 32, (1, 64), (1, 2), nil), (32, 64, (1, 16), (1, 2), (1, 64)),
            (1, 32, (8, 8), (1, 1), nil), (32, 32, (8, 8), (1, 1), (5, 3)),
            (32, 64, (1, 4), (1, 1), nil), (64, 64, (1, 4), (1, 1), (1, 2)),
            (64, 128, (1, 2), (1, 1), nil), (128, 128, (1, 2), (1, 1), (1, 2)),
            (128, 256, (1, 2), (1, 1), nil), (256, 256, (1, 2), (1, 1), (1, 2)),
        ]
        blocks = plan.enumerated().map { index, entry in
            let number = index + 1
            // Every block's input but conv1's (the audio) and conv3's (swap's output, a view of
            // pool2's) is another block's BatchNorm or pooling output, which nothing reads again.
            return ConvolutionBlock(names: ("conv\(number)", "bn\(number)", "pool\(number)"), inputChannels: entry.0, outputChannels: entry.1,
                                    kernelSize: entry.2, stride: entry.3, poolSize: entry.4, weightInitializer: weights,
                                    inputIsDisposable: false, generator: &generator)
        }
        swap = SwapAxes(1, 2)
        flatten = Flatten()
        let hidden = configuration.hiddenUnits
        fc11 = Linear(inputCount: EnvNetV2Configuration.flattenedFeatures, outputCount: hidden, weightInitializer: weights,
                      biasInitializer: .constant(0), generator: &generator)
        fc12 = Linear(inputCount: hidden, outputCount: hidden, weightInitializer: weights, biasInitializer: .constant(0), generator: &generator)
        fc13 = Linear(inputCount: hidden, outputCount: configuration.classCount, weightInitializer: weights,
                      biasInitializer: .constant(0), generator: &generator)
        dropouts = [Dropout(probability: configuration.dropoutProbability, generator: &generator),
                    Dropout(probability: configuration.dropoutProbability, generator: &generator)]
        classifier = Sequential(named: [
            ("fc11", fc11), ("relu11", ReLU()), ("dropout11", dropouts[0]),
            ("fc12", fc12), ("relu12", ReLU()), ("dropout12", dropouts[1]),
            ("fc13", fc13),
        ])
        super.init()
        blocks[0].convolution.computesInputGradient = false
    }

    /// Whether ``backward(_:)`` computes the gradient with respect to the input audio (false by
    /// default: training does not need it).
    public var computesInputGradient: Bool {
        get { blocks[0].convolution.computesInputGradient }
        set { blocks[0].convolution.computesInputGradient = newValue }
    }

    /// The blocks in forward order; the empty names keep the layers' keys as in the interchange convention.
    public var layers: [(name: String, layer: any Layer)] {
        [("", blocks[0]), ("", blocks[1]), ("swap", swap)] + blocks[2...].map { ("", $0 as any Layer) }
            + [("flatten", flatten), ("", classifier)]
    }

    public override var children: [(name: String, module: Module)] { layers.map { ($0.name, $0.layer) } }

    public override var layerDescription: String { "EnvNetV2()" }

    /// The layers' names in forward order: `conv1`, `bn1`, `conv2`, `bn2`, `pool2`, … `fc13`.
    public var layerNames: [String] { namedLeaves().map(\.key) }

    /// Logits for a batch of windows. `[N, 1, 1, 66650] -> [N, classes]`
    public func forward(_ input: Tensor) -> Tensor {
        TensorError.check {
            guard input.rank == 4, input.shape[1] == 1, input.shape[2] == 1, input.shape[3] == EnvNetV2Configuration.inputLength else {
                throw LayerError.inputShape(layer: "EnvNetV2", expected: "[N, 1, 1, \(EnvNetV2Configuration.inputLength)]", actual: input.shape)
            }
        }
        return forwardLayers(input)
    }

    /// `[N, classes] -> [N, 1, 1, 66650]` (zeros: the gradient with respect to the audio is not computed)
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        backwardLayers(gradientOutput)
    }
}
