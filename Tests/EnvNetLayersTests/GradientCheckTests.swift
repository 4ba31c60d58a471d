import Foundation
import Testing
@testable import EnvNetLayers

/// Central finite differences (in Double, on the Float32 layers) against every backward pass:
/// loss = Σ output · upstream, ε = 1e-2, |analytic − numeric| ≤ 1e-2 · max(|numeric|, 0.1).
@Suite("Finite-difference gradient checks")
struct GradientCheckTests {
    func randomInput(_ shape: [Int], seed: UInt64) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return Tensor.normal(shape, generator: &generator)
    }

    @Test("Conv1d: input, weight and bias gradients")
    func conv1d() {
        checkGradients(Conv1d(inputChannels: 2, outputChannels: 3, kernelSize: 3, stride: 2, padding: 1, dilation: 2),
                       input: randomInput([2, 2, 9], seed: 1))
        checkGradients(Conv1d(inputChannels: 2, outputChannels: 2, kernelSize: 2, bias: false), input: randomInput([1, 2, 5], seed: 2))
    }

    @Test("Conv2d: input, weight and bias gradients")
    func conv2d() {
        checkGradients(Conv2d(inputChannels: 2, outputChannels: 3, kernelSize: (2, 3), stride: (1, 2), padding: (1, 1), dilation: (2, 1)),
                       input: randomInput([2, 2, 5, 6], seed: 3))
        checkGradients(Conv2d(inputChannels: 1, outputChannels: 2, kernelSize: 2, bias: false), input: randomInput([1, 1, 4, 4], seed: 4))
    }

    @Test("BatchNorm1d ([N, C] and [N, C, L]) and BatchNorm2d in training mode")
    func batchNorm() {
        let layers: [(BatchNorm, [Int])] = [(BatchNorm1d(featureCount: 3), [5, 3]), (BatchNorm1d(featureCount: 2), [3, 2, 4]),
                                           (BatchNorm2d(featureCount: 2), [2, 2, 3, 3])]
        for (index, (layer, shape)) in layers.enumerated() {
            var generator = SeededGenerator(seed: 40 + UInt64(index))
            layer.weight!.value = Tensor.uniform([layer.featureCount], in: 0.5..<1.5, generator: &generator)
            layer.bias!.value = Tensor.normal([layer.featureCount], generator: &generator)
            checkGradients(layer, input: randomInput(shape, seed: 5 + UInt64(index)), epsilon: 5e-3)
        }
    }

    @Test("MaxPool1d and MaxPool2d (inputs spaced apart, so no ties)")
    func maxPool() {
        checkGradients(MaxPool1d(kernelSize: 3, stride: 2, padding: 1), input: spacedValues([2, 2, 9], seed: 6))
        checkGradients(MaxPool2d(kernelSize: (2, 3), stride: (1, 2), padding: (1, 1)), input: spacedValues([1, 2, 5, 6], seed: 7))
    }

    @Test("Linear (rank 2 and rank 3 input)")
    func linear() {
        checkGradients(Linear(4, 3), input: randomInput([5, 4], seed: 8))
        checkGradients(Linear(3, 2, bias: false), input: randomInput([2, 2, 3], seed: 9))
    }

    @Test("ReLU, Flatten and SwapAxes (contiguous view and copied)")
    func elementwiseAndShape() {
        checkGradients(ReLU(), input: spacedValues([3, 4], seed: 10))
        checkGradients(Flatten(), input: randomInput([2, 3, 2], seed: 11))
        checkGradients(SwapAxes(1, 2), input: randomInput([2, 3, 1, 4], seed: 12))
        checkGradients(SwapAxes(1, 3), input: randomInput([2, 3, 2, 4], seed: 13))
    }

    @Test("Dropout with a fixed mask")
    func dropout() {
        let layer = Dropout(probability: 0.4, seed: 99)
        let start = layer.generator
        checkGradients(layer, input: randomInput([4, 5], seed: 14), beforeForward: { layer.generator = start })
    }

    @Test("Sequential composition through BatchNorm")
    func sequential() {
        let model = Sequential(Linear(3, 4), BatchNorm1d(featureCount: 4), Linear(4, 2))
        // Weights from a generator of this test's own: the process-wide default generator is
        // shared with tests running concurrently, so the weights varied from run to run, and for
        // about 1 draw in 25 the central difference through BatchNorm's normalisation over 6 rows
        // (curvature, not a wrong gradient: the analytic side matches at other weights) missed
        // the 1e-2 tolerance.
        var generator = SeededGenerator(seed: 15)
        model.resetParameters(generator: &generator)
        checkGradients(model, input: randomInput([6, 3], seed: 15), epsilon: 5e-3)
    }

    @Test("Losses: hard-label cross-entropy and soft-target KL divergence")
    func losses() {
        var generator = SeededGenerator(seed: 16)
        let logits = Tensor.normal([3, 4], standardDeviation: 2, generator: &generator)
        let labels = [2, 0, 3]
        var targets = Tensor.zeros([3, 4])
        targets[0, 1] = 0.25; targets[0, 2] = 0.75; targets[1, 0] = 1; targets[2, 3] = 0.6; targets[2, 1] = 0.4
        let hard = Losses.softmaxCrossEntropy(logits: logits, labels: labels).gradient
        let soft = Losses.klDivergence(logits: logits, targets: targets).gradient
        let epsilon: Float = 1e-2
        for index in 0..<logits.count {
            var plus = logits.reshaped([-1]), minus = logits.reshaped([-1])
            plus[index] += epsilon
            minus[index] -= epsilon
            let (p, m) = (plus.reshaped([3, 4]), minus.reshaped([3, 4]))
            let hardNumeric = Double(Losses.softmaxCrossEntropy(logits: p, labels: labels).loss
                                     - Losses.softmaxCrossEntropy(logits: m, labels: labels).loss) / Double(2 * epsilon)
            let softNumeric = Double(Losses.klDivergence(logits: p, targets: targets).loss
                                     - Losses.klDivergence(logits: m, targets: targets).loss) / Double(2 * epsilon)
            let (hardAnalytic, softAnalytic) = (Double(hard.reshaped([-1])[index]), Double(soft.reshaped([-1])[index]))
            #expect(abs(hardAnalytic - hardNumeric) <= 1e-2 * max(abs(hardNumeric), 0.1), "hard [\(index)] \(hardAnalytic) vs \(hardNumeric)")
            #expect(abs(softAnalytic - softNumeric) <= 1e-2 * max(abs(softNumeric), 0.1), "soft [\(index)] \(softAnalytic) vs \(softNumeric)")
        }
    }

    @Test("A user-defined module and composition: a residual block with a custom scale layer")
    func customModule() {
        let block = Residual(Sequential(named: ["fc": Linear(3, 3), "scale": Scale(3)]))
        #expect(block.namedParameters().map(\.key) == ["body.fc.weight", "body.fc.bias", "body.scale.gamma"])
        checkGradients(block, input: randomInput([4, 3], seed: 17))
    }
}

/// A custom layer with its own parameter: y = x · γ (per feature, last axis).
final class Scale: Module, Layer {
    let gamma: Parameter
    private var input: Tensor?

    init(_ features: Int) {
        gamma = Parameter(Tensor.range(from: 1, to: Float(features) + 1).map { $0 * 0.5 })
        super.init()
    }

    override var localParameters: [(name: String, parameter: Parameter)] { [("gamma", gamma)] }
    func outputShape(forInputShape inputShape: [Int]) throws -> [Int] { inputShape }

    // [N, F] -> [N, F]
    func forward(_ input: Tensor) -> Tensor {
        if isTraining { self.input = input }
        return input * gamma.value
    }

    // [N, F] -> [N, F]
    func backward(_ gradientOutput: Tensor) -> Tensor {
        guard let input else { fatalError("Scale.backward without forward") }
        self.input = nil
        gamma.gradient += (gradientOutput * input).sum(alongAxes: [0])
        return gradientOutput * gamma.value
    }
}

/// A custom composition: y = body(x) + x.
final class Residual: Module, Layer {
    let body: any Layer
    init(_ body: any Layer) {
        self.body = body
        super.init()
    }

    override var children: [(name: String, module: Module)] { [("body", body)] }
    func outputShape(forInputShape inputShape: [Int]) throws -> [Int] { try body.outputShape(forInputShape: inputShape) }

    // [N, F] -> [N, F]
    func forward(_ input: Tensor) -> Tensor { body(input) + input }

    // [N, F] -> [N, F]: the gradient flows through the body and around it.
    func backward(_ gradientOutput: Tensor) -> Tensor { body.backward(gradientOutput) + gradientOutput }
}
