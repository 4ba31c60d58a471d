import ArgumentParser
import EnvNetModel
import Foundation

/// The `envnet` command: its subcommands are the library's workflows.
public struct EnvNetCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "envnet",
        abstract: "Environmental sound classification with EnvNet (Tokozume & Harada, ICASSP 2017).",
        version: EnvNetLibrary.version,
        subcommands: [Demo.self, Synth.self, Train.self, Evaluate.self, Predict.self, Embed.self, Analyze.self, Features.self, Inspect.self, Resample.self, Bench.self])

    public init() {}

    /// Runs the command line of this process.
    /// - Parameter arguments: The arguments after the command's name; nil takes the process's.
    public static func runMain(arguments: [String]? = nil) {
        // Epoch lines must reach a log file as they happen, not when a block buffer fills.
        ProcessSupport.lineBufferStandardOutput()
        // Past a file-size limit, a write fails with EFBIG (a typed error, and the probe and
        // temporary files are removed) instead of the process being killed by SIGXFSZ.
        signal(SIGXFSZ, SIG_IGN)
        do {
            try CommandEnvironment.apply()
        } catch {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            Foundation.exit(64)
        }
        main(arguments)
    }
}
