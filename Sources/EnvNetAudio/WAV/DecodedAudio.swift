import EnvNetTensor
/// How the samples of a WAV file are stored.
public enum SampleEncoding: Sendable, Hashable, CustomStringConvertible {
    /// Unsigned 8-bit PCM (silence at 128).
    case unsignedPCM8
    /// Two's-complement little-endian PCM in a container of 16, 24 or 32 bits.
    case signedPCM(bits: Int)
    /// IEEE 754 single precision.
    case float32
    /// IEEE 754 double precision.
    case float64
    /// ITU-T G.711 A-law, 8 bits per sample.
    case aLaw
    /// ITU-T G.711 mu-law, 8 bits per sample.
    case muLaw

    /// Bytes one sample of one channel occupies.
    public var bytesPerSample: Int {
        switch self {
        case .unsignedPCM8, .aLaw, .muLaw: return 1
        case .signedPCM(let bits): return bits / 8
        case .float32: return 4
        case .float64: return 8
        }
    }

    /// A human-readable name such as `"PCM signed 16-bit"`.
    public var description: String {
        switch self {
        case .unsignedPCM8: return "PCM unsigned 8-bit"
        case .signedPCM(let bits): return "PCM signed \(bits)-bit"
        case .float32: return "IEEE float 32-bit"
        case .float64: return "IEEE float 64-bit"
        case .aLaw: return "G.711 A-law 8-bit"
        case .muLaw: return "G.711 mu-law 8-bit"
        }
    }
}

/// What a WAV header says about its audio, without the samples.
public struct WAVInfo: Sendable, Hashable {
    /// Frames per second.
    public var sampleRate: Int
    /// Interleaved channels per frame.
    public var channelCount: Int
    /// Whole frames present in the (possibly clamped) data chunk.
    public var frameCount: Int
    /// The sample encoding.
    public var encoding: SampleEncoding
    /// Whether the format chunk used `WAVE_FORMAT_EXTENSIBLE`.
    public var isExtensible: Bool
    /// Byte offset of the first sample in the file.
    public var dataOffset: Int
    /// Bytes of sample data actually present (never more than the file holds).
    public var dataByteCount: Int
    /// Whether the data chunk declared more bytes than the file holds and was clamped.
    public var isDataTruncated: Bool

    /// Duration in seconds.
    public var duration: Double { Double(frameCount) / Double(sampleRate) }

    /// A description such as `"WAVE_FORMAT_EXTENSIBLE, PCM signed 24-bit"`.
    public var encodingDescription: String {
        isExtensible ? "WAVE_FORMAT_EXTENSIBLE, \(encoding)" : encoding.description
    }
}

/// Decoded audio: every channel as `Float` samples in `[-1, 1]` plus a mono downmix.
///
/// Integer encodings are scaled by their full-scale value (for 16-bit PCM that is division by
/// 32768, the authors' normalization), so no information is lost and no renormalization is
/// implied.
public struct DecodedAudio: Sendable, Equatable {
    /// Header facts (rate, channel count, encoding, ...).
    public var info: WAVInfo
    /// One array of `frameCount` samples per channel.
    public var channels: [[Float]]
    /// The average of all channels; shares storage with `channels[0]` for mono files.
    public var mono: [Float]

    /// Creates decoded audio from per-channel samples, computing the mono downmix.
    ///
    /// - Parameters:
    ///   - info: The header facts; `channelCount` and `frameCount` must match `channels`.
    ///   - channels: Per-channel samples of equal length.
    public init(info: WAVInfo, channels: [[Float]]) {
        precondition(channels.count == info.channelCount, "channel count must match the header")
        self.info = info
        self.channels = channels
        self.mono = downmixToMono(channels)
    }

    /// Frames per second.
    public var sampleRate: Int { info.sampleRate }
    /// Number of channels.
    public var channelCount: Int { info.channelCount }
    /// Samples per channel.
    public var frameCount: Int { info.frameCount }
    /// The sample encoding.
    public var encoding: SampleEncoding { info.encoding }
    /// A description of the encoding, mentioning `WAVE_FORMAT_EXTENSIBLE` when used.
    public var encodingDescription: String { info.encodingDescription }
}

/// Averages channels into one; the mean (not the sum) keeps full-scale inputs in range.
///
/// - Parameter channels: Per-channel samples of equal length.
/// - Returns: The per-frame mean; the single channel itself for mono input, empty for none.
public func downmixToMono(_ channels: [[Float]]) -> [Float] {
    guard let first = channels.first else { return [] }
    if channels.count == 1 { return first }
    let frameCount = channels.map(\.count).min() ?? 0
    var sum = [Float](repeating: 0, count: frameCount)
    for channel in channels {
        channel.withUnsafeBufferPointer { source in
            for index in 0..<frameCount { sum[index] += source[index] }
        }
    }
    let scale = 1 / Float(channels.count)
    for index in 0..<frameCount {
        let mean = sum[index] * scale
        if mean.isFinite {
            sum[index] = mean
        } else {
            // Finite samples near the Float limit (a hostile float WAV) overflow the sum; the mean
            // of the scaled samples cannot, so a decoded file's downmix stays finite.
            sum[index] = channels.reduce(0) { $0 + $1[index] * scale }
        }
    }
    return sum
}
