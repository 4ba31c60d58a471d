import EnvNetTensor
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Decodes RIFF/WAVE files into `Float` samples without trusting anything the file declares.
///
/// Supported: PCM unsigned 8-bit and signed 16/24/32-bit, IEEE float 32/64-bit, G.711 A-law and
/// mu-law, each either with its plain format tag or through `WAVE_FORMAT_EXTENSIBLE`; any
/// channel count; chunks in any order with RIFF's odd-size padding.
///
/// Robustness rules, so that hostile or damaged files fail cleanly:
/// - Every declared size is checked against the bytes actually present before it is used, and
///   allocations are derived from the bytes present, never from declared counts.
/// - A `data` chunk that declares more bytes than the file holds is *clamped*: the samples that
///   are present are decoded (whole frames only) and `WAVInfo.isDataTruncated` is set. This is
///   how a file cut short by an interrupted copy still yields its audio.
/// - Any other chunk that runs past the end of the file is an error, as is a missing `fmt ` or
///   `data` chunk, zero channels or sample rate, an inconsistent block align and any encoding
///   or bit depth not listed above.
/// - The RIFF size field is ignored (streaming writers often leave it 0 or wrong); the chunk
///   walk stops at the end of the bytes present. Up to 7 trailing bytes are ignored.
/// - Non-finite float samples (NaN, infinity) decode as 0 so that they cannot poison training.
public enum WAVReader {
    /// The sample rates any decoder here accepts, in Hz: 1 kHz to 768 kHz (the highest rate in
    /// real use). Work is sized from the rate (resampling to 16 kHz multiplies a 1 kHz file by
    /// 16), so a header that claims 1 Hz cannot make a 32 KB file cost gigabytes.
    public static let supportedSampleRates = 1_000...768_000
    /// Sample rates above this are rejected (``supportedSampleRates``' upper end).
    public static let maximumSampleRate = supportedSampleRates.upperBound

    /// Reads and decodes a WAV file.
    ///
    /// - Parameter url: A file URL.
    /// - Returns: The decoded audio.
    /// - Throws: `AudioError` naming the file when it cannot be read or is not a valid,
    ///   supported WAV file.
    public static func read(contentsOf url: URL) throws -> DecodedAudio {
        let data = try readData(at: url)
        return try decode(data, source: url.path)
    }

    /// Reads and decodes the WAV file at a path.
    ///
    /// - Parameter path: A file system path.
    /// - Returns: The decoded audio.
    /// - Throws: `AudioError` naming the file.
    public static func read(atPath path: String) throws -> DecodedAudio {
        try read(contentsOf: URL(fileURLWithPath: path))
    }

    /// Reads only the header of a WAV file and validates it, without decoding samples.
    ///
    /// The file is memory-mapped, so only the pages holding chunk headers are touched.
    ///
    /// - Parameter url: A file URL.
    /// - Returns: What the header says, with sizes clamped to the bytes present.
    /// - Throws: `AudioError` naming the file.
    public static func readInfo(contentsOf url: URL) throws -> WAVInfo {
        // `Data(contentsOf:options: .mappedIfSafe)` reads the whole file on Linux, which made the
        // header of a one-hour recording cost 115 MB: `RegularFile.read` maps it, so only the
        // pages holding chunk headers are touched.
        try info(of: readData(at: url), source: url.path)
    }

    /// Decodes WAV bytes held in memory.
    ///
    /// - Parameters:
    ///   - data: The complete file contents.
    ///   - source: A label used in error messages (a path, or `"<memory>"`).
    /// - Returns: The decoded audio.
    /// - Throws: `AudioError` naming `source`.
    public static func decode(_ data: Data, source: String = "<memory>") throws -> DecodedAudio {
        try data.withUnsafeBytes { bytes in
            let info = try parseHeader(bytes, source: source)
            return DecodedAudio(info: info, channels: decodeSamples(bytes, info: info))
        }
    }

    /// Decodes WAV bytes held in an array.
    ///
    /// - Parameters:
    ///   - bytes: The complete file contents.
    ///   - source: A label used in error messages.
    /// - Returns: The decoded audio.
    /// - Throws: `AudioError` naming `source`.
    public static func decode(bytes: [UInt8], source: String = "<memory>") throws -> DecodedAudio {
        try decode(Data(bytes), source: source)
    }

    /// Parses and validates the header of WAV bytes held in memory.
    ///
    /// - Parameters:
    ///   - data: The complete file contents.
    ///   - source: A label used in error messages.
    /// - Returns: What the header says, with sizes clamped to the bytes present.
    /// - Throws: `AudioError` naming `source`.
    public static func info(of data: Data, source: String = "<memory>") throws -> WAVInfo {
        try data.withUnsafeBytes { try parseHeader($0, source: source) }
    }

    // MARK: - Implementation

    /// The file's bytes, memory-mapped; a FIFO, a folder or a device is refused, never read.
    private static func readData(at url: URL) throws -> Data {
        do {
            return try RegularFile.read(url.path)
        } catch let error as RegularFileError {
            throw AudioError(error)
        }
    }

    private static let formatPCM = 0x0001
    private static let formatFloat = 0x0003
    private static let formatALaw = 0x0006
    private static let formatMuLaw = 0x0007
    private static let formatExtensible = 0xFFFE
    /// Bytes 2..<16 of every KSDATAFORMAT_SUBTYPE GUID that wraps a plain format tag
    /// (`{0000xxxx-0000-0010-8000-00AA00389B71}` in little-endian field order).
    private static let subformatGUIDTail: [UInt8] = [
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
    ]

    static func parseHeader(_ bytes: UnsafeRawBufferPointer, source: String) throws -> WAVInfo {
        func fail(_ problem: AudioError.Problem) -> AudioError {
            AudioError(source: source, problem: problem)
        }
        let size = bytes.count
        guard size > 0 else { throw fail(.emptyFile) }
        let riff: [UInt8] = Array("RIFF".utf8)
        let prefixLength = min(size, 4)
        guard Array(bytes[0..<prefixLength]) == Array(riff[0..<prefixLength]) else {
            throw fail(.notRIFF(found: fourCCString(bytes, at: 0)))
        }
        guard size >= 12 else { throw fail(.truncatedHeader(needed: 12, available: size)) }
        guard fourCC(bytes, at: 8) == "WAVE" else {
            throw fail(.notWAVE(found: fourCCString(bytes, at: 8)))
        }

        var formatChunk: (offset: Int, size: Int)?
        var dataChunk: (offset: Int, size: Int, truncated: Bool)?
        var offset = 12
        while offset + 8 <= size {
            let identifier = fourCC(bytes, at: offset)
            let declared = Int(readUInt32(bytes, at: offset + 4))
            let body = offset + 8
            let available = size - body
            if identifier == "data" {
                if dataChunk == nil {
                    dataChunk = (body, min(declared, available), declared > available)
                }
                if declared > available { break }
            } else {
                guard declared <= available else {
                    throw fail(.chunkExceedsFile(
                        chunk: fourCCString(bytes, at: offset), declaredSize: declared,
                        available: available))
                }
                if identifier == "fmt ", formatChunk == nil {
                    formatChunk = (body, declared)
                }
            }
            offset = body + declared + (declared & 1)
        }

        guard let format = formatChunk else { throw fail(.missingFormatChunk) }
        guard let data = dataChunk else { throw fail(.missingDataChunk) }
        guard format.size >= 16 else {
            throw fail(.invalidFormatChunk("\(format.size) bytes, at least 16 needed"))
        }
        let base = format.offset
        var formatTag = Int(readUInt16(bytes, at: base))
        let channelCount = Int(readUInt16(bytes, at: base + 2))
        let sampleRate = Int(readUInt32(bytes, at: base + 4))
        let blockAlign = Int(readUInt16(bytes, at: base + 12))
        let bitsPerSample = Int(readUInt16(bytes, at: base + 14))
        guard channelCount > 0 else { throw fail(.zeroChannels) }
        guard sampleRate > 0 else { throw fail(.zeroSampleRate) }
        guard sampleRate <= maximumSampleRate else { throw fail(.sampleRateTooHigh(sampleRate)) }
        guard sampleRate >= supportedSampleRates.lowerBound else { throw fail(.sampleRateTooLow(sampleRate)) }

        let isExtensible = formatTag == formatExtensible
        if isExtensible {
            guard format.size >= 40 else {
                throw fail(.invalidFormatChunk(
                    "WAVE_FORMAT_EXTENSIBLE needs 40 bytes, chunk has \(format.size)"))
            }
            let extensionSize = Int(readUInt16(bytes, at: base + 16))
            guard extensionSize >= 22 else {
                throw fail(.invalidFormatChunk(
                    "WAVE_FORMAT_EXTENSIBLE extension is \(extensionSize) bytes, 22 needed"))
            }
            let validBits = Int(readUInt16(bytes, at: base + 18))
            guard validBits <= bitsPerSample else {
                throw fail(.invalidFormatChunk(
                    "\(validBits) valid bits exceed the \(bitsPerSample)-bit container"))
            }
            let guid = Array(bytes[(base + 24)..<(base + 40)])
            guard Array(guid[2...]) == subformatGUIDTail else {
                throw fail(.unsupportedSubformat(guidString(guid)))
            }
            formatTag = Int(guid[0]) | Int(guid[1]) << 8
        }

        let encoding: SampleEncoding
        switch formatTag {
        case formatPCM:
            switch bitsPerSample {
            case 8: encoding = .unsignedPCM8
            case 16, 24, 32: encoding = .signedPCM(bits: bitsPerSample)
            default: throw fail(.unsupportedBitDepth(encoding: "PCM", bits: bitsPerSample))
            }
        case formatFloat:
            switch bitsPerSample {
            case 32: encoding = .float32
            case 64: encoding = .float64
            default: throw fail(.unsupportedBitDepth(encoding: "IEEE float", bits: bitsPerSample))
            }
        case formatALaw, formatMuLaw:
            guard bitsPerSample == 8 else {
                throw fail(.unsupportedBitDepth(
                    encoding: formatTag == formatALaw ? "A-law" : "mu-law", bits: bitsPerSample))
            }
            encoding = formatTag == formatALaw ? .aLaw : .muLaw
        default:
            if isExtensible {
                throw fail(.unsupportedSubformat(
                    guidString(Array(bytes[(base + 24)..<(base + 40)]))))
            }
            throw fail(.unsupportedEncoding(formatTag: formatTag))
        }

        let expectedBlockAlign = channelCount * encoding.bytesPerSample
        guard blockAlign == expectedBlockAlign else {
            throw fail(.blockAlignMismatch(declared: blockAlign, expected: expectedBlockAlign))
        }
        let frameCount = data.size / blockAlign
        return WAVInfo(
            sampleRate: sampleRate, channelCount: channelCount, frameCount: frameCount,
            encoding: encoding, isExtensible: isExtensible, dataOffset: data.offset,
            dataByteCount: data.size, isDataTruncated: data.truncated)
    }

    static func decodeSamples(_ bytes: UnsafeRawBufferPointer, info: WAVInfo) -> [[Float]] {
        let frames = info.frameCount
        let channelCount = info.channelCount
        let stride = channelCount * info.encoding.bytesPerSample
        let width = info.encoding.bytesPerSample
        precondition(info.dataOffset + frames * stride <= bytes.count, "frames exceed data bytes")
        let start = bytes.baseAddress! + info.dataOffset
        var channels: [[Float]] = []
        channels.reserveCapacity(channelCount)
        for channel in 0..<channelCount {
            let first = start + channel * width
            let samples = [Float](unsafeUninitializedCapacity: frames) { buffer, count in
                decodeChannel(first, stride: stride, frames: frames, encoding: info.encoding,
                              into: buffer)
                count = frames
            }
            channels.append(samples)
        }
        return channels
    }

    private static func decodeChannel(
        _ first: UnsafeRawPointer, stride: Int, frames: Int, encoding: SampleEncoding,
        into output: UnsafeMutableBufferPointer<Float>
    ) {
        switch encoding {
        case .unsignedPCM8:
            for frame in 0..<frames {
                let value = first.load(fromByteOffset: frame * stride, as: UInt8.self)
                output[frame] = (Float(value) - 128) / 128
            }
        case .signedPCM(bits: 16):
            for frame in 0..<frames {
                let raw = first.loadUnaligned(fromByteOffset: frame * stride, as: UInt16.self)
                output[frame] = Float(Int16(bitPattern: UInt16(littleEndian: raw))) / 32768
            }
        case .signedPCM(bits: 24):
            for frame in 0..<frames {
                let p = first + frame * stride
                let raw = UInt32(p.load(as: UInt8.self))
                    | UInt32(p.load(fromByteOffset: 1, as: UInt8.self)) << 8
                    | UInt32(p.load(fromByteOffset: 2, as: UInt8.self)) << 16
                // Shift the 24-bit value to the top, then back, to sign-extend it.
                let value = Int32(bitPattern: raw << 8) >> 8
                output[frame] = Float(value) / 8_388_608
            }
        case .signedPCM:
            for frame in 0..<frames {
                let raw = first.loadUnaligned(fromByteOffset: frame * stride, as: UInt32.self)
                output[frame] = Float(Int32(bitPattern: UInt32(littleEndian: raw))) / 2_147_483_648
            }
        case .float32:
            for frame in 0..<frames {
                let raw = first.loadUnaligned(fromByteOffset: frame * stride, as: UInt32.self)
                let value = Float(bitPattern: UInt32(littleEndian: raw))
                output[frame] = value.isFinite ? value : 0
            }
        case .float64:
            for frame in 0..<frames {
                let raw = first.loadUnaligned(fromByteOffset: frame * stride, as: UInt64.self)
                let value = Float(Double(bitPattern: UInt64(littleEndian: raw)))
                output[frame] = value.isFinite ? value : 0
            }
        case .aLaw, .muLaw:
            let table = encoding == .aLaw ? G711.aLawTable : G711.muLawTable
            for frame in 0..<frames {
                let code = first.load(fromByteOffset: frame * stride, as: UInt8.self)
                output[frame] = Float(table[Int(code)]) / 32768
            }
        }
    }

    private static func readUInt16(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt16 {
        UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    private static func readUInt32(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    private static func fourCC(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> String {
        guard offset + 4 <= bytes.count else { return "" }
        return String(decoding: bytes[offset..<(offset + 4)], as: UTF8.self)
    }

    /// The four bytes at `offset`, quoted, with non-printable bytes escaped for messages.
    private static func fourCCString(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> String {
        let end = min(bytes.count, offset + 4)
        guard offset < end else { return "''" }
        let text = bytes[offset..<end].map { byte -> String in
            (0x20...0x7E).contains(byte) && byte != 0x27
                ? String(UnicodeScalar(byte)) : "\\x" + hex(byte)
        }.joined()
        return "'\(text)'"
    }

    private static func guidString(_ guid: [UInt8]) -> String {
        let data1 = guid[0..<4].reversed().map(hex).joined()
        let data2 = guid[4..<6].reversed().map(hex).joined()
        let data3 = guid[6..<8].reversed().map(hex).joined()
        let data4a = guid[8..<10].map(hex).joined()
        let data4b = guid[10..<16].map(hex).joined()
        return "{\(data1)-\(data2)-\(data3)-\(data4a)-\(data4b)}"
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return digits.count == 1 ? "0" + digits : digits
    }
}
