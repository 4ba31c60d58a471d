import EnvNetModel
import Foundation
import EnvNetCharts
import Testing

@Suite("Embeddings and PCA")
struct EmbeddingTests {
    static let length = EnvNetConfiguration().inputLength

    /// Gaussian-ish samples (sum of uniforms) from a seeded generator.
    static func normal(_ generator: inout SeededGenerator) -> Double {
        (0..<12).reduce(0) { sum, _ in sum + Double.random(in: 0..<1, using: &generator) } - 6
    }

    /// `count` points of dimension `dimension`: unit noise plus a large spread along `direction`.
    static func cloud(count: Int, dimension: Int, direction: [Double], spread: Double, seed: UInt64) -> [[Float]] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            let along = spread * normal(&generator)
            return (0..<dimension).map { Float(3 + along * direction[$0] + normal(&generator)) }
        }
    }

    static func unit(_ vector: [Double]) -> [Double] {
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return vector.map { $0 / norm }
    }

    static func dot(_ a: [Float], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * $1.1 } }

    // MARK: - PCA

    @Test(arguments: [(400, 6), (40, 120)])  // the covariance path (d <= n) and the Gram path (d > n)
    func findsTheDominantDirection(shape: (count: Int, dimension: Int)) throws {
        let direction = Self.unit((0..<shape.dimension).map { Double(($0 * 7) % 5) - 1.5 })
        let vectors = Self.cloud(count: shape.count, dimension: shape.dimension, direction: direction, spread: 30, seed: 1)
        let pca = try PrincipalComponentAnalysis(fitting: vectors, componentCount: 2)
        #expect(pca.components.count == 2 && pca.components.allSatisfy { $0.count == shape.dimension })
        #expect(abs(abs(Self.dot(pca.components[0], direction)) - 1) < 0.01)
        // Unit, orthogonal axes.
        #expect(abs(Self.dot(pca.components[0], pca.components[0].map(Double.init)) - 1) < 1e-4)
        #expect(abs(Self.dot(pca.components[1], pca.components[1].map(Double.init)) - 1) < 1e-4)
        #expect(abs(Self.dot(pca.components[0], pca.components[1].map(Double.init))) < 1e-3)
        // Variance about 900 along the direction and about 1 along every other axis: the first
        // component explains about the sample variance along the direction (slightly more, as it
        // is the maximum), out of the sample's total variance.
        let count = Double(shape.count)
        let columnMeans = (0..<shape.dimension).map { column in vectors.reduce(0) { $0 + Double($1[column]) } / count }
        let total = vectors.reduce(0) { sum, vector in
            sum + vector.indices.reduce(0) { $0 + (Double(vector[$1]) - columnMeans[$1]) * (Double(vector[$1]) - columnMeans[$1]) }
        } / (count - 1)
        let along = vectors.map { vector in vector.indices.reduce(0) { $0 + (Double(vector[$1]) - columnMeans[$1]) * direction[$1] } }
        let alongVariance = along.reduce(0) { $0 + $1 * $1 } / (count - 1)
        #expect(abs(pca.totalVariance - total) < 1e-6 * total)
        let ratios = pca.explainedVarianceRatio
        let expected = alongVariance / total
        #expect(ratios[0] >= expected - 1e-4 && ratios[0] < expected + 0.02, "ratio \(ratios[0]), expected about \(expected)")
        #expect(ratios[0] > 0.8)
        #expect(ratios[1] < 0.1 && ratios[1] <= ratios[0])
        #expect(pca.mean.allSatisfy { abs($0 - 3) < 2 })
        // The explained variance is the variance of the projections.
        let projections = try pca.project(vectors)
        for component in 0..<2 {
            let values = projections.map { Double($0[component]) }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
            #expect(abs(mean) < 1e-3 * max(1, variance.squareRoot()))
            #expect(abs(variance - pca.explainedVariance[component]) < 1e-3 * pca.explainedVariance[component])
        }
        // The sign rule: the largest coordinate of each axis is positive.
        for axis in pca.components {
            let largest = axis.indices.max { abs(axis[$0]) < abs(axis[$1]) }!
            #expect(axis[largest] > 0)
        }
    }

    @Test func pointsOnALineHaveOneComponent() throws {
        let vectors: [[Float]] = (0..<10).map { [Float($0), 2 * Float($0), 1] }
        let pca = try PrincipalComponentAnalysis(fitting: vectors, componentCount: 2)
        let expected = Self.unit([1, 2, 0])
        #expect(abs(Self.dot(pca.components[0], expected) - 1) < 1e-5)
        #expect(abs(pca.explainedVarianceRatio[0] - 1) < 1e-5)
        #expect(pca.explainedVariance[1] < 1e-4)
        #expect(abs(pca.totalVariance - 5 * 55.0 / 6) < 1e-9)  // var(0..9) = 55/6, times 1 + 4
        let projected = try pca.project([[0, 0, 1]])
        #expect(abs(projected[0][0] + 4.5 * Float(5).squareRoot()) < 1e-4)
    }

    @Test func pcaRejectsBadInput() {
        func rejected(_ vectors: [[Float]], _ count: Int = 2) -> Bool {
            do {
                _ = try PrincipalComponentAnalysis(fitting: vectors, componentCount: count)
                return false
            } catch let error as EnvNetError {
                guard case .invalidInput = error else { return false }
                return true
            } catch {
                return false
            }
        }
        #expect(rejected([]))
        #expect(rejected([[1, 2]]))
        #expect(rejected([[1, 2], [1, 2, 3]]))
        #expect(rejected([[1, 2], [.nan, 2]]))
        #expect(rejected([[], []]))
        #expect(rejected([[1, 2], [3, 4]], 0))
        #expect(rejected([[1, 2], [3, 4]], 3))
        #expect(!rejected([[1, 2], [3, 4]], 2))
        #expect(throws: EnvNetError.self) { try PrincipalComponentAnalysis(fitting: [[1, 2], [3, 4]]).project([[1]]) }
    }

    // MARK: - Embeddings

    @Test func embeddingsAreTheMeanRelu6OverTheVotingWindows() throws {
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: 2)
        network.train()
        let extractor = try EmbeddingExtractor(network: network)
        var generator = SeededGenerator(seed: 3)
        // Three windows (the middle one silent and dropped): 0.3 s of loud noise, quiet, loud.
        let count = Self.length + 2 * 3200
        let clip = (0..<count).map { index -> Float in
            let loud = index < 3200 || index >= count - 3200
            return (loud ? 0.9 : 0.1) * Float.random(in: -1...1, using: &generator)
        }
        let embedding = try extractor.embedding(of: clip)
        #expect(embedding.count == 8)
        #expect(embedding.allSatisfy { $0 >= 0 && $0.isFinite })  // after a ReLU
        #expect(network.isTraining)  // the mode is restored
        network.eval()
        let windows = [Array(clip[0..<Self.length]), Array(clip[(2 * 3200)..<(2 * 3200 + Self.length)])]
        let features = network.features(Tensor(windows.flatMap { $0 }, shape: [2, 1, 1, Self.length]), upTo: "relu6")
        #expect(features.shape == [2, 8])
        let rows = features.scalars
        for unit in 0..<8 { #expect(abs(embedding[unit] - (rows[unit] + rows[8 + unit]) / 2) < 1e-5) }
    }

    @Test func embeddingsOfClipsAndTheirAnalysis() throws {
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: 5)
        let extractor = try EmbeddingExtractor(network: network, batchSize: 2)
        var generator = SeededGenerator(seed: 6)
        // Short clips: one padded window each. One clip is all zeros: it still gets an embedding.
        let clips = (0..<4).map { index in
            LabeledClip(samples: index == 3 ? [Float](repeating: 0, count: 500)
                            : (0..<8000).map { _ in Float(index + 1) * 0.25 * Float.random(in: -1...1, using: &generator) },
                        label: index % 2, name: "clip, \(index).wav")
        }
        var progress: [Int] = []
        let embeddings = try extractor.embeddings(of: clips) { done, total in
            #expect(total == 4)
            progress.append(done)
        }
        #expect(progress == [1, 2, 3, 4])
        #expect(embeddings.count == 4 && embeddings.dimension == 8)
        #expect(embeddings.names == clips.map(\.name) && embeddings.labels == [0, 1, 0, 1])

        let analysis = try EmbeddingAnalysis(embeddings: embeddings, classNames: ["dog", "rain"])
        #expect(analysis.coordinates.count == 4 && analysis.coordinates.allSatisfy { $0.count == 2 })
        let csv = embeddings.csv(classNames: ["dog", "rain"])
        let lines = csv.split(separator: "\n")
        #expect(lines.count == 5)
        #expect(lines[0] == "name,label,class,e0,e1,e2,e3,e4,e5,e6,e7")
        #expect(lines[1].hasPrefix("\"clip, 0.wav\",0,dog,"))
        #expect(lines[1].split(separator: ",").count == 12)  // the quoted name holds one comma
        let pcaLines = analysis.coordinatesCSV.split(separator: "\n")
        #expect(pcaLines.count == 5 && pcaLines[0] == "name,label,class,pc1,pc2")
        let svg = analysis.scatterSVG()
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        #expect(svg.components(separatedBy: "<circle").count - 1 == 4 + 2)  // points plus legend markers
        #expect(svg.contains("dog (2)") && svg.contains("rain (2)") && svg.contains("PC1 ("))

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-embedding-tests-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try analysis.write(to: folder)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("pca.svg").path), "the model library draws no chart")
        try analysis.writeCharts(to: folder)
        for name in ["embeddings.csv", "pca.csv", "pca.svg"] {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path))
        }
        #expect(try String(contentsOf: folder.appendingPathComponent("pca.csv"), encoding: .utf8) == analysis.coordinatesCSV)
    }

    @Test func embeddingInputsAreChecked() throws {
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8))
        #expect(throws: EnvNetError.self) { try EmbeddingExtractor(network: network, layer: "fc99") }
        #expect(throws: EnvNetError.self) { try EmbeddingExtractor(network: network, batchSize: 0) }
        let extractor = try EmbeddingExtractor(network: network)
        #expect(throws: EnvNetError.self) { try extractor.embedding(of: [0, .nan]) }
        #expect(throws: EnvNetError.self) { try extractor.embeddings(of: []) }
        #expect(throws: EnvNetError.self) { try ClipEmbeddings(names: ["a"], labels: [0, 1], vectors: [[1]]) }
        #expect(throws: EnvNetError.self) { try ClipEmbeddings(names: ["a", "b"], labels: [0, 1], vectors: [[1], [1, 2]]) }
        #expect(throws: EnvNetError.self) { try ClipEmbeddings(names: ["a"], labels: [-1], vectors: [[1]]) }
        let embeddings = try ClipEmbeddings(names: ["a", "b", "c"], labels: [0, 1, 2], vectors: [[1, 2], [3, 5], [0, 1]])
        #expect(throws: EnvNetError.self) { try EmbeddingAnalysis(embeddings: embeddings, classNames: ["x", "y"]) }
        let oneDimensional = try ClipEmbeddings(names: ["a", "b"], labels: [0, 0], vectors: [[1], [2]])
        #expect(throws: EnvNetError.self) { try EmbeddingAnalysis(embeddings: oneDimensional, classNames: ["x"]) }
    }

    @Test func scatterPlotColoursGroupsAndSkipsNonFinitePoints() {
        let points = [Charts.ScatterPoint(x: 0, y: 0, group: 0, name: "a<b"), Charts.ScatterPoint(x: 1, y: 2, group: 12),
                      Charts.ScatterPoint(x: .nan, y: 1, group: 1)]
        let svg = Charts.scatterPlot(title: "T", xLabel: "x", yLabel: "y", points: points, groupNames: ["zero", "one"])
        #expect(svg.contains("<title>a&lt;b</title>"))
        #expect(svg.contains("zero (1)") && svg.contains("one (0)") && svg.contains("group 12 (1)"))
        #expect(svg.components(separatedBy: "<circle").count - 1 == 2 + 3)
        #expect(Set((0..<50).map(Charts.categoricalColor)).count == 50)
        // A long legend makes the image taller.
        let tall = Charts.scatterPlot(title: "T", xLabel: "x", yLabel: "y", points: [], groupNames: (0..<50).map { "class \($0)" })
        #expect(tall.contains("height=\"") && !tall.contains("height=\"520\""))
    }
}
