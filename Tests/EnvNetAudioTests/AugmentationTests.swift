import EnvNetTensor
import Foundation
import Testing
@testable import EnvNetAudio

private struct BCFixture: Decodable {
    struct Gain: Decodable { var frames: [Double]; var gain: Double }
    struct Mix: Decodable {
        var first: String; var second: String; var ratio: Double; var proportion: Double
        var head: [Double]; var headStart: Int
    }
    var sampleRate: Int
    var length: Int
    var gains: [String: Gain]
    var mixes: [Mix]
}

/// Rebuilds the fixture's signals exactly as Tools/make_bc_fixture.py does.
private func fixtureSignals(length: Int) -> [String: [Float]] {
    func uniforms(seed: UInt64, count: Int) -> [Double] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) * 0x1p-53
        }
    }
    var burst = [Double](repeating: 0, count: length)
    for (offset, u) in uniforms(seed: 2, count: 2000).enumerated() { burst[10000 + offset] = 0.9 * (2 * u - 1) }
    let signals: [String: [Double]] = [
        "tone1k": (0..<length).map { 0.5 * sin(2 * Double.pi * 1000 * Double($0) / 16000) },
        "tone100": (0..<length).map { 0.8 * sin(2 * Double.pi * 100 * Double($0) / 16000) },
        "noise": uniforms(seed: 1, count: length).map { 0.1 * (2 * $0 - 1) },
        "burst": burst,
        "silence": [Double](repeating: 0, count: length),
    ]
    return signals.mapValues { $0.map { Float($0) } }
}

@Suite("FFT, BC mixing and strong augmentation")
struct AugmentationTests {
    @Test(arguments: [2, 4, 8, 64, 512])
    func realFFTMatchesNaiveDFT(size: Int) throws {
        var generator = SeededGenerator(seed: UInt64(size))
        let input = (0..<size).map { _ in generator.nextDouble(in: -1...1) }
        let fft = try RealFFT(size: size)
        let (real, imaginary) = fft.transform(input)
        #expect(real.count == size / 2 + 1)
        for k in 0...(size / 2) {
            var expectedRe = 0.0, expectedIm = 0.0
            for n in 0..<size {
                let angle = -2 * Double.pi * Double(k * n % size) / Double(size)
                expectedRe += input[n] * cos(angle)
                expectedIm += input[n] * sin(angle)
            }
            #expect(abs(real[k] - expectedRe) < 1e-9 * Double(size))
            #expect(abs(imaginary[k] - expectedIm) < 1e-9 * Double(size))
        }
    }

    @Test("Four transforms in SIMD lanes equal four scalar transforms bit for bit", arguments: [2, 16, 1024])
    func laneTransformsEqualScalarOnes(size: Int) throws {
        var generator = SeededGenerator(seed: UInt64(size) + 7)
        let frames = (0..<4).map { _ in (0..<size).map { _ in generator.nextDouble(in: -1...1) } }
        let fft = try RealFFT(size: size)
        let input = (0..<size).map { n in SIMD4(frames[0][n], frames[1][n], frames[2][n], frames[3][n]) }
        var real = [SIMD4<Double>](repeating: .zero, count: size / 2 + 1), imaginary = real
        var workspace = [SIMD4<Double>](repeating: .zero, count: size)
        fft.transform4(input, real: &real, imaginary: &imaginary, workspace: &workspace)
        for lane in 0..<4 {
            let scalar = fft.transform(frames[lane])
            #expect(real.map { $0[lane] } == scalar.real)
            #expect(imaginary.map { $0[lane] } == scalar.imaginary)
        }
    }

    @Test func fftRejectsNonPowerOfTwo() {
        #expect(throws: AudioError.self) { try RealFFT(size: 1000) }
        #expect(throws: AudioError.self) { try RealFFT(size: 1) }
    }

    @Test func aWeightingIsZeroDecibelsAtOneKilohertz() {
        // 2048-point FFT at 16 kHz: bin 128 is exactly 1000 Hz.
        let weights = AWeighting.decibels(sampleRate: 16000, fftSize: 2048)
        #expect(weights.count == 1025)
        #expect(abs(weights[128]) < 0.01)
        #expect(weights[0] == -80)
        #expect(abs(weights[13] - (-19.1)) < 0.3)  // ~101.6 Hz
    }

    @Test func gainsMatchPythonReference() throws {
        let fixture = try loadFixture("bc_gain", as: BCFixture.self)
        let signals = fixtureSignals(length: fixture.length)
        let mixer = try BetweenClassMixer(sampleRate: fixture.sampleRate)
        #expect(fixture.gains.count == 5)
        for (name, expected) in fixture.gains {
            let frames = mixer.frameGains(try #require(signals[name]))
            #expect(frames.count == expected.frames.count)
            for (mine, reference) in zip(frames, expected.frames) {
                #expect(abs(mine - reference) < 1e-6, "\(name): \(mine) vs \(reference) dB")
            }
            #expect(abs(mixer.gain(signals[name]!) - expected.gain) < 1e-6)
        }
    }

    @Test func mixMatchesPythonReference() throws {
        let fixture = try loadFixture("bc_gain", as: BCFixture.self)
        let signals = fixtureSignals(length: fixture.length)
        let mixer = try BetweenClassMixer()
        for mix in fixture.mixes {
            let first = signals[mix.first]!, second = signals[mix.second]!
            let p = BetweenClassMixer.mixingProportion(
                firstGain: mixer.gain(first), secondGain: mixer.gain(second), ratio: mix.ratio)
            #expect(abs(p - mix.proportion) < 1e-9)
            let mixed = mixer.mix(first, second, ratio: mix.ratio)
            for (offset, reference) in mix.head.enumerated() {
                #expect(abs(Double(mixed[mix.headStart + offset]) - reference) < 1e-6)
            }
        }
    }

    @Test func mixFormulaByHand() throws {
        // Equal gains: p = r, and the mixture is (r s1 + (1 - r) s2) / sqrt(r^2 + (1 - r)^2).
        #expect(abs(BetweenClassMixer.mixingProportion(firstGain: 10, secondGain: 10, ratio: 0.3) - 0.3) < 1e-12)
        // First sound 20 dB louder: p = 1 / (1 + 10 * (1 - r) / r).
        let p = BetweenClassMixer.mixingProportion(firstGain: 30, secondGain: 10, ratio: 0.5)
        #expect(abs(p - 1.0 / 11) < 1e-12)
        let mixer = try BetweenClassMixer()
        let sound = (0..<4096).map { Float(sin(Double($0) * 0.3)) * 0.5 }
        let mixed = mixer.mix(sound, sound, ratio: 0.3)
        let expectedScale = Float(1 / (0.3 * 0.3 + 0.7 * 0.7).squareRoot())
        for index in [0, 100, 4000] {
            #expect(abs(mixed[index] - sound[index] * expectedScale) < 1e-6)
        }
    }

    @Test func softTargetAndRandomExample() throws {
        let target = BetweenClassMixer.softTarget(firstLabel: 2, secondLabel: 0, ratio: 0.25, classCount: 4)
        #expect(target == [0.75, 0, 0.25, 0])
        let mixer = try BetweenClassMixer()
        var generator = SeededGenerator(seed: 5)
        let a = [Float](repeating: 0.1, count: 2048), b = [Float](repeating: -0.2, count: 2048)
        let example = mixer.example(first: (a, 1), second: (b, 3), classCount: 5, using: &generator)
        #expect(example.ratio > 0 && example.ratio < 1)
        #expect(abs(example.target[1] - Float(example.ratio)) < 1e-7)
        #expect(abs(example.target.reduce(0, +) - 1) < 1e-6)
        var again = SeededGenerator(seed: 5)
        #expect(mixer.example(first: (a, 1), second: (b, 3), classCount: 5, using: &again).sound == example.sound)
    }

    @Test func shortSoundsArePaddedToOneFrame() throws {
        let mixer = try BetweenClassMixer()
        #expect(mixer.frameGains([Float](repeating: 0.5, count: 100)).count == 1)
        #expect(mixer.gain([]) == -80)
    }

    @Test func timeScaleInterpolatesLinearly() {
        let samples: [Float] = [0, 1, 2, 3]
        #expect(timeScaled(samples, by: 2) == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3])
        #expect(timeScaled(samples, by: 0.5) == [0, 2])
        #expect(timeScaled([], by: 1.2) == [])
    }

    @Test func gainInDecibels() {
        let result = amplified([1, -0.5], byDecibels: -6.020599913279624)
        #expect(abs(result[0] - 0.5) < 1e-6)
        #expect(abs(result[1] + 0.25) < 1e-6)
    }

    @Test func strongAugmentationStaysInRangeAndIsSeeded() {
        let augmentation = StrongAugmentation()
        let sound = (0..<1000).map { Float(sin(Double($0) * 0.05)) * 0.5 }
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<50 {
            let output = augmentation.apply(to: sound, using: &generator)
            #expect(output.count >= 799 && output.count <= 1250)
            let peak = peakAmplitude(output)
            #expect(peak <= 0.5 * 1.9953 + 1e-4 && peak >= 0.5 * 0.5011 * 0.99)
        }
        var first = SeededGenerator(seed: 3), second = SeededGenerator(seed: 3)
        #expect(augmentation.apply(to: sound, using: &first) == augmentation.apply(to: sound, using: &second))
    }
}
