import EnvNetModel
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The kill test of issue 8: `envnet train` on a tiny dataset is SIGKILLed at seeded
/// random moments, half of them in the middle of a checkpoint write, and resumed with `--resume`
/// each time. After every kill the checkpoint must be intact (it decodes, it holds at least the
/// epochs it held before); the run must end with exactly the weights of an uninterrupted run.
///
/// To land kills inside checkpoint writes, those launches set `ENVNET_TEST_WRITE_PAUSE_MS` and
/// `ENVNET_TEST_WRITE_PAUSE_NAME=checkpoint.safetensors`, which make each checkpoint write pause
/// after writing half of its temporary file (see `AtomicFile.testPause`); the test watches the run
/// folder for that process's temporary checkpoint file and kills the process while it is there.
@Suite("Kill test: SIGKILL during training, resume, same weights")
struct KillTests {
    static let epochs = 10
    static let kills = 6
    /// The pause inside checkpoint writes; kills land within its first half, leaving the test
    /// half a second of slack on a busy machine.
    static let pauseMilliseconds = 1000

    /// `--resume` from the first launch on: without a checkpoint it starts from scratch.
    static func trainArguments(data: URL, cache: URL, output: URL) -> [String] {
        ["train", "--data", data.path, "--cache", cache.path, "--subset", "esc50", "--fold", "3", "--output", output.path,
         "--epochs", "\(epochs)", "--batch-size", "2", "--milestones", "6", "--hidden-units", "8", "--validate-every", "0",
         "--seed", "3", "--resume"]
    }

    /// The smallest dataset that trains (a debug build computes about two windows a second):
    /// ESC-50 layout, two classes, three 1.6 s clips at 16 kHz in folds 1, 2 and 5; one step of
    /// two windows per epoch when fold 5 is held out.
    static func writeTinyDataset(at root: URL) throws {
        let audio = root.appendingPathComponent("audio"), meta = root.appendingPathComponent("meta")
        try FileManager.default.createDirectory(at: audio, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: meta, withIntermediateDirectories: true)
        var generator = SeededGenerator(seed: 8)
        var csv = "filename,fold,target,category,esc10,src_file,take\n"
        // Every class needs 2 clips and no fold between 1 and the highest may be empty.
        for (index, (fold, target, frequency)) in [(1, 0, Float(300)), (2, 1, 2000), (3, 0, 350), (3, 1, 2100)].enumerated() {
            let name = "\(fold)-\(index)-A-\(target).wav"
            let samples = (0..<26_000).map { 0.6 * sinf(2 * .pi * frequency * Float($0) / 16_000) + 0.05 * Float.random(in: -1...1, using: &generator) }
            try WAVWriter.write(samples, sampleRate: 16_000, format: .pcm16, to: audio.appendingPathComponent(name))
            csv += "\(name),\(fold),\(target),\(target == 0 ? "low" : "high"),False,\(index),A\n"
        }
        try Data(csv.utf8).write(to: meta.appendingPathComponent("esc50.csv"))
    }

    /// Threads fixed for every run: the weight-gradient reduction order depends on the worker count.
    static let environment = ["ENVNET_THREADS": "2"]

    /// What a checkpoint holds, or nil for a damaged file (a test failure is recorded).
    static func checkpointEpochs(_ url: URL, sourceLocation: SourceLocation = #_sourceLocation) -> Int? {
        guard FileManager.default.fileExists(atPath: url.path) else { return 0 }
        do {
            let file = try SafeTensors.read(from: url)
            let history = try JSONDecoder().decode([EpochRecord].self, from: Data(try #require(file.metadata["envnet.history"]).utf8))
            #expect(file.tensors.keys.contains { $0.hasPrefix("model.") }, "the checkpoint has no weights", sourceLocation: sourceLocation)
            #expect(file.tensors.keys.contains { $0.hasPrefix("optimizer.") }, "the checkpoint has no momentum", sourceLocation: sourceLocation)
            return history.count
        } catch {
            Issue.record("the checkpoint \(url.path) is damaged: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// The temporary files of writes to `folder/name` (by process `pid` when given).
    static func temporaryFiles(in folder: URL, for name: String, pid: Int32? = nil) -> [String] {
        let prefix = AtomicFile.temporaryFilePrefix(for: folder.appendingPathComponent(name)) + (pid.map { "\($0)-" } ?? "")
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasPrefix(prefix) }.sorted()
    }

    @Test(.timeLimit(.minutes(5)))
    func killedTrainingResumesFromAnIntactCheckpointAndEndsWithTheSameWeights() throws {
        _ = try ChildProcess.requireExecutable()
        let root = try ChildProcess.temporaryFolder("kill-test")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("data"), log = root.appendingPathComponent("log.txt")
        try Self.writeTinyDataset(at: data)

        // The uninterrupted run, timed: the kill moments are drawn within its epochs.
        let reference = root.appendingPathComponent("reference")
        let started = Date()
        try ChildProcess.run(Self.trainArguments(data: data, cache: root.appendingPathComponent("cache-reference"), output: reference),
                             environment: Self.environment, log: log, timeout: 240)
        let referenceSeconds = Date().timeIntervalSince(started)
        // Issue 14, point 8: --resume on a folder without a checkpoint says it starts a new run.
        let referenceLog = try String(contentsOf: log, encoding: .utf8)
        #expect(referenceLog.contains("holds no checkpoint yet, so this starts a new run"), "\(referenceLog.prefix(2000))")
        let epochSeconds = referenceSeconds / Double(Self.epochs + 1)  // an epoch, or the start-up (preprocessing included)

        // The killed run, with its own preprocessing cache (so kills also land while it is built).
        let killed = root.appendingPathComponent("killed"), cache = root.appendingPathComponent("cache-killed")
        let checkpoint = killed.appendingPathComponent("checkpoint.safetensors")
        var generator = SeededGenerator(seed: 2024)
        var kept = 0, killsDuringCheckpointWrites = 0, launches = 0
        var moments: [String] = []
        for round in 0..<Self.kills {
            let duringCheckpointWrite = round % 2 == 1
            let process = try ChildProcess.start(
                Self.trainArguments(data: data, cache: cache, output: killed),
                environment: duringCheckpointWrite
                    ? Self.environment.merging(["ENVNET_TEST_WRITE_PAUSE_MS": "\(Self.pauseMilliseconds)",
                                                "ENVNET_TEST_WRITE_PAUSE_NAME": "checkpoint.safetensors"]) { $1 }
                    : Self.environment,
                log: log)
            launches += 1
            let launched = Date()
            if duringCheckpointWrite {
                // Kill during the first or second checkpoint write of this launch, a random moment
                // into its pause (the temporary file is then half written).
                let target = Int.random(in: 1...2, using: &generator)
                let delay = Double.random(in: 0...(0.5 * Double(Self.pauseMilliseconds) / 1000), using: &generator)
                var seen = Set<String>()
                while process.isRunning, seen.count < target, Date().timeIntervalSince(launched) < 120 {
                    seen.formUnion(Self.temporaryFiles(in: killed, for: "checkpoint.safetensors", pid: process.processIdentifier))
                    if seen.count < target { usleep(2_000) }
                }
                usleep(UInt32(delay * 1e6))
                moments.append(String(format: "checkpoint write %d + %.0f ms", target, delay * 1000))
            } else {
                // A random moment in the start-up (about 1 s: loading, preprocessing, cache
                // writing), then in the launch's first epoch, then in its second.
                let slot = Double(round / 2)
                let delay = slot == 0 ? Double.random(in: 0.05...0.8, using: &generator)
                    : 0.8 + Double.random(in: (slot - 1)...slot, using: &generator) * epochSeconds
                while process.isRunning, Date().timeIntervalSince(launched) < delay { usleep(2_000) }
                moments.append(String(format: "%.2f s", delay))
            }
            try #require(process.isRunning, """
                launch \(launches) ended before it could be killed (\(moments.last!)); the schedule is too late. Output:
                \(((try? String(contentsOf: log, encoding: .utf8)) ?? "").suffix(2000))
                """)
            #expect(kill(process.processIdentifier, SIGKILL) == 0)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL)
            if duringCheckpointWrite {
                // The kill landed inside the write: its temporary file is left, the checkpoint is the previous one.
                if Self.temporaryFiles(in: killed, for: "checkpoint.safetensors", pid: process.processIdentifier).isEmpty {
                    Issue.record("kill \(round + 1) did not land inside a checkpoint write")
                } else {
                    killsDuringCheckpointWrites += 1
                }
            }
            // Intact, and nothing lost.
            let epochs = try #require(Self.checkpointEpochs(checkpoint), "after kill \(round + 1) (\(moments.last!))")
            #expect(epochs >= kept, "kill \(round + 1): the checkpoint went back from \(kept) to \(epochs) epochs")
            #expect(epochs < Self.epochs, "kill \(round + 1): training finished before it was killed")
            kept = epochs
            moments[moments.count - 1] += " -> \(epochs) epochs kept"
        }
        // The last launch runs to the end.
        try ChildProcess.run(Self.trainArguments(data: data, cache: cache, output: killed), environment: Self.environment, log: log, timeout: 240)
        #expect(Self.checkpointEpochs(checkpoint) == Self.epochs)
        #expect(killsDuringCheckpointWrites >= 3, "only \(killsDuringCheckpointWrites) kills landed inside checkpoint writes")
        #expect(Self.temporaryFiles(in: killed, for: "checkpoint.safetensors").isEmpty, "temporary files of killed writes were left")
        #expect(Self.temporaryFiles(in: killed, for: "log.jsonl").isEmpty)

        // Bit for bit the weights of the uninterrupted run, and the same epoch log (times aside).
        let a = try SafeTensors.read(from: reference.appendingPathComponent("model.safetensors"))
        let b = try SafeTensors.read(from: killed.appendingPathComponent("model.safetensors"))
        #expect(a.tensors.keys.sorted() == b.tensors.keys.sorted())
        for (key, tensor) in a.tensors { #expect(b.tensors[key] == tensor, "\(key) differs from the uninterrupted run") }
        let referenceHistory = try JSONDecoder().decode([EpochRecord].self, from: Data(try #require(
            try SafeTensors.read(from: reference.appendingPathComponent("checkpoint.safetensors")).metadata["envnet.history"]).utf8))
        let killedHistory = try JSONDecoder().decode([EpochRecord].self, from: Data(try #require(
            try SafeTensors.read(from: checkpoint).metadata["envnet.history"]).utf8))
        #expect(referenceHistory.map(\.loss) == killedHistory.map(\.loss))
        #expect(referenceHistory.map(\.trainAccuracy) == killedHistory.map(\.trainAccuracy))
        let lines = try String(contentsOf: killed.appendingPathComponent("log.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == Self.epochs)
        print(String(format: "kill test: reference run %.1f s; %d kills (%@), %d inside checkpoint writes; same weights",
                     referenceSeconds, Self.kills, moments.joined(separator: "; "), killsDuringCheckpointWrites))
    }
}
