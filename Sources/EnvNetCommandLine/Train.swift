import EnvNetCharts
import ArgumentParser
import EnvNetModel
import Foundation

/// Options shared by the commands that read a dataset.
struct DataOptions: ParsableArguments {
    @Option(help: "The dataset: a folder (one subfolder per class, ESC-50, UrbanSound8K, or a folder with manifest.csv) or a manifest CSV (path,label[,fold][,group]).")
    var data: String
    @Option(help: "The layout: folders, manifest, esc50 or urbansound8k (default: detected from the folder).") var layout: String?
    @Option(help: "For the esc50 layout: esc50 (all classes) or esc10 (the ESC-10 subset, renumbered 0-9).") var subset: String = "esc50"
    @Option(help: "Folds to draw (stratified by class, groups kept together) when the dataset has none of its own. Default: 5 for training; the model's own for evaluate.")
    var folds: Int?
    @Option(help: "Normalization: peak (divide by max |x|, the seed article) or int16 (divide by 32768 and trim zeros, the authors' repository). Default: peak for training; the model's own for evaluate.")
    var normalization: String?
    @Option(help: "Folder of the preprocessing cache (default: ~/.cache/envnet).") var cache: String?

    func validate() throws {
        guard ESC50Subset(rawValue: subset) != nil else { throw ValidationError("--subset must be esc50 or esc10, not \(subset)") }
        if let normalization {
            guard ["peak", "int16"].contains(normalization) else { throw ValidationError("--normalization must be peak or int16, not \(normalization)") }
        }
        if let layout {
            guard DatasetLayout(rawValue: layout) != nil else {
                throw ValidationError("--layout must be one of \(DatasetLayout.allCases.map(\.rawValue).joined(separator: ", ")), not \(layout)")
            }
        }
        if let folds { guard (2...100).contains(folds) else { throw ValidationError("--folds must be between 2 and 100, got \(folds)") } }
    }

    static func settings(normalization: String, sampleRate: Int = EnvNetConfiguration.sampleRate) -> PreprocessingSettings {
        var settings: PreprocessingSettings = normalization == "int16" ? .authorsRepository : .seedArticle
        settings.sampleRate = sampleRate
        return settings
    }

    /// The dataset's metadata and file tree, without decoding audio.
    /// - Parameters:
    ///   - seed: The seed of drawn folds.
    ///   - defaultFolds: The fold count when `--folds` is not given.
    func dataset(seed: UInt64, defaultFolds: Int = 5) throws -> AudioDataset {
        try AudioDataset.load(from: URL(fileURLWithPath: data), layout: layout.flatMap(DatasetLayout.init(rawValue:)),
                              subset: ESC50Subset(rawValue: subset)!, foldCount: folds ?? defaultFolds, seed: seed)
    }

    /// Reads every header and prints the summary (the last check before long work), then decodes
    /// and preprocesses the clips through the cache.
    func prepare(_ dataset: AudioDataset, settings: PreprocessingSettings, progress: ProgressReporter) throws -> PreparedDataset {
        // An unwritable cache would fail only after the headers are read: check it first.
        let cacheFolder = cache.map { URL(fileURLWithPath: $0) } ?? CommandEnvironment.current.cacheFolder
        try AtomicFile.checkWritableFolder(cacheFolder)
        progress.begin("reading headers")
        let summary = try dataset.summary { done, total in progress.update(done: done, total: total) }
        printError(summary.description)
        // Upsampling adds no content: EnvNet-v2 on 16 kHz recordings hears nothing above 8 kHz.
        let below = summary.sampleRates.filter { $0.key < settings.sampleRate }
        if let lowest = below.keys.min() {
            let count = below.values.reduce(0, +), total = summary.sampleRates.values.reduce(0, +)
            printError("warning: \(count) of \(total) clips are recorded below \(settings.sampleRate) Hz (from \(lowest) Hz) and are upsampled; "
                       + "they hold nothing above \(lowest / 2) Hz of the band the network takes")
        }
        progress.begin("preprocessing")
        let prepared = try PreparedDataset(
            dataset: dataset, settings: settings,
            cacheFolder: cacheFolder,
            progress: { done, total in progress.update(done: done, total: total) })
        printError("preprocessed \(prepared.samples.count) clips (\(settings))" + (prepared.cacheWasRebuilt ? ", cache built" : ", from cache"))
        return prepared
    }

    /// The dataset with the given normalization (peak when nil), summarised and preprocessed.
    func load(progress: ProgressReporter, seed: UInt64 = 0) throws -> PreparedDataset {
        try prepare(try dataset(seed: seed), settings: Self.settings(normalization: normalization ?? "peak"), progress: progress)
    }
}

/// The training recipe as flags: a named preset (``RecipePreset``), and single flags over it.
struct RecipeOptions: ParsableArguments {
    @Option(name: .customLong("recipe"), help: ArgumentHelp(
        "The preset: seed (150 epochs, lr 0.01, x0.1 at 80/100/120, peak normalization, voting) or authors (bc_learning_sound's numbers for the dataset and network, int16 normalization with zero trimming, 10-crop testing).",
        valueName: "seed|authors"))
    var recipeName = "seed"
    @Option(help: ArgumentHelp("The network: envnet (16 kHz), envnet-v2 (44.1 kHz) or logmel-cnn (22.05 kHz log-mel features). Default: envnet, or the --init-from model's.", valueName: "envnet|envnet-v2|logmel-cnn"))
    var network: String?
    @Option(help: "Epochs (default: the recipe's, doubled with --bc; a value given here is taken as given).") var epochs: Int?
    @Option(help: "Windows per step (default 64).") var batchSize: Int?
    @Option(help: "Base learning rate (default: the recipe's).") var learningRate: Float?
    @Option(help: "Learning-rate factor at each milestone.") var gamma: Float = 0.1
    @Option(help: "Comma-separated epochs at which the learning rate drops, taken as given (default: the recipe's).") var milestones: String?
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Flag(inversion: .prefixedNo, help: "Nesterov momentum.") var nesterov = true
    @Option(help: "Weight decay.") var weightDecay: Float = 5e-4
    @Option(help: "Epochs of learning-rate warm-up (default: the recipe's; linear from 10 %, or 10 % throughout as the authors' recipes do).")
    var warmupEpochs: Double?
    @Flag(help: "Between-class learning (mixed clips, KL loss; the recipe's epochs doubled).") var bc = false
    @Flag(help: "Strong augmentation (random time scale and gain).") var strongAugment = false
    @Option(help: "Seed of the initial weights and of everything random in training.") var seed: UInt64 = 0
    @Option(help: "Validate every N epochs (0: only at the end; default 1).") var validateEvery: Int?
    // Optional, so that --init-from can tell a given value (refused when it differs from the
    // model's) from the default (the model's own).
    @Option(help: "EnvNet variant: official (input 24014) or seed (input 24000, padded 1-D front end). Default: official, or the --init-from model's.")
    var variant: String?
    @Option(help: "Width of the hidden fully connected layers (fc5/fc6, fc11/fc12, the log-mel CNN's fc3). Default: 4096 (5000 for logmel-cnn), or the --init-from model's.") var hiddenUnits: Int?
    @Option(help: "Evaluation scheme: voting (the network's windows and hop: 1.5 s and 0.2 s for EnvNet) or ten-crop (default: the recipe's).") var evaluation: String?

    func validate() throws {
        guard RecipePreset.Name(rawValue: recipeName) != nil else { throw ValidationError("--recipe must be seed or authors, not \(recipeName)") }
        if let network { guard NetworkArchitecture(rawValue: network) != nil else { throw ValidationError("--network must be envnet, envnet-v2 or logmel-cnn, not \(network)") } }
        guard EnvNetConfiguration.Variant(rawValue: variant ?? "official") != nil else { throw ValidationError("--variant must be official or seed") }
        if variant != nil, let network, network != NetworkArchitecture.envnet.rawValue { throw ValidationError("--variant applies to EnvNet only, not to --network \(network)") }
        if network == NetworkArchitecture.logMelCNN.rawValue, recipeName == RecipePreset.Name.authors.rawValue {
            throw ValidationError("--recipe authors has no log-mel CNN (bc_learning_sound trains EnvNet and EnvNet-v2 only); use --recipe seed")
        }
        if let evaluation { guard ["voting", "ten-crop"].contains(evaluation) else { throw ValidationError("--evaluation must be voting or ten-crop") } }
        if milestones != nil, parsedMilestones == nil { throw ValidationError("--milestones must be comma-separated whole numbers, like 80,100,120") }
        if let epochs { try Limits.check(epochs, in: Limits.epochs, option: "--epochs") }
        if let batchSize { try Limits.check(batchSize, in: Limits.batchSize, option: "--batch-size") }
        for milestone in parsedMilestones ?? [] { try Limits.check(milestone, in: 0...Limits.epochs.upperBound, option: "--milestones") }
        if let validateEvery { try Limits.check(validateEvery, in: 0...Limits.epochs.upperBound, option: "--validate-every") }
        if let learningRate { try Limits.check(Double(learningRate), in: 1e-12...1e3, option: "--learning-rate") }
        try Limits.check(Double(gamma), in: 1e-12...1e3, option: "--gamma")
        try Limits.check(Double(momentum), in: 0...0.999_999, option: "--momentum")
        try Limits.check(Double(weightDecay), in: 0...1, option: "--weight-decay")
        if let warmupEpochs { try Limits.check(warmupEpochs, in: 0...Double(Limits.epochs.upperBound), option: "--warmup-epochs") }
        if let hiddenUnits {
            try Limits.check(hiddenUnits, in: Limits.hiddenUnits, option: "--hidden-units")
        }
        let architecture = network.flatMap(NetworkArchitecture.init(rawValue:)) ?? .envnet
        let width = hiddenUnits ?? Self.defaultHiddenUnits(architecture)
        try Limits.checkMemory(Limits.trainingBytes(network: architecture, hiddenUnits: width, batchSize: batchSize ?? 64),
                               for: "training \(architecture) with --hidden-units \(width) and --batch-size \(batchSize ?? 64)")
        // Every dataset's preset with these flags must be a valid recipe.
        do {
            for kind in RecipePreset.DatasetKind.allCases {
                let configuration = configuration(preset: preset(network: architecture, dataset: kind))
                try configuration.validate()
                if let warmupEpochs, warmupEpochs > Double(configuration.effectiveEpochs) {
                    throw ValidationError("--warmup-epochs \(warmupEpochs) exceeds the \(configuration.effectiveEpochs) epochs of the run")
                }
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("\(error)")
        }
    }

    var parsedMilestones: [Int]? {
        guard let milestones else { return nil }
        let parts = milestones.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.contains(nil) ? nil : parts.compactMap { $0 }
    }

    /// The named preset for a network and dataset.
    func preset(network: NetworkArchitecture, dataset: RecipePreset.DatasetKind) -> RecipePreset {
        RecipePreset.named(RecipePreset.Name(rawValue: recipeName) ?? .seed, network: network, dataset: dataset)
    }

    /// The preset with the flags given over it.
    func configuration(preset: RecipePreset) -> TrainingConfiguration {
        var recipe = preset.configuration(betweenClassLearning: bc, strongAugmentation: strongAugment, seed: seed)
        if let epochs {
            recipe.epochs = epochs
            recipe.milestones = preset.milestones.epochs(of: epochs, doubled: false)
        }
        if let milestones = parsedMilestones { recipe.milestones = milestones }
        if let batchSize { recipe.batchSize = batchSize }
        if let learningRate { recipe.learningRate = learningRate }
        if let warmupEpochs {
            recipe.warmupEpochs = warmupEpochs
            recipe.warmupStyle = preset.warmupEpochs > 0 ? .constant : .linear
        }
        recipe.gamma = gamma
        recipe.momentum = momentum
        recipe.nesterov = nesterov
        recipe.weightDecay = weightDecay
        recipe.validationInterval = validateEvery ?? 1
        return recipe
    }

    /// The flags given over the preset, for the line printed at start.
    var overrides: [String] {
        var result: [String] = []
        if let epochs { result.append("--epochs \(epochs)") }
        if let milestones { result.append("--milestones \(milestones)") }
        if let batchSize { result.append("--batch-size \(batchSize)") }
        if let learningRate { result.append("--learning-rate \(learningRate)") }
        if let warmupEpochs { result.append("--warmup-epochs \(warmupEpochs)") }
        if let evaluation { result.append("--evaluation \(evaluation)") }
        if gamma != 0.1 { result.append("--gamma \(gamma)") }
        if momentum != 0.9 { result.append("--momentum \(momentum)") }
        if !nesterov { result.append("--no-nesterov") }
        if weightDecay != 5e-4 { result.append("--weight-decay \(weightDecay)") }
        return result
    }

    /// The evaluation scheme: the flag's, else the preset's.
    func scheme(preset: RecipePreset) -> EvaluationScheme {
        switch evaluation {
        case "voting": return .probabilityVoting(network: preset.network)
        case "ten-crop": return .authorsRepository
        default: return preset.evaluation
        }
    }

    /// The network's sizes.
    func network(_ architecture: NetworkArchitecture, classCount: Int) -> NetworkConfiguration {
        switch architecture {
        case .envnet:
            return .envnet(EnvNetConfiguration(variant: EnvNetConfiguration.Variant(rawValue: variant ?? "official")!, classCount: classCount,
                                               hiddenUnits: hiddenUnits ?? 4096))
        case .envnetV2:
            return .envnetV2(EnvNetV2Configuration(classCount: classCount, hiddenUnits: hiddenUnits ?? 4096))
        case .logMelCNN:
            return .logMelCNN(LogMelCNNConfiguration(classCount: classCount, hiddenUnits: hiddenUnits ?? 5000))
        }
    }

    /// The hidden width when --hidden-units is not given: 4096 for EnvNet and EnvNet-v2, 5000 for the log-mel CNN.
    static func defaultHiddenUnits(_ architecture: NetworkArchitecture) -> Int { architecture == .logMelCNN ? 5000 : 4096 }
}

/// The training figures in one line: what the run will do, after the preset and the flags.
func describe(_ recipe: TrainingConfiguration) -> String {
    let milestones = recipe.effectiveMilestones.map(String.init).joined(separator: ", ")
    var parts = ["\(recipe.effectiveEpochs) epochs", "lr \(recipe.learningRate)", "x\(recipe.gamma) at epochs \(milestones.isEmpty ? "none" : milestones)"]
    if recipe.warmupEpochs > 0 {
        parts.append(String(format: "%g warm-up epochs", recipe.warmupEpochs) + ((recipe.warmupStyle ?? .linear) == .constant ? " at lr x0.1" : " rising from lr x0.1"))
    }
    parts.append("batch \(recipe.batchSize)")
    parts.append("weight decay \(recipe.weightDecay)")
    parts.append("\(recipe.nesterov ? "Nesterov " : "")momentum \(recipe.momentum)")
    if recipe.betweenClassLearning { parts.append("BC learning") }
    if recipe.strongAugmentation { parts.append("strong augmentation") }
    parts.append("seed \(recipe.seed)")
    return parts.joined(separator: ", ")
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train EnvNet on a dataset of your own sounds, ESC-50 or UrbanSound8K, with the paper's recipe.",
        discussion: """
            The dataset is a folder with one subfolder per class, a manifest CSV, ESC-50 or \
            UrbanSound8K, in WAV, FLAC, Ogg Vorbis, Opus, MP3, AIFF/AIFC, CAF or W64 at any rate. \
            Before any long work it prints the dataset's classes, folds, duration, formats and rates. \
            Trains on every fold but the test fold and validates on it (or, with --cross-validation, \
            does so for every fold and reports the mean and spread). Each epoch prints one line and \
            appends it to log.jsonl in the run folder (and redraws training_curve.svg there); a \
            checkpoint is written atomically after each epoch, and --resume continues a killed run \
            from it (refused when the data, fold or any setting differs).

            The model file records its classes, preprocessing, evaluation scheme, recipe and the \
            data's fingerprint, so evaluate and predict need no flag to use it. --init-from starts \
            from a trained model (fine-tuning); add --freeze-through pool2 to keep its front end.

            Examples:
              envnet train --data my-sounds --output runs/my-sounds
              envnet train --data ESC-50 --fold 5 --output runs/esc50-fold5
              envnet train --data ESC-10-16k --subset esc10 --fold 5 --output runs/esc10
              envnet train --data UrbanSound8K --cross-validation --output runs/us8k
              envnet train --data mine --init-from base.safetensors --output tuned
              envnet train --data ESC-50 --fold 5 --output runs/esc50-fold5 --resume
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var recipe: RecipeOptions
    @Option(help: "The test fold (default 5, or the highest fold when there are fewer).") var fold: Int?
    @Flag(help: "Train and evaluate every fold in turn.") var crossValidation = false
    @Flag(help: "Train on every fold, holding none out (no validation): the model to ship once the held-out figures are known.")
    var allFolds = false
    @Option(help: "How model.safetensors stores its weights: f32 (exact) or f16 (half the size; loading widens it).") var storage = "f32"
    @Option(help: "The run folder (checkpoints, logs, model, report).") var output: String
    @Flag(help: "Continue from the run folder's checkpoint.") var resume = false
    @Option(help: "Start from a trained model: every layer keeps its weights but the classifier (fc7), rebuilt for this dataset's classes.")
    var initFrom: String?
    @Option(help: "With --init-from: keep the layers up to this one fixed, BatchNorm statistics included (for example pool2 for the front end).")
    var freezeThrough: String?
    @Option(help: "A credit line for the data, recorded in the model (ESC-50 and UrbanSound8K have one by default).") var credit: String?
    @OptionGroup var precision: PrecisionOption

    func validate() throws {
        if freezeThrough != nil, initFrom == nil { throw ValidationError("--freeze-through needs --init-from (a frozen layer must start trained)") }
        if crossValidation, fold != nil { throw ValidationError("--fold and --cross-validation exclude each other") }
        if let fold { try Limits.check(fold, in: 1...100, option: "--fold") }
        if allFolds, fold != nil || crossValidation { throw ValidationError("--all-folds excludes --fold and --cross-validation") }
        // An option that would do nothing is refused rather than silently ignored.
        if allFolds, recipe.validateEvery != nil { throw ValidationError("--validate-every does nothing with --all-folds (no fold is held out to validate on)") }
        guard SafeTensors.StorageType(rawValue: storage) != nil else { throw ValidationError("--storage must be f32 or f16, not \(storage)") }
    }

    func run() throws { try run(distribution: nil) }

    /// Trains alone, or as a member of a data-parallel job (``DistributedTrain``).
    func run(distribution: Distribution?) throws {
        precision.apply()
        // The run folder first: a read-only or misnamed --output must fail before preprocessing.
        // In a data-parallel job only rank 0 writes it (the others' machines may not have it).
        if (distribution?.communicator.rank ?? 0) == 0 { try AtomicFile.checkWritableFolder(URL(fileURLWithPath: output)) }
        let progress = ProgressReporter()
        let source = try initFrom.map { path in try ModelFile.load(from: URL(fileURLWithPath: path)) }
        if let source, let freezeThrough {
            let names = source.network.layerNames
            guard names.dropLast().contains(freezeThrough) else {
                throw ValidationError("--freeze-through \(freezeThrough) is not a layer before \(names.last ?? "the output"): choose one of \(names.dropLast().joined(separator: ", "))")
            }
        }
        if let source {
            let model = source.network.networkConfiguration
            if let network = recipe.network, network != model.architecture.rawValue {
                throw ValidationError("--network \(network) differs from the --init-from model's \(model.architecture.rawValue)")
            }
            if let variant = recipe.variant, let modelVariant = model.envnet?.variant, variant != modelVariant.rawValue {
                throw ValidationError("--variant \(variant) differs from the --init-from model's \(modelVariant.rawValue)")
            }
            if let width = recipe.hiddenUnits, width != model.hiddenUnits {
                throw ValidationError("--hidden-units \(width) differs from the --init-from model's \(model.hiddenUnits) (fine-tuning keeps the hidden layers)")
            }
        }
        let architecture = source?.network.architecture ?? recipe.network.flatMap(NetworkArchitecture.init(rawValue:)) ?? .envnet
        if architecture == .logMelCNN, recipe.recipeName == RecipePreset.Name.authors.rawValue {
            throw ValidationError("--recipe authors has no log-mel CNN (bc_learning_sound trains EnvNet and EnvNet-v2 only); use --recipe seed")
        }
        let dataset = try data.dataset(seed: recipe.seed)
        // The preset, the flags over it and the resulting figures, before any long work.
        let preset = recipe.preset(network: architecture, dataset: RecipePreset.DatasetKind(layout: dataset.layout, subset: dataset.subset ?? .esc50))
        let configuration = recipe.configuration(preset: preset)
        printError("recipe: \(preset)" + (recipe.overrides.isEmpty ? "" : "; given: \(recipe.overrides.joined(separator: " "))"))
        printError("training: \(describe(configuration))")
        // Checked before the headers are read and the clips preprocessed: a classifier needs two classes.
        guard dataset.classNames.count >= 2 else {
            throw ValidationError("\(data.data) has \(dataset.classNames.count) class (\(dataset.classNames.map(terminalSafe).joined(separator: ", "))); training needs at least 2")
        }
        let folds: [Int?] = allFolds ? [nil] : crossValidation ? dataset.folds : [fold ?? (dataset.folds.contains(5) ? 5 : dataset.folds.last!)]
        for case let testFold? in folds { try dataset.checkTestFold(testFold) }
        var settings = preset.preprocessing
        if let normalization = data.normalization ?? source.map({ $0.description.preprocessing.normalization == .int16FullScale ? "int16" : "peak" }) {
            settings = DataOptions.settings(normalization: normalization, sampleRate: architecture.sampleRate)
        }
        let fingerprint = try dataset.fingerprint()
        let prepared = try data.prepare(dataset, settings: settings, progress: progress)
        var accuracies: [Double] = []
        for (index, testFold) in folds.enumerated() {
            // --parallel-folds: each rank trains its folds alone (round robin); the others are skipped here.
            if let distribution, distribution.parallelFolds, index % distribution.communicator.size != distribution.communicator.rank {
                accuracies.append(.nan)
                continue
            }
            let folder = URL(fileURLWithPath: output).appendingPathComponent(crossValidation ? "fold-\(testFold!)" : "")
            let result = try TrainingRun(prepared: prepared, fingerprint: fingerprint, testFold: testFold, recipe: configuration,
                                         scheme: recipe.scheme(preset: preset), network: recipe.network(architecture, classCount: prepared.classNames.count),
                                         folder: folder,
                                         resume: resume, progress: progress, source: source.map { ($0.network, initFrom!) },
                                         freezeThrough: freezeThrough, credit: credit, storage: SafeTensors.StorageType(rawValue: storage)!,
                                         distribution: distribution?.parallelFolds == true ? nil : distribution).run()
            accuracies.append(result)
        }
        if let distribution, distribution.parallelFolds {
            // Every rank's accuracies, gathered on every rank (NaN where another rank trained the fold).
            // A rank that finished its folds waits here for the slowest, which may train for hours:
            // no time limit (a rank that dies still ends the job through mpirun).
            distribution.removeTimeLimit()
            let gathered = try distribution.communicator.allgather(accuracies)
            accuracies = folds.indices.map { index in gathered[index % distribution.communicator.size][index] }
            if distribution.communicator.rank != 0 { return }
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

/// The credit line of the public datasets, recorded in models trained on them.
func defaultCredit(for dataset: AudioDataset) -> String? {
    switch dataset.layout {
    case .esc50 where dataset.subset == .esc10:
        return "ESC-10 (Karol J. Piczak, ESC-50, CC BY 3.0; recordings from freesound.org)"
    case .esc50:
        return "ESC-50 (Karol J. Piczak, CC BY-NC 3.0; recordings from freesound.org)"
    case .urbanSound8K:
        return "UrbanSound8K (J. Salamon, C. Jacobus, J. P. Bello, CC BY-NC 3.0; recordings from freesound.org)"
    default:
        return nil
    }
}

/// One fold's training: network, trainer, validation, final model and report.
struct TrainingRun {
    let prepared: PreparedDataset
    let fingerprint: String
    /// The held-out fold; nil trains on every fold.
    let testFold: Int?
    let recipe: TrainingConfiguration
    let scheme: EvaluationScheme
    /// The network to build (unless it starts from `source`).
    let network: NetworkConfiguration
    let folder: URL
    let resume: Bool
    let progress: ProgressReporter
    let source: (network: any ClassifierNetwork, path: String)?
    let freezeThrough: String?
    let credit: String?
    let storage: SafeTensors.StorageType
    /// The data-parallel job this run trains in; nil trains alone.
    var distribution: Distribution? = nil

    /// Trains and evaluates; returns the final clip accuracy on the test fold (0 without one).
    func run() throws -> Double {
        let (training, test) = testFold.map { prepared.split(testFold: $0) } ?? (prepared.clips(inFolds: Set(prepared.dataset.folds)), [])
        let classNames = prepared.classNames
        let network = try source.map { try $0.network.fineTuned(classCount: classNames.count, seed: recipe.seed) }
            ?? self.network.makeNetwork(seed: recipe.seed)
        let rank = distribution?.communicator.rank ?? 0
        let trainer = try Trainer(network: network, training: training, classNames: classNames,
                                  configuration: recipe, runFolder: rank == 0 ? folder : nil)
        try trainer.freeze(through: freezeThrough)
        trainer.runSettings = [
            "data fingerprint": fingerprint, "data layout": prepared.dataset.layout.rawValue,
            "fold": testFold.map(String.init) ?? "none (all folds trained)", "normalization": prepared.settings.description, "evaluation": scheme.description,
            "network": network.networkConfiguration.description,
        ]
        if let source { trainer.runSettings["init from"] = URL(fileURLWithPath: source.path).standardizedFileURL.path }
        if let distribution {
            trainer.dataParallelism = DataParallelism(communicator: distribution.communicator, checksumInterval: distribution.checksumInterval)
        }
        // Only rank 0 writes (and may be the only one to see) the run folder.
        if rank == 0, let checkpoint = trainer.checkpointURL, FileManager.default.fileExists(atPath: checkpoint.path), !resume {
            throw ValidationError("\(folder.path) already holds a checkpoint: add --resume to continue it, or choose another --output")
        }
        if resume {
            if try trainer.resumeIfPossible() {
                printError("resumed \(folder.path) after epoch \(trainer.completedEpochs)")
                for record in trainer.history { print(record.line) }
            } else {
                printError("--resume: \(folder.path) holds no checkpoint yet, so this starts a new run")
            }
        }
        if !test.isEmpty {
            if let group = distribution?.communicator {
                // Each rank evaluates every size-th test clip; the hits are summed.
                let mine = stride(from: group.rank, to: test.count, by: group.size).map { test[$0] }
                let evaluate = ClipEvaluator.validation(on: mine, scheme: scheme)
                trainer.validation = { network in
                    var hits = [mine.isEmpty ? 0 : (try evaluate(network) * Double(mine.count)).rounded()]
                    try group.allreduceSum(&hits)
                    return hits[0] / Double(test.count)
                }
            } else {
                trainer.validation = ClipEvaluator.validation(on: test, scheme: scheme)
            }
        }
        let foldName = testFold.map { "fold \($0)" } ?? "all folds"
        printError("\(foldName): \(training.count) training clips, \(test.count) test clips, \(network.networkConfiguration), run folder \(folder.path)"
                   + (source.map { ", starting from \($0.path)" } ?? "") + (freezeThrough.map { ", frozen through \($0)" } ?? ""))
        let epochs = recipe.effectiveEpochs
        // The curve is redrawn after every epoch, so a long run can be watched in a browser.
        let curveURL = folder.appendingPathComponent("training_curve.svg")
        var records = trainer.history
        func drawCurve() throws {
            guard !records.isEmpty, rank == 0 else { return }
            try AtomicFile.write(Charts.trainingCurve(history: records, title: "\(network.architecture), \(foldName)"), to: curveURL)
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
                print(record.line + (distribution.map { _ in String(format: "  (waited %.2f s for gradient sums)", trainer.lastEpochCommunicationSeconds) } ?? ""))
                records.append(record)
                do {
                    try drawCurve()
                } catch {
                    printError("warning: could not draw \(curveURL.path): \(error)")
                }
            }
        }
        let modelURL = folder.appendingPathComponent("model.safetensors")
        let description = ModelDescription(
            configuration: network.networkConfiguration, classNames: classNames, preprocessing: prepared.settings, evaluation: scheme,
            trainingSilenceThreshold: recipe.silenceThreshold, recipe: recipe,
            dataset: DatasetRecord(layout: prepared.dataset.layout.rawValue, fingerprint: fingerprint, heldOutFold: testFold,
                                   trainingClips: training.count, credit: credit ?? defaultCredit(for: prepared.dataset),
                                   foldCount: prepared.dataset.folds.count, foldsWereDrawn: !prepared.dataset.hasOwnFolds))
        guard rank == 0 else { return trainer.history.last?.validationAccuracy ?? 0 }
        try network.save(to: modelURL, description: description, storage: storage)
        let accuracy = trainer.history.last?.validationAccuracy ?? 0
        if let testFold {
            print(String(format: "fold %d: clip accuracy %.2f%% (%@); model saved to %@", testFold, accuracy * 100, "\(scheme)", modelURL.path))
        } else {
            print("trained on all \(training.count) clips (no fold held out); model saved to \(modelURL.path)")
        }
        if !records.isEmpty { print("training curve: \(curveURL.path)") }
        return accuracy
    }
}
