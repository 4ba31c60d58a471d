import EnvNetTensor
import Foundation
@testable import EnvNetAudio
import Testing

/// Builds RIFF/WAVE bytes by hand, for encodings the writer does not produce and for
/// deliberately broken files.
struct WAVBuilder {
    var formatTag: UInt16 = 1
    var channels: UInt16 = 1
    var sampleRate: UInt32 = 16000
    var bitsPerSample: UInt16 = 16
    var blockAlign: UInt16? = nil
    /// When set, the fmt chunk is WAVE_FORMAT_EXTENSIBLE wrapping this format code.
    var extensibleSubformat: UInt16? = nil
    var validBits: UInt16? = nil
    var payload: [UInt8] = []
    /// Chunks inserted between fmt and data.
    var extraChunks: [(String, [UInt8])] = []
    var dataBeforeFormat = false

    func formatChunkBody() -> [UInt8] {
        var body: [UInt8] = []
        let align = blockAlign ?? channels * (bitsPerSample / 8)
        body += le16(extensibleSubformat == nil ? formatTag : 0xFFFE)
        body += le16(channels)
        body += le32(sampleRate)
        body += le32(sampleRate &* UInt32(align))
        body += le16(align)
        body += le16(bitsPerSample)
        if let code = extensibleSubformat {
            body += le16(22)
            body += le16(validBits ?? bitsPerSample)
            body += le32(0)
            body += le16(code)
            body += [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]
        }
        return body
    }

    func build() -> [UInt8] {
        var chunks: [[UInt8]] = []
        let format = chunk("fmt ", formatChunkBody())
        let data = chunk("data", payload)
        let extras = extraChunks.map { chunk($0.0, $0.1) }
        if dataBeforeFormat {
            chunks = [data] + extras + [format]
        } else {
            chunks = [format] + extras + [data]
        }
        let body = Array("WAVE".utf8) + chunks.flatMap { $0 }
        return Array("RIFF".utf8) + le32(UInt32(body.count)) + body
    }
}

func chunk(_ identifier: String, _ body: [UInt8]) -> [UInt8] {
    var bytes = Array(identifier.utf8) + le32(UInt32(body.count)) + body
    if body.count % 2 == 1 { bytes.append(0) }
    return bytes
}

func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8((value >> (8 * $0)) & 0xFF) } }
func le64(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8((value >> (8 * UInt64($0))) & 0xFF) } }

/// A fresh temporary folder, removed by the caller with `removeTemporaryDirectory`.
func makeTemporaryDirectory(_ name: String = #function) throws -> URL {
    let cleaned = name.filter { $0.isLetter || $0.isNumber }
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("EnvNetAudioTests-\(cleaned)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func removeTemporaryDirectory(_ url: URL) {
    try? FileManager.default.removeItem(at: url)
}

/// Loads a JSON fixture committed under Fixtures/.
func loadFixture<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
    guard let url = Bundle.module.url(
        forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
        throw AudioError(source: name, problem: .readFailed("fixture not found"))
    }
    return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
}

/// Amplitude of the component of `signal` at `frequency`, by least-squares fit of a sine and
/// cosine over the given range (exact for a pure tone over any length, no window needed).
func toneAmplitude(_ signal: [Float], frequency: Double, sampleRate: Double,
                   range: Range<Int>) -> Double {
    var cc = 0.0, ss = 0.0, cs = 0.0, xc = 0.0, xs = 0.0
    for index in range {
        let phase = 2 * Double.pi * frequency * Double(index) / sampleRate
        let c = cos(phase), s = sin(phase), x = Double(signal[index])
        cc += c * c; ss += s * s; cs += c * s; xc += x * c; xs += x * s
    }
    let determinant = cc * ss - cs * cs
    let a = (xc * ss - xs * cs) / determinant
    let b = (xs * cc - xc * cs) / determinant
    return (a * a + b * b).squareRoot()
}

func rms(_ signal: ArraySlice<Float>) -> Double {
    guard !signal.isEmpty else { return 0 }
    return (signal.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(signal.count)).squareRoot()
}

/// The shared ESC-10 clips, found relative to the repository root (`../shared/data/ESC-10-16k`).
/// Nil when they are absent on a developer's machine; under CI (`CI=true`) their absence is a
/// failure, not a skip.
func sharedESC10Folder(filePath: String = #filePath) -> URL? {
    let repository = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let folder = repository.deletingLastPathComponent().appendingPathComponent("shared/data/ESC-10-16k").standardizedFileURL
    if FileManager.default.fileExists(atPath: folder.appendingPathComponent("meta/esc50.csv").path) { return folder }
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        Issue.record("the shared ESC-10 clips are missing: expected them at \(folder.path) (../shared beside the repository)")
    }
    return nil
}

/// A committed audio-format fixture (`Fixtures/formats/tone.<extension>`).
func formatFixture(_ fileExtension: String) throws -> URL {
    try #require(Bundle.module.url(forResource: "tone", withExtension: fileExtension, subdirectory: "Fixtures/formats"))
}
