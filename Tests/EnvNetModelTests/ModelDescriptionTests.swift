import EnvNetModel
import Foundation
import Testing

/// Model files record how to use them; older and converted files load with documented defaults;
/// files of a newer schema or another network are refused by name.
@Suite("Self-describing model files")
struct ModelDescriptionTests {
    static let configuration = EnvNetConfiguration(classCount: 3, hiddenUnits: 8)

    static func file(_ name: String) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-description-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder.appendingPathComponent(name)
    }

    static func described() -> ModelDescription {
        var recipe = TrainingConfiguration()
        recipe.epochs = 7
        recipe.betweenClassLearning = true
        return ModelDescription(
            configuration: configuration, classNames: ["dog", "rain", "siren"], preprocessing: .authorsRepository,
            evaluation: .tenCrop(count: 10), trainingSilenceThreshold: 0.1, recipe: recipe,
            dataset: DatasetRecord(layout: "folders", fingerprint: "0123456789abcdef", heldOutFold: 3, trainingClips: 42, credit: "me"))
    }

    @Test func everythingRecordedComesBack() throws {
        let url = try Self.file("model.safetensors")
        let network = EnvNet(configuration: Self.configuration, seed: 4)
        try network.save(to: url, description: Self.described())
        let (loaded, description) = try EnvNet.loadModel(from: url)
        #expect(description == Self.described())
        #expect(description.schemaVersion == ModelDescription.currentSchemaVersion)
        #expect(description.sampleRate == 16_000 && description.inputLength == 24_014)
        #expect(loaded.stateDictionary() == network.stateDictionary())
        // The older keys stay, so earlier versions read the file too.
        let raw = try SafeTensors.read(from: url)
        #expect(raw.metadata[EnvNet.MetadataKey.classNames] == #"["dog","rain","siren"]"#)
        #expect(raw.metadata[EnvNet.MetadataKey.configuration] != nil)
        // SoundClassifier uses the recorded preprocessing and scheme with no argument.
        let classifier = try SoundClassifier(contentsOf: url)
        #expect(classifier.settings == .authorsRepository)
        #expect(classifier.scheme == .tenCrop(count: 10))
        #expect(classifier.modelDescription.dataset?.heldOutFold == 3)
    }

    @Test func filesWithoutADescriptionLoadWithTheDocumentedDefaults() throws {
        let network = EnvNet(configuration: Self.configuration, seed: 4)
        // As written before schema 1: configuration and class names only.
        var old = network.safeTensors(classNames: ["a", "b", "c"])
        for key in [ModelDescription.Key.description, ModelDescription.Key.schemaVersion, ModelDescription.Key.network] { old.metadata[key] = nil }
        let oldURL = try Self.file("old.safetensors")
        try old.write(to: oldURL)
        let (_, description) = try EnvNet.loadModel(from: oldURL)
        #expect(description.classNames == ["a", "b", "c"])
        #expect(description.preprocessing == .seedArticle)
        #expect(description.evaluation == .seedArticle)
        #expect(description.trainingSilenceThreshold == 0.2)
        #expect(description.recipe == nil && description.dataset == nil)
        #expect(description.schemaVersion == 0)
        // As PyTorch writes it: tensors only; sizes from the shapes, classes numbered.
        let bare = SafeTensors(tensors: network.stateDictionary(), metadata: ["format": "pt"])
        let bareURL = try Self.file("bare.safetensors")
        try bare.write(to: bareURL)
        let (_, inferred) = try EnvNet.loadModel(from: bareURL)
        #expect(inferred.configuration == .envnet(Self.configuration))
        #expect(inferred.classNames == ["class 0", "class 1", "class 2"])
        #expect(inferred.preprocessing == .seedArticle)
    }

    @Test func newerSchemasAndUnknownNetworksAreRefusedByName() throws {
        let network = EnvNet(configuration: Self.configuration, seed: 4)
        var newer = network.safeTensors(description: Self.described())
        newer.metadata[ModelDescription.Key.schemaVersion] = "2"
        var other = network.safeTensors(description: Self.described())
        other.metadata[ModelDescription.Key.network] = "envnet-v3"
        var broken = network.safeTensors(description: Self.described())
        broken.metadata[ModelDescription.Key.description] = "{\"schemaVersion\": 1}"
        for (file, words) in [(newer, ["schema 2", "newer"]), (other, ["envnet-v3"]), (broken, [ModelDescription.Key.description])] {
            let url = try Self.file("refused.safetensors")
            try file.write(to: url)
            #expect { try EnvNet.loadModel(from: url) } throws: { error in
                guard case EnvNetError.incompatibleWeights(let path, let reason) = error else { return false }
                return path == url.path && words.allSatisfy(reason.contains)
            }
        }
    }

    @Test func theClassifierReadsStereoFilesAtAnyRateAndRefusesAFIFO() throws {
        let url = try Self.file("model.safetensors")
        try EnvNet(configuration: Self.configuration, seed: 4).save(to: url, description: Self.described())
        let classifier = try SoundClassifier(contentsOf: url, scheme: .seedArticle)
        let folder = url.deletingLastPathComponent()
        // A 2 s, 44.1 kHz stereo tone (the decoders of the other formats are tested in EnvNetAudioTests).
        let samples = (0..<88_200).map { Float(0.5 * sin(2 * Double.pi * 523 * Double($0) / 44_100)) }
        let wav = folder.appendingPathComponent("tone.wav")
        try WAVWriter.write(channels: [samples, samples], sampleRate: 44_100, format: .pcm16, to: wav)
        let fromWAV = try classifier.classify(contentsOf: wav)
        #expect(fromWAV.probabilities.count == 3)
        let fifo = folder.appendingPathComponent("fifo.flac")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        #expect(throws: AudioError.self) { try classifier.classify(contentsOf: fifo) }
    }
}

@Suite("Half-precision model files")
struct HalfPrecisionFileTests {
    @Test func f16StorageRoundsAsSwiftsFloat16AndLoadsWidened() throws {
        var generator = SeededGenerator(seed: 16)
        // Normal, subnormal, tie and boundary values, then random ones over many magnitudes.
        var values: [Float] = [0, -0, 1, -1, 65504, -65504, 6.1035156e-05, 5.9604645e-08, 2.9802322e-08, 1.0009765625, 1.00048828125, 0.1, 1e-9]
        for _ in 0..<4000 {
            values.append(Float(generator.nextGaussian()) * Float(pow(10, Double(generator.nextInt(below: 12)) - 7)))
        }
        let file = SafeTensors(tensors: ["x": Tensor(values, shape: [values.count]), "big": Tensor([1, 70000], shape: [2])])
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("half-\(UUID().uuidString).safetensors")
        try file.write(to: url, storage: .float16)
        let read = try SafeTensors.read(from: url)
        let widened = try #require(read.tensors["x"]).withUnsafeBufferPointer { Array($0) }
        for (value, back) in zip(values, widened) {
            #expect(back == Float(Float16(value)), "\(value) came back as \(back), Float16 gives \(Float(Float16(value)))")
        }
        // A tensor beyond half precision's range stays exact (F32).
        #expect(read.tensors["big"] == Tensor([1, 70000], shape: [2]))
        let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! Int
        #expect(size < 4 * values.count, "\(size) bytes: not stored as F16")
    }

    @Test func aHalfPrecisionModelGivesNearlyTheSameLogits() throws {
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: 9)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("half-model-\(UUID().uuidString).safetensors")
        try network.save(to: url, description: ModelDescription(configuration: network.configuration, classNames: ["a", "b", "c"]), storage: .float16)
        let (loaded, _) = try EnvNet.loadModel(from: url)
        network.eval()
        var generator = SeededGenerator(seed: 2)
        let input = Tensor((0..<(2 * 24_014)).map { _ in Float(generator.nextGaussian()) * 0.3 }, shape: [2, 1, 1, 24_014])
        let a = network(input).withUnsafeBufferPointer { Array($0) }, b = loaded(input).withUnsafeBufferPointer { Array($0) }
        let scale = a.map { abs($0) }.max()!
        let largest = zip(a, b).map { abs($0 - $1) }.max()!
        #expect(largest <= 1e-2 * scale, "largest logit difference \(largest) at scale \(scale)")
    }
}
