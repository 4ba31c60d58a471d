import Foundation

/// How a parameter tensor is filled when a layer is created or reset.
///
/// Fans follow PyTorch: for a weight `[out, in, k...]`, fan-in is `in · ∏k` and fan-out `out · ∏k`.
/// A bias uses the fans of its layer's weight.
public enum Initializer: Sendable, Equatable, CustomStringConvertible {
    /// He (Kaiming) normal on fan-in with gain √2: `N(0, 2 / fanIn)`.
    case heNormal
    /// He (Kaiming) uniform on fan-in with gain √2: `U(−√(6 / fanIn), √(6 / fanIn))`.
    case heUniform
    /// Xavier (Glorot) normal: `N(0, 2 / (fanIn + fanOut))`.
    case xavierNormal
    /// Xavier (Glorot) uniform: `U(−√(6 / (fanIn + fanOut)), √(6 / (fanIn + fanOut)))`.
    case xavierUniform
    /// PyTorch's default for `Conv` and `Linear` weights and biases (`kaiming_uniform_` with a = √5):
    /// `U(−1/√fanIn, 1/√fanIn)`.
    case pytorchDefault
    /// Every element equal to the value.
    case constant(Float)
    /// `N(mean, standardDeviation²)`.
    case normal(mean: Float, standardDeviation: Float)
    /// `U(lowerBound, upperBound)`.
    case uniform(lowerBound: Float, upperBound: Float)

    /// The fans of a weight of `shape` (`[out, in, k...]`), as PyTorch's `_calculate_fan_in_and_fan_out`.
    /// A rank-1 shape counts as `[out]` with fan-in 1.
    public static func fans(forWeightShape shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        guard shape.count >= 2 else { return (1, shape.first ?? 1) }
        let receptive = shape.dropFirst(2).reduce(1, *)
        return (shape[1] * receptive, shape[0] * receptive)
    }

    /// A tensor of `shape` filled by this rule.
    /// - Parameters:
    ///   - shape: the parameter's shape.
    ///   - fans: fan-in and fan-out to use; defaults to ``fans(forWeightShape:)`` of `shape`
    ///     (pass the weight's fans for a bias).
    ///   - generator: the source of randomness.
    public func makeTensor(shape: [Int], fans: (fanIn: Int, fanOut: Int)? = nil, generator: inout SeededGenerator) -> Tensor {
        let (fanIn, fanOut) = fans ?? Initializer.fans(forWeightShape: shape)
        let fanInF = Float(Swift.max(fanIn, 1)), fanSum = Float(Swift.max(fanIn + fanOut, 1))
        switch self {
        case .heNormal:
            return Tensor.normal(shape, mean: 0, standardDeviation: (2 / fanInF).squareRoot(), generator: &generator)
        case .heUniform:
            let bound = (6 / fanInF).squareRoot()
            return Tensor.uniform(shape, in: -bound..<bound, generator: &generator)
        case .xavierNormal:
            return Tensor.normal(shape, mean: 0, standardDeviation: (2 / fanSum).squareRoot(), generator: &generator)
        case .xavierUniform:
            let bound = (6 / fanSum).squareRoot()
            return Tensor.uniform(shape, in: -bound..<bound, generator: &generator)
        case .pytorchDefault:
            let bound = 1 / fanInF.squareRoot()
            return Tensor.uniform(shape, in: -bound..<bound, generator: &generator)
        case let .constant(value):
            // Constant zeros are placeholders or biases: fresh pages that cost nothing until written.
            return value == 0 ? Tensor.zerosMappedOnFirstWrite(shape) : Tensor.filled(value, shape: shape)
        case let .normal(mean, standardDeviation):
            return Tensor.normal(shape, mean: mean, standardDeviation: standardDeviation, generator: &generator)
        case let .uniform(lowerBound, upperBound):
            return lowerBound < upperBound
                ? Tensor.uniform(shape, in: lowerBound..<upperBound, generator: &generator)
                : Tensor.filled(lowerBound, shape: shape)
        }
    }

    /// A readable one-line form.
    public var description: String {
        switch self {
        case .heNormal: return "heNormal"
        case .heUniform: return "heUniform"
        case .xavierNormal: return "xavierNormal"
        case .xavierUniform: return "xavierUniform"
        case .pytorchDefault: return "pytorchDefault"
        case let .constant(value): return "constant(\(value))"
        case let .normal(mean, standardDeviation): return "normal(\(mean), \(standardDeviation))"
        case let .uniform(lowerBound, upperBound): return "uniform(\(lowerBound), \(upperBound))"
        }
    }
}
