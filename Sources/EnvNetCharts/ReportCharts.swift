import EnvNetModel
import Foundation

// The charts of the model library's reports: drawn here so that apps importing EnvNetModel carry
// no chart or PNG code.

extension EvaluationReport {
    /// `confusion_matrix.svg`: the confusion matrix as a heatmap with the counts in the cells
    /// (rows = true class, columns = predicted class), one vector rectangle per entry so the
    /// cells stay crisp in every renderer.
    ///
    /// - Parameter title: The chart title; by default the accuracy and clip count.
    /// - Returns: A self-contained SVG document.
    public func confusionMatrixSVG(title: String? = nil) -> String {
        Charts.heatmap(title: title ?? String(format: "Confusion matrix (accuracy %.1f %%, %d clips)", accuracy * 100, clipCount),
                       values: confusionMatrix.map { $0.map(Double.init) }, rowLabels: classNames, columnLabels: classNames,
                       xLabel: "predicted class", yLabel: "true class", cellText: true,
                       colorBarLabel: "clips", cells: .vector)
    }

    /// Writes `confusion_matrix.svg` into a folder (created if needed), atomically.
    /// - Parameter folder: The destination folder, usually the one ``write(to:)`` wrote.
    /// - Throws: `FileWriteError` naming the folder or file that cannot be written.
    public func writeCharts(to folder: URL) throws {
        try AtomicFile.checkWritableFolder(folder)
        try AtomicFile.write(confusionMatrixSVG(), to: folder.appendingPathComponent("confusion_matrix.svg"))
    }
}

extension EmbeddingAnalysis {
    /// The scatter plot of the 2-D coordinates, one colour per class, as SVG.
    ///
    /// - Parameter title: The chart title.
    /// - Returns: The SVG text.
    public func scatterSVG(title: String = "Clip embeddings (PCA of fc6)") -> String {
        let ratios = pca.explainedVarianceRatio
        let points = (0..<embeddings.count).map {
            Charts.ScatterPoint(x: Double(coordinates[$0][0]), y: Double(coordinates[$0][1]), group: embeddings.labels[$0], name: embeddings.names[$0])
        }
        return Charts.scatterPlot(title: title,
                                  xLabel: String(format: "PC1 (%.1f%% of the variance)", ratios[0] * 100),
                                  yLabel: String(format: "PC2 (%.1f%% of the variance)", ratios[1] * 100),
                                  points: points, groupNames: classNames)
    }

    /// Writes `pca.svg` into a folder (created if needed), atomically.
    /// - Parameter folder: The destination folder.
    /// - Throws: `FileWriteError` naming the file that could not be written.
    public func writeCharts(to folder: URL) throws {
        try AtomicFile.checkWritableFolder(folder)
        try AtomicFile.write(scatterSVG(), to: folder.appendingPathComponent("pca.svg"))
    }
}

extension FilterResponse {
    /// `filter_response.svg`: the sorted, normalized responses as a heatmap (x = frequency on a
    /// log axis with round ticks, y = filter sorted by peak frequency, lowest peak at the bottom
    /// as in a spectrogram), drawn as vector cells so that every renderer shows them crisp.
    ///
    /// - Parameter title: The chart title; by default it names the layer.
    /// - Returns: A self-contained SVG document.
    public func heatmapSVG(title: String? = nil) -> String {
        let rows = Array(sortedFilters.reversed())
        return Charts.heatmap(
            title: title ?? "Learned filters: \(layer) response to pure tones (sorted by peak frequency)",
            values: rows.map { normalizedResponses[$0].map(Double.init) },
            rowLabels: rows.map { "filter \($0)" },
            columnLabels: frequencies.map { String(format: "%.0f", $0) },
            xLabel: "frequency (Hz, log scale)", yLabel: "filter (sorted by peak frequency)", valueRange: 0...1,
            columnTicks: Self.frequencyTicks(for: frequencies),
            colorBarLabel: "response (1 = the filter's maximum)", cells: .vector)
    }

    /// Round frequencies (50, 100, 200, 500, 1k … and a round end of the grid such as 8k) placed
    /// on the heatmap's columns, or `nil` (label every column) for a grid that is not positive and
    /// strictly increasing.
    ///
    /// The columns sample the grid's frequencies, not a linear scale, so a tick's position is
    /// interpolated in log frequency between the two columns around it: on a log-spaced grid the
    /// ticks land exactly on the log axis, and on any other grid they still name the right columns.
    public static func frequencyTicks(for frequencies: [Double]) -> [Charts.AxisTick]? {
        guard frequencies.count >= 2, let lowest = frequencies.first, let highest = frequencies.last, lowest > 0,
              zip(frequencies, frequencies.dropFirst()).allSatisfy({ $0 < $1 && $1.isFinite }) else { return nil }
        return Charts.logTicks(lowest, highest).compactMap { frequency in
            guard let upper = frequencies.firstIndex(where: { $0 >= frequency * (1 - 1e-9) }) else { return nil }
            let index = Swift.max(upper, 1) - 1
            let low = Foundation.log(frequencies[index]), high = Foundation.log(frequencies[index + 1])
            let offset = Swift.min(Swift.max((Foundation.log(frequency) - low) / (high - low), 0), 1)
            return Charts.AxisTick(position: Double(index) + 0.5 + offset, label: Self.frequencyLabel(frequency))
        }
    }

    /// `50`, `500`, `1k`, `2.5k`: kilohertz abbreviated so that tick labels stay short.
    public static func frequencyLabel(_ frequency: Double) -> String {
        frequency >= 1000 ? Charts.format(frequency / 1000) + "k" : Charts.format(frequency)
    }

    /// Writes `filter_response.svg` into a folder (created if needed), atomically.
    /// - Parameter folder: The destination folder.
    /// - Throws: `FileWriteError` naming the folder or file that cannot be written.
    public func writeCharts(to folder: URL) throws {
        try AtomicFile.checkWritableFolder(folder)
        try AtomicFile.write(heatmapSVG(), to: folder.appendingPathComponent("filter_response.svg"))
    }
}
