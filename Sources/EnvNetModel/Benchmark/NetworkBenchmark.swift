import EnvNetLayers
import Foundation

/// Throughput of EnvNet itself: training steps and inference, with a per-layer breakdown.
public enum NetworkBenchmark {
    /// Time spent in one layer per step.
    public struct LayerTiming: Codable, Sendable {
        public var name: String
        public var forwardMilliseconds: Double
        public var backwardMilliseconds: Double
    }

    /// The figures of one benchmark run.
    public struct Report: Codable, Sendable {
        public var configuration: String
        public var batchSize: Int
        public var repetitions: Int
        /// Training samples per second (forward, loss, backward, SGD update).
        public var trainingSamplesPerSecond: Double
        /// 1.5 s windows per second in evaluation mode.
        public var inferenceWindowsPerSecond: Double
        /// Peak resident memory of the process, bytes.
        public var peakResidentBytes: Int
        public var kernelFamily: String
        public var workers: Int
        public var layers: [LayerTiming]
        /// Evaluation-mode time per stage of an inference batch: conv1 … pool2 as one stage when the
        /// fused front end runs (`fused conv1-pool2`), then each remaining layer.
        public var inferenceStages: [StageTiming]
    }

    /// Time spent in one stage of an inference batch.
    public struct StageTiming: Codable, Sendable {
        public var name: String
        public var milliseconds: Double
    }

    /// Measures EnvNet with the official sizes: a warm-up step, then the median of `repetitions`.
    /// - Parameters:
    ///   - classCount: classes of the benchmarked network (50 as ESC-50).
    ///   - batchSize: windows per step (64 in the paper's recipe).
    ///   - repetitions: timed repetitions (median reported).
    public static func run(classCount: Int = 50, batchSize: Int = 64, repetitions: Int = 5) -> Report {
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: classCount), seed: 1)
        var generator = SeededGenerator(seed: 2)
        let input = Tensor.uniform([batchSize, 1, 1, network.configuration.inputLength], in: -1..<1, generator: &generator)
        let labels = (0..<batchSize).map { $0 % classCount }
        var optimizer = SGD(learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4, nesterov: true)
        var gradient = Tensor.zeros([0])
        let children = network.layers.children
        var forwardTimes = [[Double]](repeating: [], count: children.count)
        var backwardTimes = [[Double]](repeating: [], count: children.count)

        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        func trainingStep(record: Bool) {
            network.train()
            network.zeroGradients()
            var value = input
            for (index, child) in children.enumerated() {
                let start = now()
                value = child.module.forward(value)
                if record { forwardTimes[index].append(Double(now() - start) / 1e6) }
            }
            _ = Losses.softmaxCrossEntropy(logits: value, labels: labels, gradient: &gradient)
            var back = gradient
            for (index, child) in children.enumerated().reversed() {
                let start = now()
                back = child.module.backward(back)
                if record { backwardTimes[index].append(Double(now() - start) / 1e6) }
            }
            optimizer.step(network)
        }

        trainingStep(record: false)
        var stepTimes: [Double] = []
        for _ in 0..<repetitions {
            let start = now()
            trainingStep(record: true)
            stepTimes.append(Double(now() - start) / 1e9)
        }
        network.eval()
        _ = network(input)
        var inferenceTimes: [Double] = []
        for _ in 0..<repetitions {
            let start = now()
            _ = network(input)
            inferenceTimes.append(Double(now() - start) / 1e9)
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        // The same inference, stage by stage, through the network's own path (the first
        // repetition is a warm-up).
        var stageNames: [String] = [], stageTimes: [String: [Double]] = [:]
        for repetition in 0...repetitions {
            var stageStarted = now()
            _ = network.run(input, upTo: nil) { name in
                if !stageNames.contains(name) { stageNames.append(name) }
                if repetition > 0 { stageTimes[name, default: []].append(Double(now() - stageStarted) / 1e6) }
                stageStarted = now()
            }
        }
        let layers = children.indices.map {
            LayerTiming(name: children[$0].name, forwardMilliseconds: median(forwardTimes[$0]), backwardMilliseconds: median(backwardTimes[$0]))
        }
        return Report(
            configuration: "\(network.configuration)", batchSize: batchSize, repetitions: repetitions,
            trainingSamplesPerSecond: Double(batchSize) / median(stepTimes),
            inferenceWindowsPerSecond: Double(batchSize) / median(inferenceTimes),
            peakResidentBytes: ProcessSupport.peakResidentBytes, kernelFamily: BLASRuntime.kernelFamily,
            workers: Parallel.workerCount, layers: layers,
            inferenceStages: stageNames.compactMap { name in stageTimes[name].map { StageTiming(name: name, milliseconds: median($0)) } })
    }
}
