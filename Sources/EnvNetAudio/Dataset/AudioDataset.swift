import EnvNetTensor
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a dataset's files and labels are laid out on disk.
public enum DatasetLayout: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// `root/<label>/**/<file>`: one folder per class, labels from the folder names.
    case folderPerClass = "folders"
    /// A CSV file with a header `path,label[,fold][,group]`, paths relative to the CSV's folder.
    case manifest
    /// ESC-50: `audio/*.wav` and `meta/esc50.csv` (5 folds, groups from `src_file`).
    case esc50
    /// UrbanSound8K: `metadata/UrbanSound8K.csv` and `audio/fold1` … `audio/fold10` (groups from `fsID`).
    case urbanSound8K = "urbansound8k"

    public var description: String { rawValue }

    /// The manifest file name looked for in a folder when the layout is detected.
    public static let manifestFileName = "manifest.csv"

    /// The layout of a path: a `.csv` file is a manifest; a folder is ESC-50 when it holds
    /// `meta/esc50.csv`, UrbanSound8K when it holds `metadata/UrbanSound8K.csv`, a manifest when it
    /// holds `manifest.csv`, and folder-per-class otherwise.
    ///
    /// - Parameter url: The dataset's path.
    /// - Returns: The detected layout.
    public static func detect(at url: URL) -> DatasetLayout {
        let manager = FileManager.default
        var isFolder: ObjCBool = false
        if manager.fileExists(atPath: url.path, isDirectory: &isFolder), !isFolder.boolValue {
            return .manifest
        }
        if manager.fileExists(atPath: url.appendingPathComponent("meta/esc50.csv").path) { return .esc50 }
        if manager.fileExists(atPath: url.appendingPathComponent("metadata/UrbanSound8K.csv").path) { return .urbanSound8K }
        if manager.fileExists(atPath: url.appendingPathComponent(manifestFileName).path) { return .manifest }
        return .folderPerClass
    }
}

/// One clip of an ``AudioDataset``.
public struct AudioClip: Sendable, Hashable, Codable {
    /// The file's path relative to ``AudioDataset/root`` (as written in a manifest, `/`-separated).
    public var path: String
    /// The class index into ``AudioDataset/classNames``.
    public var label: Int
    /// The cross-validation fold, from 1.
    public var fold: Int
    /// The source recording: clips of one group are always in the same fold.
    public var group: String

    /// Creates a clip record.
    ///
    /// - Parameters:
    ///   - path: The path relative to the dataset's root.
    ///   - label: The class index.
    ///   - fold: The fold, from 1.
    ///   - group: The source recording.
    public init(path: String, label: Int, fold: Int, group: String) {
        self.path = path
        self.label = label
        self.fold = fold
        self.group = group
    }
}

/// What is wrong with a dataset as a whole.
public enum DatasetContentError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The folder or manifest holds no audio file.
    case noClips(path: String)
    /// Classes with fewer than 2 clips (one clip cannot be both trained on and tested).
    case tooFewClips(classes: [String: Int])
    /// Folds without a clip.
    case emptyFolds([Int])
    /// The dataset has no fold of that number.
    case unknownFold(Int, folds: [Int])
    /// A fold count that cannot be drawn.
    case invalidFoldCount(Int, groups: Int)
    /// The path is not a dataset of the named layout.
    case notADataset(path: String, reason: String)
    /// A model's classes and the dataset's differ.
    case classMismatch(modelOnly: [String], dataOnly: [String])

    public var description: String {
        switch self {
        case let .noClips(path):
            return "\(path): no audio files (looked for \(AudioFormat.fileExtensions.sorted().joined(separator: ", ")))"
        case let .tooFewClips(classes):
            let list = classes.sorted { $0.key < $1.key }.map { "'\($0.key)' (\($0.value))" }.joined(separator: ", ")
            return "class(es) with fewer than 2 clips: \(list); every class needs at least 2"
        case let .emptyFolds(folds):
            return "fold(s) \(folds.map(String.init).joined(separator: ", ")) hold no clip"
        case let .unknownFold(fold, folds):
            return "fold \(fold) is not in the dataset (folds \(folds.map(String.init).joined(separator: ", ")))"
        case let .invalidFoldCount(count, groups):
            return "cannot draw \(count) folds from \(groups) source recording(s): need 2 to \(max(2, groups)) folds"
        case let .notADataset(path, reason):
            return "\(path): \(reason)"
        case let .classMismatch(modelOnly, dataOnly):
            var parts: [String] = []
            if !dataOnly.isEmpty { parts.append("the data has class(es) the model lacks: \(dataOnly.joined(separator: ", "))") }
            if !modelOnly.isEmpty { parts.append("the model has class(es) missing from the data: \(modelOnly.joined(separator: ", "))") }
            return "the model's classes differ from the dataset's: " + parts.joined(separator: "; ")
        }
    }
}

/// A labelled collection of audio files in any supported format: a folder per class, a CSV
/// manifest, ESC-50 or UrbanSound8K, with cross-validation folds.
///
/// ```swift
/// let dataset = try AudioDataset.load(from: URL(fileURLWithPath: "my-sounds"))
/// print(try dataset.summary())
/// ```
///
/// Folds are the dataset's own where it has them (ESC-50, UrbanSound8K, a manifest's `fold`
/// column). Otherwise ``load(from:layout:subset:foldCount:seed:)`` draws `foldCount` folds,
/// stratified by class, from the seed. Clips of one source recording (ESC-50 `src_file`,
/// UrbanSound8K `fsID`, a manifest's `group`) are never split across folds.
public struct AudioDataset: Sendable {
    /// The folder that clip paths are relative to.
    public let root: URL
    /// The file or folder the dataset was loaded from.
    public let source: URL
    /// The layout it was read as.
    public let layout: DatasetLayout
    /// For ESC-50, the subset in use.
    public let subset: ESC50Subset?
    /// Class names by label.
    public let classNames: [String]
    /// The clips, in a stable order (metadata order, or sorted paths for folders).
    public let clips: [AudioClip]
    /// Whether the folds came from the dataset (true) or were drawn from the seed (false).
    public let hasOwnFolds: Bool

    /// Creates a dataset from records (for data that is neither on disk in a known layout nor a manifest).
    ///
    /// - Parameters:
    ///   - root: The folder clip paths are relative to.
    ///   - layout: The layout to report.
    ///   - classNames: Class names by label.
    ///   - clips: The clips; labels must index `classNames`.
    ///   - hasOwnFolds: Whether the folds are the data's own.
    ///   - subset: The ESC-50 subset, if any.
    public init(root: URL, layout: DatasetLayout, classNames: [String], clips: [AudioClip], hasOwnFolds: Bool,
                subset: ESC50Subset? = nil, source: URL? = nil) {
        self.root = root
        self.source = source ?? root
        self.layout = layout
        self.classNames = classNames
        self.clips = clips
        self.hasOwnFolds = hasOwnFolds
        self.subset = subset
    }

    /// The clips of an ESC-50-layout dataset (groups from `src_file`).
    ///
    /// - Parameter esc50: The parsed ESC-50 metadata.
    public init(esc50: ESC50Dataset) {
        self.init(root: esc50.root.standardizedFileURL, layout: .esc50, classNames: esc50.classNames,
                  clips: esc50.clips.map { AudioClip(path: "audio/" + $0.filename, label: $0.label, fold: $0.fold, group: $0.sourceFile) },
                  hasOwnFolds: true, subset: esc50.subset)
    }

    /// The folds present, ascending.
    public var folds: [Int] { Array(Set(clips.map(\.fold))).sorted() }
    /// The number of classes.
    public var classCount: Int { classNames.count }

    /// The file of a clip.
    ///
    /// - Parameter clip: A clip of this dataset.
    /// - Returns: Its URL.
    public func url(for clip: AudioClip) -> URL {
        clip.path.hasPrefix("/") ? URL(fileURLWithPath: clip.path) : root.appendingPathComponent(clip.path)
    }

    /// The clips of the given folds, in dataset order.
    ///
    /// - Parameter folds: Fold numbers.
    /// - Returns: The clips.
    public func clips(inFolds folds: Set<Int>) -> [AudioClip] { clips.filter { folds.contains($0.fold) } }

    /// A short name for messages, such as `ESC-10 (ESC-50 layout) at /data/ESC-10-16k`.
    public var displayName: String {
        let kind = switch layout {
        case .esc50: subset == .esc10 ? "ESC-10 (ESC-50 layout)" : "ESC-50"
        case .urbanSound8K: "UrbanSound8K"
        case .manifest: "manifest"
        case .folderPerClass: "folder per class"
        }
        return "\(kind) at \(source.path)"
    }

    /// The same clips labelled by another ordering of the same class names (a model's), so that
    /// label `i` means `classNames[i]`.
    ///
    /// - Parameter classNames: The names in the order wanted.
    /// - Returns: The relabelled dataset.
    /// - Throws: ``DatasetContentError/classMismatch(modelOnly:dataOnly:)`` naming every class that
    ///   is in one list but not the other.
    public func relabelled(as classNames: [String]) throws -> AudioDataset {
        let wanted = Set(classNames), present = Set(self.classNames)
        guard wanted == present, wanted.count == classNames.count else {
            throw DatasetContentError.classMismatch(modelOnly: classNames.filter { !present.contains($0) },
                                                    dataOnly: self.classNames.filter { !wanted.contains($0) })
        }
        let index = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($0.element, $0.offset) })
        let clips = self.clips.map { var clip = $0; clip.label = index[self.classNames[clip.label]]!; return clip }
        return AudioDataset(root: root, layout: layout, classNames: classNames, clips: clips, hasOwnFolds: hasOwnFolds,
                            subset: subset, source: source)
    }

    /// The same dataset with only the clips of some folds (class names unchanged).
    ///
    /// - Parameter folds: The folds to keep.
    /// - Returns: The smaller dataset.
    public func restricted(toFolds folds: Set<Int>) -> AudioDataset {
        AudioDataset(root: root, layout: layout, classNames: classNames, clips: clips(inFolds: folds), hasOwnFolds: hasOwnFolds,
                     subset: subset, source: source)
    }

    // MARK: - Loading

    /// Loads a dataset, detecting its layout unless one is named.
    ///
    /// Only metadata and the file tree are read here; no audio is decoded. ``summary()`` reads the
    /// headers and reports every unusable file.
    ///
    /// - Parameters:
    ///   - url: A dataset folder, or a manifest CSV file.
    ///   - layout: The layout; nil detects it (see ``DatasetLayout/detect(at:)``).
    ///   - subset: For ESC-50, all classes or ESC-10.
    ///   - foldCount: How many folds to draw when the dataset has none of its own (2 or more).
    ///   - seed: The seed of the drawn folds.
    /// - Returns: The dataset.
    /// - Throws: ``DatasetError`` for unreadable or invalid metadata, ``DatasetContentError`` for
    ///   a dataset with no clips or a class with fewer than 2, or folds that cannot be drawn.
    public static func load(from url: URL, layout: DatasetLayout? = nil, subset: ESC50Subset = .esc50,
                            foldCount: Int = 5, seed: UInt64 = 0) throws -> AudioDataset {
        let url = url.standardizedFileURL
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
            throw DatasetContentError.notADataset(path: url.path, reason: "no such file or folder")
        }
        let chosen = layout ?? DatasetLayout.detect(at: url)
        let dataset: AudioDataset
        switch chosen {
        case .esc50:
            dataset = AudioDataset(esc50: try ESC50Dataset(root: url, subset: subset, verifyingAudio: false))
        case .urbanSound8K:
            dataset = try loadUrbanSound8K(root: url)
        case .manifest:
            let file = isFolder.boolValue ? url.appendingPathComponent(DatasetLayout.manifestFileName) : url
            dataset = try loadManifest(file, foldCount: foldCount, seed: seed)
        case .folderPerClass:
            guard isFolder.boolValue else { throw DatasetContentError.notADataset(path: url.path, reason: "a folder-per-class dataset must be a folder") }
            dataset = try loadFolders(root: url, foldCount: foldCount, seed: seed)
        }
        try dataset.checkContents()
        return dataset
    }

    /// Refuses datasets that cannot be cross-validated: no clips, a class with fewer than 2 clips,
    /// or a fold number between 1 and the highest with no clip.
    func checkContents() throws {
        guard !clips.isEmpty else { throw DatasetContentError.noClips(path: source.path) }
        var counts = [Int](repeating: 0, count: classCount)
        for clip in clips { counts[clip.label] += 1 }
        let thin = Dictionary(uniqueKeysWithValues: counts.enumerated().filter { $0.element < 2 }.map { (classNames[$0.offset], $0.element) })
        guard thin.isEmpty else { throw DatasetContentError.tooFewClips(classes: thin) }
        let present = Set(clips.map(\.fold))
        let empty = (1...(present.max() ?? 1)).filter { !present.contains($0) }
        guard empty.isEmpty else { throw DatasetContentError.emptyFolds(empty) }
    }

    /// Checks that a fold can be held out: it exists, and other folds remain to train on.
    ///
    /// - Parameter fold: The test fold.
    /// - Throws: ``DatasetContentError/unknownFold(_:folds:)``.
    public func checkTestFold(_ fold: Int) throws {
        guard folds.contains(fold), folds.count >= 2 else { throw DatasetContentError.unknownFold(fold, folds: folds) }
    }

    static func loadUrbanSound8K(root: URL) throws -> AudioDataset {
        let metadata = root.appendingPathComponent("metadata/UrbanSound8K.csv")
        let table = try readTable(metadata, required: ["slice_file_name", "fsID", "fold", "classID", "class"])
        let column = { (name: String) in table.columnIndex(name)! }
        var names: [Int: String] = [:]
        var clips: [AudioClip] = []
        var seen: Set<String> = []
        for (row, line) in zip(table.rows, table.lineNumbers) {
            func fail(_ message: String) -> DatasetError { .invalidMetadata(CSVError(source: metadata.path, line: line, message: message)) }
            let file = row[column("slice_file_name")]
            guard isPlainFileName(file) else { throw fail("invalid file name '\(file)'") }
            guard let fold = Int(row[column("fold")]), (1...100).contains(fold) else { throw fail("fold '\(row[column("fold")])' is not an integer in 1...100") }
            guard let classID = Int(row[column("classID")]), (0..<10_000).contains(classID) else {
                throw fail("classID '\(row[column("classID")])' is not an integer in 0..<10000")
            }
            let name = row[column("class")]
            if let known = names[classID], known != name { throw fail("classID \(classID) is '\(name)' here but '\(known)' earlier") }
            names[classID] = name
            let path = "audio/fold\(fold)/\(file)"
            guard seen.insert(path).inserted else { throw fail("duplicate clip '\(path)'") }
            clips.append(AudioClip(path: path, label: classID, fold: fold, group: "fsID " + row[column("fsID")]))
        }
        // Class IDs need not be contiguous in a subset; renumber them in ID order.
        let ids = names.keys.sorted()
        let index = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($0.element, $0.offset) })
        clips = clips.map { var clip = $0; clip.label = index[clip.label]!; return clip }
        return AudioDataset(root: root, layout: .urbanSound8K, classNames: ids.map { names[$0]! }, clips: clips, hasOwnFolds: true)
    }

    static func loadManifest(_ file: URL, foldCount: Int, seed: UInt64) throws -> AudioDataset {
        let table = try readTable(file, required: ["path", "label"])
        let pathColumn = table.columnIndex("path")!, labelColumn = table.columnIndex("label")!
        let foldColumn = table.columnIndex("fold"), groupColumn = table.columnIndex("group")
        var records: [(path: String, label: String, fold: Int?, group: String)] = []
        var seen: Set<String> = []
        for (row, line) in zip(table.rows, table.lineNumbers) {
            func fail(_ message: String) -> DatasetError { .invalidMetadata(CSVError(source: file.path, line: line, message: message)) }
            let path = row[pathColumn], label = row[labelColumn].trimmingCharacters(in: .whitespaces)
            guard !path.isEmpty else { throw fail("empty path") }
            guard !label.isEmpty else { throw fail("empty label for '\(path)'") }
            // `a.wav`, `./a.wav` and `x/../a.wav` are one file: compare and group them as one.
            let canonical = URL(fileURLWithPath: path, relativeTo: file.deletingLastPathComponent()).standardizedFileURL.path
            guard seen.insert(canonical).inserted else { throw fail("duplicate path '\(path)' (the same file as an earlier row)") }
            var fold: Int?
            if let foldColumn {
                guard let value = Int(row[foldColumn].trimmingCharacters(in: .whitespaces)), (1...100).contains(value) else {
                    throw fail("fold '\(row[foldColumn])' is not an integer in 1...100")
                }
                fold = value
            }
            let group = groupColumn.map { row[$0] }.flatMap { $0.isEmpty ? nil : $0 } ?? canonical
            records.append((path, label, fold, group))
        }
        let classNames = Array(Set(records.map(\.label))).sorted()
        let index = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($0.element, $0.offset) })
        var clips = records.map { AudioClip(path: $0.path, label: index[$0.label]!, fold: $0.fold ?? 0, group: $0.group) }
        let ownFolds = foldColumn != nil
        if ownFolds {
            var foldOfGroup: [String: Int] = [:]
            for (clip, line) in zip(clips, table.lineNumbers) {
                if let known = foldOfGroup[clip.group], known != clip.fold {
                    throw DatasetError.invalidMetadata(CSVError(source: file.path, line: line,
                        message: "group '\(clip.group)' is in fold \(clip.fold) here but in fold \(known) earlier: a source recording must stay in one fold"))
                }
                foldOfGroup[clip.group] = clip.fold
            }
        } else {
            clips = try assignStratifiedFolds(clips, classCount: classNames.count, foldCount: foldCount, seed: seed)
        }
        return AudioDataset(root: file.deletingLastPathComponent(), layout: .manifest, classNames: classNames, clips: clips,
                            hasOwnFolds: ownFolds, source: file)
    }

    static func loadFolders(root: URL, foldCount: Int, seed: UInt64) throws -> AudioDataset {
        let manager = FileManager.default
        let entries: [URL]
        do {
            entries = try manager.contentsOfDirectory(at: root, includingPropertiesForKeys: [.isDirectoryKey], options: [.skipsHiddenFiles])
        } catch {
            throw DatasetError.unreadableMetadata(path: root.path, reason: error.localizedDescription)
        }
        let classFolders = entries.filter { (try? $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true }
            .map(\.lastPathComponent).sorted()
        guard !classFolders.isEmpty else {
            throw DatasetContentError.notADataset(path: root.path, reason: "no class folders (expected <root>/<label>/<files>, or name a layout with --layout)")
        }
        var clips: [AudioClip] = []
        for (label, name) in classFolders.enumerated() {
            let folder = root.appendingPathComponent(name)
            var paths: [String] = []
            if let walker = manager.enumerator(at: folder, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles]) {
                for case let file as URL in walker where AudioFormat.fileExtensions.contains(file.pathExtension.lowercased()) {
                    let relative = String(file.standardizedFileURL.path.dropFirst(root.path.count + 1))
                    paths.append(relative)
                }
            }
            for path in paths.sorted() { clips.append(AudioClip(path: path, label: label, fold: 0, group: path)) }
        }
        clips = try assignStratifiedFolds(clips, classCount: classFolders.count, foldCount: foldCount, seed: seed)
        return AudioDataset(root: root, layout: .folderPerClass, classNames: classFolders, clips: clips, hasOwnFolds: false)
    }

    /// Draws folds 1...`foldCount`, stratified by class, keeping each group in one fold.
    ///
    /// Groups are shuffled by the seed, then placed largest first, each into the fold that so far
    /// holds the fewest clips of the group's class (ties: fewest clips in all, then lowest fold).
    /// A group's class is its most frequent label.
    static func assignStratifiedFolds(_ clips: [AudioClip], classCount: Int, foldCount: Int, seed: UInt64) throws -> [AudioClip] {
        var members: [String: [Int]] = [:]
        var order: [String] = []
        for (index, clip) in clips.enumerated() {
            if members[clip.group] == nil { order.append(clip.group) }
            members[clip.group, default: []].append(index)
        }
        guard foldCount >= 2, foldCount <= max(order.count, 2), order.count >= foldCount else {
            throw DatasetContentError.invalidFoldCount(foldCount, groups: order.count)
        }
        var generator = SeededGenerator(seed: seed, stream: 0x464F_4C44)  // "FOLD"
        order.shuffle(using: &generator)
        let placement = order.enumerated().sorted { lhs, rhs in
            let (a, b) = (members[lhs.element]!.count, members[rhs.element]!.count)
            return a != b ? a > b : lhs.offset < rhs.offset
        }.map(\.element)
        var perClass = [[Int]](repeating: [Int](repeating: 0, count: foldCount), count: classCount)
        var total = [Int](repeating: 0, count: foldCount)
        var result = clips
        for group in placement {
            let indices = members[group]!
            var labelCounts: [Int: Int] = [:]
            for index in indices { labelCounts[clips[index].label, default: 0] += 1 }
            let label = labelCounts.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }!.key
            let fold = (0..<foldCount).min { a, b in
                (perClass[label][a], total[a], a) < (perClass[label][b], total[b], b)
            }!
            for index in indices {
                result[index].fold = fold + 1
                perClass[clips[index].label][fold] += 1
            }
            total[fold] += indices.count
        }
        return result
    }

    static func readTable(_ file: URL, required: [String]) throws -> CSVTable {
        let text: String
        do {
            _ = try checkedRegularFile(file)
            text = try String(contentsOf: file, encoding: .utf8)
        } catch let error as AudioError {
            throw DatasetError.unreadableMetadata(path: file.path, reason: error.problemSummary)
        } catch {
            throw DatasetError.unreadableMetadata(path: file.path, reason: error.localizedDescription)
        }
        let table: CSVTable
        do {
            table = try CSV.parseTable(text, source: file.path)
        } catch let error as CSVError {
            throw DatasetError.invalidMetadata(error)
        }
        let missing = required.filter { table.columnIndex($0) == nil }
        guard missing.isEmpty else { throw DatasetError.missingColumns(path: file.path, columns: missing) }
        return table
    }

    /// Checks that a metadata file is a regular file (a FIFO would block the read).
    static func checkedRegularFile(_ url: URL) throws -> URL {
        close(try AudioFileReader.openRegularFile(url))
        return url
    }

    static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("/") && !name.contains("\\") && name != "." && name != ".."
    }
}
