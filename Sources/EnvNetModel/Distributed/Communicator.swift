import EnvNetLayers
import Foundation

/// The collective operations data-parallel training needs from a group of processes (or of
/// threads): the group's size, this member's rank, and a few collectives.
///
/// Every member must call the same collectives in the same order. The model library has no MPI
/// in it: the MPI implementation lives in the `MPI/` package (`envnet-mpi`), and ``ThreadGroup``
/// runs a group of replicas in one process, for tests.
public protocol Communicator: AnyObject {
    /// This member's index, from 0.
    var rank: Int { get }
    /// The number of members.
    var size: Int { get }
    /// Replaces `values` on every member by their element-wise sum over the members.
    /// - Parameter values: The same count on every member.
    func allreduceSum(_ values: inout [Float]) throws
    /// Replaces `values` on every member by their element-wise sum over the members.
    /// - Parameter values: The same count on every member.
    func allreduceSum(_ values: inout [Double]) throws
    /// Every member's `values`, in rank order, on every member.
    /// - Parameter values: The same count on every member.
    func allgather(_ values: [Double]) throws -> [[Double]]
    /// Replaces `bytes` on every member by those of member `root` (of any length).
    /// - Parameters:
    ///   - bytes: The root's data; on the others, replaced.
    ///   - root: The member that sends.
    func broadcast(_ bytes: inout [UInt8], from root: Int) throws
    /// Starts summing `values` over the members and returns at once when the implementation can
    /// overlap the exchange with computation (the gradient buckets of a backward pass).
    /// - Parameter values: The same count on every member.
    /// - Returns: What ``PendingAllreduce/finish()`` turns into the sums.
    func startAllreduceSum(_ values: [Float]) throws -> PendingAllreduce
    /// Names what the member is doing ("epoch 3, step 12"), for the message of a collective that
    /// does not finish in time.
    func setActivity(_ activity: String)
}

extension Communicator {
    /// Sums at once: for implementations that cannot overlap.
    public func startAllreduceSum(_ values: [Float]) throws -> PendingAllreduce {
        var sums = values
        try allreduceSum(&sums)
        return PendingAllreduce { sums }
    }

    public func setActivity(_ activity: String) {}
}

/// A sum over the members that may still be in flight.
public final class PendingAllreduce {
    private let wait: () throws -> [Float]

    /// - Parameter wait: Blocks until the sums are there and returns them.
    public init(wait: @escaping () throws -> [Float]) {
        self.wait = wait
    }

    /// Waits for the sums.
    public func finish() throws -> [Float] { try wait() }
}

/// What can go wrong between the members of a data-parallel job.
public enum CommunicatorError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A member did not reach a collective in time (it died or hangs).
    case timedOut(operation: String, seconds: Double)
    /// The members disagree (different counts in one collective, different parameters).
    case mismatch(String)
    /// The transport reported an error.
    case failed(operation: String, reason: String)

    public var description: String {
        switch self {
        case let .timedOut(operation, seconds): return "\(operation): a member did not arrive within \(seconds) s"
        case let .mismatch(message): return message
        case let .failed(operation, reason): return "\(operation) failed: \(reason)"
        }
    }
}

/// Synchronised BatchNorm over a ``Communicator``: the members' per-channel statistics are
/// gathered and merged in rank order (Chan's formula, as the kernel merges rows), and the backward
/// pass's sums are summed. N members of 64/N samples then normalise as one member of 64 does, up
/// to the order of summation.
public final class SynchronizedBatchStatistics: BatchNormalization.StatisticsReducer {
    private let communicator: any Communicator
    /// The first error of a collective, if any (the kernel's hook cannot throw); the training
    /// step checks it after each pass.
    public private(set) var failure: Error?

    /// - Parameter communicator: The group.
    public init(communicator: any Communicator) {
        self.communicator = communicator
    }

    public func combine(_ moments: inout [BatchNormalization.Moments]) {
        guard failure == nil else { return }
        do {
            let gathered = try communicator.allgather(moments.flatMap { [$0.count, $0.mean, $0.squares] })
            moments = moments.indices.map { channel in
                gathered.map { BatchNormalization.Moments(count: $0[3 * channel], mean: $0[3 * channel + 1], squares: $0[3 * channel + 2]) }
                    .dropFirst().reduce(BatchNormalization.Moments(count: gathered[0][3 * channel], mean: gathered[0][3 * channel + 1],
                                                                  squares: gathered[0][3 * channel + 2])) { $0.merged(with: $1) }
            }
        } catch {
            failure = error
        }
    }

    public var parameterGradientShare: Double { 1 / Double(communicator.size) }

    public func sum(_ values: inout [Double]) {
        guard failure == nil else { return }
        do { try communicator.allreduceSum(&values) } catch { failure = error }
    }
}

/// A group of replicas in one process, one thread each: the collectives wait at a barrier (with a
/// time limit, so a member that never arrives fails the others instead of hanging them).
public final class ThreadGroup: @unchecked Sendable {
    // @unchecked: every mutable member is reached under `condition`'s lock.
    public let size: Int
    private let condition = NSCondition()
    private var arrived = 0
    private var generation = 0
    private var contributions: [[Double]]
    private var result: [[Double]] = []
    /// How long a collective waits for the other members.
    public let timeout: Double

    /// - Parameters:
    ///   - size: The number of members.
    ///   - timeout: Seconds a collective waits for the others.
    public init(size: Int, timeout: Double = 60) {
        precondition(size >= 1, "ThreadGroup: size must be at least 1")
        self.size = size
        self.timeout = timeout
        contributions = Array(repeating: [], count: size)
    }

    /// The communicator of member `rank`.
    public func member(_ rank: Int) -> any Communicator { Member(group: self, rank: rank) }

    /// Every member's values in rank order, once all have arrived.
    func exchange(rank: Int, values: [Double], operation: String, sameCount: Bool = true) throws -> [[Double]] {
        condition.lock()
        defer { condition.unlock() }
        let myGeneration = generation
        contributions[rank] = values
        arrived += 1
        if arrived == size {
            result = contributions
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            let deadline = Date(timeIntervalSinceNow: timeout)
            while generation == myGeneration {
                if !condition.wait(until: deadline) {
                    // Leave the barrier as it was, so that a later exchange is not one member short.
                    arrived -= 1
                    throw CommunicatorError.timedOut(operation: operation, seconds: timeout)
                }
            }
        }
        let gathered = result
        guard !sameCount || gathered.allSatisfy({ $0.count == values.count }) else {
            throw CommunicatorError.mismatch("\(operation): the members sent \(gathered.map(\.count)) values")
        }
        return gathered
    }

    private final class Member: Communicator {
        let group: ThreadGroup
        let rank: Int
        var size: Int { group.size }

        init(group: ThreadGroup, rank: Int) {
            self.group = group
            self.rank = rank
        }

        func allreduceSum(_ values: inout [Float]) throws {
            // Summed in Double, in rank order: every member gets the same bits.
            let gathered = try group.exchange(rank: rank, values: values.map(Double.init), operation: "allreduce")
            values = values.indices.map { index in Float(gathered.reduce(0) { $0 + $1[index] }) }
        }

        func allreduceSum(_ values: inout [Double]) throws {
            let gathered = try group.exchange(rank: rank, values: values, operation: "allreduce")
            values = values.indices.map { index in gathered.reduce(0) { $0 + $1[index] } }
        }

        func allgather(_ values: [Double]) throws -> [[Double]] {
            try group.exchange(rank: rank, values: values, operation: "allgather")
        }

        func broadcast(_ bytes: inout [UInt8], from root: Int) throws {
            // Every member sends its length, the root its bytes too (as Doubles: exact for bytes).
            let gathered = try group.exchange(rank: rank, values: rank == root ? bytes.map(Double.init) : [], operation: "broadcast",
                                              sameCount: false)
            bytes = gathered[root].map { UInt8($0) }
        }
    }
}
