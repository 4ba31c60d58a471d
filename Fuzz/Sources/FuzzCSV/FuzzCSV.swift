@testable import EnvNetAudio
import Foundation

/// Set ENVNET_FUZZ_VERBOSE=1 to print each input's outcome (for checking the seed corpus).
let verbose = ProcessInfo.processInfo.environment["ENVNET_FUZZ_VERBOSE"] != nil

/// libFuzzer entry point for the CSV parser and the ESC-50 metadata interpretation (the code
/// behind `ESC50Dataset(root:)`, reached here without files through `@testable`; debug builds
/// enable testability). Any bytes must parse or throw `CSVError` / `DatasetError`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let rows = try CSV.parse(text, source: "fuzz.csv")
        precondition(rows.allSatisfy { !$0.isEmpty })
    } catch {}
    do {
        let table = try CSV.parseTable(text, source: "fuzz.csv")
        precondition(table.rows.count == table.lineNumbers.count)
        precondition(table.rows.allSatisfy { $0.count == table.header.count })
    } catch {}
    for subset in ESC50Subset.allCases {
        do {
            let parsed = try ESC50Dataset.parseMetadata(text, source: "fuzz.csv", subset: subset)
            precondition(parsed.clips.allSatisfy { (0..<parsed.classNames.count).contains($0.label) })
            if verbose { print("\(subset): \(parsed.clips.count) clips, \(parsed.classNames.count) classes") }
        } catch {
            if verbose { print("\(subset): \(error)") }
        }
    }
    return 0
}
