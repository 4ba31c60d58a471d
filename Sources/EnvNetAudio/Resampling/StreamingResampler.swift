import EnvNetTensor
import Foundation

/// A ``Resampler`` that takes its input in chunks of any size and keeps the filter history
/// between them, for microphones, network streams and files read piece by piece.
///
/// The output is the offline result: feeding a signal in any chunking and then calling
/// ``finish()`` yields exactly the samples `Resampler.process(_:)` gives for the whole signal
/// (the same polyphase table, the same arithmetic in the same order, so bit for bit equal).
///
/// ```swift
/// var stream = try StreamingResampler(from: 44_100, to: 16_000)
/// for chunk in microphoneChunks {
///     let ready = stream.process(chunk)   // every output whose taps are all known
///     consume(ready)
/// }
/// consume(stream.finish())                // the tail, with zeros after the last input
/// ```
///
/// An output sample is emitted as soon as every input sample under its filter taps has arrived,
/// so the stream lags the input by about half the filter (``latency`` input samples, about
/// 5 ms for 44.1 kHz -> 16 kHz). Memory is bounded: only the inputs that later outputs still
/// need are kept (``bufferedSampleCount`` stays below ``Resampler/tapsPerPhase`` plus one
/// input step between calls), however long the stream.
///
/// The value is a `Sendable` struct: copies are independent streams.
public struct StreamingResampler: Sendable {
    /// The underlying design: rates, factors and filter.
    public let resampler: Resampler
    /// One row of `tapsPerPhase` taps per phase, identical to the offline resampler's table.
    private let table: [Float]
    /// Input samples (zeros included) that precede the centre tap, as in the offline resampler.
    private let leadingTaps: Int

    /// Input samples still needed, in padded coordinates: `pending[0]` is padded index `origin`
    /// (padded index = input index + `leadingTaps`; the first `leadingTaps` are zeros).
    private var pending: [Float]
    private var origin: Int
    /// The padded index where the next output's taps begin, and its polyphase phase.
    private var nextStart: Int
    private var phase: Int
    /// Inputs received since the stream began.
    public private(set) var inputCount: Int
    /// Outputs emitted since the stream began.
    public private(set) var outputCount: Int

    /// Designs a streaming resampler for a pair of rates.
    ///
    /// - Parameters:
    ///   - inputRate: The input rate in Hz, positive.
    ///   - outputRate: The output rate in Hz, positive.
    ///   - design: The filter specification.
    /// - Throws: `AudioError` (`invalidArgument`) as `Resampler.init(from:to:design:)` does.
    public init(from inputRate: Int, to outputRate: Int, design: Resampler.Design = .standard) throws {
        self.init(try Resampler(from: inputRate, to: outputRate, design: design))
    }

    /// Streams with an existing design (for example one cached by `ClipLoader.resampler(from:)`),
    /// so that the filter is not designed twice.
    ///
    /// - Parameter resampler: The offline resampler whose output this stream reproduces.
    public init(_ resampler: Resampler) {
        self.resampler = resampler
        let up = resampler.upFactor
        let half = resampler.halfLength
        let taps = resampler.tapsPerPhase
        let leading = (half + up - 1) / up
        leadingTaps = leading
        // The same table the offline resampler builds from the same prototype (see
        // `Resampler.makeTable`): tap `tap` of phase `phase` sits `phase + (leading - tap) * up`
        // upsampled steps before the output instant.
        if resampler.upFactor == resampler.downFactor {
            table = []
        } else {
            let prototype = resampler.prototypeFilter()
            var table = [Float](repeating: 0, count: up * taps)
            for phase in 0..<up {
                for tap in 0..<taps {
                    let offset = phase + (leading - tap) * up
                    if abs(offset) <= half { table[phase * taps + tap] = Float(prototype[offset + half]) }
                }
            }
            self.table = table
        }
        pending = []
        origin = 0
        nextStart = 0
        phase = 0
        inputCount = 0
        outputCount = 0
        reset()
    }

    /// Input samples currently held for outputs still to come (bounded, see the type's overview).
    public var bufferedSampleCount: Int { pending.count }

    /// Input samples an output waits for beyond its own instant: the stream's delay in input samples.
    public var latency: Int { resampler.upFactor == resampler.downFactor ? 0 : resampler.tapsPerPhase - leadingTaps }

    /// Forgets the stream so far and starts a new one.
    public mutating func reset() {
        pending = [Float](repeating: 0, count: resampler.upFactor == resampler.downFactor ? 0 : leadingTaps)
        origin = 0
        nextStart = 0
        phase = 0
        inputCount = 0
        outputCount = 0
    }

    /// Feeds the next chunk of input.
    ///
    /// - Parameter chunk: Input samples at ``Resampler/inputRate``, any count (zero included).
    /// - Returns: The output samples that the input so far determines completely, continuing
    ///   where the previous call stopped.
    public mutating func process(_ chunk: [Float]) -> [Float] {
        inputCount += chunk.count
        if resampler.upFactor == resampler.downFactor {
            outputCount += chunk.count
            return chunk
        }
        pending.append(contentsOf: chunk)
        return drain()
    }

    /// Ends the stream: emits the remaining outputs, taking the input after the last sample as
    /// zero (as the offline resampler does), and resets for a new stream.
    ///
    /// - Returns: The last outputs; with everything ``process(_:)`` returned, the stream has
    ///   `resampler.outputCount(forInputCount: inputCount)` samples, equal to the offline result.
    public mutating func finish() -> [Float] {
        defer { reset() }
        if resampler.upFactor == resampler.downFactor { return [] }
        let total = resampler.outputCount(forInputCount: inputCount)
        guard total > outputCount else { return [] }
        // Enough zeros for every remaining output's taps.
        let lastStart = (total - 1) * resampler.downFactor / resampler.upFactor
        let needed = lastStart + resampler.tapsPerPhase - (origin + pending.count)
        if needed > 0 { pending.append(contentsOf: repeatElement(0, count: needed)) }
        return drain(limit: total)
    }

    /// Computes every output whose taps lie within `pending` (and below `limit` outputs in
    /// total), then drops the inputs no later output needs.
    private mutating func drain(limit: Int = .max) -> [Float] {
        let taps = resampler.tapsPerPhase
        let up = resampler.upFactor
        let down = resampler.downFactor
        let available = origin + pending.count
        // Outputs n with start(n) + taps <= available: count them first to size the result.
        var count = 0
        do {
            var start = nextStart, phase = self.phase
            while start + taps <= available, outputCount + count < limit {
                count += 1
                phase += down
                start += phase / up
                phase %= up
            }
        }
        var output: [Float] = []
        if count > 0 {
            var start = nextStart, phase = self.phase
            let origin = self.origin
            output = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                table.withUnsafeBufferPointer { tableBuffer in
                    pending.withUnsafeBufferPointer { input in
                        let tableBase = tableBuffer.baseAddress!
                        let inputBase = input.baseAddress!
                        for index in 0..<count {
                            buffer[index] = dotProduct(tableBase + phase * taps, inputBase + (start - origin), count: taps)
                            phase += down
                            start += phase / up
                            phase %= up
                        }
                    }
                }
                initialized = count
            }
            nextStart = start
            self.phase = phase
            outputCount += count
        }
        // Inputs before the next output's first tap are never needed again.
        let drop = min(nextStart - origin, pending.count)
        if drop > 0 {
            pending.removeFirst(drop)
            origin += drop
        }
        return output
    }
}

