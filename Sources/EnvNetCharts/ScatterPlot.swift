import Foundation

extension Charts {
    /// One point of a scatter plot.
    public struct ScatterPoint: Sendable, Hashable {
        /// The horizontal coordinate.
        public var x: Double
        /// The vertical coordinate.
        public var y: Double
        /// The group (class) index that picks the point's colour and legend entry.
        public var group: Int
        /// Shown as the point's tooltip (for example the clip's file name); may be empty.
        public var name: String

        /// Creates a point.
        ///
        /// - Parameters:
        ///   - x: The horizontal coordinate.
        ///   - y: The vertical coordinate.
        ///   - group: The group index, from 0.
        ///   - name: The tooltip text.
        public init(x: Double, y: Double, group: Int, name: String = "") {
            self.x = x
            self.y = y
            self.group = group
            self.name = name
        }
    }

    /// Ten well-separated colours (the "category10" palette).
    static let categoricalPalette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// A colour for the `index`-th of many categories: the category10 palette for the first
    /// ten, then hues spaced by the golden angle at alternating lightness (so 50 classes still
    /// get distinct colours).
    ///
    /// - Parameter index: The category, from 0.
    /// - Returns: A CSS colour.
    public static func categoricalColor(_ index: Int) -> String {
        let index = Swift.max(index, 0)
        if index < categoricalPalette.count { return categoricalPalette[index] }
        let hue = (Double(index - categoricalPalette.count) * 137.508).truncatingRemainder(dividingBy: 360)
        let lightness = index % 2 == 0 ? 38 : 55
        return String(format: "hsl(%.0f,70%%,%d%%)", hue, lightness)
    }

    /// A scatter plot with axes, ticks and a legend of the groups (with their point counts),
    /// one colour per group; each point shows its name as a tooltip.
    ///
    /// Points with a non-finite coordinate are left out. Groups without a name in `groupNames`
    /// are listed as `group N`.
    ///
    /// - Parameters:
    ///   - title: The chart title.
    ///   - xLabel: The horizontal axis label.
    ///   - yLabel: The vertical axis label.
    ///   - points: The points.
    ///   - groupNames: The legend names of the groups, by index.
    ///   - width: The image width in pixels (the height grows to fit a long legend).
    ///   - height: The image height in pixels.
    ///   - radius: The points' radius in pixels.
    /// - Returns: The SVG text.
    public static func scatterPlot(title: String, xLabel: String, yLabel: String, points: [ScatterPoint],
                                   groupNames: [String], width: Int = 760, height: Int = 520, radius: Double = 4) -> String {
        let shown = points.filter { $0.x.isFinite && $0.y.isFinite }
        let groups = Array(Set(shown.map(\.group)).union(groupNames.indices)).sorted()
        let legendRow = 16.0
        let left = 70.0, top = 40.0, bottom = 55.0
        let legendWidth = Double(Swift.min((groups.map { name(ofGroup: $0, in: groupNames).count }.max() ?? 0), 28) * 7 + 60)
        let right = Swift.max(120, legendWidth)
        let height = Swift.max(Double(height), top + 20 + Double(groups.count) * legendRow + bottom)
        let plotWidth = Double(width) - left - right, plotHeight = height - top - bottom
        var xMin = shown.map(\.x).min() ?? 0, xMax = shown.map(\.x).max() ?? 1
        var yMin = shown.map(\.y).min() ?? 0, yMax = shown.map(\.y).max() ?? 1
        if xMax <= xMin { xMin -= 1; xMax += 1 }
        if yMax <= yMin { yMin -= 1; yMax += 1 }
        let xPad = (xMax - xMin) * 0.05, yPad = (yMax - yMin) * 0.05
        xMin -= xPad; xMax += xPad; yMin -= yPad; yMax += yPad
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotWidth }
        func py(_ y: Double) -> Double { top + (1 - (y - yMin) / (yMax - yMin)) * plotHeight }

        var svg = header(width: width, height: Int(height.rounded(.up)))
        svg += frame(title: title, xLabel: xLabel, yLabel: yLabel, imageWidth: width, imageHeight: height,
                     x: xMin...xMax, y: yMin...yMax, left: left, top: top, width: plotWidth, height: plotHeight,
                     gridColor: "#eee", px: px, py: py)
        for point in shown {
            svg += "<circle cx=\"\(px(point.x))\" cy=\"\(py(point.y))\" r=\"\(radius)\" fill=\"\(categoricalColor(point.group))\" fill-opacity=\"0.75\" stroke=\"#333\" stroke-width=\"0.4\">"
            svg += point.name.isEmpty ? "</circle>\n" : "<title>\(escape(point.name))</title></circle>\n"
        }
        var counts: [Int: Int] = [:]
        for point in shown { counts[point.group, default: 0] += 1 }
        for (row, group) in groups.enumerated() {
            let y = top + 10 + Double(row) * legendRow
            svg += "<circle cx=\"\(left + plotWidth + 18)\" cy=\"\(y)\" r=\"5\" fill=\"\(categoricalColor(group))\" stroke=\"#333\" stroke-width=\"0.4\"/>\n"
            svg += "<text x=\"\(left + plotWidth + 28)\" y=\"\(y + 4)\" font-size=\"12\">\(escape(name(ofGroup: group, in: groupNames))) (\(counts[group] ?? 0))</text>\n"
        }
        return svg + "</svg>\n"
    }

    private static func name(ofGroup group: Int, in names: [String]) -> String {
        names.indices.contains(group) ? names[group] : "group \(group)"
    }
}
