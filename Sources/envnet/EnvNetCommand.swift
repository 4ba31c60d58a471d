import ArgumentParser
import EnvNetModel
import Foundation

@main
struct EnvNetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "envnet",
        abstract: "Environmental sound classification with EnvNet (Tokozume & Harada, ICASSP 2017).",
        subcommands: [Synth.self, Train.self, Bench.self])
}
