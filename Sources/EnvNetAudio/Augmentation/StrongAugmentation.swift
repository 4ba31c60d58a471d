import EnvNetTensor
import Foundation

/// Stretches or compresses a sound in time by linear interpolation (pitch changes with it).
///
/// Output sample `i` is read at input position `i / scale`, interpolating linearly between
/// the two neighbouring samples (the last sample is repeated at the end), as in the reference.
///
/// - Parameters:
///   - samples: The sound.
///   - scale: Length factor, positive: 1.25 makes the sound 25 % longer (and lower).
/// - Returns: `Int(samples.count * scale)` samples.
public func timeScaled(_ samples: [Float], by scale: Double) -> [Float] {
    precondition(scale > 0, "time scale must be positive")
    guard !samples.isEmpty else { return [] }
    let outputCount = Int(Double(samples.count) * scale)
    let last = samples.count - 1
    // One pass over raw buffers: this runs twice per training example with BC learning.
    return [Float](unsafeUninitializedCapacity: outputCount) { output, initialized in
        samples.withUnsafeBufferPointer { source in
            for index in 0..<outputCount {
                let position = Double(index) / scale
                let lower = min(Int(position), last)
                let upper = min(lower + 1, last)
                let fraction = Float(position - Double(lower))
                output[index] = source[lower] * (1 - fraction) + source[upper] * fraction
            }
        }
        initialized = outputCount
    }
}

/// Multiplies a sound by a gain given in dB.
///
/// - Parameters:
///   - samples: The sound.
///   - decibels: The gain in dB.
/// - Returns: `samples * 10^(decibels / 20)`.
public func amplified(_ samples: [Float], byDecibels decibels: Double) -> [Float] {
    let factor = Float(pow(10, decibels / 20))
    return samples.map { $0 * factor }
}

/// The "strong" data augmentation of EnvNet-v2 + BC learning: a random time scale of
/// `maximumScale^U(-1, 1)` and a random gain of `U(-maximumGain, +maximumGain)` dB.
public struct StrongAugmentation: Sendable, Hashable {
    /// The largest time-scale factor (1.25); its inverse is the smallest.
    public var maximumScale: Double
    /// The largest gain change in dB (6).
    public var maximumGain: Double

    /// Creates the augmentation.
    ///
    /// - Parameters:
    ///   - maximumScale: The largest time-scale factor, at least 1.
    ///   - maximumGain: The largest gain change in dB, non-negative.
    public init(maximumScale: Double = 1.25, maximumGain: Double = 6) {
        self.maximumScale = maximumScale
        self.maximumGain = maximumGain
    }

    /// Applies a random time scale, then a random gain.
    ///
    /// Crop the result afterwards: its length changes with the drawn scale.
    ///
    /// - Parameters:
    ///   - samples: The sound.
    ///   - generator: The source of randomness.
    /// - Returns: The augmented sound.
    public func apply(
        to samples: [Float], using generator: inout some RandomNumberGenerator
    ) -> [Float] {
        let scale = pow(maximumScale, generator.nextDouble(in: -1...1))
        let gain = generator.nextDouble(in: -maximumGain...maximumGain)
        return amplified(timeScaled(samples, by: scale), byDecibels: gain)
    }
}
