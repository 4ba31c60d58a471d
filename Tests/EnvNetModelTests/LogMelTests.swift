@testable import EnvNetModel
import Foundation
import Testing

/// The log-mel features against torchaudio's formulas rebuilt from torch.stft and librosa's filter
/// bank (Tools/make_logmel_fixture.py), and the log-mel CNN against PyTorch.
@Suite("Log-mel features and the log-mel CNN")
struct LogMelTests {
    static let fixture: SafeTensors = {
        let url = Bundle.module.url(forResource: "logmel", withExtension: "safetensors", subdirectory: "Fixtures")!
        return try! SafeTensors.read(from: url)
    }()

    static let spectrogram = try! LogMelSpectrogram()

    @Test("The filter bank equals librosa.filters.mel(htk=True, norm=None) within 1e-6")
    func filterBank() throws {
        let reference = Self.fixture.tensors["filters"]!
        #expect(reference.shape == [60, 513])
        let ours = Self.spectrogram.filterBank.flatMap { $0 }
        let difference = zip(ours, reference.scalars).map { abs($0 - Double($1)) }.max()!
        #expect(difference < 1e-6, "largest difference \(difference)")
    }

    /// Within 1e-3 dB wherever the reference is within 60 dB of its maximum, 1e-2 dB elsewhere.
    static func checkDecibels(_ ours: [Float], _ reference: Tensor, _ name: String) {
        let values = reference.scalars
        #expect(ours.count == values.count, "\(name): \(ours.count) values for \(values.count)")
        let maximum = values.max()!
        var near: Float = 0, far: Float = 0
        for (value, expected) in zip(ours, values) {
            let difference = abs(value - expected)
            if expected >= maximum - 60 { near = max(near, difference) } else { far = max(far, difference) }
        }
        #expect(near <= 1e-3, "\(name): \(near) dB within 60 dB of the maximum")
        #expect(far <= 1e-2, "\(name): \(far) dB further down")
    }

    @Test("Each segment's log-mel dB equal the reference (1e-3 dB within 60 dB of the maximum, 1e-2 below)", arguments: 0..<4)
    func segmentDecibels(segment: Int) throws {
        let input = Self.fixture.tensors["segment\(segment).input"]!
        #expect(input.count == 20991)
        let ours = Self.spectrogram.decibels(of: input.scalars)
        Self.checkDecibels(ours, Self.fixture.tensors["segment\(segment).decibels"]!, "segment \(segment)")
    }

    @Test("Deltas equal torchaudio's compute_deltas(win_length=5, replicate) within 1e-5")
    func deltas() throws {
        for segment in 0..<4 {
            let decibels = Self.fixture.tensors["segment\(segment).decibels"]!.scalars.map { ($0 - 40) / 20 }
            let ours = decibels.withUnsafeBufferPointer { LogMelSpectrogram.deltas(of: $0, frames: 41) }
            let reference = Self.fixture.tensors["segment\(segment).deltas"]!.scalars
            let difference = zip(ours, reference).map { abs($0 - $1) }.max()!
            #expect(difference < 1e-5, "segment \(segment): \(difference)")
        }
    }

    @Test("A clip is cut into 20991-sample segments every 10240 samples, each with its own 80 dB floor")
    func clipSegments() throws {
        let clip = Self.fixture.tensors["clip.input"]!.scalars
        let reference = Self.fixture.tensors["clip.decibels"]!
        let segments = Self.spectrogram.segments(of: clip)
        #expect(segments.count == reference.shape[0])
        #expect(Self.spectrogram.segmentStarts(sampleCount: clip.count) == [0, 10240, 20480, 30720])
        for (index, segment) in segments.enumerated() {
            Self.checkDecibels(Self.spectrogram.decibels(of: segment), reference.selecting(axis: 0, index: index).contiguous(), "clip segment \(index)")
        }
        // One segment long, or shorter (centred and zero-padded): one segment.
        #expect(Self.spectrogram.segments(of: Array(clip[..<20991])).count == 1)
        #expect(Self.spectrogram.segments(of: Array(clip[..<5000])).map(\.count) == [20991])
    }

    @Test("Silence is -100 dB everywhere (the 1e-10 floor), below the -70 dB rule; a window shorter than half a frame is padded, not refused")
    func silence() throws {
        #expect(Self.spectrogram.decibels(of: [Float](repeating: 0.5, count: 100)).count == 60 * 2)
        #expect(SilenceRule.meanLogMel(Self.spectrogram).loudness(of: [Float]()) == -100)
        let values = Self.spectrogram.decibels(of: [Float](repeating: 0, count: 20991))
        #expect(values.allSatisfy { abs($0 + 100) < 1e-4 })
        let rule = SilenceRule.meanLogMel(Self.spectrogram)
        #expect(rule.isSilent(loudness: rule.loudness(of: [Float](repeating: 0, count: 20991))))
        #expect(!rule.isSilent(loudness: rule.loudness(of: Self.fixture.tensors["segment0.input"]!.scalars)))
    }

    /// The fixture's small network (fc 16, 5 classes) with its feature statistics.
    static func network() throws -> LogMelCNN {
        let network = LogMelCNN(configuration: LogMelCNNConfiguration(classCount: 5, hiddenUnits: 16, dropoutProbability: 0), seed: 3)
        var state: [String: Tensor] = [:]
        for (key, value) in fixture.tensors where key.hasPrefix("model.") && !["model.features", "model.logits"].contains(key) {
            state[String(key.dropFirst(6))] = value
        }
        try network.loadStateDictionary(state, strict: true)
        network.eval()
        return network
    }

    @Test("The front end's normalised features and deltas, and the network's logits, equal PyTorch's")
    func networkAgainstPyTorch() throws {
        let network = try Self.network()
        let input = Tensor(Self.fixture.tensors["segment0.input"]!.scalars + Self.fixture.tensors["segment1.input"]!.scalars,
                           shape: [2, 1, 1, 20991])
        let features = network.features(input, upTo: "logmel")
        let referenceFeatures = Self.fixture.tensors["model.features"]!
        #expect(features.shape == [2, 2, 60, 41])
        let featureDifference = zip(features.scalars, referenceFeatures.scalars).map { abs($0 - $1) }.max()!
        #expect(featureDifference < 1e-4, "features differ by \(featureDifference)")
        let logits = network(input)
        let reference = Self.fixture.tensors["model.logits"]!
        let scale = reference.scalars.map(abs).max()!
        let difference = zip(logits.scalars, reference.scalars).map { abs($0 - $1) }.max()!
        #expect(difference / scale < 1e-4, "logits differ by \(difference) (scale \(scale))")
        #expect(try network.outputShape(forInputShape: [2, 1, 1, 20991]) == [2, 5])
        #expect(network.layerNames == ["logmel", "masking", "conv1", "bn1", "pool1", "conv2", "bn2", "pool2", "flatten",
                                       "fc3", "bn3", "dropout3", "fc4"])
    }

    @Test("Masks zero one band range and one frame range per sample in training, keyed by sample; evaluation is the identity")
    func masking() throws {
        var generator = SeededGenerator(seed: 4)
        let masking = SpectrogramMasking(maximumBands: 8, maximumFrames: 6, generator: &generator)
        let input = Tensor([Float](repeating: 1, count: 3 * 2 * 60 * 41), shape: [3, 2, 60, 41])
        masking.eval()
        #expect(masking(input).scalars == input.scalars)
        masking.train()
        masking.sampleStreams = Dropout.SampleStreams(seed: 9, firstStream: 100)
        let first = masking(input).scalars
        _ = masking.backward(input)
        let again = masking(input).scalars
        _ = masking.backward(input)
        #expect(first == again)
        for row in 0..<3 {
            let values = Array(first[(row * 4920)..<((row + 1) * 4920)])
            let zeros = values.filter { $0 == 0 }.count
            // At most 8 bands x 41 frames + 6 frames x 60 bands, in each of 2 channels.
            #expect(zeros <= 2 * (8 * 41 + 6 * 60))
            // Both channels share the mask.
            #expect(Array(values[..<2460]) == Array(values[2460...]))
        }
        // Sample 1 of a batch keyed from 100 is sample 0 of one keyed from 101.
        masking.sampleStreams = Dropout.SampleStreams(seed: 9, firstStream: 101)
        let shifted = masking(Tensor(Array(input.scalars[..<4920]), shape: [1, 2, 60, 41])).scalars
        #expect(shifted == Array(first[4920..<9840]))
    }

    @Test("Saved and loaded, a log-mel CNN keeps its feature statistics; a file is recognised without metadata; a zero std is refused")
    func fileRoundTrip() throws {
        let network = try Self.network()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("logmel-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try network.save(to: url, classNames: (0..<5).map { "c\($0)" })
        let (loaded, description) = try ModelFile.load(from: url)
        #expect(loaded.architecture == .logMelCNN)
        #expect(description.network == "logmel-cnn")
        #expect(description.sampleRate == 22050 && description.inputLength == 20991)
        #expect(loaded.stateDictionary()["logmel.std"]!.scalars == [18])
        #expect(loaded.parameterChecksum() == network.parameterChecksum())
        var bare = SafeTensors(tensors: network.stateDictionary(), metadata: [:])
        let inferred = try ModelFile.load(bare, source: "bare")
        #expect(inferred.network.networkConfiguration == .logMelCNN(LogMelCNNConfiguration(classCount: 5, hiddenUnits: 16)))
        for (key, value) in [("logmel.std", Float(1e-30)), ("logmel.std", -1), ("logmel.mean", 1e5)] {
            var poisoned = bare
            poisoned.tensors[key] = Tensor([value], shape: [1])
            #expect(throws: EnvNetError.self, "\(key) = \(value)") { try ModelFile.load(poisoned, source: "bare") }
        }
        bare.tensors["logmel.std"] = Tensor([0], shape: [1])
        #expect(throws: EnvNetError.self) { try ModelFile.load(bare, source: "bare") }
        do {
            _ = try ModelFile.load(bare, source: "bare")
        } catch {
            #expect("\(error)".contains("logmel.std"))
        }
    }

    @Test("Freezing the convolutions keeps the masks on (they augment the input), while the frozen layers run in evaluation mode")
    func freezingKeepsMasks() throws {
        let classes: [SyntheticSoundClass] = [.siren, .rain]
        let network = LogMelCNN(configuration: LogMelCNNConfiguration(classCount: 2, hiddenUnits: 8), seed: 1)
        var recipe = TrainingConfiguration()
        recipe.epochs = 1
        recipe.batchSize = 4
        recipe.milestones = []
        let trainer = try Trainer(network: network, training: Self.syntheticClips(classes: classes, perClass: 2, seed: 5),
                                  classNames: classes.map(\.name), configuration: recipe, runFolder: nil)
        try trainer.freeze(through: "pool2")
        var modes: [(masking: Bool, conv1: Bool, fc3: Bool)] = []
        _ = try trainer.run { event in
            if case .step = event { modes.append((network.masking.isTraining, network.blocks[0].convolution.isTraining, network.fc3.isTraining)) }
        }
        #expect(!modes.isEmpty)
        #expect(modes.allSatisfy { $0.masking && !$0.conv1 && $0.fc3 }, "\(modes)")
    }

    /// Ten clips per class of four synthetic classes at 22.05 kHz, 1.5 s each.
    static func syntheticClips(classes: [SyntheticSoundClass], perClass: Int, seed: UInt64) -> [LabeledClip] {
        let configuration = SyntheticDatasetConfiguration(clipsPerClass: perClass, seed: seed, sampleRate: 22050, duration: 1.5,
                                                          classes: classes)
        return classes.enumerated().flatMap { target, soundClass in
            (0..<perClass).map { index in
                LabeledClip(samples: SyntheticDataset.synthesizeClip(soundClass, target: target, index: index, configuration: configuration),
                            label: target, name: "\(soundClass)-\(index)")
            }
        }
    }

    @Test("A short synthetic run learns: the loss falls and held-out clips are voted right well above chance")
    func syntheticRunLearns() throws {
        let classes: [SyntheticSoundClass] = [.siren, .rain, .knock, .mainsHum]
        let training = Self.syntheticClips(classes: classes, perClass: 10, seed: 1)
        let test = Self.syntheticClips(classes: classes, perClass: 4, seed: 2)
        let network = LogMelCNN(configuration: LogMelCNNConfiguration(classCount: 4, hiddenUnits: 64), seed: 7)
        var recipe = TrainingConfiguration()
        recipe.epochs = 8
        recipe.batchSize = 16
        recipe.learningRate = 0.01
        recipe.milestones = [6]
        recipe.seed = 3
        let trainer = try Trainer(network: network, training: training, classNames: classes.map(\.name), configuration: recipe, runFolder: nil)
        #expect(network.frontEnd.isFitted)
        let mean = network.frontEnd.mean.value.scalars[0], std = network.frontEnd.standardDeviation.value.scalars[0]
        #expect(mean < 0 && mean > -100 && std > 1, "fitted mean \(mean), std \(std)")
        let history = try trainer.run()
        let losses = history.map(\.loss)
        #expect(losses.last! < 0.6 * losses.first!, "losses \(losses)")
        let evaluator = try ClipEvaluator(network: network, scheme: .probabilityVoting(hop: 10240))
        let accuracy = try evaluator.accuracy(on: test)
        #expect(accuracy >= 0.75, "held-out accuracy \(accuracy), losses \(losses)")
        // Fitting again does not move statistics the network already has.
        network.prepareForTraining(on: test)
        #expect(network.frontEnd.mean.value.scalars[0] == mean)
    }
}
