import Foundation
import Testing
@testable import EnvNetLayers

/// A fixture written by `Tools/make_layer_fixtures.py`.
struct Fixture {
    var tensors: [String: Tensor]
    var params: [String: Any]

    subscript(_ name: String) -> Tensor {
        guard let tensor = tensors[name] else { fatalError("fixture has no tensor \(name); it has \(tensors.keys.sorted())") }
        return tensor
    }

    func ints(_ name: String) -> [Int] { (params[name] as? [Any] ?? []).map { ($0 as! NSNumber).intValue } }
    func doubles(_ name: String) -> [Double] { (params[name] as? [Any] ?? []).map { ($0 as! NSNumber).doubleValue } }
    func bool(_ name: String) -> Bool { (params[name] as? NSNumber)?.boolValue ?? false }

    static func load(_ name: String) throws -> Fixture {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
                               "missing fixture \(name).json; run python3 Tools/make_layer_fixtures.py")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        let root = try #require(object as? [String: Any])
        let stored = try #require(root["tensors"] as? [String: Any])
        var tensors: [String: Tensor] = [:]
        for (key, value) in stored {
            let entry = try #require(value as? [String: Any])
            let shape = try #require(entry["shape"] as? [Any]).map { ($0 as! NSNumber).intValue }
            let data = try #require(entry["data"] as? [Any]).map { Float(($0 as! NSNumber).doubleValue) }
            tensors[key] = try Tensor(validating: data, shape: shape)
        }
        return Fixture(tensors: tensors, params: root["params"] as? [String: Any] ?? [:])
    }
}

/// The fixture tolerance: |a − b| ≤ relative · max(|b|, floor · max|b over the tensor|, absoluteFloor).
/// With the defaults, 1e-4 relative to each reference value, but never tighter than 1e-4 of 1 % of
/// the tensor's largest magnitude (values that cancel to near zero carry the rounding of their terms).
func expectClose(
    _ actual: Tensor, _ expected: Tensor, relative: Float = 1e-4, floor: Float = 1e-2, absoluteFloor: Float = 1e-6,
    _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.shape == expected.shape, "\(what): shape \(actual.shape) vs \(expected.shape)", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return }
    let a = actual.scalars, b = expected.scalars
    let scale = b.map(abs).max() ?? 0
    var worst: (index: Int, excess: Float)? = nil
    for index in b.indices {
        let allowed = relative * max(abs(b[index]), floor * scale, absoluteFloor)
        let error = abs(a[index] - b[index])
        if !(error <= allowed) {
            let excess = error / allowed
            if worst == nil || excess > worst!.excess || excess.isNaN { worst = (index, excess) }
        }
    }
    #expect(worst == nil, "\(what): element \(worst?.index ?? -1) is \(worst.map { a[$0.index] } ?? 0), expected \(worst.map { b[$0.index] } ?? 0) (\(worst?.excess ?? 0)x the tolerance)",
            sourceLocation: sourceLocation)
}

/// Σ output · weights in Double.
func weightedSum(_ output: Tensor, _ weights: Tensor) -> Double {
    zip(output.scalars, weights.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}

/// Checks a module's backward pass against central finite differences of the scalar loss
/// `Σ forward(x) · upstream` (upstream random), for the input and every parameter.
///
/// At most `samples` elements of each tensor are perturbed (evenly spread). Passes when
/// |analytic − numeric| ≤ tolerance · max(|numeric|, 0.1).
func checkGradients(
    _ module: any Layer, input: Tensor, epsilon: Float = 1e-2, tolerance: Double = 1e-2, samples: Int = 16, seed: UInt64 = 7,
    beforeForward: () -> Void = {}, sourceLocation: SourceLocation = #_sourceLocation
) {
    module.train()
    var generator = SeededGenerator(seed: seed)
    beforeForward()
    let probe = module(input)
    let upstream = Tensor.normal(probe.shape, generator: &generator)
    _ = module.backward(upstream)  // consume the probe's cache

    module.zeroGradients()
    beforeForward()
    _ = module(input)
    let inputGradient = module.backward(upstream).contiguousCopy()
    let parameterGradients = module.namedParameters().map { ($0.key, $0.parameter, $0.parameter.gradient.contiguousCopy()) }

    func loss(_ x: Tensor) -> Double {
        beforeForward()
        let output = module(x)
        let value = weightedSum(output, upstream)
        _ = module.backward(upstream)  // keep caches from piling up
        return value
    }
    func indices(_ count: Int) -> [Int] {
        count <= samples ? Array(0..<count) : (0..<samples).map { $0 * count / samples + ($0 * 7) % max(count / samples, 1) }
    }
    func compare(_ analytic: Float, _ numeric: Double, _ what: String) {
        let error = abs(Double(analytic) - numeric)
        #expect(error <= tolerance * max(abs(numeric), 0.1), "\(module.layerDescription) \(what): analytic \(analytic), numeric \(numeric)",
                sourceLocation: sourceLocation)
    }

    let flatInput = input.contiguousCopy()
    for index in indices(flatInput.count) {
        var plus = flatInput.reshaped([-1]), minus = flatInput.reshaped([-1])
        plus[index] += epsilon
        minus[index] -= epsilon
        let numeric = (loss(plus.reshaped(input.shape)) - loss(minus.reshaped(input.shape))) / Double(2 * epsilon)
        compare(inputGradient.reshaped([-1])[index], numeric, "input[\(index)]")
    }
    for (key, parameter, gradient) in parameterGradients {
        let original = parameter.value
        for index in indices(original.count) {
            var plus = original.reshaped([-1]), minus = original.reshaped([-1])
            plus[index] += epsilon
            minus[index] -= epsilon
            parameter.value = plus.reshaped(original.shape)
            let up = loss(input)
            parameter.value = minus.reshaped(original.shape)
            let down = loss(input)
            parameter.value = original
            compare(gradient.reshaped([-1])[index], (up - down) / Double(2 * epsilon), "\(key)[\(index)]")
        }
    }
}

/// Distinct values spaced by at least `spacing`, shuffled, in `shape` (no ties, no kinks near zero
/// closer than `spacing / 2`).
func spacedValues(_ shape: [Int], spacing: Float = 0.1, seed: UInt64) -> Tensor {
    let count = shape.reduce(1, *)
    var generator = SeededGenerator(seed: seed)
    var values = (0..<count).map { (Float($0) - Float(count) / 2 + 0.5) * spacing }
    values.shuffle(using: &generator)
    return Tensor(values, shape: shape)
}

// Layers built by the tests draw their weights from a generator seeded here (0 unless a test
// passes a seed), so every test's weights are reproducible and no test depends on another's draws.
extension Conv2d {
    convenience init(inputChannels: Int, outputChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                     padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), bias: Bool = true,
                     weightInitializer: Initializer = .pytorchDefault, seed: UInt64 = 0) {
        var generator = SeededGenerator(seed: seed)
        self.init(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernelSize, stride: stride, padding: padding,
                  dilation: dilation, bias: bias, weightInitializer: weightInitializer, generator: &generator)
    }

    convenience init(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
                     bias: Bool = true, seed: UInt64 = 0) {
        var generator = SeededGenerator(seed: seed)
        self.init(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernelSize, stride: stride, padding: padding,
                  dilation: dilation, bias: bias, generator: &generator)
    }
}

extension Conv1d {
    convenience init(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
                     bias: Bool = true, seed: UInt64 = 0) {
        var generator = SeededGenerator(seed: seed)
        self.init(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernelSize, stride: stride, padding: padding,
                  dilation: dilation, bias: bias, generator: &generator)
    }
}

extension Linear {
    convenience init(_ inputCount: Int, _ outputCount: Int, bias: Bool = true, weightInitializer: Initializer = .pytorchDefault, seed: UInt64 = 0) {
        var generator = SeededGenerator(seed: seed)
        self.init(inputCount: inputCount, outputCount: outputCount, bias: bias, weightInitializer: weightInitializer, generator: &generator)
    }

    convenience init(inputCount: Int, outputCount: Int, seed: UInt64 = 0) {
        var generator = SeededGenerator(seed: seed)
        self.init(inputCount: inputCount, outputCount: outputCount, generator: &generator)
    }
}

extension Dropout {
    convenience init(probability: Float = 0.5) { self.init(probability: probability, seed: 0) }
}
