import CSndFile
import EnvNetTensor
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemRead = Glibc.read
#elseif canImport(Musl)
private let systemRead = Musl.read
#elseif canImport(Darwin)
private let systemRead = Darwin.read
#endif

/// Reads audio files of every supported ``AudioFormat`` as mono `Float` samples at their own rate.
///
/// The format is recognised from the first bytes. WAV goes to ``WAVReader``; FLAC, Ogg Vorbis, Opus,
/// MP3, AIFF/AIFC, CAF and W64 go to libsndfile. Either way:
/// - a path that is not a regular file (a FIFO, a folder, a device) is refused before it is opened,
///   so that a FIFO can never block the process;
/// - a file in another format gets ``AudioError/Problem/unsupportedFormat(detected:)``, which says
///   what the file seems to be and lists what is supported;
/// - a file cut short decodes as far as it goes, with ``DecodedAudioFile/isTruncated`` set;
/// - non-finite samples decode as 0, and a whole read is bounded by ``maximumFrames``.
public enum AudioFileReader {
    /// The most frames one whole-file read decodes (about 2.6 hours at 44.1 kHz); longer files are
    /// read with ``AudioFileStream``. A few kilobytes of FLAC can announce hours of silence, so the
    /// bound is on what is decoded, not on the file's size.
    public static let maximumFrames = 400_000_000

    /// What the start of a file says it is, after checking that it is a regular file.
    ///
    /// - Parameter url: A file URL.
    /// - Returns: The detection.
    /// - Throws: `AudioError` for a missing, unreadable or non-regular file.
    public static func detectFormat(contentsOf url: URL) throws -> AudioFormat.Detection {
        let descriptor = try openRegularFile(url)
        defer { close(descriptor) }
        var head = [UInt8](repeating: 0, count: 4096)
        let count = head.withUnsafeMutableBytes { systemRead(descriptor, $0.baseAddress, 4096) }
        guard count >= 0 else { throw AudioError(source: url.path, problem: .readFailed(String(cString: strerror(errno)))) }
        return AudioFormat.detect(Array(head.prefix(count)))
    }

    /// Reads the header only.
    ///
    /// - Parameter url: A file URL.
    /// - Returns: Format, rate, channels, announced frames and encoding.
    /// - Throws: `AudioError` naming the file.
    public static func readInfo(contentsOf url: URL) throws -> AudioFileInfo {
        let format = try supportedFormat(of: url)
        if format == .wav {
            return info(ofWAV: try WAVReader.readInfo(contentsOf: url))
        }
        return try SndFile(url: url, expected: format).info
    }

    /// Reads and decodes a whole file.
    ///
    /// - Parameter url: A file URL.
    /// - Returns: The mono mix at the file's rate.
    /// - Throws: `AudioError` naming the file.
    public static func read(contentsOf url: URL) throws -> DecodedAudioFile {
        let format = try supportedFormat(of: url)
        if format == .wav {
            let info = try WAVReader.readInfo(contentsOf: url)
            guard info.frameCount <= maximumFrames else {
                throw AudioError(source: url.path, problem: .tooLong(frames: info.frameCount, limit: maximumFrames))
            }
            let audio = try WAVReader.read(contentsOf: url)
            return DecodedAudioFile(info: Self.info(ofWAV: audio.info), mono: audio.mono, isTruncated: audio.info.isDataTruncated)
        }
        let file = try SndFile(url: url, expected: format)
        // libsndfile estimates MP3 lengths; other headers are believed enough to refuse early.
        guard format == .mp3 || file.info.frameCount <= maximumFrames else {
            throw AudioError(source: url.path, problem: .tooLong(frames: file.info.frameCount, limit: maximumFrames))
        }
        var mono: [Float] = []
        mono.reserveCapacity(min(max(file.info.frameCount, 0), 1 << 22))
        while let chunk = try file.next(maximumFrames: 1 << 16) {
            mono += chunk
            if mono.count > maximumFrames {
                throw AudioError(source: url.path, problem: .tooLong(frames: mono.count, limit: maximumFrames))
            }
        }
        guard !mono.isEmpty || file.info.frameCount == 0 else {
            throw AudioError(source: url.path, problem: .decodeFailed(format: format.rawValue, reason: "the data ends before the first whole frame"))
        }
        var info = file.info
        // libsndfile estimates MP3 lengths from the bit rate, so only other formats can be short.
        let truncated = format != .mp3 && mono.count < info.frameCount
        info.frameCount = mono.count
        return DecodedAudioFile(info: info, mono: mono, isTruncated: truncated)
    }

    static func info(ofWAV info: WAVInfo) -> AudioFileInfo {
        AudioFileInfo(format: .wav, sampleRate: info.sampleRate, channelCount: info.channelCount,
                      frameCount: info.frameCount, encodingDescription: info.encodingDescription)
    }

    /// The supported format of a file, or the error that says what it seems to be instead.
    static func supportedFormat(of url: URL) throws -> AudioFormat {
        switch try detectFormat(contentsOf: url) {
        case .supported(let format): return format
        case .unsupported(let what): throw AudioError(source: url.path, problem: .unsupportedFormat(detected: what))
        }
    }

    /// Opens a path for reading after checking, on the open descriptor, that it is a regular file.
    /// The open itself never blocks: `O_NONBLOCK` makes opening a FIFO return at once.
    static func openRegularFile(_ url: URL) throws -> Int32 {
        do {
            return try RegularFile.open(url.path)
        } catch let error as RegularFileError {
            throw AudioError(error)
        }
    }
}

/// Reads a file of any supported format a chunk at a time, so memory does not grow with its length.
///
/// ```swift
/// let stream = try AudioFileStream(contentsOf: url)
/// while let chunk = try stream.next(maximumFrames: stream.info.sampleRate) { consume(chunk) }
/// ```
/// Not `Sendable`: one stream is read by one task.
public final class AudioFileStream {
    /// What the header says.
    public let info: AudioFileInfo
    private var wav: WAVChunkReader?
    private let sndFile: SndFile?

    /// Opens a file and reads its header.
    ///
    /// - Parameter url: A file URL.
    /// - Throws: `AudioError` naming the file.
    public init(contentsOf url: URL) throws {
        let format = try AudioFileReader.supportedFormat(of: url)
        if format == .wav {
            let reader = try WAVChunkReader(contentsOf: url)
            wav = reader
            sndFile = nil
            info = AudioFileReader.info(ofWAV: reader.info)
        } else {
            let file = try SndFile(url: url, expected: format)
            sndFile = file
            info = file.info
        }
    }

    /// The next mono samples, at most `maximumFrames` frames; nil at the end of the file.
    ///
    /// - Parameter maximumFrames: The most frames to return (at least 1 is read).
    /// - Returns: Mono samples, or nil at the end.
    /// - Throws: `AudioError` when the data stops decoding before any frame of this chunk.
    public func next(maximumFrames: Int) throws -> [Float]? {
        if wav != nil { return try wav!.next(maximumFrames: maximumFrames) }
        return try sndFile!.next(maximumFrames: maximumFrames)
    }
}

/// One open libsndfile handle.
final class SndFile {
    private static let openLock = NSLock()
    let info: AudioFileInfo
    private let path: String
    private var handle: OpaquePointer?

    init(url: URL, expected: AudioFormat) throws {
        path = url.path
        let descriptor = try AudioFileReader.openRegularFile(url)
        var details = SF_INFO()
        // sf_open_fd closes the descriptor itself when opening fails (close_desc is true). The
        // reason of a failed open is libsndfile's global error state, so opens are serialised.
        let opening: (OpaquePointer?, String) = Self.openLock.withLock {
            let handle = sf_open_fd(descriptor, Int32(SFM_READ), &details, 1)
            return (handle, handle == nil ? String(cString: sf_strerror(nil)) : "")
        }
        guard let opened = opening.0 else {
            throw AudioError(source: url.path, problem: .decodeFailed(format: expected.rawValue, reason: opening.1))
        }
        handle = opened
        let problem: AudioError.Problem? = if details.channels < 1 {
            .zeroChannels
        } else if details.samplerate < 1 {
            .zeroSampleRate
        } else if Int(details.samplerate) > WAVReader.maximumSampleRate {
            .sampleRateTooHigh(Int(details.samplerate))
        } else if Int(details.samplerate) < WAVReader.supportedSampleRates.lowerBound {
            .sampleRateTooLow(Int(details.samplerate))
        } else if details.channels > 4096 {
            .decodeFailed(format: expected.rawValue, reason: "implausible channel count \(details.channels)")
        } else { nil }
        if let problem {
            sf_close(opened)
            handle = nil
            throw AudioError(source: url.path, problem: problem)
        }
        let format = Self.format(major: Int(details.format) & Int(SF_FORMAT_TYPEMASK), subtype: Int(details.format) & Int(SF_FORMAT_SUBMASK)) ?? expected
        info = AudioFileInfo(format: format, sampleRate: Int(details.samplerate), channelCount: Int(details.channels),
                             frameCount: Int(clamping: max(details.frames, 0)),
                             encodingDescription: Self.encoding(subtype: Int(details.format) & Int(SF_FORMAT_SUBMASK)))
    }

    deinit {
        if let handle { sf_close(handle) }
    }

    /// The next mono samples; nil at the end. An error before any frame of the chunk throws;
    /// after some frames, the file is treated as ending there (a truncated file yields its audio).
    func next(maximumFrames: Int) throws -> [Float]? {
        guard let handle else { return nil }
        let channels = info.channelCount
        let frames = max(1, min(maximumFrames, (4 << 20) / channels))
        var interleaved = [Float](repeating: 0, count: frames * channels)
        let got = Int(interleaved.withUnsafeMutableBufferPointer { sf_readf_float(handle, $0.baseAddress, sf_count_t(frames)) })
        if got <= 0 {
            let code = sf_error(handle)
            close()
            if code != Int32(SF_ERR_NO_ERROR) {
                throw AudioError(source: path, problem: .decodeFailed(format: info.format.rawValue, reason: String(cString: sf_error_number(code))))
            }
            return nil
        }
        var mono = [Float](repeating: 0, count: got)
        let scale = 1 / Float(channels)
        interleaved.withUnsafeBufferPointer { source in
            for frame in 0..<got {
                var sum: Float = 0
                for channel in 0..<channels {
                    let value = source[frame * channels + channel]
                    sum += value.isFinite ? value * scale : 0
                }
                mono[frame] = sum.isFinite ? sum : 0
            }
        }
        return mono
    }

    private func close() {
        if let handle { sf_close(handle) }
        handle = nil
    }

    private static func format(major: Int, subtype: Int) -> AudioFormat? {
        switch major {
        case Int(SF_FORMAT_FLAC): return .flac
        case Int(SF_FORMAT_OGG): return subtype == Int(SF_FORMAT_OPUS) ? .opus : subtype == Int(SF_FORMAT_VORBIS) ? .oggVorbis : nil
        case Int(SF_FORMAT_MPEG): return .mp3
        case Int(SF_FORMAT_AIFF): return nil  // AIFF or AIFC: the detection from the header says which
        case Int(SF_FORMAT_CAF): return .caf
        case Int(SF_FORMAT_W64): return .w64
        case Int(SF_FORMAT_WAV): return .wav
        default: return nil
        }
    }

    private static func encoding(subtype: Int) -> String {
        switch subtype {
        case Int(SF_FORMAT_PCM_S8): return "PCM signed 8-bit"
        case Int(SF_FORMAT_PCM_U8): return "PCM unsigned 8-bit"
        case Int(SF_FORMAT_PCM_16): return "PCM signed 16-bit"
        case Int(SF_FORMAT_PCM_24): return "PCM signed 24-bit"
        case Int(SF_FORMAT_PCM_32): return "PCM signed 32-bit"
        case Int(SF_FORMAT_FLOAT): return "IEEE float 32-bit"
        case Int(SF_FORMAT_DOUBLE): return "IEEE float 64-bit"
        case Int(SF_FORMAT_ULAW): return "G.711 mu-law"
        case Int(SF_FORMAT_ALAW): return "G.711 A-law"
        case Int(SF_FORMAT_VORBIS): return "Vorbis"
        case Int(SF_FORMAT_OPUS): return "Opus"
        case Int(SF_FORMAT_MPEG_LAYER_III): return "MPEG layer III"
        case Int(SF_FORMAT_ALAC_16), Int(SF_FORMAT_ALAC_20), Int(SF_FORMAT_ALAC_24), Int(SF_FORMAT_ALAC_32): return "ALAC"
        case Int(SF_FORMAT_IMA_ADPCM), Int(SF_FORMAT_MS_ADPCM): return "ADPCM"
        default: return "subtype 0x\(String(subtype, radix: 16))"
        }
    }
}
