import EnvNetTensor
import Foundation
import Testing
@testable import EnvNetAudio

#if canImport(Glibc)
import Glibc
#endif

/// Every supported format decodes to the signal of the WAV it was made from (fixtures made by sox
/// and opusenc, `Tools/make_audio_format_fixtures.sh`), and hostile or unsupported files fail with
/// one typed error naming the file.
@Suite("Audio formats through libsndfile")
struct AudioFormatTests {
    static let lossless: [(String, AudioFormat)] = [("flac", .flac), ("aiff", .aiff), ("aifc", .aifc), ("caf", .caf), ("w64", .w64)]
    static let lossy: [(String, AudioFormat)] = [("mp3", .mp3), ("ogg", .oggVorbis), ("opus", .opus)]

    static func reference() throws -> DecodedAudioFile { try AudioFileReader.read(contentsOf: formatFixture("wav")) }

    @Test(arguments: lossless)
    func losslessFormatsDecodeToTheWAVSamples(fileExtension: String, format: AudioFormat) throws {
        let wav = try Self.reference()
        let file = try AudioFileReader.read(contentsOf: formatFixture(fileExtension))
        #expect(file.info.format == format)
        #expect(file.info.sampleRate == 22050)
        #expect(file.info.channelCount == 2)
        #expect(!file.isTruncated)
        #expect(file.mono.count == wav.mono.count)
        let largest = zip(file.mono, wav.mono).map { abs($0 - $1) }.max() ?? 1
        #expect(largest <= 1e-6, "largest difference \(largest)")
        #expect(try AudioFileReader.readInfo(contentsOf: formatFixture(fileExtension)) == AudioFileInfo(
            format: format, sampleRate: 22050, channelCount: 2, frameCount: wav.mono.count, encodingDescription: "PCM signed 16-bit"))
    }

    /// Lossy codecs add delay and change the waveform, so they are compared by what survives: the
    /// rate, the length within the codec's padding, the level, and the two tones' energy.
    @Test(arguments: lossy)
    func lossyFormatsKeepTheSignal(fileExtension: String, format: AudioFormat) throws {
        let wav = try Self.reference()
        let file = try AudioFileReader.read(contentsOf: formatFixture(fileExtension))
        #expect(file.info.format == format)
        // Opus decodes at one of its own rates (libsndfile picks 24 kHz for a 22.05 kHz source).
        let rate = file.sampleRate
        #expect(format == .opus ? [24000, 48000].contains(rate) : rate == 22050)
        let expectedFrames = Double(wav.mono.count) * Double(rate) / 22050
        #expect(abs(Double(file.mono.count) - expectedFrames) < 0.1 * expectedFrames + 2000)
        // Codec delay and padding add near-silence at the ends: compare what lies between.
        func sounding(_ x: [Float]) -> [Float] {
            guard let first = x.firstIndex(where: { abs($0) > 0.05 }), let last = x.lastIndex(where: { abs($0) > 0.05 }) else { return [] }
            return Array(x[first...last])
        }
        let decoded = sounding(file.mono), reference = sounding(wav.mono)
        func rms(_ x: [Float]) -> Double { (x.reduce(0) { $0 + Double($1 * $1) } / Double(max(x.count, 1))).squareRoot() }
        #expect(abs(rms(decoded) / rms(reference) - 1) < 0.2, "RMS \(rms(decoded)) against \(rms(reference))")
        // Each tone's share of the power (a single-bin DFT) survives the codec.
        func share(_ x: [Float], _ frequency: Double, _ rate: Int) -> Double {
            var re = 0.0, im = 0.0
            for (t, v) in x.enumerated() {
                let phase = 2 * Double.pi * frequency * Double(t) / Double(rate)
                re += Double(v) * cos(phase); im += Double(v) * sin(phase)
            }
            return 2 * (re * re + im * im) / Double(x.count * x.count) / (rms(x) * rms(x))
        }
        for tone in [440.0, 660.0] {
            let ratio = share(decoded, tone, rate) / share(reference, tone, 22050)
            #expect(ratio > 0.7 && ratio < 1.3, "\(tone) Hz share ratio \(ratio)")
        }
    }

    @Test func streamingReadsEqualWholeReads() throws {
        for (fileExtension, _) in Self.lossless + Self.lossy + [("wav", .wav)] {
            let url = try formatFixture(fileExtension)
            let whole = try AudioFileReader.read(contentsOf: url).mono
            let stream = try AudioFileStream(contentsOf: url)
            var pieces: [Float] = []
            while let chunk = try stream.next(maximumFrames: 777) { pieces += chunk }
            #expect(pieces == whole, "\(fileExtension)")
        }
    }

    @Test func formatIsTakenFromTheBytesNotTheName() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        let misnamed = folder.appendingPathComponent("really-flac.wav")
        try FileManager.default.copyItem(at: try formatFixture("flac"), to: misnamed)
        #expect(try AudioFileReader.read(contentsOf: misnamed).info.format == .flac)
    }

    @Test func truncatedFLACDecodesAsFarAsItGoes() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        let bytes = try Data(contentsOf: try formatFixture("flac"))
        let half = folder.appendingPathComponent("half.flac")
        try bytes.prefix(bytes.count * 85 / 100).write(to: half)  // inside the second of two 4096-frame blocks
        let file = try AudioFileReader.read(contentsOf: half)
        #expect(file.isTruncated)
        #expect(file.mono.count == 4096)
        // Cut inside the stream header: nothing decodes, and the error names the file and the format.
        let tiny = folder.appendingPathComponent("tiny.flac")
        try bytes.prefix(30).write(to: tiny)
        #expect { try AudioFileReader.read(contentsOf: tiny) } throws: { error in
            guard let error = error as? AudioError, case .decodeFailed(let format, _) = error.problem else { return false }
            return format == "FLAC" && error.source == tiny.path
        }
    }

    @Test func mp3WithALyingHeaderFailsCleanly() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        var bytes = [UInt8](try Data(contentsOf: try formatFixture("mp3")))
        // Every frame header claims the reserved bit rate index 15 ("bad"), so no frame is valid.
        var index = 0
        while index + 3 < bytes.count {
            if bytes[index] == 0xFF, bytes[index + 1] & 0xE0 == 0xE0 { bytes[index + 2] |= 0xF0 }
            index += 1
        }
        let liar = folder.appendingPathComponent("liar.mp3")
        try Data(bytes).write(to: liar)
        do {
            let file = try AudioFileReader.read(contentsOf: liar)
            #expect(file.mono.allSatisfy { $0.isFinite })
        } catch let error as AudioError {
            #expect(error.source == liar.path)
        }
    }

    @Test func aFIFOIsRefusedWithoutBlocking() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        let fifo = folder.appendingPathComponent("live.wav")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        for read in [{ _ = try AudioFileReader.read(contentsOf: fifo) }, { _ = try AudioFileReader.readInfo(contentsOf: fifo) },
                     { _ = try AudioFileStream(contentsOf: fifo) }, { _ = try ClipLoader().load(contentsOf: fifo) }] {
            #expect(throws: AudioError(source: fifo.path, problem: .notRegularFile(kind: "a FIFO"))) { try read() }
        }
        #expect(throws: AudioError(source: folder.path, problem: .notRegularFile(kind: "a folder"))) {
            try AudioFileReader.read(contentsOf: folder)
        }
    }

    @Test func unsupportedFilesSayWhatTheySeemToBeAndWhatIsSupported() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        let cases: [([UInt8], String)] = [
            (Array("\u{0}\u{0}\u{0}\u{20}ftypM4A isom".utf8), "MP4/M4A (AAC or ALAC)"),
            (Array("%PDF-1.7".utf8), "a PDF document"),
            (Array("RF64\u{FF}\u{FF}\u{FF}\u{FF}WAVE".utf8), "RF64/BW64 WAV"),
            ([], "an empty file"),
            (Array("hello, world".utf8), "unknown (starts with 'hell')"),
        ]
        for (bytes, detected) in cases {
            let url = folder.appendingPathComponent("clip.bin")
            try Data(bytes).write(to: url)
            #expect(throws: AudioError(source: url.path, problem: .unsupportedFormat(detected: detected))) {
                try AudioFileReader.read(contentsOf: url)
            }
        }
        let message = AudioError(source: "x.m4a", problem: .unsupportedFormat(detected: "MP4/M4A (AAC or ALAC)")).description
        #expect(message.contains("FLAC") && message.contains("MP3") && message.contains("Opus") && message.hasPrefix("x.m4a: "))
    }

    /// Random byte mutations of every fixture: each read returns finite samples or throws
    /// `AudioError` naming the file; none traps or hangs.
    @Test func mutatedFilesDecodeOrFailCleanly() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        var generator = SeededGenerator(seed: 2026)
        for (fileExtension, _) in Self.lossless + Self.lossy {
            let original = [UInt8](try Data(contentsOf: try formatFixture(fileExtension)))
            for trial in 0..<40 {
                var bytes = original
                switch trial % 4 {
                case 0: bytes = Array(bytes.prefix(generator.nextInt(below: bytes.count)))
                case 1:
                    for _ in 0..<8 { bytes[generator.nextInt(below: min(bytes.count, 256))] = UInt8(truncatingIfNeeded: generator.next()) }
                case 2:
                    for _ in 0..<32 { bytes[generator.nextInt(below: bytes.count)] = UInt8(truncatingIfNeeded: generator.next()) }
                default:
                    let start = generator.nextInt(below: bytes.count)
                    bytes.removeSubrange(start..<min(bytes.count, start + generator.nextInt(below: 400) + 1))
                }
                let url = folder.appendingPathComponent("mutant.\(fileExtension)")
                try Data(bytes).write(to: url)
                do {
                    let file = try AudioFileReader.read(contentsOf: url)
                    #expect(file.mono.allSatisfy { $0.isFinite })
                } catch let error as AudioError {
                    #expect(error.source == url.path)
                }
            }
        }
    }

    @Test func clipLoaderResamplesEveryFormatTo16kHz() throws {
        let loader = ClipLoader()
        for (fileExtension, _) in Self.lossless + Self.lossy {
            let clip = try loader.load(contentsOf: formatFixture(fileExtension))
            #expect(abs(clip.count - 4000) < 1200, "\(fileExtension): \(clip.count) samples")
            #expect(abs(peakAmplitude(clip) - 1) < 1e-6)
        }
    }
}
