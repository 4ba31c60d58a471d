import Foundation

/// Reads a WAV file's samples a few frames at a time, so memory does not grow with the file.
///
/// The header is validated once by ``WAVReader/readInfo(contentsOf:)``; each call to
/// ``next(maximumFrames:)`` then reads the next whole frames of the data chunk and decodes them with
/// the same decoder as a whole-file read, so the samples (and their mono mix) are exactly those of
/// ``WAVReader/read(contentsOf:)``.
public struct WAVChunkReader {
    /// What the header says about the audio.
    public let info: WAVInfo
    private let path: String
    private let handle: FileHandle
    private var framesRead = 0

    /// Opens `url` and validates its header.
    /// - Parameter url: a WAV file.
    /// - Throws: ``AudioError`` for a missing, unreadable or invalid file.
    public init(contentsOf url: URL) throws {
        path = url.path
        info = try WAVReader.readInfo(contentsOf: url)
        do {
            handle = try FileHandle(forReadingFrom: url)
            try handle.seek(toOffset: UInt64(info.dataOffset))
        } catch {
            throw AudioError(source: url.path, problem: .readFailed(error.localizedDescription))
        }
    }

    /// The next mono samples, at most `maximumFrames` frames (and at most 16 MB per read); nil at the
    /// end of the data.
    /// - Parameter maximumFrames: how many frames to read at most.
    /// - Throws: ``AudioError`` when reading fails.
    public mutating func next(maximumFrames: Int) throws -> [Float]? {
        let blockAlign = info.channelCount * info.encoding.bytesPerSample
        let frames = Swift.min(Swift.max(maximumFrames, 1), Swift.max((16 << 20) / blockAlign, 1), info.frameCount - framesRead)
        guard frames > 0 else { return nil }
        let bytes: Data
        do {
            bytes = try handle.read(upToCount: frames * blockAlign) ?? Data()
        } catch {
            throw AudioError(source: path, problem: .readFailed(error.localizedDescription))
        }
        let whole = bytes.count / blockAlign
        guard whole > 0 else { return nil }  // the file shrank while being read
        framesRead += whole
        var chunk = info
        chunk.frameCount = whole
        chunk.dataOffset = 0
        chunk.dataByteCount = whole * blockAlign
        return bytes.withUnsafeBytes { downmixToMono(WAVReader.decodeSamples($0, info: chunk)) }
    }
}
