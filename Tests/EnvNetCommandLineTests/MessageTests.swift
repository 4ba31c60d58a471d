import EnvNetModel
import Foundation
import Testing

@testable import EnvNetCommandLine

#if canImport(Glibc)
import Glibc
#endif

/// Issue 14, points 3 and 8: what a path really is, escaped names from files, options that would
/// do nothing, checks made before preprocessing.
@Suite("Messages that say what went wrong, on one line")
struct MessageTests {
    @Test func weightsThatAreNotRegularFilesAreNamedForWhatTheyAre() throws {
        let folder = try CommandLineTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("fifo"), loop = folder.appendingPathComponent("loop")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        try FileManager.default.createSymbolicLink(atPath: loop.path, withDestinationPath: loop.path)
        let audio = folder.appendingPathComponent("a.wav")
        try WAVWriter.write([Float](repeating: 0.1, count: 100), sampleRate: 16_000, format: .pcm16, to: audio)
        for (weights, expected) in [(folder.path, "is a folder, not a regular file"), (fifo.path, "is a FIFO, not a regular file"),
                                    ("/dev/zero", "is a character device, not a regular file"), (loop.path, "is a symbolic link loop"),
                                    (folder.path + "/bad\u{FFFD}.safetensors", "not valid UTF-8")] {
            let result = CommandLineTests.failure(["predict", "--weights", weights, audio.path])
            #expect(result?.message.contains(expected) == true, "\(weights): \(result?.message ?? "nil")")
            #expect(result?.message.contains("NSCocoaErrorDomain") == false)
            #expect(result?.message.split(separator: "\n").count == 1, "\(result?.message ?? "")")
        }
        // As audio, in predict (any mode) and as a dataset clip, a FIFO is refused without blocking.
        for arguments in [["predict", "--weights", "/nonexistent.safetensors", fifo.path]] {
            #expect(CommandLineTests.failure(arguments) != nil)
        }
        #expect(throws: AudioError.self) { try AudioFileReader.read(contentsOf: fifo) }
        #expect(throws: AudioError.self) { try AudioFileStream(contentsOf: fifo) }
    }

    @Test func namesFromFilesArePrintedEscaped() throws {
        #expect(terminalSafe("dog") == "dog")
        #expect(terminalSafe("dog\nrain 100.00%") == "dog\\u{A}rain 100.00%")
        #expect(terminalSafe("\u{1B}[2J\u{7F}\u{9B}x") == "\\u{1B}[2J\\u{7F}\\u{9B}x")
        #expect(terminalSafe("a\u{202E}b") == "a\\u{202E}b")
        #expect(terminalSafe("chien · perro · 犬") == "chien · perro · 犬")
        // A class folder whose name carries a terminal escape is printed escaped in the summary.
        let root = try CommandLineTests.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        for name in ["calm", "bad\u{1B}[31mred"] {
            let classFolder = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: classFolder, withIntermediateDirectories: true)
            for clip in 0..<5 {
                try WAVWriter.write([Float](repeating: 0.2, count: 1600), sampleRate: 16_000, format: .pcm16,
                                    to: classFolder.appendingPathComponent("\(clip).wav"))
            }
        }
        let summary = try AudioDataset.load(from: root).summary().description
        #expect(summary.contains("bad\\u{1B}[31mred") && !summary.contains("\u{1B}"), "\(summary)")
    }

    @Test func optionsThatWouldDoNothingAreRefused() {
        for (arguments, mentioned) in [
            (["predict", "--stream", "--top-k", "2", "a.wav"], "--top-k does nothing with --stream"),
            (["predict", "--stream", "--normalization", "window", "a.wav"], "--normalization does nothing with --stream"),
            (["predict", "--hop-seconds", "0.5", "--overlap-factor", "0.5", "a.wav"], "not both"),
            (["train", "--data", "d", "--output", "o", "--all-folds", "--validate-every", "5"], "--validate-every does nothing with --all-folds"),
            (["train", "--data", "d", "--output", "o", "--cross-validation", "--fold", "2"], "exclude each other"),
            (["train", "--data", "d", "--output", "o", "--warmup-epochs", "inf"], "--warmup-epochs"),
        ] {
            let result = CommandLineTests.failure(arguments)
            #expect(result?.message.contains(mentioned) == true, "\(arguments): \(result?.message ?? "nil")")
            #expect(result?.code == 64, "\(arguments): a usage error")
        }
    }

    @Test func aDatasetOfOneClassOrWorkBeyondTheMachineIsRefusedBeforeWork() throws {
        let root = try CommandLineTests.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        // Files that are not audio: the refusal must come before their headers are read.
        let only = root.appendingPathComponent("data/only")
        try FileManager.default.createDirectory(at: only, withIntermediateDirectories: true)
        for clip in 0..<6 { try Data("not audio".utf8).write(to: only.appendingPathComponent("\(clip).wav")) }
        let result = CommandLineTests.failure(["train", "--data", root.appendingPathComponent("data").path, "--output", root.appendingPathComponent("run").path])
        #expect(result?.message.contains("has 1 class (only); training needs at least 2") == true, "\(result?.message ?? "nil")")
        // A memory estimate beyond any machine (65,536 windows of 20 MB) is refused naming both figures.
        let huge = CommandLineTests.failure(["bench", "--batch-size", "65536"])
        #expect(huge?.message.contains("GB of memory, more than this machine's") == true, "\(huge?.message ?? "nil")")
        #expect(huge?.code == 64)
    }

    @Test func anUnwritableCacheIsRefusedBeforeTheHeadersAreRead() throws {
        let root = try CommandLineTests.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let occupied = root.appendingPathComponent("cache-is-a-file")
        try Data("x".utf8).write(to: occupied)
        // A dataset whose headers would fail: the cache problem must be reported first.
        for name in ["a", "b"] {
            let data = root.appendingPathComponent("data/\(name)")
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
            for clip in 0..<5 { try Data("not audio".utf8).write(to: data.appendingPathComponent("\(clip).wav")) }
        }
        let result = CommandLineTests.failure(["train", "--data", root.appendingPathComponent("data").path, "--output",
                                               root.appendingPathComponent("run").path, "--cache", occupied.path])
        #expect(result?.message.contains(occupied.path) == true, "\(result?.message ?? "nil")")
    }
}

/// Issue 14, point 8: past the file-size limit (`ulimit -f`), the write check fails with an error
/// and leaves neither its probe nor a temporary file, instead of the process dying of SIGXFSZ.
@Suite("File-size limit")
struct FileSizeLimitTests {
    @Test func theWriteCheckFailsCleanlyAndRemovesItsProbe() throws {
        let folder = try ChildProcess.temporaryFolder("size-limit")
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("demo")
        // The shell does not ignore SIGXFSZ here: envnet itself must.
        let (reason, status, text) = try ChildProcess.runUnderFileSizeLimit(blocks: 1, ignoringSignal: false,
                                                                            ["demo", "--output", output.path, "--epochs", "1"])
        #expect(reason == .exit && status != 0, "\(reason.rawValue) \(status): \(text)")
        #expect(text.contains(output.path), "\(text)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: output.path)) ?? []
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
