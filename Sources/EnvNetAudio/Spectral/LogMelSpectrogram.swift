import EnvNetTensor
import Foundation

/// The settings of the log-mel features of the log-mel CNN (Piczak 2015, as the seed article's
/// code builds them with torchaudio).
///
/// The defaults are torchaudio's `MelSpectrogram(sample_rate=22050, n_fft=1024, win_length=1024,
/// hop_length=512, n_mels=60, normalized=True)` followed by `AmplitudeToDB(top_db=80)`, on segments
/// of 41 frames (20991 samples) that start every 10240 samples (20 frames, half a segment).
public struct LogMelSettings: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The rate of the audio, in Hz.
    public var sampleRate: Int = 22_050
    /// Samples per FFT frame, and the Hann window's length (a power of two).
    public var fftSize: Int = 1024
    /// Samples between frame centres.
    public var hopLength: Int = 512
    /// Mel bands, from 0 Hz to the Nyquist frequency.
    public var melBands: Int = 60
    /// Frames per segment.
    public var segmentFrames: Int = 41
    /// Samples between segment starts.
    public var segmentHop: Int = 10_240
    /// The dynamic range kept below each segment's maximum, in dB.
    public var topDecibels: Double = 80
    /// A segment whose mean is below this level (dB re 1.0) is silent.
    public var silenceDecibels: Double = -70

    /// The torchaudio defaults above.
    public init() {}

    /// The longest segment that gives ``segmentFrames`` centred frames: `segmentFrames · hop − 1`
    /// (20991 samples).
    public var segmentLength: Int { segmentFrames * hopLength - 1 }

    /// Frequency bins of one frame: `fftSize / 2 + 1`.
    public var frequencyBins: Int { fftSize / 2 + 1 }

    public var description: String {
        "log-mel(\(sampleRate) Hz, FFT \(fftSize), hop \(hopLength), \(melBands) bands, \(segmentFrames) frames, top \(topDecibels) dB)"
    }

    /// Checks the values.
    /// - Throws: `AudioError.Problem.invalidArgument` naming the first bad value.
    public func validate() throws {
        func fail(_ message: String) -> AudioError { AudioError(source: "LogMelSettings", problem: .invalidArgument(message)) }
        guard sampleRate >= 1 else { throw fail("sample rate must be positive, got \(sampleRate)") }
        guard fftSize >= 4, fftSize & (fftSize - 1) == 0 else { throw fail("FFT size must be a power of two >= 4, got \(fftSize)") }
        guard hopLength >= 1 else { throw fail("hop length must be positive, got \(hopLength)") }
        guard melBands >= 1, melBands < frequencyBins else { throw fail("mel bands must be in 1..<\(frequencyBins), got \(melBands)") }
        guard segmentFrames >= 1, segmentHop >= 1 else { throw fail("segment frames and hop must be positive") }
        // Reflection padding needs more than half a frame of signal on each side.
        guard segmentLength > fftSize / 2 else { throw fail("a segment of \(segmentLength) samples is too short for \(fftSize)-point frames") }
        guard topDecibels.isFinite, topDecibels > 0 else { throw fail("top dB must be positive, got \(topDecibels)") }
        guard silenceDecibels.isFinite else { throw fail("silence level must be finite") }
    }
}

/// Log-mel spectrograms of fixed-length segments, as torchaudio computes them:
///
/// 1. frames of `fftSize` samples every `hopLength`, centred (the segment padded by `fftSize / 2`
///    on both sides by reflection, the edge sample not repeated), times a periodic Hann window
///    `w[n] = 0.5 − 0.5 cos(2πn / fftSize)`;
/// 2. the power spectrum `|X[k]|² / Σ w²` (`normalized=True` divides the complex STFT by the
///    window's L2 norm before squaring);
/// 3. `melBands` triangular filters on the HTK mel scale `m = 2595 log10(1 + f / 700)`, their edges
///    equally spaced in mel from 0 Hz to `sampleRate / 2`, peak 1 and no area normalisation
///    (`mel_scale="htk", norm=None`; equal to `librosa.filters.mel(htk=True, norm=None)`);
/// 4. `10 log10(max(x, 1e-10))`, then every value below the segment's maximum − `topDecibels`
///    raised to it (`AmplitudeToDB(stype="power", top_db=80)` on one segment).
///
/// The FFT, the filters and the logarithm run in double precision, so the result equals the
/// float64 reference to about 1e-6 dB, far inside the 1e-3 dB the fixture test asks; the output
/// is float. One instance serves any number of threads.
public final class LogMelSpectrogram: Sendable {
    /// The settings.
    public let settings: LogMelSettings
    private let fft: RealFFT
    private let window: [Double]
    /// `1 / Σ w²`.
    private let powerScale: Double
    /// Per band: its first frequency bin and its non-zero weights.
    private let filters: [(first: Int, weights: [Double])]

    /// Builds the window, the filters and the FFT.
    /// - Parameter settings: The settings (torchaudio's of the log-mel CNN by default).
    /// - Throws: `AudioError` for invalid settings.
    public init(settings: LogMelSettings = LogMelSettings()) throws {
        try settings.validate()
        self.settings = settings
        fft = try RealFFT(size: settings.fftSize)
        let size = settings.fftSize
        window = (0..<size).map { 0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(size)) }
        powerScale = 1 / window.reduce(0) { $0 + $1 * $1 }
        filters = Self.melFilters(settings: settings).map { row in
            guard let first = row.firstIndex(where: { $0 > 0 }), let last = row.lastIndex(where: { $0 > 0 }) else { return (0, []) }
            return (first, Array(row[first...last]))
        }
    }

    /// The filter bank as a dense `[melBands][frequencyBins]` matrix (torchaudio's
    /// `melscale_fbanks(...).T`), for inspection and tests.
    public var filterBank: [[Double]] { Self.melFilters(settings: settings) }

    static func melFilters(settings: LogMelSettings) -> [[Double]] {
        func mel(_ hertz: Double) -> Double { 2595 * log10(1 + hertz / 700) }
        func hertz(_ mel: Double) -> Double { 700 * (pow(10, mel / 2595) - 1) }
        let bins = settings.frequencyBins, bands = settings.melBands
        let nyquist = Double(settings.sampleRate / 2)
        let binFrequencies = (0..<bins).map { nyquist * Double($0) / Double(bins - 1) }
        let top = mel(nyquist)
        let edges = (0..<(bands + 2)).map { hertz(top * Double($0) / Double(bands + 1)) }
        return (0..<bands).map { band in
            let lower = edges[band], centre = edges[band + 1], upper = edges[band + 2]
            return binFrequencies.map { frequency in
                let rising = (frequency - lower) / (centre - lower)
                let falling = (upper - frequency) / (upper - centre)
                return max(0, min(rising, falling))
            }
        }
    }

    /// Centred frames of a segment of `count` samples: `1 + count / hopLength`.
    public func frameCount(sampleCount: Int) -> Int { 1 + sampleCount / settings.hopLength }

    /// The log-mel spectrogram of one segment, `[melBands, frames]` in band-major order, in dB
    /// re 1.0, with the floor at the segment's maximum − `topDecibels`.
    ///
    /// - Parameter segment: The samples; ``segmentLength`` samples give
    ///   ``LogMelSettings/segmentFrames`` frames. Reflection padding needs more than `fftSize / 2`
    ///   samples: a shorter segment is first zero-padded equally on both sides to `fftSize / 2 + 1`.
    /// - Returns: `melBands × frameCount(sampleCount:)` values (of the padded length).
    public func decibels(of segment: UnsafeBufferPointer<Float>) -> [Float] {
        let count = segment.count, pad = settings.fftSize / 2
        if count <= pad {
            return centredZeroPadded(Array(segment), toLength: pad + 1).withUnsafeBufferPointer { self.decibels(of: $0) }
        }
        let frames = frameCount(sampleCount: count), bands = settings.melBands, size = settings.fftSize
        let bins = settings.frequencyBins
        var power = [Double](repeating: 0, count: frames * bins)
        // Reflection about the first and last samples (numpy's "reflect": the edge is not repeated).
        func sample(_ index: Int) -> Double {
            var position = index
            if position < 0 { position = -position }
            if position >= count { position = 2 * (count - 1) - position }
            return Double(segment[position])
        }
        // Four frames at a time, one per SIMD lane (a last group of fewer fills its other lanes with
        // copies of its first frame and discards them).
        var frame = [SIMD4<Double>](repeating: .zero, count: size)
        var workspace = [SIMD4<Double>](repeating: .zero, count: size)
        var real = [SIMD4<Double>](repeating: .zero, count: bins), imaginary = [SIMD4<Double>](repeating: .zero, count: bins)
        var group = 0
        while group < frames {
            let lanes = min(4, frames - group)
            var starts = SIMD4<Int>(repeating: 0)
            for lane in 0..<4 { starts[lane] = (group + min(lane, lanes - 1)) * settings.hopLength - pad }
            let interior = starts[0] >= 0 && starts[3] + size <= count
            for n in 0..<size {
                let w = window[n]
                if interior {
                    frame[n] = SIMD4(Double(segment[starts[0] + n]), Double(segment[starts[1] + n]),
                                     Double(segment[starts[2] + n]), Double(segment[starts[3] + n])) * w
                } else {
                    frame[n] = SIMD4(sample(starts[0] + n), sample(starts[1] + n), sample(starts[2] + n), sample(starts[3] + n)) * w
                }
            }
            frame.withUnsafeBufferPointer { input in
                fft.transform4(input.baseAddress!, real: &real, imaginary: &imaginary, workspace: &workspace)
            }
            for bin in 0..<bins {
                let magnitude = (real[bin] * real[bin] + imaginary[bin] * imaginary[bin]) * powerScale
                for lane in 0..<lanes { power[(group + lane) * bins + bin] = magnitude[lane] }
            }
            group += 4
        }
        var result = [Float](repeating: 0, count: bands * frames)
        var decibels = [Double](repeating: 0, count: bands * frames)
        var maximum = -Double.infinity
        for (band, filter) in filters.enumerated() {
            for index in 0..<frames {
                var sum = 0.0
                let row = index * bins + filter.first
                for (offset, weight) in filter.weights.enumerated() { sum += weight * power[row + offset] }
                let value = 10 * log10(max(sum, 1e-10))
                decibels[band * frames + index] = value
                maximum = max(maximum, value)
            }
        }
        let floor = maximum - settings.topDecibels
        for index in decibels.indices { result[index] = Float(max(decibels[index], floor)) }
        return result
    }

    /// The log-mel spectrogram of one segment; see ``decibels(of:)-(UnsafeBufferPointer<Float>)``.
    public func decibels(of segment: some Collection<Float>) -> [Float] {
        let samples = Array(segment)
        return samples.withUnsafeBufferPointer { decibels(of: $0) }
    }

    /// Where a clip's segments start: every ``LogMelSettings/segmentHop`` samples while a whole
    /// segment fits; a clip no longer than one segment has one segment at 0 (padded by ``segments(of:)``).
    public func segmentStarts(sampleCount: Int) -> [Int] {
        SegmentSampler(length: settings.segmentLength).windowStarts(sampleCount: sampleCount, hop: settings.segmentHop)
    }

    /// The segments of a clip: ``segmentStarts(sampleCount:)``, each ``LogMelSettings/segmentLength``
    /// samples; a shorter clip is zero-padded equally on both sides into one segment.
    public func segments(of samples: [Float]) -> [[Float]] {
        let length = settings.segmentLength
        if samples.count <= length { return [centredZeroPadded(samples, toLength: length)] }
        return segmentStarts(sampleCount: samples.count).map { Array(samples[$0..<($0 + length)]) }
    }

    /// The mean of a segment's log-mel values (dB re 1.0); below ``LogMelSettings/silenceDecibels``
    /// the segment is silent.
    public func meanDecibels(of segment: some Collection<Float>) -> Double {
        Self.mean(of: decibels(of: segment))
    }

    /// Whether a segment whose log-mel values are `decibels` is silent: their mean is below
    /// ``LogMelSettings/silenceDecibels``.
    public func isSilent(decibels: [Float]) -> Bool { Self.mean(of: decibels) < settings.silenceDecibels }

    static func mean(of values: [Float]) -> Double {
        values.reduce(0) { $0 + Double($1) } / Double(max(values.count, 1))
    }

    /// Deltas along time of a `[bands, frames]` array (torchaudio's `compute_deltas` with
    /// `win_length=5`, `mode="replicate"`): `d[t] = Σ_{k=1}^{2} k (x[t+k] − x[t−k]) / 10`, the
    /// edges replicated.
    /// - Parameters:
    ///   - values: `bands × frames` values, band-major.
    ///   - frames: Frames per band.
    /// - Returns: The deltas, in the same layout.
    public static func deltas(of values: UnsafeBufferPointer<Float>, frames: Int) -> [Float] {
        precondition(frames >= 1 && values.count % frames == 0, "values must hold whole bands")
        var result = [Float](repeating: 0, count: values.count)
        for band in 0..<(values.count / frames) {
            let base = band * frames
            func value(_ t: Int) -> Float { values[base + min(max(t, 0), frames - 1)] }
            for t in 0..<frames {
                result[base + t] = ((value(t + 1) - value(t - 1)) + 2 * (value(t + 2) - value(t - 2))) / 10
            }
        }
        return result
    }
}
