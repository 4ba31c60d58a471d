import ArgumentParser
import EnvNetModel
import Foundation

struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the built-in synthetic dataset (ESC-50 layout, 10 classes, 5 folds, 44.1 kHz; or UrbanSound8K layout).",
        discussion: """
            The classes are procedurally generated environmental-like sounds (siren, engine, rain, \
            knock, bird chirp, clock tick, bell, wind, crackle, mains hum) with randomized parameters, \
            background noise, silent gaps and loudness. The folder reads like real ESC-50 data. \
            With --layout urbansound8k it reads like UrbanSound8K instead: audio/fold1..foldN and \
            metadata/UrbanSound8K.csv, two slices per source recording (fsID), clips of 0.3-4 s at \
            rates from 8 kHz to 192 kHz, mono or stereo, 16-bit or float.

            Examples:
              envnet synth --output /tmp/synthetic
              envnet synth --output /tmp/small --clips-per-class 10 --seed 7
              envnet synth --output /tmp/us8k --layout urbansound8k --clips-per-class 20
            """)

    @Option(help: "The folder to write (audio/, meta/esc50.csv).") var output: String
    @Option(help: "Clips per class.") var clipsPerClass = 40
    @Option(help: "Seed of the generator.") var seed: UInt64 = 0
    @Option(help: "esc50, or urbansound8k (10 folds).") var layout = "esc50"

    func validate() throws {
        guard ["esc50", "urbansound8k"].contains(layout) else { throw ValidationError("--layout must be esc50 or urbansound8k, not \(layout)") }
        let folds = layout == "esc50" ? 5 : 10
        guard clipsPerClass >= (layout == "esc50" ? 5 : 20) else {
            throw ValidationError("--clips-per-class must be at least \(layout == "esc50" ? 5 : 20) (one source per fold) for \(folds) folds")
        }
        try Limits.check(clipsPerClass, in: Limits.clipsPerClass, option: "--clips-per-class")
    }

    func run() throws {
        let root = URL(fileURLWithPath: output)
        let progress = ProgressReporter()
        progress.begin("synthesizing")
        if layout == "urbansound8k" {
            let count = try SyntheticDataset.generateUrbanSound8K(
                at: root, configuration: SyntheticDatasetConfiguration(clipsPerClass: clipsPerClass, seed: seed, duration: 4, folds: 10))
            print("wrote \(count) clips to \(root.path) (UrbanSound8K layout)")
            return
        }
        let clips = try SyntheticDataset.generate(
            at: root, configuration: SyntheticDatasetConfiguration(clipsPerClass: clipsPerClass, seed: seed),
            progress: { done, total in progress.update(done: done, total: total) })
        print("wrote \(clips.count) clips to \(root.path)")
    }
}
