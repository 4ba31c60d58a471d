import Foundation

extension StreamingClassifier {
    /// Turns an asynchronous sequence of audio chunks (a microphone tap, a socket) into an
    /// asynchronous sequence of window results: SoundAnalysis's stream analyser with async results.
    ///
    /// ```swift
    /// for try await result in classifier.results(for: microphoneChunks) {
    ///     print(result.endTime, result.isSilent ? "silent" : result.best!.label)
    /// }
    /// ```
    ///
    /// When the chunks end, the stream is finished (``finish()``) and its last results follow.
    /// Cancelling the consuming task ends the sequence with `CancellationError` before the next chunk.
    ///
    /// - Parameter chunks: Mono chunks at ``sourceSampleRate``, any sizes.
    /// - Returns: One result per window, in order; it throws the errors of ``process(_:)`` and of the chunks.
    public func results<Chunks: AsyncSequence>(for chunks: Chunks) -> StreamingResults<Chunks> where Chunks.Element == [Float] {
        StreamingResults(classifier: self, chunks: chunks)
    }
}

/// The window results of a ``StreamingClassifier`` fed from an asynchronous sequence of chunks
/// (see ``StreamingClassifier/results(for:)``). Like the classifier, it is used from one task.
public struct StreamingResults<Chunks: AsyncSequence>: AsyncSequence where Chunks.Element == [Float] {
    public typealias Element = StreamingResult

    let classifier: StreamingClassifier
    let chunks: Chunks

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(classifier: classifier, chunks: chunks.makeAsyncIterator())
    }

    /// Feeds one chunk at a time and hands out its results one by one.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let classifier: StreamingClassifier
        var chunks: Chunks.AsyncIterator
        var pending: [StreamingResult] = []
        var position = 0
        var finished = false

        public mutating func next() async throws -> StreamingResult? {
            while true {
                if position < pending.count {
                    position += 1
                    return pending[position - 1]
                }
                if finished { return nil }
                try Task.checkCancellation()
                position = 0
                if let chunk = try await chunks.next() {
                    pending = try classifier.process(chunk)
                } else {
                    pending = try classifier.finish()
                    finished = true
                }
            }
        }
    }
}
