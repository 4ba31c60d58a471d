import Foundation

/// A fast, seedable random number generator (xoshiro256**, seeded through SplitMix64).
///
/// Pure integer arithmetic: the same seed gives the same sequence on every machine and platform,
/// which `SystemRandomNumberGenerator` cannot. Conversions to floating point below use only
/// IEEE operations that are exactly rounded, plus `log`, `sin` and `cos` for normal draws.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Hashable, Codable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) {
        var splitMix = seed
        func next() -> UInt64 {
            splitMix &+= 0x9E37_79B9_7F4A_7C15
            var z = splitMix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (next(), next(), next(), next())
    }

    /// An independent generator for sub-stream `stream` of `seed` (for example one per clip), so
    /// parallel work draws the same numbers whatever the order it runs in.
    public init(seed: UInt64, stream: UInt64) {
        var mixer = stream &* 0x9E37_79B9_7F4A_7C15 ^ 0xD1B5_4A32_D192_ED03
        mixer &+= 0x9E37_79B9_7F4A_7C15
        var z = mixer
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        self.init(seed: seed ^ (z ^ (z >> 31)))
    }

    /// The generator's full state, for saving and restoring (for example in a checkpoint).
    public var stateWords: [UInt64] {
        get { [state.0, state.1, state.2, state.3] }
        set {
            precondition(newValue.count == 4, "SeededGenerator state has 4 words")
            state = (newValue[0], newValue[1], newValue[2], newValue[3])
        }
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = (state.3 << 45) | (state.3 >> 19)
        return result
    }

    /// A uniform value in `range` (half-open).
    public mutating func nextUniform(in range: Range<Float>) -> Float {
        let value = Float(Double(range.lowerBound) + nextUnitDouble() * Double(range.upperBound - range.lowerBound))
        return value < range.upperBound ? value : range.lowerBound
    }

    /// A standard normal value (Box–Muller; the second value of each pair is discarded for simplicity of state).
    public mutating func nextNormal(mean: Double = 0, standardDeviation: Double = 1) -> Double {
        mean + standardDeviation * nextGaussian()
    }

    public static func == (lhs: SeededGenerator, rhs: SeededGenerator) -> Bool { lhs.stateWords == rhs.stateWords }

    public func hash(into hasher: inout Hasher) { hasher.combine(stateWords) }

    public init(from decoder: Decoder) throws {
        let words = try [UInt64](from: decoder)
        guard words.count == 4 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "SeededGenerator needs 4 state words, got \(words.count)"))
        }
        state = (words[0], words[1], words[2], words[3])
    }

    public func encode(to encoder: Encoder) throws {
        try stateWords.encode(to: encoder)
    }
}

extension RandomNumberGenerator {
    /// A uniform value in [0, 1) with 53 random bits.
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A uniform value in `range`.
    public mutating func nextDouble(in range: ClosedRange<Double>) -> Double {
        range.lowerBound + nextUnitDouble() * (range.upperBound - range.lowerBound)
    }

    /// A uniform integer in `0..<upperBound` without modulo bias (Lemire's method).
    public mutating func nextInt(below upperBound: Int) -> Int {
        precondition(upperBound > 0, "nextInt(below:): upper bound must be positive, got \(upperBound)")
        let bound = UInt64(upperBound)
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return Int(product.high)
    }

    /// A standard normal value (Box–Muller).
    public mutating func nextGaussian() -> Double {
        let u1 = 1.0 - nextUnitDouble()  // (0, 1]: the logarithm stays finite
        let u2 = nextUnitDouble()
        return (-2.0 * Foundation.log(u1)).squareRoot() * Foundation.cos(2.0 * Double.pi * u2)
    }
}

extension Tensor {
    /// Values drawn uniformly from `range` (half-open).
    public static func uniform(_ shape: [Int], in range: Range<Float> = 0..<1, generator: inout SeededGenerator) -> Tensor {
        TensorError.check { try Shape.validate(shape, operation: "Tensor.uniform") }
        var result = Tensor(uninitializedShape: shape)
        let pointer = result.storage.baseAddress
        for index in 0..<result.count { pointer[index] = generator.nextUniform(in: range) }
        result.makeContiguousAndUnique()
        return result
    }

    /// Values drawn from a normal distribution.
    public static func normal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1, generator: inout SeededGenerator) -> Tensor {
        TensorError.check { try Shape.validate(shape, operation: "Tensor.normal") }
        var result = Tensor(uninitializedShape: shape)
        let pointer = result.storage.baseAddress
        for index in 0..<result.count {
            pointer[index] = Float(generator.nextNormal(mean: Double(mean), standardDeviation: Double(standardDeviation)))
        }
        result.makeContiguousAndUnique()
        return result
    }
}
