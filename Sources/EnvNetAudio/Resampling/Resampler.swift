import EnvNetTensor
import Foundation

/// A band-limited polyphase resampler between two integer sample rates.
///
/// The rates are reduced by their greatest common divisor to an up/down pair `L/M`
/// (44.1 kHz -> 16 kHz is 160/441). Conceptually the input is upsampled by `L`, low-pass
/// filtered with a Kaiser-windowed sinc, and every `M`-th sample is kept; in practice only the
/// taps that meet non-zero input samples are evaluated, from a precomputed table holding, for
/// each of the `L` phases, its taps contiguously and in input order. The inner loop is then a
/// plain dot product of two contiguous arrays, which is written with SIMD accumulators.
///
/// The filter is linear-phase and its delay is compensated, so output sample `n` is centred on
/// input time `n * M / L` exactly as `scipy.signal.resample_poly` places it, and the output has
/// `ceil(inputCount * L / M)` samples. Input beyond both ends is taken as zero.
///
/// Default design: pass band up to 90 % of the lower Nyquist frequency, stop band from the
/// lower Nyquist frequency on, 110 dB attenuation. That keeps a tone below 0.9 x Nyquist
/// within a few thousandths of a dB and pushes anything that would alias far below 16-bit
/// noise.
public struct Resampler: Sendable {
    /// Filter specification, as fractions of the lower of the two Nyquist frequencies.
    public struct Design: Sendable, Hashable {
        /// Upper edge of the pass band (fraction of the lower Nyquist frequency).
        public var passbandEdge: Double
        /// Lower edge of the stop band (fraction of the lower Nyquist frequency).
        public var stopbandEdge: Double
        /// Stop-band attenuation in dB.
        public var attenuation: Double

        /// Creates a design.
        ///
        /// - Parameters:
        ///   - passbandEdge: Pass band end, e.g. 0.9.
        ///   - stopbandEdge: Stop band start, greater than `passbandEdge`, e.g. 1.0.
        ///   - attenuation: Stop-band attenuation in dB, e.g. 110.
        public init(passbandEdge: Double, stopbandEdge: Double, attenuation: Double) {
            self.passbandEdge = passbandEdge
            self.stopbandEdge = stopbandEdge
            self.attenuation = attenuation
        }

        /// 0.9 / 1.0 of the lower Nyquist frequency, 110 dB.
        public static let standard = Design(
            passbandEdge: 0.9, stopbandEdge: 1.0, attenuation: 110)
    }

    /// The input sample rate in Hz.
    public let inputRate: Int
    /// The output sample rate in Hz.
    public let outputRate: Int
    /// The upsampling factor `L` (output rate / gcd).
    public let upFactor: Int
    /// The downsampling factor `M` (input rate / gcd).
    public let downFactor: Int
    /// The filter's half length `H` at the upsampled rate: it has `2H + 1` taps.
    public let halfLength: Int
    /// The Kaiser window's shape parameter.
    public let beta: Double
    /// The -6 dB cutoff of the filter in Hz.
    public let cutoffFrequency: Double
    /// Taps evaluated per output sample (a multiple of 16, zero-padded).
    public let tapsPerPhase: Int

    /// Input samples that precede the centre of every output's span of taps.
    private let leadingTaps: Int
    /// `upFactor` rows of `tapsPerPhase` taps each.
    private let table: [Float]

    /// The largest polyphase table this type will build (in taps); rate pairs whose reduced
    /// factors are huge (e.g. 44101 -> 16000) would otherwise need gigabytes.
    public static let maximumTableSize = 32 << 20

    /// Designs a resampler for a pair of rates.
    ///
    /// - Parameters:
    ///   - inputRate: The input rate in Hz, positive.
    ///   - outputRate: The output rate in Hz, positive.
    ///   - design: The filter specification; `.standard` unless there is a reason.
    /// - Throws: `AudioError.Problem.invalidArgument` for non-positive rates, an invalid design
    ///   or a rate pair whose table would exceed `maximumTableSize` taps.
    public init(from inputRate: Int, to outputRate: Int, design: Design = .standard) throws {
        func fail(_ detail: String) -> AudioError {
            AudioError(source: "Resampler(\(inputRate) -> \(outputRate))",
                       problem: .invalidArgument(detail))
        }
        guard inputRate > 0, outputRate > 0 else { throw fail("sample rates must be positive") }
        guard design.passbandEdge > 0, design.passbandEdge < design.stopbandEdge,
              design.stopbandEdge <= 1.5, design.attenuation >= 21 else {
            throw fail("invalid filter design \(design)")
        }
        let divisor = greatestCommonDivisor(inputRate, outputRate)
        let up = outputRate / divisor
        let down = inputRate / divisor
        let upsampledRate = Double(inputRate) * Double(up)
        let lowerNyquist = Double(min(inputRate, outputRate)) / 2
        let passband = design.passbandEdge * lowerNyquist
        let stopband = design.stopbandEdge * lowerNyquist
        let cutoff = (passband + stopband) / 2
        let order = KaiserWindow.order(
            attenuation: design.attenuation,
            transitionWidth: (stopband - passband) / upsampledRate)
        let half = up == down ? 0 : Int((order / 2).rounded(.up))
        let leading = (half + up - 1) / up
        let trailing = (half + up - 1 + up - 1) / up
        let taps = ((leading + 1 + trailing) + 15) / 16 * 16
        let tableSize = up.multipliedReportingOverflow(by: taps)
        guard !tableSize.overflow, tableSize.partialValue <= Self.maximumTableSize else {
            throw fail("reduced ratio \(up)/\(down) needs a filter table larger than "
                + "\(Self.maximumTableSize) taps")
        }

        self.inputRate = inputRate
        self.outputRate = outputRate
        self.upFactor = up
        self.downFactor = down
        self.halfLength = half
        self.cutoffFrequency = cutoff
        self.tapsPerPhase = taps
        self.leadingTaps = leading
        let beta = KaiserWindow.beta(forAttenuation: design.attenuation)
        self.beta = beta
        self.table = Self.makeTable(
            up: up, half: half, leading: leading, taps: taps,
            normalizedCutoff: 2 * cutoff / upsampledRate, beta: beta)
    }

    /// The prototype filter at the upsampled rate, `2H + 1` taps summing to `upFactor`.
    ///
    /// Exposed so that tests and reference tools can check the design.
    ///
    /// - Returns: The taps in time order.
    public func prototypeFilter() -> [Double] {
        Self.prototype(half: halfLength, up: upFactor,
                       normalizedCutoff: 2 * cutoffFrequency / (Double(inputRate) * Double(upFactor)),
                       beta: beta)
    }

    /// The number of output samples for a given number of input samples.
    ///
    /// - Parameter inputCount: Input samples, non-negative.
    /// - Returns: `ceil(inputCount * upFactor / downFactor)`.
    public func outputCount(forInputCount inputCount: Int) -> Int {
        (inputCount * upFactor + downFactor - 1) / downFactor
    }

    /// Resamples a whole signal.
    ///
    /// - Parameter samples: Input samples at `inputRate`.
    /// - Returns: `outputCount(forInputCount: samples.count)` samples at `outputRate`.
    public func process(_ samples: [Float]) -> [Float] {
        if upFactor == downFactor { return samples }
        let outputCount = outputCount(forInputCount: samples.count)
        guard outputCount > 0 else { return [] }
        let taps = tapsPerPhase
        // Zero padding on both sides removes every bounds check from the inner loop.
        var padded = [Float](repeating: 0, count: leadingTaps + samples.count + taps)
        padded.withUnsafeMutableBufferPointer { destination in
            samples.withUnsafeBufferPointer { source in
                guard let base = source.baseAddress else { return }
                (destination.baseAddress! + leadingTaps).update(from: base, count: source.count)
            }
        }
        let up = upFactor
        let down = downFactor
        return [Float](unsafeUninitializedCapacity: outputCount) { output, count in
            table.withUnsafeBufferPointer { tableBuffer in
                padded.withUnsafeBufferPointer { input in
                    let tableBase = tableBuffer.baseAddress!
                    let inputBase = input.baseAddress!
                    var start = 0
                    var phase = 0
                    for index in 0..<outputCount {
                        output[index] = dotProduct(
                            tableBase + phase * taps, inputBase + start, count: taps)
                        phase += down
                        start += phase / up
                        phase %= up
                    }
                }
            }
            count = outputCount
        }
    }

    // MARK: - Design

    private static func prototype(
        half: Int, up: Int, normalizedCutoff: Double, beta: Double
    ) -> [Double] {
        var taps = [Double](repeating: 0, count: 2 * half + 1)
        let windowScale = 1 / KaiserWindow.besselI0(beta)
        var sum = 0.0
        for offset in -half...half {
            let position = Double(offset)
            let ratio = half == 0 ? 0 : position / Double(half)
            let window = KaiserWindow.besselI0(beta * (max(0, 1 - ratio * ratio)).squareRoot())
                * windowScale
            let value = normalizedCutoff * sinc(normalizedCutoff * position) * window
            taps[offset + half] = value
            sum += value
        }
        // Unity DC gain after upsampling means the taps sum to `up` (scipy's firwin
        // normalisation followed by resample_poly's gain of `up`).
        let scale = Double(up) / sum
        return taps.map { $0 * scale }
    }

    private static func makeTable(
        up: Int, half: Int, leading: Int, taps: Int, normalizedCutoff: Double, beta: Double
    ) -> [Float] {
        let prototype = prototype(
            half: half, up: up, normalizedCutoff: normalizedCutoff, beta: beta)
        var table = [Float](repeating: 0, count: up * taps)
        for phase in 0..<up {
            for tap in 0..<taps {
                // Tap `tap` of this phase meets input sample `j0 - leading + tap`, which sits
                // `phase + (leading - tap) * up` upsampled steps before the output instant.
                let offset = phase + (leading - tap) * up
                if abs(offset) <= half {
                    table[phase * taps + tap] = Float(prototype[offset + half])
                }
            }
        }
        return table
    }
}

private func sinc(_ x: Double) -> Double {
    if x == 0 { return 1 }
    let argument = Double.pi * x
    return sin(argument) / argument
}

func greatestCommonDivisor(_ a: Int, _ b: Int) -> Int {
    var (x, y) = (abs(a), abs(b))
    while y != 0 { (x, y) = (y, x % y) }
    return x
}

/// Dot product of two contiguous `Float` runs whose length is a multiple of 16 (the streaming
/// resampler calls it too, so streamed and offline outputs agree bit for bit).
///
/// Four independent SIMD accumulators hide the latency of the floating-point adds, so the
/// loop is limited by loads rather than by the add chain.
@inline(__always)
func dotProduct(
    _ left: UnsafePointer<Float>, _ right: UnsafePointer<Float>, count: Int
) -> Float {
    let leftRaw = UnsafeRawPointer(left)
    let rightRaw = UnsafeRawPointer(right)
    var sum0 = SIMD4<Float>(), sum1 = SIMD4<Float>(), sum2 = SIMD4<Float>(), sum3 = SIMD4<Float>()
    var offset = 0
    let byteCount = count * MemoryLayout<Float>.stride
    while offset < byteCount {
        sum0 += leftRaw.loadUnaligned(fromByteOffset: offset, as: SIMD4<Float>.self)
            * rightRaw.loadUnaligned(fromByteOffset: offset, as: SIMD4<Float>.self)
        sum1 += leftRaw.loadUnaligned(fromByteOffset: offset + 16, as: SIMD4<Float>.self)
            * rightRaw.loadUnaligned(fromByteOffset: offset + 16, as: SIMD4<Float>.self)
        sum2 += leftRaw.loadUnaligned(fromByteOffset: offset + 32, as: SIMD4<Float>.self)
            * rightRaw.loadUnaligned(fromByteOffset: offset + 32, as: SIMD4<Float>.self)
        sum3 += leftRaw.loadUnaligned(fromByteOffset: offset + 48, as: SIMD4<Float>.self)
            * rightRaw.loadUnaligned(fromByteOffset: offset + 48, as: SIMD4<Float>.self)
        offset += 64
    }
    return ((sum0 + sum1) + (sum2 + sum3)).sum()
}
