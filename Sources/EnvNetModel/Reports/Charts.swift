import Foundation

/// Charts written as self-contained SVG (heatmaps embed their pixels as a PNG), so they open in
/// any browser or image viewer without an external tool.
public enum Charts {
    /// One line of a line chart.
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var color: String
        public init(name: String, points: [(x: Double, y: Double)], color: String) {
            self.name = name
            self.points = points
            self.color = color
        }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

    /// A color for the `index`-th series.
    public static func color(_ index: Int) -> String { palette[index % palette.count] }

    /// A line chart with axes, ticks and a legend.
    public static func lineChart(title: String, xLabel: String, yLabel: String, series: [Series],
                                 yRange: ClosedRange<Double>? = nil, width: Int = 720, height: Int = 420) -> String {
        let left = 70.0, right = 160.0, top = 40.0, bottom = 55.0
        let plotWidth = Double(width) - left - right, plotHeight = Double(height) - top - bottom
        let allPoints = series.flatMap { $0.points }.filter { $0.y.isFinite && $0.x.isFinite }
        var xMin = allPoints.map(\.x).min() ?? 0, xMax = allPoints.map(\.x).max() ?? 1
        var yMin = yRange?.lowerBound ?? (allPoints.map(\.y).min() ?? 0)
        var yMax = yRange?.upperBound ?? (allPoints.map(\.y).max() ?? 1)
        if xMax <= xMin { xMax = xMin + 1 }
        if yMax <= yMin { yMax = yMin + 1; yMin -= 0 }
        if yRange == nil {
            let pad = (yMax - yMin) * 0.05
            yMin -= pad; yMax += pad
        }
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotWidth }
        func py(_ y: Double) -> Double { top + (1 - (y - yMin) / (yMax - yMin)) * plotHeight }
        var svg = header(width: width, height: height)
        svg += frame(title: title, xLabel: xLabel, yLabel: yLabel, imageWidth: width, imageHeight: Double(height),
                     x: xMin...xMax, y: yMin...yMax, left: left, top: top, width: plotWidth, height: plotHeight,
                     gridColor: "#ddd", px: px, py: py)
        for (index, line) in series.enumerated() {
            let points = line.points.filter { $0.y.isFinite && $0.x.isFinite }
                .map { "\(px($0.x)),\(py(Swift.min(Swift.max($0.y, yMin), yMax)))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            let legendY = top + 10 + Double(index) * 20
            svg += "<line x1=\"\(left + plotWidth + 12)\" y1=\"\(legendY)\" x2=\"\(left + plotWidth + 36)\" y2=\"\(legendY)\" stroke=\"\(line.color)\" stroke-width=\"3\"/>\n"
            svg += "<text x=\"\(left + plotWidth + 42)\" y=\"\(legendY + 4)\" font-size=\"12\">\(escape(line.name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// Grid lines and labelled round ticks for a plot area (shared by the line chart and the scatter plot).
    /// A chart's title, plot frame, grid with round ticks and axis labels.
    static func frame(title: String, xLabel: String, yLabel: String, imageWidth: Int, imageHeight: Double,
                      x: ClosedRange<Double>, y: ClosedRange<Double>, left: Double, top: Double, width: Double, height: Double,
                      gridColor: String, px: (Double) -> Double, py: (Double) -> Double) -> String {
        var svg = "<text x=\"\(imageWidth / 2)\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">\(escape(title))</text>\n"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width)\" height=\"\(height)\" fill=\"none\" stroke=\"#333\"/>\n"
        svg += gridAndTicks(x: x, y: y, left: left, top: top, width: width, height: height, color: gridColor, px: px, py: py)
        svg += "<text x=\"\(left + width / 2)\" y=\"\(imageHeight - 12)\" text-anchor=\"middle\" font-size=\"13\">\(escape(xLabel))</text>\n"
        svg += "<text transform=\"translate(18 \(top + height / 2)) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">\(escape(yLabel))</text>\n"
        return svg
    }

    static func gridAndTicks(x: ClosedRange<Double>, y: ClosedRange<Double>, left: Double, top: Double, width: Double, height: Double,
                             color: String, px: (Double) -> Double, py: (Double) -> Double) -> String {
        var svg = ""
        for value in niceTicks(x.lowerBound, x.upperBound) {
            svg += "<line x1=\"\(px(value))\" y1=\"\(top)\" x2=\"\(px(value))\" y2=\"\(top + height)\" stroke=\"\(color)\"/>\n"
            svg += "<text x=\"\(px(value))\" y=\"\(top + height + 18)\" text-anchor=\"middle\" font-size=\"12\">\(format(value))</text>\n"
        }
        for value in niceTicks(y.lowerBound, y.upperBound) {
            svg += "<line x1=\"\(left)\" y1=\"\(py(value))\" x2=\"\(left + width)\" y2=\"\(py(value))\" stroke=\"\(color)\"/>\n"
            svg += "<text x=\"\(left - 8)\" y=\"\(py(value) + 4)\" text-anchor=\"end\" font-size=\"12\">\(format(value))</text>\n"
        }
        return svg
    }

    /// Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten), four to seven of them, inside `low...high`.
    static func niceTicks(_ low: Double, _ high: Double, count: Int = 6) -> [Double] {
        guard low.isFinite, high.isFinite, high > low else { return [low] }
        let rough = (high - low) / Double(count)
        let magnitude = Foundation.pow(10, Foundation.floor(Foundation.log10(rough)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
        var ticks: [Double] = []
        var value = Foundation.ceil(low / step) * step
        while value <= high + step * 1e-9, ticks.count < 4 * count {
            ticks.append(abs(value) < step * 1e-9 ? 0 : value)
            value += step
        }
        return ticks
    }

    /// A heatmap of `values` (rows x columns) with labelled axes and a color bar.
    /// - Parameters:
    ///   - title: The title above the plot.
    ///   - values: The matrix, one array per row, every row as long as the first.
    ///   - rowLabels: One label per row (drawn along the vertical axis).
    ///   - columnLabels: One label per column (drawn along the horizontal axis).
    ///   - xLabel: The horizontal axis title.
    ///   - yLabel: The vertical axis title.
    ///   - cellText: when true, each cell also shows its value (for small matrices such as confusion matrices).
    ///   - valueRange: The values mapped to the ends of the colour scale (default: the matrix's minimum and maximum).
    ///   - cellSize: The side of a cell in pixels (default: chosen from the matrix size).
    /// - Returns: The SVG document.
    public static func heatmap(title: String, values: [[Double]], rowLabels: [String], columnLabels: [String],
                               xLabel: String, yLabel: String, cellText: Bool = false,
                               valueRange: ClosedRange<Double>? = nil, cellSize: Int? = nil) -> String {
        let rows = values.count, columns = values.first?.count ?? 0
        guard rows > 0, columns > 0 else { return header(width: 200, height: 50) + "<text x=\"10\" y=\"30\">no data</text></svg>\n" }
        let finite = values.flatMap { $0 }.filter { $0.isFinite }
        let low = valueRange?.lowerBound ?? (finite.min() ?? 0)
        var high = valueRange?.upperBound ?? (finite.max() ?? 1)
        if high <= low { high = low + 1 }
        let cellWidth = Double(cellSize ?? Swift.max(2, Swift.min(40, 640 / columns)))
        let cellHeight = Double(cellSize ?? Swift.max(2, Swift.min(40, 560 / rows)))
        let rowLabelWidth = Double((rowLabels.map(\.count).max() ?? 0) * 7 + 40)
        let left = Swift.max(70, rowLabelWidth), top = 40.0
        let plotWidth = cellWidth * Double(columns), plotHeight = cellHeight * Double(rows)
        let columnLabelHeight = Double((columnLabels.map(\.count).max() ?? 0) * 6 + 30)
        let width = Int(left + plotWidth + 110), height = Int(top + plotHeight + Swift.max(55, columnLabelHeight + 25))
        var pixels = [UInt8](repeating: 0, count: rows * columns * 3)
        for row in 0..<rows {
            for column in 0..<columns {
                let (r, g, b) = colormap((values[row][column] - low) / (high - low))
                pixels[(row * columns + column) * 3] = r
                pixels[(row * columns + column) * 3 + 1] = g
                pixels[(row * columns + column) * 3 + 2] = b
            }
        }
        let png = PNGEncoder.encode(width: columns, height: rows, rgb: pixels).base64EncodedString()
        var svg = header(width: width, height: height)
        svg += "<text x=\"\(width / 2)\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">\(escape(title))</text>\n"
        svg += "<image x=\"\(left)\" y=\"\(top)\" width=\"\(plotWidth)\" height=\"\(plotHeight)\" preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" href=\"data:image/png;base64,\(png)\"/>\n"
        let rowStep = Swift.max(1, Int((12 / cellHeight).rounded(.up)))
        for row in Swift.stride(from: 0, to: rows, by: rowStep) where row < rowLabels.count {
            svg += "<text x=\"\(left - 6)\" y=\"\(top + (Double(row) + 0.5) * cellHeight + 4)\" text-anchor=\"end\" font-size=\"11\">\(escape(rowLabels[row]))</text>\n"
        }
        let columnStep = Swift.max(1, Int((12 / cellWidth).rounded(.up)))
        for column in Swift.stride(from: 0, to: columns, by: columnStep) where column < columnLabels.count {
            let x = left + (Double(column) + 0.5) * cellWidth, y = top + plotHeight + 8
            svg += "<text transform=\"translate(\(x) \(y)) rotate(60)\" font-size=\"11\">\(escape(columnLabels[column]))</text>\n"
        }
        if cellText {
            for row in 0..<rows {
                for column in 0..<columns where values[row][column] != 0 {
                    let fraction = (values[row][column] - low) / (high - low)
                    svg += "<text x=\"\(left + (Double(column) + 0.5) * cellWidth)\" y=\"\(top + (Double(row) + 0.5) * cellHeight + 4)\" text-anchor=\"middle\" font-size=\"\(Swift.min(12, Int(cellWidth / 2.5)))\" fill=\"\(fraction > 0.6 ? "#000" : "#fff")\">\(format(values[row][column]))</text>\n"
                }
            }
        }
        svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(height - 8)\" text-anchor=\"middle\" font-size=\"13\">\(escape(xLabel))</text>\n"
        svg += "<text transform=\"translate(14 \(top + plotHeight / 2)) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">\(escape(yLabel))</text>\n"
        // Color bar.
        let barX = left + plotWidth + 30
        for step in 0..<50 {
            let (r, g, b) = colormap(1 - Double(step) / 49)
            svg += "<rect x=\"\(barX)\" y=\"\(top + Double(step) * plotHeight / 50)\" width=\"16\" height=\"\(plotHeight / 50 + 0.5)\" fill=\"rgb(\(r),\(g),\(b))\"/>\n"
        }
        svg += "<text x=\"\(barX + 22)\" y=\"\(top + 10)\" font-size=\"11\">\(format(high))</text>\n"
        svg += "<text x=\"\(barX + 22)\" y=\"\(top + plotHeight)\" font-size=\"11\">\(format(low))</text>\n"
        return svg + "</svg>\n"
    }

    /// Viridis-like colors for a value in [0, 1].
    static func colormap(_ value: Double) -> (UInt8, UInt8, UInt8) {
        let anchors: [(Double, Double, Double)] = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
        let t = Swift.min(Swift.max(value.isFinite ? value : 0, 0), 1) * Double(anchors.count - 1)
        let index = Swift.min(Int(t), anchors.count - 2)
        let f = t - Double(index)
        let a = anchors[index], b = anchors[index + 1]
        return (UInt8(a.0 + (b.0 - a.0) * f), UInt8(a.1 + (b.1 - a.1) * f), UInt8(a.2 + (b.2 - a.2) * f))
    }

    static func header(width: Int, height: Int) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"Helvetica, Arial, sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func format(_ value: Double) -> String {
        if value == value.rounded() && Swift.abs(value) < 1e6 { return String(Int(value)) }
        return String(format: "%g", value)
    }
}
