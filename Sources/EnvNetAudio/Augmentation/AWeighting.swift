import EnvNetTensor
import Foundation

/// The A-weighting curve as used by the BC-learning reference code.
public enum AWeighting {
    /// A-weighting in dB at the `n/2 + 1` bin frequencies of an `n`-point FFT, floored.
    ///
    /// Follows the reference exactly, including its quirks, so gains match it: bin frequencies
    /// are `linspace(0, rate / 2, n / 2 + 1)` with integer `rate / 2`, the DC bin is evaluated
    /// at 1 Hz (its squared frequency set to 1), and the curve carries the +2 dB offset that
    /// makes it 0 dB at 1 kHz.
    ///
    /// - Parameters:
    ///   - sampleRate: The sampling rate in Hz.
    ///   - fftSize: The FFT length.
    ///   - floor: The minimum returned value in dB (-80 in the reference).
    /// - Returns: `fftSize / 2 + 1` weights in dB.
    public static func decibels(sampleRate: Int, fftSize: Int, floor: Double = -80) -> [Double] {
        let binCount = fftSize / 2 + 1
        let nyquist = Double(sampleRate / 2)
        return (0..<binCount).map { bin in
            let frequency = binCount == 1 ? 0 : nyquist * Double(bin) / Double(binCount - 1)
            let squared = bin == 0 ? 1 : frequency * frequency
            let weight = 2.0 + 20.0 * (2 * log10(12194.0) + 2 * log10(squared)
                - log10(squared + 12194.0 * 12194.0)
                - log10(squared + 20.6 * 20.6)
                - 0.5 * log10(squared + 107.7 * 107.7)
                - 0.5 * log10(squared + 737.9 * 737.9))
            return max(weight, floor)
        }
    }
}
