import Foundation

/// The rule that decides, at prediction time, whether a window of a recording holds any sound.
///
/// EnvNet has two silence rules, and a model file records both (``ModelDescription``):
/// - **The training rule** (``ModelDescription/trainingSilenceThreshold``): a crop whose peak
///   *after* peak normalization is at or below 0.2 is re-drawn, and such windows do not vote in
///   evaluation. It is relative to the clip's loudest sample, so it cannot tell a quiet recording
///   from an empty one: digital zeros normalized stay zeros, but a -60 dBFS hum normalized peaks
///   at 1.0 and "sounds".
/// - **The detection rule** (this type): a window whose peak *before* normalization is at or
///   below a level in dBFS (decibels relative to full scale, 0 dBFS = amplitude 1.0) is silent.
///   It is absolute, so zeros and a faint hum are silent while a quiet but real clock tick is not.
///
/// The default, -50 dBFS, comes from the shared ESC-10 clips: every window the training rule
/// keeps peaks at or above -26.9 dBFS, and the quietest clips (clock ticks) peak between -21.5
/// and -15.8 dBFS. -50 dBFS leaves 23 dB below the quietest real window, while a 16-bit
/// recording's room tone (typically -60 dBFS and below) and digital silence stay silent.
public enum SilenceDetection {
    /// The default detection threshold in dBFS.
    public static let defaultThresholdDecibels: Double = -50

    /// A peak amplitude in dBFS: `20 log10(peak)`; `-infinity` for a peak of 0.
    ///
    /// - Parameter peak: A peak amplitude, `max |x|`, non-negative.
    /// - Returns: The level in decibels relative to full scale (1.0).
    public static func decibels(ofPeak peak: Float) -> Double {
        peak > 0 ? 20 * log10(Double(peak)) : -.infinity
    }

    /// The peak amplitude of a level in dBFS: `10^(decibels / 20)`.
    ///
    /// - Parameter decibels: A level in dBFS (`-infinity` gives 0).
    /// - Returns: The amplitude.
    public static func amplitude(ofDecibels decibels: Double) -> Float {
        Float(pow(10, decibels / 20))
    }

    /// Whether a window with this peak (before normalization) is silent under a threshold.
    ///
    /// - Parameters:
    ///   - peak: The window's `max |x|` before any normalization or gain.
    ///   - thresholdDecibels: The detection threshold in dBFS.
    /// - Returns: `true` when the peak is at or below the threshold.
    public static func isSilent(peak: Float, thresholdDecibels: Double) -> Bool {
        decibels(ofPeak: peak) <= thresholdDecibels
    }

    /// Checks a threshold given by a user.
    ///
    /// - Parameter decibels: The threshold in dBFS.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` unless it is finite and at most 0 dBFS (a
    ///   threshold above full scale would call every recording silent).
    public static func validate(thresholdDecibels decibels: Double) throws {
        guard decibels.isFinite, decibels <= 0, decibels >= -200 else {
            throw EnvNetError.invalidInput("the silence threshold must be a level in dBFS between -200 and 0, got \(decibels)")
        }
    }
}
