import Dispatch
import Foundation

/// The library's own parallelism: independent pieces of work spread over the cores.
///
/// The number of workers is ``ExecutionOptions/threadCount`` of the options in effect.
public enum Parallel {
    /// How many pieces of work run at once.
    public static var workerCount: Int { ExecutionOptions.current.threadCount }

    /// The active cores, read once: Foundation reads the affinity mask and cgroup files for it,
    /// too slow for every parallel loop.
    static let processorCount = Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body(index)` for every index in `0..<count`, spread over the workers; returns when all are done.
    ///
    /// At most ``workerCount`` pieces run at once: that many threads take the indices in turn
    /// (Dispatch alone would use every core). Every piece runs with the caller's
    /// ``ExecutionOptions/current``: the options are task-local, and Dispatch's threads would
    /// otherwise see the process-wide ones (a kernel that chose its precision on a worker then
    /// rounded some pieces and not others). They are set once per thread, not per piece: setting a
    /// task-local value outside a task costs microseconds, which conv1's 384 pieces per batch felt.
    public static func forEach(count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        let workers = workerCount
        if count == 1 || workers == 1 {
            for index in 0..<count { body(index) }
            return
        }
        let options = ExecutionOptions.current
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendableBox(body)
            let next = IndexDispenser(count: count)
            DispatchQueue.concurrentPerform(iterations: Swift.min(count, workers)) { _ in
                ExecutionOptions.withOptions(options) {
                    while let index = next.take() { box.value(index) }
                }
            }
        }
    }

    /// Splits `0..<count` into at most `workerCount` contiguous chunks and runs `body(chunk, range)` for each.
    /// Useful when every worker keeps a private accumulator indexed by `chunk`.
    public static func forEachChunk(count: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) -> Int {
        let chunks = Swift.max(1, Swift.min(workerCount, count))
        let size = (count + chunks - 1) / Swift.max(chunks, 1)
        forEach(count: chunks) { chunk in
            let start = chunk * size
            let end = Swift.min(count, start + size)
            if start < end { body(chunk, start..<end) }
        }
        return chunks
    }
}

/// Carries a non-Sendable value into concurrent work whose safety the caller guarantees
/// (disjoint writes, joined before return).
struct UncheckedSendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Hands out `0..<count` one index at a time to the threads of a capped ``Parallel/forEach(count:_:)``.
/// `@unchecked Sendable` is sound: `next` is reached only under `lock`.
private final class IndexDispenser: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private let count: Int

    init(count: Int) { self.count = count }

    func take() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next < count else { return nil }
        next += 1
        return next - 1
    }
}
