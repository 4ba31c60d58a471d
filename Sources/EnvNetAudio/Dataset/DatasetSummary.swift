import EnvNetTensor
import Foundation

/// What a dataset holds, as printed before training: classes, clips per class, folds, duration,
/// formats and sample rates. Building it reads every file's header, so it also finds every
/// missing, unreadable or unsupported file before any long work.
public struct DatasetSummary: Sendable, CustomStringConvertible {
    /// The dataset's name and place.
    public var name: String
    /// Class names with their clip counts, in label order.
    public var clipsPerClass: [(name: String, clips: Int)]
    /// Fold numbers with their clip counts, ascending.
    public var clipsPerFold: [(fold: Int, clips: Int)]
    /// Whether the folds are the dataset's own.
    public var hasOwnFolds: Bool
    /// The summed duration the headers announce, in seconds.
    public var totalSeconds: Double
    /// Clips per format.
    public var formats: [AudioFormat: Int]
    /// Clips per sample rate.
    public var sampleRates: [Int: Int]
    /// Clips per channel count.
    public var channelCounts: [Int: Int]
    /// The shortest and longest clip, in seconds.
    public var durationRange: ClosedRange<Double>

    public var description: String {
        func histogram<K: Comparable>(_ values: [K: Int], _ name: (K) -> String) -> String {
            values.sorted { $0.key < $1.key }.map { "\(name($0.key)) \($0.value)" }.joined(separator: ", ")
        }
        // Headers are the files' claims: clamp before converting, so a crafted length cannot trap.
        let total = min(max(totalSeconds, 0), 1e12)
        let hours = Int(total) / 3600, minutes = Int(total) % 3600 / 60, seconds = total.truncatingRemainder(dividingBy: 60)
        // Names come from folder names and CSV files: printed escaped (see `terminalSafe`).
        var lines = ["dataset: \(terminalSafe(name))"]
        lines.append("  \(clipsPerClass.count) classes: " + clipsPerClass.map { "\(terminalSafe($0.name)) \($0.clips)" }.joined(separator: ", "))
        lines.append("  \(clipsPerFold.reduce(0) { $0 + $1.clips }) clips in \(clipsPerFold.count) folds (\(hasOwnFolds ? "the dataset's own" : "drawn, stratified by class")): "
                     + clipsPerFold.map { "fold \($0.fold) \($0.clips)" }.joined(separator: ", "))
        lines.append(String(format: "  duration %d:%02d:%04.1f in all, clips of %.2f-%.2f s", hours, minutes, seconds,
                            durationRange.lowerBound, durationRange.upperBound))
        lines.append("  formats: " + histogram(Dictionary(uniqueKeysWithValues: formats.map { ($0.key.rawValue, $0.value) }), { $0 })
                     + "; rates: " + histogram(sampleRates, { "\($0) Hz" }) + "; channels: " + histogram(channelCounts, { "\($0)" }))
        return lines.joined(separator: "\n")
    }
}

extension AudioDataset {
    /// Reads every clip's header (in parallel) and summarises the dataset.
    ///
    /// - Parameter progress: Called with (headers read, total), from worker threads.
    /// - Returns: The summary.
    /// - Throws: `DatasetError.unusableAudioFiles` listing every file that is missing, not a
    ///   regular file, unsupported or damaged, each with its reason.
    public func summary(progress: (@Sendable (Int, Int) -> Void)? = nil) throws -> DatasetSummary {
        let urls = clips.map(url(for:))
        let counter = ProgressCounter(total: urls.count, callback: progress)
        let results = concurrentMap(count: urls.count) { index -> AudioFileInfo in
            defer { counter.increment() }
            return try AudioFileReader.readInfo(contentsOf: urls[index])
        }
        var infos: [AudioFileInfo] = []
        var problems: [AudioFileProblem] = []
        for (url, result) in zip(urls, results) {
            switch result {
            case .success(let info): infos.append(info)
            case .failure(let error): problems.append(Self.problem(url: url, error: error))
            }
        }
        if !problems.isEmpty { throw DatasetError.unusableAudioFiles(problems) }
        var perClass = [Int](repeating: 0, count: classCount)
        var perFold: [Int: Int] = [:]
        for clip in clips {
            perClass[clip.label] += 1
            perFold[clip.fold, default: 0] += 1
        }
        let durations = infos.map(\.duration)
        return DatasetSummary(
            name: displayName,
            clipsPerClass: zip(classNames, perClass).map { ($0, $1) },
            clipsPerFold: perFold.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
            hasOwnFolds: hasOwnFolds,
            totalSeconds: durations.reduce(0, +),
            formats: infos.reduce(into: [:]) { $0[$1.format, default: 0] += 1 },
            sampleRates: infos.reduce(into: [:]) { $0[$1.sampleRate, default: 0] += 1 },
            channelCounts: infos.reduce(into: [:]) { $0[$1.channelCount, default: 0] += 1 },
            durationRange: (durations.min() ?? 0)...(durations.max() ?? 0))
    }

    static func problem(url: URL, error: any Error) -> AudioFileProblem {
        let missing = (error as? AudioError)?.problem == .readFailed("no such file")
        let reason = missing ? "missing" : (error as? AudioError)?.problemSummary ?? "\(error)"
        return AudioFileProblem(path: url.path, isMissing: missing, reason: reason)
    }

    /// A fingerprint of the data: a hash of the sorted relative paths with their class names,
    /// folds and file sizes. Moving the folder keeps it; adding, removing, relabelling,
    /// re-folding or re-encoding a clip changes it.
    ///
    /// - Returns: 16 hexadecimal digits.
    /// - Throws: `DatasetError.unusableAudioFiles` for files whose size cannot be read.
    public func fingerprint() throws -> String {
        var lines: [String] = []
        var problems: [AudioFileProblem] = []
        for clip in clips {
            let url = url(for: clip)
            // Through symbolic links: the fingerprint is of the data, not of the links.
            guard let size = (try? FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path))?[.size] as? NSNumber else {
                problems.append(AudioFileProblem(path: url.path, isMissing: true, reason: "missing"))
                continue
            }
            lines.append("\(clip.path)\t\(classNames[clip.label])\t\(clip.fold)\t\(size.int64Value)")
        }
        if !problems.isEmpty { throw DatasetError.unusableAudioFiles(problems) }
        let text = lines.sorted().joined(separator: "\n")
        let hash = fnv1a64(Array(text.utf8))
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
