import EnvNetTensor
import Foundation
import Testing
@testable import EnvNetAudio

/// The in-suite, deterministic counterpart of Fuzz/FuzzCSV: seeded mutations of ESC-50 metadata
/// must parse or throw `CSVError` / `DatasetError`, and what parses must be consistent.
@Suite("ESC-50 CSV mutations")
struct CSVMutationTests {
    static let seed = """
        filename,fold,target,category,esc10,src_file,take
        1-100032-A-0.wav,1,0,dog,True,100032,A
        1-100038-A-14.wav,1,14,chirping_birds,False,100038,A
        "2-1-A-10.wav",2,10,"rain, heavy",True,1,A\r
        5-9032-A-0.wav,5,0,dog,True,9032,A

        """

    @Test func mutationsParseOrThrowCleanly() throws {
        _ = try ESC50Dataset.parseMetadata(Self.seed, source: "seed.csv", subset: .esc50)
        let base = Array(Self.seed.utf8)
        let pieces: [[UInt8]] = [",", "\"", "\n", "\r", "\r\n", "\u{FEFF}", "True", "False", "-1", "99999", "0", "A", ""].map { Array($0.utf8) }
        var generator = SeededGenerator(seed: 5)
        var parsed = 0, rejected = 0
        for _ in 0..<3000 {
            var bytes = base
            for _ in 0...generator.nextInt(below: 3) {
                let position = generator.nextInt(below: bytes.count + 1)
                switch generator.nextInt(below: 4) {
                case 0 where position < bytes.count: bytes.remove(at: position)
                case 1: bytes.insert(contentsOf: pieces[generator.nextInt(below: pieces.count)], at: position)
                case 2 where position < bytes.count: bytes[position] = UInt8(truncatingIfNeeded: generator.next())
                default: bytes = Array(bytes.prefix(position))
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            if let table = try? CSV.parseTable(text, source: "m.csv") {
                #expect(table.rows.count == table.lineNumbers.count)
                #expect(table.rows.allSatisfy { $0.count == table.header.count })
            }
            for subset in ESC50Subset.allCases {
                do {
                    let result = try ESC50Dataset.parseMetadata(text, source: "m.csv", subset: subset)
                    parsed += 1
                    #expect(result.clips.allSatisfy { (0..<result.classNames.count).contains($0.label) })
                } catch is CSVError {
                    rejected += 1
                } catch is DatasetError {
                    rejected += 1
                }
            }
        }
        #expect(parsed > 300 && rejected > 300, "parsed \(parsed), rejected \(rejected)")
    }
}
