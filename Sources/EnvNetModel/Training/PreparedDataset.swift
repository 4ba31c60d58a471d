import EnvNetAudio
import Foundation

/// A dataset decoded, resampled to 16 kHz and normalized, ready for training and evaluation.
///
/// ```swift
/// let dataset = try AudioDataset.load(from: URL(fileURLWithPath: "my-sounds"))
/// let prepared = try PreparedDataset(dataset: dataset)
/// let (training, test) = prepared.split(testFold: 5)
/// ```
public struct PreparedDataset: Sendable {
    /// The dataset's clips and metadata.
    public let dataset: AudioDataset
    /// The preprocessed samples of every clip, in `dataset.clips` order.
    public let samples: [[Float]]
    /// The preprocessing that produced them.
    public let settings: PreprocessingSettings
    /// True when the preprocessing cache was (re)built rather than read.
    public let cacheWasRebuilt: Bool

    /// The class names, by label.
    public var classNames: [String] { dataset.classNames }

    /// The default cache folder: `~/.cache/envnet`. (The `envnet` command uses
    /// ``cacheFolder(xdgCacheHome:)`` with `$XDG_CACHE_HOME`; the library reads no environment.)
    public static var defaultCacheFolder: URL { cacheFolder(xdgCacheHome: nil) }

    /// The cache folder of the XDG convention: `<xdgCacheHome>/envnet`, or `~/.cache/envnet`
    /// when it is nil or empty.
    /// - Parameter xdgCacheHome: The value of `XDG_CACHE_HOME`, which a program reads and passes.
    public static func cacheFolder(xdgCacheHome: String?) -> URL {
        if let xdg = xdgCacheHome, !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("envnet")
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/envnet")
    }

    /// Loads the preprocessed clips of a dataset from the cache, building the cache in parallel
    /// when the files or settings changed.
    /// - Parameters:
    ///   - dataset: Any ``AudioDataset`` (folder per class, manifest, ESC-50, UrbanSound8K).
    ///   - settings: the preprocessing (16 kHz, peak normalization by default).
    ///   - cacheFolder: where the cache file lives.
    ///   - progress: (done, total) while the cache is built, from worker threads.
    /// - Throws: `DatasetError` listing every missing or broken file; errors writing the cache.
    public init(dataset: AudioDataset, settings: PreprocessingSettings = .seedArticle,
                cacheFolder: URL = PreparedDataset.defaultCacheFolder, progress: (@Sendable (Int, Int) -> Void)? = nil) throws {
        self.dataset = dataset
        self.settings = settings
        let loaded = try PreprocessingCache(directory: cacheFolder).load(dataset, settings: settings, progress: progress)
        samples = loaded.samples
        cacheWasRebuilt = loaded.wasRebuilt
    }

    /// Reads `meta/esc50.csv` under `root`, checks every audio file, and loads the preprocessed
    /// clips (see ``init(dataset:settings:cacheFolder:progress:)``).
    /// - Parameters:
    ///   - root: the dataset folder (`audio/`, `meta/esc50.csv`).
    ///   - subset: all of ESC-50 or the ESC-10 subset (renumbered 0..<10).
    ///   - settings: the preprocessing.
    ///   - cacheFolder: where the cache file lives.
    ///   - progress: (done, total) while the cache is built.
    /// - Throws: `DatasetError` listing every missing or broken file; errors writing the cache.
    public init(root: URL, subset: ESC50Subset = .esc50, settings: PreprocessingSettings = .seedArticle,
                cacheFolder: URL = PreparedDataset.defaultCacheFolder, progress: (@Sendable (Int, Int) -> Void)? = nil) throws {
        let esc50 = try ESC50Dataset(root: root, subset: subset, verifyingAudio: true)
        try self.init(dataset: AudioDataset(esc50: esc50), settings: settings, cacheFolder: cacheFolder, progress: progress)
    }

    /// The labelled clips of the given folds.
    public func clips(inFolds folds: Set<Int>) -> [LabeledClip] {
        zip(dataset.clips, samples).filter { folds.contains($0.0.fold) }.map {
            LabeledClip(samples: $0.1, label: $0.0.label, name: $0.0.path)
        }
    }

    /// Training clips (every fold but `testFold`) and test clips (`testFold`).
    public func split(testFold: Int) -> (training: [LabeledClip], test: [LabeledClip]) {
        let others = Set(dataset.folds).subtracting([testFold])
        return (clips(inFolds: others), clips(inFolds: [testFold]))
    }
}
