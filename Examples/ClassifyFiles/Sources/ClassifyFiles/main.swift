// ClassifyFiles: classifies audio files (WAV, FLAC, Ogg Vorbis, Opus, MP3, AIFF, CAF, W64) with a trained EnvNet, using only the public API of
// `EnvNetModel`.
//
//     swift run ClassifyFiles model.safetensors dog.wav rain.wav
//
// prints the three most probable labels of each file. Without arguments it prints its usage and
// exits with status 2; any error is reported on one line and the exit status is 1.
import EnvNetModel
import Foundation

let usage = """
    usage: ClassifyFiles <model.safetensors> <audio file> [<audio file> ...]

    Classifies each audio file with the EnvNet weights in <model.safetensors> (as written by
    `envnet train` or `EnvNet.save(to:classNames:)`) and prints the three most probable labels.
    """

/// Writes one line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.isEmpty || arguments == ["-h"] || arguments == ["--help"] {
    printError(usage)
    exit(2)
}
guard arguments.count >= 2 else {
    printError("error: no audio file given (usage: ClassifyFiles <model.safetensors> <audio file> ...)")
    exit(1)
}

do {
    let classifier = try SoundClassifier(contentsOf: URL(fileURLWithPath: arguments[0]))
    for path in arguments.dropFirst() {
        let result = try classifier.classify(contentsOf: URL(fileURLWithPath: path), topK: 3)
        let labels = result.top.map { candidate in
            "\(candidate.label) \(String(format: "%.1f", candidate.probability * 100))%"
        }
        print("\(path): \(labels.joined(separator: ", "))")
    }
} catch {
    // The package's errors describe themselves on one line, naming the file.
    let line = "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
    printError("error: \(line)")
    exit(1)
}
