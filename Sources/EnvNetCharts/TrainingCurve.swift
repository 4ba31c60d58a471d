import EnvNetModel
import Foundation

extension Charts {
    /// The most validation points that still get a marker each; denser validation reads as a line.
    static let validationMarkerLimit = 20

    /// The training curve of a run: loss on one chart, training and validation accuracy on another,
    /// stacked in one SVG.
    ///
    /// Validation usually runs every few epochs or only after the last one, so its points are
    /// drawn as circles when there are at most 20 of them: a line through one point is invisible.
    ///
    /// - Parameters:
    ///   - history: The epochs' records in order.
    ///   - title: The run's name, prefixed to both charts' titles.
    /// - Returns: The SVG document.
    public static func trainingCurve(history: [EpochRecord], title: String = "Training") -> String {
        let loss = lineChart(
            title: "\(title): loss", xLabel: "epoch", yLabel: "loss",
            series: [Series(name: "training loss", points: history.map { (Double($0.epoch), $0.loss) }, color: color(0))])
        var accuracySeries = [Series(name: "training", points: history.map { (Double($0.epoch), $0.trainAccuracy * 100) }, color: color(0))]
        let validated = history.compactMap { record in record.validationAccuracy.map { (Double(record.epoch), $0 * 100) } }
        if !validated.isEmpty {
            accuracySeries.append(Series(name: "validation", points: validated, color: color(1),
                                         showsMarkers: validated.count <= validationMarkerLimit))
        }
        let accuracy = lineChart(title: "\(title): accuracy", xLabel: "epoch", yLabel: "accuracy (%)", series: accuracySeries, yRange: 0...100)
        // Two charts one above the other: strip the outer <svg> of each and offset the second.
        func body(_ svg: String) -> String {
            var lines = svg.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            lines.removeFirst()  // <svg ...>
            while let last = lines.last, last.isEmpty || last == "</svg>" { lines.removeLast() }
            return lines.joined(separator: "\n")
        }
        return header(width: 720, height: 840) + "<g>\n" + body(loss) + "\n</g>\n<g transform=\"translate(0 420)\">\n"
            + body(accuracy) + "\n</g>\n</svg>\n"
    }
}
