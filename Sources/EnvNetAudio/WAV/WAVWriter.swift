import EnvNetTensor
import Foundation

/// The sample formats `WAVWriter` produces.
public enum WAVSampleFormat: Sendable, Hashable {
    /// Signed 16-bit PCM; samples are clipped to `[-1, 1]` and rounded to the nearest step.
    case pcm16
    /// IEEE float 32-bit; samples are stored exactly.
    case float32
}

/// Encodes `Float` samples as RIFF/WAVE files and writes them atomically.
public enum WAVWriter {
    /// Encodes interleaved channels into the bytes of a WAV file.
    ///
    /// - Parameters:
    ///   - channels: One array per channel, all of the same length.
    ///   - sampleRate: Frames per second, positive.
    ///   - format: The sample format to store.
    /// - Returns: The complete file contents.
    /// - Throws: `AudioError.Problem.invalidArgument` when there are no channels, channel
    ///   lengths differ, the rate is not positive, or the result would exceed 4 GiB.
    public static func encode(
        channels: [[Float]], sampleRate: Int, format: WAVSampleFormat
    ) throws -> Data {
        func fail(_ detail: String) -> AudioError {
            AudioError(source: "<memory>", problem: .invalidArgument(detail))
        }
        guard !channels.isEmpty, channels.count <= Int(UInt16.max) else {
            throw fail("channel count \(channels.count) is outside 1...65535")
        }
        let frameCount = channels[0].count
        guard channels.allSatisfy({ $0.count == frameCount }) else {
            throw fail("channels have different lengths")
        }
        guard sampleRate > 0, sampleRate <= WAVReader.maximumSampleRate else {
            throw fail("sample rate \(sampleRate) is outside 1...\(WAVReader.maximumSampleRate)")
        }
        let bytesPerSample = format == .pcm16 ? 2 : 4
        let blockAlign = channels.count * bytesPerSample
        guard blockAlign <= Int(UInt16.max) else { throw fail("block align exceeds 65535") }
        let dataSize = frameCount * blockAlign
        // Float files carry the 2-byte extension size and a `fact` chunk, as the format asks
        // of every non-PCM encoding.
        let formatSize = format == .pcm16 ? 16 : 18
        let factSize = format == .pcm16 ? 0 : 12
        let total = 12 + 8 + formatSize + factSize + 8 + dataSize + (dataSize & 1)
        guard total - 8 <= Int(UInt32.max) else { throw fail("audio too long for a WAV file") }

        var bytes = [UInt8]()
        bytes.reserveCapacity(total)
        func append32(_ value: Int) {
            withUnsafeBytes(of: UInt32(truncatingIfNeeded: value).littleEndian) { bytes += $0 }
        }
        func append16(_ value: Int) {
            withUnsafeBytes(of: UInt16(truncatingIfNeeded: value).littleEndian) { bytes += $0 }
        }
        bytes += Array("RIFF".utf8)
        append32(total - 8)
        bytes += Array("WAVE".utf8)
        bytes += Array("fmt ".utf8)
        append32(formatSize)
        append16(format == .pcm16 ? 1 : 3)
        append16(channels.count)
        append32(sampleRate)
        append32(sampleRate * blockAlign)
        append16(blockAlign)
        append16(bytesPerSample * 8)
        if format == .float32 {
            append16(0)
            bytes += Array("fact".utf8)
            append32(4)
            append32(frameCount)
        }
        bytes += Array("data".utf8)
        append32(dataSize)
        let headerCount = bytes.count
        bytes += [UInt8](repeating: 0, count: dataSize + (dataSize & 1))
        bytes.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress! + headerCount
            for (channelIndex, channel) in channels.enumerated() {
                for (frame, sample) in channel.enumerated() {
                    let offset = frame * blockAlign + channelIndex * bytesPerSample
                    switch format {
                    case .pcm16:
                        let value = Int16(quantizingToPCM16: sample)
                        (base + offset).storeBytes(of: value.littleEndian, as: Int16.self)
                    case .float32:
                        (base + offset).storeBytes(
                            of: sample.bitPattern.littleEndian, as: UInt32.self)
                    }
                }
            }
        }
        return Data(bytes)
    }

    /// Encodes mono samples into the bytes of a WAV file.
    ///
    /// - Parameters:
    ///   - samples: The samples of the single channel.
    ///   - sampleRate: Frames per second, positive.
    ///   - format: The sample format to store.
    /// - Returns: The complete file contents.
    /// - Throws: `AudioError` for invalid arguments.
    public static func encode(
        _ samples: [Float], sampleRate: Int, format: WAVSampleFormat
    ) throws -> Data {
        try encode(channels: [samples], sampleRate: sampleRate, format: format)
    }

    /// Writes a WAV file atomically (temporary file in the same folder, then rename).
    ///
    /// - Parameters:
    ///   - channels: One array per channel, all of the same length.
    ///   - sampleRate: Frames per second, positive.
    ///   - format: The sample format to store.
    ///   - url: The destination file URL; its folder must exist.
    /// - Throws: `AudioError` naming the destination for invalid arguments or I/O failures.
    public static func write(
        channels: [[Float]], sampleRate: Int, format: WAVSampleFormat, to url: URL
    ) throws {
        let data: Data
        do {
            data = try encode(channels: channels, sampleRate: sampleRate, format: format)
        } catch let error as AudioError {
            throw AudioError(source: url.path, problem: error.problem)
        }
        try AtomicFile.write(data, to: url)
    }

    /// Writes a mono WAV file atomically.
    ///
    /// - Parameters:
    ///   - samples: The samples of the single channel.
    ///   - sampleRate: Frames per second, positive.
    ///   - format: The sample format to store.
    ///   - url: The destination file URL; its folder must exist.
    /// - Throws: `AudioError` naming the destination.
    public static func write(
        _ samples: [Float], sampleRate: Int, format: WAVSampleFormat, to url: URL
    ) throws {
        try write(channels: [samples], sampleRate: sampleRate, format: format, to: url)
    }
}

extension Int16 {
    /// Quantizes a sample in `[-1, 1]` to 16-bit PCM the way the reader inverts it
    /// (`value / 32768`), so `k / 32768` round-trips exactly; out-of-range values clip and
    /// NaN becomes 0.
    ///
    /// - Parameter sample: A sample nominally in `[-1, 1]`.
    public init(quantizingToPCM16 sample: Float) {
        guard !sample.isNaN else { self = 0; return }
        let scaled = (sample * 32768).rounded()
        self = Int16(Swift.max(-32768, Swift.min(32767, scaled)))
    }
}
