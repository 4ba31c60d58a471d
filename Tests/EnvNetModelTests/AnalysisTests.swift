import EnvNetModel
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import EnvNetCharts
import Testing

@Suite("Learned-filter analysis with pure tones")
struct AnalysisTests {
    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-analysis-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func logSpacedGridAndTones() throws {
        let grid = try LearnedFilterAnalysis.logSpacedFrequencies(count: 5, from: 100, to: 1600)
        #expect(grid.first == 100 && grid.last == 1600)
        for (value, expected) in zip(grid, [100.0, 200, 400, 800, 1600]) { #expect(abs(value - expected) < 1e-9) }
        let standard = try LearnedFilterAnalysis.logSpacedFrequencies()
        #expect(standard.count == 200 && standard.first == 50 && standard.last == 8000)
        #expect(zip(standard, standard.dropFirst()).allSatisfy { $0 < $1 })
        #expect(try LearnedFilterAnalysis.logSpacedFrequencies(count: 1, from: 440, to: 880) == [440])
        #expect(throws: EnvNetError.self) { try LearnedFilterAnalysis.logSpacedFrequencies(count: 0) }
        #expect(throws: EnvNetError.self) { try LearnedFilterAnalysis.logSpacedFrequencies(count: 3, from: 0, to: 10) }
        #expect(throws: EnvNetError.self) { try LearnedFilterAnalysis.logSpacedFrequencies(count: 3, from: 100, to: 10) }
        // Tones have amplitude 1; the Nyquist tone alternates instead of vanishing.
        #expect(LearnedFilterAnalysis.tone(frequency: 8000, length: 4) == [1, -1, 1, -1])
        let tone = LearnedFilterAnalysis.tone(frequency: 1000, length: 16)
        #expect(tone[0] == 1 && abs(tone[8] + 1) < 1e-6 && abs(tone[4]) < 1e-6)
    }

    /// conv2 and the BatchNorms are identities; conv1 filter 0 is a low-pass (all ones), filter 1
    /// a high-pass (alternating signs), filter 2 a band-pass at 4 kHz (a cosine of period 4);
    /// the other 37 filters are zero and never respond.
    static func handMadeNetwork() throws -> EnvNet {
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: 1)
        var state = network.stateDictionary()
        var conv1 = [Float](repeating: 0, count: 40 * 8)
        for tap in 0..<8 {
            conv1[0 * 8 + tap] = 1
            conv1[1 * 8 + tap] = tap % 2 == 0 ? 1 : -1
            conv1[2 * 8 + tap] = [1, 0, -1, 0][tap % 4]
        }
        var conv2 = [Float](repeating: 0, count: 40 * 40 * 8)
        for channel in 0..<40 { conv2[(channel * 40 + channel) * 8] = 1 }
        state["conv1.weight"] = Tensor(conv1, shape: [40, 1, 1, 8])
        state["conv2.weight"] = Tensor(conv2, shape: [40, 40, 1, 8])
        for bn in ["bn1", "bn2"] {
            state["\(bn).weight"] = Tensor.ones([40])
            state["\(bn).bias"] = Tensor.zeros([40])
            state["\(bn).running_mean"] = Tensor.zeros([40])
            state["\(bn).running_var"] = Tensor.ones([40])
        }
        try network.loadStateDictionary(state)
        return network
    }

    @Test func handMadeFiltersPeakInTheirBandsAndAreSortedByPeak() throws {
        let network = try Self.handMadeNetwork()
        let frequencies: [Double] = [100, 500, 1000, 2000, 4000, 6000, 8000]
        var reported: [(Int, Int)] = []
        let response = try LearnedFilterAnalysis.measure(network: network, frequencies: frequencies, batchSize: 3) { reported.append(($0, $1)) }
        #expect(reported.map(\.0) == [3, 6, 7] && reported.allSatisfy { $0.1 == 7 })
        #expect(network.isTraining)  // the mode is restored
        #expect(response.layer == "pool2" && response.frequencies == frequencies)
        #expect(response.filterCount == 40 && response.responses.allSatisfy { $0.count == 7 })
        #expect(response.peakFrequencies[0] == 100)
        #expect(response.peakFrequencies[1] == 8000)
        #expect(response.peakFrequencies[2] == 4000)
        #expect(response.peakFrequencies[3...].allSatisfy { $0 == nil })
        #expect(response.sortedFilters == [0, 2, 1] + Array(3..<40))
        // Amplitudes: |H| of the 8-tap kernels at their peaks (8 for the all-ones kernel near 0 Hz
        // and the alternating kernel at Nyquist, 4 for the period-4 cosine at 4 kHz).
        #expect(abs(response.responses[0][0] - 8) < 0.1)
        #expect(abs(response.responses[1][6] - 8) < 1e-3)
        #expect(abs(response.responses[2][4] - 4) < 1e-3)
        #expect(response.responses[2][3] < 1e-3 && response.responses[2][5] < 1e-3)  // its zeros at 2 and 6 kHz
        for filter in 0..<3 {
            #expect(response.normalizedResponses[filter].max() == 1)
            #expect(response.normalizedResponses[filter].allSatisfy { $0 >= 0 && $0 <= 1 })
        }
        #expect(response.normalizedResponses[3...].allSatisfy { $0.allSatisfy { $0 == 0 } })
        #expect(response.sortedResponses[0] == response.normalizedResponses[0])
    }

    @Test func aRandomNetworkGivesNormalizedSortedResponsesAndFiles() throws {
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: 2)
        network.eval()
        let frequencies = try LearnedFilterAnalysis.logSpacedFrequencies(count: 12)
        let response = try LearnedFilterAnalysis.measure(network: network, frequencies: frequencies)
        #expect(!network.isTraining)
        #expect(response.filterCount == 40 && response.responses.allSatisfy { $0.count == 12 })
        #expect(Set(response.sortedFilters) == Set(0..<40))
        let live = response.sortedFilters.filter { response.peakIndices[$0] != nil }
        #expect(live.count > 30)  // 39 of 40 respond with this seed
        // Peak frequencies never decrease down the sorted filters; each live row has maximum 1.
        let peaks = live.map { response.peakFrequencies[$0]! }
        #expect(zip(peaks, peaks.dropFirst()).allSatisfy { $0 <= $1 })
        for filter in live {
            #expect(response.normalizedResponses[filter].max() == 1)
            #expect(response.normalizedResponses[filter][response.peakIndices[filter]!] == 1)
        }

        let folder = try Self.temporaryFolder().appendingPathComponent("filters")
        try response.write(to: folder)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == FilterResponse.fileNames.sorted())
        try response.writeCharts(to: folder)
        let rows = try String(contentsOf: folder.appendingPathComponent("filter_response.csv"), encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 41)
        #expect(rows[0].split(separator: ",").count == 3 + 12 && rows[0].hasPrefix("rank,filter,peak_frequency_hz,50.0,"))
        let first = rows[1].split(separator: ",", omittingEmptySubsequences: false)
        #expect(first[0] == "0" && first[1] == "\(response.sortedFilters[0])" && first.count == 15)
        let peaksCSV = try String(contentsOf: folder.appendingPathComponent("filter_peaks.csv"), encoding: .utf8).split(separator: "\n")
        #expect(peaksCSV.count == 41 && peaksCSV[0] == "filter,rank,peak_frequency_hz,max_response")
        #expect(XMLParser(data: try Data(contentsOf: folder.appendingPathComponent("filter_response.svg"))).parse())
    }

    @Test func badArgumentsAreTypedErrors() throws {
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8))
        #expect(throws: EnvNetError.self) { try LearnedFilterAnalysis.measure(network: network, frequencies: []) }
        #expect(throws: EnvNetError.self) { try LearnedFilterAnalysis.measure(network: network, frequencies: [500, 400]) }
        #expect(throws: EnvNetError.self) { try LearnedFilterAnalysis.measure(network: network, frequencies: [9000]) }
        #expect(throws: EnvNetError.self) { try LearnedFilterAnalysis.measure(network: network, frequencies: [.nan]) }
        #expect(throws: EnvNetError.self) { try LearnedFilterAnalysis.measure(network: network, frequencies: [100], layer: "pool9") }
        #expect(throws: EnvNetError.self) { try LearnedFilterAnalysis.measure(network: network, frequencies: [100], batchSize: 0) }
        #expect(throws: EnvNetError.self) { try LearnedFilterAnalysis.measure(network: network, frequencies: [100], amplitude: 0) }
        // Damaged weights (an infinite shift) are reported, not drawn.
        var state = network.stateDictionary()
        state["bn2.bias"] = Tensor(repeating: .infinity, shape: [40])
        try network.loadStateDictionary(state)
        #expect(throws: EnvNetError.self) { try LearnedFilterAnalysis.measure(network: network, frequencies: [100]) }
    }
}
