import EnvNetAudio
import EnvNetLayers
import Foundation

/// The log-mel CNN's input layer: raw segments to normalised log-mel features and their deltas.
///
/// `[N, 1, 1, 20991] -> [N, 2, 60, 41]`: channel 0 is `(dB − mean) / std` of each segment's
/// ``LogMelSpectrogram`` (top 80 dB per segment), channel 1 its deltas along time (window 5,
/// edges replicated), taken after the normalisation.
///
/// The mean and standard deviation are one scalar each over every value of the training folds'
/// non-silent segments (``fit(to:)``), kept as buffers so that they are saved with the weights:
/// `logmel.mean`, `logmel.std` and `logmel.segment_count` (how many segments they came from;
/// 0 until fitted, when the layer passes dB through unscaled). It has no parameters, and its
/// backward pass returns zeros: nothing trains the audio.
public final class LogMelFrontEnd: Module, Layer {
    /// The feature computation.
    public let spectrogram: LogMelSpectrogram
    /// The mean of the training features, in dB (`[1]`).
    public let mean: Buffer
    /// Their standard deviation, in dB (`[1]`).
    public let standardDeviation: Buffer
    /// How many segments the statistics came from (`[1]`; 0: not fitted).
    public let segmentCount: Buffer
    private var cachedInputShape: [Int]?
    /// The zeros ``backward(_:)`` returns, kept between steps (a batch of audio is 5 MB at 64 windows).
    private var zeroGradient = Tensor.zeros([0])

    /// - Parameter settings: The features (torchaudio's of the log-mel CNN by default).
    public init(settings: LogMelSettings = LogMelSettings()) {
        spectrogram = TensorError.check { try LogMelSpectrogram(settings: settings) }
        mean = Buffer(Tensor.zeros([1]))
        standardDeviation = Buffer(Tensor.ones([1]))
        segmentCount = Buffer(Tensor.zeros([1]))
        super.init()
    }

    public override var localBuffers: [(name: String, buffer: Buffer)] {
        [("mean", mean), ("std", standardDeviation), ("segment_count", segmentCount)]
    }

    public override var layerDescription: String { "LogMelFrontEnd(\(spectrogram.settings))" }

    /// Whether the statistics were fitted to training data.
    public var isFitted: Bool { segmentCount.value.scalars[0] > 0 }

    /// `[N, 1, 1, segmentLength] -> [N, 2, bands, frames]`
    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        let settings = spectrogram.settings
        guard inputShape.count == 4, inputShape[1] == 1, inputShape[2] == 1, inputShape[3] == settings.segmentLength else {
            throw LayerError.inputShape(layer: layerDescription, expected: "[N, 1, 1, \(settings.segmentLength)]", actual: inputShape)
        }
        return [inputShape[0], 2, settings.melBands, settings.segmentFrames]
    }

    /// The features of every segment, one segment per core at a time.
    public func forward(_ input: Tensor) -> Tensor {
        let shape = TensorError.check { try outputShape(forInputShape: input.shape) }
        cachedInputShape = isTraining ? input.shape : nil
        let count = shape[0], perSegment = shape[2] * shape[3], length = input.shape[3], frames = shape[3]
        let shift = mean.value.scalars[0], scale = 1 / standardDeviation.value.scalars[0]
        var output = Tensor.zeros(shape)
        let source = input.contiguous()
        source.withUnsafeBufferPointer { samples in
            output.withUnsafeMutableBufferPointer { features in
                let spectrogram = self.spectrogram
                let into = SharedRows(features.baseAddress!), from = SharedSamples(samples.baseAddress!)
                Parallel.forEach(count: count) { row in
                    var values = spectrogram.decibels(of: UnsafeBufferPointer(start: from.pointer + row * length, count: length))
                    for index in values.indices { values[index] = (values[index] - shift) * scale }
                    let deltas = values.withUnsafeBufferPointer { LogMelSpectrogram.deltas(of: $0, frames: frames) }
                    let base = into.pointer + row * 2 * perSegment
                    values.withUnsafeBufferPointer { base.update(from: $0.baseAddress!, count: perSegment) }
                    deltas.withUnsafeBufferPointer { (base + perSegment).update(from: $0.baseAddress!, count: perSegment) }
                }
            }
        }
        return output
    }

    /// Zeros in the input's shape: the features are not trained through.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard let shape = cachedInputShape else {
            fatalError("\(layerDescription).backward called without a training-mode forward pass")
        }
        cachedInputShape = nil
        // Nothing writes into it (tensors copy on write), so the same zeros serve every step.
        if zeroGradient.shape != shape { zeroGradient = Tensor.zeros(shape) }
        return zeroGradient
    }

    /// Sets the mean and standard deviation to those of every log-mel value of the clips'
    /// non-silent segments (all of a clip's segments when every one is silent).
    ///
    /// - Parameter clips: The training clips, at the network's rate.
    public func fit(to clips: [[Float]]) {
        var sums = [Double](repeating: 0, count: 3 * clips.count)
        let spectrogram = self.spectrogram
        sums.withUnsafeMutableBufferPointer { buffer in
            let slots = SharedDoubles(buffer.baseAddress!)
            Parallel.forEach(count: clips.count) { index in
                var sum = 0.0, squares = 0.0, segments = 0.0
                let all = spectrogram.segments(of: clips[index]).map { spectrogram.decibels(of: $0) }
                let kept = all.filter { !spectrogram.isSilent(decibels: $0) }
                for values in kept.isEmpty ? all : kept {
                    for value in values { sum += Double(value); squares += Double(value) * Double(value) }
                    segments += 1
                }
                slots.pointer[3 * index] = sum
                slots.pointer[3 * index + 1] = squares
                slots.pointer[3 * index + 2] = segments
            }
        }
        var sum = 0.0, squares = 0.0, segments = 0.0
        for index in clips.indices {
            sum += sums[3 * index]; squares += sums[3 * index + 1]; segments += sums[3 * index + 2]
        }
        let values = segments * Double(spectrogram.settings.melBands * spectrogram.settings.segmentFrames)
        guard values > 0 else { return }
        let average = sum / values
        // A constant input (every clip silent) has no spread: keep the scale at 1 rather than divide by 0.
        let spread = (Swift.max(squares / values - average * average, 0)).squareRoot()
        mean.value = Tensor([Float(average)], shape: [1])
        standardDeviation.value = Tensor([Float(spread > 1e-6 ? spread : 1)], shape: [1])
        segmentCount.value = Tensor([Float(segments)], shape: [1])
    }
}

/// Spectrogram masks (SpecAugment's frequency and time masking), in training mode only: per
/// sample, one band range of up to ``maximumBands`` mel bands and one frame range of up to
/// ``maximumFrames`` frames are set to 0 (the normalised mean) in every channel. The identity in
/// evaluation mode.
///
/// `[N, C, bands, frames] -> [N, C, bands, frames]`
public final class SpectrogramMasking: Module, Layer, SampleKeyedRandomness {
    /// The widest frequency mask, in bands (0: none).
    public let maximumBands: Int
    /// The widest time mask, in frames (0: none).
    public let maximumFrames: Int
    /// The source of the masks when ``sampleStreams`` is nil.
    public var generator: SeededGenerator
    public var sampleStreams: Dropout.SampleStreams?
    private var masks: [(bands: Range<Int>, frames: Range<Int>)]?

    /// - Parameters:
    ///   - maximumBands: The widest frequency mask.
    ///   - maximumFrames: The widest time mask.
    ///   - generator: The source of the mask generator's seed (one draw).
    public init(maximumBands: Int, maximumFrames: Int, generator: inout SeededGenerator) {
        precondition(maximumBands >= 0 && maximumFrames >= 0, "mask widths cannot be negative")
        self.maximumBands = maximumBands
        self.maximumFrames = maximumFrames
        self.generator = SeededGenerator(seed: generator.next())
        super.init()
    }

    public override var layerDescription: String { "SpectrogramMasking(maximumBands: \(maximumBands), maximumFrames: \(maximumFrames))" }

    public func outputShape(forInputShape inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 4 else {
            throw LayerError.inputShape(layer: layerDescription, expected: "[N, C, bands, frames]", actual: inputShape)
        }
        return inputShape
    }

    /// Draws a mask width in `0...maximum` and a start that keeps it inside `0..<extent`.
    private static func draw(maximum: Int, extent: Int, _ generator: inout SeededGenerator) -> Range<Int> {
        let width = Swift.min(generator.nextInt(below: maximum + 1), extent)
        let start = generator.nextInt(below: extent - width + 1)
        return start..<(start + width)
    }

    public func forward(_ input: Tensor) -> Tensor {
        _ = TensorError.check { try outputShape(forInputShape: input.shape) }
        guard isTraining else { masks = nil; return input }
        let (count, channels, bands, frames) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        var drawn: [(bands: Range<Int>, frames: Range<Int>)] = []
        for row in 0..<count {
            var rowGenerator = sampleStreams.map { SeededGenerator(seed: $0.seed, stream: $0.firstStream &+ UInt64(row)) } ?? generator
            drawn.append((Self.draw(maximum: maximumBands, extent: bands, &rowGenerator),
                          Self.draw(maximum: maximumFrames, extent: frames, &rowGenerator)))
            if sampleStreams == nil { generator = rowGenerator }
        }
        masks = drawn
        return Self.apply(drawn, to: input, channels: channels, bands: bands, frames: frames)
    }

    private static func apply(_ masks: [(bands: Range<Int>, frames: Range<Int>)], to tensor: Tensor,
                              channels: Int, bands: Int, frames: Int) -> Tensor {
        var output = tensor.contiguousCopy()
        output.withUnsafeMutableBufferPointer { values in
            for (row, mask) in masks.enumerated() {
                for channel in 0..<channels {
                    let base = (row * channels + channel) * bands * frames
                    for band in 0..<bands {
                        let masksBand = mask.bands.contains(band)
                        for frame in 0..<frames where masksBand || mask.frames.contains(frame) {
                            values[base + band * frames + frame] = 0
                        }
                    }
                }
            }
        }
        return output
    }

    /// The gradient with the last forward pass's masks applied.
    public func backward(_ gradientOutput: Tensor) -> Tensor {
        guard let masks else { fatalError("\(layerDescription).backward called without a training-mode forward pass") }
        self.masks = nil
        let shape = gradientOutput.shape
        return Self.apply(masks, to: gradientOutput, channels: shape[1], bands: shape[2], frames: shape[3])
    }
}

/// Raw memory that parallel work writes in disjoint rows.
private struct SharedRows: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}

private struct SharedSamples: @unchecked Sendable {
    let pointer: UnsafePointer<Float>
    init(_ pointer: UnsafePointer<Float>) { self.pointer = pointer }
}

private struct SharedDoubles: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Double>
    init(_ pointer: UnsafeMutablePointer<Double>) { self.pointer = pointer }
}
