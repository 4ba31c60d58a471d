// ClassifyFiles: classifies audio files (WAV, FLAC, Ogg Vorbis, Opus, MP3, AIFF, CAF, W64) with
// EnvNet, using only the public API of `EnvNetModel` and `EnvNetPretrained`.
//
//     swift run ClassifyFiles dog.wav rain.flac                       # the bundled ESC-10 model
//     swift run ClassifyFiles --weights model.safetensors dog.wav     # a model of your own
//
// prints, per file, the label, its probability and where in the file it sounds strongest (or
// "silent"). Without arguments it prints its usage and exits with status 2; any error is reported
// on one line and the exit status is 1.
import EnvNetModel
import EnvNetPretrained
import Foundation

let usage = """
    usage: ClassifyFiles [--weights <model.safetensors>] <audio file> [<audio file> ...]

    Classifies each audio file with the bundled ESC-10 model, or with the EnvNet model in
    <model.safetensors> (as written by `envnet train`), and prints its label and where it sounds.
    """

/// Writes one line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

var arguments = Array(CommandLine.arguments.dropFirst())
if arguments.isEmpty || arguments == ["-h"] || arguments == ["--help"] {
    printError(usage)
    exit(2)
}
var weights: String?
if arguments.first == "--weights" {
    guard arguments.count >= 2 else {
        printError("error: --weights needs a model file (usage: ClassifyFiles [--weights <model>] <audio file> ...)")
        exit(1)
    }
    weights = arguments[1]
    arguments.removeFirst(2)
}
guard !arguments.isEmpty else {
    printError("error: no audio file given (usage: ClassifyFiles [--weights <model>] <audio file> ...)")
    exit(1)
}

do {
    let classifier = try weights.map { try SoundClassifier(contentsOf: URL(fileURLWithPath: $0)) } ?? SoundClassifier.pretrained()
    for path in arguments {
        // Window by window (1.5 s windows every 0.75 s), read from disk as it goes.
        let analysis = try classifier.analyze(contentsOf: URL(fileURLWithPath: path))
        guard let best = analysis.classification.best else {
            print("\(path): silent")
            continue
        }
        let strongest = analysis.strongestWindows.first.map {
            String(format: ", strongest %.2f-%.2f s", $0.timeRange.start, $0.timeRange.end)
        } ?? ""
        print("\(path): \(best.label) \(String(format: "%.1f", best.probability * 100))%\(strongest)")
    }
} catch {
    // The package's errors describe themselves on one line, naming the file.
    let line = "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
    printError("error: \(line)")
    exit(1)
}
