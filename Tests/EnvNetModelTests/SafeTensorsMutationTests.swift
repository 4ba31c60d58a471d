import EnvNetModel
import Foundation
import Testing

/// The in-suite, deterministic counterpart of Fuzz/FuzzSafeTensors: seeded mutations of valid
/// files (byte flips, truncation, edits of the JSON header's numbers, names and dtypes) must
/// decode or throw `SafeTensorsError`, and whatever decodes must load as an EnvNet or throw
/// `EnvNetError` — never crash, hang or allocate beyond the file.
@Suite("Safetensors mutations")
struct SafeTensorsMutationTests {
    /// Valid files: a narrowed EnvNet (fc width 2, 2 classes) with and without metadata, and small
    /// tensors of several dtypes.
    static func seeds() -> [Data] {
        let network = EnvNet(configuration: EnvNetConfiguration(classCount: 2, hiddenUnits: 2), seed: 1)
        var withoutMetadata = network.safeTensors(classNames: ["a", "b"])
        withoutMetadata.metadata = [:]
        let small = SafeTensors(tensors: ["a": Tensor.ones([2, 3]), "b": Tensor.zeros([4])], metadata: ["k": "v"])
        return [network.safeTensors(classNames: ["a", "b"]).encoded(), withoutMetadata.encoded(), small.encoded()]
    }

    /// Replaces one run of digits (or one of a few key words) in the JSON header.
    static func mutateHeader(_ data: inout Data, using generator: inout SeededGenerator) {
        guard data.count >= 8 else { return }
        let length = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard length > 0, 8 + length <= data.count else { return }
        var header = Array(data[8..<(8 + length)])
        let replacements = ["0", "1", "-1", "7700", "1000000000000", "18446744073709551615", "9223372036854775807",
                            "\"F16\"", "\"BF16\"", "\"U8\"", "\"F64\"", "[]", "[0]", "{}", "null", "\"fc5.weight\"", "\"fc6.weight\""]
        let digitRuns = header.indices.filter { header[$0] >= 48 && header[$0] <= 57 && ($0 == 0 || !(header[$0 - 1] >= 48 && header[$0 - 1] <= 57)) }
        guard let start = digitRuns.isEmpty ? nil : digitRuns[generator.nextInt(below: digitRuns.count)] else { return }
        var end = start
        while end < header.count, header[end] >= 48, header[end] <= 57 { end += 1 }
        header.replaceSubrange(start..<end, with: Array(replacements[generator.nextInt(below: replacements.count)].utf8))
        // Keep the length prefix consistent half of the time (so the JSON is what gets tested).
        let newLength = generator.nextInt(below: 2) == 0 ? header.count : length
        var result = Data()
        withUnsafeBytes(of: UInt64(newLength).littleEndian) { result.append(contentsOf: $0) }
        result.append(contentsOf: header)
        result.append(data[(8 + length)...])
        data = result
    }

    @Test func mutationsDecodeOrThrowCleanly() throws {
        let seeds = Self.seeds()
        for seed in seeds { _ = try SafeTensors.decode(seed) }
        var generator = SeededGenerator(seed: 77)
        var decoded = 0, rejected = 0, loaded = 0
        for _ in 0..<800 {  // each load builds a network: about 10 ms in a debug build
            var data = seeds[generator.nextInt(below: seeds.count)]
            for _ in 0...generator.nextInt(below: 2) {
                switch generator.nextInt(below: 4) {
                case 0:
                    for _ in 0...generator.nextInt(below: 3) where !data.isEmpty {
                        data[generator.nextInt(below: data.count)] ^= UInt8(1 + generator.nextInt(below: 255))
                    }
                case 1:
                    data = data.prefix(generator.nextInt(below: data.count + 1))
                default:
                    Self.mutateHeader(&data, using: &generator)
                }
            }
            let file: SafeTensors
            do {
                file = try SafeTensors.decode(data, source: "mutated.safetensors")
                decoded += 1
            } catch let error as SafeTensorsError {
                rejected += 1
                #expect("\(error)".contains("mutated.safetensors"), "\(error)")
                continue
            }
            #expect(file.tensors.values.reduce(0) { $0 + $1.count } <= data.count, "decoded more elements than the file has bytes")
            do {
                _ = try EnvNet.load(file, source: "mutated.safetensors")
                loaded += 1
            } catch let error as EnvNetError {
                #expect("\(error)".contains("mutated.safetensors"), "\(error)")
            }
        }
        print("safetensors mutations: decoded \(decoded), rejected \(rejected), loaded \(loaded)")
        #expect(decoded > 50 && rejected > 300 && loaded > 20, "decoded \(decoded), rejected \(rejected), loaded \(loaded)")
    }
}
