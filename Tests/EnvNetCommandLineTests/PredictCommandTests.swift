import EnvNetModel
import Foundation
import Testing

/// `envnet predict` as a new user runs it: no flag but the files, the bundled model, a glance per
/// file, "silent" for silence, and a typed error when the bundled model was not installed.
@Suite("envnet predict: the bundled model, a glance per file, honest silence")
struct PredictCommandTests {
    static func write(_ samples: [Float], rate: Int, to url: URL) throws {
        try WAVWriter.write(samples, sampleRate: rate, format: .pcm16, to: url)
    }

    @Test(.timeLimit(.minutes(5)))
    func withoutWeightsTheBundledModelClassifiesAndSilenceIsSilent() throws {
        _ = try ChildProcess.requireExecutable()
        let folder = try ChildProcess.temporaryFolder("predict")
        defer { try? FileManager.default.removeItem(at: folder) }
        let zeros = folder.appendingPathComponent("zeros.wav"), hum = folder.appendingPathComponent("hum.wav")
        let sound = folder.appendingPathComponent("sound.wav")
        try Self.write([Float](repeating: 0, count: 48_000), rate: 16_000, to: zeros)
        try Self.write((0..<(3 * 44_100)).map { 0.001 * sinf(2 * .pi * 50 * Float($0) / 44_100) }, rate: 44_100, to: hum)
        var generator = SeededGenerator(seed: 3)
        let samples = (0..<(4 * 22_050)).map { index -> Float in
            let envelope: Float = index % 11_025 < 3000 ? 1 : 0.05
            let noise = 0.05 * Float.random(in: -1...1, using: &generator)
            return 0.4 * sinf(Float(index) * 0.2) * envelope + noise
        }
        try Self.write(samples, rate: 22_050, to: sound)
        let log = folder.appendingPathComponent("predict.txt")
        try ChildProcess.run(["predict", zeros.path, hum.path, sound.path], log: log, timeout: 240)
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").map(String.init)
        let classes = ["dog", "rain", "sea_waves", "crying_baby", "clock_tick", "sneezing", "helicopter", "chainsaw", "rooster", "crackling_fire"]
        let zerosLine = try #require(lines.first { $0.hasPrefix(zeros.path) }), humLine = try #require(lines.first { $0.hasPrefix(hum.path) })
        #expect(zerosLine.contains(": silent") && zerosLine.contains("digital silence"), "\(zerosLine)")
        #expect(humLine.contains(": silent") && (humLine.contains("peaks at -59.") || humLine.contains("peaks at -60.")), "\(humLine)")
        let soundLine = try #require(lines.first { $0.hasPrefix(sound.path) })
        #expect(classes.contains { soundLine.contains(": \($0) ") } && soundLine.contains("%") && soundLine.contains("strongest at"), "\(soundLine)")
        // --precision bf16 (fp32 with a notice where the CPU has no AVX512-BF16) names the same class.
        let bf16Log = folder.appendingPathComponent("predict-bf16.txt")
        try ChildProcess.run(["predict", "--precision", "bf16", sound.path], log: bf16Log, timeout: 240)
        let bf16Line = try #require(try String(contentsOf: bf16Log, encoding: .utf8).split(separator: "\n").map(String.init).first { $0.hasPrefix(sound.path) })
        let soundClass = classes.first { soundLine.contains(": \($0) ") }
        #expect(soundClass.map { bf16Line.contains(": \($0) ") } == true, "fp32: \(soundLine); bf16: \(bf16Line)")

        // --json: every window with its time range.
        let json = folder.appendingPathComponent("predict.json")
        try ChildProcess.run(["predict", "--json", "--overlap-factor", "0.5", sound.path], log: json, timeout: 240)
        let text = try String(contentsOf: json, encoding: .utf8)
        let start = try #require(text.firstIndex(of: "{"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text[start...].utf8)) as? [String: Any])
        let file = try #require((object["files"] as? [[String: Any]])?.first?["analysis"] as? [String: Any])
        let windows = try #require(file["windows"] as? [[String: Any]])
        let expectedCount: Int = (4 * 16_000 - 24_014) / 12_007 + 1
        #expect(windows.count == expectedCount)
        let second = try #require(windows[1]["timeRange"] as? [String: Double])
        let secondStart: Double = second["start"] ?? 0, secondDuration: Double = second["duration"] ?? 0
        #expect(abs(secondStart - 12_007.0 / 16_000) < 1e-9)
        #expect(abs(secondDuration - 24_014.0 / 16_000) < 1e-9)
    }

    @Test(.timeLimit(.minutes(3)))
    func aCopiedExecutableWithoutItsBundleSaysWhereItLooked() throws {
        let executable = try ChildProcess.requireExecutable()
        let folder = try ChildProcess.temporaryFolder("copied-envnet")
        defer { try? FileManager.default.removeItem(at: folder) }
        let copy = folder.appendingPathComponent("envnet")
        try FileManager.default.copyItem(at: executable, to: copy)
        let audio = folder.appendingPathComponent("a.wav")
        try Self.write([Float](repeating: 0.1, count: 16_000), rate: 16_000, to: audio)
        func run(_ environment: [String: String]) throws -> (status: Int32, output: String) {
            let process = Process()
            process.executableURL = copy
            process.arguments = ["predict", audio.path]
            var variables = ProcessInfo.processInfo.environment
            variables.removeValue(forKey: "ENVNET_PRETRAINED_MODELS")
            process.environment = variables.merging(environment) { $1 }
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        let missing = try run([:])
        #expect(missing.status != 0)
        #expect(missing.output.contains("bundled model esc10-envnet.safetensors was not found") && missing.output.contains(folder.path),
                "\(missing.output)")
        #expect(!missing.output.contains("Fatal error"), "\(missing.output)")
        // Pointing the variable at the bundle's folder makes the copy work.
        let bundle = executable.deletingLastPathComponent().appendingPathComponent("EnvNet_EnvNetPretrained.resources/Model")
        let found = try run(["ENVNET_PRETRAINED_MODELS": bundle.path])
        #expect(found.status == 0 && found.output.contains(audio.path + ":"), "\(found.output)")
    }
}

@Suite("The command's environment variables")
struct CommandEnvironmentTests {
    @Test("A value the command cannot take is refused by name before any work", arguments: [
        ("ENVNET_THREADS", "abc"), ("ENVNET_THREADS", "0"), ("ENVNET_WINOGRAD", "maybe"), ("ENVNET_FUSED_FRONT_END", "2"),
    ])
    func badValuesAreRefused(name: String, value: String) throws {
        let folder = try ChildProcess.temporaryFolder("environment")
        defer { try? FileManager.default.removeItem(at: folder) }
        let log = folder.appendingPathComponent("log.txt")
        let process = try ChildProcess.start(["--version"], environment: [name: value], log: log)
        process.waitUntilExit()
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(process.terminationStatus != 0)
        #expect(output.contains(name) && output.contains(value) && output.split(separator: "\n").count == 1, "\(output)")
    }
}
