import ArgumentParser
import EnvNetModel
import Foundation
import Testing

@testable import EnvNetCommandLine

/// `--network` and `--recipe`: the preset and the figures are printed before any long work, single
/// flags override the preset, and a model of the other network is refused by name.
@Suite("Networks and recipes on the command line", .serialized)
struct NetworkAndRecipeCommandTests {
    /// The built-in synthetic ESC-50 layout at 44.1 kHz, one clip per class and fold, written once.
    static let synthetic: URL = {
        let root = try! ChildProcess.temporaryFolder("recipes")
        let data = root.appendingPathComponent("synthetic")
        try! OwnSoundsCommandTests.run(["synth", "--output", data.path, "--clips-per-class", "5"])
        return data
    }()

    /// Starts `envnet train --data data …` in a folder of its own and returns what it printed by the
    /// time it printed `marker` (then stops it).
    static func printed(until marker: String, data: URL, _ extra: [String]) throws -> String {
        let root = try ChildProcess.temporaryFolder("recipe-header")
        let log = root.appendingPathComponent("log.txt")
        let process = try ChildProcess.start(["train", "--data", data.path, "--output", root.appendingPathComponent("run").path,
                                              "--cache", root.appendingPathComponent("cache").path] + extra, log: log)
        let deadline = Date().addingTimeInterval(120)
        var output = ""
        while Date() < deadline {
            output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if output.contains(marker) || !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return output
    }

    /// What `envnet train` on the synthetic set prints up to its `training:` line.
    static func header(_ extra: [String]) throws -> String {
        try printed(until: "training: ", data: synthetic, extra)
    }

    @Test("envnet train --network envnet-v2 --recipe authors --bc --strong-augment prints the authors' numbers first")
    func authorsRecipeIsPrinted() throws {
        // Waits for the dataset summary, printed after the recipe: stopping at `training: ` could kill
        // the process before it got there (CI run of stop 26).
        let output = try Self.printed(until: "dataset: ", data: Self.synthetic,
                                      ["--network", "envnet-v2", "--recipe", "authors", "--bc", "--strong-augment"])
        #expect(output.contains("recipe: authors recipe for EnvNet-v2 on ESC-50: 1000 epochs (doubled with BC), lr 0.1, x0.1 at 30 %, 60 %, 90 % of the epochs, 10 warm-up epochs at lr x0.1, batch 64, weight decay 5e-4, Nesterov momentum 0.9, int16 normalization with zero trimming at 44100 Hz, 10-crop averaging"), "\(output)")
        #expect(output.contains("training: 2000 epochs, lr 0.1, x0.1 at epochs 600, 1200, 1800, 10 warm-up epochs at lr x0.1, batch 64, weight decay 0.0005, Nesterov momentum 0.9, BC learning, strong augmentation"), "\(output)")
        // Printed before the headers are read.
        let recipe = try #require(output.range(of: "recipe: ")), dataset = try #require(output.range(of: "dataset: "))
        #expect(recipe.lowerBound < dataset.lowerBound)
    }

    @Test("An explicit --epochs is taken as given (not doubled with --bc), and the milestones follow its fractions")
    func explicitEpochs() throws {
        let output = try Self.header(["--network", "envnet-v2", "--recipe", "authors", "--bc", "--epochs", "20", "--learning-rate", "0.05"])
        #expect(output.contains("given: --epochs 20 --learning-rate 0.05"), "\(output)")
        #expect(output.contains("training: 20 epochs, lr 0.05, x0.1 at epochs 6, 12, 18, 10 warm-up epochs at lr x0.1"), "\(output)")
        let seed = try Self.header(["--bc"])
        #expect(seed.contains("recipe: seed recipe for EnvNet on ESC-50: 150 epochs"), "\(seed)")
        #expect(seed.contains("training: 300 epochs, lr 0.01, x0.1 at epochs 160, 200, 240, batch 64"), "\(seed)")
    }

    @Test("Bad --network, --recipe and --variant values are refused before any work")
    func refusals() {
        let data = Self.synthetic.path
        let cases: [([String], String)] = [
            (["--network", "envnet-v3"], "--network must be envnet, envnet-v2 or logmel-cnn, not envnet-v3"),
            (["--recipe", "paper"], "--recipe must be seed or authors, not paper"),
            (["--network", "envnet-v2", "--variant", "seed"], "--variant applies to EnvNet only"),
        ]
        for (extra, expected) in cases {
            let message = OwnSoundsCommandTests.failure(["train", "--data", data, "--output", "/tmp/unused-recipe-run"] + extra)
            #expect(message?.contains(expected) == true, "\(extra): \(message ?? "no error")")
        }
    }

    @Test("evaluate and predict refuse a model of the other network when --network names one")
    func networkMismatch() throws {
        let root = try ChildProcess.temporaryFolder("network-mismatch")
        let weights = root.appendingPathComponent("v2.safetensors")
        let names = (0..<10).map { "class \($0)" }
        try EnvNetV2(configuration: EnvNetV2Configuration(classCount: 10, hiddenUnits: 8)).save(to: weights, classNames: names)
        let evaluate = OwnSoundsCommandTests.failure(["evaluate", "--data", Self.synthetic.path, "--weights", weights.path, "--network", "envnet"])
        #expect(evaluate?.contains("holds EnvNet-v2 weights (envnet-v2)") == true, "\(evaluate ?? "no error")")
        let clip = try #require(FileManager.default.contentsOfDirectory(atPath: Self.synthetic.appendingPathComponent("audio").path).first)
        let audio = Self.synthetic.appendingPathComponent("audio").appendingPathComponent(clip).path
        let predict = OwnSoundsCommandTests.failure(["predict", audio, "--weights", weights.path, "--network", "envnet"])
        #expect(predict?.contains("holds EnvNet-v2 weights") == true, "\(predict ?? "no error")")
        let bundled = OwnSoundsCommandTests.failure(["predict", audio, "--network", "envnet-v2"])
        #expect(bundled?.contains("no EnvNet-v2 model ships with envnet") == true, "\(bundled ?? "no error")")
    }

    @Test("analyze sweeps up to the model's Nyquist frequency: 9 kHz is refused for EnvNet's 16 kHz")
    func analyzeNyquist() throws {
        let root = try ChildProcess.temporaryFolder("analyze-nyquist")
        let weights = root.appendingPathComponent("envnet.safetensors")
        try EnvNet(configuration: EnvNetConfiguration(classCount: 2, hiddenUnits: 8)).save(to: weights, classNames: ["a", "b"])
        let message = OwnSoundsCommandTests.failure(["analyze", "--weights", weights.path, "--output", root.appendingPathComponent("out").path,
                                                     "--highest", "9000"])
        #expect(message?.contains("--highest 9000.0 exceeds the Nyquist frequency of EnvNet's 16000 Hz") == true, "\(message ?? "no error")")
    }

    @Test("Recordings below the network's rate are upsampled with a warning: 22.05 kHz clips for EnvNet-v2")
    func upsamplingWarns() throws {
        let root = try ChildProcess.temporaryFolder("upsampling")
        let data = root.appendingPathComponent("tones")
        try OwnSoundsCommandTests.makeFolderDataset(data, classes: ["low": 250, "high": 3000], clipsPerClass: 2)
        let output = try Self.printed(until: "preprocess", data: data, ["--network", "envnet-v2", "--folds", "2"])
        #expect(output.contains("warning: 4 of 4 clips are recorded below 44100 Hz (from 22050 Hz) and are upsampled; they hold nothing above 11025 Hz"), "\(output)")
    }
}
