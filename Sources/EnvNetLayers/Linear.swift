import Foundation

/// A fully connected layer, `y = x · weightᵀ + bias` (PyTorch's `Linear`), on the last axis.
///
/// Parameters: `weight` `[outputCount, inputCount]` (PyTorch's layout) and, when enabled, `bias`
/// `[outputCount]`. The products run through `parallelGemm` (EnvNetTensor) in the precision of
/// ``ExecutionOptions/matrixPrecision``: fp32 with the weight read transposed in place (no copy),
/// or bf16 operands with fp32 sums.
///
/// `[N, in] -> [N, out]` (any leading axes: `[..., in] -> [..., out]`)
public final class Linear: Module, Layer {
    /// Features per input row.
    public let inputCount: Int
    /// Features per output row.
    public let outputCount: Int
    /// The weight `[out, in]`.
    public let weight: Parameter
    /// The bias `[out]`, or nil.
    public let bias: Parameter?
    /// How ``weight`` is initialised.
    public let weightInitializer: Initializer
    /// How ``bias`` is initialised.
    public let biasInitializer: Initializer

    private var output = Tensor.zeros([0])
    private var gradientInput = Tensor.zeros([0])
    private var transposedOutput = Tensor.zeros([0])
    private var cachedInput: Tensor?

    /// Creates a fully connected layer, drawing its parameters from `generator`.
    /// - Parameters:
    ///   - inputCount: features per input row.
    ///   - outputCount: features per output row.
    ///   - bias: whether the layer adds a learned offset.
    ///   - weightInitializer: how the weight is drawn (PyTorch's default unless given).
    ///   - biasInitializer: how the bias is drawn (PyTorch's default unless given), using the weight's fans.
    ///   - generator: the source of the initial parameters (weight first, then bias).
    public init(
        inputCount: Int, outputCount: Int, bias: Bool = true,
        weightInitializer: Initializer = .pytorchDefault, biasInitializer: Initializer = .pytorchDefault,
        generator: inout SeededGenerator
    ) {
        precondition(inputCount > 0 && outputCount > 0, "Linear: feature counts must be positive, got \(inputCount) -> \(outputCount)")
        self.inputCount = inputCount
        self.outputCount = outputCount
        self.weightInitializer = weightInitializer
        self.biasInitializer = biasInitializer
        let weightShape = [outputCount, inputCount]
        let fans = Initializer.fans(forWeightShape: weightShape)
        weight = Parameter(weightInitializer.makeTensor(shape: weightShape, fans: fans, generator: &generator))
        self.bias = bias ? Parameter(biasInitializer.makeTensor(shape: [outputCount], fans: fans, generator: &generator)) : nil
        super.init()
    }

    private func resetOwnParameters(generator: inout SeededGenerator) {
        let fans = Initializer.fans(forWeightShape: weight.shape)
        weight.value = weightInitializer.makeTensor(shape: weight.shape, fans: fans, generator: &generator)
        bias?.value = biasInitializer.makeTensor(shape: [outputCount], fans: fans, generator: &generator)
    }

    /// Re-draws the weight and bias from `generator`.
    /// - Parameter generator: the source of randomness.
    public override func resetParameters(generator: inout SeededGenerator) {
        resetOwnParameters(generator: &generator)
        super.resetParameters(generator: &generator)
    }

    /// `weight` and, when present, `bias`.
    public override var localParameters: [(name: String, parameter: Parameter)] {
        bias.map { [("weight", weight), ("bias", $0)] } ?? [("weight", weight)]
    }

    /// The layer in one line, with its configuration.
    public override var layerDescription: String {
        "Linear(inputCount: \(inputCount), outputCount: \(outputCount)\(bias == nil ? ", bias: false" : ""))"
    }

    /// `[..., in] -> [..., out]`.
    /// - Parameter inputShape: the shape of an input batch.
    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        guard inputShape.count >= 1, inputShape.last == inputCount else {
            throw LayerError.inputShape(layer: layerDescription, expected: "[N, \(inputCount)]", actual: inputShape)
        }
        return Array(inputShape.dropLast()) + [outputCount]
    }

    /// The weight in bf16, packed for ``BFloat16Matmul``, and the weight version it was packed from.
    private var packedWeight: (version: UInt64, matrix: PackedBFloat16Matrix)?

    /// Whether the evaluation-mode bf16 packing of the weight is held (for the tests).
    package var holdsPackedWeight: Bool { packedWeight != nil }

    /// Training changes the weight at every step, so the evaluation packing would be stale after
    /// the first one and meanwhile hold 2 bytes per weight (96 MB for EnvNet's fc5 and fc6, through
    /// every epoch that follows a validation pass).
    public override func trainingModeDidChange() {
        if isTraining { packedWeight = nil }
    }

    /// The packed bf16 weight when evaluation-mode products run in bf16 on this CPU, repacked only
    /// when the weight changed (in training it changes every step, and is packed by the product).
    private func bfloat16Weight() -> PackedBFloat16Matrix? {
        guard !isTraining, ExecutionOptions.current.matrixPrecision == .bfloat16 else { return nil }
        if let packedWeight, packedWeight.version == weight.version { return packedWeight.matrix }
        guard let matrix = PackedBFloat16Matrix(transposing: weight.value) else { return nil }
        packedWeight = (weight.version, matrix)
        return matrix
    }

    /// `x · weightᵀ + bias`. `[N, in] -> [N, out]`
    ///
    /// With ``ExecutionOptions/matrixPrecision`` bf16 the product has bf16 operands and fp32 sums;
    /// the bias is added in fp32.
    /// - Parameter input: a batch `[N, in]` (or `[..., in]`).
    public func forward(_ input: Tensor) -> Tensor {
        checkInput(input.shape)
        let input = input.contiguous()
        let rows = input.count / inputCount
        if rows > 0, let packed = bfloat16Weight() {
            let product = BFloat16Matmul.multiply(input.reshaped([rows, inputCount]), packed)
            if let biasValue = bias?.value.contiguous() { addBias(biasValue, to: product.writePointer, rows: rows) }
            cachedInput = nil
            return product.reshaped(Array(input.shape.dropLast()) + [outputCount])
        }
        prepare(&output, shape: Array(input.shape.dropLast()) + [outputCount])
        let weightValue = weight.value.contiguous(), biasValue = bias?.value.contiguous()
        let y = output.writePointer
        let precision = ExecutionOptions.current.matrixPrecision
        if rows > 0 && precision == .bfloat16 {
            // In bf16 as yᵀ = weight · xᵀ: the weight, new at every step, is then packed as rows
            // (contiguous and vectorised) rather than as transposed panels.
            // [out, in] x [rows, in]ᵀ -> [out, rows]
            prepare(&transposedOutput, shape: [outputCount, rows])
            let transposed = transposedOutput
            parallelGemm(precision: precision, transposeA: false, transposeB: true, m: outputCount, n: rows, k: inputCount,
                         a: weightValue.readPointer, lda: inputCount, b: input.readPointer, ldb: inputCount,
                         c: transposed.writePointer, ldc: rows)
            let t = transposed.readPointer
            for row in 0..<rows {
                for column in 0..<outputCount { y[row * outputCount + column] = t[column * rows + row] }
            }
            withExtendedLifetime(transposed) {}
        } else if rows > 0 {
            // [rows, in] x [out, in]ᵀ -> [rows, out]
            parallelSgemm(transposeA: false, transposeB: true, m: rows, n: outputCount, k: inputCount,
                          a: input.readPointer, lda: inputCount, b: weightValue.readPointer, ldb: inputCount,
                          beta: 0, c: y, ldc: outputCount)
        }
        if rows > 0, let biasValue { addBias(biasValue, to: y, rows: rows) }
        withExtendedLifetime((input, weightValue, biasValue)) {}
        cachedInput = isTraining ? input : nil
        return output
    }

    /// Adds the bias (fp32, whatever the product's precision) to each of `rows` output rows.
    private func addBias(_ bias: Tensor, to y: UnsafeMutablePointer<Float>, rows: Int) {
        let b = bias.readPointer, columns = outputCount
        for row in 0..<rows {
            let line = y + row * columns
            for column in 0..<columns { line[column] += b[column] }
        }
        withExtendedLifetime(bias) {}
    }

    /// Adds `dyᵀ · x` to the weight gradient and `Σ dy` to the bias gradient; returns `dy · weight`.
    /// `[N, out] -> [N, in]`
    /// - Parameter gradientOutput: the gradient with respect to the last training-mode output.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard let input = cachedInput else { missingCache() }
        cachedInput = nil
        let expected = Array(input.shape.dropLast()) + [outputCount]
        precondition(gradientOutput.shape == expected,
                     "\(layerDescription).backward: expected output gradient \(shapeText(expected)), got \(shapeText(gradientOutput.shape))")
        let gradientOutput = gradientOutput.contiguous()
        let rows = input.count / inputCount
        prepare(&gradientInput, shape: input.shape)
        let weightValue = weight.value.contiguous()
        weight.gradient.makeContiguousAndUnique()
        bias?.gradient.makeContiguousAndUnique()
        let dy = gradientOutput.readPointer, x = input.readPointer
        let precision = ExecutionOptions.current.matrixPrecision
        if rows > 0 {
            // [rows, out] x [out, in] -> [rows, in]
            parallelGemm(precision: precision, transposeA: false, transposeB: false, m: rows, n: inputCount, k: outputCount,
                         a: dy, lda: outputCount, b: weightValue.readPointer, ldb: inputCount,
                         beta: 0, c: gradientInput.writePointer, ldc: inputCount)
            // [rows, out]ᵀ x [rows, in] -> [out, in], accumulated (the gradient itself stays fp32)
            parallelGemm(precision: precision, transposeA: true, transposeB: false, m: outputCount, n: inputCount, k: rows,
                         a: dy, lda: outputCount, b: x, ldb: inputCount,
                         beta: 1, c: weight.gradient.writePointer, ldc: inputCount)
            if let bias {
                let db = bias.gradient.writePointer, columns = outputCount
                for row in 0..<rows {
                    let line = dy + row * columns
                    for column in 0..<columns { db[column] += line[column] }
                }
            }
        } else {
            gradientInput.fill(with: 0)
        }
        withExtendedLifetime((input, gradientOutput, weightValue)) {}
        return gradientInput
    }
}
