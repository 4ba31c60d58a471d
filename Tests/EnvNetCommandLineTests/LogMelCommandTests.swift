import ArgumentParser
import EnvNetModel
import Foundation
import Testing

@testable import EnvNetCommandLine

/// `envnet features --log-mel`, `--network logmel-cnn` and `envnet evaluate --ensemble`.
@Suite("Log-mel features, the log-mel CNN and the ensemble on the command line", .serialized)
struct LogMelCommandTests {
    @Test("envnet features --log-mel writes [segments, 60, 41] of raw dB: one segment for a clip one segment long, 3 for 1.6 s")
    func featuresExport() throws {
        let root = try ChildProcess.temporaryFolder("features")
        let spectrogram = try LogMelSpectrogram()
        for (count, segments) in [(20991, 1), (35_280, 2), (4000, 1)] {
            let samples = (0..<count).map { t in Float(0.5 * sin(2 * Double.pi * 700 * Double(t) / 22_050)) }
            let wav = root.appendingPathComponent("clip\(count).wav"), output = root.appendingPathComponent("clip\(count).safetensors")
            try WAVWriter.write(samples, sampleRate: 22_050, format: .float32, to: wav)
            try OwnSoundsCommandTests.run(["features", "--log-mel", wav.path, "--output", output.path])
            let file = try SafeTensors.read(from: output)
            let features = try #require(file.tensors["log_mel"])
            #expect(features.shape == [segments, 60, 41], "\(count) samples")
            // The clip's own segments, computed in process: peak-normalized, cut every 10240 samples.
            let expected = spectrogram.segments(of: peakNormalized(samples)).flatMap { spectrogram.decibels(of: $0) }
            let difference = zip(features.scalars, expected).map { abs($0 - $1) }.max() ?? .infinity
            #expect(difference < 1e-4, "\(count) samples: \(difference) dB")
            #expect(file.metadata["envnet.silent_segments"] == "[]")
        }
        let missing = OwnSoundsCommandTests.failure(["features", root.appendingPathComponent("clip4000.wav").path, "--output", "/tmp/x.safetensors"])
        #expect(missing?.contains("choose the features to export: --log-mel") == true, "\(missing ?? "no error")")
    }

    @Test("--network logmel-cnn prints its preset first; --recipe authors has none; a bad --network lists the three")
    func trainHeaderAndRefusals() throws {
        let output = try NetworkAndRecipeCommandTests.header(["--network", "logmel-cnn"])
        #expect(output.contains("recipe: seed recipe for log-mel CNN on ESC-50: 150 epochs (doubled with BC), lr 0.01, x0.1 at epochs 80, 100, 120, no warm-up, batch 64, weight decay 5e-4, Nesterov momentum 0.9, peak normalization at 22050 Hz, probability voting (hop 10240)"), "\(output)")
        let data = NetworkAndRecipeCommandTests.synthetic.path
        let cases: [([String], String)] = [
            (["--network", "logmel-cnn", "--recipe", "authors"], "--recipe authors has no log-mel CNN"),
            (["--network", "logmel"], "--network must be envnet, envnet-v2 or logmel-cnn, not logmel"),
            (["--network", "logmel-cnn", "--variant", "seed"], "--variant applies to EnvNet only, not to --network logmel-cnn"),
        ]
        for (extra, expected) in cases {
            let message = OwnSoundsCommandTests.failure(["train", "--data", data, "--output", "/tmp/unused-logmel-run"] + extra)
            #expect(message?.contains(expected) == true, "\(extra): \(message ?? "no error")")
        }
    }

    @Test("evaluate --ensemble reports each model and the mean of their clip probabilities, classes matched by name")
    func ensembleEvaluation() throws {
        let root = try ChildProcess.temporaryFolder("ensemble")
        let data = root.appendingPathComponent("tones")
        try OwnSoundsCommandTests.makeFolderDataset(data, classes: ["low": 250, "high": 3000], clipsPerClass: 2)
        let envnet = root.appendingPathComponent("envnet.safetensors"), logMel = root.appendingPathComponent("logmel.safetensors")
        try EnvNet(configuration: EnvNetConfiguration(classCount: 2, hiddenUnits: 8), seed: 1).save(to: envnet, classNames: ["high", "low"])
        // The other class order: the ensemble must match classes by name.
        try LogMelCNN(configuration: LogMelCNNConfiguration(classCount: 2, hiddenUnits: 8), seed: 2).save(to: logMel, classNames: ["low", "high"])
        let report = root.appendingPathComponent("report"), log = root.appendingPathComponent("log.txt")
        try ChildProcess.run(["evaluate", "--data", data.path, "--folds", "2", "--fold", "1", "--cache", root.appendingPathComponent("cache").path,
                              "--ensemble", envnet.path, logMel.path, "--output", report.path], log: log, timeout: 300)
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(output.contains("model 1 (\(envnet.path), EnvNet, probability voting (hop 3200)): clip accuracy"), "\(output)")
        #expect(output.contains("model 2 (\(logMel.path), log-mel CNN, probability voting (hop 10240)): clip accuracy"), "\(output)")
        #expect(output.contains("ensemble (mean of 2 models' clip probabilities): clip accuracy"), "\(output)")
        // The ensemble's probabilities are the mean of the members', column by class name.
        func probabilities(_ folder: String) throws -> [String: [String: Double]] {
            let text = try String(contentsOf: report.appendingPathComponent(folder).appendingPathComponent("predictions.csv"), encoding: .utf8)
            let lines = text.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
            let header = lines[0]
            var result: [String: [String: Double]] = [:]
            for line in lines.dropFirst() {
                var row: [String: Double] = [:]
                for (index, name) in header.enumerated() where name.hasPrefix("p(") { row[name] = Double(line[index]) }
                result[line[0]] = row
            }
            return result
        }
        let first = try probabilities("model1"), second = try probabilities("model2"), ensemble = try probabilities("ensemble")
        #expect(ensemble.count == 2 && Set(ensemble.keys) == Set(first.keys))
        for (clip, row) in ensemble {
            for (column, value) in row {
                let mean = (first[clip]![column]! + second[clip]![column]!) / 2
                #expect(abs(value - mean) < 1e-5, "\(clip) \(column): \(value) vs \(mean)")
            }
        }
        let one = OwnSoundsCommandTests.failure(["evaluate", "--data", data.path, "--ensemble", envnet.path])
        #expect(one?.contains("--ensemble needs two or more models, got 1") == true, "\(one ?? "no error")")
        let both = OwnSoundsCommandTests.failure(["evaluate", "--data", data.path, "--weights", envnet.path, "--ensemble", envnet.path, logMel.path])
        #expect(both?.contains("give --weights or --ensemble") == true, "\(both ?? "no error")")
        // Folds drawn with another seed hold other clips: refused before any preprocessing.
        func drawnModel(_ name: String, seed: UInt64) throws -> URL {
            let url = root.appendingPathComponent(name)
            let network = LogMelCNN(configuration: LogMelCNNConfiguration(classCount: 2, hiddenUnits: 8))
            var recipe = TrainingConfiguration()
            recipe.seed = seed
            let record = DatasetRecord(layout: "folders", fingerprint: "x", heldOutFold: 1, trainingClips: 2, foldCount: 2, foldsWereDrawn: true)
            try network.save(to: url, description: ModelDescription(configuration: network.networkConfiguration, classNames: ["low", "high"],
                                                                     recipe: recipe, dataset: record))
            return url
        }
        let seeded = OwnSoundsCommandTests.failure(["evaluate", "--data", data.path, "--folds", "2",
                                                    "--ensemble", try drawnModel("s1.safetensors", seed: 1).path, try drawnModel("s2.safetensors", seed: 2).path])
        #expect(seeded?.contains("drew its 2 folds with seed 2") == true, "\(seeded ?? "no error")")
        let other = root.appendingPathComponent("other.safetensors")
        try LogMelCNN(configuration: LogMelCNNConfiguration(classCount: 2, hiddenUnits: 8)).save(to: other, classNames: ["low", "siren"])
        let mismatch = OwnSoundsCommandTests.failure(["evaluate", "--data", data.path, "--ensemble", envnet.path, other.path])
        #expect(mismatch?.contains("knows other classes than \(envnet.path): missing [\"high\"], extra [\"siren\"]") == true, "\(mismatch ?? "no error")")
    }
}
