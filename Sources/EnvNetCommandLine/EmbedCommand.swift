import EnvNetCharts
import ArgumentParser
import EnvNetModel
import Foundation

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Clip embeddings (the last hidden layer averaged over the voting windows) and their 2-D PCA plot.",
        discussion: """
            Runs every selected clip's probability-voting windows (EnvNet's: 1.5 s, 0.2 s hop; silent \
            windows dropped) through the network up to its last hidden layer after ReLU, before \
            dropout (relu6 for EnvNet, relu12 for EnvNet-v2, bn3 for the log-mel CNN) and averages \
            them: one hiddenUnits-long vector per clip (4096 for the paper's sizes). A principal \
            component analysis (LAPACK eigendecomposition of the covariance) maps them to 2-D. \
            Writes to --output: embeddings.csv (name,label,class,e0,e1,...), pca.csv \
            (name,label,class,pc1,pc2) and pca.svg (the scatter plot, one colour per class). \
            The weights' classes need not match the dataset's: the plot is coloured by the dataset's labels.

            Each window costs about 0.8 GFLOP: a fold of ESC-50 (400 clips of 5 s) is 3600 windows.

            Examples:
              envnet embed --weights model.safetensors --data ESC-50 --fold 5 --output emb
              envnet embed --weights m.safetensors --data ESC-10 --subset esc10 --output e10
            """)

    @Option(help: "The weights (safetensors).") var weights: String
    @OptionGroup var data: DataOptions
    @Option(help: "The fold to embed, or all.") var fold = "all"
    @Option(help: "The output folder.") var output: String

    func validate() throws {
        guard fold == "all" || Int(fold) != nil else { throw ValidationError("--fold must be a fold number or all, not \(fold)") }
    }

    func run() throws {
        let folder = URL(fileURLWithPath: output)
        try AtomicFile.checkWritableFolder(folder)
        let (network, model) = try ModelFile.load(from: URL(fileURLWithPath: weights))
        let progress = ProgressReporter()
        // The model's own preprocessing (its rate, and its normalization unless --normalization is given).
        let settings = data.normalization.map { DataOptions.settings(normalization: $0, sampleRate: model.sampleRate) } ?? model.preprocessing
        let prepared = try data.prepare(try data.dataset(seed: 0), settings: settings, progress: progress)
        let folds: Set<Int>
        if let number = Int(fold) {
            guard prepared.dataset.folds.contains(number) else {
                throw ValidationError("fold \(number) is not in the dataset (folds \(prepared.dataset.folds))")
            }
            folds = [number]
        } else {
            folds = Set(prepared.dataset.folds)
        }
        let clips = prepared.clips(inFolds: folds)
        guard clips.count >= 2 else { throw ValidationError("the selection has \(clips.count) clip(s); a PCA needs at least 2") }
        let extractor = try EmbeddingExtractor(network: network)
        progress.begin("embedding")
        let embeddings = try extractor.embeddings(of: clips) { done, total in progress.update(done: done, total: total) }
        let analysis = try EmbeddingAnalysis(embeddings: embeddings, classNames: prepared.classNames)
        try analysis.write(to: folder)
        try analysis.writeCharts(to: folder)
        let ratios = analysis.pca.explainedVarianceRatio
        print(String(format: "%d clips, %d-dimensional embeddings (%@); PC1 explains %.1f%% and PC2 %.1f%% of the variance",
                     embeddings.count, embeddings.dimension, extractor.layer, ratios[0] * 100, ratios[1] * 100))
        print("wrote \(folder.path)/embeddings.csv, pca.csv, pca.svg")
    }
}
