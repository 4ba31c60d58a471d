import EnvNetTensor
import Foundation

/// Which classes of an ESC-50-layout dataset to use.
public enum ESC50Subset: String, Sendable, Hashable, Codable, CaseIterable {
    /// All rows; labels are the `target` column.
    case esc50
    /// Rows whose `esc10` column is true; targets renumbered by `ESC50Dataset.esc10Targets`.
    case esc10
}

/// One row of `meta/esc50.csv`.
public struct ESC50Clip: Sendable, Hashable, Codable {
    /// The audio file name inside `audio/`.
    public var filename: String
    /// The cross-validation fold (1...5 in ESC-50).
    public var fold: Int
    /// The ESC-50 class number as written in the metadata.
    public var target: Int
    /// The class index used for training: `target` for ESC-50, `0..<10` for ESC-10.
    public var label: Int
    /// The class name.
    public var category: String
    /// Whether the clip belongs to ESC-10.
    public var isESC10: Bool
    /// The freesound.org source clip id.
    public var sourceFile: String
    /// The take letter (A, B, ...) within the source clip.
    public var take: String

    /// Creates a clip record.
    ///
    /// - Parameters:
    ///   - filename: File name inside `audio/`.
    ///   - fold: Fold number.
    ///   - target: ESC-50 class number.
    ///   - label: Class index for training.
    ///   - category: Class name.
    ///   - isESC10: ESC-10 membership.
    ///   - sourceFile: Source clip id.
    ///   - take: Take letter.
    public init(filename: String, fold: Int, target: Int, label: Int, category: String,
                isESC10: Bool, sourceFile: String, take: String) {
        self.filename = filename
        self.fold = fold
        self.target = target
        self.label = label
        self.category = category
        self.isESC10 = isESC10
        self.sourceFile = sourceFile
        self.take = take
    }
}

/// A problem with one audio file of a dataset.
public struct AudioFileProblem: Sendable, Equatable, CustomStringConvertible {
    /// The file's path.
    public var path: String
    /// Whether the file does not exist (as opposed to existing but not decoding).
    public var isMissing: Bool
    /// Why the file cannot be used.
    public var reason: String

    /// Creates a problem record.
    ///
    /// - Parameters:
    ///   - path: The file's path.
    ///   - isMissing: Whether the file is absent.
    ///   - reason: Why it cannot be used.
    public init(path: String, isMissing: Bool, reason: String) {
        self.path = path
        self.isMissing = isMissing
        self.reason = reason
    }

    /// `"path: reason"`.
    public var description: String { "\(path): \(reason)" }
}

/// An error in a dataset's metadata or files.
public enum DatasetError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The metadata file could not be read.
    case unreadableMetadata(path: String, reason: String)
    /// The metadata file's header lacks required columns.
    case missingColumns(path: String, columns: [String])
    /// A metadata row (or the CSV syntax) is invalid.
    case invalidMetadata(CSVError)
    /// Audio files that are missing or do not decode; lists every one of them.
    case unusableAudioFiles([AudioFileProblem])

    /// A message naming the files and problems.
    public var description: String {
        switch self {
        case .unreadableMetadata(let path, let reason):
            return "\(path): cannot read metadata: \(reason)"
        case .missingColumns(let path, let columns):
            return "\(path): header lacks column(s) \(columns.joined(separator: ", "))"
        case .invalidMetadata(let error):
            return error.description
        case .unusableAudioFiles(let problems):
            let missing = problems.filter(\.isMissing).count
            return "\(problems.count) unusable audio file(s) (\(missing) missing, "
                + "\(problems.count - missing) broken):\n"
                + problems.map { "  " + $0.description }.joined(separator: "\n")
        }
    }
}

/// An ESC-50-layout dataset: `audio/*.wav` and `meta/esc50.csv`.
///
/// The same type reads the real ESC-50, the 16 kHz ESC-10 copy and the synthetic dataset this
/// package generates.
public struct ESC50Dataset: Sendable {
    /// The ESC-50 targets of the ESC-10 classes, in the order of their ESC-10 labels 0...9
    /// (dog, rooster, rain, sea waves, crackling fire, crying baby, sneezing, clock tick,
    /// helicopter, chainsaw).
    public static let esc10Targets = [0, 10, 11, 20, 38, 21, 40, 41, 1, 12]
    /// The columns `meta/esc50.csv` must have.
    public static let requiredColumns = [
        "filename", "fold", "target", "category", "esc10", "src_file", "take",
    ]

    /// The dataset's root folder.
    public let root: URL
    /// The subset in use.
    public let subset: ESC50Subset
    /// The clips of the subset, in metadata order.
    public let clips: [ESC50Clip]
    /// Class names indexed by label (`""` for ESC-50 targets absent from the metadata).
    public let classNames: [String]

    /// The metadata file's location.
    public var metadataURL: URL { Self.metadataURL(root: root) }
    /// The folds present, ascending.
    public var folds: [Int] { Array(Set(clips.map(\.fold))).sorted() }
    /// The number of classes (labels `0..<classCount`).
    public var classCount: Int { classNames.count }

    /// Reads the metadata and, by default, checks every audio file.
    ///
    /// - Parameters:
    ///   - root: The folder holding `audio/` and `meta/esc50.csv`.
    ///   - subset: ESC-50 or ESC-10.
    ///   - verifyingAudio: Whether to check that every audio file exists and has a valid header.
    /// - Throws: `DatasetError` for unreadable or invalid metadata, or (when verifying) one
    ///   error listing every missing or broken audio file.
    public init(root: URL, subset: ESC50Subset = .esc50, verifyingAudio: Bool = true) throws {
        let metadataURL = Self.metadataURL(root: root)
        let text: String
        do {
            text = try String(contentsOf: metadataURL, encoding: .utf8)
        } catch {
            throw DatasetError.unreadableMetadata(
                path: metadataURL.path, reason: error.localizedDescription)
        }
        let parsed = try Self.parseMetadata(text, source: metadataURL.path, subset: subset)
        self.root = root
        self.subset = subset
        self.clips = parsed.clips
        self.classNames = parsed.classNames
        if verifyingAudio { try verifyAudioFiles() }
    }

    /// The location of a clip's audio file.
    ///
    /// - Parameter clip: A clip of this dataset.
    /// - Returns: `root/audio/filename`.
    public func audioURL(for clip: ESC50Clip) -> URL {
        root.appendingPathComponent("audio").appendingPathComponent(clip.filename)
    }

    /// The clips in the given folds.
    ///
    /// - Parameter folds: Fold numbers.
    /// - Returns: The matching clips, in metadata order.
    public func clips(inFolds folds: Set<Int>) -> [ESC50Clip] {
        clips.filter { folds.contains($0.fold) }
    }

    /// The standard split for one cross-validation round.
    ///
    /// - Parameter testFold: The held-out fold.
    /// - Returns: Clips of every other fold for training, and of `testFold` for testing.
    public func split(testFold: Int) -> (training: [ESC50Clip], test: [ESC50Clip]) {
        (clips.filter { $0.fold != testFold }, clips.filter { $0.fold == testFold })
    }

    /// Checks that every audio file exists, is a regular file and has a valid header in a
    /// supported format (as ``AudioDataset/summary(progress:)`` does for any layout).
    ///
    /// Headers are checked in parallel; the data itself is not decoded.
    ///
    /// - Throws: `DatasetError.unusableAudioFiles` listing every problem, in metadata order.
    public func verifyAudioFiles() throws {
        _ = try AudioDataset(esc50: self).summary()
    }

    /// Loads one clip: decode, downmix, resample and normalize per `loader`'s settings.
    ///
    /// - Parameters:
    ///   - clip: A clip of this dataset.
    ///   - loader: The preprocessing to apply.
    /// - Returns: Mono samples at the loader's sample rate.
    /// - Throws: `AudioError` naming the file.
    public func loadClip(_ clip: ESC50Clip, using loader: ClipLoader) throws -> [Float] {
        try loader.load(contentsOf: audioURL(for: clip))
    }

    // MARK: - Metadata

    static func metadataURL(root: URL) -> URL {
        root.appendingPathComponent("meta").appendingPathComponent("esc50.csv")
    }

    static func parseMetadata(
        _ text: String, source: String, subset: ESC50Subset
    ) throws -> (clips: [ESC50Clip], classNames: [String]) {
        let table: CSVTable
        do {
            table = try CSV.parseTable(text, source: source)
        } catch let error as CSVError {
            throw DatasetError.invalidMetadata(error)
        }
        let missing = requiredColumns.filter { table.columnIndex($0) == nil }
        guard missing.isEmpty else {
            throw DatasetError.missingColumns(path: source, columns: missing)
        }
        let column = Dictionary(uniqueKeysWithValues: requiredColumns.map {
            ($0, table.columnIndex($0)!)
        })
        var clips: [ESC50Clip] = []
        var categories: [Int: String] = [:]
        var seenFilenames: Set<String> = []
        for (row, line) in zip(table.rows, table.lineNumbers) {
            func fail(_ message: String) -> DatasetError {
                .invalidMetadata(CSVError(source: source, line: line, message: message))
            }
            let filename = row[column["filename"]!]
            guard !filename.isEmpty, !filename.contains("/"), !filename.contains("\\"),
                  filename != ".", filename != ".." else {
                throw fail("invalid file name '\(filename)'")
            }
            guard seenFilenames.insert(filename).inserted else {
                throw fail("duplicate file name '\(filename)'")
            }
            guard let fold = Int(row[column["fold"]!]), fold >= 1 else {
                throw fail("fold '\(row[column["fold"]!])' is not a positive integer")
            }
            guard let target = Int(row[column["target"]!]), (0..<10_000).contains(target) else {
                throw fail("target '\(row[column["target"]!])' is not an integer in 0..<10000")
            }
            let category = row[column["category"]!]
            if let known = categories[target], known != category {
                throw fail("target \(target) is '\(category)' here but '\(known)' earlier")
            }
            categories[target] = category
            let isESC10: Bool
            switch row[column["esc10"]!].lowercased() {
            case "true", "1": isESC10 = true
            case "false", "0": isESC10 = false
            default: throw fail("esc10 '\(row[column["esc10"]!])' is not True or False")
            }
            var label = target
            if subset == .esc10 {
                guard isESC10 else { continue }
                guard let index = esc10Targets.firstIndex(of: target) else {
                    throw fail("target \(target) is marked ESC-10 but is not an ESC-10 class")
                }
                label = index
            }
            clips.append(ESC50Clip(
                filename: filename, fold: fold, target: target, label: label,
                category: category, isESC10: isESC10, sourceFile: row[column["src_file"]!],
                take: row[column["take"]!]))
        }
        let classNames: [String]
        switch subset {
        case .esc50:
            let count = (categories.keys.max() ?? -1) + 1
            classNames = (0..<count).map { categories[$0] ?? "" }
        case .esc10:
            classNames = esc10Targets.map { categories[$0] ?? "" }
        }
        return (clips, classNames)
    }
}

extension AudioError {
    /// The problem without the file name, for lists that already show the path.
    var problemSummary: String {
        let full = description
        let prefix = source + ": "
        return full.hasPrefix(prefix) ? String(full.dropFirst(prefix.count)) : full
    }
}
