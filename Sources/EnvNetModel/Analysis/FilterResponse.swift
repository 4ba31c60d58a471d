import Foundation

/// The paper's sine-wave analysis of the learned front end (Tokozume & Harada 2017, section on
/// learned filters): pure tones over a grid of frequencies go through the trained network up to
/// `pool2`; each of the 40 filters' mean response per frequency, normalized to the filter's
/// maximum and sorted by the frequency of the strongest response, resembles a mel filterbank.
///
/// ```swift
/// let (network, _) = try EnvNet.load(from: weightsURL)
/// let response = try LearnedFilterAnalysis.measure(network: network)
/// try response.write(to: outputFolder)
/// ```
public enum LearnedFilterAnalysis {
    /// `count` frequencies spaced evenly on a log scale from `lowest` to `highest`, both included.
    ///
    /// - Parameters:
    ///   - count: How many frequencies, at least 1 (a single frequency is `lowest`).
    ///   - lowest: The first frequency in Hz, positive.
    ///   - highest: The last frequency in Hz, at least `lowest`.
    /// - Returns: Increasing frequencies in Hz.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for a count below 1 or invalid bounds.
    public static func logSpacedFrequencies(count: Int = 200, from lowest: Double = 50, to highest: Double = 8000) throws -> [Double] {
        guard count >= 1 else { throw EnvNetError.invalidInput("frequency count must be at least 1, got \(count)") }
        guard lowest.isFinite, highest.isFinite, lowest > 0, highest >= lowest else {
            throw EnvNetError.invalidInput("frequency range \(lowest)...\(highest) Hz must be positive and increasing")
        }
        guard count > 1 else { return [lowest] }
        let ratio = Foundation.log(highest / lowest)
        return (0..<count).map { index in
            index == count - 1 ? highest : lowest * Foundation.exp(ratio * Double(index) / Double(count - 1))
        }
    }

    /// A pure tone `amplitude · cos(2π f n / rate)`.
    ///
    /// A cosine rather than a sine, so that a tone at the Nyquist frequency (8 kHz) is the
    /// alternating sequence ±amplitude instead of all zeros.
    ///
    /// - Parameters:
    ///   - frequency: The frequency in Hz.
    ///   - length: The number of samples, non-negative.
    ///   - sampleRate: The sample rate in Hz (16 kHz for EnvNet).
    ///   - amplitude: The peak amplitude (1 by default, as the net was trained on peak-normalized input).
    /// - Returns: `length` samples.
    public static func tone(frequency: Double, length: Int, sampleRate: Int = EnvNetConfiguration.sampleRate, amplitude: Float = 1) -> [Float] {
        let step = 2 * Double.pi * frequency / Double(sampleRate)
        return (0..<Swift.max(length, 0)).map { amplitude * Float(Foundation.cos(step * Double($0))) }
    }

    /// Measures every filter's mean response to pure tones.
    ///
    /// Tones of the network's input length go through the network in evaluation mode up to
    /// `layer`, `batchSize` tones per forward pass; a filter's response to a tone is the mean of
    /// its channel (axis 1 of the layer output) over all other positions. The network's mode is
    /// restored afterwards.
    ///
    /// - Parameters:
    ///   - network: The trained network.
    ///   - frequencies: Strictly increasing frequencies in Hz, in (0, 8000] (default: 200
    ///     log-spaced from 50 Hz to 8 kHz).
    ///   - layer: The layer whose output is measured (`pool2` in the paper).
    ///   - batchSize: Tones per forward pass, at least 1.
    ///   - amplitude: The tones' peak amplitude, finite and positive.
    ///   - progress: Called after every batch with (tones done, tones in total).
    /// - Returns: The raw and normalized responses and the filters' order.
    /// - Throws: ``EnvNetError/invalidInput(_:)`` for an invalid grid, batch size, amplitude or
    ///   layer name, or when the network produces non-finite activations (damaged weights).
    public static func measure(network: any ClassifierNetwork, frequencies: [Double]? = nil, layer: String = "pool2",
                               batchSize: Int = 16, amplitude: Float = 1,
                               progress: ((_ completed: Int, _ total: Int) -> Void)? = nil) throws -> FilterResponse {
        let grid = try frequencies ?? logSpacedFrequencies()
        let rate = network.sampleRate
        guard !grid.isEmpty else { throw EnvNetError.invalidInput("the frequency grid is empty") }
        for (index, frequency) in grid.enumerated() {
            guard frequency.isFinite, frequency > 0, frequency <= Double(rate) / 2 else {
                throw EnvNetError.invalidInput("frequency \(index) is \(frequency) Hz; it must be in (0, \(rate / 2)] Hz")
            }
            guard index == 0 || frequency > grid[index - 1] else {
                throw EnvNetError.invalidInput("frequencies must be strictly increasing: \(grid[index - 1]) Hz is followed by \(frequency) Hz")
            }
        }
        guard batchSize >= 1 else { throw EnvNetError.invalidInput("analysis batch size must be at least 1, got \(batchSize)") }
        guard amplitude.isFinite, amplitude > 0 else { throw EnvNetError.invalidInput("tone amplitude must be finite and positive, got \(amplitude)") }
        let layerNames = network.layerNames
        guard layerNames.contains(layer) else {
            throw EnvNetError.invalidInput("the network has no layer named \(layer); layers: \(layerNames.joined(separator: ", "))")
        }

        let length = network.inputLength
        let wasTraining = network.isTraining
        network.eval()
        defer { if wasTraining { network.train() } }

        var columns: [[Float]] = []  // [frequency][filter]
        columns.reserveCapacity(grid.count)
        var first = 0
        while first < grid.count {
            let end = Swift.min(first + batchSize, grid.count)
            var input = [Float]()
            input.reserveCapacity((end - first) * length)
            for frequency in grid[first..<end] { input += tone(frequency: frequency, length: length, sampleRate: rate, amplitude: amplitude) }
            let output = network.features(Tensor(input, shape: [end - first, 1, 1, length]), upTo: layer)
            let filters = output.rank >= 2 ? output.shape[1] : 1
            let perFilter = Swift.max(output.count / Swift.max((end - first) * filters, 1), 1)
            let values = output.scalars
            for tone in 0..<(end - first) {
                columns.append((0..<filters).map { filter in
                    let start = (tone * filters + filter) * perFilter
                    var sum: Double = 0
                    for value in values[start..<(start + perFilter)] { sum += Double(value) }
                    return Float(sum / Double(perFilter))
                })
            }
            first = end
            progress?(first, grid.count)
        }
        let filterCount = columns.first?.count ?? 0
        let responses = (0..<filterCount).map { filter in columns.map { $0[filter] } }
        for (filter, row) in responses.enumerated() {
            if let index = row.firstIndex(where: { !$0.isFinite }) {
                throw EnvNetError.invalidInput("filter \(filter) of \(layer) responds \(row[index]) to \(grid[index]) Hz; the weights may be damaged")
            }
        }
        return FilterResponse(layer: layer, frequencies: grid, responses: responses)
    }
}

/// Every filter's response to pure tones (see ``LearnedFilterAnalysis``).
public struct FilterResponse: Sendable, Hashable, Codable {
    /// The measured layer (`pool2`).
    public let layer: String
    /// The tone frequencies in Hz, increasing.
    public let frequencies: [Double]
    /// `responses[filter][frequency]`: the mean activation, filters in the network's order.
    public let responses: [[Float]]
    /// `normalizedResponses[filter][frequency]`: each row divided by its maximum (max 1 per row;
    /// a filter that never responds keeps a row of zeros).
    public let normalizedResponses: [[Float]]
    /// Per filter (network order): the index into ``frequencies`` of its strongest response
    /// (the first one on ties), `nil` for a filter whose response is 0 everywhere.
    public let peakIndices: [Int?]
    /// The filters ordered by the frequency of their strongest response (ties by filter index);
    /// filters that never respond come last.
    public let sortedFilters: [Int]

    /// Derives the normalized responses, peaks and order from raw responses.
    ///
    /// - Parameters:
    ///   - layer: The measured layer.
    ///   - frequencies: The tone frequencies, one per response column.
    ///   - responses: `responses[filter][frequency]`, finite and non-negative (after a ReLU); a
    ///     filter whose maximum is not positive counts as never responding.
    public init(layer: String, frequencies: [Double], responses: [[Float]]) {
        self.layer = layer
        self.frequencies = frequencies
        self.responses = responses
        var normalized: [[Float]] = []
        var peaks: [Int?] = []
        for row in responses {
            let maximum = row.max() ?? 0
            if maximum > 0 {
                normalized.append(row.map { $0 / maximum })
                peaks.append(row.firstIndex(of: maximum))
            } else {
                normalized.append([Float](repeating: 0, count: row.count))
                peaks.append(nil)
            }
        }
        self.normalizedResponses = normalized
        self.peakIndices = peaks
        self.sortedFilters = responses.indices.sorted { a, b in
            switch (peaks[a], peaks[b]) {
            case let (x?, y?): return x != y ? x < y : a < b
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a < b
            }
        }
    }

    /// The number of filters.
    public var filterCount: Int { responses.count }

    /// Per filter (network order): the frequency of its strongest response, `nil` if it never responds.
    public var peakFrequencies: [Double?] { peakIndices.map { $0.map { frequencies[$0] } } }

    /// The normalized responses in ``sortedFilters`` order (row 0 = lowest peak frequency).
    public var sortedResponses: [[Float]] { sortedFilters.map { normalizedResponses[$0] } }

    // MARK: - Files

    /// The names of the files ``write(to:)`` produces (EnvNetCharts adds `filter_response.svg`).
    public static let fileNames = ["filter_response.csv", "filter_peaks.csv"]

    /// `filter_response.csv`: one row per filter in sorted order — `rank,filter,peak_frequency_hz`
    /// then the normalized response at each frequency (the header lists the frequencies).
    public var responseCSV: String {
        var lines = [(["rank", "filter", "peak_frequency_hz"] + frequencies.map { String($0) }).joined(separator: ",")]
        let peaks = peakFrequencies
        for (rank, filter) in sortedFilters.enumerated() {
            let fields = [String(rank), String(filter), peaks[filter].map { String($0) } ?? ""] + normalizedResponses[filter].map { String($0) }
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `filter_peaks.csv`: per filter in network order `filter,rank,peak_frequency_hz,max_response`
    /// (the raw maximum of its mean response).
    public var peaksCSV: String {
        var rank = [Int](repeating: 0, count: filterCount)
        for (position, filter) in sortedFilters.enumerated() { rank[filter] = position }
        let peaks = peakFrequencies
        var lines = ["filter,rank,peak_frequency_hz,max_response"]
        for filter in 0..<filterCount {
            lines.append("\(filter),\(rank[filter]),\(peaks[filter].map { String($0) } ?? ""),\(responses[filter].max() ?? 0)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes ``fileNames`` into a folder (created if needed), each file atomically.
    ///
    /// - Parameter folder: The destination folder.
    /// - Throws: `FileWriteError` naming the folder or file that cannot be written.
    public func write(to folder: URL) throws {
        try AtomicFile.checkWritableFolder(folder)
        try AtomicFile.write(responseCSV, to: folder.appendingPathComponent("filter_response.csv"))
        try AtomicFile.write(peaksCSV, to: folder.appendingPathComponent("filter_peaks.csv"))
    }
}
