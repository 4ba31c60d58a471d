import Foundation

/// The audio file formats the package reads, and what an unreadable file seems to be.
///
/// WAV is decoded by the package's own ``WAVReader`` (fuzzed, streaming); every other format goes
/// through libsndfile. The format is taken from the file's first bytes, never from its name, so a
/// FLAC file called `clip.wav` is still read as FLAC.
public enum AudioFormat: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    case wav = "WAV"
    case flac = "FLAC"
    case oggVorbis = "Ogg Vorbis"
    case opus = "Opus"
    case mp3 = "MP3"
    case aiff = "AIFF"
    case aifc = "AIFC"
    case caf = "CAF"
    case w64 = "W64"

    public var description: String { rawValue }

    /// The file name extensions a folder-per-class dataset picks up (lower case, without the dot).
    public static let fileExtensions: Set<String> = [
        "wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "caf", "w64",
    ]

    /// One line listing what can be read, for error messages.
    public static let supportedList =
        "WAV (PCM 8/16/24/32-bit, float, A-law, mu-law), FLAC, Ogg Vorbis, Opus, MP3, AIFF/AIFC, CAF and W64"

    /// What the first bytes of a file say it is.
    public enum Detection: Sendable, Hashable {
        /// A format this package reads.
        case supported(AudioFormat)
        /// Something recognisable that this package does not read (for example `"MP4/M4A (AAC)"`).
        case unsupported(String)
    }

    /// Recognises a file from its first bytes (at least 64 are best; fewer are handled).
    ///
    /// - Parameter bytes: The start of the file.
    /// - Returns: What the file seems to be; `.unsupported` with a description of the first bytes
    ///   when nothing matches.
    public static func detect(_ bytes: [UInt8]) -> Detection {
        func ascii(_ range: Range<Int>) -> String {
            guard range.upperBound <= bytes.count else { return "" }
            return String(decoding: bytes[range], as: UTF8.self)
        }
        func contains(_ text: String) -> Bool {
            let needle = Array(text.utf8)
            guard bytes.count >= needle.count else { return false }
            return (0...(bytes.count - needle.count)).contains { Array(bytes[$0..<($0 + needle.count)]) == needle }
        }
        let tag = ascii(0..<4)
        switch tag {
        case "RIFF", "RIFX":
            // Too short to say: the WAV reader reports exactly where the header ends.
            if bytes.count < 12 { return .supported(.wav) }
            return ascii(8..<12) == "WAVE" ? .supported(.wav) : .unsupported("RIFF \(ascii(8..<12).debugDescription) (not WAVE)")
        case "RF64", "BW64": return .unsupported("RF64/BW64 WAV")
        case "fLaC": return .supported(.flac)
        case "OggS":
            if contains("OpusHead") { return .supported(.opus) }
            if contains("vorbis") { return .supported(.oggVorbis) }
            if contains("FLAC") { return .unsupported("FLAC in Ogg") }
            return .unsupported("Ogg with an unknown codec")
        case "FORM":
            switch ascii(8..<12) {
            case "AIFF": return .supported(.aiff)
            case "AIFC": return .supported(.aifc)
            default: return .unsupported("IFF \(ascii(8..<12).debugDescription)")
            }
        case "caff": return .supported(.caf)
        case "riff":
            // Sony Wave64: "riff" followed by the rest of its GUID, then "wave" and its GUID at 24.
            return ascii(24..<28) == "wave" ? .supported(.w64) : .unsupported("riff (not Wave64)")
        case "ID3\u{03}", "ID3\u{04}", "ID3\u{02}": return .supported(.mp3)
        default: break
        }
        if tag.hasPrefix("ID3") { return .supported(.mp3) }
        // An MPEG audio frame header: 11 sync bits, a version other than "reserved", layer III.
        if bytes.count >= 2, bytes[0] == 0xFF, bytes[1] & 0xE0 == 0xE0, bytes[1] & 0x18 != 0x08 {
            return bytes[1] & 0x06 == 0x02 ? .supported(.mp3) : .unsupported("MPEG audio layer I or II")
        }
        if ascii(4..<8) == "ftyp" { return .unsupported("MP4/M4A (AAC or ALAC)") }
        if bytes.count >= 2, bytes[0] == 0xFF, bytes[1] & 0xF6 == 0xF0 { return .unsupported("AAC (ADTS)") }
        if tag == "\u{1A}E\u{DF}\u{A3}" { return .unsupported("Matroska/WebM") }
        if tag == "#!AM" { return .unsupported("AMR") }
        if tag == "wvpk" { return .unsupported("WavPack") }
        if tag == "MAC " { return .unsupported("Monkey's Audio") }
        if tag == "PK\u{03}\u{04}" { return .unsupported("a ZIP archive") }
        if tag == "%PDF" { return .unsupported("a PDF document") }
        if bytes.isEmpty { return .unsupported("an empty file") }
        let shown = bytes.prefix(4).map { $0 >= 0x20 && $0 < 0x7F ? String(UnicodeScalar($0)) : "\\x" + String(format: "%02X", $0) }.joined()
        return .unsupported("unknown (starts with '\(shown)')")
    }
}

/// What a file says about its audio, before any sample is decoded.
public struct AudioFileInfo: Sendable, Hashable {
    /// The container and codec.
    public var format: AudioFormat
    /// Frames per second.
    public var sampleRate: Int
    /// Channels per frame.
    public var channelCount: Int
    /// Frames the header announces (libsndfile estimates it for MP3; a whole read may find fewer).
    public var frameCount: Int
    /// The encoding inside the container, such as `PCM signed 16-bit` or `Vorbis`.
    public var encodingDescription: String

    /// The duration the header announces, in seconds.
    public var duration: Double { sampleRate > 0 ? Double(frameCount) / Double(sampleRate) : 0 }

    /// Creates a record.
    ///
    /// - Parameters:
    ///   - format: The format.
    ///   - sampleRate: Frames per second.
    ///   - channelCount: Channels per frame.
    ///   - frameCount: Frames announced.
    ///   - encodingDescription: The encoding's name.
    public init(format: AudioFormat, sampleRate: Int, channelCount: Int, frameCount: Int, encodingDescription: String) {
        self.format = format
        self.sampleRate = sampleRate
        self.channelCount = channelCount
        self.frameCount = frameCount
        self.encodingDescription = encodingDescription
    }
}

/// A decoded file: its mono mix at its own rate, with what its header said.
public struct DecodedAudioFile: Sendable, Equatable {
    /// Header facts (`frameCount` is the number of frames actually decoded).
    public var info: AudioFileInfo
    /// The mean of all channels, in [-1, 1] for integer encodings; non-finite samples are 0.
    public var mono: [Float]
    /// Whether the file ended before the frames its header announced (decoded as far as it goes).
    public var isTruncated: Bool

    /// Creates a record.
    ///
    /// - Parameters:
    ///   - info: The header facts.
    ///   - mono: The mono samples.
    ///   - isTruncated: Whether the file was cut short.
    public init(info: AudioFileInfo, mono: [Float], isTruncated: Bool) {
        self.info = info
        self.mono = mono
        self.isTruncated = isTruncated
    }

    /// Frames per second.
    public var sampleRate: Int { info.sampleRate }
}
