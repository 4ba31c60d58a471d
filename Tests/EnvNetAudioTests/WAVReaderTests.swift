import EnvNetTensor
import Foundation
import Testing
@testable import EnvNetAudio

@Suite("WAV decoding")
struct WAVReaderTests {
    @Test func pcm16RoundTripThroughWriterIsExact() throws {
        let left: [Float] = [0, 0.5, -0.5, 32767 / 32768, -1, 1 / 32768]
        let right: [Float] = [-1, 0.25, 0, 0, 0.125, -1 / 32768]
        let data = try WAVWriter.encode(channels: [left, right], sampleRate: 44100, format: .pcm16)
        let audio = try WAVReader.decode(data)
        #expect(audio.sampleRate == 44100)
        #expect(audio.channelCount == 2)
        #expect(audio.frameCount == 6)
        #expect(audio.encoding == .signedPCM(bits: 16))
        #expect(audio.encodingDescription == "PCM signed 16-bit")
        #expect(audio.channels == [left, right])
        #expect(audio.mono == zip(left, right).map { ($0 + $1) / 2 })
        #expect(audio.info.dataOffset == 44)
    }

    @Test func pcm16WriterClipsAndRounds() throws {
        let data = try WAVWriter.encode([1.5, -2, 0.00002, .nan], sampleRate: 8000, format: .pcm16)
        let audio = try WAVReader.decode(data)
        #expect(audio.mono == [32767 / 32768, -1, 1 / 32768, 0])
    }

    @Test func float32RoundTripIsExact() throws {
        let samples: [Float] = [0.1, -0.3333, 1.5, -2.25, 1e-7]
        let data = try WAVWriter.encode(samples, sampleRate: 48000, format: .float32)
        let audio = try WAVReader.decode(data)
        #expect(audio.encoding == .float32)
        #expect(audio.mono == samples)
        #expect(audio.sampleRate == 48000)
    }

    @Test func writesAtomicallyToFileAndReadsBack() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        let url = folder.appendingPathComponent("tone.wav")
        try WAVWriter.write([0.25, -0.25, 0.5], sampleRate: 16000, format: .pcm16, to: url)
        try WAVWriter.write([0.75, 0], sampleRate: 22050, format: .float32, to: url)
        let audio = try WAVReader.read(atPath: url.path)
        #expect(audio.mono == [0.75, 0])
        #expect(audio.sampleRate == 22050)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(leftovers == ["tone.wav"])
    }

    @Test func unsigned8Bit() throws {
        let bytes = WAVBuilder(bitsPerSample: 8, payload: [0, 128, 255, 64]).build()
        let audio = try WAVReader.decode(bytes: bytes)
        #expect(audio.encoding == .unsignedPCM8)
        #expect(audio.mono == [-1, 0, 127 / 128, -0.5])
    }

    @Test func signed24Bit() throws {
        let payload: [UInt8] = [0x00, 0x00, 0x80, 0xFF, 0xFF, 0x7F, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0xFF]
        let audio = try WAVReader.decode(bytes: WAVBuilder(bitsPerSample: 24, payload: payload).build())
        #expect(audio.encoding == .signedPCM(bits: 24))
        let scale: Float = 8_388_608
        let expected: [Float] = [-1, 8_388_607 / scale, 1 / scale, -1 / scale]
        #expect(audio.mono == expected)
    }

    @Test func signed32Bit() throws {
        let payload = le32(0x8000_0000) + le32(0x4000_0000) + le32(0xFFFF_FFFF)
        let audio = try WAVReader.decode(bytes: WAVBuilder(bitsPerSample: 32, payload: payload).build())
        #expect(audio.mono == [-1, 0.5, -1 / 2_147_483_648])
    }

    @Test func float64() throws {
        let values: [Double] = [0.5, -0.125, 2.0, .infinity]
        let payload = values.flatMap { le64($0.bitPattern) }
        let audio = try WAVReader.decode(
            bytes: WAVBuilder(formatTag: 3, bitsPerSample: 64, payload: payload).build())
        #expect(audio.encoding == .float64)
        #expect(audio.mono == [0.5, -0.125, 2.0, 0])
    }

    @Test func aLawMatchesReferenceDecoder() throws {
        // Reference values from Python's audioop.alaw2lin.
        let codes: [UInt8] = [0x00, 0x55, 0xD5, 0xAA, 0x2A, 0x80, 0x13]
        let expected: [Int16] = [-5504, -8, 8, 32256, -32256, 5504, -2880]
        let audio = try WAVReader.decode(
            bytes: WAVBuilder(formatTag: 6, bitsPerSample: 8, payload: codes).build())
        #expect(audio.encoding == .aLaw)
        #expect(audio.mono == expected.map { Float($0) / 32768 })
    }

    @Test func muLawMatchesReferenceDecoder() throws {
        // Reference values from Python's audioop.ulaw2lin.
        let codes: [UInt8] = [0x00, 0x7F, 0xFF, 0x80, 0x13, 0xF0]
        let expected: [Int16] = [-32124, 0, 0, 32124, -14460, 120]
        let audio = try WAVReader.decode(
            bytes: WAVBuilder(formatTag: 7, bitsPerSample: 8, payload: codes).build())
        #expect(audio.encoding == .muLaw)
        #expect(audio.mono == expected.map { Float($0) / 32768 })
    }

    @Test func g711TablesAreOddSymmetric() {
        for code in 0..<128 {
            #expect(G711.aLawTable[code] == -G711.aLawTable[code + 128])
            #expect(G711.muLawTable[code] == -G711.muLawTable[code + 128])
        }
    }

    @Test func extensiblePCM24Stereo() throws {
        let payload: [UInt8] = [0x00, 0x00, 0x40, 0x00, 0x00, 0xC0]  // +0.5, -0.5
        let builder = WAVBuilder(channels: 2, bitsPerSample: 24, extensibleSubformat: 1, payload: payload)
        let audio = try WAVReader.decode(bytes: builder.build())
        #expect(audio.info.isExtensible)
        #expect(audio.encodingDescription == "WAVE_FORMAT_EXTENSIBLE, PCM signed 24-bit")
        #expect(audio.channels == [[0.5], [-0.5]])
        #expect(audio.mono == [0])
    }

    @Test func extensibleFloatAndCompanded() throws {
        let float = WAVBuilder(bitsPerSample: 32, extensibleSubformat: 3,
                               payload: le32(Float(0.75).bitPattern))
        #expect(try WAVReader.decode(bytes: float.build()).mono == [0.75])
        let muLaw = WAVBuilder(bitsPerSample: 8, extensibleSubformat: 7, payload: [0x80])
        #expect(try WAVReader.decode(bytes: muLaw.build()).encoding == .muLaw)
        let aLaw = WAVBuilder(bitsPerSample: 8, extensibleSubformat: 6, payload: [0xAA])
        #expect(try WAVReader.decode(bytes: aLaw.build()).mono == [32256 / 32768])
    }

    @Test func chunksInAnyOrderWithOddPadding() throws {
        var builder = WAVBuilder(payload: le16(0x4000) + le16(0xC000))
        builder.extraChunks = [("junk", [1, 2, 3]), ("LIST", Array("INFOISFT".utf8) + [0])]
        builder.dataBeforeFormat = true
        let audio = try WAVReader.decode(bytes: builder.build())
        #expect(audio.mono == [0.5, -0.5])
    }

    @Test func listChunkBetweenFormatAndDataLikeTheRealData() throws {
        var builder = WAVBuilder(payload: le16(0x2000))
        builder.extraChunks = [("LIST", Array("INFOISFT\u{0E}\0\0\0Lavf58.76.100\0".utf8))]
        let audio = try WAVReader.decode(bytes: builder.build())
        #expect(audio.info.dataOffset == 78)
        #expect(audio.mono == [0.25])
    }

    @Test func manyChannelsDownmixByAveraging() throws {
        let frames: [[Int16]] = [[1000, 2000, 3000, -6000], [-32768, 0, 0, 0]]
        let payload = frames.flatMap { $0.flatMap { le16(UInt16(bitPattern: $0)) } }
        let audio = try WAVReader.decode(bytes: WAVBuilder(channels: 4, payload: payload).build())
        #expect(audio.channelCount == 4)
        #expect(audio.frameCount == 2)
        #expect(audio.channels[1] == [2000 / 32768, 0])
        #expect(audio.mono == [0, -0.25])
    }

    @Test func truncatedDataChunkDecodesWholeFramesPresent() throws {
        var bytes = WAVBuilder(channels: 2, payload: (0..<16).map { UInt8($0) }).build()
        bytes.removeLast(5)  // 11 data bytes remain: two whole stereo frames
        let audio = try WAVReader.decode(bytes: bytes)
        #expect(audio.info.isDataTruncated)
        #expect(audio.frameCount == 2)
        #expect(audio.info.dataByteCount == 11)
    }

    @Test func readInfoDoesNotNeedSamples() throws {
        let folder = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(folder) }
        let url = folder.appendingPathComponent("a.wav")
        try WAVWriter.write([Float](repeating: 0.1, count: 1000), sampleRate: 44100,
                            format: .pcm16, to: url)
        let info = try WAVReader.readInfo(contentsOf: url)
        #expect(info.frameCount == 1000)
        #expect(info.sampleRate == 44100)
        #expect(abs(info.duration - 1000.0 / 44100) < 1e-12)
    }

    @Test func realESC10FilesDecodeWhenPresent() throws {
        guard let folder = sharedESC10Folder()?.appendingPathComponent("audio") else { return }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".wav") }.sorted().prefix(2)
        #expect(names.count == 2)
        for name in names {
            let audio = try WAVReader.read(contentsOf: folder.appendingPathComponent(name))
            #expect(audio.sampleRate == 16000)
            #expect(audio.channelCount == 1)
            #expect(audio.encoding == .signedPCM(bits: 16))
            #expect(audio.frameCount == 80000)
            #expect(audio.info.dataOffset == 78)
            #expect(peakAmplitude(audio.mono) > 0)
        }
    }
}
