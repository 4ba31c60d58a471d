import EnvNetAudio
import Foundation
import Testing

@Suite("WAVChunkReader")
struct WAVChunkReaderTests {
    /// Every encoding of the fuzzing seed corpus (8/16/24/32-bit PCM, float, extensible headers,
    /// extra chunks), plus a stereo float file written here.
    static func files() throws -> [URL] {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz/Corpus/wav")
        let names = try FileManager.default.contentsOfDirectory(atPath: corpus.path).filter { $0.hasSuffix(".wav") }.sorted()
        return names.map { corpus.appendingPathComponent($0) }
    }

    @Test("Chunks of any size concatenate to the whole-file mono samples, bit for bit")
    func chunksEqualWholeFile() throws {
        var urls = try Self.files().filter { (try? WAVReader.read(contentsOf: $0)) != nil }
        #expect(urls.count >= 10)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chunk-reader-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let stereo = folder.appendingPathComponent("stereo.wav")
        let left = (0..<5003).map { Float(sin(Double($0) * 0.01)) }, right = (0..<5003).map { Float(cos(Double($0) * 0.03)) / 2 }
        try WAVWriter.write(channels: [left, right], sampleRate: 22_050, format: .float32, to: stereo)
        urls.append(stereo)
        for url in urls {
            let whole = try WAVReader.read(contentsOf: url)
            for maximumFrames in [1, 7, 1000, 1 << 20] {
                var reader = try WAVChunkReader(contentsOf: url)
                #expect(reader.info == whole.info)
                var samples: [Float] = []
                while let chunk = try reader.next(maximumFrames: maximumFrames) {
                    #expect(!chunk.isEmpty && chunk.count <= maximumFrames)
                    samples += chunk
                }
                #expect(samples == whole.mono, "\(url.lastPathComponent) in chunks of \(maximumFrames)")
            }
        }
    }

    @Test func missingFileIsATypedError() {
        #expect(throws: AudioError.self) { try WAVChunkReader(contentsOf: URL(fileURLWithPath: "/nonexistent/x.wav")) }
    }
}
