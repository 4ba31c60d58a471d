import ArgumentParser
import CEnvNetSupport
import EnvNetModel
import Foundation

@main
struct EnvNetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "envnet",
        abstract: "Environmental sound classification with EnvNet (Tokozume & Harada, ICASSP 2017).",
        subcommands: [Demo.self, Synth.self, Train.self, Evaluate.self, Predict.self, Analyze.self, Inspect.self, Resample.self, Bench.self])

    static func main() {
        // Epoch lines must reach a log file as they happen, not when a block buffer fills.
        envnet_line_buffer_standard_output()
        main(nil)
    }
}
