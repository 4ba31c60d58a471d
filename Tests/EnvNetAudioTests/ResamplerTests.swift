import EnvNetTensor
import Foundation
import Testing
@testable import EnvNetAudio

private func sine(frequency: Double, rate: Int, count: Int, amplitude: Double = 1) -> [Float] {
    (0..<count).map { Float(amplitude * sin(2 * Double.pi * frequency * Double($0) / Double(rate))) }
}

private struct ResamplerFixture: Decodable {
    var inputRate: Int
    var outputRate: Int
    var up: Int
    var down: Int
    var halfLength: Int
    var beta: Double
    var centreTaps: [Double]
    var input: [Float]
    var output: [Double]
}

@Suite("Resampler")
struct ResamplerTests {
    @Test func reducesRatesByGreatestCommonDivisor() throws {
        let resampler = try Resampler(from: 44100, to: 16000)
        #expect(resampler.upFactor == 160)
        #expect(resampler.downFactor == 441)
        #expect(resampler.tapsPerPhase % 16 == 0)
        #expect(abs(resampler.cutoffFrequency - 7600) < 1e-9)
        #expect(resampler.outputCount(forInputCount: 44100) == 16000)
        #expect(resampler.outputCount(forInputCount: 11025) == 4000)
        #expect(resampler.outputCount(forInputCount: 1) == 1)
        #expect(resampler.process([]) == [])
    }

    @Test func rejectsInvalidRates() {
        #expect(throws: AudioError.self) { try Resampler(from: 0, to: 16000) }
        #expect(throws: AudioError.self) { try Resampler(from: 44100, to: -1) }
        // 999983 and 1000003 are prime: the table would need ~10^6 phases.
        #expect(throws: AudioError.self) { try Resampler(from: 999_983, to: 1_000_003) }
    }

    @Test func sameRateIsIdentity() throws {
        let samples: [Float] = [0.1, -0.2, 0.3]
        #expect(try Resampler(from: 16000, to: 16000).process(samples) == samples)
    }

    @Test func tonesAboveNewNyquistAreRejectedBy100dB() throws {
        let resampler = try Resampler(from: 44100, to: 16000)
        for frequency in [8050.0, 8500, 11000, 15000, 21000] {
            let output = resampler.process(sine(frequency: frequency, rate: 44100, count: 11025))
            // Full-scale input RMS is 1/sqrt(2); skip the start/stop transients.
            let level = 20 * log10(rms(output[400..<3600]) * 2.0.squareRoot())
            #expect(level <= -100, "tone at \(frequency) Hz leaked at \(level) dB")
        }
    }

    @Test func passbandIsFlatWithin005dB() throws {
        let resampler = try Resampler(from: 44100, to: 16000)
        for frequency in [50.0, 440, 1000, 3000, 5000, 6500, 7200] {
            let output = resampler.process(
                sine(frequency: frequency, rate: 44100, count: 11025, amplitude: 0.5))
            let amplitude = toneAmplitude(output, frequency: frequency, sampleRate: 16000,
                                          range: 400..<3600)
            let error = 20 * log10(amplitude / 0.5)
            #expect(abs(error) <= 0.05, "\(frequency) Hz changed by \(error) dB")
        }
    }

    @Test(arguments: [48000, 22050, 8000])
    func otherRatesToSixteenKilohertz(inputRate: Int) throws {
        let resampler = try Resampler(from: inputRate, to: 16000)
        let count = inputRate / 4
        let kept = resampler.process(sine(frequency: 1000, rate: inputRate, count: count, amplitude: 0.5))
        #expect(kept.count == 4000)
        let amplitude = toneAmplitude(kept, frequency: 1000, sampleRate: 16000, range: 400..<3600)
        #expect(abs(20 * log10(amplitude / 0.5)) <= 0.05)
        if inputRate > 16000 {
            let rejected = resampler.process(sine(frequency: 9000, rate: inputRate, count: count))
            #expect(20 * log10(rms(rejected[400..<3600]) * 2.0.squareRoot()) <= -100)
        }
    }

    @Test func upsamplingInterpolatesBandLimitedSignal() throws {
        let resampler = try Resampler(from: 16000, to: 44100)
        let output = resampler.process(sine(frequency: 2000, rate: 16000, count: 4000, amplitude: 0.5))
        #expect(output.count == 11025)
        let expected = sine(frequency: 2000, rate: 44100, count: 11025, amplitude: 0.5)
        let worst = (1000..<10000).map { abs(output[$0] - expected[$0]) }.max() ?? 1
        #expect(worst < 1e-4)
    }

    @Test func matchesScipyResamplePolyFixture() throws {
        let fixture = try loadFixture("resampler_44100_16000", as: ResamplerFixture.self)
        let resampler = try Resampler(from: fixture.inputRate, to: fixture.outputRate)
        #expect(resampler.upFactor == fixture.up)
        #expect(resampler.downFactor == fixture.down)
        #expect(resampler.halfLength == fixture.halfLength)
        #expect(abs(resampler.beta - fixture.beta) < 1e-12)
        let prototype = resampler.prototypeFilter()
        let centre = prototype[(resampler.halfLength - 5)...(resampler.halfLength + 5)]
        for (mine, reference) in zip(centre, fixture.centreTaps) {
            #expect(abs(mine - reference) < 1e-9 * max(1, abs(reference)))
        }
        let output = resampler.process(fixture.input)
        #expect(output.count == fixture.output.count)
        // Tolerance 2e-5 absolute (about -94 dB re full scale): float32 taps and accumulation
        // against scipy's float64, plus the fixture's 7-decimal rounding.
        let worst = zip(output, fixture.output).map { abs(Double($0) - $1) }.max() ?? 1
        #expect(worst < 2e-5, "largest difference from scipy: \(worst)")
    }
}
