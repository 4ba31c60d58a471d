import EnvNetAudio
import EnvNetLayers
import Foundation

/// What the training loop reports while it runs.
public enum TrainingEvent: Sendable {
    /// A step finished: epoch (from 1), step within the epoch (from 1), steps per epoch, the step's loss.
    case step(epoch: Int, step: Int, steps: Int, loss: Float)
    /// Validation of an epoch is starting.
    case validating(epoch: Int)
    /// An epoch finished (and its checkpoint is on disk when the trainer has a run folder).
    case epoch(EpochRecord)
}

/// The training loop: batches, forward, loss, backward, SGD, the learning-rate schedule,
/// validation, a log line per epoch, and a checkpoint per epoch from which a killed run resumes.
///
/// With a run folder, every epoch ends by writing `checkpoint.safetensors` (weights, running
/// statistics, momentum buffers, the epoch log and the recipe) atomically, and appending the
/// epoch's record to `log.jsonl`. ``resumeIfPossible()`` restores all of it; batches, dropout masks
/// and crops are derived from the seed and the epoch, so a resumed run ends with the same weights
/// as an uninterrupted one.
public final class Trainer {
    /// The network being trained.
    public let network: any ClassifierNetwork
    /// The recipe.
    public let configuration: TrainingConfiguration
    /// The class names (saved with the weights).
    public let classNames: [String]
    /// Where checkpoints and logs go; nil keeps everything in memory.
    public let runFolder: URL?
    /// Computes the validation accuracy of the network (in evaluation mode); nil skips validation.
    public var validation: ((any ClassifierNetwork) throws -> Double)?
    /// The optimizer, with its momentum buffers.
    public private(set) var optimizer: SGD
    /// Records of the finished epochs.
    public private(set) var history: [EpochRecord] = []

    /// Settings of the run beyond the recipe (data fingerprint, fold, normalization, evaluation …),
    /// saved in the checkpoint; ``resumeIfPossible()`` refuses a checkpoint whose settings differ,
    /// naming each field that does.
    public var runSettings: [String: String] = [:]
    /// The last layer kept fixed (see ``freeze(through:)``); nil trains every layer.
    public private(set) var frozenThrough: String?
    /// Trains together with the other members of a group (data-parallel); nil trains alone.
    /// Every member runs the same trainer on the same clips; only rank 0 writes the run folder.
    public var dataParallelism: DataParallelism?
    /// Seconds the last epoch's steps waited for gradient sums after their backward passes
    /// (what the overlap did not hide); 0 without ``dataParallelism``.
    public private(set) var lastEpochCommunicationSeconds: Double = 0

    /// Whether this member writes the run folder.
    private var writesRunFolder: Bool { (dataParallelism?.communicator.rank ?? 0) == 0 }

    private let builder: BatchBuilder
    private let prefetcher: BatchPrefetcher
    private var gradient = Tensor.zeros([0])

    /// The checkpoint file inside the run folder.
    public var checkpointURL: URL? { runFolder?.appendingPathComponent("checkpoint.safetensors") }
    /// The per-epoch JSON lines inside the run folder.
    public var logURL: URL? { runFolder?.appendingPathComponent("log.jsonl") }
    /// The finished epochs.
    public var completedEpochs: Int { history.count }

    /// - Parameters:
    ///   - network: the network to train (its current weights are the starting point).
    ///   - training: the training clips (at the network's rate, normalized).
    ///   - classNames: one name per class of the network.
    ///   - configuration: the recipe.
    ///   - runFolder: where checkpoints and logs go (created if needed, checked for writing now,
    ///     before any work, and cleared of temporary files left by killed runs); nil for none.
    /// - Throws: ``TrainingError`` for an invalid recipe, an empty training set or a bad label;
    ///   `FileWriteError` when the run folder cannot be written.
    public init(network: any ClassifierNetwork, training: [LabeledClip], classNames: [String], configuration: TrainingConfiguration, runFolder: URL?) throws {
        try configuration.validate()
        guard !training.isEmpty else { throw TrainingError.emptyTrainingSet }
        let classCount = network.classCount
        guard classNames.count == classCount else {
            throw TrainingError.invalidConfiguration("\(classNames.count) class names for a network of \(classCount) classes")
        }
        if let bad = training.first(where: { $0.label < 0 || $0.label >= classCount }) {
            throw TrainingError.invalidLabel(clip: bad.name, label: bad.label, classCount: classCount)
        }
        if let runFolder {
            try AtomicFile.checkWritableFolder(runFolder)
            // A run killed in the middle of a checkpoint or log write leaves its temporary file.
            for name in ["checkpoint.safetensors", "log.jsonl"] {
                AtomicFile.removeStaleTemporaryFiles(for: runFolder.appendingPathComponent(name))
            }
        }
        self.network = network
        self.configuration = configuration
        self.classNames = classNames
        self.runFolder = runFolder
        // The log-mel CNN fits its feature normalisation to the training clips (once: a network that
        // has it, resumed or fine-tuned, keeps it).
        network.prepareForTraining(on: training)
        optimizer = SGD(learningRate: configuration.learningRate, momentum: configuration.momentum,
                        weightDecay: configuration.weightDecay, nesterov: configuration.nesterov, schedule: configuration.schedule)
        builder = try BatchBuilder(clips: training, classCount: classCount, windowLength: network.inputLength,
                                   sampleRate: network.sampleRate, configuration: configuration,
                                   silenceRule: network.silenceRule(peakThreshold: configuration.silenceThreshold))
        prefetcher = BatchPrefetcher(builder: builder)
    }

    /// Keeps the layers up to and including `layerName` fixed: their weights are not updated and
    /// their BatchNorm statistics not changed (they run in evaluation mode while the rest trains),
    /// and the backward pass stops after them.
    ///
    /// - Parameter layerName: A layer of the network before its last (`fc7`, `fc13`) (for example `pool2` to keep
    ///   the front end, or `fc6` to train only the classifier); nil trains everything.
    /// - Throws: ``TrainingError/invalidConfiguration(_:)`` naming the layers that can be frozen.
    public func freeze(through layerName: String?) throws {
        guard let layerName else { frozenThrough = nil; return }
        let names = network.layerNames
        guard let index = names.firstIndex(of: layerName), index < names.count - 1 else {
            throw TrainingError.invalidConfiguration("cannot freeze through '\(layerName)': choose one of \(names.dropLast().joined(separator: ", "))")
        }
        frozenThrough = layerName
    }

    /// The layer names that are frozen. The spectrogram masks augment the input and have nothing
    /// to learn: freezing the layers after them leaves them on.
    private var frozenLayers: Set<String> {
        let names = network.layerNames
        guard let frozenThrough, let index = names.firstIndex(of: frozenThrough) else { return [] }
        let masks = Set(network.namedLeaves().filter { $0.module is SpectrogramMasking }.map(\.key))
        return Set(names[...index]).subtracting(masks)
    }

    // MARK: - Checkpoints

    private enum Key {
        static let model = "model."
        static let optimizer = "optimizer."
        static let training = "envnet.training"
        static let history = "envnet.history"
        static let steps = "envnet.optimizer_steps"
        static let run = "envnet.run"
    }

    /// Writes the checkpoint of the finished epochs, atomically (rank 0 only, under ``dataParallelism``).
    public func saveCheckpoint() throws {
        guard let url = checkpointURL, writesRunFolder else { return }
        try checkpointFile().write(to: url)
    }

    /// The checkpoint: weights, running statistics, momentum buffers, the epoch log and the recipe.
    /// Nothing in it depends on the number of data-parallel members.
    private func checkpointFile() throws -> SafeTensors {
        var file = network.safeTensors(classNames: classNames)
        file.tensors = Dictionary(uniqueKeysWithValues: file.tensors.map { (Key.model + $0.key, $0.value) })
        for (key, value) in optimizer.state.tensors { file.tensors[Key.optimizer + key] = value }
        let encoder = JSONEncoder.sorted
        file.metadata[Key.training] = String(decoding: try encoder.encode(configuration), as: UTF8.self)
        file.metadata[Key.history] = String(decoding: try encoder.encode(history), as: UTF8.self)
        file.metadata[Key.steps] = String(optimizer.stepCount)
        file.metadata[Key.run] = String(decoding: try encoder.encode(checkedSettings), as: UTF8.self)
        return file
    }

    /// ``runSettings`` with what the trainer itself adds: the frozen layers, and the operand
    /// precision when it is not fp32 (so that checkpoints of fp32 runs made before the option
    /// existed still resume). A resumed run and every data-parallel member must agree on them.
    private var checkedSettings: [String: String] {
        var settings = runSettings
        if let frozenThrough { settings["freeze through"] = frozenThrough }
        let precision = ExecutionOptions.current.matrixPrecision
        if precision != .float32 { settings["precision"] = precision.rawValue }
        return settings
    }

    /// Restores the run folder's checkpoint, if there is one.
    /// - Returns: true when a checkpoint was restored.
    /// - Throws: ``TrainingError/checkpointMismatch(path:reason:)`` when the checkpoint belongs to
    ///   another recipe or network; ``SafeTensorsError`` when it is damaged.
    ///
    /// Under ``dataParallelism`` every member calls it: rank 0 reads the checkpoint and sends it
    /// to the others, so only rank 0 needs to see the run folder, and any number of members
    /// resumes any checkpoint.
    @discardableResult
    public func resumeIfPossible() throws -> Bool {
        let file: SafeTensors
        // Under dataParallelism only rank 0 needs a run folder; the others receive its checkpoint.
        let url = checkpointURL ?? URL(fileURLWithPath: "checkpoint.safetensors")
        if let group = dataParallelism?.communicator {
            // The first byte says what follows: 0 no checkpoint, 1 a checkpoint, 2 rank 0 failed.
            var bytes: [UInt8] = []
            var failure: Error?
            if group.rank == 0 {
                guard checkpointURL != nil else {
                    throw TrainingError.invalidConfiguration("rank 0 of a data-parallel job needs a run folder to resume from")
                }
                do {
                    bytes = FileManager.default.fileExists(atPath: url.path) ? [1] + [UInt8](try Data(contentsOf: url)) : [0]
                    if bytes[0] == 1 { _ = try SafeTensors.decode(Data(bytes.dropFirst()), source: url.path) }
                } catch {
                    failure = error
                    bytes = [2]
                }
            }
            do {
                try group.broadcast(&bytes, from: 0)
            } catch {
                throw TrainingError.dataParallel(epoch: 0, step: 0, reason: "sending the checkpoint: \(error)")
            }
            if let failure { throw failure }
            switch bytes.first {
            case 1: file = try SafeTensors.decode(Data(bytes.dropFirst()), source: url.path)
            case 0: return false
            default: throw mismatch(url, "rank 0 could not read it (see its message)")
            }
        } else {
            guard checkpointURL != nil, FileManager.default.fileExists(atPath: url.path) else { return false }
            file = try SafeTensors.read(from: url)
        }
        return try restore(from: file, url: url)
    }

    private func mismatch(_ url: URL, _ reason: String) -> TrainingError { .checkpointMismatch(path: url.path, reason: reason) }

    private func restore(from file: SafeTensors, url: URL) throws -> Bool {
        func mismatch(_ reason: String) -> TrainingError { .checkpointMismatch(path: url.path, reason: reason) }
        guard let recipeText = file.metadata[Key.training],
              let recipe = try? JSONDecoder().decode(TrainingConfiguration.self, from: Data(recipeText.utf8)) else {
            throw mismatch("the checkpoint has no training recipe")
        }
        var differences = Self.differingFields(configuration, recipe).filter { $0 != "epochs" }  // a resumed run may train longer
        let expectedSettings = checkedSettings
        guard let runText = file.metadata[Key.run],
              let foundSettings = try? JSONDecoder().decode([String: String].self, from: Data(runText.utf8)) else {
            throw mismatch("the checkpoint records no data fingerprint or run settings (written by an older version), so it cannot be checked against this run; start it again in another --output")
        }
        for key in Set(expectedSettings.keys).union(foundSettings.keys).sorted() where expectedSettings[key] != foundSettings[key] {
            differences.append("\(key) (checkpoint: \(foundSettings[key] ?? "none"), now: \(expectedSettings[key] ?? "none"))")
        }
        guard differences.isEmpty else {
            throw mismatch("it was made under other settings: \(differences.joined(separator: "; ")); use the same flags, or another --output")
        }
        guard let historyText = file.metadata[Key.history],
              let records = try? JSONDecoder().decode([EpochRecord].self, from: Data(historyText.utf8)) else {
            throw mismatch("the checkpoint has no epoch log")
        }
        var model: [String: Tensor] = [:], optimizerTensors: [String: Tensor] = [:]
        for (key, value) in file.tensors {
            if key.hasPrefix(Key.model) { model[String(key.dropFirst(Key.model.count))] = value }
            if key.hasPrefix(Key.optimizer) { optimizerTensors[String(key.dropFirst(Key.optimizer.count))] = value }
        }
        do {
            try network.loadStateDictionary(model, strict: true)
        } catch {
            throw mismatch("its weights do not fit this network: \(error)")
        }
        optimizer.state = SGDState(tensors: optimizerTensors,
                                   scalars: ["step_count": Double(file.metadata[Key.steps] ?? "0") ?? 0, "epoch": Double(records.count)])
        history = records
        try writeLog()
        return true
    }

    /// The names of the recipe fields whose values differ, with both values.
    static func differingFields(_ now: TrainingConfiguration, _ checkpoint: TrainingConfiguration) -> [String] {
        func fields(_ recipe: TrainingConfiguration) -> [String: String] {
            guard let data = try? JSONEncoder.sorted.encode(recipe),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
            return object.mapValues { value in
                (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]))
                    .map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
            }
        }
        let (a, b) = (fields(now), fields(checkpoint))
        return Set(a.keys).union(b.keys).sorted().compactMap { key in
            guard a[key] != b[key] else { return nil }
            return key == "epochs" ? key : "\(key) (checkpoint: \(b[key] ?? "none"), now: \(a[key] ?? "none"))"
        }
    }

    private func writeLog() throws {
        guard let url = logURL, writesRunFolder else { return }
        let encoder = JSONEncoder.sorted
        let lines = try history.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        try AtomicFile.write(lines.map { $0 + "\n" }.joined(), to: url)
    }

    // MARK: - Training

    /// Trains the epochs not yet finished.
    /// - Parameter events: called on the training thread after every step and epoch.
    /// - Returns: the records of all finished epochs.
    /// - Throws: ``TrainingError/diverged(epoch:step:loss:checkpoint:)`` when the loss stops being
    ///   finite (the last checkpoint stays as it was); errors of checkpoint writing and validation.
    @discardableResult
    public func run(events: (TrainingEvent) -> Void = { _ in }) throws -> [EpochRecord] {
        let epochs = configuration.effectiveEpochs
        let batch = configuration.batchSize
        let clipCount = builder.clips.count
        let steps = (clipCount + batch - 1) / batch
        let group = dataParallelism?.communicator
        let rank = group?.rank ?? 0, size = group?.size ?? 1
        let frozenKeys = frozenLayers
        let trainableParameters = network.namedParameters().filter { !frozenKeys.contains(String($0.key.prefix { $0 != "." })) }
        var buckets: GradientBuckets?
        if let dataParallelism, let group {
            try startDataParallel(group, clipCount: clipCount)
            buckets = GradientBuckets(parameters: trainableParameters.map(\.parameter), communicator: group,
                                      bucketBytes: dataParallelism.bucketBytes)
        }
        let statistics = group.map { SynchronizedBatchStatistics(communicator: $0) }
        network.synchronizeBatchStatistics(statistics)
        defer { network.synchronizeBatchStatistics(nil) }
        while history.count < epochs {
            let epoch = history.count  // from 0
            let started = DispatchTime.now().uptimeNanoseconds
            network.train()
            let frozen = frozenLayers
            for leaf in network.namedLeaves() where frozen.contains(leaf.key) { leaf.module.eval() }
            let trainable = trainableParameters
            let order = builder.order(epoch: epoch)
            var lossTotal: Double = 0, correct = 0
            var buildSeconds: Double = 0, waitSeconds: Double = 0
            buckets?.resetWaitTime()
            // The global batch of a step, and this member's share of it (all of it when alone).
            func globalRange(ofStep step: Int) -> Range<Int> { step * batch..<Swift.min(clipCount, (step + 1) * batch) }
            func shareRange(ofStep step: Int) -> Range<Int> {
                let global = globalRange(ofStep: step)
                let share = DataParallelism.share(of: global.count, rank: rank, size: size)
                return global.lowerBound + share.lowerBound..<global.lowerBound + share.upperBound
            }
            prefetcher.request(indices: order[shareRange(ofStep: 0)], epoch: epoch, firstPosition: shareRange(ofStep: 0).lowerBound)
            defer { prefetcher.finish() }
            for step in 0..<steps {
                let share = shareRange(ofStep: step), globalCount = globalRange(ofStep: step).count
                optimizer.epoch = Double(epoch) + Double(step) / Double(steps)
                let (current, waited) = prefetcher.take()
                waitSeconds += waited
                buildSeconds += current.buildSeconds
                if step + 1 < steps { prefetcher.request(indices: order[shareRange(ofStep: step + 1)], epoch: epoch, firstPosition: shareRange(ofStep: step + 1).lowerBound) }
                let input = current.input, targets = current.targets, labels = current.labels
                setDropoutStreams(epoch: epoch, firstPosition: share.lowerBound)
                group?.setActivity("epoch \(epoch + 1), step \(step + 1)")
                func failed(_ reason: String) -> TrainingError { .dataParallel(epoch: epoch + 1, step: step + 1, reason: reason) }
                network.zeroGradients()
                let logits = network(input)
                var loss = configuration.betweenClassLearning
                    ? Losses.klDivergence(logits: logits, targets: targets, gradient: &gradient)
                    : Losses.softmaxCrossEntropy(logits: logits, labels: labels, gradient: &gradient)
                let predictions = logits.argmax(axis: 1).indices
                var stepCorrect = zip(predictions, labels).filter { $0 == $1 }.count
                if let group {
                    // The global batch's loss and hits, before the backward pass: every member then
                    // sees the same loss and stops at the same step when it is not finite.
                    var sums = [Double(loss) * Double(share.count), Double(stepCorrect)]
                    do { try group.allreduceSum(&sums) } catch { throw failed("summing the losses: \(error)") }
                    loss = Float(sums[0] / Double(globalCount))
                    stepCorrect = Int(sums[1])
                    // The gradient of this share's part of the global mean loss.
                    gradient *= Float(share.count) / Float(globalCount)
                }
                guard loss.isFinite else {
                    throw TrainingError.diverged(epoch: epoch + 1, step: step + 1, loss: loss,
                                                 checkpoint: history.isEmpty ? nil : checkpointURL?.path)
                }
                if let buckets {
                    do {
                        _ = try buckets.reduce { network.backward(gradient, stoppingAfter: frozenThrough) }
                    } catch {
                        throw failed("summing the gradients: \(error)")
                    }
                    if let failure = statistics?.failure { throw failed("synchronising BatchNorm: \(failure)") }
                } else {
                    _ = network.backward(gradient, stoppingAfter: frozenThrough)
                }
                optimizer.step(parameters: trainable)
                // A finite loss does not prove finite weights (a huge gradient, a degenerate batch
                // statistic): one pass over them costs about 1 % of a step, and a NaN model is never saved.
                if let tensor = Self.firstNonFiniteTensor(in: network) {
                    throw TrainingError.nonFiniteWeights(epoch: epoch + 1, step: step + 1, tensor: tensor,
                                                         checkpoint: history.isEmpty ? nil : checkpointURL?.path)
                }
                if let dataParallelism, let group, dataParallelism.checksumInterval > 0, optimizer.stepCount % dataParallelism.checksumInterval == 0 {
                    try compareChecksums(group, epoch: epoch + 1, step: step + 1)
                }
                lossTotal += Double(loss) * Double(globalCount)
                correct += stepCorrect
                events(.step(epoch: epoch + 1, step: step + 1, steps: steps, loss: loss))
            }
            var validationAccuracy: Double?
            let interval = configuration.validationInterval
            if let validation, (interval > 0 && (epoch + 1) % interval == 0) || epoch + 1 == epochs {
                events(.validating(epoch: epoch + 1))
                group?.setActivity("validation after epoch \(epoch + 1)")
                network.eval()
                validationAccuracy = try validation(network)
                network.train()
                for leaf in network.namedLeaves() where frozen.contains(leaf.key) { leaf.module.eval() }
            }
            let record = EpochRecord(
                epoch: epoch + 1, learningRate: Double(configuration.schedule.learningRate(base: configuration.learningRate, epoch: Double(epoch))),
                loss: lossTotal / Double(clipCount), trainAccuracy: Double(correct) / Double(clipCount),
                validationAccuracy: validationAccuracy,
                seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9,
                preparationSeconds: buildSeconds, batchWaitSeconds: waitSeconds)
            lastEpochCommunicationSeconds = buckets?.waitSeconds ?? 0
            if let group { try compareChecksums(group, epoch: epoch + 1, step: steps) }
            history.append(record)
            try saveCheckpoint()
            try writeLog()
            events(.epoch(record))
        }
        network.eval()
        return history
    }

    /// Checks, before the first step, that every member trains the same thing from the same state.
    private func startDataParallel(_ group: any Communicator, clipCount: Int) throws {
        func failed(_ reason: String) -> TrainingError { .dataParallel(epoch: history.count + 1, step: 0, reason: reason) }
        let batch = configuration.batchSize
        // A batch of fewer samples than members would leave a member without work (and a
        // BatchNorm without its values): refused here, before any work. Other uneven batches are
        // split with one sample more on the first members.
        let smallest = clipCount % batch == 0 ? Swift.min(batch, clipCount) : clipCount % batch
        guard smallest >= group.size else {
            throw failed("a batch of \(smallest) clips (the \(clipCount % batch == 0 ? "batch size" : "last batch of each epoch")) cannot be shared by \(group.size) ranks; use at most \(smallest) ranks or another --batch-size")
        }
        // The recipe, the run settings, the clips and the starting point, as one checksum.
        var hasher = FNV1a()
        hasher.combine(String(decoding: (try? JSONEncoder.sorted.encode(configuration)) ?? Data(), as: UTF8.self))
        hasher.combine(checkedSettings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n"))
        hasher.combine("\(clipCount) \(history.count) \(optimizer.stepCount) \(frozenThrough ?? "-")")
        for clip in builder.clips { hasher.combine("\(clip.name) \(clip.label) \(clip.samples.count)") }
        let differing: [Int]
        do { differing = try group.ranksDiffering(from: hasher.value) } catch { throw failed("comparing the ranks' settings: \(error)") }
        guard differing.isEmpty else {
            throw failed("rank\(differing.count > 1 ? "s" : "") \(differing.map(String.init).joined(separator: ", ")) \(differing.count > 1 ? "have" : "has") other settings, clips or epochs done than rank 0 (the same data and flags on every rank, and --resume on all or none)")
        }
        try compareChecksums(group, epoch: history.count + 1, step: 0)
    }

    /// Stops with an error naming the step when the members' parameters differ.
    private func compareChecksums(_ group: any Communicator, epoch: Int, step: Int) throws {
        let differing: [Int]
        do { differing = try group.ranksDiffering(from: network.parameterChecksum()) } catch {
            throw TrainingError.dataParallel(epoch: epoch, step: step, reason: "comparing parameter checksums: \(error)")
        }
        guard differing.isEmpty else {
            throw TrainingError.dataParallel(epoch: epoch, step: step, reason: "the parameters of rank\(differing.count > 1 ? "s" : "") \(differing.map(String.init).joined(separator: ", ")) differ from rank 0's")
        }
    }

    /// The name of the first parameter or buffer holding a NaN or an infinity, if any.
    static func firstNonFiniteTensor(in network: any ClassifierNetwork) -> String? {
        func finite(_ tensor: Tensor) -> Bool {
            tensor.withUnsafeBufferPointer { buffer in
                // x * 0 is 0 for every finite x and NaN for NaN or an infinity, so the sum cannot overflow.
                var sum: Float = 0
                for value in buffer { sum += value * 0 }
                return sum.isFinite
            }
        }
        for (key, parameter) in network.namedParameters() where !finite(parameter.value) { return key }
        for (key, buffer) in network.namedBuffers() where !finite(buffer.value) { return key }
        return nil
    }

    /// Keys every sample's dropout masks by the seed, the epoch, the layer and the sample's
    /// position in the epoch, so that a resumed epoch draws the same masks and a sample's mask
    /// does not depend on the batch it is trained in, nor on how a batch is split over processes.
    /// - Parameters:
    ///   - epoch: The epoch, from 0.
    ///   - firstPosition: The position in the epoch of the batch's first sample.
    func setDropoutStreams(epoch: Int, firstPosition: Int) {
        for (layer, dropout) in network.randomLayers.enumerated() {
            dropout.sampleStreams = Dropout.SampleStreams(seed: configuration.seed,
                                                          firstStream: Self.dropoutStream(layer: layer, epoch: epoch, position: firstPosition))
        }
    }

    /// The stream of one sample's mask in dropout layer `layer`: `0x44` (D) in the top byte, the
    /// layer, the epoch, then the position (fewer than 2^28 samples per epoch).
    static func dropoutStream(layer: Int, epoch: Int, position: Int) -> UInt64 {
        0x44 << 56 | UInt64(layer & 0xFF) << 48 | UInt64(epoch & 0xF_FFFF) << 28 | UInt64(position & 0xFFF_FFFF)
    }
}

/// FNV-1a over strings: a checksum of settings that every member computes the same way.
struct FNV1a {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    mutating func combine(_ text: String) {
        for byte in text.utf8 { value = (value ^ UInt64(byte)) &* 0x100_0000_01B3 }
        value = (value ^ 0xFF) &* 0x100_0000_01B3
    }
}

extension JSONEncoder {
    /// An encoder with sorted keys (the same bytes on every member).
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }
}
