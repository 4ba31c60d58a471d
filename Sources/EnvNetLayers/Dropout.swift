import Foundation

/// Inverted dropout (PyTorch's `Dropout`): in training mode each element is zeroed with probability
/// `probability` and the survivors are scaled by `1 / (1 − probability)`, so the expected value is
/// unchanged; in evaluation mode the layer is the identity (the input is returned as is).
///
/// The mask is drawn from the layer's own ``generator``, so a run is reproducible from the seed and
/// the generator can be saved with a checkpoint. Any shape; the output has the input's shape.
public final class Dropout: Module, Layer {
    /// The probability of zeroing an element, in `[0, 1]`.
    public let probability: Float
    /// The source of the masks; its state advances with every training-mode forward pass.
    /// Not used while ``sampleStreams`` is set.
    public var generator: SeededGenerator

    /// Where each sample's mask comes from when it must not depend on the batch around it.
    public struct SampleStreams: Sendable, Equatable {
        /// The seed of every sample's generator.
        public var seed: UInt64
        /// The stream of the batch's first sample; sample `n` of the batch uses `stream + n`.
        public var firstStream: UInt64

        /// - Parameters:
        ///   - seed: The seed of every sample's generator.
        ///   - firstStream: The stream of the batch's first sample.
        public init(seed: UInt64, firstStream: UInt64) {
            self.seed = seed
            self.firstStream = firstStream
        }
    }

    /// Per-sample masks: when set, row `n` of a batch (axis 0) draws its mask from
    /// `SeededGenerator(seed: seed, stream: firstStream + n)`. A trainer keys the streams by the
    /// sample's position in the global batch, so a sample gets the same mask whether the batch is
    /// trained whole or split over processes. Nil (the default) draws from ``generator`` in order.
    public var sampleStreams: SampleStreams?

    private var output = Tensor.zeros([0])
    private var gradientInput = Tensor.zeros([0])
    private var mask = Tensor.zeros([0])
    private var hasForward = false

    /// - Parameters:
    ///   - probability: the probability of zeroing an element (PyTorch's default 0.5).
    ///   - seed: the seed of the mask generator.
    public init(probability: Float = 0.5, seed: UInt64) {
        precondition(probability >= 0 && probability <= 1, "Dropout: probability must be in [0, 1], got \(probability)")
        self.probability = probability
        generator = SeededGenerator(seed: seed)
        super.init()
    }

    /// - Parameters:
    ///   - probability: the probability of zeroing an element (PyTorch's default 0.5).
    ///   - generator: the source of the mask generator's seed (one draw).
    public convenience init(probability: Float = 0.5, generator: inout SeededGenerator) {
        self.init(probability: probability, seed: generator.next())
    }

    /// The layer in one line, with its configuration.
    public override var layerDescription: String { "Dropout(probability: \(probability))" }

    /// The output has the shape of the input.
    /// - Parameter inputShape: the shape of an input batch.
    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] { inputShape }

    /// Training: `x · mask` with `mask ∈ {0, 1/(1−p)}`; evaluation: `x`. Same shape in and out.
    /// - Parameter input: any tensor.
    public func forward(_ input: Tensor) -> Tensor {
        guard isTraining else {
            hasForward = false
            return input
        }
        let input = input.contiguous()
        prepare(&output, shape: input.shape)
        prepare(&mask, shape: input.shape)
        let x = input.readPointer, y = output.writePointer, m = mask.writePointer
        let keepScale: Float = probability < 1 ? 1 / (1 - probability) : 0
        // Compare 53-bit uniforms with p, as a Bernoulli(1 − p) keep decision per element.
        let threshold = Double(probability)
        func fill(_ range: Range<Int>, from generator: inout SeededGenerator) {
            for index in range {
                let keep = generator.nextUnitDouble() >= threshold
                let factor: Float = keep ? keepScale : 0
                m[index] = factor
                y[index] = x[index] * factor
            }
        }
        if let streams = sampleStreams, input.rank >= 1, input.shape[0] > 0 {
            let rows = input.shape[0], perRow = input.count / rows
            for row in 0..<rows {
                var rowGenerator = SeededGenerator(seed: streams.seed, stream: streams.firstStream &+ UInt64(row))
                fill(row * perRow..<(row + 1) * perRow, from: &rowGenerator)
            }
        } else {
            fill(0..<input.count, from: &generator)
        }
        withExtendedLifetime(input) {}
        hasForward = true
        return output
    }

    /// `dy · mask` for the mask of the last training-mode forward pass. Same shape in and out.
    /// - Parameter gradientOutput: the gradient with respect to the last training-mode output.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard hasForward else { missingCache() }
        hasForward = false
        precondition(gradientOutput.shape == mask.shape,
                     "\(layerDescription).backward: expected output gradient \(shapeText(mask.shape)), got \(shapeText(gradientOutput.shape))")
        let gradientOutput = gradientOutput.contiguous()
        prepare(&gradientInput, shape: mask.shape)
        let dy = gradientOutput.readPointer, m = mask.readPointer, dx = gradientInput.writePointer
        forEachBlock(count: mask.count) { range in
            for index in range { dx[index] = dy[index] * m[index] }
        }
        withExtendedLifetime(gradientOutput) {}
        return gradientInput
    }
}

/// A layer whose training-mode randomness can be drawn per sample from keyed streams (dropout,
/// spectrogram masks), so that a trainer can make each sample's draw independent of its batch.
public protocol SampleKeyedRandomness: AnyObject {
    /// Per-sample streams: row `n` of a batch draws from `SeededGenerator(seed: seed,
    /// stream: firstStream + n)`; nil draws from the layer's own generator in order.
    var sampleStreams: Dropout.SampleStreams? { get set }
}

extension Dropout: SampleKeyedRandomness {}
