import ArgumentParser
import EnvNetModel
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe audio files: encoding, sample rate, channels, frames, duration and peak of the mono mix.",
        discussion: """
            Each file is read as a stream, a chunk at a time, so a file of any length takes a few \
            megabytes. A file that cannot be read is listed with the reason; the exit status is \
            then non-zero.

            Examples:
              envnet inspect clip.wav
              envnet inspect audio/*.wav --json
              envnet inspect recording.flac voice.mp3
            """)

    @Argument(help: "Audio files (WAV, FLAC, Ogg Vorbis, Opus, MP3, AIFF/AIFC, CAF, W64).") var files: [String]
    @Flag(help: "Print one JSON document.") var json = false

    struct Entry: Codable {
        var path: String
        var format: String?
        var encoding: String?
        var sampleRate: Int?
        var channels: Int?
        var frames: Int?
        var duration: Double?
        var peak: Float?
        var truncated: Bool?
        var error: String?
    }

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one audio file") }
    }

    func run() throws {
        var entries: [Entry] = []
        for path in files {
            do {
                // Streamed: the peak and the frame count come from the samples actually present.
                let stream = try AudioFileStream(contentsOf: URL(fileURLWithPath: path))
                var peak: Float = 0, frames = 0
                while let chunk = try stream.next(maximumFrames: 1 << 16) {
                    peak = Swift.max(peak, peakAmplitude(chunk))
                    frames += chunk.count
                }
                let info = stream.info
                // MP3 headers give an estimate; for the others fewer frames than declared is a truncation.
                let truncated = info.format != .mp3 && frames < info.frameCount
                entries.append(Entry(path: path, format: info.format.rawValue, encoding: info.encodingDescription, sampleRate: info.sampleRate,
                                     channels: info.channelCount, frames: frames, duration: Double(frames) / Double(info.sampleRate), peak: peak,
                                     truncated: truncated, error: nil))
            } catch {
                entries.append(Entry(path: path, error: "\(error)"))
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(entries), as: UTF8.self))
        } else {
            for entry in entries {
                if let error = entry.error {
                    print("\(entry.path): error: \(error)")
                } else {
                    print(String(format: "%@: %@, %@, %d Hz, %d channel%@, %d frames, %.3f s, peak %.4f%@",
                                 entry.path, entry.format!, entry.encoding!, entry.sampleRate!, entry.channels!, entry.channels! == 1 ? "" : "s",
                                 entry.frames!, entry.duration!, entry.peak!, entry.truncated! ? " (truncated: decoded as far as it goes)" : ""))
                }
            }
        }
        if entries.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }
}

struct Resample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Resample a WAV file (band-limited windowed-sinc, Kaiser window), keeping its channels.",
        discussion: """
            Writes 16-bit PCM by default, or 32-bit float with --float.

            Examples:
              envnet resample clip44k.wav clip16k.wav --rate 16000
              envnet resample in.wav out.wav --rate 22050 --float
            """)

    @Argument(help: "The input WAV file.") var input: String
    @Argument(help: "The output WAV file (written atomically).") var output: String
    @Option(help: "The output sample rate in Hz.") var rate: Int
    @Flag(help: "Write 32-bit float samples instead of 16-bit PCM.") var float = false

    func validate() throws {
        let rates = WAVReader.supportedSampleRates
        guard rates.contains(rate) else {
            throw ValidationError("--rate must be between \(rates.lowerBound) and \(rates.upperBound) Hz, got \(rate)")
        }
    }

    func run() throws {
        let audio = try WAVReader.read(atPath: input)
        let resampler = try Resampler(from: audio.info.sampleRate, to: rate)
        let channels = audio.channels.map { resampler.process($0) }
        try WAVWriter.write(channels: channels, sampleRate: rate, format: float ? .float32 : .pcm16, to: URL(fileURLWithPath: output))
        print("\(output): \(channels.first?.count ?? 0) frames at \(rate) Hz, \(channels.count) channel\(channels.count == 1 ? "" : "s")")
    }
}
