import EnvNetCharts
import ArgumentParser
import EnvNetModel
import Foundation

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Synthesize the built-in dataset, train EnvNet on it, evaluate, analyze, and write a report folder.",
        discussion: """
            Needs no data of yours. Writes into the output folder: the synthetic dataset (dataset/), \
            the trained model (model.safetensors), the training log and curve, the evaluation \
            (accuracy, confusion matrix as CSV and image, per-class accuracy), the learned-filter \
            analysis (filter responses as CSV and heatmap) and REPORT.md. About two minutes on 2 cores.

            Examples:
              envnet demo
              envnet demo --output /tmp/envnet-demo --seed 3
            """)

    @Option(help: "The report folder.") var output = "envnet-demo"
    @Option(help: "Training epochs.") var epochs = 10
    @Option(help: "Synthetic clips per class (10 classes, 5 folds).") var clipsPerClass = 40
    @Option(help: "Seed of the dataset, the weights and training.") var seed: UInt64 = 0

    func validate() throws {
        try Limits.check(epochs, in: Limits.epochs, option: "--epochs")
        guard clipsPerClass >= 5 else { throw ValidationError("--clips-per-class must be at least 5 (one per fold)") }
        try Limits.check(clipsPerClass, in: Limits.clipsPerClass, option: "--clips-per-class")
    }

    func run() throws {
        let started = Date()
        let folder = URL(fileURLWithPath: output)
        try AtomicFile.checkWritableFolder(folder)
        let progress = ProgressReporter()

        // 1. Data: the synthetic dataset, read back through the same path as real data.
        let dataFolder = folder.appendingPathComponent("dataset")
        progress.begin("synthesizing")
        _ = try SyntheticDataset.generate(
            at: dataFolder, configuration: SyntheticDatasetConfiguration(clipsPerClass: clipsPerClass, seed: seed),
            progress: { done, total in progress.update(done: done, total: total) })
        progress.begin("preprocessing")
        let prepared = try PreparedDataset(root: dataFolder, cacheFolder: folder.appendingPathComponent("cache"),
                                           progress: { done, total in progress.update(done: done, total: total) })
        let (training, test) = prepared.split(testFold: 5)
        let classNames = prepared.classNames
        printError("dataset: \(prepared.dataset.clips.count) synthetic clips, \(classNames.count) classes; training on folds 1-4, testing on fold 5")

        // 2. Training: the paper's recipe, shortened to a few epochs.
        var recipe = TrainingConfiguration()
        recipe.epochs = epochs
        recipe.milestones = [Int((Double(epochs) * 0.7).rounded()), Int((Double(epochs) * 0.9).rounded())]
        recipe.seed = seed
        recipe.validationInterval = 0
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: classNames.count), seed: seed)
        let runFolder = folder.appendingPathComponent("training")
        try? FileManager.default.removeItem(at: runFolder.appendingPathComponent("checkpoint.safetensors"))
        let trainer = try Trainer(network: network, training: training, classNames: classNames, configuration: recipe, runFolder: runFolder)
        trainer.validation = ClipEvaluator.validation(on: test, scheme: .authorsRepository)
        try trainer.run { event in
            switch event {
            case let .step(epoch, step, steps, loss):
                if step == 1 { progress.begin("epoch \(epoch)/\(epochs)") }
                progress.update(done: step, total: steps, detail: String(format: "loss %.4f", loss))
            case let .validating(epoch):
                printError("validating epoch \(epoch) (10-crop)")
            case let .epoch(record):
                print(record.line)
            }
        }
        let modelURL = folder.appendingPathComponent("model.safetensors")
        try network.save(to: modelURL, classNames: classNames)
        try AtomicFile.write(Charts.trainingCurve(history: trainer.history, title: "EnvNet on the synthetic dataset"),
                             to: folder.appendingPathComponent("training_curve.svg"))

        // 3. Evaluation by probability voting (the seed article), with its report files.
        progress.begin("evaluating (probability voting)")
        let evaluator = try ClipEvaluator(network: network, scheme: .seedArticle)
        let report = try evaluator.evaluate(test, classNames: classNames) { step in
            progress.update(done: step.completed, total: step.total)
        }
        let evaluationFolder = folder.appendingPathComponent("evaluation")
        try report.write(to: evaluationFolder)
        try report.writeCharts(to: evaluationFolder)
        let tenCrop = trainer.history.last?.validationAccuracy ?? 0

        // 4. What the first layers learned: the sine-sweep analysis.
        printError("analyzing the learned filters")
        let filters = try LearnedFilterAnalysis.measure(network: network)
        let filterFolder = folder.appendingPathComponent("filters")
        try filters.write(to: filterFolder)
        try filters.writeCharts(to: filterFolder)

        let seconds = Date().timeIntervalSince(started)
        let summary = """
            # EnvNet demo

            - Dataset: \(prepared.dataset.clips.count) synthetic clips, \(classNames.count) classes (\(classNames.joined(separator: ", "))), \
            5 folds; trained on folds 1-4 (\(training.count) clips), tested on fold 5 (\(test.count) clips).
            - Network: \(network.configuration), \(network.namedParameters().reduce(0) { $0 + $1.parameter.count }) parameters.
            - Training: \(epochs) epochs, SGD lr 0.01 (x0.1 at epochs \(recipe.milestones.map(String.init).joined(separator: ", "))), \
            momentum 0.9 Nesterov, weight decay 5e-4, batch 64, seed \(seed).
            - Clip accuracy on fold 5: **\(String(format: "%.2f", report.accuracy * 100)) %** with probability voting \
            (1.5 s windows, 0.2 s hop), \(String(format: "%.2f", tenCrop * 100)) % with 10-crop averaging.
            - Time: \(String(format: "%.0f", seconds)) s.

            ## Training curve

            Loss, and training and validation accuracy, per epoch (validation as circles).

            ![Training curve: loss and accuracy per epoch](training_curve.svg)

            ## Confusion matrix

            Fold 5 by probability voting: rows are the true classes, columns the predicted ones.

            ![Confusion matrix of fold 5](evaluation/confusion_matrix.svg)

            ## Learned filters

            Each front-end filter's mean response (at `\(filters.layer)`) to pure tones from 50 Hz to 8 kHz, \
            normalized to its maximum and sorted by the frequency of its strongest response.

            ![Learned filters: response to pure tones](filters/filter_response.svg)

            ## Files

            `model.safetensors`, `training/log.jsonl`, `training_curve.svg`, `evaluation/confusion_matrix.svg`,
            `evaluation/confusion_matrix.csv`, `evaluation/per_class_accuracy.csv`, `evaluation/predictions.csv`,
            `filters/filter_response.svg`, `filters/filter_response.csv`, `filters/filter_peaks.csv`.
            """
        try AtomicFile.write(summary + "\n", to: folder.appendingPathComponent("REPORT.md"))
        print(String(format: "clip accuracy on the held-out fold: %.2f%% (probability voting), %.2f%% (10-crop); %.0f s",
                     report.accuracy * 100, tenCrop * 100, seconds))
        print("report: \(folder.path)/REPORT.md")
    }
}
