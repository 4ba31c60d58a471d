import Foundation

/// Clip embeddings: what the network's penultimate layer makes of each clip.
///
/// A clip's embedding is the fc6 activation after its ReLU (`relu6`, before dropout; evaluation
/// mode) of every window the evaluation scheme takes from the clip — by default the probability
/// voting windows: 1.5 s, 0.2 s hop, silent windows dropped, the loudest kept for an all-silent
/// clip — averaged over those windows. The result has `hiddenUnits` values (4096 for the
/// paper's sizes) and describes the clip independently of the classifier head, so it can be
/// used for retrieval, clustering or a new classifier, and visualized with
/// ``PrincipalComponentAnalysis``.
///
/// ```swift
/// let (network, _) = try EnvNet.load(from: weightsURL)
/// let extractor = try EmbeddingExtractor(network: network)
/// let embeddings = try extractor.embeddings(of: clips)
/// let analysis = try EmbeddingAnalysis(embeddings: embeddings, classNames: classNames)
/// try analysis.write(to: outputFolder)   // embeddings.csv, pca.csv
/// ```
///
/// The extractor keeps a reference to the network and is not `Sendable`: use it from one task
/// at a time, as the network is not thread-safe.
public struct EmbeddingExtractor {
    /// The layer whose output is the embedding by default: fc6 after its ReLU (EnvNet's).
    public static let defaultLayer = "relu6"

    /// The last hidden layer after its ReLU, before dropout: `relu6` for EnvNet, `relu12` for EnvNet-v2, `bn3` (ReLU fused) for the log-mel CNN.
    public static func defaultLayer(for architecture: NetworkArchitecture) -> String {
        architecture.embeddingLayerName
    }

    /// The network.
    public let network: any ClassifierNetwork
    /// The layer whose output is taken (``defaultLayer`` unless chosen otherwise).
    public let layer: String
    /// Which windows of a clip are embedded and averaged.
    public let scheme: EvaluationScheme
    /// The most windows per forward pass.
    public let batchSize: Int
    /// Windows with `max |x| <=` this value are dropped under probability voting.
    public let silenceThreshold: Float
    private let windowing: ClipEvaluator

    /// Creates an extractor.
    ///
    /// - Parameters:
    ///   - network: The trained network; it runs in evaluation mode (its mode is restored afterwards).
    ///   - layer: The layer whose output is the embedding (`relu6` by default; any layer name works,
    ///     its output is flattened per window).
    ///   - scheme: The windows to average (the seed article's probability voting by default).
    ///   - batchSize: The most windows per forward pass, at least 1.
    ///   - silenceThreshold: The silence threshold of probability voting.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for an unknown layer, an invalid scheme, batch
    ///   size or threshold.
    public init(network: any ClassifierNetwork, layer: String? = nil, scheme: EvaluationScheme? = nil,
                batchSize: Int = 16, silenceThreshold: Float = 0.2) throws {
        let layer = layer ?? Self.defaultLayer(for: network.architecture)
        let scheme = scheme ?? .probabilityVoting(network: network.architecture)
        let names = network.layerNames
        guard names.contains(layer) else {
            throw EnvNetError.invalidInput("the network has no layer named \(layer); layers: \(names.joined(separator: ", "))")
        }
        self.network = network
        self.layer = layer
        self.scheme = scheme
        self.batchSize = batchSize
        self.silenceThreshold = silenceThreshold
        // Only its window selection is used; windows are scored here, not by the evaluator.
        self.windowing = try ClipEvaluator(windowLength: network.inputLength, classCount: 1, scheme: scheme,
                                           batchSize: batchSize, silenceThreshold: silenceThreshold,
                                           silenceRule: network.silenceRule(peakThreshold: silenceThreshold)) { _ in [] }
    }

    /// The embedding of one clip: the layer's output averaged over the clip's windows.
    ///
    /// - Parameters:
    ///   - samples: The preprocessed clip (16 kHz, normalized as in training); an empty or silent
    ///     clip still gets an embedding (from one window).
    ///   - name: Names the clip in errors.
    /// - Returns: The mean activation, `hiddenUnits` values for `relu6`.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for non-finite samples or non-finite activations
    ///   (damaged weights).
    public func embedding(of samples: [Float], name: String = "clip") throws -> [Float] {
        let windows = try windowing.windows(of: samples, name: name)
        let length = network.inputLength
        let wasTraining = network.isTraining
        network.eval()
        defer { if wasTraining { network.train() } }
        var sums: [Double] = []
        var first = 0
        while first < windows.count {
            let end = Swift.min(first + batchSize, windows.count)
            var flat = [Float]()
            flat.reserveCapacity((end - first) * length)
            for window in windows[first..<end] { flat.append(contentsOf: window) }
            let output = network.features(Tensor(flat, shape: [end - first, 1, 1, length]), upTo: layer)
            let values = output.scalars
            let width = values.count / (end - first)
            if sums.isEmpty { sums = [Double](repeating: 0, count: width) }
            for row in 0..<(end - first) {
                for column in 0..<width {
                    let value = values[row * width + column]
                    guard value.isFinite else {
                        throw EnvNetError.invalidInput("\(name): \(layer) activation \(column) of window \(first + row) is \(value) (damaged weights?)")
                    }
                    sums[column] += Double(value)
                }
            }
            first = end
        }
        return sums.map { Float($0 / Double(windows.count)) }
    }

    /// The embeddings of many clips, one after the other.
    ///
    /// - Parameters:
    ///   - clips: The clips with their labels (for example `PreparedDataset.clips(inFolds:)`).
    ///   - progress: Called after every clip with (clips done, clips in total).
    /// - Returns: One embedding per clip, in clip order.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for an empty list and for the problems
    ///   ``embedding(of:name:)`` reports.
    public func embeddings(of clips: [LabeledClip], progress: ((_ completed: Int, _ total: Int) -> Void)? = nil) throws -> ClipEmbeddings {
        guard !clips.isEmpty else { throw EnvNetError.invalidInput("no clips to embed") }
        var vectors: [[Float]] = []
        vectors.reserveCapacity(clips.count)
        for (position, clip) in clips.enumerated() {
            vectors.append(try embedding(of: clip.samples, name: clip.name))
            progress?(position + 1, clips.count)
        }
        return try ClipEmbeddings(names: clips.map(\.name), labels: clips.map(\.label), vectors: vectors)
    }
}

/// Embeddings of clips, with their names and labels.
public struct ClipEmbeddings: Sendable, Hashable {
    /// The clips' names (file names for a dataset).
    public let names: [String]
    /// The clips' class labels.
    public let labels: [Int]
    /// One embedding per clip, all of ``dimension`` values.
    public let vectors: [[Float]]

    /// Bundles embeddings.
    ///
    /// - Parameters:
    ///   - names: One name per clip.
    ///   - labels: One label per clip, non-negative.
    ///   - vectors: One embedding per clip, all of the same positive length, finite.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` when the counts or lengths disagree, a label is
    ///   negative or a value is not finite.
    public init(names: [String], labels: [Int], vectors: [[Float]]) throws {
        guard names.count == vectors.count, labels.count == vectors.count else {
            throw EnvNetError.invalidInput("\(names.count) names and \(labels.count) labels for \(vectors.count) embeddings")
        }
        let dimension = vectors.first?.count ?? 0
        for (index, vector) in vectors.enumerated() {
            guard vector.count == dimension, dimension > 0 else {
                throw EnvNetError.invalidInput("embedding \(index) has \(vector.count) values; expected \(dimension) (and at least 1)")
            }
            if let bad = vector.firstIndex(where: { !$0.isFinite }) {
                throw EnvNetError.invalidInput("embedding \(index) (\(names[index])) has the non-finite value \(vector[bad]) at \(bad)")
            }
        }
        if let bad = labels.firstIndex(where: { $0 < 0 }) {
            throw EnvNetError.invalidInput("label \(labels[bad]) of \(names[bad]) is negative")
        }
        self.names = names
        self.labels = labels
        self.vectors = vectors
    }

    /// The number of clips.
    public var count: Int { vectors.count }
    /// The length of every embedding.
    public var dimension: Int { vectors.first?.count ?? 0 }

    /// The embeddings as CSV: `name,label,class,e0,e1,…` with one row per clip.
    ///
    /// - Parameter classNames: Names for the labels (a label without a name is written as `class N`).
    /// - Returns: The CSV text.
    public func csv(classNames: [String]) -> String {
        var text = "name,label,class," + (0..<dimension).map { "e\($0)" }.joined(separator: ",") + "\n"
        for index in 0..<count {
            text += CSVText.field(names[index]) + ",\(labels[index]),"
            text += CSVText.field(labels[index] < classNames.count ? classNames[labels[index]] : "class \(labels[index])")
            for value in vectors[index] { text += "," + String(format: "%.6g", value) }
            text += "\n"
        }
        return text
    }
}

/// Principal component analysis through LAPACK: the eigenvectors of the sample covariance
/// matrix with the largest eigenvalues.
///
/// With `n` vectors of dimension `d`, the `d x d` covariance `Xᵀ X / (n - 1)` of the centred data
/// `X` is decomposed when `d <= n`; otherwise the `n x n` Gram matrix `X Xᵀ / (n - 1)`, which has
/// the same non-zero eigenvalues, and each component is recovered as `Xᵀ u` normalized
/// (so 400 clips of 4096 values cost a 400 x 400 eigendecomposition). Both go through
/// `symmetricEigendecomposition()` (LAPACKE `ssyevd`).
///
/// Each component's sign is fixed so that its largest-magnitude coordinate is positive, so the
/// result does not depend on LAPACK's sign choice.
public struct PrincipalComponentAnalysis: Sendable, Hashable {
    /// The mean of the data, subtracted before projecting.
    public let mean: [Float]
    /// The principal axes, unit vectors, by decreasing variance.
    public let components: [[Float]]
    /// The variance along each component (the covariance eigenvalues, divisor `n - 1`).
    public let explainedVariance: [Double]
    /// The total variance of the data (the trace of the covariance).
    public let totalVariance: Double

    /// The fraction of the total variance along each component (0 when the data has no variance).
    public var explainedVarianceRatio: [Double] {
        explainedVariance.map { totalVariance > 0 ? $0 / totalVariance : 0 }
    }

    /// Fits the principal components of a set of vectors.
    ///
    /// - Parameters:
    ///   - vectors: At least 2 vectors, all of the same positive length, finite.
    ///   - componentCount: How many components to keep, from 1 to `min(count, dimension)`.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for too few vectors, unequal lengths, non-finite
    ///   values or a bad component count; `TensorError` when LAPACK fails.
    public init(fitting vectors: [[Float]], componentCount: Int = 2) throws {
        let n = vectors.count
        guard n >= 2 else { throw EnvNetError.invalidInput("PCA needs at least 2 vectors, got \(n)") }
        let d = vectors[0].count
        for (index, vector) in vectors.enumerated() {
            guard vector.count == d, d > 0 else {
                throw EnvNetError.invalidInput("vector \(index) has \(vector.count) values; expected \(d) (and at least 1)")
            }
            if let bad = vector.firstIndex(where: { !$0.isFinite }) {
                throw EnvNetError.invalidInput("vector \(index) has the non-finite value \(vector[bad]) at \(bad)")
            }
        }
        guard componentCount >= 1, componentCount <= Swift.min(n, d) else {
            throw EnvNetError.invalidInput("the component count must be between 1 and \(Swift.min(n, d)), got \(componentCount)")
        }
        var sums = [Double](repeating: 0, count: d)
        for vector in vectors {
            for (column, value) in vector.enumerated() { sums[column] += Double(value) }
        }
        let mean = sums.map { $0 / Double(n) }
        var centred = [Float](repeating: 0, count: n * d)
        var squares: Double = 0
        for (row, vector) in vectors.enumerated() {
            for column in 0..<d {
                let value = Double(vector[column]) - mean[column]
                centred[row * d + column] = Float(value)
                squares += value * value
            }
        }
        let scale = 1 / Float(n - 1)
        let data = Tensor(centred, shape: [n, d])
        var components: [[Float]] = []
        var variances: [Double] = []
        if d <= n {
            let covariance = data.permuted([1, 0]).matmul(data) * scale
            let (values, vectors) = try covariance.symmetricEigendecomposition()
            let eigenvalues = values.scalars, eigenvectors = vectors.scalars
            for rank in 0..<componentCount {
                let column = d - 1 - rank
                components.append((0..<d).map { eigenvectors[$0 * d + column] })
                variances.append(Swift.max(Double(eigenvalues[column]), 0))
            }
        } else {
            let gram = data.matmul(data.permuted([1, 0])) * scale
            let (values, vectors) = try gram.symmetricEigendecomposition()
            let eigenvalues = values.scalars
            let columns = vectors.permuted([1, 0]).narrowed(axis: 0, start: n - componentCount, length: componentCount)
            // Xᵀ u for the top eigenvectors u: [k, n] x [n, d].
            let recovered = columns.matmul(data).scalars
            for rank in 0..<componentCount {
                let row = componentCount - 1 - rank
                var axis = Array(recovered[(row * d)..<((row + 1) * d)])
                let norm = axis.reduce(Double(0)) { $0 + Double($1) * Double($1) }.squareRoot()
                if norm > 0 { axis = axis.map { Float(Double($0) / norm) } }
                components.append(axis)
                variances.append(Swift.max(Double(eigenvalues[n - 1 - rank]), 0))
            }
        }
        // A deterministic sign: the largest-magnitude coordinate is positive.
        components = components.map { axis in
            var largest = 0
            for index in axis.indices where Swift.abs(axis[index]) > Swift.abs(axis[largest]) { largest = index }
            return axis[largest] < 0 ? axis.map { -$0 } : axis
        }
        self.mean = mean.map { Float($0) }
        self.components = components
        self.explainedVariance = variances
        self.totalVariance = squares / Double(n - 1)
    }

    /// The coordinates of vectors along the components.
    ///
    /// - Parameter vectors: Vectors of the fitted dimension.
    /// - Returns: One row of `components.count` coordinates per vector.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for a vector of another length.
    public func project(_ vectors: [[Float]]) throws -> [[Float]] {
        try vectors.enumerated().map { index, vector in
            guard vector.count == mean.count else {
                throw EnvNetError.invalidInput("vector \(index) has \(vector.count) values; the PCA was fitted to \(mean.count)")
            }
            return components.map { axis in
                var sum: Double = 0
                for column in vector.indices { sum += (Double(vector[column]) - Double(mean[column])) * Double(axis[column]) }
                return Float(sum)
            }
        }
    }
}

/// Embeddings with their two-dimensional PCA: the data behind `envnet embed`.
public struct EmbeddingAnalysis: Sendable {
    /// The clip embeddings.
    public let embeddings: ClipEmbeddings
    /// The class names that label the plot and the CSV files.
    public let classNames: [String]
    /// The fitted PCA (2 components).
    public let pca: PrincipalComponentAnalysis
    /// Each clip's coordinates along the two components.
    public let coordinates: [[Float]]

    /// Fits a 2-component PCA to the embeddings and projects them.
    ///
    /// - Parameters:
    ///   - embeddings: At least 2 clips of dimension at least 2.
    ///   - classNames: Names for the labels.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for too few clips, a dimension below 2 or a label
    ///   without a class name; `TensorError` when LAPACK fails.
    public init(embeddings: ClipEmbeddings, classNames: [String]) throws {
        if let bad = embeddings.labels.firstIndex(where: { $0 >= classNames.count }) {
            throw EnvNetError.invalidInput("label \(embeddings.labels[bad]) of \(embeddings.names[bad]) has no class name (\(classNames.count) names)")
        }
        guard embeddings.dimension >= 2 else { throw EnvNetError.invalidInput("a 2-D PCA needs embeddings of at least 2 values, got \(embeddings.dimension)") }
        self.embeddings = embeddings
        self.classNames = classNames
        self.pca = try PrincipalComponentAnalysis(fitting: embeddings.vectors, componentCount: 2)
        self.coordinates = try pca.project(embeddings.vectors)
    }

    /// The 2-D coordinates as CSV: `name,label,class,pc1,pc2`.
    public var coordinatesCSV: String {
        var text = "name,label,class,pc1,pc2\n"
        for index in 0..<embeddings.count {
            let label = embeddings.labels[index]
            text += "\(CSVText.field(embeddings.names[index])),\(label),\(CSVText.field(classNames[label])),"
            text += String(format: "%.6g,%.6g\n", coordinates[index][0], coordinates[index][1])
        }
        return text
    }

    /// Writes `embeddings.csv` and `pca.csv` into a folder, each atomically (EnvNetCharts adds `pca.svg`).
    ///
    /// - Parameter folder: The folder (created when missing).
    /// - Throws: `FileWriteError` naming the file that could not be written.
    public func write(to folder: URL) throws {
        try AtomicFile.checkWritableFolder(folder)
        try AtomicFile.write(embeddings.csv(classNames: classNames), to: folder.appendingPathComponent("embeddings.csv"))
        try AtomicFile.write(coordinatesCSV, to: folder.appendingPathComponent("pca.csv"))
    }
}
