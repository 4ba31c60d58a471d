import EnvNetModel
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import EnvNetCharts
import Testing

@Suite("safetensors, atomic files and images")
struct FileFormatTests {
    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("envnet-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func safeTensorsRoundTrip() throws {
        var generator = SeededGenerator(seed: 5)
        let original = SafeTensors(
            tensors: ["conv1.weight": Tensor.normal([4, 1, 1, 8], generator: &generator), "bn1.running_var": Tensor.ones([4]),
                      "empty": Tensor.zeros([0, 3]), "scalar": Tensor(scalar: 2)],
            metadata: ["classes": "[\"dog\",\"rain\"]", "configuration": "official"])
        let folder = try Self.temporaryFolder()
        let url = folder.appendingPathComponent("model.safetensors")
        try original.write(to: url)
        let loaded = try SafeTensors.read(from: url)
        #expect(loaded.metadata == original.metadata)
        #expect(Set(loaded.tensors.keys) == Set(original.tensors.keys))
        for (name, tensor) in original.tensors { #expect(loaded.tensors[name] == tensor, "\(name)") }
        // Header length is a multiple of 8 and the layout is the documented one.
        let data = try Data(contentsOf: url)
        let headerLength = data.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(headerLength % 8 == 0 && data.count == 8 + Int(headerLength) + (32 + 4 + 0 + 1) * 4)
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.safetensors"])
    }

    static func file(header: String, dataBytes: Int) -> Data {
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8))
        data.append(Data(count: dataBytes))
        return data
    }

    @Test(arguments: [
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "outside"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12 bytes"),
        ("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 8, "U8"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"),
        // Issue 14, point 7: an empty tensor sorted between two overlapping ones hid the overlap.
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "'a' and 'b' overlap"),
        // A tensor inside a longer one, after a shorter one that ends first.
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 16, "overlap"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1000000000,1000000000,4],\"data_offsets\":[0,8]}}", 8, "larger than the file"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8, "non-negative"),
        ("[1,2]", 0, "not a JSON object"),
        ("{\"a\":", 0, "not valid JSON"),
    ])
    func untrustedHeadersGiveErrorsNamingTheProblem(header: String, dataBytes: Int, expected: String) {
        do {
            _ = try SafeTensors.decode(Self.file(header: header, dataBytes: dataBytes), source: "bad.safetensors")
            Issue.record("decoded a bad file: \(header)")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
            #expect("\(error)".contains("bad.safetensors"))
        }
    }

    @Test func manyTensorsAreRefusedBeforeTheWork() {
        // 5000 empty tensors: a small header, but over the 4096-tensor bound.
        let entries = (0..<5000).map { "\"t\($0)\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}" }
        let header = "{" + entries.joined(separator: ",") + "}"
        #expect { try SafeTensors.decode(Self.file(header: header, dataBytes: 0), source: "many.safetensors") } throws: { error in
            "\(error)".contains("5000 header entries, more than the 4096 tensors allowed") && "\(error)".contains("many.safetensors")
        }
        // A header over 4 MB is refused from its declared length alone.
        var data = Data()
        withUnsafeBytes(of: UInt64(5 << 20).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data(count: 5 << 20))
        #expect { try SafeTensors.decode(data, source: "huge.safetensors") } throws: { "\($0)".contains("exceeds the 4194304-byte limit") }
    }

    @Test func unknownTensorsAreRefusedByNameAndBatchCountersIgnored() throws {
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 3, hiddenUnits: 8), seed: 1)
        var state = network.stateDictionary()
        state["bn1.num_batches_tracked"] = Tensor([7], shape: [1])
        let folder = FileManager.default.temporaryDirectory
        let accepted = folder.appendingPathComponent("envnet-counter-\(UUID().uuidString).safetensors")
        try SafeTensors(tensors: state).write(to: accepted)
        defer { try? FileManager.default.removeItem(at: accepted) }
        _ = try EnvNet.loadModel(from: accepted)
        state["fc8.weight"] = Tensor([1, 2], shape: [2])
        let refused = folder.appendingPathComponent("envnet-unknown-\(UUID().uuidString).safetensors")
        try SafeTensors(tensors: state).write(to: refused)
        defer { try? FileManager.default.removeItem(at: refused) }
        #expect { try EnvNet.loadModel(from: refused) } throws: { "\($0)".contains("fc8.weight") }
    }

    @Test func headerLengthBeyondTheFileIsRefused() {
        var data = Data()
        withUnsafeBytes(of: UInt64(1000).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data("{}".utf8))
        #expect(throws: SafeTensorsError.self) { try SafeTensors.decode(data) }
        #expect(throws: SafeTensorsError.self) { try SafeTensors.decode(Data([1, 2, 3])) }
    }

    @Test func atomicWriteReportsAMissingFolder() {
        #expect(throws: FileWriteError.self) {
            try AtomicFile.write(Data([1]), to: URL(fileURLWithPath: "/nonexistent-envnet/folder/file.bin"))
        }
    }

    @Test func pngHasValidChunksAndChecksums() {
        let png = PNGEncoder.encode(width: 2, height: 2, rgb: [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
        let bytes = [UInt8](png)
        #expect(Array(bytes[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        // Walk the chunks and verify each CRC (computed here by the bitwise definition).
        func crc(_ data: ArraySlice<UInt8>) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for byte in data {
                c ^= UInt32(byte)
                for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            }
            return ~c
        }
        var position = 8, types: [String] = []
        while position < bytes.count {
            let length = Int(bytes[position]) << 24 | Int(bytes[position + 1]) << 16 | Int(bytes[position + 2]) << 8 | Int(bytes[position + 3])
            let type = String(decoding: bytes[(position + 4)..<(position + 8)], as: UTF8.self)
            let stored = bytes[(position + 8 + length)..<(position + 12 + length)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            #expect(stored == crc(bytes[(position + 4)..<(position + 8 + length)]), "\(type)")
            types.append(type)
            position += 12 + length
        }
        #expect(types == ["IHDR", "IDAT", "IEND"])
    }

    @Test func chartsAreWellFormedSVG() throws {
        let line = Charts.lineChart(title: "loss <train>", xLabel: "epoch", yLabel: "loss",
                                    series: [.init(name: "train", points: [(1, 2), (2, 1), (3, 0.5)], color: Charts.color(0))])
        let heat = Charts.heatmap(title: "confusion", values: [[3, 1], [0, 4]], rowLabels: ["a", "b"], columnLabels: ["a", "b"],
                                  xLabel: "predicted", yLabel: "true", cellText: true)
        for svg in [line, heat] {
            #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
            // XMLParser accepts the document: every tag closed, attributes quoted, text escaped.
            let parser = XMLParser(data: Data(svg.utf8))
            #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        }
        #expect(line.contains("loss &lt;train&gt;"))
        #expect(heat.contains("data:image/png;base64,"))
        // Axis ticks are round numbers: epochs 1…150 get 0, 50, 100, 150 or 20, 40 …, never 30.80.
        let curve = Charts.lineChart(title: "t", xLabel: "epoch", yLabel: "loss",
                                     series: [.init(name: "a", points: (1...150).map { (Double($0), 9.2 / Double($0)) }, color: Charts.color(0))])
        let labels = curve.components(separatedBy: "font-size=\"12\">").dropFirst().map { $0.prefix { $0 != "<" } }
        let numbers = labels.compactMap { Double($0) }
        #expect(numbers.count >= 6 && numbers.allSatisfy { ($0 * 10).rounded() == $0 * 10 }, "\(labels)")
        #expect(labels.contains("50") && labels.contains("100") && !labels.contains("30.80"))
    }
}
