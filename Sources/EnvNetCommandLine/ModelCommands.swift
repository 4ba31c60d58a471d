import ArgumentParser
import EnvNetModel
import Foundation

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate trained weights on one fold: clip accuracy, per-class accuracy, confusion matrix.",
        discussion: """
            Uses probability voting over 1.5 s windows with a 0.2 s hop (the seed article) or 10-crop
            averaging (the authors' repository); --evaluation both reports both. Report files
            (confusion_matrix.csv/.svg, per_class_accuracy.csv, predictions.csv, report.json) go to
            --output, one subfolder per scheme.

            Examples:
              envnet evaluate --data ESC-50 --fold 5 --weights runs/esc50/model.safetensors
              envnet evaluate --data ESC-10-16k --subset esc10 --fold 5 --weights model.safetensors --evaluation both --output report
            """)

    @OptionGroup var data: DataOptions
    @Option(help: "The fold to evaluate.") var fold = 5
    @Option(help: "The weights (safetensors).") var weights: String
    @Option(help: "voting, ten-crop or both.") var evaluation = "voting"
    @Option(help: "Folder for the report files.") var output: String?

    func validate() throws {
        guard ["voting", "ten-crop", "both"].contains(evaluation) else { throw ValidationError("--evaluation must be voting, ten-crop or both") }
    }

    func run() throws {
        let progress = ProgressReporter()
        let (network, classNames) = try EnvNet.load(from: URL(fileURLWithPath: weights))
        if let output { try AtomicFile.checkWritableFolder(URL(fileURLWithPath: output)) }
        let prepared = try data.load(progress: progress)
        guard prepared.dataset.folds.contains(fold) else { throw ValidationError("fold \(fold) is not in the dataset (folds \(prepared.dataset.folds))") }
        guard prepared.classNames.count == classNames.count else {
            throw ValidationError("the weights have \(classNames.count) classes, the dataset \(prepared.classNames.count) (use --subset esc10 for ESC-10)")
        }
        let test = prepared.clips(inFolds: [fold])
        let schemes: [(String, EvaluationScheme)] = switch evaluation {
        case "voting": [("voting", .seedArticle)]
        case "ten-crop": [("ten-crop", .authorsRepository)]
        default: [("voting", .seedArticle), ("ten-crop", .authorsRepository)]
        }
        for (name, scheme) in schemes {
            progress.begin("evaluating (\(scheme))")
            let report = try ClipEvaluator(network: network, scheme: scheme).evaluate(test, classNames: prepared.classNames) { step in
                progress.update(done: step.completed, total: step.total, detail: String(format: "accuracy %.1f%%", step.accuracy * 100))
            }
            print(String(format: "fold %d, %@: clip accuracy %.2f%% (%d of %d clips, %.1f windows per clip)", fold, "\(scheme)",
                         report.accuracy * 100, report.correctCount, report.clipCount, report.meanWindowCount))
            for (index, accuracy) in report.perClassAccuracy.enumerated() {
                print("  " + prepared.classNames[index].padding(toLength: 20, withPad: " ", startingAt: 0)
                      + (accuracy.map { String(format: "%6.1f%%", $0 * 100) } ?? "     -"))
            }
            if let output {
                let folder = URL(fileURLWithPath: output).appendingPathComponent(schemes.count > 1 ? name : "")
                try report.write(to: folder)
                print("report: \(folder.path)")
            }
        }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify audio files with trained weights: the top-k labels of each file.",
        discussion: """
            Any WAV encoding and sample rate (resampled to 16 kHz inside). The probabilities are the
            mean of the softmax over the file's 1.5 s voting windows (0.2 s hop, silent windows dropped).
            With --json: one document with, per file, its path, the probability of every class in
            class order, and the top-k.

            Examples:
              envnet predict --weights model.safetensors dog.wav rain.wav
              envnet predict --weights model.safetensors --top-k 3 --json clips/*.wav
            """)

    @Option(help: "The weights (safetensors).") var weights: String
    @Option(help: "How many labels to show per file.") var topK = 5
    @Flag(help: "Print one JSON document.") var json = false
    @Argument(help: "Audio files (WAV).") var files: [String]

    struct FileResult: Codable {
        var path: String
        var probabilities: [Float]?
        var top: [Classification.Candidate]?
        var windows: Int?
        var error: String?
    }

    struct Document: Codable {
        var weights: String
        var classNames: [String]
        var files: [FileResult]
    }

    func validate() throws {
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1") }
        guard !files.isEmpty else { throw ValidationError("give at least one audio file") }
    }

    func run() throws {
        let classifier = try SoundClassifier(contentsOf: URL(fileURLWithPath: weights))
        var results: [FileResult] = []
        for path in files {
            do {
                let result = try classifier.classify(contentsOf: URL(fileURLWithPath: path), topK: topK)
                results.append(FileResult(path: path, probabilities: result.probabilities, top: result.top, windows: result.windowCount))
            } catch {
                results.append(FileResult(path: path, error: "\(error)"))
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(Document(weights: weights, classNames: classifier.classNames, files: results)), as: UTF8.self))
        } else {
            for result in results {
                if let error = result.error {
                    print("\(result.path): error: \(error)")
                    continue
                }
                print("\(result.path):")
                for candidate in result.top ?? [] {
                    print(String(format: "  %6.2f%%  %@", candidate.probability * 100, candidate.label))
                }
            }
        }
        if results.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }
}

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The paper's learned-filter analysis: each pool2 filter's response to pure tones, sorted by peak frequency.",
        discussion: """
            Feeds tones over a log-spaced frequency grid through the trained network and records the
            mean response of each of the 40 filters after pool2. Writes filter_response.csv (sorted
            filters x frequencies), filter_peaks.csv and filter_response.svg (a heatmap: in a trained
            EnvNet it resembles a mel filterbank).

            Examples:
              envnet analyze --weights model.safetensors --output analysis
              envnet analyze --weights model.safetensors --output analysis --frequencies 400 --lowest 20
            """)

    @Option(help: "The weights (safetensors).") var weights: String
    @Option(help: "The output folder.") var output: String
    @Option(help: "Number of tone frequencies.") var frequencies = 200
    @Option(help: "Lowest frequency in Hz.") var lowest: Double = 50
    @Option(help: "Highest frequency in Hz (at most 8000, the Nyquist frequency of 16 kHz).") var highest: Double = 8000

    func validate() throws {
        guard frequencies >= 2 else { throw ValidationError("--frequencies must be at least 2") }
        guard lowest > 0, highest > lowest, highest <= 8000 else { throw ValidationError("need 0 < --lowest < --highest <= 8000") }
    }

    func run() throws {
        let folder = URL(fileURLWithPath: output)
        try AtomicFile.checkWritableFolder(folder)
        let (network, _) = try EnvNet.load(from: URL(fileURLWithPath: weights))
        let grid = try LearnedFilterAnalysis.logSpacedFrequencies(count: frequencies, from: lowest, to: highest)
        let progress = ProgressReporter()
        progress.begin("sweeping tones")
        let response = try LearnedFilterAnalysis.measure(network: network, frequencies: grid) { done, total in
            progress.update(done: done, total: total)
        }
        try response.write(to: folder)
        let peaks = response.peakFrequencies.compactMap { $0 }
        print("\(response.filterCount) filters, peaks from \(Int(peaks.min() ?? 0)) Hz to \(Int(peaks.max() ?? 0)) Hz; wrote \(folder.path)/filter_response.svg")
    }
}
