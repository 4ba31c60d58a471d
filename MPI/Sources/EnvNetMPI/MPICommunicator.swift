import CEnvNetMPI
import EnvNetModel
import Foundation

/// EnvNetModel's ``Communicator`` over MPI_COMM_WORLD.
///
/// - Errors: MPI_ERRORS_RETURN is set, so a failed call returns to us; the communicator then
///   prints what failed, naming the activity, and ends the job (the ranks' collectives could no
///   longer be paired).
/// - Time limits: MPI's blocking collectives cannot time out, and a rank that hangs (stopped,
///   swapping, deadlocked) is not noticed by `mpirun` the way a dead one is. A watchdog thread
///   therefore watches every collective in progress; one that takes longer than
///   ``collectiveTimeout`` prints the project's message, naming the activity (`epoch 3, step 12`),
///   and ends the job with MPI_Abort.
/// - Overlap: with MPI_THREAD_MULTIPLE, ``startAllreduceSum(_:)`` hands the gradient buckets to a
///   thread of their own (on a duplicate of the world communicator), so they are summed while
///   the backward pass goes on; without it they are summed in line.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    // @unchecked: the mutable state (activity, watched operations, the gradient queue) is reached
    // under `lock`; MPI itself is initialised with MPI_THREAD_MULTIPLE, or used from one thread.
    public let rank: Int
    public let size: Int
    /// Whether MPI granted MPI_THREAD_MULTIPLE (gradient sums overlap the backward pass).
    public let overlapsGradientSums: Bool
    private let threadMultiple: Bool
    /// Seconds a collective may take before the job is ended.
    public var collectiveTimeout: Double {
        get { lock.withLock { timeout } }
        set { lock.withLock { timeout = newValue } }
    }

    private let lock = NSCondition()
    private var timeout: Double = 300
    private var activity = "starting"
    private var activityIsStartup = true
    private var watched: [Int: (operation: String, activity: String, started: Date, startup: Bool)] = [:]
    private var nextWatchID = 0
    private var queue: [(values: [Float], done: Completion)] = []

    /// Initialises MPI (once per process).
    /// - Throws: ``CommunicatorError/failed(operation:reason:)`` when MPI cannot start.
    public init() throws {
        var rank: Int32 = 0, size: Int32 = 1, multiple: Int32 = 0
        let code = envnet_mpi_initialize(&rank, &size, &multiple)
        guard code == 0 else { throw CommunicatorError.failed(operation: "MPI_Init_thread", reason: Self.errorString(code)) }
        self.rank = Int(rank)
        self.size = Int(size)
        threadMultiple = multiple != 0
        overlapsGradientSums = multiple != 0 && size > 1
        Thread.detachNewThread { [self] in watch() }
        if overlapsGradientSums { Thread.detachNewThread { [self] in sumGradients() } }
    }

    /// MPI_Finalize: call once, after the last collective.
    public func finalize() { _ = envnet_mpi_finalize() }

    /// Ends every rank of the job (MPI_Abort).
    public func abort(code: Int32) -> Never {
        envnet_mpi_abort(code)
        exit(code)
    }

    public func setActivity(_ activity: String) {
        lock.withLock {
            self.activity = activity
            activityIsStartup = false
        }
    }

    // MARK: - Collectives

    public func allreduceSum(_ values: inout [Float]) throws {
        let count = Int64(values.count)
        try run("allreduce") { values.withUnsafeMutableBufferPointer { envnet_mpi_allreduce_float($0.baseAddress, count, 0) } }
    }

    public func allreduceSum(_ values: inout [Double]) throws {
        let count = Int64(values.count)
        try run("allreduce") { values.withUnsafeMutableBufferPointer { envnet_mpi_allreduce_double($0.baseAddress, count, 0) } }
    }

    public func allgather(_ values: [Double]) throws -> [[Double]] {
        // Equal counts are the protocol's rule; a rank with another count would corrupt the
        // exchange, so the counts are compared first.
        var counts = [Double](repeating: 0, count: size)
        counts[rank] = Double(values.count)
        try allreduceSum(&counts)
        guard counts.allSatisfy({ $0 == Double(values.count) }) else {
            throw CommunicatorError.mismatch("allgather: the ranks sent \(counts.map { Int($0) }) values")
        }
        var gathered = [Double](repeating: 0, count: values.count * size)
        let count = Int64(values.count)
        try run("allgather") {
            values.withUnsafeBufferPointer { source in
                gathered.withUnsafeMutableBufferPointer { envnet_mpi_allgather_double(source.baseAddress, $0.baseAddress, count) }
            }
        }
        return (0..<size).map { Array(gathered[$0 * values.count..<($0 + 1) * values.count]) }
    }

    public func broadcast(_ bytes: inout [UInt8], from root: Int) throws {
        var count = Int64(bytes.count)
        try run("broadcast") { envnet_mpi_broadcast_int64(&count, Int32(root)) }
        if rank != root { bytes = [UInt8](repeating: 0, count: Int(count)) }
        try run("broadcast") { bytes.withUnsafeMutableBufferPointer { envnet_mpi_broadcast_bytes($0.baseAddress, count, Int32(root)) } }
    }

    public func startAllreduceSum(_ values: [Float]) throws -> PendingAllreduce {
        guard overlapsGradientSums else {
            var sums = values
            try allreduceSum(&sums)
            return PendingAllreduce { sums }
        }
        let done = Completion()
        lock.withLock {
            queue.append((values, done))
            lock.broadcast()
        }
        return PendingAllreduce { try done.wait() }
    }

    // MARK: - Threads

    /// The gradient thread: sums the queued buckets in order, on the duplicate communicator.
    private func sumGradients() {
        while true {
            lock.lock()
            while queue.isEmpty { lock.wait() }
            var (values, done) = queue.removeFirst()
            lock.unlock()
            let count = Int64(values.count)
            do {
                try run("the gradient sum") { values.withUnsafeMutableBufferPointer { envnet_mpi_allreduce_float($0.baseAddress, count, 1) } }
                done.finish(.success(values))
            } catch {
                done.finish(.failure(error))
            }
        }
    }

    /// Runs one MPI call under the watchdog.
    private func run(_ operation: String, _ call: () -> Int32) throws {
        let id = lock.withLock {
            nextWatchID += 1
            watched[nextWatchID] = (operation, activity, Date(), activityIsStartup)
            return nextWatchID
        }
        let code = call()
        let doing = lock.withLock { watched.removeValue(forKey: id)?.activity ?? activity }
        guard code == 0 else {
            // The other ranks are in (or past) this collective: carrying on would pair the
            // following collectives wrongly, so the job ends here, with the step named.
            let message = "envnet-mpi (rank \(rank) of \(size)): \(doing): \(operation) failed: \(Self.errorString(code)); ending the job\n"
            FileHandle.standardError.write(Data(message.utf8))
            abort(code: 76)
        }
    }

    /// The watchdog: ends the job when a collective outlives its time limit. Before the first
    /// step (the ranks load and preprocess their data at their own pace) the limit is ten times
    /// longer.
    private func watch() {
        while true {
            Thread.sleep(forTimeInterval: 0.5)
            let late: (operation: String, activity: String, seconds: Double)? = lock.withLock {
                let now = Date()
                for entry in watched.values {
                    let limit = entry.startup ? 10 * timeout : timeout
                    if now.timeIntervalSince(entry.started) > limit { return (entry.operation, entry.activity, limit) }
                }
                return nil
            }
            if let late {
                let message = "envnet-mpi (rank \(rank) of \(size)): \(late.activity): \(late.operation) did not finish within "
                    + "\(Self.seconds(late.seconds)): another rank died or hangs; ending the job\n"
                FileHandle.standardError.write(Data(message.utf8))
                // MPI_Abort from this thread needs MPI_THREAD_MULTIPLE; without it the process
                // ends alone and mpirun ends the job.
                if threadMultiple { abort(code: 75) }
                _exit(75)
            }
        }
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
    }

    static func errorString(_ code: Int32) -> String {
        var text = [CChar](repeating: 0, count: 512)
        envnet_mpi_error_string(code, &text, Int32(text.count))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The result of one queued gradient sum.
private final class Completion: @unchecked Sendable {
    // @unchecked: `result` is reached under `condition`.
    private let condition = NSCondition()
    private var result: Result<[Float], Error>?

    func finish(_ result: Result<[Float], Error>) {
        condition.withLock {
            self.result = result
            condition.broadcast()
        }
    }

    func wait() throws -> [Float] {
        condition.lock()
        defer { condition.unlock() }
        while result == nil { condition.wait() }
        return try result!.get()
    }
}
