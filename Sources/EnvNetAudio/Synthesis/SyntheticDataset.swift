import EnvNetTensor
import Foundation

/// Settings of the synthetic ESC-50-layout dataset.
public struct SyntheticDatasetConfiguration: Sendable, Hashable {
    /// Clips generated per class (40 as in ESC-50).
    public var clipsPerClass: Int
    /// The seed; the same seed gives the same dataset.
    public var seed: UInt64
    /// The sampling rate of the written files (44.1 kHz as in ESC-50).
    public var sampleRate: Int
    /// Clip duration in seconds (5 as in ESC-50).
    public var duration: Double
    /// Number of cross-validation folds; clip `i` of every class goes to fold `i % folds + 1`.
    public var folds: Int
    /// The classes to generate, in target order.
    public var classes: [SyntheticSoundClass]

    /// Creates a configuration.
    ///
    /// - Parameters:
    ///   - clipsPerClass: Clips per class, positive.
    ///   - seed: The seed.
    ///   - sampleRate: Sampling rate of the files in Hz.
    ///   - duration: Clip length in seconds, positive.
    ///   - folds: Number of folds, positive.
    ///   - classes: The classes, in target order.
    public init(clipsPerClass: Int = 40, seed: UInt64 = 0, sampleRate: Int = 44100,
                duration: Double = 5, folds: Int = 5,
                classes: [SyntheticSoundClass] = SyntheticSoundClass.allCases) {
        self.clipsPerClass = clipsPerClass
        self.seed = seed
        self.sampleRate = sampleRate
        self.duration = duration
        self.folds = folds
        self.classes = classes
    }
}

/// Writes a synthetic dataset in ESC-50 layout (`audio/*.wav`, 16-bit mono, and
/// `meta/esc50.csv` with the real header), readable by `ESC50Dataset`.
///
/// Every clip is: a class-specific event signal with random parameters; one or two silent
/// gaps faded in and out; background noise at a random level; sometimes trailing digital
/// silence (as ESC-50 pads short recordings); and a random overall level. The level is drawn
/// from the same wide range for every class and applied to the RMS, so loudness alone does
/// not identify a class.
public enum SyntheticDataset {
    /// Generates the dataset, in parallel, replacing files of the same names.
    ///
    /// - Parameters:
    ///   - root: The dataset folder; `audio/` and `meta/` are created inside it.
    ///   - configuration: What to generate.
    ///   - progress: Called with (clips done, total) from worker threads.
    /// - Returns: The clips written, in metadata (file name) order.
    /// - Throws: `AudioError` for invalid settings or when a file cannot be written.
    @discardableResult
    public static func generate(
        at root: URL, configuration: SyntheticDatasetConfiguration = .init(),
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> [ESC50Clip] {
        guard configuration.clipsPerClass > 0, configuration.folds > 0,
              configuration.duration > 0, configuration.sampleRate > 0,
              !configuration.classes.isEmpty else {
            throw AudioError(source: root.path,
                             problem: .invalidArgument("invalid synthetic dataset configuration"))
        }
        let audioFolder = root.appendingPathComponent("audio")
        let metaFolder = root.appendingPathComponent("meta")
        do {
            try FileManager.default.createDirectory(at: audioFolder, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: metaFolder, withIntermediateDirectories: true)
        } catch {
            throw AudioError(source: root.path, problem: .writeFailed(error.localizedDescription))
        }
        let classes = configuration.classes
        let perClass = configuration.clipsPerClass
        let total = classes.count * perClass
        let counter = ProgressCounter(total: total, callback: progress)
        let results = concurrentMap(count: total) { job -> ESC50Clip in
            let target = job / perClass, index = job % perClass
            let clip = clipRecord(target: target, index: index, configuration: configuration)
            let samples = synthesizeClip(
                classes[target], target: target, index: index, configuration: configuration)
            try WAVWriter.write(samples, sampleRate: configuration.sampleRate, format: .pcm16,
                                to: audioFolder.appendingPathComponent(clip.filename))
            counter.increment()
            return clip
        }
        let clips = try results.map { try $0.get() }.sorted { $0.filename < $1.filename }
        var csv = ESC50Dataset.requiredColumns.joined(separator: ",") + "\n"
        for clip in clips {
            csv += "\(clip.filename),\(clip.fold),\(clip.target),\(clip.category),"
                + "\(clip.isESC10 ? "True" : "False"),\(clip.sourceFile),\(clip.take)\n"
        }
        try AtomicFile.write(Data(csv.utf8), to: metaFolder.appendingPathComponent("esc50.csv"))
        return clips
    }

    /// The sample rates the UrbanSound8K-layout generator cycles through (UrbanSound8K itself has
    /// 8 kHz to 192 kHz).
    public static let urbanSound8KRates = [44100, 48000, 22050, 8000, 96000, 11025, 192000, 16000]

    /// Generates a dataset in UrbanSound8K layout: `audio/fold1` … `audio/foldN` and
    /// `metadata/UrbanSound8K.csv` with the real header.
    ///
    /// Each source recording (`fsID`) gives two slices of the same class in the same fold; clip
    /// durations are drawn from 0.3 s to `configuration.duration`, and rates, encodings (16-bit
    /// PCM or 32-bit float) and channel counts (1 or 2) vary from source to source, as in
    /// UrbanSound8K. `configuration.sampleRate` is not used.
    ///
    /// - Parameters:
    ///   - root: The dataset folder.
    ///   - configuration: Classes, clips per class (rounded up to an even number), folds (10 in
    ///     UrbanSound8K), seed and the longest duration.
    /// - Returns: The number of clips written.
    /// - Throws: `AudioError` for invalid settings or when a file cannot be written.
    @discardableResult
    public static func generateUrbanSound8K(at root: URL, configuration: SyntheticDatasetConfiguration) throws -> Int {
        guard configuration.clipsPerClass > 0, configuration.folds > 0, configuration.duration >= 0.3,
              !configuration.classes.isEmpty else {
            throw AudioError(source: root.path, problem: .invalidArgument("invalid synthetic dataset configuration"))
        }
        let sources = (configuration.clipsPerClass + 1) / 2
        let jobs = configuration.classes.count * sources
        for fold in 1...configuration.folds {
            do {
                try FileManager.default.createDirectory(at: root.appendingPathComponent("audio/fold\(fold)"), withIntermediateDirectories: true)
            } catch {
                throw AudioError(source: root.path, problem: .writeFailed(error.localizedDescription))
            }
        }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("metadata"), withIntermediateDirectories: true)
        let results = concurrentMap(count: jobs) { job -> [String] in
            let classID = job / sources, index = job % sources
            let fsID = 10_000 + classID * 1000 + index
            // Folds by source, so that the two slices of a source share one.
            let fold = index % configuration.folds + 1
            var generator = SeededGenerator(seed: configuration.seed, stream: 0x5553_3800_0000 | UInt64(job))
            var settings = configuration
            settings.sampleRate = urbanSound8KRates[job % urbanSound8KRates.count]
            let formats: [WAVSampleFormat] = [.pcm16, .float32]
            let format = formats[generator.nextInt(below: formats.count)]
            let channels = 1 + generator.nextInt(below: 2)
            var rows: [String] = []
            for slice in 0..<2 {
                settings.duration = generator.nextDouble(in: 0.3...configuration.duration)
                let mono = synthesizeClip(configuration.classes[classID], target: classID, index: index * 2 + slice, configuration: settings)
                let name = "\(fsID)-\(classID)-0-\(slice).wav"
                try WAVWriter.write(channels: Array(repeating: mono, count: channels), sampleRate: settings.sampleRate, format: format,
                                    to: root.appendingPathComponent("audio/fold\(fold)/\(name)"))
                let start = Double(slice) * 4
                rows.append("\(name),\(fsID),\(start),\(start + settings.duration),1,\(fold),\(classID),\(configuration.classes[classID].name)")
            }
            return rows
        }
        let rows = try results.flatMap { try $0.get() }
        let csv = "slice_file_name,fsID,start,end,salience,fold,classID,class\n" + rows.map { $0 + "\n" }.joined()
        try AtomicFile.write(Data(csv.utf8), to: root.appendingPathComponent("metadata/UrbanSound8K.csv"))
        return rows.count
    }

    /// Synthesizes one complete clip (event, gaps, background, level), deterministically.
    ///
    /// - Parameters:
    ///   - soundClass: The class.
    ///   - target: The class's target number (part of the clip's random stream).
    ///   - index: The clip's index within its class.
    ///   - configuration: Rate, duration and seed.
    /// - Returns: The clip's samples, within `[-1, 1]`.
    public static func synthesizeClip(
        _ soundClass: SyntheticSoundClass, target: Int, index: Int,
        configuration: SyntheticDatasetConfiguration
    ) -> [Float] {
        var generator = SeededGenerator(
            seed: configuration.seed, stream: UInt64(target) << 32 | UInt64(index))
        let rate = Double(configuration.sampleRate)
        let count = Int(configuration.duration * rate)
        var event = peakNormalized(
            soundClass.synthesize(count: count, sampleRate: configuration.sampleRate,
                                  using: &generator))

        // Silent gaps in the event, with 10 ms fades so they do not click.
        let fade = max(1, Int(0.01 * rate))
        for _ in 0..<generator.nextInt(below: 3) {
            // At most a quarter of the clip each, so short clips keep most of their event.
            let length = min(Int(generator.nextDouble(in: 0.2...1.0) * rate), count / 4)
            guard length > 0 else { break }
            let start = generator.nextInt(below: count - length)
            for offset in 0..<length {
                let edge = min(offset, length - 1 - offset)
                let gain = edge < fade ? 1 - Float(edge) / Float(fade) : 0
                event[start + offset] *= gain
            }
        }

        // Background: gently low-passed noise 20-45 dB below the event's peak.
        let backgroundLevel = pow(10, generator.nextDouble(in: -45 ... -20) / 20)
        var state = 0.0
        var clip = [Float](repeating: 0, count: count)
        for index in 0..<count {
            state += 0.3 * (generator.nextDouble(in: -1...1) - state)
            clip[index] = event[index] + Float(backgroundLevel * state * 2)
        }

        // Sometimes trailing digital silence, as ESC-50 pads recordings shorter than 5 s.
        if generator.nextInt(below: 4) == 0 {
            let silence = min(Int(generator.nextDouble(in: 0.2...1.5) * rate), count * 3 / 10)
            for index in max(0, count - silence)..<count { clip[index] = 0 }
        }

        // Random level set on the RMS (same range for every class), peaks limited to 0.99.
        let level = pow(10, generator.nextDouble(in: -42 ... -14) / 20)
        let currentRMS = (clip.reduce(0.0) { $0 + Double($1) * Double($1) }
            / Double(max(1, count))).squareRoot()
        guard currentRMS > 0 else { return clip }
        var scale = level / currentRMS
        let peak = Double(peakAmplitude(clip))
        if peak * scale > 0.99 { scale = 0.99 / peak }
        return clip.map { Float(Double($0) * scale) }
    }

    private static func clipRecord(
        target: Int, index: Int, configuration: SyntheticDatasetConfiguration
    ) -> ESC50Clip {
        let fold = index % configuration.folds + 1
        let source = String(100_000 + target * 1000 + index)
        let filename = "\(fold)-\(source)-A-\(target).wav"
        return ESC50Clip(
            filename: filename, fold: fold, target: target, label: target,
            category: configuration.classes[target].name, isESC10: false,
            sourceFile: source, take: "A")
    }
}

/// Counts finished jobs across threads and forwards them to a progress callback.
final class ProgressCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var done = 0
    private let total: Int
    private let callback: (@Sendable (Int, Int) -> Void)?

    init(total: Int, callback: (@Sendable (Int, Int) -> Void)?) {
        self.total = total
        self.callback = callback
    }

    func increment() {
        // Reporting under the lock keeps the reported counts increasing.
        lock.lock()
        defer { lock.unlock() }
        done += 1
        callback?(done, total)
    }
}
