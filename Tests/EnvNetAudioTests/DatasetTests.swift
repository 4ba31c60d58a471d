import EnvNetTensor
import Foundation
import Testing
@testable import EnvNetAudio

/// Writes an ESC-50-layout folder with the given rows; files listed in `withoutAudio` are not
/// written, and `brokenAudio` files get garbage.
private func makeDataset(
    rows: [(filename: String, fold: Int, target: Int, category: String, esc10: Bool)],
    withoutAudio: Set<String> = [], brokenAudio: Set<String> = [], sampleRate: Int = 44100,
    in folder: URL
) throws {
    let audio = folder.appendingPathComponent("audio"), meta = folder.appendingPathComponent("meta")
    try FileManager.default.createDirectory(at: audio, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: meta, withIntermediateDirectories: true)
    var csv = "filename,fold,target,category,esc10,src_file,take\r\n"
    for (index, row) in rows.enumerated() {
        csv += "\(row.filename),\(row.fold),\(row.target),\(row.category),"
            + "\(row.esc10 ? "True" : "False"),\(1000 + index),A\r\n"
        let url = audio.appendingPathComponent(row.filename)
        if brokenAudio.contains(row.filename) {
            try Data("not a wav file".utf8).write(to: url)
        } else if !withoutAudio.contains(row.filename) {
            let samples = (0..<(sampleRate / 10)).map {
                Float(0.25 * sin(2 * Double.pi * 440 * Double($0) / Double(sampleRate) + Double(index)))
            }
            try WAVWriter.write(samples, sampleRate: sampleRate, format: .pcm16, to: url)
        }
    }
    try Data(csv.utf8).write(to: meta.appendingPathComponent("esc50.csv"))
}

@Suite("CSV and ESC-50 dataset")
struct DatasetTests {
    @Test func csvHandlesQuotesCommasAndLineEnds() throws {
        let text = "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",3\n\"multi\nline\",,\r\nlast,\"\",end"
        let rows = try CSV.parse(text)
        #expect(rows == [["a", "b", "c"], ["x, y", "say \"hi\"", "3"], ["multi\nline", "", ""],
                         ["last", "", "end"]])
    }

    @Test func csvSkipsBlankLinesAndBOMAndHandlesLoneCR() throws {
        #expect(try CSV.parse("\u{FEFF}h1,h2\r\rv1,v2\r") == [["h1", "h2"], ["v1", "v2"]])
    }

    @Test func csvErrorsNameLine() {
        #expect(throws: CSVError(source: "m.csv", line: 2, message: "unterminated quoted field")) {
            try CSV.parse("a\n\"open,\nmore", source: "m.csv")
        }
        #expect(throws: CSVError(source: "m.csv", line: 1, message: "unexpected character after closing quote")) {
            try CSV.parse("\"a\"b,c", source: "m.csv")
        }
        #expect(throws: CSVError(source: "m.csv", line: 3, message: "1 fields, header has 2")) {
            try CSV.parseTable("a,b\n1,2\n3\n", source: "m.csv")
        }
    }

    @Test func readsESC50MetadataClassesAndFolds() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        try makeDataset(rows: [
            ("1-100-A-0.wav", 1, 0, "dog", true),
            ("2-101-A-1.wav", 2, 1, "rooster", true),
            ("3-102-A-3.wav", 3, 3, "cow", false),
        ], in: folder)
        let dataset = try ESC50Dataset(root: folder)
        #expect(dataset.clips.count == 3)
        #expect(dataset.classNames == ["dog", "rooster", "", "cow"])
        #expect(dataset.folds == [1, 2, 3])
        let split = dataset.split(testFold: 2)
        #expect(split.test.map(\.filename) == ["2-101-A-1.wav"])
        #expect(split.training.count == 2)
        #expect(dataset.clips[2].label == 3)
        #expect(dataset.clips(inFolds: [1, 3]).count == 2)
    }

    @Test func esc10RenumbersTargets() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        let esc10: [(Int, String)] = [(0, "dog"), (10, "rain"), (11, "sea_waves"), (20, "crying_baby"),
                                      (38, "clock_tick"), (21, "sneezing"), (40, "helicopter"),
                                      (41, "chainsaw"), (1, "rooster"), (12, "crackling_fire")]
        var rows = esc10.map { ("1-\($0.0)-A-\($0.0).wav", 1, $0.0, $0.1, true) }
        rows.append(("1-999-A-5.wav", 1, 5, "cat", false))
        try makeDataset(rows: rows, in: folder)
        let dataset = try ESC50Dataset(root: folder, subset: .esc10)
        #expect(dataset.clips.count == 10)
        #expect(dataset.clips.map(\.label) == Array(0..<10))
        #expect(dataset.classNames == esc10.map(\.1))
        #expect(dataset.clips.first { $0.target == 38 }?.label == 4)
        #expect(dataset.clips.first { $0.target == 1 }?.label == 8)
    }

    @Test func reportsEveryMissingOrBrokenFileInOneError() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        try makeDataset(rows: [
            ("1-1-A-0.wav", 1, 0, "dog", false), ("1-2-A-0.wav", 1, 0, "dog", false),
            ("2-3-A-1.wav", 2, 1, "rooster", false), ("2-4-A-1.wav", 2, 1, "rooster", false),
        ], withoutAudio: ["1-1-A-0.wav", "2-4-A-1.wav"], brokenAudio: ["2-3-A-1.wav"], in: folder)
        do {
            _ = try ESC50Dataset(root: folder)
            Issue.record("expected an error")
        } catch let DatasetError.unusableAudioFiles(problems) {
            #expect(problems.map { URL(fileURLWithPath: $0.path).lastPathComponent }
                == ["1-1-A-0.wav", "2-3-A-1.wav", "2-4-A-1.wav"])
            #expect(problems.map(\.isMissing) == [true, false, true])
            // Checked in any supported format: the reason says what the file seems to be and what is read.
            #expect(problems[1].reason.contains("seems to be unknown") && problems[1].reason.contains("supported: WAV"))
            let message = DatasetError.unusableAudioFiles(problems).description
            #expect(message.contains("3 unusable audio file(s) (2 missing, 1 broken)"))
            #expect(message.contains("1-1-A-0.wav") && message.contains("2-4-A-1.wav"))
        }
        #expect(try ESC50Dataset(root: folder, verifyingAudio: false).clips.count == 4)
    }

    @Test func invalidMetadataIsReported() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        let meta = folder.appendingPathComponent("meta")
        try FileManager.default.createDirectory(at: meta, withIntermediateDirectories: true)
        let url = meta.appendingPathComponent("esc50.csv")
        try Data("filename,fold,target\nx.wav,1,0\n".utf8).write(to: url)
        #expect(throws: DatasetError.missingColumns(path: url.path, columns: ["category", "esc10", "src_file", "take"])) {
            try ESC50Dataset(root: folder)
        }
        try Data("filename,fold,target,category,esc10,src_file,take\nx.wav,one,0,dog,True,1,A\n".utf8).write(to: url)
        #expect(throws: DatasetError.invalidMetadata(CSVError(source: url.path, line: 2, message: "fold 'one' is not a positive integer"))) {
            try ESC50Dataset(root: folder)
        }
        try Data("filename,fold,target,category,esc10,src_file,take\n../x.wav,1,0,dog,True,1,A\n".utf8).write(to: url)
        #expect(throws: DatasetError.self) { try ESC50Dataset(root: folder) }
        #expect(throws: DatasetError.self) {
            try ESC50Dataset(root: folder.appendingPathComponent("nowhere"))
        }
    }

    @Test func loadsClipsResampledAndNormalized() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        try makeDataset(rows: [("1-1-A-0.wav", 1, 0, "dog", false)], in: folder)
        let dataset = try ESC50Dataset(root: folder)
        let clip = try dataset.loadClip(dataset.clips[0], using: ClipLoader(settings: .seedArticle))
        #expect(clip.count == 1600)  // 0.1 s at 16 kHz
        #expect(abs(peakAmplitude(clip) - 1) < 1e-6)
        let raw = try dataset.loadClip(dataset.clips[0], using: ClipLoader(settings: .authorsRepository))
        #expect(abs(peakAmplitude(raw) - 0.25) < 0.01)
    }

    @Test func sixteenKilohertzClipsAreNotResampled() throws {
        let loader = ClipLoader(settings: .init(sampleRate: 16000, normalization: .int16FullScale,
                                                trimsZeros: true))
        let data = try WAVWriter.encode([0, 0, 0.5, -0.25, 0], sampleRate: 16000, format: .pcm16)
        #expect(try loader.preprocess(WAVReader.decode(data)) == [0.5, -0.25])
    }

    @Test func realESC10LoadsWhenPresent() throws {
        guard let root = sharedESC10Folder() else { return }
        let dataset = try ESC50Dataset(root: root, subset: .esc10, verifyingAudio: false)
        #expect(dataset.clips.count == 400)
        #expect(dataset.classNames.count == 10)
        #expect(dataset.classNames[0] == "dog")
        #expect(Set(dataset.clips.map(\.label)) == Set(0..<10))
        #expect(dataset.folds == [1, 2, 3, 4, 5])
        let clip = try dataset.loadClip(dataset.clips[0], using: ClipLoader())
        #expect(clip.count == 80000)
        #expect(abs(peakAmplitude(clip) - 1) < 1e-6)
    }
}
