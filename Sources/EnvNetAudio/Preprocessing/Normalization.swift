import EnvNetTensor
/// How a clip's amplitude is normalized after decoding (and resampling).
public enum AmplitudeNormalization: String, Sendable, Hashable, Codable, CaseIterable {
    /// Divide by the clip's peak `max |x|`, so the peak becomes 1.0 (the seed article).
    case peak
    /// Keep 16-bit full scale, i.e. `int16 / 32768`, which is what the decoder already
    /// produces for 16-bit PCM (the authors' repository).
    case int16FullScale
}

/// The largest absolute sample value, 0 for an empty buffer.
///
/// - Parameter samples: The samples.
/// - Returns: `max |x|`.
public func peakAmplitude(_ samples: [Float]) -> Float {
    samples.withUnsafeBufferPointer { buffer in
        var peak: Float = 0
        for sample in buffer { peak = max(peak, abs(sample)) }
        return peak
    }
}

/// Scales samples so that their peak amplitude is 1.0.
///
/// A buffer of all zeros, or one whose peak is so small (below the smallest normal float, about
/// 1.2e-38, 760 dB below full scale) that `1 / peak` overflows, is returned unchanged: it is
/// silence, and scaling it would give infinities and then NaN in the network.
///
/// - Parameter samples: The samples.
/// - Returns: `samples / max |samples|`.
public func peakNormalized(_ samples: [Float]) -> [Float] {
    let peak = peakAmplitude(samples)
    guard peak >= Float.leastNormalMagnitude else { return samples }
    let scale = 1 / peak
    guard scale.isFinite else { return samples }
    return samples.map { $0 * scale }
}

/// Converts 16-bit PCM integers to floats at 16-bit full scale (division by 32768).
///
/// - Parameter samples: 16-bit PCM samples.
/// - Returns: The samples divided by 32768, in `[-1, 1)`.
public func int16FullScale(_ samples: [Int16]) -> [Float] {
    samples.map { Float($0) / 32768 }
}

/// Applies a normalization policy.
///
/// - Parameters:
///   - samples: Decoded samples, in the decoder's full-scale units.
///   - policy: The normalization to apply.
/// - Returns: The normalized samples.
public func normalized(_ samples: [Float], policy: AmplitudeNormalization) -> [Float] {
    switch policy {
    case .peak: return peakNormalized(samples)
    case .int16FullScale: return samples
    }
}

/// Removes leading and trailing samples that are exactly zero (the authors' repository does
/// this to drop the digital silence ESC-50 pads short recordings with).
///
/// - Parameter samples: The samples.
/// - Returns: The span from the first to the last non-zero sample; empty if all are zero.
public func trimmingZeros(_ samples: [Float]) -> [Float] {
    guard let first = samples.firstIndex(where: { $0 != 0 }),
          let last = samples.lastIndex(where: { $0 != 0 }) else { return [] }
    return Array(samples[first...last])
}

/// Adds zeros before and after the samples.
///
/// - Parameters:
///   - samples: The samples.
///   - leading: Zeros to add at the start, non-negative.
///   - trailing: Zeros to add at the end, non-negative.
/// - Returns: `leading` zeros, the samples, `trailing` zeros.
public func zeroPadded(_ samples: [Float], leading: Int, trailing: Int) -> [Float] {
    precondition(leading >= 0 && trailing >= 0, "padding lengths must be non-negative")
    var result = [Float](repeating: 0, count: leading + samples.count + trailing)
    result.replaceSubrange(leading..<(leading + samples.count), with: samples)
    return result
}

/// Zeros added equally before and after (one more after when the count is odd) up to `length`.
///
/// - Parameters:
///   - samples: The samples, at most `length` of them.
///   - length: The length of the result.
/// - Returns: The samples centred in `length` samples.
public func centredZeroPadded(_ samples: [Float], toLength length: Int) -> [Float] {
    let missing = length - samples.count
    return zeroPadded(samples, leading: missing / 2, trailing: missing - missing / 2)
}
