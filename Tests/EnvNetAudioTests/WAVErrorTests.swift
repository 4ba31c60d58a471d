import EnvNetTensor
import Foundation
import Testing
@testable import EnvNetAudio

/// Decodes `bytes` expecting an `AudioError` and returns it.
private func decodeError(_ bytes: [UInt8], source: String = "bad.wav") -> AudioError? {
    do {
        _ = try WAVReader.decode(bytes: bytes, source: source)
        return nil
    } catch let error as AudioError {
        return error
    } catch {
        return nil
    }
}

@Suite("WAV bad-file errors")
struct WAVErrorTests {
    @Test func emptyFile() {
        let error = decodeError([])
        #expect(error?.problem == .emptyFile)
        #expect(error?.description == "bad.wav: file is empty")
    }

    @Test func notRIFF() {
        let error = decodeError(Array("OggS\0\0\0\0\0\0\0\0\0\0".utf8))
        #expect(error?.problem == .notRIFF(found: "'OggS'"))
        #expect(error?.description.hasPrefix("bad.wav: not a RIFF file") == true)
    }

    @Test func notWAVE() {
        var bytes = WAVBuilder(payload: [0, 0]).build()
        bytes.replaceSubrange(8..<12, with: Array("AVI ".utf8))
        #expect(decodeError(bytes)?.problem == .notWAVE(found: "'AVI '"))
    }

    @Test func truncatedHeader() {
        let bytes = Array(WAVBuilder(payload: [0, 0]).build().prefix(10))
        #expect(decodeError(bytes)?.problem == .truncatedHeader(needed: 12, available: 10))
    }

    @Test func truncatedRIFFPrefix() {
        #expect(decodeError(Array("RI".utf8))?.problem == .truncatedHeader(needed: 12, available: 2))
    }

    @Test func chunkBeyondEndOfFile() {
        var builder = WAVBuilder(payload: [0, 0])
        builder.extraChunks = [("LIST", [1, 2, 3, 4])]
        var bytes = builder.build()
        // The LIST size field sits right after fmt (12 + 8 + 16) and its id.
        bytes.replaceSubrange(40..<44, with: le32(0xFFFF_FFF0))
        let error = decodeError(bytes)
        guard case .chunkExceedsFile(let chunk, let declared, _)? = error?.problem else {
            Issue.record("expected chunkExceedsFile, got \(String(describing: error))")
            return
        }
        #expect(chunk == "'LIST'")
        #expect(declared == 0xFFFF_FFF0)
        // Issue 14, point 8: the name is quoted once in the message, not twice.
        let message = error?.description ?? ""
        #expect(message.contains("chunk 'LIST' declares") && !message.contains("''"), "\(message)")
    }

    @Test func formatChunkBeyondEndOfFile() {
        var bytes = WAVBuilder(payload: [0, 0]).build()
        bytes.replaceSubrange(16..<20, with: le32(1_000_000))
        guard case .chunkExceedsFile(let chunk, _, _)? = decodeError(bytes)?.problem else {
            Issue.record("expected chunkExceedsFile")
            return
        }
        #expect(chunk == "'fmt '")
    }

    @Test func missingFormatChunk() {
        let bytes = Array("RIFF".utf8) + le32(14) + Array("WAVE".utf8) + chunk("data", [0, 0])
        #expect(decodeError(bytes)?.problem == .missingFormatChunk)
    }

    @Test func missingDataChunk() {
        let format = WAVBuilder().formatChunkBody()
        let body = Array("WAVE".utf8) + chunk("fmt ", format)
        #expect(decodeError(Array("RIFF".utf8) + le32(UInt32(body.count)) + body)?.problem
            == .missingDataChunk)
    }

    @Test func formatChunkTooShort() {
        let body = Array("WAVE".utf8) + chunk("fmt ", [1, 0, 1, 0]) + chunk("data", [0, 0])
        let bytes = Array("RIFF".utf8) + le32(UInt32(body.count)) + body
        #expect(decodeError(bytes)?.problem == .invalidFormatChunk("4 bytes, at least 16 needed"))
    }

    @Test func zeroChannels() {
        #expect(decodeError(WAVBuilder(channels: 0, blockAlign: 0, payload: [0, 0]).build())?.problem
            == .zeroChannels)
    }

    @Test func zeroSampleRate() {
        #expect(decodeError(WAVBuilder(sampleRate: 0, payload: [0, 0]).build())?.problem
            == .zeroSampleRate)
    }

    @Test func absurdSampleRate() {
        #expect(decodeError(WAVBuilder(sampleRate: 4_000_000_000, payload: [0, 0]).build())?.problem
            == .sampleRateTooHigh(4_000_000_000))
        #expect(decodeError(WAVBuilder(sampleRate: 768_001, payload: [0, 0]).build())?.problem == .sampleRateTooHigh(768_001))
    }

    /// Issue 14, point 5: a 32 KB file that claims 1 Hz would resample to 512 MB; it is refused.
    @Test(arguments: [1, 999])
    func sampleRatesBelowTheSupportedRangeAreRefused(rate: Int) {
        let payload = [UInt8](repeating: 7, count: 32_000)
        let error = decodeError(WAVBuilder(sampleRate: UInt32(rate), payload: payload).build())
        #expect(error?.problem == .sampleRateTooLow(rate))
        #expect(error?.description.contains("below the supported 1000 Hz") == true)
    }

    @Test(arguments: [8_000, 384_000, 1_000, 768_000])
    func everyRateFrom8To384kHzIsAdmitted(rate: Int) throws {
        #expect(decodeError(WAVBuilder(sampleRate: UInt32(rate), payload: [0, 0, 1, 0]).build()) == nil)
    }

    @Test func blockAlignInconsistent() {
        let bytes = WAVBuilder(channels: 2, blockAlign: 3, payload: [0, 0, 0, 0]).build()
        #expect(decodeError(bytes)?.problem == .blockAlignMismatch(declared: 3, expected: 4))
    }

    @Test func unsupportedEncoding() {
        let bytes = WAVBuilder(formatTag: 2, bitsPerSample: 4, blockAlign: 1, payload: [0]).build()
        let error = decodeError(bytes)
        #expect(error?.problem == .unsupportedEncoding(formatTag: 2))
        #expect(error?.description == "bad.wav: unsupported encoding (format tag 0x2)")
    }

    @Test func unsupportedPCMBitDepth() {
        let bytes = WAVBuilder(bitsPerSample: 12, blockAlign: 2, payload: [0, 0]).build()
        #expect(decodeError(bytes)?.problem == .unsupportedBitDepth(encoding: "PCM", bits: 12))
    }

    @Test func unsupportedFloatBitDepth() {
        let bytes = WAVBuilder(formatTag: 3, bitsPerSample: 16, payload: [0, 0]).build()
        #expect(decodeError(bytes)?.problem == .unsupportedBitDepth(encoding: "IEEE float", bits: 16))
    }

    @Test func unsupportedCompandedBitDepth() {
        let bytes = WAVBuilder(formatTag: 6, bitsPerSample: 16, payload: [0, 0]).build()
        #expect(decodeError(bytes)?.problem == .unsupportedBitDepth(encoding: "A-law", bits: 16))
    }

    @Test func unsupportedExtensibleSubformat() {
        var bytes = WAVBuilder(extensibleSubformat: 1, payload: [0, 0]).build()
        bytes[20 + 24 + 15] = 0x00  // corrupt the GUID's last byte
        guard case .unsupportedSubformat(let guid)? = decodeError(bytes)?.problem else {
            Issue.record("expected unsupportedSubformat")
            return
        }
        #expect(guid == "{00000001-0000-0010-8000-00AA00389B00}")
    }

    @Test func extensibleWithShortExtension() {
        var bytes = WAVBuilder(extensibleSubformat: 1, payload: [0, 0]).build()
        bytes.replaceSubrange(36..<38, with: le16(10))
        #expect(decodeError(bytes)?.problem
            == .invalidFormatChunk("WAVE_FORMAT_EXTENSIBLE extension is 10 bytes, 22 needed"))
    }

    @Test func missingFileNamesThePath() {
        let path = "/nonexistent/folder/clip.wav"
        do {
            _ = try WAVReader.read(atPath: path)
            Issue.record("expected an error")
        } catch let error as AudioError {
            #expect(error.source == path)
            #expect(error.problem == .readFailed("no such file"))
            #expect(error.description.contains(path))
        } catch {
            Issue.record("unexpected error type \(error)")
        }
    }

    @Test func writerRejectsBadArguments() {
        #expect(throws: AudioError.self) {
            try WAVWriter.encode(channels: [[0, 1], [0]], sampleRate: 16000, format: .pcm16)
        }
        #expect(throws: AudioError.self) {
            try WAVWriter.encode([0], sampleRate: 0, format: .float32)
        }
        #expect(throws: AudioError.self) {
            try WAVWriter.encode(channels: [], sampleRate: 16000, format: .pcm16)
        }
    }
}
