import ArgumentParser
import EnvNetAudio
import EnvNetTensor
import Foundation

/// Kernel benchmark: sgemm ceiling and EnvNet's convolution shapes, forward and backward.
@main
struct EnvNetBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "envnet-benchmark",
        abstract: "Measures GFLOP/s of EnvNet's convolution kernels against the machine's sgemm ceiling.",
        discussion: """
            Build in release mode for meaningful figures:
              swift run -c release envnet-benchmark
              swift run -c release envnet-benchmark --json
            """)

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(help: "Timed repetitions per measurement (the median is reported).")
    var repetitions = 7

    @Option(help: "Batch size for the convolution shapes.")
    var batch = 8

    @Option(help: "Elements per im2col column tile (ExecutionOptions.convolutionTileElements), for tuning.")
    var tileBudget: Int?

    @Option(help: "Kernel threads (ExecutionOptions.threadCount); all cores by default.")
    var threads: Int?

    @Flag(help: "Run every convolution by im2col + GEMM (ExecutionOptions.usesWinograd off).")
    var noWinograd = false

    @Flag(help: "Run tall and strided kernels by whole-kernel im2col too (ExecutionOptions.usesConvolutionRewrites off).")
    var noConvolutionRewrites = false

    @Flag(help: "Measure only the log-mel features (for Benchmarks/logmel_compare.py).")
    var logMelOnly = false

    func validate() throws {
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be from 1 to 1024, got \(threads)") }
        if let tileBudget, !(1024...(1 << 26)).contains(tileBudget) { throw ValidationError("--tile-budget must be from 1024 to 67108864, got \(tileBudget)") }
    }

    mutating func run() throws {
        var generator = SeededGenerator(seed: 1)
        var results: [Measurement] = []
        if let tileBudget { ExecutionOptions.processWide.convolutionTileElements = tileBudget }
        if let threads { ExecutionOptions.processWide.threadCount = threads }
        if noWinograd { ExecutionOptions.processWide.usesWinograd = false }
        if noConvolutionRewrites { ExecutionOptions.processWide.usesConvolutionRewrites = false }

        if logMelOnly {
            let row = try measureLogMel(generator: &generator)
            if json {
                print(String(decoding: try JSONEncoder().encode(row), as: UTF8.self))
            } else {
                print(String(format: "log-mel features: %.0f segments/s on one thread, %.0f on %d workers",
                             row.segmentsPerSecondOneThread, row.segmentsPerSecondAllWorkers, Parallel.workerCount))
            }
            return
        }

        // The ceiling: a large square sgemm through the library's parallel GEMM.
        let size = 2048
        let a = Tensor.uniform([size, size], in: -1..<1, generator: &generator)
        let b = Tensor.uniform([size, size], in: -1..<1, generator: &generator)
        results.append(measure(name: "sgemm 2048^3", flops: 2 * Double(size * size * size)) { _ = a.matmul(b) })
        // bf16 operands, fp32 accumulation (issue 19's groundwork), packing of both operands included.
        if BFloat16Matmul.hasAVX512BF16 {
            results.append(measure(name: "bf16 gemm 2048^3 (avx512-bf16)", flops: 2 * Double(size * size * size)) {
                _ = BFloat16Matmul.multiply(a, b, path: .avx512BF16)
            })
            if let packed = PackedBFloat16Matrix(b) {
                results.append(measure(name: "bf16 gemm 2048^3, B packed once", flops: 2 * Double(size * size * size)) {
                    _ = BFloat16Matmul.multiply(a, packed)
                })
            }
            // EnvNet's fc5 forward at batch 64: [64, 7700] x W^T, W [4096, 7700] as the layer holds it.
            let activations = Tensor.uniform([64, 7700], in: -1..<1, generator: &generator)
            let weight = Tensor.uniform([4096, 7700], in: -1..<1, generator: &generator)
            let fcFlops = 2 * 64 * 7700 * 4096.0
            let weightTransposed = weight.transposed
            results.append(measure(name: "fc5 64x7700x4096 sgemm", flops: fcFlops) { _ = activations.matmul(weightTransposed) })
            results.append(measure(name: "fc5 64x7700x4096 bf16, packing W", flops: fcFlops) {
                if let packed = PackedBFloat16Matrix(transposing: weight) { _ = BFloat16Matmul.multiply(activations, packed) }
            })
            if let packed = PackedBFloat16Matrix(transposing: weight) {
                results.append(measure(name: "fc5 64x7700x4096 bf16, W packed", flops: fcFlops) {
                    _ = BFloat16Matmul.multiply(activations, packed)
                })
            }
        }

        for shape in ConvolutionShape.envNet(batch: batch) {
            let input = Tensor.uniform(shape.input, in: -1..<1, generator: &generator)
            let weight = Tensor.normal(shape.weight, standardDeviation: 0.05, generator: &generator)
            let output = Convolution.forward(input: input, weight: weight, geometry: shape.geometry)
            let gradient = Tensor.uniform(output.shape, in: -1..<1, generator: &generator)
            let flops = 2 * Double(output.count) * Double(shape.weight[1] * shape.weight[2] * shape.weight[3])
            var reusedOutput = output
            results.append(measure(name: "\(shape.name) forward", flops: flops) {
                Convolution.forward(input: input, weight: weight, bias: nil, geometry: shape.geometry, into: &reusedOutput)
            })
            var reusedInputGradient = input
            results.append(measure(name: "\(shape.name) backward input", flops: flops) {
                Convolution.backwardInput(gradientOutput: gradient, weight: weight, inputShape: shape.input,
                                          geometry: shape.geometry, into: &reusedInputGradient)
            })
            var weightGradient = Tensor.zeros(shape.weight)
            results.append(measure(name: "\(shape.name) backward weight", flops: flops) {
                Convolution.backwardWeight(gradientOutput: gradient, input: input, geometry: shape.geometry, accumulatingInto: &weightGradient)
            })
        }

        // The resampler: 5 s of noise at each source rate, one thread, as multiples of real time.
        var resampling: [Report.ResamplerRow] = []
        for rate in [44_100, 48_000, 22_050, 8_000] {
            let resampler = try Resampler(from: rate, to: 16_000)
            let input = (0..<(5 * rate)).map { _ in Float(generator.nextDouble(in: -1...1)) }
            let timing = measure(name: "resample", flops: 1) { _ = resampler.process(input) }
            resampling.append(.init(sourceRate: rate, targetRate: 16_000, timesRealTime: 5 / timing.seconds))
        }

        let logMel = try measureLogMel(generator: &generator)

        let ceiling = results[0].gflops
        let report = Report(
            kernelFamily: BLASRuntime.kernelFamily, switchedToAVX512: BLASRuntime.switchedToAVX512,
            workers: Parallel.workerCount, batch: batch, sgemmCeilingGFLOPS: ceiling,
            measurements: results.map { .init(name: $0.name, milliseconds: $0.seconds * 1000, gflops: $0.gflops, fractionOfCeiling: $0.gflops / ceiling) },
            resampling: resampling, logMel: logMel)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print("OpenBLAS kernel family: \(BLASRuntime.kernelFamilyDescription), workers: \(report.workers), batch: \(batch)")
            print("measurement".padding(toLength: 34, withPad: " ", startingAt: 0) + "      ms   GFLOP/s  of ceiling")
            for row in report.measurements {
                print(row.name.padding(toLength: 34, withPad: " ", startingAt: 0)
                      + String(format: "%8.2f  %8.1f  %9.0f%%", row.milliseconds, row.gflops, row.fractionOfCeiling * 100))
            }
            print("resampler (one thread, windowed-sinc polyphase, Kaiser)")
            for row in report.resampling {
                print(String(format: "  %5d -> %5d Hz  %7.0fx real time", row.sourceRate, row.targetRate, row.timesRealTime))
            }
            print(String(format: "log-mel features (60 x 41 per 20991-sample segment, double precision): %.0f segments/s on one thread, %.0f on %d workers",
                         logMel.segmentsPerSecondOneThread, logMel.segmentsPerSecondAllWorkers, report.workers))
        }
    }

    /// Log-mel features of 64 segments of noise (20991 samples at 22.05 kHz), on one thread and on all workers.
    func measureLogMel(generator: inout SeededGenerator) throws -> Report.LogMelRow {
        let spectrogram = try LogMelSpectrogram()
        let segmentLength = spectrogram.settings.segmentLength, segmentCount = 64
        let segments = (0..<segmentCount).map { _ in (0..<segmentLength).map { _ in Float(generator.nextDouble(in: -1...1)) } }
        let oneThread = measure(name: "log-mel", flops: 1) { for segment in segments { _ = spectrogram.decibels(of: segment) } }
        let allWorkers = measure(name: "log-mel", flops: 1) {
            Parallel.forEach(count: segmentCount) { index in _ = spectrogram.decibels(of: segments[index]) }
        }
        return Report.LogMelRow(segments: segmentCount, segmentsPerSecondOneThread: Double(segmentCount) / oneThread.seconds,
                                segmentsPerSecondAllWorkers: Double(segmentCount) / allWorkers.seconds)
    }

    struct Measurement {
        let name: String
        let seconds: Double
        let gflops: Double
    }

    /// One warm-up run, then the median of `repetitions` timed runs.
    func measure(name: String, flops: Double, _ body: () -> Void) -> Measurement {
        body()
        var times: [Double] = []
        for _ in 0..<repetitions {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let median = times.sorted()[times.count / 2]
        return Measurement(name: name, seconds: median, gflops: flops / median / 1e9)
    }
}

struct Report: Codable {
    struct Row: Codable {
        let name: String
        let milliseconds: Double
        let gflops: Double
        let fractionOfCeiling: Double
    }
    let kernelFamily: String
    let switchedToAVX512: Bool
    let workers: Int
    let batch: Int
    let sgemmCeilingGFLOPS: Double
    let measurements: [Row]
    struct ResamplerRow: Codable {
        let sourceRate: Int
        let targetRate: Int
        let timesRealTime: Double
    }
    let resampling: [ResamplerRow]
    struct LogMelRow: Codable {
        let segments: Int
        let segmentsPerSecondOneThread: Double
        let segmentsPerSecondAllWorkers: Double
    }
    let logMel: LogMelRow
}

/// EnvNet's convolution shapes (official sizes).
struct ConvolutionShape {
    let name: String
    let input: [Int]
    let weight: [Int]
    let geometry: ConvolutionGeometry

    /// EnvNet's conv2 and conv3, and EnvNet-v2's conv1, conv2 and conv4.
    static func envNet(batch: Int) -> [ConvolutionShape] {
        [
            ConvolutionShape(name: "conv2 40->40 1x8 w24007", input: [batch, 40, 1, 24007], weight: [40, 40, 1, 8],
                             geometry: ConvolutionGeometry(kernel: (1, 8))),
            ConvolutionShape(name: "conv3 1->50 8x13 40x150", input: [batch, 1, 40, 150], weight: [50, 1, 8, 13],
                             geometry: ConvolutionGeometry(kernel: (8, 13))),
            // EnvNet-v2's heavy layers.
            ConvolutionShape(name: "v2 conv1 1->32 1x64/2 w66650", input: [batch, 1, 1, 66650], weight: [32, 1, 1, 64],
                             geometry: ConvolutionGeometry(kernel: (1, 64), stride: (1, 2))),
            ConvolutionShape(name: "v2 conv2 32->64 1x16/2 w33294", input: [batch, 32, 1, 33294], weight: [64, 32, 1, 16],
                             geometry: ConvolutionGeometry(kernel: (1, 16), stride: (1, 2))),
            ConvolutionShape(name: "v2 conv4 32->32 8x8 57x253", input: [batch, 32, 57, 253], weight: [32, 32, 8, 8],
                             geometry: ConvolutionGeometry(kernel: (8, 8))),
        ]
    }
}
