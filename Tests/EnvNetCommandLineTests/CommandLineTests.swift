import ArgumentParser
import EnvNetModel
import Foundation
import Testing

@testable import EnvNetCommandLine

/// Error paths of every subcommand: bad arguments fail in parsing or validation with a message
/// that names the option; bad files fail in `run()` with a typed error naming the file.
@Suite("envnet command line")
struct CommandLineTests {
    /// Parses and runs; returns the error message and exit code when it fails, nil when it succeeds.
    static func failure(_ arguments: [String]) -> (message: String, code: Int32)? {
        do {
            var command = try EnvNetCommand.parseAsRoot(arguments)
            try command.run()
            return nil
        } catch {
            return (EnvNetCommand.message(for: error), EnvNetCommand.exitCode(for: error).rawValue)
        }
    }

    static func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(arguments: [
        (["train", "--output", "x"], "--data"),
        (["train", "--data", "d", "--output", "x", "--epochs", "0"], "epochs"),
        (["train", "--data", "d", "--output", "x", "--milestones", "80,a"], "--milestones"),
        (["train", "--data", "d", "--output", "x", "--variant", "big"], "--variant"),
        (["train", "--data", "d", "--output", "x", "--subset", "esc20"], "--subset"),
        (["evaluate", "--data", "d", "--weights", "w", "--evaluation", "sometimes"], "--evaluation"),
        (["predict", "--weights", "w"], "files"),
        (["predict", "--weights", "w", "--top-k", "0", "a.wav"], "--top-k"),
        (["analyze", "--weights", "w", "--output", "o", "--highest", "30000"], "--highest"),
        (["synth", "--output", "o", "--clips-per-class", "2"], "--clips-per-class"),
        (["resample", "a.wav", "b.wav", "--rate", "0"], "--rate"),
        (["inspect"], "files"),
        (["bench", "--batch-size", "0"], "--batch-size"),
        (["bench", "--precision", "fp16"], "--precision"),
        (["predict", "--weights", "w", "--precision", "int8", "a.wav"], "--precision"),
        (["train", "--data", "d", "--output", "x", "--precision", "bf32"], "--precision"),
        (["demo", "--epochs", "0"], "--epochs"),
        (["no-such-command"], "no-such-command"),
    ])
    func badArgumentsGiveOneClearLineAndAFailureCode(arguments: [String], mentioned: String) {
        let result = Self.failure(arguments)
        #expect(result != nil, "\(arguments) succeeded")
        #expect(result?.code != 0)
        #expect(result?.message.contains(mentioned) == true, "\(result?.message ?? "")")
    }

    @Test func missingDatasetIsNamed() throws {
        let output = try Self.folder()
        let result = Self.failure(["train", "--data", "/nonexistent/ESC-50", "--output", output.path, "--cache", output.path])
        #expect(result?.message.contains("/nonexistent/ESC-50") == true, "\(result?.message ?? "nil")")
        #expect(result?.code != 0)
    }

    @Test func missingOrDamagedWeightsAreNamed() throws {
        let folder = try Self.folder()
        let damaged = folder.appendingPathComponent("damaged.safetensors")
        try Data([1, 2, 3, 4, 5, 6, 7, 8, 9]).write(to: damaged)
        for weights in ["/nonexistent/model.safetensors", damaged.path] {
            for arguments in [["predict", "--weights", weights, "a.wav"], ["analyze", "--weights", weights, "--output", folder.path],
                              ["evaluate", "--data", folder.path, "--weights", weights]] {
                let result = Self.failure(arguments)
                #expect(result?.message.contains(weights) == true, "\(arguments): \(result?.message ?? "nil")")
            }
        }
    }

    @Test func badAudioFilesAreReportedPerFile() throws {
        let folder = try Self.folder()
        let notAudio = folder.appendingPathComponent("notes.wav")
        try Data("hello".utf8).write(to: notAudio)
        let inspect = Self.failure(["inspect", notAudio.path])
        #expect(inspect?.code == 1)
        let resample = Self.failure(["resample", notAudio.path, folder.appendingPathComponent("out.wav").path, "--rate", "16000"])
        #expect(resample?.message.contains(notAudio.path) == true, "\(resample?.message ?? "nil")")
        // predict: a good model, one good file and one bad file: the bad one fails the command.
        let model = folder.appendingPathComponent("model.safetensors")
        try EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8)).save(to: model, classNames: ["a", "b", "c"])
        let good = folder.appendingPathComponent("tone.wav")
        try WAVWriter.write((0..<8_000).map { Float(sin(Double($0) * 0.3)) * 0.5 }, sampleRate: 8_000, format: .pcm16, to: good)
        #expect(Self.failure(["predict", "--weights", model.path, "--json", good.path]) == nil)
        #expect(Self.failure(["predict", "--weights", model.path, good.path, notAudio.path])?.code == 1)
    }

    @Test func readOnlyOutputFolderFailsBeforeWork() throws {
        guard getuid() != 0 else { return }  // root may write anywhere
        let folder = try Self.folder()
        try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: folder.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: folder.path) }
        let result = Self.failure(["demo", "--output", folder.appendingPathComponent("demo").path])
        #expect(result?.message.contains("demo") == true)
    }

    @Test func outputFolderThatIsAFileFailsBeforeWork() throws {
        let folder = try Self.folder()
        let file = folder.appendingPathComponent("occupied")
        try Data("x".utf8).write(to: file)
        let result = Self.failure(["demo", "--output", file.path])
        #expect(result?.message.contains(file.path) == true, "\(result?.message ?? "nil")")
        let analyze = Self.failure(["analyze", "--weights", "w", "--output", file.path])
        #expect(analyze?.message.contains(file.path) == true)
    }
}
