import Foundation

/// Charts written as self-contained SVG, so they open in any browser or image viewer without an
/// external tool.
public enum Charts {
    /// One line of a line chart.
    public struct Series: Sendable {
        /// The name shown in the legend.
        public var name: String
        /// The points in drawing order.
        public var points: [(x: Double, y: Double)]
        /// An SVG color for the line and its markers.
        public var color: String
        /// Whether every point also gets a circle marker. A line alone hides sparse measurements
        /// (a single point draws nothing), so sparse series such as validation epochs want markers.
        public var showsMarkers: Bool

        /// Creates a series.
        ///
        /// - Parameters:
        ///   - name: The name shown in the legend.
        ///   - points: The points in drawing order; non-finite ones are skipped.
        ///   - color: An SVG color for the line and its markers.
        ///   - showsMarkers: Whether every point also gets a circle marker (a series with a single
        ///     point always gets one).
        public init(name: String, points: [(x: Double, y: Double)], color: String, showsMarkers: Bool = false) {
            self.name = name
            self.points = points
            self.color = color
            self.showsMarkers = showsMarkers
        }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

    /// A color for the `index`-th series.
    public static func color(_ index: Int) -> String { palette[index % palette.count] }

    /// A line chart with axes, ticks and a legend.
    ///
    /// - Parameters:
    ///   - title: The title above the plot.
    ///   - xLabel: The horizontal axis title.
    ///   - yLabel: The vertical axis title.
    ///   - series: The lines, drawn in order; a series with markers (or a single point) also gets circles.
    ///   - yRange: The vertical range (default: the data's range plus a margin); values outside are clamped.
    ///   - width: The image width in pixels.
    ///   - height: The image height in pixels.
    /// - Returns: The SVG document.
    public static func lineChart(title: String, xLabel: String, yLabel: String, series: [Series],
                                 yRange: ClosedRange<Double>? = nil, width: Int = 720, height: Int = 420) -> String {
        let left = 70.0, right = 160.0, top = 40.0, bottom = 55.0
        let plotWidth = Double(width) - left - right, plotHeight = Double(height) - top - bottom
        let allPoints = series.flatMap { $0.points }.filter { $0.y.isFinite && $0.x.isFinite }
        let drawsMarkers = series.map { line in line.showsMarkers || line.points.filter { $0.x.isFinite && $0.y.isFinite }.count == 1 }
        var xMin = allPoints.map(\.x).min() ?? 0, xMax = allPoints.map(\.x).max() ?? 1
        var yMin = yRange?.lowerBound ?? (allPoints.map(\.y).min() ?? 0)
        var yMax = yRange?.upperBound ?? (allPoints.map(\.y).max() ?? 1)
        // A single x or y value is centred rather than drawn on the frame.
        if xMax <= xMin { xMin -= 1; xMax += 1 }
        if yMax <= yMin { yMin -= 0.5; yMax += 0.5 }
        // Keeps markers at the first and last x off the frame line, and stacked charts of the
        // same x values (the training curve) aligned whether or not they draw markers.
        let xPad = (xMax - xMin) * 0.02
        xMin -= xPad; xMax += xPad
        if yRange == nil {
            let pad = (yMax - yMin) * 0.05
            yMin -= pad; yMax += pad
        }
        let integralX = !allPoints.isEmpty && allPoints.allSatisfy { $0.x == $0.x.rounded() }
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotWidth }
        func py(_ y: Double) -> Double { top + (1 - (y - yMin) / (yMax - yMin)) * plotHeight }
        var svg = header(width: width, height: height)
        svg += frame(title: title, xLabel: xLabel, yLabel: yLabel, imageWidth: width, imageHeight: Double(height),
                     x: xMin...xMax, y: yMin...yMax, left: left, top: top, width: plotWidth, height: plotHeight,
                     gridColor: "#ddd", px: px, py: py, integralX: integralX)
        for (index, line) in series.enumerated() {
            let points = line.points.filter { $0.y.isFinite && $0.x.isFinite }
                .map { (x: px($0.x), y: py(Swift.min(Swift.max($0.y, yMin), yMax))) }
            if points.count > 1 {
                let list = points.map { "\(format($0.x)),\(format($0.y))" }.joined(separator: " ")
                svg += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\" points=\"\(list)\"/>\n"
            }
            if drawsMarkers[index] {
                for point in points {
                    svg += "<circle class=\"marker\" cx=\"\(format(point.x))\" cy=\"\(format(point.y))\" r=\"5\" fill=\"\(line.color)\" stroke=\"white\" stroke-width=\"1.5\"/>\n"
                }
            }
            let legendY = top + 10 + Double(index) * 20
            svg += "<line x1=\"\(left + plotWidth + 12)\" y1=\"\(legendY)\" x2=\"\(left + plotWidth + 36)\" y2=\"\(legendY)\" stroke=\"\(line.color)\" stroke-width=\"3\"/>\n"
            if drawsMarkers[index] {
                svg += "<circle cx=\"\(left + plotWidth + 24)\" cy=\"\(legendY)\" r=\"5\" fill=\"\(line.color)\" stroke=\"white\" stroke-width=\"1.5\"/>\n"
            }
            svg += "<text x=\"\(left + plotWidth + 42)\" y=\"\(legendY + 4)\" font-size=\"12\">\(escape(line.name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// A chart's title, plot frame, grid with round ticks and axis labels (shared by the line chart
    /// and the scatter plot).
    static func frame(title: String, xLabel: String, yLabel: String, imageWidth: Int, imageHeight: Double,
                      x: ClosedRange<Double>, y: ClosedRange<Double>, left: Double, top: Double, width: Double, height: Double,
                      gridColor: String, px: (Double) -> Double, py: (Double) -> Double, integralX: Bool = false) -> String {
        var svg = "<text x=\"\(imageWidth / 2)\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">\(escape(title))</text>\n"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width)\" height=\"\(height)\" fill=\"none\" stroke=\"#333\"/>\n"
        svg += gridAndTicks(x: x, y: y, left: left, top: top, width: width, height: height, color: gridColor, px: px, py: py,
                            integralX: integralX)
        svg += "<text x=\"\(left + width / 2)\" y=\"\(imageHeight - 12)\" text-anchor=\"middle\" font-size=\"13\">\(escape(xLabel))</text>\n"
        svg += "<text transform=\"translate(18 \(top + height / 2)) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">\(escape(yLabel))</text>\n"
        return svg
    }

    /// Grid lines and labelled round ticks for a plot area.
    ///
    /// `integralX` keeps only whole-number ticks on the horizontal axis (epochs, counts), where
    /// 2.5 would name something that does not exist.
    static func gridAndTicks(x: ClosedRange<Double>, y: ClosedRange<Double>, left: Double, top: Double, width: Double, height: Double,
                             color: String, px: (Double) -> Double, py: (Double) -> Double, integralX: Bool = false) -> String {
        var svg = ""
        var xTicks = niceTicks(x.lowerBound, x.upperBound)
        if integralX {
            let whole = xTicks.filter { $0 == $0.rounded() }
            if whole.count >= 2 || (whole.count == 1 && x.upperBound - x.lowerBound < 2) { xTicks = whole }
        }
        for value in xTicks {
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

    /// Round tick values for a logarithmic axis over `low...high` (both positive), increasing.
    ///
    /// Prefers 1, 2 and 5 times a power of ten (50, 100, 200, 500, 1000 …), thinning to 1 and 3
    /// or to powers of ten alone when those are too many, and adds either end of the range
    /// when it is itself round (one significant digit, such as 8000) and not crowding a tick.
    /// A range under a factor of about 2.5 falls back to ``niceTicks(_:_:count:)``.
    ///
    /// - Parameters:
    ///   - low: The lower end of the axis, positive.
    ///   - high: The upper end of the axis, above `low`.
    ///   - maximumCount: The most ticks to return.
    /// - Returns: The tick values inside `low...high`.
    static func logTicks(_ low: Double, _ high: Double, maximumCount: Int = 8) -> [Double] {
        guard low.isFinite, high.isFinite, low > 0, high > low else { return [] }
        let tolerance = 1e-9
        func ticks(mantissas: [Double]) -> [Double] {
            var values: [Double] = []
            var decade = Foundation.pow(10, Foundation.floor(Foundation.log10(low)))
            while decade <= high * (1 + tolerance) {
                for mantissa in mantissas {
                    let value = (mantissa * decade * 1e6).rounded() / 1e6
                    if value >= low * (1 - tolerance) && value <= high * (1 + tolerance) { values.append(value) }
                }
                decade *= 10
            }
            return values
        }
        var chosen: [Double] = []
        for mantissas in [[1.0, 2, 5], [1, 3], [1]] {
            chosen = ticks(mantissas: mantissas)
            if chosen.count <= maximumCount { break }
        }
        if chosen.count > maximumCount {
            // Spans of many decades: every n-th power of ten.
            let stride = Int((Double(chosen.count) / Double(maximumCount)).rounded(.up))
            chosen = chosen.enumerated().filter { $0.offset % stride == 0 }.map(\.element)
        }
        if chosen.count < 3 {
            let denser = ticks(mantissas: [1, 2, 3, 4, 5, 6, 7, 8, 9])
            if denser.count <= maximumCount { chosen = denser }
        }
        if chosen.count < 2 { return niceTicks(low, high, count: 4) }
        let span = Foundation.log10(high / low)
        for end in [low, high] where chosen.count < maximumCount {
            let magnitude = Foundation.pow(10, Foundation.floor(Foundation.log10(end)))
            let isRound = Swift.abs(end / magnitude - (end / magnitude).rounded()) < 1e-6
            let isClear = chosen.allSatisfy { Swift.abs(Foundation.log10($0 / end)) > 0.06 * span }
            if isRound && isClear { chosen.append(end) }
        }
        return chosen.sorted()
    }

    /// How a heatmap draws its cells.
    public enum HeatmapCells: Sendable, Hashable {
        /// One vector `<rect class="cell">` per matrix entry: crisp at any size in every renderer.
        case vector
        /// One pixel per entry in an embedded PNG stretched over the plot: compact for large
        /// matrices, but renderers that smooth images (librsvg) blur the cell borders.
        case bitmap
    }

    /// A labelled tick on a heatmap's horizontal axis, for axes whose columns sample a continuous
    /// quantity (such as log-spaced frequencies) and are too many to label one by one.
    public struct AxisTick: Sendable, Hashable {
        /// The position in columns: 0 is the left edge of the first column, 0.5 its centre.
        public var position: Double
        /// The text under the tick.
        public var label: String

        /// Creates a tick.
        ///
        /// - Parameters:
        ///   - position: The position in columns (0 is the left edge of the first column, 0.5 its centre).
        ///   - label: The text under the tick.
        public init(position: Double, label: String) {
            self.position = position
            self.label = label
        }
    }

    /// A heatmap of `values` (rows x columns) with labelled axes and a color bar.
    /// - Parameters:
    ///   - title: The title above the plot.
    ///   - values: The matrix, one array per row, every row as long as the first.
    ///   - rowLabels: One label per row (drawn along the vertical axis).
    ///   - columnLabels: One label per column (drawn along the horizontal axis unless `columnTicks` is given).
    ///   - xLabel: The horizontal axis title.
    ///   - yLabel: The vertical axis title.
    ///   - cellText: when true, each cell also shows its value (for small matrices such as confusion matrices).
    ///   - valueRange: The values mapped to the ends of the colour scale (default: the matrix's minimum and maximum).
    ///   - cellSize: The side of a cell in pixels (default: chosen from the matrix size).
    ///   - columnTicks: Ticks that replace the per-column labels, at fractional column positions.
    ///   - colorBarLabel: The colour bar's title: what a cell's colour measures.
    ///   - cells: How the cells are drawn; ``HeatmapCells/vector`` for charts that must stay crisp.
    /// - Returns: The SVG document.
    public static func heatmap(title: String, values: [[Double]], rowLabels: [String], columnLabels: [String],
                               xLabel: String, yLabel: String, cellText: Bool = false,
                               valueRange: ClosedRange<Double>? = nil, cellSize: Int? = nil,
                               columnTicks: [AxisTick]? = nil, colorBarLabel: String = "value",
                               cells: HeatmapCells = .bitmap) -> String {
        let rows = values.count, columns = values.first?.count ?? 0
        guard rows > 0, columns > 0 else { return header(width: 200, height: 50) + "<text x=\"10\" y=\"30\">no data</text></svg>\n" }
        let finite = values.flatMap { $0 }.filter { $0.isFinite }
        let low = valueRange?.lowerBound ?? (finite.min() ?? 0)
        var high = valueRange?.upperBound ?? (finite.max() ?? 1)
        if high <= low { high = low + 1 }
        func fraction(_ value: Double) -> Double { (value - low) / (high - low) }
        // Row and column counts index `values` below; ragged rows read as zero rather than trap.
        func value(_ row: Int, _ column: Int) -> Double { column < values[row].count ? values[row][column] : 0 }
        let cellWidth = Double(cellSize ?? Swift.max(2, Swift.min(40, 640 / columns)))
        let cellHeight = Double(cellSize ?? Swift.max(2, Swift.min(40, 560 / rows)))
        let rowLabelWidth = Double((rowLabels.map(\.count).max() ?? 0) * 7 + 40)
        let left = Swift.max(70, rowLabelWidth), top = 40.0
        let plotWidth = cellWidth * Double(columns), plotHeight = cellHeight * Double(rows)
        // Labels rotated by 60 degrees reach down about 5.5 pixels per character at 11 pixels.
        let columnLabelHeight = columnTicks == nil ? Double((columnLabels.map(\.count).max() ?? 0)) * 5.5 + 20 : 30
        // The colour bar keeps a readable height next to a short matrix.
        let barHeight = Swift.max(plotHeight, 150)
        let width = Int(left + plotWidth + 140)
        let height = Int(Swift.max(top + plotHeight + Swift.max(55, columnLabelHeight + 25), top + barHeight + 20))
        var svg = header(width: width, height: height)
        svg += "<text x=\"\(width / 2)\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">\(escape(title))</text>\n"
        switch cells {
        case .vector:
            // Whole-pixel cell edges with crispEdges leave no anti-aliased seams between neighbours.
            svg += "<g shape-rendering=\"crispEdges\">\n"
            for row in 0..<rows {
                let y = format(top + Double(row) * cellHeight)
                for column in 0..<columns {
                    let (r, g, b) = colormap(fraction(value(row, column)))
                    svg += "<rect class=\"cell\" x=\"\(format(left + Double(column) * cellWidth))\" y=\"\(y)\" width=\"\(format(cellWidth))\" height=\"\(format(cellHeight))\" fill=\"\(hexColor(r, g, b))\"/>\n"
                }
            }
            svg += "</g>\n"
        case .bitmap:
            var pixels = [UInt8](repeating: 0, count: rows * columns * 3)
            for row in 0..<rows {
                for column in 0..<columns {
                    let (r, g, b) = colormap(fraction(value(row, column)))
                    pixels[(row * columns + column) * 3] = r
                    pixels[(row * columns + column) * 3 + 1] = g
                    pixels[(row * columns + column) * 3 + 2] = b
                }
            }
            let png = PNGEncoder.encode(width: columns, height: rows, rgb: pixels).base64EncodedString()
            svg += "<image x=\"\(left)\" y=\"\(top)\" width=\"\(plotWidth)\" height=\"\(plotHeight)\" preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" href=\"data:image/png;base64,\(png)\"/>\n"
        }
        svg += "<rect x=\"\(format(left))\" y=\"\(format(top))\" width=\"\(format(plotWidth))\" height=\"\(format(plotHeight))\" fill=\"none\" stroke=\"#333\"/>\n"
        let rowStep = Swift.max(1, Int((12 / cellHeight).rounded(.up)))
        for row in Swift.stride(from: 0, to: rows, by: rowStep) where row < rowLabels.count {
            svg += "<text x=\"\(left - 6)\" y=\"\(top + (Double(row) + 0.5) * cellHeight + 4)\" text-anchor=\"end\" font-size=\"11\">\(escape(rowLabels[row]))</text>\n"
        }
        if let columnTicks {
            for tick in columnTicks where (0...Double(columns)).contains(tick.position) {
                let x = format(left + tick.position * cellWidth)
                svg += "<line x1=\"\(x)\" y1=\"\(format(top + plotHeight))\" x2=\"\(x)\" y2=\"\(format(top + plotHeight + 5))\" stroke=\"#333\"/>\n"
                svg += "<text class=\"x-tick\" x=\"\(x)\" y=\"\(format(top + plotHeight + 19))\" text-anchor=\"middle\" font-size=\"12\">\(escape(tick.label))</text>\n"
            }
        } else {
            let columnStep = Swift.max(1, Int((12 / cellWidth).rounded(.up)))
            for column in Swift.stride(from: 0, to: columns, by: columnStep) where column < columnLabels.count {
                let x = left + (Double(column) + 0.5) * cellWidth, y = top + plotHeight + 8
                svg += "<text transform=\"translate(\(x) \(y)) rotate(60)\" font-size=\"11\">\(escape(columnLabels[column]))</text>\n"
            }
        }
        if cellText {
            for row in 0..<rows {
                for column in 0..<columns where value(row, column) != 0 {
                    svg += "<text x=\"\(left + (Double(column) + 0.5) * cellWidth)\" y=\"\(top + (Double(row) + 0.5) * cellHeight + 4)\" text-anchor=\"middle\" font-size=\"\(Swift.min(12, Int(cellWidth / 2.5)))\" fill=\"\(fraction(value(row, column)) > 0.6 ? "#000" : "#fff")\">\(format(value(row, column)))</text>\n"
                }
            }
        }
        svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(height - 8)\" text-anchor=\"middle\" font-size=\"13\">\(escape(xLabel))</text>\n"
        svg += "<text transform=\"translate(14 \(top + plotHeight / 2)) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">\(escape(yLabel))</text>\n"
        let wholeNumbers = finite.allSatisfy { $0 == $0.rounded() } && low == low.rounded() && high == high.rounded()
        svg += colorBar(low: low, high: high, wholeNumbers: wholeNumbers, x: left + plotWidth + 24, top: top, height: barHeight,
                        label: colorBarLabel)
        return svg + "</svg>\n"
    }

    /// A vertical colour scale from `low` (bottom) to `high` (top) with round ticks, its ends
    /// labelled and a rotated title on its right.
    static func colorBar(low: Double, high: Double, wholeNumbers: Bool, x: Double, top: Double, height: Double,
                         label: String) -> String {
        let barWidth = 16.0
        // The colormap is linear between its anchors, so a gradient through the anchors is exact.
        var svg = "<defs><linearGradient id=\"envnet-color-scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
        for (index, anchor) in colormapAnchors.enumerated() {
            let offset = Double(index) / Double(colormapAnchors.count - 1)
            svg += "<stop offset=\"\(format(offset))\" stop-color=\"\(hexColor(UInt8(anchor.0), UInt8(anchor.1), UInt8(anchor.2)))\"/>"
        }
        svg += "</linearGradient></defs>\n"
        svg += "<rect class=\"color-bar\" x=\"\(format(x))\" y=\"\(format(top))\" width=\"\(format(barWidth))\" height=\"\(format(height))\" fill=\"url(#envnet-color-scale)\" stroke=\"#333\"/>\n"
        func y(_ value: Double) -> Double { top + (1 - (value - low) / (high - low)) * height }
        var ticks = niceTicks(low, high, count: 5)
        if wholeNumbers { ticks = ticks.filter { $0 == $0.rounded() } }
        // The ends always carry their value; inner ticks closer than a label's height to an end give way.
        ticks = [low] + ticks.filter { Swift.abs(y($0) - y(low)) > 14 && Swift.abs(y($0) - y(high)) > 14 } + [high]
        var widest = 0
        for value in ticks {
            let text = format(value)
            widest = Swift.max(widest, text.count)
            svg += "<line x1=\"\(format(x + barWidth))\" y1=\"\(format(y(value)))\" x2=\"\(format(x + barWidth + 4))\" y2=\"\(format(y(value)))\" stroke=\"#333\"/>\n"
            svg += "<text class=\"color-bar-tick\" x=\"\(format(x + barWidth + 7))\" y=\"\(format(y(value) + 4))\" font-size=\"11\">\(text)</text>\n"
        }
        let labelX = x + barWidth + 14 + Double(widest) * 6.5
        svg += "<text class=\"color-bar-label\" transform=\"translate(\(format(labelX)) \(format(top + height / 2))) rotate(90)\" text-anchor=\"middle\" font-size=\"12\">\(escape(label))</text>\n"
        return svg
    }

    /// `#rrggbb` for an RGB triple.
    static func hexColor(_ red: UInt8, _ green: UInt8, _ blue: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        var text = "#"
        for component in [red, green, blue] {
            text.append(digits[Int(component >> 4)])
            text.append(digits[Int(component & 0x0F)])
        }
        return text
    }

    /// The colormap's colors at 0, 0.25, 0.5, 0.75 and 1 (linear in between).
    static let colormapAnchors: [(Double, Double, Double)] = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]

    /// Viridis-like colors for a value in [0, 1].
    static func colormap(_ value: Double) -> (UInt8, UInt8, UInt8) {
        let anchors = colormapAnchors
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
