@testable import EnvNetModel
import Foundation
import Testing

/// ``Ensemble``: the mean of the members' clip probabilities, classes matched by name, each member
/// with its own preprocessing.
@Suite("The ensemble of models")
struct EnsembleTests {
    static func report(_ rows: [(String, Int, [Float])], classNames: [String]) throws -> EvaluationReport {
        try EvaluationReport(predictions: rows.map {
            ClipPrediction(name: $0.0, trueLabel: $0.1, probabilities: $0.2, predictedLabel: ClipEvaluator.argmax($0.2), windowCount: 3)
        }, classNames: classNames)
    }

    static func members(_ classNames: [[String]]) -> [Ensemble.Member] {
        classNames.enumerated().map { index, names in
            let network = EnvNet(configuration: EnvNetConfiguration(classCount: names.count, hiddenUnits: 8), seed: UInt64(index))
            return Ensemble.Member(name: "m\(index)", network: network,
                                   description: ModelDescription(configuration: network.networkConfiguration, classNames: names))
        }
    }

    @Test("combine averages the clip probabilities, each member's columns put in the first member's class order")
    func combineAverages() throws {
        let ensemble = try Ensemble(members: Self.members([["a", "b", "c"], ["c", "a", "b"]]))
        let first = try Self.report([("x", 0, [0.5, 0.3, 0.2]), ("y", 2, [0.1, 0.6, 0.3])], classNames: ["a", "b", "c"])
        // The second member's columns are (c, a, b); its labels are in its own order too.
        let second = try Self.report([("x", 1, [0.1, 0.1, 0.8]), ("y", 0, [0.9, 0.05, 0.05])], classNames: ["c", "a", "b"])
        let result = try ensemble.combine([first, second])
        let x = result.ensemble.predictions[0], y = result.ensemble.predictions[1]
        #expect(zip(x.probabilities, [0.3, 0.55, 0.15] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 }, "\(x.probabilities)")
        #expect(x.predictedLabel == 1 && x.trueLabel == 0 && x.windowCount == 6)
        #expect(zip(y.probabilities, [0.075, 0.325, 0.6] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 }, "\(y.probabilities)")
        #expect(y.predictedLabel == 2 && y.isCorrect)
        #expect(result.members[1].report.predictions[0].probabilities == [0.1, 0.8, 0.1])
        #expect(result.ensemble.accuracy == 0.5 && result.members.map(\.report.accuracy) == [0.5, 0.5])
    }

    @Test("Other classes, other clips or another count of reports are refused by name")
    func refusals() throws {
        #expect(throws: EnvNetError.self) { try Ensemble(members: []) }
        do {
            _ = try Ensemble(members: Self.members([["a", "b"], ["a", "z"]]))
            Issue.record("classes that differ were accepted")
        } catch {
            #expect("\(error)".contains("m1 knows other classes than m0: missing [\"b\"], extra [\"z\"]"), "\(error)")
        }
        let ensemble = try Ensemble(members: Self.members([["a", "b"], ["a", "b"]]))
        let first = try Self.report([("x", 0, [0.5, 0.5])], classNames: ["a", "b"])
        let other = try Self.report([("w", 0, [0.5, 0.5])], classNames: ["a", "b"])
        #expect(throws: EnvNetError.self) { try ensemble.combine([first]) }
        do {
            _ = try ensemble.combine([first, other])
            Issue.record("reports on other clips were combined")
        } catch {
            #expect("\(error)".contains("clip 0 is w for m1 but x for m0"), "\(error)")
        }
    }

    @Test("evaluate reads each file with each member's own rate: an EnvNet at 16 kHz and a log-mel CNN at 22.05 kHz")
    func evaluateWithOwnPreprocessing() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ensemble-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        for (name, frequency) in [("low", 300.0), ("high", 2500.0)] {
            let folder = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for index in 0..<2 {
                let samples = (0..<33_075).map { Float(0.5 * sin(2 * Double.pi * (frequency + Double(index)) * Double($0) / 22_050)) }
                try WAVWriter.write(samples, sampleRate: 22_050, format: .pcm16, to: folder.appendingPathComponent("\(index).wav"))
            }
        }
        let dataset = try AudioDataset.load(from: root, foldCount: 2)
        let envnet = EnvNet(configuration: EnvNetConfiguration(classCount: 2, hiddenUnits: 8), seed: 3)
        let logMel = LogMelCNN(configuration: LogMelCNNConfiguration(classCount: 2, hiddenUnits: 8), seed: 4)
        envnet.eval()
        logMel.eval()
        let members = [
            Ensemble.Member(name: "envnet", network: envnet, description: ModelDescription(configuration: envnet.networkConfiguration, classNames: ["high", "low"])),
            Ensemble.Member(name: "logmel", network: logMel, description: ModelDescription(configuration: logMel.networkConfiguration, classNames: ["low", "high"])),
        ]
        #expect(members[1].description.evaluation == .probabilityVoting(hop: 10240))
        #expect(members[1].description.preprocessing.sampleRate == 22050)
        let ensemble = try Ensemble(members: members)
        let result = try ensemble.evaluate(dataset, clips: dataset.clips)
        #expect(result.members.count == 2 && result.ensemble.clipCount == 4)
        // Each member alone, as ClipEvaluator scores the clip at its own rate.
        let clip = dataset.clips[0]
        let url = dataset.url(for: clip)
        let alone = try ClipEvaluator(network: logMel, scheme: members[1].description.evaluation)
            .score(ClipLoader(settings: members[1].description.preprocessing).load(contentsOf: url))
        let logMelRow = try #require(result.members[1].report.predictions.first { $0.name == clip.path })
        // The ensemble's order is the first member's (high, low); the log-mel CNN's own is (low, high).
        #expect(logMelRow.probabilities == [alone.probabilities[1], alone.probabilities[0]])
        let envnetRow = try #require(result.members[0].report.predictions.first { $0.name == clip.path })
        let combined = try #require(result.ensemble.predictions.first { $0.name == clip.path })
        for label in 0..<2 {
            #expect(abs(combined.probabilities[label] - (envnetRow.probabilities[label] + logMelRow.probabilities[label]) / 2) < 1e-6)
        }
    }
}
