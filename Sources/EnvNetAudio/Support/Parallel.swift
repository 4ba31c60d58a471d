import EnvNetTensor
import Dispatch

/// Runs `body` for every index in `0..<count` on all cores and returns the results in order.
///
/// Each iteration writes only its own slot of a preallocated buffer, so no locking is needed;
/// errors are captured per index rather than aborting the others, so callers can report every
/// failure at once.
func concurrentMap<T: Sendable>(
    count: Int, _ body: @Sendable (Int) throws -> T
) -> [Result<T, any Error>] {
    guard count > 0 else { return [] }
    let slots = ResultSlots<T>(count: count)
    defer { slots.release() }
    DispatchQueue.concurrentPerform(iterations: count) { index in
        slots.store(Result { try body(index) }, at: index)
    }
    return slots.collect()
}

/// A fixed buffer in which each concurrent iteration writes only its own index.
///
/// `@unchecked Sendable` is sound because indices are disjoint and `collect` runs only after
/// `concurrentPerform` has returned (which orders all writes before it).
private struct ResultSlots<T>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<Result<T, any Error>?>

    init(count: Int) {
        buffer = .allocate(capacity: count)
        buffer.initialize(repeating: nil)
    }

    func store(_ result: Result<T, any Error>, at index: Int) {
        buffer[index] = result
    }

    func collect() -> [Result<T, any Error>] {
        buffer.map { $0! }
    }

    func release() {
        buffer.deinitialize()
        buffer.deallocate()
    }
}
