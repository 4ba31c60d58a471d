import ArgumentParser
import EnvNetBenchmarking
import EnvNetModel
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure EnvNet's or EnvNet-v2's training and inference throughput, peak memory and per-layer times.",
        discussion: """
            Uses the full sizes (EnvNet: input 24014; EnvNet-v2: input 66650; 50 classes, fc 4096; the log-mel CNN: input 20991, fc 5000). \
            Build in release mode:
              swift run -c release envnet bench
              swift run -c release envnet bench --network envnet-v2 --batch-size 32
              swift run -c release envnet bench --json --batch-size 64 --repetitions 5
            """)

    @Option(help: ArgumentHelp("The network: envnet, envnet-v2 or logmel-cnn.", valueName: "envnet|envnet-v2|logmel-cnn")) var network = "envnet"

    @Option(help: "Windows per step.") var batchSize = 64
    @Option(help: "Timed repetitions; the median is reported.") var repetitions = 5
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var precision: PrecisionOption

    func validate() throws {
        guard let architecture = NetworkArchitecture(rawValue: network) else { throw ValidationError("--network must be envnet, envnet-v2 or logmel-cnn, not \(network)") }
        try Limits.check(batchSize, in: Limits.batchSize, option: "--batch-size")
        try Limits.check(repetitions, in: Limits.repetitions, option: "--repetitions")
        try Limits.checkMemory(Limits.trainingBytes(network: architecture, hiddenUnits: RecipeOptions.defaultHiddenUnits(architecture), batchSize: batchSize, classCount: 50),
                               for: "a training step of --batch-size \(batchSize)")
    }

    func run() throws {
        precision.apply()
        let report = NetworkBenchmark.run(network: NetworkArchitecture(rawValue: network) ?? .envnet, batchSize: batchSize, repetitions: repetitions)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("\(report.configuration), batch \(report.batchSize), \(ExecutionOptions.current.matrixPrecision.rawValue), OpenBLAS \(report.kernelFamily)\(BLASRuntime.forcedKernelFamily != nil ? " (forced by OPENBLAS_CORETYPE)" : ""), \(report.workers) workers")
        print(String(format: "training step:  %8.1f samples/s", report.trainingSamplesPerSecond))
        print(String(format: "inference:      %8.1f windows/s", report.inferenceWindowsPerSecond))
        print(String(format: "peak memory:    %8.0f MB", Double(report.peakResidentBytes) / 1e6))
        print("layer        forward ms  backward ms (training mode)")
        for layer in report.layers {
            print(layer.name.padding(toLength: 12, withPad: " ", startingAt: 0)
                  + String(format: " %10.2f  %11.2f", layer.forwardMilliseconds, layer.backwardMilliseconds))
        }
        let forward = report.layers.reduce(0) { $0 + $1.forwardMilliseconds }, backward = report.layers.reduce(0) { $0 + $1.backwardMilliseconds }
        print("total".padding(toLength: 12, withPad: " ", startingAt: 0) + String(format: " %10.2f  %11.2f", forward, backward))
        print("")
        print("inference stage      ms (evaluation mode)")
        for stage in report.inferenceStages {
            print(stage.name.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: " %6.2f", stage.milliseconds))
        }
        let inference = report.inferenceStages.reduce(0) { $0 + $1.milliseconds }
        print("total".padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: " %6.2f", inference))
    }
}
