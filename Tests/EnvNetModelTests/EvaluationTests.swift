import EnvNetModel
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import EnvNetCharts
import Testing

@Suite("Clip evaluation: windows, probability voting, 10-crop, reports")
struct EvaluationTests {
    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-evaluation-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Scores a window by its first sample v: `[v, 1 - v, 0]`; records the batch sizes it saw.
    final class FakeScorer {
        var batchSizes: [Int] = []
        var windows: [[Float]] = []
        func score(_ batch: [[Float]]) -> [[Float]] {
            batchSizes.append(batch.count)
            windows += batch
            return batch.map { [$0[0], 1 - $0[0], 0] }
        }
    }

    static func evaluator(_ scheme: EvaluationScheme, length: Int = 10, batchSize: Int = 32,
                          scorer: FakeScorer) throws -> ClipEvaluator {
        try ClipEvaluator(windowLength: length, classCount: 3, scheme: scheme, batchSize: batchSize) { scorer.score($0) }
    }

    // MARK: - Window selection

    @Test func windowsFollowTheSegmentSamplerAtExactBoundaries() throws {
        let scorer = FakeScorer()
        let evaluator = try Self.evaluator(.probabilityVoting(hop: 3), scorer: scorer)
        let sampler = SegmentSampler(length: 10)
        // length 10, hop 3: 16 samples give starts 0, 3, 6; 15 samples give 0, 3; 19 give 0, 3, 6, 9.
        for (count, starts) in [(10, [0]), (11, [0]), (12, [0]), (13, [0, 3]), (15, [0, 3]), (16, [0, 3, 6]), (19, [0, 3, 6, 9])] {
            let clip = (0..<count).map { Float($0 + 1) / Float(count) }  // loud everywhere but the very start
            let windows = try evaluator.windows(of: clip)
            #expect(windows == starts.map { Array(clip[$0..<($0 + 10)]) }, "\(count) samples")
            #expect(windows == sampler.evaluationWindows(of: clip, hop: 3), "\(count) samples")
            #expect(try evaluator.score(clip).windowCount == starts.count)
        }
    }

    @Test func silentWindowsAreDroppedAndTheThresholdIsExclusive() throws {
        let scorer = FakeScorer()
        let evaluator = try Self.evaluator(.probabilityVoting(hop: 5), scorer: scorer)
        // Starts 0, 5, 10, 15, 20 over 30 samples; only samples 22 and 23 are loud, and sample 3 is
        // exactly at the threshold (silent: max |x| <= 0.2).
        var clip = [Float](repeating: 0.1, count: 30)
        clip[3] = 0.2
        clip[22] = -0.9
        clip[23] = 0.5
        let windows = try evaluator.windows(of: clip)
        #expect(windows == [Array(clip[15..<25]), Array(clip[20..<30])])
        #expect(windows == SegmentSampler(length: 10).evaluationWindows(of: clip, hop: 5))
    }

    @Test func anAllSilentClipFallsBackToItsLoudestWindow() throws {
        let scorer = FakeScorer()
        let evaluator = try Self.evaluator(.probabilityVoting(hop: 4), scorer: scorer)
        var clip = [Float](repeating: 0.01, count: 40)
        clip[27] = 0.15  // in windows starting at 20 and 24; the first of them wins
        let score = try evaluator.score(clip)
        #expect(score.windowCount == 1)
        #expect(scorer.windows == [Array(clip[20..<30])])
        #expect(score.probabilities == [0.01, 0.99, 0])
        // Digital silence: every window has peak 0; the first one is kept.
        scorer.windows = []
        #expect(try evaluator.score([Float](repeating: 0, count: 40)).windowCount == 1)
        #expect(scorer.windows == [[Float](repeating: 0, count: 10)])
    }

    @Test func aClipShorterThanOneWindowIsPaddedOnBothSides() throws {
        let scorer = FakeScorer()
        let evaluator = try Self.evaluator(.probabilityVoting(), scorer: scorer)
        let windows = try evaluator.windows(of: [0.5, -0.5, 0.25])
        #expect(windows == [[0, 0, 0, 0.5, -0.5, 0.25, 0, 0, 0, 0]])  // 3 zeros before, 4 after
        // A silent short clip and an empty clip still get one window and a prediction.
        let silent = try evaluator.score([0.1, 0.1])
        #expect(silent.windowCount == 1 && silent.probabilities == [0, 1, 0] && silent.predictedLabel == 1)
        let empty = try evaluator.score([])
        #expect(empty.windowCount == 1 && empty.predictedLabel == 1)
        #expect(scorer.windows.last == [Float](repeating: 0, count: 10))
    }

    // MARK: - Voting arithmetic

    @Test func probabilityVotingAveragesTheWindowProbabilitiesInBoundedBatches() throws {
        let scorer = FakeScorer()
        let evaluator = try Self.evaluator(.probabilityVoting(hop: 10), batchSize: 2, scorer: scorer)
        // Five windows whose first samples are 0.3, 0.9, 0.6, 0.25 (peak 0.25 > 0.2) and 1.
        let firsts: [Float] = [0.3, 0.9, 0.6, 0.25, 1]
        let clip = firsts.flatMap { [$0] + [Float](repeating: 0, count: 9) }
        let score = try evaluator.score(clip)
        #expect(scorer.batchSizes == [2, 2, 1])
        #expect(score.windowCount == 5)
        let mean = firsts.reduce(0) { $0 + Double($1) } / 5
        #expect(abs(Double(score.probabilities[0]) - mean) < 1e-7)
        #expect(abs(Double(score.probabilities[1]) - (1 - mean)) < 1e-7)
        #expect(score.probabilities[2] == 0)
        #expect(score.predictedLabel == 0)  // mean 0.61 > 0.39
    }

    @Test func tiesGoToTheLowestClassIndex() throws {
        #expect(ClipEvaluator.argmax([0.5, 0.5, 0]) == 0)
        #expect(ClipEvaluator.argmax([0, 0.4, 0.4, 0.2]) == 1)
        #expect(ClipEvaluator.argmax([1, 1, 1]) == 0)
        #expect(ClipEvaluator.argmax([]) == 0)
        // Two windows voting 0.25/0.75 and 0.75/0.25 tie exactly at 0.5/0.5.
        let scorer = FakeScorer()
        let evaluator = try Self.evaluator(.probabilityVoting(hop: 10), scorer: scorer)
        let clip = [Float(0.25)] + [Float](repeating: 0, count: 9) + [Float(0.75)] + [Float](repeating: 0, count: 9)
        let score = try evaluator.score(clip)
        #expect(score.probabilities == [0.5, 0.5, 0])
        #expect(score.predictedLabel == 0)
    }

    @Test func tenCropAveragesEvenlySpacedCropsOfThePaddedClipWithoutDroppingSilence() throws {
        let scorer = FakeScorer()
        let evaluator = try Self.evaluator(.tenCrop(), batchSize: 4, scorer: scorer)
        let clip = (0..<37).map { Float($0) / 100 }  // silent at the start: crops are kept anyway
        let windows = try evaluator.windows(of: clip)
        #expect(windows == SegmentSampler(length: 10).evenlySpacedCrops(of: clip, count: 10))
        // Padded clip: 5 zeros + 37 samples + 5 zeros = 47; stride (47 - 10) / 9 = 4.
        let padded = [Float](repeating: 0, count: 5) + clip + [Float](repeating: 0, count: 5)
        #expect(windows == (0..<10).map { Array(padded[($0 * 4)..<($0 * 4 + 10)]) })
        let score = try evaluator.score(clip)
        #expect(score.windowCount == 10 && scorer.batchSizes == [4, 4, 2])
        let mean = windows.reduce(0) { $0 + Double($1[0]) } / 10
        #expect(abs(Double(score.probabilities[0]) - mean) < 1e-7)
        // A short or empty clip still gives `count` crops.
        #expect(try Self.evaluator(.tenCrop(count: 3), scorer: scorer).windows(of: []).count == 3)
        #expect(try Self.evaluator(.tenCrop(count: 1), scorer: scorer).windows(of: clip) == [Array(padded[0..<10])])
    }

    // MARK: - Bad input

    @Test func badArgumentsAndBadScoresAreTypedErrors() throws {
        let scorer = FakeScorer()
        #expect(throws: EnvNetError.self) { try Self.evaluator(.probabilityVoting(hop: 0), scorer: scorer) }
        #expect(throws: EnvNetError.self) { try Self.evaluator(.tenCrop(count: 0), scorer: scorer) }
        #expect(throws: EnvNetError.self) { try Self.evaluator(.seedArticle, length: 0, scorer: scorer) }
        #expect(throws: EnvNetError.self) { try Self.evaluator(.seedArticle, batchSize: 0, scorer: scorer) }
        #expect(throws: EnvNetError.self) {
            try ClipEvaluator(windowLength: 10, classCount: 3, silenceThreshold: .nan) { scorer.score($0) }
        }
        let evaluator = try Self.evaluator(.seedArticle, scorer: scorer)
        #expect(throws: EnvNetError.invalidInput("noisy.wav: sample 1 is nan; samples must be finite")) {
            try evaluator.score([0.5, .nan], name: "noisy.wav")
        }
        #expect(throws: EnvNetError.self) { try evaluator.predict(LabeledClip(samples: [1], label: 3, name: "x")) }
        #expect(throws: EnvNetError.self) { try evaluator.predict(LabeledClip(samples: [1], label: -1, name: "x")) }
        let tooFewRows = try ClipEvaluator(windowLength: 10, classCount: 3) { _ in [] }
        #expect(throws: EnvNetError.invalidInput("clip: the window scorer returned 0 rows for 1 windows")) { try tooFewRows.score([1]) }
        let wrongWidth = try ClipEvaluator(windowLength: 10, classCount: 3) { $0.map { _ in [1, 0] } }
        #expect(throws: EnvNetError.self) { try wrongWidth.score([1]) }
        let notFinite = try ClipEvaluator(windowLength: 10, classCount: 3) { $0.map { _ in [0, .infinity, 0] } }
        #expect(throws: EnvNetError.self) { try notFinite.score([1]) }
        #expect(throws: EnvNetError.self) { try evaluator.evaluate([], classNames: ["a", "b", "c"]) }
        #expect(throws: EnvNetError.self) { try evaluator.evaluate([LabeledClip(samples: [1], label: 0, name: "x")], classNames: ["a"]) }
    }

    // MARK: - Reports

    static func prediction(_ name: String, _ trueLabel: Int, _ predicted: Int, windows: Int = 1) -> ClipPrediction {
        var probabilities: [Float] = [0.1, 0.1, 0.1]
        probabilities[predicted] = 0.8
        return ClipPrediction(name: name, trueLabel: trueLabel, probabilities: probabilities, predictedLabel: predicted, windowCount: windows)
    }

    @Test func confusionMatrixAndPerClassAccuracyArithmetic() throws {
        let predictions = [
            Self.prediction("a1", 0, 0, windows: 3), Self.prediction("a2", 0, 0, windows: 5), Self.prediction("a3", 0, 1, windows: 1),
            Self.prediction("b1", 1, 2, windows: 2), Self.prediction("b2", 1, 1, windows: 4),
        ]
        let report = try EvaluationReport(predictions: predictions, classNames: ["dog", "rain", "siren"], scheme: .seedArticle)
        #expect(report.confusionMatrix == [[2, 1, 0], [0, 1, 1], [0, 0, 0]])
        #expect(report.correctCount == 3 && report.clipCount == 5)
        #expect(report.accuracy == 0.6)
        #expect(report.clipsPerClass == [3, 2, 0])
        #expect(report.perClassAccuracy == [2.0 / 3.0, 0.5, nil])
        #expect(report.meanWindowCount == 3)
        #expect(throws: EnvNetError.self) { try EvaluationReport(predictions: [], classNames: ["a"]) }
        #expect(throws: EnvNetError.self) { try EvaluationReport(predictions: [Self.prediction("x", 3, 0)], classNames: ["a", "b", "c"]) }
        #expect(throws: EnvNetError.self) { try EvaluationReport(predictions: [Self.prediction("x", 0, 0)], classNames: ["a", "b"]) }
    }

    @Test func evaluatingClipsReportsProgressAndPredictions() throws {
        let scorer = FakeScorer()
        let evaluator = try Self.evaluator(.probabilityVoting(hop: 10), scorer: scorer)
        func clip(_ first: Float, label: Int, name: String) -> LabeledClip {
            LabeledClip(samples: [first] + [Float](repeating: 0, count: 9), label: label, name: name)
        }
        let clips = [clip(0.9, label: 0, name: "one"), clip(0.3, label: 0, name: "two"), LabeledClip(samples: [0.3] + [Float](repeating: 0, count: 9), label: 1, name: "three")]
        var seen: [EvaluationProgress] = []
        let report = try evaluator.evaluate(clips, classNames: ["first", "second", "third"]) { seen.append($0) }
        #expect(seen.map(\.completed) == [1, 2, 3] && seen.allSatisfy { $0.total == 3 })
        #expect(seen.map(\.correct) == [1, 1, 2] && seen.map(\.clipName) == ["one", "two", "three"])
        #expect(report.predictions.map(\.predictedLabel) == [0, 1, 1])
        #expect(report.accuracy == 2.0 / 3.0 && report.scheme == .probabilityVoting(hop: 10))
        #expect(try evaluator.accuracy(on: clips) == 2.0 / 3.0)
    }

    @Test func reportFilesAreWritten() throws {
        let predictions = [Self.prediction("a, \"quoted\".wav", 0, 0), Self.prediction("b.wav", 1, 2), Self.prediction("c.wav", 2, 2)]
        let report = try EvaluationReport(predictions: predictions, classNames: ["dog", "rain, heavy", "siren"], scheme: .authorsRepository)
        let folder = try Self.temporaryFolder().appendingPathComponent("nested/report")
        try report.write(to: folder)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names == EvaluationReport.fileNames.sorted())
        try report.writeCharts(to: folder)
        let confusion = try String(contentsOf: folder.appendingPathComponent("confusion_matrix.csv"), encoding: .utf8)
        #expect(confusion == "true \\ predicted,dog,\"rain, heavy\",siren\ndog,1,0,0\n\"rain, heavy\",0,0,1\nsiren,0,0,1\n")
        let perClass = try String(contentsOf: folder.appendingPathComponent("per_class_accuracy.csv"), encoding: .utf8)
        #expect(perClass == "label,class,clips,correct,accuracy\n0,dog,1,1,1.0\n1,\"rain, heavy\",1,0,0.0\n2,siren,1,1,1.0\n")
        let rows = try String(contentsOf: folder.appendingPathComponent("predictions.csv"), encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 4)
        #expect(rows[0] == "clip,true_label,true_class,predicted_label,predicted_class,correct,windows,p(dog),\"p(rain, heavy)\",p(siren)")
        #expect(rows[1] == "\"a, \"\"quoted\"\".wav\",0,dog,0,dog,1,1,0.8,0.1,0.1")
        let summary = try JSONDecoder().decode(EvaluationReport.Summary.self, from: Data(contentsOf: folder.appendingPathComponent("report.json")))
        #expect(summary.accuracy == 2.0 / 3.0 && summary.confusionMatrix == report.confusionMatrix && summary.scheme == "10-crop averaging")
        let svg = try Data(contentsOf: folder.appendingPathComponent("confusion_matrix.svg"))
        #expect(XMLParser(data: svg).parse())
        // No temporary files are left behind.
        #expect(!names.contains { $0.hasPrefix(".") })
        // An unwritable destination is a FileWriteError naming it.
        let blocker = folder.appendingPathComponent("predictions.csv/sub")
        #expect(throws: FileWriteError.self) { try report.write(to: blocker) }
    }

    @Test func evaluatingAnESC50LayoutDatasetLoadsEachFile() throws {
        let root = try Self.temporaryFolder()
        let audio = root.appendingPathComponent("audio"), meta = root.appendingPathComponent("meta")
        try FileManager.default.createDirectory(at: audio, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: meta, withIntermediateDirectories: true)
        var csv = "filename,fold,target,category,esc10,src_file,take\n"
        for (index, category) in ["dog", "rooster", "pig"].enumerated() {
            let name = "1-\(100 + index)-A-\(index).wav"
            csv += "\(name),1,\(index),\(category),False,\(100 + index),A\n"
            let samples = (0..<2205).map { Float(0.5) * sinf(Float($0) * Float(index + 1) * 0.05) }
            try WAVWriter.write(samples, sampleRate: 44_100, format: .pcm16, to: audio.appendingPathComponent(name))
        }
        try csv.write(to: meta.appendingPathComponent("esc50.csv"), atomically: true, encoding: .utf8)
        let dataset = try ESC50Dataset(root: root)
        var lengths: [Int] = []
        let evaluator = try ClipEvaluator(windowLength: 300, classCount: 3, scheme: .probabilityVoting(hop: 100)) { batch in
            lengths += batch.map(\.count)
            return batch.map { _ in [0.25, 0.5, 0.25] }
        }
        let report = try evaluator.evaluate(dataset, clips: dataset.clips, loader: ClipLoader())
        #expect(report.classNames == ["dog", "rooster", "pig"])
        #expect(report.predictions.map(\.name) == dataset.clips.map(\.filename))
        #expect(report.predictions.map(\.trueLabel) == [0, 1, 2] && report.accuracy == 1.0 / 3.0)
        // 2205 samples at 44.1 kHz are 800 at 16 kHz: starts 0, 100, …, 500 (silent windows may drop).
        #expect(report.predictions.allSatisfy { (1...6).contains($0.windowCount) } && lengths.allSatisfy { $0 == 300 })
        try FileManager.default.removeItem(at: audio.appendingPathComponent(dataset.clips[1].filename))
        #expect(throws: AudioError.self) { try evaluator.evaluate(dataset, clips: dataset.clips, loader: ClipLoader()) }
    }

    // MARK: - Cross-validation

    @Test func crossValidationMeanAndSampleStandardDeviation() throws {
        let summary = try CrossValidationSummary(accuracies: [0.7, 0.8, 0.9])
        #expect(abs(summary.mean - 0.8) < 1e-12)
        #expect(abs(summary.standardDeviation - 0.1) < 1e-12)
        #expect(summary.folds.map(\.fold) == [1, 2, 3])
        #expect(summary.minimum == 0.7 && summary.maximum == 0.9)
        #expect(summary.description.hasPrefix("accuracy 80.00 % ± 10.00 %"))
        let single = try CrossValidationSummary(folds: [.init(fold: 5, accuracy: 0.64, clipCount: 400)])
        #expect(single.mean == 0.64 && single.standardDeviation == 0)
        #expect(throws: EnvNetError.self) { try CrossValidationSummary(accuracies: []) }
        #expect(throws: EnvNetError.self) { try CrossValidationSummary(accuracies: [0.5, .nan]) }
        #expect(throws: EnvNetError.self) { try CrossValidationSummary(accuracies: [1.5]) }
        #expect(throws: EnvNetError.self) { try CrossValidationSummary(folds: [.init(fold: 1, accuracy: 0.5), .init(fold: 1, accuracy: 0.6)]) }
        let folder = try Self.temporaryFolder()
        try summary.write(to: folder)
        let decoded = try JSONDecoder().decode(CrossValidationSummary.self, from: Data(contentsOf: folder.appendingPathComponent("cross_validation.json")))
        #expect(decoded == summary)
        let csv = try String(contentsOf: folder.appendingPathComponent("cross_validation.csv"), encoding: .utf8)
        #expect(csv.hasPrefix("fold,accuracy,clips\n1,0.7,\n2,0.8,\n3,0.9,\nmean,"))
    }

    // MARK: - The real network

    @Test func theRealNetworkGivesDistributionsAndRestoresTrainingMode() throws {
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: 3)
        #expect(network.isTraining)
        let length = network.configuration.inputLength
        var generator = SeededGenerator(seed: 11)
        let clip = (0..<(length + 2 * 3200 + 100)).map { _ in Float.random(in: -1...1, using: &generator) }
        let evaluator = try ClipEvaluator(network: network, scheme: .seedArticle, batchSize: 2)
        let prediction = try evaluator.predict(LabeledClip(samples: clip, label: 1, name: "noise"))
        #expect(network.isTraining)  // restored after each batch
        #expect(prediction.windowCount == 3)
        #expect(prediction.probabilities.count == 3)
        #expect(abs(prediction.probabilities.reduce(0, +) - 1) < 1e-5)
        #expect(prediction.probabilities.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(prediction.predictedLabel == ClipEvaluator.argmax(prediction.probabilities))
        // The same as scoring all three windows at once and averaging by hand.
        let windows = try evaluator.windows(of: clip)
        let rows = try ClipEvaluator.softmaxScores(of: windows, network: network)
        for label in 0..<3 {
            let mean = rows.reduce(0) { $0 + $1[label] } / 3
            #expect(abs(mean - prediction.probabilities[label]) < 1e-5)
        }
        #expect(throws: EnvNetError.self) { try ClipEvaluator.softmaxScores(of: [[0, 1]], network: network) }
        // Validation function for the training loop.
        let accuracy = try ClipEvaluator.validation(on: [LabeledClip(samples: Array(clip.prefix(length)), label: 0, name: "x")])(network)
        #expect(accuracy == 0 || accuracy == 1)
        #expect(network.isTraining)
    }
}
