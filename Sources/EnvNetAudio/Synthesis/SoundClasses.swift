import EnvNetTensor
import Foundation

/// The procedurally generated environmental-like sound classes of the synthetic dataset.
///
/// Each class has a distinct temporal and spectral signature (tonal sweep, harmonic drone,
/// impulsive, noisy, ...) with parameters drawn per clip, so a classifier must learn spectro-
/// temporal patterns rather than memorize one waveform.
public enum SyntheticSoundClass: Int, CaseIterable, Sendable, Hashable {
    /// A siren: a harmonic tone whose pitch sweeps slowly up and down.
    case siren
    /// An engine: a low harmonic drone with amplitude modulation and some noise.
    case engine
    /// Rain: band-limited noise plus many short noise bursts (drops).
    case rain
    /// Knocking: groups of damped low-frequency impulses.
    case knock
    /// Bird chirps: short frequency-modulated high tones in phrases.
    case birdChirp
    /// A ticking clock: short high bursts at a steady period.
    case clockTick
    /// A bell: struck inharmonic partials decaying at different rates.
    case bell
    /// Wind: noise through a slowly swept low-pass filter with slow swells.
    case wind
    /// Crackle: sparse random clicks over faint noise.
    case crackle
    /// Mains hum: 50 or 60 Hz and its harmonics, steady.
    case mainsHum

    /// The class name written to the metadata's `category` column.
    public var name: String {
        switch self {
        case .siren: return "siren"
        case .engine: return "engine"
        case .rain: return "rain"
        case .knock: return "door_knock"
        case .birdChirp: return "chirping_birds"
        case .clockTick: return "clock_tick"
        case .bell: return "church_bells"
        case .wind: return "wind"
        case .crackle: return "crackling_fire"
        case .mainsHum: return "mains_hum"
        }
    }

    /// Synthesizes the class's foreground event signal (before gaps, background and level).
    ///
    /// - Parameters:
    ///   - count: Number of samples.
    ///   - sampleRate: Sampling rate in Hz.
    ///   - generator: The source of every random parameter.
    /// - Returns: `count` samples, not normalized.
    public func synthesize(
        count: Int, sampleRate: Int, using generator: inout some RandomNumberGenerator
    ) -> [Float] {
        let rate = Double(sampleRate)
        var output = [Double](repeating: 0, count: count)
        func uniform(_ range: ClosedRange<Double>) -> Double { generator.nextDouble(in: range) }
        func noise() -> Double { generator.nextDouble(in: -1...1) }

        switch self {
        case .siren:
            let centre = uniform(600...1200), deviation = uniform(200...500)
            let sweepRate = uniform(0.2...1.5), brightness = uniform(0.2...0.5)
            var phase = 0.0, sweepPhase = uniform(0...(2 * .pi))
            for index in 0..<count {
                let frequency = centre + deviation * sin(sweepPhase)
                phase += 2 * .pi * frequency / rate
                sweepPhase += 2 * .pi * sweepRate / rate
                output[index] = sin(phase) + brightness * sin(2 * phase) + 0.5 * brightness * sin(3 * phase)
            }
        case .engine:
            let fundamental = uniform(30...80), modulationRate = uniform(2...10)
            let depth = uniform(0.3...0.6), harmonics = 6 + generator.nextInt(below: 5)
            let amplitudes = (1...harmonics).map { 1 / Double($0) * uniform(0.5...1) }
            var lowNoise = 0.0
            for index in 0..<count {
                let time = Double(index) / rate
                var value = 0.0
                for harmonic in 1...harmonics {
                    value += amplitudes[harmonic - 1] * sin(2 * .pi * fundamental * Double(harmonic) * time)
                }
                lowNoise += 0.05 * (noise() - lowNoise)
                value *= 1 - depth * (0.5 + 0.5 * sin(2 * .pi * modulationRate * time))
                output[index] = value + 0.8 * lowNoise
            }
        case .rain:
            let dropRate = uniform(60...250), bed = uniform(0.1...0.3)
            var highPass = 0.0, previous = 0.0, envelope = 0.0
            for index in 0..<count {
                if generator.nextUnitDouble() < dropRate / rate { envelope = uniform(0.3...1) }
                envelope *= exp(-1 / (uniform(0.002...0.01) * rate))
                let white = noise()
                highPass = 0.9 * (highPass + white - previous)
                previous = white
                output[index] = highPass * (bed + envelope)
            }
        case .knock:
            var index = Int(uniform(0...0.5) * rate)
            while index < count {
                let knocks = 2 + generator.nextInt(below: 4)
                let spacing = uniform(0.1...0.25)
                let frequency = uniform(150...400), decay = uniform(0.02...0.06)
                for knock in 0..<knocks {
                    let start = index + Int(Double(knock) * spacing * rate)
                    let amplitude = uniform(0.6...1)
                    for offset in 0..<Int(decay * 6 * rate) where start + offset < count {
                        let time = Double(offset) / rate
                        let click = offset < 40 ? noise() * 0.5 : 0
                        output[start + offset] += amplitude * exp(-time / decay)
                            * (sin(2 * .pi * frequency * time) + click)
                    }
                }
                index += Int((Double(knocks) * spacing + uniform(0.5...1.5)) * rate)
            }
        case .birdChirp:
            var index = Int(uniform(0...0.3) * rate)
            while index < count {
                let chirps = 2 + generator.nextInt(below: 5)
                for _ in 0..<chirps {
                    let length = Int(uniform(0.05...0.2) * rate)
                    let start = uniform(2000...4000), end = uniform(3000...6500)
                    let vibrato = uniform(20...60)
                    var phase = 0.0
                    for offset in 0..<length where index + offset < count {
                        let progress = Double(offset) / Double(length)
                        let frequency = start + (end - start) * progress
                            + 300 * sin(2 * .pi * vibrato * Double(offset) / rate)
                        phase += 2 * .pi * frequency / rate
                        output[index + offset] += sin(.pi * progress) * sin(phase)
                    }
                    index += length + Int(uniform(0.03...0.12) * rate)
                }
                index += Int(uniform(0.4...1.2) * rate)
            }
        case .clockTick:
            let period = uniform(0.45...1.0), frequency = uniform(2000...5000)
            let decay = uniform(0.002...0.005)
            var time = uniform(0...period)
            var tock = false
            while Int(time * rate) < count {
                let start = Int(time * rate)
                let pitch = tock ? frequency * 0.8 : frequency
                for offset in 0..<Int(decay * 8 * rate) where start + offset < count {
                    let t = Double(offset) / rate
                    output[start + offset] += exp(-t / decay) * (sin(2 * .pi * pitch * t) + 0.3 * noise())
                }
                tock.toggle()
                time += period * uniform(0.99...1.01)
            }
        case .bell:
            let fundamental = uniform(300...900)
            let ratios = [1.0, 2.0, 2.4, 3.0, 4.5, 5.4]
            let decays = ratios.map { _ in uniform(0.5...2.0) }
            let amplitudes = ratios.map { _ in uniform(0.3...1.0) }
            let strikes = 1 + generator.nextInt(below: 3)
            for strike in 0..<strikes {
                let start = Int((Double(strike) * uniform(1.2...1.8) + uniform(0...0.3)) * rate)
                for offset in 0..<max(0, count - start) {
                    let time = Double(offset) / rate
                    var value = 0.0
                    for partial in ratios.indices {
                        value += amplitudes[partial] * exp(-time / (decays[partial] / ratios[partial].squareRoot()))
                            * sin(2 * .pi * fundamental * ratios[partial] * time)
                    }
                    output[start + offset] += value
                }
            }
        case .wind:
            let sweepRate = uniform(0.1...0.5), swellRate = uniform(0.05...0.3)
            let low = uniform(100...250), high = uniform(400...900)
            var state1 = 0.0, state2 = 0.0
            let sweepPhase = uniform(0...(2 * .pi))
            for index in 0..<count {
                let time = Double(index) / rate
                let cutoff = low + (high - low) * (0.5 + 0.5 * sin(2 * .pi * sweepRate * time + sweepPhase))
                let coefficient = 1 - exp(-2 * .pi * cutoff / rate)
                state1 += coefficient * (noise() - state1)
                state2 += coefficient * (state1 - state2)
                output[index] = state2 * (0.6 + 0.4 * sin(2 * .pi * swellRate * time))
            }
        case .crackle:
            let clickRate = uniform(5...40)
            var hiss = 0.0
            for index in 0..<count {
                hiss += 0.2 * (noise() - hiss)
                output[index] += 0.03 * hiss
                if generator.nextUnitDouble() < clickRate / rate {
                    let amplitude = uniform(0.3...1) * (generator.nextInt(below: 2) == 0 ? 1 : -1)
                    let width = 1 + generator.nextInt(below: 4)
                    for offset in 0..<(width * 8) where index + offset < count {
                        output[index + offset] += amplitude * exp(-Double(offset) / Double(width))
                            * (offset % 2 == 0 ? 1 : -0.6)
                    }
                }
            }
        case .mainsHum:
            let fundamental = generator.nextInt(below: 2) == 0 ? 50.0 : 60.0
            let amplitudes = (1...10).map { harmonic in
                uniform(0.1...1) / Double(harmonic).squareRoot() * (harmonic % 2 == 1 ? 1 : 0.5)
            }
            let phases = amplitudes.map { _ in uniform(0...(2 * .pi)) }
            for index in 0..<count {
                let time = Double(index) / rate
                var value = 0.0
                for harmonic in 0..<10 {
                    value += amplitudes[harmonic] * sin(2 * .pi * fundamental * Double(harmonic + 1) * time + phases[harmonic])
                }
                output[index] = value
            }
        }
        return output.map { Float($0) }
    }
}
