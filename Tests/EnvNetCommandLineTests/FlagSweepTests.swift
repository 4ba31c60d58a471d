import Foundation
import Testing

/// Issue 14, point 4: every option of every subcommand, taken from the command definitions
/// (`envnet --experimental-dump-help`, so that options added later are swept too), given 0, -1,
/// 2^63-1, NaN and infinity, ends cleanly: a usage error or a one-line error, within seconds,
/// never a signal, a Swift backtrace or work. Each run gets base arguments whose paths do not exist
/// (or an output that is a file), so that a value that passes validation fails fast in `run()`.
@Suite("Flag sweep: out-of-range values give clean errors, never traps")
struct FlagSweepTests {
    static let values = ["0", "-1", "9223372036854775807", "nan", "inf"]
    /// Options that take paths or free text: a value like "0" is a legal name, not a number.
    static let pathOptions: Set<String> = ["data", "output", "cache", "weights", "init-from", "csv", "credit"]

    /// The options (long names) of each subcommand that take a value.
    static func options() throws -> [(command: String, options: [String])] {
        let folder = try ChildProcess.temporaryFolder("dump-help")
        defer { try? FileManager.default.removeItem(at: folder) }
        let log = folder.appendingPathComponent("help.json")
        try ChildProcess.run(["--experimental-dump-help"], log: log, timeout: 60)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: log)) as? [String: Any])
        let command = try #require(root["command"] as? [String: Any])
        let subcommands = try #require(command["subcommands"] as? [[String: Any]])
        return subcommands.compactMap { sub in
            guard let name = sub["commandName"] as? String, name != "help" else { return nil }
            let arguments = sub["arguments"] as? [[String: Any]] ?? []
            let options = arguments.compactMap { argument -> String? in
                guard argument["kind"] as? String == "option" else { return nil }
                let names = argument["names"] as? [[String: Any]] ?? []
                return names.first { $0["kind"] as? String == "long" }?["name"] as? String
            }
            return (name, options.filter { !pathOptions.contains($0) && $0 != "help" && $0 != "version" })
        }
    }

    @Test(.timeLimit(.minutes(8)))
    func everyOptionRefusesOutOfRangeValuesCleanly() throws {
        let folder = try ChildProcess.temporaryFolder("flag-sweep")
        defer { try? FileManager.default.removeItem(at: folder) }
        let occupied = folder.appendingPathComponent("occupied")
        try Data("a file, not a folder".utf8).write(to: occupied)
        let missing = "/nonexistent-envnet-sweep"
        let base: [String: [String]] = [
            "demo": ["--output", occupied.path],
            "synth": ["--output", occupied.path],
            "train": ["--data", missing, "--output", folder.appendingPathComponent("run").path],
            "evaluate": ["--data", missing, "--weights", missing + ".safetensors"],
            "predict": ["--weights", missing + ".safetensors", missing + ".wav"],
            "embed": ["--weights", missing + ".safetensors", "--data", missing, "--output", folder.appendingPathComponent("embed").path],
            "analyze": ["--weights", missing + ".safetensors", "--output", folder.appendingPathComponent("analysis").path],
            "resample": [missing + ".wav", folder.appendingPathComponent("out.wav").path, "--rate", "16000"],
            "inspect": [missing + ".wav"],
            "features": ["--log-mel", missing + ".wav", "--output", folder.appendingPathComponent("features.safetensors").path],
            "bench": [],
        ]
        let commands = try Self.options()
        #expect(commands.contains { $0.command == "train" && $0.options.contains("hidden-units") && $0.options.contains("epochs") })
        var runs = 0, usageErrors = 0
        for (command, options) in commands {
            let commandBase = try #require(base[command], "no base arguments for the new subcommand \(command): add them here")
            for option in options {
                for value in Self.values {
                    // The swept option replaces the base's own value of it.
                    var arguments = [command]
                    var index = 0
                    while index < commandBase.count {
                        if commandBase[index] == "--" + option { index += 2; continue }
                        arguments.append(commandBase[index])
                        index += 1
                    }
                    arguments += ["--" + option, value]
                    let log = folder.appendingPathComponent("run-\(runs).txt")
                    let process = try ChildProcess.start(arguments, log: log)
                    let ended = ChildProcess.wait(process, timeout: 30)
                    let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                    let shown = "envnet \(arguments.joined(separator: " ")):\n\(output.suffix(1500))"
                    runs += 1
                    #expect(ended, "still working after 30 s: \(shown)")
                    guard ended else { continue }
                    #expect(process.terminationReason == .exit, "ended by signal \(process.terminationStatus): \(shown)")
                    #expect(process.terminationStatus != 0, "accepted and succeeded: \(shown)")
                    for trap in ["Fatal error", "Illegal instruction", "Stack dump", "Current stack trace", "💣", "Precondition failed"] {
                        #expect(!output.contains(trap), "trapped: \(shown)")
                    }
                    if output.contains("Usage:") {
                        usageErrors += 1
                        // A usage error shows the subcommand's usage, never the top-level one.
                        #expect(output.contains("Usage: envnet \(command)"), "\(shown)")
                    } else {
                        let lines = output.split(separator: "\n").filter { !$0.hasPrefix("warning:") && !$0.contains("ETA") }
                        #expect(lines.count <= 2, "more than one line of error: \(shown)")
                    }
                }
            }
        }
        print("flag sweep: \(runs) runs over \(commands.count) subcommands, \(usageErrors) usage errors, the rest clean one-line errors")
        #expect(runs >= 200)
    }
}
