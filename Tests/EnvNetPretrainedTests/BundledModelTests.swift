import EnvNetModel
import EnvNetPretrained
import Foundation
import Testing

/// The shared ESC-10 clips, found relative to the repository root (`../shared/data/ESC-10-16k`).
/// Nil when they are absent on a developer's machine; under CI (`CI=true`) their absence is a
/// failure, not a skip.
func sharedESC10Folder(filePath: String = #filePath) -> URL? {
    let repository = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let folder = repository.deletingLastPathComponent().appendingPathComponent("shared/data/ESC-10-16k").standardizedFileURL
    if FileManager.default.fileExists(atPath: folder.appendingPathComponent("meta/esc50.csv").path) { return folder }
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        Issue.record("the shared ESC-10 clips are missing: expected them at \(folder.path) (../shared beside the repository)")
    }
    return nil
}

@Suite("The bundled ESC-10 model: found without Bundle.module, credited, honest about silence")
struct BundledModelTests {
    @Test func theModelShipsInHalfPrecisionWithItsCreditAndAttribution() throws {
        let url = try PretrainedModel.esc10.url()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        #expect(size <= 30_000_000, "\(size) bytes")
        // 16-bit floats: every tensor of the header is F16 or BF16.
        let data = try Data(contentsOf: url, options: .mappedIfSafe)
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        let types = Set(header.filter { $0.key != "__metadata__" }.compactMap { ($0.value as? [String: Any])?["dtype"] as? String })
        #expect(!types.isEmpty && types.isSubset(of: ["F16", "BF16"]), "\(types)")

        let (_, description) = try EnvNet.loadModel(from: url)
        #expect(description.classNames == ["dog", "rain", "sea_waves", "crying_baby", "clock_tick", "sneezing", "helicopter",
                                           "chainsaw", "rooster", "crackling_fire"])
        let credit = try #require(description.dataset?.credit)
        #expect(credit.contains("ESC-10") && credit.contains("Piczak") && credit.contains("CC BY 3.0"))
        #expect(description.dataset?.heldOutFold == nil && description.dataset?.trainingClips == 400)  // all folds
        #expect(description.silenceThresholdDecibels == SilenceDetection.defaultThresholdDecibels)
        #expect(description.trainingSilenceThreshold == 0.2)
        let attribution = try String(contentsOf: PretrainedModel.esc10.attributionURL(), encoding: .utf8)
        #expect(attribution.contains("Creative Commons Attribution 3.0") && attribution.contains("freesound.org"))
    }

    @Test func aMissingBundleIsATypedErrorThatSaysWhereItLooked() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-no-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: PretrainedModelError.notFound(file: "esc10-envnet.safetensors", searched: [empty.path])) {
            try PretrainedModel.esc10.url(searching: [empty])
        }
        let message = "\(PretrainedModelError.notFound(file: "esc10-envnet.safetensors", searched: [empty.path]))"
        #expect(message.contains(empty.path) && message.contains("ENVNET_PRETRAINED_MODELS") && !message.contains("\n"))
        // The default search is the resource bundle's folders; the library reads no environment variable.
        #expect(PretrainedModel.locations.allSatisfy { $0.lastPathComponent == "Model" })
    }

    @Test func zerosAndAHumAreSilentAndTheQuietClockTickHasAClass() throws {
        let classifier = try SoundClassifier.pretrained()
        let zeros = [Float](repeating: 0, count: 3 * 16_000)
        let hum = (0..<(3 * 44_100)).map { 0.001 * sinf(2 * .pi * 60 * Float($0) / 44_100) }  // -60 dBFS, 60 Hz
        for (name, samples, rate) in [("zeros", zeros, 16_000), ("hum", hum, 44_100)] {
            let result = try classifier.classify(samples: samples, sampleRate: rate)
            #expect(result.isSilent && result.best == nil, "\(name)")
        }
        guard let folder = sharedESC10Folder() else { return }
        // The quiet clock tick of the issue: peak 0.16 (-15.8 dBFS).
        let clip = folder.appendingPathComponent("audio/5-235671-A-38.wav")
        let result = try classifier.classify(contentsOf: clip)
        #expect(!result.isSilent && result.best != nil)
        let analysis = try classifier.analyze(contentsOf: clip)
        #expect(!analysis.isSilent && analysis.classification.best != nil && analysis.silentWindowCount < analysis.windowCount,
                "\(analysis.windowCount) windows, \(analysis.silentWindowCount) silent, peak \(analysis.peakDecibels ?? -999) dBFS")
        // Streamed, as `predict --stream` does: its windows sound too.
        let stream = try classifier.makeStreamAnalyzer(sourceSampleRate: 16_000)
        let audio = try AudioFileReader.read(contentsOf: clip)
        let windows = try stream.process(audio.mono) + stream.finish()
        #expect(windows.contains { !$0.isSilent })
        #expect(windows.filter { !$0.isSilent }.count > windows.count / 2)
    }
}
