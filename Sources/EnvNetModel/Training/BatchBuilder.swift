import EnvNetAudio
import EnvNetLayers
import Foundation
import Logging

/// Turns clips into training batches: a random non-silent crop per clip, optionally mixed with a
/// clip of another class (BC learning) and strongly augmented.
///
/// Every example draws from its own generator, derived from the seed, the epoch and its position
/// in the epoch, so batches are the same however the work is spread over threads and whether or
/// not the run was resumed.
struct BatchBuilder: Sendable {
    let clips: [LabeledClip]
    let classCount: Int
    let windowLength: Int
    let configuration: TrainingConfiguration
    let sampler: SegmentSampler
    let mixer: BetweenClassMixer
    let augmentation = StrongAugmentation()
    /// Clip indices by class, for drawing BC partners of another class.
    let clipsByClass: [[Int]]

    init(clips: [LabeledClip], classCount: Int, windowLength: Int, sampleRate: Int, configuration: TrainingConfiguration,
         silenceRule: SilenceRule? = nil) throws {
        self.clips = clips
        self.classCount = classCount
        self.windowLength = windowLength
        self.configuration = configuration
        var logger = Logger(label: "EnvNetModel.training")
        logger.logLevel = .error  // a silent crop is routine in training; the fallback needs no warning per clip
        sampler = SegmentSampler(length: windowLength, silenceThreshold: configuration.silenceThreshold, logger: logger,
                                 silenceRule: silenceRule)
        mixer = try BetweenClassMixer(sampleRate: sampleRate)
        var byClass = [[Int]](repeating: [], count: classCount)
        for (index, clip) in clips.enumerated() { byClass[clip.label].append(index) }
        clipsByClass = byClass
    }

    /// The order of the clips in `epoch` (counted from 0).
    func order(epoch: Int) -> [Int] {
        var generator = SeededGenerator(seed: configuration.seed, stream: 0x5348_5546 &+ UInt64(epoch))
        var order = Array(clips.indices)
        for index in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(index, generator.nextInt(below: index + 1))
        }
        return order
    }

    /// One example: a window and its target distribution (one-hot without BC).
    func example(clipIndex: Int, epoch: Int, position: Int) -> (window: [Float], target: [Float], label: Int) {
        var generator = SeededGenerator(seed: configuration.seed, stream: UInt64(epoch) << 32 | UInt64(position))
        let clip = clips[clipIndex]
        var window = crop(clip, using: &generator)
        var target = [Float](repeating: 0, count: classCount)
        target[clip.label] = 1
        var label = clip.label
        let otherClasses = (0..<classCount).filter { $0 != clip.label && !clipsByClass[$0].isEmpty }
        if configuration.betweenClassLearning, !otherClasses.isEmpty {
            let partnerClass = otherClasses[generator.nextInt(below: otherClasses.count)]
            let partner = clips[clipsByClass[partnerClass][generator.nextInt(below: clipsByClass[partnerClass].count)]]
            let partnerWindow = crop(partner, using: &generator)
            let mixed = mixer.example(first: (window, clip.label), second: (partnerWindow, partner.label),
                                      classCount: classCount, using: &generator)
            window = mixed.sound
            target = mixed.target
            label = mixed.ratio >= 0.5 ? clip.label : partner.label
        }
        if configuration.strongAugmentation {
            let gain = generator.nextDouble(in: -augmentation.maximumGain...augmentation.maximumGain)
            window = amplified(window, byDecibels: gain)
        }
        return (window, target, label)
    }

    private func crop(_ clip: LabeledClip, using generator: inout SeededGenerator) -> [Float] {
        var samples = clip.samples
        if configuration.strongAugmentation {
            // Time scaling comes before cropping (as in the authors' code); the gain after.
            let scale = Foundation.pow(augmentation.maximumScale, generator.nextDouble(in: -1...1))
            samples = timeScaled(samples, by: scale)
        }
        return sampler.randomCrop(of: samples, using: &generator, clipName: clip.name)
    }

    /// Fills `input` `[B, 1, 1, L]` and `targets` `[B, classes]` for the clips `indices`, in parallel.
    /// - Returns: the dominant label of every example.
    /// - Parameter concurrently: spread the examples over the cores (false: build them one by one
    ///   on the calling thread, as the background prefetcher does while the network has the cores).
    func fill(input: inout Tensor, targets: inout Tensor, indices: ArraySlice<Int>, epoch: Int, firstPosition: Int,
              concurrently: Bool = true) -> [Int] {
        let count = indices.count
        if input.shape != [count, 1, 1, windowLength] { input = Tensor.zeros([count, 1, 1, windowLength]) }
        if targets.shape != [count, classCount] { targets = Tensor.zeros([count, classCount]) }
        input.makeContiguousAndUnique()
        targets.makeContiguousAndUnique()
        let inputAddress = UncheckedPointer(input.storage.baseAddress + input.offset)
        let targetAddress = UncheckedPointer(targets.storage.baseAddress + targets.offset)
        let labels = LabelSlots(count: count)
        defer { labels.release() }
        let indexList = Array(indices)
        let build = { (row: Int) in
            let made = example(clipIndex: indexList[row], epoch: epoch, position: firstPosition + row)
            made.window.withUnsafeBufferPointer { (inputAddress.pointer + row * windowLength).update(from: $0.baseAddress!, count: windowLength) }
            made.target.withUnsafeBufferPointer { (targetAddress.pointer + row * classCount).update(from: $0.baseAddress!, count: classCount) }
            labels.pointer[row] = made.label
        }
        if concurrently {
            Parallel.forEach(count: count, build)
        } else {
            for row in 0..<count { build(row) }
        }
        return Array(UnsafeBufferPointer(start: labels.pointer, count: count))
    }
}

/// Raw memory shared with parallel work that writes disjoint rows.
struct UncheckedPointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}

private struct LabelSlots: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int>
    init(count: Int) {
        pointer = .allocate(capacity: Swift.max(count, 1))
        pointer.initialize(repeating: 0, count: Swift.max(count, 1))
    }
    func release() { pointer.deallocate() }
}
