import EnvNetTensor
import Foundation
import Logging
import Testing
@testable import EnvNetAudio

/// Collects log messages so tests can check that warnings are issued.
final class RecordingLogHandler: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [(Logger.Level, String)] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    var messages: [(Logger.Level, String)] {
        lock.lock(); defer { lock.unlock() }
        return storage
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lock.lock(); defer { lock.unlock() }
        storage.append((event.level, event.message.description))
    }
}

@Suite("Normalization and segments")
struct PreprocessingTests {
    @Test func peakNormalization() {
        #expect(peakNormalized([0.25, -0.5, 0.1]) == [0.5, -1, 0.2])
        #expect(peakNormalized([0, 0]) == [0, 0])
        #expect(peakNormalized([]) == [])
        #expect(normalized([0.25, -0.5], policy: .peak) == [0.5, -1])
        #expect(normalized([0.25, -0.5], policy: .int16FullScale) == [0.25, -0.5])
    }

    @Test func int16FullScaleDividesBy32768() {
        #expect(int16FullScale([-32768, 0, 16384, 32767]) == [-1, 0, 0.5, 32767 / 32768])
    }

    @Test func trimsOnlyLeadingAndTrailingExactZeros() {
        #expect(trimmingZeros([0, 0, 0.1, 0, -0.2, 0]) == [0.1, 0, -0.2])
        #expect(trimmingZeros([0, 0]) == [])
        #expect(trimmingZeros([1e-9]) == [1e-9])
    }

    @Test func zeroPadding() {
        #expect(zeroPadded([1, 2], leading: 2, trailing: 1) == [0, 0, 1, 2, 0])
        #expect(zeroPadded([], leading: 0, trailing: 2) == [0, 0])
    }

    @Test func randomCropIsNonSilentAndSeeded() {
        let sampler = SegmentSampler(length: 100)
        var clip = [Float](repeating: 0.01, count: 1000)
        for index in 400..<450 { clip[index] = 0.9 }
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<20 {
            let crop = sampler.randomCrop(of: clip, using: &generator)
            #expect(crop.count == 100)
            #expect(peakAmplitude(crop) > 0.2)
        }
        var a = SeededGenerator(seed: 1), b = SeededGenerator(seed: 1)
        #expect(sampler.randomCrop(of: clip, using: &a) == sampler.randomCrop(of: clip, using: &b))
    }

    @Test func randomCropOfSilentClipGivesUpWithWarning() {
        let handler = RecordingLogHandler()
        let logger = Logger(label: "test") { _ in handler }
        let sampler = SegmentSampler(length: 10, maximumAttempts: 5, logger: logger)
        var clip = [Float](repeating: 0, count: 100)
        clip[50] = 0.1  // loudest spot, still "silent"
        var generator = SeededGenerator(seed: 3)
        let crop = sampler.randomCrop(of: clip, using: &generator, clipName: "quiet.wav")
        #expect(crop.count == 10)
        #expect(handler.messages.count == 1)
        #expect(handler.messages.first?.0 == .warning)
        #expect(handler.messages.first?.1.contains("quiet.wav") == true)
    }

    @Test func randomCropPadsShortClips() {
        let sampler = SegmentSampler(length: 6)
        var generator = SeededGenerator(seed: 1)
        #expect(sampler.randomCrop(of: [0.5, 0.5, 0.5], using: &generator) == [0, 0.5, 0.5, 0.5, 0, 0])
    }

    @Test func exactWindowBoundariesGiveKPlusOneWindows() {
        let sampler = SegmentSampler(length: 24000)
        for k in 0..<4 {
            let count = 24000 + k * 3200
            #expect(sampler.windowStarts(sampleCount: count).count == k + 1)
            #expect(sampler.windowStarts(sampleCount: count + 3199).count == k + 1)
            #expect(sampler.windowStarts(sampleCount: count).last == k * 3200)
        }
        // A 5 s clip at 16 kHz: (80000 - 24000) / 3200 + 1 = 18 windows.
        #expect(sampler.windowStarts(sampleCount: 80000).count == 18)
    }

    @Test func evaluationWindowsDropSilentOnes() {
        let sampler = SegmentSampler(length: 10)
        var clip = [Float](repeating: 0, count: 30)  // windows at 0, 5, 10, 15, 20 (hop 5)
        clip[2] = 0.5  // only in the window at 0
        let windows = sampler.evaluationWindows(of: clip, hop: 5)
        #expect(windows.count == 1)
        #expect(windows[0][2] == 0.5)
    }

    @Test func evaluationWindowsFallBackToLoudest() {
        let sampler = SegmentSampler(length: 10)
        var clip = [Float](repeating: 0.01, count: 30)
        clip[27] = 0.15  // below the threshold; only windows at 20 contains it
        let windows = sampler.evaluationWindows(of: clip, hop: 5)
        #expect(windows.count == 1)
        #expect(windows[0][7] == 0.15)
        let silent = sampler.evaluationWindows(of: [Float](repeating: 0, count: 30), hop: 5)
        #expect(silent.count == 1)
        #expect(silent[0].count == 10)
    }

    @Test func clipShorterThanOneWindowGivesOnePaddedWindow() {
        let sampler = SegmentSampler(length: 8)
        let windows = sampler.evaluationWindows(of: [0.5, -0.5, 0.5], hop: 2)
        #expect(windows == [[0, 0, 0.5, -0.5, 0.5, 0, 0, 0]])
    }

    @Test func tenCropsOfHalfWindowPaddedClip() {
        let sampler = SegmentSampler(length: 10)
        let clip = (1...40).map(Float.init)
        let crops = sampler.evenlySpacedCrops(of: clip)
        // Padded length 50; stride (50 - 10) / 9 = 4.
        #expect(crops.count == 10)
        #expect(crops[0] == [0, 0, 0, 0, 0, 1, 2, 3, 4, 5])
        #expect(crops[1] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        #expect(crops[9] == (32...41).map { $0 <= 40 ? Float($0) : 0 })
        #expect(sampler.evenlySpacedCrops(of: [], count: 3).allSatisfy { $0 == [Float](repeating: 0, count: 10) })
    }

    @Test func seededGeneratorIsReproducibleAndUniform() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
        let first = (0..<5).map { _ in a.next() }
        #expect(first == (0..<5).map { _ in b.next() })
        #expect(first != (0..<5).map { _ in c.next() })
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<10000 { counts[a.nextInt(below: 10)] += 1 }
        #expect(counts.allSatisfy { $0 > 900 && $0 < 1100 })
        #expect(SeededGenerator(seed: 1, stream: 0) != SeededGenerator(seed: 1, stream: 1))
    }
}
