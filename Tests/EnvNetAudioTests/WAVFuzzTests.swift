import EnvNetTensor
import Foundation
import Testing
@testable import EnvNetAudio

@Suite("WAV fuzzing")
struct WAVFuzzTests {
    /// Valid files of every supported format, small so that thousands of mutations run fast.
    static func seedFiles() throws -> [[UInt8]] {
        var generator = SeededGenerator(seed: 99)
        func payload(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) } }
        var files: [[UInt8]] = [
            WAVBuilder(bitsPerSample: 8, payload: payload(40)).build(),
            WAVBuilder(channels: 2, payload: payload(64)).build(),
            WAVBuilder(bitsPerSample: 24, payload: payload(60)).build(),
            WAVBuilder(channels: 3, bitsPerSample: 32, payload: payload(96)).build(),
            WAVBuilder(formatTag: 3, bitsPerSample: 32, payload: payload(64)).build(),
            WAVBuilder(formatTag: 3, bitsPerSample: 64, payload: payload(64)).build(),
            WAVBuilder(formatTag: 6, bitsPerSample: 8, payload: payload(33)).build(),
            WAVBuilder(formatTag: 7, channels: 2, bitsPerSample: 8, payload: payload(32)).build(),
            WAVBuilder(channels: 2, bitsPerSample: 24, extensibleSubformat: 1, payload: payload(60)).build(),
            WAVBuilder(bitsPerSample: 32, extensibleSubformat: 3, payload: payload(32)).build(),
        ]
        var listed = WAVBuilder(payload: payload(30))
        listed.extraChunks = [("LIST", payload(26)), ("junk", payload(5))]
        listed.dataBeforeFormat = true
        files.append(listed.build())
        files.append(Array(try WAVWriter.encode(
            channels: [[0.1, 0.2, -0.3], [0.5, -1, 1]], sampleRate: 44100, format: .float32)))
        return files
    }

    @Test func randomMutationsDecodeOrThrowCleanly() throws {
        let seeds = try Self.seedFiles()
        for file in seeds { _ = try WAVReader.decode(bytes: file) }  // all seeds are valid
        var generator = SeededGenerator(seed: 2024)
        var decoded = 0, rejected = 0
        let interestingSizes: [UInt32] = [0, 1, 2, 3, 7, 15, 16, 17, 18, 40, 0x7FFF_FFFF,
                                          0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF]
        for _ in 0..<5000 {
            var bytes = seeds[generator.nextInt(below: seeds.count)]
            for _ in 0...generator.nextInt(below: 3) {
                switch generator.nextInt(below: 5) {
                case 0:  // flip a few bytes
                    for _ in 0...generator.nextInt(below: 4) where !bytes.isEmpty {
                        bytes[generator.nextInt(below: bytes.count)] ^=
                            UInt8(1 + generator.nextInt(below: 255))
                    }
                case 1:  // truncate
                    bytes = Array(bytes.prefix(generator.nextInt(below: bytes.count + 1)))
                case 2:  // insert garbage
                    let garbage = (0..<(1 + generator.nextInt(below: 16))).map { _ in
                        UInt8(truncatingIfNeeded: generator.next())
                    }
                    bytes.insert(contentsOf: garbage, at: generator.nextInt(below: bytes.count + 1))
                case 3:  // corrupt a size-like field (RIFF, fmt, chunk sizes, header words)
                    let positions = [4, 16, 22, 24, 32, 34, 36, 40, 44, 48, 52]
                        .filter { $0 + 4 <= bytes.count }
                    if let position = positions.randomElement(using: &generator) {
                        let value = generator.nextInt(below: 2) == 0
                            ? interestingSizes[generator.nextInt(below: interestingSizes.count)]
                            : UInt32(truncatingIfNeeded: generator.next())
                        bytes.replaceSubrange(position..<(position + 4), with: le32(value))
                    }
                default:  // overwrite a 16-bit header word
                    let position = generator.nextInt(below: 40)
                    if position + 2 <= bytes.count {
                        bytes.replaceSubrange(position..<(position + 2),
                                              with: le16(UInt16(truncatingIfNeeded: generator.next())))
                    }
                }
            }
            do {
                let audio = try WAVReader.decode(bytes: bytes, source: "fuzz.wav")
                decoded += 1
                #expect(audio.channels.count == audio.channelCount)
                #expect(audio.channels.allSatisfy { $0.count == audio.frameCount })
                #expect(audio.mono.count == audio.frameCount)
                #expect(audio.frameCount * audio.channelCount * audio.encoding.bytesPerSample
                    <= bytes.count)
                #expect(audio.mono.allSatisfy { $0.isFinite })
            } catch let error as AudioError {
                rejected += 1
                #expect(error.source == "fuzz.wav")
            }
        }
        // Both outcomes must actually occur, or the mutations are not exercising anything.
        #expect(decoded > 500)
        #expect(rejected > 500)
    }
}
