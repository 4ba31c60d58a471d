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

struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export the log-mel CNN's features of an audio file as safetensors.",
        discussion: """
            The clip is decoded, mixed to mono, resampled to 22050 Hz and peak-normalized (the \
            log-mel CNN's preprocessing; --normalization int16 keeps full scale), then cut into \
            segments of 41 frames (20991 samples) every 10240 samples; a clip one segment long or \
            shorter gives one segment (zero-padded equally on both sides). Each segment's log-mel \
            spectrogram is torchaudio's MelSpectrogram(sample_rate=22050, n_fft=1024, hop_length=512, \
            n_mels=60, normalized=True) then AmplitudeToDB(top_db=80), the 80 dB floor per segment \
            (Docs/reproducing-esc50.md, the log-mel CNN).

            The file holds one tensor `log_mel` of shape [segments, 60, 41] in dB, before the \
            network's mean and standard deviation are applied; its metadata lists the segment \
            starts, the segments that the network's -70 dB rule counts as silent, and the settings.

            Examples:
              envnet features --log-mel dog.wav --output dog-logmel.safetensors
            """)

    @Flag(help: "Log-mel features (the only kind so far; required).") var logMel = false
    @Argument(help: "The audio file (WAV, FLAC, Ogg Vorbis, Opus, MP3, AIFF/AIFC, CAF, W64).") var file: String
    @Option(help: "The safetensors file to write (atomically).") var output: String
    @Option(help: ArgumentHelp("Amplitude normalization after decoding: peak (the log-mel CNN's) or int16 (full scale).", valueName: "peak|int16"))
    var normalization = "peak"

    func validate() throws {
        guard logMel else { throw ValidationError("choose the features to export: --log-mel") }
        guard ["peak", "int16"].contains(normalization) else { throw ValidationError("--normalization must be peak or int16, not \(normalization)") }
    }

    func run() throws {
        let outputURL = URL(fileURLWithPath: output)
        try AtomicFile.checkWritableFolder(outputURL.deletingLastPathComponent())
        let spectrogram = try LogMelSpectrogram()
        let settings = spectrogram.settings
        let loader = ClipLoader(settings: PreprocessingSettings(sampleRate: settings.sampleRate,
                                                                normalization: normalization == "int16" ? .int16FullScale : .peak))
        let samples = try loader.load(contentsOf: URL(fileURLWithPath: file))
        let segments = spectrogram.segments(of: samples)
        let frames = settings.segmentFrames, bands = settings.melBands
        var values: [Float] = []
        values.reserveCapacity(segments.count * bands * frames)
        var silent: [Int] = []
        for (index, segment) in segments.enumerated() {
            let decibels = spectrogram.decibels(of: segment)
            if spectrogram.isSilent(decibels: decibels) { silent.append(index) }
            values += decibels
        }
        let starts = spectrogram.segmentStarts(sampleCount: samples.count)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys  // the same metadata bytes from run to run
        let metadata: [String: String] = [
            "envnet.features": "log-mel",
            "envnet.feature_settings": String(decoding: try encoder.encode(settings), as: UTF8.self),
            "envnet.segment_starts": String(decoding: try encoder.encode(starts), as: UTF8.self),
            "envnet.silent_segments": String(decoding: try encoder.encode(silent), as: UTF8.self),
            "envnet.source": file,
            "envnet.normalization": normalization,
        ]
        let tensors = ["log_mel": Tensor(values, shape: [segments.count, bands, frames])]
        try SafeTensors(tensors: tensors, metadata: metadata).write(to: outputURL)
        let duration = Double(samples.count) / Double(settings.sampleRate)
        print(String(format: "%@: %.2f s at %d Hz -> log_mel [%d, %d, %d] (%d silent) in %@", terminalSafe(file), duration, settings.sampleRate,
                     segments.count, bands, frames, silent.count, terminalSafe(output)))
    }
}
