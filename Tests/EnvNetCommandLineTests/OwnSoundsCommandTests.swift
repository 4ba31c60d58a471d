import ArgumentParser
import EnvNetModel
import Foundation
import Testing

@testable import EnvNetCommandLine

/// `envnet train`, `evaluate` and `predict` on datasets of one's own: any layout and format, the
/// model's description used with no flag, classes matched by name, resume refusing other settings.
@Suite("Own sounds on the command line", .serialized)
struct OwnSoundsCommandTests {
    static func run(_ arguments: [String]) throws {
        var command = try EnvNetCommand.parseAsRoot(arguments)
        try command.run()
    }

    static func failure(_ arguments: [String]) -> String? {
        do {
            try run(arguments)
            return nil
        } catch {
            return EnvNetCommand.message(for: error)
        }
    }

    /// A folder-per-class dataset of tones: one pitch per class, 1.6 s at 22.05 kHz.
    static func makeFolderDataset(_ root: URL, classes: [String: Double], clipsPerClass: Int = 4) throws {
        for (name, frequency) in classes {
            let folder = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for index in 0..<clipsPerClass {
                let samples = (0..<35_280).map { t in
                    Float(0.6 * sin(2 * Double.pi * (frequency + Double(index) * 7) * Double(t) / 22_050))
                }
                try WAVWriter.write(samples, sampleRate: 22_050, format: .pcm16, to: folder.appendingPathComponent("\(index).wav"))
            }
        }
    }

    @Test func evaluateRefusesOtherClassesBeforeAnyPreprocessing() throws {
        let root = try ChildProcess.temporaryFolder("mismatch")
        try Self.makeFolderDataset(root.appendingPathComponent("data"), classes: ["dog": 300, "rain": 900])
        let weights = root.appendingPathComponent("model.safetensors")
        try EnvNet(configuration: EnvNetConfiguration(classCount: 2, hiddenUnits: 8)).save(to: weights, classNames: ["dog", "siren"])
        let cache = root.appendingPathComponent("cache")
        let message = try #require(Self.failure([
            "evaluate", "--data", root.appendingPathComponent("data").path, "--folds", "2", "--fold", "1",
            "--weights", weights.path, "--cache", cache.path,
        ]))
        #expect(message.contains("the data has class(es) the model lacks: rain"), "\(message)")
        #expect(message.contains("the model has class(es) missing from the data: siren"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: cache.path), "preprocessing ran before the refusal")
    }

    @Test func aFolderTrainsWithNoLayoutFlagAndItsModelDescribesItself() throws {
        let root = try ChildProcess.temporaryFolder("own-sounds")
        let data = root.appendingPathComponent("my-sounds")
        try Self.makeFolderDataset(data, classes: ["low": 250, "middle": 1000, "high": 3000], clipsPerClass: 5)
        let run = root.appendingPathComponent("run")
        let cache = root.appendingPathComponent("cache").path
        try Self.run(["train", "--data", data.path, "--output", run.path, "--epochs", "1", "--hidden-units", "8",
                      "--batch-size", "8", "--normalization", "int16", "--cache", cache])
        let model = run.appendingPathComponent("model.safetensors")
        let (_, description) = try EnvNet.loadModel(from: model)
        #expect(description.classNames == ["high", "low", "middle"])
        #expect(description.preprocessing == .authorsRepository)
        #expect(description.evaluation == .seedArticle)
        #expect(description.dataset?.heldOutFold == 5)
        #expect(description.dataset?.layout == "folders")
        #expect(description.dataset?.fingerprint == (try AudioDataset.load(from: data).fingerprint()))
        #expect(description.recipe?.epochs == 1)
        #expect(description.libraryVersion == EnvNetLibrary.version)
        // evaluate and predict need no flag: the recorded normalization is used.
        try Self.run(["evaluate", "--data", data.path, "--weights", model.path, "--cache", cache])
        let classifier = try SoundClassifier(contentsOf: model)
        #expect(classifier.settings == .authorsRepository)
        #expect(Self.failure(["evaluate", "--data", data.path, "--weights", model.path, "--normalization", "peak", "--cache", cache])?
            .contains("differs from the model's (int16)") == true)

        // --resume with another fold, normalization or recipe flag is refused, naming the fields.
        for (flags, field) in [(["--fold", "2"], "fold"), (["--normalization", "peak"], "normalization"),
                               (["--learning-rate", "0.1"], "learningRate"), (["--folds", "4"], "data fingerprint")] {
            let message = Self.failure(["train", "--data", data.path, "--output", run.path, "--epochs", "2", "--hidden-units", "8",
                                        "--batch-size", "8", "--normalization", "int16", "--cache", cache, "--resume"] + flags)
            #expect(message?.contains(field) == true, "\(flags): \(message ?? "resumed")")
            #expect(message?.contains("cannot resume") == true, "\(flags): \(message ?? "resumed")")
        }
        // The same settings resume.
        try Self.run(["train", "--data", data.path, "--output", run.path, "--epochs", "2", "--hidden-units", "8",
                      "--batch-size", "8", "--normalization", "int16", "--cache", cache, "--resume"])
        #expect(try EnvNet.loadModel(from: model).description.recipe?.epochs == 2)
    }

    @Test func fineTuningKeepsTheFrozenFrontAndRebuildsTheClassifier() throws {
        let root = try ChildProcess.temporaryFolder("fine-tune")
        let data = root.appendingPathComponent("new-sounds")
        try Self.makeFolderDataset(data, classes: ["a": 400, "b": 1600], clipsPerClass: 5)
        let source = EnvNet(configuration: EnvNetConfiguration(classCount: 4, hiddenUnits: 8), seed: 21)
        // Non-trivial BatchNorm statistics, so that keeping them is visible.
        for (key, buffer) in source.namedBuffers() where key.hasSuffix("running_mean") {
            buffer.value = Tensor((0..<buffer.value.count).map { Float($0) * 0.01 }, shape: buffer.value.shape)
        }
        let sourceURL = root.appendingPathComponent("source.safetensors")
        try source.save(to: sourceURL, classNames: ["w", "x", "y", "z"])
        let run = root.appendingPathComponent("run")
        try Self.run(["train", "--data", data.path, "--output", run.path, "--epochs", "2", "--batch-size", "4",
                      "--init-from", sourceURL.path, "--freeze-through", "pool2", "--cache", root.appendingPathComponent("cache").path])
        let (tuned, description) = try EnvNet.loadModel(from: run.appendingPathComponent("model.safetensors"))
        #expect(description.classNames == ["a", "b"])
        #expect(tuned.configuration.hiddenUnits == 8)
        let before = source.stateDictionary(), after = tuned.stateDictionary()
        for key in ["conv1.weight", "bn1.weight", "bn1.running_mean", "bn1.running_var", "conv2.weight", "bn2.running_mean"] {
            #expect(after[key] == before[key], "\(key) changed although frozen")
        }
        for key in ["conv3.weight", "bn3.running_mean", "fc5.weight"] {
            #expect(after[key] != before[key], "\(key) did not train")
        }
        #expect(after["fc7.weight"]?.shape == [2, 8])
        #expect(Self.failure(["train", "--data", data.path, "--output", root.appendingPathComponent("r2").path,
                              "--init-from", sourceURL.path, "--freeze-through", "fc7"])?.contains("not a layer before fc7") == true)
        #expect(Self.failure(["train", "--data", data.path, "--output", root.appendingPathComponent("r3").path,
                              "--freeze-through", "pool2"])?.contains("--init-from") == true)
    }

    @Test func urbanSound8KLayoutCrossValidatesOverItsOwnFolds() throws {
        let root = try ChildProcess.temporaryFolder("us8k")
        let data = root.appendingPathComponent("UrbanSound8K")
        try SyntheticDataset.generateUrbanSound8K(at: data, configuration: SyntheticDatasetConfiguration(
            clipsPerClass: 6, seed: 4, duration: 1.8, folds: 3, classes: [.siren, .engine]))
        let run = root.appendingPathComponent("run")
        try Self.run(["train", "--data", data.path, "--cross-validation", "--output", run.path, "--epochs", "1", "--hidden-units", "8",
                      "--batch-size", "8", "--cache", root.appendingPathComponent("cache").path])
        for fold in 1...3 {
            let (_, description) = try EnvNet.loadModel(from: run.appendingPathComponent("fold-\(fold)/model.safetensors"))
            #expect(description.dataset?.heldOutFold == fold)
            #expect(description.dataset?.layout == "urbansound8k")
            #expect(description.dataset?.credit?.contains("UrbanSound8K") == true)
        }
    }
}
