import EnvNetTensor
import Foundation

/// An error raised while reading, writing or validating audio, naming the file and problem.
///
/// `source` is the path of the file involved (or a caller-chosen label such as `"<memory>"`
/// for in-memory data), so that a message on its own tells a user which file to look at.
public struct AudioError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong.
    public enum Problem: Equatable, Sendable {
        /// The file has no bytes at all.
        case emptyFile
        /// The file does not start with `RIFF`; `found` shows the first bytes.
        case notRIFF(found: String)
        /// The RIFF form type is not `WAVE`; `found` shows it.
        case notWAVE(found: String)
        /// The file ends inside a header structure.
        case truncatedHeader(needed: Int, available: Int)
        /// A chunk other than `data` declares more bytes than the file holds.
        case chunkExceedsFile(chunk: String, declaredSize: Int, available: Int)
        /// No `fmt ` chunk was found.
        case missingFormatChunk
        /// No `data` chunk was found.
        case missingDataChunk
        /// The `fmt ` chunk is malformed (too short, inconsistent extension size, ...).
        case invalidFormatChunk(String)
        /// The format declares zero channels.
        case zeroChannels
        /// The format declares a sample rate of zero.
        case zeroSampleRate
        /// The format declares an implausibly high sample rate.
        case sampleRateTooHigh(Int)
        /// The format declares a sample rate below ``WAVReader/supportedSampleRates``.
        case sampleRateTooLow(Int)
        /// `blockAlign` disagrees with channels x bytes per sample.
        case blockAlignMismatch(declared: Int, expected: Int)
        /// The format tag is not one this reader decodes.
        case unsupportedEncoding(formatTag: Int)
        /// A `WAVE_FORMAT_EXTENSIBLE` sub-format GUID that this reader does not decode.
        case unsupportedSubformat(String)
        /// The encoding is known but not at this bit depth.
        case unsupportedBitDepth(encoding: String, bits: Int)
        /// The file could not be read from disk.
        case readFailed(String)
        /// The file could not be written.
        case writeFailed(String)
        /// A caller passed an argument this operation cannot work with.
        case invalidArgument(String)
        /// The path is not a regular file (a FIFO, a folder, a device or a socket): refused before
        /// it is opened, because opening a FIFO blocks until a writer appears.
        case notRegularFile(kind: String)
        /// The file is not in a format this package reads; `detected` says what it seems to be.
        case unsupportedFormat(detected: String)
        /// The file seems to be `format` but its data does not decode.
        case decodeFailed(format: String, reason: String)
        /// Decoding the whole file would exceed the bound on one read.
        case tooLong(frames: Int, limit: Int)
    }

    /// The file (or label) the error is about.
    public var source: String
    /// What went wrong.
    public var problem: Problem

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - source: The file path or label the error concerns.
    ///   - problem: What went wrong.
    public init(source: String, problem: Problem) {
        self.source = source
        self.problem = problem
    }

    /// The error for a path that is not a readable regular file: `notRegularFile` when it is a
    /// FIFO, a folder or a device, `readFailed` with the reason otherwise.
    ///
    /// - Parameter error: What `RegularFile` found.
    public init(_ error: RegularFileError) {
        if let kind = error.kind {
            self.init(source: error.path, problem: .notRegularFile(kind: kind))
        } else {
            self.init(source: error.path, problem: .readFailed(error.reason))
        }
    }

    /// A one-line message naming the file and the problem.
    public var description: String {
        "\(source): \(problemDescription)"
    }

    private var problemDescription: String {
        switch problem {
        case .emptyFile:
            return "file is empty"
        case .notRIFF(let found):
            return "not a RIFF file (starts with \(found))"
        case .notWAVE(let found):
            return "RIFF form type is \(found), not WAVE"
        case .truncatedHeader(let needed, let available):
            return "header truncated: needed \(needed) bytes, only \(available) present"
        case .chunkExceedsFile(let chunk, let declared, let available):
            return "chunk \(chunk) declares \(declared) bytes but only \(available) remain in the file"
        case .missingFormatChunk:
            return "no 'fmt ' chunk"
        case .missingDataChunk:
            return "no 'data' chunk"
        case .invalidFormatChunk(let detail):
            return "invalid 'fmt ' chunk: \(detail)"
        case .zeroChannels:
            return "format declares zero channels"
        case .zeroSampleRate:
            return "format declares a sample rate of zero"
        case .sampleRateTooHigh(let rate):
            return "sample rate \(rate) Hz is above the supported \(WAVReader.supportedSampleRates.upperBound) Hz"
        case .sampleRateTooLow(let rate):
            return "sample rate \(rate) Hz is below the supported \(WAVReader.supportedSampleRates.lowerBound) Hz"
        case .blockAlignMismatch(let declared, let expected):
            return "block align \(declared) is inconsistent with channels and bit depth (expected \(expected))"
        case .unsupportedEncoding(let tag):
            return "unsupported encoding (format tag 0x\(String(tag, radix: 16, uppercase: true)))"
        case .unsupportedSubformat(let guid):
            return "unsupported WAVE_FORMAT_EXTENSIBLE sub-format \(guid)"
        case .unsupportedBitDepth(let encoding, let bits):
            return "unsupported bit depth \(bits) for \(encoding)"
        case .readFailed(let detail):
            return "could not read file: \(detail)"
        case .writeFailed(let detail):
            return "could not write file: \(detail)"
        case .invalidArgument(let detail):
            return "invalid argument: \(detail)"
        case .notRegularFile(let kind):
            return "is \(kind), not a regular file (audio is read from regular files only)"
        case .unsupportedFormat(let detected):
            return "seems to be \(detected), which cannot be read; supported: \(AudioFormat.supportedList)"
        case .decodeFailed(let format, let reason):
            return "does not decode as \(format): \(reason)"
        case .tooLong(let frames, let limit):
            return "holds at least \(frames) frames, more than one whole read takes (\(limit)); read it in chunks with AudioFileStream"
        }
    }
}
