import EnvNetTensor
import Foundation

/// Between-class (BC) learning: mixing two sounds of different classes with a perceptual
/// gain correction and a matching soft target (Tokozume, Ushiku and Harada, ICLR 2018).
public struct BetweenClassMixer: Sendable {
    /// The sampling rate the gains are computed at (16 kHz for EnvNet).
    public let sampleRate: Int
    /// Samples per gain frame (2048 at 16 kHz).
    public let frameLength: Int
    /// Samples between gain frames (half a frame).
    public let hop: Int
    /// The floor of per-bin weights and of frame gains, in dB.
    public let floor: Double
    private let fft: RealFFT
    private let window: [Double]
    private let weights: [Double]

    /// The gain frame length the authors' code uses at `sampleRate`: 2048 samples at 16 kHz (EnvNet)
    /// and 4096 at 44.1 kHz (EnvNet-v2). Other rates take the power of two nearest (in octaves) to
    /// 0.1 s, which gives those two as well.
    public static func frameLength(sampleRate: Int) -> Int {
        switch sampleRate {
        case 16_000: return 2048
        case 44_100: return 4096
        default:
            let exponent = (log2(Double(max(sampleRate, 1)) * 0.1)).rounded()
            return 1 << Int(min(max(exponent, 4), 20))
        }
    }

    /// Creates a mixer.
    ///
    /// - Parameters:
    ///   - sampleRate: The sampling rate in Hz (16000 for EnvNet).
    ///   - frameLength: Samples per frame, a power of two; nil takes the reference's for the rate
    ///     (``frameLength(sampleRate:)``: 2048 at 16 kHz, 4096 at 44.1 kHz).
    ///   - floor: Floor in dB for the A-weighting curve and for each frame's gain (-80).
    /// - Throws: `AudioError` when `frameLength` is not a power of two.
    public init(sampleRate: Int = 16000, frameLength: Int? = nil, floor: Double = -80) throws {
        let frameLength = frameLength ?? Self.frameLength(sampleRate: sampleRate)
        self.sampleRate = sampleRate
        self.frameLength = frameLength
        self.hop = frameLength / 2
        self.floor = floor
        fft = try RealFFT(size: frameLength)
        // Periodic Hann window: numpy's hanning(n + 1) without its last point.
        window = (0..<frameLength).map { 0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(frameLength)) }
        weights = AWeighting.decibels(sampleRate: sampleRate, fftSize: frameLength, floor: floor)
            .map { pow(10, $0 / 10) }
    }

    /// The A-weighted gain of each frame in dB, floored.
    ///
    /// Frames start every `hop` samples while a whole frame fits; a sound shorter than one
    /// frame is zero-padded to one frame (the reference would fail on it).
    ///
    /// - Parameter sound: The samples.
    /// - Returns: One gain in dB per frame.
    public func frameGains(_ sound: [Float]) -> [Double] {
        var samples = sound.map(Double.init)
        if samples.count < frameLength {
            samples += [Double](repeating: 0, count: frameLength - samples.count)
        }
        let minimumPower = pow(10, floor / 10)
        return stride(from: 0, through: samples.count - frameLength, by: hop).map { start in
            let frame = (0..<frameLength).map { samples[start + $0] * window[$0] }
            let power = fft.powerSpectrum(frame)
            var total = 0.0
            for (bin, value) in power.enumerated() { total += value * weights[bin] }
            return 10 * log10(max(total, minimumPower))
        }
    }

    /// The gain of a sound: the largest frame gain, in dB.
    ///
    /// - Parameter sound: The samples.
    /// - Returns: The gain in dB (at least `floor`).
    public func gain(_ sound: [Float]) -> Double {
        frameGains(sound).max() ?? floor
    }

    /// The mixing proportion `p` for two sounds with gains `g1`, `g2` and ratio `r`.
    ///
    /// `p = 1 / (1 + 10^((g1 - g2) / 20) * (1 - r) / r)`, which makes the two sounds'
    /// perceived loudness in the mixture proportional to `r` and `1 - r`.
    ///
    /// - Parameters:
    ///   - firstGain: Gain of the first sound in dB.
    ///   - secondGain: Gain of the second sound in dB.
    ///   - ratio: The label ratio `r` in `(0, 1]`.
    /// - Returns: The weight of the first sound, in `[0, 1]`.
    public static func mixingProportion(firstGain: Double, secondGain: Double, ratio: Double) -> Double {
        guard ratio > 0 else { return 0 }
        return 1 / (1 + pow(10, (firstGain - secondGain) / 20) * (1 - ratio) / ratio)
    }

    /// Mixes two equally long sounds with ratio `r`.
    ///
    /// `mixed = (p s1 + (1 - p) s2) / sqrt(p^2 + (1 - p)^2)`; the denominator keeps the
    /// mixture's energy comparable to its inputs'.
    ///
    /// - Parameters:
    ///   - first: The first sound.
    ///   - second: The second sound, of the same length.
    ///   - ratio: The label ratio `r` in `[0, 1]`.
    /// - Returns: The mixed sound.
    public func mix(_ first: [Float], _ second: [Float], ratio: Double) -> [Float] {
        precondition(first.count == second.count, "BC mixing needs sounds of equal length")
        let p = Self.mixingProportion(
            firstGain: gain(first), secondGain: gain(second), ratio: ratio)
        let norm = (p * p + (1 - p) * (1 - p)).squareRoot()
        let a = Float(p / norm), b = Float((1 - p) / norm)
        return zip(first, second).map { a * $0 + b * $1 }
    }

    /// The soft target `r * onehot(first) + (1 - r) * onehot(second)`.
    ///
    /// - Parameters:
    ///   - firstLabel: Class of the first sound.
    ///   - secondLabel: Class of the second sound.
    ///   - ratio: The label ratio `r`.
    ///   - classCount: Number of classes.
    /// - Returns: A probability vector of length `classCount`.
    public static func softTarget(
        firstLabel: Int, secondLabel: Int, ratio: Double, classCount: Int
    ) -> [Float] {
        var target = [Float](repeating: 0, count: classCount)
        target[firstLabel] += Float(ratio)
        target[secondLabel] += Float(1 - ratio)
        return target
    }

    /// One BC training example from two labelled sounds of different classes.
    ///
    /// Draws `r ~ U(0, 1)` from the generator, mixes, and builds the soft target.
    ///
    /// - Parameters:
    ///   - first: The first sound and its class.
    ///   - second: The second sound (same length) and its class.
    ///   - classCount: Number of classes.
    ///   - generator: The source of randomness.
    /// - Returns: The mixed sound, its soft target and the drawn ratio.
    public func example(
        first: (sound: [Float], label: Int), second: (sound: [Float], label: Int),
        classCount: Int, using generator: inout some RandomNumberGenerator
    ) -> (sound: [Float], target: [Float], ratio: Double) {
        let ratio = generator.nextUnitDouble()
        return (mix(first.sound, second.sound, ratio: ratio),
                Self.softTarget(firstLabel: first.label, secondLabel: second.label,
                                ratio: ratio, classCount: classCount),
                ratio)
    }
}
