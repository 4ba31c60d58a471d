import EnvNetModel
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import EnvNetCharts
import Testing

/// The report charts are meant for people: cells crisp in every renderer, sparse validation
/// visible, frequency axes with readable ticks and a colour bar that says what it measures.
///
/// Set `ENVNET_CHART_OUTPUT` to a folder to also write the charts there as SVG, for a look with
/// an image viewer or `rsvg-convert`.
@Suite("Report charts")
struct ChartTests {
    /// Writes `svg` into the folder named by `ENVNET_CHART_OUTPUT`, when set.
    static func keep(_ svg: String, as name: String) throws {
        guard let folder = ProcessInfo.processInfo.environment["ENVNET_CHART_OUTPUT"], !folder.isEmpty else { return }
        let url = URL(fileURLWithPath: folder, isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try Data(svg.utf8).write(to: url.appendingPathComponent(name))
    }

    static func occurrences(of needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    /// The value of `attribute` in every element whose text starts with `prefix`, with the
    /// element's text content.
    static func elements(startingWith prefix: String, attribute: String, in svg: String) -> [(value: String, text: String)] {
        svg.components(separatedBy: prefix).dropFirst().compactMap { element in
            guard let start = element.range(of: " \(attribute)=\"") else { return nil }
            let value = element[start.upperBound...].prefix { $0 != "\"" }
            guard let close = element.firstIndex(of: ">") else { return nil }
            let text = element[element.index(after: close)...].prefix { $0 != "<" }
            return (String(value), String(text))
        }
    }

    static func isWellFormed(_ svg: String) -> Bool {
        XMLParser(data: Data(svg.utf8)).parse()
    }

    static func confusionReport(classes: Int, seed: Int) throws -> EvaluationReport {
        var predictions: [ClipPrediction] = []
        for trueLabel in 0..<classes {
            for clip in 0..<8 {
                // Mostly right, with a few confusions spread over the other classes.
                let predicted = (clip + trueLabel + seed) % 5 == 0 ? (trueLabel + 1 + clip) % classes : trueLabel
                var probabilities = [Float](repeating: 0.1 / Float(Swift.max(classes - 1, 1)), count: classes)
                probabilities[predicted] = 0.9
                predictions.append(ClipPrediction(name: "clip-\(trueLabel)-\(clip)", trueLabel: trueLabel, probabilities: probabilities,
                                                  predictedLabel: predicted, windowCount: 3))
            }
        }
        let names = ["air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling", "engine_idling",
                     "gun_shot", "jackhammer", "siren", "street_music"]
        return try EvaluationReport(predictions: predictions, classNames: Array(names.prefix(classes)))
    }

    @Test(arguments: [3, 10])
    func confusionMatrixHasOneVectorCellPerEntryAndNoBitmap(classes: Int) throws {
        let svg = try Self.confusionReport(classes: classes, seed: 0).confusionMatrixSVG()
        try Self.keep(svg, as: "confusion_matrix_\(classes)x\(classes).svg")
        #expect(Self.isWellFormed(svg))
        #expect(Self.occurrences(of: "<rect class=\"cell\"", in: svg) == classes * classes)
        #expect(Self.occurrences(of: "class=\"cell\"", in: svg) == classes * classes)
        #expect(!svg.contains("<image") && !svg.contains("data:image"))
        // Every cell carries its own colour.
        let fills = Self.elements(startingWith: "<rect class=\"cell\"", attribute: "fill", in: svg).map(\.value)
        #expect(fills.count == classes * classes && fills.allSatisfy { $0.hasPrefix("#") && $0.count == 7 })
        #expect(svg.contains("class=\"color-bar-label\"") && svg.contains(">clips</text>"))
    }

    static func record(epoch: Int, validation: Double?) -> EpochRecord {
        EpochRecord(epoch: epoch, learningRate: 0.01, loss: 2.3 / Double(epoch), trainAccuracy: 1 - 0.9 / Double(epoch),
                    validationAccuracy: validation, seconds: 1)
    }

    @Test func singleValidationPointIsDrawnAsMarker() throws {
        let single = Charts.trainingCurve(history: [Self.record(epoch: 1, validation: 0.42)], title: "one epoch")
        try Self.keep(single, as: "training_curve_single_epoch.svg")
        #expect(Self.isWellFormed(single))
        // One epoch: loss, training and validation accuracy are single points, each a circle.
        #expect(Self.occurrences(of: "<circle class=\"marker\"", in: single) == 3)

        let lastOnly = (1...10).map { Self.record(epoch: $0, validation: $0 == 10 ? 0.8 : nil) }
        let curve = Charts.trainingCurve(history: lastOnly, title: "validated once")
        try Self.keep(curve, as: "training_curve_one_validation.svg")
        #expect(Self.isWellFormed(curve))
        let markers = Self.elements(startingWith: "<circle class=\"marker\"", attribute: "fill", in: curve)
        #expect(markers.count == 1 && markers.first?.value == Charts.color(1))
    }

    @Test func validationMarkersOnlyWhenSparse() throws {
        let everyTenth = (1...30).map { Self.record(epoch: $0, validation: $0 % 10 == 0 ? 0.5 + Double($0) / 100 : nil) }
        let sparse = Charts.trainingCurve(history: everyTenth, title: "30 epochs, validation every 10")
        try Self.keep(sparse, as: "training_curve_30_epochs.svg")
        #expect(Self.occurrences(of: "<circle class=\"marker\"", in: sparse) == 3)
        let dense = Charts.trainingCurve(history: (1...30).map { Self.record(epoch: $0, validation: 0.5) })
        #expect(Self.occurrences(of: "<circle class=\"marker\"", in: dense) == 0)
        // Epoch ticks are whole numbers.
        let labels = sparse.components(separatedBy: "text-anchor=\"middle\" font-size=\"12\">").dropFirst()
            .map { String($0.prefix { $0 != "<" }) }
        #expect(!labels.isEmpty && labels.allSatisfy { Int($0) != nil }, "\(labels)")
    }

    /// 40 filters with a Gaussian bump each, peaks log-spaced over the grid, as a trained front end looks.
    static func bumpResponse() throws -> FilterResponse {
        let frequencies = try LearnedFilterAnalysis.logSpacedFrequencies(count: 200, from: 50, to: 8000)
        let responses: [[Float]] = (0..<40).map { filter in
            let peak = Foundation.log(60.0) + Foundation.log(7000.0 / 60.0) * Double((filter * 17) % 40) / 39
            let width = 0.15 + 0.01 * Double(filter % 7)
            return frequencies.map { frequency in
                let distance = (Foundation.log(frequency) - peak) / width
                return Float(0.02 + Foundation.exp(-0.5 * distance * distance))
            }
        }
        return FilterResponse(layer: "pool2", frequencies: frequencies, responses: responses)
    }

    static func hertz(_ label: String) -> Double? {
        label.hasSuffix("k") ? Double(label.dropLast()).map { $0 * 1000 } : Double(label)
    }

    @Test func filterHeatmapHasLogSpacedRoundTicksAndLabelledColorBar() throws {
        let response = try Self.bumpResponse()
        let svg = response.heatmapSVG()
        try Self.keep(svg, as: "filter_response.svg")
        #expect(Self.isWellFormed(svg))
        #expect(!svg.contains("<image") && Self.occurrences(of: "<rect class=\"cell\"", in: svg) == 40 * 200)

        let ticks = Self.elements(startingWith: "<text class=\"x-tick\"", attribute: "x", in: svg)
        let values = ticks.compactMap { Self.hertz($0.text) }
        let positions = ticks.compactMap { Double($0.value) }
        #expect(values.count == ticks.count && positions.count == ticks.count, "\(ticks)")
        #expect((5...8).contains(values.count), "\(values)")
        #expect(values == [50, 100, 200, 500, 1000, 2000, 5000, 8000], "\(values)")
        for value in values {
            #expect((50...8000).contains(value))
            let magnitude = Foundation.pow(10, Foundation.floor(Foundation.log10(value)))
            #expect(value / magnitude == (value / magnitude).rounded(), "\(value) is not round")
        }
        for (lower, upper) in zip(values, values.dropFirst()) {
            #expect(upper / lower >= 1.5 && upper / lower <= 2.5, "\(lower) -> \(upper)")
        }
        // The ticks sit on a log axis: x is linear in log frequency, from the first column's
        // centre (50 Hz) to the last column's centre (8 kHz).
        let cells = Self.elements(startingWith: "<rect class=\"cell\"", attribute: "x", in: svg).compactMap { Double($0.value) }
        let cellWidths = Self.elements(startingWith: "<rect class=\"cell\"", attribute: "width", in: svg).compactMap { Double($0.value) }
        let left = try #require(cells.min()), cellWidth = try #require(cellWidths.first)
        let first = try #require(positions.first), last = try #require(positions.last)
        #expect(abs(first - (left + 0.5 * cellWidth)) < 0.01 && abs(last - (left + 199.5 * cellWidth)) < 0.01)
        let pixelsPerLog = (last - first) / Foundation.log(8000.0 / 50)
        for (value, position) in zip(values, positions) {
            #expect(abs(position - (first + pixelsPerLog * Foundation.log(value / 50))) < 0.01, "\(value) Hz at \(position)")
        }

        #expect(svg.contains("class=\"color-bar-label\""))
        #expect(svg.contains("response (1 = the filter's maximum)"))
        let barTicks = Self.elements(startingWith: "<text class=\"color-bar-tick\"", attribute: "x", in: svg).map(\.text)
        #expect(barTicks.first == "0" && barTicks.last == "1", "\(barTicks)")
    }

    @Test func heatmapKeepsBitmapOptionAndEscapesText() {
        let bitmap = Charts.heatmap(title: "a < b", values: [[1, 2], [3, 4]], rowLabels: ["x&y", "z"], columnLabels: ["\"q\"", "r"],
                                    xLabel: "x", yLabel: "y", colorBarLabel: "count <n>")
        #expect(bitmap.contains("data:image/png;base64,") && !bitmap.contains("class=\"cell\""))
        let vector = Charts.heatmap(title: "a < b", values: [[1, 2], [3, 4]], rowLabels: ["x&y", "z"], columnLabels: ["\"q\"", "r"],
                                    xLabel: "x", yLabel: "y", colorBarLabel: "count <n>", cells: .vector)
        for svg in [bitmap, vector] {
            #expect(Self.isWellFormed(svg))
            #expect(svg.contains("a &lt; b") && svg.contains("x&amp;y") && svg.contains("&quot;q&quot;") && svg.contains("count &lt;n&gt;"))
        }
        #expect(Self.occurrences(of: "class=\"cell\"", in: vector) == 4)
    }
}
