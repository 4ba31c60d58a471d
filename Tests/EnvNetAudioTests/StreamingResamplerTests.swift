import EnvNetTensor
import Foundation
import Testing
@testable import EnvNetAudio

@Suite("StreamingResampler")
struct StreamingResamplerTests {
    /// A tone plus noise, so that every output depends on many different inputs.
    static func signal(count: Int, rate: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { index in
            0.5 * Float(sin(2 * Double.pi * 440 * Double(index) / Double(rate))) + 0.3 * Float.random(in: -1...1, using: &generator)
        }
    }

    /// Feeds `samples` in chunks of random sizes in `sizes` (zero-length chunks included) and finishes.
    static func streamed(_ samples: [Float], through stream: inout StreamingResampler, sizes: ClosedRange<Int>, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        var output: [Float] = []
        var offset = 0
        while offset < samples.count {
            let size = min(Int.random(in: sizes, using: &generator), samples.count - offset)
            output += stream.process(Array(samples[offset..<(offset + size)]))
            offset += size
        }
        output += stream.finish()
        return output
    }

    @Test(arguments: [(44_100, 16_000), (48_000, 16_000), (22_050, 16_000), (8_000, 16_000), (16_000, 16_000)])
    func chunkedOutputEqualsOfflineBitForBit(rates: (Int, Int)) throws {
        let offline = try Resampler(from: rates.0, to: rates.1)
        let samples = Self.signal(count: rates.0 / 2 + 17, rate: rates.0, seed: 3)
        let expected = offline.process(samples)
        for (sizes, seed) in [(1...5000, UInt64(1)), (1...7, 2), (0...300, 3), (4000...9000, 4)] {
            var stream = StreamingResampler(offline)
            let output = Self.streamed(samples, through: &stream, sizes: sizes, seed: seed)
            #expect(output.count == expected.count)
            #expect(output == expected, "chunk sizes \(sizes)")
            // finish() reset the stream: a second pass gives the same result.
            #expect(Self.streamed(samples, through: &stream, sizes: sizes, seed: seed) == expected)
        }
    }

    @Test func oneChunkAndOneSampleAtATimeMatchOffline() throws {
        var stream = try StreamingResampler(from: 44_100, to: 16_000)
        let samples = Self.signal(count: 3000, rate: 44_100, seed: 9)
        let expected = stream.resampler.process(samples)
        #expect(stream.process(samples) + stream.finish() == expected)
        var output: [Float] = []
        for sample in samples { output += stream.process([sample]) }
        output += stream.finish()
        #expect(output == expected)
        #expect(stream.inputCount == 0 && stream.outputCount == 0)  // reset by finish()
    }

    @Test func shortAndEmptyStreams() throws {
        var stream = try StreamingResampler(from: 44_100, to: 16_000)
        #expect(stream.finish() == [])
        #expect(stream.process([]) == [])
        #expect(stream.finish() == [])
        for count in [1, 2, 5, 100] {
            let samples = Self.signal(count: count, rate: 44_100, seed: UInt64(count))
            let output = stream.process(samples) + stream.finish()
            #expect(output == stream.resampler.process(samples))
            #expect(output.count == stream.resampler.outputCount(forInputCount: count))
        }
    }

    @Test func bufferStaysBoundedOnALongStream() throws {
        var stream = try StreamingResampler(from: 48_000, to: 16_000)
        let bound = stream.resampler.tapsPerPhase + stream.resampler.downFactor
        var largest = 0
        var produced = 0
        let chunk = Self.signal(count: 4800, rate: 48_000, seed: 5)
        for _ in 0..<100 {  // 10 s
            produced += stream.process(chunk).count
            largest = max(largest, stream.bufferedSampleCount)
        }
        #expect(largest <= bound)
        #expect(stream.inputCount == 480_000)
        // The stream lags by the filter's latency only.
        #expect(produced + stream.latency / stream.resampler.downFactor + 1 >= 160_000)
        #expect(produced + stream.finish().count == 160_000)
    }

    @Test func outputsAppearAsSoonAsTheirTapsAreKnown() throws {
        var stream = try StreamingResampler(from: 44_100, to: 16_000)
        #expect(stream.latency > 0)
        let first = stream.process([Float](repeating: 0.25, count: stream.latency + 441))
        #expect(!first.isEmpty)
        // Every output emitted so far is final: it equals the offline output of any longer signal.
        let more = stream.process([Float](repeating: 0.25, count: 2000)) + stream.finish()
        let offline = stream.resampler.process([Float](repeating: 0.25, count: stream.latency + 441 + 2000))
        #expect(first + more == offline)
    }

    @Test func rejectsInvalidRates() {
        #expect(throws: AudioError.self) { try StreamingResampler(from: 0, to: 16_000) }
        #expect(throws: AudioError.self) { try StreamingResampler(from: 44_100, to: -5) }
        #expect(throws: AudioError.self) { try StreamingResampler(from: 999_983, to: 1_000_003) }
    }
}
