import EnvNetTensor
import Foundation

/// The settings that turn a decoded file into a training clip.
///
/// They are part of the preprocessing cache key, so changing any of them rebuilds the cache.
public struct PreprocessingSettings: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The sample rate clips are resampled to (16 kHz for EnvNet).
    public var sampleRate: Int
    /// The amplitude normalization applied last.
    public var normalization: AmplitudeNormalization
    /// Whether leading and trailing exact zeros are removed (before resampling, where digital
    /// silence is still exactly zero).
    public var trimsZeros: Bool

    /// Creates settings.
    ///
    /// - Parameters:
    ///   - sampleRate: The target rate in Hz, positive.
    ///   - normalization: The amplitude normalization.
    ///   - trimsZeros: Whether to strip leading and trailing exact zeros.
    public init(sampleRate: Int = 16000, normalization: AmplitudeNormalization = .peak,
                trimsZeros: Bool = false) {
        self.sampleRate = sampleRate
        self.normalization = normalization
        self.trimsZeros = trimsZeros
    }

    /// The seed article's recipe: 16 kHz, peak 1.0, no trimming.
    public static let seedArticle = PreprocessingSettings()
    /// The authors' repository's recipe: 16 kHz, int16 full scale, zeros trimmed.
    public static let authorsRepository = PreprocessingSettings(
        normalization: .int16FullScale, trimsZeros: true)

    /// A canonical text form, used in the cache key.
    public var description: String {
        "rate=\(sampleRate);normalization=\(normalization.rawValue);trim=\(trimsZeros)"
    }
}

/// Loads audio files as mono clips at a fixed rate with a chosen normalization.
///
/// Resamplers are built once per source rate and shared, because designing the 44.1 kHz
/// filter costs far more than applying it to one clip. The loader is safe to use from many
/// threads at once.
public final class ClipLoader: @unchecked Sendable {
    /// The preprocessing applied to every clip.
    public let settings: PreprocessingSettings
    private let lock = NSLock()
    private var resamplers: [Int: Resampler] = [:]

    /// Creates a loader.
    ///
    /// - Parameter settings: The preprocessing to apply.
    public init(settings: PreprocessingSettings = .seedArticle) {
        self.settings = settings
    }

    /// Reads, decodes and preprocesses one file.
    ///
    /// - Parameter url: An audio file in any ``AudioFormat`` (WAV, FLAC, Ogg Vorbis, Opus, MP3,
    ///   AIFF/AIFC, CAF, W64), at any rate and channel count.
    /// - Returns: Mono samples at `settings.sampleRate`.
    /// - Throws: `AudioError` naming the file.
    public func load(contentsOf url: URL) throws -> [Float] {
        let audio = try AudioFileReader.read(contentsOf: url)
        do {
            return try preprocess(mono: audio.mono, sampleRate: audio.sampleRate)
        } catch let error as AudioError {
            throw AudioError(source: url.path, problem: error.problem)
        }
    }

    /// Preprocesses decoded audio: downmix (already in `mono`), optional zero trimming,
    /// resampling when the rate differs, then normalization.
    ///
    /// - Parameter audio: Decoded audio.
    /// - Returns: Mono samples at `settings.sampleRate`.
    /// - Throws: `AudioError` when no resampler can be built for the rate pair.
    public func preprocess(_ audio: DecodedAudio) throws -> [Float] {
        try preprocess(mono: audio.mono, sampleRate: audio.sampleRate)
    }

    /// Preprocesses a mono buffer: optional zero trimming, resampling when the rate differs, then
    /// normalization.
    ///
    /// - Parameters:
    ///   - mono: Mono samples.
    ///   - sampleRate: Their rate in Hz.
    /// - Returns: Mono samples at `settings.sampleRate`.
    /// - Throws: `AudioError` when no resampler can be built for the rate pair.
    public func preprocess(mono: [Float], sampleRate: Int) throws -> [Float] {
        var samples = mono
        if settings.trimsZeros { samples = trimmingZeros(samples) }
        if sampleRate != settings.sampleRate {
            samples = try resampler(from: sampleRate).process(samples)
        }
        return normalized(samples, policy: settings.normalization)
    }

    /// The shared resampler from a source rate to `settings.sampleRate`.
    ///
    /// - Parameter inputRate: The source rate in Hz.
    /// - Returns: A resampler, built on first use.
    /// - Throws: `AudioError` for rate pairs the resampler cannot handle.
    public func resampler(from inputRate: Int) throws -> Resampler {
        lock.lock()
        if let existing = resamplers[inputRate] {
            lock.unlock()
            return existing
        }
        lock.unlock()
        // Designed outside the lock so other rates are not blocked; a rare duplicate design
        // for the same rate is harmless.
        let made = try Resampler(from: inputRate, to: settings.sampleRate)
        lock.lock()
        defer { lock.unlock() }
        if let existing = resamplers[inputRate] { return existing }
        resamplers[inputRate] = made
        return made
    }
}
