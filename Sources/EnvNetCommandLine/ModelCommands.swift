import EnvNetCharts
import ArgumentParser
import EnvNetModel
import EnvNetPretrained
import Foundation

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a trained model on one fold: clip accuracy, per-class accuracy, confusion matrix.",
        discussion: """
            Classes are matched by name: a model whose classes differ from the dataset's is refused \
            before any preprocessing, naming the missing and extra classes. The normalization and the \
            evaluation scheme are the ones the model records (older files: peak, voting); --evaluation \
            voting (the network's windows: for EnvNet 1.5 s with a 0.2 s hop, the seed article; for \
            the log-mel CNN its 0.95 s segments, half a segment apart), ten-crop (the authors' repository) \
            or both overrides the scheme. Report files (confusion_matrix.csv/.svg, \
            per_class_accuracy.csv, predictions.csv, report.json) go to --output, one subfolder per \
            scheme.

            Examples:
              envnet evaluate --data ESC-50 --fold 5 --weights esc50/model.safetensors
              envnet evaluate --data my-sounds --weights runs/my-sounds/model.safetensors
              envnet evaluate --data ESC-10-16k --subset esc10 --weights m.safetensors
              envnet evaluate --data ESC-50 --ensemble a.safetensors b.safetensors

            With --ensemble, each model reads the clips with its own preprocessing (rate, \
            normalization) and votes with its own scheme; the report shows every model and the \
            mean of their clip probabilities (the EnvNet paper's combination).
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var precision: PrecisionOption
    @Option(help: "The fold to evaluate (default: the model's held-out fold, else 5).") var fold: Int?
    @Option(help: "The model (safetensors).") var weights: String?
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Two or more models evaluated together: each with its own preprocessing and scheme, their clip probabilities averaged.", valueName: "model.safetensors"))
    var ensemble: [String] = []
    @Option(help: "voting, ten-crop or both (default: the model's own scheme).") var evaluation: String?
    @Option(help: ArgumentHelp("The network the model must be: envnet, envnet-v2 or logmel-cnn (default: whichever the file holds).", valueName: "envnet|envnet-v2|logmel-cnn"))
    var network: String?

    @Option(help: "Folder for the report files.") var output: String?

    func validate() throws {
        if let fold { try Limits.check(fold, in: 1...100, option: "--fold") }
        if let evaluation {
            guard ["voting", "ten-crop", "both"].contains(evaluation) else { throw ValidationError("--evaluation must be voting, ten-crop or both") }
        }
        try checkNetworkOption(network)
        guard (weights == nil) != ensemble.isEmpty else { throw ValidationError("give --weights or --ensemble (two or more models), not both and not neither") }
        if !ensemble.isEmpty {
            guard ensemble.count >= 2 else { throw ValidationError("--ensemble needs two or more models, got \(ensemble.count)") }
            guard evaluation == nil, network == nil, data.normalization == nil else {
                throw ValidationError("--ensemble evaluates each model with its own preprocessing and scheme: leave out --evaluation, --network and --normalization")
            }
        }
    }

    func run() throws {
        precision.apply()
        if !ensemble.isEmpty { return try runEnsemble() }
        let progress = ProgressReporter()
        let weights = self.weights!
        let (network, model) = try ModelFile.load(from: URL(fileURLWithPath: weights))
        try checkNetwork(self.network, of: model, path: weights)
        if let output { try AtomicFile.checkWritableFolder(URL(fileURLWithPath: output)) }
        let recordedNormalization = model.preprocessing.normalization == .int16FullScale ? "int16" : "peak"
        if let normalization = data.normalization, normalization != recordedNormalization {
            throw ValidationError("--normalization \(normalization) differs from the model's (\(recordedNormalization)); leave it out to use the model's")
        }
        // Drawn folds are drawn again as in training: the model records their count and the seed.
        let fullDataset = try data.dataset(seed: model.recipe?.seed ?? 0, defaultFolds: model.dataset?.foldCount ?? 5)
        let dataset = try fullDataset.relabelled(as: model.classNames)
        let fold = self.fold ?? model.dataset?.heldOutFold ?? 5
        guard dataset.folds.contains(fold) else { throw ValidationError("fold \(fold) is not in the dataset (folds \(dataset.folds))") }
        warnAboutTrainingFolds(of: model, fullDataset: fullDataset, fold: fold)
        let prepared = try data.prepare(dataset, settings: model.preprocessing, progress: progress)
        let test = prepared.clips(inFolds: [fold])
        let schemes: [(String, EvaluationScheme)] = switch evaluation {
        case "voting": [("voting", .probabilityVoting(network: model.configuration.architecture))]
        case "ten-crop": [("ten-crop", .authorsRepository)]
        case "both": [("voting", .probabilityVoting(network: model.configuration.architecture)), ("ten-crop", .authorsRepository)]
        default: [("model", model.evaluation)]
        }
        for (name, scheme) in schemes {
            progress.begin("evaluating (\(scheme))")
            let report = try ClipEvaluator(network: network, scheme: scheme).evaluate(test, classNames: prepared.classNames) { step in
                progress.update(done: step.completed, total: step.total, detail: String(format: "accuracy %.1f%%", step.accuracy * 100))
            }
            print(String(format: "fold %d, %@: clip accuracy %.2f%% (%d of %d clips, %.1f windows per clip)", fold, "\(scheme)",
                         report.accuracy * 100, report.correctCount, report.clipCount, report.meanWindowCount))
            for (index, accuracy) in report.perClassAccuracy.enumerated() {
                print("  " + terminalSafe(prepared.classNames[index]).padding(toLength: 20, withPad: " ", startingAt: 0)
                      + (accuracy.map { String(format: "%6.1f%%", $0 * 100) } ?? "     -"))
            }
            if let output {
                let folder = URL(fileURLWithPath: output).appendingPathComponent(schemes.count > 1 ? name : "")
                try report.write(to: folder)
                try report.writeCharts(to: folder)
                print("report: \(folder.path)")
            }
        }
    }
}

extension Evaluate {
    /// Warns when the test fold was trained on (the model records the data it was trained on).
    func warnAboutTrainingFolds(of model: ModelDescription, fullDataset: AudioDataset, fold: Int, name: String = "the model") {
        if let record = model.dataset, let fingerprint = try? fullDataset.fingerprint(), fingerprint == record.fingerprint {
            if let trainedFold = record.heldOutFold, trainedFold != fold {
                printError("warning: \(name) was trained on this data holding out fold \(trainedFold), so fold \(fold) was trained on")
            } else if record.heldOutFold == nil {
                printError("warning: \(name) was trained on every fold of this data, so the accuracy below is on training clips")
            }
        } else if let record = model.dataset, record.foldsWereDrawn == true, data.folds.map({ $0 != record.foldCount }) ?? false {
            printError("warning: \(name)'s folds were drawn as \(record.foldCount ?? 0) folds; with --folds \(data.folds ?? 0) the folds differ, and the test fold may hold training clips")
        }
    }

    /// `--ensemble`: every model on the same fold with its own preprocessing and scheme, then the
    /// mean of their clip probabilities.
    func runEnsemble() throws {
        let progress = ProgressReporter()
        let members = try ensemble.map { path in
            let (network, description) = try ModelFile.load(from: URL(fileURLWithPath: path))
            return Ensemble.Member(name: path, network: network, description: description)
        }
        let models = try Ensemble(members: members)
        if let output { try AtomicFile.checkWritableFolder(URL(fileURLWithPath: output)) }
        let first = members[0].description
        let fullDataset = try data.dataset(seed: first.recipe?.seed ?? 0, defaultFolds: first.dataset?.foldCount ?? 5)
        let fold = self.fold ?? first.dataset?.heldOutFold ?? 5
        guard fullDataset.folds.contains(fold) else { throw ValidationError("fold \(fold) is not in the dataset (folds \(fullDataset.folds))") }
        // Every model's classes against the data's, before any preprocessing.
        for member in members { _ = try fullDataset.relabelled(as: member.description.classNames) }
        // Drawn folds are drawn with the first model's seed and count: a model whose folds were drawn
        // otherwise would be tested on clips it trained on, with nothing to say so.
        for member in members.dropFirst() {
            guard let record = member.description.dataset, record.foldsWereDrawn == true else { continue }
            let seed = member.description.recipe?.seed ?? 0, count = record.foldCount ?? 5
            let firstSeed = first.recipe?.seed ?? 0, firstCount = first.dataset?.foldCount ?? 5
            if seed != firstSeed || count != firstCount {
                throw ValidationError("\(member.name) drew its \(count) folds with seed \(seed), \(members[0].name) its \(firstCount) with seed \(firstSeed): their test folds hold different clips; train them with the same --seed and --folds")
            }
        }
        var reports: [EvaluationReport] = []
        for (index, member) in members.enumerated() {
            let model = member.description
            warnAboutTrainingFolds(of: model, fullDataset: fullDataset, fold: fold, name: member.name)
            let dataset = try fullDataset.relabelled(as: model.classNames)
            let prepared = try data.prepare(dataset, settings: model.preprocessing, progress: progress)
            progress.begin("evaluating model \(index + 1) of \(members.count) (\(model.configuration.architecture), \(model.evaluation))")
            let report = try ClipEvaluator(network: member.network, scheme: model.evaluation)
                .evaluate(prepared.clips(inFolds: [fold]), classNames: prepared.classNames) { step in
                    progress.update(done: step.completed, total: step.total, detail: String(format: "accuracy %.1f%%", step.accuracy * 100))
                }
            reports.append(report)
        }
        let result = try models.combine(reports)
        let classNames = models.classNames
        for (index, (member, entry)) in zip(members, result.members).enumerated() {
            let report = entry.report
            print(String(format: "fold %d, model %d (%@, %@, %@): clip accuracy %.2f%% (%d of %d clips, %.1f windows per clip)", fold, index + 1,
                         terminalSafe(member.name), "\(member.description.configuration.architecture)", "\(member.description.evaluation)",
                         report.accuracy * 100, report.correctCount, report.clipCount, report.meanWindowCount))
        }
        let ensembleReport = result.ensemble
        print(String(format: "fold %d, ensemble (mean of %d models' clip probabilities): clip accuracy %.2f%% (%d of %d clips)", fold, members.count,
                     ensembleReport.accuracy * 100, ensembleReport.correctCount, ensembleReport.clipCount))
        func rightAligned(_ text: String) -> String { String(repeating: " ", count: Swift.max(0, 8 - text.count)) + text }
        let header = ((1...members.count).map { rightAligned("model \($0)") } + [rightAligned("ensemble")]).joined(separator: " ")
        print("  " + "class".padding(toLength: 20, withPad: " ", startingAt: 0) + header)
        for (label, name) in classNames.enumerated() {
            let cells = (result.members.map(\.report) + [ensembleReport]).map { report in
                report.perClassAccuracy[label].map { String(format: "%7.1f%%", $0 * 100) } ?? "       -"
            }
            print("  " + terminalSafe(name).padding(toLength: 20, withPad: " ", startingAt: 0) + cells.joined(separator: " "))
        }
        if let output {
            let base = URL(fileURLWithPath: output)
            for (index, entry) in result.members.enumerated() {
                let folder = base.appendingPathComponent("model\(index + 1)")
                try entry.report.write(to: folder)
                try entry.report.writeCharts(to: folder)
            }
            let folder = base.appendingPathComponent("ensemble")
            try ensembleReport.write(to: folder)
            try ensembleReport.writeCharts(to: folder)
            print("report: \(base.path) (model1 … model\(members.count), ensemble)")
        }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify audio files: the label, its probability and where it sounds loudest, or a timeline with --stream.",
        discussion: """
            Without --weights it uses the model that ships with envnet: EnvNet trained on the ESC-10 \
            clips (dog, rain, sea waves, crying baby, clock tick, sneezing, helicopter, chainsaw, \
            rooster, crackling fire).

            Any WAV, FLAC, Ogg Vorbis, Opus, MP3, AIFF/AIFC, CAF or W64 file at any rate, read from \
            disk as it goes (an hour-long file takes little memory). Each file is cut into the \
            network's windows (EnvNet: 1.5 s every 0.2 s by default, the model's voting hop; --overlap-factor or \
            --hop-seconds change it); a window whose peak is at or below --silence-threshold \
            (in dBFS, before normalization; default the model's, -50 dBFS) is silent. The label \
            is the probability vote of the windows that sound; a file with no such window is \
            "silent". --json prints every window with its time range, peak and probabilities.

            With --stream the file is classified as a live stream is: one result per hop, each \
            window divided by its own peak, and a smoothed decision (the mean of the last 5 \
            scored windows; "silent" after 5 silent windows). --csv writes the timeline.

            Examples:
              envnet predict dog.wav rain.flac
              envnet predict --weights runs/mine/model.safetensors --json clips/*.wav
              envnet predict --overlap-factor 0.5 --top-k 1 long-recording.mp3
              envnet predict --stream long.wav --csv timeline.csv
            """)

    @Option(help: "The model (safetensors). Default: the bundled ESC-10 model.") var weights: String?
    @Option(help: ArgumentHelp("The network the model must be: envnet, envnet-v2 or logmel-cnn (default: whichever the file holds; the bundled model is EnvNet).",
                               valueName: "envnet|envnet-v2|logmel-cnn"))
    var network: String?
    @Option(help: "How many labels to show per file (default 3).") var topK: Int?
    @Flag(help: "Print one JSON document with every window.") var json = false
    @Flag(help: "Classify each file as a stream and print a timeline of windows.") var stream = false
    @Option(help: "Seconds between window starts (default: the model's voting hop, 0.2 s).") var hopSeconds: Double?
    @Option(help: "Overlap of consecutive windows, in [0, 1) (0.5: a window every 0.75 s).") var overlapFactor: Double?
    @Option(help: ArgumentHelp("The window peak in dBFS (before normalization) at or below which a window is silent (default: the model's).",
                               valueName: "dBFS")) var silenceThreshold: Double?
    @Option(help: "recording (the whole file by its peak, as in training) or window (each window by its own peak).")
    var normalization: SoundAnalysisNormalization?
    @Option(help: "With --stream: also write the timeline to this CSV file.") var csv: String?
    @OptionGroup var precision: PrecisionOption
    @Argument(help: "Audio files (WAV, FLAC, Ogg Vorbis, Opus, MP3, AIFF/AIFC, CAF, W64).") var files: [String]

    struct FileResult: Codable {
        var path: String
        var analysis: SoundFileAnalysis?
        var error: String?
    }

    struct Document: Codable {
        var model: String
        var classNames: [String]
        var files: [FileResult]
    }

    func validate() throws {
        if let topK { try Limits.check(topK, in: 1...1000, option: "--top-k") }
        guard !files.isEmpty else { throw ValidationError("give at least one audio file") }
        try checkNetworkOption(network)
        if let network, let architecture = NetworkArchitecture(rawValue: network), architecture != .envnet, weights == nil {
            throw ValidationError("no \(architecture) model ships with envnet (the bundled model is EnvNet): give --weights")
        }
        guard hopSeconds == nil || overlapFactor == nil else { throw ValidationError("give --hop-seconds or --overlap-factor, not both") }
        if let hopSeconds {
            guard hopSeconds.isFinite, hopSeconds > 0, hopSeconds <= 3600, (hopSeconds * 16_000).rounded() >= 1 else {
                throw ValidationError("--hop-seconds must be positive (at least one sample at 16 kHz) and at most 3600, got \(hopSeconds)")
            }
        }
        if let overlapFactor {
            guard overlapFactor.isFinite, overlapFactor >= 0, overlapFactor < 1 else {
                throw ValidationError("--overlap-factor must be in [0, 1), got \(overlapFactor)")
            }
        }
        if let silenceThreshold {
            guard silenceThreshold.isFinite, silenceThreshold <= 0, silenceThreshold >= -200 else {
                throw ValidationError("--silence-threshold is a level in dBFS between -200 and 0 (for example -50), got \(silenceThreshold)")
            }
        }
        if stream {
            guard !json else { throw ValidationError("--json cannot be combined with --stream (use --csv for the timeline)") }
            // A stream scales each window by its own peak and prints one label per window.
            guard normalization == nil else { throw ValidationError("--normalization does nothing with --stream (each window is divided by its own peak)") }
            guard topK == nil else { throw ValidationError("--top-k does nothing with --stream (the timeline shows each window's best label)") }
        } else {
            guard csv == nil else { throw ValidationError("--csv writes the --stream timeline; add --stream") }
        }
    }

    /// The model file: --weights, or the bundled model (a typed error says where it looked).
    func modelURL() throws -> URL {
        if let weights { return URL(fileURLWithPath: weights) }
        return try PretrainedModel.esc10.url(searching: CommandEnvironment.current.pretrainedModelFolders + PretrainedModel.locations)
    }

    /// The request: the hop given, else the model's voting hop, else SoundAnalysis's overlap of 0.5.
    func request(for model: ModelDescription) -> SoundAnalysisRequest {
        var request = SoundAnalysisRequest(silenceThresholdDecibels: silenceThreshold, normalization: normalization ?? .recording, topK: topK ?? 3)
        if let hopSeconds {
            request.hopDuration = hopSeconds
        } else if let overlapFactor {
            request.overlapFactor = overlapFactor
        } else if case let .probabilityVoting(hop) = model.evaluation {
            request.hopDuration = Double(hop) / Double(model.sampleRate)
        }
        return request
    }

    func run() throws {
        precision.apply()
        let url = try modelURL()
        if stream { return try runStreaming(model: url) }
        let classifier = try SoundClassifier(contentsOf: url, silenceThresholdDecibels: silenceThreshold)
        try checkNetwork(network, of: classifier.modelDescription, path: url.path)
        let request = request(for: classifier.modelDescription)
        let progress = ProgressReporter()
        var results: [FileResult] = []
        for path in files {
            do {
                let file = URL(fileURLWithPath: path)
                // A progress bar for long files only: a 5 s clip is done before it would draw.
                let long = (try? AudioFileReader.readInfo(contentsOf: file).duration) ?? 0 > 60
                if long { progress.begin("analysing \(file.lastPathComponent)") }
                let analysis = try classifier.analyze(contentsOf: file, request: request, keepingWindows: json) { step in
                    if long { progress.update(done: Int(step.fractionCompleted * 1000), total: 1000, detail: "\(step.windowsAnalyzed) windows") }
                }
                results.append(FileResult(path: path, analysis: analysis))
                if !json { print(Self.glance(analysis, path: path)) }
            } catch {
                results.append(FileResult(path: path, error: "\(error)"))
                if !json { print("\(path): error: \(error)") }
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let document = Document(model: weights ?? "bundled \(PretrainedModel.esc10.fileName)", classNames: classifier.classNames, files: results)
            print(String(decoding: try encoder.encode(document), as: UTF8.self))
        }
        if results.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }

    /// One or two lines a person reads at a glance.
    static func glance(_ analysis: SoundFileAnalysis, path: String) -> String {
        let decision = analysis.classification
        guard let best = decision.best else {
            let level = analysis.peakDecibels.map { String(format: "the loudest peaks at %.1f dBFS", $0) } ?? "digital silence"
            return "\(path): silent (\(analysis.windowCount) windows, none above \(String(format: "%.0f", analysis.silenceThresholdDecibels)) dBFS; \(level))"
        }
        let ranges = analysis.strongestWindows.map { String(format: "%.2f-%.2f", $0.timeRange.start, $0.timeRange.end) }
        // Labels come from the model file's metadata: printed escaped, so they cannot fake lines.
        var line = String(format: "%@: %@ %.1f%%", path, terminalSafe(best.label), best.probability * 100)
        if !ranges.isEmpty { line += " (strongest at \(ranges.joined(separator: ", ")) s)" }
        let others = decision.top.dropFirst().map { String(format: "%@ %.1f%%", terminalSafe($0.label), $0.probability * 100) }
        if !others.isEmpty { line += "\n  then: " + others.joined(separator: ", ") }
        if analysis.silentWindowCount > 0 { line += "\n  \(analysis.silentWindowCount) of \(analysis.windowCount) windows silent" }
        return line
    }
}

extension Predict {
    /// `--stream`: every file through one `StreamingClassifier`, read in 1 s chunks.
    func runStreaming(model url: URL) throws {
        if let csv { try AtomicFile.checkWritableFolder(URL(fileURLWithPath: csv).deletingLastPathComponent()) }
        let (network, model) = try ModelFile.load(from: url)
        try checkNetwork(self.network, of: model, path: url.path)
        // A model trained on int16-scaled clips sees windows as decoded; a peak-normalized one
        // sees each window divided by its own peak (a stream cannot know the whole clip's).
        var settings = StreamingClassifier.configuration(for: model)
        if let silenceThreshold { settings.silenceThresholdDecibels = silenceThreshold }
        let hop = try request(for: model).hopSamples(windowLength: model.inputLength, sampleRate: model.sampleRate)
        settings.hop = hop
        let classifier = try StreamingClassifier(network: network, classNames: model.classNames,
                                                 sourceSampleRate: model.sampleRate, configuration: settings)
        // The CSV grows by one line per hop (about 80 bytes per 0.2 s, 1.4 MB per hour of audio).
        var table = "file,window,start_seconds,end_seconds,silent,peak,label,probability,smoothed_label,smoothed_probability\n"
        var failed = false
        for path in files {
            do {
                let reader = try AudioFileStream(contentsOf: URL(fileURLWithPath: path))
                try classifier.reset(sourceSampleRate: reader.info.sampleRate)
                print(String(format: "%@ (%.2f s at %d Hz, read in 1 s chunks; %.2f s windows every %.2f s, silent at or below %.0f dBFS):", path,
                             reader.info.duration, reader.info.sampleRate, Double(classifier.windowLength) / Double(model.sampleRate), Double(hop) / Double(model.sampleRate),
                             settings.silenceThresholdDecibels))
                print("  window (s)       label                    prob  smoothed")
                func emit(_ results: [StreamingResult]) {
                    for result in results {
                        print(Self.timelineLine(result))
                        table += Self.csvLine(file: path, result)
                    }
                }
                while let chunk = try reader.next(maximumFrames: reader.info.sampleRate) {
                    emit(try classifier.process(chunk))
                }
                emit(try classifier.finish())
            } catch {
                print("\(path): error: \(error)")
                failed = true
            }
        }
        if let csv {
            try AtomicFile.write(table, to: URL(fileURLWithPath: csv))
            print("timeline: \(csv)")
        }
        if failed { throw ExitCode(1) }
    }

    static func timelineLine(_ result: StreamingResult) -> String {
        let window = String(format: "%7.2f-%-7.2f", result.startTime, result.endTime)
        let label: String
        if let best = result.best {
            label = terminalSafe(best.label).padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: " %5.1f%%", best.probability * 100)
        } else {
            let level = result.peak > 0 ? String(format: "%.1f dBFS", result.peakDecibels) : "zeros"
            label = "(silent, \(level))".padding(toLength: 29, withPad: " ", startingAt: 0)
        }
        let smoothed = result.smoothedBest.map { String(format: "%@ (%.1f%%)", terminalSafe($0.label), $0.probability * 100) } ?? "(silent)"
        return "  \(window)  \(label)  \(smoothed)"
    }

    static func csvLine(file: String, _ result: StreamingResult) -> String {
        func field(_ text: String) -> String {
            guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        var line = "\(field(file)),\(result.index),\(String(format: "%.4f", result.startTime)),\(String(format: "%.4f", result.endTime)),"
        line += "\(result.isSilent),\(String(format: "%.6g", result.peak)),"
        line += result.best.map { "\(field($0.label)),\(String(format: "%.6g", $0.probability))," } ?? ",,"
        line += result.smoothedBest.map { "\(field($0.label)),\(String(format: "%.6g", $0.probability))" } ?? ","
        return line + "\n"
    }
}

extension SoundAnalysisNormalization: ExpressibleByArgument {}

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The paper's learned-filter analysis: each pool2 filter's response to pure tones, sorted by peak frequency.",
        discussion: """
            Feeds tones over a log-spaced frequency grid through the trained network and records the \
            mean response of each filter after pool2 (40 in EnvNet). Writes filter_response.csv (sorted \
            filters x frequencies), filter_peaks.csv and filter_response.svg (a heatmap: in a trained \
            EnvNet it resembles a mel filterbank).

            Examples:
              envnet analyze --weights model.safetensors --output analysis
              envnet analyze --weights m.safetensors --output analysis --frequencies 400
            """)

    @Option(help: "The weights (safetensors).") var weights: String
    @Option(help: "The output folder.") var output: String
    @Option(help: "Number of tone frequencies.") var frequencies = 200
    @Option(help: "Lowest frequency in Hz.") var lowest: Double = 50
    @Option(help: "Highest frequency in Hz (at most the Nyquist frequency: 8000 for EnvNet's 16 kHz, 22050 for EnvNet-v2).") var highest: Double = 8000

    func validate() throws {
        try Limits.check(frequencies, in: Limits.frequencies, option: "--frequencies")
        guard lowest.isFinite, highest.isFinite, lowest > 0, highest > lowest, highest <= 22_050 else {
            throw ValidationError("need 0 < --lowest < --highest <= 22050 (and the model's Nyquist frequency), got --lowest \(lowest) --highest \(highest)")
        }
    }

    func run() throws {
        let folder = URL(fileURLWithPath: output)
        try AtomicFile.checkWritableFolder(folder)
        let (network, _) = try ModelFile.load(from: URL(fileURLWithPath: weights))
        guard highest <= Double(network.sampleRate) / 2 else {
            throw ValidationError("--highest \(highest) exceeds the Nyquist frequency of \(network.architecture)'s \(network.sampleRate) Hz")
        }
        let grid = try LearnedFilterAnalysis.logSpacedFrequencies(count: frequencies, from: lowest, to: highest)
        let progress = ProgressReporter()
        progress.begin("sweeping tones")
        let response = try LearnedFilterAnalysis.measure(network: network, frequencies: grid) { done, total in
            progress.update(done: done, total: total)
        }
        try response.write(to: folder)
        try response.writeCharts(to: folder)
        let peaks = response.peakFrequencies.compactMap { $0 }
        print("\(response.filterCount) filters, peaks from \(Int(peaks.min() ?? 0)) Hz to \(Int(peaks.max() ?? 0)) Hz; wrote \(folder.path)/filter_response.svg")
    }
}

/// Checks a `--network` value.
func checkNetworkOption(_ network: String?) throws {
    if let network, NetworkArchitecture(rawValue: network) == nil {
        throw ValidationError("--network must be envnet, envnet-v2 or logmel-cnn, not \(network)")
    }
}

/// Refuses a model of another network than `--network` names.
func checkNetwork(_ network: String?, of model: ModelDescription, path: String) throws {
    if let network, network != model.network {
        throw ValidationError("--network \(network): \(path) holds \(model.configuration.architecture) weights (\(model.network))")
    }
}
