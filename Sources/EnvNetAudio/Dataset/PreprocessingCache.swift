import EnvNetTensor
import Foundation

/// The preprocessed clips of a dataset, ready for cropping.
public struct PreprocessedDataset: Sendable {
    /// The clips, in the dataset's order.
    public let clips: [AudioClip]
    /// Mono samples at `settings.sampleRate`, parallel to `clips`.
    public let samples: [[Float]]
    /// The preprocessing that produced the samples.
    public let settings: PreprocessingSettings
    /// Whether the cache had to be (re)built rather than read.
    public let wasRebuilt: Bool
}

/// Keeps a dataset's preprocessed clips in one versioned binary file, so that decoding and
/// resampling 2000 files happens once instead of on every run.
///
/// File layout (all integers little-endian):
/// ```
/// "ENVNETPC"                  8-byte magic
/// UInt32 format version       currently 1
/// UInt32 reserved             0
/// UInt64 key                  FNV-1a hash of the sources and settings (see below)
/// UInt64 clip count
/// UInt64 metadata byte count  M
/// M bytes                     JSON array of {clip, sampleCount}, padded with spaces to 4 bytes
/// Float32 samples             every clip's samples, concatenated in clip order
/// ```
/// The key hashes the format version, the preprocessing settings, the layout, and for every
/// clip its path, file size and modification time (through symbolic links). Labels and folds are
/// not in it: relabelling or drawing other folds reuses the decoded samples. A file whose magic,
/// version, key or sizes do not match is stale and rebuilt; it is never trusted.
///
/// Building decodes clips in parallel and reports progress; the file is written atomically,
/// so an interrupted build leaves the previous cache (or none), never a torn one. Loading
/// reads the whole file with one read.
public struct PreprocessingCache: Sendable {
    /// The folder holding cache files.
    public let directory: URL
    /// The current file format version; bump it whenever the layout or preprocessing code
    /// changes meaning.
    public static let formatVersion: UInt32 = 2
    static let magic = Array("ENVNETPC".utf8)
    static let fixedHeaderSize = 8 + 4 + 4 + 8 + 8 + 8

    /// Creates a cache rooted at a folder (created on first write).
    ///
    /// - Parameter directory: The cache folder.
    public init(directory: URL) {
        self.directory = directory
    }

    /// The cache file used for a dataset (one per dataset folder and subset; the settings
    /// are in the key, so changing them replaces the file rather than adding another).
    ///
    /// - Parameter dataset: The dataset.
    /// - Returns: The cache file's URL.
    public func cacheURL(for dataset: AudioDataset) -> URL {
        let rootHash = fnv1a64(Array(dataset.source.standardizedFileURL.path.utf8))
        let kind = dataset.subset.map(\.rawValue) ?? dataset.layout.rawValue
        return directory.appendingPathComponent("\(kind)-\(String(rootHash, radix: 16)).envcache")
    }

    /// The key that a valid cache file for this dataset and these settings must carry.
    ///
    /// - Parameters:
    ///   - dataset: The dataset.
    ///   - settings: The preprocessing settings.
    /// - Returns: The 64-bit key.
    /// - Throws: `DatasetError.unusableAudioFiles` listing files whose attributes cannot be read.
    public func key(for dataset: AudioDataset, settings: PreprocessingSettings) throws -> UInt64 {
        var description = "version=\(Self.formatVersion)\n\(settings)\nlayout=\(dataset.layout.rawValue)\n"
        var problems: [AudioFileProblem] = []
        for clip in dataset.clips {
            let url = dataset.url(for: clip)
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path),
                  let size = attributes[.size] as? NSNumber,
                  let modified = attributes[.modificationDate] as? Date else {
                problems.append(AudioFileProblem(path: url.path, isMissing: true, reason: "missing"))
                continue
            }
            // Labels and folds are not part of the key: relabelling or re-drawing folds needs no new decoding.
            description += "\(clip.path)\t\(size.int64Value)\t"
                + "\(Int64((modified.timeIntervalSince1970 * 1_000_000).rounded()))\n"
        }
        if !problems.isEmpty { throw DatasetError.unusableAudioFiles(problems) }
        return fnv1a64(Array(description.utf8))
    }

    /// Loads the dataset's preprocessed clips from the cache, rebuilding the cache first when
    /// it is missing or stale.
    ///
    /// - Parameters:
    ///   - dataset: The dataset.
    ///   - settings: The preprocessing settings.
    ///   - progress: Called with (clips done, total) while building, from worker threads.
    /// - Returns: The preprocessed clips.
    /// - Throws: `DatasetError.unusableAudioFiles` listing every file that fails to load, or
    ///   `AudioError` when the cache cannot be written.
    public func load(
        _ dataset: AudioDataset, settings: PreprocessingSettings,
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> PreprocessedDataset {
        let key = try key(for: dataset, settings: settings)
        let url = cacheURL(for: dataset)
        if let samples = read(url: url, key: key, clips: dataset.clips) {
            return PreprocessedDataset(clips: dataset.clips, samples: samples, settings: settings,
                                       wasRebuilt: false)
        }
        let samples = try build(dataset, settings: settings, progress: progress)
        AtomicFile.removeStaleTemporaryFiles(for: url)  // left by a process killed while writing
        try write(samples: samples, clips: dataset.clips, key: key, to: url)
        return PreprocessedDataset(clips: dataset.clips, samples: samples, settings: settings,
                                   wasRebuilt: true)
    }

    /// Loads an ESC-50-layout dataset's clips (see ``load(_:settings:progress:)``).
    ///
    /// - Parameters:
    ///   - dataset: The dataset.
    ///   - settings: The preprocessing settings.
    ///   - progress: Called with (clips done, total) while building.
    /// - Returns: The preprocessed clips.
    /// - Throws: As ``load(_:settings:progress:)``.
    public func load(
        _ dataset: ESC50Dataset, settings: PreprocessingSettings,
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> PreprocessedDataset {
        try load(AudioDataset(esc50: dataset), settings: settings, progress: progress)
    }

    // MARK: - Building

    private func build(
        _ dataset: AudioDataset, settings: PreprocessingSettings,
        progress: (@Sendable (Int, Int) -> Void)?
    ) throws -> [[Float]] {
        let loader = ClipLoader(settings: settings)
        let urls = dataset.clips.map(dataset.url(for:))
        let counter = ProgressCounter(total: urls.count, callback: progress)
        let results = concurrentMap(count: urls.count) { index -> [Float] in
            defer { counter.increment() }
            return try loader.load(contentsOf: urls[index])
        }
        var samples: [[Float]] = []
        var problems: [AudioFileProblem] = []
        for (url, result) in zip(urls, results) {
            switch result {
            case .success(let clip):
                samples.append(clip)
            case .failure(let error):
                problems.append(AudioDataset.problem(url: url, error: error))
            }
        }
        if !problems.isEmpty { throw DatasetError.unusableAudioFiles(problems) }
        return samples
    }

    private struct ClipEntry: Codable {
        var clip: AudioClip
        var sampleCount: Int
    }

    private func write(samples: [[Float]], clips: [AudioClip], key: UInt64, to url: URL) throws {
        let entries = zip(clips, samples).map { ClipEntry(clip: $0, sampleCount: $1.count) }
        var metadata: Data
        do {
            metadata = try JSONEncoder().encode(entries)
        } catch {
            throw AudioError(source: url.path, problem: .writeFailed(error.localizedDescription))
        }
        while metadata.count % 4 != 0 { metadata.append(0x20) }
        let sampleCount = samples.reduce(0) { $0 + $1.count }
        var data = Data(capacity: Self.fixedHeaderSize + metadata.count + sampleCount * 4)
        data.append(contentsOf: Self.magic)
        appendLittleEndian(Self.formatVersion, to: &data)
        appendLittleEndian(UInt32(0), to: &data)
        appendLittleEndian(key, to: &data)
        appendLittleEndian(UInt64(clips.count), to: &data)
        appendLittleEndian(UInt64(metadata.count), to: &data)
        data.append(metadata)
        // Float32 in memory is little-endian on every platform Swift targets for this project
        // (x86_64, arm64), so samples are copied as they are.
        for clip in samples {
            clip.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw AudioError(source: directory.path, problem: .writeFailed(error.localizedDescription))
        }
        try AtomicFile.write(data, to: url)
    }

    // MARK: - Reading

    /// The cached samples, or `nil` when the file is absent, stale or damaged.
    private func read(url: URL, key: UInt64, clips: [AudioClip]) -> [[Float]]? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return data.withUnsafeBytes { bytes -> [[Float]]? in
            guard bytes.count >= Self.fixedHeaderSize,
                  Array(bytes[0..<8]) == Self.magic,
                  readLittleEndian(bytes, at: 8, as: UInt32.self) == Self.formatVersion,
                  readLittleEndian(bytes, at: 16, as: UInt64.self) == key,
                  readLittleEndian(bytes, at: 24, as: UInt64.self) == UInt64(clips.count)
            else { return nil }
            let metadataSize = Int(clamping: readLittleEndian(bytes, at: 32, as: UInt64.self))
            let samplesStart = Self.fixedHeaderSize + metadataSize
            guard metadataSize >= 0, samplesStart <= bytes.count,
                  let entries = try? JSONDecoder().decode(
                      [ClipEntry].self,
                      from: Data(bytes[Self.fixedHeaderSize..<samplesStart])),
                  entries.map(\.clip.path) == clips.map(\.path),
                  entries.allSatisfy({ $0.sampleCount >= 0 }),
                  samplesStart + entries.reduce(0, { $0 + $1.sampleCount }) * 4 == bytes.count
            else { return nil }
            var offset = samplesStart
            return entries.map { entry in
                let count = entry.sampleCount
                let clip = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    if count > 0 {
                        UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(
                            from: bytes.baseAddress! + offset, byteCount: count * 4)
                    }
                    initialized = count
                }
                offset += count * 4
                return clip
            }
        }
    }
}

private func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to data: inout Data) {
    withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
}

private func readLittleEndian<T: FixedWidthInteger>(
    _ bytes: UnsafeRawBufferPointer, at offset: Int, as type: T.Type
) -> T {
    T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
}

/// 64-bit FNV-1a: a fast, well-spread hash that is stable across runs and machines (unlike
/// `Hasher`, which is randomly seeded per process).
func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01B3
    }
    return hash
}
