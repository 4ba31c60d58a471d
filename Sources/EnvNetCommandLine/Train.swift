import ArgumentParser
import EnvNetModel
import Foundation

/// Options shared by the commands that read a dataset.
struct DataOptions: ParsableArguments {
    @Option(help: "The dataset folder in ESC-50 layout (audio/, meta/esc50.csv).") var data: String
    @Option(help: "esc50 (all classes) or esc10 (the ESC-10 subset, renumbered 0-9).") var subset: String = "esc50"
    @Option(help: "Normalization: peak (divide by max |x|, the seed article) or int16 (divide by 32768 and trim zeros, the authors' repository).")
    var normalization: String = "peak"
    @Option(help: "Folder of the preprocessing cache (default: ~/.cache/envnet).") var cache: String?

    func validate() throws {
        guard ESC50Subset(rawValue: subset) != nil else { throw ValidationError("--subset must be esc50 or esc10, not \(subset)") }
        guard ["peak", "int16"].contains(normalization) else { throw ValidationError("--normalization must be peak or int16, not \(normalization)") }
    }

    var settings: PreprocessingSettings { normalization == "peak" ? .seedArticle : .authorsRepository }

    func load(progress: ProgressReporter) throws -> PreparedDataset {
        progress.begin("preprocessing")
        let prepared = try PreparedDataset(
            root: URL(fileURLWithPath: data), subset: ESC50Subset(rawValue: subset)!, settings: settings,
            cacheFolder: cache.map { URL(fileURLWithPath: $0) } ?? PreparedDataset.defaultCacheFolder,
            progress: { done, total in progress.update(done: done, total: total) })
        printError("dataset: \(prepared.dataset.clips.count) clips, \(prepared.classNames.count) classes, folds \(prepared.dataset.folds)"
                   + (prepared.cacheWasRebuilt ? " (cache built)" : " (from cache)"))
        return prepared
    }
}

/// The training recipe as flags.
struct RecipeOptions: ParsableArguments {
    @Option(help: "Epochs (doubled with --bc).") var epochs = 150
    @Option(help: "Windows per step.") var batchSize = 64
    @Option(help: "Base learning rate.") var learningRate: Float = 0.01
    @Option(help: "Learning-rate factor at each milestone.") var gamma: Float = 0.1
    @Option(help: "Comma-separated epochs at which the learning rate drops (doubled with --bc).") var milestones = "80,100,120"
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Flag(inversion: .prefixedNo, help: "Nesterov momentum.") var nesterov = true
    @Option(help: "Weight decay.") var weightDecay: Float = 5e-4
    @Option(help: "Epochs of linear learning-rate warm-up.") var warmupEpochs: Double = 0
    @Flag(help: "Between-class learning (mixed clips, KL loss, epochs doubled).") var bc = false
    @Flag(help: "Strong augmentation (random time scale and gain).") var strongAugment = false
    @Option(help: "Seed of the initial weights and of everything random in training.") var seed: UInt64 = 0
    @Option(help: "Validate every N epochs (0: only at the end).") var validateEvery = 1
    @Option(help: "Network variant: official (input 24014) or seed (input 24000, padded 1-D front end).") var variant = "official"
    @Option(help: "Width of fc5 and fc6.") var hiddenUnits = 4096
    @Option(help: "Evaluation scheme: voting (1.5 s windows, 0.2 s hop) or ten-crop.") var evaluation = "voting"

    func validate() throws {
        guard EnvNetConfiguration.Variant(rawValue: variant) != nil else { throw ValidationError("--variant must be official or seed") }
        guard ["voting", "ten-crop"].contains(evaluation) else { throw ValidationError("--evaluation must be voting or ten-crop") }
        guard parsedMilestones != nil else { throw ValidationError("--milestones must be comma-separated whole numbers, like 80,100,120") }
        do {
            try recipe.validate()
        } catch {
            throw ValidationError("\(error)")
        }
    }

    var parsedMilestones: [Int]? {
        let parts = milestones.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.contains(nil) ? nil : parts.compactMap { $0 }
    }

    var recipe: TrainingConfiguration {
        var recipe = TrainingConfiguration()
        recipe.epochs = epochs
        recipe.batchSize = batchSize
        recipe.learningRate = learningRate
        recipe.gamma = gamma
        recipe.milestones = parsedMilestones ?? []
        recipe.momentum = momentum
        recipe.nesterov = nesterov
        recipe.weightDecay = weightDecay
        recipe.warmupEpochs = warmupEpochs
        recipe.betweenClassLearning = bc
        recipe.strongAugmentation = strongAugment
        recipe.seed = seed
        recipe.validationInterval = validateEvery
        return recipe
    }

    var scheme: EvaluationScheme { evaluation == "voting" ? .seedArticle : .authorsRepository }

    func network(classCount: Int) -> EnvNetConfiguration {
        EnvNetConfiguration(variant: EnvNetConfiguration.Variant(rawValue: variant)!, classCount: classCount, hiddenUnits: hiddenUnits)
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train EnvNet on an ESC-50-layout dataset with the paper's recipe.",
        discussion: """
            Trains on every fold but the test fold and validates on it (or, with --cross-validation,
            does so for every fold and reports the mean and spread). Each epoch prints one line and
            appends it to log.jsonl in the run folder (and redraws training_curve.svg there); a
            checkpoint is written atomically after each epoch, and --resume continues a killed run
            from it.

            Examples:
              envnet train --data ESC-50 --fold 5 --output runs/esc50-fold5
              envnet train --data ESC-10-16k --subset esc10 --fold 5 --output runs/esc10
              envnet train --data ESC-50 --cross-validation --bc --output runs/esc50-bc
              envnet train --data ESC-50 --fold 5 --output runs/esc50-fold5 --resume
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var recipe: RecipeOptions
    @Option(help: "The test fold.") var fold = 5
    @Flag(help: "Train and evaluate every fold in turn.") var crossValidation = false
    @Option(help: "The run folder (checkpoints, logs, model, report).") var output: String
    @Flag(help: "Continue from the run folder's checkpoint.") var resume = false

    func run() throws {
        // The run folder first: a read-only or misnamed --output must fail before preprocessing.
        try AtomicFile.checkWritableFolder(URL(fileURLWithPath: output))
        let progress = ProgressReporter()
        let prepared = try data.load(progress: progress)
        let folds = crossValidation ? prepared.dataset.folds : [fold]
        guard folds.allSatisfy(prepared.dataset.folds.contains) else {
            throw ValidationError("fold \(fold) is not in the dataset (folds \(prepared.dataset.folds))")
        }
        var accuracies: [Double] = []
        for testFold in folds {
            let folder = URL(fileURLWithPath: output).appendingPathComponent(crossValidation ? "fold-\(testFold)" : "")
            let result = try TrainingRun(prepared: prepared, testFold: testFold, recipe: recipe, folder: folder, resume: resume,
                                         progress: progress).run()
            accuracies.append(result)
        }
        if crossValidation {
            let mean = accuracies.reduce(0, +) / Double(accuracies.count)
            let spread = accuracies.count > 1
                ? (accuracies.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(accuracies.count - 1)).squareRoot() : 0
            print(String(format: "cross-validation: mean %.2f%%, standard deviation %.2f%% over %d folds (%@)",
                         mean * 100, spread * 100, accuracies.count, accuracies.map { String(format: "%.1f", $0 * 100) }.joined(separator: ", ")))
        }
    }
}

/// One fold's training: network, trainer, validation, final model and report.
struct TrainingRun {
    let prepared: PreparedDataset
    let testFold: Int
    let recipe: RecipeOptions
    let folder: URL
    let resume: Bool
    let progress: ProgressReporter

    /// Trains and evaluates; returns the final clip accuracy on the test fold.
    func run() throws -> Double {
        let (training, test) = prepared.split(testFold: testFold)
        let classNames = prepared.classNames
        let network = EnvNet(configuration: recipe.network(classCount: classNames.count), seed: recipe.seed)
        let trainer = try Trainer(network: network, training: training, classNames: classNames,
                                  configuration: recipe.recipe, runFolder: folder)
        if let checkpoint = trainer.checkpointURL, FileManager.default.fileExists(atPath: checkpoint.path), !resume {
            throw ValidationError("\(folder.path) already holds a checkpoint: add --resume to continue it, or choose another --output")
        }
        if resume, try trainer.resumeIfPossible() {
            printError("resumed \(folder.path) after epoch \(trainer.completedEpochs)")
            for record in trainer.history { print(record.line) }
        }
        let scheme = recipe.scheme
        trainer.validation = ClipEvaluator.validation(on: test, scheme: scheme)
        printError("fold \(testFold): \(training.count) training clips, \(test.count) test clips, \(network.configuration), run folder \(folder.path)")
        let epochs = recipe.recipe.effectiveEpochs
        // The curve is redrawn after every epoch, so a long run can be watched in a browser.
        let curveURL = folder.appendingPathComponent("training_curve.svg")
        var records = trainer.history
        func drawCurve() throws {
            guard !records.isEmpty else { return }
            try AtomicFile.write(Charts.trainingCurve(history: records, title: "EnvNet, fold \(testFold)"), to: curveURL)
        }
        try drawCurve()
        try trainer.run { event in
            switch event {
            case let .step(epoch, step, steps, loss):
                if step == 1 { progress.begin("epoch \(epoch)/\(epochs)") }
                progress.update(done: step, total: steps, detail: String(format: "loss %.4f", loss))
            case let .validating(epoch):
                progress.begin("validating epoch \(epoch)")
            case let .epoch(record):
                print(record.line)
                records.append(record)
                do {
                    try drawCurve()
                } catch {
                    printError("warning: could not draw \(curveURL.path): \(error)")
                }
            }
        }
        let modelURL = folder.appendingPathComponent("model.safetensors")
        try network.save(to: modelURL, classNames: classNames)
        let accuracy = trainer.history.last?.validationAccuracy ?? 0
        print(String(format: "fold %d: clip accuracy %.2f%% (%@); model saved to %@", testFold, accuracy * 100, "\(scheme)", modelURL.path))
        if !records.isEmpty { print("training curve: \(curveURL.path)") }
        return accuracy
    }
}
