import EnvNetModel
import Foundation

/// Throughput of EnvNet and EnvNet-v2 themselves: training steps and inference, with a per-layer breakdown.
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
        /// Evaluation-mode time per stage of an inference batch: each block of the network (named by
        /// its first and last layer, `conv1-pool2 (fused)` when the front end ran as one fused
        /// operation) and each layer between blocks.
        public var inferenceStages: [StageTiming]
    }

    /// Time spent in one stage of an inference batch.
    public struct StageTiming: Codable, Sendable {
        public var name: String
        public var milliseconds: Double
    }

    /// Measures a network with the full sizes (EnvNet's official ones, or EnvNet-v2's): a warm-up
    /// step, then the median of `repetitions`.
    ///
    /// Per-layer and per-stage times come from ``LayerProfiler`` around the network's own forward
    /// and backward passes, so the benchmark runs exactly the code that training and inference run.
    /// - Parameters:
    ///   - network: EnvNet (input 24014) or EnvNet-v2 (input 66650), fc 4096, or the log-mel CNN (input 20991, fc 5000).
    ///   - classCount: classes of the benchmarked network (50 as ESC-50).
    ///   - batchSize: windows per step (64 in the paper's recipe).
    ///   - repetitions: timed repetitions (median reported).
    public static func run(network architecture: NetworkArchitecture = .envnet, classCount: Int = 50, batchSize: Int = 64,
                           repetitions: Int = 5) -> Report {
        let configuration: NetworkConfiguration
        switch architecture {
        case .envnet: configuration = .envnet(EnvNetConfiguration(classCount: classCount))
        case .envnetV2: configuration = .envnetV2(EnvNetV2Configuration(classCount: classCount))
        case .logMelCNN: configuration = .logMelCNN(LogMelCNNConfiguration(classCount: classCount))
        }
        let network = configuration.makeNetwork(seed: 1)
        var generator = SeededGenerator(seed: 2)
        let input = Tensor.uniform([batchSize, 1, 1, network.inputLength], in: -1..<1, generator: &generator)
        let labels = (0..<batchSize).map { $0 % classCount }
        var optimizer = SGD(learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4, nesterov: true)
        var gradient = Tensor.zeros([0])
        let leaves = network.namedLeaves()
        var forwardTimes: [ObjectIdentifier: [Double]] = [:], backwardTimes: [ObjectIdentifier: [Double]] = [:]

        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        func trainingStep() -> [LayerProfiler.Sample] {
            network.train()
            network.zeroGradients()
            let (_, samples) = LayerProfiler.record {
                let logits = network(input)
                _ = Losses.softmaxCrossEntropy(logits: logits, labels: labels, gradient: &gradient)
                _ = network.backward(gradient)
            }
            optimizer.step(network)
            return samples
        }

        _ = trainingStep()
        var stepTimes: [Double] = []
        for _ in 0..<repetitions {
            let start = now()
            let samples = trainingStep()
            stepTimes.append(Double(now() - start) / 1e9)
            for sample in samples {
                let milliseconds = sample.seconds * 1e3
                switch sample.phase {
                case .forward: forwardTimes[sample.layer, default: []].append(milliseconds)
                case .backward: backwardTimes[sample.layer, default: []].append(milliseconds)
                }
            }
        }
        network.eval()
        _ = network(input)
        var inferenceTimes: [Double] = []
        for _ in 0..<repetitions {
            let start = now()
            _ = network(input)
            inferenceTimes.append(Double(now() - start) / 1e9)
        }
        func median(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.sorted()[values.count / 2] }
        // The same inference under the profiler, stage by stage (the first repetition is a warm-up).
        let stages = network.layers
        var stageTimes: [ObjectIdentifier: [Double]] = [:], leafRan = Set<ObjectIdentifier>()
        for repetition in 0...repetitions {
            let (_, samples) = LayerProfiler.record { network(input) }
            guard repetition > 0 else { continue }
            for sample in samples { stageTimes[sample.layer, default: []].append(sample.seconds * 1e3); leafRan.insert(sample.layer) }
        }
        let stageTimings = stages.map { stage -> StageTiming in
            let id = ObjectIdentifier(stage.layer)
            let stageLeaves = stage.layer.namedLeaves()
            var name = stage.name
            if let first = stageLeaves.first?.key, let last = stageLeaves.last?.key {
                name = "\(first)-\(last)"
                if !stageLeaves.contains(where: { leafRan.contains(ObjectIdentifier($0.module)) }) { name += " (fused)" }
            }
            return StageTiming(name: name, milliseconds: median(stageTimes[id] ?? []))
        }
        let layers = leaves.map { leaf in
            let id = ObjectIdentifier(leaf.module)
            return LayerTiming(name: leaf.key, forwardMilliseconds: median(forwardTimes[id] ?? []), backwardMilliseconds: median(backwardTimes[id] ?? []))
        }
        return Report(
            configuration: "\(network.networkConfiguration)", batchSize: batchSize, repetitions: repetitions,
            trainingSamplesPerSecond: Double(batchSize) / median(stepTimes),
            inferenceWindowsPerSecond: Double(batchSize) / median(inferenceTimes),
            peakResidentBytes: ProcessSupport.peakResidentBytes, kernelFamily: BLASRuntime.kernelFamily,
            workers: Parallel.workerCount, layers: layers, inferenceStages: stageTimings)
    }
}
