import EnvNetModel
import Foundation
import Testing

/// A full disk while a checkpoint is written, simulated with a file-size limit on the child
/// process (`ulimit -f`, with SIGXFSZ ignored, so `write` fails with EFBIG as it fails with
/// ENOSPC on a full disk): training stops with an error naming the checkpoint and the system's
/// reason, exits non-zero, leaves no temporary file, and the previous checkpoint stays intact.
@Suite("Disk full during a checkpoint write")
struct DiskFullTests {
    @Test func trainChecksTheRunFolderBeforeReadingTheDataset() throws {
        let folder = try ChildProcess.temporaryFolder("disk-full")
        defer { try? FileManager.default.removeItem(at: folder) }
        let occupied = folder.appendingPathComponent("occupied")
        try Data("x".utf8).write(to: occupied)
        // Both the dataset and the output are bad: the output is named, so it was checked first.
        let result = CommandLineTests.failure(["train", "--data", "/nonexistent/ESC-50", "--output", occupied.path, "--cache", folder.path])
        #expect(result?.message.contains(occupied.path) == true, "\(result?.message ?? "nil")")
        #expect(result?.code != 0)
    }

    @Test(.timeLimit(.minutes(3)))
    func aFailedCheckpointWriteStopsCleanlyAndKeepsTheLastCheckpoint() throws {
        _ = try ChildProcess.requireExecutable()
        let root = try ChildProcess.temporaryFolder("disk-full")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("data"), log = root.appendingPathComponent("log.txt")
        try KillTests.writeTinyDataset(at: data)
        let run = root.appendingPathComponent("run"), checkpoint = run.appendingPathComponent("checkpoint.safetensors")
        func arguments(epochs: Int) -> [String] {
            var arguments = KillTests.trainArguments(data: data, cache: root.appendingPathComponent("cache"), output: run)
            arguments[arguments.firstIndex(of: "--epochs")! + 1] = "\(epochs)"
            return arguments
        }
        // One epoch with room to spare: a checkpoint of about 750 kB.
        try ChildProcess.run(arguments(epochs: 1), environment: KillTests.environment, log: log, timeout: 120)
        let before = try Data(contentsOf: checkpoint)
        #expect(before.count > 400_000)

        // The second epoch may write at most 200 blocks (100 or 200 kB, by the shell's block size) per file.
        let (reason, status, text) = try ChildProcess.runUnderFileSizeLimit(blocks: 200, ignoringSignal: true, arguments(epochs: 2),
                                                                            environment: KillTests.environment)
        #expect(reason == .exit && status != 0, "\(text)")
        #expect(text.contains("cannot write \(checkpoint.path)") && text.contains("File too large"), "\(text)")
        #expect(try Data(contentsOf: checkpoint) == before, "the last good checkpoint changed")
        #expect(KillTests.temporaryFiles(in: run, for: "checkpoint.safetensors").isEmpty, "a temporary file was left")
        #expect(KillTests.checkpointEpochs(checkpoint) == 1)
        // With room again, --resume finishes the run.
        try ChildProcess.run(arguments(epochs: 2), environment: KillTests.environment, log: log, timeout: 120)
        #expect(KillTests.checkpointEpochs(checkpoint) == 2)
    }
}
