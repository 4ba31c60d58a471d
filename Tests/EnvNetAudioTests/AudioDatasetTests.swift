import EnvNetTensor
import Foundation
import Testing
@testable import EnvNetAudio

/// The dataset loaders: folder per class, manifest, ESC-50, UrbanSound8K; folds, groups, the
/// fingerprint and the summary.
@Suite("Datasets of any layout")
struct AudioDatasetTests {
    /// A 0.2 s tone as 16-bit WAV.
    static func writeClip(_ url: URL, frequency: Double = 440, rate: Int = 16000, seconds: Double = 0.2) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let samples = (0..<Int(seconds * Double(rate))).map { Float(0.5 * sin(2 * Double.pi * frequency * Double($0) / Double(rate))) }
        try WAVWriter.write(samples, sampleRate: rate, format: .pcm16, to: url)
    }

    @Test func folderPerClassTakesLabelsFromFolderNamesAndDrawsStratifiedFolds() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        for (label, count) in [("dog", 10), ("rain", 7), ("siren", 5)] {
            for index in 0..<count {
                try Self.writeClip(root.appendingPathComponent("\(label)/\(index % 2 == 0 ? "a" : "b/c")/clip\(index).wav"))
            }
        }
        try Data("not audio".utf8).write(to: root.appendingPathComponent("dog/notes.txt"))
        try FileManager.default.copyItem(at: try formatFixture("flac"), to: root.appendingPathComponent("rain/extra.flac"))
        let dataset = try AudioDataset.load(from: root)
        #expect(dataset.layout == .folderPerClass)
        #expect(!dataset.hasOwnFolds)
        #expect(dataset.classNames == ["dog", "rain", "siren"])
        #expect(dataset.clips.count == 23)
        #expect(dataset.clips.contains { $0.path == "rain/extra.flac" && $0.label == 1 })
        #expect(dataset.clips.contains { $0.path == "dog/b/c/clip1.wav" && $0.label == 0 })
        #expect(dataset.folds == [1, 2, 3, 4, 5])
        // Stratified: every class is spread as evenly as its count allows.
        for label in 0..<3 {
            let perFold = (1...5).map { fold in dataset.clips.filter { $0.label == label && $0.fold == fold }.count }
            #expect(perFold.max()! - perFold.min()! <= 1, "class \(label): \(perFold)")
        }
        // The same seed draws the same folds; another seed (usually) others.
        #expect(try AudioDataset.load(from: root).clips == dataset.clips)
        #expect(try AudioDataset.load(from: root, seed: 7).clips.map(\.fold) != dataset.clips.map(\.fold))
        #expect(try AudioDataset.load(from: root, foldCount: 3).folds == [1, 2, 3])
        let summary = try dataset.summary()
        #expect(summary.formats == [.wav: 22, .flac: 1])
        #expect(summary.sampleRates == [16000: 22, 22050: 1])
        #expect(summary.clipsPerClass.map(\.clips) == [10, 8, 5])
        #expect(summary.description.contains("3 classes: dog 10, rain 8, siren 5"))
    }

    @Test func aClassWithOneClipOrAnEmptyFoldIsRefusedByName() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        for index in 0..<6 { try Self.writeClip(root.appendingPathComponent("dog/\(index).wav")) }
        try Self.writeClip(root.appendingPathComponent("cat/only.wav"))
        #expect(throws: DatasetContentError.tooFewClips(classes: ["cat": 1])) { try AudioDataset.load(from: root) }
        let manifest = root.appendingPathComponent("gaps.csv")
        try Data("path,label,fold\ndog/0.wav,dog,1\ndog/1.wav,dog,3\ndog/2.wav,dog,3\n".utf8).write(to: manifest)
        #expect(throws: DatasetContentError.emptyFolds([2])) { try AudioDataset.load(from: manifest) }
    }

    @Test func manifestPathsAreRelativeToTheCSVAndGroupsNeverStraddleFolds() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        var lines = ["path,label,group"]
        for index in 0..<24 {
            let label = index % 2 == 0 ? "bird" : "car"
            try Self.writeClip(root.appendingPathComponent("clips/\(index).wav"))
            lines.append("clips/\(index).wav,\(label),source\(index / 4)")  // 6 groups of 4 clips
        }
        let manifest = root.appendingPathComponent("list.csv")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: manifest)
        let dataset = try AudioDataset.load(from: manifest, foldCount: 3)
        #expect(dataset.layout == .manifest)
        #expect(dataset.classNames == ["bird", "car"])
        #expect(dataset.url(for: dataset.clips[0]) == root.appendingPathComponent("clips/0.wav").standardizedFileURL)
        var foldOfGroup: [String: Int] = [:]
        for clip in dataset.clips {
            #expect(foldOfGroup[clip.group, default: clip.fold] == clip.fold, "\(clip.group) straddles folds")
            foldOfGroup[clip.group] = clip.fold
        }
        #expect(Set(foldOfGroup.values) == [1, 2, 3])
        // A manifest's own folds are kept, and a group split across them is refused with its line.
        let folded = root.appendingPathComponent("folded.csv")
        try Data("path,label,fold,group\nclips/0.wav,bird,1,g\nclips/1.wav,bird,2,g\nclips/2.wav,car,1,h\nclips/3.wav,car,2,i\n".utf8).write(to: folded)
        #expect { try AudioDataset.load(from: folded) } throws: { error in
            "\(error)".contains("folded.csv:3") && "\(error)".contains("group 'g'")
        }
    }

    @Test func urbanSound8KFoldsComeFromTheMetadataAndNoSourceStraddlesTwo() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        let classes: [SyntheticSoundClass] = [.siren, .engine, .knock]
        let written = try SyntheticDataset.generateUrbanSound8K(
            at: root, configuration: SyntheticDatasetConfiguration(clipsPerClass: 10, seed: 3, duration: 1.0, folds: 5, classes: classes))
        let dataset = try AudioDataset.load(from: root)
        #expect(dataset.layout == .urbanSound8K)
        #expect(dataset.hasOwnFolds)
        #expect(dataset.clips.count == written)
        #expect(dataset.classNames == classes.map(\.name))
        // Folds are those of the metadata, and match the folder each file is in.
        let table = try CSV.parseTable(String(contentsOf: root.appendingPathComponent("metadata/UrbanSound8K.csv"), encoding: .utf8))
        let foldColumn = try #require(table.columnIndex("fold")), nameColumn = try #require(table.columnIndex("slice_file_name"))
        let metadataFold = Dictionary(uniqueKeysWithValues: table.rows.map { ($0[nameColumn], Int($0[foldColumn])!) })
        for clip in dataset.clips {
            let name = URL(fileURLWithPath: clip.path).lastPathComponent
            #expect(clip.fold == metadataFold[name])
            #expect(clip.path == "audio/fold\(clip.fold)/\(name)")
        }
        let foldsPerSource = Dictionary(grouping: dataset.clips, by: \.group).mapValues { Set($0.map(\.fold)) }
        #expect(foldsPerSource.values.allSatisfy { $0.count == 1 })
        #expect(foldsPerSource.count == written / 2)
        let summary = try dataset.summary()
        #expect(summary.sampleRates.count >= 5)
        #expect(summary.channelCounts.keys.sorted() == [1, 2])
        #expect(summary.durationRange.lowerBound >= 0.29 && summary.durationRange.upperBound <= 1.01)
    }

    @Test func esc50LayoutKeepsItsFoldsAndSourceGroups() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        try SyntheticDataset.generate(at: root, configuration: SyntheticDatasetConfiguration(
            clipsPerClass: 5, sampleRate: 16000, duration: 0.5, classes: [.siren, .rain]))
        let dataset = try AudioDataset.load(from: root)
        #expect(dataset.layout == .esc50)
        #expect(dataset.classNames == ["siren", "rain"])
        #expect(dataset.folds == [1, 2, 3, 4, 5])
        #expect(dataset.clips.allSatisfy { $0.path.hasPrefix("audio/") && !$0.group.isEmpty })
        #expect(try AudioDataset.load(from: root, layout: .esc50, subset: .esc50).clips == dataset.clips)
    }

    @Test func theSharedESC10ClipsLoadAsESC10() throws {
        guard let root = sharedESC10Folder() else { return }
        let dataset = try AudioDataset.load(from: root, subset: .esc10)
        #expect(dataset.clips.count == 400)
        #expect(dataset.classNames.first == "dog")
        let foldsPerSource = Dictionary(grouping: dataset.clips, by: \.group).mapValues { Set($0.map(\.fold)) }
        #expect(foldsPerSource.values.allSatisfy { $0.count == 1 })
    }

    @Test func theFingerprintSurvivesAMoveAndChangesWithTheData() throws {
        let parent = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(parent) }
        let root = parent.appendingPathComponent("sounds")
        for label in ["a", "b"] {
            for index in 0..<4 { try Self.writeClip(root.appendingPathComponent("\(label)/\(index).wav"), frequency: 300 + Double(index)) }
        }
        let original = try AudioDataset.load(from: root).fingerprint()
        let moved = parent.appendingPathComponent("elsewhere")
        try FileManager.default.moveItem(at: root, to: moved)
        #expect(try AudioDataset.load(from: moved).fingerprint() == original)
        // Re-encoding a clip (another size) changes it.
        try Self.writeClip(moved.appendingPathComponent("a/0.wav"), rate: 22050)
        let reencoded = try AudioDataset.load(from: moved).fingerprint()
        #expect(reencoded != original)
        // Relabelling a clip changes it too.
        try FileManager.default.moveItem(at: moved.appendingPathComponent("a/1.wav"), to: moved.appendingPathComponent("b/1-from-a.wav"))
        #expect(try AudioDataset.load(from: moved).fingerprint() != reencoded)
    }

    @Test func unusableFilesAreAllListedBeforeAnyDecoding() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        for index in 0..<3 { try Self.writeClip(root.appendingPathComponent("dog/\(index).wav")) }
        try Data("%PDF-1.4".utf8).write(to: root.appendingPathComponent("dog/paper.mp3"))
        for index in 0..<2 { try Self.writeClip(root.appendingPathComponent("cat/\(index).wav")) }
        #expect(mkfifo(root.appendingPathComponent("cat/live.wav").path, 0o600) == 0)
        let dataset = try AudioDataset.load(from: root)
        #expect { try dataset.summary() } throws: { error in
            guard case DatasetError.unusableAudioFiles(let problems) = error else { return false }
            return problems.count == 2 && problems.contains { $0.path.hasSuffix("live.wav") && $0.reason.contains("FIFO") }
                && problems.contains { $0.path.hasSuffix("paper.mp3") && $0.reason.contains("PDF") }
        }
    }

    @Test func relabellingFollowsAModelsClassOrderAndNamesTheDifferences() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        for label in ["dog", "rain", "siren"] {
            for index in 0..<2 { try Self.writeClip(root.appendingPathComponent("\(label)/\(index).wav")) }
        }
        let dataset = try AudioDataset.load(from: root)
        let relabelled = try dataset.relabelled(as: ["siren", "dog", "rain"])
        for (before, after) in zip(dataset.clips, relabelled.clips) {
            #expect(dataset.classNames[before.label] == relabelled.classNames[after.label])
        }
        #expect(throws: DatasetContentError.classMismatch(modelOnly: ["engine"], dataOnly: ["rain", "siren"])) {
            try dataset.relabelled(as: ["dog", "engine"])
        }
    }

    @Test func linkedFilesAreFingerprintedByTheirTargetsAndDuplicatePathsAreOneFile() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        for label in ["a", "b"] {
            for index in 0..<2 {
                try Self.writeClip(root.appendingPathComponent("store/\(label)\(index).wav"))
                try FileManager.default.createDirectory(at: root.appendingPathComponent("data/\(label)"), withIntermediateDirectories: true)
                try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("data/\(label)/\(index).wav"),
                                                           withDestinationURL: root.appendingPathComponent("store/\(label)\(index).wav"))
            }
        }
        let before = try AudioDataset.load(from: root.appendingPathComponent("data"), foldCount: 2).fingerprint()
        try Self.writeClip(root.appendingPathComponent("store/a0.wav"), seconds: 0.3)  // the target is re-encoded
        #expect(try AudioDataset.load(from: root.appendingPathComponent("data"), foldCount: 2).fingerprint() != before)

        let manifest = root.appendingPathComponent("store/list.csv")
        try Data("path,label\na0.wav,a\n./a0.wav,a\na1.wav,a\nb0.wav,b\nb1.wav,b\n".utf8).write(to: manifest)
        #expect { try AudioDataset.load(from: manifest, foldCount: 2) } throws: { "\($0)".contains("list.csv:3") && "\($0)".contains("same file") }
    }
}
