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
    public var generator: SeededGenerator

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
        for index in 0..<input.count {
            let keep = generator.nextUnitDouble() >= threshold
            let factor: Float = keep ? keepScale : 0
            m[index] = factor
            y[index] = x[index] * factor
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
