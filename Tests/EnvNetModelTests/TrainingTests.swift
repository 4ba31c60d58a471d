import EnvNetModel
import Foundation
import Testing

@Suite("Training loop, checkpoints and resume")
struct TrainingTests {
    static let configuration = EnvNetConfiguration(classCount: 3, hiddenUnits: 8)

    /// Six short clips, two per class, each a noisy tone whose pitch depends on the class.
    static func clips() -> [LabeledClip] {
        var generator = SeededGenerator(seed: 11)
        return (0..<6).map { index in
            let label = index % 3
            let frequency = [300.0, 1200.0, 3500.0][label]
            let samples = (0..<30_000).map { t in
                Float(0.8 * sin(2 * Double.pi * frequency * Double(t) / 16_000) + 0.1 * generator.nextGaussian())
            }
            return LabeledClip(samples: samples, label: label, name: "clip\(index)")
        }
    }

    static func recipe(epochs: Int, betweenClass: Bool) -> TrainingConfiguration {
        var recipe = TrainingConfiguration()
        recipe.epochs = epochs
        recipe.batchSize = 4  // two steps per epoch, the second one short
        recipe.milestones = [1]
        recipe.seed = 5
        recipe.betweenClassLearning = betweenClass
        recipe.strongAugmentation = betweenClass
        return recipe
    }

    static func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-training-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(arguments: [false, true])
    func resumedRunEndsWithTheSameWeights(betweenClass: Bool) throws {
        let clips = Self.clips(), names = ["low", "middle", "high"]
        let total = 2, first = 1
        // Uninterrupted.
        let reference = EnvNet(configuration: Self.configuration, seed: 3)
        let uninterrupted = try Trainer(network: reference, training: clips, classNames: names,
                                        configuration: Self.recipe(epochs: total, betweenClass: betweenClass), runFolder: try Self.folder())
        try uninterrupted.run()
        // Stopped after the first epoch(s), then resumed by a new process-like trainer with a fresh network.
        let runFolder = try Self.folder()
        let stopped = try Trainer(network: EnvNet(configuration: Self.configuration, seed: 3), training: clips, classNames: names,
                                  configuration: Self.recipe(epochs: first, betweenClass: betweenClass), runFolder: runFolder)
        try stopped.run()
        let resumedNetwork = EnvNet(configuration: Self.configuration, seed: 99)
        let resumed = try Trainer(network: resumedNetwork, training: clips, classNames: names,
                                  configuration: Self.recipe(epochs: total, betweenClass: betweenClass), runFolder: runFolder)
        #expect(try resumed.resumeIfPossible())
        #expect(resumed.completedEpochs == stopped.completedEpochs)
        try resumed.run()
        #expect(resumed.history.map(\.loss) == uninterrupted.history.map(\.loss))
        let a = reference.stateDictionary(), b = resumedNetwork.stateDictionary()
        #expect(a.keys.sorted() == b.keys.sorted())
        for key in a.keys { #expect(a[key]! == b[key]!, "\(key) differs after resume") }
        // The log has one JSON line per epoch.
        let log = try String(contentsOf: runFolder.appendingPathComponent("log.jsonl"), encoding: .utf8)
        #expect(log.split(separator: "\n").count == Self.recipe(epochs: total, betweenClass: betweenClass).effectiveEpochs)
    }

    @Test func divergenceStopsAndKeepsTheLastGoodCheckpoint() throws {
        let clips = Self.clips(), names = ["low", "middle", "high"], folder = try Self.folder()
        let first = try Trainer(network: EnvNet(configuration: Self.configuration, seed: 3), training: clips, classNames: names,
                                configuration: Self.recipe(epochs: 1, betweenClass: false), runFolder: folder)
        try first.run()
        let checkpoint = try Data(contentsOf: try #require(first.checkpointURL))
        let network = EnvNet(configuration: Self.configuration, seed: 3)
        let second = try Trainer(network: network, training: clips, classNames: names,
                                 configuration: Self.recipe(epochs: 2, betweenClass: false), runFolder: folder)
        #expect(try second.resumeIfPossible())
        // Poison the weights: the next loss is NaN.
        let fc7 = try #require(network.namedParameters().first { $0.key == "fc7.weight" }?.parameter)
        fc7.value = Tensor.filled(.nan, shape: fc7.shape)
        do {
            try second.run()
            Issue.record("training went on with a NaN loss")
        } catch let error as TrainingError {
            guard case let .diverged(epoch, step, _, kept) = error else { Issue.record("\(error)"); return }
            #expect(epoch == 2 && step == 1)
            #expect(kept == first.checkpointURL?.path)
            #expect("\(error)".contains("epoch 2, step 1"))
        }
        #expect(try Data(contentsOf: try #require(first.checkpointURL)) == checkpoint)
    }

    @Test func resumeRefusesAnotherRecipe() throws {
        let clips = Self.clips(), names = ["low", "middle", "high"], folder = try Self.folder()
        try Trainer(network: EnvNet(configuration: Self.configuration, seed: 3), training: clips, classNames: names,
                    configuration: Self.recipe(epochs: 1, betweenClass: false), runFolder: folder).run()
        var other = Self.recipe(epochs: 2, betweenClass: false)
        other.learningRate = 0.5
        let trainer = try Trainer(network: EnvNet(configuration: Self.configuration, seed: 3), training: clips, classNames: names,
                                  configuration: other, runFolder: folder)
        #expect(throws: TrainingError.self) { try trainer.resumeIfPossible() }
    }

    @Test("A checkpoint made in bf16 resumes only in bf16, and an fp32 one only in fp32 (where the CPU runs bf16)")
    func resumeRefusesAnotherPrecision() throws {
        var bf16 = ExecutionOptions.current
        bf16.precision = .bfloat16
        var fp32 = bf16
        fp32.precision = .float32
        let clips = Self.clips(), names = ["low", "middle", "high"]
        func trainer(_ folder: URL) throws -> Trainer {
            try Trainer(network: EnvNet(configuration: Self.configuration, seed: 3), training: clips, classNames: names,
                        configuration: Self.recipe(epochs: 2, betweenClass: false), runFolder: folder)
        }
        for (made, resumed) in [(bf16, fp32), (fp32, bf16)] {
            let folder = try Self.folder()
            _ = try ExecutionOptions.withOptions(made) {
                try Trainer(network: EnvNet(configuration: Self.configuration, seed: 3), training: clips, classNames: names,
                            configuration: Self.recipe(epochs: 1, betweenClass: false), runFolder: folder).run()
            }
            let other = try trainer(folder)
            if bf16.matrixPrecision == .bfloat16 {
                #expect { try ExecutionOptions.withOptions(resumed) { try other.resumeIfPossible() } } throws: { error in
                    "\(error)".contains("precision")
                }
            } else {
                // Without AVX512-BF16 both run fp32: nothing differs.
                #expect(try ExecutionOptions.withOptions(resumed) { try other.resumeIfPossible() })
            }
            #expect(try ExecutionOptions.withOptions(made) { try trainer(folder).resumeIfPossible() })
        }
    }

    @Test func badInputsAreRefusedBeforeWork() throws {
        let names = ["low", "middle", "high"]
        let network = EnvNet(configuration: Self.configuration)
        #expect(throws: TrainingError.emptyTrainingSet) {
            try Trainer(network: network, training: [], classNames: names, configuration: TrainingConfiguration(), runFolder: nil)
        }
        #expect(throws: TrainingError.self) {
            try Trainer(network: network, training: [LabeledClip(samples: [0.5], label: 7, name: "x")], classNames: names,
                        configuration: TrainingConfiguration(), runFolder: nil)
        }
        var bad = TrainingConfiguration()
        bad.batchSize = 0
        #expect(throws: TrainingError.self) { try Trainer(network: network, training: Self.clips(), classNames: names, configuration: bad, runFolder: nil) }
        let file = try Self.folder().appendingPathComponent("file")
        try Data("x".utf8).write(to: file)
        #expect(throws: FileWriteError.self) {
            try Trainer(network: network, training: Self.clips(), classNames: names, configuration: TrainingConfiguration(), runFolder: file)
        }
    }
}
