import EnvNetAudio
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Regression for issue 8 (long input): `WAVReader.readInfo` read the whole file on Linux
/// (`Data(contentsOf:options: .mappedIfSafe)` copies it), so streaming a one-hour recording
/// began by loading all 115 MB of it. It now maps the file and touches only the chunk headers.
@Suite("Long files: the header of a huge WAV file costs no memory")
struct LongFileTests {
    /// This process's peak resident memory, in bytes.
    static func peakResidentBytes() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return usage.ru_maxrss
        #endif
    }

    @Test func readInfoOfAOneGigabyteFileDoesNotLoadIt() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        // A sparse file: a 16 kHz mono 16-bit header declaring 1 GiB of samples, then a hole.
        let url = folder.appendingPathComponent("huge.wav")
        let dataBytes = 1 << 30
        var header = try WAVWriter.encode(channels: [[]], sampleRate: 16_000, format: .pcm16)
        header.replaceSubrange(40..<44, with: withUnsafeBytes(of: UInt32(dataBytes).littleEndian) { Data($0) })
        try header.write(to: url)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: UInt64(header.count + dataBytes))
        try handle.close()

        // Tests run in parallel in this process: another test's allocation could raise the peak
        // during the call, so a growth is only believed when it happens three times running.
        var growth = 0, read: WAVInfo?
        for _ in 0..<3 {
            let before = Self.peakResidentBytes()
            read = try WAVReader.readInfo(contentsOf: url)
            growth = Self.peakResidentBytes() - before
            if growth < 256 << 20 { break }
        }
        let info = try #require(read)
        #expect(info.frameCount == dataBytes / 2)
        #expect(abs(info.duration - Double(dataBytes / 2) / 16_000) < 1e-9)
        #expect(!info.isDataTruncated)
        // Reading the file would raise the peak by 1 GiB (unless the peak was already 1 GiB above
        // the current use, which the suite's tests do not reach).
        #expect(growth < 256 << 20, "readInfo raised the peak resident memory by \(growth >> 20) MB")
    }

    @Test func readInfoStillNamesMissingAndEmptyFiles() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        let missing = folder.appendingPathComponent("missing.wav")
        #expect(throws: AudioError(source: missing.path, problem: .readFailed("no such file"))) {
            try WAVReader.readInfo(contentsOf: missing)
        }
        let empty = folder.appendingPathComponent("empty.wav")
        try Data().write(to: empty)
        #expect(throws: AudioError(source: empty.path, problem: .emptyFile)) { try WAVReader.readInfo(contentsOf: empty) }
        // A header that declares more than the file holds is clamped, as for a whole-file read.
        let cut = folder.appendingPathComponent("cut.wav")
        var bytes = try WAVWriter.encode(channels: [[Float](repeating: 0.25, count: 100)], sampleRate: 8_000, format: .pcm16)
        bytes.removeLast(50)
        try bytes.write(to: cut)
        let info = try WAVReader.readInfo(contentsOf: cut)
        #expect(info.isDataTruncated && info.frameCount == 75)
        #expect(info == (try WAVReader.read(contentsOf: cut)).info)
    }
}
